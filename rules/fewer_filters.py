"""fewer_filters: give a convolution fewer filters (more_filters in reverse, for `mutate slim`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mutator.engine.callargs import integer, literal_int
from mutator.engine.candidate import Candidate, Proposal, Replace, Skip
from mutator.engine.keras_names import CONV_KINDS
from mutator.engine.layer_args import written_int
from mutator.engine.model_view import Layer, ModelView
from mutator.engine.shapes import LAST, makes_width, size_conflict, width_reaches_output
from rules._rule import Example, Road, WarmMapping
from rules._shrink import widest_first
from rules._style import in_model

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Conv2D, Dense, Flatten\n"
_KERAS = "import keras\nfrom keras import layers\n"
_HEAD = "model.add(Flatten())\nmodel.add(Dense(10, activation='softmax'))\n"


@dataclass(frozen=True)
class FewerFilters:
    """Divide a Conv layer's filters by `factor`, down to `min_filters`.

    Why: a model that reaches its target may do so with far fewer filters than it has, and a
    narrower convolution is cheaper to train, to store and to run; halving is the step back of
    more_filters' doubling. The widest layer comes first: it holds the most weights and usually
    the most redundancy, so its cut saves the most for the least harm, where halving a narrow
    layer makes a bottleneck. Safety: the filter count (`filters=`, positional, or Keras 1's
    `nb_filter=`) is changed where it is written, in the call or at the one name only it reads
    (`mutator.engine.layer_args`); `Conv2D(n, 3)` is skipped when `n` is unknown or sizes other
    things too; never a convolution whose width is the model's output (a fully convolutional
    classifier's last `Conv2D(10, 1)`) or that a Reshape or an `Add` needs as it is, nor a
    count that would no longer split into a grouped convolution's `groups` (its own, or the
    next convolution's).
    """

    factor: int = 2
    min_filters: int = 2

    name: ClassVar[str] = "fewer_filters"
    road: ClassVar[Road] = "smaller"
    step_setting: ClassVar[str | None] = "factor"
    narrows: ClassVar[bool] = True  # a layer narrower: slim narrows every layer at once too
    warm: ClassVar[WarmMapping] = "cold"
    cold_why: ClassVar[str] = (
        "a narrower layer: slim judges every smaller model trained from scratch"
    )
    description: ClassVar[str] = "divide a Conv layer's filters, widest first (/2, down to 2)"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS + "model = Sequential()\n"
            "model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(8, 8, 1)))  # first\n"
            + _HEAD,
            _IMPORTS + "model = Sequential()\n"
            "model.add(Conv2D(16, (3, 3), activation='relu', input_shape=(8, 8, 1)))  # first\n"
            + _HEAD,
        ),
        Example(  # the first candidate is the widest layer, the second here
            _KERAS + "model = keras.Sequential([\n    layers.Conv2D(filters=8, kernel_size=3),\n"
            "    layers.Conv2D(filters=16, kernel_size=3),\n    layers.Flatten(),\n"
            "    layers.Dense(10),\n])\n",
            _KERAS + "model = keras.Sequential([\n    layers.Conv2D(filters=8, kernel_size=3),\n"
            "    layers.Conv2D(filters=8, kernel_size=3),\n    layers.Flatten(),\n"
            "    layers.Dense(10),\n])\n",
        ),
        Example(
            _KERAS + "model = keras.Sequential([\n    layers.Conv2D(filters=8, kernel_size=3),\n"
            "    layers.Conv2D(filters=16, kernel_size=3),\n    layers.Flatten(),\n"
            "    layers.Dense(10),\n])\n",
            _KERAS + "model = keras.Sequential([\n    layers.Conv2D(filters=4, kernel_size=3),\n"
            "    layers.Conv2D(filters=16, kernel_size=3),\n    layers.Flatten(),\n"
            "    layers.Dense(10),\n])\n",
            site=0,
        ),
        Example(  # Keras 1
            _IMPORTS + "model = Sequential()\n"
            "model.add(Conv2D(nb_filter=6, nb_row=3, nb_col=3, input_shape=(8, 8, 1)))\n" + _HEAD,
            _IMPORTS + "model = Sequential()\n"
            "model.add(Conv2D(nb_filter=3, nb_row=3, nb_col=3, input_shape=(8, 8, 1)))\n" + _HEAD,
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(Conv2D(n_filters, 3))\n" + _HEAD,
        _IMPORTS + "model = Sequential()\nmodel.add(Conv2D(2, 3))\n" + _HEAD,
        # the last convolution's 10 filters are the 10 classes
        _KERAS + "model = keras.Sequential([\n    layers.Conv2D(10, 1),\n"
        "    layers.GlobalAveragePooling2D(),\n    layers.Activation('softmax'),\n])\n",
        # an Add needs both of its inputs as wide
        _KERAS + "inputs = keras.Input(shape=(8, 8, 4))\n"
        "x = layers.Conv2D(4, 3, padding='same')(inputs)\n"
        "x = layers.Add()([inputs, x])\n"
        "model = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(x)))\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        narrowed = [self._narrow(view, layer) for layer in view.layers_of(CONV_KINDS)]
        return widest_first(narrowed, "filters")

    def _narrow(self, view: ModelView, layer: Layer) -> Proposal:
        arg = layer.arg(0, "filters", "nb_filter")
        if arg is None:
            return Skip(self.name, layer.index, "filters not given")
        number = written_int(view, layer, arg, "filters")
        if isinstance(number, str):
            return Skip(self.name, layer.index, number)
        value = number.value
        new = max(int(value // self.factor), self.min_filters)
        if new >= value:
            reason = f"{value} filters is not above the floor ({self.min_filters})"
            return Skip(self.name, layer.index, reason)
        conflict = (
            size_conflict(view, layer, frozenset({LAST}))
            or width_reaches_output(view, layer)
            or _ungrouped(view, layer, new)
        )
        if conflict is not None:
            return Skip(self.name, layer.index, f"its filters must stay: {conflict}")
        return Candidate(
            self.name,
            layer.index,
            {"filters": [value, new]},
            f"layer {layer.index} ({layer.written_as}{in_model(layer)}): filters {value} -> {new}{number.where}",
            (Replace(number.node, integer(new)),),
        )


def _ungrouped(view: ModelView, layer: Layer, new: int) -> str | None:
    """Why `new` filters would not split into the groups of a grouped convolution (`groups=4`):
    the layer's own, or those of a convolution its output goes to; None when they would."""
    takers, pending, seen = [layer], list(view.readers(layer)), {layer.index}
    while pending:
        at = pending.pop()
        if at.index in seen:
            continue
        seen.add(at.index)
        if at.kind in CONV_KINDS:
            takers.append(at)
        elif not makes_width(at):
            pending.extend(view.readers(at))
    for taker in takers:
        arg = taker.arg(None, "groups")
        if arg is None:
            continue
        groups = literal_int(arg.value)
        if groups is None:
            return f"layer {taker.index}'s groups={view.code(arg.value)} is not a literal"
        if new % groups:
            return f"{new} filters do not split into layer {taker.index}'s {groups} groups"
    return None
