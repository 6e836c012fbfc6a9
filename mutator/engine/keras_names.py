"""What the Keras names a script uses mean, once libcst has resolved them to qualified names.

`tf.keras.layers.Conv2D`, `keras.layers.Conv2D`, `from keras.layers import Conv2D as C` and the
Keras 1 name `Convolution2D` must all be recognised as the same layer, so rules can speak of
canonical kinds only.
"""

from __future__ import annotations

import re

# keras, tf.keras, tensorflow.python.keras, keras.src, and keras_core (Keras 3's name in its
# preview): the package prefixes Keras has lived under.
_KERAS = r"(?:(?:tensorflow\.(?:python\.)?)?keras(?:\.src)?|keras_core)"
_LAYER = re.compile(rf"^{_KERAS}\.layers(?:\.[a-z_][a-z0-9_]*)*\.([A-Z]\w*)$")
_SEQUENTIAL = re.compile(
    rf"^{_KERAS}(?:\.models|\.engine\.sequential|\.models\.sequential)?\.Sequential$"
)
_MODEL = re.compile(
    rf"^{_KERAS}(?:\.models|\.engine\.training|\.models\.model)?\.(?:Model|Functional)$"
)
_INPUT = re.compile(rf"^{_KERAS}(?:\.layers|\.engine\.input_layer)?\.Input$")
_LAYERS_MODULE = re.compile(rf"^{_KERAS}\.layers(?:\.[a-z_][a-z0-9_]*)*$")
# `keras.layers.concatenate`, Keras 2's `keras.layers.merge.add`: merge functions, lower case.
_MERGE_FUNCTION = re.compile(rf"^{_KERAS}\.layers(?:\.[a-z_][a-z0-9_]*)*\.([a-z]+)$")

#: Old or alternative spellings, mapped to the name rules use.
CANONICAL_KIND = {
    "Convolution1D": "Conv1D",
    "Convolution2D": "Conv2D",
    "Convolution3D": "Conv3D",
    "MaxPool1D": "MaxPooling1D",
    "MaxPool2D": "MaxPooling2D",
    "MaxPool3D": "MaxPooling3D",
    "AvgPool1D": "AveragePooling1D",
    "AvgPool2D": "AveragePooling2D",
    "AvgPool3D": "AveragePooling3D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
    "GlobalAvgPool1D": "GlobalAveragePooling1D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D",
}

CONV_KINDS = frozenset({"Conv1D", "Conv2D", "Conv3D"})
POOL_KINDS = frozenset(f"{op}Pooling{d}D" for op in ("Max", "Average") for d in (1, 2, 3))
FLATTENING_KINDS = frozenset(
    {"Flatten"} | {f"Global{op}Pooling{d}D" for op in ("Max", "Average") for d in (1, 2, 3)}
)
# Layers that leave the feature map's spatial size as it is.
SHAPE_PRESERVING_KINDS = frozenset(
    {
        "Dropout",
        "BatchNormalization",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "LayerNormalization",
        "GaussianNoise",
    }
)
INPUT_KINDS = frozenset({"Input", "InputLayer"})
# Recurrent layers whose size is `units` (Keras 1: `output_dim`); CuDNN* are Keras 2's GPU-only
# variants, with the same first argument.
RECURRENT_KINDS = frozenset({"LSTM", "GRU", "SimpleRNN", "CuDNNLSTM", "CuDNNGRU"})
# Layers that apply another layer, given as their first argument: `Bidirectional(LSTM(32))`.
WRAPPER_KINDS = frozenset({"Bidirectional", "TimeDistributed"})
# Layers that merge several tensors, each also written as a function of the list of tensors
# (`layers.Concatenate()([a, b])` or `layers.concatenate([a, b])`). All but Concatenate need
# their inputs of one shape; Concatenate, the same shape but on its axis.
MERGE_FUNCTIONS = {
    name.lower(): name
    for name in ("Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot")
}
MERGE_KINDS = frozenset(MERGE_FUNCTIONS.values())

# What `from keras.layers import *` can bring in that rules care about (star imports cannot be
# resolved by libcst, so a bare name is accepted when it is one of these and is not defined locally).
STAR_IMPORTABLE_LAYERS = frozenset(
    CONV_KINDS
    | POOL_KINDS
    | FLATTENING_KINDS
    | SHAPE_PRESERVING_KINDS
    | set(CANONICAL_KIND)
    | RECURRENT_KINDS
    | WRAPPER_KINDS
    | MERGE_KINDS
    | {"Dense", "Input", "InputLayer", "Reshape"}
)


def canonical_kind(name: str) -> str:
    """The name rules use for a layer class (`Convolution2D` -> `Conv2D`)."""
    return CANONICAL_KIND.get(name, name)


