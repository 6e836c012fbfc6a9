"""A layer argument's number and the one place it is written, for the rules that change it.

`Conv2D(32, 3)` writes its filters in the call; real scripts often write them elsewhere:
`Conv2D(FILTERS, 3)` under `FILTERS = 32`, `Dense(units)` in `def build(units=64)`,
`Dense(args.hidden)` with an argparse default, `Dense(CONFIG["hidden"])` under a dict of
hyperparameters. A width rule changes the number where it is
written, as `more_epochs` does (`mutator.engine.follow` walks there), but only when that
number sets this one argument: a constant two layers read (`Dense(HIDDEN)` twice, or
`Dense(HIDDEN * 2)` beside `Dense(HIDDEN)`), or one the epochs, learning rate or batch size
also read, would change more than the one layer the rule names (and whose weights a warm
start maps), so it is left alone, with the reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import libcst as cst

from mutator.engine.callargs import literal_int
from mutator.engine.follow import Reading, Use, follow, name_reads
from mutator.engine.model_view import Layer, ModelView

# How a width may be named: `FILTERS`, `args.filters`, `CONFIG["filters"]`.
_NAMED = (cst.Name, cst.Attribute, cst.Subscript)
# What a followed number may be: written once, somewhere the follower can point at.
_WRITTEN = ("constant", "variable", "parameter", "argparse", "flag", "config", "literal")


@dataclass(frozen=True, eq=False)
class WrittenInt:
    """An integer argument: its `value`, the literal `node` to replace, and where it is
    written when not in the layer's call (`" (FILTERS = 32 (module constant))"`), for the
    candidate's description; "" when it is."""

    value: int
    node: cst.BaseExpression
    where: str = ""


def written_int(view: ModelView, layer: Layer, arg: cst.Arg, label: str) -> WrittenInt | str:
    """`arg`'s integer and where it is written, or why it cannot be changed (one line)."""
    value = literal_int(arg.value)
    if value is not None:
        return WrittenInt(value, arg.value)
    code = view.code(arg.value)
    not_literal = f"{label}={code} is not a literal"
    facts = view.facts
    use = facts.layer_uses.get(layer.call) if facts is not None and layer.call else None
    if facts is None or use is None or not isinstance(arg.value, _NAMED):
        return not_literal
    reading = Reading(label, literal_int, f"layer {layer.index}'s call")
    found = follow(arg.value, Use(*use), facts, reading)
    if found.kind not in _WRITTEN or found.node is None or not isinstance(found.value, int):
        return not_literal  # computed, a loop's variable, an option without a default, ...
    names = set(found.names) | _attribute_name(arg.value)
    if (shared := _shared(view, names)) is not None:
        return f"{label}={code} is {found.detail}, which {shared}"
    return WrittenInt(found.value, found.node, f" ({found.detail})")


def _attribute_name(expr: cst.BaseExpression) -> set[str]:
    """`args.hidden` -> {"hidden"}: an option is shared when another use reads it too."""
    return {expr.attr.value} if isinstance(expr, cst.Attribute) else set()


def _shared(view: ModelView, names: set[str]) -> str | None:
    """What else reads one of `names`: another layer's argument (or this one's twice), or a
    training setting; None when only this argument does."""
    reads = sum(  # a wrapper's arguments hold the layer it wraps
        (name_reads(arg) for layer in view.layers if layer.call for arg in layer.call.args),
        Counter(),
    )
    if sum(reads[name] for name in names) > 1:
        return "more than this one argument of the model reads"
    for site, what in (
        (view.epochs, "the epochs"),
        (view.optimizer, "the learning rate"),
        (view.batch_size, "the batch size"),
    ):
        if site is not None and names & set(site.names):
            return f"{what} read too"
    return None
