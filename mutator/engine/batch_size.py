"""Where the trained model's batch size is really written: `fit(batch_size=...)` (or its third
argument) followed to its definition as epochs are (`mutator.engine.follow`), Keras's 32 when it
is not given. A `fit` on a tf.data.Dataset or a generator takes no batch size: its batches are
made where the pipeline is built (`dataset.batch(n)`), which is out of reach here, and the site
says so (kind "pipeline")."""

from __future__ import annotations

import libcst as cst

from mutator.engine.callargs import find_arg, has_star_args, literal_int
from mutator.engine.facts import FitCall, ScriptFacts
from mutator.engine.follow import Reading, Use, follow
from mutator.engine.model_view import BatchSizeSite
from mutator.engine.walk import walk

KERAS_BATCH_SIZE = 32  # what fit uses when no batch size is given
_BATCH = Reading("batch_size", literal_int, "the fit call")
# Calls that make a tf.data pipeline or a generator of batches: fit then takes no batch size.
_PIPELINE_CALLS = frozenset(
    {
        "batch", "padded_batch", "rebatch", "unbatch", "prefetch", "repeat", "shuffle", "cache",
        "from_tensor_slices", "from_tensors", "from_generator", "flow", "flow_from_directory",
        "flow_from_dataframe", "image_dataset_from_directory", "text_dataset_from_directory",
        "audio_dataset_from_directory", "timeseries_dataset_from_array", "make_csv_dataset",
    }
)  # fmt: skip


def resolve_batch_size(fit: FitCall, facts: ScriptFacts) -> BatchSizeSite:
    call = fit.call
    if isinstance(call.func, cst.Attribute) and call.func.attr.value == "fit_generator":
        return BatchSizeSite(
            "pipeline", None, None, call, "fit_generator: its generator makes the batches"
        )
    arg = find_arg(call, 2, "batch_size")  # fit(x, y, batch_size, epochs, ...)
    if arg is not None:
        found = follow(arg.value, Use(fit.scope, fit.order), facts, _BATCH)
        return BatchSizeSite(found.kind, found.value, found.node, call, found.detail, found.names)
    pipeline = _pipeline(fit, facts)
    if pipeline is not None:
        return BatchSizeSite("pipeline", None, None, call, pipeline)
    if has_star_args(call):
        stars = ", ".join(facts.module.code_for_node(a).rstrip(", ") for a in call.args if a.star)
        why = f"fit takes {stars}: the batch size may be set there"
        return BatchSizeSite("unresolved", None, None, call, why)
    detail = f"not given: Keras takes batches of {KERAS_BATCH_SIZE}"
    return BatchSizeSite("default", KERAS_BATCH_SIZE, None, call, detail)


def _pipeline(fit: FitCall, facts: ScriptFacts) -> str | None:
    """Why fit's input is a data pipeline or a generator (its batches are made where it is
    built, `dataset.batch(n)`, which no rule changes), or None for arrays."""
    x = find_arg(fit.call, 0, "x")
    if x is None:
        return None
    code = facts.module.code_for_node(x.value)
    tail = "its batch size is set where it is built (dataset.batch(n)), which is not changed here"
    if _makes_batches(_origin(x.value, fit, facts)):
        return f"fit takes `{code}`, a data pipeline or generator: {tail}"
    if find_arg(fit.call, 1, "y") is None:
        return f"fit takes `{code}` and no targets, so a tf.data.Dataset or a generator: {tail}"
    return None


def _origin(expr: cst.BaseExpression, fit: FitCall, facts: ScriptFacts) -> cst.BaseExpression:
    """What a name passed to fit was last assigned (through up to four names)."""
    for _ in range(4):
        if not isinstance(expr, cst.Name):
            break
        assignment = facts.last_assignment(fit.scope, expr.value, fit.order)
        if assignment is None:
            assignment = facts.last_assignment("<module>", expr.value, 1 << 62)
        if assignment is None:
            break
        expr = assignment.value
    return expr


class _CallNames:
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "")
        self.names.add(name)


def _makes_batches(expr: cst.BaseExpression) -> bool:
    calls = _CallNames()
    walk(expr, calls)
    return bool(calls.names & _PIPELINE_CALLS)
