"""Adaptive steps: a rule that just gained much takes a bigger step next, one that failed a smaller.

Doubling filters from 4 to 512 takes seven trials; when each doubling pays, the climb should
hurry (x2 -> x4 -> x8), and when a big step overshoots it should come back to the rule's own
step. Only rules that declare a multiplying setting adapt (`step_setting`, in `rules._rule`); the
step is that setting raised to the power `level + 1`, and each rule's own limits (max_filters,
max_epochs, max_learning_rate) still cap what it proposes. Levels are a function of the ledger's decisions, replayed in order, so a
resumed run takes the same steps.

Near the target the gap also caps a rule's momentum (`level_for`). A rule not tried yet starts
from the distance to the target: a model far below it (a gap of
`FAR` or more) starts at the largest step, one close to it at the rule's own. That is the first
step a careful engineer takes on a 4-filter model that reaches 0.33 of a 0.97 target: not x2.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rules import rule_class

MAX_LEVEL = 2  # x2, x4, x8 for a factor of 2
BIG_GAIN = 0.05  # a gain in the metric at least this large earns the next step


def step_of(rule: Any, level: int) -> Any:
    """`rule` with its step for `level` (the rule itself at level 0 or when it does not adapt)."""
    setting = rule.step_setting
    if setting is None or level <= 0 or _additive(rule):
        return rule  # more_epochs with an additive `step` setting keeps it
    base = getattr(rule, setting)
    return dataclasses.replace(rule, **{setting: base ** (level + 1)})


def from_curve(rule: Any, best_epoch: int | None) -> Any:
    """`rule` with what the best trial's curve says of it: a rule with a `to_epochs` setting
    (`fewer_epochs`) stops at the epoch the validation curve was best at, when one is known
    (`Diagnosis.best_epoch`) and the user did not set it."""
    if best_epoch is None or not hasattr(rule, "to_epochs") or rule.to_epochs is not None:
        return rule
    return dataclasses.replace(rule, to_epochs=best_epoch)


def with_factor(rule: Any, factor: float | None) -> Any:
    """`rule` at a step a trial recorded (`TrialRecord.step`), to propose that change again."""
    setting = rule.step_setting
    if setting is None or factor is None or _additive(rule):
        return rule
    return dataclasses.replace(rule, **{setting: type(getattr(rule, setting))(factor)})


def _additive(rule: Any) -> bool:
    """Whether the user set an additive `step` in place of the rule's multiplying `factor`
    (more_epochs' `step = 4`: 8 -> 12 -> 16); such a rule keeps its step. A rule whose `step`
    is not an alternative to its factor (larger_kernel's 2-D step beside its 1-D `span`)
    adapts as any other."""
    return rule.step_setting == "factor" and bool(getattr(rule, "step", None))


def factor_of(rule: Any) -> float | None:
    setting = rule.step_setting
    return getattr(rule, setting) if setting is not None else None


def adapts(name: str) -> bool:
    """Whether the rule called `name` (as the ledger records it) takes adaptive steps."""
    try:
        return rule_class(name).step_setting is not None
    except KeyError:  # a rule this mutator no longer has, in an old ledger
        return False


FAR, NEAR = 0.30, 0.05  # gaps to the target that start a new rule at level 2, 1


def initial_level(gap: float | None) -> int:
    """The level of a rule's first step, from how far the best is from the target."""
    if gap is None:
        return 0
    return 2 if gap >= FAR else 1 if gap >= NEAR else 0


def level_for(momentum: int | None, gap: float | None) -> int:
    """The level a rule proposes at: its momentum, at most one above what the gap calls for,
    and near the target (a gap under `NEAR`) the rule's own step: momentum earned far away
    overshoots there (epochs 8 -> 64, 18 s, when 8 -> 16, 5 s, was enough for the last 0.005).
    """
    first = initial_level(gap)
    if momentum is None:
        return first
    if gap is None:
        return momentum  # no target: the gains alone set the pace
    return min(momentum, first + 1) if first > 0 else 0


def next_level(level: int, decision: str, gain: float | None, beaten: bool) -> int:
    """A rule's level after one of its trials was decided.

    Only a step that trained and did not pay comes back down: a trial that failed, crashed or
    was beaten by another says nothing about the size of the step.
    """
    if decision == "accepted" and gain is not None and gain >= BIG_GAIN:
        return min(level + 1, MAX_LEVEL)
    if decision == "rejected" and not beaten and gain is not None:
        return max(level - 1, 0)
    return level
