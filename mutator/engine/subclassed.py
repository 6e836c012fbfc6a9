"""A subclassed keras.Model: layers assigned in `__init__`, wired in `call`.

`class Net(keras.Model)` keeps its layers as attributes (`self.conv = layers.Conv2D(8, 3)`) and
applies them in `call` (`x = self.conv(inputs)`). The model's layers are the attributes `call`
applies, in the order Python evaluates them (`self.out(self.flat(self.conv(x)))` applies `conv`
first), a layer applied twice once; a method of the class that `call` calls on `self` is read in
place. A list attribute iterated by `for layer in self.blocks: x = layer(x)` contributes its
elements, and a `keras.Sequential` attribute its layers. What cannot be read is left out, with a
note: an attribute never applied, a list filled in a loop or a comprehension.

Each layer's holder (`AttributeLayer`) keeps its `__init__` statement and, when `call` applies it
as a statement of its own (`x = self.pool(x)`), that statement: the two places where
`mutator.engine.insertion` writes a new layer after it. When it is not, the holder says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import libcst as cst

from mutator.engine.call_order import Application, applied_in, first_param
from mutator.engine.facts import Construction, ModelClass, ScriptFacts
from mutator.engine.model_view import AttributeLayer, Holder, Layer, ListedLayer
from mutator.errors import ModelNotFoundError

MakeLayer = Callable[[int, cst.BaseExpression, Holder, ScriptFacts], Layer]
ReadSequential = Callable[[Construction, str], list[Layer]]

_NOT_A_CHAIN = "call() is not a straight chain of `x = self.layer(x)`"


@dataclass(frozen=True, eq=False)
class _Attribute:
    """`self.<name> = <value>` in `__init__`."""

    name: str
    value: cst.BaseExpression
    statement: cst.SimpleStatementLine
    self_name: str
    direct: bool  # a statement of `__init__`'s own body, not inside a branch or a loop


def owned(construction: Construction, facts: ScriptFacts) -> bool:
    """True for a model built inside a model class (`self.features = keras.Sequential(...)`): a
    part of that class's model, not a model of its own."""
    return any(
        construction.scope.startswith(f"{cls.scope}.") for cls in facts.model_classes.values()
    )


def read_layers(
    construction: Construction,
    facts: ScriptFacts,
    notes: list[str],
    make_layer: MakeLayer,
    read_sequential: ReadSequential,
) -> list[Layer]:
    """The layers of the model class `construction` instantiates, in the order `call` applies
    them; ModelNotFoundError (with the reason) when there is none we can read."""
    assert construction.model_class is not None
    cls = facts.model_classes[construction.model_class]
    lineage = list(_lineage(cls, facts))
    attributes = _attributes(lineage, facts)
    methods = _methods(lineage, facts)
    layered = {
        name: a
        for name, a in attributes.items()
        if (isinstance(a.value, cst.Call) and a.value in facts.layer_kinds)
        or _listed_layers(a, facts)
        or _sequential(a, facts) is not None
    }
    if not layered:
        raise ModelNotFoundError(
            f"subclassed model {cls.name!r} has no layer we can read: looked for "
            "`self.<name> = <keras layer>(...)` in its `__init__`"
        )
    for name, attribute in attributes.items():
        if isinstance(attribute.value, (cst.ListComp, cst.GeneratorExp)) or _filled(
            attribute, lineage, facts
        ):
            notes.append(
                f"`self.{name}` is built by a loop or comprehension: its layers are not read"
            )
    call = methods.get("call")
    values = {name: attribute.value for name, attribute in attributes.items()}
    applications = applied_in(call, values, methods) if call is not None else []
    applied = {a.name for a in applications}
    if not applied & set(layered):
        # `for layer in self.layers: x = layer(x)`, or a `call` we cannot follow: Keras tracks
        # layers in the order `__init__` assigns them, which is the best guess left.
        where = "call()" if call is not None else f"class {cls.name} (no call() in the script)"
        notes.append(f"{where} applies no layer we can follow: layers in `__init__` order")
        applications = [
            Application(name, None, None, a.self_name, False, listed=isinstance(a.value, cst.List))
            for name, a in layered.items()
        ]
    else:
        for name, attribute in layered.items():
            if name not in applied:
                value = attribute.value
                kind = facts.layer_kinds.get(value) if isinstance(value, cst.Call) else "layers"
                notes.append(f"`self.{name}` ({kind}) is never applied in call(): left out")
    taken = _taken(lineage, facts)
    return _layers(applications, attributes, taken, facts, make_layer, read_sequential)


def _layers(
    applications: list[Application],
    attributes: dict[str, _Attribute],
    taken: frozenset[str],
    facts: ScriptFacts,
    make_layer: MakeLayer,
    read_sequential: ReadSequential,
) -> list[Layer]:
    counts: dict[str, int] = {}
    for application in applications:
        counts[application.name] = counts.get(application.name, 0) + 1
    layers: list[Layer] = []
    seen: set[str] = set()
    for application in applications:
        name = application.name
        if name in seen:
            continue
        seen.add(name)
        attribute = attributes[name]
        value = attribute.value
        if application.listed and isinstance(value, cst.List):
            for element in value.elements:
                if isinstance(element, cst.Element):
                    holder = ListedLayer(value, element)
                    layers.append(make_layer(len(layers), element.value, holder, facts))
            continue
        holder = AttributeLayer(
            attribute.statement,
            name,
            application.statement,
            application.output,
            (attribute.self_name, application.self_name),
            taken,
            _why_not_chain(attribute, application, counts[name]),
        )
        sequential = _sequential(attribute, facts)
        if sequential is not None:
            for layer in read_sequential(sequential, f"{attribute.self_name}.{name}"):
                layers.append(replace(layer, index=len(layers), model=f"self.{name}"))
            continue
        layers.append(make_layer(len(layers), value, holder, facts))
    return layers


