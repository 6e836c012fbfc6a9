"""The diagnosis on recorded histories, and the rule order each calls for."""

from __future__ import annotations

import pytest

from mutator.search.diagnosis import (
    DIVERGING,
    LEARNING_SLOWLY,
    NONE,
    OVER_FITTING,
    STILL_LEARNING,
    UNDER_FITTING,
    UNDER_TRAINED,
    best_epoch,
    diagnose,
)
from mutator.search.diagnosis import order as order_by_roads
from rules import rule_class

# Keras histories as mutator records them (the last fit's epoch logs), from real trials:
# cnn_digits.py's baseline, mlp_digits.py's, overfit_digits.py's, and a 512-filter CNN.
CNN_BASELINE = {
    "accuracy": [0.1253, 0.2722],
    "val_accuracy": [0.1319, 0.3194],
    "loss": [2.289, 2.1677],
    "val_loss": [2.2325, 2.1137],
}
OVERFIT = {
    "accuracy": [0.98, 1.0, 1.0],
    "val_accuracy": [0.93, 0.9333, 0.9333],
    "loss": [0.05, 0.006, 0.0043],
    "val_loss": [0.24, 0.245, 0.2461],
}
WIDE_CNN_2_EPOCHS = {
    "accuracy": [0.80, 0.93],
    "val_accuracy": [0.90, 0.94],
    "loss": [0.7, 0.25],
    "val_loss": [0.35, 0.2],
}
STALLED_SMALL = {  # a 4-filter CNN after many epochs: flat, and far below the target
    "accuracy": [0.815, 0.8152],
    "val_accuracy": [0.84, 0.84],
    "loss": [0.62, 0.619],
    "val_loss": [0.58, 0.58],
}
CONVERGED = {
    "accuracy": [0.985, 0.99],
    "val_accuracy": [0.975, 0.975],
    "loss": [0.05, 0.04],
    "val_loss": [0.09, 0.09],
}
STALLED_FLAT = {  # the same CNN, earlier: still falling, a little, and far below the target
    "accuracy": [0.70, 0.74, 0.77],
    "val_accuracy": [0.72, 0.75, 0.78],
    "loss": [0.95, 0.85, 0.78],
    "val_loss": [0.9, 0.82, 0.75],
}
SGD_TOO_SLOW = {  # plain SGD at 1e-4: near chance, the loss hardly moves
    "accuracy": [0.09, 0.10, 0.11, 0.11],
    "val_accuracy": [0.10, 0.10, 0.11, 0.12],
    "loss": [2.31, 2.30, 2.295, 2.29],
    "val_loss": [2.30, 2.30, 2.29, 2.29],
}
ALL = ["more_filters", "larger_kernel", "add_conv_block", "add_dense", "more_epochs", "add_dropout"]
ROADS = {
    "more_filters": "capacity",
    "wider_dense": "capacity",
    "larger_kernel": "capacity",
    "add_conv_block": "capacity",
    "add_dense": "capacity",
    "fewer_epochs": "regularisation",
    "more_epochs": "training",
    "higher_learning_rate": "faster",
    "smaller_batch": "faster",
    "add_batchnorm": "faster",
    "lower_learning_rate": "steadier",
    "larger_batch": "steadier",
    "add_dropout": "regularisation",
}
WITH_NEW = list(ROADS)


def order(names, diagnosis):
    return order_by_roads(names, diagnosis, ROADS)


def test_the_roads_here_are_the_ones_the_rules_declare():
    for name, road in ROADS.items():
        try:
            declared = rule_class(name).road
        except KeyError:
            continue  # a rule this tree does not have yet
        assert declared == road, name


def test_a_weak_model_still_learning_far_below_the_target_under_fits():
    found = diagnose({k: v[:2] for k, v in STALLED_FLAT.items() if "val" not in k}, 0.97, "max")
    assert found.kind == STILL_LEARNING  # no validation data: the training curve tells it
    found = diagnose(STALLED_FLAT, 0.97, "max")
    assert found.kind == STILL_LEARNING and "val still rising" in found.line
    flat = {k: [v[-1], v[-1]] for k, v in STALLED_FLAT.items()}
    found = diagnose({**flat, "loss": [0.95, 0.78]}, 0.97, "max")
    assert found.kind == UNDER_FITTING
    assert found.line == "under-fitting: train accuracy 0.77 is far below the target 0.97"
    assert order(ALL, found)[:4] == ALL[:4] and order(ALL, found)[-1] == "add_dropout"


