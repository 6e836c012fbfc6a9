"""Where the trained model's optimizer, learning rate and batch size are really written.

The optimizer is read from the model's `compile` call: a string (`optimizer="adam"`: that
optimizer's own default rate), an object (`keras.optimizers.SGD(learning_rate=0.01)`, Keras 2's
`lr=`, a positional rate, an object assigned to a variable first, one wrapped for mixed
precision), or nothing (Keras compiles with RMSprop). Optimizer classes are resolved through the
script's imports as layers are (`mutator.engine.collect`). The rate is then followed to where
it is defined (`mutator.engine.follow`): a literal, a constant, a variable, a parameter default,
an argparse or absl default, a defaults dict, or a decay schedule's `initial_learning_rate`.
What cannot be followed is a site of kind "unresolved" with the reason, never an exception.
(`fit`'s batch size is found the same way, in `mutator.engine.batch_size`.)
"""

from __future__ import annotations

import dataclasses

import libcst as cst

from mutator.engine import keras_names
from mutator.engine.callargs import find_arg, has_star_args, literal_number, literal_str
from mutator.engine.facts import CompileCall, FitCall, ScriptFacts
from mutator.engine.follow import Definition, Reading, Use, follow
from mutator.engine.model_view import OptimizerSite, OptimizerSpelling

_RATE_KEYWORDS = ("learning_rate", "lr")  # Keras 2 still took `lr=`


def format_rate(value: float) -> str:
    """A learning rate to 3 significant digits, as Python prints a short float: 0.003, 3e-05."""
    return repr(float(f"{value:.3g}"))


def resolve_optimizer(
    model: str, scope: str, built_at: int, fit: FitCall | None, facts: ScriptFacts
) -> OptimizerSite | None:
    """The optimizer of the model called `model`, built in `scope` at statement `built_at` and
    trained by `fit`; None when it is neither compiled nor trained here."""
    compiled = _compile_for(model, scope, built_at, fit, facts)
    if compiled is None:
        if fit is None:
            return None
        why = f"no `{fit.receiver}.compile(...)` found: the optimizer is set elsewhere"
        return OptimizerSite("unresolved", None, None, None, None, why)
    return _OptimizerReader(compiled, facts).site()


def _compile_for(
    model: str, scope: str, built_at: int, fit: FitCall | None, facts: ScriptFacts
) -> CompileCall | None:
    """The compile call before the fit on the same name, else the model's own in its builder,
    else the only compile call of the script (`re.compile` and the like excepted)."""
    if fit is not None:
        before = [
            c
            for c in facts.compiles
            if c.scope == fit.scope and c.receiver == fit.receiver and c.order <= fit.order
        ]
        if before:
            return before[-1]
    own = [
        c
        for c in facts.compiles
        if c.scope == scope and c.receiver == model and c.order >= built_at
    ]
    if own:
        return own[-1]
    of_models = [c for c in facts.compiles if not c.names.get(c.receiver.split(".")[0])]
    return of_models[0] if len(of_models) == 1 else None


def _is_float_call(node: cst.BaseExpression) -> bool:
    """`float(...)`: a number for sure, unlike other calls (a schedule of the script's own?)."""
    return isinstance(node, cst.Call) and getattr(node.func, "value", None) == "float"


