"""Functional models with several inputs, branches and merges: the whole graph is read, and every
rule changes a branch, or the layers after a merge, without writing a model Keras refuses."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from mutator import api
from mutator.engine.candidate import Candidate, Skip
from mutator.engine.insertion import CannotInsert, insert_layers_after

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HEADER = "import keras\nfrom keras import layers\n\n"

TWO_INPUTS = """
top = keras.Input(shape=(32,), name="top")
bottom = keras.Input(shape=(16,), name="bottom")
a = layers.Dense(4, activation="relu")(top)
b = layers.Dense(4, activation="relu")(bottom)
merged = layers.concatenate([a, b])
out = layers.Dense(10, activation="softmax")(merged)
model = keras.Model(inputs=[top, bottom], outputs=out)
"""

# Two Dense views of one input added: their widths must stay equal.
ADDED = """
inputs = keras.Input(shape=(64,))
wide = layers.Dense(8, activation="relu")(inputs)
deep = layers.Dense(8, activation="relu")(inputs)
deep = layers.Dense(8, activation="relu")(deep)
summed = layers.Add()([wide, deep])
outputs = layers.Dense(10, activation="softmax")(summed)
model = keras.Model(inputs, outputs)
"""

# Two Conv branches of one image, concatenated on the channels, then a classifier.
CONV_BRANCHES = """
image = keras.Input(shape=(8, 8, 1))
left = layers.Conv2D(4, 1, activation="relu")(image)
right = layers.Conv2D(4, (3, 3), activation="relu", padding="same")(image)
joined = layers.Concatenate()([left, right])
x = layers.MaxPooling2D(2)(joined)
x = layers.Flatten()(x)
outputs = layers.Dense(10, activation="softmax")(x)
model = keras.Model(image, outputs)
"""

# A residual block: the trunk's output is taken twice, by a Dense and by the Add.
RESIDUAL = """
inputs = keras.Input(shape=(16,))
x = layers.Dense(8, activation="relu")(inputs)
y = layers.Dense(8, activation="relu")(x)
x = keras.layers.add([x, y])
outputs = layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs, outputs)
"""

SOURCES = {
    "two_inputs": TWO_INPUTS,
    "added": ADDED,
    "conv_branches": CONV_BRANCHES,
    "residual": RESIDUAL,
}


TRAINING = "model.fit(x, y, epochs=2)\n"


def script(body: str, header: str = HEADER) -> api.Script:
    """The model of `body`, trained by a fit call (unless `body` has its own)."""
    body = textwrap.dedent(body)
    return api.Script.from_text(header + body + ("" if ".fit(" in body else TRAINING))


def kinds(view) -> list[str]:
    return [layer.kind for layer in view.layers]


def takes(view) -> list[tuple[tuple[int, ...], tuple[str | None, ...]]]:
    """Per layer: the layers it takes (by site) and the model inputs it takes (by name)."""
    flow = view.flow
    return [
        (reads, tuple(flow.inputs[k].name for k in inputs))
        for reads, inputs in zip(flow.reads, flow.reads_inputs, strict=True)
    ]


def proposals(loaded: api.Script, rule: str) -> list:
    return api.propose(loaded, api.rules_named([rule]))


def candidates(loaded: api.Script, rule: str) -> list[Candidate]:
    return [p for p in proposals(loaded, rule) if isinstance(p, Candidate)]


def skips(loaded: api.Script, rule: str) -> dict[int | None, str]:
    return {p.site: p.reason for p in proposals(loaded, rule) if isinstance(p, Skip)}


def added_lines(loaded: api.Script, candidate: Candidate) -> list[str]:
    diff = api.rewrite(loaded, candidate).diff
    return [line[1:] for line in diff.splitlines() if line.startswith("+") and line[1:2] != "+"]


# -- reading the graph ---------------------------------------------------------------------------


def test_both_inputs_are_read_through_a_merge_function():
    view = script(TWO_INPUTS).view
    assert kinds(view) == ["Dense", "Dense", "Concatenate", "Dense"]
    assert takes(view) == [((), ("top",)), ((), ("bottom",)), ((0, 1), ()), ((2,), ())]
    assert [(i.name, i.shape) for i in view.flow.inputs] == [("top", (32,)), ("bottom", (16,))]
    assert view.flow.outputs == (3,) and view.notes == ()
    assert view.layers[2].written_as == "layers.concatenate"
    assert view.input_shape is None  # two inputs: no one shape


@pytest.mark.parametrize(
    "imports, merge, kind",
    [
        (HEADER, "layers.Concatenate(axis=-1)([a, b])", "Concatenate"),
        (HEADER, "layers.Add()([a, b])", "Add"),
        (HEADER, "keras.layers.multiply([a, b])", "Multiply"),
        (HEADER, "layers.Average()([a, b])", "Average"),
        (HEADER, "layers.maximum([a, b])", "Maximum"),
        (HEADER, "layers.Dot(axes=1)([a, b])", "Dot"),
        (HEADER, "layers.subtract(inputs=[a, b])", "Subtract"),
        ("import tensorflow as tf\nkeras = tf.keras\nlayers = tf.keras.layers\n",
         "tf.keras.layers.minimum([a, b])", "Minimum"),
        ("import keras\nfrom keras import layers\nfrom keras.layers import concatenate\n",
         "concatenate([a, b])", "Concatenate"),
        ("import keras\nfrom keras import layers\nfrom keras.layers import *\n",
         "add([a, b])", "Add"),
    ],
)  # fmt: skip
def test_every_merge_spelling_is_read(imports, merge, kind):
    view = script(TWO_INPUTS.replace("layers.concatenate([a, b])", merge), imports).view
    assert kinds(view) == ["Dense", "Dense", kind, "Dense"]
    assert view.flow.reads[2] == (0, 1) and view.notes == ()


def test_a_list_of_branches_in_a_variable_and_nested_calls_are_read():
    view = script(
        """
        top = keras.Input(shape=(32,))
        bottom = keras.Input(shape=(16,))
        branches = [layers.Dense(4)(top), layers.Dense(4)(bottom)]
        out = layers.Dense(10)(layers.Dropout(0.5)(layers.concatenate(branches)))
        model = keras.Model([top, bottom], out)
        """
    ).view
    assert kinds(view) == ["Dense", "Dense", "Concatenate", "Dropout", "Dense"]
    assert takes(view)[2:] == [((0, 1), ()), ((2,), ()), ((3,), ())]


def test_a_tensor_taken_twice_is_one_layer_with_two_readers():
    view = script(RESIDUAL).view
    assert kinds(view) == ["Dense", "Dense", "Add", "Dense"]
    trunk = view.layers[0]
    assert [layer.index for layer in view.readers(trunk)] == [1, 2]
    assert view.next_layer(trunk) is None and view.previous_layer(view.layers[2]) is None
    assert [layer.index for layer in view.downstream(trunk)] == [1, 2, 3]


def test_a_model_applied_to_one_branch_is_read_in_place():
    view = script(
        """
        def encoder():
            inputs = keras.Input(shape=(16,))
            x = layers.Dense(8, activation="relu")(inputs)
            return keras.Model(inputs, layers.Dense(4)(x))


        def build():
            top = keras.Input(shape=(16,))
            bottom = keras.Input(shape=(16,))
            encode = encoder()
            joined = layers.concatenate([encode(top), layers.Dense(4)(bottom)])
            return keras.Model([top, bottom], layers.Dense(10)(joined))


        model = build()
        model.fit(x, y, epochs=2)
        """
    ).view
    assert kinds(view) == ["Dense", "Dense", "Dense", "Concatenate", "Dense"]
    assert [layer.model for layer in view.layers] == ["encoder()"] * 2 + [None] * 3
    assert takes(view) == [
        ((), ("top",)),
        ((0,), ()),
        ((), ("bottom",)),
        ((1, 2), ()),
        ((3,), ()),
    ]


def test_code_the_reader_cannot_follow_is_a_note_and_keeps_the_shape_it_takes():
    loaded = script(TWO_INPUTS.replace("[a, b]", "[a, b * 2.0]"))
    view = loaded.view
    assert kinds(view) == ["Dense", "Concatenate", "Dense"]
    assert view.notes == ("stopped reading the model at `b * 2.0`",)
    assert view.flow.unread == frozenset({1})
    also = loaded.view.layers[0]
    opaque = script(TWO_INPUTS.replace("[a, b]", "[a, a * 2.0]"))
    assert opaque.view.flow.opaque == frozenset({0})
    assert also.kind == "Dense"
    reason = skips(opaque, "wider_dense")[0]
    assert "also taken by code we cannot read" in reason


def test_the_multi_input_fixture_is_read_whole():
    loaded = api.Script.load(FIXTURES / "multi_input_branches.py")
    view = loaded.view
    assert kinds(view) == [
        *("Conv2D", "MaxPooling2D", "Flatten"),
        *("Dense", "Dense", "Dense", "Add"),
        *("Concatenate", "Dense"),
    ]
    assert [(i.name, i.shape) for i in view.flow.inputs] == [("image", (8, 8, 1)), ("flat", (64,))]
    assert view.flow.reads[6:] == ((3, 5), (2, 6), (7,)) and view.notes == ()
    assert {c.site for c in candidates(loaded, "wider_dense")} == {4}


# -- argument rules on every branch --------------------------------------------------------------


def test_every_branch_of_a_concatenate_can_be_widened():
    loaded = script(TWO_INPUTS)
    assert {c.site: c.params["units"] for c in candidates(loaded, "wider_dense")} == {
        0: [4, 8],
        1: [4, 8],
    }


def test_an_add_is_never_widened_on_one_side_only():
    loaded = script(ADDED)
    widened = {c.site: c.params["units"] for c in candidates(loaded, "wider_dense")}
    assert widened == {1: [8, 16]}  # the first Dense of the deep branch: the next one absorbs it
    reasons = skips(loaded, "wider_dense")
    assert reasons == {
        0: "its units must stay: layer 0's output reaches the Add at layer 3, "
        "which needs all its inputs of one shape",
        2: "its units must stay: layer 2's output reaches the Add at layer 3, "
        "which needs all its inputs of one shape",
    }
    residual = skips(script(RESIDUAL), "wider_dense")
    assert set(residual) == {0, 1}, "the trunk reaches the Add directly and through layer 1"


def test_conv_branches_grow_where_the_merge_allows():
    loaded = script(CONV_BRANCHES)
    assert {c.site for c in candidates(loaded, "more_filters")} == {0, 1}  # channels: concatenated
    kernels = candidates(loaded, "larger_kernel")
    assert [c.site for c in kernels] == [1]  # padding "same": the height and width stay
    assert skips(loaded, "larger_kernel")[0] == (
        "its output's height and width must stay: layer 0's output reaches the Concatenate at "
        "layer 2, which needs its inputs of one shape but on the last axis"
    )
    added = script(CONV_BRANCHES.replace("layers.Concatenate()", "layers.Add()"))
    assert not candidates(added, "more_filters")
    assert set(skips(added, "more_filters")) == {0, 1}


def test_a_concatenate_on_another_axis_keeps_its_inputs_widths():
    loaded = script(TWO_INPUTS.replace("[a, b]", "[a, b], axis=0"))
    assert not candidates(loaded, "wider_dense")
    assert "on axis 0" in skips(loaded, "wider_dense")[0]


def test_a_reshape_to_a_written_shape_keeps_the_width_before_it():
    loaded = script(
        """
        inputs = keras.Input(shape=(16,))
        x = layers.Dense(64, activation="relu")(inputs)
        x = layers.Reshape((8, 8))(x)
        x = layers.Flatten()(layers.Dense(4)(x))
        model = keras.Model(inputs, layers.Dense(10)(x))
        """
    )
    assert skips(loaded, "wider_dense") == {
        0: "its units must stay: layer 0's output reaches the Reshape at layer 1, "
        "whose target shape is written out"
    }
    assert [c.site for c in candidates(loaded, "wider_dense")] == [2]


# -- insertion rules in a branch or after the merge -----------------------------------------------


def test_a_normalisation_goes_after_a_layer_of_one_branch_and_rewires_only_that_branch():
    loaded = script(TWO_INPUTS)
    first = {c.site: c for c in candidates(loaded, "add_batchnorm")}
    assert set(first) == {0, 1}
    source = api.rewrite(loaded, first[0]).source
    assert (
        'a = layers.Dense(4, activation="relu")(top)\n'
        "a = layers.BatchNormalization()(a)\n"
        'b = layers.Dense(4, activation="relu")(bottom)\n'
    ) in source
    after = api.Script.from_text(source).view
    assert kinds(after) == ["Dense", "BatchNormalization", "Dense", "Concatenate", "Dense"]
    assert takes(after)[1:4] == [((0,), ()), ((), ("bottom",)), ((1, 2), ())]


def test_a_hidden_dense_goes_after_the_merge():
    loaded = script(TWO_INPUTS)
    [candidate] = candidates(loaded, "add_dense")
    assert candidate.params == {"after": 2, "units": 4}
    assert added_lines(loaded, candidate) == ['merged = layers.Dense(4, activation="relu")(merged)']
    inline = script(TWO_INPUTS.replace("(merged)", "(layers.concatenate([a, b]))"))
    assert skips(inline, "add_dense") == {
        3: "layer 2 (Concatenate) is applied inline, not assigned to a variable"
    }


def test_a_conv_block_goes_after_the_merge_of_feature_maps():
    loaded = script(CONV_BRANCHES)
    [candidate] = candidates(loaded, "add_conv_block")
    assert candidate.params["after"] == 3  # the pooling after the Concatenate
    assert added_lines(loaded, candidate) == [
        'x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(x)',
        "x = layers.MaxPooling2D(2)(x)",
    ]


def test_a_layer_that_changes_the_width_cannot_go_before_an_add_on_one_side():
    loaded = script(RESIDUAL)
    view = loaded.view
    dense = cst.parse_expression("layers.Dense(64)")
    with pytest.raises(CannotInsert, match="reaches the Add at layer 2"):
        insert_layers_after(view, view.layers[0], [dense])
    dropout = cst.parse_expression("layers.Dropout(0.5)")
    assert insert_layers_after(view, view.layers[0], [dropout])  # keeps the shape: allowed
    [candidate] = candidates(loaded, "add_dropout")
    assert added_lines(loaded, candidate) == ["y = layers.Dropout(0.25)(y)"]


def test_the_model_input_of_a_branch_is_never_rebound():
    loaded = script(
        TWO_INPUTS.replace("a = layers.Dense(4", "top = layers.Dense(4").replace(
            "[a, b]", "[top, b]"
        )
    )
    assert "rebind the model input" in skips(loaded, "add_batchnorm")[0]


# -- every candidate, on every graph -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_candidate_is_read_back_as_the_same_graph_plus_its_change(name):
    loaded = script(SOURCES[name])
    before = loaded.view
    made = [p for p in api.propose(loaded, api.rules_named(None)) if isinstance(p, Candidate)]
    assert made
    for candidate in made:
        after = api.Script.from_text(api.rewrite(loaded, candidate).source).view
        assert after.notes == before.notes, candidate.rule
        grown = len(after.layers) - len(before.layers)
        assert grown == {"add_conv_block": 2, "add_dense": 1, "add_batchnorm": 1}.get(
            candidate.rule, grown if candidate.rule == "add_dropout" else 0
        )
        assert len(after.flow.inputs) == len(before.flow.inputs)
        assert len(after.flow.outputs) == len(before.flow.outputs)


# -- (slow) Keras builds every rewrite ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_rewrite_of_a_graph_builds_and_takes_one_step(name):
    pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    import numpy as np

    loaded = script(SOURCES[name])
    made = [p for p in api.propose(loaded, api.rules_named(None)) if isinstance(p, Candidate)]
    for candidate in [None, *made]:
        source = loaded.text if candidate is None else api.rewrite(loaded, candidate).source
        namespace: dict = {}
        built = source[: source.index("model.fit(")]
        exec(compile(built, f"<{name}>", "exec", dont_inherit=True), namespace)
        model = namespace["model"]
        assert isinstance(model, keras.Model)
        shapes = [tuple(tensor.shape[1:]) for tensor in model.inputs]
        x = [np.ones((4, *shape), "float32") for shape in shapes]
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        loss = model.train_on_batch(x if len(x) > 1 else x[0], np.arange(4))
        assert np.isfinite(np.asarray(loss)).all(), candidate
