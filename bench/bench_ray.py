"""Trials per minute through Ray against the local runner, both with two trials side by side.

    python bench/bench_ray.py [--repeat 3] [--max-trials 10] [--seed 0] [--json OUT]

Each repeat runs, in turn and each in a fresh temp dir with a fresh copy of the script,
`mutate tune fixtures/cnn_digits.py --target 0.99 --max-trials N --seed S --parallel 2` with
`--runner local` and with `--runner ray` (no address: the runner starts a local Ray, 2 CPUs, and
shuts it down at the end). Reported per runner, medians over the repeats:
  - wall: the whole `mutate tune` process, start-up (Ray's included) to exit;
  - trials/min: the ledger's trials (confirms included) per minute of that wall;
  - steady trials/min: the trials after the baseline per minute from the baseline's end to the
    last trial's (the ledger's `finished` stamps, 1 s resolution): the rate once both runners
    are warm, without Ray's start-up or the first TensorFlow import;
  - whether both runners recorded the same metric for every trial (same seed, same threads).
On one machine Ray can only add cost (a task submission, the trial's files shipped and streamed
back); the point is the engine, not a gain on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "fixtures" / "cnn_digits.py"


def one_run(runner: str, max_trials: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{runner}-") as tmp:
        folder = Path(tmp)
        shutil.copy(SCRIPT, folder)
        command = [sys.executable, "-m", "mutator", "tune", SCRIPT.name, "--runner", runner]
        command += ["--target", "0.99", "--max-trials", str(max_trials), "--seed", str(seed)]
        command += ["--parallel", "2"]
        started = time.monotonic()
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=1800)
        wall = time.monotonic() - started
        if result.returncode not in (0, 1):
            raise SystemExit(f"{runner}: exit {result.returncode}\n{result.stdout}{result.stderr}")
        ledger = folder / ".mutator" / "cnn_digits" / "ledger.jsonl"
        records = [json.loads(line) for line in ledger.read_text().splitlines()]
    finished = [datetime.fromisoformat(record["finished"]) for record in records]
    steady_span = (max(finished) - finished[0]).total_seconds()
    return {
        "wall": wall,
        "trials": len(records),
        "per_minute": len(records) / wall * 60,
        "steady_per_minute": (len(records) - 1) / steady_span * 60 if steady_span else None,
        "values": [(record["id"], record["value"]) for record in records],
        "trial_seconds": sum(record["seconds"] for record in records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    for repeat in range(args.repeat):
        for runner in runs:
            run = one_run(runner, args.max_trials, args.seed)
            runs[runner].append(run)
            steady = run["steady_per_minute"]
            print(
                f"repeat {repeat + 1} {runner:5}: {run['trials']} trials in {run['wall']:.1f} s, "
                f"{run['per_minute']:.1f}/min, steady {steady:.1f}/min",
                flush=True,
            )
    summary = {}
    for runner, results in runs.items():
        summary[runner] = {
            key: statistics.median(r[key] for r in results)
            for key in ("wall", "trials", "per_minute", "steady_per_minute", "trial_seconds")
        }
    same = all(
        local["values"] == ray["values"] for local, ray in zip(runs["local"], runs["ray"], strict=True)
    )
    print(f"\n{'runner':8} {'wall s':>8} {'trials':>7} {'trials/min':>11} {'steady/min':>11}")
    for runner, row in summary.items():
        print(
            f"{runner:8} {row['wall']:8.1f} {row['trials']:7.0f} {row['per_minute']:11.1f} "
            f"{row['steady_per_minute']:11.1f}"
        )
    ratio = summary["ray"]["per_minute"] / summary["local"]["per_minute"]
    steady = summary["ray"]["steady_per_minute"] / summary["local"]["steady_per_minute"]
    print(f"ray / local: {ratio:.2f}x trials/min, {steady:.2f}x steady; same metrics: {same}")
    if args.json:
        payload = {"runs": runs, "summary": summary, "same_metrics": same, "args": vars(args)}
        args.json.write_text(json.dumps(payload, indent=2, default=str))


if __name__ == "__main__":
    main()
