"""Talking to the Docker engine, and what names and labels mark a trial's container.

Shared by the Docker runner (which creates trial containers) and the monitor (which finds dead
ones and starts them again): both need the same client check and the same labels, and neither
may import the other.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from mutator.errors import MutatorError
from mutator.training.runner import TrialSpec

DEFAULT_SOCKET = "unix:///var/run/docker.sock"

LABEL_RUN, LABEL_TRIAL = "mutator.run", "mutator.trial"
LABEL_SCRIPT, LABEL_TRIAL_DIR, LABEL_SHA = "mutator.script", "mutator.trial_dir", "mutator.sha256"


class DockerUnavailableError(MutatorError):
    """No Docker engine answers (or the Docker SDK is missing): nothing can run in a container."""

    exit_code = 7


def connect(client: Any = None) -> Any:
    """A Docker client that answers, or DockerUnavailableError in one line."""
    try:
        import docker
    except ImportError:
        raise DockerUnavailableError(
            "the Docker SDK is not installed (pip install 'mutator[docker]'), or use --runner local"
        ) from None
    try:
        client = client or docker.from_env()
        client.ping()
    except Exception as error:  # noqa: BLE001 - every way of not answering means the same here
        reason = f"{os.environ.get('DOCKER_HOST', DEFAULT_SOCKET)}: {_cause(error)}"
        raise DockerUnavailableError(
            f"no Docker engine reachable ({reason}); start one with `sudo dockerd &` or "
            "`sudo systemctl start docker`, or use --runner local"
        ) from None
    return client


def _cause(error: BaseException) -> str:
    """The errno text at the bottom of docker-py's nested connection errors, else a short line."""
    text = str(error)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)|Error\(-?\d+, '([^']+)'", text)
    if found:
        return next(part for part in found[-1] if part).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first if len(first) <= 120 else first[:117] + "..."


def run_dir_of(trial_dir: Path) -> Path:
    """The run directory of a ledger trial dir (`RUN/trials/0001`), else the trial dir's parent."""
    return trial_dir.parent.parent if trial_dir.parent.name == "trials" else trial_dir.parent


def container_name(trial_dir: Path) -> str:
    """`mutator-<run>-<trial>-<hash of the run's path>`: stable, so a rerun finds its container."""
    trial_dir = trial_dir.resolve()
    run = run_dir_of(trial_dir)
    digest = hashlib.sha256(str(run).encode()).hexdigest()[:8]
    return f"mutator-{slug(run.name)}-{slug(trial_dir.name)}-{digest}"


def container_labels(spec: TrialSpec) -> dict[str, str]:
    trial_dir = spec.trial_dir.resolve()
    try:
        sha = hashlib.sha256(spec.script.read_bytes()).hexdigest()
    except OSError:
        sha = ""
    return {
        LABEL_RUN: str(run_dir_of(trial_dir)),
        LABEL_TRIAL: trial_dir.name,
        LABEL_SCRIPT: spec.script.name,
        LABEL_TRIAL_DIR: str(trial_dir),
        LABEL_SHA: sha,
    }


def slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-.")[:40] or "x"
