"""The locator on every way of writing a model, and its precise refusals."""

from __future__ import annotations

import pytest

from mutator import api
from mutator.errors import ModelNotFoundError

SEQ = "from keras.models import Sequential\nfrom keras.layers import Conv2D, MaxPooling2D, Flatten, Dense\n"


def view_of(text: str, model: str | None = None):
    return api.Script.from_text(text, model_name=model).view


def kinds(view) -> list[str]:
    return [layer.kind for layer in view.layers]


def test_sequential_add():
    view = view_of(
        SEQ + "model = Sequential()\nmodel.add(Conv2D(8, 3, input_shape=(8, 8, 1)))\n"
        "model.add(MaxPooling2D())\nmodel.add(Flatten())\nmodel.add(Dense(10))\n"
    )
    assert view.style == "sequential-add"
    assert kinds(view) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert view.input_shape == (8, 8, 1)


@pytest.mark.parametrize(
    "header, constructor",
    [
        ("import keras\nfrom keras import layers\n", "keras.Sequential([{}])"),
        ("import keras\nfrom keras import layers\n", "keras.Sequential(layers=[{}])"),
        (
            "import tensorflow as tf\nfrom tensorflow.keras import layers\n",
            "tf.keras.Sequential([{}])",
        ),
        (
            "from tensorflow import keras\nfrom tensorflow.keras import layers\n",
            "keras.models.Sequential([{}])",
        ),
    ],
)
def test_sequential_list(header, constructor):
    body = "layers.Conv2D(filters=8, kernel_size=3), layers.Flatten(), layers.Dense(10)"
    view = view_of(header + "model = " + constructor.format(body) + "\n")
    assert view.style == "sequential-list"
    assert kinds(view)[0] == "Conv2D" and kinds(view)[-1] == "Dense"


def test_functional_chain_to_model():
    view = view_of(
        "import keras\nfrom keras import layers\n"
        "inputs = keras.Input(shape=(8, 8, 1))\n"
        "x = layers.Conv2D(8, 3)(inputs)\nx = layers.MaxPooling2D(2)(x)\n"
        "outputs = layers.Dense(10)(layers.Flatten()(x))\n"
        "model = keras.Model(inputs=inputs, outputs=outputs)\nmodel.fit(a, b, epochs=3)\n"
    )
    assert view.style == "functional"
    assert kinds(view) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert view.input_shape == (8, 8, 1) and view.input_name == "inputs"
    assert view.epochs.value == 3


@pytest.mark.parametrize(
    "imports, conv, pool",
    [
        ("import keras.layers as L\n", "L.Conv1D", "L.MaxPool1D"),
        ("from keras.layers import Conv2D as C, MaxPool2D as P\n", "C", "P"),
        ("from keras.layers import *\n", "Convolution2D", "MaxPool2D"),
        ("import tensorflow as tf\n", "tf.keras.layers.Conv3D", "tf.keras.layers.MaxPooling3D"),
        ("from tensorflow.keras import layers as kl\n", "kl.Convolution1D", "kl.AvgPool1D"),
    ],
)
def test_aliases_and_old_names(imports, conv, pool):
    view = view_of(
        imports + "from keras.models import Sequential\nmodel = Sequential()\n"
        f"model.add({conv}(4, 3))\nmodel.add({pool}(2))\n"
    )
    assert kinds(view)[0] in ("Conv1D", "Conv2D", "Conv3D")
    assert kinds(view)[1].endswith(("Pooling1D", "Pooling2D", "Pooling3D"))


def test_a_substring_in_a_comment_is_not_a_layer():
    # The seeds' `grep Conv2D` matched comments; resolution by name does not.
    view = view_of(
        SEQ + "# Conv2D(64, 3) was too slow\nmodel = Sequential()\nmodel.add(Dense(10))\n"
    )
    assert kinds(view) == ["Dense"]


def test_same_name_not_from_keras_is_not_a_layer():
    view = view_of(
        "from keras.models import Sequential\nfrom mylib import Conv2D\n"
        "model = Sequential()\nmodel.add(Conv2D(4, 3))\n"
    )
    assert kinds(view) == ["unknown"] and view.layers[0].written_as == "Conv2D"
    assert api.rules_named(["more_filters"])[0].propose(view) == []


