"""What a rule proposes: a Candidate (an addressed, replayable change) or a Skip (and why).

A candidate is addressed as (rule, site, params), cosmic-ray style, so a trial in the ledger can be
replayed by asking the same rule for the same site again. Its edits are libcst nodes and are only
meaningful against the module they were proposed for; the engine applies them. A joint change
(`mutator.engine.joint`) is one candidate that carries a second rule's change in `also`: its
address names every part, so it is replayed by asking each rule again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import libcst as cst


@dataclass(frozen=True, eq=False)
class Replace:
    """Put `new` where `old` is (by identity). The smallest node possible keeps diffs minimal."""

    old: cst.CSTNode
    new: cst.CSTNode


@dataclass(frozen=True, eq=False)
class InsertStatements:
    """New statements right after (or before) `anchor`, in the block that holds it."""

    anchor: cst.BaseStatement
    statements: tuple[cst.BaseStatement, ...]
    after: bool = True


@dataclass(frozen=True, eq=False)
class RemoveStatement:
    """Take `statement` out of the block that holds it, with its own line's trailing comment.

    The blank and comment lines above it are not its own (they may speak of what follows, and a
    comment is never dropped unasked): they stay where they were, above the next statement or at
    the end of the block. A block left empty gets `pass`, as libcst prints it.
    """

    statement: cst.BaseStatement


Edit = Replace | InsertStatements | RemoveStatement


def edit_target(edit: Edit) -> cst.CSTNode:
    """The node an edit changes or is placed by: what must be reached to apply it."""
    if isinstance(edit, Replace):
        return edit.old
    if isinstance(edit, InsertStatements):
        return edit.anchor
    return edit.statement


@dataclass(frozen=True)
class Candidate:
    rule: str
    site: int  # a layer index for layer rules; 0 for model-wide rules such as epochs
    params: Mapping[str, Any]  # JSON-able: what changes, e.g. {"filters": [4, 8]}
    description: str
    edits: tuple[Edit, ...] = field(default=(), compare=False, repr=False)
    also: tuple[Candidate, ...] = ()  # the other rules' changes made with this one (a joint change)

    def address(self) -> dict[str, Any]:
        """The JSON form stored in the ledger; enough to propose the same change again."""
        address = {"rule": self.rule, "site": self.site, "params": dict(self.params)}
        if self.also:
            address["also"] = [part.address() for part in self.also]
        return address

    @property
    def rules(self) -> tuple[str, ...]:
        """Every rule whose change this candidate makes, its own first."""
        return (self.rule, *(part.rule for part in self.also))


@dataclass(frozen=True)
class Skip:
    """A site a rule looked at and will not change, with the reason a user should read."""

    rule: str
    site: int | None
    reason: str


Proposal = Candidate | Skip
