"""Ledger records for tests that fold or judge them without running a search."""

from __future__ import annotations

from typing import Any

from mutator.search.ledger import TrialRecord


def trial_record(trial_id: int, decision: str, value: float | None, **fields: Any) -> TrialRecord:
    """A finished, ok trial of the given decision and value; `fields` override the rest."""
    defaults: dict[str, Any] = {
        "parent": None,
        "rule": None,
        "site": None,
        "params": {},
        "description": f"trial {trial_id}",
        "sha256": f"sha{trial_id}",
        "diff": "",
        "status": "ok",
        "best_after": value,
        "seconds": 1.0,
        "started": "",
        "finished": "",
    }
    return TrialRecord(id=trial_id, decision=decision, value=value, **{**defaults, **fields})
