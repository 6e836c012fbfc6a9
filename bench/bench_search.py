"""How fast does `mutate tune` reach a target next to KerasTuner's RandomSearch and Hyperband?

    python bench/bench_search.py [--target 0.95] [--seeds 0 1 2] [--max-trials 20]
                                 [--time-cap 300] [--json OUT] [--quick]

One run measures, side by side on this machine, from the same weak starting model
(fixtures/cnn_digits.py: 4 filters, kernel 3, one Conv block, no hidden Dense, 2 epochs):
  (a) `mutate tune cnn_digits.py --target T --max-trials N --seed S` on a copy of the script in a
      temp dir: trials and seconds until the first trial whose best_after reaches T (ledger), and
      the wall time of the whole `mutate` process;
  (b) KerasTuner RandomSearch and Hyperband over the same space (filters, kernel, conv blocks,
      dense layers, epochs; bench/search_space.py), one subprocess per (method, seed), each
      trial's model evaluated on the TEST set, the search stopped once a trial reaches T;
  (c) the per-trial overhead of the harness + local runner against the bare script, and what TF's
      import and a warm process (TF imported once) take.
Every run is capped at --time-cap seconds of wall time (mutate: --time-budget). A run that does
not reach T counts as infinitely slow in the medians. Seeds run in turn, each seed running mutate,
then RandomSearch, then Hyperband, so that drift in the machine's load hits every method.
A benchmark reports; it never fails because a method is slow.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import search_space

BENCH = Path(__file__).resolve().parent
FIXTURE = BENCH.parent / "fixtures" / "cnn_digits.py"
SPACE = BENCH / "search_space.py"
METHODS = ("mutate", "random", "hyperband")
LABELS = {"mutate": "mutate tune", "random": "KT RandomSearch", "hyperband": "KT Hyperband"}
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}  # what the local runner sets for trials, for every process
GRACE = 60.0  # seconds past the cap before a run is killed (mutate finishes its trial's timeout)


@dataclass
class Run:
    """One (method, seed): what it reached, and how long that took."""

    method: str
    seed: int
    reached: bool
    trials: int  # to reach the target; all trials run when it was not reached
    epochs: int  # epochs trained in those trials
    trial_seconds: float  # the sum of those trials' own seconds
    wall: float  # the whole process, start to exit (it stops at the target)
    cpu: float  # user + sys of the process and the children it waited for
    reason: str
    best: float | None
    load: tuple[float, float]  # 1-minute load average before and after
    trials_run: int = 0
    path: list[dict[str, Any]] = field(default_factory=list)
    startup: float | None = None  # KerasTuner: imports and data before the first trial


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


def run_capped(
    argv: list[str], cwd: Path, log: Path, timeout: float | None
) -> tuple[int | None, float, float]:
    """Run a process in its own group, killed at `timeout`: (exit code or None, wall, cpu)."""
    cpu_before = cpu_of_children()
    started = time.perf_counter()
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
    return code, time.perf_counter() - started, cpu_of_children() - cpu_before


def tail(log: Path, lines: int = 5) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


# -- (a) mutate tune -----------------------------------------------------------------------------


def run_mutate(work: Path, seed: int, args: argparse.Namespace) -> tuple[Run, Path]:
    folder = work / f"mutate_{seed}"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / FIXTURE.name)
    argv = [
        *mutate_command(),
        "tune",
        FIXTURE.name,
        "--target",
        str(args.target),
        "--max-trials",
        str(args.max_trials),
        "--seed",
        str(seed),
        "--time-budget",
        f"{args.time_cap:g}s",
    ]
    load = os.getloadavg()[0]
    log = folder / "mutate.log"
    code, wall, cpu = run_capped(argv, folder, log, args.time_cap + GRACE)
    run_dir = folder / ".mutator" / FIXTURE.stem
    ledger = run_dir / "ledger.jsonl"
    if code not in (0, 1) or not ledger.exists():
        raise SystemExit(f"mutate tune failed (exit {code}); {log}:\n{tail(log)}")
    records = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    path = [
        {
            "trial": r["id"],
            "rule": r["rule"],
            "params": r["params"],
            "value": r["value"],
            "best_after": r["best_after"],
            "decision": r["decision"],
            "status": r["status"],
            "seconds": r["seconds"],
            "epochs": len((r.get("history") or {}).get("loss", [])),
            "script": str(run_dir / "trials" / f"{r['id']:04d}" / FIXTURE.name),
        }
        for r in records
    ]
    hit = next((i for i, r in enumerate(path) if (r["best_after"] or 0.0) >= args.target), None)
    upto = path if hit is None else path[: hit + 1]
    reason = "killed" if code is None else mutate_reason(log)
    run = Run(
        method="mutate",
        seed=seed,
        reached=hit is not None,
        trials=len(upto),
        epochs=sum(r["epochs"] for r in upto),
        trial_seconds=round(sum(r["seconds"] for r in upto), 3),
        wall=round(wall, 3),
        cpu=round(cpu, 3),
        reason=reason,
        best=max((r["best_after"] or 0.0 for r in path), default=None),
        load=(load, os.getloadavg()[0]),
        trials_run=len(path),
        path=path,
    )
    return run, folder


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


# -- (b) KerasTuner ------------------------------------------------------------------------------


def run_kerastuner(work: Path, method: str, seed: int, args: argparse.Namespace) -> Run:
    folder = work / f"{method}_{seed}"
    folder.mkdir()
    out = folder / "trials.jsonl"
    argv = [
        sys.executable,
        str(SPACE),
        "kerastuner",
        "--method",
        method,
        "--seed",
        str(seed),
        "--target",
        str(args.target),
        "--max-trials",
        str(args.max_trials),
        "--time-cap",
        str(args.time_cap),
        "--dir",
        str(folder / "kt"),
        "--out",
        str(out),
    ]
    load = os.getloadavg()[0]
    log = folder / "kerastuner.log"
    code, wall, cpu = run_capped(argv, folder, log, args.time_cap + GRACE)
    events = (
        [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        if out.exists()
        else []
    )
    if code not in (0, None) or not events:
        raise SystemExit(f"KerasTuner {method} failed (exit {code}); {log}:\n{tail(log)}")
    start = next((e for e in events if e["event"] == "start"), {})
    end = next((e for e in events if e["event"] == "end"), {"reason": "killed"})
    trials = [e for e in events if e["event"] == "trial"]
    hit = next(
        (i for i, t in enumerate(trials) if (t.get("test_accuracy") or 0.0) >= args.target),
        None,
    )
    upto = trials if hit is None else trials[: hit + 1]
    return Run(
        method=method,
        seed=seed,
        reached=hit is not None,
        trials=len(upto),
        epochs=sum(t.get("epochs_trained") or 0 for t in upto),
        trial_seconds=round(sum(t["seconds"] for t in upto), 3),
        wall=round(wall, 3),
        cpu=round(cpu, 3),
        reason=end["reason"],
        best=max((t.get("test_accuracy") or 0.0 for t in trials), default=None),
        load=(load, os.getloadavg()[0]),
        trials_run=len(trials),
        path=trials,
        startup=start.get("import_and_data_seconds"),
    )


# -- (c) overhead --------------------------------------------------------------------------------


def replay(scripts: list[Path], repeat: int, folder: Path) -> dict[str, Any]:
    """The scripts run one after another in one warm process (TF imported once)."""
    out = folder / "replay.json"
    argv = [sys.executable, str(SPACE), "replay", "--repeat", str(repeat), "--out", str(out)]
    log = folder / "replay.log"
    code, wall, cpu = run_capped([*argv, *map(str, scripts)], folder, log, None)
    if code != 0:
        raise SystemExit(f"warm replay failed (exit {code}); {log}:\n{tail(log)}")
    result = json.loads(out.read_text(encoding="utf-8"))
    result.update(wall=round(wall, 3), cpu=round(cpu, 3))
    return result


def measure_overhead(work: Path, repeat: int, with_tune: bool) -> dict[str, Any]:
    """Bare script, the same script as one trial (runner + harness), and one `mutate tune` trial.

    Alternated within each repeat so that drift in the machine's load hits all of them.
    """
    from mutator.training.local import LocalRunner
    from mutator.training.runner import TrialSpec

    folder = work / "overhead"
    folder.mkdir()
    script = folder / FIXTURE.name
    shutil.copy(FIXTURE, script)
    log = folder / "overhead.log"
    samples: dict[str, list[float]] = {"bare": [], "runner": [], "runner_inside": [], "imports": []}
    if with_tune:
        samples.update(tune=[], tune_trial=[])
    values: dict[str, list[float | None]] = {"runner": []}
    for i in range(repeat):
        _, wall, _ = run_capped([sys.executable, FIXTURE.name], folder, log, None)
        samples["bare"].append(wall)

        trial_dir = folder / f"trial_{i}"
        trial_dir.mkdir()
        shutil.copy(FIXTURE, trial_dir / FIXTURE.name)
        spec = TrialSpec(
            script=trial_dir / FIXTURE.name,
            trial_dir=trial_dir,
            env={"MUTATOR_SEED": "0", "PYTHONHASHSEED": "0", **QUIET},
            source_dir=folder,
        )
        started = time.perf_counter()
        result = LocalRunner().run(spec)
        samples["runner"].append(time.perf_counter() - started)
        samples["runner_inside"].append(result.seconds)
        values["runner"].append(result.value)
        if result.status != "ok":
            raise SystemExit(f"the runner's trial failed: {result.error}")

        if with_tune:
            tune_dir = folder / f"tune_{i}"
            tune_dir.mkdir()
            shutil.copy(FIXTURE, tune_dir / FIXTURE.name)
            argv = [*mutate_command(), "tune", FIXTURE.name, "--max-trials", "1", "--seed", "0"]
            code, wall, _ = run_capped(argv, tune_dir, log, None)
            ledger = tune_dir / ".mutator" / FIXTURE.stem / "ledger.jsonl"
            if not ledger.exists():
                raise SystemExit(f"mutate tune --max-trials 1 failed (exit {code}): {log}")
            samples["tune"].append(wall)
            samples["tune_trial"].append(json.loads(ledger.read_text().splitlines()[0])["seconds"])

        imports = "import keras, sklearn.datasets, sklearn.model_selection"
        _, wall, _ = run_capped([sys.executable, "-c", imports], folder, log, None)
        samples["imports"].append(wall)
    warm = replay([script], max(repeat, 2), folder)
    # The first run in a fresh process pays TF's one-time setup (graph tracing machinery, oneDNN).
    samples["warm_first"] = [warm["runs"][0]["seconds"]]
    samples["warm"] = [r["seconds"] for r in warm["runs"][1:]]
    medians = {name: statistics.median(s) for name, s in samples.items() if s}
    return {
        "repeat": repeat,
        "samples": {name: [round(v, 3) for v in s] for name, s in samples.items()},
        "medians": {name: round(v, 3) for name, v in medians.items()},
        "runner_values": values["runner"],
        "warm_import_seconds": warm["import_seconds"],
    }


# -- reporting -----------------------------------------------------------------------------------


def median_or_inf(runs: list[Run], key: str) -> float:
    """The median over seeds; a run that did not reach the target counts as infinitely slow."""
    return statistics.median(getattr(r, key) if r.reached else math.inf for r in runs)


def fmt(value: float, digits: int = 1) -> str:
    return "not reached" if math.isinf(value) else f"{value:.{digits}f}"


def print_table(runs: list[Run], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    print(
        f"\ntarget test accuracy {args.target}, max {args.max_trials} trials "
        f"(RandomSearch, mutate), cap {args.time_cap:g} s of wall time per run\n"
    )
    head = (
        f"{'method':17}{'seed':>5}{'reached':>9}{'trials':>8}{'epochs':>8}"
        f"{'trial s':>9}{'wall s':>9}{'cpu/wall':>9}{'best':>8}  stop, load"
    )
    print(head)
    print("-" * len(head))
    for r in runs:
        print(
            f"{LABELS[r.method]:17}{r.seed:>5}{'yes' if r.reached else 'no':>9}{r.trials:>8}"
            f"{r.epochs:>8}{r.trial_seconds:>9.1f}{r.wall:>9.1f}{r.cpu / r.wall:>9.2f}"
            f"{r.best or 0.0:>8.4f}  {r.reason}, {r.load[0]:.1f}->{r.load[1]:.1f}"
        )
    print("\nmedians over seeds (a run that did not reach the target counts as infinite)\n")
    print(f"{'method':17}{'reached':>9}{'trials':>12}{'epochs':>12}{'trial s':>12}{'wall s':>12}")
    medians = {}
    for method in METHODS:
        mine = [r for r in runs if r.method == method]
        if not mine:
            continue
        row = {
            "reached": sum(r.reached for r in mine),
            "runs": len(mine),
            **{key: median_or_inf(mine, key) for key in ("trials", "epochs", "trial_seconds")},
            "wall": median_or_inf(mine, "wall"),
            "cpu_per_wall": statistics.median(r.cpu / r.wall for r in mine),
        }
        medians[method] = row
        print(
            f"{LABELS[method]:17}{row['reached']:>7}/{row['runs']}{fmt(row['trials'], 0):>12}"
            f"{fmt(row['epochs'], 0):>12}{fmt(row['trial_seconds']):>12}{fmt(row['wall']):>12}"
        )
    return medians


def print_overhead(overhead: dict[str, Any]) -> None:
    m = overhead["medians"]
    print(
        f"\nper-trial overhead, medians of {overhead['repeat']} (the baseline script, 2 epochs)\n"
    )
    rows = [
        ("bare `python cnn_digits.py`", "bare"),
        ("one trial: LocalRunner + harness", "runner"),
        ("  its TrialResult.seconds", "runner_inside"),
        ("`mutate tune --max-trials 1` process", "tune"),
        ("  its ledger seconds", "tune_trial"),
        ("`python -c 'import keras, sklearn...'`", "imports"),
        ("warm process, first run of the script", "warm_first"),
        ("warm process, later runs (no import)", "warm"),
    ]
    for label, key in rows:
        if key in m:
            print(f"{label:44}{m[key]:>8.2f} s")
    print(f"{'runner + harness - bare':44}{m['runner'] - m['bare']:>+8.2f} s")
    if "tune" in m:
        print(f"{'mutate tune (1 trial) - bare':44}{m['tune'] - m['bare']:>+8.2f} s")
    print(f"{'bare - warm (what a warm worker saves)':44}{m['bare'] - m['warm']:>+8.2f} s")


def print_replay(warm: dict[str, Any], path: list[dict[str, Any]]) -> None:
    print("\nmutate's path (seed 0), each trial as run by mutate and again in one warm process\n")
    print(f"{'trial':>5}  {'change':34}{'epochs':>7}{'value':>8}{'trial s':>9}{'warm s':>8}")
    by_script = {r["script"]: r for r in warm["runs"]}
    for step in path:
        change = step["rule"] or "baseline"
        if step["params"]:
            change += " " + " ".join(f"{k}={v}" for k, v in step["params"].items())
        again = by_script.get(step["script"], {})
        print(
            f"{step['trial']:>5}  {change[:34]:34}{step['epochs']:>7}{step['value'] or 0:>8.4f}"
            f"{step['seconds']:>9.1f}{again.get('seconds', math.nan):>8.1f}"
        )
    total = sum(r["seconds"] for r in warm["runs"])
    print(
        f"warm process: TF import {warm['import_seconds']:.1f} s once, the trials {total:.1f} s, "
        f"process {warm['wall']:.1f} s"
    )


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "scikit-learn"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    import mutator

    return {
        "cpus": os.cpu_count(),
        "cpu": model or platform.processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "mutator": str(Path(mutator.__file__).resolve().parent),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, help="test accuracy to reach (0.95)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (0 1 2)")
    parser.add_argument(
        "--max-trials", type=int, help="trials per run, mutate and RandomSearch (20)"
    )
    parser.add_argument("--time-cap", type=float, help="wall seconds per run (300)")
    parser.add_argument("--repeat", type=int, help="repeats of the overhead measurement (3)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--no-overhead", action="store_true", help="skip the overhead measurement")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, ledgers)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run in ~2 min: seed 0, target 0.8, 6 trials, 30 s cap, 1 repeat",
    )
    args = parser.parse_args(argv)
    defaults = (
        {"target": 0.8, "seeds": [0], "max_trials": 6, "time_cap": 30.0, "repeat": 1}
        if args.quick
        else {"target": 0.95, "seeds": [0, 1, 2], "max_trials": 20, "time_cap": 300.0, "repeat": 3}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    info = machine()
    print(
        f"{info['cpus']} CPUs ({info['cpu']}), Python {info['python']}, "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + f"\nmutator from {info['mutator']}; mutate: {mutate_command()[0]}"
        + f"\nspace: filters {search_space.FILTERS}, kernel {search_space.KERNELS}, conv blocks "
        + "{}-{}, hidden Dense(64) {}-{}, ".format(
            *search_space.CONV_BLOCKS, *search_space.DENSE_LAYERS
        )
        + f"epochs {search_space.EPOCHS} (Hyperband: max_epochs {search_space.EPOCHS[-1]}, "
        + f"factor {search_space.HYPERBAND_FACTOR})"
        + f"\nload average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench_search_"))
    try:
        overhead = None
        if not args.no_overhead:
            print("\nmeasuring the per-trial overhead ...", flush=True)
            overhead = measure_overhead(work, args.repeat, with_tune=not args.quick)
        runs: list[Run] = []
        warm = None
        for seed in args.seeds:
            for method in args.methods:
                print(f"{LABELS[method]}, seed {seed} ...", flush=True)
                if method == "mutate":
                    run, _ = run_mutate(work, seed, args)
                    if warm is None:
                        scripts = [Path(step["script"]) for step in run.path[: run.trials]]
                        warm = {"replay": replay(scripts, 1, work), "path": run.path[: run.trials]}
                else:
                    run = run_kerastuner(work, method, seed, args)
                runs.append(run)
                print(
                    f"  {'reached' if run.reached else 'not reached'}: {run.trials} trial(s), "
                    f"{run.trial_seconds:.1f} s of trials, {run.wall:.1f} s wall",
                    flush=True,
                )
        medians = print_table(runs, args)
        if warm is not None:
            print_replay(warm["replay"], warm["path"])
        if overhead is not None:
            print_overhead(overhead)
        total = time.perf_counter() - started
        print(
            f"\nbenchmark: {total / 60:.1f} min; load average at the end: "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
        )
        if args.keep:
            print(f"logs and ledgers kept in {work}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        document = {
            "settings": {
                k: getattr(args, k) for k in ("target", "seeds", "max_trials", "time_cap", "repeat")
            },
            "machine": info,
            "runs": [asdict(r) for r in runs],
            "medians": {
                m: {
                    k: (None if isinstance(v, float) and math.isinf(v) else v)
                    for k, v in row.items()
                }
                for m, row in medians.items()
            },
            "warm_replay": warm,
            "overhead": overhead,
            "seconds": round(total, 1),
        }
        args.json.write_text(json.dumps(document, indent=1), encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
