"""`python -m mutator.training.worker --spool DIR`: a warm process that forks one process per trial.

A fresh Python per trial pays about 5 s of TensorFlow, Keras and scikit-learn imports before the
script trains for ~1 s (BENCHMARKS.md). The worker pays them once: it imports what the scripts
import (`--preload`, third-party modules only) and then, for each trial, forks. The child is a
process of its own, so it keeps everything a process per trial gives: its own `sys.modules`
beyond the preloaded ones (the user's own modules are imported fresh, never preloaded), argv,
cwd and environment; a crash, `os._exit`, an OOM kill or a hang takes the child, never the
worker or the tuner; a timeout kills the child's process group. The worker itself never runs
user code and never runs a TensorFlow op, which is what makes forking it safe: TensorFlow starts
its thread pools at the first op, and only in the child.

The protocol is files in the spool folder, so it is the same for a worker the local runner
starts and one serving trials in a container (the folder is then a mount):

    DIR/worker.json          written by the worker once its imports are done: pid, what loaded
    DIR/KEY.request.json     written by the runner: the harness argv, cwd, env, log path
    DIR/KEY.started          written by the worker when it forked the trial (its pid)
    DIR/KEY.exit.json        written by the worker when that trial's process ended: returncode
    DIR/KEY.cancel           written by the runner (timeout): the worker kills the trial
    DIR/stop                 written by the runner: exit once no trial is running

A worker that starts finds requests without an exit file and runs them: after a restart (the
container's monitor) the interrupted trials resume from their checkpoints. A runner that finds
a request `started` and not ended (a tuner killed and run again while a container worker went
on) waits for it rather than submitting it twice.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mutator.training.trialio import write_json_atomically

POLL_SECONDS = 0.02
READY_FILE, STOP_FILE = "worker.json", "stop"
REQUEST, EXIT, CANCEL, STARTED = ".request.json", ".exit.json", ".cancel", ".started"
# Imported by every worker: what the harness needs, whatever the script imports.
ALWAYS = ("mutator.training.harness", "mutator.training.keras_hooks")


@dataclass
class Running:
    key: str
    pid: int
    started: float


def preload_modules(script: Path, own_dirs: Iterable[Path] = ()) -> list[str]:
    """The modules `script` imports that are not its own: what a warm worker may import ahead.

    The script's folder and `own_dirs` hold the user's modules, which must be imported fresh
    by each trial (they may change between trials), so nothing found there is preloaded.
    """
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return []
    folders = [script.parent, *own_dirs]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found = [node.module]
        else:
            continue
        for name in found:
            top = name.split(".")[0]
            own = any((f / f"{top}.py").exists() or (f / top).is_dir() for f in folders)
            if top != "__future__" and not own and name not in names:
                names.append(name)
    return names


def import_quietly(names: Sequence[str]) -> dict[str, str]:
    """Import each module; {name: "ok" | the one-line error}. A failure is the trial's to report."""
    loaded: dict[str, str] = {}
    for name in [*ALWAYS, *names]:
        try:
            importlib.import_module(name)
            loaded[name] = "ok"
        except BaseException as error:  # noqa: BLE001 - a module may even call sys.exit
            loaded[name] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return loaded


class Worker:
    """The fork server: watches the spool, forks a child per request, reports each exit."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.running: dict[int, Running] = {}  # by pid
        self.seen: set[str] = set()

    def serve(self, preload: Sequence[str]) -> int:
        self.spool.mkdir(parents=True, exist_ok=True)
        loaded = import_quietly(preload)
        write_json_atomically(
            self.spool / READY_FILE, {"pid": os.getpid(), "loaded": loaded, "time": time.time()}
        )
        while True:
            self._reap()
            self._cancel()
            if (self.spool / STOP_FILE).exists() and not self.running:
                return 0
            if not (self.spool / STOP_FILE).exists():
                self._start_new()
            time.sleep(POLL_SECONDS)

    def _start_new(self) -> None:
        for request in sorted(self.spool.glob(f"*{REQUEST}")):
            key = request.name[: -len(REQUEST)]
            if key in self.seen or (self.spool / f"{key}{EXIT}").exists():
                continue  # running here, or ended and not yet collected by the runner
            try:
                spec = json.loads(request.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # being written: the rename is atomic, so this is a stray; look again
            self.seen.add(key)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _run_child(spec)  # never returns
            self.running[pid] = Running(key, pid, time.monotonic())
            (self.spool / f"{key}{STARTED}").write_text(str(pid))

    def _reap(self) -> None:
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.running.clear()
                return
            if pid == 0:
                return
            trial = self.running.pop(pid, None)
            if trial is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # what the script left running
            write_json_atomically(
                self.spool / f"{trial.key}{EXIT}",
                {"returncode": code, "seconds": round(time.monotonic() - trial.started, 3)},
            )
            # The runner clears the exit file before it submits the key again (a retry).
            self.seen.discard(trial.key)

    def _cancel(self) -> None:
        for trial in list(self.running.values()):
            if (self.spool / f"{trial.key}{CANCEL}").exists():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(trial.pid, signal.SIGKILL)


def _run_child(spec: dict) -> None:
    """In the forked child: become the trial's process, run the harness, exit with its code."""
    code = 70
    try:
        os.setsid()  # its own process group: a timeout kills what the script started too
        _die_with_parent()
        log = os.open(spec["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
        os.chdir(spec["cwd"])
        os.environ.clear()
        os.environ.update(spec["env"])
        from mutator.training import harness

        sys.argv = ["mutator.training.harness", *spec["argv"]]
        code = harness.main(spec["argv"])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 - whatever happens, the worker must not go on here
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _die_with_parent() -> None:
    """Linux: SIGKILL this trial when its worker dies, as the worker dies with its tuner."""
    if sys.platform != "linux":
        return
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mutator.training.worker",
        description="Serve trials from a spool folder, one forked process per trial.",
    )
    parser.add_argument("--spool", type=Path, required=True, help="the folder of requests")
    parser.add_argument("--preload", default="", help="modules to import first, comma-separated")
    args = parser.parse_args(argv)
    if os.environ.get("MUTATOR_WORKER_DIES_WITH_PARENT"):
        _die_with_parent()
    preload = [name for name in args.preload.split(",") if name]
    return Worker(args.spool.resolve()).serve(preload)


if __name__ == "__main__":
    sys.exit(main())
