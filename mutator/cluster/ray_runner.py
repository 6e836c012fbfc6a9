"""`--runner ray`: each trial a Ray task on whichever node has the resources, its files sent along.

The runner is the tuner's side of `node.train_trial`. For each trial it packs what the node
needs (the trial folder's inputs, the script's folder once per run, the parent's weights once
per parent) into Ray's object store, submits the task with the trial's resource request
(`num_cpus`, `num_gpus`, `memory`), and applies the changes the task streams back to the local
trial folder as they come. So the log grows here while the trial trains, its epoch checkpoints
land here after every epoch, and `metrics.json` arrives last: the ledger, resume, report and
commit work as with any other runner.

Faults. The task is never retried by Ray itself: a Ray worker or node that dies mid-trial ends
the task with an error, which is a "crashed" trial, and the search runs it again (`--retries`,
counted in the ledger) on whichever node is free, resuming from the checkpoint already here.
A cluster that cannot be reached is one line and exit 7 before any trial. A `kill -9` of the
tuner ends its Ray job, and with it the job's tasks; a rerun redoes only unfinished trials.

The mutator package travels with the Ray job this runner starts or joins (`runtime_env`
`py_modules`), so the nodes run the tuner's own harness; they need Python, Ray and the training
packages (`mutator[train]`). A caller that ran `ray.init` itself has mutator on its nodes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mutator
from mutator.cluster.bundle import Changes, apply_changes, pack_folder
from mutator.cluster.node import TrialRequest, prepare_worker, train_trial
from mutator.errors import MutatorError, UsageError
from mutator.training.runner import (
    LOG_FILE,
    METRICS_FILE,
    ConcurrentRunner,
    InFlight,
    TrialResult,
    TrialSpec,
    log_note,
    not_started,
    read_result,
)
from mutator.training.trialio import one_line_error
from mutator.training.warm_plan import WarmPlan

REACH_SECONDS = 3.0  # a head node that does not accept a TCP connection by then is unreachable
CONNECT_SECONDS = 6.0  # ...and one that does, but whose Ray does not answer by then
NOT_SHIPPED = ("log.txt", "metrics.json")  # the node writes these afresh; the log comes back


class RayUnavailableError(MutatorError):
    """Ray is not installed, the cluster cannot be reached, or no node can hold a trial."""

    exit_code = 7


@dataclass(frozen=True)
class Resources:
    """What one trial asks the cluster for: Ray's `num_cpus`, `num_gpus` and `memory` (bytes)."""

    cpus: float
    gpus: float = 0.0
    memory: int | None = None

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": self.cpus, "num_gpus": self.gpus}
        if self.memory is not None:
            options["memory"] = self.memory
        return options

    def describe(self) -> str:
        parts = [f"{self.cpus:g} CPU"]
        if self.gpus:
            parts.append(f"{self.gpus:g} GPU")
        if self.memory is not None:
            parts.append(f"{self.memory / 2**30:.1f} GiB")
        return ", ".join(parts)

    def threads(self) -> int:
        """The TensorFlow threads a trial with this share uses (`MUTATOR_THREADS`)."""
        return max(1, int(self.cpus))


