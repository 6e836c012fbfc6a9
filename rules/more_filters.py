"""more_filters: give a convolution more filters (seed 002's first move)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mutator.engine.callargs import integer
from mutator.engine.candidate import Candidate, Proposal, Replace, Skip
from mutator.engine.keras_names import CONV_KINDS
from mutator.engine.layer_args import written_int
from mutator.engine.model_view import ModelView
from mutator.engine.shapes import LAST, size_conflict, width_reaches_output
from rules._rule import Example, Road, WarmMapping
from rules._style import in_model

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Conv2D, Dense, Flatten\n"
_HEAD = "model.add(Flatten())\nmodel.add(Dense(10, activation='softmax'))\n"
_KERAS = "import keras\nfrom keras import layers\n"


@dataclass(frozen=True)
class MoreFilters:
    """Multiply a Conv layer's filters by `factor`, up to `max_filters`.

    Why: a convolution with too few filters cannot represent enough features; doubling is the
    usual step. Safety: the count is changed where it is written, in the call or followed to a
    constant, a variable or a parameter's default (`Conv2D(FILTERS, 3)` under `FILTERS = 32`:
    `mutator.engine.layer_args`), and only when no other argument or setting reads that name;
    `Conv2D(n, 3)` with `n` unknown is skipped; so is
    a convolution whose filters are what the model outputs (a fully convolutional classifier's
    `Conv2D(10, 1)` before its pooling and softmax, an autoencoder's last `Conv2D(3, ...)`).
    """

    factor: int = 2
    max_filters: int = 512

    name: ClassVar[str] = "more_filters"
    road: ClassVar[Road] = "capacity"
    step_setting: ClassVar[str | None] = "factor"
    widens: ClassVar[bool] = True  # a layer wider: the search widens every layer at once too
    warm: ClassVar[WarmMapping] = "transfer"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = "multiply a Conv layer's filters (x2, up to 512)"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS
            + "model = Sequential()\nmodel.add(Conv2D(32, (3, 3), activation='relu'))  # first\n"
            + _HEAD,
            _IMPORTS
            + "model = Sequential()\nmodel.add(Conv2D(64, (3, 3), activation='relu'))  # first\n"
            + _HEAD,
        ),
        Example(
            _KERAS + "model = keras.Sequential([\n    layers.Conv2D(filters=8, kernel_size=3),\n"
            "    layers.Conv2D(filters=16, kernel_size=3),\n    layers.Flatten(),\n"
            "    layers.Dense(10),\n])\n",
            _KERAS + "model = keras.Sequential([\n    layers.Conv2D(filters=8, kernel_size=3),\n"
            "    layers.Conv2D(filters=32, kernel_size=3),\n    layers.Flatten(),\n"
            "    layers.Dense(10),\n])\n",
            site=1,
        ),
        Example(
            "FILTERS = 8  # width\n" + _IMPORTS
            + "model = Sequential()\nmodel.add(Conv2D(FILTERS, 3))\n" + _HEAD,
            "FILTERS = 16  # width\n" + _IMPORTS
            + "model = Sequential()\nmodel.add(Conv2D(FILTERS, 3))\n" + _HEAD,
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _IMPORTS + "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(Conv2D(n_filters, 3))\n",
        # one constant sets two layers: widening it would widen both
        "F = 8\n" + _IMPORTS + "model = Sequential()\nmodel.add(Conv2D(F, 3))\n"
        "model.add(Conv2D(F, 3))\n" + _HEAD,
        _IMPORTS + "model = Sequential()\nmodel.add(Conv2D(512, 3))\n" + _HEAD,
        # a fully convolutional classifier: the last convolution's filters are the classes
        _KERAS + "model = keras.Sequential([\n    layers.Conv2D(10, 1, input_shape=(8, 8, 1)),\n"
        "    layers.GlobalAveragePooling2D(),\n    layers.Activation('softmax'),\n])\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        proposals: list[Proposal] = []
        for layer in view.layers_of(CONV_KINDS):
            arg = layer.arg(0, "filters", "nb_filter")
            if arg is None:
                proposals.append(Skip(self.name, layer.index, "filters not given"))
                continue
            number = written_int(view, layer, arg, "filters")
            if isinstance(number, str):
                proposals.append(Skip(self.name, layer.index, number))
                continue
            value = number.value
            new = min(value * self.factor, self.max_filters)
            if new <= value:
                reason = f"{value} filters is already at the cap ({self.max_filters})"
                proposals.append(Skip(self.name, layer.index, reason))
                continue
            conflict = size_conflict(view, layer, frozenset({LAST})) or width_reaches_output(
                view, layer
            )
            if conflict is not None:
                proposals.append(Skip(self.name, layer.index, f"its filters must stay: {conflict}"))
                continue
            proposals.append(
                Candidate(
                    self.name,
                    layer.index,
                    {"filters": [value, new]},
                    f"layer {layer.index} ({layer.written_as}{in_model(layer)}): filters {value} -> {new}{number.where}",
                    (Replace(number.node, integer(new)),),
                )
            )
        return proposals