@pytest.mark.parametrize(
    "code, kind, value",
    [
        ("model.fit(x, y, epochs=5)", "literal", 5),
        ("model.fit(x, y, 32, 7)", "literal", 7),
        ("model.fit(x, y, nb_epoch=4)", "literal", 4),
        ("model.fit_generator(gen, 10, 6)", "literal", 6),
        ("EPOCHS = 9\nmodel.fit(x, y, epochs=EPOCHS)", "constant", 9),
        ("n = 3\nm = n\nmodel.fit(x, y, epochs=m)", "variable", 3),
        ("model.fit(x, y)", "default", 1),
        (
            "import argparse\np = argparse.ArgumentParser()\n"
            "p.add_argument('--num-epochs', type=int, default=12)\nargs = p.parse_args()\n"
            "model.fit(x, y, epochs=args.num_epochs)",
            "argparse",
            12,
        ),
        ("model.fit(x, y, epochs=cfg['epochs'])", "unresolved", None),
        ("model.fit(x, y, epochs=int(os.environ['E']))", "expression", None),
    ],
)
def test_epochs_sites(code, kind, value):
    view = view_of(SEQ + "model = Sequential()\nmodel.add(Dense(10))\n" + code + "\n")
    assert (view.epochs.kind, view.epochs.value) == (kind, value)


def test_epochs_from_a_function_parameter_default():
    view = view_of(
        SEQ + "def train(epochs=4):\n    model = Sequential()\n    model.add(Dense(10))\n"
        "    model.fit(x, y, epochs=epochs)\n"
    )
    assert (view.epochs.kind, view.epochs.value) == ("parameter", 4)


def test_model_built_in_a_function_and_trained_by_the_caller():
    view = view_of(
        SEQ + "def build_model():\n    net = Sequential()\n    net.add(Dense(10))\n"
        "    return net\n\nmodel = build_model()\nmodel.fit(x, y, epochs=2)\n"
    )
    assert view.scope == "build_model" and view.epochs.value == 2


def test_model_built_in_a_branch():
    view = view_of(
        SEQ + "model = Sequential()\nmodel.add(Conv2D(4, 3))\nif deep:\n"
        "    model.add(Conv2D(8, 3))\nmodel.add(Dense(10))\nmodel.fit(x, y, epochs=1)\n"
    )
    assert kinds(view) == ["Conv2D", "Conv2D", "Dense"]


def test_the_trained_model_is_chosen_among_several():
    text = (
        SEQ + "probe = Sequential([Dense(3)])\nprobe.summary()\n"
        "model = Sequential()\nmodel.add(Conv2D(4, 3))\nmodel.add(Dense(10))\n"
        "model.fit(x, y, epochs=2)\n"
    )
    assert view_of(text).name == "model"
    assert view_of(text, model="probe").name == "probe"


def test_several_untrained_models_need_a_name():
    text = SEQ + "a = Sequential([Dense(3)])\nb = Sequential([Dense(4)])\n"
    with pytest.raises(ModelNotFoundError, match="--model"):
        view_of(text)


@pytest.mark.parametrize(
    "text, message",
    [
        ("print('hello')\n", "no Keras model found: looked for"),
        (
            "from sklearn.linear_model import LogisticRegression\nLogisticRegression().fit(x, y)\n",
            "no Keras model found",
        ),
        (SEQ + "model = Sequential()\n", "has no layers"),
    ],
)
def test_no_model_is_a_precise_error(text, message):
    with pytest.raises(ModelNotFoundError, match=message):
        view_of(text)


def test_unknown_model_name_lists_what_exists():
    with pytest.raises(ModelNotFoundError, match="models found: model"):
        view_of(SEQ + "model = Sequential([Dense(3)])\n", model="net")


def test_an_assigned_alias_of_the_layers_module_resolves():
    view = view_of(
        "import tensorflow as tf\nlayers = tf.keras.layers\n"
        "model = tf.keras.Sequential([layers.Conv2D(4, 3), layers.Dense(10)])\n"
    )
    assert kinds(view) == ["Conv2D", "Dense"]


def test_a_rebound_name_is_not_a_keras_layer():
    view = view_of(
        "from keras.models import Sequential\nfrom keras.layers import Dense, Conv2D\n"
        "Conv2D = MyConv\n"
        "def build(layers):\n    return Sequential([layers.Dense(3), Conv2D(4, 3), Dense(10)])\n"
        "model = build(x)\nmodel.fit(a, b)\n"
    )
    assert kinds(view) == ["unknown", "unknown", "Dense"]


def test_a_builder_wrapped_by_another_call_is_still_the_trained_model():
    view = view_of(
        SEQ + "def build_model():\n    net = Sequential()\n    net.add(Dense(10))\n"
        "    return net\n\nmodel = compile_model(build_model(), 0.01)\nmodel.fit(x, y, epochs=3)\n"
    )
    assert view.epochs.value == 3
