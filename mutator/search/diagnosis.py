"""Reading the best trial's learning curves: which road the next change should take.

One signal ("was the curve still rising?") is not enough: a 2-epoch model is always still rising,
so a climb led by it doubles epochs on a model too small to learn the task (BENCHMARKS.md).
Three conditions, checked in this order, each naming the rules it calls for:

- over-fitting: training accuracy is high while validation trails it by a clear gap
  (train 0.99, val 0.90): a regularising rule first (`add_dropout`), then more data-efficient
  capacity, epochs last;
- under-fitting: training accuracy is far below the target: the model cannot even fit the data
  it sees, so capacity first (filters, kernel, depth, a hidden layer), epochs after. While its
  validation curve is still rising, the model has not had the epochs to show what it can fit
  either (2 epochs of cnn_digits.py: train 0.27, val 0.32 and climbing): one capacity rule and
  more epochs come first, then the other capacity rules (and the search tries the first two as
  one joint change too: `mutator.engine.joint`);
- under-trained: the validation curve was still rising at the last epoch: epochs first.

With none of these, the configured order stands. A metric that is not an accuracy (a loss) is
read from the loss curves only: rising validation loss under falling training loss is
over-fitting, falling validation loss is under-training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

UNDER_FITTING, STILL_LEARNING, UNDER_TRAINED, OVER_FITTING, NONE = (
    "under-fitting",
    "under-fitting, still learning",
    "under-trained",
    "over-fitting",
    "none",
)
CAPACITY = ("more_filters", "larger_kernel", "add_conv_block", "add_dense")
TRAINING = ("more_epochs",)
REGULARISING = ("add_dropout",)

FAR_BELOW = 0.10  # train accuracy this far below the target: the model under-fits
GAP = 0.05  # train above validation by this much, with train high: the model over-fits
HIGH = 0.95  # what "train high" means, when there is no target


@dataclass(frozen=True)
class Diagnosis:
    kind: str  # under-fitting | under-trained | over-fitting | none
    line: str  # one line for the ledger, `mutate history` and the report

    def first(self, names: Sequence[str] = CAPACITY) -> tuple[str, ...]:
        """The rules this diagnosis puts first, in the order they go, of those in `names`.

        `names` matters for "still learning": epochs go second after the first capacity rule
        that has something to propose (an MLP has no filters to widen).
        """
        if self.kind == STILL_LEARNING:
            capacity = [name for name in CAPACITY if name in names]
            return (*capacity[:1], *TRAINING, *capacity[1:])
        return {
            UNDER_FITTING: CAPACITY,
            UNDER_TRAINED: TRAINING,
            OVER_FITTING: REGULARISING + TRAINING,
        }.get(self.kind, ())

    def last(self) -> tuple[str, ...]:
        """The rules this diagnosis puts after every other."""
        under = (UNDER_FITTING, STILL_LEARNING)
        return REGULARISING if self.kind in under else CAPACITY if self.kind == OVER_FITTING else ()


def diagnose(
    history: dict[str, list[float | None]],
    target: float | None,
    mode: str,
    margin: float = 0.001,
) -> Diagnosis:
    """The best trial's condition, from its last fit's epoch logs (Keras history keys)."""
    train = _last(history, "accuracy", "acc")
    val = _last(history, "val_accuracy", "val_acc")
    if train is not None:
        ceiling = target if target is not None and mode == "max" else HIGH
        if val is not None and train - val >= GAP and train >= min(ceiling, HIGH) - GAP:
            return Diagnosis(OVER_FITTING, f"over-fitting: train {train:.2f}, val {val:.2f}")
    rising = _rising(history, "val_accuracy", +1, margin) or _rising(history, "val_acc", +1, margin)
    if train is not None and target is not None and mode == "max" and train < target - FAR_BELOW:
        line = f"under-fitting: train accuracy {train:.2f} is far below the target {target:g}"
        if rising:
            return Diagnosis(STILL_LEARNING, f"{line}, val still rising: capacity and epochs")
        return Diagnosis(UNDER_FITTING, line)
    if train is None:
        loss_rising = _rising(history, "val_loss", +1, margin)
        if loss_rising and _rising(history, "loss", -1, margin):
            return Diagnosis(OVER_FITTING, "over-fitting: val loss rising while train loss falls")
        rising = rising or _rising(history, "val_loss", -1, margin)
        rising = rising or ("val_loss" not in history and _rising(history, "loss", -1, margin))
    elif "val_accuracy" not in history and "val_acc" not in history:
        rising = _rising(history, "accuracy", +1, margin) or _rising(history, "acc", +1, margin)
    if rising:
        return Diagnosis(UNDER_TRAINED, "under-trained: val still rising at the last epoch")
    return Diagnosis(NONE, "no clear signal: the configured rule order")


def still_rising(history: dict[str, list[float | None]], mode: str, margin: float) -> bool:
    """True when the validation (else training) curve was still improving at the last epoch."""
    for key in ("val_accuracy", "val_acc", "accuracy", "acc", "val_loss", "loss"):
        if _curve(history, key):
            return _rising(history, key, -1 if key.endswith("loss") else 1, margin)
    return False


def order(names: list[str], diagnosis: Diagnosis) -> list[str]:
    """The rule names, those the diagnosis calls for first, those it defers last (stable)."""
    first, last = diagnosis.first(names), diagnosis.last()

    def rank(name: str) -> tuple[int, int]:
        if name in first:
            return 0, first.index(name)
        return (2, 0) if name in last else (1, 0)

    return sorted(names, key=rank)


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
