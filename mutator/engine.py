"""The only place that changes code: apply one candidate's edits, verify, diff.

Edits replace or insert nodes by identity, so every other node (comments, blank lines, quotes,
trailing commas, CRLF) is printed by libcst exactly as it was parsed. The result must parse and
compile, or nothing is returned and the rule is named in the error.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import libcst as cst

from mutator.candidate import Candidate, InsertStatements, Replace
from mutator.errors import RewriteError
from mutator.walk import parents


@dataclass(frozen=True)
class Rewrite:
    candidate: Candidate
    source: str
    diff: str


class _Applier(cst.CSTTransformer):
    """Replaces and inserts by node identity, descending only into the edits' ancestors.

    Subtrees without an edit are skipped, so they come back as the very same objects: that is
    what keeps them byte-identical, and what lets `verify` re-parse only what changed.
    """

    def __init__(self, candidate: Candidate, on_path: set[int]) -> None:
        super().__init__()
        self.on_path = on_path
        self.replacements = {id(e.old): e for e in candidate.edits if isinstance(e, Replace)}
        self.insertions: dict[int, list[InsertStatements]] = {}
        for edit in candidate.edits:
            if isinstance(edit, InsertStatements):
                self.insertions.setdefault(id(edit.anchor), []).append(edit)
        self.applied: set[int] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        return id(node) in self.on_path

    def on_leave(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        edit = self.replacements.get(id(original_node))
        if edit is not None:
            self.applied.add(id(edit))
            return edit.new
        if self.insertions and isinstance(updated_node, (cst.Module, cst.IndentedBlock)):
            return self._insert(original_node, updated_node)
        return updated_node

    def _insert(self, original, updated):  # type: ignore[no-untyped-def]
        if not any(id(stmt) in self.insertions for stmt in original.body):
            return updated
        body: list[cst.BaseStatement] = []
        # Statements are never removed, so original and updated bodies line up one to one.
        for old_stmt, new_stmt in zip(original.body, updated.body, strict=True):
            edits = self.insertions.get(id(old_stmt), [])
            for edit in edits:
                if not edit.after:
                    body.extend(edit.statements)
                    self.applied.add(id(edit))
            body.append(new_stmt)
            for edit in edits:
                if edit.after:
                    body.extend(edit.statements)
                    self.applied.add(id(edit))
        return updated.with_changes(body=body)


def apply(
    module: cst.Module,
    candidate: Candidate,
    filename: str = "script.py",
    before: str | None = None,
    parent_of: dict[int, cst.CSTNode] | None = None,
) -> Rewrite:
    """The script with `candidate` applied, verified, and its unified diff against `before`."""
    if not candidate.edits:
        raise RewriteError(f"rule {candidate.rule}: candidate has no edits")
    applier = _Applier(candidate, _ancestors(module, candidate, parent_of))
    new_module = module.visit(applier)
    missing = len(candidate.edits) - len(applier.applied)
    if missing:
        raise RewriteError(
            f"rule {candidate.rule}: {missing} edit(s) found no place in the script "
            "(a statement on one line with others, or in a one-line block?)"
        )
    source = new_module.code
    unchanged = {id(stmt) for stmt in module.body}
    changed = [stmt for stmt in new_module.body if id(stmt) not in unchanged]
    verify(source, candidate.rule, [new_module.code_for_node(stmt) for stmt in changed])
    before = module.code if before is None else before
    return Rewrite(candidate, source, unified_diff(before, source, filename))


def _ancestors(
    module: cst.Module, candidate: Candidate, parent_of: dict[int, cst.CSTNode] | None
) -> set[int]:
    """ids of every node on the way from the module to an edited node (the nodes themselves too).

    `parent_of` comes from the locator's walk; when it does not reach an edit (or is not given),
    the tree is walked once more to find the way.
    """
    targets = [edit.old if isinstance(edit, Replace) else edit.anchor for edit in candidate.edits]
    for parent_map in (parent_of, None):
        if parent_map is None:
            parent_map = parents(module)
        path = {id(module)}
        for target in targets:
            node: cst.CSTNode | None = target
            while node is not None and id(node) not in path:
                path.add(id(node))
                node = parent_map.get(id(node))
            if node is None:
                break  # this map does not lead from the target to the module
        else:
            return path
    return path


def verify(source: str, rule: str, changed_statements: list[str] | None = None) -> None:
    """CPython compiles the rewritten script, and libcst parses what changed, or RewriteError.

    Both matter: compile() catches what libcst prints but Python refuses (a `return` outside a
    function); the libcst parse catches code the next rewrite could not read back.
    """
    pieces = [source] if changed_statements is None else changed_statements
    try:
        compile(source, "<rewritten>", "exec", dont_inherit=True)
        for piece in pieces:
            cst.parse_module(piece)
    except (cst.ParserSyntaxError, SyntaxError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RewriteError(
            f"rule {rule} produced invalid code ({message}); nothing written"
        ) from None


def unified_diff(before: str, after: str, filename: str, after_name: str | None = None) -> str:
    """`a/filename` -> `b/filename` (or `b/after_name`, e.g. best.py), as git would print it."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{filename}",
        tofile=f"b/{after_name or filename}",
    )
    # A file without a final newline would glue the next diff line on; say so as git does.
    out = []
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)
