"""add_dropout: a Dropout after the last hidden Dense layer or Conv block, the over-fitting cure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import libcst as cst

from mutator.engine.candidate import Candidate, Edit, Proposal, Replace, Skip
from mutator.engine.insertion import CannotInsert, import_edit, insert_layers_after
from mutator.engine.keras_names import CONV_KINDS, POOL_KINDS, SHAPE_PRESERVING_KINDS
from mutator.engine.model_view import Layer, ModelView
from rules._rule import Example, Road, WarmMapping
from rules._style import in_model, sibling_callee

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Dense, Flatten\n"
_CONV = "from keras.models import Sequential\nfrom keras.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D\n"
_KERAS = "import keras\nfrom keras import layers\n"
DROPOUTS = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"})


@dataclass(frozen=True)
class AddDropout:
    """Insert Dropout(`first_rate`) after the last hidden Dense layer (else the last Conv block),
    or raise the rate of the Dropout already there to `second_rate`.

    Why: a model that fits its training data far better than its validation data memorises;
    dropping units during training is the usual first remedy, and the cheapest: no new weights.
    Safety: only a literal rate is raised; never before the first layer, never after the output.
    """

    first_rate: float = 0.25
    second_rate: float = 0.5

    name: ClassVar[str] = "add_dropout"
    road: ClassVar[Road] = "regularisation"
    step_setting: ClassVar[str | None] = None
    warm: ClassVar[WarmMapping] = "transfer"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = "add a Dropout after the last hidden layer (0.25, then 0.5)"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS + "model = Sequential()\nmodel.add(Dense(64, activation='relu', input_dim=64))\n"
            "model.add(Dense(10, activation='softmax'))\n",
            "from keras.models import Sequential\nfrom keras.layers import Dense, Flatten, Dropout\n"
            "model = Sequential()\nmodel.add(Dense(64, activation='relu', input_dim=64))\n"
            "model.add(Dropout(0.25))\n"
            "model.add(Dense(10, activation='softmax'))\n",
        ),
        Example(
            _CONV + "model = Sequential()\nmodel.add(Conv2D(8, 3, input_shape=(8, 8, 1)))\n"
            "model.add(MaxPooling2D(2))\nmodel.add(Dropout(0.25))\nmodel.add(Flatten())\n"
            "model.add(Dense(10))\n",
            _CONV + "model = Sequential()\nmodel.add(Conv2D(8, 3, input_shape=(8, 8, 1)))\n"
            "model.add(MaxPooling2D(2))\nmodel.add(Dropout(0.5))\nmodel.add(Flatten())\n"
            "model.add(Dense(10))\n",
        ),
        Example(
            _KERAS + "model = keras.Sequential([\n    keras.Input(shape=(64,)),\n"
            "    layers.Dense(32, activation='relu'),\n    layers.Dense(10),\n])\n",
            _KERAS + "model = keras.Sequential([\n    keras.Input(shape=(64,)),\n"
            "    layers.Dense(32, activation='relu'),\n    layers.Dropout(0.25),\n"
            "    layers.Dense(10),\n])\n",
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        # nothing hidden to regularise: the output layer is the only one
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\n",
        # already at the second rate
        _CONV + "model = Sequential()\nmodel.add(Dense(32, input_dim=64))\n"
        "model.add(Dropout(0.5))\nmodel.add(Dense(10))\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        anchor = self._anchor(view)
        if anchor is None:
            return []
        following = view.next_layer(anchor)
        if following is not None and following.kind in DROPOUTS:
            return [self._raise(view, following)]
        try:
            return [self._insert(view, anchor)]
        except CannotInsert as exc:
            return [Skip(self.name, anchor.index, str(exc))]

    def _anchor(self, view: ModelView) -> Layer | None:
        """The last hidden Dense layer, else the end of the last Conv block (before its Dropout)."""
        dense = [layer for layer in view.layers_of({"Dense"}) if layer.call is not None]
        hidden = [layer for layer in dense[:-1] if not view.is_output(layer)]
        if hidden:
            return hidden[-1]
        convs = view.layers_of(CONV_KINDS)
        if not convs:
            return None
        end = convs[-1]
        while (following := view.next_layer(end)) is not None and (
            following.kind in (POOL_KINDS | SHAPE_PRESERVING_KINDS) - DROPOUTS
        ):
            end = following
        if view.is_output(end) or not view.readers(end):
            return None  # the conv block is the model's output: nothing to drop after it
        return end

    def _raise(self, view: ModelView, dropout: Layer) -> Proposal:
        rate_arg = dropout.arg(0, "rate", "p")
        rate = _literal_float(rate_arg.value) if rate_arg is not None else None
        if rate is None:
            return Skip(self.name, dropout.index, "the Dropout's rate is not a literal")
        if rate >= self.second_rate:
            return Skip(self.name, dropout.index, f"Dropout rate {rate:g} is already at its cap")
        assert rate_arg is not None
        return Candidate(
            self.name,
            dropout.index,
            {"rate": [rate, self.second_rate]},
            f"layer {dropout.index} ({dropout.written_as}{in_model(dropout)}): rate {rate:g} -> {self.second_rate:g}",
            (Replace(rate_arg.value, cst.Float(repr(self.second_rate))),),
        )

    def _insert(self, view: ModelView, anchor: Layer) -> Candidate:
        like = anchor if anchor.call is not None else view.layers[0]
        call = cst.parse_expression(f"{sibling_callee(like, 'Dropout')}({self.first_rate!r})")
        assert isinstance(call, cst.Call)
        edits: tuple[Edit, ...] = ()
        if "." not in like.style_callee and not view.star_import:
            edits = import_edit(view, like.style_callee, "Dropout")
        edits += insert_layers_after(view, anchor, [call])
        return Candidate(
            self.name,
            anchor.index,
            {"after": anchor.index, "rate": [0, self.first_rate]},
            f"after layer {anchor.index}{in_model(anchor)}: new Dropout({self.first_rate:g})",
            edits,
        )


def _literal_float(node: cst.BaseExpression) -> float | None:
    if isinstance(node, cst.Float | cst.Integer):
        return float(node.value)
    return None
