"""bench_suite.py's tables: per task the methods' medians and mutate's ratio to the best anchor,
the size and pace of each method's winning model, and the geometric mean across tasks.

Pure functions over `Run`s (no Keras, no processes), so that they are tested on their own. A run
that missed its target counts as infinitely slow in the medians, as in bench_search.py; every
summary is also returned as plain data for the JSON output (infinite values as None).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

from search_report import GOAL, finite, fmt, goal, summary
from search_runs import ANCHORS, Run

GEOMEAN_GOAL = 0.35  # issue 28: the geometric mean of mutate / best anchor across the tasks


def median_of(values: list[float | int | None]) -> float | None:
    """The median of the values that are known; None when none is."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def geometric_mean(values: list[float]) -> float | None:
    """The geometric mean of positive values; infinite if one is (a miss); None if empty."""
    if not values:
        return None
    if any(math.isinf(v) for v in values):
        return math.inf
    if any(v <= 0 for v in values):
        raise ValueError(f"a geometric mean needs positive values, not {values}")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def method_key(run: Run) -> str:
    """mutate's variants apart ("mutate", "mutate old-rules"); an anchor by name."""
    if run.method != "mutate" or run.variant in (None, "full"):
        return run.method
    return f"mutate {run.variant}"


def method_row(runs: list[Run]) -> dict[str, Any]:
    """bench_search's summary of one method's runs, with its winning models' size and pace."""
    won = [r for r in runs if r.reached]
    return {
        **summary(runs),
        "misses": sum(not r.reached for r in runs),
        "params": median_of([r.params for r in won]),
        "seconds_per_epoch": median_of([r.seconds_per_epoch for r in won]),
        "best": [r.best for r in runs],
        # mutate's: the noise runs and rechecks spent on the way to the target (issue 27)
        "noise_trials": median_of([r.noise_trials for r in runs]),
        "noise_seconds": median_of([r.noise_seconds for r in runs]),
    }


def task_row(name: str, target: float, runs: list[Run]) -> dict[str, Any]:
    """One task: each method's row, the best anchor, and mutate (full) / the best anchor."""
    methods: dict[str, dict[str, Any]] = {}
    for run in runs:
        methods.setdefault(method_key(run), [])
    rows = {key: method_row([r for r in runs if method_key(r) == key]) for key in methods}
    anchors = {m: rows[m]["wall"] for m in ANCHORS if m in rows}
    best = min(anchors, key=anchors.get) if anchors else None
    mutate = rows.get("mutate", {}).get("wall")
    outcome = goal(mutate, anchors.get(best) if best else None)
    return {
        "task": name,
        "target": target,
        "methods": rows,
        "best_anchor": best,
        "ratio": ratio(mutate, anchors.get(best) if best else None),
        "goal": outcome,
    }


def ratio(mutate: float | None, anchor: float | None) -> float | None:
    """mutate's median seconds over the best anchor's: infinite when mutate missed and the anchor
    did not; None when it cannot be said (not measured, or no anchor reached the target)."""
    if mutate is None or anchor is None or math.isinf(anchor):
        return None
    if math.isinf(mutate):
        return math.inf
    return mutate / anchor


def overall(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Across the tasks: the geometric mean of the ratios that exist, and the goals met."""
    ratios = [row["ratio"] for row in rows if row["ratio"] is not None]
    mean = geometric_mean(ratios)
    return {
        "geometric_mean": mean,
        "tasks_with_ratio": len(ratios),
        "tasks": len(rows),
        "goal_met_tasks": sum(bool(row["goal"]["met"]) for row in rows),
        "geometric_mean_goal_met": None if mean is None else mean <= GEOMEAN_GOAL,
    }


def cell(row: dict[str, Any] | None) -> str:
    """`12.3 s (3/3)`: the median seconds to target and how many runs reached it."""
    if row is None:
        return "-"
    return f"{fmt(row['wall'], 1, 'miss')} ({row['reached']}/{row['runs']})"


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """One line per task: each method's median seconds to target, the best anchor, the ratio."""
    head = f"{'task':24}{'target':>8}" + "".join(f"{name(c):>20}" for c in columns)
    head += f"{'best anchor':>18}{'ratio':>9}"
    print(head)
    print("-" * len(head))
    for row in rows:
        line = f"{row['task']:24}{row['target']:>8g}"
        line += "".join(f"{cell(row['methods'].get(c)):>20}" for c in columns)
        best = row["best_anchor"]
        line += f"{(name(best) if best else '-'):>18}{fmt_ratio(row['ratio']):>9}"
        print(line)


def print_per_method(
    rows: list[dict[str, Any]],
    columns: list[str],
    cell_of: Callable[[dict[str, Any]], str | None],
    width: int = 24,
    title: str = "",
) -> None:
    """One line per task, one cell per method: `cell_of(method row)`, `-` where it is None."""
    head = f"{'task':24}" + "".join(f"{name(c) + title:>{width}}" for c in columns)
    print(head)
    print("-" * len(head))
    for row in rows:
        cells = []
        for column in columns:
            method = row["methods"].get(column)
            cells.append((cell_of(method) if method is not None else None) or "-")
        print(f"{row['task']:24}" + "".join(f"{cell:>{width}}" for cell in cells))


def size_cell(method: dict[str, Any]) -> str | None:
    """`5,130 p, 0.31 s/ep`: the winning model's median parameters and seconds per epoch."""
    if method["params"] is None:
        return None
    pace = method["seconds_per_epoch"]
    return f"{method['params']:,.0f} p, {pace:.2f} s/ep" if pace else f"{method['params']:,.0f} p"


def noise_cell(method: dict[str, Any]) -> str | None:
    """`2 runs, 14.3 s`: the median runs with other seeds and rechecks, and their seconds."""
    if method.get("noise_trials") is None:
        return None
    return f"{method['noise_trials']:g} runs, {method['noise_seconds']:.1f} s"


def print_sizes(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Each method's winning model: median parameters and seconds per epoch over its hits."""
    print_per_method(rows, columns, size_cell)


def print_noise_cost(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """What measuring the noise cost each mutate variant: the median runs with other seeds and
    rechecks, and their own seconds (beside other trials, on free cores, they cost less wall
    time than that)."""
    measured = [c for c in columns if c.startswith("mutate")]
    if measured:
        print_per_method(rows, measured, noise_cell, width=28, title=" noise")


def print_overall(summary_row: dict[str, Any]) -> None:
    mean = summary_row["geometric_mean"]
    text = "-" if mean is None else fmt_ratio(mean)
    print(
        f"\ngeometric mean of mutate / best anchor over {summary_row['tasks_with_ratio']} of "
        f"{summary_row['tasks']} task(s): {text} (goal <= {GEOMEAN_GOAL}x); per task <= {GOAL}x "
        f"met on {summary_row['goal_met_tasks']}"
    )


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return "miss" if math.isinf(value) else f"{value:.2f}x"


SHORT = {
    "random": "KT Random",
    "hyperband": "KT Hyperband",
    "bayesian": "KT Bayesian",
    "optuna": "Optuna TPE",
}


def name(column: str) -> str:
    """A column's short title: `mutate`, `mutate old-rules`, `KT Random`, `Optuna TPE`..."""
    return SHORT.get(column, column)


def json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with infinite values as None (JSON has no infinity)."""
    return [
        {
            **finite(row),
            "methods": {key: finite(method) for key, method in row["methods"].items()},
        }
        for row in rows
    ]
