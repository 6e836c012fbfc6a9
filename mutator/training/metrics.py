"""Which number a trial is judged by, and where it comes from.

The harness records what Keras reported (every `evaluate`, every epoch of every `fit`), what the
script wrote to `accuracy.txt` (the seeds' convention) and what it printed. This module turns
those records into one `MetricChoice`. It is pure: no Keras, no files, so the choice can be tested
and explained on its own.

Default order, when the user names no metric (test data before training data):
    accuracy of the last `evaluate` > `accuracy.txt` > last `val_accuracy` > last `accuracy`.
`accuracy.txt` ranks above the fit history because a script that writes it is stating its own
test result; the history is training-time evidence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Mode = Literal["max", "min"]
Source = Literal["evaluate", "history", "accuracy.txt", "regex"]

# Keras names an accuracy metric after how it was asked for; `compile_metrics` is what
# `model.metrics_names` calls every compiled metric in Keras 3, so it only shows up when a
# `return_dict=False` list had to be named from it, and is then the first compiled metric.
ACCURACY_KEYS = (
    "accuracy",
    "acc",
    "sparse_categorical_accuracy",
    "categorical_accuracy",
    "binary_accuracy",
    "compile_metrics",
)

# Terminal control in Keras 3 progress bars: colours and cursor moves, backspaces, and carriage
# returns that redraw the line. A regex written against what a user sees must not meet them.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf", re.IGNORECASE)


@dataclass(frozen=True)
class MetricChoice:
    """The number a trial is judged by: its name, value (may be NaN) and where it was read."""

    name: str
    value: float
    source: Source


class MetricNotFoundError(LookupError):
    """No source held the metric; the message lists what was looked for and what exists."""


def infer_mode(name: str | None, mode: str = "auto") -> Mode:
    """`max` or `min`: an explicit mode wins; otherwise losses and errors are minimised (also
    Keras's short names of errors: `mae`, `val_mse`, `rmse`, `mape`, `msle`)."""
    if mode in ("max", "min"):
        return mode  # type: ignore[return-value]
    if mode != "auto":
        raise ValueError(f"mode must be max, min or auto, not {mode!r}")
    lowered = (name or "").lower()
    return "min" if any(word in lowered for word in _MINIMISED) else "max"


_MINIMISED = ("loss", "error", "mae", "mse", "mape", "msle")


def as_float(value: object) -> float | None:
    """A scalar metric as a float, or None for anything that is not one number (arrays, text)."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def clean_console(text: str) -> str:
    """What a terminal would leave on screen, near enough for a regex: one line per redraw."""
    text = _ANSI.sub("", text).replace("\b", "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def search_output(pattern: str, text: str) -> float | None:
    """The last match of `pattern` in `text` as a float (group 1 if any), or None if no match.

    The pattern runs in MULTILINE mode over the cleaned console text, so `^` and `$` anchor lines.
    Raises ValueError when the last match is not a number, naming what matched.
    """
    regex = re.compile(pattern, re.MULTILINE)
    last = None
    for last in regex.finditer(clean_console(text)):  # noqa: B007 - only the last one is wanted
        pass
    if last is None:
        return None
    found = last.group(1) if regex.groups else last.group(0)
    value = as_float(found.strip()) if found is not None else None
    if value is None:
        raise ValueError(f"--metric-regex matched {last.group(0)!r}, which is not a number")
    return value


def parse_accuracy_text(text: str) -> float:
    """The seeds' `accuracy.txt`: one number; a value in (1, 100] is a percentage.

    Raises ValueError with the text when there is no number or it cannot be an accuracy.
    """
    stripped = text.strip()
    value = as_float(stripped)
    if value is None:
        numbers = _NUMBER.findall(stripped)
        value = as_float(numbers[-1]) if numbers else None
    if value is None:
        raise ValueError(f"accuracy.txt holds no number: {stripped[:80]!r}")
    if math.isnan(value):
        return value
    if 1.0 < value <= 100.0:
        return value / 100.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"accuracy.txt holds {value}, which is neither a fraction nor a percentage"
        )
    return value


def _last_in_evaluations(
    evaluations: Sequence[Mapping[str, object]], keys: Sequence[str]
) -> tuple[str, float] | None:
    """The latest evaluate holding any of `keys` (ranked within it): its key and value."""
    for results in reversed(evaluations):
        for key in keys:
            value = as_float(results.get(key))
            if value is not None:
                return key, value
    return None


def _last_in_history(
    fits: Sequence[Mapping[str, Sequence[object]]], keys: Sequence[str]
) -> tuple[str, float] | None:
    """The last logged epoch of any of `keys`, from the latest fit logging one (None pads)."""
    for epochs in reversed(fits):
        for key in keys:
            for raw in reversed(list(epochs.get(key) or [])):
                value = as_float(raw)
                if value is not None:
                    return key, value
    return None


def choose_metric(
    *,
    evaluations: Sequence[Mapping[str, object]],
    fits: Sequence[Mapping[str, Sequence[object]]],
    metric: str | None = None,
    accuracy_file: float | None = None,
    regex_value: float | None = None,
    regex: str | None = None,
) -> MetricChoice:
    """Pick the trial's number from the harness's records.

    `evaluations` are the dicts of every `evaluate` in order; `fits` the per-key epoch lists of
    every `fit`. With `regex`, the script's own output is the only source (the user asked for it).
    With `metric`, that key: from the last evaluate holding it, else the last epoch logging it
    (`val_` names only from history). Raises MetricNotFoundError saying what was looked for.
    """
    if regex is not None:
        if regex_value is None:
            raise MetricNotFoundError(
                f"--metric-regex {regex!r} matched nothing the script printed"
            )
        return MetricChoice(metric or "regex", regex_value, "regex")
    if metric is not None:
        return _named(metric, evaluations, fits, accuracy_file)
    return _default(evaluations, fits, accuracy_file)


def _named(metric, evaluations, fits, accuracy_file) -> MetricChoice:
    if not metric.startswith("val_") and (found := _last_in_evaluations(evaluations, [metric])):
        return MetricChoice(metric, found[1], "evaluate")
    if found := _last_in_history(fits, [metric]):
        return MetricChoice(metric, found[1], "history")
    if metric in ACCURACY_KEYS and accuracy_file is not None:
        return MetricChoice(metric, accuracy_file, "accuracy.txt")
    raise MetricNotFoundError(
        f"metric {metric!r} was not recorded; {_inventory(evaluations, fits)}"
    )


def _default(evaluations, fits, accuracy_file) -> MetricChoice:
    if found := _last_in_evaluations(evaluations, ACCURACY_KEYS):
        return MetricChoice(*found, "evaluate")
    if accuracy_file is not None:
        return MetricChoice("accuracy", accuracy_file, "accuracy.txt")
    for prefix in ("val_", ""):
        if found := _last_in_history(fits, [prefix + key for key in ACCURACY_KEYS[:-1]]):
            return MetricChoice(*found, "history")
    raise MetricNotFoundError(
        "no accuracy was recorded (evaluate, accuracy.txt, val_accuracy, accuracy); "
        f"{_inventory(evaluations, fits)}; pass --metric NAME or --metric-regex"
    )


def _inventory(evaluations, fits) -> str:
    evaluated = sorted({key for results in evaluations for key in results})
    logged = sorted({key for epochs in fits for key in epochs})
    return f"evaluate keys: {evaluated or 'none'}, history keys: {logged or 'none'}"


@dataclass(frozen=True)
class Verdict:
    """How a trial ended, as metrics.json states it."""

    status: Literal["ok", "failed", "nan", "no_metric"]
    metric: str | None
    mode: Mode
    value: float | None
    source: Source | None
    error: str | None


def judge(
    *,
    script_error: str | None,
    evaluations: Sequence[Mapping[str, object]],
    fits: Sequence[Mapping[str, Sequence[object]]],
    metric: str | None = None,
    mode: str = "auto",
    accuracy_file: float | None = None,
    accuracy_problem: str | None = None,
    printed: str | None = None,
    regex: str | None = None,
) -> Verdict:
    """The trial's status: a script error beats a missing metric, which beats a NaN one.

    The metric is still chosen for a failed script (a crash after `evaluate` is worth knowing
    about), but only an "ok" trial's value may be compared with others.
    """
    value = source = None
    error = script_error
    try:
        regex_value = search_output(regex, printed or "") if regex is not None else None
        choice = choose_metric(
            evaluations=evaluations,
            fits=fits,
            metric=metric,
            accuracy_file=accuracy_file,
            regex_value=regex_value,
            regex=regex,
        )
        metric, value, source = choice.name, choice.value, choice.source
    except (MetricNotFoundError, ValueError, re.error) as problem:
        reason = f"{problem}; {accuracy_problem}" if accuracy_problem else str(problem)
        error = error or reason
    if script_error is not None:
        status = "failed"
    elif value is None:
        status = "no_metric"
    elif not math.isfinite(value):
        status, error = "nan", f"metric {metric!r} is {value}"
    else:
        status = "ok"
    return Verdict(status, metric, infer_mode(metric, mode), value, source, error)
