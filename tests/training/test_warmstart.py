"""Warm start: the child computes what its trained parent did, where the mapping says it does.

Every parent trains a couple of steps first (its weights are not the initial ones), and every
preserving case first checks that the child, before the transfer, computes something else: an
equality afterwards is then the transfer's doing.
"""

from __future__ import annotations

import numpy as np
import pytest

from mutator.training import net2net
from mutator.training.warmstart import copy_optimizer_state, transfer_weights

pytestmark = pytest.mark.slow

keras = pytest.importorskip("keras")
layers = keras.layers

IMAGE = (8, 8, 1)
CLASSES = 10


def sample(shape: tuple[int, ...], count: int = 16, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, *shape)).astype("float32")


def compiled(model, optimizer: str = "adam"):
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def trained(model):
    """Compiled with Adam and moved off its initial weights by two epochs of one batch each."""
    compiled(model)
    shape = tuple(model.inputs[0].shape[1:])
    labels = np.random.default_rng(0).integers(0, CLASSES, 16)
    model.fit(sample(shape), labels, epochs=2, batch_size=16, verbose=0)
    return model


def sequential(*stack, shape=IMAGE):
    return keras.Sequential([keras.Input(shape), *stack])


def conv_net(filters=4, kernel=3, padding="same", shape=IMAGE):
    """Conv2D -> MaxPool -> Flatten -> Dense(10, softmax), the rules' usual target."""
    return sequential(
        layers.Conv2D(filters, kernel, padding=padding, activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(CLASSES, activation="softmax"),
        shape=shape,
    )


def predictions(model, shape=IMAGE) -> np.ndarray:
    return model.predict(sample(shape, count=32, seed=2), verbose=0)


def assert_transfer_preserves(parent, child, shape=IMAGE):
    """The child first computes something else, then, after the transfer, what the parent does."""
    expected = predictions(parent, shape)
    assert not np.allclose(predictions(child, shape), expected, atol=1e-4)
    transfer = transfer_weights(parent, child)
    assert transfer.mode == "warm", transfer.why
    assert transfer.function_preserved, transfer.why
    np.testing.assert_allclose(predictions(child, shape), expected, atol=1e-4)
    return transfer


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(7)


def test_a_wider_conv_before_flatten_computes_what_the_parent_did():
    parent, child = trained(conv_net(4)), compiled(conv_net(8))
    transfer = assert_transfer_preserves(parent, child)
    assert transfer.layers == ("widened", "inputs split")
    assert transfer.why.startswith("net2net: layer ")
    assert "widened 4->8" in transfer.why


@pytest.mark.parametrize("batch_norm", [False, True], ids=["conv-conv", "conv-bn-conv"])
def test_a_wider_conv_feeding_a_conv_computes_what_the_parent_did(batch_norm):
    def stack(first: int):
        middle = [layers.BatchNormalization()] if batch_norm else []
        return sequential(
            layers.Conv2D(first, 3, padding="same", activation="relu"),
            *middle,
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(CLASSES, activation="softmax"),
        )

    parent, child = trained(stack(4)), compiled(stack(8))
    transfer = assert_transfer_preserves(parent, child)
    middle = ("channels mapped",) if batch_norm else ()
    assert transfer.layers == ("widened", *middle, "inputs split", "copied")


def test_a_wider_hidden_dense_computes_what_the_parent_did():
    def mlp(hidden: int):
        return sequential(
            layers.Dense(hidden, activation="relu"),
            layers.Dense(CLASSES, activation="softmax"),
            shape=(12,),
        )

    parent, child = trained(mlp(32)), compiled(mlp(64))
    transfer = assert_transfer_preserves(parent, child, shape=(12,))
    assert transfer.layers == ("widened", "inputs split")


def test_a_wider_functional_model_computes_what_the_parent_did():
    def functional(filters: int):
        inputs = keras.Input(IMAGE)
        x = layers.Conv2D(filters, 3, activation="relu")(inputs)
        x = layers.Dropout(0.2)(x)
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(CLASSES, activation="softmax")(x))

    parent, child = trained(functional(4)), compiled(functional(12))
    transfer = assert_transfer_preserves(parent, child)
    assert transfer.layers == ("widened", "inputs split")


