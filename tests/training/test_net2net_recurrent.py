"""Net2Net for recurrent cells, as numpy: a widened LSTM or SimpleRNN, read by a consumer whose
inputs are split, computes what its parent did (Keras itself: tests/training/test_warmstart.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mutator.training import net2net
from mutator.training.net2net_recurrent import Cell, output_map, widen_layer

INPUTS, STEPS, PARENT, CHILD = 3, 5, 4, 7


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def run(kind: str, weights: list[np.ndarray], xs: np.ndarray, backwards: bool = False):
    """The last state of a SimpleRNN or LSTM over `xs` (steps, inputs), Keras's gate layout."""
    kernel, recurrent, bias = weights
    units = recurrent.shape[0]
    h, c = np.zeros(units), np.zeros(units)
    for x in xs[::-1] if backwards else xs:
        z = x @ kernel + h @ recurrent + bias
        if kind == "SimpleRNN":
            h = np.tanh(z)
            continue
        i, f, g, o = np.split(z, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
    return h


def random_weights(kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    gates = Cell(kind, PARENT, 1, None).gates
    return [
        rng.normal(size=(INPUTS, gates * PARENT)),
        rng.normal(size=(PARENT, gates * PARENT)),
        rng.normal(size=gates * PARENT),
    ]


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM"])
def test_a_widened_cell_keeps_each_copy_in_its_sources_state(kind):
    rng = np.random.default_rng(0)
    parent, xs = random_weights(kind, rng), rng.normal(size=(STEPS, INPUTS))
    mapping = net2net.widen(PARENT, CHILD, rng)
    child = widen_layer(parent, Cell(kind, CHILD, 1, None), mapping, None)
    assert [w.shape[-1] for w in child] == [w.shape[-1] // PARENT * CHILD for w in parent]
    state = run(kind, child, xs)
    np.testing.assert_allclose(state, run(kind, parent, xs)[mapping.source], atol=1e-12)
    consumer = rng.normal(size=(PARENT, 2))
    np.testing.assert_allclose(
        state @ net2net.split_inputs(consumer, mapping), run(kind, parent, xs) @ consumer
    )


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul"])
def test_a_widened_bidirectional_layer_gives_its_consumer_the_parents_sum(merge_mode):
    rng = np.random.default_rng(1)
    parent = random_weights("LSTM", rng) + random_weights("LSTM", rng)  # forward, backward
    xs = rng.normal(size=(STEPS, INPUTS))
    mapping = net2net.widen(PARENT, CHILD, rng)
    cell = Cell("LSTM", CHILD, 2, merge_mode)
    child = widen_layer(parent, cell, mapping, None)

    def merged(weights: list[np.ndarray]) -> np.ndarray:
        forward, backward = run("LSTM", weights[:3], xs), run("LSTM", weights[3:], xs, True)
        if merge_mode == "concat":
            return np.concatenate([forward, backward])
        return forward + backward if merge_mode == "sum" else forward * backward

    flowing = output_map(mapping, cell)
    consumer = rng.normal(size=(flowing.parent_units, 2))
    np.testing.assert_allclose(
        merged(child) @ net2net.split_inputs(consumer, flowing), merged(parent) @ consumer
    )


def test_a_cell_whose_inputs_were_widened_splits_its_kernel_only():
    rng = np.random.default_rng(2)
    parent, xs = random_weights("LSTM", rng), rng.normal(size=(STEPS, INPUTS))
    inputs = net2net.widen(INPUTS, INPUTS + 2, rng)
    child = widen_layer(parent, Cell("LSTM", PARENT, 1, None), None, inputs)
    np.testing.assert_array_equal(child[1], parent[1])
    np.testing.assert_allclose(run("LSTM", child, xs[:, inputs.source]), run("LSTM", parent, xs))


def test_a_bidirectional_without_merge_has_no_map():
    mapping = net2net.widen(PARENT, CHILD, np.random.default_rng(3))
    assert output_map(mapping, Cell("GRU", CHILD, 2, None)) is None
