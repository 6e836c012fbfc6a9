"""What the harness reads off the data evaluate is given, without training anything."""

from __future__ import annotations

import numpy as np

from mutator.training.keras_hooks import example_count


def test_the_examples_evaluate_tested_on_are_counted():
    assert example_count(np.zeros((360, 8, 8))) == 360
    assert example_count([np.zeros((90, 4)), np.zeros((90, 2))]) == 90  # several inputs
    assert example_count({"image": np.zeros((45, 4))}) == 45


def test_what_has_no_length_to_read_is_not_counted():
    assert example_count(None) is None
    assert example_count(iter([1, 2])) is None  # a generator, a dataset
    assert example_count(np.float32(1.0)) is None  # no first dimension
    assert example_count([]) is None
