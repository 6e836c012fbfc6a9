"""The Ray task's body, run here as the plain generator it is: staging, training, streaming back."""

from __future__ import annotations

import json
from pathlib import Path

from mutator.cluster.bundle import apply_changes, pack_folder
from mutator.cluster.node import TrialRequest, stage_trial, train_trial
from mutator.training.warm_plan import WarmPlan

PLAIN_SCRIPT = """\
from helper import SCORE
import time
for step in range(3):
    print(f"step {step}", flush=True)
    time.sleep(0.6)
print(f"accuracy: {SCORE}")
"""


def request_for(trial: Path, **extra) -> TrialRequest:
    return TrialRequest(
        script="train.py",
        trial_files=pack_folder(trial),
        metric_regex=r"accuracy: ([0-9.]+)",
        worker=False,
        **extra,
    )


def test_a_trial_trains_on_the_node_and_its_folder_streams_back(tmp_path):
    source = tmp_path / "project"
    source.mkdir()
    (source / "helper.py").write_text("SCORE = 0.875\n")
    trial = tmp_path / "trial"
    trial.mkdir()
    (trial / "train.py").write_text(PLAIN_SCRIPT)
    messages = list(train_trial(request_for(trial), pack_folder(source), None))

    assert "pid" in messages[0]["started"]
    assert messages[-1]["end"]["status"] == "ok"
    streamed = [m for m in messages[1:-1] if "changes" in m]
    assert streamed, "nothing came back while the trial ran"
    here = tmp_path / "here"
    here.mkdir()
    for message in messages:
        if message.get("changes"):
            apply_changes(message["changes"], here)
    metrics = json.loads((here / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["value"] == 0.875
    log = (here / "log.txt").read_text()
    assert "step 0" in log and "accuracy: 0.875" in log
    assert "train.py" not in messages[-1]["changes"].written  # inputs are not sent back
    staged = Path(log.split("--trial-dir ")[1].split()[0])
    assert not staged.exists(), "the node's staging folder was left behind"


def test_a_warm_plan_names_the_shipped_parent_model_on_the_node(tmp_path):
    trial = tmp_path / "trial"
    trial.mkdir()
    (trial / "train.py").write_text("print('accuracy: 1.0')\n")
    WarmPlan("continue", 1, "/tuner/only/weights/0001.keras", epochs_done=2).write(trial)
    spec = stage_trial(request_for(trial), None, b"model bytes", tmp_path / "stage")
    plan = WarmPlan.read(spec.trial_dir)
    assert plan is not None and Path(plan.parent_model).read_bytes() == b"model bytes"
    assert plan.epochs_done == 2 and spec.source_dir is None

    missing = stage_trial(request_for(trial), None, None, tmp_path / "stage2")
    plan = WarmPlan.read(missing.trial_dir)
    assert plan is not None and not Path(plan.parent_model).exists()  # the harness starts cold