def test_a_flat_loss_far_below_the_target_tries_a_faster_learner_beside_capacity():
    for history in (STALLED_SMALL, SGD_TOO_SLOW):
        found = diagnose(history, 0.97, "max")
        assert found.kind == LEARNING_SLOWLY, history
        assert found.line.startswith("learning slowly: train accuracy")
        ordered = order(WITH_NEW, found)
        assert ordered[:4] == [
            "higher_learning_rate",
            "more_filters",
            "smaller_batch",
            "add_batchnorm",
        ]
        assert ordered[-3:] == ["lower_learning_rate", "larger_batch", "add_dropout"]
    # without a faster rule to offer, the capacity rules lead as before
    assert order(ALL, diagnose(SGD_TOO_SLOW, 0.97, "max"))[:4] == ALL[:4]


def test_a_warm_start_s_flat_loss_says_nothing_of_the_learning_rate():
    assert diagnose(STALLED_SMALL, 0.97, "max", warm=True).kind == UNDER_FITTING


@pytest.mark.parametrize(
    "losses, why",
    [
        ([2.3, float("nan")], "NaN or infinite"),
        ([2.3, None], "NaN or infinite"),
        ([1.0, 1.5], "rose from 1 to 1.5"),
        ([1.0, 1.4, 0.9, 1.2, 0.95], "rose 2 times in 5 epochs"),
    ],
)
def test_a_loss_that_goes_nan_rises_or_oscillates_diverges_and_steadies_first(losses, why):
    found = diagnose({"loss": losses, "accuracy": [0.1] * len(losses)}, 0.97, "max")
    assert found.kind == DIVERGING and why in found.line, found.line
    assert order(WITH_NEW, found)[:2] == ["lower_learning_rate", "larger_batch"]


def test_noise_near_convergence_is_not_divergence():
    found = diagnose({"loss": [0.05, 0.052, 0.049, 0.051], "accuracy": [0.99] * 4}, 0.97, "max")
    assert found.kind != DIVERGING


def test_a_weak_model_still_learning_gets_capacity_and_epochs_side_by_side():
    found = diagnose(CNN_BASELINE, 0.97, "max")
    assert found.kind == STILL_LEARNING
    assert found.line == (
        "under-fitting: train accuracy 0.27 is far below the target 0.97, "
        "val still rising: capacity and epochs"
    )
    ordered = order(ALL, found)
    assert ordered[:3] == ["more_filters", "more_epochs", "larger_kernel"]
    assert ordered[-1] == "add_dropout"


def test_still_learning_puts_epochs_after_the_first_capacity_rule_that_applies():
    mlp = ["add_dense", "more_epochs", "add_dropout"]  # no Conv layer: no filters, no kernels
    assert order(mlp, diagnose(CNN_BASELINE, 0.97, "max")) == mlp


def test_a_model_near_the_target_whose_val_still_rises_is_under_trained():
    found = diagnose(WIDE_CNN_2_EPOCHS, 0.97, "max")
    assert found.kind == UNDER_TRAINED
    assert found.line == "under-trained: val still rising at the last epoch"
    assert order(ALL, found)[0] == "more_epochs"


def test_train_far_above_val_over_fits_and_calls_for_dropout_first():
    found = diagnose(OVERFIT, 0.97, "max")
    assert found.kind == OVER_FITTING and found.line == "over-fitting: train 1.00, val 0.93"
    ordered = order(ALL, found)
    assert ordered[:2] == ["add_dropout", "more_epochs"]
    assert ordered[-4:] == ALL[:4]  # capacity last: it would memorise more


