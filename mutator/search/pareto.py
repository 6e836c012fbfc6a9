"""The Pareto front of a run: the trials no other trial beats on both the metric and the size.

A model a team ships is paid for in inference and retraining; the best metric at ten times the
parameters is rarely the one to pick. Over every trial that trained and was counted, a trial is
on the front when no other has at most its parameters (or training seconds) and at least its
metric with one of the two strictly better. The report (`report.py`) draws both fronts, metric
against parameters and against training seconds, and marks the script the run chose; this module
is pure but for the drawing, which needs matplotlib and is skipped without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mutator.search.ledger import TrialRecord

CHART = "pareto.png"


@dataclass(frozen=True)
class Point:
    record: TrialRecord
    cost: float  # parameters, or training seconds
    value: float


def training_seconds(record: TrialRecord) -> float | None:
    """What one training of the trial's script cost: its pace times the epochs it trained."""
    if record.seconds_per_epoch is None:
        return None
    epochs = max((len(series) for series in record.history.values()), default=0)
    return round(record.seconds_per_epoch * epochs, 3) if epochs else None


def parameters(record: TrialRecord) -> float | None:
    return None if record.parameters is None else float(record.parameters)


def points(
    records: Sequence[TrialRecord], cost: Callable[[TrialRecord], float | None]
) -> list[Point]:
    """Every trial with a metric and a cost: trained to its end (not pruned, not stopped by a
    budget or past its peak), so its metric is what its script reaches."""
    found = []
    for record in records:
        amount = cost(record)
        counted = record.status == "ok" and record.value is not None and amount is not None
        if counted and not record.pruned and not record.past_peak:
            found.append(Point(record, amount, float(record.value)))  # type: ignore[arg-type]
    return found


def front(candidates: Sequence[Point], mode: str = "max") -> list[Point]:
    """The points no other point dominates, cheapest first (ties: the earlier trial)."""
    sign = 1 if mode == "max" else -1
    ordered = sorted(candidates, key=lambda p: (p.cost, -sign * p.value, p.record.id))
    kept: list[Point] = []
    for point in ordered:
        if not kept or sign * point.value > sign * kept[-1].value:
            kept.append(point)
    return kept


def write_chart(
    records: Sequence[TrialRecord],
    chosen: int | None,
    target: float | None,
    mode: str,
    path: Path,
) -> bool:
    """Metric against parameters and against training seconds, each front drawn as a step,
    the chosen trial starred. False (no file) without matplotlib or without two counted trials."""
    by_size, by_time = points(records, parameters), points(records, training_seconds)
    if len(by_size) < 2:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, panes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for axes, found, label in (
        (panes[0], by_size, "parameters"),
        (panes[1], by_time, "training seconds"),
    ):
        if not found:
            axes.set_visible(False)
            continue
        axes.scatter([p.cost for p in found], [p.value for p in found], color="#bbbbbb", s=18)
        edge = front(found, mode)
        axes.step(
            [p.cost for p in edge],
            [p.value for p in edge],
            where="post",
            color="#1f77b4",
            marker="o",
            label="Pareto front",
        )
        mine = [p for p in found if p.record.id == chosen]
        if mine:
            axes.scatter(
                [mine[0].cost], [mine[0].value], color="#d62728", marker="*", s=160,
                label=f"chosen (trial {chosen})", zorder=4,
            )  # fmt: skip
        if target is not None:
            axes.axhline(target, color="#d62728", linestyle="--", linewidth=1)
        axes.set_xscale("log")
        axes.set_xlabel(label)
        axes.set_ylabel("metric")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png")
    plt.close(figure)
    os.replace(tmp, path)
    return True
