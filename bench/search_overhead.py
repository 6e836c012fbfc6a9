"""The fixed cost of a trial: a fresh process per trial against the warm worker, and the floors.

Alternated within each repeat, so that drift in the machine's load hits all of them:
  - the bare `python cnn_digits.py`;
  - one trial through `LocalRunner(worker=False)`: a fresh process per trial (runner + harness);
  - trials through `LocalRunner(worker=True)`: the first through a new worker (which pays the
    worker's start and its imports), then later ones (each a fork of the warm worker);
  - `mutate tune --max-trials 1` (not with --quick);
  - `python -c "import keras, sklearn..."`: the imports alone.
Then the script run again and again in one warm process (`runpy`, TF imported once): the floor.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from search_runs import FIXTURE, QUIET, SPACE, mutate_command, run_capped, tail

LATER_WORKER_TRIALS = 2  # per repeat, after the worker's first


def replay(scripts: list[Path], repeat: int, folder: Path) -> dict[str, Any]:
    """The scripts run one after another in one warm process (TF imported once)."""
    out = folder / "replay.json"
    argv = [sys.executable, str(SPACE), "replay", "--repeat", str(repeat), "--out", str(out)]
    log = folder / "replay.log"
    done = run_capped([*argv, *map(str, scripts)], folder, log, None)
    if done.code != 0:
        raise SystemExit(f"warm replay failed (exit {done.code}); {log}:\n{tail(log)}")
    result = json.loads(out.read_text(encoding="utf-8"))
    result.update(wall=round(done.wall, 3), cpu=round(done.cpu, 3))
    return result


class Trials:
    """Fresh trial folders with a copy of the script, and their specs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def spec(self):
        from mutator.training.runner import TrialSpec

        self.count += 1
        trial_dir = self.folder / f"trial_{self.count}"
        trial_dir.mkdir()
        shutil.copy(FIXTURE, trial_dir / FIXTURE.name)
        return TrialSpec(
            script=trial_dir / FIXTURE.name,
            trial_dir=trial_dir,
            env={"MUTATOR_SEED": "0", "PYTHONHASHSEED": "0", **QUIET},
            source_dir=self.folder,
        )


def timed_trial(runner, trials: Trials) -> tuple[float, Any]:
    started = time.perf_counter()
    result = runner.run(trials.spec())
    seconds = time.perf_counter() - started
    if result.status != "ok":
        raise RuntimeError(f"{result.status}: {result.error}")
    return seconds, result


def fresh_runner():
    """Today's behaviour, a fresh process per trial, whatever LocalRunner's default becomes."""
    from mutator.training.local import LocalRunner

    try:
        return LocalRunner(worker=False)
    except TypeError:  # a LocalRunner from before the worker: always a fresh process
        return LocalRunner()


def fell_back(result) -> None:
    """A runner whose worker cannot start runs the trial in a fresh process and says so in its
    log: that must not be timed as the worker."""
    log = result.log_path.read_text(encoding="utf-8", errors="replace") if result.log_path else ""
    for line in log.splitlines():
        if "no warm worker" in line:
            raise RuntimeError(line.strip())


def worker_runner(script: Path):
    """A new warm worker that preloads what `script` imports, as `mutate tune` starts one."""
    from mutator.training.local import LocalRunner

    try:
        from mutator.training.worker import preload_modules
    except ImportError:
        return LocalRunner(worker=True)
    preload = preload_modules(script, [script.parent])
    try:
        return LocalRunner(worker=True, preload=preload)
    except TypeError:  # a worker without preload=: it imports what it imports
        return LocalRunner(worker=True)


