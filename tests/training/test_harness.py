"""The harness: how a script's run becomes metrics.json.

Plain-Python scripts run the real `python -m mutator.training.harness` in a subprocess and stay fast (no
Keras import); the Keras ones are marked slow. Metric choice itself is tested as pure functions.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mutator.training import metrics
from mutator.training.harness import TeeStream, parse_args, uses_keras
from mutator.training.keras_hooks import FitRecord, name_results
from mutator.training.trialio import jsonable

REPO = Path(__file__).resolve().parents[2]


def run_harness(tmp_path: Path, source: str, *flags: str, script_args=(), env=None):
    """Write `source` as train.py, run the harness on it in tmp_path/trial; (process, metrics)."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    trial = tmp_path / "trial"
    trial.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "mutator.training.harness", str(script), "--trial-dir", str(trial)]
    child_env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    process = subprocess.run(
        [*command, *flags, "--", *script_args],
        cwd=trial,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return process, json.loads((trial / "metrics.json").read_text(encoding="utf-8"))


# -- plain scripts: fast ------------------------------------------------------------------------


def test_accuracy_txt_percentage_is_a_fraction(tmp_path):
    process, result = run_harness(
        tmp_path,
        """
        import sys
        assert "keras" not in sys.modules and "tensorflow" not in sys.modules
        open("accuracy.txt", "w").write("93.5\\n")
        """,
    )
    assert process.returncode == 0, process.stderr
    assert (result["status"], result["source"], result["metric"]) == (
        "ok",
        "accuracy.txt",
        "accuracy",
    )
    assert result["value"] == pytest.approx(0.935)
    assert result["mode"] == "max"
    assert result["keras"] is False
    assert result["history"] == [] and result["evaluate"] == []
    assert not [p.name for p in (tmp_path / "trial").iterdir() if p.name.startswith(".")]


def test_script_runs_as_main_with_its_argv_and_folder_first_on_path(tmp_path):
    process, result = run_harness(
        tmp_path,
        """
        import json, os, sys
        json.dump({"name": __name__, "argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd()},
                  open("seen.json", "w"))
        open("accuracy.txt", "w").write("0.5")
        """,
        script_args=("--epochs", "3"),
    )
    seen = json.loads((tmp_path / "trial" / "seen.json").read_text())
    assert seen["name"] == "__main__"
    assert seen["argv"] == [str(tmp_path / "train.py"), "--epochs", "3"]
    assert seen["path0"] == str(tmp_path)
    assert seen["cwd"] == str(tmp_path / "trial")
    assert result["argv"] == ["--epochs", "3"]


def test_accuracy_txt_left_by_an_earlier_run_is_not_this_runs_result(tmp_path):
    (tmp_path / "trial").mkdir()
    (tmp_path / "trial" / "accuracy.txt").write_text("0.99")
    process, result = run_harness(tmp_path, "print('trained nothing')\n")
    assert process.returncode == 1
    assert result["status"] == "no_metric"
    assert result["value"] is None


def test_nan_in_accuracy_txt_is_status_nan(tmp_path):
    process, result = run_harness(tmp_path, "open('accuracy.txt', 'w').write('nan')\n")
    assert process.returncode == 1
    assert result["status"] == "nan"
    assert result["value"] is None  # strict JSON: NaN is written as null
    assert "nan" in result["error"]


def test_no_metric_says_what_to_pass(tmp_path):
    process, result = run_harness(tmp_path, "print('hello')\n")
    assert process.returncode == 1
    assert result["status"] == "no_metric"
    assert "--metric" in result["error"]


def test_regex_reads_the_last_match_through_carriage_returns_and_colours(tmp_path):
    process, result = run_harness(
        tmp_path,
        r"""
        for step, acc in enumerate([0.25, 0.5, 0.75]):
            print(f"\r\x1b[1m{step}/3\x1b[0m - accuracy: {acc:.4f}\b\b", end="", flush=True)
        print()
        print("done")
        """,
        "--metric-regex",
        r"accuracy: ([0-9.]+)",
    )
    assert process.returncode == 0, process.stderr
    assert (result["status"], result["source"], result["value"]) == ("ok", "regex", 0.75)
    assert "accuracy: 0.7500" in process.stdout  # the tee still writes everything through


def test_regex_without_group_uses_the_whole_match_and_metric_names_it(tmp_path):
    process, result = run_harness(
        tmp_path,
        "print('loss 0.5')\nprint('loss 0.25')\n",
        "--metric-regex",
        r"[0-9.]+$",
        "--metric",
        "loss",
    )
    assert (result["status"], result["metric"], result["mode"]) == ("ok", "loss", "min")
    assert result["value"] == 0.25


def test_regex_that_matches_nothing_is_no_metric(tmp_path):
    _, result = run_harness(tmp_path, "print('hi')\n", "--metric-regex", r"acc=(\d+)")
    assert result["status"] == "no_metric"
    assert "matched nothing" in result["error"]


def test_invalid_regex_fails_before_running_the_script(tmp_path):
    _, result = run_harness(tmp_path, "open('ran', 'w')\n", "--metric-regex", "acc=(")
    assert result["status"] == "failed"
    assert "--metric-regex" in result["error"]
    assert not (tmp_path / "trial" / "ran").exists()


def test_script_that_raises_fails_with_its_message_and_traceback(tmp_path):
    process, result = run_harness(
        tmp_path,
        """
        open("accuracy.txt", "w").write("0.9")
        def load():
            raise ValueError("the data folder is missing\\nsecond line")
        load()
        """,
    )
    assert process.returncode == 1
    assert result["status"] == "failed"
    assert result["error"] == "ValueError: the data folder is missing"
    assert "Traceback" in process.stderr and "in load" in process.stderr
    assert result["value"] == pytest.approx(0.9)  # recorded, but the status says not to use it


@pytest.mark.parametrize(("code", "status"), [("0", "ok"), ("None", "ok"), ("3", "failed")])
def test_sys_exit_zero_is_success_and_nonzero_a_failure(tmp_path, code, status):
    process, result = run_harness(
        tmp_path, f"import sys\nopen('accuracy.txt', 'w').write('0.8')\nsys.exit({code})\n"
    )
    assert result["status"] == status
    assert process.returncode == (0 if status == "ok" else 1)
    if status == "failed":
        assert result["error"] == "SystemExit: 3"


def test_seed_from_the_environment_is_applied_and_recorded(tmp_path):
    _, result = run_harness(
        tmp_path,
        "import random\nopen('accuracy.txt', 'w').write(str(random.random() / 2))\n",
        env={"MUTATOR_SEED": "7"},
    )
    import random

    random.seed(7)
    assert result["seed"] == 7
    assert result["value"] == pytest.approx(random.random() / 2)


def test_importing_the_harness_and_runners_does_not_import_keras():
    code = (
        "import sys, mutator.training.harness, mutator.training.metrics, mutator.training.local;"
        "sys.exit(bool({'keras', 'tensorflow'} & set(sys.modules)))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_parse_args_resolves_paths_and_splits_script_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = parse_args(["t.py", "--trial-dir", "d", "--no-backup", "--", "--lr", "0.1"])
    assert options.script == tmp_path / "t.py" and options.trial_dir == tmp_path / "d"
    assert options.backup is False and options.script_args == ("--lr", "0.1")


# -- does the script use Keras? -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import tensorflow as tf\n", True),
        ("from keras.layers import Dense\n", True),
        ("import tensorflow.keras\n", True),
        ("def main():\n    import keras\n", True),
        ("# import keras\nprint('keras or tensorflow')\n", False),
        ("from .keras import x\n", False),
        ("import sklearn\n", False),
    ],
)
def test_uses_keras_reads_imports_not_text(tmp_path, source, expected):
    script = tmp_path / "s.py"
    script.write_text(source)
    assert uses_keras(script) is expected


