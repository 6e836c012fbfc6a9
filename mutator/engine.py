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


@dataclass(frozen=True)
class Rewrite:
    candidate: Candidate
    source: str
    diff: str


class _Applier(cst.CSTTransformer):
    def __init__(self, candidate: Candidate) -> None:
        super().__init__()
        self.replacements = {id(e.old): e for e in candidate.edits if isinstance(e, Replace)}
        self.insertions: dict[int, list[InsertStatements]] = {}
        for edit in candidate.edits:
            if isinstance(edit, InsertStatements):
                self.insertions.setdefault(id(edit.anchor), []).append(edit)
        self.applied: set[int] = set()

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


def apply(module: cst.Module, candidate: Candidate, filename: str = "script.py") -> Rewrite:
    """The script with `candidate` applied, re-parsed and compiled, and its unified diff."""
    if not candidate.edits:
        raise RewriteError(f"rule {candidate.rule}: candidate has no edits")
    applier = _Applier(candidate)
    new_module = module.visit(applier)
    missing = len(candidate.edits) - len(applier.applied)
    if missing:
        raise RewriteError(
            f"rule {candidate.rule}: {missing} edit(s) found no place in the script "
            "(a statement on one line with others, or in a one-line block?)"
        )
    source = new_module.code
    verify(source, candidate.rule)
    return Rewrite(candidate, source, unified_diff(module.code, source, filename))


def verify(source: str, rule: str) -> None:
    """The rewritten script parses with libcst and compiles with CPython, or RewriteError."""
    try:
        cst.parse_module(source)
        compile(source, "<rewritten>", "exec", dont_inherit=True)
    except (cst.ParserSyntaxError, SyntaxError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RewriteError(
            f"rule {rule} produced invalid code ({message}); nothing written"
        ) from None


def unified_diff(before: str, after: str, filename: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{filename}",
        tofile=f"b/{filename}",
    )
    # A file without a final newline would glue the next diff line on; say so as git does.
    out = []
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)
