"""What a subclassed model's `call` applies, in the order Python evaluates it.

`self.out(self.flat(self.conv(x)))` applies `conv`, then `flat`, then `out`: a call's arguments
run before it, so calls are recorded as the walk leaves them. A method of the class that `call`
calls on `self` (`x = self.features(x)`) is read in its place; a `for layer in self.blocks:` loop
over a list attribute applies that list. Each application remembers its statement and whether it
is exactly `output = self.<name>(...)` on a line of its own, directly in its method's body: where
`mutator.engine.insertion` can put a new layer's line after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import libcst as cst

from mutator.engine.walk import walk

_MAX_METHODS = 8  # methods of the class read from `call`, to bound odd recursion


def applied_in(
    call: cst.FunctionDef,
    attributes: Mapping[str, cst.BaseExpression],
    methods: Mapping[str, cst.FunctionDef],
) -> list[Application]:
    """Every application of an attribute in `call` (and the methods it calls), in order."""
    applications: list[Application] = []
    reader = _Reader(first_param(call) or "self", attributes, methods, applications)
    reader.read.add("call")
    walk(call.body, reader)
    return applications


@dataclass(frozen=True, eq=False)
class Application:
    """`call` (or a method it calls) applies attribute `name`: `<output> = self.<name>(...)`."""

    name: str
    statement: cst.SimpleStatementLine | None
    output: str | None  # the name assigned, when the statement is exactly `output = self.x(...)`
    self_name: str
    direct: bool  # a statement of the method's own body
    listed: bool = False  # the attribute is a list, applied element by element in a loop
    returned: bool = False  # `return self.<name>(...)`


@dataclass
class _Reader:
    """Walks a method body in evaluation order, recording the attributes it applies."""

    self_name: str
    attributes: Mapping[str, cst.BaseExpression]  # `self.<name> = <value>` of `__init__`
    methods: Mapping[str, cst.FunctionDef]
    applications: list[Application]
    read: set[str] = field(default_factory=set)  # methods already read
    _statements: list[cst.SimpleStatementLine] = field(default_factory=list)
    _depth: int = 0

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._depth += 1

    def leave_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._depth -= 1

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statements.append(node)

    def leave_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statements.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # a nested function runs when (and if) it is called: not read

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_For(self, node: cst.For) -> None:
        name = self._own_attribute(node.iter)
        if name is not None and isinstance(self.attributes.get(name), cst.List):
            self.applications.append(
                Application(name, None, None, self.self_name, False, listed=True)
            )

    def leave_Call(self, node: cst.Call) -> None:
        name = self._own_attribute(node.func)
        if name is None:
            return
        if name in self.attributes:
            statement = self._statements[-1] if self._statements else None
            output = assigned_name(statement, node)
            returned = statement is not None and any(
                isinstance(small, cst.Return) and small.value is node for small in statement.body
            )
            self.applications.append(
                Application(
                    name, statement, output, self.self_name, self._depth == 1, returned=returned
                )
            )
        elif name in self.methods and name not in self.read and len(self.read) < _MAX_METHODS:
            self.read.add(name)
            method = self.methods[name]
            inner = replace(self, self_name=first_param(method) or self.self_name)
            inner._statements, inner._depth = [], 0
            walk(method.body, inner)

    def _own_attribute(self, node: cst.BaseExpression) -> str | None:
        """`attr` when `node` is `self.attr`."""
        if (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and node.value.value == self.self_name
        ):
            return node.attr.value
        return None


def assigned_name(statement: cst.SimpleStatementLine | None, call: cst.Call) -> str | None:
    """`x` when `statement` is exactly `x = <call>` and nothing else."""
    if statement is None or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if (
        isinstance(small, cst.Assign)
        and small.value is call
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
    ):
        return small.targets[0].target.value
    return None


def first_param(function: cst.FunctionDef) -> str | None:
    params = function.params
    first = (*params.posonly_params, *params.params)
    return first[0].name.value if first else None