def test_uses_keras_follows_the_scripts_own_modules(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "helpers").mkdir()
    (tmp_path / "src" / "helpers" / "__init__.py").write_text("")
    (tmp_path / "src" / "helpers" / "nets.py").write_text("from tensorflow import keras\n")
    script = tmp_path / "trial.py"
    script.write_text("from helpers.nets import build\n")
    assert uses_keras(script) is False
    assert uses_keras(script, [tmp_path / "src"]) is True


# -- pure pieces ----------------------------------------------------------------------------------


def test_default_metric_prefers_test_accuracy_then_accuracy_txt_then_validation():
    fits = [{"accuracy": [0.5, 0.9], "val_accuracy": [0.4, 0.8]}]
    evaluations = [{"loss": 0.3, "accuracy": 0.85}, {"loss": 0.2}]
    choice = metrics.choose_metric(evaluations=evaluations, fits=fits, accuracy_file=0.7)
    assert choice == metrics.MetricChoice("accuracy", 0.85, "evaluate")
    choice = metrics.choose_metric(evaluations=[{"loss": 1}], fits=fits, accuracy_file=0.7)
    assert choice == metrics.MetricChoice("accuracy", 0.7, "accuracy.txt")
    choice = metrics.choose_metric(evaluations=[], fits=fits)
    assert choice == metrics.MetricChoice("val_accuracy", 0.8, "history")
    choice = metrics.choose_metric(evaluations=[], fits=[{"accuracy": [0.5, 0.9]}])
    assert choice == metrics.MetricChoice("accuracy", 0.9, "history")


