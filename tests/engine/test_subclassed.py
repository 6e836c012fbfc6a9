"""Subclassed keras.Model: the layers `__init__` assigns, in the order `call` applies them, and new
layers written as new attributes and new `x = self.<name>(x)` lines."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from mutator import api
from mutator.engine.call_order import applied_in
from mutator.engine.candidate import Candidate, Skip
from mutator.engine.insertion import CannotInsert, attribute_name, insert_layers_after
from mutator.engine.model_view import AttributeLayer, ListedLayer
from mutator.errors import ModelNotFoundError

HEADER = "import keras\nfrom keras import layers\n\n"
CHAIN = """
class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = layers.Conv2D(4, 3, activation="relu")
        self.pool = layers.MaxPooling2D(2)
        self.flat = layers.Flatten()
        self.out = layers.Dense(10, activation="softmax")

    def call(self, inputs):
        x = self.conv(inputs)
        x = self.pool(x)
        x = self.flat(x)
        return self.out(x)


net = Net()
net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
net.fit(x, y, epochs=3)
"""


def script(text: str, header: str = HEADER) -> api.Script:
    return api.Script.from_text(header + textwrap.dedent(text))


def kinds(view) -> list[str]:
    return [layer.kind for layer in view.layers]


def first(text: str, rule: str, header: str = HEADER) -> Candidate | Skip:
    loaded = script(text, header)
    return api.propose(loaded, api.rules_named([rule]))[0]


def rewritten(text: str, rule: str, header: str = HEADER) -> str:
    loaded = script(text, header)
    return api.rewrite(loaded, api.first_candidate(loaded, [rule])).source


# -- locating the model ---------------------------------------------------------------------------


def test_a_straight_chain_is_read_in_call_order_with_its_epochs():
    view = script(CHAIN).view
    assert view.style == "subclassed" and view.name == "net"
    assert kinds(view) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert view.epochs.value == 3 and view.notes == ()
    conv = view.layers[0].holder
    assert isinstance(conv, AttributeLayer) and conv.attribute == "conv"
    assert conv.output == "x" and conv.not_chain is None
    assert "return statement" in view.layers[3].holder.not_chain


@pytest.mark.parametrize(
    "header, base",
    [
        ("import tensorflow as tf\nlayers = tf.keras.layers\n", "tf.keras.Model"),
        ("from tensorflow import keras\nfrom tensorflow.keras import layers\n", "keras.Model"),
        ("from keras import Model, layers\n", "Model"),
        ("import keras\nfrom keras import layers\n", "keras.models.Model"),
        ("import keras_core as keras\nfrom keras_core import layers\n", "keras.Model"),
        ("from keras.models import Model\nimport keras.layers as layers\n", "Model"),
    ],
)
def test_every_spelling_of_the_model_base_and_the_layers(header, base):
    view = script(CHAIN.replace("keras.Model", base), header + "\n").view
    assert kinds(view) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]


def test_layers_through_aliases_old_names_and_user_subclasses():
    view = script(
        """
        class StdConv(L.Convolution2D):
            pass

        class Net(Model):
            def __init__(self):
                super().__init__()
                self.conv = StdConv(4, 3)
                self.pool = MaxPool2D(2)
                self.out = L.Dense(10)

            def call(self, x):
                x = self.conv(x)
                x = self.pool(x)
                return self.out(x)

        model = Net()
        """,
        "import tensorflow.keras.layers as L\nfrom tensorflow.keras import Model\n"
        "from tensorflow.keras.layers import MaxPool2D\n",
    ).view
    assert kinds(view) == ["Conv2D", "MaxPooling2D", "Dense"]
    assert view.layers[0].written_base == "L.Convolution2D"


def test_nested_call_is_read_inside_out():
    view = script(
        """
        class Net(keras.Model):
            def __init__(self, units=10):
                super().__init__()
                self.out = layers.Dense(units)
                self.flat = layers.Flatten()
                self.conv = layers.Conv2D(4, 3)

            def call(self, inputs, training=False):
                return self.out(self.flat(self.conv(inputs)))

        net = Net(units=10)
        net.fit(x, y)
        """
    ).view
    assert kinds(view) == ["Conv2D", "Flatten", "Dense"]
    reason = view.layers[0].holder.not_chain
    assert reason.startswith("call() is not a straight chain of `x = self.layer(x)`")


def test_a_model_returned_by_a_builder_function():
    view = script(
        CHAIN.replace("net = Net()\n", "def build():\n    return Net()\n\n\nnet = build()\n")
    ).view
    assert view.name == "build()" and view.scope == "build" and view.epochs.value == 3


def test_a_layer_applied_twice_is_one_layer_and_nothing_goes_after_it():
    loaded = script(
        """
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.hidden = layers.Dense(32, activation="relu")
                self.out = layers.Dense(10)

            def call(self, x):
                x = self.hidden(x)
                x = self.hidden(x)
                return self.out(x)

        net = Net()
        """
    )
    assert kinds(loaded.view) == ["Dense", "Dense"]
    assert loaded.view.layers[0].holder.not_chain == "call() applies self.hidden 2 times"
    (skip,) = api.propose(loaded, api.rules_named(["add_dense"]))
    assert isinstance(skip, Skip) and "2 times" in skip.reason


def test_a_layer_never_applied_is_left_out_with_a_note():
    view = script(
        CHAIN.replace(
            "        self.flat = layers.Flatten()\n",
            "        self.flat = layers.Flatten()\n        self.spare = layers.Dense(99)\n"
            "        self.tracker = keras.metrics.Mean()\n",
        )
    ).view
    assert kinds(view) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert view.notes == ("`self.spare` (Dense) is never applied in call(): left out",)


def test_a_method_call_applies_is_read_in_place():
    view = script(
        """
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.conv = layers.Conv2D(4, 3)
                self.flat = layers.Flatten()
                self.out = layers.Dense(10)

            def features(me, x):
                x = me.conv(x)
                return me.flat(x)

            def call(self, x):
                return self.out(self.features(x))

        net = Net()
        """
    ).view
    assert kinds(view) == ["Conv2D", "Flatten", "Dense"]
    assert view.layers[0].holder.self_names == ("self", "me")


def test_a_list_of_layers_applied_in_a_loop_and_a_sequential_attribute():
    loaded = script(
        """
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.features = keras.Sequential([layers.Conv2D(4, 3), layers.Flatten()])
                self.hidden = [layers.Dense(32), layers.Dense(16)]
                self.grown = [layers.Dense(8) for _ in range(2)]
                self.out = layers.Dense(10)

            def call(self, x):
                x = self.features(x)
                for layer in self.hidden:
                    x = layer(x)
                return self.out(x)

        net = Net()
        net.fit(a, b)
        """
    )
    view = loaded.view
    assert kinds(view) == ["Conv2D", "Flatten", "Dense", "Dense", "Dense"]
    assert [layer.model for layer in view.layers] == ["self.features"] * 2 + [None] * 3
    assert isinstance(view.layers[2].holder, ListedLayer)
    assert any("`self.grown` is built by a loop or comprehension" in n for n in view.notes)
    source = api.rewrite(loaded, api.first_candidate(loaded, ["add_dense"])).source
    assert "self.hidden = [layers.Dense(32), layers.Dense(16), layers.Dense(16)]" in source


def test_a_subclass_of_a_model_class_reads_its_base_init():
    view = script(
        """
        class Base(keras.Model):
            def __init__(self):
                super().__init__()
                self.conv = layers.Conv2D(4, 3)
                self.out = layers.Dense(10)

        class Net(Base):
            def call(self, x):
                x = self.conv(x)
                return self.out(x)

        net = Net()
        """
    ).view
    assert kinds(view) == ["Conv2D", "Dense"] and view.name == "net"


def test_call_we_cannot_follow_falls_back_to_init_order():
    view = script(
        """
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.conv = layers.Conv2D(4, 3)
                self.out = layers.Dense(10)

            def call(self, x):
                for layer in self.layers:
                    x = layer(x)
                return x

        net = Net()
        """
    ).view
    assert kinds(view) == ["Conv2D", "Dense"]
    assert "call() applies no layer we can follow" in view.notes[0]
    assert view.layers[0].holder.not_chain is not None


def test_the_input_shape_comes_from_build():
    view = script(CHAIN.replace("net.compile", "net.build((None, 8, 8, 1))\nnet.compile")).view
    assert view.input_shape == (8, 8, 1)
    assert script(CHAIN).view.input_shape is None


@pytest.mark.parametrize(
    "data, shape",
    [
        ("x = images.reshape(-1, 8, 8, 1).astype('float32') / 16.0\n", (8, 8, 1)),
        ("x = images.reshape((len(images), 28, 28, 1))\n", (28, 28, 1)),
        (
            "from sklearn.model_selection import train_test_split\n"
            "a = images.reshape(-1, 8, 8, 1)\n"
            "x, x_test, y, y_test = train_test_split(a, labels, test_size=0.2)\n",
            (8, 8, 1),
        ),
        ("x = images[..., None]\n", None),
        ("x = images.reshape(-1, side, side, 1)\n", None),
    ],
)
def test_the_input_shape_comes_from_the_data_fit_trains_on(data, shape):
    view = script(CHAIN.replace("net = Net()\n", data + "net = Net()\n")).view
    assert view.input_shape == shape


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "class Net(keras.Model):\n    def __init__(self):\n        super().__init__()\n"
            "        self.n = 3\n\n    def call(self, x):\n        return x\n\nnet = Net()\n",
            "subclassed model 'Net' has no layer we can read: looked for "
            "`self.<name> = <keras layer>(...)` in its `__init__`",
        ),
        (
            "class Net(keras.Model):\n    pass\n",
            "class Net subclasses keras.Model, but no instance of it is assigned or returned here",
        ),
    ],
)
def test_a_class_we_cannot_read_is_a_one_line_error(text, message):
    with pytest.raises(ModelNotFoundError) as caught:
        script(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == 4


def test_a_subclassed_model_used_as_a_block_is_not_a_model_of_its_own():
    view = script(
        """
        class Block(keras.Model):
            def __init__(self):
                super().__init__()
                self.dense = layers.Dense(8)

            def call(self, x):
                return self.dense(x)

        inputs = keras.Input(shape=(4,))
        x = layers.Dense(8)(inputs)
        block = Block()
        outputs = layers.Dense(2)(block(x))
        model = keras.Model(inputs, outputs)
        model.fit(a, b)
        """
    ).view
    assert view.style == "functional" and view.name == "model"


def test_call_order_is_evaluation_order_with_helpers_read_in_place():
    module = cst.parse_module(
        textwrap.dedent(
            """
            def call(self, x, training=None):
                y = self.head(self.mix(self.a(x), self.b(x)), training=training)
                for block in self.blocks:
                    y = block(y)
                if training:
                    y = self.drop(y)
                return self.tail(self.helper(y))

            def helper(me, y):
                z = me.c(y); z = me.c(z)
                return z
            """
        )
    )
    call, helper = module.body
    names = {"head": None, "mix": None, "a": None, "b": None, "drop": None, "tail": None}
    attributes = {name: cst.Name("layer") for name in names} | {
        "blocks": cst.List([]),
        "c": cst.Name("layer"),
    }
    found = applied_in(call, attributes, {"call": call, "helper": helper})
    assert [a.name for a in found] == ["a", "b", "mix", "head", "blocks", "drop", "c", "c", "tail"]
    assert [a.output for a in found] == [None, None, None, "y", None, "y", None, None, None]
    drop, tail = found[5], found[-1]
    assert not drop.direct and tail.returned and found[6].self_name == "me"


# -- inserting layers -----------------------------------------------------------------------------


def test_insertion_adds_an_attribute_and_applies_it_in_the_chain():
    source = rewritten(CHAIN, "add_dense")
    new_attribute = '        self.dense_1 = layers.Dense(64, activation="relu")\n'
    assert "        self.flat = layers.Flatten()\n" + new_attribute in source
    assert (
        "        x = self.flat(x)\n        x = self.dense_1(x)\n        return self.out(x)\n"
        in source
    )


def test_new_attribute_names_never_clash():
    text = CHAIN.replace(
        "        super().__init__()\n",
        "        super().__init__()\n        self.dense_1 = None\n",
    ).replace(
        "    def call(self, inputs):",
        "    def dense_2(self):\n        pass\n\n    def call(self, inputs):",
    )
    source = rewritten(text, "add_dense")
    assert "self.dense_3 = layers.Dense(64" in source and "x = self.dense_3(x)" in source


def test_attribute_names_follow_keras_snake_case():
    names = [
        attribute_name(cst.parse_expression(code), {"conv2d_1"})
        for code in ("layers.Conv2D(8)", "MaxPooling2D(2)", "L.BatchNormalization()", "LSTM(4)")
    ]
    assert names == ["conv2d_2", "max_pooling2d_1", "batch_normalization_1", "lstm_1"]


def test_the_output_name_and_the_self_name_are_the_scripts_own():
    text = """
    class Net(keras.Model):
        def __init__(net):
            super().__init__()
            net.hidden = layers.Dense(32)
            net.out = layers.Dense(10)

        def call(this, features, training=None):
            h = this.hidden(features, training=training)
            return this.out(h)

    model = Net()
    """
    source = rewritten(text, "add_dropout")
    assert "        net.dropout_1 = layers.Dropout(0.25)\n" in source
    assert "        h = this.dropout_1(h)\n        return this.out(h)\n" in source


def test_a_layer_applied_inside_a_branch_or_assigned_in_one_cannot_be_extended():
    branch = CHAIN.replace(
        "        x = self.flat(x)\n", "        if True:\n            x = self.flat(x)\n"
    )
    skip = first(branch, "add_dense")
    assert isinstance(skip, Skip) and "inside an if/for/with block" in skip.reason
    assigned = CHAIN.replace(
        "        self.flat = layers.Flatten()\n",
        "        if True:\n            self.flat = layers.Flatten()\n",
    )
    skip = first(assigned, "add_dense")
    assert (
        isinstance(skip, Skip) and "assigned inside an if/for/with block of __init__" in skip.reason
    )


def test_insertion_raises_cannot_insert_on_a_nested_call():
    loaded = script(
        CHAIN.replace(
            "        x = self.pool(x)\n        x = self.flat(x)\n",
            "        x = self.flat(self.pool(x))\n",
        )
    )
    view = loaded.view
    with pytest.raises(CannotInsert, match="not a straight chain"):
        insert_layers_after(view, view.layers[1], [view.layers[0].call])


def test_a_crlf_tab_script_gets_its_own_newlines_and_indent():
    text = (HEADER + textwrap.dedent(CHAIN)).replace("    ", "\t").replace("\n", "\r\n")
    loaded = api.Script.from_text(text)
    source = api.rewrite(loaded, api.first_candidate(loaded, ["add_dense"])).source
    assert '\t\tself.dense_1 = layers.Dense(64, activation="relu")\r\n' in source
    assert "\t\tx = self.dense_1(x)\r\n" in source


def test_every_rule_proposes_valid_code_on_a_chain():
    loaded = script(CHAIN.replace("net.compile", "net.build((None, 8, 8, 1))\nnet.compile"))
    proposals = api.propose(loaded, api.rules_named(None))
    made = [p for p in proposals if isinstance(p, Candidate)]
    assert {"more_filters", "larger_kernel", "add_conv_block", "add_dense", "add_dropout"} <= {
        c.rule for c in made
    }
    for candidate in made:
        again = api.Script.from_text(api.rewrite(loaded, candidate).source)
        assert again.view.style == "subclassed" and again.view.notes == ()


# -- (slow) the rewritten fixtures still train ----------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["subclassed_chain.py", "subclassed_model.py"])
def test_every_rewrite_of_a_subclassed_fixture_trains_one_epoch(name, capsys):
    pytest.importorskip("keras")
    loaded = api.Script.load(FIXTURES / name)
    proposals = api.propose(loaded, api.rules_named(None))
    candidates = {p.rule: p for p in reversed(proposals) if isinstance(p, Candidate)}
    assert candidates, "no rule applies"
    for candidate in candidates.values():
        source = api.rewrite(loaded, candidate).source
        after = api.Script.from_text(source).view
        namespace: dict = {"__name__": "__main__"}
        one_epoch = re.sub(r"epochs=\d+", "epochs=1", source)
        exec(compile(one_epoch, f"<{candidate.rule}>", "exec", dont_inherit=True), namespace)
        model = namespace[after.name]
        assert len(model.layers) == len(after.layers), candidate.rule
        assert len(model.history.history["loss"]) == 1, candidate.rule


LAYERS = [
    'layers.Conv2D(4, (3, 3), activation="relu"{shape})',
    "layers.MaxPooling2D((2, 2))",
    "layers.Flatten()",
    'layers.Dense(32, activation="relu")',
    "layers.Dense(16) if WIDE else layers.Dense(8)",  # kept in its place, changed by no rule
    'layers.Dense(10, activation="softmax")',
]
TRAINING = (
    "x = images.reshape(-1, 8, 8, 1)\n"
    'model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")\n'
    "model.fit(x, y, epochs=2, batch_size=16)\n"
)


def test_every_rule_changes_a_subclassed_chain_as_it_changes_the_same_sequential_model():
    """Whatever rules exist: the same model written both ways gets the same candidates."""
    listed = ",\n    ".join(layer.format(shape=", input_shape=(8, 8, 1)") for layer in LAYERS)
    sequential = HEADER + f"model = keras.Sequential([\n    {listed},\n])\n" + TRAINING
    names = ["conv", "pool", "flat", "hidden", "other", "out"]
    init = "".join(
        f"        self.{n} = {layer.format(shape='')}\n"
        for n, layer in zip(names, LAYERS, strict=True)
    )
    chain = "".join(f"        x = self.{n}(x)\n" for n in names)
    subclassed = (
        HEADER + "class Net(keras.Model):\n    def __init__(self):\n        super().__init__()\n"
        f"{init}\n    def call(self, x):\n{chain}        return x\n\n\nmodel = Net()\n" + TRAINING
    )

    def made(text: str) -> set[tuple]:
        loaded = api.Script.from_text(text)
        proposals = api.propose(loaded, api.rules_named(None))
        return {
            (p.rule, p.site, repr(sorted(p.params.items())))
            for p in proposals
            if isinstance(p, Candidate)
        }

    assert api.Script.from_text(subclassed).view.style == "subclassed"
    assert made(subclassed) == made(sequential)
