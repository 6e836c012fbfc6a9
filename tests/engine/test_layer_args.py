"""Widths written by name: the width rules follow them to where the number is written
(`mutator.engine.layer_args`), and leave alone a name that sets more than the one argument."""

from __future__ import annotations

from pathlib import Path

import pytest

from mutator import api
from mutator.engine.candidate import Candidate, Skip

HEAD = "import keras\nfrom keras import layers\n"
FIT = "model.compile('adam', 'mse')\nmodel.fit(x, y, epochs=EPOCHS)\n"


def _first(source: str, rule: str) -> Candidate | Skip:
    script = api.Script.from_text(source, Path("train.py"))
    proposals = api.propose(script, api.rules_named([rule]))
    return proposals[0]


def _rewritten(source: str, rule: str) -> str:
    script = api.Script.from_text(source, Path("train.py"))
    candidate = api.propose(script, api.rules_named([rule]))[0]
    assert isinstance(candidate, Candidate), candidate
    return api.rewrite(script, candidate).source


def test_a_module_constant_is_changed_where_it_is_written():
    source = (
        HEAD + "EPOCHS = 2\nHIDDEN = 8  # width\n"
        "model = keras.Sequential([layers.Input((4,)), layers.Dense(HIDDEN), layers.Dense(1)])\n"
        + FIT
    )
    out = _rewritten(source, "wider_dense")
    assert out == source.replace("HIDDEN = 8  # width", "HIDDEN = 16  # width")
    assert "(HIDDEN = 8 (module constant))" in _first(source, "wider_dense").description


def test_a_parameter_named_as_its_keyword_is_read_once():
    source = (
        HEAD + "EPOCHS = 2\n\n\ndef build(units=8):\n    return keras.Sequential([\n"
        "        layers.Input((4,)),\n        layers.Dense(units=units),\n"
        "        layers.Dense(units=1),\n    ])\n\n\nmodel = build()\n" + FIT
    )
    assert _rewritten(source, "wider_dense") == source.replace("units=8)", "units=16)")


def test_a_parameter_passed_by_its_one_call_is_changed_in_that_call():
    source = (
        HEAD + "EPOCHS = 2\n\n\ndef build(filters=4):\n    return keras.Sequential([\n"
        "        layers.Input((8, 8, 1)),\n        layers.Conv2D(filters, 3),\n"
        "        layers.Flatten(),\n        layers.Dense(10),\n    ])\n\n\n"
        "model = build(filters=6)\n" + FIT
    )
    out = _rewritten(source, "more_filters")
    assert out == source.replace("build(filters=6)", "build(filters=12)")


@pytest.mark.parametrize("passed", ["Net(hidden=64)", "Net(64)"])
def test_a_constructors_parameter_is_changed_where_the_class_is_called(passed):
    source = (
        HEAD + "EPOCHS = 2\n\n\nclass Net(keras.Model):\n"
        "    def __init__(self, hidden=32, classes=10):\n        super().__init__()\n"
        "        self.body = layers.Dense(hidden)\n        self.head = layers.Dense(classes)\n\n"
        "    def call(self, x):\n        return self.head(self.body(x))\n\n\n"
        f"model = {passed}\n" + FIT
    )
    # not the default, 32, which this script never runs with
    assert _rewritten(source, "wider_dense") == source.replace("64)", "128)")


def test_an_argparse_default_is_changed_there():
    source = (
        HEAD + "import argparse\nparser = argparse.ArgumentParser()\n"
        "parser.add_argument('--hidden', type=int, default=32)\nargs = parser.parse_args()\n"
        "EPOCHS = 2\n"
        "model = keras.Sequential([layers.Input((4,)), layers.Dense(args.hidden), "
        "layers.Dense(1)])\n" + FIT
    )
    assert _rewritten(source, "fewer_units") == source.replace("default=32", "default=16")


def test_a_dicts_entry_is_changed_there_and_its_neighbours_are_not_shared():
    source = (
        HEAD + 'HP = {"hidden": 8, "epochs": 2}\n'
        'model = keras.Sequential([layers.Input((4,)), layers.Dense(HP["hidden"]), '
        "layers.Dense(1)])\n"
        "model.compile('adam', 'mse')\nmodel.fit(x, y, epochs=HP['epochs'])\n"
    )
    assert _rewritten(source, "wider_dense") == source.replace('"hidden": 8', '"hidden": 16')
    assert _rewritten(source, "more_epochs") == source.replace('"epochs": 2', '"epochs": 4')


def test_epochs_from_a_dict_call_entry_are_followed():
    source = (
        HEAD + "CFG = dict(epochs=3, units=8)\n"
        "model = keras.Sequential([layers.Input((4,)), layers.Dense(CFG['units']), "
        "layers.Dense(1)])\nmodel.compile('adam', 'mse')\nmodel.fit(x, y, epochs=CFG['epochs'])\n"
    )
    assert _rewritten(source, "more_epochs") == source.replace("epochs=3,", "epochs=6,")


@pytest.mark.parametrize(
    "model, why",
    [
        (  # two layers read one constant: widening it would widen both
            "HIDDEN = 8\nEPOCHS = 2\nmodel = keras.Sequential([layers.Input((4,)), "
            "layers.Dense(HIDDEN), layers.Dense(HIDDEN), layers.Dense(1)])\n",
            "units=HIDDEN is HIDDEN = 8 (module constant), which more than this one argument "
            "of the model reads",
        ),
        (  # the epochs read it too
            "EPOCHS = 8\nmodel = keras.Sequential([layers.Input((4,)), layers.Dense(EPOCHS), "
            "layers.Dense(1)])\n",
            "units=EPOCHS is EPOCHS = 8 (module constant), which the epochs read too",
        ),
        (  # computed: not a number written anywhere
            "EPOCHS = 2\nBASE = 4\nmodel = keras.Sequential([layers.Input((4,)), "
            "layers.Dense(BASE * 2), layers.Dense(1)])\n",
            "units=BASE * 2 is not a literal",
        ),
        (  # the script assigns the entry again: which value runs is not the dict's
            'HP = {"hidden": 8}\nHP["hidden"] = 32\nEPOCHS = 2\n'
            'model = keras.Sequential([layers.Input((4,)), layers.Dense(HP["hidden"]), '
            "layers.Dense(1)])\n",
            'units=HP["hidden"] is not a literal',
        ),
        (  # a name the script never assigns
            "EPOCHS = 2\nmodel = keras.Sequential([layers.Input((4,)), layers.Dense(width), "
            "layers.Dense(1)])\n",
            "units=width is not a literal",
        ),
    ],
)
def test_a_width_that_is_not_this_arguments_alone_is_left_alone(model, why):
    found = _first(HEAD + model + FIT, "wider_dense")
    assert isinstance(found, Skip) and found.reason == why
