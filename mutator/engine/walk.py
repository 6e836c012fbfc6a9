"""A read-only walk over a libcst tree, several times faster than a CSTVisitor pass.

libcst's visitors rebuild every node they pass (`_visit_and_replace_children`), so one pass costs
about as much as the Rust parse itself. The locator and the engine only need to look, so they walk
the dataclass fields directly, skipping whitespace, and call the same `visit_X` / `leave_X` methods
a CSTVisitor would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import libcst as cst

# Fields that only ever hold whitespace, comments or punctuation.
_PUNCTUATION = frozenset(
    {
        "lpar",
        "rpar",
        "leading_lines",
        "lines_after_decorators",
        "header",
        "footer",
        "trailing_whitespace",
        "comma",
        "semicolon",
        "equal",
        "colon",
        "lbracket",
        "rbracket",
        "lbrace",
        "rbrace",
        "dot",
        "star",
        "newline",
        "indent",
        "operator",
        "asynchronous",
    }
)
_FIELDS: dict[type, tuple[str, ...]] = {}
_HANDLERS: dict[tuple[type, type, str], Callable[..., Any] | None] = {}


def _fields_of(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in _PUNCTUATION and not f.name.startswith("whitespace")
        )
        _FIELDS[cls] = names
    return names


def _handler(visitor: object, cls: type, prefix: str) -> Callable[..., Any] | None:
    key = (type(visitor), cls, prefix)
    if key not in _HANDLERS:
        _HANDLERS[key] = getattr(type(visitor), prefix + cls.__name__, None)
    method = _HANDLERS[key]
    return method.__get__(visitor) if method is not None else None


def walk(
    node: cst.CSTNode, visitor: object, parent_of: dict[int, cst.CSTNode] | None = None
) -> None:
    """Call `visitor.visit_<Type>(node)` before and `leave_<Type>(node)` after each node's children,
    in source order; a visit that returns False skips the node's children. When `parent_of` is
    given, it is filled with id(child) -> parent for every node walked below `node`."""
    cls = type(node)
    visit = _handler(visitor, cls, "visit_")
    if visit is None or visit(node) is not False:
        for name in _fields_of(cls):
            value = getattr(node, name)
            children = value if isinstance(value, (list, tuple)) else (value,)
            for child in children:
                if isinstance(child, cst.CSTNode):
                    if parent_of is not None:
                        parent_of[id(child)] = node
                    walk(child, visitor, parent_of)
    leave = _handler(visitor, cls, "leave_")
    if leave is not None:
        leave(node)


def parents(root: cst.CSTNode) -> dict[int, cst.CSTNode]:
    """id(node) -> its parent, for every node below `root` that a walk reaches."""
    found: dict[int, cst.CSTNode] = {}

    def visit(node: cst.CSTNode) -> None:
        for name in _fields_of(type(node)):
            value = getattr(node, name)
            children = value if isinstance(value, (list, tuple)) else (value,)
            for child in children:
                if isinstance(child, cst.CSTNode):
                    found[id(child)] = node
                    visit(child)

    visit(root)
    return found
