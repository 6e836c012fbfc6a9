"""A trial's budget on its model's size and pace: a candidate over it stops before it costs more.

The search writes `budget.json` in the trial dir (`TrialBudget`, as `prune.json` is written), so
it travels with the trial under every runner; the harness reads it and adds a callback to every
fit. What is measured, and when a candidate is stopped:

- **Size**: the model's `count_params()` when its fit starts (`on_train_begin`). A Sequential
  or functional model is built by then; a subclassed one (or a Sequential without an input
  shape) is built by its first batch, so it is counted after that one batch. Over
  `max_params`, the fit raises `OverBudgetError` there: no epoch is trained.
- **Pace**: the seconds of an epoch (charged as below). The first epoch a process trains
  includes tracing the graph (a second or more that no later epoch pays), so it is never the
  evidence on its own. Two readings stop a fit, whichever comes first:
  * in the first epoch, once `PACE_WARMUP` batches are past (they trace and warm up) and
    `PACE_BATCHES` more are timed: the median batch time x the batches of an epoch. It leaves
    out validation and the epoch's own overhead, so it errs low: a fit stopped on it is over
    the limit by that much more. Only where an epoch has at least `PACE_MIN_STEPS` batches
    (it is known; fewer, and the epoch ends soon anyway, with the exact figure);
  * from the second epoch on: the median of its timed epochs, the first left out.
  Either over `max_epoch_seconds`, the fit raises `OverBudgetError` at that batch or epoch.
  Each time is charged as its wall seconds or the process's CPU seconds, whichever is less
  (`charged`): other work on the machine (other trials, other users) stretches the wall time
  of an epoch, not the CPU time it takes, and a model is not to be refused for the load.
  A fit that ends before either reading (one epoch, a few batches) is judged once the script
  is done, by the trial's own figure (`seconds_per_epoch`, the first epoch included when it
  is the only one).

- **A guess's cost** (`max_fit_seconds`, set by the search, never by a flag): the pace read
  as above times the epochs the fit is to train, at the same moments. The climb holds each
  candidate to what the search has spent so far (`search.starts.guess_budget`): a change whose
  trial would cost more than all the evidence behind it is stopped at its first reading
  (a second Conv block of 512 filters after one of 512, 11.8 s an epoch for 24 epochs, after
  95 s of search: stopped in its first epoch, where it once ran 132 s before the pruner
  stopped it). A fit that ran to its end is never refused for it: its cost is paid.

Either way the trial's status is "over_budget": its `over_budget` record says what was
measured and the limit, its `error` is one line a user can act on. A script that catches the
exception gets nothing from going on: the breach is remembered, every later fit stops at its
start, and the status stays "over_budget".
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mutator.training.trialio import write_json_atomically

BUDGET_FILE = "budget.json"
PACE_WARMUP = 2  # batches left out of the estimate: the first traces the graph
PACE_BATCHES = 8  # batches timed after them
PACE_MIN_STEPS = 2 * (PACE_WARMUP + PACE_BATCHES)  # an estimate must save half an epoch
PARAMETERS, SECONDS_PER_EPOCH, FIT_SECONDS = "parameters", "seconds_per_epoch", "fit_seconds"


@dataclass(frozen=True)
class Breach:
    """What was over the budget: the measure, its value, the limit, and how it was known."""

    measure: str  # parameters | seconds_per_epoch | fit_seconds
    value: float
    limit: float
    how: str  # e.g. "at the start of fit 1", "estimated from batches 3-10 of 40 in epoch 1"

    def error(self) -> str:
        """One line a user can act on, e.g.
        `over budget: 1,234,567 parameters > --max-params 100,000`."""
        if self.measure == PARAMETERS:
            return f"over budget: {int(self.value):,} parameters > --max-params {int(self.limit):,}"
        if self.measure == FIT_SECONDS:
            return (
                f"too dear for a guess: {self.value:.4g} s to train ({self.how}) > the "
                f"{self.limit:.4g} s the search has spent so far"
            )
        return (
            f"over budget: {self.value:.4g} s per epoch > --max-epoch-seconds "
            f"{self.limit:g} ({self.how})"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class OverBudgetError(Exception):
    """Raised from a fit's callback to stop a trial over its budget; the harness knows it."""

    def __init__(self, breach: Breach) -> None:
        super().__init__(breach.error())
        self.breach = breach


