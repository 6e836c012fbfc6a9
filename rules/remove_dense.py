"""remove_dense: take a hidden Dense layer out (slim's "a layer less"; add_dense reversed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mutator.engine.candidate import Candidate, Proposal, Skip
from mutator.engine.model_view import Layer, ModelView
from mutator.engine.removal import CannotRemove, input_spec_lost, remove_layer
from mutator.engine.shapes import LAST, size_conflict, width_reaches_output
from rules._rule import Example, Road, WarmMapping
from rules._style import in_model

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Dense, Flatten\n"
_KERAS = "import keras\nfrom keras import layers\n"
_TF = "import tensorflow as tf\n"


@dataclass(frozen=True)
class RemoveDense:
    """Remove one hidden Dense layer: one candidate per hidden Dense, the last one first.

    Why: a model that reaches its target may not need every layer it has; a Dense layer less is
    the largest cut there is on an MLP head. The last hidden layer comes first because it is
    the one `add_dense` adds (just before the output layer): a model a climb grew loses its
    newest layer first. Safety: never the output layer (the model's last Dense, or any output of
    a functional model); never a layer whose removal needs other code changed, which is skipped
    with the reason: a Sequential layer that carries the model's input shape (`input_dim=`,
    `input_shape=`) with no Input layer before it; a functional layer whose output has another
    name than its input (`h = Dense(64)(x)`: its uses would need rewiring); a layer whose width
    is tied to another (it feeds an `add` of two branches, a written-out Reshape, the model's
    output); a subclassed model's layer that `call()` does not apply as `x = self.layer(x)`; a
    layer made in a loop. At least `keep_hidden` hidden Dense layers stay.
    """

    keep_hidden: int = 0

    name: ClassVar[str] = "remove_dense"
    road: ClassVar[Road] = "smaller"
    step_setting: ClassVar[str | None] = None
    warm: ClassVar[WarmMapping] = "cold"
    cold_why: ClassVar[str] = (
        "a layer less: no weights map onto the smaller model soundly, and slim judges every "
        "smaller model from scratch anyway"
    )
    description: ClassVar[str] = "remove a hidden Dense layer (never the output layer)"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS + "model = Sequential()\nmodel.add(Flatten(input_shape=(8, 8)))\n"
            "model.add(Dense(64, activation='relu'))  # hidden\n"
            "model.add(Dense(10, activation='softmax'))\n",
            _IMPORTS + "model = Sequential()\nmodel.add(Flatten(input_shape=(8, 8)))\n"
            "model.add(Dense(10, activation='softmax'))\n",
        ),
        Example(
            _KERAS + "model = keras.Sequential([\n    keras.Input(shape=(64,)),\n"
            '    layers.Dense(32, activation="relu"),\n'
            '    layers.Dense(10, activation="softmax"),\n])\n',
            _KERAS + "model = keras.Sequential([\n    keras.Input(shape=(64,)),\n"
            '    layers.Dense(10, activation="softmax"),\n])\n',
        ),
        Example(  # functional: `x = Dense(...)(inputs)` renames, only `x = Dense(...)(x)` goes
            _KERAS + "inputs = keras.Input(shape=(64,))\n"
            'x = layers.Dense(32, activation="relu")(inputs)\n'
            'x = layers.Dense(16, activation="relu")(x)\n'
            "model = keras.Model(inputs, layers.Dense(10)(x))\n",
            _KERAS + "inputs = keras.Input(shape=(64,))\n"
            'x = layers.Dense(32, activation="relu")(inputs)\n'
            "model = keras.Model(inputs, layers.Dense(10)(x))\n",
        ),
        Example(
            _TF + "model = tf.keras.Sequential()\n"
            "model.add(tf.keras.layers.Dense(32, activation='relu', input_dim=64))\n"
            "model.add(tf.keras.layers.Dense(16, activation='relu'))\n"
            "model.add(tf.keras.layers.Dense(10))\n",
            _TF + "model = tf.keras.Sequential()\n"
            "model.add(tf.keras.layers.Dense(32, activation='relu', input_dim=64))\n"
            "model.add(tf.keras.layers.Dense(10))\n",
        ),
        Example(  # subclassed: the attribute goes from __init__, its application from call()
            _KERAS + "class Net(keras.Model):\n    def __init__(self):\n"
            "        super().__init__()\n        self.flat = layers.Flatten()\n"
            "        self.hidden = layers.Dense(32)\n        self.out = layers.Dense(10)\n\n"
            "    def call(self, inputs):\n        x = self.flat(inputs)\n"
            "        x = self.hidden(x)\n        return self.out(x)\n\n\nmodel = Net()\n",
            _KERAS + "class Net(keras.Model):\n    def __init__(self):\n"
            "        super().__init__()\n        self.flat = layers.Flatten()\n"
            "        self.out = layers.Dense(10)\n\n"
            "    def call(self, inputs):\n        x = self.flat(inputs)\n"
            "        return self.out(x)\n\n\nmodel = Net()\n",
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        # the only Dense is the output layer
        _IMPORTS + "model = Sequential()\nmodel.add(Flatten(input_shape=(8, 8)))\n"
        "model.add(Dense(10, activation='softmax'))\n",
        # the hidden layer carries the input shape
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(32, input_dim=64))\n"
        "model.add(Dense(10))\n",
        # its width meets another branch's in an add
        _KERAS + "inputs = keras.Input(shape=(64,))\nx = layers.Dense(8)(inputs)\n"
        "y = layers.Dense(8)(inputs)\nx = layers.Dense(8)(x)\nx = layers.add([x, y])\n"
        "model = keras.Model(inputs, layers.Dense(10)(x))\n",
        # a subclassed call() that is not a chain of `x = self.layer(x)`
        _KERAS + "class Net(keras.Model):\n    def __init__(self):\n"
        "        super().__init__()\n        self.hidden = layers.Dense(32)\n"
        "        self.out = layers.Dense(10)\n\n"
        "    def call(self, inputs):\n        return self.out(self.hidden(inputs))\n\n\n"
        "model = Net()\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        # The last is the output layer; a functional model may have more outputs.
        hidden = [layer for layer in view.layers_of({"Dense"})[:-1] if not view.is_output(layer)]
        if not hidden:
            return []
        if len(hidden) <= self.keep_hidden:
            reason = f"only {len(hidden)} hidden Dense layer(s), keep_hidden={self.keep_hidden}"
            return [Skip(self.name, hidden[-1].index, reason)]
        return [self._remove(view, layer) for layer in reversed(hidden)]

    def _remove(self, view: ModelView, layer: Layer) -> Proposal:
        why = input_spec_lost(view, layer)
        if why is None:
            tied = size_conflict(view, layer, frozenset({LAST}))
            tied = tied or width_reaches_output(view, layer)
            why = f"its width must stay: {tied}" if tied is not None else None
        if why is not None:
            return Skip(self.name, layer.index, why)
        try:
            edits = remove_layer(view, layer)
        except CannotRemove as exc:
            return Skip(self.name, layer.index, str(exc))
        units = layer.int_arg(0, "units", "output_dim")
        arg = layer.arg(0, "units", "output_dim")
        written = view.code(arg.value) if arg is not None else ""
        kind = layer.written_as.rpartition(".")[2]
        return Candidate(
            self.name,
            layer.index,
            {"layer": layer.index, "units": units},
            f"layer {layer.index} ({kind}({written}){in_model(layer)}): removed",
            edits,
        )
