"""Pruning through the real harness: a trial whose curve trails the best's stops (slow: Keras)."""

from __future__ import annotations

import pytest
from test_warm_plan import train

from mutator.training.prune import PrunePlan

pytestmark = pytest.mark.slow


def test_a_trial_that_trails_the_best_curve_stops_after_the_grace_epochs(tmp_path):
    best = (0.9, 0.95, 0.97, 0.98, 0.98, 0.98, 0.98, 0.98)  # far above a 4-filter model
    plan = PrunePlan("val_accuracy", "max", best, margin=0.05, grace=2, reference_trial=3)
    folder = tmp_path / "trial"
    folder.mkdir()
    plan.write(folder)
    metrics = train(folder / "child", epochs=8, prune_from=folder)
    (fit,) = metrics["history"]
    assert len(fit["epochs"]["loss"]) == 2  # stopped at the end of the grace period
    pruned = metrics["pruned"]
    assert pruned["epoch"] == 2 and pruned["reference"] == 0.95
    assert pruned["value"] < 0.95 - 0.05
    assert metrics["status"] == "ok"  # the script went on and evaluated: the search reverts it


def test_a_trial_that_keeps_up_trains_to_its_last_epoch(tmp_path):
    plan = PrunePlan("val_accuracy", "max", (0.05, 0.05, 0.05), margin=0.05, grace=2)
    folder = tmp_path / "trial"
    folder.mkdir()
    plan.write(folder)
    metrics = train(folder / "child", epochs=4, prune_from=folder)
    assert metrics["pruned"] is None and len(metrics["history"][0]["epochs"]["loss"]) == 4


def test_the_verdict_waits_for_the_grace_period_and_reads_past_the_reference_end():
    plan = PrunePlan("val_loss", "min", (1.0, 0.5), margin=0.1, grace=2)
    assert plan.verdict(1, 9.0) is None  # in the grace period
    assert plan.verdict(2, 0.55) is None  # within the margin
    stopped = {"epoch": 3, "value": 0.7, "reference": 0.5, "margin": 0.1}  # past its end
    assert plan.verdict(3, 0.7) == stopped


def test_a_trial_that_trains_longer_than_the_best_is_held_to_the_same_share_of_its_schedule():
    plan = PrunePlan("val_accuracy", "max", (0.24, 0.35), margin=0.05, grace=2)
    assert plan.verdict(2, 0.19, planned=2) is not None  # as long as the best: epoch for epoch
    assert plan.verdict(2, 0.19, planned=16) is None  # 2 of 16: held to the best's 1st epoch
    assert plan.verdict(8, 0.15, planned=16)["reference"] == 0.24
    assert plan.verdict(9, 0.30, planned=16) is None  # past half way: the best's 2nd, 0.35
    assert plan.verdict(16, 0.29, planned=16)["reference"] == 0.35


def test_the_callback_holds_a_longer_trial_to_the_best_at_the_same_share_of_its_schedule(
    tmp_path,
):
    """8 epochs against a 2-epoch best: its first half against the best's 1st epoch (kept up
    with), its 5th against the best's 2nd (0.99: stopped there, not after 2 epochs)."""
    plan = PrunePlan("val_accuracy", "max", (0.05, 0.99), margin=0.05, grace=2)
    folder = tmp_path / "trial"
    folder.mkdir()
    plan.write(folder)
    metrics = train(folder / "child", epochs=8, prune_from=folder)
    assert metrics["pruned"]["epoch"] == 5 and metrics["pruned"]["reference"] == 0.99
    assert len(metrics["history"][0]["epochs"]["loss"]) == 5


def test_a_loss_is_held_to_a_share_of_its_own_value():
    # a regression's val MSE: 0.05 absolute would stop every epoch that is worse at all
    plan = PrunePlan("val_loss", "min", (6176.0, 5230.0, 3048.0), margin=0.05, relative=True)
    assert plan.verdict(3, 3150.0) is None  # 3% behind
    assert plan.verdict(3, 3300.0) == {
        "epoch": 3, "value": 3300.0, "reference": 3048.0, "margin": 0.05 * 3048.0
    }


def test_a_trial_is_never_held_to_more_than_the_best_kept():
    # the best over-fitted: val loss 2814 at epoch 3, 5651 at its end
    plan = PrunePlan("val_loss", "min", (6176.0, 5230.0, 2814.0, 5651.0), margin=0.05, relative=True)
    assert plan.verdict(3, 3421.0) is None  # behind the best's 3rd epoch, not its last
    peaked = PrunePlan("val_accuracy", "max", (0.5, 0.9, 0.7), margin=0.05)
    assert plan.verdict(3, 6000.0) is not None
    assert peaked.verdict(2, 0.68) is None  # held to the 0.7 it ended at, not its 0.9
    assert peaked.verdict(2, 0.6) is not None


def test_an_accuracy_on_few_validation_examples_is_given_sampling_s_margin():
    """A Conv block's curve at 0.68 after 5 of 12 epochs against the best's 0.76, on 120
    validation examples: sampling alone moves the difference of two models by 0.055 (sd), so
    a 0.073 band does not stop it, where 1,200 examples would."""
    plan = PrunePlan("val_accuracy", "max", (0.5, 0.6, 0.7, 0.72, 0.76), 0.073, sampling_multiple=2)
    assert plan.margin_at(0.76, 120) == pytest.approx(2 * (2 * 0.76 * 0.24 / 120) ** 0.5)
    assert plan.verdict(5, 0.683, examples=120) is None
    assert plan.verdict(5, 0.683, examples=1200) is not None  # margin 0.073 > its 0.035
    assert plan.verdict(5, 0.683) is not None  # not counted: the margin alone
    loss = PrunePlan("val_loss", "min", (1.0,), 0.05, relative=True, sampling_multiple=2)
    assert loss.margin_at(1.0, 120) == 0.05  # a loss keeps its share


def test_the_harness_counts_the_examples_validation_split_holds_out(tmp_path):
    best = (0.9, 0.95, 0.97, 0.98)
    plan = PrunePlan("val_accuracy", "max", best, margin=0.01, grace=2, sampling_multiple=2)
    folder = tmp_path / "trial"
    folder.mkdir()
    plan.write(folder)
    metrics = train(folder / "child", epochs=4, prune_from=folder)
    # 1,437 training images, validation_split=0.1: Keras trains on 1,294, validates on 143
    assert metrics["pruned"]["margin"] == pytest.approx(plan.margin_at(0.95, 143))
