"""Which image trains a script: from imports and resolved layers, never from the text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mutator.cli.app import main
from mutator.containers.detect import classify, detect
from mutator.engine.source import parse_script

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
EXPECTED = {
    "cnn_branch.py": "cnn",
    "cnn_digits.py": "cnn",
    "cnn_functional.py": "cnn",
    "cnn_list.py": "cnn",
    "cnn_messy.py": "cnn",
    "conv1d_digits.py": "cnn",
    "seeds_style.py": "cnn",
    "tfkeras_argparse.py": "cnn",
    "two_models.py": "cnn",
    "mlp_digits.py": "ann",
    "overfit_digits.py": "ann",
    "keras_core_digits.py": "cnn",
    "layer_list.py": "cnn",
    "subclass_layers.py": "cnn",
    "composed_models.py": "cnn",
    "structured_inputs.py": "ann",
    "lstm_digits.py": "ann",
    "multi_input_branches.py": "cnn",
    "gru_bidirectional.py": "ann",
    "regression_mlp.py": "ann",
    "sgd_slow.py": "cnn",
    "epochs_absl.py": "cnn",
    "epochs_config.py": "cnn",
    "epochs_expression.py": "cnn",
    "keras1_nb_epoch.py": "cnn",
    "sklearn_digits.py": "sklearn",
    "subclassed_model.py": "cnn",
    "subclassed_chain.py": "cnn",
    "subclassed_blocks.py": "cnn",
    "widths_named.py": "cnn",
    "hparams_dict.py": "ann",
    "not_ml.py": None,
}


@pytest.mark.parametrize("name, kind", sorted(EXPECTED.items(), key=str))
def test_every_fixture(name, kind):
    result = detect(FIXTURES / name)
    assert result.kind == kind, result.reason
    assert (result.image is None) == (kind is None)


def test_every_fixture_is_covered():
    scripts = {p.name for p in FIXTURES.glob("*.py") if ".expected." not in p.name}
    assert scripts == set(EXPECTED)


def kind_of(text: str) -> tuple[str | None, str]:
    result = classify(parse_script(text), {"cnn": "k", "ann": "k", "sklearn": "s"})
    return result.kind, result.reason


def test_a_comment_or_string_mentioning_conv2d_is_not_a_cnn():
    text = (
        "# TODO: try Conv2D(32, 3)\nimport keras\nnote = 'Conv2D'\n"
        "model = keras.Sequential([keras.layers.Dense(10)])\n"
    )
    assert kind_of(text)[0] == "ann"


def test_tensorflow_imported_without_a_model_is_unknown_with_the_reason():
    kind, reason = kind_of("import tensorflow as tf\nprint(tf.__version__)\n")
    assert kind is None and "imports tensorflow but no Keras model found" in reason


def test_sklearn_imported_inside_a_function():
    assert kind_of("def main():\n    from sklearn.svm import SVC\n    SVC().fit(x, y)\n")[0] == (
        "sklearn"
    )


def test_keras_wins_over_sklearn_when_both_are_imported():
    text = (
        "from sklearn.model_selection import train_test_split\n"
        "from tensorflow import keras\nmodel = keras.Sequential([keras.layers.Conv1D(4, 3)])\n"
    )
    assert kind_of(text)[0] == "cnn"


def test_cli_detect_json_and_configured_image(capsys, tmp_path):
    script = tmp_path / "train.py"
    script.write_text((FIXTURES / "mlp_digits.py").read_text())
    (tmp_path / "mutator.toml").write_text('[images]\nann = "registry.local/ann:2"\n')
    assert main(["detect", str(script), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "kind": "ann",
        "image": "registry.local/ann:2",
        "reason": "model 'model' has no convolution layer",
    }


def test_cli_detect_unknown_exits_4(capsys):
    assert main(["detect", str(FIXTURES / "not_ml.py")]) == 4
    assert "kind: unknown" in capsys.readouterr().out
