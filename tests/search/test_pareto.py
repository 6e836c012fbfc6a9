"""The Pareto front of a run, and the report's section that shows it."""

from __future__ import annotations

from mutator.search import pareto
from mutator.search.ledger import TrialRecord
from mutator.search.report import write_report


def _record(trial: int, value: float | None, parameters: int | None, **fields) -> TrialRecord:
    values = {
        "id": trial,
        "parent": None,
        "rule": None,
        "site": None,
        "params": {},
        "description": f"trial {trial}'s change",
        "sha256": "",
        "diff": "",
        "status": "ok" if value is not None else "failed",
        "value": value,
        "decision": "baseline" if trial == 1 else "rejected",
        "best_after": value,
        "seconds": 1.0,
        "started": "",
        "finished": "",
        "parameters": parameters,
        "seconds_per_epoch": 0.1,
        "history": {"loss": [1.0, 0.5]},
    }
    values.update(fields)
    return TrialRecord(**values)


def test_the_front_keeps_what_nothing_beats_on_both_cheapest_first():
    records = [
        _record(1, 0.90, 1000),
        _record(2, 0.95, 4000),
        _record(3, 0.93, 5000),  # dearer and worse than trial 2: dominated
        _record(4, 0.90, 2000),  # as good as trial 1 at twice the size: dominated
        _record(5, 0.97, 9000),
        _record(6, None, 10),  # failed: no metric, not on the front
    ]
    found = pareto.points(records, pareto.parameters)
    assert [p.record.id for p in pareto.front(found)] == [1, 2, 5]


def test_for_a_loss_lower_is_better():
    records = [_record(1, 50.0, 1000), _record(2, 40.0, 3000), _record(3, 45.0, 4000)]
    found = pareto.points(records, pareto.parameters)
    assert [p.record.id for p in pareto.front(found, "min")] == [1, 2]


def test_pruned_and_uncounted_trials_are_left_out():
    records = [
        _record(1, 0.9, 1000),
        _record(2, 0.99, 10, pruned={"epoch": 2, "value": 0.5, "reference": 0.8}),
        _record(3, 0.99, None),
        _record(4, 0.95, 500, past_peak={"epoch": 25, "planned": 100}),  # not its script's
    ]
    assert [p.record.id for p in pareto.points(records, pareto.parameters)] == [1]


def test_training_seconds_are_the_pace_times_the_epochs_trained():
    assert pareto.training_seconds(_record(1, 0.9, 10, seconds_per_epoch=0.25)) == 0.5
    assert pareto.training_seconds(_record(1, 0.9, 10, seconds_per_epoch=None)) is None


def test_the_report_shows_the_front_and_marks_the_chosen_trial(tmp_path):
    records = [
        _record(1, 0.90, 1000),
        _record(2, 0.96, 4000, decision="accepted"),
        _record(3, 0.93, 5000),
    ]
    page = write_report(tmp_path, "train.py", records, 0.95, "done").read_text()
    assert "Pareto front" in page
    assert "<td>2 (chosen)</td>" in page and "4,000" in page
    assert "<td>3" not in page.split("Pareto front")[1].split("</table>")[0]
    assert (tmp_path / pareto.CHART).exists() == (tmp_path / "metrics.png").exists()


def test_no_front_without_two_counted_trials(tmp_path):
    page = write_report(tmp_path, "train.py", [_record(1, 0.9, None)], 0.95, "done").read_text()
    assert "Pareto" not in page and not (tmp_path / pareto.CHART).exists()
