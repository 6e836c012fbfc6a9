"""The pieces of a warm start: weight surgery as numpy, and what a Keras layer allows of it.

The surgery (Net2WiderNet, centred kernels, identities) is small functions of arrays, each
function-preserving on its own. Kernels follow the Keras layout: (*spatial, inputs, outputs) for
Conv1D/2D/3D, (inputs, outputs) for Dense. The layer facts read built Keras layers through their
attributes; only `unmappable` imports Keras, when called. `warmstart` walks the layers and decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Each copy of a replicated unit gets a raw weight in this range before normalisation, so no copy
# carries a vanishing share of the unit's outgoing weights (and so a vanishing gradient).
SHARE_RANGE = (0.5, 1.5)


@dataclass(frozen=True)
class ChannelMap:
    """How a widened layer's output units relate to its parent's.

    Child unit j computes what parent unit `source[j]` did; a consumer scales the input weights it
    reads from child unit j by `share[j]`. The shares of the copies of one parent unit sum to 1,
    so the consumer's sum over them equals the parent's single term. `channels_last` is False when
    the producer's data format puts channels on axis 1 (a Flatten then interleaves differently).
    """

    source: np.ndarray
    share: np.ndarray
    parent_units: int
    channels_last: bool = True

    @property
    def child_units(self) -> int:
        return len(self.source)

    def repeated(self, positions: int) -> ChannelMap:
        """The map of a channels-last Flatten: flat index = position * channels + channel."""
        offsets = np.repeat(np.arange(positions), self.child_units)
        return ChannelMap(
            source=np.tile(self.source, positions) + offsets * self.parent_units,
            share=np.tile(self.share, positions),
            parent_units=self.parent_units * positions,
        )

    def for_inputs(
        self, parent_inputs: int, child_inputs: int, *, dense: bool
    ) -> ChannelMap | None:
        """The map a consumer's input axis needs: as is, or repeated per position after a
        Flatten (Dense only, channels-last only); None when the sizes do not fit."""
        positions, rest = divmod(child_inputs, self.child_units)
        if rest or positions == 0 or parent_inputs != positions * self.parent_units:
            return None
        if positions == 1:
            return self
        return self.repeated(positions) if dense and self.channels_last else None


def widen(
    parent_units: int, child_units: int, rng: np.random.Generator, *, channels_last: bool = True
) -> ChannelMap:
    """Net2WiderNet's random mapping: the first units stay, each new one copies a random old one.

    The split is uneven on purpose: equal halves would give the copies identical gradients
    forever (they would stay copies); random positive shares keep the function and let them part.
    """
    if not 0 < parent_units <= child_units:
        raise ValueError(f"cannot widen {parent_units} units to {child_units}")
    extra = rng.integers(0, parent_units, size=child_units - parent_units)
    source = np.concatenate([np.arange(parent_units), extra])
    share = np.ones(child_units)
    for unit in np.unique(extra):
        copies = np.flatnonzero(source == unit)
        raw = rng.uniform(*SHARE_RANGE, size=len(copies))
        share[copies] = raw / raw.sum()
    return ChannelMap(source, share, parent_units, channels_last)


def widen_outputs(
    kernel: np.ndarray, bias: np.ndarray | None, mapping: ChannelMap
) -> tuple[np.ndarray, np.ndarray | None]:
    """A layer's new output units: copies of the incoming weights and bias of their sources."""
    return kernel[..., mapping.source], None if bias is None else bias[mapping.source]


def split_inputs(kernel: np.ndarray, mapping: ChannelMap) -> np.ndarray:
    """A consumer's input weights per child unit: its source's weights times the copy's share."""
    return kernel[..., mapping.source, :] * mapping.share[:, None]


def map_channels(vectors: list[np.ndarray], mapping: ChannelMap) -> list[np.ndarray]:
    """Per-channel parameters (BatchNormalization's gamma, beta, moving mean and variance)."""
    return [vector[mapping.source] for vector in vectors]


def can_centre(parent_spatial: tuple[int, ...], child_spatial: tuple[int, ...]) -> bool:
    """A kernel fits centred in another when it grows on every axis by an even amount."""
    return len(parent_spatial) == len(child_spatial) and all(
        c >= p and (c - p) % 2 == 0 for p, c in zip(parent_spatial, child_spatial, strict=True)
    )


