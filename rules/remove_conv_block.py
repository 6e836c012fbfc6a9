"""remove_conv_block: take a Conv layer and its pooling out (slim's cut; add_conv_block reversed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import libcst as cst

from mutator.engine import shapes
from mutator.engine.callargs import find_arg
from mutator.engine.candidate import Candidate, Proposal, Skip
from mutator.engine.keras_names import CONV_KINDS, FLATTENING_KINDS, POOL_KINDS, RECURRENT_KINDS
from mutator.engine.model_view import Layer, ModelView
from mutator.engine.removal import CannotRemove, input_spec_lost, remove_layers
from rules._rule import Example, Road, WarmMapping
from rules._style import in_model

_IMPORTS = (
    "from keras.models import Sequential\n"
    "from keras.layers import Conv2D, Dense, Flatten, MaxPooling2D\n"
)
_KERAS = "import keras\nfrom keras import layers\n"


@dataclass(frozen=True)
class RemoveConvBlock:
    """Remove a convolution block: a Conv layer and the pooling layer that directly follows it.

    One candidate per Conv layer but the first, the last block first: the one `add_conv_block`
    adds (after the last block), and usually the one with the most filters, so the largest cut.
    A block is the Conv (Conv1D/2D/3D) and, when the very next layer takes only its output and
    is a pooling layer, that pooling; a BatchNormalization or Dropout between them ends the
    block at the Conv (the normalisation and the pooling stay, and adapt to the maps they get).

    Why: a model that reaches its target may not need all its depth. Safety: the first Conv
    layer never goes (it reads the input, and usually carries its shape), so at least one stays,
    and never fewer than `keep_conv`; removing layers only makes the feature maps that follow
    larger, never smaller, and later Conv and Dense layers adapt to their new input. Skipped,
    with the reason: a block whose output shape is tied to another (it meets another branch in
    an add or a concatenation, a written-out Reshape, or the model's output with no Flatten
    or global pooling between), a layer that carries the model's input shape, and anything the
    engine cannot remove without rewiring (`mutator.engine.removal`). A block less is not always
    fewer parameters: a larger map into Flatten feeds a wider Dense (slim sizes every candidate
    before it trains it, and refuses one that is not smaller).
    """

    keep_conv: int = 1

    name: ClassVar[str] = "remove_conv_block"
    road: ClassVar[Road] = "smaller"
    step_setting: ClassVar[str | None] = None
    warm: ClassVar[WarmMapping] = "cold"
    cold_why: ClassVar[str] = (
        "a block less: no weights map onto the smaller model soundly, and slim judges every "
        "smaller model from scratch anyway"
    )
    description: ClassVar[str] = "remove a Conv layer and its pooling (never the first Conv)"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS + "model = Sequential()\n"
            "model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)))\n"
            "model.add(MaxPooling2D(pool_size=(2, 2)))\n"
            "model.add(Conv2D(64, (3, 3), activation='relu'))  # second block\n"
            "model.add(MaxPooling2D(pool_size=(2, 2)))\n"
            "model.add(Flatten())\n"
            "model.add(Dense(10, activation='softmax'))\n",
            _IMPORTS + "model = Sequential()\n"
            "model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)))\n"
            "model.add(MaxPooling2D(pool_size=(2, 2)))\n"
            "model.add(Flatten())\n"
            "model.add(Dense(10, activation='softmax'))\n",
        ),
        Example(
            _KERAS + "model = keras.Sequential(\n    [\n        keras.Input(shape=(8, 8, 1)),\n"
            '        layers.Conv2D(8, 3, padding="same"),\n'
            '        layers.Conv2D(16, 3, padding="same"),  # wider\n'
            "        layers.MaxPooling2D(),\n"
            "        layers.Flatten(),\n        layers.Dense(10),\n    ]\n)\n",
            _KERAS + "model = keras.Sequential(\n    [\n        keras.Input(shape=(8, 8, 1)),\n"
            '        layers.Conv2D(8, 3, padding="same"),\n'
            "        layers.Flatten(),\n        layers.Dense(10),\n    ]\n)\n",
        ),
        Example(
            _KERAS + "inputs = keras.Input(shape=(28, 28, 1))\n"
            'x = layers.Conv2D(8, 3, activation="relu")(inputs)\n'
            "x = layers.MaxPooling2D(2)(x)\n"
            'x = layers.Conv2D(16, 3, activation="relu")(x)\n'
            "x = layers.MaxPooling2D(2)(x)\n"
            "x = layers.Flatten()(x)\n"
            "model = keras.Model(inputs, layers.Dense(10)(x))\n",
            _KERAS + "inputs = keras.Input(shape=(28, 28, 1))\n"
            'x = layers.Conv2D(8, 3, activation="relu")(inputs)\n'
            "x = layers.MaxPooling2D(2)(x)\n"
            "x = layers.Flatten()(x)\n"
            "model = keras.Model(inputs, layers.Dense(10)(x))\n",
        ),
        Example(  # Conv1D, a list on one line
            "import keras.layers as L\nfrom keras.models import Sequential\n"
            "model = Sequential([L.Conv1D(4, 3, input_shape=(8, 8)), L.Conv1D(8, 3), "
            "L.MaxPooling1D(2), L.Flatten(), L.Dense(10)])\n",
            "import keras.layers as L\nfrom keras.models import Sequential\n"
            "model = Sequential([L.Conv1D(4, 3, input_shape=(8, 8)), L.Flatten(), L.Dense(10)])\n",
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        # the only Conv layer
        _IMPORTS + "model = Sequential()\nmodel.add(Conv2D(8, 3, input_shape=(8, 8, 1)))\n"
        "model.add(MaxPooling2D(2))\nmodel.add(Flatten())\nmodel.add(Dense(10))\n",
        # a residual block: its output meets the block's input in an add
        _KERAS + "inputs = keras.Input(shape=(8, 8, 1))\n"
        'x = layers.Conv2D(8, 3, padding="same")(inputs)\nshortcut = x\n'
        'x = layers.Conv2D(8, 3, padding="same")(x)\nx = layers.add([x, shortcut])\n'
        "x = layers.Flatten()(x)\nmodel = keras.Model(inputs, layers.Dense(10)(x))\n",
        # fully convolutional: the last Conv's maps are the model's output
        _KERAS + "inputs = keras.Input(shape=(8, 8, 1))\n"
        'x = layers.Conv2D(8, 3, padding="same")(inputs)\n'
        "x = layers.Conv2D(8, 3)(x)\n"
        "x = layers.Conv2D(1, 1)(x)\nmodel = keras.Model(inputs, x)\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        convs = view.layers_of(CONV_KINDS)
        if len(convs) < 2:
            return []
        if len(convs) <= self.keep_conv:
            reason = f"only {len(convs)} Conv layers, keep_conv={self.keep_conv}"
            return [Skip(self.name, convs[-1].index, reason)]
        return [self._remove(view, conv) for conv in reversed(convs[1:])]

    def _remove(self, view: ModelView, conv: Layer) -> Proposal:
        block = _block(view, conv)
        end = block[-1]
        why = next(filter(None, (input_spec_lost(view, layer) for layer in block)), None)
        if why is None:
            tied = _shape_tied(view, conv, end, changes_maps=len(block) > 1)
            why = f"its shape must stay: {tied}" if tied is not None else None
        if why is not None:
            return Skip(self.name, conv.index, why)
        try:
            edits = remove_layers(view, block)
        except CannotRemove as exc:
            return Skip(self.name, conv.index, str(exc))
        filters = conv.int_arg(0, "filters", "nb_filter")
        arg = conv.arg(0, "filters", "nb_filter")
        written = view.code(arg.value) if arg is not None else ""
        kind = conv.written_as.rpartition(".")[2]
        pooled = f" and its {end.kind} (layer {end.index})" if len(block) > 1 else ""
        return Candidate(
            self.name,
            conv.index,
            {"layer": conv.index, "filters": filters, "layers": [layer.index for layer in block]},
            f"layer {conv.index} ({kind}({written}){in_model(conv)}){pooled}: removed",
            edits,
        )


def _block(view: ModelView, conv: Layer) -> list[Layer]:
    """The Conv, and the pooling layer right after it when that takes the Conv's output only."""
    following = view.next_layer(conv)
    if (
        following is not None
        and following.kind in POOL_KINDS
        and view.previous_layer(following) is conv
    ):
        return [conv, following]
    return [conv]


