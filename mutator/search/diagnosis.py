"""Reading the best trial's learning curves: which road the next change should take.

One signal ("was the curve still rising?") is not enough: a 2-epoch model is always still rising,
so a climb led by it doubles epochs on a model too small to learn the task (BENCHMARKS.md).
The conditions, checked in this order, each name the roads they call for; every rule declares
its road (`rules._rule`), so a new rule joins the diagnosis by its declaration alone:

- diverging: the training loss went NaN, ended above where it began, or jumps up and down by
  more than `JUMPY` of its level; or, far below the target, it blew up in its first epoch or
  goes up as often as down once stalled: the steps are too big, so the "steadier" road first
  (a lower learning rate, a larger batch);
- over-fitting: training accuracy is high while validation trails it by a clear gap
  (train 0.99, val 0.90): the regularising road first (`fewer_epochs`, to the epoch the
  validation curve was best at, and `add_dropout`), then training length, capacity last.
  Not while the validation loss still falls clearly (by `SLOW` of itself in the last epoch,
  to its lowest): that gap is a model still learning, under-trained;
- learning slowly: training accuracy far below the target (for a loss metric: the best's
  value more than `FAR_ABOVE` above it) and a training loss that hardly falls (less than `SLOW`
  of itself per epoch). Too little capacity and too small a learning
  rate both look like this (a 4-filter CNN at 0.82 after many epochs; plain SGD at 1e-4 near
  chance), so the first rule of the "faster" road (a higher learning rate, a smaller batch)
  and the first capacity rule go first, side by side in one round, and the measured gains
  decide;
- under-fitting: training accuracy is far below the target: the model cannot even fit the data
  it sees, so capacity first (filters, width, kernel, depth), epochs after. While its curve is
  still rising, the model has not had the epochs to show what it can fit either (2 epochs of
  cnn_digits.py: train 0.27, val 0.32 and climbing): one capacity rule and more epochs come
  first, then the other capacity rules (and the search tries the first two as one joint change
  too: `mutator.engine.joint`);
- under-trained: the validation curve (the training curve, for a script without validation
  data) was still rising at the last epoch: epochs first.

With none of these, the configured order stands. The "steadier" road goes last unless the
loss diverges: a smaller step helps a model that learns badly, not one that learns slowly. A
metric that is not an accuracy (a loss) is read from the loss curves only: rising validation
loss under falling training loss is over-fitting, falling validation loss is under-training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

UNDER_FITTING, STILL_LEARNING, LEARNING_SLOWLY, UNDER_TRAINED, OVER_FITTING, DIVERGING, NONE = (
    "under-fitting",
    "under-fitting, still learning",
    "learning slowly",
    "under-trained",
    "over-fitting",
    "diverging",
    "none",
)
CAPACITY, TRAINING, REGULARISATION, FASTER, STEADIER = (
    "capacity",
    "training",
    "regularisation",
    "faster",
    "steadier",
)

FAR_BELOW = 0.10  # train accuracy this far below the target: the model under-fits
FAR_ABOVE = 0.25  # a loss this share of its target above it is as far from it
GAP = 0.05  # train above validation by this much, with train high: the model over-fits
HIGH = 0.95  # what "train high" means, when there is no target
SLOW = 0.02  # a training loss that falls less than this share of itself per epoch hardly falls
JUMPY = 0.10  # a training loss that rises by this share of itself, more than once, oscillates
TURNED_UP = 0.20  # a validation loss that ended this share above its best epoch's over-fits
JUMPY_SHARE = 0.25  # ... on at least this share of its epochs (twice in a short curve)
BLOWN_UP = 20.0  # a first epoch's loss this many times where it settled: the steps blew up
WOBBLE = 0.01  # a later epoch's loss above the one before by this share counts as going up


@dataclass(frozen=True)
class Diagnosis:
    kind: str  # one of the conditions above
    line: str  # one line for the ledger, `mutate history` and the report
    # Over-fitting: the epoch (from 1) where the validation curve was best, when it was before
    # the last: where `fewer_epochs` stops (its `to_epochs`, filled by `steps.from_curve`).
    best_epoch: int | None = None

    def first(self, roads: Mapping[str, str]) -> tuple[str, ...]:
        """The rules this diagnosis puts first, in the order they go.

        `roads` maps each rule that has something to propose, in the configured order, to the
        road it declares: "still learning" puts epochs after the first capacity rule that can
        change this model (an MLP has no filters to widen).
        """
        by_road = _by_road(roads)
        capacity, training = by_road[CAPACITY], by_road[TRAINING]
        if self.kind == STILL_LEARNING:
            return (*capacity[:1], *training, *capacity[1:])
        if self.kind == LEARNING_SLOWLY:
            faster = by_road[FASTER]
            return (*faster[:1], *capacity[:1], *faster[1:], *capacity[1:], *training)
        return {
            UNDER_FITTING: capacity,
            UNDER_TRAINED: training,
            OVER_FITTING: by_road[REGULARISATION] + training,
            DIVERGING: by_road[STEADIER],
        }.get(self.kind, ())

    def last(self, roads: Mapping[str, str]) -> tuple[str, ...]:
        """The rules this diagnosis puts after every other."""
        by_road = _by_road(roads)
        if self.kind == OVER_FITTING:
            return by_road[CAPACITY] + by_road[FASTER]
        if self.kind in (UNDER_FITTING, STILL_LEARNING, LEARNING_SLOWLY):
            return by_road[REGULARISATION] + by_road[STEADIER]
        if self.kind == UNDER_TRAINED:
            return by_road[REGULARISATION] + by_road[STEADIER]
        return ()


def _by_road(roads: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {
        road: () for road in (CAPACITY, TRAINING, REGULARISATION, FASTER, STEADIER)
    }
    for name, road in roads.items():
        found[road] = (*found.get(road, ()), name)
    return found


def diagnose(
    history: dict[str, list[float | None]],
    target: float | None,
    mode: str,
    margin: float = 0.001,
    warm: bool = False,
    value: float | None = None,
) -> Diagnosis:
    """The best trial's condition, from its last fit's epoch logs (Keras history keys).

    `warm`: the history is a warm start's, which began where its parent ended; its loss has
    little left to lose, so how slowly it fell says nothing of the learning rate. `value`: the
    best's own metric, which tells how far a loss is from its target (a loss has no training
    accuracy to tell it).
    """
    train = _last(history, "accuracy", "acc")
    far_below = (
        train is not None and target is not None and mode == "max" and train < target - FAR_BELOW
    )
    if (diverging := _diverging(history.get("loss") or [], far_below)) is not None:
        return Diagnosis(DIVERGING, f"diverging: {diverging}: a smaller step")
    val = _last(history, "val_accuracy", "val_acc")
    if train is not None:
        ceiling = target if target is not None and mode == "max" else HIGH
        if val is not None and train - val >= GAP and train >= min(ceiling, HIGH) - GAP:
            if (fell := _val_loss_still_falling(history)) is None:
                line = f"over-fitting: train {train:.2f}, val {val:.2f}"
                return _over_fitting(line, history, warm)
            return Diagnosis(
                UNDER_TRAINED,
                f"under-trained: train {train:.2f}, val {val:.2f}, but the val loss still fell "
                f"{fell:.1%} in the last epoch, to its lowest",
            )
    rising = _rising(history, "val_accuracy", +1, margin) or _rising(history, "val_acc", +1, margin)
    curve = "val"
    if "val_accuracy" not in history and "val_acc" not in history:
        # No validation data: the training curve tells under-training as well.
        rising = _rising(history, "accuracy", +1, margin) or _rising(history, "acc", +1, margin)
        curve = "train"
    if far_below:
        line = f"under-fitting: train accuracy {train:.2f} is far below the target {target:g}"
        fall = None if warm else _fall_per_epoch(history)
        if fall is not None and fall < SLOW:
            return Diagnosis(
                LEARNING_SLOWLY,
                f"learning slowly: train accuracy {train:.2f}, far below the target {target:g}, "
                f"and the training loss falls {fall:.1%} an epoch: a faster learner beside "
                "more capacity",
            )
        if rising:
            return Diagnosis(STILL_LEARNING, f"{line}, {curve} still rising: capacity and epochs")
        return Diagnosis(UNDER_FITTING, line)
    if train is None:
        loss_rising = _rising(history, "val_loss", +1, margin)
        if loss_rising and _rising(history, "loss", -1, margin):
            line = "over-fitting: val loss rising while train loss falls"
            return _over_fitting(line, history, warm)
        if (turned := _turned_up(history)) is not None:
            return _over_fitting(f"over-fitting: {turned}", history, warm)
        fall = None if warm else _fall_per_epoch(history)
        if _far_above(value, target, mode) and fall is not None and fall < SLOW:
            return Diagnosis(
                LEARNING_SLOWLY,
                f"learning slowly: {value:.4g} is far above the target {target:g}, and the "
                f"training loss falls {fall:.1%} an epoch: a faster learner beside more capacity",
            )
        rising = rising or _rising(history, "val_loss", -1, margin)
        rising = rising or ("val_loss" not in history and _rising(history, "loss", -1, margin))
        curve = "val" if "val_loss" in history else "train"
    if rising:
        return Diagnosis(UNDER_TRAINED, f"under-trained: {curve} still rising at the last epoch")
    return Diagnosis(NONE, "no clear signal: the configured rule order")


def _over_fitting(line: str, history: dict[str, list[float | None]], warm: bool) -> Diagnosis:
    """An over-fitting diagnosis, with the epoch its validation curve was best at (not for a
    warm start's curve, whose epochs began where its parent ended)."""
    best = None if warm else best_epoch(history)
    return Diagnosis(OVER_FITTING, line, best)


def best_epoch(history: dict[str, list[float | None]]) -> int | None:
    """The epoch (from 1) where the validation accuracy was highest (else the validation loss
    lowest), when that was before the last epoch; None without a validation curve."""
    for key, sign in (("val_accuracy", 1), ("val_acc", 1), ("val_loss", -1)):
        curve = _curve(history, key)
        if len(curve) >= 2:
            best = max(range(len(curve)), key=lambda i: (sign * curve[i], -i))
            return best + 1 if best < len(curve) - 1 else None
    return None


def still_rising(history: dict[str, list[float | None]], mode: str, margin: float) -> bool:
    """True when the validation (else training) curve was still improving at the last epoch."""
    for key in ("val_accuracy", "val_acc", "accuracy", "acc", "val_loss", "loss"):
        if _curve(history, key):
            return _rising(history, key, -1 if key.endswith("loss") else 1, margin)
    return False


def order(names: list[str], diagnosis: Diagnosis, roads: Mapping[str, str]) -> list[str]:
    """The rule names, those the diagnosis calls for first, those it defers last (stable).

    `roads` maps every name to its rule's road (rules without one are left in place).
    """
    mine = {name: roads[name] for name in names if name in roads}
    first, last = diagnosis.first(mine), diagnosis.last(mine)

    def rank(name: str) -> tuple[int, int]:
        if name in first:
            return 0, first.index(name)
        return (2, 0) if name in last else (1, 0)

    return sorted(names, key=rank)


def _diverging(losses: Sequence[float | None], far_below: bool = False) -> str | None:
    """Why the training loss says the steps are too big, or None.

    A NaN or infinite loss; a last epoch above the first; or, over three epochs or more, a loss
    that rose by more than `JUMPY` of its level at least twice, and on at least `JUMPY_SHARE` of
    its epochs (noise near convergence moves a few percent, not tens; over 100 epochs of small
    batches a falling loss jumps now and then: 16 times, while it fell from 150 to 23). For a model far below its target (`far_below`), also: a first epoch
    that blew up (its loss `BLOWN_UP` times where the loss settled: Adam at 3.0 went 4840 ->
    0.7), or a loss that stalled and goes up as often as down in its later epochs, by more than
    `WOBBLE` of itself (steps that overshoot instead of descend).
    """
    if any(v is None or not math.isfinite(v) for v in losses):
        return "the training loss is NaN or infinite"
    if len(losses) < 2:
        return None
    values = [float(v) for v in losses if v is not None]
    if values[-1] > values[0] * (1 + JUMPY):
        return f"the training loss rose from {values[0]:.3g} to {values[-1]:.3g}"
    jumps = sum(1 for a, b in zip(values, values[1:], strict=False) if b > a * (1 + JUMPY))
    if len(values) >= 3 and jumps >= max(2, JUMPY_SHARE * (len(values) - 1)):
        return f"the training loss rose {jumps} times in {len(values)} epochs"
    if not far_below:
        return None
    settled = min(values)
    if settled > 0 and values[0] >= BLOWN_UP * settled and len(values) >= 3:
        return f"the training loss began at {values[0]:.3g}, {values[0] / settled:.0f}x where it settled"
    later = values[len(values) // 2 :]
    steps = list(zip(later, later[1:], strict=False))
    ups = sum(1 for a, b in steps if b > a * (1 + WOBBLE))
    if len(later) >= 4 and ups * 2 >= len(steps):
        return f"the training loss went up {ups} times in its last {len(steps)} epochs"
    return None


def _turned_up(history: dict[str, list[float | None]]) -> str | None:
    """Why the validation loss says the model over-fits, over a long noisy curve, or None.

    The last two epochs say little when the curve is noisy; its shape says more: the
    validation loss ended `TURNED_UP` above its best epoch's, while the training loss went on
    falling after that epoch (a regression's val MSE: best 2848 at epoch 7 of 100, 5782 at the
    end, the training loss 3048 -> 949).
    """
    val, train = _curve(history, "val_loss"), _curve(history, "loss")
    if len(val) < 4 or len(train) != len(val):
        return None
    best = min(range(len(val)), key=val.__getitem__)
    if val[best] <= 0 or best == len(val) - 1:
        return None
    if val[-1] > val[best] * (1 + TURNED_UP) and train[-1] < train[best]:
        return (
            f"val loss best at epoch {best + 1} of {len(val)} ({val[best]:.4g}), "
            f"{val[-1]:.4g} at the end, while train loss fell {train[best]:.4g} -> {train[-1]:.4g}"
        )
    return None


def _far_above(value: float | None, target: float | None, mode: str) -> bool:
    """A loss (lower is better) more than `FAR_ABOVE` of its target above it: as far from it
    as an accuracy `FAR_BELOW` under its own (a regression's MAE 143 for a target of 48)."""
    if mode != "min" or value is None or target is None or target <= 0:
        return False
    return value > target * (1 + FAR_ABOVE)


def _val_loss_still_falling(history: dict[str, list[float | None]]) -> float | None:
    """How much of itself the validation loss lost in the last epoch, when that made it the
    lowest of the fit and is at least `SLOW` (else None).

    A gap between training and validation accuracy is not yet over-fitting while the
    validation loss still falls clearly: the model still learns what generalises (a CNN with
    Dropout at train 0.96, val 0.91, its val loss 0.77 -> 0.72: twice the epochs gave 0.94),
    and regularising it only slows that down. Over-fitting is the gap once validation has
    stopped gaining."""
    val = _curve(history, "val_loss")
    if len(val) < 2 or val[-2] <= 0 or val[-1] > min(val):
        return None
    fell = 1 - val[-1] / val[-2]
    return fell if fell >= SLOW else None


def _fall_per_epoch(history: dict[str, list[float | None]]) -> float | None:
    """How much of itself the training loss lost per epoch, on average (None: cannot tell)."""
    losses = _curve(history, "loss")
    if len(losses) < 2 or losses[0] <= 0 or losses[-1] <= 0:
        return None
    return 1 - (losses[-1] / losses[0]) ** (1 / (len(losses) - 1))


def _curve(history: dict[str, list[float | None]], key: str) -> list[float]:
    return [v for v in history.get(key, []) if v is not None and not math.isnan(v)]


def _last(history: dict[str, list[float | None]], *keys: str) -> float | None:
    for key in keys:
        curve = _curve(history, key)
        if curve:
            return curve[-1]
    return None


def _rising(history: dict[str, list[float | None]], key: str, sign: int, margin: float) -> bool:
    curve = _curve(history, key)
    if not curve:
        return False
    if len(curve) == 1:
        return True  # one epoch says nothing of convergence: it is surely not converged
    return sign * (curve[-1] - curve[-2]) > margin
