"""What `mutate slim` knows, and what it does next: pure, rebuilt from the ledger alone.

`SlimState` folds the ledger's records in one at a time (`absorb`), the same for a live run and
for a killed one resumed; `next_step` says what the next wave trains, from the state and the
candidates proposed on the smallest script so far. Neither trains, reads a file or imports Keras,
so every mechanism of slim has a unit test of its own (`tests/search/test_slim.py`).

Decisions a slim ledger holds:
    baseline  the script as given, trained from scratch: it must reach the target
    sized     a candidate's script run until its model was built, stopped before the first
              epoch: its parameters (`mutator.training.budget`, a budget of 0 parameters)
    missed    trained from scratch and short of the target, or not smaller after all: refused
    reached   trained from scratch at the target and smaller: its confirm comes next
    accepted  the confirm (the same script, every seed moved) reached the target too: the new
              smallest script
    refused   the confirm fell short: the first run was luck, the change is refused
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mutator.engine.candidate import Candidate
from mutator.search.ledger import TrialRecord
from mutator.search.pareto import training_seconds
from mutator.search.state import address_key, reached

BASELINE, SIZED, MISSED, REACHED, ACCEPTED, REFUSED = (
    "baseline",
    "sized",
    "missed",
    "reached",
    "accepted",
    "refused",
)


@dataclass(frozen=True)
class Size:
    """How big a script's model is and what one training of it costs: the order of "smaller"."""

    parameters: int
    seconds: float = 0.0  # training seconds (seconds per epoch x epochs), when trained

    def below(self, other: Size) -> bool:
        """Fewer parameters, or as many and less training (fewer epochs): smaller."""
        return (self.parameters, self.seconds) < (other.parameters, other.seconds)


def size_of(record: TrialRecord) -> Size | None:
    if record.parameters is None:
        return None
    return Size(int(record.parameters), training_seconds(record) or 0.0)


@dataclass
class SlimState:
    """The smallest script that reached the target so far, and what was learnt on it."""

    best_source: str
    mode: str = "max"
    best_id: int | None = None
    best_value: float | None = None
    best_size: Size | None = None
    # On the current best only (a new best starts them over: the same change on another model
    # is another model, filters 16 -> 8 missed beside a hidden Dense and reached without it):
    # the changes refused, each candidate's parameters, the candidates trained, and those that
    # reached the target, awaiting their confirm.
    refused: set[str] = field(default_factory=set)
    sizes: dict[str, int] = field(default_factory=dict)
    trained: set[str] = field(default_factory=set)
    waiting: dict[str, TrialRecord] = field(default_factory=dict)
    confirms: int = 0  # confirms run so far: each moves the seeds by one more
    accepted: int = 0
    trials: int = 0  # trained trials (the baseline included), what --max-trials counts
    sized: int = 0
    seconds: float = 0.0  # wall seconds: each wave counts as its longest trial
    waves: dict[int, float] = field(default_factory=dict)

    def absorb(self, record: TrialRecord, source: str | None = None) -> None:
        """One ledger record into the state; `source` is an accepted trial's script."""
        key = address_key(record.address)
        wave = record.round if record.round is not None else -record.id
        self.waves[wave] = max(self.waves.get(wave, 0.0), record.seconds)
        self.seconds = sum(self.waves.values())
        if record.decision == SIZED:
            self.sized += 1
            if record.parameters is not None:
                self.sizes[key] = int(record.parameters)
            else:
                self.refused.add(key)  # it did not build: nothing to size
            return
        self.trials += 1
        if record.decision in (MISSED, REACHED) and record.parent != self.best_id:
            return  # trained beside a confirm that made another script the best: moot
        if record.decision == BASELINE:
            self._new_best(record, source)
        elif record.decision == MISSED:
            self.trained.add(key)
            self.refused.add(key)
        elif record.decision == REACHED:
            self.trained.add(key)
            self.waiting[key] = record
        elif record.decision in (ACCEPTED, REFUSED):
            self.confirms += 1
            self.waiting.pop(key, None)
            if record.decision == ACCEPTED:
                self.accepted += 1
                self._new_best(record, source)
            else:
                self.refused.add(key)

    def _new_best(self, record: TrialRecord, source: str | None) -> None:
        if source is not None:
            self.best_source = source
        self.best_id, self.best_value = record.id, record.value
        self.best_size = size_of(record)
        self.refused, self.sizes, self.trained, self.waiting = set(), {}, set(), {}

    def missed_here(self, key: str) -> bool:
        """The change was trained on the current best and fell short (or was not smaller)."""
        return key in self.trained and key in self.refused and key not in self.waiting

    def smaller(self, record: TrialRecord) -> bool:
        """A trained candidate is smaller than the best (and so may replace it)."""
        size = size_of(record)
        return size is not None and self.best_size is not None and size.below(self.best_size)

    def reaches(self, value: float | None, target: float) -> bool:
        return reached(value, target, self.mode)


@dataclass(frozen=True)
class Step:
    """What the next wave does. `kind`: size (run each candidate until its model is built),
    train (from scratch), confirm (`confirm` again with its seeds moved, `candidates` beside
    it on the cores it leaves), or done (nothing smaller is left to try)."""

    kind: str
    candidates: tuple[Candidate, ...] = ()
    confirm: TrialRecord | None = None


def next_step(state: SlimState, proposed: Sequence[Candidate], parallel: int) -> Step:
    """The next wave, from the candidates proposed on the best script (in rule order).

    Unknown sizes first: every candidate is sized before any trains, so the smallest trains
    first. Then, smallest first, `parallel` at a time, those no bigger than the best; a
    candidate that reached the target is confirmed as soon as nothing smaller is untrained,
    with the next smallest beside it. So the first confirmed candidate of a best is the
    smallest that reaches the target twice.
    """
    fresh = [c for c in proposed if address_key(c.address()) not in state.refused]
    unsized = [c for c in fresh if address_key(c.address()) not in state.sizes]
    if unsized:
        return Step("size", tuple(unsized[: max(1, parallel)]))
    assert state.best_size is not None  # a baseline was sized by its own trial
    order = {address_key(c.address()): index for index, c in enumerate(fresh)}

    def rank(key: str) -> tuple[int, int]:
        return state.sizes[key], order.get(key, len(order))

    untrained = sorted(
        (
            c
            for c in fresh
            if address_key(c.address()) not in state.trained
            and state.sizes[address_key(c.address())] <= state.best_size.parameters
        ),
        key=lambda c: rank(address_key(c.address())),
    )
    waiting = sorted(
        (key for key in state.waiting if key in state.sizes), key=rank
    )  # reached on this best, in the order of their size
    if waiting and (not untrained or rank(waiting[0]) <= rank(address_key(untrained[0].address()))):
        beside = tuple(untrained[: max(0, parallel - 1)])
        return Step("confirm", beside, state.waiting[waiting[0]])
    if untrained:
        return Step("train", tuple(untrained[: max(1, parallel)]))
    return Step("done")
