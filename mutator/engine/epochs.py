"""Where a `fit` call's epochs really come from: a literal, a constant, a variable, a parameter's
default or an argparse default, so `more_epochs` edits the one place the number is written."""

from __future__ import annotations

import dataclasses

import libcst as cst

from mutator.engine.callargs import find_arg, literal_int, literal_str
from mutator.engine.facts import FitCall, ScriptFacts
from mutator.engine.model_view import EpochsSite

# Keras binds fit(x, y, batch_size, epochs, ...) and fit_generator(generator, steps, epochs, ...).
_EPOCHS_POSITION = {"fit": 3, "fit_generator": 2}
_MAX_HOPS = 4


def resolve_epochs(fit: FitCall, facts: ScriptFacts) -> EpochsSite:
    call = fit.call
    method = call.func.attr.value if isinstance(call.func, cst.Attribute) else "fit"
    arg = find_arg(call, _EPOCHS_POSITION.get(method, 3), "epochs", "nb_epoch")
    if arg is None:
        return EpochsSite("default", 1, None, call, "not given: Keras trains 1 epoch")
    return _resolve(arg.value, fit, facts, hops=0)


def _resolve(expr: cst.BaseExpression, fit: FitCall, facts: ScriptFacts, hops: int) -> EpochsSite:
    code = facts.module.code_for_node(expr)
    value = literal_int(expr)
    if value is not None:
        kind = "literal" if hops == 0 else "variable"
        return EpochsSite(kind, value, expr, fit.call, f"epochs={code} in the fit call")
    if hops >= _MAX_HOPS:
        return _unresolved(fit, code, "too many indirections")
    if isinstance(expr, cst.Name):
        return _resolve_name(expr.value, fit, facts, hops)
    if isinstance(expr, cst.Attribute):
        return _resolve_argparse(expr.attr.value, code, fit, facts)
    return _unresolved(fit, code, "not a literal, a constant, a variable or an argparse default")


def _resolve_name(name: str, fit: FitCall, facts: ScriptFacts, hops: int) -> EpochsSite:
    site = _resolve_name_value(name, fit, facts, hops)
    return dataclasses.replace(site, names=(name, *site.names))


def _resolve_name_value(name: str, fit: FitCall, facts: ScriptFacts, hops: int) -> EpochsSite:
    assignment = facts.last_assignment(fit.scope, name, fit.order)
    if assignment is None and fit.scope != "<module>":
        parameter = _parameter_default(facts.functions.get(fit.scope), name)
        if parameter is not None:
            value = literal_int(parameter)
            if value is None:
                return _unresolved(fit, name, f"the default of parameter {name!r} is not a literal")
            return EpochsSite(
                "parameter",
                value,
                parameter,
                fit.call,
                f"default of parameter {name}={value} in {fit.scope}()",
            )
        assignment = facts.last_assignment("<module>", name, 1 << 62)
    if assignment is None:
        return _unresolved(fit, name, f"no assignment to {name!r} found")
    value = literal_int(assignment.value)
    if value is not None:
        where = (
            "module constant" if assignment.scope == "<module>" and name.isupper() else "variable"
        )
        kind = "constant" if where == "module constant" else "variable"
        return EpochsSite(kind, value, assignment.value, fit.call, f"{name} = {value} ({where})")
    inner = _resolve(assignment.value, fit, facts, hops + 1)
    return inner


def _parameter_default(function: cst.FunctionDef | None, name: str) -> cst.BaseExpression | None:
    if function is None:
        return None
    params = function.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == name:
            return param.default
    return None


def _resolve_argparse(dest: str, code: str, fit: FitCall, facts: ScriptFacts) -> EpochsSite:
    for call in facts.arguments:
        if _argparse_dest(call) != dest:
            continue
        default = find_arg(call, None, "default")
        if default is None:
            return _unresolved(fit, code, f"argparse option for {dest!r} has no default")
        value = literal_int(default.value)
        if value is None:
            return _unresolved(fit, code, f"argparse default for {dest!r} is not a literal")
        flag = literal_str(call.args[0].value) if call.args else dest
        return EpochsSite(
            "argparse", value, default.value, fit.call, f"argparse {flag} default={value}"
        )
    return _unresolved(fit, code, "not a literal, a constant, a variable or an argparse default")


def _argparse_dest(call: cst.Call) -> str | None:
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


def _unresolved(fit: FitCall, code: str, why: str) -> EpochsSite:
    return EpochsSite("unresolved", None, None, fit.call, f"epochs={code}: {why}")