def test_default_metric_is_from_the_last_evaluate_whatever_its_accuracy_is_called():
    evaluations = [{"accuracy": 0.9}, {"acc": 0.6}, {"loss": 0.1}]
    found = metrics.choose_metric(evaluations=evaluations, fits=[])
    assert found == metrics.MetricChoice("acc", 0.6, "evaluate")
    fits = [{"val_accuracy": [0.9]}, {"val_acc": [0.5], "accuracy": [0.99]}]
    assert metrics.choose_metric(evaluations=[], fits=fits).name == "val_acc"


def test_compile_metrics_counts_as_accuracy_only_when_it_is_a_number():
    found = metrics.choose_metric(evaluations=[{"compile_metrics": 0.6}], fits=[])
    assert found.value == 0.6
    with pytest.raises(metrics.MetricNotFoundError, match="evaluate keys"):
        metrics.choose_metric(evaluations=[{"compile_metrics": [0.6, 0.1]}], fits=[])


def test_named_metric_comes_from_evaluate_then_history_and_val_names_from_history():
    evaluations = [{"loss": 0.3}]
    fits = [{"loss": [1.0, 0.5], "val_loss": [1.1, None, 0.7, None]}]
    assert (
        metrics.choose_metric(evaluations=evaluations, fits=fits, metric="loss").source
        == "evaluate"
    )
    val = metrics.choose_metric(evaluations=evaluations, fits=fits, metric="val_loss")
    assert (val.value, val.source) == (0.7, "history")  # None pads epochs without validation
    with pytest.raises(metrics.MetricNotFoundError, match="'auc'"):
        metrics.choose_metric(evaluations=evaluations, fits=fits, metric="auc")


@pytest.mark.parametrize(
    ("name", "mode", "expected"),
    [("val_loss", "auto", "min"), ("mean_squared_error", "auto", "min"), ("accuracy", "auto", "max"),
     (None, "auto", "max"), ("loss", "max", "max"), ("mae", "auto", "min"),
     ("val_rmse", "auto", "min"), ("mape", "auto", "min")],
)  # fmt: skip
def test_mode(name, mode, expected):
    assert metrics.infer_mode(name, mode) == expected


@pytest.mark.parametrize(
    ("text", "value"), [("0.5", 0.5), ("97", 0.97), ("100", 1.0), ("1", 1.0), ("acc: 0.9\n", 0.9)]
)
def test_accuracy_text(text, value):
    assert metrics.parse_accuracy_text(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "great", "250", "-0.1"])
def test_accuracy_text_that_is_not_an_accuracy(text):
    with pytest.raises(ValueError, match="accuracy.txt"):
        metrics.parse_accuracy_text(text)


def test_judge_ranks_failure_over_missing_metric_over_nan():
    nan_fits = [{"loss": [math.nan]}]
    verdict = metrics.judge(script_error="KeyError: 'x'", evaluations=[], fits=[])
    assert (verdict.status, verdict.error) == ("failed", "KeyError: 'x'")
    verdict = metrics.judge(script_error=None, evaluations=[], fits=nan_fits, metric="loss")
    assert (verdict.status, verdict.mode) == ("nan", "min")
    verdict = metrics.judge(
        script_error=None, evaluations=[], fits=[], accuracy_problem="accuracy.txt holds 250"
    )
    assert verdict.status == "no_metric" and "accuracy.txt holds 250" in verdict.error


