"""Two rules' changes made as one candidate, when the evidence calls for both at once.

A 2-epoch model that under-fits while its validation curve still rises needs more capacity and
more epochs: tried one at a time, the climb spends a round on each (filters x8 reaches 0.91, epochs
x8 beside it 0.88, and only the next round has both: 0.98). The search asks for the two changes as
one trial. Rules still propose, and the engine still applies: a joint candidate carries the edits
of both, and the second rule's candidate in `also`, so the ledger can name and replay each part.

Two changes are joined only when their edits are apart: no edit's node is, holds, or lies inside
another's (a wider Conv2D and a new `epochs=` are; a new kernel and new filters on the same call
might not be). Otherwise there is no joint change, and the two are tried side by side as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import libcst as cst

from mutator.engine.candidate import Candidate, edit_target


def joint(
    first: Candidate, second: Candidate, parent_of: Mapping[int, cst.CSTNode]
) -> Candidate | None:
    """`first` and `second` as one change, or None when their edits touch the same code.

    Both must have been proposed on the same module (`parent_of` is its parent map). `first`
    may already be a joint change (every layer wider: `joint_all`); `second` may not.
    """
    return joint_all([first, second], parent_of)


def joint_all(parts: Sequence[Candidate], parent_of: Mapping[int, cst.CSTNode]) -> Candidate | None:
    """`parts` as one change (the first carries the others in `also`), or None: when fewer
    than two, when two change the same site by the same rule, or when their edits meet.

    The parts may be one rule's changes at several sites: every hidden layer widened at once
    is what an engineer means by "a wider model", and a network of several layers widened one
    layer per round spends a round on each (two input branches of Dense(4): widening one leaves
    the other the bottleneck).
    """
    if len(parts) < 2 or any(part.also for part in parts[1:]):
        return None
    first = parts[0]
    every = [first, *first.also, *parts[1:]]
    if len({(part.rule, part.site) for part in every}) < len(every):
        return None
    edits = [[edit_target(edit) for edit in part.edits] for part in parts]
    if not all(edits):
        return None
    for index, mine in enumerate(edits):
        for theirs in edits[index + 1 :]:
            if any(_entangled(a, b, parent_of) for a in mine for b in theirs):
                return None
    others = parts[1:]
    return Candidate(
        first.rule,
        first.site,
        first.params,
        ", with ".join(part.description for part in parts),
        first.edits + tuple(edit for part in others for edit in part.edits),
        also=(*first.also, *others),
    )


def _entangled(a: cst.CSTNode, b: cst.CSTNode, parent_of: Mapping[int, cst.CSTNode]) -> bool:
    """True when `a` and `b` are the same node or one lies inside the other."""
    return a is b or _inside(a, b, parent_of) or _inside(b, a, parent_of)


def _inside(node: cst.CSTNode, outer: cst.CSTNode, parent_of: Mapping[int, cst.CSTNode]) -> bool:
    parent = parent_of.get(id(node))
    while parent is not None:
        if parent is outer:
            return True
        parent = parent_of.get(id(parent))
    return False
