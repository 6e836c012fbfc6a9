"""How much smaller does `mutate slim` make the model `mutate tune` found, at the same target?

    python bench/bench_slim.py [--tasks lstm_digits ...] [--seeds 1] [--max-trials 10]
        [--time-cap 150] [--slim-trials 30] [--slim-cap 600] [--anchors SUITE.json]
        [--json OUT] [--keep]

For every task of bench/suite/ and seed: `mutate tune TASK.py --target T --seed S` with its
defaults (as bench_suite.py runs it), then, when it reached the target, `mutate slim` on its
best.py (copied under the task's name into a fresh folder) with the same target and seed, timed
as a whole process. Reported per task: the parameters of tune's best model and of slim's final
one (both `count_params()` of the model the script built, recorded by the harness when its fit
started), the factor, slim's seconds, trials trained and models sized, the changes it kept, and
the final model's two from-scratch values (the run that reached the target, and its confirm with
every seed moved). Across tasks: the median parameter count before and after, and its factor
(issue 30's goal: >= 4x).

`--anchors` names a bench_suite.py JSON (its runs of KerasTuner and Optuna on the same tasks and
targets: they do not depend on mutate, so an earlier run serves): per task, the best anchor (the
least median seconds to the target) and the median parameters of its winning models, counted
with `count_params()` as the harness counts ours; slim's final model is "smaller" when it has
fewer. Issue 30's goal: smaller on at least half the tasks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import search_report
import suite_report
from search_runs import (
    ANCHORS,
    GRACE,
    mutate_command,
    read_jsonl,
    run_capped,
    run_mutate,
    tail,
)
from suite import NAMES, TASKS, Task, task_named

KERASTUNER = ("random", "hyperband", "bayesian")  # issue 30 compares with the best of these
PARAMS_GOAL = 4.0  # median parameters before / after
SMALLER_GOAL = 0.5  # share of tasks where slim's model is smaller than the best anchor's


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=NAMES, help="the suite's tasks (all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="seeds (1)")
    parser.add_argument("--max-trials", type=int, default=10, help="tune's trials (10)")
    parser.add_argument("--time-cap", type=float, default=150.0, help="tune's wall cap (150)")
    parser.add_argument("--slim-trials", type=int, default=30, help="slim's trials (30)")
    parser.add_argument("--slim-cap", type=float, default=600.0, help="slim's wall cap (600)")
    parser.add_argument("--anchors", type=Path, help="a bench_suite.py JSON with the anchors")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, ledgers)")
    parser.add_argument(
        "--report", type=Path, help="print the table again from this results JSON, run nothing"
    )
    args = parser.parse_args(argv)
    args.tasks = [task_named(n) for n in args.tasks] if args.tasks else list(TASKS)
    return args


def run_slim(work: Path, task: Task, seed: int, best: Path, args: argparse.Namespace) -> dict:
    """`mutate slim` on tune's best.py, under the task's name, in a fresh folder."""
    folder = work / f"slim_{task.name}_{seed}"
    folder.mkdir()
    name = task.script.name
    shutil.copy(best, folder / name)
    script = task.for_mutate()
    argv = [
        *mutate_command(),
        "slim",
        name,
        *script.metric_args(),
        "--target",
        str(task.target),
        "--seed",
        str(seed),
        "--max-trials",
        str(args.slim_trials),
        "--time-budget",
        f"{args.slim_cap:g}s",
    ]
    log = folder / "slim.log"
    done = run_capped(argv, folder, log, args.slim_cap + GRACE)
    records = read_jsonl(folder / ".mutator" / f"{task.script.stem}-slim" / "ledger.jsonl")
    baseline = next((r for r in records if r["decision"] == "baseline"), None)
    accepted = [r for r in records if r["decision"] == "accepted"]
    final = accepted[-1] if accepted else baseline
    first = None
    if accepted:
        key = (final["rule"], final["site"], json.dumps(final["params"], sort_keys=True))
        first = next(
            (
                r
                for r in records
                if r["decision"] == "reached"
                and (r["rule"], r["site"], json.dumps(r["params"], sort_keys=True)) == key
            ),
            None,
        )
    if done.code not in (0,) or baseline is None:
        print(f"  slim exit {done.code}: {tail(log, 2)}", flush=True)
    return {
        "code": done.code,
        "seconds": round(done.wall, 1),
        "before": baseline.get("parameters") if baseline else None,
        "after": final.get("parameters") if final else None,
        "values": [r["value"] for r in (first, final) if r is not None and accepted],
        "baseline_value": baseline.get("value") if baseline else None,
        "trained": sum(1 for r in records if r["decision"] != "sized"),
        "sized": sum(1 for r in records if r["decision"] == "sized"),
        "kept": [r["description"] for r in accepted],
    }


def anchor_sizes(path: Path | None) -> dict[str, dict[str, Any]]:
    """Per task: the best KerasTuner method of a bench_suite JSON (the least median seconds to
    the target; a median that missed is stored as null) and its winning models' median size,
    and the same for the best of every anchor (Optuna's TPE included)."""
    if path is None:
        return {}
    document = json.loads(path.read_text(encoding="utf-8"))
    found = {}
    for row in document["rows"]:
        methods = row["methods"]
        reached = {
            m: methods[m]["wall"]
            for m in ANCHORS
            if m in methods and methods[m].get("wall") is not None and methods[m].get("params")
        }
        if not reached:
            continue
        best_kt = min((m for m in reached if m in KERASTUNER), key=reached.get, default=None)
        best_any = min(reached, key=reached.get)
        found[row["task"]] = {
            "method": best_kt,
            "params": methods[best_kt]["params"] if best_kt else None,
            "any_method": best_any,
            "any_params": methods[best_any]["params"],
        }
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    anchors = anchor_sizes(args.anchors)
    if args.report is not None:
        results = json.loads(args.report.read_text(encoding="utf-8"))["results"]
        print_table(results, anchors, summarise(results, anchors))
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench_slim_"))
    started = time.monotonic()
    results = []
    try:
        for task in args.tasks:
            for seed in args.seeds:
                print(f"{task.name}, seed {seed}: mutate tune ...", flush=True)
                run = run_mutate(
                    work, "full", seed, task.target, args.max_trials, args.time_cap,
                    task.for_mutate(),
                )  # fmt: skip
                folder = work / f"mutate_{task.name}_full_{task.target:g}_{seed}"
                best = folder / ".mutator" / task.script.stem / "best.py"
                row: dict[str, Any] = {
                    "task": task.name,
                    "seed": seed,
                    "target": task.target,
                    "tune_reached": run.reached,
                    "tune_seconds": run.process_wall,
                }
                if run.reached and best.exists():
                    print(f"  reached in {run.process_wall:.1f} s; mutate slim ...", flush=True)
                    row.update(run_slim(work, task, seed, best, args))
                    print(
                        f"  {row['before']} -> {row['after']} parameters in "
                        f"{row['seconds']} s ({row['trained']} trained, {row['sized']} sized): "
                        f"{'; '.join(row['kept']) or 'nothing smaller'}",
                        flush=True,
                    )
                else:
                    print("  tune did not reach the target: nothing to slim", flush=True)
                results.append(row)
        summary = summarise(results, anchors)
        print_table(results, anchors, summary)
        total = search_report.print_end(started, work, args.keep)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        document = {
            "settings": {
                "tasks": [t.name for t in args.tasks],
                "seeds": args.seeds,
                "max_trials": args.max_trials,
                "time_cap": args.time_cap,
                "slim_trials": args.slim_trials,
                "slim_cap": args.slim_cap,
                "anchors": str(args.anchors) if args.anchors else None,
            },
            "results": results,
            "anchors": anchors,
            "summary": summary,
            "seconds": round(total, 1),
        }
        search_report.write_json(args.json, document)
    return 0


def per_task(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each task's medians over its seeds (slimmed runs only)."""
    tasks: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["task"] for r in results):
        mine = [r for r in results if r["task"] == name and r.get("after")]
        tasks[name] = {
            "before": suite_report.median_of([r["before"] for r in mine]),
            "after": suite_report.median_of([r["after"] for r in mine]),
            "seconds": suite_report.median_of([r["seconds"] for r in mine]),
            "slimmed": len(mine),
            "runs": sum(1 for r in results if r["task"] == name),
        }
    return tasks


def summarise(results: list[dict[str, Any]], anchors: dict[str, dict[str, Any]]) -> dict:
    tasks = per_task(results)
    slimmed = {name: t for name, t in tasks.items() if t["after"]}
    before = suite_report.median_of([t["before"] for t in slimmed.values()])
    after = suite_report.median_of([t["after"] for t in slimmed.values()])
    compared = {
        name: t["after"] < anchors[name]["params"]
        for name, t in slimmed.items()
        if name in anchors and anchors[name]["params"]
    }  # against the best KerasTuner method
    factor = before / after if before and after else None
    return {
        "tasks": tasks,
        "median_before": before,
        "median_after": after,
        "factor": factor,
        "factor_goal_met": factor is not None and factor >= PARAMS_GOAL,
        "smaller_than_best_anchor": sum(compared.values()),
        "compared_with_anchor": len(compared),
        # half of every task run, not of those slimmed: a task tune missed counts against
        "smaller_goal_met": bool(compared)
        and sum(compared.values()) >= SMALLER_GOAL * len(tasks),
    }


def print_table(
    results: list[dict[str, Any]], anchors: dict[str, dict[str, Any]], summary: dict
) -> None:
    print(
        "\n| task | tune's best | slim's | factor | slim s | best KerasTuner's winner "
        "| best anchor's winner |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, t in summary["tasks"].items():
        anchor = anchors.get(name) or {}
        kt = f"{anchor['params']:,.0f} ({anchor['method']})" if anchor.get("params") else "n/a"
        best = (
            f"{anchor['any_params']:,.0f} ({anchor['any_method']})" if anchor else "n/a"
        )
        if not t["after"]:
            print(f"| {name} | tune missed the target | | | | {kt} | {best} |")
            continue
        factor = t["before"] / t["after"]
        print(
            f"| {name} | {t['before']:,.0f} | {t['after']:,.0f} | {factor:.1f}x | "
            f"{t['seconds']:.0f} | {kt} | {best} |"
        )
    factor = summary["factor"]
    print(
        f"\nmedian parameters {summary['median_before']:,.0f} -> {summary['median_after']:,.0f}"
        f" ({factor:.1f}x; goal >= {PARAMS_GOAL:g}x)"
        if factor
        else "\nno task slimmed"
    )
    print(
        f"smaller than the best KerasTuner method's winning model on "
        f"{summary['smaller_than_best_anchor']} of {summary['compared_with_anchor']} task(s) "
        f"compared ({len(summary['tasks'])} run; goal: half of them)"
    )


if __name__ == "__main__":
    sys.exit(main())
