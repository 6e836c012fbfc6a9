"""The runs of bench_search.py and bench_suite.py: one `mutate tune` process, or one anchor's
search (KerasTuner's, or Optuna's), timed.

A `Run` is one (method, variant, seed, target), on fixtures/cnn_digits.py or a suite task. A
`mutate tune` process serves one target: it stops there once its best script has a from-scratch
value at the target (a confirm retrain, or a trial that trained cold), so its wall time is the
whole process. An anchor's search serves every target at once: it runs to the highest, and a
target's wall time is when the first trial that met it ended (with `every_epoch`, the end of
the first epoch that met it), from the search process's start.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import search_space

BENCH = Path(__file__).resolve().parent
FIXTURE = BENCH.parent / "fixtures" / "cnn_digits.py"
SPACE = BENCH / "search_space.py"
OPTUNA = BENCH / "optuna_search.py"
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}  # what the local runner sets for trials, for every process
GRACE = 60.0  # seconds past the cap before a run is killed (mutate finishes its trial's timeout)
USAGE_ERROR = 2  # `mutate` rejects a flag it does not know (yet) with exit code 2

# The variants of mutate: the full default configuration, and each part of a fast trial off.
VARIANTS = {
    "full": (),
    "no-warm-start": ("--no-warm-start",),
    "warm-always": ("--warm-after", "0"),  # warm even from a parent that trained in a second
    "no-worker": ("--no-worker",),
    "sequential": ("--parallel", "1"),
    "no-prune": ("--no-prune",),
    "no-joint": ("--no-joint",),  # capacity and epochs side by side, never as one change
    "no-join": ("--no-join",),  # near misses never joined into one change
    "no-guess-cap": ("--no-guess-cap",),  # a candidate may cost more than the search so far
    "no-peak-stop": ("--no-peak-stop",),  # the script as given trains to its last epoch
    "no-target-stop": ("--no-target-stop",),  # a change trains past the epoch at the target
    "no-noise": ("--noise-runs", "0"),  # every gain over min_improvement kept, as before issue 27
}
# The rules that existed before the learning-rate, width, batch and normalisation rules (issue 26):
# `mutate tune` restricted to them shows what the old vocabulary reaches.
OLD_RULES = (
    "more_filters",
    "larger_kernel",
    "add_conv_block",
    "add_dense",
    "more_epochs",
    "add_dropout",
)
# Variants that change what mutate may do, not how fast a trial is (bench_suite.py's).
VOCABULARY = {"old-rules": tuple(arg for rule in OLD_RULES for arg in ("--rule", rule))}
MUTATE_VARIANTS = {**VARIANTS, **VOCABULARY}
LABELS = {
    "mutate": "mutate tune",
    "random": "KT RandomSearch",
    "hyperband": "KT Hyperband",
    "bayesian": "KT BayesianOptimization",
    "optuna": "Optuna TPE+median pruner",
}
# What mutate is measured against: KerasTuner's three searches and Optuna's (bench_suite.py's).
ANCHORS = (*search_space.METHODS, "optuna")


def label(method: str, variant: str | None = None) -> str:
    if method != "mutate" or variant in (None, "full"):
        return LABELS[method]
    if variant in VOCABULARY:
        return f"mutate ({variant})"
    return "mutate " + " ".join(VARIANTS[variant])


@dataclass
class Run:
    """One (method, variant, seed, target): whether it got there, and what that took."""

    method: str
    variant: str | None  # mutate's; None for an anchor
    seed: int
    target: float
    reached: bool
    trials: int  # to reach the target; all trials run when it was not reached
    epochs: int  # epochs trained in those trials
    trial_seconds: float  # the sum of those trials' own seconds
    wall: float  # process start to the target: mutate's round end, an anchor's epoch end
    process_wall: float  # the whole process, start to exit
    cpu: float  # user + sys of the process and the children it waited for
    reason: str
    best: float | None
    load: tuple[float, float]  # 1-minute load average before and after
    trials_run: int = 0
    warm_trials: int | None = (
        None  # mutate: trials up to the target started from a parent's weights
    )
    confirm_seconds: float | None = None  # mutate: the from-scratch retrain that confirmed it
    # mutate: what measuring the noise cost on the way to the target: its runs with other
    # seeds and its rechecks (how many, and the sum of their own seconds)
    noise_trials: int | None = None
    noise_seconds: float | None = None
    pruned_trials: int = 0  # mutate: trials stopped early as hopeless, up to the target
    pruned_saved: float = 0.0  # mutate: estimated seconds those stops saved
    path: list[dict[str, Any]] = field(default_factory=list)
    startup: float | None = None  # an anchor: imports and data before the first trial
    task: str | None = None  # the suite's task; None for fixtures/cnn_digits.py
    mode: str = "max"  # the metric is an accuracy (max) or a loss (min)
    params: int | None = None  # the model that reached the target: its parameters
    seconds_per_epoch: float | None = None  # and its pace

    @property
    def label(self) -> str:
        return label(self.method, self.variant)


class VariantUnavailable(Exception):
    """`mutate tune` rejected the variant's flags (exit 2): this mutator does not have them."""


