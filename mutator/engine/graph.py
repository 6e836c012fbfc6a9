"""A functional model's graph: every layer from each `keras.Input` to `Model(inputs, outputs)`.

The reader walks back from the model's outputs through `x = Layer(...)(x)` assignments, along
every branch: merges written as layer classes (`layers.Concatenate()([a, b])`, `layers.Add()`)
or as Keras's functions (`layers.concatenate([a, b])`, `keras.layers.add([...])`), one tensor
taken by several layers, models applied like layers (their layers are read in place, marked with
their name). The layers come out in the order the script applies them (so every layer follows the
layers it takes), with a `Flow` saying which takes which: rules find a layer's neighbours in its
branch, not in that order.

What a change of a layer's size reaches through that graph is `shapes.size_conflict`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import libcst as cst

from mutator.engine.callargs import find_arg, literal_ints
from mutator.engine.facts import Assignment, Construction, ScriptFacts
from mutator.engine.model_view import AppliedLayer, Flow, Layer, ModelInput

_MAX_LAYERS = 1000
_MAX_DEPTH = 4  # models applied like layers, inside each other


@dataclass(frozen=True)
class _Ref:
    """What a tensor expression stands for: a layer's output, a model input, or unread code."""

    kind: str  # "layer" | "input" | "unread"
    number: int = -1  # the node's or the input's number


@dataclass
class _Node:
    layer: Layer
    place: int  # the statement of the trained model's function that applies it
    reads: list[_Ref]


@dataclass(frozen=True)
class _Context:
    """Where an expression is read: its function, the statement it is in (and the assignment,
    when the statement assigns it), and the inputs of the model being read inside another."""

    scope: str
    before: int
    statement: cst.SimpleStatementLine | None
    assigned: Assignment | None = None
    place: int | None = None  # where the trained model applies this model; None: itself
    model: str | None = None  # the name of the model applied like a layer
    bound: tuple[tuple[int, tuple[_Ref, ...]], ...] = ()  # id(Input call) -> outer tensors
    depth: int = 0


@dataclass
class FunctionalModel:
    """What `read` found: the layers in order, their flow, the model's inputs' name and shape."""

    layers: list[Layer]
    flow: Flow
    input_name: str | None = None
    input_shape: tuple[int | None, ...] | None = None
    notes: list[str] = field(default_factory=list)


MakeLayer = Callable[[cst.BaseExpression, AppliedLayer], Layer]
# A model applied like a layer (`features(x)`): its construction and name, or None.
FindModel = Callable[[cst.Call, str, int], "tuple[Construction, str] | None"]
ReadChain = Callable[[Construction, str], list[Layer]]


def read(
    construction: Construction,
    facts: ScriptFacts,
    make_layer: MakeLayer,
    find_model: FindModel,
    read_chain: ReadChain,
) -> FunctionalModel | None:
    """The graph of `Model(inputs, outputs)` built by `construction`; None without outputs."""
    call = construction.call
    outputs_arg = find_arg(call, 1, "outputs")
    if outputs_arg is None:
        return None
    inputs_arg = find_arg(call, 0, "inputs")
    container = None
    if inputs_arg is not None and isinstance(inputs_arg.value, cst.Name):
        # `Model(inputs, ...)` where `inputs` is a dict or a list of keras.Input, not one Input
        name = inputs_arg.value.value
        bound = facts.last_assignment(construction.scope, name, construction.order)
        value = bound.value if bound is not None else None
        if not (isinstance(value, cst.Call) and facts.layer_kinds.get(value) == "Input"):
            container = name
    reader = _Reader(facts, make_layer, find_model, read_chain, container)
    context = _Context(construction.scope, construction.order, construction.statement)
    outputs = reader.tensors(outputs_arg.value, context)
    named = (
        inputs_arg.value.value if inputs_arg and isinstance(inputs_arg.value, cst.Name) else None
    )
    return reader.finish(outputs, named)