def test_fit_record_keeps_keys_aligned_and_restores_only_up_to_the_resume_epoch():
    record = FitRecord(fit=1, epochs_requested=6)
    record.begin_epoch(0)
    record.add_epoch({"loss": 1.0})
    record.add_epoch({"loss": 0.8, "val_loss": 0.9})
    assert record.epochs == {"loss": [1.0, 0.8], "val_loss": [None, 0.9]}
    saved = record.state()  # the killed run logged 2 epochs, its backup holds only 1
    resumed = FitRecord(fit=1, epochs_requested=6)
    resumed.restore(saved, 1)
    resumed.begin_epoch(1)
    resumed.add_epoch({"loss": 0.7})
    assert resumed.to_json()["epochs"] == {"loss": [1.0, 0.7], "val_loss": [None, None]}
    assert (resumed.initial_epoch, resumed.first_epoch, resumed.to_json()["epochs_completed"]) == (
        1,
        0,
        2,
    )
    lost = FitRecord(fit=1, epochs_requested=6)
    lost.restore(None, 3)
    lost.add_epoch({"loss": 0.1})
    assert (lost.first_epoch, lost.to_json()["epochs_completed"]) == (3, 4)


def test_name_results_maps_lists_and_scalars():
    class Model:
        metrics_names = ["loss", "compile_metrics"]

    assert name_results([0.3, 0.9], Model()) == {"loss": 0.3, "compile_metrics": 0.9}
    assert name_results(0.3, object()) == {"loss": 0.3}
    assert name_results([0.3, 0.9, 0.1], Model()) == {"loss": 0.3, "metric_1": 0.9, "metric_2": 0.1}


def test_tee_keeps_only_the_tail(capsys):
    import io

    sink = io.StringIO()
    tee = TeeStream(sink, limit=10)
    for index in range(10):
        tee.write(f"line {index}\n")
    assert sink.getvalue().count("\n") == 10
    assert tee.text().endswith("line 9\n") and len(tee.text()) <= 20


def test_jsonable_turns_nan_into_null():
    assert json.dumps(jsonable({"a": [math.nan, 1.0, math.inf]})) == '{"a": [null, 1.0, null]}'


# -- Keras scripts: slow --------------------------------------------------------------------------

KERAS_SCRIPT = """
import numpy as np
import tensorflow as tf
from tensorflow import keras

rng = np.random.default_rng(0)
x = rng.random((240, 8)).astype("float32")
y = (x[:, :4].sum(axis=1) > x[:, 4:].sum(axis=1)).astype("int32")
x_train, y_train, x_test, y_test = x[:180], y[:180], x[180:], y[180:]
model = keras.Sequential([
    keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    keras.layers.Dense(2, activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=3, batch_size=32, validation_split=0.2, verbose=2)
"""


@pytest.mark.slow
def test_keras_metric_is_the_last_evaluates_accuracy(tmp_path):
    source = KERAS_SCRIPT + "print('test', model.evaluate(x_test, y_test, verbose=0))\n"
    process, result = run_harness(tmp_path, source, env={"MUTATOR_SEED": "3"})
    assert process.returncode == 0, process.stderr
    assert (result["status"], result["source"], result["metric"]) == ("ok", "evaluate", "accuracy")
    assert set(result["evaluate"][0]) == {"loss", "accuracy"}  # named, though a list came back
    assert result["value"] == result["evaluate"][0]["accuracy"]
    (fit,) = result["history"]
    assert (fit["initial_epoch"], fit["epochs_completed"], fit["finished"]) == (0, 3, True)
    assert len(fit["epochs"]["val_accuracy"]) == 3
    assert result["keras"] is True and result["seed"] == 3
    assert result["model_path"] == "model.keras" and (tmp_path / "trial" / "model.keras").is_file()
    assert not (tmp_path / "trial" / "checkpoint").exists()  # cleaned once the script finished


@pytest.mark.slow
def test_keras_regex_reads_the_progress_bar_output(tmp_path):
    source = KERAS_SCRIPT + "model.evaluate(x_test, y_test, verbose=1, return_dict=True)\n"
    _, result = run_harness(tmp_path, source, "--metric-regex", r"accuracy: ([0-9.]+)")
    assert (result["status"], result["source"]) == ("ok", "regex")
    assert result["value"] == round(result["evaluate"][-1]["accuracy"], 4)