def mutate_command() -> list[str]:
    """The console script beside this interpreter (a pyenv shim on PATH adds ~60 ms of bash)."""
    beside = Path(sysconfig.get_path("scripts")) / "mutate"
    if beside.is_file():
        return [str(beside)]
    on_path = shutil.which("mutate")
    if on_path:
        return [on_path]
    return [sys.executable, "-c", "from mutator.cli.app import main; raise SystemExit(main())"]


def child_env() -> dict[str, str]:
    return {**os.environ, **QUIET}


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Finished:
    """A process run by `run_capped`: exit code (None when killed at the cap), times."""

    code: int | None
    started: float  # time.monotonic() just before it was started
    wall: float
    cpu: float
    launched: float = 0.0  # time.time() just before it was started: for the ledger's stamps


def run_capped(argv: list[str], cwd: Path, log: Path, timeout: float | None) -> Finished:
    """Run a process in its own group, killed at `timeout`."""
    cpu_before = cpu_of_children()
    launched, started = time.time(), time.monotonic()
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # our child's group, and only it
            process.wait()
    wall = time.monotonic() - started
    return Finished(code, started, wall, cpu_of_children() - cpu_before, launched)


def failed(what: str, done: Finished, log: Path) -> str:
    """A run that broke counts as not reached, and the benchmark goes on: say so, loudly."""
    print(f"  {what} FAILED (exit {done.code}); {log}:\n{tail(log)}", flush=True)
    return f"failed (exit {done.code})"


def tail(log: Path, lines: int = 5) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One object a line; a line torn by a kill is skipped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return records


# -- mutate tune ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TuneScript:
    """What `mutate tune` is run on: the script, and how its metric is read."""

    path: Path = FIXTURE
    metric: str | None = None  # evaluate's key; None: mutate's default, the test accuracy
    mode: str = "max"
    task: str | None = None  # the suite's name for it

    def metric_args(self) -> list[str]:
        return [] if self.metric is None else ["--metric", self.metric, "--mode", self.mode]


def run_mutate(
    work: Path,
    variant: str,
    seed: int,
    target: float,
    max_trials: int,
    time_cap: float,
    script: TuneScript = TuneScript(),  # noqa: B008 - frozen, the fixture
) -> Run:
    """`mutate tune` on a fresh copy of the script, stopped by mutate itself at `target`."""
    name = script.path.name
    folder = work / f"mutate_{script.path.stem}_{variant}_{target:g}_{seed}"
    folder.mkdir()
    shutil.copy(script.path, folder / name)
    flags = MUTATE_VARIANTS[variant]
    argv = [
        *mutate_command(),
        "tune",
        name,
        *script.metric_args(),
        "--target",
        str(target),
        "--max-trials",
        str(max_trials),
        "--seed",
        str(seed),
        "--time-budget",
        f"{time_cap:g}s",
        *flags,
    ]
    load = os.getloadavg()[0]
    log = folder / "mutate.log"
    done = run_capped(argv, folder, log, time_cap + GRACE)
    run_dir = folder / ".mutator" / script.path.stem
    records = read_jsonl(run_dir / "ledger.jsonl")
    if done.code == USAGE_ERROR and flags:
        raise VariantUnavailable(tail(log, 1))
    reason = "killed" if done.code is None else mutate_reason(log)
    if done.code not in (0, 1, None) or not records:
        reason = failed(f"mutate tune {' '.join(flags)}".strip(), done, log)
    path = [ledger_step(r, run_dir, name) for r in records]
    hit = first_reached(path, target, script.mode)
    upto = path if hit is None else trained_by(path, hit)
    confirms = [s["seconds"] for s in upto if s["decision"] == "confirm"]
    noisy = [s["seconds"] for s in upto if s["decision"] == "noise" or s["rechecked"]]
    pruned = [s for s in upto if s["pruned"]]
    starts = [s["start"] for s in upto if s["start"] is not None]
    return Run(
        method="mutate",
        variant=variant,
        seed=seed,
        target=target,
        # mutate's own word counts too: it may stop on the mean of its best script's runs at
        # several seeds (all from scratch), which no single ledger line holds
        reached=hit is not None or reason == "target",
        trials=len(upto),
        epochs=sum(s["epochs"] for s in upto),
        trial_seconds=round(sum(s["seconds"] for s in upto), 3),
        wall=round(to_target(path[hit], done) if hit is not None else done.wall, 3),
        process_wall=round(done.wall, 3),
        cpu=round(done.cpu, 3),
        reason=reason,
        best=best_of([s["counts"] for s in path], script.mode),
        load=(load, os.getloadavg()[0]),
        trials_run=len(path),
        warm_trials=starts.count("warm") if starts else None,
        confirm_seconds=round(sum(confirms), 3) if confirms else None,
        noise_trials=len(noisy),
        noise_seconds=round(sum(noisy), 3),
        pruned_trials=len(pruned),
        pruned_saved=round(sum(s["pruned_saved"] for s in pruned), 3),
        path=path,
        task=script.task,
        mode=script.mode,
        params=None if hit is None else params_of(run_dir, path[hit]["trial"]),
        seconds_per_epoch=None if hit is None else path[hit]["seconds_per_epoch"],
    )


