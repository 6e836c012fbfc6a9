"""What every rule is: a small class with a name, a description, typed settings, its own examples,
and `propose(view)`. Rules only propose; `mutator.engine.rewrite` applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from mutator.engine.candidate import Proposal
from mutator.engine.model_view import ModelView


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

    def propose(self, view: ModelView) -> list[Proposal]: ...
