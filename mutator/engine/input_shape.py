"""Where a model's input shape is written when no layer says it: a subclassed model's, mostly.

`shapes` needs the input size to keep a new Conv block or a larger kernel within the feature map;
a subclassed model's layers never carry it. It is found in `model.build((None, 8, 8, 1))`, else
in the data the model is fit on (`x = digits.images.reshape(-1, 8, 8, 1)`, followed back from
`fit(x_train, ...)` through `x_train, x_test, ... = train_test_split(x, ...)`). Only literal
dimensions count; anything else leaves the shape unknown, as before.
"""

from __future__ import annotations

import libcst as cst

from mutator.engine.callargs import find_arg, literal_int, literal_ints
from mutator.engine.facts import FitCall, ScriptFacts
from mutator.engine.walk import walk

Shape = tuple[int | None, ...]
_MAX_HOPS = 4


def built_shape(names: list[tuple[str, str]], facts: ScriptFacts) -> Shape | None:
    """The shape `model.build((None, 8, 8, 1))` gives the model known by any of `names`
    (scope, receiver), without the batch dimension."""
    for build in facts.builds:
        if (build.scope, build.receiver) not in names:
            continue
        arg = find_arg(build.call, 0, "input_shape")
        shape = literal_ints(arg.value) if arg is not None else None
        if shape and len(shape) > 1:
            return shape[1:]
    return None


def data_shape(fit: FitCall, facts: ScriptFacts) -> Shape | None:
    """The shape of one sample of the data `fit` trains on, when the script reshapes it with
    literal sizes (`.reshape(-1, 8, 8, 1)` or `.reshape((n, 8, 8, 1))`)."""
    arg = find_arg(fit.call, 0, "x")
    expr = arg.value if arg is not None else None
    before = fit.order
    for _ in range(_MAX_HOPS):
        if expr is None:
            return None
        shape = _reshaped(expr)
        if shape is not None or not isinstance(expr, cst.Name):
            return shape
        expr, before = _source_of(expr.value, fit.scope, before, facts)
    return None


def _source_of(
    name: str, scope: str, before: int, facts: ScriptFacts
) -> tuple[cst.BaseExpression | None, int]:
    """What `name` was last assigned from: the value of `name = ...`, or for `a_train, a_test,
    b_train, b_test = train_test_split(a, b, ...)` the array `name` is a split of."""
    found: tuple[cst.BaseExpression | None, int] = (None, before)
    for assignment in facts.assignments:
        if assignment.order >= before:
            break
        if assignment.scope not in (scope, "<module>"):
            continue
        target = assignment.target
        if isinstance(target, cst.Name) and target.value == name:
            found = (assignment.value, assignment.order)
        elif isinstance(target, (cst.Tuple, cst.List)) and isinstance(assignment.value, cst.Call):
            names = [getattr(e.value, "value", None) for e in target.elements]
            if name in names:
                split = names.index(name) // 2  # train_test_split returns two parts per array
                argument = find_arg(assignment.value, split)
                found = (argument.value if argument is not None else None, assignment.order)
    return found


class _Reshapes:
    def __init__(self) -> None:
        self.shapes: list[Shape] = []

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "reshape":
            return
        items: list[cst.Arg] | list[cst.BaseElement] = [a for a in node.args if a.keyword is None]
        if len(items) == 1 and isinstance(items[0].value, (cst.Tuple, cst.List)):
            items = list(items[0].value.elements)  # `.reshape((n, 8, 8, 1))`
        dims = [literal_int(item.value) for item in items]
        if len(dims) > 1 and all(d is not None and d > 0 for d in dims[1:]):
            self.shapes.append(tuple(dims[1:]))


def _reshaped(expr: cst.BaseExpression) -> Shape | None:
    reshapes = _Reshapes()
    walk(expr, reshapes)
    return reshapes.shapes[0] if reshapes.shapes else None  # the outermost: applied last
