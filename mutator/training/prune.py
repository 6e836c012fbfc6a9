"""Pruning: stop a trial whose validation curve plainly trails the best trial's at the same epoch.

Hyperband's good half. A candidate that, after a grace period, is worse than the best trial was
after as many epochs, by more than a margin, will not be accepted: training it to its last epoch
only costs time. The search writes `prune.json` in the trial dir (the best's curve of the
metric it watches); the harness adds a callback to the script's first fit that compares each
epoch and sets `stop_training`. The script then goes on (its evaluation still runs), and
metrics.json records `pruned` with the epoch and both values: the search reverts such a trial,
whatever its final number.

Epochs are counted as trained in this trial (the k-th epoch against the best's k-th), so a child
started from its parent's weights is compared with where the best got to, not with its own
from-scratch beginnings. Nor is it held to more than the best's last epoch: where the best's
curve peaked and fell back (it over-fitted), the bar is where it ended. A trial that trains longer than the best did is compared at the same
share of its own schedule: a joint change that adds a layer and epochs 2 -> 16 starts slower
than the 2-epoch best (val 0.19 against 0.35 after 2 epochs) and has 14 epochs to go, so its
2nd epoch is held to the best's 1st (one eighth of the way), its 16th to the best's 2nd.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mutator.training.trialio import write_json_atomically

PRUNE_FILE = "prune.json"


@dataclass(frozen=True)
class PrunePlan:
    key: str  # the history key watched, e.g. val_accuracy
    mode: str  # max | min
    reference: tuple[float, ...]  # the best trial's value after each epoch it trained
    margin: float = 0.05
    grace: int = 2  # epochs trained before a trial may be stopped
    reference_trial: int | None = None
    # A loss has no common scale (cross-entropy 0.3, a regression's MSE 3000): its margin is a
    # share of the reference's value, an accuracy's a difference.
    relative: bool = False

    def write(self, trial_dir: Path) -> None:
        write_json_atomically(trial_dir / PRUNE_FILE, asdict(self))

    @classmethod
    def read(cls, trial_dir: Path) -> PrunePlan | None:
        try:
            data = json.loads((trial_dir / PRUNE_FILE).read_text(encoding="utf-8"))
            data["reference"] = tuple(data["reference"])
            return cls(**data)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def verdict(
        self, trained: int, value: float | None, planned: int | None = None
    ) -> dict[str, Any] | None:
        """{"epoch", "value", "reference"} when the trial should stop after `trained` of its
        `planned` epochs (None: not known, compared epoch for epoch)."""
        if trained < self.grace or not self.reference or value is None or math.isnan(value):
            return None
        epochs = len(self.reference)
        if planned is not None and planned > epochs:
            index = math.ceil(trained * epochs / planned)  # the same share of its schedule
        else:
            index = min(trained, epochs)
        # never held to more than the best kept: a best that over-fitted was better at its
        # 8th epoch (val MSE 2814) than at its last (5651), and what counts is the last
        reference = self.reference[index - 1]
        last = self.reference[-1]
        reference = min(reference, last) if self.mode == "max" else max(reference, last)
        behind = reference - value if self.mode == "max" else value - reference
        if behind <= (self.margin * abs(reference) if self.relative else self.margin):
            return None
        return {"epoch": trained, "value": value, "reference": reference}


def watched_key(history: dict[str, list[float | None]]) -> tuple[str, str] | None:
    """The curve to compare by, and its direction: validation accuracy, else validation loss."""
    for key, mode in (("val_accuracy", "max"), ("val_acc", "max"), ("val_loss", "min")):
        if any(v is not None for v in history.get(key, [])):
            return key, mode
    return None


def callback_class(keras: Any) -> type:
    class PruneCallback(keras.callbacks.Callback):
        """Stops the fit once the plan says the trial trails the best; remembers why."""

        def __init__(self, plan: PrunePlan) -> None:
            super().__init__()
            self.plan = plan
            self.trained = 0
            self.first_epoch: int | None = None  # initial_epoch, or where a resumed fit went on
            self.pruned: dict[str, Any] | None = None

        def on_epoch_begin(self, epoch, logs=None):
            if self.first_epoch is None:
                self.first_epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            self.trained += 1
            value = (logs or {}).get(self.plan.key)
            total = (self.params or {}).get("epochs")
            planned = None
            if isinstance(total, int) and self.first_epoch is not None:
                planned = total - self.first_epoch  # the epochs this fit trains
            verdict = self.plan.verdict(
                self.trained, None if value is None else float(value), planned
            )
            if verdict is not None and self.pruned is None:
                self.pruned = verdict
                self.model.stop_training = True
                print(
                    f"mutator: pruned after {self.trained} epoch(s): {self.plan.key} "
                    f"{verdict['value']:.4f} trails the best's {verdict['reference']:.4f}",
                    flush=True,
                )

    return PruneCallback
