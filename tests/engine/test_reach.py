"""The Keras scripts people really write: each pattern located, with where its epochs live."""

from __future__ import annotations

from pathlib import Path

import pytest

from mutator import api
from mutator.engine.candidate import Candidate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def view_of(name: str):
    return api.Script.load(FIXTURES / name).view


def kinds(view) -> list[str]:
    return [layer.kind for layer in view.layers]


def first(name: str, rule: str) -> Candidate:
    script = api.Script.load(FIXTURES / name)
    return api.first_candidate(script, [rule])


def rewrite_first(name: str, rule: str) -> api.Rewrite:
    """The rule's first candidate applied to the script it was proposed for."""
    script = api.Script.load(FIXTURES / name)
    return api.rewrite(script, api.first_candidate(script, [rule]))


def test_keras_core_is_a_keras_root():
    view = view_of("keras_core_digits.py")
    assert kinds(view) == ["Input", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert view.input_shape == (8, 8, 1) and view.epochs.value == 2


def test_a_layer_list_built_in_a_variable_that_shadows_the_layers_module():
    view = view_of("layer_list.py")
    assert kinds(view) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    assert view.style == "sequential-add"
    appended = view.layers[3].holder
    assert appended.method == "append" and appended.in_loop  # the loop over literal sizes
    assert first("layer_list.py", "more_filters").params == {"filters": [4, 8]}


def test_user_subclasses_of_layers_count_as_their_keras_base():
    view = view_of("subclass_layers.py")
    assert kinds(view) == ["Input", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    conv = view.layers[1]
    assert conv.written_as == "StdConv" and conv.written_base == "layers.Conv2D"
    assert first("subclass_layers.py", "more_filters").params == {"filters": [4, 8]}
    assert first("subclass_layers.py", "larger_kernel").params["kernel"] == [[3, 3], [5, 5]]
    rewrite = rewrite_first("subclass_layers.py", "add_conv_block")
    added = [line for line in rewrite.diff.splitlines() if line.startswith("+ ")]
    assert any("layers.Conv2D(8" in line for line in added)  # written as the Keras base
    assert not any("StdConv(" in line for line in added)


def test_a_model_composed_of_models_reads_across_the_builders():
    view = view_of("composed_models.py")
    assert kinds(view) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert [layer.model for layer in view.layers] == ["build_features()"] * 3 + [None]
    assert view.input_shape == (8, 8, 1) and view.scope == "build_model"
    rewrite = rewrite_first("composed_models.py", "more_filters")
    assert "-    net = layers.Conv2D(4, (3, 3)" in rewrite.diff  # edited in build_features


def test_the_dict_of_inputs_model_is_located_with_its_dense_layers():
    view = view_of("structured_inputs.py")
    assert kinds(view) == ["Concatenate", "Dense", "Dense"]
    assert view.input_name == "inputs"
    assert first("structured_inputs.py", "add_dense").params == {"after": 1, "units": 8}


@pytest.mark.parametrize(
    "name, kind, value, detail",
    [
        ("epochs_absl.py", "flag", 2, "absl flag --epochs default=2"),
        ("epochs_config.py", "config", 2, "default epochs=2 in defaults = dict(epochs=...)"),
        ("keras1_nb_epoch.py", "literal", 2, "nb_epoch=2 in the fit call"),
        ("epochs_expression.py", "expression", None, "epochs=int(math.ceil(TOTAL_STEPS / steps_per_epoch)), computed"),
    ],
)
def test_epochs_where_they_really_live(name, kind, value, detail):
    epochs = view_of(name).epochs
    assert (epochs.kind, epochs.value, epochs.detail) == (kind, value, detail)


def test_a_computed_number_of_epochs_is_multiplied_not_evaluated():
    rewritten = rewrite_first("epochs_expression.py", "more_epochs").source
    assert "epochs = int(math.ceil(TOTAL_STEPS / steps_per_epoch)) * 2\n" in rewritten
    again = api.Script.from_text(rewritten, "epochs_expression.py")
    twice = api.rewrite(again, api.first_candidate(again, ["more_epochs"])).source
    assert "epochs = int(math.ceil(TOTAL_STEPS / steps_per_epoch)) * 4\n" in twice


def test_the_epochs_cap_is_relative_to_the_scripts_own_value():
    from rules.more_epochs import MoreEpochs

    script = api.Script.from_text(
        "from keras.models import Sequential\nfrom keras.layers import Dense\n"
        "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\nmodel.fit(x, y, epochs=500)\n"
    )
    (candidate,) = MoreEpochs().propose(script.view)
    assert candidate.params == {"epochs": [500, 1000]}
    (capped,) = MoreEpochs(max_epochs=500).propose(script.view)
    assert "at the cap (500)" in capped.reason
    (own,) = MoreEpochs(own_epochs=2, cap_factor=64).propose(script.view)
    assert "at the cap (200)" in own.reason  # 64 x 2 is below 200: at least 200


def test_a_subclassed_model_is_read_from_init_and_call(capsys):
    from mutator.cli import main

    nested = view_of("subclassed_model.py")
    assert (nested.style, nested.name) == ("subclassed", "net")
    assert kinds(nested) == ["Conv2D", "Flatten", "Dense"] and nested.epochs.value == 2
    assert first("subclassed_model.py", "more_filters").params == {"filters": [4, 8]}
    chain = view_of("subclassed_chain.py")
    assert kinds(chain) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert chain.input_shape == (8, 8, 1)  # x = digits.images.reshape(-1, 8, 8, 1), fit split
    added = rewrite_first("subclassed_chain.py", "add_conv_block").diff.splitlines()
    new_conv = '+        self.conv2d_1 = layers.Conv2D(8, (3, 3), activation="relu", padding="same")'
    assert new_conv in added
    assert "+        x = self.max_pooling2d_1(x)" in added
    assert main(["inspect", str(FIXTURES / "subclassed_model.py")]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines at the terminal width
    assert "style subclassed" in out and "not a straight chain" in out
