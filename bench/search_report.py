"""bench_search.py's tables: per target the runs, the medians and the goal; the ablation; overhead.

Every summary is also returned as plain data for the JSON output (infinite medians as None).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from search_runs import Run, label, mutate_command

GOAL = 0.5  # mutate's median wall seconds at most this times the best KerasTuner method's
KT_METHODS = ("random", "hyperband", "bayesian")
WIDTH = 34


def median_or_inf(runs: list[Run], key: str) -> float:
    """The median over seeds; a run that did not reach the target counts as infinitely slow."""
    return statistics.median(getattr(r, key) if r.reached else math.inf for r in runs)


def fmt(value: float | None, digits: int = 1, missed: str = "not reached") -> str:
    if value is None:
        return "-"
    return missed if math.isinf(value) else f"{value:.{digits}f}"


def no_infinity(value: Any) -> Any:
    """JSON has no infinity: a median of runs that missed their target is written as null."""
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, dict):
        return {k: no_infinity(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [no_infinity(v) for v in value]
    return value


def finite(row: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and math.isinf(v) else v for k, v in row.items()}


def summary(runs: list[Run]) -> dict[str, Any]:
    walls = [r.wall for r in runs if r.reached]
    warm = [r.warm_trials for r in runs if r.reached and r.warm_trials is not None]
    return {
        "reached": sum(r.reached for r in runs),
        "runs": len(runs),
        **{key: median_or_inf(runs, key) for key in ("trials", "epochs", "trial_seconds")},
        "wall": median_or_inf(runs, "wall"),
        "wall_range": [min(walls), max(walls)] if walls else None,
        "warm_trials": statistics.median(warm) if warm else None,
        "cpu_per_wall": statistics.median(r.cpu / r.process_wall for r in runs),
    }


def print_runs(runs: list[Run]) -> None:
    head = (
        f"{'method':{WIDTH}}{'seed':>5}{'reached':>9}{'trials':>8}{'warm':>6}{'epochs':>8}"
        f"{'trial s':>9}{'wall s':>9}{'proc s':>8}{'cpu/wall':>9}{'best':>8}  stop, load"
    )
    print(head)
    print("-" * len(head))
    for r in runs:
        warm = "-" if r.warm_trials is None else str(r.warm_trials)
        print(
            f"{r.label:{WIDTH}}{r.seed:>5}{'yes' if r.reached else 'no':>9}{r.trials:>8}"
            f"{warm:>6}{r.epochs:>8}{r.trial_seconds:>9.1f}{r.wall:>9.1f}{r.process_wall:>8.1f}"
            f"{r.cpu / r.process_wall:>9.2f}{r.best or 0.0:>8.4f}  {r.reason}, "
            f"{r.load[0]:.1f}->{r.load[1]:.1f}"
        )


def print_medians(rows: dict[str, dict[str, Any]]) -> None:
    print(
        f"{'method':{WIDTH}}{'reached':>9}{'trials':>8}{'warm':>6}{'epochs':>8}{'trial s':>9}"
        f"{'wall s':>14}  range of wall s (reached)"
    )
    for name, row in rows.items():
        spread = row["wall_range"]
        print(
            f"{name:{WIDTH}}{row['reached']:>7}/{row['runs']}{fmt(row['trials'], 0, '-'):>8}"
            f"{fmt(row['warm_trials'], 0):>6}{fmt(row['epochs'], 0, '-'):>8}"
            f"{fmt(row['trial_seconds'], 1, '-'):>9}{fmt(row['wall']):>14}"
            f"  {f'{spread[0]:.1f} - {spread[1]:.1f}' if spread else '-'}"
        )


def goal(mutate: float | None, best_kt: float | None) -> dict[str, Any]:
    """mutate's median wall / the best KerasTuner median, and whether it is at most GOAL."""
    if mutate is None or best_kt is None:
        return {"ratio": None, "met": None, "verdict": "not measured"}
    if math.isinf(mutate):
        return {"ratio": None, "met": False, "verdict": "goal missed (mutate did not reach it)"}
    if math.isinf(best_kt):
        return {"ratio": 0.0, "met": True, "verdict": "goal met (no KerasTuner method reached it)"}
    ratio = mutate / best_kt
    met = ratio <= GOAL
    return {"ratio": round(ratio, 3), "met": met, "verdict": "goal met" if met else "goal missed"}


