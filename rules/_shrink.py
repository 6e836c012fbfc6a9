"""What the rules that make a layer narrower share (`fewer_filters`, `fewer_units`)."""

from __future__ import annotations

from collections.abc import Sequence

from mutator.engine.candidate import Candidate, Proposal


def widest_first(proposals: Sequence[Proposal], width: str) -> list[Proposal]:
    """The candidates widest layer first (by `params[width]`'s old value; layer order among
    equals), then the skips in layer order.

    A search tries each rule's first candidate before a second of any (`plan.round_robin`), and
    slim wants the largest cut first: the widest layer holds the most weights, and usually the
    most to spare, where halving a narrow one makes a bottleneck.
    """
    made = [p for p in proposals if isinstance(p, Candidate)]
    made.sort(key=lambda candidate: -candidate.params[width][0])
    return [*made, *(p for p in proposals if not isinstance(p, Candidate))]
