"""fewer_units: give a hidden Dense layer or a recurrent layer (LSTM, GRU, SimpleRNN, also inside
`Bidirectional(...)`) fewer units: wider_dense and wider_recurrent in reverse, for `mutate slim`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mutator.engine.callargs import integer
from mutator.engine.candidate import Candidate, Proposal, Replace, Skip
from mutator.engine.keras_names import WRAPPER_KINDS
from mutator.engine.layer_args import written_int
from mutator.engine.model_view import Layer, ModelView
from mutator.engine.shapes import LAST, size_conflict, width_reaches_output
from rules._rule import Example, Road, WarmMapping
from rules._shrink import widest_first
from rules._style import in_model
from rules.wider_recurrent import _recurrent  # the recurrent layer a site is sized by

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import LSTM, Dense, Reshape\n"
_KERAS = "import keras\nfrom keras import layers\n"


@dataclass(frozen=True)
class FewerUnits:
    """Divide the units of a hidden Dense layer or of a recurrent layer by `factor`, down to
    `min_units`.

    Why: a model that reaches its target may do so with far fewer units than it has (an MLP's
    `Dense(256)` where 64 do as well), and a narrower layer is cheaper to train, to store and to
    run; halving is the step back of wider_dense's and wider_recurrent's doubling. The widest
    layer comes first: it holds the most weights and usually the most to spare. Safety: never
    the output layer (the model's last Dense, or any layer whose width reaches the model's
    output unchanged: its units are the classes or targets), nor a width a Reshape or an `Add`
    needs as it is; the unit count (`units=`, positional, Keras 1's `output_dim=`) is changed
    where it is written, in the call or at the one name only it reads
    (`mutator.engine.layer_args`), inside `Bidirectional(...)` too (both directions shrink
    together), but not a Bidirectional given its own `backward_layer`; `Dense(n_hidden)` is
    skipped when `n_hidden` is unknown or sizes other things too.
    """

    factor: int = 2
    min_units: int = 2

    name: ClassVar[str] = "fewer_units"
    road: ClassVar[Road] = "smaller"
    step_setting: ClassVar[str | None] = "factor"
    narrows: ClassVar[bool] = True  # a layer narrower: slim narrows every layer at once too
    warm: ClassVar[WarmMapping] = "cold"
    cold_why: ClassVar[str] = (
        "a narrower layer: slim judges every smaller model trained from scratch"
    )
    description: ClassVar[str] = (
        "divide a hidden Dense or an LSTM/GRU/SimpleRNN layer's units, widest first (/2, down to 2)"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS + "model = Sequential()\n"
            "model.add(Dense(64, activation='relu', input_dim=64))  # hidden\n"
            "model.add(Dense(10, activation='softmax'))\n",
            _IMPORTS + "model = Sequential()\n"
            "model.add(Dense(32, activation='relu', input_dim=64))  # hidden\n"
            "model.add(Dense(10, activation='softmax'))\n",
        ),
        Example(  # the first candidate is the widest layer: the LSTM's 32 units
            _IMPORTS + "model = Sequential()\n"
            "model.add(LSTM(units=32, input_shape=(8, 8)))  # memory\n"
            "model.add(Dense(16, activation='relu'))\nmodel.add(Dense(10))\n",
            _IMPORTS + "model = Sequential()\n"
            "model.add(LSTM(units=16, input_shape=(8, 8)))  # memory\n"
            "model.add(Dense(16, activation='relu'))\nmodel.add(Dense(10))\n",
        ),
        Example(
            _KERAS + "model = keras.Sequential([\n    keras.Input(shape=(8, 8)),\n"
            "    layers.Bidirectional(layers.GRU(units=8, return_sequences=True)),\n"
            "    layers.Bidirectional(layers.GRU(8)),\n    layers.Dense(10),\n])\n",
            _KERAS + "model = keras.Sequential([\n    keras.Input(shape=(8, 8)),\n"
            "    layers.Bidirectional(layers.GRU(units=8, return_sequences=True)),\n"
            "    layers.Bidirectional(layers.GRU(4)),\n    layers.Dense(10),\n])\n",
            site=2,
        ),
        Example(  # Keras 1
            _IMPORTS + "model = Sequential()\nmodel.add(Dense(output_dim=32, input_dim=8))\n"
            "model.add(Dense(output_dim=1))\n",
            _IMPORTS + "model = Sequential()\nmodel.add(Dense(output_dim=16, input_dim=8))\n"
            "model.add(Dense(output_dim=1))\n",
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        # the only Dense is the output layer
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(n_hidden, input_dim=64))\n"
        "model.add(Dense(10))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(2, input_dim=64))\n"
        "model.add(Dense(10))\n",
        # the LSTM's units are the model's outputs
        _IMPORTS + "model = Sequential()\nmodel.add(LSTM(4, input_shape=(8, 8)))\n",
        # the Reshape needs the Dense's 64 units as they are
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(64, input_dim=8))\n"
        "model.add(Reshape((8, 8)))\nmodel.add(LSTM(2))\nmodel.add(Dense(1))\n",
        _KERAS + "model = keras.Sequential([\n"
        "    layers.Bidirectional(layers.LSTM(8), backward_layer=layers.LSTM(8, go_backwards=True)),\n"
        "    layers.Dense(10),\n])\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        # The last Dense is the output layer (as for wider_dense): not a site at all.
        dense = view.layers_of({"Dense"})
        output = dense[-1] if dense else None
        proposals: list[Proposal] = []
        for layer in view.layers:
            if layer.kind == "Dense" and layer is not output:
                proposals.append(self._narrow(view, layer, layer))
                continue
            cell = _recurrent(layer)
            if cell is not None:
                proposals.append(self._narrow(view, layer, cell))
            elif layer.kind in WRAPPER_KINDS and layer.wrapped is None and layer.call is not None:
                reason = f"{layer.written_as} wraps no layer call we can read"
                proposals.append(Skip(self.name, layer.index, reason))
        return widest_first(proposals, "units")

    def _narrow(self, view: ModelView, layer: Layer, cell: Layer) -> Proposal:
        """`cell`'s units halved; `cell` is `layer`, or the recurrent layer a Bidirectional wraps."""
        if cell is not layer and layer.arg(None, "backward_layer") is not None:
            reason = "the Bidirectional has its own backward_layer: both would have to shrink"
            return Skip(self.name, layer.index, reason)
        arg = cell.arg(0, "units", "output_dim")
        if arg is None:
            return Skip(self.name, layer.index, "units not given")
        number = written_int(view, cell, arg, "units")
        if isinstance(number, str):
            return Skip(self.name, layer.index, number)
        value = number.value
        new = max(int(value // self.factor), self.min_units)
        if new >= value:
            reason = f"{value} units is not above the floor ({self.min_units})"
            return Skip(self.name, layer.index, reason)
        conflict = size_conflict(view, layer, frozenset({LAST})) or width_reaches_output(
            view, layer
        )
        if conflict is not None:
            return Skip(self.name, layer.index, f"its units must stay: {conflict}")
        written = layer.written_as if cell is layer else f"{layer.written_as}({cell.written_as})"
        return Candidate(
            self.name,
            layer.index,
            {"units": [value, new]},
            f"layer {layer.index} ({written}{in_model(layer)}): units {value} -> {new}{number.where}",
            (Replace(number.node, integer(new)),),
        )
