"""Find the Keras model a script trains, in any of the styles people write it.

One walk over the tree (`mutator.engine.collect`) gathers the raw facts: model constructions, `.add`
calls, `fit` calls, assignments, argparse options, with names resolved through the script's
imports. `locate()` then assembles the trained model's ModelView from them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import libcst as cst

from mutator.engine import graph, keras_names, subclassed
from mutator.engine.batch_size import resolve_batch_size
from mutator.engine.callargs import find_arg
from mutator.engine.collect import collect_facts
from mutator.engine.epochs import resolve_epochs
from mutator.engine.facts import Assignment, Construction, FitCall, ScriptFacts
from mutator.engine.input_shape import built_shape, data_shape
from mutator.engine.model_view import (
    UNKNOWN_KIND,
    AddedLayer,
    Flow,
    Layer,
    ListedLayer,
    ModelView,
)
from mutator.engine.training_sites import resolve_optimizer
from mutator.errors import ModelNotFoundError

_LOOKED_FOR = (
    "looked for `Sequential()` with `.add(...)`, `Sequential([...])`, `Model(inputs, outputs)`, "
    "or an instance of a `keras.Model` subclass, from keras / tf.keras"
)


@dataclass
class _Candidate:
    """A model construction, with what is known so far of its name and layers."""

    construction: Construction
    name: str
    returned_from: str | None


def locate(module: cst.Module, model_name: str | None = None) -> ModelView:
    """The ModelView of the model the script trains (or the one called `model_name`)."""
    facts = collect_facts(module)
    constructions = [c for c in facts.constructions if not subclassed.owned(c, facts)]
    candidates = [_describe(c, facts) for c in constructions]
    candidates = [c for c in candidates if c is not None]
    if not candidates and facts.model_subclasses:
        raise ModelNotFoundError(
            f"class {facts.model_subclasses[0]} subclasses keras.Model, but no instance of it is "
            "assigned or returned here (looked for `model = "
            f"{facts.model_subclasses[0]}(...)` and a builder function returning one)"
        )
    if not candidates:
        raise ModelNotFoundError(f"no Keras model found: {_LOOKED_FOR}")
    if model_name is not None:
        named = [
            c for c in candidates if model_name in (c.name, c.construction.scope, c.returned_from)
        ]
        if not named:
            found = ", ".join(sorted({c.name for c in candidates}))
            raise ModelNotFoundError(f"no model named {model_name!r}; models found: {found}")
        candidates = named
    trained = [(c, fit) for c in candidates if (fit := _fit_for(c, facts)) is not None]
    if trained:
        chosen, fit = trained[-1]
    elif len(candidates) == 1:
        chosen, fit = candidates[0], None
    else:
        found = ", ".join(c.name for c in candidates)
        raise ModelNotFoundError(
            f"several models ({found}) and none is trained with .fit(); choose one with --model NAME"
        )
    return _assemble(chosen, fit, facts)


def _describe(construction: Construction, facts: ScriptFacts) -> _Candidate | None:
    statement = construction.statement
    target = None
    if statement is not None:
        for small in statement.body:
            if isinstance(small, (cst.Assign, cst.AnnAssign)):
                value = small.value
                node = small.targets[0].target if isinstance(small, cst.Assign) else small.target
                if value is construction.call:
                    target = facts.module.code_for_node(node)
    returned_from = None
    scope = construction.scope
    for ret_scope, value in facts.returns:
        if ret_scope != scope:
            continue
        if value is construction.call or (
            target is not None and facts.module.code_for_node(value) == target
        ):
            returned_from = scope
    if target is None and returned_from is None:
        return None  # a model built and thrown away (or passed straight on): nothing to tune
    return _Candidate(construction, target or f"{scope}()", returned_from)


def _fit_for(candidate: _Candidate, facts: ScriptFacts) -> FitCall | None:
    """The last `fit` that trains this model: on its own name, or on what its builder returns."""
    scope = candidate.construction.scope
    direct = [f for f in facts.fits if f.scope == scope and f.receiver == candidate.name]
    if direct:
        return direct[-1]
    if candidate.returned_from is None:
        return None
    builder = candidate.returned_from.rsplit(".", 1)[-1]
    for assignment in reversed(facts.assignments):
        # `model = build()`, and also `model = compile_model(build(), lr)`.
        if _calls(assignment.value, builder):
            name = facts.module.code_for_node(assignment.target)
            fits = [f for f in facts.fits if f.scope == assignment.scope and f.receiver == name]
            if fits:
                return fits[-1]
    return None


def _calls(expr: cst.BaseExpression, function: str, depth: int = 0) -> bool:
    """True when `expr` is, or passes on as an argument, a call of `function` (by its last name)."""
    if not isinstance(expr, cst.Call) or depth > 4:
        return False
    func = expr.func
    name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
    if name == function:
        return True
    return any(_calls(arg.value, function, depth + 1) for arg in expr.args)


def _assemble(candidate: _Candidate, fit: FitCall | None, facts: ScriptFacts) -> ModelView:
    construction = candidate.construction
    notes: list[str] = []
    input_name = None
    flow = None
    if construction.kind == "sequential":
        layers, style = _sequential_layers(candidate, facts)
        input_shape = _sequential_input_shape(layers)
    elif construction.kind == "subclassed":
        layers = subclassed.read_layers(
            construction,
            facts,
            notes,
            _layer,
            lambda inner, name: _sequential_layers(_Candidate(inner, name, None), facts)[0],
        )
        names = [(construction.scope, candidate.name)]
        names += [(fit.scope, fit.receiver)] if fit is not None else []
        input_shape = (
            _sequential_input_shape(layers)
            or built_shape(names, facts)
            or (data_shape(fit, facts) if fit is not None else None)
        )
        style = "subclassed"
    else:
        layers, input_name, input_shape, flow = _functional_layers(candidate, facts, notes)
        style = "functional"
    if not layers:
        raise ModelNotFoundError(
            f"model {candidate.name!r} ({construction.scope}) has no layers we can read; "
            "layers must be keras layer calls"
        )
    epochs = resolve_epochs(fit, facts) if fit is not None else None
    if fit is None:
        notes.append(f"no .fit() call trains {candidate.name!r}: epochs cannot be changed")
    return ModelView(
        module=facts.module,
        name=candidate.name,
        scope=construction.scope,
        style=style,
        layers=tuple(layers),
        epochs=epochs,
        input_shape=input_shape,
        input_name=input_name,
        layer_imports=dict(facts.layer_imports),
        star_import=facts.star_layers,
        parent_of=facts.parent_of,
        notes=tuple(notes),
        optimizer=resolve_optimizer(
            candidate.name, construction.scope, construction.order, fit, facts
        ),
        batch_size=resolve_batch_size(fit, facts) if fit is not None else None,
        flow=flow,
        facts=facts,
    )


def _sequential_layers(candidate: _Candidate, facts: ScriptFacts) -> tuple[list[Layer], str]:
    call = candidate.construction.call
    layers: list[Layer] = []
    style = "sequential-add"
    listed = find_arg(call, 0, "layers")
    scope, order = candidate.construction.scope, candidate.construction.order
    list_node = listed.value if listed is not None else None
    built_by: Assignment | None = None
    if isinstance(list_node, cst.Name):
        # `layers = [...]` (and `layers.append(...)`) before `Sequential(layers)`.
        built_by = facts.last_assignment(scope, list_node.value, order)
        list_node = built_by.value if built_by is not None else None
    if isinstance(list_node, cst.List):
        style = "sequential-list"
        for element in list_node.elements:
            if isinstance(element, cst.Element):
                layers.append(
                    _layer(len(layers), element.value, ListedLayer(list_node, element), facts)
                )
    if built_by is not None and listed is not None and isinstance(listed.value, cst.Name):
        name = listed.value.value
        appends = [
            a
            for a in facts.appends
            if a.scope == scope and a.receiver == name and built_by.order <= a.order < order
        ]
        for append in appends:
            holder = AddedLayer(append.statement, name, append.in_loop, append.depth, "append")
            layers.append(_layer(len(layers), append.call.args[0].value, holder, facts))
    for add in facts.adds:
        if add.scope == scope and add.order >= order and add.receiver == candidate.name:
            holder = AddedLayer(add.statement, add.receiver, add.in_loop, add.depth)
            layers.append(_layer(len(layers), add.call.args[0].value, holder, facts))
    if (
        layers
        and style == "sequential-list"
        and any(isinstance(x.holder, AddedLayer) for x in layers)
    ):
        style = "sequential-add"
    return layers, style


def _layer(index: int, expr: cst.BaseExpression, holder, facts: ScriptFacts) -> Layer:
    if isinstance(expr, cst.Call):
        # A call that does not resolve to keras.layers (a custom layer, a same-named class from
        # another library) is kept in its place but no rule will touch it.
        kind = facts.layer_kinds.get(expr) or facts.merge_calls.get(expr, UNKNOWN_KIND)
        written = facts.module.code_for_node(expr.func)
        inner = find_arg(expr, 0, "layer") if kind in keras_names.WRAPPER_KINDS else None
        wrapped = None
        if inner is not None and isinstance(inner.value, cst.Call):
            wrapped = _layer(index, inner.value, holder, facts)
        base = facts.layer_bases.get(expr)
        return Layer(index, kind, written, expr, holder, base, wrapped=wrapped)
    return Layer(
        index, facts.module.code_for_node(expr), facts.module.code_for_node(expr), None, holder
    )


def _sequential_input_shape(layers: list[Layer]) -> tuple[int | None, ...] | None:
    if not layers:
        return None
    first = layers[0]
    if first.kind in keras_names.INPUT_KINDS:
        return first.ints_arg(0, "shape", "input_shape")
    shape = first.ints_arg(None, "input_shape")
    if shape is None and (dim := first.int_arg(None, "input_dim")) is not None:
        shape = (dim,)
    return shape


def _functional_layers(
    candidate: _Candidate, facts: ScriptFacts, notes: list[str]
) -> tuple[list[Layer], str | None, tuple[int | None, ...] | None, Flow | None]:
    """The layers of `Model(inputs, outputs)`, from every Input to the outputs (`graph.read`).

    A model applied like a layer (`x = features(inputs)`, where `features` is built here or
    returned by a builder function) contributes its own layers, in place, marked with its name.
    """

    def find_model(expr: cst.Call, scope: str, before: int) -> tuple[Construction, str] | None:
        inner = _submodel(expr, scope, before, facts)
        return (inner.construction, inner.name) if inner is not None else None

    found = graph.read(
        candidate.construction,
        facts,
        lambda expr, holder: _layer(-1, expr, holder, facts),
        find_model,
        lambda inner, name: _sequential_layers(_Candidate(inner, name, None), facts)[0],
    )
    if found is None:
        return [], None, None, None
    notes += found.notes
    return found.layers, found.input_name, found.input_shape, found.flow


def _submodel(
    expr: cst.BaseExpression, scope: str, before: int, facts: ScriptFacts
) -> _Candidate | None:
    """The model that `expr`, a call like `features(x)`, applies: one assigned in this scope
    (`features = Sequential(...)`) or returned by a builder (`features = build_features()`)."""
    if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Name):
        return None
    assigned = facts.last_assignment(scope, expr.func.value, before)
    if assigned is None:
        return None
    value = assigned.value
    described = [d for c in facts.constructions if (d := _describe(c, facts)) is not None]
    for inner in described:
        if inner.construction.call is value:
            return replace(inner, name=expr.func.value)
    if isinstance(value, cst.Call):
        func = value.func
        builder = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "")
        for inner in described:
            if inner.returned_from and inner.returned_from.rsplit(".", 1)[-1] == builder:
                return replace(inner, name=f"{builder}()")
    return None