def best_of(values: list[float | None], mode: str) -> float | None:
    """The best of the values that exist: the highest accuracy, the lowest loss."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return min(present) if mode == "min" else max(present)


def params_of(run_dir: Path, trial: Any) -> int | None:
    """The parameters of a trial's trained model, read from its `model.keras` without Keras.

    A `.keras` file is a zip holding `model.weights.h5`: the layers' variables (under `layers/`,
    or under the attribute names of a subclassed model), the optimizer's under `optimizer/` and
    dropout's seed state, neither counted, as `count_params()` does not. None when the file is
    gone (the search keeps only the models children start from) or the h5 reader is missing.
    """
    try:
        import h5py  # comes with TensorFlow

        model = run_dir / "trials" / f"{trial:04d}" / "model.keras"
        with zipfile.ZipFile(model) as archive, archive.open("model.weights.h5") as raw:
            weights = h5py.File(io.BytesIO(raw.read()), "r")
            sizes: list[int] = []

            def count(name: str, item: Any) -> None:
                if isinstance(item, h5py.Dataset) and not is_state(name):
                    sizes.append(item.size)

            weights.visititems(count)
            return sum(sizes)
    except (ImportError, OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return None


def is_state(name: str) -> bool:
    """A variable of a saved model that is not one of its parameters: the optimizer's, a seed."""
    return name.split("/")[0] == "optimizer" or "seed_generator" in name


def rules_of(record: dict[str, Any] | None) -> str | None:
    """A ledger line's rule, or each rule of a joint change: `add_dense+more_epochs`."""
    if record is None or record.get("rule") is None:
        return None
    return "+".join([record["rule"], *(part["rule"] for part in record.get("also") or [])])


def ledger_step(record: dict[str, Any], run_dir: Path, name: str = FIXTURE.name) -> dict[str, Any]:
    """A ledger line, read defensively: older ledgers lack `start` and never `confirm`."""
    trial = record.get("id")
    decision = record.get("decision")
    history = record.get("history") or {}
    pruned = record.get("pruned")
    trained = len(history.get("loss") or [])
    seconds = record.get("seconds") or 0.0
    return {
        "pruned": pruned,
        # what the stop saved: the epochs it did not train, at this trial's own pace
        "pruned_saved": (
            (record.get("seconds") or 0.0)
            / max(trained, 1)
            * max(asked_epochs(run_dir, trial) - trained, 0)
            if pruned
            else 0.0
        ),
        "trial": trial,
        "round": record.get("round"),
        "rule": rules_of(record),
        "params": record.get("params") or {},
        "value": record.get("value"),
        "best_after": record.get("best_after"),
        "decision": decision,
        "rechecked": bool((record.get("noise") or {}).get("rechecked")),
        "status": record.get("status"),
        "start": record.get("start"),
        # the script as given, stopped past its peak: its value is not the script's own
        "past_peak": bool(record.get("past_peak")),
        "seconds": seconds,
        "finished": record.get("finished"),
        "epochs": trained,
        # the trial's seconds over its epochs: the script's data and set-up are in it too
        "seconds_per_epoch": round(seconds / trained, 4) if trained else None,
        # What counts as reached: a confirm's or a cold trial's value (the script trained from
        # scratch, see first_reached); before confirms existed, the best value so far.
        # (an accepted recheck's is the mean of its runs: what mutate itself goes on from)
        "counts": record.get("value")
        if decision == "confirm"
        or (decision == "accepted" and not (record.get("noise") or {}).get("rechecked"))
        else record.get("best_after"),
        "script": str(run_dir / "trials" / f"{trial:04d}" / name)
        if isinstance(trial, int)
        else None,
    }


