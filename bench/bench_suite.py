"""How fast does `mutate tune` reach each suite task's target, next to KerasTuner and Optuna?

    python bench/bench_suite.py [--tasks lstm_digits sgd_slow_cnn ...] [--seeds 1 2 3]
        [--methods mutate random hyperband bayesian optuna] [--variants full old-rules]
        [--max-trials 20] [--time-cap 300] [--json OUT] [--keep]
    python bench/bench_suite.py --quick          # the smoke run, see below

For every task of bench/suite/ (a weak starting script, its target, the KerasTuner search a user
would write for its model family; `python bench/bench_suite.py --list` lists them), and every
seed, one run of each method, each timed as a whole process from its launch (the anchors are
all the searches mutate is compared with):
  - `mutate tune TASK.py --target T --max-trials N --seed S --time-budget CAP` with its defaults
    and no per-task setting (a loss target adds `--metric NAME --mode min`), on a fresh copy of
    the script in a temp dir. It stops itself at the target once its best script has a
    from-scratch value there; its time is from its launch to the end of the round in which that
    value came (the ledger's stamp, to the millisecond), as an anchor's ends at the epoch that
    met the target (what follows, best.keras and the report, is no more counted than
    KerasTuner's own ending; the whole process's time is printed beside it, and counts when
    mutate stopped on the mean of several runs, which no one trial holds). `--variants
    old-rules` runs it again with `--rule` restricted to the six rules that existed before
    issue 26 (more_filters, larger_kernel, add_conv_block, add_dense, more_epochs,
    add_dropout): what the old vocabulary reaches. bench_search.py's fast-trial variants
    (no-warm-start, ...), no-join, no-guess-cap, no-peak-stop and no-target-stop are accepted too;
  - KerasTuner RandomSearch, Hyperband and BayesianOptimization over the task's space
    (bench/suite/spaces.py), RandomSearch and Bayesian capped at N trials like mutate, the test
    set evaluated at the end of every epoch: a target's time is the end of the epoch that met it,
    from the search process's start (the search stops there);
  - Optuna's TPE sampler (seeded with the run's seed) with its median pruner over the same space
    (bench/optuna_search.py: the task's `build(hp)` through an adapter with KerasTuner's `hp`
    API; the epochs a choice, as RandomSearch's), capped at N trials (pruned ones count), its
    target's time measured as KerasTuner's.
Every run is capped at --time-cap seconds of wall time (mutate: --time-budget, killed 60 s
later). Seeds run in turn within a task: mutate (full), the anchors, then the other variants,
so that drift in the machine's load hits all.

Per task: each method's median seconds to target over the seeds (a miss counts as infinitely
slow), its misses, mutate (full) / the best anchor's median (goal <= 0.5x), and the parameters
and seconds per epoch of each method's winning model (mutate's: read from the winning trial's
model.keras, its seconds over its epochs; an anchor's: count_params and the fit's pace). Across
tasks: the geometric mean of the ratios (goal <= 0.35x). A miss never fails the benchmark: it
prints the table and writes the JSON.

`--quick`: seed 1, mutate (full and old-rules) and RandomSearch, 8 trials, a 120 s cap: 4.2
minutes for lstm_digits and sgd_slow_cnn, 10.6 for eight others (2 shared cores; measured
before overfit_diabetes was added). Optuna is not in it: it would add a fourth search of every
task (as long as RandomSearch's, up to the cap), and the smoke run is there to catch a broken
task or rule, which one anchor shows as well as two. A full run (3 seeds, mutate twice and four
anchors, 300 s caps) is some 3-4 hours: the two tasks' KerasTuner anchors alone took 29 minutes
at a 180 s cap.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import search_report
import suite_report
from search_runs import (
    ANCHORS,
    LABELS,
    MUTATE_VARIANTS,
    Run,
    VariantUnavailable,
    label,
    run_anchor,
    run_mutate,
)
from suite import NAMES, TASKS, Task, task_named

METHODS = ("mutate", *ANCHORS)
FULL = {
    "seeds": [1, 2, 3],
    "max_trials": 20,
    "time_cap": 300.0,
    "methods": list(METHODS),
    "variants": ["full", "old-rules"],
}
QUICK = {
    "seeds": [1],
    "max_trials": 8,
    "time_cap": 120.0,
    "methods": ["mutate", "random"],
    "variants": ["full", "old-rules"],
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=NAMES, help="the suite's tasks (all)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds, from 1 (1 2 3)")
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, help="(all; --quick: mutate random)"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(MUTATE_VARIANTS),
        help="mutate's configurations (full old-rules); 'full' is compared with KerasTuner",
    )
    parser.add_argument(
        "--max-trials", type=int, help="trials per run: mutate, Random, Bayesian (20)"
    )
    parser.add_argument("--time-cap", type=float, help="wall seconds per run (300)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--anchors-from",
        type=Path,
        metavar="JSON",
        help="take the anchors' runs from an earlier --json of this benchmark (same tasks, "
        "seeds, trials and cap) instead of running them again; the table says so",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, ledgers)")
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: seed 1, mutate (full, old-rules) and RandomSearch, 8 trials, 120 s cap",
    )
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if 0 in args.seeds:
        parser.error("seed 0 does not repeat: KerasTuner takes it as no seed; use seeds from 1")
    args.tasks = [task_named(n) for n in args.tasks] if args.tasks else list(TASKS)
    return args


class Suite:
    """The runs in their order, and the mutate variants this mutator turned out not to have."""

    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work = work
        self.args = args
        self.runs: list[Run] = []
        self.unavailable: dict[str, str] = {}
        self.stored = stored_anchors(args.anchors_from, args) if args.anchors_from else None

    def mutate(self, task: Task, variant: str, seed: int) -> None:
        if "mutate" not in self.args.methods or variant not in self.args.variants:
            return
        if variant in self.unavailable:
            return
        print(f"{task.name}: {label('mutate', variant)}, seed {seed} ...", flush=True)
        try:
            run = run_mutate(
                self.work,
                variant,
                seed,
                task.target,
                self.args.max_trials,
                self.args.time_cap,
                task.for_mutate(),
            )
        except VariantUnavailable as refused:
            self.unavailable[variant] = f"mutate tune exits 2: {refused}"
            print(f"  not available: {refused}", flush=True)
            return
        self.runs.append(run)
        say(run)

    def anchor(self, task: Task, method: str, seed: int) -> None:
        if method not in self.args.methods:
            return
        print(f"{task.name}: {LABELS[method]}, seed {seed} ...", flush=True)
        if self.stored is not None:
            runs = self.stored.get((task.name, method, seed), [])
            if not runs:
                print(f"  not in {self.args.anchors_from}: left out", flush=True)
            self.runs.extend(runs)
            for run in runs:
                say(run)
            return
        runs = run_anchor(
            self.work,
            method,
            seed,
            [task.target],
            self.args.max_trials,
            self.args.time_cap,
            task=task.name,
            every_epoch=True,
            mode=task.mode,
        )
        self.runs.extend(runs)
        for run in runs:
            say(run)

    def run(self) -> None:
        for task in self.args.tasks:
            for seed in self.args.seeds:
                self.mutate(task, "full", seed)
                for method in ANCHORS:
                    self.anchor(task, method, seed)
                for variant in self.args.variants:
                    if variant != "full":
                        self.mutate(task, variant, seed)


def stored_anchors(path: Path, args: argparse.Namespace) -> dict[tuple, list[Run]]:
    """The anchors' runs of an earlier results JSON, by (task, method, seed), refused unless
    they were run with the trials and cap asked for now: a different budget is another race."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        earlier = document["settings"]
        runs = [r for r in document["runs"] if r["method"] != "mutate"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        sys.exit(f"bench_suite: error: --anchors-from {path}: not a results JSON ({error})")
    for key in ("max_trials", "time_cap"):
        if earlier.get(key) != getattr(args, key):
            sys.exit(
                f"bench_suite: error: --anchors-from {path} ran with {key} {earlier.get(key)}, "
                f"not {getattr(args, key)}"
            )
    stored: dict[tuple, list[Run]] = {}
    for run in runs:
        run["load"] = tuple(run["load"])
        stored.setdefault((run["task"], run["method"], run["seed"]), []).append(Run(**run))
    return stored


def say(run: Run) -> None:
    size = f", {run.params:,} params" if run.params else ""
    print(
        f"  {'reached' if run.reached else 'not reached'} ({run.reason}), {run.trials} trial(s), "
        f"{run.wall:.1f} s to target / {run.process_wall:.1f} s process, best {run.best}{size}, "
        f"load {run.load[0]:.1f}->{run.load[1]:.1f}",
        flush=True,
    )


def columns(args: argparse.Namespace) -> list[str]:
    """The table's method columns: mutate's variants first, then the anchors."""
    mutate = [] if "mutate" not in args.methods else ["mutate"]
    mutate += [f"mutate {v}" for v in args.variants if v != "full" and "mutate" in args.methods]
    return mutate + [m for m in ANCHORS if m in args.methods]


def report(args: argparse.Namespace, runs: list[Run]) -> tuple[list[dict[str, Any]], dict]:
    rows = []
    for task in args.tasks:
        mine = [r for r in runs if r.task == task.name]
        direction = "at most" if task.mode == "min" else "at least"
        print(
            f"\n== {task.name} ({task.kind}): test {task.metric} {direction} {task.target:g} ==\n"
        )
        search_report.print_runs(mine)
        rows.append(suite_report.task_row(task.name, task.target, mine))
    shown = columns(args)
    print(
        f"\n== median seconds to target over seeds {' '.join(map(str, args.seeds))} "
        "(runs that reached it / runs; a miss counts as infinite) ==\n"
    )
    suite_report.print_table(rows, shown)
    print("\n== the winning models: median parameters and seconds per epoch ==\n")
    suite_report.print_sizes(rows, shown)
    print("\n== what measuring the noise cost: runs with other seeds and rechecks, median ==\n")
    suite_report.print_noise_cost(rows, shown)
    overall = suite_report.overall(rows)
    suite_report.print_overall(overall)
    return rows, overall


def print_header(info: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        search_report.describe_machine(info)
        + f"\ntasks: {' '.join(t.name for t in args.tasks)}; seeds {args.seeds}; methods "
        + f"{args.methods}; variants {args.variants}; {args.max_trials} trials; cap "
        + f"{args.time_cap:g} s"
        + f"\nload average at start: {search_report.load_average()}"
        + (
            f"\nanchors: not run, taken from {args.anchors_from} (an earlier run)"
            if args.anchors_from
            else ""
        ),
        flush=True,
    )


def list_tasks() -> None:
    for task in TASKS:
        direction = "<=" if task.mode == "min" else ">="
        print(f"{task.name:24}{task.metric} {direction} {task.target:g}: {task.kind}")
        print(f"{'':24}calibrated: {task.calibration}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.list:
        list_tasks()
        return 0
    info = search_report.machine()
    print_header(info, args)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench_suite_"))
    try:
        suite = Suite(work, args)
        suite.run()
        rows, overall = report(args, suite.runs)
        total = search_report.print_end(started, work, args.keep)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        settings = {
            key: getattr(args, key)
            for key in ("seeds", "max_trials", "time_cap", "methods", "variants", "quick")
        }
        document = {
            "settings": {
                **settings,
                "tasks": [t.name for t in args.tasks],
                "anchors_from": str(args.anchors_from) if args.anchors_from else None,
            },
            "machine": info,
            "tasks": {
                t.name: {"target": t.target, "metric": t.metric, "mode": t.mode, "kind": t.kind}
                for t in args.tasks
            },
            "rows": suite_report.json_rows(rows),
            "overall": overall,
            "unavailable_variants": suite.unavailable,
            "runs": [asdict(r) for r in suite.runs],
            "seconds": round(total, 1),
        }
        search_report.write_json(args.json, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
