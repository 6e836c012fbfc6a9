"""Planning one round: what trains side by side, in what order, and what waits.

`plan_round` is pure: the climb (`hillclimb`) hands it what it computed on the best (the
candidates of every rule, the runner-up, the joint change, whether a recheck or a confirm is
due) and gets back the round, every trial a `Slot` with its id, its kind and why it is there.
A round takes at most `parallel` cores; a candidate also takes a trial of the budget (`room`),
a measure (recheck, confirm, noise) does not. The round is laid out in this order:

1. the recheck: a change whose gain fell inside the noise band, trained again with other
   seeds; it takes a core, but no trial of the budget;
2. the confirm alongside: the best's warm estimate retrained from scratch, when the round
   would leave a core free, or whatever it costs when the climb says it is due now
   (`confirm_now`: an estimate of a capacity change, or one near the target);
3. the joined change: the changes that each gained on this best inside the noise band, as one
   change (`state.NearMiss`): what none could show alone, their sum may;
4. the joint change: capacity and epochs as one change, when the curves call for both;
5. the pushed rule's candidate: the next change of the rule just accepted;
6. the runner-up: the last round's strong second, at the step it was tried at;
7. the fresh candidates, one of every rule before a second of any (`round_robin`);
8. the deferred ones (they improved but lost a round), the same way;
9. a noise run of the best, in a core the round still leaves free.

Candidates (3 to 8) take the cores 1 and 2 leave, at most `room` of them. When they are more
than that, the later ones wait, with one exception: the runner-up is a measured gain, not a
guess, so it keeps a seat whenever any candidate has one, and the guesses before it wait
instead (the pushed rule's candidate first, then the joint change, then the joined one).
Fresh and deferred candidates that wait are the queue: they come back next round on their own.
A joined or joint change, pushed candidate or runner-up left without a seat is in
`Round.dropped`, with why, for the climb to say. A round with neither a recheck nor a candidate is empty: the climb then
confirms the best or stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from mutator.engine.candidate import Candidate

T = TypeVar("T")

# A warm estimate this close to the target has its from-scratch confirm run beside the round.
CONFIRM_NEAR = 0.03

RECHECK, CONFIRM, JOINED, JOINT, PUSHED, RUNNER_UP, FRESH, DEFERRED, NOISE = (
    "recheck",
    "confirm",
    "joined",
    "joint",
    "pushed",
    "runner_up",
    "fresh",
    "deferred",
    "noise",
)
# the candidates the evidence asked for: said when dropped
NAMED = (JOINED, JOINT, PUSHED, RUNNER_UP)

_WHY = {
    RECHECK: "a gain inside the noise band, trained again with other seeds",
    CONFIRM: "the best is a warm estimate, and a core is free",
    JOINED: "changes that each gained inside the noise band, as one change: their sum may clear it",
    JOINT: "capacity and epochs as one change: the curves call for both",
    PUSHED: "the rule just accepted, pushed again",
    RUNNER_UP: "the last round's runner-up: a measured gain",
    FRESH: "untried on this best",
    DEFERRED: "improved before, but lost its round",
    NOISE: "a core the round leaves free measures the noise",
}
LABELS = {
    RECHECK: "recheck",
    CONFIRM: "confirm",
    JOINED: "joined change",
    JOINT: "joint change",
    PUSHED: "pushed rule's candidate",
    RUNNER_UP: "runner-up",
    FRESH: "fresh candidate",
    DEFERRED: "deferred candidate",
    NOISE: "noise run",
}


@dataclass(frozen=True)
class Slot:
    """One trial of the round: its id, what kind of trial it is, and why it is there."""

    id: int
    kind: str  # recheck | confirm | joined | joint | pushed | runner_up | fresh | deferred | noise
    why: str
    candidate: Candidate | None = None  # the change it trains; None for a measure


@dataclass(frozen=True)
class Dropped:
    """A candidate the evidence asked for that got no seat this round, and why."""

    kind: str  # joined | joint | pushed | runner_up
    candidate: Candidate
    why: str

    @property
    def message(self) -> str:
        return f"not this round: the {LABELS[self.kind]}, {self.candidate.description} ({self.why})"


@dataclass(frozen=True)
class Round:
    """What trains this round, in order, and the named candidates that wait."""

    slots: tuple[Slot, ...]
    dropped: tuple[Dropped, ...] = ()


def plan_round(
    *,
    first_id: int,
    parallel: int,
    room: int,
    fresh: Sequence[Sequence[Candidate]] = (),
    deferred: Sequence[Sequence[Candidate]] = (),
    push_rule: str | None = None,
    runner_up: Candidate | None = None,
    joint: Candidate | None = None,
    joined: Candidate | None = None,
    recheck: bool = False,
    estimate: bool = False,
    confirm_now: str | None = None,
    noise: bool = False,
) -> Round:
    """The round, in the order of the module docstring, with ids from `first_id` on.

    `fresh` and `deferred` hold each rule's candidates, one group per rule in the order the
    diagnosis gave; `room` is the trials left in the budget; `estimate` says the best's value
    is a warm estimate (a confirm is due), `confirm_now` why it is due this round whatever it
    costs (None: only in a free core); `noise` that a noise run may fill a free core.
    """
    wanted = _candidates(fresh, deferred, push_rule, runner_up, joint, joined)
    if not recheck and not wanted:
        return Round(())
    cores = parallel - recheck  # the cores left for candidates
    idle = min(len(wanted), room, cores) < cores  # the candidates alone would leave one free
    confirm = parallel >= 2 and estimate and (confirm_now is not None or idle)
    cores -= confirm
    kept = _seated(wanted, max(0, min(room, cores)))
    kinds: list[tuple[str, str, Candidate | None]] = []
    if recheck:
        kinds.append((RECHECK, _WHY[RECHECK], None))
    if confirm:
        kinds.append((CONFIRM, confirm_now or _WHY[CONFIRM], None))
    kinds += [(kind, _WHY[kind], candidate) for kind, candidate in kept]
    if noise and len(kinds) < parallel:
        kinds.append((NOISE, _WHY[NOISE], None))
    slots = tuple(
        Slot(first_id + index, kind, why, candidate)
        for index, (kind, why, candidate) in enumerate(kinds)
    )
    return Round(slots, _dropped(wanted, kept, slots, room if room < cores else None))


def confirm_now(transferred: bool, gap: float | None) -> str | None:
    """Why the best's warm estimate is confirmed beside this round even at a candidate's
    cost; None: only in a core the round leaves free, where it costs no wall time.

    An estimate near the target (warm estimates run a little low) may already reach it: the
    confirm can end the search a round earlier. An estimate of a capacity change (`transferred`)
    trained a share of its epochs from mapped weights and runs furthest low (filters 4 -> 32
    with epochs 2 -> 16: 0.93 warm, 0.98 from scratch): a climb that builds on it spends its
    rounds on what the script already reaches.
    """
    if transferred:
        return "the best is a warm estimate of a capacity change: it runs furthest low"
    if gap is not None and gap <= CONFIRM_NEAR:
        return f"the best's warm estimate is within {CONFIRM_NEAR} of the target"
    return None


def round_robin(groups: Sequence[Sequence[T]]) -> list[T]:
    """The first of each group, then the second of each...: one of every rule before two of any."""
    out: list[T] = []
    for depth in range(max((len(g) for g in groups), default=0)):
        out += [group[depth] for group in groups if depth < len(group)]
    return out


def _candidates(
    fresh: Sequence[Sequence[Candidate]],
    deferred: Sequence[Sequence[Candidate]],
    push_rule: str | None,
    runner_up: Candidate | None,
    joint: Candidate | None,
    joined: Candidate | None,
) -> list[tuple[str, Candidate]]:
    """Every candidate the round could train, each with its kind, in the order of the list."""
    queue = [(FRESH, c) for c in round_robin(_pushed_first(fresh, push_rule))]
    queue += [(DEFERRED, c) for c in round_robin(_pushed_first(deferred, push_rule))]
    if runner_up is not None:
        queue = [(kind, c) for kind, c in queue if c.address() != runner_up.address()]
    named: list[tuple[str, Candidate]] = [(JOINED, joined)] if joined is not None else []
    if joint is not None:
        named.append((JOINT, joint))
    if queue and push_rule is not None and queue[0][1].rule == push_rule:
        named.append((PUSHED, queue.pop(0)[1]))
    if runner_up is not None:
        named.append((RUNNER_UP, runner_up))
    return named + queue


def _pushed_first(
    groups: Sequence[Sequence[Candidate]], push_rule: str | None
) -> list[Sequence[Candidate]]:
    """The rule just accepted first, the others in the order given."""
    return sorted(groups, key=lambda group: not group or group[0].rule != push_rule)


def _seated(wanted: list[tuple[str, Candidate]], seats: int) -> list[tuple[str, Candidate]]:
    """The first `seats` candidates, except that the runner-up displaces a guess before it."""
    kept = wanted[:seats]
    runner_up = next((item for item in wanted if item[0] == RUNNER_UP), None)
    if seats > 0 and runner_up is not None and all(runner_up is not item for item in kept):
        kept = [*wanted[: seats - 1], runner_up]
    return kept


def _dropped(
    wanted: list[tuple[str, Candidate]],
    kept: list[tuple[str, Candidate]],
    slots: tuple[Slot, ...],
    budget_left: int | None,
) -> tuple[Dropped, ...]:
    """The named candidates left out, each with what took its seat."""
    left = [item for item in wanted if item[0] in NAMED and all(item is not k for k in kept)]
    if not left:
        return ()
    if budget_left is not None:
        why = f"the trial budget has {budget_left} trial(s) left"
    else:
        taken = " and the ".join(LABELS[slot.kind] for slot in slots)
        why = f"the round's {len(slots)} core(s) went to the {taken}"
    if any(kind == RUNNER_UP for kind, _ in kept):
        why += "; the runner-up's gain is measured, this one's a guess"
    return tuple(Dropped(kind, candidate, why) for kind, candidate in left)
