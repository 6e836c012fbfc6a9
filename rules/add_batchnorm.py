"""add_batchnorm: a BatchNormalization after a Conv layer or a hidden Dense layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import libcst as cst

from mutator.engine.candidate import Candidate, Edit, Proposal, Skip
from mutator.engine.insertion import CannotInsert, import_edit, insert_layers_after
from mutator.engine.keras_names import (
    CONV_KINDS,
    FLATTENING_KINDS,
    POOL_KINDS,
    SHAPE_PRESERVING_KINDS,
)
from mutator.engine.model_view import Layer, ModelView
from rules._rule import Example, Road, WarmMapping
from rules._style import in_model, sibling_callee

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Conv2D, Dense, Flatten\n"
_KERAS = "import keras\nfrom keras import layers\n"
NORMALISATIONS = frozenset({"BatchNormalization", "LayerNormalization"})
# Layers that pass a layer's output on without weights of their own: a normalisation behind
# them already normalises that output.
_PASS_THROUGH = SHAPE_PRESERVING_KINDS | POOL_KINDS | FLATTENING_KINDS


@dataclass(frozen=True)
class AddBatchnorm:
    """Insert `BatchNormalization()` right after a Conv layer or a hidden Dense layer.

    Why: normalising a layer's outputs keeps the next layer's inputs on one scale while the
    weights move, so a model that learns slowly can take larger steps and settle sooner (Ioffe
    and Szegedy, 2015). One candidate per layer, first layer first. Safety: written like its
    neighbours (the same module or alias; added to the script's `from ... import` if needed);
    never after the output layer, never where a normalisation already follows the layer (so
    never two in a row).
    """

    name: ClassVar[str] = "add_batchnorm"
    road: ClassVar[Road] = "faster"
    step_setting: ClassVar[str | None] = None
    warm: ClassVar[WarmMapping] = "transfer"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = "add a BatchNormalization after a Conv or hidden Dense layer"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS + "model = Sequential()\n"
            "model.add(Conv2D(8, 3, activation='relu', input_shape=(8, 8, 1)))\n"
            "model.add(Flatten())\nmodel.add(Dense(10, activation='softmax'))\n",
            "from keras.models import Sequential\n"
            "from keras.layers import Conv2D, Dense, Flatten, BatchNormalization\n"
            "model = Sequential()\n"
            "model.add(Conv2D(8, 3, activation='relu', input_shape=(8, 8, 1)))\n"
            "model.add(BatchNormalization())\n"
            "model.add(Flatten())\nmodel.add(Dense(10, activation='softmax'))\n",
        ),
        Example(
            _KERAS + "inputs = keras.Input(shape=(64,))\n"
            "x = layers.Dense(32, activation='relu')(inputs)\n"
            "x = layers.Dense(32, activation='relu')(x)  # second\n"
            "model = keras.Model(inputs, layers.Dense(10)(x))\n",
            _KERAS + "inputs = keras.Input(shape=(64,))\n"
            "x = layers.Dense(32, activation='relu')(inputs)\n"
            "x = layers.Dense(32, activation='relu')(x)  # second\n"
            "x = layers.BatchNormalization()(x)\n"
            "model = keras.Model(inputs, layers.Dense(10)(x))\n",
            site=1,
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        # the only Dense is the output layer
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\n",
        # already normalised, directly or behind a pass-through layer
        "from keras.models import Sequential\n"
        "from keras.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten\n"
        "model = Sequential()\nmodel.add(Conv2D(8, 3, input_shape=(8, 8, 1)))\n"
        "model.add(BatchNormalization())\nmodel.add(Flatten())\nmodel.add(Dense(32))\n"
        "model.add(Dropout(0.25))\nmodel.add(BatchNormalization())\nmodel.add(Dense(10))\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        dense = view.layers_of({"Dense"})
        output = dense[-1].index if dense else None
        sites = [
            layer
            for layer in view.layers
            if layer.kind in CONV_KINDS or (layer.kind == "Dense" and layer.index != output)
        ]
        return [self._insert(view, layer) for layer in sites]

    def _insert(self, view: ModelView, layer: Layer) -> Proposal:
        if view.is_output(layer):
            return Skip(self.name, layer.index, f"layer {layer.index} is the model's output")
        normalised = _normalisation_after(view, layer)
        if normalised is not None:
            reason = f"a {normalised.kind} (layer {normalised.index}) already follows layer {layer.index}"
            return Skip(self.name, layer.index, reason)
        call = cst.parse_expression(f"{sibling_callee(layer, 'BatchNormalization')}()")
        assert isinstance(call, cst.Call)
        try:
            edits: tuple[Edit, ...] = ()
            if "." not in layer.style_callee and not view.star_import:
                edits = import_edit(view, layer.style_callee, "BatchNormalization")
            edits += insert_layers_after(view, layer, [call])
        except CannotInsert as exc:
            return Skip(self.name, layer.index, str(exc))
        return Candidate(
            self.name,
            layer.index,
            {"after": layer.index},
            f"after layer {layer.index} ({layer.written_as}{in_model(layer)}): new BatchNormalization()",
            edits,
        )


def _normalisation_after(view: ModelView, layer: Layer) -> Layer | None:
    """The normalisation that already acts on `layer`'s output, behind layers without weights."""
    later = view.next_layer(layer)
    while later is not None:
        if later.kind in NORMALISATIONS:
            return later
        if later.kind not in _PASS_THROUGH:
            return None
        later = view.next_layer(later)
    return None