def two_branches(deep: tuple[int, int] = (4, 4), side: int = 4, merge: str = "concatenate"):
    """Two inputs: two Dense layers on the first, one on the second, merged, a classifier.
    Keras lists the layers branch by branch, so the layer after one in that order may be the
    other branch's, not the one that takes its output."""
    first, second = keras.Input((12,)), keras.Input((6,))
    low = layers.Dense(side, activation="relu", name="side")(second)
    high = layers.Dense(deep[0], activation="relu", name="deep_1")(first)
    high = layers.Dense(deep[1], activation="relu", name="deep_2")(high)
    merged = getattr(layers, merge)([high, low])
    return keras.Model([first, second], layers.Dense(CLASSES, activation="softmax")(merged))


def branch_inputs(count: int = 16, seed: int = 1) -> list[np.ndarray]:
    return [sample((12,), count, seed), sample((6,), count, seed + 10)]


@pytest.mark.parametrize(
    "deep, side, merge, entries",
    [
        # the merge's inputs widened: the Concatenate passes the map on, the classifier splits it
        ((4, 8), 4, "concatenate", ("copied", "widened", "copied", "inputs split")),
        ((4, 4), 8, "concatenate", ("copied", "copied", "widened", "inputs split")),
        # inside a branch, before an Add: the next layer of the branch takes the new units
        ((8, 4), 4, "add", ("widened", "inputs split", "copied", "copied")),
    ],
)
def test_a_wider_layer_in_a_branch_maps_onto_the_layers_that_take_it(deep, side, merge, entries):
    parent, child = two_branches(merge=merge), compiled(two_branches(deep, side, merge))
    compiled(parent).fit(branch_inputs(), np.arange(16) % CLASSES, epochs=2, verbose=0)
    weighted = [layer.name for layer in child.layers if layer.weights]
    assert weighted[:3] == ["deep_1", "deep_2", "side"], "deep_2 is followed by the other branch"
    expected = parent.predict(branch_inputs(32, 2), verbose=0)
    assert not np.allclose(child.predict(branch_inputs(32, 2), verbose=0), expected, atol=1e-4)
    transfer = transfer_weights(parent, child)
    assert transfer.mode == "warm" and transfer.function_preserved, transfer.why
    assert transfer.layers == entries
    np.testing.assert_allclose(child.predict(branch_inputs(32, 2), verbose=0), expected, atol=1e-4)


def test_a_wider_second_hidden_dense_computes_what_the_parent_did():
    """wider_dense's change on an MLP with two hidden layers: the first is copied."""

    def mlp(second: int):
        return sequential(
            layers.Dense(8, activation="relu"),
            layers.Dense(second, activation="tanh"),
            layers.Dense(CLASSES, activation="softmax"),
            shape=(12,),
        )

    parent, child = trained(mlp(16)), compiled(mlp(32))
    transfer = assert_transfer_preserves(parent, child, shape=(12,))
    assert transfer.layers == ("copied", "widened", "inputs split")


SEQUENCE = (8, 8)  # a digit read as 8 timesteps of 8 features


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("reader", ["dense", "flatten", "recurrent"])
def test_a_wider_recurrent_layer_computes_what_the_parent_did(kind, reader):
    """Net2Net gate by gate: the copies keep their sources' state at every step."""
    cell = getattr(layers, kind)

    def rnn(units: int):
        sequences = reader != "dense"
        after = {
            "dense": [],
            "flatten": [layers.Flatten()],
            "recurrent": [cell(3)],  # its kernel's inputs are split, its recurrence untouched
        }[reader]
        return sequential(
            cell(units, return_sequences=sequences),
            *after,
            layers.Dense(CLASSES, activation="softmax"),
            shape=SEQUENCE,
        )

    parent, child = trained(rnn(4)), compiled(rnn(8))
    transfer = assert_transfer_preserves(parent, child, shape=SEQUENCE)
    middle = ("inputs split", "copied") if reader == "recurrent" else ("inputs split",)
    assert transfer.layers == ("widened", *middle)
    assert f"layer {child.layers[0].name} widened 4->8" in transfer.why


def test_a_wider_gru_without_reset_after_computes_what_the_parent_did():
    def rnn(units: int):
        return sequential(
            layers.GRU(units, reset_after=False),
            layers.Dense(CLASSES, activation="softmax"),
            shape=SEQUENCE,
        )

    parent, child = trained(rnn(4)), compiled(rnn(8))
    assert assert_transfer_preserves(parent, child, shape=SEQUENCE).layers == (
        "widened",
        "inputs split",
    )


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
def test_a_wider_bidirectional_layer_computes_what_the_parent_did(merge_mode):
    """fixtures/gru_bidirectional.py's model, its first Bidirectional(GRU) widened."""

    def rnn(units: int):
        return sequential(
            layers.Bidirectional(layers.GRU(units, return_sequences=True), merge_mode=merge_mode),
            layers.Bidirectional(layers.GRU(4)),
            layers.Dense(16, activation="relu"),
            layers.Dense(CLASSES, activation="softmax"),
            shape=SEQUENCE,
        )

    parent, child = trained(rnn(4)), compiled(rnn(8))
    transfer = assert_transfer_preserves(parent, child, shape=SEQUENCE)
    assert transfer.layers == ("widened", "inputs split", "copied", "copied")