def asked_epochs(run_dir: Path, trial: Any) -> int:
    """The epochs the trial's first fit was asked for (after a warm start's share), from its
    metrics.json."""
    try:
        metrics = json.loads((run_dir / "trials" / f"{trial:04d}" / "metrics.json").read_text())
        fit = metrics["history"][0]
        return int(fit["epochs_requested"]) - int(fit.get("initial_epoch") or 0)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return 0


def trained_by(path: list[dict[str, Any]], hit: int) -> list[dict[str, Any]]:
    """The ledger lines of every trial trained by the time line `hit` reached the target: its
    whole round, as a round's trials train side by side (the joint change is first in its
    round, and the capacity change alone beside it was trained too)."""
    last_round = path[hit]["round"]
    if last_round is None:
        return path[: hit + 1]
    return [s for i, s in enumerate(path) if i <= hit or s["round"] == last_round]


def first_reached(path: list[dict[str, Any]], target: float, mode: str = "max") -> int | None:
    """The index of the ledger line at which mutate had reached `target`.

    Only a from-scratch value counts, as it is what mutate stops on: a confirm, or a baseline or
    accepted trial that trained cold to its last epoch (not a baseline stopped past its peak).
    A ledger from a mutator without warm starts (no `start`, no confirms) counts the first
    trial whose best_after reaches the target.
    """
    honest = any(s["decision"] == "confirm" or s["start"] is not None for s in path)
    for i, step in enumerate(path):
        from_scratch = step["decision"] == "confirm" or (
            step["decision"] in ("baseline", "accepted")
            and step["start"] != "warm"
            and not step.get("past_peak")
        )
        if honest and not from_scratch:
            continue
        if search_space.reached(step["counts"], target, mode):
            return i
    return None


MUTATE_REASONS = {
    "target reached": "target",
    "trial budget spent": "max_trials",
    "time budget spent": "time_cap",
    "nothing left to try": "exhausted",
}


def mutate_reason(log: Path) -> str:
    """Why `mutate tune` stopped, from its last summary line (mutator/search/tune.py's REASONS)."""
    for line in reversed(log.read_text(encoding="utf-8", errors="replace").splitlines()):
        for words, reason in MUTATE_REASONS.items():
            if line.startswith(words):
                return reason
    return "unknown"


# -- the anchors: KerasTuner and Optuna ----------------------------------------------------------


def anchor_command(method: str) -> list[str]:
    """The child that runs one anchor's search: search_space.py's KerasTuner, or Optuna's."""
    if method == "optuna":
        return [sys.executable, str(OPTUNA)]
    return [sys.executable, str(SPACE), "kerastuner", "--method", method]


def run_anchor(
    work: Path,
    method: str,
    seed: int,
    targets: list[float],
    max_trials: int,
    time_cap: float,
    task: str | None = None,
    every_epoch: bool = False,
    mode: str = "max",
) -> list[Run]:
    """One anchor's search in a subprocess, to the highest target or the cap: one Run per target.

    `task` names the suite's task whose space is searched (None: the digits CNN); with
    `every_epoch` the test set is evaluated at every epoch's end, so a target's time is the end
    of the epoch that met it rather than the end of its trial.
    """
    folder = work / f"{method}_{task or 'cnn_digits'}_{seed}"
    folder.mkdir()
    out = folder / "trials.jsonl"
    argv = [
        *anchor_command(method),
        "--seed",
        str(seed),
        "--targets",
        *map(str, targets),
        "--max-trials",
        str(max_trials),
        "--time-cap",
        str(time_cap),
        *(["--dir", str(folder / "kt")] if method != "optuna" else []),
        "--out",
        str(out),
        *(["--task", task] if task else []),
        *(["--every-epoch"] if every_epoch else []),
    ]
    load = os.getloadavg()[0]
    log = folder / f"{method}.log"
    done = run_capped(argv, folder, log, time_cap + GRACE)
    events = read_jsonl(out)
    load_after = os.getloadavg()[0]
    start = next((e for e in events if e["event"] == "start"), {})
    end = next((e for e in events if e["event"] == "end"), {"reason": "killed"})
    if done.code not in (0, None) or not events:
        end["reason"] = failed(LABELS[method], done, log)
    for event in events:  # the child's own test evaluations (--every-epoch) are not the search's
        event["at"] = since_start(event, done) - (event.get("measuring") or 0.0)
    trials = [e for e in events if e["event"] == "trial"]
    runs = []
    for target in targets:
        hit = anchor_hit(events, target, mode)
        upto = trials if hit is None else hit["trials"]
        runs.append(
            Run(
                method=method,
                variant=None,
                seed=seed,
                target=target,
                reached=hit is not None,
                trials=len(upto),
                epochs=sum(t.get("epochs_trained") or 0 for t in upto),
                trial_seconds=round(sum(t.get("seconds") or 0.0 for t in upto), 3),
                wall=round(done.wall if hit is None else hit["at"], 3),
                process_wall=round(done.wall, 3),
                cpu=round(done.cpu, 3),
                reason="target" if hit is not None else end["reason"],
                best=best_of([e.get("test_value") for e in events], mode),
                load=(load, load_after),
                trials_run=len(trials),
                path=trials,
                startup=start.get("import_and_data_seconds"),
                task=task,
                mode=mode,
                params=None if hit is None else hit.get("params"),
                seconds_per_epoch=None if hit is None else hit.get("seconds_per_epoch"),
            )
        )
    return runs


