"""Following a training setting from the call that reads it to the one place its value is written.

`fit(epochs=EPOCHS)`, `Adam(learning_rate=args.lr)`, `fit(batch_size=FLAGS.batch_size)`: the
number to change is rarely where it is used. `follow` walks from the use to its definition: a
literal, a constant, a variable, a function parameter's default, an argparse default, an absl
flag's default (`flags.DEFINE_integer("epochs", 10, ...)` read as `FLAGS.epochs`), a defaults
dict (`dict(epochs=27)` read as `config.epochs`), a dict's entry (`CONFIG["epochs"]` under
`CONFIG = {"epochs": 3}`), or an expression (`int(math.ceil(12 / n))`),
which callers scale as written, never evaluate. What is followed (how a literal is read, how it
is named in messages) is a `Reading`, so epochs, learning rates and batch sizes share one path.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import libcst as cst

from mutator.engine.callargs import find_arg, has_star_args, literal_str
from mutator.engine.facts import ScriptFacts
from mutator.engine.walk import walk

DefinitionKind = Literal[
    "literal",
    "constant",
    "variable",
    "parameter",
    "argparse",
    "flag",
    "config",
    "expression",
    "unresolved",
]
_MAX_HOPS = 4


@dataclass(frozen=True)
class Use:
    """Where a value is read: the scope and the statement number of the call that reads it."""

    scope: str
    order: int


@dataclass(frozen=True)
class Reading:
    """What is followed: its name in messages (`epochs`), how its literal is read
    (`literal_int`), the call it is read in (`the fit call`), and how a value is shown."""

    label: str
    read: Callable[[cst.BaseExpression | None], Any]
    where: str
    show: Callable[[Any], str] = str


@dataclass(frozen=True, eq=False)
class Definition:
    """Where the value is defined: `node` is the literal to replace (the expression itself for
    "expression"; None when unresolved), `names` the names followed on the way (`epochs=EPOCHS`
    -> ("EPOCHS",)), so a caller can tell when one of them also feeds something else."""

    kind: DefinitionKind
    value: Any
    node: cst.BaseExpression | None
    detail: str
    names: tuple[str, ...] = ()


def follow(expr: cst.BaseExpression, use: Use, facts: ScriptFacts, reading: Reading) -> Definition:
    return _Follower(use, facts, reading).resolve(expr, hops=0)


def unresolved(reading: Reading, code: str, why: str) -> Definition:
    return Definition("unresolved", None, None, f"{reading.label}={code}: {why}")


class _Follower:
    def __init__(self, use: Use, facts: ScriptFacts, reading: Reading) -> None:
        self.use = use
        self.facts = facts
        self.reading = reading

    def resolve(self, expr: cst.BaseExpression, hops: int) -> Definition:
        code = self.facts.module.code_for_node(expr)
        value = self.reading.read(expr)
        label = self.reading.label
        if value is not None:
            kind = "literal" if hops == 0 else "variable"
            return Definition(kind, value, expr, f"{label}={code} in {self.reading.where}")
        if hops >= _MAX_HOPS:
            return unresolved(self.reading, code, "too many indirections")
        if isinstance(expr, cst.Name):
            found = self._name(expr.value, hops)
            return dataclasses.replace(found, names=(expr.value, *found.names))
        if isinstance(expr, cst.Attribute):
            return self._option(expr.attr.value, code)
        if isinstance(expr, cst.Subscript):
            return self._item(expr, code, hops)
        if isinstance(expr, cst.Call | cst.BinaryOperation | cst.UnaryOperation):
            return Definition("expression", None, expr, f"{label}={code}, computed")
        return unresolved(
            self.reading, code, "not a literal, a constant, a variable or an option's default"
        )

    def _name(self, name: str, hops: int) -> Definition:
        facts, use, show = self.facts, self.use, self.reading.show
        assignment = facts.last_assignment(use.scope, name, use.order)
        if assignment is None and use.scope != "<module>":
            function = facts.functions.get(use.scope)
            param = parameter(function, name)
            if function is not None and param is not None:
                passed = self._passed(function, param, hops)
                if passed is not None:
                    return passed
            if param is not None and param.default is not None:
                value = self.reading.read(param.default)
                if value is None:
                    why = f"the default of parameter {name!r} is not a literal"
                    return unresolved(self.reading, name, why)
                detail = f"default of parameter {name}={show(value)} in {use.scope}()"
                return Definition("parameter", value, param.default, detail)
            assignment = facts.last_assignment("<module>", name, 1 << 62)
        if assignment is None:
            return unresolved(self.reading, name, f"no assignment to {name!r} found")
        value = self.reading.read(assignment.value)
        if value is not None:
            constant = assignment.scope == "<module>" and name.isupper()
            where = "module constant" if constant else "variable"
            detail = f"{name} = {show(value)} ({where})"
            return Definition(
                "constant" if constant else "variable", value, assignment.value, detail
            )
        return self.resolve(assignment.value, hops + 1)

    def _passed(self, function: cst.FunctionDef, param: cst.Param, hops: int) -> Definition | None:
        """What the calls of `function` pass for `param`: the one call's argument, followed
        where that call is; unresolved when several calls (or a `*args`) may pass their own;
        None when none passes it, so its default is what runs."""
        name, called = param.name.value, function.name.value
        positional = [*function.params.posonly_params, *function.params.params]
        position = next((i for i, p in enumerate(positional) if p is param), None)
        if called == "__init__" and "." in self.use.scope:
            # a class's constructor is called by the class's name, without `self`
            called = self.use.scope.rsplit(".", 1)[0].rsplit(".", 1)[-1]
            position = position - 1 if position else None
        calls = self.facts.function_calls.get(called, [])
        passing = [(c, find_arg(c.call, position, name)) for c in calls]
        passing = [(c, arg) for c, arg in passing if arg is not None or has_star_args(c.call)]
        if not passing:
            return None  # every call leaves it to its default
        if len(calls) > 1:
            why = f"{called}() is called {len(calls)} times and may be given its own {name}"
            return unresolved(self.reading, name, why)
        call, arg = passing[0]
        if arg is None:
            return unresolved(self.reading, name, f"{called}(*...) may be given its own {name}")
        found = _Follower(Use(call.scope, call.order), self.facts, self.reading).resolve(
            arg.value, hops + 1
        )
        if found.node is arg.value and found.kind == "variable":  # a literal in the call
            code = self.facts.module.code_for_node(arg.value)
            detail = f"{name}={code} in the call {called}(...)"
            return dataclasses.replace(found, kind="literal", detail=detail)
        return found

    def _item(self, expr: cst.Subscript, code: str, hops: int) -> Definition:
        """`CONFIG["epochs"]`: the entry of the dict (`{"epochs": 3}` or `dict(epochs=3)`) that
        `CONFIG` was last assigned, followed on when it is itself a name; not when the script
        assigns that key again (`CONFIG["epochs"] = 10`), which may be what runs."""
        found = item_key(expr)
        if found is None:
            return unresolved(self.reading, code, "an index other than a string key of a name")
        name, key = found
        if any(_assigns_item(a.target, name, key) for a in self.facts.assignments):
            return unresolved(self.reading, code, f"{name}[{key!r}] is assigned in the script too")
        use = self.use
        assignment = self.facts.last_assignment(use.scope, name, use.order)
        if assignment is None and use.scope != "<module>":
            assignment = self.facts.last_assignment("<module>", name, 1 << 62)
        entry = _entry(assignment.value, key) if assignment is not None else None
        if assignment is None or entry is None:
            return unresolved(self.reading, code, f"no dict with {key!r} assigned to {name!r}")
        value = self.reading.read(entry)
        if value is None:
            inner = _Follower(Use(assignment.scope, assignment.order), self.facts, self.reading)
            followed = inner.resolve(entry, hops + 1)
            return dataclasses.replace(followed, names=(item_name(name, key), *followed.names))
        detail = f"{name}[{key!r}] = {self.reading.show(value)} (a dict's entry)"
        return Definition("config", value, entry, detail, (item_name(name, key),))

    def _option(self, attr: str, code: str) -> Definition:
        """`args.epochs`, `FLAGS.epochs`, `config.epochs`: argparse, absl, then a defaults dict."""
        for resolve in (self._argparse, self._flag, self._config):
            found = resolve(attr, code)
            if found is not None:
                return found
        return unresolved(
            self.reading, code, "not a literal, a constant, a variable or an option's default"
        )

    def _argparse(self, dest: str, code: str) -> Definition | None:
        for call in self.facts.arguments:
            if argparse_dest(call) != dest:
                continue
            default = find_arg(call, None, "default")
            if default is None:
                return unresolved(
                    self.reading, code, f"argparse option for {dest!r} has no default"
                )
            value = self.reading.read(default.value)
            if value is None:
                why = f"argparse default for {dest!r} is not a literal"
                return unresolved(self.reading, code, why)
            flag = literal_str(call.args[0].value) if call.args else dest
            detail = f"argparse {flag} default={self.reading.show(value)}"
            return Definition("argparse", value, default.value, detail)
        return None

    def _flag(self, attr: str, code: str) -> Definition | None:
        for call in self.facts.flag_defines:
            name = find_arg(call, 0, "name")
            if name is None or literal_str(name.value) != attr:
                continue
            default = find_arg(call, 1, "default")
            value = self.reading.read(default.value) if default is not None else None
            if default is None or value is None:
                return unresolved(
                    self.reading, code, f"the absl flag {attr!r} has no literal default"
                )
            detail = f"absl flag --{attr} default={self.reading.show(value)}"
            return Definition("flag", value, default.value, detail)
        return None

    def _config(self, attr: str, code: str) -> Definition | None:
        """`dict(epochs=27)` or `{"epochs": 27}` somewhere in the script, when there is only one."""
        facts = self.facts
        found: list[tuple[cst.BaseExpression, str]] = []
        for assignment in facts.assignments:
            value = assignment.value
            where = facts.module.code_for_node(assignment.target)
            if isinstance(value, cst.Call) and getattr(value.func, "value", None) == "dict":
                arg = find_arg(value, None, attr)
                if arg is not None:
                    found.append((arg.value, f"{where} = dict({attr}=...)"))
            elif isinstance(value, cst.Dict):
                for element in value.elements:
                    if isinstance(element, cst.DictElement) and literal_str(element.key) == attr:
                        found.append((element.value, f"{where} = {{{attr!r}: ...}}"))
        if len(found) != 1:
            return None
        node, where = found[0]
        value = self.reading.read(node)
        if value is None:
            return unresolved(self.reading, code, f"the default {attr} in {where} is not a literal")
        detail = f"default {attr}={self.reading.show(value)} in {where}"
        return Definition("config", value, node, detail)


def item_key(expr: cst.Subscript) -> tuple[str, str] | None:
    """`CONFIG["epochs"]` -> ("CONFIG", "epochs"); None for any other index."""
    if not isinstance(expr.value, cst.Name) or len(expr.slice) != 1:
        return None
    index = expr.slice[0].slice
    key = literal_str(index.value) if isinstance(index, cst.Index) else None
    return (expr.value.value, key) if key is not None else None


def item_name(name: str, key: str) -> str:
    """How a dict's entry is named among the names a value was followed through
    (`Definition.names`), so a setting read as `CONFIG["lr"]` is not shared with a layer that
    reads `CONFIG["hidden"]`."""
    return f"{name}[{key!r}]"


def name_reads(node: cst.CSTNode) -> Counter[str]:
    """How many times `node` reads each name: a bare name, both parts of an attribute
    (`args.hidden`: `args` and `hidden`, as an option is named by its last part), a dict's entry
    by its key (`item_name`, not the dict's own name). A keyword is not a read:
    `Dense(units=units)` reads `units` once. What tells whether a number followed through
    `Definition.names` sets anything else."""
    reads = _NameReads()
    walk(node, reads)
    return reads.count


class _NameReads:
    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    def visit_Arg(self, node: cst.Arg) -> bool:
        walk(node.value, self)
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.count[node.value] += 1

    def visit_Subscript(self, node: cst.Subscript) -> bool:
        found = item_key(node)
        if found is None:
            return True
        self.count[item_name(*found)] += 1
        return False


def _assigns_item(target: cst.BaseExpression, name: str, key: str) -> bool:
    return isinstance(target, cst.Subscript) and item_key(target) == (name, key)


def _entry(value: cst.BaseExpression, key: str) -> cst.BaseExpression | None:
    """The value `key` has in a dict literal or a `dict(key=...)` call; None when it has none."""
    if isinstance(value, cst.Dict):
        for element in value.elements:
            if isinstance(element, cst.DictElement) and literal_str(element.key) == key:
                return element.value
        return None
    if isinstance(value, cst.Call) and getattr(value.func, "value", None) == "dict":
        arg = find_arg(value, None, key)
        return arg.value if arg is not None else None
    return None


def parameter(function: cst.FunctionDef | None, name: str) -> cst.Param | None:
    if function is None:
        return None
    params = function.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == name:
            return param
    return None


def argparse_dest(call: cst.Call) -> str | None:
    """The attribute name argparse stores an option under (`--num-epochs` -> `num_epochs`)."""
    explicit = find_arg(call, None, "dest")
    if explicit is not None:
        return literal_str(explicit.value)
    names = [literal_str(arg.value) for arg in call.args if arg.keyword is None]
    names = [n for n in names if n]
    if not names:
        return None
    long_names = [n for n in names if n.startswith("--")]
    chosen = long_names[0] if long_names else names[0]
    return chosen.lstrip("-").replace("-", "_")