def report_target(target: float, runs: list[Run], settings: dict[str, Any]) -> dict[str, Any]:
    """One target: every run, the methods' medians (mutate's full configuration), the goal."""
    mine = [r for r in runs if r.target == target]
    print(
        f"\n== target test accuracy {target:g}: max {settings['max_trials']} trials (mutate, "
        f"RandomSearch, BayesianOptimization), cap {settings['time_cap']:g} s of wall time per "
        "run ==\n"
    )
    print_runs(mine)
    print(f"\nmedians over seeds, target {target:g} (a run that missed it counts as infinite)\n")
    methods: dict[str, dict[str, Any]] = {}
    for method in ("mutate", *KT_METHODS):
        chosen = [r for r in mine if r.method == method and r.variant in (None, "full")]
        if chosen:
            methods[method] = summary(chosen)
    print_medians({label(m): row for m, row in methods.items()})
    kt = {m: row["wall"] for m, row in methods.items() if m != "mutate"}
    best_method = min(kt, key=kt.get) if kt else None
    mutate = methods.get("mutate", {}).get("wall")
    outcome = goal(mutate, kt.get(best_method) if best_method else None)
    if best_method is not None and mutate is not None:
        ratio = "-" if outcome["ratio"] is None else f"{outcome['ratio']:.2f}x"
        print(
            f"\nmutate / best KerasTuner ({label(best_method)}, {fmt(kt[best_method])} s): "
            f"{fmt(mutate)} s / {fmt(kt[best_method])} s = {ratio}; goal <= {GOAL}x: "
            f"{outcome['verdict']}"
        )
    else:
        print("\nmutate / best KerasTuner: not measured (needs mutate's full variant and KT)")
    return {
        "target": target,
        "medians": {m: finite(row) for m, row in methods.items()},
        "best_kerastuner": best_method,
        "goal": outcome,
    }


def report_ablation(
    runs: list[Run], targets: list[float], variants: list[str], unavailable: dict[str, str]
) -> dict[str, Any]:
    """mutate's median wall per variant and target, and each against the full configuration."""
    print("\n== ablation: mutate with each part of a fast trial turned off ==\n")
    head = f"{'variant':{WIDTH}}" + "".join(
        f"{f'{t:g}: reached':>14}{'wall s':>13}{'x full':>8}" for t in targets
    )
    print(head)
    print("-" * len(head))
    table: dict[str, dict[str, Any]] = {}
    for variant in variants:
        if variant in unavailable:
            print(f"{label('mutate', variant):{WIDTH}}not available: {unavailable[variant]}")
            table[variant] = {"unavailable": unavailable[variant]}
            continue
        cells, line = {}, f"{label('mutate', variant):{WIDTH}}"
        for target in targets:
            mine = [r for r in runs if r.variant == variant and r.target == target]
            full = [r for r in runs if r.variant == "full" and r.target == target]
            if not mine:
                line += f"{'-':>14}{'-':>13}{'-':>8}"
                continue
            row = summary(mine)
            base = median_or_inf(full, "wall") if full else None
            times = row["wall"] / base if base and not math.isinf(base) else None
            row["x_full"] = None if times is None or math.isinf(times) else round(times, 3)
            cells[f"{target:g}"] = finite(row)
            line += (
                f"{row['reached']:>12}/{row['runs']}{fmt(row['wall']):>13}"
                f"{fmt(row['x_full'], 2):>8}"
            )
        print(line)
        table[variant] = cells
    print("\n(x full: the variant's median wall over the full configuration's, same target)")
    return table


def print_overhead(overhead: dict[str, Any]) -> None:
    m = overhead["medians"]
    print(
        f"\n== per-trial overhead, medians of {overhead['repeat']} (the baseline script, "
        "2 epochs) ==\n"
    )
    later = overhead["later_worker_trials"]
    rows = [
        ("bare `python cnn_digits.py`", "bare"),
        ("one trial, fresh process (worker=False)", "runner"),
        ("  its TrialResult.seconds", "runner_inside"),
        ("worker: first trial (starts the worker)", "worker_first"),
        ("  its TrialResult.seconds", "worker_first_inside"),
        (f"worker: later trials ({later} per worker: forks)", "worker_later"),
        ("worker: close()", "worker_close"),
        ("`mutate tune --max-trials 1` process", "tune"),
        ("  its ledger seconds", "tune_trial"),
        ("`python -c 'import keras, sklearn...'`", "imports"),
        ("warm process, first run of the script", "warm_first"),
        ("warm process, later runs (no import)", "warm"),
    ]
    for text, key in rows:
        if key in m:
            print(f"{text:46}{m[key]:>8.2f} s")
    if overhead.get("worker_error"):
        print(f"{'worker':46}{overhead['worker_error']}")
    print(f"{'runner + harness - bare':46}{m['runner'] - m['bare']:>+8.2f} s")
    if "tune" in m:
        print(f"{'mutate tune (1 trial) - bare':46}{m['tune'] - m['bare']:>+8.2f} s")
    print(f"{'fixed cost, fresh process: runner - warm':46}{m['runner'] - m['warm']:>+8.2f} s")
    if "worker_later" in m:
        print(f"{'fixed cost, worker: later - warm':46}{m['worker_later'] - m['warm']:>+8.2f} s")
        print(
            f"{'  of which TF first-run setup: warm 1st - warm':46}"
            f"{m['warm_first'] - m['warm']:>+8.2f} s"
        )
        print(
            f"{'saved per trial: fresh - worker later':46}"
            f"{m['runner'] - m['worker_later']:>+8.2f} s"
        )
        print(f"{'worker start: first - fresh trial':46}{m['worker_first'] - m['runner']:>+8.2f} s")
        same = (
            len(
                {
                    round(v, 6)
                    for v in overhead["runner_values"] + overhead["worker_values"]
                    if v is not None
                }
            )
            == 1
        )
        print(
            f"{'test accuracy, fresh and worker trials':46}"
            f"{'the same' if same else 'DIFFERENT: ' + str(overhead['worker_values'])}"
        )


