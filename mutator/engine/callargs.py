"""Reading and rebuilding call arguments, positional or keyword, the way Keras binds them.

`Conv2D(32, (3, 3))` and `Conv2D(filters=32, kernel_size=3)` say the same thing; rules ask for
"filters" and get the argument node wherever it is written, or None when it cannot be known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import libcst as cst

Item = TypeVar("Item", cst.Arg, cst.Element)


def find_arg(call: cst.Call, position: int | None, *keywords: str) -> cst.Arg | None:
    """The argument bound to `keywords` or to the `position`-th positional slot, if written."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in keywords:
            return arg
    if position is None:
        return None
    positional = []
    for arg in call.args:
        if arg.star:  # after *args, positions can no longer be known
            break
        if arg.keyword is None:
            positional.append(arg)
    return positional[position] if position < len(positional) else None


def has_star_args(call: cst.Call) -> bool:
    return any(arg.star for arg in call.args)


def literal_int(expr: cst.BaseExpression | None) -> int | None:
    """The value of a plain integer literal (`32`, `1_000`), else None."""
    if isinstance(expr, cst.Integer):
        try:
            return int(expr.evaluated_value)
        except ValueError:
            return None
    return None


def literal_ints(expr: cst.BaseExpression | None) -> tuple[int | None, ...] | None:
    """A tuple or list of integer literals and `None`s (`(8, 8, 1)`), else None."""
    if not isinstance(expr, (cst.Tuple, cst.List)):
        return None
    values: list[int | None] = []
    for element in expr.elements:
        if isinstance(element, cst.StarredElement):
            return None
        if isinstance(element.value, cst.Name) and element.value.value == "None":
            values.append(None)
            continue
        value = literal_int(element.value)
        if value is None:
            return None
        values.append(value)
    return tuple(values)


def literal_number(expr: cst.BaseExpression | None) -> float | None:
    """The value of a plain integer or float literal (`0.01`, `1e-3`, `1`), else None."""
    if isinstance(expr, cst.Float):
        try:
            return float(expr.evaluated_value)
        except ValueError:
            return None
    value = literal_int(expr)
    return float(value) if value is not None else None


def literal_str(expr: cst.BaseExpression | None) -> str | None:
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    return None


def integer(value: int) -> cst.Integer:
    return cst.Integer(str(value))


def _clean_whitespace(
    whitespace: cst.BaseParenthesizableWhitespace,
) -> cst.BaseParenthesizableWhitespace:
    """The same line break and indent without comments or blank lines: safe to repeat."""
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
    return whitespace


def clean_comma(comma: cst.Comma | cst.MaybeSentinel) -> cst.Comma:
    """A copy of a separator for a new item: its line break and indent, none of its comments."""
    if isinstance(comma, cst.Comma):
        return comma.with_changes(
            whitespace_before=cst.SimpleWhitespace(""),
            whitespace_after=_clean_whitespace(comma.whitespace_after),
        )
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _split_comma(comma: cst.Comma | cst.MaybeSentinel) -> tuple[cst.Comma, cst.Comma]:
    """A separator in two: what stays on the anchor's line, and the comment lines below it."""
    clean = clean_comma(comma)
    if isinstance(comma, cst.Comma) and isinstance(
        comma.whitespace_after, cst.ParenthesizedWhitespace
    ):
        whitespace = comma.whitespace_after
        return (
            comma.with_changes(whitespace_after=whitespace.with_changes(empty_lines=[])),
            clean.with_changes(
                whitespace_after=clean.whitespace_after.with_changes(
                    empty_lines=whitespace.empty_lines
                )
            ),
        )
    return (comma if isinstance(comma, cst.Comma) else clean), clean


def insert_after(items: Sequence[Item], index: int, new_items: Sequence[Item]) -> list[Item]:
    """`items` with `new_items` after position `index` (-1: at the front), separators in style.

    Each new item repeats the separator the list already uses at that point (so one element per
    line stays one per line), and an item's comment stays on the item's own line.
    """
    items = list(items)
    if not items:
        return _joined(new_items)
    if index < 0:
        separator = clean_comma(items[0].comma)
        added = [item.with_changes(comma=separator) for item in new_items]
        return added + items
    last = index == len(items) - 1
    if not last:
        # The anchor keeps its own end-of-line comment; comment lines between it and the next
        # item describe the next item, so they move down to stay right above it.
        anchor_comma, lines_below = _split_comma(items[index].comma)
        separator = clean_comma(items[index].comma)
        added = [item.with_changes(comma=separator) for item in new_items]
        added[-1] = added[-1].with_changes(comma=lines_below)
        anchor = items[index].with_changes(comma=anchor_comma)
        return items[:index] + [anchor] + added + items[index + 1 :]
    # Appending: the old last item takes the separator used between items before it, and the new
    # last item takes whatever closed the list (a trailing comma with its line break, or nothing).
    separator = (
        clean_comma(items[index - 1].comma)
        if index > 0
        else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    )
    closing = items[index].comma
    added = [item.with_changes(comma=separator) for item in new_items[:-1]]
    added.append(new_items[-1].with_changes(comma=closing))
    return items[:index] + [items[index].with_changes(comma=separator)] + added


def _joined(new_items: Sequence[Item]) -> list[Item]:
    separator = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return [item.with_changes(comma=separator) for item in new_items[:-1]] + [
        new_items[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    ]


def tidy_call(call: cst.Call, drop_keywords: frozenset[str] = frozenset()) -> cst.Call:
    """A copy of `call` on one line, without comments and without the `drop_keywords` arguments.

    Used to clone a neighbour layer: its alias, quotes and keyword habits are kept, while its
    comments and its one-of-a-kind arguments (`input_shape`, `name`) are not.
    """
    kept = [
        arg for arg in call.args if arg.keyword is None or arg.keyword.value not in drop_keywords
    ]
    return call.with_changes(
        args=_joined(
            [arg.with_changes(whitespace_after_arg=cst.SimpleWhitespace("")) for arg in kept]
        )
        if kept
        else [],
        whitespace_after_func=cst.SimpleWhitespace(""),
        whitespace_before_args=cst.SimpleWhitespace(""),
    )


def replace_arg_value(call: cst.Call, arg: cst.Arg, value: cst.BaseExpression) -> cst.Call:
    return call.with_changes(
        args=[a.with_changes(value=value) if a is arg else a for a in call.args]
    )