def anchor_hit(events: list[dict[str, Any]], target: float, mode: str) -> dict[str, Any] | None:
    """When a search first met `target`: the earliest finished trial at it, or the earliest
    epoch at it (a `met` line, --every-epoch), whichever came first; None if nothing did.

    `trials` are the trial lines up to it: for an epoch, the trials before its own and a line
    for the part of its trial that ran (its epochs and seconds so far).
    """
    hits = []
    finished = []
    for event in events:
        if event["event"] == "trial":
            finished.append(event)
            if search_space.reached(event.get("test_value"), target, mode):
                hits.append({**event, "trials": list(finished)})
        elif event["event"] == "met" and event.get("target") == target:
            part = {"epochs_trained": event.get("epoch"), "seconds": event.get("seconds")}
            hits.append({**event, "trials": [*finished, part]})
    if not hits:
        return None
    return min(hits, key=lambda hit: hit["at"])


def to_target(step: dict[str, Any], done: Finished) -> float:
    """Seconds from mutate's launch to the end of the round whose trial met the target (its
    ledger stamp), as an anchor's time ends at the epoch that met it: what mutate does after
    (best.keras, the report) is no more counted than KerasTuner's own ending. The process's
    whole time when the stamp is missing, or has no milliseconds (an older mutator)."""
    stamp = step.get("finished")
    if not isinstance(stamp, str) or "." not in stamp:
        return done.wall
    try:
        at = datetime.fromisoformat(stamp).timestamp() - done.launched
    except ValueError:
        return done.wall
    return at if 0.0 <= at <= done.wall else done.wall


def since_start(event: dict[str, Any], done: Finished) -> float:
    """Seconds from the process's start to `event`, on the system-wide monotonic clock.

    Falls back to the child's own clock (which starts at its first line, ~50 ms late) when
    the two clocks do not agree, e.g. on a system where CLOCK_MONOTONIC is per process.
    """
    at = event.get("monotonic")
    if isinstance(at, float) and 0.0 <= at - done.started <= done.wall:
        return at - done.started
    return float(event.get("elapsed") or 0.0)


# The other starts: a model that under-fits and one that over-fits. What matters is what the
# climb reads from the baseline's curves and which rule it tries first, so two trials suffice.
DIAGNOSIS_STARTS = {
    "mlp_digits.py": "under-fitting",
    "overfit_digits.py": "over-fitting",
}


def run_diagnosis_start(work: Path, name: str, target: float) -> dict[str, Any]:
    """`mutate tune` of another fixture for its baseline and first candidate: the diagnosis."""
    fixture = BENCH.parent / "fixtures" / name
    folder = work / f"diagnosis_{fixture.stem}"
    folder.mkdir()
    shutil.copy(fixture, folder / name)
    argv = [*mutate_command(), "tune", name, "--target", str(target), "--max-trials", "2"]
    argv += ["--parallel", "1", "--seed", "0"]
    log = folder / "mutate.log"
    done = run_capped(argv, folder, log, 300)
    records = read_jsonl(folder / ".mutator" / fixture.stem / "ledger.jsonl")
    first = next((r for r in records if r.get("decision") in ("accepted", "rejected")), None)
    diagnosis = (first or {}).get("diagnosis") or ""
    return {
        "script": name,
        "expected": DIAGNOSIS_STARTS[name],
        "diagnosis": diagnosis,
        "named": diagnosis.startswith(DIAGNOSIS_STARTS[name]),
        "baseline": records[0].get("value") if records else None,
        "first_rule": rules_of(first),
        "first_value": (first or {}).get("value"),
        "wall": round(done.wall, 1),
    }