class _Reader:
    def __init__(
        self,
        facts: ScriptFacts,
        make_layer: MakeLayer,
        find_model: FindModel,
        read_chain: ReadChain,
        container: str | None,
    ) -> None:
        self.facts = facts
        self.make_layer = make_layer
        self.find_model = find_model
        self.read_chain = read_chain
        self.container = container  # the name of the model's inputs, when not one keras.Input
        self.nodes: list[_Node] = []
        self.inputs: list[ModelInput] = []
        self.input_calls: dict[int, int] = {}  # id(Input call) -> input number
        self.memo: dict[tuple[int, tuple], list[_Ref]] = {}
        self.visited: dict[int, list[_Ref]] = {}  # id(assignment) -> what its value stands for
        self.unread: list[tuple[_Context, cst.BaseExpression]] = []
        self.notes: list[str] = []

    # -- the walk --------------------------------------------------------------------------
    def tensors(self, expr: cst.BaseExpression, context: _Context) -> list[_Ref]:
        key = (id(expr), context.bound)
        if key not in self.memo:
            self.memo[key] = self._tensors(expr, context)
        return self.memo[key]

    def _tensors(self, expr: cst.BaseExpression, context: _Context) -> list[_Ref]:
        if len(self.nodes) >= _MAX_LAYERS:
            return [_Ref("unread")]
        if isinstance(expr, cst.Name):
            return self._name(expr, context)
        if isinstance(expr, (cst.List, cst.Tuple)):
            found: list[_Ref] = []
            for element in expr.elements:
                if not isinstance(element, cst.Element):
                    return self._unreadable(expr, context)
                found += self.tensors(element.value, context)
            return found
        if isinstance(expr, cst.Dict):
            found = []
            for element in expr.elements:
                if not isinstance(element, cst.DictElement):
                    return self._unreadable(expr, context)
                found += self.tensors(element.value, context)
            return found
        if isinstance(expr, cst.Call):
            return self._call(expr, context)
        return self._unreadable(expr, context)

    def _name(self, expr: cst.Name, context: _Context) -> list[_Ref]:
        assigned = self.facts.last_assignment(context.scope, expr.value, context.before)
        if assigned is None:
            # A function's parameter, say: nothing to read, and no note (as for a chain).
            return [_Ref("unread")]
        inner = replace(
            context, before=assigned.order, statement=assigned.statement, assigned=assigned
        )
        found = self.tensors(assigned.value, inner)
        self.visited[id(assigned)] = found
        return found

    def _call(self, expr: cst.Call, context: _Context) -> list[_Ref]:
        facts = self.facts
        if isinstance(expr.func, cst.Call) and expr.func in facts.layer_kinds:
            taken = expr.args[0].value if expr.args else None
            return [self._applied(expr, expr.func, taken, context)]
        if expr in facts.merge_calls:
            taken_arg = find_arg(expr, 0, "inputs")
            taken = taken_arg.value if taken_arg is not None else None
            return [self._applied(expr, expr, taken, context)]
        if facts.layer_kinds.get(expr) == "Input":
            return self._input(expr, context)
        if context.depth < _MAX_DEPTH:
            found = self.find_model(expr, context.scope, context.before)
            if found is not None:
                applied = self._model(expr, *found, context)
                if applied is not None:
                    return applied
        return self._unreadable(expr, context)

    def _applied(
        self,
        expr: cst.Call,
        constructor: cst.Call,
        taken: cst.BaseExpression | None,
        context: _Context,
    ) -> _Ref:
        """`<layer>(taken)`: a node, after the nodes of what it takes."""
        assigned = context.assigned
        target = None
        if (
            assigned is not None
            and assigned.value is expr
            and isinstance(assigned.target, cst.Name)
        ):
            target = assigned.target.value
        source = taken.value if isinstance(taken, cst.Name) else None
        if context.statement is None:
            return _Ref("unread")
        holder = AppliedLayer(context.statement, target, source)
        reads = self.tensors(taken, replace(context, assigned=None)) if taken is not None else []
        if taken is not None and not reads:  # `concatenate(branches)`, `branches` filled later
            reads = self._unreadable(taken, context)
        layer = self.make_layer(constructor, holder)
        if context.model is not None:
            layer = replace(layer, model=layer.model or context.model)
        return self._add(layer, reads, context)

    def _add(self, layer: Layer, reads: list[_Ref], context: _Context) -> _Ref:
        place = context.place if context.place is not None else context.before
        self.nodes.append(_Node(layer, place, reads))
        return _Ref("layer", len(self.nodes) - 1)

    def _input(self, expr: cst.Call, context: _Context) -> list[_Ref]:
        for call_id, outer in context.bound:
            if call_id == id(expr):
                return list(outer)
        if id(expr) not in self.input_calls:
            assigned = context.assigned
            name = None
            if assigned is not None and assigned.value is expr:
                name = self.facts.module.code_for_node(assigned.target)
            shape_arg = find_arg(expr, 0, "shape")
            shape = literal_ints(shape_arg.value) if shape_arg is not None else None
            self.input_calls[id(expr)] = len(self.inputs)
            self.inputs.append(ModelInput(name, shape))
        return [_Ref("input", self.input_calls[id(expr)])]

    def _model(
        self, expr: cst.Call, inner: Construction, name: str, context: _Context
    ) -> list[_Ref] | None:
        """A model applied like a layer: its layers in place, taking what the call passes."""
        if not expr.args:
            return None
        passed = self.tensors(expr.args[0].value, replace(context, assigned=None))
        place = context.place if context.place is not None else context.before
        model = context.model or name
        if inner.kind == "sequential":
            reads, at = passed, replace(context, place=place)
            for layer in self.read_chain(inner, name):
                reads = [self._add(replace(layer, model=layer.model or model), reads, at)]
            return reads
        if inner.kind != "functional":
            return None  # a subclassed model applied like a layer: not read inside
        outputs = find_arg(inner.call, 1, "outputs")
        inputs = find_arg(inner.call, 0, "inputs")
        bound = self._bind(inner, inputs, passed) if inputs is not None else None
        if outputs is None or bound is None:
            return None
        inside = _Context(
            inner.scope,
            inner.order,
            inner.statement,
            place=place,
            model=model,
            bound=bound,
            depth=context.depth + 1,
        )
        return self.tensors(outputs.value, inside)

    def _bind(
        self, inner: Construction, inputs: cst.Arg, passed: list[_Ref]
    ) -> tuple[tuple[int, tuple[_Ref, ...]], ...] | None:
        """The inner model's Input calls, each with the tensor the outer call passes for it."""
        names = inputs.value.elements if isinstance(inputs.value, (cst.List, cst.Tuple)) else None
        exprs = [e.value for e in names] if names is not None else [inputs.value]
        if len(exprs) != len(passed):
            return None
        bound = []
        for expr, outer in zip(exprs, passed, strict=True):
            if isinstance(expr, cst.Name):
                assigned = self.facts.last_assignment(inner.scope, expr.value, inner.order)
                expr = assigned.value if assigned is not None else expr
            if not isinstance(expr, cst.Call) or self.facts.layer_kinds.get(expr) != "Input":
                return None
            bound.append((id(expr), (outer,)))
        return tuple(bound)

    def _unreadable(self, expr: cst.BaseExpression, context: _Context) -> list[_Ref]:
        code = self.facts.module.code_for_node(expr)
        assigned = context.assigned
        if self.container is not None and (
            self.container in _names_in(expr)
            or (
                assigned is not None
                and assigned.value is expr
                and self.facts.module.code_for_node(assigned.target) == self.container
            )
        ):
            # `Concatenate()(list(inputs.values()))`: the model's inputs are a dict or a list of
            # keras.Input, given to Model as `inputs`: read no further.
            self.notes.append(f"the model's inputs are `{code}`")
            if id(expr) not in self.input_calls:
                self.input_calls[id(expr)] = len(self.inputs)
                self.inputs.append(ModelInput(self.container, None))
            return [_Ref("input", self.input_calls[id(expr)])]
        self.notes.append(f"stopped reading the model at `{code}`")
        self.unread.append((context, expr))
        return [_Ref("unread")]

    # -- the result ------------------------------------------------------------------------
    def finish(self, outputs: list[_Ref], input_name: str | None) -> FunctionalModel:
        order = sorted(range(len(self.nodes)), key=lambda n: self.nodes[n].place)
        index = {node: i for i, node in enumerate(order)}
        layers = [replace(self.nodes[n].layer, index=index[n]) for n in order]
        reads = tuple(
            tuple(index[r.number] for r in self.nodes[n].reads if r.kind == "layer") for n in order
        )
        reads_inputs = tuple(
            tuple(r.number for r in self.nodes[n].reads if r.kind == "input") for n in order
        )
        unread = frozenset(
            index[n] for n in order if any(r.kind == "unread" for r in self.nodes[n].reads)
        )
        flow = Flow(
            reads=reads,
            reads_inputs=reads_inputs,
            inputs=tuple(self.inputs),
            outputs=tuple(sorted({index[r.number] for r in outputs if r.kind == "layer"})),
            unread=unread,
            opaque=frozenset(index[n] for n in self._opaque()),
        )
        found = FunctionalModel(layers, flow, notes=self.notes)
        if self.inputs:
            found.input_name = input_name
        if len(self.inputs) == 1:
            found.input_shape = self.inputs[0].shape
        return found

    def _opaque(self) -> set[int]:
        """Nodes whose output code we could not read also takes: in an expression the walk
        stopped at (`concatenate([x, x + y])`), or in a statement it never reached."""
        found: set[int] = set()
        for context, expr in self.unread:
            found |= self._nodes_read(expr, context.scope, context.before)
        walked = {context.scope for context, _ in self.unread}
        walked |= {a.scope for a in self.facts.assignments if id(a) in self.visited}
        constructions = {id(c.call) for c in self.facts.constructions}
        for assignment in self.facts.assignments:
            value = assignment.value
            if (
                id(assignment) in self.visited
                or assignment.scope not in walked
                or id(value) in constructions
                or not _computes(value)
            ):
                continue
            found |= self._nodes_read(value, assignment.scope, assignment.order)
        return found

    def _nodes_read(self, expr: cst.BaseExpression, scope: str, before: int) -> set[int]:
        found: set[int] = set()
        for name in _names_in(expr):
            assigned = self.facts.last_assignment(scope, name, before)
            refs = self.visited.get(id(assigned)) if assigned is not None else None
            found |= {r.number for r in refs or () if r.kind == "layer"}
        return found


class _Names(cst.CSTVisitor):
    """The names an expression reads (not attribute names, not keywords)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False


def _names_in(expr: cst.BaseExpression) -> set[str]:
    names = _Names()
    expr.visit(names)
    return names.names


class _Computes(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False

    def visit_Call(self, node: cst.Call) -> None:
        self.found = True

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        self.found = True


def _computes(expr: cst.BaseExpression) -> bool:
    """True when `expr` calls something or computes with operators (not a plain alias)."""
    finder = _Computes()
    expr.visit(finder)
    return finder.found