@pytest.mark.parametrize("after", ["dense", "conv"])
def test_an_inserted_batch_normalization_starts_fresh_and_the_rest_is_copied(after):
    """add_batchnorm's change: no data to set its statistics from, so it starts as Keras makes
    it (at inference x / sqrt(1 + epsilon), close to an identity); every other layer is copied."""

    def stack(extra: bool):
        normalised = [layers.BatchNormalization()] if extra else []
        if after == "dense":
            body = [layers.Dense(16, activation="relu"), *normalised]
            shape = (12,)
        else:
            body = [layers.Conv2D(4, 3, activation="relu"), *normalised, layers.Flatten()]
            shape = IMAGE
        return sequential(*body, layers.Dense(CLASSES, activation="softmax"), shape=shape)

    parent, child = trained(stack(False)), compiled(stack(True))
    transfer = transfer_weights(parent, child)
    assert transfer.mode == "warm"
    assert not transfer.function_preserved
    assert transfer.layers == ("copied", "fresh", "copied")
    assert "batch_normalization" in transfer.why and "fresh (inserted)" in transfer.why
    kept = [layer for layer in child.layers if layer.weights and "batch" not in layer.name]
    for old, new in zip([p for p in parent.layers if p.weights], kept, strict=True):
        for a, b in zip(old.get_weights(), new.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    shape = (12,) if after == "dense" else IMAGE
    np.testing.assert_allclose(predictions(child, shape), predictions(parent, shape), atol=1e-2)


def test_a_larger_kernel_with_padding_same_computes_what_the_parent_did():
    parent, child = trained(conv_net(kernel=3)), compiled(conv_net(kernel=5))
    transfer = assert_transfer_preserves(parent, child)
    assert transfer.layers == ("kernel enlarged", "copied")
    assert "kernel 3x3->5x5 centred" in transfer.why


def test_a_larger_kernel_with_padding_valid_is_warm_but_its_dense_is_fresh():
    parent = trained(conv_net(kernel=3, padding="valid"))
    child = compiled(conv_net(kernel=5, padding="valid"))
    dense_before = child.layers[-1].get_weights()
    transfer = transfer_weights(parent, child)
    assert transfer.mode == "warm"
    assert not transfer.function_preserved
    assert transfer.layers == ("kernel enlarged", "fresh")
    assert f"{child.layers[-1].name} fresh (input 36->16)" in transfer.why
    parent_kernel, child_kernel = (
        parent.layers[0].get_weights()[0],
        child.layers[0].get_weights()[0],
    )
    np.testing.assert_array_equal(child_kernel[1:4, 1:4], parent_kernel)
    assert np.count_nonzero(child_kernel) == np.count_nonzero(parent_kernel)
    for kept, now in zip(dense_before, child.layers[-1].get_weights(), strict=True):
        np.testing.assert_array_equal(now, kept)


def test_an_inserted_conv_after_a_relu_conv_starts_as_an_identity():
    def stack(extra: bool):
        inserted = [layers.Conv2D(4, 3, padding="same", activation="relu")] if extra else []
        return sequential(
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            *inserted,
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(CLASSES, activation="softmax"),
        )

    parent, child = trained(stack(False)), compiled(stack(True))
    transfer = assert_transfer_preserves(parent, child)
    assert transfer.layers == ("copied", "identity", "copied")
    assert f"{child.layers[1].name} inserted as identity" in transfer.why


def test_an_inserted_relu_conv_after_a_signed_input_starts_fresh():
    def stack(extra: bool):
        inserted = [layers.Conv2D(4, 3, padding="same", activation="relu")] if extra else []
        return sequential(
            layers.Conv2D(4, 3, padding="same"),  # linear: its output can be negative
            *inserted,
            layers.Flatten(),
            layers.Dense(CLASSES, activation="softmax"),
        )

    transfer = transfer_weights(trained(stack(False)), compiled(stack(True)))
    assert transfer.mode == "warm"
    assert not transfer.function_preserved
    assert transfer.layers == ("copied", "fresh", "copied")


def test_an_inserted_dense_makes_the_output_dense_fresh():
    def mlp(extra: bool):
        inserted = [layers.Dense(64, activation="relu")] if extra else []
        return sequential(
            layers.Dense(32, activation="relu"),
            *inserted,
            layers.Dense(CLASSES, activation="softmax"),
            shape=(12,),
        )

    parent, child = trained(mlp(False)), compiled(mlp(True))
    transfer = transfer_weights(parent, child)
    assert transfer.mode == "warm"
    assert not transfer.function_preserved
    assert transfer.layers == ("copied", "fresh", "fresh")
    assert f"{child.layers[1].name} fresh (inserted)" in transfer.why
    assert f"{child.layers[2].name} fresh (input 32->64)" in transfer.why
    np.testing.assert_array_equal(
        child.layers[0].get_weights()[0], parent.layers[0].get_weights()[0]
    )


def test_an_inserted_conv_and_pooling_make_the_dense_after_flatten_fresh():
    def stack(extra: bool):
        inserted = (
            [layers.Conv2D(4, 3, padding="same", activation="relu"), layers.MaxPooling2D()]
            if extra
            else []
        )
        return sequential(
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            *inserted,
            layers.Flatten(),
            layers.Dense(CLASSES, activation="softmax"),
        )

    transfer = transfer_weights(trained(stack(False)), compiled(stack(True)))
    assert transfer.mode == "warm"
    assert not transfer.function_preserved
    assert transfer.layers == ("copied", "identity", "fresh")


def copies_apart(optimizer, steps: int) -> list[float]:
    """How far each new filter of a widened conv is from its source after `steps` steps."""
    parent, child = trained(conv_net(4)), compiled(conv_net(8), optimizer)
    transfer_weights(parent, child)
    kernel = child.layers[0].get_weights()[0]
    sources = {
        new: next(old for old in range(4) if np.array_equal(kernel[..., new], kernel[..., old]))
        for new in range(4, 8)
    }
    labels = np.random.default_rng(3).integers(0, CLASSES, 16)
    for step in range(steps):
        child.train_on_batch(sample(IMAGE, seed=4 + step), labels)
    stepped = child.layers[0].get_weights()[0]
    return [
        float(np.abs(stepped[..., new] - stepped[..., old]).max()) for new, old in sources.items()
    ]


def test_the_uneven_split_lets_one_sgd_step_part_the_copies():
    assert min(copies_apart("sgd", 1)) > 1e-5


def test_the_uneven_split_lets_adam_part_the_copies_from_its_second_step():
    """Adam's first step is sign-like: proportional gradients move the copies alike."""
    assert min(copies_apart(keras.optimizers.Adam(0.01), 2)) > 1e-5


def test_an_even_split_would_keep_the_copies_alike(monkeypatch):
    """The control: with equal shares the copies get equal gradients and stay copies."""
    monkeypatch.setattr(net2net, "SHARE_RANGE", (1.0, 1.0))
    assert max(copies_apart("sgd", 2)) < 1e-6


def test_a_different_input_shape_is_cold():
    child = compiled(conv_net(shape=(16, 16, 1)))
    assert_cold(trained(conv_net()), child, "the input shape changed (8, 8, 1) -> (16, 16, 1)")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(CLASSES, activation="softmax")

    def call(self, inputs):
        return self.hidden(inputs)


def test_a_subclassed_model_is_cold():
    child = Subclassed()
    child(np.zeros((1, 12), dtype="float32"))
    parent = trained(sequential(layers.Dense(CLASSES, activation="softmax"), shape=(12,)))
    assert_cold(parent, child, "the child is a subclassed model (Subclassed)")


class Scale(layers.Layer):
    """A user's own layer: one weight per input feature, times `copies`."""

    def __init__(self, copies=1, **kwargs):
        super().__init__(**kwargs)
        self.copies = copies

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1] * self.copies,), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale[: inputs.shape[-1]]

    def get_config(self):
        return {**super().get_config(), "copies": self.copies}


