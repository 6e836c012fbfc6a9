"""`mutate monitor`: start crashed training containers again, so they resume from their checkpoint.

A trial container (label `mutator.run`) that exited with a non-zero code and is still there (the
runner removes finished ones; `keep_failed` keeps failed ones) is started again as it was: same
mounts, same command, so the harness finds the BackupAndRestore checkpoint in the mounted trial
dir and resumes at the last completed epoch. A runner still waiting on it follows the restart.

Every restart is a line of `<trial dir>/restarts.jsonl` (time, container, exit code, reason).
That file is also the guard against a tight loop (the seeds' monitor restarted a broken script
forever): at most `max_restarts` per container, and none sooner than `min_interval` seconds
after the trial's previous restart. A runner that gave up on a container it kept writes a
"given_up" line there, and the monitor leaves that container alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mutator.containers.docker_api import LABEL_RUN, LABEL_TRIAL_DIR, connect
from mutator.containers.restarts import RESTARTS_FILE, append_entry, now_iso, read_entries
from mutator.training.runner import METRICS_FILE, describe_exit

__all__ = ["RESTARTS_FILE", "Verdict", "find_dead_trials", "monitor", "restart", "verdict"]
DEFAULT_MAX_RESTARTS = 3
DEFAULT_MIN_INTERVAL = 10.0  # seconds between two restarts of one trial
DEFAULT_INTERVAL = 30.0  # seconds between two looks in the loop


class Reporter(Protocol):
    def message(self, text: str) -> None: ...


@dataclass(frozen=True)
class Verdict:
    """Whether a dead container may be started again now, and why (for the user)."""

    restart: bool
    reason: str
    transient: bool = False  # refused for now (too soon): worth no message


def verdict(
    entries: list[dict[str, Any]],
    container_id: str,
    now: float,
    max_restarts: int = DEFAULT_MAX_RESTARTS,
    min_interval: float = DEFAULT_MIN_INTERVAL,
) -> Verdict:
    """The guard: given up by its runner, at most `max_restarts` each, `min_interval` apart."""
    mine = [e for e in entries if e.get("id") == container_id]
    if any(e.get("event") == "given_up" for e in mine):
        return Verdict(False, "its runner gave up on it (kept for inspection)")
    restarts = [e for e in mine if e.get("event") == "restart"]
    if len(restarts) >= max_restarts:
        return Verdict(False, f"restarted {len(restarts)} time(s) already (limit {max_restarts})")
    times = [e["epoch"] for e in entries if e.get("event") == "restart" and "epoch" in e]
    if times and now - max(times) < min_interval:
        wait = min_interval - (now - max(times))
        return Verdict(
            False, f"restarted {now - max(times):.0f} s ago; next in {wait:.0f} s", transient=True
        )
    return Verdict(True, f"restart {len(restarts) + 1} of {max_restarts}")


# -- finding and restarting ----------------------------------------------------------------------
def find_dead_trials(client: Any) -> list[Any]:
    """The project's containers that exited abnormally and are still there, oldest first."""
    exited = client.containers.list(all=True, filters={"label": LABEL_RUN, "status": "exited"})
    dead = [c for c in exited if c.attrs.get("State", {}).get("ExitCode", 0) != 0]
    return sorted(dead, key=lambda c: c.attrs.get("State", {}).get("FinishedAt", ""))


def restart(
    container: Any,
    *,
    max_restarts: int = DEFAULT_MAX_RESTARTS,
    min_interval: float = DEFAULT_MIN_INTERVAL,
    clock: Callable[[], float] = time.time,
) -> Verdict:
    """Start a dead trial container again when the guard allows it; the ledger line comes first."""
    trial_dir = Path(container.labels.get(LABEL_TRIAL_DIR, ""))
    if not container.labels.get(LABEL_TRIAL_DIR) or not trial_dir.is_dir():
        return Verdict(False, "its trial dir is gone")
    if (trial_dir / METRICS_FILE).exists():
        return Verdict(False, "the harness reported a result: a failure of the script, not a crash")
    now = clock()
    decision = verdict(read_entries(trial_dir), container.id, now, max_restarts, min_interval)
    if not decision.restart:
        return decision
    state = container.attrs.get("State", {})
    code = state.get("ExitCode")
    # the engine knows whether the OOM killer did it: no guessing from the code 137
    reason = describe_exit(code).replace(" (out of memory?)", "")
    reason += " (out of memory: OOMKilled)" if state.get("OOMKilled") else ""
    append_entry(
        trial_dir,
        {
            "time": now_iso(),
            "epoch": now,
            "container": container.name,
            "id": container.id,
            "event": "restart",
            "exit_code": code,
            "reason": reason,
        },
    )
    container.start()
    return Verdict(True, f"{decision.reason}; it {reason}")


def monitor(
    once: bool = False,
    interval: float = DEFAULT_INTERVAL,
    max_restarts: int = DEFAULT_MAX_RESTARTS,
    reporter: Reporter | None = None,
    *,
    min_interval: float = DEFAULT_MIN_INTERVAL,
    client: Any = None,
) -> int:
    """Look for dead trials and restart them; once, or every `interval` s until interrupted.

    Returns how many containers were restarted. A refusal is reported once per container.
    """
    client = connect(client)
    say = reporter.message if reporter is not None else (lambda text: None)
    told: set[str] = set()  # containers already reported as refused
    restarted = 0
    while True:
        for container in find_dead_trials(client):
            try:
                outcome = restart(container, max_restarts=max_restarts, min_interval=min_interval)
            except Exception as error:  # noqa: BLE001 - one container must not stop the watch
                outcome = Verdict(False, f"cannot start it: {str(error).splitlines()[0]}")
            if outcome.restart:
                restarted += 1
                say(f"restarted {container.name}: {outcome.reason}")
            elif not outcome.transient and container.id not in told:
                told.add(container.id)
                say(f"not restarting {container.name}: {outcome.reason}")
        if once:
            return restarted
        time.sleep(interval)
