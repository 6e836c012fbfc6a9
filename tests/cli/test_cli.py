"""`mutate` from the outside: outputs, exit codes, one-line errors, untouched files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mutator.cli.app import main

SCRIPT = """\
from keras.models import Sequential
from keras.layers import Conv2D, MaxPooling2D, Flatten, Dense

model = Sequential()
model.add(Conv2D(4, (3, 3), activation='relu', input_shape=(8, 8, 1)))  # few filters
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Flatten())
model.add(Dense(10, activation='softmax'))
model.fit(x_train, y_train, epochs=2)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_preview_prints_the_first_rules_diff(capsys, script):
    code, out, _ = run(capsys, "preview", str(script))
    assert code == 0
    assert out.startswith("# more_filters: layer 0 (Conv2D): filters 4 -> 8\n--- a/train.py\n")
    assert "-model.add(Conv2D(4, (3, 3)" in out and "+model.add(Conv2D(8, (3, 3)" in out


def test_preview_a_chosen_rule_and_site(capsys, script):
    code, out, _ = run(capsys, "preview", str(script), "--rule", "add_dense")
    assert code == 0 and "+model.add(Dense(64, activation='relu'))" in out
    code, _, err = run(capsys, "preview", str(script), "--rule", "more_filters", "--site", "3")
    assert code == 2 and "no candidate at site 3; sites with a candidate: 0" in err


def test_preview_does_not_touch_the_script(capsys, script):
    before = script.read_bytes()
    run(capsys, "preview", str(script))
    assert script.read_bytes() == before


def test_apply_to_output_and_in_place(capsys, script, tmp_path):
    out_path = tmp_path / "new.py"
    code, _, err = run(capsys, "apply", str(script), "--rule", "more_epochs", "-o", str(out_path))
    assert code == 0 and "epochs 2 -> 4" in err
    assert out_path.read_text() == SCRIPT.replace("epochs=2", "epochs=4")
    code, _, _ = run(capsys, "apply", str(script), "--rule", "more_filters", "--in-place")
    assert code == 0 and "Conv2D(8, (3, 3)" in script.read_text()


def test_apply_without_output_prints_the_new_script(capsys, script):
    code, out, _ = run(capsys, "apply", str(script), "--rule", "larger_kernel")
    assert code == 0 and out == SCRIPT.replace("(3, 3)", "(5, 5)")


def test_inspect_shows_layers_epochs_and_rules(capsys, script):
    code, out, _ = run(capsys, "inspect", str(script))
    assert code == 0
    for text in ("sequential-add", "MaxPooling2D", "epochs=2 in the fit call", "add_dense @2"):
        assert text in out


@pytest.mark.parametrize(
    "compile_and_fit, optimizer, batch",
    [
        (
            "model.compile(optimizer='adam', loss='mse')\nmodel.fit(x, y, epochs=2)\n",
            "optimizer: Adam, learning rate 0.001, its default (optimizer='adam' in the compile "
            "call)",
            "batch size: 32 (not given: Keras takes batches of 32)",
        ),
        (
            "LR = 1e-4\nBATCH = 64\nopt = keras.optimizers.SGD(learning_rate=LR)\n"
            "model.compile(optimizer=opt, loss='mse')\nmodel.fit(x, y, batch_size=BATCH)\n",
            "optimizer: SGD, learning rate 0.0001 (LR = 0.0001 (module constant))",
            "batch size: 64 (BATCH = 64 (module constant))",
        ),
        (
            "model.compile(optimizer=keras.optimizers.Adam(\n"
            "    keras.optimizers.schedules.CosineDecay(0.01, 1000)), loss='mse')\n"
            "model.fit(dataset, epochs=2)\n",
            "optimizer: Adam, learning rate 0.01, the start of a CosineDecay "
            "(initial_learning_rate=0.01 in keras.optimizers.schedules.CosineDecay(...))",
            "batch size: fit takes `dataset` and no targets, so a tf.data.Dataset or a generator",
        ),
        (
            "model.fit(x, y, epochs=2)\n",
            "optimizer: unknown, learning rate unknown (no `model.compile(...)` found",
            "batch size: 32 (not given",
        ),
    ],
)
def test_inspect_shows_the_optimizer_learning_rate_and_batch_size(
    capsys, tmp_path, compile_and_fit, optimizer, batch
):
    path = tmp_path / "train.py"
    path.write_text(
        "import keras\nfrom keras import layers\n"
        "model = keras.Sequential([layers.Dense(10, input_dim=64)])\n" + compile_and_fit
    )
    code, out, _ = run(capsys, "inspect", str(path))
    assert code == 0
    assert optimizer in out and batch in out


def test_rules_lists_the_default_order(capsys):
    code, out, _ = run(capsys, "rules")
    positions = [
        out.index(name)
        for name in ("more_filters", "larger_kernel", "add_conv_block", "add_dense", "more_epochs")
    ]
    assert code == 0 and positions == sorted(positions)
    shrinking = out.index("shrinking rules")
    assert shrinking > positions[-1] and out.index("remove_dense") > shrinking


@pytest.mark.parametrize(
    "content, code, message",
    [
        (None, 3, "no such file"),
        (b"\x00\x01binary", 3, "binary file"),
        (b"caf\xe9 = 1\n", 3, "not UTF-8"),
        (b"model = Sequential(\n", 3, "train.py:1:19: syntax error: '(' was never closed"),
        (b"print('no model here')\n", 4, "no Keras model found"),
        (
            b"from keras.models import Sequential\nfrom keras.layers import Flatten\n"
            b"model = Sequential([Flatten()])\n",
            5,
            "no rule can change this model",
        ),
    ],
)
def test_bad_input_is_one_line_and_a_documented_code(capsys, tmp_path, content, code, message):
    path = tmp_path / "train.py"
    if content is not None:
        path.write_bytes(content)
    for argv in (
        ["preview", str(path)],
        ["apply", str(path), "--rule", "more_filters", "--in-place"],
    ):
        got, out, err = run(capsys, *argv)
        assert got == code
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
        if content is not None:
            assert path.read_bytes() == content  # nothing written
        assert [p.name for p in tmp_path.iterdir()] == (["train.py"] if content is not None else [])


