"""The only place that changes code: apply one candidate's edits, verify, diff.

Edits replace, insert or remove nodes by identity, so every other node (comments, blank lines,
quotes, trailing commas, CRLF) is printed by libcst exactly as it was parsed. Only the top-level
statements that changed are printed at all: they are spliced into the original text (`splice`),
which is what libcst would print for the whole module, at a fraction of the cost. The result
must parse and compile, or nothing is returned and the rule is named in the error.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from mutator.engine.candidate import (
    Candidate,
    InsertStatements,
    RemoveStatement,
    Replace,
    edit_target,
)
from mutator.engine.walk import parents
from mutator.errors import RewriteError


@dataclass(frozen=True)
class Rewrite:
    candidate: Candidate
    source: str
    diff: str


class _Applier(cst.CSTTransformer):
    """Replaces, inserts and removes by node identity, descending only into the edits' ancestors.

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
        self.removals = {
            id(e.statement): e for e in candidate.edits if isinstance(e, RemoveStatement)
        }
        self.applied: set[int] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        return id(node) in self.on_path

    def on_leave(self, original_node, updated_node):  # type: ignore[no-untyped-def]
        edit = self.replacements.get(id(original_node))
        if edit is not None:
            self.applied.add(id(edit))
            return edit.new
        if (self.insertions or self.removals) and isinstance(
            updated_node, (cst.Module, cst.IndentedBlock)
        ):
            return self._rebody(original_node, updated_node)
        return updated_node

    def _rebody(self, original, updated):  # type: ignore[no-untyped-def]
        """The block's statements with the insertions and removals anchored in it made."""
        if not any(
            id(stmt) in self.insertions or id(stmt) in self.removals for stmt in original.body
        ):
            return updated
        body: list[cst.BaseStatement] = []
        # The comment and blank lines above removed statements, for the next statement kept.
        carried: list[cst.EmptyLine] = []

        def put(statements) -> None:  # type: ignore[no-untyped-def]
            nonlocal carried
            for statement in statements:
                if carried:
                    lines = [*carried, *statement.leading_lines]
                    statement = statement.with_changes(leading_lines=lines)
                    carried = []
                body.append(statement)

        # The transformer removes nothing itself, so original and updated bodies line up.
        for old_stmt, new_stmt in zip(original.body, updated.body, strict=True):
            edits = self.insertions.get(id(old_stmt), [])
            put(s for edit in edits if not edit.after for s in edit.statements)
            removal = self.removals.get(id(old_stmt))
            if removal is None:
                put([new_stmt])
            else:
                carried += new_stmt.leading_lines
                self.applied.add(id(removal))
            put(s for edit in edits if edit.after for s in edit.statements)
            self.applied.update(id(edit) for edit in edits)
        if carried:  # the block's last statement went: its lines above end the block
            return updated.with_changes(body=body, footer=[*carried, *updated.footer])
        return updated.with_changes(body=body)


def apply_candidate(
    module: cst.Module,
    candidate: Candidate,
    filename: str = "script.py",
    before: str | None = None,
    parent_of: dict[int, cst.CSTNode] | None = None,
) -> Rewrite:
    """The script with `candidate` applied, verified, and its unified diff against `before`."""
    if not candidate.edits:
        raise RewriteError(f"rule {candidate.rule}: candidate has no edits")
    new_module = transform(module, candidate, parent_of)
    before = module.code if before is None else before
    unchanged = {id(stmt) for stmt in module.body}
    printed = {
        id(stmt): new_module.code_for_node(stmt)
        for stmt in new_module.body
        if id(stmt) not in unchanged
    }
    source = splice(module, new_module, before, printed)
    if source is None:
        source = new_module.code
    verify(source, candidate.rule, list(printed.values()))
    return Rewrite(candidate, source, unified_diff(before, source, filename))