@dataclass(frozen=True)
class TrialBudget:
    """The limits a candidate's model is held to (None: no limit on that measure)."""

    max_params: int | None = None
    max_epoch_seconds: float | None = None
    max_fit_seconds: float | None = None  # a guess's allowance: its pace x its epochs

    @property
    def times_epochs(self) -> bool:
        """Whether the fit's pace must be read while it trains."""
        return self.max_epoch_seconds is not None or self.max_fit_seconds is not None

    def write(self, trial_dir: Path) -> None:
        write_json_atomically(trial_dir / BUDGET_FILE, asdict(self))

    @classmethod
    def read(cls, trial_dir: Path) -> TrialBudget | None:
        try:
            data = json.loads((trial_dir / BUDGET_FILE).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def over_params(self, parameters: int | None, how: str) -> Breach | None:
        if self.max_params is None or parameters is None or parameters <= self.max_params:
            return None
        return Breach(PARAMETERS, parameters, self.max_params, how)

    def over_pace(self, seconds: float | None, how: str) -> Breach | None:
        limit = self.max_epoch_seconds
        if limit is None or seconds is None or seconds <= limit:
            return None
        return Breach(SECONDS_PER_EPOCH, round(seconds, 4), limit, how)

    def over_cost(self, seconds: float | None, epochs: int | None, how: str) -> Breach | None:
        """A fit whose pace (`seconds` an epoch) over its `epochs` costs more than a guess may."""
        limit = self.max_fit_seconds
        if limit is None or seconds is None or not epochs or seconds * epochs <= limit:
            return None
        how = f"{seconds:.3g} s an epoch x {epochs} epochs, {how}"
        return Breach(FIT_SECONDS, round(seconds * epochs, 3), limit, how)


def clocks() -> tuple[float, float]:
    """Now, by the wall and by the process's CPU time (all its threads)."""
    return time.perf_counter(), time.process_time()


def charged(wall: float, cpu: float | None) -> float:
    """The seconds a budget charges for a stretch of training: its wall time, or its CPU time
    when less (a loaded machine stretches the one, not the other)."""
    return wall if cpu is None else min(wall, cpu)


def seconds_per_epoch(epoch_seconds: Sequence[Sequence[float]]) -> float | None:
    """A trial's pace from each fit's timed epochs: the median over the fit that trained most
    epochs (the later one on a tie), its first epoch (graph tracing) left out when there are
    two or more; None when no epoch trained."""
    timed = max(reversed(list(epoch_seconds)), key=len, default=[])
    if not timed:
        return None
    return round(statistics.median(timed[1:] if len(timed) > 1 else timed), 4)


class PaceEstimate:
    """The first epoch's pace from its batch times (no Keras): see the module's docstring.

    Keras calls a batch's end once per execution (`steps_per_execution` batches), naming the
    last batch it ran: each interval is shared by the batches it covered."""

    def __init__(self, steps: int | None, epoch: int) -> None:
        self.steps, self.epoch = steps, epoch
        self._last: tuple[int, float, float] | None = None
        self._per_batch: list[float] = []
        self._calls = 0
        self._first_timed: int | None = None

    def batch_ended(
        self, batch: int, wall: float, cpu: float | None = None
    ) -> tuple[float, str] | None:
        """(estimated seconds per epoch, how) once enough batches are timed, else None; `wall`
        and `cpu` are the clocks when `batch` ended (`clocks`)."""
        if self.steps is None or self.steps < PACE_MIN_STEPS:
            return None
        self._calls += 1
        last, self._last = self._last, (batch, wall, wall if cpu is None else cpu)
        if self._calls <= PACE_WARMUP or last is None or batch <= last[0]:
            return None
        if self._first_timed is None:
            self._first_timed = last[0] + 1
        spent = charged(wall - last[1], None if cpu is None else cpu - last[2])
        self._per_batch.append(spent / (batch - last[0]))
        if len(self._per_batch) < PACE_BATCHES:
            return None
        self.steps, steps = None, self.steps  # said once
        how = (
            f"estimated from batches {self._first_timed + 1}-{batch + 1} of {steps} "
            f"in epoch {self.epoch + 1}"
        )
        return statistics.median(self._per_batch) * steps, how


class BudgetWatch:
    """One trial's budget and its first breach, shared by the callbacks of all its fits."""

    def __init__(self, budget: TrialBudget) -> None:
        self.budget = budget
        self.breach: Breach | None = None

    def stop_if(self, breach: Breach | None) -> None:
        if breach is not None:
            self.breach = self.breach or breach
            raise OverBudgetError(self.breach)

    def final(
        self, parameters: int | None, epoch_seconds: Sequence[Sequence[float]]
    ) -> Breach | None:
        """The verdict on a trial that ran to its end without a breach, by its own figures:
        `parameters` of the last fit's model, and the pace of each fit's charged epochs."""
        if self.breach is None:
            epochs = max((len(timed) for timed in epoch_seconds), default=0)
            how = f"the trial's pace over {epochs} epoch(s)" + (
                ", the first included" if epochs == 1 else ", the first left out"
            )
            self.breach = self.budget.over_params(
                parameters, "counted once the script ended"
            ) or self.budget.over_pace(seconds_per_epoch(epoch_seconds), how)
        return self.breach


def count_parameters(model: Any) -> int | None:
    """`model.count_params()`, or None for a model that is not built (or cannot say)."""
    if not getattr(model, "built", False):
        return None
    try:
        return int(model.count_params())
    except Exception:  # noqa: BLE001 - an odd model is not a failed trial
        return None


def callback_class(keras: Any) -> type:
    class BudgetCallback(keras.callbacks.Callback):
        """Counts the fit's model and times its batches; raises `OverBudgetError` over budget.

        `record` is the fit's FitRecord: its `parameters` is set here, and its
        `charged_seconds` (the harness's recorder, which runs first, times each epoch) read.
        """

        def __init__(self, watch: BudgetWatch, record: Any) -> None:
            super().__init__()
            self.watch, self.record = watch, record
            self.epochs_trained = 0
            self.estimate: PaceEstimate | None = None
            self.uncounted = True  # not built at the start: counted after its first batch
            self.fit_epochs: int | None = None  # the epochs this fit is to train

        def on_train_begin(self, logs=None):
            if self.watch.breach is not None:  # the script caught the first one and went on
                raise OverBudgetError(self.watch.breach)
            self._count(f"at the start of fit {self.record.fit}")
            self.uncounted = self.record.parameters is None

        def on_epoch_begin(self, epoch, logs=None):
            if self.epochs_trained == 0:
                total = (self.params or {}).get("epochs")
                self.fit_epochs = total - epoch if isinstance(total, int) else None
                if self.watch.budget.times_epochs:
                    self.estimate = PaceEstimate((self.params or {}).get("steps"), epoch)

        def on_train_batch_end(self, batch, logs=None):
            now = clocks()
            if self.uncounted:
                self.uncounted = False
                self._count(f"after the first batch of fit {self.record.fit}")
            found = self.estimate.batch_ended(batch, *now) if self.estimate is not None else None
            if found is not None:
                self.estimate = None
                self._judge_pace(*found)

        def on_epoch_end(self, epoch, logs=None):
            self.epochs_trained += 1
            self.estimate = None
            timed = list(self.record.charged_seconds)[1:]  # the first traced the graph
            if timed:
                how = f"median of {len(timed)} epoch(s) after the first, fit {self.record.fit}"
                self._judge_pace(statistics.median(timed), how)

        def _judge_pace(self, pace: float, how: str) -> None:
            budget = self.watch.budget
            breach = budget.over_pace(pace, how)
            self.watch.stop_if(breach or budget.over_cost(pace, self.fit_epochs, how))

        def _count(self, how: str) -> None:
            self.record.parameters = count_parameters(self.model)
            self.watch.stop_if(self.watch.budget.over_params(self.record.parameters, how))

    return BudgetCallback
