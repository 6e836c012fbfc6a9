"""Per-trial overhead of the Docker runner against the local runner, on the same scripts.

    python bench/bench_runners.py [--repeat N] [--json OUT]

For each script, trials alternate local / docker (same trial spec, fresh trial folder each time):
  - a plain Python script that writes accuracy.txt: the cost of the runner itself (process or
    container start, harness start, metrics collected), with no training;
  - fixtures/cnn_digits.py: a real Keras trial (TensorFlow import + 2 epochs).
Also prints the images' sizes. Needs a Docker engine and the images (`mutate images build`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from mutator.containers.images import ensure_docker, list_images
from mutator.containers.runner import DockerRunner
from mutator.training.local import LocalRunner
from mutator.training.runner import TrialSpec

ROOT = Path(__file__).resolve().parent.parent
PLAIN = "open('accuracy.txt', 'w').write('0.5')\n"


def trial(runner, source: str, name: str, image_dir: Path) -> float:
    folder = Path(tempfile.mkdtemp(dir=image_dir))
    script = folder / name
    script.write_text(source)
    spec = TrialSpec(script=script, trial_dir=folder, source_dir=folder, timeout=300)
    started = time.monotonic()
    result = runner.run(spec)
    seconds = time.monotonic() - started
    if result.status != "ok":
        raise SystemExit(f"{runner.name} trial of {name} failed: {result.status} {result.error}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ensure_docker()
    cases = {
        "plain script (no training)": (PLAIN, "train.py", "mutator-sklearn:latest"),
        "fixtures/cnn_digits.py (keras, 2 epochs)": (
            (ROOT / "fixtures" / "cnn_digits.py").read_text(), "cnn_digits.py",
            "mutator-keras:latest",
        ),
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, (source, name, image) in cases.items():
            local, docker = LocalRunner(), DockerRunner(image)
            times = {"local": [], "docker": []}
            for _ in range(args.repeat):
                times["local"].append(trial(local, source, name, Path(tmp)))
                times["docker"].append(trial(docker, source, name, Path(tmp)))
            med = {k: statistics.median(v) for k, v in times.items()}
            results[label] = {"median": med, "runs": times}
            print(f"{label}: local {med['local']:.2f}s, docker {med['docker']:.2f}s, "
                  f"docker adds {med['docker'] - med['local']:+.2f}s "
                  f"({args.repeat} alternating runs, medians)")
    sizes = {info.tag: info.size for info in list_images()}
    for tag, size in sizes.items():
        print(f"{tag}: {size / 1e9:.2f} GB" if size else f"{tag}: not built")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "sizes": sizes}, indent=2))


if __name__ == "__main__":
    main()
