"""add_conv_block: another Conv + Pool block after the last one (seed 002's "add a layer")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import libcst as cst

from mutator.engine import shapes
from mutator.engine.callargs import find_arg, integer, tidy_call
from mutator.engine.candidate import Candidate, Edit, Proposal, Skip
from mutator.engine.insertion import CannotInsert, import_edit, insert_layers_after
from mutator.engine.keras_names import (
    CONV_KINDS,
    MERGE_KINDS,
    POOL_KINDS,
    SHAPE_PRESERVING_KINDS,
    spatial_rank,
)
from mutator.engine.layer_args import written_int
from mutator.engine.model_view import Layer, ModelView
from rules._rule import Example, Road, WarmMapping
from rules._style import clone, in_model, quote_of, sibling_callee, string, with_keyword

# Arguments that belong to one layer only and must not be copied into a new one.
ONE_OF_A_KIND = frozenset({"input_shape", "input_dim", "batch_input_shape", "name"})

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Conv2D, Dense, Flatten, MaxPooling2D\n"
_KERAS = "import keras\nfrom keras import layers\n"


@dataclass(frozen=True)
class AddConvBlock:
    """Clone the last Conv layer (filters x `filters_factor`) and its pooling after the last block.

    Why: depth lets a CNN combine features. Safety: the new block is written like its neighbours
    (same alias, argument habits, activation); it is not added when the feature map would drop
    below 1x1 (it tries `padding="same"` first), nor past `max_conv_layers`.
    """

    filters_factor: int = 2
    max_filters: int = 512
    max_conv_layers: int = 4

    name: ClassVar[str] = "add_conv_block"
    road: ClassVar[Road] = "capacity"
    step_setting: ClassVar[str | None] = None
    warm: ClassVar[WarmMapping] = "transfer"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = "add a Conv + Pool block after the last one, written like it"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS + "model = Sequential()\n"
            "model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)))\n"
            "model.add(MaxPooling2D(pool_size=(2, 2)))\n"
            "model.add(Flatten())\n",
            _IMPORTS + "model = Sequential()\n"
            "model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)))\n"
            "model.add(MaxPooling2D(pool_size=(2, 2)))\n"
            "model.add(Conv2D(64, (3, 3), activation='relu'))\n"
            "model.add(MaxPooling2D(pool_size=(2, 2)))\n"
            "model.add(Flatten())\n",
        ),
        Example(
            _KERAS + "inputs = keras.Input(shape=(28, 28, 1))\n"
            'x = layers.Conv2D(8, 3, activation="relu")(inputs)\n'
            "x = layers.Flatten()(x)\n"
            "model = keras.Model(inputs, layers.Dense(10)(x))\n",
            _KERAS + "inputs = keras.Input(shape=(28, 28, 1))\n"
            'x = layers.Conv2D(8, 3, activation="relu")(inputs)\n'
            'x = layers.Conv2D(16, 3, activation="relu")(x)\n'
            "x = layers.MaxPooling2D((2, 2))(x)\n"
            "x = layers.Flatten()(x)\n"
            "model = keras.Model(inputs, layers.Dense(10)(x))\n",
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\n",
        # 4x4 -> conv 3x3 -> 2x2 -> pool -> 1x1: no room for another block
        _IMPORTS
        + "model = Sequential()\nmodel.add(Conv2D(8, 3, padding='valid', input_shape=(4, 4, 1)))\n"
        "model.add(MaxPooling2D(2))\nmodel.add(Flatten())\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        convs = view.layers_of(CONV_KINDS)
        if not convs:
            return []
        last = convs[-1]
        if len(convs) >= self.max_conv_layers:
            return [
                Skip(
                    self.name,
                    last.index,
                    f"already {len(convs)} Conv layers (cap {self.max_conv_layers})",
                )
            ]
        end = _block_end(view, last)
        merge = view.next_layer(end)
        if merge is not None and merge.kind in MERGE_KINDS - {"Dot"}:
            # Where branches of feature maps meet, a block in one branch would no longer match
            # the others: it goes after the merge, on the merged maps.
            end = _block_end(view, merge)
        try:
            return [self._candidate(view, last, end)]
        except CannotInsert as exc:
            return [Skip(self.name, end.index, str(exc))]

    def _candidate(self, view: ModelView, conv: Layer, anchor: Layer) -> Candidate:
        assert conv.call is not None
        filters_arg = find_arg(conv.call, 0, "filters", "nb_filter")
        number = written_int(view, conv, filters_arg, "filters") if filters_arg else None
        if number is None or isinstance(number, str):
            raise CannotInsert(f"the filters of layer {conv.index} are not a number to build on")
        filters = number.value
        new_filters = min(filters * self.filters_factor, self.max_filters)
        new_conv = clone(conv, ONE_OF_A_KIND)
        new_conv = with_keyword(new_conv, "filters", integer(new_filters), position=0)
        pool_call, edits = self._pool(view, conv)
        if not self._fits(view, anchor, new_conv, pool_call, conv.kind):
            padding = find_arg(new_conv, 3, "padding")
            if padding is not None:
                raise CannotInsert("another block would shrink the feature map below 1x1")
            new_conv = with_keyword(new_conv, "padding", string("same", quote_of(view, conv.call)))
            if not self._fits(view, anchor, new_conv, pool_call, conv.kind):
                raise CannotInsert("another block would shrink the feature map below 1x1")
        edits += insert_layers_after(view, anchor, [new_conv, pool_call])
        return Candidate(
            self.name,
            anchor.index,
            {"after": anchor.index, "filters": new_filters},
            f"after layer {anchor.index}{in_model(anchor)}: new {conv.kind}({new_filters}) + pooling block",
            edits,
        )

    def _pool(self, view: ModelView, conv: Layer) -> tuple[cst.Call, tuple[Edit, ...]]:
        """A pooling call like the model's own, or MaxPooling of the conv's rank, and its import."""
        pools = [layer for layer in view.layers_of(POOL_KINDS) if layer.call is not None]
        after = [p for p in pools if p.index > conv.index]
        model_pool = (after or pools or [None])[0]
        if model_pool is not None and model_pool.call is not None:
            return tidy_call(model_pool.call, ONE_OF_A_KIND), ()
        rank = spatial_rank(conv.kind) or 2
        class_name = f"MaxPooling{rank}D"
        size = "2" if rank == 1 else "(" + ", ".join(["2"] * rank) + ")"
        call = cst.parse_expression(f"{sibling_callee(conv, class_name)}({size})")
        assert isinstance(call, cst.Call)
        edits: tuple[Edit, ...] = ()
        if "." not in conv.style_callee and not view.star_import:
            edits = import_edit(view, conv.style_callee, class_name)
        return call, edits

    def _fits(
        self, view: ModelView, anchor: Layer, conv: cst.Call, pool: cst.Call, kind: str
    ) -> bool:
        ops = shapes.model_ops(view)
        new_ops = [
            shapes.spatial_op(Layer(-1, kind, "", conv, anchor.holder)),
            shapes.spatial_op(
                Layer(-1, f"MaxPooling{spatial_rank(kind) or 2}D", "", pool, anchor.holder)
            ),
        ]
        return shapes.fits_after(view, ops, anchor.index, new_ops) is not False


def _block_end(view: ModelView, layer: Layer) -> Layer:
    """The last of the pooling and shape-keeping layers that follow `layer` in its branch."""
    end = layer
    while (following := view.next_layer(end)) is not None and (
        following.kind in POOL_KINDS | SHAPE_PRESERVING_KINDS
    ):
        end = following
    return end
