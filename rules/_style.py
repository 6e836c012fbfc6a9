"""Small helpers rules share to write new code in the script's own habits (quotes, aliases)."""

from __future__ import annotations

import libcst as cst

from mutator.engine.callargs import find_arg, tidy_call
from mutator.engine.follow import name_reads
from mutator.engine.model_view import Layer, ModelView


def in_model(layer: Layer) -> str:
    """` in build_features()` for a layer of a model the trained one is composed of, else "":
    a description says which model a change edits."""
    return f" in {layer.model}" if layer.model else ""


def quote_of(view: ModelView, near: cst.Call | None = None) -> str:
    """The quote character the script uses: the one in `near` if it has a string, else the file's."""
    for root in (near, view.module):
        if root is None:
            continue
        finder = _FirstString()
        root.visit(finder)
        if finder.quote:
            return finder.quote
    return '"'


class _FirstString(cst.CSTVisitor):
    def __init__(self) -> None:
        self.quote = ""

    def visit_SimpleString(self, node: cst.SimpleString) -> bool:
        if not self.quote:
            self.quote = node.quote[0]
        return False


def string(value: str, quote: str) -> cst.SimpleString:
    return cst.SimpleString(f"{quote}{value}{quote}")


def with_keyword(
    call: cst.Call, keyword: str, value: cst.BaseExpression, position: int | None = None
) -> cst.Call:
    """`call` with `keyword` set to `value`: replaced where it is written, added at the end if not."""
    arg = find_arg(call, position, keyword)
    if arg is not None:
        return call.with_changes(
            args=[a.with_changes(value=value) if a is arg else a for a in call.args]
        )
    new_arg = cst.Arg(
        value=value,
        keyword=cst.Name(keyword),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )
    args = list(call.args)
    if args:
        args[-1] = args[-1].with_changes(
            comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        )
    return call.with_changes(args=[*args, new_arg])


def sibling_callee(layer: Layer, class_name: str) -> str:
    """How the script would spell `class_name` next to `layer` (`layers.Conv2D` -> `layers.X`).

    Next to a user's subclass of a layer, the spelling of its Keras base is the one followed.
    """
    prefix, dot, _ = layer.style_callee.rpartition(".")
    return f"{prefix}{dot}{class_name}"


def clone(layer: Layer, drop_keywords: frozenset[str]) -> cst.Call:
    """A new layer like `layer`: its call on one line, minus `drop_keywords`, and written as the
    Keras base class when `layer` is an instance of a user's subclass (which may mean more)."""
    assert layer.call is not None
    call = tidy_call(layer.call, drop_keywords)
    if layer.written_base is not None:
        call = call.with_changes(func=cst.parse_expression(layer.written_base))
    return call


def shared_with_layers(view: ModelView, names: tuple[str, ...]) -> str | None:
    """Why changing one of `names` (the names followed to a training setting) would change the
    model too, because a layer's arguments read it; None when none does."""
    if not names:
        return None
    reads = {
        name
        for layer in view.layers
        if layer.call is not None
        for arg in layer.call.args
        for name in name_reads(arg)
    }
    shared = sorted(set(names) & reads)
    if not shared:
        return None
    return f"{shared[0]} also sets a layer's arguments; changing it would change the model"
