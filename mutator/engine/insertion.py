"""Edits that add new layers next to an existing one, in the style the model is written in.

`model.add(...)` models get new `.add` statements, `Sequential([...])` models new list elements,
functional models new `x = Layer(...)(x)` statements, subclassed models new `self.<name> =
Layer(...)` attributes applied by new `x = self.<name>(x)` statements. Rules say what to add and
where; this module says how, once for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import libcst as cst

from mutator.engine import keras_names, shapes
from mutator.engine.callargs import insert_after
from mutator.engine.candidate import Edit, InsertStatements, Replace
from mutator.engine.model_view import (
    AddedLayer,
    AppliedLayer,
    AttributeLayer,
    Layer,
    ListedLayer,
    ModelView,
)


class CannotInsert(Exception):
    """The model's shape at that point does not allow adding a layer safely (message says why)."""


def insert_layers_after(
    view: ModelView, layer: Layer, calls: Sequence[cst.Call]
) -> tuple[Edit, ...]:
    """Edits that put `calls` (new layer constructors) right after `layer` in the model."""
    holder = layer.holder
    # In a functional model the new layers take `layer`'s place before everything that took
    # its output; where that is a merge needing its inputs' shapes, a layer that changes them
    # cannot go there.
    why = shapes.size_conflict(view, layer, _changes(calls))
    if why is not None:
        raise CannotInsert(why)
    if isinstance(holder, ListedLayer):
        elements = list(holder.list_node.elements)
        index = next(i for i, element in enumerate(elements) if element is holder.element)
        new = insert_after(elements, index, [cst.Element(value=call) for call in calls])
        return (Replace(holder.list_node, holder.list_node.with_changes(elements=new)),)
    if isinstance(holder, AddedLayer):
        lines = [f"{holder.receiver}.{holder.method}({view.code(call)})" for call in calls]
        following = view.next_layer(layer)
        if (
            following is not None
            and isinstance(following.holder, AddedLayer)
            and following.holder.depth < holder.depth
        ):
            # `layer` sits in a branch or loop that the next layer is outside of: the new layers
            # go with the next one, so the model has them whichever way the branch goes.
            statements = _statements(view, lines)
            return (InsertStatements(following.holder.statement, statements, after=False),)
        if holder.in_loop:
            raise CannotInsert(f"layer {layer.index} is added inside a loop")
        return (InsertStatements(holder.statement, _statements(view, lines)),)
    if isinstance(holder, AppliedLayer):
        if holder.target is None:
            raise CannotInsert(
                f"layer {layer.index} ({layer.kind}) is applied inline, not assigned to a variable"
            )
        model_inputs = view.flow.inputs if view.flow is not None else ()
        inputs = {view.input_name, *(model_input.name for model_input in model_inputs)}
        if holder.target in inputs - {None}:
            raise CannotInsert(f"inserting after layer {layer.index} would rebind the model input")
        # `name = New(...)(name)` right after the layer's statement: every later use of `name`
        # takes the new layer's output, and those are the uses of this layer's output (in its
        # branch: another branch's tensors have their own names).
        name = holder.target
        lines = [f"{name} = {view.code(call)}({name})" for call in calls]
        return (InsertStatements(holder.statement, _statements(view, lines)),)
    if isinstance(holder, AttributeLayer):
        return _insert_attributes(view, holder, calls)
    raise CannotInsert(f"layer {layer.index} is attached in a way we cannot extend")


def _changes(calls: Sequence[cst.Call]) -> frozenset[str]:
    """What new layers change of the tensor they are put on: its last axis (a Dense, a Conv),
    its other axes (a pooling, a Conv), or nothing (a Dropout, a normalisation)."""
    changed: set[str] = set()
    for call in calls:
        func = call.func
        name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "")
        kind = keras_names.canonical_kind(name)
        if kind in keras_names.SHAPE_PRESERVING_KINDS:
            continue
        if kind == "Dense":
            changed.add(shapes.LAST)
        elif kind in keras_names.POOL_KINDS:
            changed.add(shapes.SPATIAL)
        else:
            changed |= {shapes.LAST, shapes.SPATIAL}
    return frozenset(changed)


def _insert_attributes(
    view: ModelView, holder: AttributeLayer, calls: Sequence[cst.Call]
) -> tuple[Edit, ...]:
    """Subclassed model: `self.<new> = Layer(...)` after the anchor's assignment in `__init__`,
    and `x = self.<new>(x)` after the statement of `call` that applies the anchor."""
    if holder.not_chain is not None:
        raise CannotInsert(holder.not_chain)
    assert holder.applied is not None and holder.output is not None
    init_self, call_self = holder.self_names
    taken = set(holder.taken)
    names = []
    for call in calls:
        names.append(attribute_name(call, taken))
        taken.add(names[-1])
    built = [f"{init_self}.{n} = {view.code(call)}" for n, call in zip(names, calls, strict=True)]
    output = holder.output
    applied = [f"{output} = {call_self}.{name}({output})" for name in names]
    return (
        InsertStatements(holder.statement, _statements(view, built)),
        InsertStatements(holder.applied, _statements(view, applied)),
    )


def attribute_name(call: cst.Call, taken: set[str] | frozenset[str]) -> str:
    """`dense_1`, `conv2d_2`, ...: the new layer's class in snake case (as Keras names layers),
    numbered from 1 to the first name not in `taken`."""
    func = call.func
    cls = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "layer")
    words = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", cls)
    stem = re.sub(r"([a-z])([A-Z])", r"\1_\2", words).lower()
    number = 1
    while f"{stem}_{number}" in taken:
        number += 1
    return f"{stem}_{number}"


def _statements(view: ModelView, lines: Sequence[str]) -> tuple[cst.BaseStatement, ...]:
    config = view.module.config_for_parsing
    return tuple(
        cst.parse_statement(line + config.default_newline, config=config) for line in lines
    )


def import_edit(view: ModelView, like: str, name: str) -> tuple[Edit, ...]:
    """Add `name` to the `from ... import` that imports `like`, when the script needs it bound.

    Nothing to do when `name` is already imported there; CannotInsert when `like` was not imported
    with a plain `from keras.layers import ...`.
    """
    if name in view.layer_imports:
        return ()
    statement = view.layer_imports.get(like)
    if statement is None or isinstance(statement.names, cst.ImportStar):
        raise CannotInsert(f"cannot tell where to import {name} from")
    names = list(statement.names)
    new = insert_after(names, len(names) - 1, [cst.ImportAlias(name=cst.Name(name))])
    return (Replace(statement, statement.with_changes(names=new)),)