def test_a_directory_is_not_a_script(capsys, tmp_path):
    code, _, err = run(capsys, "preview", str(tmp_path))
    assert code == 3 and "is a directory" in err


def test_usage_errors_exit_2(capsys, script):
    assert run(capsys, "preview")[0] == 2
    assert run(capsys, "apply", str(script))[0] == 2  # --rule is required
    code, _, err = run(capsys, "apply", str(script), "--rule", "bigger")
    assert code == 2 and "unknown rule 'bigger'" in err


def test_nothing_to_change_explains_each_rule(capsys, tmp_path):
    path = tmp_path / "train.py"
    path.write_text(
        "from keras.models import Sequential\nfrom keras.layers import Conv2D\n"
        "model = Sequential()\nmodel.add(Conv2D(n, k))\n"
        "model.fit(x, y, epochs=cfg.e, batch_size=cfg.b)\n"
    )
    code, _, err = run(capsys, "preview", str(path))
    assert code == 5
    assert "more_filters @0: filters=n is not a literal" in err
    assert "more_epochs @0: epochs=cfg.e" in err
    assert "smaller_batch @0: batch_size=cfg.b" in err


@pytest.mark.parametrize("command", ["preview", "inspect", "apply"])
def test_cli_never_imports_keras_or_tensorflow(script, command):
    extra = ["--rule", "add_dense"] if command == "apply" else []
    probe = (
        "import sys\nfrom mutator.cli.app import main\n"
        f"code = main([{command!r}, {str(script)!r}, *{extra!r}])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow', 'torch'})\n"
        "print('HEAVY', heavy, code, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert "HEAVY [] 0" in result.stderr


def test_preview_into_a_pipe_does_not_import_rich(script):
    probe = (
        "import sys\nfrom mutator.cli.app import main\n"
        f"main(['preview', {str(script)!r}])\n"
        "print('RICH', 'rich' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert "RICH False" in result.stderr


def test_console_script_is_installed_and_reports_its_version():
    result = subprocess.run(["mutate", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("mutate ")


def trial(trial_id: int, parameters: int | None, pace: float | None, status: str = "ok"):
    from mutator.search.ledger import TrialRecord

    return TrialRecord(
        id=trial_id, parent=None if trial_id == 1 else 1,
        rule=None if trial_id == 1 else "more_filters", site=0, params={},
        description=f"change {trial_id}", sha256="s", diff="", status=status,
        value=0.9 if status == "ok" else None, decision="baseline" if trial_id == 1 else "rejected",
        best_after=0.9, seconds=1.0, started="", finished="",
        parameters=parameters, seconds_per_epoch=pace,
    )  # fmt: skip


def history_rows(capsys, script: Path, *flags: str) -> list[tuple[str, str, str]]:
    """(trial, params, s/epoch) of each row `mutate history` prints."""
    code, out, _ = run(capsys, "history", str(script), *flags)
    assert code == 0
    rows = []
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) >= 9 and cells[0].isdigit():
            rows.append((cells[0], cells[7], cells[8]))
    return rows


def test_history_shows_each_trials_size_and_pace_and_sorts_by_them(
    capsys, script, monkeypatch
):
    from mutator.search.ledger import Ledger

    monkeypatch.setenv("COLUMNS", "200")
    ledger = Ledger(script.parent / ".mutator" / script.stem)
    ledger.root.mkdir(parents=True)
    for record in (
        trial(1, 1_200, 0.5),
        trial(2, 48_000, 2.25),
        trial(3, None, None, status="crashed"),
        trial(4, 1_200, 0.25),
        trial(5, 310, None, status="over_budget"),
    ):
        ledger.append(record)
    assert history_rows(capsys, script) == [
        ("1", "1,200", "0.5"),
        ("2", "48,000", "2.25"),
        ("3", "", ""),  # blank when unknown
        ("4", "1,200", "0.25"),
        ("5", "310", ""),
    ]
    by_size = [row[0] for row in history_rows(capsys, script, "--sort", "size")]
    assert by_size == ["5", "4", "1", "2", "3"]  # parameters, then s/epoch; unknown last
    by_pace = [row[0] for row in history_rows(capsys, script, "--sort", "pace")]
    assert by_pace == ["4", "1", "2", "5", "3"]
    code, _, err = run(capsys, "history", str(script), "--sort", "speed")
    assert code == 2 and "invalid choice: 'speed'" in err


def test_history_marks_a_baseline_stopped_past_its_peak(capsys, script, monkeypatch):
    import dataclasses

    from mutator.search.ledger import Ledger

    monkeypatch.setenv("COLUMNS", "200")
    ledger = Ledger(script.parent / ".mutator" / script.stem)
    ledger.root.mkdir(parents=True)
    stopped = {"key": "val_loss", "epoch": 25, "planned": 100, "best_epoch": 8}
    ledger.append(dataclasses.replace(trial(1, 1_200, 0.5), past_peak=stopped))
    ledger.append(trial(2, 1_200, 0.5))
    code, out, _ = run(capsys, "history", str(script))
    assert code == 0
    metrics = [line.split("│")[4].strip() for line in out.splitlines() if line.count("│") > 8]
    assert metrics == ["0.9000 @25/100", "0.9000"]