def scaled(copies: int):
    return sequential(
        layers.Dense(12, activation="relu"),
        Scale(copies),
        layers.Dense(CLASSES, activation="softmax"),
        shape=(12,),
    )


def test_a_custom_layer_with_other_weight_shapes_is_cold():
    assert_cold(trained(scaled(1)), compiled(scaled(2)), "custom layer scale")


def test_a_custom_layer_with_the_same_weight_shapes_is_copied():
    parent = trained(scaled(1))
    parent.layers[1].scale.assign(np.linspace(0.5, 1.5, 12))
    transfer = assert_transfer_preserves(parent, compiled(scaled(1)), shape=(12,))
    assert transfer.layers == ("copied", "copied", "copied")


def test_a_child_not_built_yet_is_cold():
    parent = trained(sequential(layers.Dense(CLASSES, activation="softmax"), shape=(12,)))
    transfer = transfer_weights(parent, keras.Sequential([layers.Dense(CLASSES)]))
    assert (transfer.mode, transfer.why) == (
        "cold",
        "cold: the child is not built: it has no input shape yet",
    )


def test_a_child_with_nothing_to_take_is_cold():
    parent = trained(sequential(layers.Dense(CLASSES, activation="softmax"), shape=(12,)))
    child = sequential(layers.Dense(8), layers.Dense(CLASSES, activation="softmax"), shape=(12,))
    assert_cold(
        parent, compiled(child), "no layer of the child can take any of the parent's weights"
    )