def centre_kernel(kernel: np.ndarray, child_spatial: tuple[int, ...]) -> np.ndarray:
    """The kernel in the middle of a larger zero kernel: the same taps around the same centre."""
    spatial = kernel.shape[:-2]
    larger = np.zeros((*child_spatial, *kernel.shape[-2:]), dtype=kernel.dtype)
    window = tuple(
        slice((c - p) // 2, (c - p) // 2 + p) for p, c in zip(spatial, child_spatial, strict=True)
    )
    larger[window] = kernel
    return larger


def identity_kernel(shape: tuple[int, ...]) -> np.ndarray:
    """A kernel that passes channel c through unchanged (a centred 1 at [centre..., c, c])."""
    kernel = np.zeros(shape)
    centre = tuple(size // 2 for size in shape[:-2])
    for channel in range(min(shape[-2], shape[-1])):
        kernel[(*centre, channel, channel)] = 1.0
    return kernel


# What a Keras layer allows of the above. Kinds are class names of layers from Keras itself; a
# user's custom layer gets a "custom:" kind, so none of these sets matches it.
KERNEL_LAYERS = frozenset({"Conv1D", "Conv2D", "Conv3D", "Dense"})
INFERENCE_IDENTITY = frozenset(
    {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise"}
    | {"GaussianDropout", "AlphaDropout", "ActivityRegularization"}
)
# Layers that keep the channel axis and treat every channel alike: a pending map passes them.
SHAPING = (
    INFERENCE_IDENTITY
    | {
        f"{kind}{rank}D"
        for kind in ("MaxPooling", "AveragePooling", "GlobalMaxPooling", "GlobalAveragePooling")
        + ("ZeroPadding", "Cropping", "UpSampling")
        for rank in (1, 2, 3)
    }
    | {"Flatten"}
)
ACTIVATION_LAYERS = frozenset({"Activation", "ReLU", "LeakyReLU", "ELU"})
NOT_ELEMENTWISE = frozenset({"softmax", "log_softmax", "glu", "sparsemax"})
NON_NEGATIVE = frozenset({"relu", "relu6", "softmax", "sigmoid", "hard_sigmoid", "softplus"})
# Settings that a rule changes on purpose or that do not change what a trained layer computes.
SIZE_KEYS = frozenset({"name", "trainable", "filters", "units", "kernel_size", "seed", "rate"})
# Where a wrapper's config holds the config of the layers it wraps.
WRAPPED_KEYS = frozenset({"layer", "backward_layer"})


def unmappable(parent: Any, child: Any) -> str | None:
    """Why two models' layers cannot be mapped at all, or None.

    Only Sequential and functional models list their layers in the order data flows through them,
    and weights learnt on one input shape do not transfer to another.
    """
    import keras
    from keras.src.models.functional import Functional

    shapes = []
    for role, model in (("parent", parent), ("child", child)):
        if not isinstance(model, keras.Sequential | Functional):
            return f"the {role} is a subclassed model ({type(model).__name__}): no layer order"
        try:
            shapes.append([tuple(tensor.shape[1:]) for tensor in model.inputs])
        except (AttributeError, ValueError):
            return f"the {role} is not built: it has no input shape yet"
    if shapes[0] != shapes[1]:
        before, after = (", ".join(str(shape) for shape in side) for side in shapes)
        return f"the input shape changed {before} -> {after}"
    return None


def kind_of(layer: Any) -> str:
    name = type(layer).__name__
    return name if is_keras_layer(layer) else f"custom:{name}"


def is_keras_layer(layer: Any) -> bool:
    return type(layer).__module__.startswith(("keras.layers", "keras.src.layers"))


def activation_name(layer: Any) -> str | None:
    """The name of a layer's activation function ("relu", "linear"); None if unknown or absent."""
    return getattr(getattr(layer, "activation", None), "__name__", None)


def keeps_channels(layer: Any) -> bool:
    kind = kind_of(layer)
    if kind in ACTIVATION_LAYERS:
        return kind != "Activation" or activation_name(layer) not in NOT_ELEMENTWISE | {None}
    return kind in SHAPING


def non_negative_after(layer: Any, before: bool) -> bool:
    """Whether `layer`'s output cannot be negative, given whether its input could not be."""
    kind = kind_of(layer)
    if kind == "ReLU":
        return layer.negative_slope == 0 and layer.threshold >= 0
    if kind in KERNEL_LAYERS or kind == "Activation":
        return activation_name(layer) in NON_NEGATIVE
    return kind == "Softmax" or (before and kind in SHAPING)


@dataclass(frozen=True)
class LayerFacts:
    """What the alignment and the mapping read of a layer, read once."""

    layer: Any
    name: str
    kind: str
    shapes: tuple[tuple[int, ...], ...]
    essence: dict[str, Any] | None  # its settings but SIZE_KEYS; None when it has no config

    @classmethod
    def of(cls, layer: Any) -> LayerFacts:
        try:
            config = layer.get_config()
        except (NotImplementedError, TypeError):  # a custom layer without get_config
            config = None
        essence = None if config is None else _essence(config)
        shapes = tuple(tuple(int(size) for size in weight.shape) for weight in layer.weights)
        return cls(layer, layer.name, kind_of(layer), shapes, essence)


def _essence(config: dict[str, Any]) -> dict[str, Any]:
    """A layer's settings but SIZE_KEYS and its weights' initialisers and the like; a wrapper's
    layers (`Bidirectional(LSTM(8))`) by their own essence, without the shape they were built on."""
    essence = {}
    for key, value in config.items():
        if key in SIZE_KEYS or key.endswith(("_initializer", "_regularizer", "_constraint")):
            continue
        if key in WRAPPED_KEYS and isinstance(value, dict) and isinstance(value.get("config"), dict):
            value = {"class_name": value.get("class_name"), "config": _essence(value["config"])}
        essence[key] = value
    return essence


def align(parent: list[LayerFacts], child: list[LayerFacts]) -> list[tuple[Any, Any]]:
    """(parent, child) pairs in order; None on the side where a layer has no counterpart.

    The longest common subsequence of layer classes, ties broken by equal weight shapes, then
    equal settings, then equal names: an inserted Dense(64, relu) before a Dense(10, softmax)
    output pairs the outputs, not the new layer with the old output.
    """

    def affinity(old: LayerFacts, new: LayerFacts) -> int:
        return (
            10**9
            + 10**6 * (old.shapes == new.shapes)
            + 10**3 * (old.essence == new.essence)
            + (old.name == new.name)
        )

    def pairs(i: int, j: int) -> bool:
        return type(parent[i].layer) is type(child[j].layer)

    rows, cols = len(parent), len(child)
    best = [[0] * (cols + 1) for _ in range(rows + 1)]  # best[i][j]: of parent[i:], child[j:]
    for i in reversed(range(rows)):
        for j in reversed(range(cols)):
            score = max(best[i + 1][j], best[i][j + 1])
            if pairs(i, j):
                score = max(score, best[i + 1][j + 1] + affinity(parent[i], child[j]))
            best[i][j] = score
    aligned: list[tuple[Any, Any]] = []
    i = j = 0
    while i < rows and j < cols:
        if pairs(i, j) and best[i][j] == best[i + 1][j + 1] + affinity(parent[i], child[j]):
            aligned.append((parent[i], child[j]))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            aligned.append((parent[i], None))
            i += 1
        else:
            aligned.append((None, child[j]))
            j += 1
    return aligned + [(old, None) for old in parent[i:]] + [(None, new) for new in child[j:]]


def identity_weights(new: LayerFacts, non_negative: bool) -> list[np.ndarray] | None:
    """An inserted Conv or Dense that passes its input through, when one exists; else None."""
    layer, kernel = new.layer, new.shapes[0] if new.shapes else ()
    activation = activation_name(layer)
    if new.kind not in KERNEL_LAYERS or len(new.shapes) > 2:
        return None
    if not (activation == "linear" or (activation == "relu" and non_negative)):
        return None
    if new.kind == "Dense":
        fits = kernel[0] == kernel[1]
    else:
        fits = (
            all(size % 2 == 1 for size in kernel[:-2])
            and layer.padding == "same"
            and all(step == 1 for step in layer.strides)
            and all(rate == 1 for rate in layer.dilation_rate)
            and layer.groups == 1
        )
    if not fits:
        return None
    return [identity_kernel(kernel), *(np.zeros(shape) for shape in new.shapes[1:])]