def print_replay(warm: dict[str, Any], path: list[dict[str, Any]]) -> None:
    print(
        "\nmutate's first path, each trial as mutate ran it and its script again, from scratch, "
        "in one warm process\n(a warm-started trial trained fewer epochs in mutate than its "
        "script does from scratch)\n"
    )
    print(
        f"{'trial':>5}  {'change':34}{'start':>6}{'epochs':>7}{'value':>8}{'trial s':>9}"
        f"{'replay s':>9}"
    )
    by_script = {r["script"]: r for r in warm["runs"]}
    for step in path:
        change = step["rule"] or step["decision"] or "baseline"
        if step["params"]:
            change += " " + " ".join(f"{k}={v}" for k, v in step["params"].items())
        again = by_script.get(step["script"], {})
        print(
            f"{step['trial']:>5}  {change[:34]:34}{step['start'] or '-':>6}{step['epochs']:>7}"
            f"{step['value'] or 0:>8.4f}{step['seconds']:>9.1f}"
            f"{again.get('seconds', math.nan):>9.1f}"
        )
    total = sum(r["seconds"] for r in warm["runs"])
    print(
        f"warm process: TF import {warm['import_seconds']:.1f} s once, the trials {total:.1f} s, "
        f"process {warm['wall']:.1f} s"
    )


def mutator_commit(package: Path) -> str:
    """The commit of the mutator that runs, and whether its package has uncommitted changes."""

    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", "-C", str(package), *argv], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" + uncommitted changes in mutator/" if dirty else "")


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

    package = Path(mutator.__file__).resolve().parent
    return {
        "cpus": os.cpu_count(),
        "cpu": model or platform.processor(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "mutator": str(package),
        "mutator_commit": mutator_commit(package),
    }


def describe_machine(info: dict[str, Any]) -> str:
    """The lines every benchmark starts with: the machine, the versions, the mutator that runs."""
    return (
        f"{info['cpus']} CPUs ({info['cpu']}), Python {info['python']}, "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + f"\nmutator from {info['mutator']}, commit {info['mutator_commit']}"
        + f"\nmutate: {mutate_command()[0]}"
    )


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def print_end(started: float, work: Path, keep: bool) -> float:
    """The benchmark's length and the load at its end; where its files are, if kept."""
    total = time.perf_counter() - started
    print(f"\nbenchmark: {total / 60:.1f} min; load average at the end: {load_average()}")
    if keep:
        print(f"logs and ledgers kept in {work}")
    return total


def write_json(path: Path, document: dict[str, Any]) -> None:
    text = json.dumps(no_infinity(document), indent=1, allow_nan=False)
    path.write_text(text, encoding="utf-8")
    print(f"results written to {path}")


def report_pruning(runs: list[Run]) -> dict[str, Any]:
    """Trials pruned up to each target and the seconds the stops saved, per mutate variant."""
    print("\n== pruning: candidates stopped once their curve trailed the best's ==\n")
    table: dict[str, Any] = {}
    for variant in sorted({r.variant for r in runs if r.method == "mutate"}, key=str):
        for target in sorted({r.target for r in runs}):
            mine = [r for r in runs if r.variant == variant and r.target == target]
            if not mine:
                continue
            pruned = sum(r.pruned_trials for r in mine)
            saved = sum(r.pruned_saved for r in mine)
            key = f"{variant} {target:g}"
            table[key] = {"runs": len(mine), "pruned_trials": pruned, "saved_seconds": saved}
            print(
                f"{label('mutate', variant):{WIDTH}}target {target:g}: {pruned} trial(s) pruned "
                f"in {len(mine)} run(s), ~{saved:.1f} s of training saved"
            )
    return table


def report_diagnosis(starts: list[dict[str, Any]]) -> None:
    print("\n== the diagnosis on other starts (baseline, then the first rule tried) ==\n")
    for start in starts:
        verdict = "named" if start["named"] else f"NOT named (expected {start['expected']})"
        print(
            f"{start['script']:20} baseline {fmt(start['baseline'], 4)}: {start['diagnosis'] or '-'}"
            f" [{verdict}]; first rule tried: {start['first_rule']} -> "
            f"{fmt(start['first_value'], 4)}"
        )
