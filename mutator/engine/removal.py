"""Edits that take a layer out of a model, in the style it is written in: `insertion` reversed.

A `model.add(...)` (or `layers.append(...)`) statement and a functional `x = Layer(...)(x)`
statement are removed whole, with their own end-of-line comment (`RemoveStatement`); an element
of `Sequential([...])` with its comma (`without_element`); a subclassed model's layer loses its
`self.<name> = Layer(...)` in `__init__` and its `x = self.<name>(x)` in `call`. The comment
lines above what goes stay, as every other byte does.

A removal is only made where nothing else has to be rewired: the layer's output must reach the
rest of the model under the very name its input had (`x = Layer(...)(x)`), be made by one
statement that makes no other layer, and not be one of the layers a loop makes. Anything else
raises CannotRemove with the reason, which the rule passes on as its Skip.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from mutator.engine import keras_names
from mutator.engine.candidate import Edit, RemoveStatement, Replace
from mutator.engine.model_view import (
    AddedLayer,
    AppliedLayer,
    AttributeLayer,
    Layer,
    ListedLayer,
    ModelView,
)
from mutator.engine.walk import parents, walk

#: The arguments by which a Sequential model's first layer gives the model its input shape.
INPUT_SPEC_KEYWORDS = ("input_shape", "input_dim", "batch_input_shape")


class CannotRemove(Exception):
    """The layer cannot be taken out without rewriting other code (the message says why)."""


def remove_layers(view: ModelView, layers: Sequence[Layer]) -> tuple[Edit, ...]:
    """Edits that take `layers` out of the model (a Conv and its pooling, say), or CannotRemove.

    Elements of one list are removed by one edit of that list, in order.
    """
    edits: list[Edit] = []
    lists: dict[int, tuple[cst.List, list[cst.BaseElement]]] = {}
    for layer in sorted(layers, key=lambda layer: layer.index):
        holder = layer.holder
        if isinstance(holder, ListedLayer):
            _check_listed(view, layer, holder)
            lists.setdefault(id(holder.list_node), (holder.list_node, []))[1].append(holder.element)
        else:
            edits += _remove_one(view, layer)
    for list_node, elements in lists.values():
        if len(elements) >= len(list_node.elements):
            raise CannotRemove("removing these layers would leave their list empty")
        new = list_node
        for element in sorted(elements, key=list(list_node.elements).index):
            new = without_element(new, element)
        edits.append(Replace(list_node, new))
    return tuple(edits)


def remove_layer(view: ModelView, layer: Layer) -> tuple[Edit, ...]:
    """Edits that take `layer` out of the model, or CannotRemove."""
    return remove_layers(view, [layer])


def _check_listed(view: ModelView, layer: Layer, holder: ListedLayer) -> None:
    if any(_same_place(other, holder.element) for other in view.layers if other is not layer):
        raise CannotRemove(f"the element of layer {layer.index} makes more than one layer")
    if len(holder.list_node.elements) < 2:
        raise CannotRemove(f"layer {layer.index} is the only element of its list")


def _remove_one(view: ModelView, layer: Layer) -> tuple[Edit, ...]:
    """The edits for a layer made by statements of its own."""
    holder = layer.holder
    if isinstance(holder, AttributeLayer):
        return _remove_attribute(view, layer, holder)
    if not isinstance(holder, AddedLayer | AppliedLayer):
        raise CannotRemove(f"layer {layer.index} is attached in a way we cannot take apart")
    if isinstance(holder, AppliedLayer):
        _check_applied(view, layer, holder)
    elif holder.in_loop:
        raise CannotRemove(
            f"layer {layer.index} is added inside a loop: its statement makes a layer on every pass"
        )
    removal = _remove_statement(view, layer, holder.statement)
    sharing = [
        other
        for other in view.layers
        if other is not layer and _same_place(other, holder.statement)
    ]
    if any(other.call is layer.call for other in sharing):
        raise CannotRemove(
            f"the statement of layer {layer.index} makes a layer each time it runs "
            "(in a function called more than once?)"
        )
    if sharing:
        raise CannotRemove(
            f"the statement of layer {layer.index} also makes layer {sharing[0].index} "
            f"({sharing[0].kind})"
        )
    return (removal,)


def input_spec_lost(view: ModelView, layer: Layer) -> str | None:
    """Why removing `layer` would lose the model's input shape (`Dense(64, input_dim=8)` in a
    Sequential model, with no Input layer before it), or None."""
    written = [k for k in INPUT_SPEC_KEYWORDS if layer.arg(None, k) is not None]
    if not written:
        return None
    before = [other for other in view.layers[: layer.index] if other.model == layer.model]
    if any(other.kind in keras_names.INPUT_KINDS for other in before):
        return None  # an Input layer gives the shape; this layer's own is not read
    return (
        f"layer {layer.index} carries the model's input shape ({written[0]}=): "
        "removing it would lose it"
    )


def _same_place(layer: Layer, place: cst.CSTNode) -> bool:
    holder = layer.holder
    if isinstance(holder, ListedLayer):
        return holder.element is place
    if isinstance(holder, AddedLayer | AppliedLayer):
        return holder.statement is place
    return False


def _check_applied(view: ModelView, layer: Layer, holder: AppliedLayer) -> None:
    """`x = Layer(...)(x)` alone on its line, or CannotRemove."""
    if holder.target is None:
        raise CannotRemove(
            f"layer {layer.index} ({layer.kind}) is applied inline, not assigned to a variable"
        )
    if holder.input_name != holder.target:
        taken = f"`{holder.input_name}`" if holder.input_name else "an expression"
        raise CannotRemove(
            f"layer {layer.index} takes {taken} and names its output `{holder.target}`: "
            "removing it would need the uses of its output rewired"
        )
    inputs = {view.input_name, *(i.name for i in (view.flow.inputs if view.flow else ()))}
    if holder.target in inputs - {None}:
        raise CannotRemove(f"layer {layer.index} rebinds the model input `{holder.target}`")


def _remove_attribute(view: ModelView, layer: Layer, holder: AttributeLayer) -> tuple[Edit, ...]:
    """`self.<name> = Layer(...)` in `__init__` and `x = self.<name>(x)` in `call`, both gone."""
    if holder.not_chain is not None:
        raise CannotRemove(holder.not_chain)
    applied = holder.applied
    assert applied is not None and holder.output is not None
    name = f"self.{holder.attribute}"
    taken = _applied_to(applied)
    if taken != holder.output:
        what = f"`{taken}`" if taken else "an expression"
        raise CannotRemove(
            f"call() applies {name} to {what} and names its output `{holder.output}`: "
            "removing it would need the uses of its output rewired"
        )
    uses = _attribute_uses(view.module, holder.attribute, set(holder.self_names))
    if uses != 2:
        raise CannotRemove(f"{name} is used elsewhere in the class, not only built and applied")
    return (
        _remove_statement(view, layer, holder.statement),
        _remove_statement(view, layer, applied),
    )


def _applied_to(statement: cst.SimpleStatementLine) -> str | None:
    """The name `out = self.layer(name)` applies the layer to, or None for anything else."""
    small = statement.body[0] if len(statement.body) == 1 else None
    if not isinstance(small, cst.Assign) or not isinstance(small.value, cst.Call):
        return None
    args = small.value.args
    if len(args) != 1 or args[0].keyword is not None or args[0].star:
        return None
    value = args[0].value
    return value.value if isinstance(value, cst.Name) else None


class _AttributeUses:
    def __init__(self, attribute: str, owners: set[str]) -> None:
        self.attribute, self.owners, self.count = attribute, owners, 0

    def visit_Attribute(self, node: cst.Attribute) -> None:
        value = node.value
        if (
            node.attr.value == self.attribute
            and isinstance(value, cst.Name)
            and value.value in self.owners
        ):
            self.count += 1


def _attribute_uses(module: cst.Module, attribute: str, owners: set[str]) -> int:
    """How many times the script reads or writes `<owner>.<attribute>`."""
    uses = _AttributeUses(attribute, owners)
    walk(module, uses)
    return uses.count


def _remove_statement(
    view: ModelView, layer: Layer, statement: cst.SimpleStatementLine
) -> RemoveStatement:
    """A RemoveStatement for the layer's own line, or CannotRemove when the line or its block
    holds something else that would have to go or be rewritten with it."""
    if len(statement.body) != 1:
        raise CannotRemove(f"layer {layer.index} is on a line with other statements")
    small = statement.body[0]
    if isinstance(small, cst.Assign) and len(small.targets) != 1:
        raise CannotRemove(f"layer {layer.index}'s output is assigned to several names at once")
    parent_of = view.parent_of if id(statement) in view.parent_of else parents(view.module)
    block = parent_of.get(id(statement))
    if not isinstance(block, cst.IndentedBlock | cst.Module):
        raise CannotRemove(f"layer {layer.index} is not a statement of a block of its own")
    if len(block.body) < 2:
        raise CannotRemove(
            f"layer {layer.index} is the only statement of its block; removing it would "
            "leave the block empty"
        )
    node: cst.CSTNode | None = block
    while node is not None and not isinstance(node, cst.FunctionDef | cst.Module):
        if isinstance(node, cst.For | cst.While):
            raise CannotRemove(
                f"layer {layer.index} is made inside a loop: its statement makes a layer "
                "on every pass"
            )
        node = parent_of.get(id(node))
    return RemoveStatement(statement)


# -- an element out of a list, its separator and comments in style -----------------------------


def without_element(list_node: cst.List, element: cst.BaseElement) -> cst.List:
    """`list_node` without `element` (by identity) and its comma.

    What the element's own line ends with (its comma, its end-of-line comment) goes with it;
    comment lines above it and above the next element stay; the next element (or the closing
    bracket) takes its place, so one element per line stays one per line, and `[A, B, C]`
    becomes `[A, C]`. ValueError when `element` is not in the list or is its only element.
    """
    elements = list(list_node.elements)
    index = next((i for i, e in enumerate(elements) if e is element), None)
    if index is None or len(elements) < 2:
        raise ValueError("the element is not in the list, or is all of it")
    last = index == len(elements) - 1
    before = (
        list_node.lbracket.whitespace_after if index == 0 else _after_comma(elements[index - 1])
    )
    after = list_node.rbracket.whitespace_before if last else _after_comma(element)
    gap = _gap(before, after, closing=last)
    lbracket, rbracket = list_node.lbracket, list_node.rbracket
    if last:
        previous = elements[index - 1]
        comma = element.comma  # a trailing comma stays a trailing comma
        if isinstance(comma, cst.Comma) and isinstance(previous.comma, cst.Comma):
            comma = previous.comma.with_changes(whitespace_after=comma.whitespace_after)
        elements[index - 1] = previous.with_changes(comma=comma)
        rbracket = rbracket.with_changes(whitespace_before=gap)
    elif index == 0:
        lbracket = lbracket.with_changes(whitespace_after=gap)
    else:
        previous = elements[index - 1]
        assert isinstance(previous.comma, cst.Comma)
        elements[index - 1] = previous.with_changes(
            comma=previous.comma.with_changes(whitespace_after=gap)
        )
    del elements[index]
    return list_node.with_changes(elements=elements, lbracket=lbracket, rbracket=rbracket)


def _after_comma(element: cst.BaseElement) -> cst.BaseParenthesizableWhitespace:
    comma = element.comma
    return comma.whitespace_after if isinstance(comma, cst.Comma) else cst.SimpleWhitespace("")


def _gap(
    before: cst.BaseParenthesizableWhitespace,
    after: cst.BaseParenthesizableWhitespace,
    closing: bool,
) -> cst.BaseParenthesizableWhitespace:
    """The whitespace that joins what came before a removed element to what came after it.

    `before` ends the previous line (its comment) and holds the comment lines above the removed
    element; `after` ends the removed element's own line (its comment goes) and holds the
    comment lines above the next element and the indent it starts at. `closing`: what comes
    after is the closing bracket.
    """
    if isinstance(before, cst.ParenthesizedWhitespace) and isinstance(
        after, cst.ParenthesizedWhitespace
    ):
        return after.with_changes(
            first_line=before.first_line, empty_lines=[*before.empty_lines, *after.empty_lines]
        )
    if isinstance(after, cst.ParenthesizedWhitespace):
        comments = any(line.comment is not None for line in after.empty_lines)
        if closing or comments:
            return after.with_changes(first_line=cst.TrailingWhitespace())
        return before
    if isinstance(before, cst.ParenthesizedWhitespace) and closing:
        # `[A,  # a\n    B]`: A's comment keeps its line; the bracket closes the next one.
        return before.with_changes(last_line=cst.SimpleWhitespace(""))
    return after if closing else before
