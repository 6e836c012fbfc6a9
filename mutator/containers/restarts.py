"""`restarts.jsonl` in a trial dir: every restart of the trial's container, and a runner's giving up.

Written by the monitor (a restart) and by the Docker runner (a container it kept, that the
monitor must leave alone); read by both, and by the runner to count a trial's restarts for the
ledger. One JSON object a line, appended with a single write.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESTARTS_FILE = "restarts.jsonl"


def read_entries(trial_dir: Path) -> list[dict[str, Any]]:
    """The trial's restarts.jsonl; unreadable lines are skipped (a crash can cut the last one)."""
    try:
        text = (trial_dir / RESTARTS_FILE).read_text(encoding="utf-8")
    except OSError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def append_entry(trial_dir: Path, entry: dict[str, Any]) -> None:
    """One JSON line, written with a single `write` so concurrent appends do not interleave."""
    line = json.dumps(entry, sort_keys=True) + "\n"
    with (trial_dir / RESTARTS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(line)


def restart_count(trial_dir: Path) -> int:
    """How many times the monitor restarted this trial's containers (for the ledger's record)."""
    return sum(1 for entry in read_entries(trial_dir) if entry.get("event") == "restart")


def record_given_up(trial_dir: Path, container: Any, status: str) -> None:
    append_entry(
        trial_dir,
        {
            "time": now_iso(),
            "epoch": time.time(),
            "container": container.name,
            "id": container.id,
            "event": "given_up",
            "status": status,
        },
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