def layer_class(qualified_name: str) -> str | None:
    """The layer class a qualified name denotes, or None when it is not a Keras layer."""
    match = _LAYER.match(qualified_name)
    return match.group(1) if match else None


def is_sequential(qualified_name: str) -> bool:
    return bool(_SEQUENTIAL.match(qualified_name))


def is_functional_model(qualified_name: str) -> bool:
    return bool(_MODEL.match(qualified_name))


def is_input(qualified_name: str) -> bool:
    return bool(_INPUT.match(qualified_name))


def merge_function(qualified_name: str) -> str | None:
    """The merge layer a Keras merge function makes (`keras.layers.concatenate` ->
    `Concatenate`), or None."""
    match = _MERGE_FUNCTION.match(qualified_name)
    return MERGE_FUNCTIONS.get(match.group(1)) if match else None


def is_layers_module(qualified_name: str) -> bool:
    """True for `keras.layers` and its submodules: the targets of a star import of layers."""
    return bool(_LAYERS_MODULE.match(qualified_name))


def spatial_rank(kind: str) -> int | None:
    """1, 2 or 3 for convolution and pooling kinds (`Conv2D` -> 2), else None."""
    match = re.search(r"([123])D$", kind)
    return int(match.group(1)) if match and (kind in CONV_KINDS or kind in POOL_KINDS) else None


# -- optimizers ----------------------------------------------------------------------------------
# `keras.optimizers.Adam`, `tf.keras.optimizers.legacy.SGD`, `tf.optimizers.Adam` (TF 2's alias),
# Keras 2's `tensorflow.python.keras.optimizer_v2.adam.Adam`, the mixed-precision wrapper
# `keras.mixed_precision.LossScaleOptimizer`; schedules are not optimizers.
_OPTIMIZER = re.compile(
    rf"^(?:{_KERAS}\.(?:optimizers|optimizer_v2|mixed_precision)|tensorflow\.optimizers)"
    r"(?:\.(?!schedules\b)[a-z_][a-z0-9_]*)*\.([A-Z]\w*)$"
)
_SCHEDULE = re.compile(
    rf"^(?:{_KERAS}|tensorflow)\.optimizers\.schedules(?:\.[a-z_][a-z0-9_]*)*\.([A-Z]\w*)$"
)
_OPTIMIZERS_MODULE = re.compile(rf"^(?:{_KERAS}|tensorflow)\.optimizers$")
_PACKAGE = re.compile(rf"^({_KERAS})(?:\.|$)")

#: `compile(optimizer="adam")`: the names Keras accepts (in any case) and the class each makes.
OPTIMIZER_STRINGS = {
    name.lower(): name
    for name in (
        "Adam", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "AdamW",
        "Lion", "Adafactor", "Lamb",
    )
}  # fmt: skip
#: Each optimizer's learning rate when none is given: Keras 3's (keras/src/optimizers/*.py), the
#: same as tf.keras 2's; 0.001 everywhere but SGD.
DEFAULT_LEARNING_RATE = {**dict.fromkeys(OPTIMIZER_STRINGS.values(), 0.001), "SGD": 0.01}
#: What `compile()` uses without an optimizer.
DEFAULT_OPTIMIZER = "RMSprop"
#: Schedules whose rate starts at their first argument, `initial_learning_rate`.
DECAY_SCHEDULES = frozenset(
    {"ExponentialDecay", "PolynomialDecay", "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts"}
)
#: Optimizers that wrap another, given as their first argument (mixed precision).
WRAPPING_OPTIMIZERS = frozenset({"LossScaleOptimizer"})


def optimizer_class(qualified_name: str) -> str | None:
    """The optimizer class a qualified name denotes (`tensorflow.keras.optimizers.SGD` -> `SGD`)."""
    match = _OPTIMIZER.match(qualified_name)
    return match.group(1) if match else None


def schedule_class(qualified_name: str) -> str | None:
    """The learning-rate schedule class a qualified name denotes, or None."""
    match = _SCHEDULE.match(qualified_name)
    return match.group(1) if match else None


def is_optimizers_module(qualified_name: str) -> bool:
    """`from keras import optimizers` binds this: `optimizers.Adam` is then a Keras optimizer."""
    return bool(_OPTIMIZERS_MODULE.match(qualified_name))


def keras_package(qualified_name: str) -> str | None:
    """The Keras package a module belongs to, as a script would import from it:
    `keras.layers` -> `keras`, `tensorflow.keras.models` -> `tensorflow.keras`,
    `keras_core` -> `keras_core`; `tensorflow.python.keras` and `keras.src` are private
    spellings of `tensorflow.keras` and `keras`. None for anything else."""
    match = _PACKAGE.match(qualified_name)
    if match is None:
        return None
    package = match.group(1).removesuffix(".src")
    return "tensorflow.keras" if package == "tensorflow.python.keras" else package
