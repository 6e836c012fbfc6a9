"""Where a `fit` call's epochs really come from, so `more_epochs` edits the one place the number is
written: a literal (`epochs=` or Keras 1's `nb_epoch=`), a constant, a variable, a parameter's
default, an argparse default, an absl flag's default (`flags.DEFINE_integer("epochs", 10, ...)`
read as `FLAGS.epochs`), a defaults dict (`dict(epochs=27)` read as `config.epochs`), or an
expression (`int(math.ceil(12 / n))`), which is multiplied, never evaluated."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

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
    site = _resolve(arg.value, fit, facts, hops=0)
    if arg.keyword is not None and arg.keyword.value == "nb_epoch" and site.kind == "literal":
        return replace(site, detail=site.detail.replace("epochs=", "nb_epoch=", 1))  # Keras 1
    return site


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
        return _resolve_option(expr.attr.value, code, fit, facts)
    if isinstance(expr, cst.Call | cst.BinaryOperation | cst.UnaryOperation):
        return EpochsSite("expression", None, expr, fit.call, f"epochs={code}, computed")
    return _unresolved(fit, code, "not a literal, a constant, a variable or an option's default")


def _resolve_option(attr: str, code: str, fit: FitCall, facts: ScriptFacts) -> EpochsSite:
    """`args.epochs`, `FLAGS.epochs`, `config.epochs`: argparse, absl, then a defaults dict."""
    for resolve in (_resolve_argparse, _resolve_flag, _resolve_config):
        site = resolve(attr, code, fit, facts)
        if site is not None:
            return site
    return _unresolved(fit, code, "not a literal, a constant, a variable or an option's default")


def _resolve_flag(attr: str, code: str, fit: FitCall, facts: ScriptFacts) -> EpochsSite | None:
    for call in facts.flag_defines:
        name = find_arg(call, 0, "name")
        if name is None or literal_str(name.value) != attr:
            continue
        default = find_arg(call, 1, "default")
        value = literal_int(default.value) if default is not None else None
        if default is None or value is None:
            return _unresolved(fit, code, f"the absl flag {attr!r} has no literal default")
        return EpochsSite(
            "flag", value, default.value, fit.call, f"absl flag --{attr} default={value}"
        )
    return None


def _resolve_config(attr: str, code: str, fit: FitCall, facts: ScriptFacts) -> EpochsSite | None:
    """`dict(epochs=27)` or `{"epochs": 27}` somewhere in the script, when there is only one."""
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
    value = literal_int(node)
    if value is None:
        return _unresolved(fit, code, f"the default {attr} in {where} is not a literal")
    return EpochsSite("config", value, node, fit.call, f"default {attr}={value} in {where}")


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


def _resolve_argparse(
    dest: str, code: str, fit: FitCall, facts: ScriptFacts
) -> EpochsSite | None:
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
    return None


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
