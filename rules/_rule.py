"""What every rule is: a small class with a name, a description, typed settings, its own examples,
and `propose(view)`. Rules only propose; `mutator.engine.rewrite` applies.

A rule also says what the search must know about it, so that a new rule is one new file and
nothing else (as Fixit's rules carry their examples):

- `road`: which condition of the curves calls for it (`mutator.search.diagnosis`): more
  capacity, a longer training, regularisation, faster learning (a loss that barely falls) or
  steadier learning (a loss that rises, oscillates or goes NaN), or a smaller model (the
  shrinking rules of `mutate slim`, which no diagnosis calls for);
- `step_setting`: the multiplying setting the search's adaptive steps scale (x2 -> x4 -> x8), or
  None for a rule whose step is fixed (`mutator.search.steps`);
- `warm`: how a child it made may start from its parent (`mutator.training.warm_plan`):
  `continue` (same architecture, more epochs: go on where the parent stopped), `transfer` (the
  parent's weights mapped onto the new architecture, Net2Net where shapes allow), `retrain`
  (the same architecture trained differently: the parent's weights and optimizer state, then a
  share of the epochs) or `cold` (no sound mapping: from scratch, `cold_why` says why);
- `widens` (optional, False when not declared): the rule makes an existing layer wider, one
  candidate per layer, so the search may also make every layer wider as one change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from mutator.engine.candidate import Proposal
from mutator.engine.model_view import ModelView

Road = Literal["capacity", "training", "regularisation", "faster", "steadier", "smaller"]
ROADS: tuple[Road, ...] = (
    "capacity",
    "training",
    "regularisation",
    "faster",
    "steadier",
    "smaller",
)

WarmMapping = Literal["continue", "transfer", "retrain", "cold"]
WARM_MAPPINGS: tuple[WarmMapping, ...] = ("continue", "transfer", "retrain", "cold")


@dataclass(frozen=True)
class Example:
    """`before` becomes `after` when the rule's first candidate (or the one at `site`) is applied."""

    before: str
    after: str
    site: int | None = None


class Rule(Protocol):
    name: ClassVar[str]
    description: ClassVar[str]
    examples: ClassVar[tuple[Example, ...]]
    no_match: ClassVar[tuple[str, ...]]  # scripts where the rule must propose nothing
    road: ClassVar[Road]
    step_setting: ClassVar[str | None]
    warm: ClassVar[WarmMapping]
    cold_why: ClassVar[str]  # for warm == "cold": the reason the ledger gives; else ""

    def propose(self, view: ModelView) -> list[Proposal]: ...
