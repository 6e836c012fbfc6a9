"""Train a script as one trial with the real harness, in a subprocess as the runners do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_harness(folder: Path, source: str, *args: str) -> dict:
    """`source` trained as `folder/train.py` (the folder and its input files made by the caller
    or here): metrics.json, with what the trial printed as "stdout"."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "train.py"
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, "-m", "mutator.training.harness", str(script), "--trial-dir", str(folder)]
        + list(args),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {**json.loads((folder / "metrics.json").read_text()), "stdout": done.stdout}
