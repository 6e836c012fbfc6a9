"""The commit message of `mutate commit`: what changed, each change's gain, and where the run is.

Read from the ledger alone (run.json + ledger.jsonl + the baseline's metrics.json), so the
message of a commit made a day after the tuning says exactly what the tuning said.
"""

from __future__ import annotations

import json
from typing import Any

from mutator.search.ledger import Ledger, TrialRecord, final_best, final_spread
from mutator.search.state import reached
from mutator.training.metrics import infer_mode


def compose_message(
    script_name: str,
    records: list[TrialRecord],
    run: dict[str, Any],
    run_label: str,
    ledger: Ledger | None = None,
) -> str:
    """Subject `mutate: train.py 0.3278 -> 0.9722 (target 0.97 reached)`, then each accepted
    change with the metric before and after it, the trial count, and `Mutator-*` trailers."""
    settings: dict[str, Any] = run.get("settings") or {}
    baseline = next((r for r in records if r.decision == "baseline" and r.status == "ok"), None)
    accepted = [r for r in records if r.decision == "accepted"]
    final = final_best(list(records))
    metrics = _trial_metrics(ledger, baseline.id) if ledger and baseline else {}
    metric = metrics.get("metric") or settings.get("metric")
    mode = _mode(settings, metrics, metric)
    target = settings.get("target")
    before = baseline.value if baseline else None
    after = final.value if final else None
    if target is None:
        outcome = "no target"
    elif reached(after, target, mode) and final is not None and final.confirmed:
        outcome = f"target {target} reached"
    else:
        outcome = f"target {target} not reached"

    lines = [f"mutate: {script_name} {_fmt(before)} -> {_fmt(after)} ({outcome})", ""]
    if accepted:
        lines.append("Accepted changes, in order:")
    best_so_far = None  # the previous decided record's best_after: what the change had to beat
    for record in records:
        if record.decision == "accepted":
            estimate = " (warm start: an estimate)" if record.start == "warm" else ""
            lines.append(
                f"- trial {record.id} {record.rules_label}: {record.description}: "
                f"{_fmt(best_so_far)} -> {_fmt(record.value)}{estimate}"
            )
        elif record.decision == "confirm":
            lines.append(
                f"- trial {record.id} confirm: trial {record.parent}'s script retrained from "
                f"scratch: {_fmt(record.value)}"
            )
        if record.best_after is not None:
            best_so_far = record.best_after
    rejected = sum(1 for r in records if r.decision == "rejected")
    metric_text = f"{metric or 'metric'}, {'higher' if mode == 'max' else 'lower'} is better"
    target_text = f"target {target}" if target is not None else "no target"
    spread = final_spread(list(records))
    lines += [
        "",
        f"{plural(len(records), 'trial')} ({len(accepted)} accepted, {rejected} reverted); "
        f"{target_text} ({metric_text}).",
        *([f"{spread.line()}."] if spread is not None else []),
        "",
        f"Mutator-Run: {run_label}",
    ]
    if final is not None:
        lines.append(f"Mutator-Best-Trial: {final.record.id}")
    return "\n".join(lines) + "\n"


def _trial_metrics(ledger: Ledger, trial_id: int) -> dict[str, Any]:
    try:
        data = json.loads((ledger.trial_dir(trial_id) / "metrics.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _mode(settings: dict[str, Any], metrics: dict[str, Any], metric: str | None) -> str:
    """As the search decided it: an explicit mode, else what the baseline's harness inferred."""
    if settings.get("mode") in ("max", "min"):
        return settings["mode"]
    if metrics.get("mode") in ("max", "min"):
        return metrics["mode"]
    return infer_mode(metric)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