class RayRunner(ConcurrentRunner):
    """Runs each trial as a Ray task; see the module's docstring for what travels and how.

    `address` None connects to the Ray this process already joined (`ray.init` earlier), else
    starts one on this machine; otherwise it is a head node's `HOST:PORT`, `ray://HOST:PORT`
    (Ray Client) or `auto`. `cpus` None gives each trial an equal share of the cluster's CPUs
    for `parallel` trials at once (at least one, at most a node's).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        cpus: float | None = None,
        gpus: float = 0.0,
        memory: str | None = None,
        parallel: int = 1,
        worker: bool = True,
        preload: tuple[str, ...] | list[str] = (),
        recycle: int = 50,
    ) -> None:
        self.ray, self._own_ray = connect(address)
        self._fixed_cpus = cpus is not None
        self.parallel = max(1, parallel)
        self.cluster_cpus, self.largest_node_cpus = cpu_capacity(self.ray)
        self.resources = trial_resources(self.ray, cpus, gpus, parse_bytes(memory), parallel)
        self.worker, self.preload, self.recycle = worker, tuple(preload), recycle
        self._task = self.ray.remote(train_trial)
        if worker:
            self._prepare_workers()
        self._lock = threading.Lock()
        self._shipped: dict[tuple[str, int], Any] = {}  # (path, mtime) -> object ref
        self._in_flight = InFlight()  # trial dir -> how to cancel its task's generator

    def _prepare_workers(self) -> None:
        """Have a Ray worker start its warm worker (TensorFlow's import) while the search is
        still getting ready; the baseline, submitted next, usually lands on it. Not waited for."""
        prepare = self.ray.remote(prepare_worker).options(max_retries=0, num_cpus=1)
        self._warm_up = prepare.remote(True, self.preload, self.recycle)

    def run(self, spec: TrialSpec) -> TrialResult:
        trial_dir = spec.trial_dir.resolve()
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / METRICS_FILE).unlink(missing_ok=True)  # never read a previous attempt's
        log_path = trial_dir / LOG_FILE
        started = time.monotonic()
        try:
            request, source, parent = self._ship(spec, trial_dir)
        except (MutatorError, OSError) as error:
            return self._not_started(spec, log_path, started, one_line_error(error))
        resources = self.resources_for(spec)
        with log_path.open("ab") as log:
            log_note(log, f"submit to Ray ({resources.describe()})")
        try:
            task = self._task.options(max_retries=0, **resources.options())
            stream = task.remote(request, source, parent)
        except Exception as error:  # noqa: BLE001 - the cluster refused the task: a crash
            return self._not_started(spec, log_path, started, one_line_error(error))
        failure, end = self._follow(stream, trial_dir, log_path)
        cancelled = self._in_flight.ended(trial_dir)
        seconds = time.monotonic() - started
        with log_path.open("ab") as log:
            ending = "cancelled" if cancelled else failure or f"status {(end or {}).get('status')}"
            log_note(log, f"end: {ending} after {seconds:.1f} s")
        result = read_result(
            spec,
            returncode=None if end is None else end.get("returncode"),
            seconds=seconds,
            log_path=log_path,
            timed_out=end is not None and end.get("status") == "timeout" and not cancelled,
            cancelled=cancelled,
        )
        if failure is not None and result.status == "crashed":
            result.error = f"on the Ray cluster, {failure}; {result.error}"
        return result

    def _follow(
        self, stream: Any, trial_dir: Path, log_path: Path
    ) -> tuple[str | None, dict[str, Any] | None]:
        """Apply what the task streams back until it ends; (why it failed, its end message)."""
        self._in_flight.started(trial_dir, lambda: self._cancel_task(stream))
        end = None
        try:
            for reference in stream:
                message = self.ray.get(reference)
                if "started" in message:
                    where = message["started"]
                    with log_path.open("ab") as log:
                        log_note(
                            log, f"start on Ray node {where['host']}, worker pid {where['pid']}"
                        )
                changes: Changes | None = message.get("changes")
                if changes:
                    apply_changes(changes, trial_dir)
                end = message.get("end", end)
        except Exception as error:  # noqa: BLE001 - a lost worker, node or cluster: a crash
            return _ray_failure(error), end
        return None, end

    def _ship(
        self, spec: TrialSpec, trial_dir: Path
    ) -> tuple[TrialRequest, Any | None, Any | None]:
        """The task's arguments: the request, and object refs to the source and parent model."""
        script = spec.script.resolve()
        if not script.is_relative_to(trial_dir):
            raise UsageError(f"{script} is not in its trial folder {trial_dir}")
        env = {**spec.env, "MUTATOR_THREADS": str(self.resources_for(spec).threads())}
        request = TrialRequest(
            script=script.relative_to(trial_dir).as_posix(),
            trial_files=pack_folder(trial_dir, skip_files=NOT_SHIPPED),
            metric=spec.metric,
            mode=spec.mode,
            metric_regex=spec.metric_regex,
            timeout=spec.timeout,
            script_args=tuple(spec.script_args),
            env=env,
            backup=spec.backup,
            worker=self.worker,
            preload=self.preload,
            recycle=self.recycle,
        )
        source = None
        if spec.source_dir is not None:
            source_dir = spec.source_dir.resolve()
            run_branch = _branch_holding(source_dir, trial_dir)
            source = self._put_once(
                source_dir, lambda: pack_folder(source_dir, skip_paths=run_branch)
            )
        parent = None
        plan = WarmPlan.read(trial_dir)
        if plan is not None and Path(plan.parent_model).is_file():
            model = Path(plan.parent_model)
            parent = self._put_once(model, model.read_bytes)
        return request, source, parent

    def _put_once(self, path: Path, read: Any) -> Any:
        """`ray.put(read())` the first time this path (at this modification time) is shipped."""
        key = (str(path), path.stat().st_mtime_ns)
        with self._lock:
            if key not in self._shipped:
                self._shipped[key] = self.ray.put(read())
            return self._shipped[key]

    def resources_for(self, spec: TrialSpec) -> Resources:
        """The trial's request: the configured one, or, by default, the cluster's CPUs shared
        by the trials of its round (a trial training alone gets a whole node's worth, as it
        would get every core under the local runner)."""
        if self._fixed_cpus or spec.side_by_side == self.parallel:
            return self.resources
        share = max(1.0, float(int(self.cluster_cpus // max(1, spec.side_by_side))))
        return replace(self.resources, cpus=min(share, self.largest_node_cpus))

    def _not_started(
        self, spec: TrialSpec, log_path: Path, started: float, why: str
    ) -> TrialResult:
        with log_path.open("ab") as log:
            log_note(log, f"cannot submit to Ray: {why}")
        return not_started(spec, started, log_path, f"cannot submit the trial to Ray: {why}")

    def cancel(self, spec: TrialSpec) -> None:
        self._in_flight.cancel(spec.trial_dir.resolve())

    def _cancel_task(self, stream: Any) -> None:
        with contextlib.suppress(Exception):  # a task that just ended cannot be cancelled
            self.ray.cancel(stream)

    def close(self) -> None:
        super().close()
        if self._own_ray:
            with contextlib.suppress(Exception):
                self.ray.shutdown()
            self._own_ray = False


def connect(address: str | None) -> tuple[Any, bool]:
    """Ray, joined to the cluster; and whether this call started it (so closing shuts it down).

    A head that does not answer is a `RayUnavailableError` within seconds: `ray.init` itself
    would wait for an unreachable GCS for much longer than anyone should.
    """
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(
            "--runner ray needs Ray on this machine: pip install 'mutator[ray]'"
        ) from None
    if ray.is_initialized():
        return ray, False
    package = Path(mutator.__file__).resolve().parent
    options = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        # The nodes run this very harness: the package travels with the job.
        "runtime_env": {"py_modules": [str(package)], "excludes": ["__pycache__"]},
    }
    if address in (None, "", "local"):
        # Started on this thread: Ray ties the processes it starts to the thread that starts
        # them (PR_SET_PDEATHSIG), so a helper thread's end would take the new cluster along.
        try:
            ray.init(**options)
        except Exception as error:  # noqa: BLE001 - reported to the caller as one line
            raise RayUnavailableError(
                f"cannot start a local Ray: {one_line_error(error)}"
            ) from None
        return ray, True
    if address != "auto":
        _check_reachable(address)
    done = threading.Event()
    failure: list[BaseException] = []

    def join() -> None:
        try:
            ray.init(address=address, **options)
        except BaseException as error:  # noqa: BLE001 - reported to the caller as one line
            failure.append(error)
        finally:
            done.set()

    # Joining starts no process, so a helper thread may do it, and give up on a silent head.
    with _stderr_held_back() as held:
        threading.Thread(target=join, name="ray-init", daemon=True).start()
        answered = done.wait(CONNECT_SECONDS)
        held.keep = answered and not failure
    if not answered:
        raise RayUnavailableError(
            f"the Ray cluster at {address} did not answer within {CONNECT_SECONDS:g} s; "
            "is `ray start --head` running there, with the same Ray version?"
        )
    if failure:
        raise RayUnavailableError(
            f"cannot join the Ray cluster at {address}: {one_line_error(failure[0])}"
        )
    return ray, True


class _Held:
    keep = True


@contextlib.contextmanager
def _stderr_held_back() -> Iterator[_Held]:
    """Hold back what is written to file descriptor 2 (Ray's C++ core logs every failed attempt
    to reach a head there); written out at the end when `keep`, dropped otherwise, since the
    one-line error then says it better."""
    held = _Held()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield held
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield held
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if held.keep:
                capture.seek(0)
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.buffer.write(capture.read())
                    sys.stderr.flush()


def _check_reachable(address: str) -> None:
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=REACH_SECONDS):
            pass
    except OSError as error:
        raise RayUnavailableError(
            f"cannot reach the Ray cluster at {address} ({error.strerror or error}); "
            "start it with `ray start --head` there, or check --ray-address"
        ) from None


def parse_address(address: str) -> tuple[str, int]:
    """`HOST:PORT` or `ray://HOST:PORT` as (host, port); a usage error otherwise."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\]\s]+?)\]?:(\d{1,5})", address.strip())
    if match is None:
        raise UsageError(f"--ray-address {address!r}: write HOST:PORT, e.g. 10.0.0.5:6379")
    return match.group(1), int(match.group(2))


def cpu_capacity(ray: Any) -> tuple[float, float]:
    """The CPUs of the cluster's live nodes: in all, and on the largest one."""
    cpus = [node.get("Resources", {}).get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")]
    return sum(cpus), max(cpus, default=0.0)


def trial_resources(
    ray: Any, cpus: float | None, gpus: float, memory: int | None, parallel: int
) -> Resources:
    """The request for one trial, checked against the nodes: one no node can hold never runs."""
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    total, largest_cpus = cpu_capacity(ray)
    if cpus is None:
        cpus = min(max(1.0, float(int(total // max(1, parallel)))), max(1.0, largest_cpus))
    if cpus <= 0 or gpus < 0:
        raise UsageError("ray_cpus must be positive and ray_gpus cannot be negative")
    if not any(
        node.get("CPU", 0.0) >= cpus
        and node.get("GPU", 0.0) >= gpus
        and (memory is None or node.get("memory", 0.0) >= memory)
        for node in nodes
    ):
        asked = Resources(cpus, gpus, memory)
        raise RayUnavailableError(
            f"no node of the Ray cluster can hold a trial asking for {asked.options()} "
            f"(the largest has {largest_cpus:g} CPUs)"
        )
    return Resources(cpus, gpus, memory)


_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_bytes(value: str | int | None) -> int | None:
    """`"2g"`, `"512m"`, `"1.5GiB"` or a number of bytes; None stays None."""
    if value is None or isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", value.lower())
    if match is None:
        raise UsageError(f"cannot read {value!r} as a memory size; write e.g. 2g or 512m")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _branch_holding(source_dir: Path, trial_dir: Path) -> list[Path]:
    """The top folder under `source_dir` that holds the trial (the run directory's branch), so
    the script's folder is shipped without the run that lives inside it."""
    if not trial_dir.is_relative_to(source_dir) or trial_dir == source_dir:
        return []
    return [source_dir / trial_dir.relative_to(source_dir).parts[0]]


def _ray_failure(error: BaseException) -> str:
    """A Ray error in words a user can act on."""
    name = type(error).__name__
    if "WorkerCrashed" in name or "ActorDied" in name:
        return f"the Ray worker died during the trial ({one_line_error(error)})"
    if "NodeDied" in name or "ObjectLost" in name or "OwnerDied" in name:
        return f"the Ray node was lost during the trial ({one_line_error(error)})"
    return one_line_error(error)
