"""Stop the script as given once its validation loss has plainly passed its lowest point.

A script that over-fits spends most of its epochs getting worse: three Dense(512) layers on
diabetes reach their lowest validation loss at epoch 8 of 100, and the 92 epochs after it cost
24 s of a search whose first change (epochs 100 -> 8) needs 3. The baseline and its noise run
are the only trials that train a script nobody has judged yet, and for them every epoch past
the peak is paid before the search can start. The search writes `peak.json` in their trial
dirs (`PeakStop`); the harness adds a callback to the first fit that sets `stop_training`
once the curve says so (`PeakStop.verdict`), and metrics.json records `past_peak`: the epoch
it stopped at, of how many, and where the curve was best.

The script then goes on (its evaluation runs): the value is that of the script trained for
fewer epochs than it asks, not of the script as written, so the search takes it as an
estimate (`SearchState.best_estimate` "stopped"): the best is retrained to its end before the
target is called reached, and its children start from scratch. Candidates are never stopped
this way: what a change is worth is judged on its whole schedule (the pruner stops the
hopeless ones against the best's curve).

The verdict is deliberately late, like Keras's own `EarlyStopping` with a patience as long as
the climb to the peak: at least `min_epochs` trained, the lowest validation loss at epoch `b`,
at least `max(min_patience, b)` epochs since then, the last loss `rise` above the lowest, and
as many epochs still to train as were trained (a stop that saves little is not worth a
script's value that is not its own). A fit that also reports a validation accuracy must
not have bettered it for as long (a classifier's loss turns up as it grows over-confident,
while its accuracy, which the search reads, may still climb). A curve that is still falling,
or wobbling on a plateau, is never stopped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mutator.training.trialio import write_json_atomically

PEAK_FILE = "peak.json"
WATCHED = "val_loss"  # the loss, not an accuracy: it turns when the model over-fits
ACCURACY = ("val_accuracy", "val_acc")  # when the fit reports one, it must have stalled too


@dataclass(frozen=True)
class PeakStop:
    """When a fit may be stopped past its validation loss's lowest point (see the module)."""

    min_epochs: int = 10
    min_patience: int = 5
    rise: float = 0.10  # the last loss at least this share above the lowest

    def write(self, trial_dir: Path) -> None:
        write_json_atomically(trial_dir / PEAK_FILE, asdict(self))

    @classmethod
    def read(cls, trial_dir: Path) -> PeakStop | None:
        try:
            return cls(**json.loads((trial_dir / PEAK_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def verdict(
        self,
        curve: Sequence[float | None],
        planned: int | None,
        accuracy: Sequence[float | None] = (),
    ) -> dict[str, Any] | None:
        """{"epoch", "planned", "best_epoch", "value", "best", "key"} when a fit whose
        validation loss went `curve` (one value per epoch trained) over `planned` epochs
        should stop now; None to go on. With a validation `accuracy` curve, it must have
        stalled as long too: a classifier's loss rises as it grows over-confident while its
        accuracy may still climb, and what the search reads is the accuracy."""
        trained = len(curve)
        if planned is None or trained < self.min_epochs or planned - trained < trained:
            return None
        if curve[-1] is None or not math.isfinite(curve[-1]):
            return None
        found = _stalled(curve, -1, self.min_patience)
        if found is None:
            return None
        lowest, best_epoch = found
        if lowest <= 0 or curve[-1] < lowest * (1 + self.rise):
            return None
        climbing = _stalled(accuracy, 1, self.min_patience) is None
        if any(v is not None for v in accuracy) and climbing:
            return None
        return {
            "key": WATCHED,
            "epoch": trained,
            "planned": planned,
            "best_epoch": best_epoch,
            "value": float(curve[-1]),
            "best": float(lowest),
        }


def _stalled(curve: Sequence[float | None], sign: int, patience: int) -> tuple[float, int] | None:
    """(the curve's best value, its epoch from 1) when it came at least `max(patience, that
    epoch)` epochs ago (the first of equal values: a tie is no improvement); else None.
    `sign` is 1 where higher is better, -1 where lower is."""
    known = [(sign * v, -i) for i, v in enumerate(curve) if v is not None and math.isfinite(v)]
    if not known:
        return None
    best, index = max(known)
    epoch = -index + 1
    if len(curve) - epoch < max(patience, epoch):
        return None
    return sign * best, epoch


def where(stopped: dict[str, Any]) -> str:
    """`stopped at epoch 25 of 100`: the summary's and the report's words for a stop."""
    return f"stopped at epoch {stopped['epoch']} of {stopped['planned']}"


def line(stopped: dict[str, Any]) -> str:
    """How a stop reads in the trial's log and the search's progress."""
    return (
        f"{where(stopped)}: {stopped['key']} {stopped['value']:.4g}, "
        f"up from {stopped['best']:.4g} at epoch {stopped['best_epoch']}"
    )


def callback_class(keras: Any) -> type:
    class PeakCallback(keras.callbacks.Callback):
        """Stops the fit once its validation loss has passed its peak (`PeakStop.verdict`)."""

        def __init__(self, plan: PeakStop) -> None:
            super().__init__()
            self.plan = plan
            self.curve: list[float | None] = []
            self.accuracy: list[float | None] = []
            self.planned: int | None = None
            self.stopped: dict[str, Any] | None = None

        def on_epoch_begin(self, epoch, logs=None):
            if self.planned is None:
                total = (self.params or {}).get("epochs")
                self.planned = total - epoch if isinstance(total, int) else None

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            value = logs.get(WATCHED)
            self.curve.append(None if value is None else float(value))
            accuracy = next((logs[k] for k in ACCURACY if logs.get(k) is not None), None)
            self.accuracy.append(None if accuracy is None else float(accuracy))
            if self.stopped is not None:
                return
            verdict = self.plan.verdict(self.curve, self.planned, self.accuracy)
            if verdict is not None:
                self.stopped = verdict
                self.model.stop_training = True
                print(f"mutator: {line(verdict)}", flush=True)

    return PeakCallback
