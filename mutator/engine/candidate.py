"""What a rule proposes: a Candidate (an addressed, replayable change) or a Skip (and why).

A candidate is addressed as (rule, site, params), cosmic-ray style, so a trial in the ledger can be
replayed by asking the same rule for the same site again. Its edits are libcst nodes and are only
meaningful against the module they were proposed for; the engine applies them.
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


Edit = Replace | InsertStatements


@dataclass(frozen=True)
class Candidate:
    rule: str
    site: int  # a layer index for layer rules; 0 for model-wide rules such as epochs
    params: Mapping[str, Any]  # JSON-able: what changes, e.g. {"filters": [4, 8]}
    description: str
    edits: tuple[Edit, ...] = field(default=(), compare=False, repr=False)

    def address(self) -> dict[str, Any]:
        """The JSON form stored in the ledger; enough to propose the same change again."""
        return {"rule": self.rule, "site": self.site, "params": dict(self.params)}


@dataclass(frozen=True)
class Skip:
    """A site a rule looked at and will not change, with the reason a user should read."""

    rule: str
    site: int | None
    reason: str


Proposal = Candidate | Skip
