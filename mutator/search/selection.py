"""Which data the search selects on, said plainly, and the test figure kept apart from it.

After twenty trials the best of them is an optimistic figure of the data it was chosen on. When
a script validates on the very arrays it then evaluates (`fit(validation_data=(x_test, y_test))`
and `evaluate(x_test, y_test)`, found by the harness), the reported test figure is that
optimistic one, and the user should know. Selecting on validation data instead
(`select_on = "validation"`: the search compares `val_accuracy`) leaves `evaluate`'s figure for
the report at the end, on data no decision used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mutator.search.ledger import trial_metrics


def selection_lines(trial_dirs: list[Path], best_dir: Path | None) -> list[str]:
    """What the run selected on, from the baseline's metrics.json, and, where it selected on
    validation data, the best's test figure."""
    metrics = trial_metrics(trial_dirs[0]) if trial_dirs else {}
    if not metrics.get("metric"):
        return []
    name, source = metrics["metric"], metrics.get("source") or "?"
    lines = [f"selected on: {name} ({_source(source)})"]
    if metrics.get("validation_is_test") and source in ("evaluate", "history"):
        lines.append(
            "notice: the script validates on the data it evaluates on (the same arrays), so the "
            "figure the search selected on is the figure it reports: expect it to be optimistic; "
            'select on separate validation data (select_on = "validation") for an honest one'
        )
    if source == "history" and name.startswith("val_") and best_dir is not None:
        test = _evaluated(trial_metrics(best_dir), name.removeprefix("val_"))
        if test is not None:
            lines.append(
                f"test {name.removeprefix('val_')} of the best (not selected on): {test:.4f}"
            )
    return lines


def _source(source: str) -> str:
    return {
        "evaluate": "the script's evaluate, usually its test data",
        "history": "fit's epoch logs",
        "accuracy.txt": "the script's accuracy.txt",
        "regex": "the script's output",
    }.get(source, source)


def _evaluated(metrics: dict[str, Any], name: str) -> float | None:
    for evaluation in reversed(metrics.get("evaluate") or []):
        for key in (name, "compile_metrics"):
            value = evaluation.get(key)
            if isinstance(value, (int, float)):
                return float(value)
    return None