def transform(
    module: cst.Module, candidate: Candidate, parent_of: dict[int, cst.CSTNode] | None = None
) -> cst.Module:
    """The module with the candidate's edits made, or RewriteError when one found no place."""
    applier = _Applier(candidate, _ancestors(module, candidate, parent_of))
    new_module = module.visit(applier)
    missing = len(candidate.edits) - len(applier.applied)
    if missing:
        raise RewriteError(
            f"rule {candidate.rule}: {missing} edit(s) found no place in the script "
            "(a statement on one line with others, or in a one-line block?)"
        )
    return new_module


def splice(
    module: cst.Module, new_module: cst.Module, text: str, printed: dict[int, str] | None = None
) -> str | None:
    """The new module's code, made by printing only the top-level statements that changed.

    `text` is `module`'s code; `printed` may hold the code of new statements (by id) already
    printed. Every statement kept from `module` (the same object) keeps its
    bytes; each run of changed or inserted statements replaces the text of the old statements
    between the same two kept neighbours. A span is found by searching `text` for the old
    statements' own code, and is only used when that code occurs exactly once; anything this
    cannot place for certain (a duplicate, a changed header or footer) returns None, and the
    caller prints the whole module instead.
    """
    if not (_same(new_module.header, module.header) and _same(new_module.footer, module.footer)):
        return None
    if not module.body:
        return None
    if not module.has_trailing_newline:
        # libcst prints the last statement's newline, then takes it off the module's code.
        newline = module.default_newline
        whole = splice(
            module.with_changes(has_trailing_newline=True), new_module, text + newline, printed
        )
        return whole[: -len(newline)] if whole is not None and whole.endswith(newline) else None
    position = {id(stmt): index for index, stmt in enumerate(module.body)}
    groups: list[tuple[int, int, list[cst.BaseStatement]]] = []  # old [start, end) -> new
    previous, pending = -1, []
    for stmt in new_module.body:
        index = position.get(id(stmt))
        if index is None:
            pending.append(stmt)
            continue
        if pending or index > previous + 1:
            groups.append((previous + 1, index, pending))
        previous, pending = index, []
    if pending or previous + 1 < len(module.body):
        groups.append((previous + 1, len(module.body), pending))
    pieces, cursor = [], 0
    for start, end, statements in groups:
        span = _span(module, text, start, end)
        if span is None or span[0] < cursor:
            return None
        pieces.append(text[cursor : span[0]])
        pieces += [(printed or {}).get(id(s)) or new_module.code_for_node(s) for s in statements]
        cursor = span[1]
    return "".join([*pieces, text[cursor:]])


def _span(module: cst.Module, text: str, start: int, end: int) -> tuple[int, int] | None:
    """Where old statements [start, end) are in `text`; for none, the point after start - 1."""
    if start < end:
        code = "".join(module.code_for_node(stmt) for stmt in module.body[start:end])
        at = _unique(text, code)
        return None if at is None else (at, at + len(code))
    neighbour = module.code_for_node(module.body[start - 1]) if start else None
    if neighbour is None:
        at = _unique(text, module.code_for_node(module.body[0]))
        return None if at is None else (at, at)
    at = _unique(text, neighbour)
    return None if at is None else (at + len(neighbour), at + len(neighbour))


def _same(new: Sequence[cst.CSTNode], old: Sequence[cst.CSTNode]) -> bool:
    """The same nodes (by identity): a transformer rebuilds the sequence, not its lines."""
    return len(new) == len(old) and all(a is b for a, b in zip(new, old, strict=True))


def _unique(text: str, code: str) -> int | None:
    first = text.find(code)
    if first < 0 or text.find(code, first + 1) >= 0:
        return None
    return first


def _ancestors(
    module: cst.Module, candidate: Candidate, parent_of: dict[int, cst.CSTNode] | None
) -> set[int]:
    """ids of every node on the way from the module to an edited node (the nodes themselves too).

    `parent_of` comes from the locator's walk; when it does not reach an edit (or is not given),
    the tree is walked once more to find the way.
    """
    targets = [edit_target(edit) for edit in candidate.edits]
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
