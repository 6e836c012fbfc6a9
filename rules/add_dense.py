"""add_dense: a hidden Dense layer before the output layer (seed 002's "add a layer" for ANNs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mutator.engine.callargs import integer
from mutator.engine.candidate import Candidate, Proposal, Skip
from mutator.engine.insertion import CannotInsert, insert_layers_after
from mutator.engine.model_view import Layer, ModelView
from rules._rule import Example, Road, WarmMapping
from rules._style import clone, in_model, quote_of, string, with_keyword
from rules.add_conv_block import ONE_OF_A_KIND

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Dense, Flatten\n"


@dataclass(frozen=True)
class AddDense:
    """Insert a hidden Dense layer just before the output layer.

    Why: a hidden layer between the features and the classifier adds capacity cheaply. The new
    layer copies the last hidden Dense when there is one, else the output layer with `units` and
    `activation`. Safety: at most `max_hidden` hidden Dense layers; never before the first layer.
    """

    units: int = 64
    activation: str = "relu"
    max_hidden: int = 3

    name: ClassVar[str] = "add_dense"
    road: ClassVar[Road] = "capacity"
    step_setting: ClassVar[str | None] = None
    warm: ClassVar[WarmMapping] = "transfer"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = "add a hidden Dense layer before the output layer"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS + "model = Sequential()\nmodel.add(Flatten())\n"
            "model.add(Dense(10, activation='softmax'))\n",
            _IMPORTS + "model = Sequential()\nmodel.add(Flatten())\n"
            "model.add(Dense(64, activation='relu'))\n"
            "model.add(Dense(10, activation='softmax'))\n",
        ),
        Example(
            _IMPORTS + "model = Sequential([\n    Dense(32, activation='relu', input_dim=64),\n"
            "    Dense(10, activation='softmax'),\n])\n",
            _IMPORTS + "model = Sequential([\n    Dense(32, activation='relu', input_dim=64),\n"
            "    Dense(32, activation='relu'),\n"
            "    Dense(10, activation='softmax'),\n])\n",
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _IMPORTS
        + "model = Sequential()\nmodel.add(Dense(10, activation='softmax', input_dim=64))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(Flatten())\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        dense = [layer for layer in view.layers_of({"Dense"}) if layer.call is not None]
        if not dense:
            return []
        output = dense[-1]
        hidden = [layer for layer in dense[:-1] if not view.is_output(layer)]
        if output.index == 0:
            return [Skip(self.name, 0, "the output layer is the model's first layer")]
        depth = _hidden_depth(view, output)
        if depth >= self.max_hidden:
            return [Skip(self.name, output.index, f"already {depth} hidden Dense layers")]
        assert output.call is not None
        if hidden and hidden[-1].call is not None:
            new = clone(hidden[-1], ONE_OF_A_KIND)
            units = hidden[-1].int_arg(0, "units", "output_dim")
            if units is None:  # `Dense(units)` in a loop: the loop's variable means nothing here
                new = with_keyword(new, "units", integer(self.units), position=0)
                units = self.units
        else:
            quote = quote_of(view, output.call)
            new = clone(output, ONE_OF_A_KIND)
            new = with_keyword(new, "units", integer(self.units), position=0)
            new = with_keyword(new, "activation", string(self.activation, quote), position=1)
            units = self.units
        anchor = view.previous_layer(output)
        if anchor is None:  # a functional output layer that takes a model input, or several
            reason = "the output layer takes no single layer's output to put a layer after"
            return [Skip(self.name, output.index, reason)]
        try:
            edits = insert_layers_after(view, anchor, [new])
        except CannotInsert as exc:
            return [Skip(self.name, output.index, str(exc))]
        return [
            Candidate(
                self.name,
                anchor.index,
                {"after": anchor.index, "units": units},
                f"after layer {anchor.index}{in_model(anchor)}: new hidden Dense({units if units is not None else '?'})",
                edits,
            )
        ]


def _hidden_depth(view: ModelView, output: Layer) -> int:
    """The most hidden Dense layers on one path to the output (in a chain, all of them)."""
    depth: dict[int, int] = {}
    for layer in view.layers[: output.index + 1]:
        before = max((depth.get(source.index, 0) for source in view.sources(layer)), default=0)
        hidden = layer.kind == "Dense" and layer.call is not None and layer is not output
        depth[layer.index] = before + hidden
    return depth[output.index]