@pytest.mark.slow
def test_keras_without_evaluate_uses_the_last_val_accuracy(tmp_path):
    _, result = run_harness(tmp_path, KERAS_SCRIPT)
    assert (result["status"], result["source"], result["metric"]) == (
        "ok",
        "history",
        "val_accuracy",
    )
    assert result["value"] == result["history"][0]["epochs"]["val_accuracy"][-1]
    assert result["evaluate"] == []  # validation inside fit is not an evaluate


@pytest.mark.slow
def test_keras_val_loss_is_minimised(tmp_path):
    _, result = run_harness(tmp_path, KERAS_SCRIPT, "--metric", "val_loss", "--no-backup")
    assert (result["status"], result["metric"], result["mode"]) == ("ok", "val_loss", "min")
    assert result["value"] == result["history"][0]["epochs"]["val_loss"][-1]


@pytest.mark.slow
def test_keras_exploding_loss_is_status_nan(tmp_path):
    source = """
    import numpy as np
    import keras

    rng = np.random.default_rng(0)
    x = rng.random((128, 8)).astype("float32") * 100
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate=10.0), "mse")
    model.fit(x, x.sum(axis=1), epochs=2, batch_size=16, verbose=2)
    """
    process, result = run_harness(tmp_path, source, "--metric", "loss")
    assert process.returncode == 1
    assert (result["status"], result["value"], result["mode"]) == ("nan", None, "min")
    assert result["history"][0]["epochs"]["loss"] == [None, None]  # NaN, written as null


# -- the model's size and pace, and the budget on them: slow ---------------------------------------

SIZED_SCRIPT = """
import numpy as np
import keras

rng = np.random.default_rng(0)
x = rng.random((EXAMPLES, 8)).astype("float32")
y = (x[:, :4].sum(axis=1) > x[:, 4:].sum(axis=1)).astype("int32")
model = MODEL
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, verbose=0)
print("keras counts", model.count_params())
model.evaluate(x, y, verbose=0)
"""
SEQUENTIAL = """keras.Sequential([
    keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    keras.layers.Dense(2, activation="softmax"),
])"""
SUBCLASSED = """Net()
"""
NET = """
import keras

class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.out = keras.layers.Dense(2, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))
"""


def sized(model=SEQUENTIAL, examples=240, epochs=3, batch=32, prelude="") -> str:
    source = SIZED_SCRIPT.replace("MODEL", model).replace("EXAMPLES", str(examples))
    source = source.replace("EPOCHS", str(epochs)).replace("BATCH", str(batch))
    return prelude + source


def with_budget(tmp_path: Path, **limits) -> None:
    from mutator.training.budget import TrialBudget

    (tmp_path / "trial").mkdir(exist_ok=True)
    TrialBudget(**limits).write(tmp_path / "trial")


def keras_count(process) -> int:
    return int(process.stdout.split("keras counts")[-1].split()[0])


@pytest.mark.slow
def test_every_trial_records_its_models_size_and_pace(tmp_path):
    process, result = run_harness(tmp_path, sized())
    assert process.returncode == 0, process.stderr
    assert result["parameters"] == keras_count(process) == 178
    (fit,) = result["history"]
    assert fit["parameters"] == 178 and len(fit["epoch_seconds"]) == 3
    assert len(fit["epoch_cpu_seconds"]) == 3
    pairs = zip(fit["epoch_seconds"], fit["epoch_cpu_seconds"], strict=True)
    charged = [min(pair) for pair in pairs]
    later = charged[1:]  # the first epoch traced the graph: left out
    assert result["seconds_per_epoch"] == pytest.approx(sum(later) / 2, abs=1e-3)
    assert result["seconds_per_epoch"] > 0 and result["over_budget"] is None


@pytest.mark.slow
def test_a_subclassed_model_is_counted_once_its_first_batch_built_it(tmp_path):
    process, result = run_harness(tmp_path, sized(SUBCLASSED, prelude=NET))
    assert process.returncode == 0, process.stderr
    assert result["parameters"] == keras_count(process) == 178