def _shape_tied(view: ModelView, conv: Layer, end: Layer, changes_maps: bool) -> str | None:
    """Why the block's output shape must stay as it is, or None.

    Without the block, what follows takes the Conv's input: other channels (its last axis)
    and, unless the Conv keeps the map's size (`padding="same"`, stride 1) and no pooling goes
    with it, another height and width.
    """
    op = shapes.spatial_op(conv)
    keeps_size = op.kind == "window" and op.padding == "same" and set(op.strides) == {1}
    change = {shapes.LAST} | ({shapes.SPATIAL} if changes_maps or not keeps_size else set())
    tied = shapes.size_conflict(view, end, frozenset(change))
    tied = tied or shapes.width_reaches_output(view, end)
    if tied is None and shapes.SPATIAL in change:
        tied = _maps_reach_output(view, end)
    return tied


def _maps_reach_output(view: ModelView, layer: Layer) -> str | None:
    """Why the height and width of `layer`'s output reach the model's output (or a written-out
    Reshape) with no Flatten, global pooling or recurrent layer to end them, or None."""
    pending, seen = [layer], {layer.index}
    while pending:
        at = pending.pop()
        if view.is_output(at):
            return (
                f"layer {layer.index}'s feature maps reach the model's output at layer "
                f"{at.index}, whose shape is the targets'"
            )
        for reader in view.readers(at):
            if reader.index in seen or _ends_maps(reader):
                continue
            seen.add(reader.index)
            if reader.kind == "Reshape":
                return (
                    f"layer {layer.index}'s feature maps reach the Reshape at layer "
                    f"{reader.index}, whose target shape is written out"
                )
            pending.append(reader)
    return None


def _ends_maps(layer: Layer) -> bool:
    """A Flatten, a global pooling, or a recurrent layer that returns its last step only."""
    if layer.kind in FLATTENING_KINDS:
        return True
    if layer.kind in RECURRENT_KINDS and layer.call is not None:
        sequences = find_arg(layer.call, None, "return_sequences")
        value = sequences.value if sequences is not None else None
        return value is None or (isinstance(value, cst.Name) and value.value == "False")
    return False
