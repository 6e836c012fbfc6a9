"""more_epochs: train longer, where the number of epochs is really written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import libcst as cst

from mutator.engine.callargs import insert_after, integer, literal_int
from mutator.engine.candidate import Candidate, Proposal, Replace, Skip
from mutator.engine.model_view import EpochsSite, ModelView
from rules._rule import Example, Road, WarmMapping
from rules._style import shared_with_layers

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Dense\n"
_MODEL = _IMPORTS + "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\n"


@dataclass(frozen=True)
class MoreEpochs:
    """Multiply the epochs by `factor` (or add `step` when it is set), up to a cap.

    Why: a model whose validation curve still rises at the last epoch is under-trained. Safety:
    the number is changed where it is defined (a literal, a constant, a variable, a function
    parameter's default, an argparse or absl default, a defaults dict), never guessed when it
    comes from elsewhere; a computed number is multiplied as written. The cap is relative to the
    script's own epochs (`cap_factor` times them, at least 200), so a script that trains 500
    epochs can still be given more; `max_epochs` sets an absolute one.
    """

    factor: int = 2
    step: int = 0
    max_epochs: int | None = None  # an absolute cap; None: `cap_factor` x the script's own
    cap_factor: int = 64  # the cap, relative to the script's own epochs (at least 200)
    own_epochs: int | None = None  # the script's own value (the search's original); None: now

    name: ClassVar[str] = "more_epochs"
    road: ClassVar[Road] = "training"
    step_setting: ClassVar[str | None] = "factor"
    warm: ClassVar[WarmMapping] = "continue"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = (
        "train for more epochs (x2, up to 64x the script's own), where epochs are defined"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(_MODEL + "model.fit(x, y, epochs=5)\n", _MODEL + "model.fit(x, y, epochs=10)\n"),
        Example(
            "EPOCHS = 3  # keep small\n" + _MODEL + "model.fit(x, y, epochs=EPOCHS)\n",
            "EPOCHS = 6  # keep small\n" + _MODEL + "model.fit(x, y, epochs=EPOCHS)\n",
        ),
        Example(_MODEL + "model.fit(x, y)\n", _MODEL + "model.fit(x, y, epochs=2)\n"),
        Example(
            _MODEL + "model.fit(x, y, nb_epoch=10)\n", _MODEL + "model.fit(x, y, nb_epoch=20)\n"
        ),
        Example(
            _MODEL + "model.fit(x, y, epochs=int(math.ceil(12 / n)))\n",
            _MODEL + "model.fit(x, y, epochs=int(math.ceil(12 / n)) * 2)\n",
        ),
        Example(
            "from absl import flags\nflags.DEFINE_integer('epochs', 10, 'passes')\n"
            "FLAGS = flags.FLAGS\n" + _MODEL + "model.fit(x, y, epochs=FLAGS.epochs)\n",
            "from absl import flags\nflags.DEFINE_integer('epochs', 20, 'passes')\n"
            "FLAGS = flags.FLAGS\n" + _MODEL + "model.fit(x, y, epochs=FLAGS.epochs)\n",
        ),
        Example(
            "defaults = dict(epochs=27, lr=0.1)\nconfig = Config(**defaults)\n"
            + _MODEL
            + "model.fit(x, y, epochs=config.epochs)\n",
            "defaults = dict(epochs=54, lr=0.1)\nconfig = Config(**defaults)\n"
            + _MODEL
            + "model.fit(x, y, epochs=config.epochs)\n",
        ),
        Example(
            _MODEL + "model.fit(x, y, epochs=500)\n", _MODEL + "model.fit(x, y, epochs=1000)\n"
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _MODEL,
        _MODEL + "model.fit(x, y, epochs=config.epochs)\n",  # no defaults dict to read it from
        _MODEL + "model.fit(x, y, epochs=steps(n) * 64)\n",  # already at 64x its own
        _IMPORTS + "N = 10\nmodel = Sequential()\nmodel.add(Dense(N, input_dim=64))\n"
        "model.fit(x, y, epochs=N)\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        site = view.epochs
        if site is None:
            return [Skip(self.name, 0, f"no .fit() call trains {view.name}")] if view.notes else []
        if site.kind == "expression" and site.node is not None:
            return self._multiply(view, site)
        if site.value is None:
            return [Skip(self.name, 0, site.detail)]
        shared = shared_with_layers(view, site.names)
        if shared is not None:
            return [Skip(self.name, 0, shared)]
        old = site.value
        cap = self.cap(old)
        new = min(old + self.step if self.step else old * self.factor, cap)
        if new <= old:
            return [Skip(self.name, 0, f"{old} epochs is already at the cap ({cap})")]
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

    def cap(self, current: int) -> int:
        if self.max_epochs is not None:
            return self.max_epochs
        return max(200, self.cap_factor * (self.own_epochs or current))

    def _multiply(self, view: ModelView, site: EpochsSite) -> list[Proposal]:
        """`epochs=int(math.ceil(12 / n))` -> `int(math.ceil(12 / n)) * 2`; `* 2` -> `* 4`."""
        node = site.node
        assert node is not None
        by = self.factor
        if (
            isinstance(node, cst.BinaryOperation)
            and isinstance(node.operator, cst.Multiply)
            and (times := literal_int(node.right)) is not None
        ):
            if times * by > self.cap_factor:
                return [
                    Skip(self.name, 0, f"epochs already x{times}: at the cap x{self.cap_factor}")
                ]
            new: cst.BaseExpression = node.with_changes(right=integer(times * by))
            by = times * by
        else:
            operand = node
            if isinstance(node, cst.BinaryOperation | cst.UnaryOperation):
                operand = node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            new = cst.BinaryOperation(
                operand,
                cst.Multiply(cst.SimpleWhitespace(" "), cst.SimpleWhitespace(" ")),
                integer(by),
            )
        old_code, new_code = view.code(node), view.code(new)
        return [
            Candidate(
                self.name,
                0,
                {"epochs": [old_code, new_code]},
                f"epochs {old_code} -> {new_code} ({site.detail})",
                (Replace(node, new),),
            )
        ]