def assert_cold(parent, child, reason: str) -> None:
    before = child.get_weights()
    transfer = transfer_weights(parent, child)
    assert transfer.mode == "cold"
    assert not transfer.function_preserved
    assert transfer.layers == ()
    assert transfer.why.startswith("cold: ")
    assert reason in transfer.why, transfer.why
    for kept, now in zip(before, child.get_weights(), strict=True):
        np.testing.assert_array_equal(now, kept)


def test_the_optimizer_state_continues_where_the_parent_stopped():
    parent, child = trained(conv_net()), compiled(conv_net())
    assert copy_optimizer_state(parent, child) is None
    assert int(child.optimizer.iterations) == int(parent.optimizer.iterations) == 2
    pairs = list(zip(parent.optimizer.variables, child.optimizer.variables, strict=True))
    assert len(pairs) > 2 and any(np.any(np.asarray(old) != 0) for old, _ in pairs[2:])
    for old, new in pairs:
        np.testing.assert_array_equal(np.asarray(new), np.asarray(old), err_msg=new.path)
    child.fit(sample(IMAGE), np.zeros(16), epochs=1, batch_size=16, verbose=0)
    assert int(child.optimizer.iterations) == 3


def test_a_child_whose_change_is_its_learning_rate_keeps_its_own_rate():
    import keras

    parent = trained(conv_net())
    child = conv_net()
    child.compile(optimizer=keras.optimizers.Adam(learning_rate=0.003), loss="mse")
    assert copy_optimizer_state(parent, child, keep_learning_rate=True) is None
    assert float(child.optimizer.learning_rate) == pytest.approx(0.003)
    assert int(child.optimizer.iterations) == int(parent.optimizer.iterations) == 2
    moments = [(o, n) for o, n in zip(parent.optimizer.variables, child.optimizer.variables, strict=True)]
    for old, new in moments[2:]:
        np.testing.assert_array_equal(np.asarray(new), np.asarray(old), err_msg=new.path)


def test_another_optimizer_class_keeps_its_own_state():
    parent, child = trained(conv_net()), compiled(conv_net(), "sgd")
    assert copy_optimizer_state(parent, child) == "the optimizer changed: Adam -> SGD"
    assert int(child.optimizer.iterations) == 0


def test_an_uncompiled_parent_has_no_state_to_give():
    parent = trained(conv_net())
    bare = conv_net()
    bare.set_weights(parent.get_weights())
    assert "no optimizer" in copy_optimizer_state(bare, compiled(conv_net()))


@pytest.mark.parametrize("compile_parent", [True, False], ids=["compiled", "weights-only"])
def test_a_saved_parent_transfers_like_the_one_in_memory(tmp_path, compile_parent):
    parent = trained(conv_net(4))
    parent.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", compile=compile_parent)
    from_memory, from_file = compiled(conv_net(8)), compiled(conv_net(8))
    in_memory, on_file = (
        transfer_weights(parent, from_memory, seed=5),
        transfer_weights(loaded, from_file, seed=5),
    )
    assert (on_file.mode, on_file.function_preserved) == ("warm", True), on_file.why
    assert on_file.layers == in_memory.layers == ("widened", "inputs split")
    for kept, now in zip(from_memory.get_weights(), from_file.get_weights(), strict=True):
        np.testing.assert_array_equal(now, kept)
    np.testing.assert_allclose(predictions(from_file), predictions(parent), atol=1e-4)
