"""wider_recurrent: give a recurrent layer (LSTM, GRU, SimpleRNN) more units, also when it is
wrapped in `Bidirectional(...)`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mutator.engine.callargs import integer
from mutator.engine.candidate import Candidate, Proposal, Replace, Skip
from mutator.engine.keras_names import CONV_KINDS, RECURRENT_KINDS, WRAPPER_KINDS
from mutator.engine.layer_args import written_int
from mutator.engine.model_view import Layer, ModelView
from mutator.engine.shapes import LAST, size_conflict, width_reaches_output
from rules._rule import Example, Road, WarmMapping
from rules._style import in_model

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import LSTM, Dense\n"
_KERAS = "import keras\nfrom keras import layers\n"
# Layers whose weights read every unit of the layer before them: a recurrent layer followed by
# one of these is hidden, so its width is free to change.
_READERS = frozenset({"Dense"}) | CONV_KINDS | RECURRENT_KINDS | WRAPPER_KINDS


@dataclass(frozen=True)
class WiderRecurrent:
    """Multiply a recurrent layer's units by `factor`, up to `max_units`.

    Why: the units are a recurrent layer's memory, and one too small for the sequence cannot
    hold what the task needs: a small LSTM classifier stalls well below what the same model with
    more units reaches (issue 26: 0.73 against 0.95). Doubling is the usual step. Safety: the unit
    count (`units=`, Keras 1's `output_dim=`) is changed where it is written, in the call or at
    the one name only it reads (`mutator.engine.layer_args`), inside
    `Bidirectional(...)` too (both directions grow together); never a layer that no later layer
    reads (its units are then the model's outputs), nor a Bidirectional given its own
    `backward_layer`.
    """

    factor: int = 2
    max_units: int = 512

    name: ClassVar[str] = "wider_recurrent"
    road: ClassVar[Road] = "capacity"
    step_setting: ClassVar[str | None] = "factor"
    widens: ClassVar[bool] = True  # a layer wider: the search widens every layer at once too
    warm: ClassVar[WarmMapping] = "transfer"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = (
        "multiply an LSTM/GRU/SimpleRNN layer's units, also in Bidirectional (x2, up to 512)"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS + "model = Sequential()\n"
            "model.add(LSTM(32, input_shape=(8, 8)))  # memory\n"
            "model.add(Dense(10, activation='softmax'))\n",
            _IMPORTS + "model = Sequential()\n"
            "model.add(LSTM(64, input_shape=(8, 8)))  # memory\n"
            "model.add(Dense(10, activation='softmax'))\n",
        ),
        Example(
            _KERAS + "model = keras.Sequential([\n    keras.Input(shape=(8, 8)),\n"
            "    layers.Bidirectional(layers.GRU(units=8, return_sequences=True)),\n"
            "    layers.Bidirectional(layers.GRU(units=8)),\n    layers.Dense(10),\n])\n",
            _KERAS + "model = keras.Sequential([\n    keras.Input(shape=(8, 8)),\n"
            "    layers.Bidirectional(layers.GRU(units=8, return_sequences=True)),\n"
            "    layers.Bidirectional(layers.GRU(units=16)),\n    layers.Dense(10),\n])\n",
            site=2,
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        # the LSTM is the model's output
        _IMPORTS + "model = Sequential()\nmodel.add(LSTM(4, input_shape=(8, 8)))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(LSTM(n_units, input_shape=(8, 8)))\n"
        "model.add(Dense(10))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(LSTM(512, input_shape=(8, 8)))\n"
        "model.add(Dense(10))\n",
        _KERAS + "model = keras.Sequential([\n"
        "    layers.Bidirectional(layers.LSTM(8), backward_layer=layers.LSTM(8, go_backwards=True)),\n"
        "    layers.Dense(10),\n])\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        proposals: list[Proposal] = []
        for layer in view.layers:
            cell = _recurrent(layer)
            if cell is not None:
                proposals.append(self._widen(view, layer, cell))
            elif layer.kind in WRAPPER_KINDS and layer.wrapped is None and layer.call is not None:
                reason = f"{layer.written_as} wraps no layer call we can read"
                proposals.append(Skip(self.name, layer.index, reason))
        return proposals

    def _widen(self, view: ModelView, layer: Layer, cell: Layer) -> Proposal:
        if not any(later.kind in _READERS for later in view.downstream(layer)):
            reason = (
                f"layer {layer.index}'s units are the model's outputs: no later layer reads them"
            )
            return Skip(self.name, layer.index, reason)
        if cell is not layer and layer.arg(None, "backward_layer") is not None:
            reason = "the Bidirectional has its own backward_layer: both would have to grow"
            return Skip(self.name, layer.index, reason)
        arg = cell.arg(0, "units", "output_dim")
        if arg is None:
            return Skip(self.name, layer.index, "units not given")
        number = written_int(view, cell, arg, "units")
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
        written = layer.written_as if cell is layer else f"{layer.written_as}({cell.written_as})"
        return Candidate(
            self.name,
            layer.index,
            {"units": [value, new]},
            f"layer {layer.index} ({written}{in_model(layer)}): units {value} -> {new}{number.where}",
            (Replace(number.node, integer(new)),),
        )


def _recurrent(layer: Layer) -> Layer | None:
    """The recurrent layer whose units `layer` is sized by: itself, or the one it wraps."""
    if layer.kind in RECURRENT_KINDS:
        return layer
    if layer.kind == "Bidirectional" and layer.wrapped is not None:
        return layer.wrapped if layer.wrapped.kind in RECURRENT_KINDS else None
    return None