def worker_trials(trials: Trials, later: int) -> dict[str, Any]:
    """One new worker: its first trial (start included), `later` forks, and its close()."""
    started = time.perf_counter()
    try:
        runner = worker_runner(FIXTURE)
    except TypeError:
        return {"error": "worker runner not available (LocalRunner does not accept worker=)"}
    except Exception as error:  # noqa: BLE001 - the worker is being built; report, go on
        return {"error": f"worker runner failed to start: {type(error).__name__}: {error}"}
    try:
        _, result = timed_trial(runner, trials)
        fell_back(result)
        measured: dict[str, Any] = {
            "first": time.perf_counter() - started,
            "first_inside": result.seconds,
            "later": [],
            "values": [result.value],
        }
        for _ in range(later):
            seconds, result = timed_trial(runner, trials)
            fell_back(result)
            measured["later"].append(seconds)
            measured["values"].append(result.value)
    except Exception as error:  # noqa: BLE001 - the worker is being built; report, go on
        return {"error": f"worker runner failed: {type(error).__name__}: {error}"}
    finally:
        closing = time.perf_counter()
        try:
            runner.close()
        except Exception as error:  # noqa: BLE001
            closed = f"worker runner failed to close: {type(error).__name__}: {error}"
        else:
            closed = None
    if closed is not None:
        return {"error": closed}
    measured["close"] = time.perf_counter() - closing
    return measured


def measure_overhead(work: Path, repeat: int, with_tune: bool) -> dict[str, Any]:
    folder = work / "overhead"
    folder.mkdir()
    script = folder / FIXTURE.name
    shutil.copy(FIXTURE, script)
    log = folder / "overhead.log"
    trials = Trials(folder)
    samples: dict[str, list[float]] = {
        "bare": [],
        "runner": [],
        "runner_inside": [],
        "worker_first": [],
        "worker_first_inside": [],
        "worker_later": [],
        "worker_close": [],
        "imports": [],
    }
    if with_tune:
        samples.update(tune=[], tune_trial=[])
    values: dict[str, list[float | None]] = {"runner": [], "worker": []}
    worker_error = None
    for _ in range(repeat):
        samples["bare"].append(run_capped([sys.executable, FIXTURE.name], folder, log, None).wall)

        try:
            seconds, result = timed_trial(fresh_runner(), trials)
        except RuntimeError as error:
            raise SystemExit(f"the runner's trial failed: {error}") from None
        samples["runner"].append(seconds)
        samples["runner_inside"].append(result.seconds)
        values["runner"].append(result.value)

        if worker_error is None:
            worker = worker_trials(trials, LATER_WORKER_TRIALS)
            worker_error = worker.get("error")
            if worker_error is None:
                samples["worker_first"].append(worker["first"])
                samples["worker_first_inside"].append(worker["first_inside"])
                samples["worker_later"].extend(worker["later"])
                samples["worker_close"].append(worker["close"])
                values["worker"].extend(worker["values"])

        if with_tune:
            tune_dir = folder / f"tune_{len(samples['tune'])}"
            tune_dir.mkdir()
            shutil.copy(FIXTURE, tune_dir / FIXTURE.name)
            argv = [*mutate_command(), "tune", FIXTURE.name, "--max-trials", "1", "--seed", "0"]
            done = run_capped(argv, tune_dir, log, None)
            ledger = tune_dir / ".mutator" / FIXTURE.stem / "ledger.jsonl"
            if not ledger.exists():
                raise SystemExit(f"mutate tune --max-trials 1 failed (exit {done.code}): {log}")
            samples["tune"].append(done.wall)
            first = json.loads(ledger.read_text(encoding="utf-8").splitlines()[0])
            samples["tune_trial"].append(first.get("seconds") or 0.0)

        imports = "import keras, sklearn.datasets, sklearn.model_selection"
        samples["imports"].append(
            run_capped([sys.executable, "-c", imports], folder, log, None).wall
        )
    warm = replay([script], max(repeat, 2), folder)
    # The first run in a fresh process pays TF's one-time setup (graph tracing machinery, oneDNN).
    samples["warm_first"] = [warm["runs"][0]["seconds"]]
    samples["warm"] = [r["seconds"] for r in warm["runs"][1:]]
    medians = {name: statistics.median(s) for name, s in samples.items() if s}
    return {
        "repeat": repeat,
        "later_worker_trials": LATER_WORKER_TRIALS,
        "samples": {name: [round(v, 3) for v in s] for name, s in samples.items()},
        "medians": {name: round(v, 3) for name, v in medians.items()},
        "runner_values": values["runner"],
        "worker_values": values["worker"],
        "worker_error": worker_error,
        "warm_import_seconds": warm["import_seconds"],
    }
