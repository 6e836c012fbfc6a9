"""Train a trial in a container: the harness in the image for the script's kind, one per trial.

The trial dir is bind-mounted read-write at /trial (the working directory) and the script's own
folder read-only at /src (on PYTHONPATH, for helper modules beside it); the command is the same
`python -m mutator.training.harness` the local runner starts, with container paths. The container is
named after the run and the trial and labelled with both, so that:
- a trial run again (a resumed `mutate tune`, the search's retry) finds its container: one still
  running is followed to its end instead of started twice, one that is stopped is replaced;
- `mutate monitor` finds crashed trials by label and starts them again; the checkpoint lives in
  the mounted trial dir, so a restarted container resumes at its last completed epoch. A runner
  waiting on a container notices the restart (its StartedAt changes) and follows the new run.

Who owns the files: the container runs as the user who runs `mutate` (uid:gid), not as the
image's own user (uid 1000). Everything a trial writes then belongs to that user on the host
(the ledger, `rm -rf .mutator`, a resumed run can all use it), and the container can read the
script's folder exactly when the user can, with no chmod/chown of the user's folders. Run by
root, the container runs as root too: no more than root already has; it sees only the two
mounts. `user=` overrides it (it must be able to write the trial dir).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from mutator.containers.detect import detect_kind
from mutator.containers.docker_api import (
    DockerUnavailableError,
    connect,
    container_labels,
    container_name,
    run_dir_of,
)
from mutator.containers.follow import supervise
from mutator.containers.images import IMAGE_NAMES
from mutator.containers.restarts import record_given_up, restart_count
from mutator.containers.worker_container import ContainerWorker
from mutator.errors import MutatorError
from mutator.training.local import QUIET_DEFAULTS
from mutator.training.runner import (
    LOG_FILE,
    METRICS_FILE,
    ConcurrentRunner,
    InFlight,
    LineCallback,
    TrialResult,
    TrialSpec,
    describe_exit,
    harness_arguments,
    log_note,
    not_started,
    read_result,
)
from mutator.training.worker_client import trial_key

__all__ = ["DockerRunner", "DockerUnavailableError", "ImageMissingError", "connect", "container_name"]


class ImageMissingError(MutatorError):
    """The image a trial needs is not on this engine; the message says which and how to build it."""

    exit_code = 7


TRIAL_MOUNT, SOURCE_MOUNT, SCRIPT_MOUNT = "/trial", "/src", "/script"
IMAGE_KIND = {"cnn": "keras", "ann": "keras", "sklearn": "sklearn"}
POLL_SECONDS = 0.5
READER_GRACE = 5.0


class DockerRunner(ConcurrentRunner):
    """Runs each trial in a container of its own, with limits, labels, a timeout and a log.

    `image` None chooses per script: `mutator.containers.detect.detect_kind` -> keras or sklearn image
    (`images` maps a kind, "cnn"/"ann"/"sklearn" or "keras"/"sklearn", to another image).
    `cpus` (e.g. 1.5) and `memory` (e.g. "2g") limit the container; `network="none"` cuts it off.
    A finished container is removed, unless `keep`; a failed one is kept when `keep_failed`,
    for `docker logs`/`docker inspect` (its name is in the error). `restart_grace` is how long a
    container that died without a result is watched for a restart by `mutate monitor` before the
    trial counts as crashed; 0 leaves restarting to the search's own retries.

    `worker=True`: one container per run serves all its trials (`worker_container`), each a
    fork of a warm worker that imported `preload` once; the limits are then the container's,
    shared by the trials that run side by side.
    """

    name = "docker"

    def __init__(
        self,
        image: str | None = None,
        *,
        images: Mapping[str, str] | None = None,
        cpus: float | None = None,
        memory: str | None = None,
        network: str | None = None,
        keep_failed: bool = False,
        keep: bool = False,
        user: str | None = None,
        restart_grace: float = 0.0,
        on_line: LineCallback | None = None,
        client: Any = None,
        worker: bool = False,
        preload: Sequence[str] = (),
    ) -> None:
        self.client = connect(client)
        self.worker, self.preload = worker, tuple(preload)
        self._workers: dict[Path, ContainerWorker] = {}
        self._workers_lock = threading.Lock()
        self._in_flight = InFlight()  # which trials were cancelled (a container is killed by name)
        self.image = image
        self.images = dict(images or {})
        self.cpus, self.memory, self.network = cpus, memory, network
        self.keep_failed, self.keep = keep_failed, keep
        self.user = user
        self.restart_grace = restart_grace
        self.on_line = on_line

    @classmethod
    def from_settings(
        cls,
        docker: Any,
        worker: bool = False,
        on_line: LineCallback | None = None,
        preload: Sequence[str] = (),
    ) -> DockerRunner:
        """From `TuneSettings.docker` (image, images, cpus, memory, network, keep_failed,
        restart_grace) and whether trials fork from a warm worker (`TuneSettings.fast.worker`)."""
        return cls(
            docker.image,
            images=dict(docker.images),
            cpus=docker.cpus,
            memory=docker.memory,
            network=docker.network,
            keep_failed=docker.keep_failed,
            restart_grace=docker.restart_grace,
            on_line=on_line,
            worker=worker,
            preload=preload,
        )

    # -- what the container looks like ---------------------------------------------------------
    def image_for(self, script: Path) -> str:
        if self.image is not None:
            return self.image
        kind = None
        with contextlib.suppress(MutatorError):  # unreadable: the keras image runs anything
            kind = detect_kind(script)
        image_kind = IMAGE_KIND.get(kind or "", "keras")
        for key in (kind, image_kind):
            if key in self.images:
                return self.images[key]
        return IMAGE_NAMES[image_kind]

    def container_user(self) -> str:
        if self.user is not None:
            return self.user
        return f"{os.getuid()}:{os.getgid()}"

    def command(self, spec: TrialSpec) -> list[str]:
        return [
            "python",
            *harness_arguments(
                spec,
                script=self._script_in_container(spec),
                trial_dir=TRIAL_MOUNT,
                source_dir=SOURCE_MOUNT if spec.source_dir else None,
            ),
        ]

    def environment(self, spec: TrialSpec, image_pythonpath: str = "") -> dict[str, str]:
        """Quiet defaults, the spec's variables, and /src before the image's own PYTHONPATH."""
        env = {**QUIET_DEFAULTS, "HOME": "/tmp", **spec.env, "PYTHONUNBUFFERED": "1"}
        paths = [SOURCE_MOUNT] if spec.source_dir is not None else []
        paths += [entry for entry in image_pythonpath.split(":") if entry]
        if paths:
            env["PYTHONPATH"] = ":".join(paths)
        return env

    def create_options(self, spec: TrialSpec, image_pythonpath: str = "") -> dict[str, Any]:
        """The keyword arguments of `containers.create` (everything but image and command)."""
        trial_dir = spec.trial_dir.resolve()
        # "host:container:mode" strings, not a dict keyed by host path: the same folder may be
        # both the trial dir and the script's source dir, and must then be mounted at both.
        volumes = [f"{trial_dir}:{TRIAL_MOUNT}:rw"]
        if spec.source_dir is not None:
            volumes.append(f"{spec.source_dir.resolve()}:{SOURCE_MOUNT}:ro")
        script = spec.script.resolve()
        if script.parent != trial_dir:
            volumes.append(f"{script.parent}:{SCRIPT_MOUNT}:ro")
        volumes += [f"{d.resolve()}:{d.resolve()}:ro" for d in spec.read_only_dirs if d.is_dir()]
        options: dict[str, Any] = {
            "name": container_name(trial_dir),
            "labels": container_labels(spec),
            "volumes": volumes,
            "working_dir": TRIAL_MOUNT,
            "environment": self.environment(spec, image_pythonpath),
            "user": self.container_user(),
            "stdin_open": False,
            "tty": False,
        }
        return {**options, **self._limits()}

    def _script_in_container(self, spec: TrialSpec) -> str:
        script = spec.script.resolve()
        if script.parent == spec.trial_dir.resolve():
            return f"{TRIAL_MOUNT}/{script.name}"
        return f"{SCRIPT_MOUNT}/{script.name}"

    # -- running -------------------------------------------------------------------------------
    def run(self, spec: TrialSpec) -> TrialResult:
        if self.worker:
            return self._run_in_worker(spec)
        from docker.errors import DockerException, ImageNotFound

        trial_dir = spec.trial_dir.resolve()
        trial_dir.mkdir(parents=True, exist_ok=True)
        log_path = trial_dir / LOG_FILE
        name = container_name(trial_dir)
        started = time.monotonic()
        deadline = None if spec.timeout is None else started + spec.timeout
        with log_path.open("ab") as log:
            container = self._running_container(name, log)
            attached = container is not None
            if container is None:
                (trial_dir / METRICS_FILE).unlink(missing_ok=True)  # never read an old attempt's
                image = self.image_for(spec.script)
                try:
                    container = self._create(spec, image, log)
                except ImageNotFound:
                    raise ImageMissingError(
                        f"image {image} is not on this Docker engine; build it (see images/), "
                        "or use --runner local"
                    ) from None
                except DockerException as error:
                    log_note(log, f"cannot create the container: {error}")
                    return self._result_without_run(spec, started, log_path, error)
            finished = False
            try:
                returncode, timed_out = supervise(
                    container, log, deadline, attached=attached,
                    restart_grace=self.restart_grace, on_line=self.on_line,
                )  # fmt: skip
                finished = True
            finally:
                if not finished:  # Ctrl-C or an engine error: nothing left training, nothing
                    with contextlib.suppress(DockerException):  # dead for the monitor to restart
                        container.remove(force=True)
            seconds = time.monotonic() - started
            ending = "timed out" if timed_out else describe_exit(returncode)
            log_note(log, f"end: container {name} {ending} after {seconds:.1f} s")
        cancelled = self._was_cancelled(trial_dir)
        result = read_result(
            spec, returncode=returncode, seconds=seconds, log_path=log_path,
            timed_out=timed_out, cancelled=cancelled,
        )  # fmt: skip
        self._dispose(container, result, trial_dir)
        result.restarts = restart_count(trial_dir)  # containers `mutate monitor` brought back
        return result

    def cancel(self, spec: TrialSpec) -> None:
        """Stop a trial in flight: its worker kills it, or its own container is killed."""
        from docker.errors import DockerException

        trial_dir = spec.trial_dir.resolve()
        self._in_flight.cancel(trial_dir)
        with self._workers_lock:
            worker = self._workers.get(run_dir_of(trial_dir))
        if self.worker and worker is not None:
            worker.client.cancel(trial_key(trial_dir))
        elif not self.worker:
            with contextlib.suppress(DockerException):
                self.client.containers.get(container_name(trial_dir)).kill()

    def _was_cancelled(self, trial_dir: Path) -> bool:
        return self._in_flight.ended(trial_dir)

    # -- one container per run -----------------------------------------------------------------
    def _run_in_worker(self, spec: TrialSpec) -> TrialResult:
        from docker.errors import DockerException, ImageNotFound

        started = time.monotonic()
        worker = self._worker_for(spec)
        try:
            with self._workers_lock:
                worker.ensure()
        except ImageNotFound:
            raise ImageMissingError(
                f"image {worker.image} is not on this Docker engine; build it (see images/), "
                "or use --runner local"
            ) from None
        except DockerException as error:
            log_path = spec.trial_dir.resolve() / LOG_FILE
            return self._result_without_run(spec, started, log_path, error)
        return worker.run_trial(spec, self._was_cancelled)

    def _worker_for(self, spec: TrialSpec) -> ContainerWorker:
        run_dir = run_dir_of(spec.trial_dir.resolve())
        with self._workers_lock:
            if run_dir not in self._workers:
                image = self.image_for(spec.script)
                pythonpath = _image_pythonpath(self.client.images.get(image))
                mounts = [(run_dir, "rw")]
                if spec.source_dir is not None:
                    mounts.append((spec.source_dir.resolve(), "ro"))
                mounts += [(d.resolve(), "ro") for d in spec.read_only_dirs]
                paths = [str(spec.source_dir.resolve())] if spec.source_dir else []
                paths += [entry for entry in pythonpath.split(":") if entry]
                env = {**QUIET_DEFAULTS, "HOME": "/tmp", "PYTHONUNBUFFERED": "1"}
                if paths:
                    env["PYTHONPATH"] = ":".join(paths)
                self._workers[run_dir] = ContainerWorker(
                    self.client,
                    run_dir,
                    image,
                    mounts=mounts,
                    environment=env,
                    limits=self._limits(),
                    user=self.container_user(),
                    preload=self.preload,
                    script_name=spec.script.name,
                    restart_grace=self.restart_grace,
                )
            return self._workers[run_dir]

    def _limits(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.cpus is not None:
            options["nano_cpus"] = int(self.cpus * 1e9)
        if self.memory is not None:
            options["mem_limit"] = self.memory
            options["memswap_limit"] = self.memory  # no swap beyond the limit: it is a limit
        if self.network in ("none", "host", "bridge"):
            options["network_mode"] = self.network
        elif self.network is not None:
            options["network"] = self.network
        return options

    def close(self) -> None:
        super().close()
        with self._workers_lock:
            for worker in self._workers.values():
                worker.close()
            self._workers.clear()

    def _running_container(self, name: str, log: IO[bytes]) -> Any | None:
        """The trial's container if it is still training (a resumed run follows it), else None.

        A stopped one (finished, crashed, or kept) is removed: the trial starts afresh, from
        the checkpoint in its trial dir.
        """
        from docker.errors import NotFound

        try:
            existing = self.client.containers.get(name)
        except NotFound:
            return None
        if existing.status in ("running", "restarting"):
            log_note(log, f"container {name} is already running: following it")
            return existing
        existing.remove(force=True)
        return None

    def _create(self, spec: TrialSpec, image: str, log: IO[bytes]) -> Any:
        options = self.create_options(spec, _image_pythonpath(self.client.images.get(image)))
        command = self.command(spec)
        log_note(log, f"start {options['name']} ({image}): {shlex.join(command)}")
        container = self.client.containers.create(image, command, **options)
        container.start()
        return container

    def _dispose(self, container: Any, result: TrialResult, trial_dir: Path) -> None:
        from docker.errors import DockerException

        with contextlib.suppress(DockerException):
            container.reload()
            if container.attrs["State"].get("OOMKilled") and not result.ok:
                limit = f" (limit {self.memory})" if self.memory else ""
                result.error = f"the container ran out of memory{limit}; {result.error}"
        keep = self.keep or (self.keep_failed and not result.ok)
        if keep and not result.ok:
            result.error = f"{result.error}; container {container.name} kept for inspection"
            record_given_up(trial_dir, container, result.status)  # the monitor leaves it alone
        if not keep:
            with contextlib.suppress(DockerException):
                container.remove(force=True)

    def _result_without_run(self, spec, started, log_path, error) -> TrialResult:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return not_started(spec, started, log_path, f"cannot create the trial's container: {first}")


def _image_pythonpath(image: Any) -> str:
    for entry in image.attrs.get("Config", {}).get("Env") or []:
        if entry.startswith("PYTHONPATH="):
            return entry.split("=", 1)[1]
    return ""