def _why_not_chain(attribute: _Attribute, application: Application, count: int) -> str | None:
    """Why a new layer cannot be inserted right after this one, or None when it can."""
    name = f"self.{attribute.name}"
    if count > 1:
        return f"call() applies {name} {count} times"
    if application.returned:
        return f"{name} is applied in call()'s return statement"
    if application.statement is not None and len(application.statement.body) > 1:
        return f"{_NOT_A_CHAIN}: {name} is applied on a line with other statements"
    if application.statement is None or application.output is None:
        return f"{_NOT_A_CHAIN}: {name} is applied inside an expression"
    if not application.direct:
        return f"{_NOT_A_CHAIN}: {name} is applied inside an if/for/with block"
    if not attribute.direct:
        return f"{name} is assigned inside an if/for/with block of __init__"
    return None


def _lineage(cls: ModelClass, facts: ScriptFacts) -> Iterator[ModelClass]:
    """The class, then the script's model classes it derives from (nearest first)."""
    seen: set[str] = set()
    pending = [cls]
    while pending:
        current = pending.pop(0)
        if current.scope in seen:
            continue
        seen.add(current.scope)
        yield current
        pending += [facts.model_classes[b] for b in current.bases if b in facts.model_classes]


def _methods(lineage: list[ModelClass], facts: ScriptFacts) -> dict[str, cst.FunctionDef]:
    methods: dict[str, cst.FunctionDef] = {}
    for cls in reversed(lineage):  # a subclass's method overrides its base's
        for statement in cls.node.body.body:
            if isinstance(statement, cst.FunctionDef):
                methods[statement.name.value] = statement
    return methods


def _attributes(lineage: list[ModelClass], facts: ScriptFacts) -> dict[str, _Attribute]:
    """`self.<name> = <value>` in the `__init__` of the class and its bases (its own last, so they
    win); the first assignment of a name in one `__init__`."""
    attributes: dict[str, _Attribute] = {}
    for cls in reversed(lineage):
        init = facts.functions.get(f"{cls.scope}.__init__")
        if init is None:
            continue
        self_name = first_param(init) or "self"
        body = init.body.body if isinstance(init.body, cst.IndentedBlock) else ()
        own: dict[str, _Attribute] = {}
        for assignment in facts.assignments:
            target = assignment.target
            if (
                assignment.scope == f"{cls.scope}.__init__"
                and isinstance(target, cst.Attribute)
                and isinstance(target.value, cst.Name)
                and target.value.value == self_name
                and target.attr.value not in own
            ):
                direct = any(statement is assignment.statement for statement in body)
                own[target.attr.value] = _Attribute(
                    target.attr.value, assignment.value, assignment.statement, self_name, direct
                )
        attributes.update(own)
    return attributes


def _taken(lineage: list[ModelClass], facts: ScriptFacts) -> frozenset[str]:
    """Every attribute and method name the classes use: a new attribute must be none of them."""
    names: set[str] = set()
    for cls in lineage:
        names |= {
            key.rsplit(".", 1)[-1] for key in facts.functions if key.startswith(f"{cls.scope}.")
        }
        for assignment in facts.assignments:
            if assignment.scope != cls.scope and not assignment.scope.startswith(f"{cls.scope}."):
                continue
            target = assignment.target
            if isinstance(target, cst.Attribute):
                names.add(target.attr.value)
            elif isinstance(target, cst.Name):
                names.add(target.value)
    return frozenset(names)


def _listed_layers(attribute: _Attribute, facts: ScriptFacts) -> bool:
    """`self.blocks = [layers.Dense(8), layers.Dense(8)]`: a literal list of layers."""
    value = attribute.value
    return isinstance(value, cst.List) and any(
        isinstance(e, cst.Element) and e.value in facts.layer_kinds for e in value.elements
    )


def _filled(attribute: _Attribute, lineage: list[ModelClass], facts: ScriptFacts) -> bool:
    """`self.blocks = []` then `self.blocks.append(...)` in `__init__`."""
    if not (isinstance(attribute.value, cst.List) and not attribute.value.elements):
        return False
    receiver = f"{attribute.self_name}.{attribute.name}"
    return any(
        a.receiver == receiver and a.scope.endswith(".__init__") and a.scope.startswith(cls.scope)
        for a in facts.appends
        for cls in lineage
    )


def _sequential(attribute: _Attribute, facts: ScriptFacts) -> Construction | None:
    """The `keras.Sequential(...)` an attribute holds, if it is one."""
    for construction in facts.constructions:
        if construction.call is attribute.value and construction.kind == "sequential":
            return construction
    return None