# A CNN with Dropout(0.5) on digits, 16 epochs: train 0.96 over val 0.91, its val loss falling
# 7% an epoch; the same script at 32 epochs reached 0.94, at 64 epochs 0.95.
STILL_GENERALISING = {
    "accuracy": [0.231, 0.585, 0.849, 0.938, 0.955, 0.964, 0.961, 0.964],
    "val_accuracy": [0.229, 0.537, 0.809, 0.899, 0.909, 0.909, 0.917, 0.912],
    "loss": [2.255, 1.246, 0.524, 0.217, 0.168, 0.146, 0.138, 0.123],
    "val_loss": [2.162, 2.012, 1.72, 1.195, 0.954, 0.885, 0.767, 0.715],
}


def test_a_gap_while_the_val_loss_still_falls_clearly_is_under_training_not_over_fitting():
    found = diagnose(STILL_GENERALISING, 0.95, "max")
    assert found.kind == UNDER_TRAINED, found.line
    assert "val loss still fell 6.8% in the last epoch" in found.line
    assert order(ALL, found)[0] == "more_epochs"


def test_a_gap_whose_val_loss_has_stopped_falling_over_fits():
    settled = dict(STILL_GENERALISING, val_loss=[*STILL_GENERALISING["val_loss"][:-1], 0.76])
    assert diagnose(settled, 0.95, "max").kind == OVER_FITTING  # fell 0.9%: stopped gaining
    rose = dict(STILL_GENERALISING, val_loss=[*STILL_GENERALISING["val_loss"][:-1], 0.79])
    assert diagnose(rose, 0.95, "max").kind == OVER_FITTING


def test_a_converged_model_gives_no_signal_and_keeps_the_order():
    found = diagnose(CONVERGED, 0.97, "max")
    assert found.kind == NONE and order(ALL, found) == ALL


def test_without_a_target_a_weak_model_is_only_under_trained():
    assert diagnose(CNN_BASELINE, None, "max").kind == UNDER_TRAINED