class _OptimizerReader:
    """Reads one compile call's optimizer into an OptimizerSite."""

    def __init__(self, compiled: CompileCall, facts: ScriptFacts) -> None:
        self.compiled = compiled
        self.facts = facts
        self.use = Use(compiled.scope, compiled.order)

    def code(self, node: cst.CSTNode) -> str:
        return self.facts.module.code_for_node(node)

    def site(self) -> OptimizerSite:
        call = self.compiled.call
        arg = find_arg(call, 0, "optimizer")
        if arg is not None:
            return self._optimizer(arg.value, arg.value, ())
        if has_star_args(call):
            return self._unresolved("the compile call takes ** arguments: they may set it")
        cls = keras_names.DEFAULT_OPTIMIZER
        return self._by_name(cls, None, f"no optimizer in the compile call: Keras uses {cls}", ())

    def _unresolved(self, why: str, cls: str | None = None) -> OptimizerSite:
        return OptimizerSite("unresolved", cls, None, None, self.compiled.call, why)

    def _optimizer(
        self, expr: cst.BaseExpression, written: cst.BaseExpression, names: tuple[str, ...]
    ) -> OptimizerSite:
        reading = Reading("optimizer", literal_str, "the compile call", show=repr)
        found = follow(expr, self.use, self.facts, reading)
        names = (*names, *found.names)
        code = self.code(written)
        if isinstance(found.value, str):
            if found.kind not in ("literal", "constant", "variable"):
                return self._unresolved(f"optimizer={code} comes from {found.detail}")
            cls = keras_names.OPTIMIZER_STRINGS.get(found.value.lower())
            if cls is None:
                return self._unresolved(f"optimizer={code}: no Keras optimizer is called that")
            detail = f"optimizer={code} in the compile call"
            if found.kind != "literal":
                detail += f" ({found.detail})"
            return self._by_name(cls, written, detail, names)
        if found.kind == "expression" and isinstance(found.node, cst.Call):
            return self._object(found.node, written, names)
        if found.kind == "unresolved":
            return self._unresolved(found.detail)
        return self._unresolved(f"optimizer={code}: not an optimizer's name or object")

    def _by_name(
        self, cls: str, written: cst.BaseExpression | None, detail: str, names: tuple[str, ...]
    ) -> OptimizerSite:
        """An optimizer given by name (or not at all): its default rate, and how to write it."""
        rate = keras_names.DEFAULT_LEARNING_RATE.get(cls)
        return OptimizerSite(
            "default",
            cls,
            rate,
            None,
            self.compiled.call,
            detail,
            written=written,
            names=names,
            spelling=self._spelling(cls),
        )

    def _object(
        self, call: cst.Call, written: cst.BaseExpression, names: tuple[str, ...]
    ) -> OptimizerSite:
        cls = self.facts.optimizer_kinds.get(call)
        callee = self.code(call.func)
        if cls in keras_names.WRAPPING_OPTIMIZERS:
            inner = find_arg(call, 0, "inner_optimizer")
            if inner is None:
                return self._unresolved(f"{callee}(...) wraps no optimizer we can read", cls)
            return self._optimizer(inner.value, inner.value, names)
        if has_star_args(call):
            return self._unresolved(f"{callee}(...) takes ** arguments: they may set the rate", cls)
        rate = find_arg(call, 0 if cls is not None else None, *_RATE_KEYWORDS)
        if cls is None:
            if rate is None:
                why = f"optimizer={self.code(written)}: {callee} is not a Keras optimizer"
                return self._unresolved(why)
            cls = callee.rpartition(".")[2]  # another library's optimizer, with its rate written
        if rate is None:
            default = keras_names.DEFAULT_LEARNING_RATE.get(cls)
            if default is None:
                return self._unresolved(
                    f"{callee}(): no rate given, and its default is unknown", cls
                )
            detail = f"{callee}(...) with no learning rate given"
            compiled = self.compiled.call
            return OptimizerSite(
                "default", cls, default, None, compiled, detail, written, call, names=names
            )
        keyword = rate.keyword.value if rate.keyword is not None else "learning_rate"
        where = f"{callee}(...)" + (", its first argument" if rate.keyword is None else "")
        found = self._follow_rate(rate.value, keyword, where)
        if found.kind == "expression" and isinstance(found.node, cst.Call):
            schedule = self.facts.schedule_kinds.get(found.node)
            if schedule is not None:
                names = (*names, *found.names)
                return self._schedule(found.node, schedule, cls, call, written, names)
        return self._site(found, cls, call, written, names)

    def _follow_rate(self, expr: cst.BaseExpression, keyword: str, where: str) -> Definition:
        reading = Reading(keyword, literal_number, where, show=format_rate)
        return follow(expr, self.use, self.facts, reading)

    def _site(
        self,
        found: Definition,
        cls: str,
        call: cst.Call,
        written: cst.BaseExpression,
        names: tuple[str, ...],
        schedule: str | None = None,
    ) -> OptimizerSite:
        made_by_call = isinstance(found.node, cst.Call) and not _is_float_call(found.node)
        if found.kind == "expression" and made_by_call:
            why = f"{found.detail.removesuffix(', computed')} is made by a call (a schedule?)"
            return self._unresolved(why, cls)
        site = OptimizerSite(
            found.kind,
            cls,
            found.value,
            found.node,
            self.compiled.call,
            found.detail,
            written=written,
            optimizer_call=call,
            schedule=schedule,
            names=(*names, *found.names),
        )
        return site if found.kind != "unresolved" else dataclasses.replace(site, node=None)

    def _schedule(
        self,
        schedule_call: cst.Call,
        schedule: str,
        cls: str,
        call: cst.Call,
        written: cst.BaseExpression,
        names: tuple[str, ...],
    ) -> OptimizerSite:
        callee = self.code(schedule_call.func)
        if schedule not in keras_names.DECAY_SCHEDULES:
            why = f"the rate is a {callee}(...): only a decay schedule's initial rate is changed"
            return self._unresolved(why, cls)
        if has_star_args(schedule_call):
            return self._unresolved(f"{callee}(...) takes ** arguments: they may set the rate", cls)
        if find_arg(schedule_call, None, "warmup_target") is not None:
            why = f"{callee}(...) warms up to its warmup_target: its peak rate is not changed here"
            return self._unresolved(why, cls)
        initial = find_arg(schedule_call, 0, "initial_learning_rate")
        if initial is None:
            return self._unresolved(f"{callee}(...) has no initial_learning_rate", cls)
        found = self._follow_rate(initial.value, "initial_learning_rate", f"{callee}(...)")
        return self._site(found, cls, call, written, names, schedule)

    def _spelling(self, cls: str) -> OptimizerSpelling:
        """How the script would write `cls` at the compile call: an import of it, the
        optimizers module, the Keras package, tensorflow's `tf.keras`; else a new import of it
        from the package the script imports Keras from, after its last Keras import."""
        names = self.compiled.names
        ways = (
            (lambda q: keras_names.optimizer_class(q) == cls, ""),
            (keras_names.is_optimizers_module, f".{cls}"),
            (lambda q: keras_names.keras_package(q) == q, f".optimizers.{cls}"),
            (lambda q: q == "tensorflow", f".keras.optimizers.{cls}"),
        )
        for matches, suffix in ways:
            for local, qualified in names.items():
                if qualified and matches(qualified):
                    return OptimizerSpelling(local + suffix)
        if cls in names:
            return OptimizerSpelling(None, why=f"{cls} already names something else here")
        imports = [i for i in self.facts.keras_imports if i.scope == "<module>"] or [
            i for i in self.facts.keras_imports if i.scope == self.compiled.scope
        ]
        if not imports:
            return OptimizerSpelling(None, why=f"no Keras import to import {cls} beside")
        anchor = imports[-1]
        line = f"from {anchor.package}.optimizers import {cls}"
        return OptimizerSpelling(cls, line, anchor.statement)
