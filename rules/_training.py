"""What the learning-rate and batch-size rules share: a new value written where the locator found
the old one (`ModelView.optimizer`, `ModelView.batch_size`), in the script's own style.

A number is replaced where it is defined; a rate that is not written is added where Keras would
take it (`learning_rate=` first in the optimizer's call; `optimizer="adam"` becomes the object
with its rate, spelled as the script spells Keras); a batch size not written is added to fit. A
name followed to the number that a layer also reads is never changed: that would change the
model, not only how it trains.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from mutator.engine.callargs import insert_after, integer, literal_number
from mutator.engine.candidate import Candidate, Edit, InsertStatements, Proposal, Replace, Skip
from mutator.engine.model_view import ModelView, OptimizerSite
from mutator.engine.training_sites import format_rate
from rules._style import shared_with_layers


class CannotWrite(Exception):
    """The new value has no place the script can take it (the message says why)."""


def rate_change(
    rule: str, view: ModelView, factor: float, bound: float, up: bool
) -> list[Proposal]:
    """The learning rate times `factor` (`up`) or divided by it, held at `bound`."""
    site = view.optimizer
    if site is None:
        return [Skip(rule, 0, f"{view.name} is neither compiled nor trained here")]
    if site.kind == "unresolved":
        return [Skip(rule, 0, site.detail)]
    shared = shared_with_layers(view, site.names)
    if shared is not None:
        return [Skip(rule, 0, shared)]
    if site.kind == "expression" and site.node is not None:
        return [_scaled_expression(rule, view, site, factor, up)]
    old = site.learning_rate
    if old is None or old <= 0:
        return [Skip(rule, 0, f"learning rate {old} cannot be scaled ({site.detail})")]
    new = min(old * factor, bound) if up else max(old / factor, bound)
    new_code = format_rate(new)
    if (float(new_code) <= old) if up else (float(new_code) >= old):
        limit = "cap" if up else "floor"
        reason = f"learning rate {format_rate(old)} is already at the {limit} ({bound})"
        return [Skip(rule, 0, reason)]
    try:
        edits = _rate_edits(view, site, new_code)
    except CannotWrite as exc:
        return [Skip(rule, 0, str(exc))]
    description = f"learning rate {format_rate(old)} -> {new_code} ({site.detail})"
    params = {"learning_rate": [old, float(new_code)]}
    return [Candidate(rule, 0, params, description, edits)]


def _rate_edits(view: ModelView, site: OptimizerSite, new_code: str) -> tuple[Edit, ...]:
    number = cst.Float(new_code)
    if site.node is not None:
        return (Replace(site.node, number),)
    if site.optimizer_call is not None:  # an object without a rate: it gets one, first
        call = site.optimizer_call
        return (Replace(call, _with_first_keyword(call, "learning_rate", number)),)
    spelling = site.spelling
    if spelling is None or spelling.callee is None:
        why = spelling.why if spelling is not None else "the optimizer's class is not known"
        raise CannotWrite(f"cannot write the optimizer as an object: {why}")
    new_object = cst.parse_expression(f"{spelling.callee}(learning_rate={new_code})")
    edits: list[Edit] = []
    if spelling.import_line is not None and spelling.anchor is not None:
        config = view.module.config_for_parsing
        line = cst.parse_statement(spelling.import_line + config.default_newline, config=config)
        edits.append(InsertStatements(spelling.anchor, (line,)))
    if site.written is not None:  # optimizer="adam" -> the object, with its default rate scaled
        edits.append(Replace(site.written, new_object))
    elif site.compile_call is not None:  # no optimizer: Keras's RMSprop, now written out
        call = site.compile_call
        edits.append(Replace(call, _with_first_keyword(call, "optimizer", new_object)))
    else:
        raise CannotWrite("no compile call to give the optimizer to")
    return tuple(edits)


def _scaled_expression(
    rule: str, view: ModelView, site: OptimizerSite, factor: float, up: bool
) -> Candidate:
    """`1e-3 * n` -> `0.003 * n`; `base / 10` -> `base / 3.33`; anything else `(...) * 3.0`.

    The value is not known, so no cap or floor applies: only the factor is written.
    """
    node = site.node
    assert node is not None
    new = _scale_literal_operand(node, factor, up)
    if new is None:
        operand = node
        if isinstance(node, cst.BinaryOperation | cst.UnaryOperation):
            operand = node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        space = cst.SimpleWhitespace(" ")
        operator = cst.Multiply(space, space) if up else cst.Divide(space, space)
        new = cst.BinaryOperation(operand, operator, cst.Float(format_rate(factor)))
    old_code, new_code = view.code(node), view.code(new)
    return Candidate(
        rule,
        0,
        {"learning_rate": [old_code, new_code]},
        f"learning rate {old_code} -> {new_code} ({site.detail})",
        (Replace(node, new),),
    )


def _scale_literal_operand(
    node: cst.BaseExpression, factor: float, up: bool
) -> cst.BaseExpression | None:
    """A product or quotient with a number in it, that number scaled; else None."""
    if not isinstance(node, cst.BinaryOperation):
        return None
    if not isinstance(node.operator, cst.Multiply | cst.Divide):
        return None
    for side in ("right", "left"):
        value = literal_number(getattr(node, side))
        if value is None:
            continue
        divisor = isinstance(node.operator, cst.Divide) and side == "right"
        scaled = value * factor if up != divisor else value / factor
        return node.with_changes(**{side: cst.Float(format_rate(scaled))})
    return None


def batch_change(
    rule: str, view: ModelView, new_size: Callable[[int], int], limit: str
) -> list[Proposal]:
    """The batch size `new_size(old)`, or a Skip saying it is at its `limit` when unchanged."""
    site = view.batch_size
    if site is None:
        return [Skip(rule, 0, f"no .fit() call trains {view.name}")]
    if site.kind in ("pipeline", "unresolved"):
        return [Skip(rule, 0, site.detail)]
    if site.value is None:
        computed = site.detail.removesuffix(", computed")
        return [Skip(rule, 0, f"{computed} is computed: a computed batch size is not changed")]
    shared = shared_with_layers(view, site.names)
    if shared is not None:
        return [Skip(rule, 0, shared)]
    old = site.value
    new = new_size(old)
    if new == old:
        return [Skip(rule, 0, f"batch size {old} is already at the {limit}")]
    if site.node is not None:
        edit = Replace(site.node, integer(new))
    else:  # not given: Keras's 32, now written into fit
        arg = _keyword("batch_size", integer(new))
        args = insert_after(site.fit_call.args, len(site.fit_call.args) - 1, [arg])
        edit = Replace(site.fit_call, site.fit_call.with_changes(args=args))
    description = f"batch size {old} -> {new} ({site.detail})"
    return [Candidate(rule, 0, {"batch_size": [old, new]}, description, (edit,))]


def _keyword(name: str, value: cst.BaseExpression) -> cst.Arg:
    no_space = cst.SimpleWhitespace("")
    return cst.Arg(value=value, keyword=cst.Name(name), equal=cst.AssignEqual(no_space, no_space))


def _with_first_keyword(call: cst.Call, name: str, value: cst.BaseExpression) -> cst.Call:
    """`call` with `name=value` as its first argument (all others are keywords here)."""
    return call.with_changes(args=insert_after(call.args, -1, [_keyword(name, value)]))