@pytest.mark.slow
def test_a_model_over_max_params_is_stopped_before_its_first_epoch(tmp_path):
    with_budget(tmp_path, max_params=100)
    process, result = run_harness(tmp_path, sized())
    assert process.returncode == 1
    assert result["status"] == "over_budget" and result["value"] is None
    assert result["error"] == "over budget: 178 parameters > --max-params 100"
    assert result["parameters"] == 178 and result["seconds_per_epoch"] is None
    (fit,) = result["history"]
    assert fit["epochs"] == {} and fit["epochs_completed"] == 0  # no epoch trained
    assert result["over_budget"]["measure"] == "parameters"
    assert (result["over_budget"]["value"], result["over_budget"]["limit"]) == (178, 100)
    assert "Traceback" not in process.stderr  # the budget's stop, not the script's fault
    trial = tmp_path / "trial"
    assert not (trial / "model.keras").exists() and not (trial / "checkpoint").exists()


@pytest.mark.slow
def test_a_subclassed_model_over_max_params_stops_after_one_batch(tmp_path):
    with_budget(tmp_path, max_params=100)
    _, result = run_harness(tmp_path, sized(SUBCLASSED, prelude=NET))
    assert (result["status"], result["parameters"]) == ("over_budget", 178)
    assert result["history"][0]["epochs"] == {}
    assert result["over_budget"]["how"] == "after the first batch of fit 1"


@pytest.mark.slow
def test_a_slow_model_is_stopped_by_its_batch_times_within_the_first_epoch(tmp_path):
    with_budget(tmp_path, max_epoch_seconds=1e-6)
    _, result = run_harness(tmp_path, sized(examples=960))  # 30 batches an epoch
    assert result["status"] == "over_budget" and result["history"][0]["epochs"] == {}
    breach = result["over_budget"]
    assert breach["measure"] == "seconds_per_epoch" and breach["limit"] == 1e-6
    assert breach["how"] == "estimated from batches 3-10 of 30 in epoch 1"
    assert result["error"].startswith("over budget: ")
    assert " s per epoch > --max-epoch-seconds 1e-06 (estimated" in result["error"]
    assert result["parameters"] == 178


@pytest.mark.slow
def test_with_few_batches_the_pace_is_known_after_the_second_epoch(tmp_path):
    with_budget(tmp_path, max_epoch_seconds=1e-6)
    _, result = run_harness(tmp_path, sized(epochs=5, batch=64))  # 4 batches an epoch
    assert result["status"] == "over_budget"
    assert result["history"][0]["epochs_completed"] == 2  # the first epoch traced the graph
    assert result["over_budget"]["how"] == "median of 1 epoch(s) after the first, fit 1"


@pytest.mark.slow
def test_a_guess_whose_epochs_would_cost_more_than_the_search_spent_stops_early(tmp_path):
    with_budget(tmp_path, max_fit_seconds=1e-3)  # no epoch limit: its epochs x its pace
    _, result = run_harness(tmp_path, sized(examples=960, epochs=50))  # 30 batches an epoch
    assert result["status"] == "over_budget" and result["history"][0]["epochs"] == {}
    breach = result["over_budget"]
    assert breach["measure"] == "fit_seconds" and breach["limit"] == 1e-3
    assert " x 50 epochs, estimated from batches 3-10 of 30 in epoch 1" in breach["how"]
    assert result["error"].startswith("too dear for a guess: ")
    assert result["error"].endswith("> the 0.001 s the search has spent so far")


@pytest.mark.slow
def test_a_script_that_catches_the_stop_stays_over_budget(tmp_path):
    with_budget(tmp_path, max_params=100)
    caught = """
for attempt in range(2):  # the second fit stops at its start too
    try:
        model.fit(x, y, epochs=3, verbose=0)
    except Exception as error:
        print("caught", type(error).__name__)
model.evaluate(x, y, verbose=0)
"""
    source = sized().split("model.fit(")[0] + caught
    process, result = run_harness(tmp_path, source)
    assert process.stdout.count("caught OverBudgetError") == 2
    assert result["status"] == "over_budget" and len(result["history"]) == 2
    assert all(fit["epochs"] == {} for fit in result["history"])
    assert result["evaluate"] and result["error"].startswith("over budget: 178 parameters")
