"""more_epochs: train longer, where the number of epochs is really written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import libcst as cst

from mutator.engine.callargs import insert_after, integer
from mutator.engine.candidate import Candidate, Proposal, Replace, Skip
from mutator.engine.model_view import ModelView
from mutator.engine.walk import walk
from rules._rule import Example

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Dense\n"
_MODEL = _IMPORTS + "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\n"


@dataclass(frozen=True)
class MoreEpochs:
    """Multiply the epochs by `factor` (or add `step` when it is set), up to `max_epochs`.

    Why: a model whose validation curve still rises at the last epoch is under-trained. Safety:
    the number is changed where it is defined (a literal, a constant, a variable, a function
    parameter's default, an argparse default), never guessed when it comes from elsewhere.
    """

    factor: int = 2
    step: int = 0
    max_epochs: int = 200

    name: ClassVar[str] = "more_epochs"
    description: ClassVar[str] = "train for more epochs (x2, up to 200), where epochs are defined"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(_MODEL + "model.fit(x, y, epochs=5)\n", _MODEL + "model.fit(x, y, epochs=10)\n"),
        Example(
            "EPOCHS = 3  # keep small\n" + _MODEL + "model.fit(x, y, epochs=EPOCHS)\n",
            "EPOCHS = 6  # keep small\n" + _MODEL + "model.fit(x, y, epochs=EPOCHS)\n",
        ),
        Example(_MODEL + "model.fit(x, y)\n", _MODEL + "model.fit(x, y, epochs=2)\n"),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _MODEL,
        _MODEL + "model.fit(x, y, epochs=config.epochs)\n",
        _MODEL + "model.fit(x, y, epochs=200)\n",
        _IMPORTS + "N = 10\nmodel = Sequential()\nmodel.add(Dense(N, input_dim=64))\n"
        "model.fit(x, y, epochs=N)\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        site = view.epochs
        if site is None:
            return [Skip(self.name, 0, f"no .fit() call trains {view.name}")] if view.notes else []
        if site.value is None:
            return [Skip(self.name, 0, site.detail)]
        shared = sorted(set(site.names) & _names_read_by_layers(view))
        if shared:
            return [
                Skip(
                    self.name,
                    0,
                    f"{shared[0]} also sets a layer's arguments; changing it would change the model",
                )
            ]
        old = site.value
        new = min(old + self.step if self.step else old * self.factor, self.max_epochs)
        if new <= old:
            return [Skip(self.name, 0, f"{old} epochs is already at the cap ({self.max_epochs})")]
        if site.node is not None:
            edit = Replace(site.node, integer(new))
        else:
            epochs_arg = cst.Arg(
                value=integer(new),
                keyword=cst.Name("epochs"),
                equal=cst.AssignEqual(
                    whitespace_before=cst.SimpleWhitespace(""),
                    whitespace_after=cst.SimpleWhitespace(""),
                ),
            )
            args = insert_after(site.fit_call.args, len(site.fit_call.args) - 1, [epochs_arg])
            edit = Replace(site.fit_call, site.fit_call.with_changes(args=args))
        return [
            Candidate(
                self.name,
                0,
                {"epochs": [old, new]},
                f"epochs {old} -> {new} ({site.detail})",
                (edit,),
            )
        ]


class _NameReads:
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


def _names_read_by_layers(view: ModelView) -> set[str]:
    reads = _NameReads()
    for layer in view.layers:
        if layer.call is not None:
            for arg in layer.call.args:
                walk(arg.value, reads)
    return reads.names
