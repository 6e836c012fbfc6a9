"""How fast does `mutate tune` reach a target, next to KerasTuner, and what makes it fast?

    python bench/bench_search.py [--targets 0.95 0.98] [--seeds 1 2 3] [--max-trials 20]
        [--time-cap 300] [--repeat 3] [--methods mutate random hyperband bayesian]
        [--variants full no-warm-start warm-always no-worker sequential no-prune no-joint]
        [--replay] [--json OUT]
        [--keep]
    python bench/bench_search.py --quick          # the smoke run, see below

One run measures, side by side on this machine, from the same weak starting model
(fixtures/cnn_digits.py: 4 filters, kernel 3, one Conv block, no hidden Dense, 2 epochs):
  (a) `mutate tune cnn_digits.py --target T --max-trials N --seed S --time-budget CAP` on a fresh
      copy of the script in a temp dir, one process per (variant, target, seed). mutate stops at
      its target once its best script has a from-scratch value there (a "confirm" retrain, or a
      candidate that trained cold); the wall time is the whole process, confirm included. Counts come from the
      ledger up to that line (trials, epochs, trial seconds, trials warm-started);
  (b) KerasTuner RandomSearch, Hyperband and BayesianOptimization over the same space (filters,
      kernel, conv blocks, dense layers, epochs; bench/search_space.py), RandomSearch and
      BayesianOptimization capped at N trials like mutate. One subprocess per (method, seed)
      serves every target: each trial's model is evaluated on the TEST set, a target's wall time
      is when the first trial that met it ended (from the process's start), and the search stops
      at the highest target;
  (c) the ablation: mutate's full default configuration, then with each part of a fast trial
      turned off in turn (--variants): `--no-warm-start` (train each candidate from scratch, not
      from its parent's weights), `--warm-after 0` (warm-always: children start warm even from
      a parent that trained in a second, as before warm_after), `--no-worker` (a fresh Python
      per trial, not a fork of a warm one), `--parallel 1` (one candidate at a time, not one per core), `--no-prune` (every
      candidate trains to its last epoch), `--no-joint` (capacity and epochs only ever one
      per trial, never as one joint change); and per variant, the trials pruned up to the target
      and the seconds their stops saved (the epochs not trained, at the trial's own pace);
  (d) the fixed cost of a trial (bench/search_overhead.py): the bare script, one trial in a
      fresh process, trials through the warm worker (the first one, which starts it, and later
      ones), `mutate tune --max-trials 1`, the imports alone, and the script run again and again
      in one warm process. `--replay` also replays mutate's first path in one warm process;
  (e) two other starts, for the diagnosis: fixtures/mlp_digits.py (a Dense-only MLP that
      under-fits) and fixtures/overfit_digits.py (a large MLP on 120 images that over-fits), two
      trials each: what the climb reads from the baseline's curves and the first rule it tries.

Every run is capped at --time-cap seconds of wall time (mutate: --time-budget). A run that misses
its target counts as infinitely slow in the medians. A value within 1e-6 of the target counts as
reaching it, for both (mutate's rule: Keras reports 342/360 as float32 0.949999988). The goal,
per target: mutate's (full) median wall at most 0.5x the best KerasTuner method's median; the
benchmark prints "goal met" or "goal missed" and never fails on it. A KerasTuner target's time
leaves out the search's exit (1-2 s of TensorFlow teardown; "proc s" is the whole process), while
mutate's includes its own: if anything, this favours KerasTuner. Seeds run in turn; each seed runs mutate (full) at every target, the
KerasTuner methods, then the other variants, so that drift in the machine's load hits all. A
variant whose flag this mutator does not know (`mutate tune` exits 2) is reported as not
available and the run goes on. `--replay` is off by default: it replays the trial scripts from
scratch, which no longer matches what warm-started trials trained; the no-worker variant now
measures what it used to estimate.

Reproduce (`pip install -e '.[train,bench]'`):

    python bench/bench_search.py --json /tmp/bench_search.json      # --keep keeps logs, ledgers
    python bench/bench_search.py --quick                             # the 2-3 minute check

A full run is 9 KerasTuner searches and 42 `mutate tune` runs (7 variants x 2 targets x 3 seeds),
each capped at 300 s (mutate: +60 s grace), plus ~2.5 min of overhead. Estimate: 1 to 1.5 hours
on 2 cores (KerasTuner ~25-40 min, mutate ~35-50 min); if every run hit its cap, ~3.2 hours.

Seeds start at 1: KerasTuner 1.4.8 takes seed 0 as no seed at all (`seed or random.randint(1,
10000)` in its Oracle), so a "seed 0" search draws different models on every run; up to commit
d7e14e7 the benchmark's seeds were 0 1 2, and its seed-0 anchors were random draws (one swung
from no finished trial in 300 s to 0.98 in 30 s between two runs).

`--quick` is seed 1, targets 0.5 and 0.8, 6 trials, a 60 s cap, 1 overhead repeat, variant full
only: 2-3 minutes. `--quick --variants full no-warm-start
no-worker sequential` also checks the ablation: about 5.5 minutes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import search_report
import search_space
from search_overhead import measure_overhead, replay
from search_runs import (
    DIAGNOSIS_STARTS,
    LABELS,
    VARIANTS,
    Run,
    VariantUnavailable,
    label,
    run_anchor,
    run_diagnosis_start,
    run_mutate,
)

METHODS = ("mutate", *search_space.METHODS)
FULL = {
    "targets": [0.95, 0.98],
    "seeds": [1, 2, 3],
    "max_trials": 20,
    "time_cap": 300.0,
    "repeat": 3,
}
QUICK = {"targets": [0.5, 0.8], "seeds": [1], "max_trials": 6, "time_cap": 60.0, "repeat": 1}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--targets", "--target", type=float, nargs="+", help="test accuracies (0.95 0.98)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds, from 1 (1 2 3)")
    parser.add_argument(
        "--max-trials", type=int, help="trials per run: mutate, RandomSearch, Bayesian (20)"
    )
    parser.add_argument("--time-cap", type=float, help="wall seconds per run (300)")
    parser.add_argument("--repeat", type=int, help="repeats of the overhead measurement (3)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        help="mutate's configurations (all; --quick: full); 'full' is compared with KerasTuner",
    )
    parser.add_argument("--no-overhead", action="store_true", help="skip the overhead measurement")
    parser.add_argument(
        "--replay", action="store_true", help="replay mutate's first path in one warm process"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, ledgers)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: seed 1, targets 0.5 0.8, 6 trials, 60 s cap, 1 repeat, variant full",
    )
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.variants is None:
        args.variants = ["full"] if args.quick else list(VARIANTS)
    if 0 in args.seeds:
        parser.error(
            "seed 0 does not repeat: KerasTuner takes it as no seed (its Oracle: "
            "`seed or random.randint(1, 10000)`); use seeds from 1"
        )
    args.targets = sorted(set(args.targets))
    return args


def print_header(info: dict[str, Any]) -> None:
    print(
        search_report.describe_machine(info)
        + f"\nspace: filters {search_space.FILTERS}, kernel {search_space.KERNELS}, conv blocks "
        + "{}-{}, hidden Dense(64) {}-{}, ".format(
            *search_space.CONV_BLOCKS, *search_space.DENSE_LAYERS
        )
        + f"epochs {search_space.EPOCHS} (Hyperband: max_epochs {search_space.EPOCHS[-1]}, "
        + f"factor {search_space.HYPERBAND_FACTOR})"
        + f"\nload average at start: {search_report.load_average()}"
    )


def say(run: Run) -> None:
    print(
        f"  target {run.target:g}: {'reached' if run.reached else 'not reached'}, "
        f"{run.trials} trial(s), {run.trial_seconds:.1f} s of trials, {run.wall:.1f} s wall",
        flush=True,
    )


class Search:
    """The runs in their order, and the mutate variants this mutator turned out not to have."""

    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work = work
        self.args = args
        self.runs: list[Run] = []
        self.unavailable: dict[str, str] = {}

    def mutate(self, variant: str, seed: int) -> None:
        if "mutate" not in self.args.methods or variant not in self.args.variants:
            return
        for target in self.args.targets:
            if variant in self.unavailable:
                return
            print(f"{label('mutate', variant)}, seed {seed}, target {target:g} ...", flush=True)
            try:
                run = run_mutate(
                    self.work, variant, seed, target, self.args.max_trials, self.args.time_cap
                )
            except VariantUnavailable as refused:
                self.unavailable[variant] = f"mutate tune exits 2: {refused}"
                print(f"  not available: {refused}", flush=True)
                return
            self.runs.append(run)
            say(run)

    def kerastuner(self, method: str, seed: int) -> None:
        print(f"{LABELS[method]}, seed {seed} ...", flush=True)
        runs = run_anchor(
            self.work, method, seed, self.args.targets, self.args.max_trials, self.args.time_cap
        )
        self.runs.extend(runs)
        for run in runs:
            say(run)

    def run(self) -> None:
        for seed in self.args.seeds:
            self.mutate("full", seed)
            for method in search_space.METHODS:
                if method in self.args.methods:
                    self.kerastuner(method, seed)
            for variant in VARIANTS:
                if variant != "full":
                    self.mutate(variant, seed)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    info = search_report.machine()
    print_header(info)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench_search_"))
    try:
        overhead = None
        if not args.no_overhead:
            print("\nmeasuring the per-trial overhead ...", flush=True)
            overhead = measure_overhead(work, args.repeat, with_tune=not args.quick)
        search = Search(work, args)
        search.run()
        warm = None
        first = next((r for r in search.runs if r.variant == "full"), None)
        if args.replay and first is not None:
            path = [
                s for s in first.path[: first.trials] if s["script"] and Path(s["script"]).exists()
            ]
            warm = {"replay": replay([Path(s["script"]) for s in path], 1, work), "path": path}

        settings = {
            k: getattr(args, k)
            for k in ("targets", "seeds", "max_trials", "time_cap", "repeat", "methods", "variants")
        }
        per_target = {
            f"{t:g}": search_report.report_target(t, search.runs, settings) for t in args.targets
        }
        ablation = None
        if "mutate" in args.methods and len(args.variants) > 1:
            ablation = search_report.report_ablation(
                search.runs, args.targets, args.variants, search.unavailable
            )
        pruning = search_report.report_pruning(search.runs) if "mutate" in args.methods else None
        starts = []
        if "mutate" in args.methods and not args.quick:
            print("\nthe diagnosis on other starts ...", flush=True)
            starts = [
                run_diagnosis_start(work, name, max(args.targets)) for name in DIAGNOSIS_STARTS
            ]
            search_report.report_diagnosis(starts)
        if warm is not None:
            search_report.print_replay(warm["replay"], warm["path"])
        if overhead is not None:
            search_report.print_overhead(overhead)
        total = search_report.print_end(started, work, args.keep)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        document = {
            "settings": {**settings, "quick": args.quick},
            "machine": info,
            "runs": [asdict(r) for r in search.runs],
            "targets": per_target,
            "ablation": ablation,
            "unavailable_variants": search.unavailable,
            "warm_replay": warm,
            "pruning": pruning,
            "diagnosis_starts": starts,
            "overhead": overhead,
            "seconds": round(total, 1),
        }
        search_report.write_json(args.json, document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
