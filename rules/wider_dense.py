"""wider_dense: give a hidden Dense layer more units (seed 002's "grow the FC layer")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mutator.engine.callargs import integer
from mutator.engine.candidate import Candidate, Proposal, Replace, Skip
from mutator.engine.layer_args import written_int
from mutator.engine.model_view import Layer, ModelView
from mutator.engine.shapes import LAST, size_conflict, width_reaches_output
from rules._rule import Example, Road, WarmMapping
from rules._style import in_model

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Dense, Flatten\n"
_KERAS = "import keras\nfrom keras import layers\n"


@dataclass(frozen=True)
class WiderDense:
    """Multiply a hidden Dense layer's units by `factor`, up to `max_units`.

    Why: a hidden layer too narrow for the task is a bottleneck every feature must squeeze
    through (a regression MLP with `Dense(4)`); doubling is the usual step, and the one seed 002's
    tweaker took. Safety: never the output layer (the model's last Dense: its units are the number
    of outputs); the unit count (`units=`, or Keras 1's `output_dim=`) is changed where it is
    written, in the call or followed to a constant, a variable, a parameter's default or an
    option's default (`mutator.engine.layer_args`), and only when no other argument or setting
    reads that name (`Dense(HIDDEN)` twice is skipped); `Dense(n_hidden)` with `n_hidden`
    unknown is skipped.
    """

    factor: int = 2
    max_units: int = 1024

    name: ClassVar[str] = "wider_dense"
    road: ClassVar[Road] = "capacity"
    step_setting: ClassVar[str | None] = "factor"
    widens: ClassVar[bool] = True  # a layer wider: the search widens every layer at once too
    warm: ClassVar[WarmMapping] = "transfer"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = "multiply a hidden Dense layer's units (x2, up to 1024)"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS + "model = Sequential()\n"
            "model.add(Dense(64, activation='relu', input_dim=64))  # hidden\n"
            "model.add(Dense(10, activation='softmax'))\n",
            _IMPORTS + "model = Sequential()\n"
            "model.add(Dense(128, activation='relu', input_dim=64))  # hidden\n"
            "model.add(Dense(10, activation='softmax'))\n",
        ),
        Example(
            _KERAS + "inputs = keras.Input(shape=(10,))\n"
            "x = layers.Dense(units=4, activation='relu')(inputs)\n"
            "x = layers.Dense(units=8, activation='relu')(x)\n"
            "model = keras.Model(inputs, layers.Dense(1)(x))\n",
            _KERAS + "inputs = keras.Input(shape=(10,))\n"
            "x = layers.Dense(units=4, activation='relu')(inputs)\n"
            "x = layers.Dense(units=16, activation='relu')(x)\n"
            "model = keras.Model(inputs, layers.Dense(1)(x))\n",
            site=1,
        ),
        Example(  # a builder's parameter
            _IMPORTS + "def build(hidden=32):\n    model = Sequential()\n"
            "    model.add(Dense(hidden, input_dim=8))\n    model.add(Dense(1))\n"
            "    return model\n\n\nmodel = build()\n",
            _IMPORTS + "def build(hidden=64):\n    model = Sequential()\n"
            "    model.add(Dense(hidden, input_dim=8))\n    model.add(Dense(1))\n"
            "    return model\n\n\nmodel = build()\n",
        ),
        Example(  # Keras 1
            _IMPORTS + "model = Sequential()\nmodel.add(Dense(output_dim=32, input_dim=8))\n"
            "model.add(Dense(output_dim=1))\n",
            _IMPORTS + "model = Sequential()\nmodel.add(Dense(output_dim=64, input_dim=8))\n"
            "model.add(Dense(output_dim=1))\n",
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        # the only Dense is the output layer
        _IMPORTS + "model = Sequential()\nmodel.add(Flatten(input_shape=(8, 8)))\n"
        "model.add(Dense(10, activation='softmax'))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(n_hidden, input_dim=64))\n"
        "model.add(Dense(10))\n",
        # one constant sizes two hidden layers
        "H = 16\n" + _IMPORTS + "model = Sequential()\nmodel.add(Dense(H, input_dim=64))\n"
        "model.add(Dense(H))\nmodel.add(Dense(10))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(1024, input_dim=64))\n"
        "model.add(Dense(10))\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        # The last is the output layer; a functional model may have more outputs.
        hidden = [layer for layer in view.layers_of({"Dense"})[:-1] if not view.is_output(layer)]
        return [self._widen(view, layer) for layer in hidden]

    def _widen(self, view: ModelView, layer: Layer) -> Proposal:
        arg = layer.arg(0, "units", "output_dim")
        if arg is None:
            return Skip(self.name, layer.index, "units not given")
        number = written_int(view, layer, arg, "units")
        if isinstance(number, str):
            return Skip(self.name, layer.index, number)
        value = number.value
        new = min(value * self.factor, self.max_units)
        if new <= value:
            reason = f"{value} units is not below the cap ({self.max_units})"
            return Skip(self.name, layer.index, reason)
        conflict = size_conflict(view, layer, frozenset({LAST})) or width_reaches_output(
            view, layer
        )
        if conflict is not None:
            return Skip(self.name, layer.index, f"its units must stay: {conflict}")
        return Candidate(
            self.name,
            layer.index,
            {"units": [value, new]},
            f"layer {layer.index} ({layer.written_as}{in_model(layer)}): units {value} -> {new}{number.where}",
            (Replace(number.node, integer(new)),),
        )
