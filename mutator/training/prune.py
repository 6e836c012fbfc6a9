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

An accuracy on a small validation set moves by more than the test metric's noise band: 120
examples at 0.76 move by 0.04 from model to model on sampling alone, and a Conv block whose
curve dipped to 0.68 against the best's 0.76 after 5 of 12 epochs was pruned on that (test
noise band 0.073). So where the search asks for it (`sampling_multiple`) and the harness
counted the validation examples, an accuracy's margin is at least that many standard
deviations of the difference of two models' accuracies over those examples.
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
    # An accuracy's margin is at least this many sds of sampling's spread of the difference of
    # two models over the validation examples (`margin_at`); None: the margin alone.
    sampling_multiple: float | None = None

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

    def margin_at(self, reference: float, examples: int | None) -> float:
        """How far a trial may trail `reference`: the margin (of the reference's value, for a
        loss), and for an accuracy over `examples` validation examples, at least
        `sampling_multiple` x sqrt(2 p (1 - p) / examples) at p = the reference."""
        if self.relative:
            return self.margin * abs(reference)
        if self.sampling_multiple is None or not examples or not 0.0 <= reference <= 1.0:
            return self.margin
        p = min(max(reference, 0.02), 0.98)
        sampling = self.sampling_multiple * math.sqrt(2 * p * (1 - p) / examples)
        return max(self.margin, sampling)

    def verdict(
        self,
        trained: int,
        value: float | None,
        planned: int | None = None,
        examples: int | None = None,
    ) -> dict[str, Any] | None:
        """{"epoch", "value", "reference", "margin"} when the trial should stop after `trained`
        of its `planned` epochs (None: not known, compared epoch for epoch), its curve measured
        on `examples` validation examples (None: not counted)."""
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
        margin = self.margin_at(reference, examples)
        if behind <= margin:
            return None
        return {"epoch": trained, "value": value, "reference": reference, "margin": margin}


def watched_key(history: dict[str, list[float | None]]) -> tuple[str, str] | None:
    """The curve to compare by, and its direction: validation accuracy, else validation loss."""
    for key, mode in (("val_accuracy", "max"), ("val_acc", "max"), ("val_loss", "min")):
        if any(v is not None for v in history.get(key, [])):
            return key, mode
    return None


def callback_class(keras: Any) -> type:
    class PruneCallback(keras.callbacks.Callback):
        """Stops the fit once the plan says the trial trails the best; remembers why."""

        def __init__(self, plan: PrunePlan, examples: int | None = None) -> None:
            super().__init__()
            self.plan, self.examples = plan, examples  # validation examples, when counted
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
                self.trained, None if value is None else float(value), planned, self.examples
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