@pytest.mark.parametrize(
    "history, kind",
    [
        ({"loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}, UNDER_TRAINED),
        ({"loss": [0.5, 0.3], "val_loss": [0.6, 0.7]}, OVER_FITTING),
        ({"loss": [0.5, 0.5], "val_loss": [0.6, 0.6]}, NONE),
        ({"loss": [1.0, 0.8]}, UNDER_TRAINED),
        ({}, NONE),
    ],
)
def test_loss_only_histories_are_read_from_the_loss_curves(history, kind):
    assert diagnose(history, 0.1, "min").kind == kind


ADAM_AT_3 = {  # fast_lr_wine's first epochs: blown up, then a plateau that wobbles
    "accuracy": [0.53, 0.75, 0.77, 0.63, 0.60, 0.59, 0.59, 0.61, 0.67, 0.67, 0.67, 0.67],
    "loss": [4840.0, 555.8, 284.5, 1.23, 1.17, 0.86, 0.88, 0.73, 0.78, 0.70, 0.73, 0.72],
}


def test_a_first_epoch_that_blew_up_far_below_the_target_is_divergence():
    found = diagnose(ADAM_AT_3, 0.95, "max")
    assert found.kind == DIVERGING and "began at 4.84e+03" in found.line
    assert order(WITH_NEW, found)[:2] == ["lower_learning_rate", "larger_batch"]


def test_a_stalled_loss_that_goes_up_as_often_as_down_is_divergence():
    wobbling = {"accuracy": [0.6] * 8, "loss": [0.9, 0.8, 0.75, 0.74, 0.76, 0.73, 0.75, 0.77]}
    found = diagnose(wobbling, 0.95, "max")
    assert found.kind == DIVERGING and "went up 2 times in its last 3 epochs" in found.line
    # near the target the same wobble is noise around convergence, not divergence
    assert diagnose({**wobbling, "accuracy": [0.94] * 8}, 0.95, "max").kind != DIVERGING
    # a model that learnt fast (its first epoch far above where it ends) is not diverging
    assert diagnose({"accuracy": [0.5, 0.9, 0.96], "loss": [2.3, 0.3, 0.05]}, 0.95, "max").kind != (
        DIVERGING
    )


def test_a_long_falling_loss_that_jumps_now_and_then_over_fits_rather_than_diverges():
    # 100 epochs of small batches on a regression: the loss fell from 150 to 23 with 16 jumps
    # of more than 10%, while the validation loss turned up: a regulariser, not a smaller step
    losses, val = [], []
    for epoch in range(100):
        level = 23 + 127 * 0.95**epoch
        losses.append(level * (1.2 if epoch % 6 == 5 else 1.0))
        val.append(43 + abs(epoch - 8) * 0.2)
    found = diagnose({"loss": losses, "val_loss": val}, 48.0, "min")
    assert found.kind == OVER_FITTING, found.line


def test_a_val_loss_that_ended_far_above_its_best_while_train_fell_over_fits():
    # the suite's overfit_diabetes baseline, every 10th epoch, and a last epoch whose val loss
    # happened to dip: the last two epochs alone say the curve is falling, its shape does not
    history = {
        "loss": [11112, 2599, 2357, 2095, 1753, 2583, 1234, 1672, 1157, 949, 990],
        "val_loss": [6176, 2861, 3026, 3223, 4040, 3559, 5085, 5149, 4867, 5782, 5300],
    }
    found = diagnose(history, 48.0, "min")
    assert found.kind == OVER_FITTING and "best at epoch 2 of 11" in found.line
    still_falling = {"loss": [9.0, 5.0, 4.0, 3.5], "val_loss": [9.5, 6.0, 4.6, 4.4]}
    assert diagnose(still_falling, 48.0, "min").kind != OVER_FITTING


def test_over_fitting_names_the_epoch_its_validation_curve_was_best_at():
    history = {
        "loss": [11112, 2599, 2357, 2095, 1753, 2583, 1234, 1672, 1157, 949, 990],
        "val_loss": [6176, 2861, 3026, 3223, 4040, 3559, 5085, 5149, 4867, 5782, 5300],
    }
    assert diagnose(history, 48.0, "min").best_epoch == 2
    # an accuracy's own validation curve decides, the earliest of equal bests
    found = diagnose({**OVERFIT, "val_accuracy": [0.80, 0.93, 0.93, 0.90]}, 0.97, "max")
    assert found.kind == OVER_FITTING and found.best_epoch == 2
    # a warm start's curve began where its parent ended: its epochs are not the script's
    assert diagnose(history, 48.0, "min", warm=True).best_epoch is None


def test_best_epoch_is_none_when_the_last_epoch_was_best_or_there_is_no_validation():
    assert best_epoch({"val_loss": [3.0, 2.0, 1.0]}) is None
    assert best_epoch({"loss": [3.0, 2.0, 1.0]}) is None
    assert best_epoch({"val_accuracy": [0.5, 0.9, 0.7]}) == 2


def test_an_under_trained_model_puts_regularisation_last():
    found = diagnose(WIDE_CNN_2_EPOCHS, 0.97, "max")
    assert order(["fewer_epochs", "add_dropout", "more_epochs", "more_filters"], found) == [
        "more_epochs",
        "more_filters",
        "fewer_epochs",
        "add_dropout",
    ]


def test_a_loss_far_above_its_target_that_hardly_falls_learns_slowly():
    # the suite's regression_mae baseline: MSE 28967 -> 25678 in 20 epochs (0.6% an epoch),
    # the validation loss still falling, the test MAE 143 for a target of 48: Adam at 0.01 on
    # targets in the hundreds; a faster learner reaches 46 at the same cost, 8x the epochs 47
    loss = [28967 * 0.9937**epoch for epoch in range(20)]
    history = {"loss": loss, "val_loss": [v * 1.04 for v in loss]}
    found = diagnose(history, 48.0, "min", value=143.0)
    assert found.kind == LEARNING_SLOWLY, found.line
    assert found.line.startswith("learning slowly: 143 is far above the target 48")
    assert diagnose(history, 48.0, "min", value=55.0).kind == UNDER_TRAINED  # near: epochs
    assert diagnose(history, 48.0, "min").kind == UNDER_TRAINED  # no value: cannot tell
    assert diagnose(history, 48.0, "min", value=143.0, warm=True).kind == UNDER_TRAINED
