"""Following one trial's container to its end: its log as it comes, its restarts, its timeout.

A container started by the Docker runner (one per trial) is watched by polling its state; each
start of it (the first, and every restart by `mutate monitor`) gets its own log stream from that
start on, so a restarted container's output lands in the same `log.txt`, after a note.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from mutator.containers.docker_api import LABEL_TRIAL_DIR
from mutator.training.runner import METRICS_FILE, LineCallback, log_note

POLL_SECONDS = 0.5
READER_GRACE = 5.0


def supervise(
    container: Any,
    log: IO[bytes],
    deadline: float | None,
    *,
    attached: bool = False,
    restart_grace: float = 0.0,
    on_line: LineCallback | None = None,
) -> tuple[int | None, bool]:
    """Follow the container (and any restart of it) to its end: (exit code, timed out).

    Each start's output is logged from that start on (from now on when `attached` to one
    an earlier run already logged). A container removed under us (`docker rm -f`) ends it
    as a crash without an exit code.
    """
    from docker.errors import NotFound

    started_at, pump = None, None
    while True:
        try:
            container.reload()
        except NotFound:
            return None, False
        state = container.attrs["State"]
        if state.get("StartedAt") != started_at:
            if started_at is not None:
                log_note(log, f"container restarted at {state['StartedAt']}: following it")
            if pump is not None:
                pump.join(READER_GRACE)
            since = time.time() if attached else timestamp(state.get("StartedAt"))
            attached = False
            pump = follow_logs(container, log, since, on_line)
            started_at = state.get("StartedAt")
        if state.get("Running") or state.get("Status") in ("created", "restarting"):
            if deadline is not None and time.monotonic() >= deadline:
                container.kill()
                container.wait()
                pump.join(READER_GRACE)
                return None, True
            time.sleep(POLL_SECONDS)
            continue
        code = state.get("ExitCode")
        if code != 0 and restarted(container, started_at, deadline, restart_grace):
            continue
        pump.join(READER_GRACE)
        return code, False

def restarted(
    container: Any, started_at: str | None, deadline: float | None, restart_grace: float
) -> bool:
    """True when the container runs again within `restart_grace` (mutate monitor's doing)."""
    from docker.errors import NotFound

    trial_dir = Path(container.labels.get(LABEL_TRIAL_DIR, "/nonexistent"))
    if restart_grace <= 0 or (trial_dir / METRICS_FILE).exists():
        return False  # the harness reported: a failure of the script, not a crash
    until = time.monotonic() + restart_grace
    while time.monotonic() < until and (deadline is None or time.monotonic() < deadline):
        time.sleep(POLL_SECONDS)
        try:
            container.reload()
        except NotFound:
            return False
        if container.attrs["State"].get("StartedAt") != started_at:
            return True
    return False

def follow_logs(
    container: Any, log: IO[bytes], since: float | None, on_line: LineCallback | None
) -> threading.Thread:
    """A thread copying the container's output from `since` on into the log."""
    stream = container.logs(stream=True, follow=True, since=since)
    pump = threading.Thread(target=_pump, args=(stream, log, on_line), name="trial-log", daemon=True)
    pump.start()
    return pump


def _pump(stream: Iterator[bytes], log: IO[bytes], on_line: LineCallback | None) -> None:
    """Copy the container's output to the log as it comes, and whole lines to `on_line`."""
    pending = b""
    try:
        for chunk in stream:
            log.write(chunk)
            log.flush()
            if on_line is None:
                continue
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                try:
                    on_line(raw.decode("utf-8", errors="replace").rstrip("\r"))
                except Exception as error:  # noqa: BLE001 - progress must not stop a trial
                    on_line = None
                    log_note(log, f"on_line callback failed, no more progress: {error!r}")
                    break
    except Exception:  # noqa: BLE001, S110 - the container went away under the stream
        pass


def timestamp(started_at: str | None) -> float | None:
    """Docker's StartedAt (RFC 3339, nanoseconds) as seconds since the epoch, for `since=`."""
    if not started_at or started_at.startswith("0001-"):
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?", started_at)
    if match is None:
        return None
    whole = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC).timestamp()
    return whole + float(match.group(2) or 0.0)
