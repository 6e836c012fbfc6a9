"""The narrowing rules (fewer_filters, fewer_units): which layer first, how far, and which widths
the model's ends hold fixed (`shapes.width_reaches_output`)."""

from __future__ import annotations

import pytest

from mutator import api
from mutator.engine.candidate import Candidate, Skip
from mutator.engine.shapes import width_reaches_output
from rules.fewer_filters import FewerFilters
from rules.fewer_units import FewerUnits

CNN = (
    "from keras.models import Sequential\n"
    "from keras.layers import Conv2D, Dense, Flatten\n"
    "model = Sequential()\n"
    "model.add(Conv2D(8, 3, input_shape=(8, 8, 1)))\n"
    "model.add(Conv2D(32, 3))\n"
    "model.add(Conv2D(16, 3))\n"
    "model.add(Conv2D(32, 1))\n"
    "model.add(Flatten())\n"
    "model.add(Dense(10))\n"
)


def _made(rule, text: str) -> list[Candidate]:
    return [p for p in rule.propose(api.Script.from_text(text).view) if isinstance(p, Candidate)]


def test_the_widest_layer_comes_first_and_equals_in_layer_order():
    made = _made(FewerFilters(), CNN)
    assert [(c.site, c.params["filters"]) for c in made] == [
        (1, [32, 16]),
        (3, [32, 16]),
        (2, [16, 8]),
        (0, [8, 4]),
    ]


def test_the_factor_divides_and_the_floor_holds():
    made = _made(FewerFilters(factor=4, min_filters=8), CNN)
    assert {c.site: c.params["filters"] for c in made} == {1: [32, 8], 2: [16, 8], 3: [32, 8]}
    skips = [p for p in FewerFilters(min_filters=8).propose(api.Script.from_text(CNN).view)]
    assert Skip("fewer_filters", 0, "8 filters is not above the floor (8)") in skips


def test_an_odd_width_rounds_down_but_not_below_the_floor():
    text = CNN.replace("Conv2D(8, 3,", "Conv2D(3, 3,").replace("Conv2D(16, 3)", "Conv2D(5, 3)")
    made = {c.site: c.params["filters"] for c in _made(FewerFilters(), text)}
    assert made[0] == [3, 2] and made[2] == [5, 2]


def test_units_of_dense_and_recurrent_layers_one_list_widest_first():
    text = (
        "from keras.models import Sequential\n"
        "from keras.layers import LSTM, Bidirectional, Dense\n"
        "model = Sequential()\n"
        "model.add(Bidirectional(LSTM(64, return_sequences=True), input_shape=(8, 8)))\n"
        "model.add(LSTM(16))\n"
        "model.add(Dense(128, activation='relu'))\n"
        "model.add(Dense(10, activation='softmax'))\n"
    )
    made = _made(FewerUnits(), text)
    assert [(c.site, c.params["units"]) for c in made] == [
        (2, [128, 64]),
        (0, [64, 32]),
        (1, [16, 8]),
    ]


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        # a fully convolutional classifier: the last convolution's filters are the classes
        (
            "model.add(GlobalAveragePooling2D())\nmodel.add(Activation('softmax'))\n",
            "layer 1's width reaches the model's output at layer 3 unchanged",
        ),
        ("", "layer 1 is the model's output"),
        ("model.add(Reshape((16, 16, 1)))\nmodel.add(Flatten())\nmodel.add(Dense(2))\n", "Reshape"),
    ],
)
def test_a_width_the_model_must_produce_stays(tail, why):
    text = (
        "from keras.models import Sequential\n"
        "from keras.layers import *\n"
        "model = Sequential()\n"
        "model.add(Conv2D(8, 3, padding='same', input_shape=(8, 8, 1)))\n"
        "model.add(Conv2D(4, 1))\n" + tail
    )
    view = api.Script.from_text(text).view
    assert why in (width_reaches_output(view, view.layers[1]) or "")
    assert width_reaches_output(view, view.layers[0]) is None  # the next Conv makes its own
    assert [c.site for c in _made(FewerFilters(), text)] == [0]


def test_a_head_that_ends_in_an_activation_keeps_its_units_the_other_heads_do_not():
    text = (
        "import keras\nfrom keras import layers\n"
        "inputs = keras.Input(shape=(64,))\n"
        "h = layers.Dense(128, activation='relu')(inputs)\n"
        "a = layers.Activation('softmax')(layers.Dense(6)(h))\n"
        "b = layers.Dense(1)(layers.Dense(32)(h))\n"
        "model = keras.Model(inputs, [a, b])\n"
    )
    proposals = FewerUnits().propose(api.Script.from_text(text).view)
    assert {p.site for p in proposals if isinstance(p, Candidate)} == {0, 3}
    (skip,) = [p for p in proposals if isinstance(p, Skip)]
    assert skip.site == 1 and "the number of outputs" in skip.reason


def test_a_time_distributed_dense_makes_its_own_width():
    text = (
        "from keras.models import Sequential\n"
        "from keras.layers import LSTM, Dense, TimeDistributed\n"
        "model = Sequential()\n"
        "model.add(LSTM(32, return_sequences=True, input_shape=(8, 8)))\n"
        "model.add(TimeDistributed(Dense(5)))\n"
    )
    assert [c.params["units"] for c in _made(FewerUnits(), text)] == [[32, 16]]


def test_every_layer_narrower_is_one_joint_change():
    """What slim tries first: every candidate of the narrowing rules at once."""
    script = api.Script.from_text(CNN.replace("Dense(10)", "Dense(64))\nmodel.add(Dense(10)"))
    rules = [FewerFilters(), FewerUnits()]
    assert all(rule.narrows and rule.warm == "cold" for rule in rules)
    made = [p for p in api.propose(script, rules) if isinstance(p, Candidate)]
    joined = api.joint_all(script, made)
    assert joined is not None
    source = api.rewrite(script, joined).source
    assert "Conv2D(16, 3))" in source and "Conv2D(4, 3," in source and "Dense(32)" in source


def test_filters_split_into_the_groups_of_a_grouped_convolution():
    text = (
        "import keras\nfrom keras import layers\n"
        "model = keras.Sequential([\n"
        "    keras.Input((8, 8, 8)),\n"
        "    layers.Conv2D(8, 3, groups=4),\n"  # 4 filters: 4 groups of 1
        "    layers.Conv2D(4, 3),\n"  # 2 filters do not split into the next one's 4 groups
        "    layers.Dropout(0.1),\n"
        "    layers.Conv2D(8, 1, groups=4),\n"  # 4 filters in 4 groups; its next takes any
        "    layers.Conv2D(16, 1, groups=n),\n"
        "    layers.Flatten(),\n"
        "    layers.Dense(10),\n"
        "])\n"
    )
    proposals = FewerFilters().propose(api.Script.from_text(text).view)
    assert {p.site: p.params["filters"] for p in proposals if isinstance(p, Candidate)} == {
        1: [8, 4]
    }
    assert {p.site: p.reason for p in proposals if isinstance(p, Skip)} == {
        2: "its filters must stay: 2 filters do not split into layer 4's 4 groups",
        4: "its filters must stay: layer 5's groups=n is not a literal",
        5: "its filters must stay: layer 5's groups=n is not a literal",
    }
