"""One trial on a Ray node: stage its files, train it with the local runner, stream its folder back.

`train_trial` is the body of the Ray task (the Ray runner wraps it with `ray.remote`; nothing
here imports Ray, so it also runs as a plain generator in tests). It yields messages:

    {"started": {"pid", "host"}}      first, once the node has the task
    {"changes": Changes}              whenever the trial's folder moved (log, checkpoints, ...)
    {"changes": Changes, "end": {...}} last: the local runner's verdict on the trial

The trial trains exactly as under `--runner local`: a `LocalRunner` in this Ray worker process
forks it from a warm worker (kept between the tasks this process serves, so TensorFlow is
imported once per Ray worker, not once per trial) or starts a fresh process, with the timeout,
the process group and the log. The warm worker dies with this process, and the trial with the
warm worker (PR_SET_PDEATHSIG), so a Ray worker killed mid-trial leaves nothing training; what
the trial had checkpointed is already back with the tuner, where the retry starts from.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mutator.cluster.bundle import FolderWatch, PackedFolder, unpack_folder
from mutator.training.local import LocalRunner
from mutator.training.runner import TrialSpec
from mutator.training.warm_plan import WarmPlan

SYNC_SECONDS = 1.0  # how often a training trial's folder is sent back
CANCEL_GRACE = 30.0  # seconds a cancelled trial has to end before the task gives up on it

# Linux kills a process started with PR_SET_PDEATHSIG when the *thread* that started it ends.
# The warm worker must outlive each task, so it is started (and trials are run) on one thread
# that lives as long as this Ray worker process.
_TRAINING_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mutator-trainer")
_RUNNERS: dict[tuple[bool, tuple[str, ...], int], LocalRunner] = {}


@dataclass(frozen=True)
class TrialRequest:
    """A `TrialSpec` without this machine's paths: the node stages the files and makes its own."""

    script: str  # relative to the trial folder
    trial_files: PackedFolder
    metric: str | None = None
    mode: str = "auto"
    metric_regex: str | None = None
    timeout: float | None = None
    script_args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    backup: bool = True
    worker: bool = True
    preload: tuple[str, ...] = ()
    recycle: int = 50


def train_trial(
    request: TrialRequest, source: PackedFolder | None, parent_model: bytes | None
) -> Iterator[dict[str, Any]]:
    """The Ray task: yields what the trial did, as it does it (see the module's docstring)."""
    yield {"started": {"pid": os.getpid(), "host": socket.gethostname()}}
    stage = Path(tempfile.mkdtemp(prefix="mutator-ray-"))
    try:
        spec = stage_trial(request, source, parent_model, stage)
        watch = FolderWatch(spec.trial_dir)
        key = (request.worker, tuple(request.preload), request.recycle)
        runner = _TRAINING_THREAD.submit(_runner_for, *key).result()
        training = _TRAINING_THREAD.submit(runner.run, spec)
        try:
            while True:
                try:
                    result = training.result(timeout=SYNC_SECONDS)
                    break
                except TimeoutError:
                    pass
                if changes := watch.changes():
                    yield {"changes": changes}
        except BaseException:
            # Cancelled by the tuner (Ray raises in this thread): stop the trial, keep the worker.
            runner.cancel(spec)
            with contextlib.suppress(Exception):
                training.result(timeout=CANCEL_GRACE)
            raise
        end = {"status": result.status, "returncode": result.returncode, "seconds": result.seconds}
        yield {"changes": watch.changes(), "end": end}
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def stage_trial(
    request: TrialRequest, source: PackedFolder | None, parent_model: bytes | None, stage: Path
) -> TrialSpec:
    """Write the trial's files under `stage` and return the spec that trains them there.

    The warm-start plan names the parent's model by the tuner's path; here it is the shipped
    copy (or, when none came, a path that does not exist, so the harness starts cold and says why).
    """
    trial_dir = stage / "trial"
    unpack_folder(request.trial_files, trial_dir)
    source_dir = None
    if source is not None:
        source_dir = stage / "source"
        source_dir.mkdir()
        unpack_folder(source, source_dir)
    plan = WarmPlan.read(trial_dir)
    if plan is not None:
        model = stage / "parent" / "model.keras"
        if parent_model is not None:
            model.parent.mkdir()
            model.write_bytes(parent_model)
        replace(plan, parent_model=str(model)).write(trial_dir)
    return TrialSpec(
        script=trial_dir / request.script,
        trial_dir=trial_dir,
        metric=request.metric,
        mode=request.mode,
        metric_regex=request.metric_regex,
        timeout=request.timeout,
        script_args=tuple(request.script_args),
        env=dict(request.env or {}),
        source_dir=source_dir,
        backup=request.backup,
    )


def prepare_worker(worker: bool, preload: tuple[str, ...], recycle: int) -> int:
    """A Ray task run before the first trial: start this process's warm worker, so that it
    imports TensorFlow while the search gets ready. Returns at once, with this process's pid."""
    _TRAINING_THREAD.submit(_runner_for, worker, tuple(preload), recycle).result()
    return os.getpid()


def _runner_for(worker: bool, preload: tuple[str, ...], recycle: int) -> LocalRunner:
    """This process's local runner for a kind of trial (forked from a warm worker or not)."""
    key = (worker, preload, recycle)
    if key not in _RUNNERS:
        _RUNNERS[key] = (
            LocalRunner(worker=True, preload=preload, recycle=recycle) if worker else LocalRunner()
        )
    return _RUNNERS[key]
