"""Which warm start a child takes, from the mappings its rules declare (no Keras)."""

from __future__ import annotations

import pytest

from mutator.training.warm_plan import COLD, CONTINUE, RETRAIN, TRANSFER, warm_mode
from rules import warm_mappings


@pytest.mark.parametrize(
    "mappings, mode",
    [
        (["continue"], CONTINUE),  # more epochs: go on where the parent stopped
        (["transfer"], TRANSFER),  # a capacity change: map the weights
        (["transfer", "continue"], TRANSFER),  # capacity and epochs as one change
        (["retrain"], RETRAIN),  # a learning rate: same weights, new rate
        (["retrain", "continue"], RETRAIN),
        (["retrain", "transfer"], TRANSFER),
        (["cold"], COLD),
        (["transfer", "cold"], COLD),  # one part with no sound mapping makes the child cold
        ([], COLD),
    ],
)
def test_a_child_starts_as_the_mappings_of_its_rules_allow(mappings, mode):
    assert warm_mode(mappings) == mode


def test_the_mappings_come_from_the_rules_declarations():
    assert warm_mappings(["more_epochs", "more_filters"]) == ["continue", "transfer"]
    assert warm_mappings(["a_rule_of_an_old_ledger"]) == ["transfer"]
