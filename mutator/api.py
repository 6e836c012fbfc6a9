"""The library API the CLI, the search and the pre-commit hook share: locate, propose, apply.

It stands above `mutator.engine` and `rules` (it is where the two meet) and below everything
that decides what to do with a change: the search, the publishers and the command line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst as cst

from mutator.engine.candidate import Candidate, Proposal, Skip
from mutator.engine.joint import joint as _joint
from mutator.engine.joint import joint_all as _joint_all
from mutator.engine.locate import locate
from mutator.engine.model_view import ModelView
from mutator.engine.rewrite import Rewrite, apply_candidate
from mutator.engine.source import load_module, parse_script
from mutator.errors import ModelNotFoundError, NothingToChangeError, UsageError
from rules import ALL_RULES, DEFAULT_ORDER, Rule, rule_class


@dataclass(frozen=True)
class Script:
    """A parsed script and its located model: everything a rule needs, computed once."""

    path: Path
    text: str
    module: cst.Module
    view: ModelView

    @classmethod
    def load(cls, path: Path, model_name: str | None = None) -> Script:
        text, module = load_module(path)
        try:
            view = locate(module, model_name)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"{path}: {exc}") from None
        return cls(path, text, module, view)

    @classmethod
    def from_text(
        cls, text: str, path: Path | str = "<script>", model_name: str | None = None
    ) -> Script:
        module = parse_script(text, path)
        return cls(Path(path), text, module, locate(module, model_name))


def rules_named(
    names: Sequence[str] | None, settings: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Rule]:
    """Rule instances for `names` (all, in the default order, when None), with their settings."""
    settings = settings or {}
    check_rule_names(names, settings)
    return [_instance(name, settings) for name in (names if names is not None else DEFAULT_ORDER)]


def check_rule_names(
    names: Sequence[str] | None, settings: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """UsageError for a rule name (in the order or the settings) that no rule has."""
    unknown = [name for name in (names or []) if name not in ALL_RULES]
    unknown += [name for name in settings or {} if name not in ALL_RULES]
    if unknown:
        raise UsageError(f"unknown rule {unknown[0]!r}; rules are: {', '.join(ALL_RULES)}")


def _instance(name: str, settings: Mapping[str, Mapping[str, Any]]) -> Rule:
    try:
        return rule_class(name)(**settings.get(name, {}))
    except TypeError as exc:
        raise UsageError(f"bad settings for rule {name}: {exc}") from None


def propose(script: Script, rules: Sequence[Rule]) -> list[Proposal]:
    """Every rule's candidates and skips, in rule order."""
    proposals: list[Proposal] = []
    for rule in rules:
        proposals.extend(rule.propose(script.view))
    return proposals


def choose(proposals: Sequence[Proposal], site: int | None = None) -> Candidate:
    """The first candidate (at `site` if given), or NothingToChangeError listing the reasons."""
    candidates = [p for p in proposals if isinstance(p, Candidate)]
    if site is not None:
        at_site = [c for c in candidates if c.site == site]
        if not at_site:
            sites = ", ".join(str(c.site) for c in candidates) or "none"
            raise UsageError(f"no candidate at site {site}; sites with a candidate: {sites}")
        return at_site[0]
    if candidates:
        return candidates[0]
    reasons = "; ".join(
        f"{s.rule}{'' if s.site is None else f' @{s.site}'}: {s.reason}"
        for s in proposals
        if isinstance(s, Skip)
    )
    raise NothingToChangeError(
        "no rule can change this model" + (f" ({reasons})" if reasons else "")
    )


def first_candidate(
    script: Script,
    names: Sequence[str] | None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    site: int | None = None,
) -> Candidate:
    """`choose(propose(script, rules_named(names)), site)`, asking one rule at a time.

    Stops at the first rule with a candidate (at `site`), so the rules after it are never
    imported: what `mutate preview` and `apply` need, at a fraction of the cost. When no rule
    has one, every rule is asked, so the error is the one `choose` gives.
    """
    settings = settings or {}
    check_rule_names(names, settings)
    for name in names if names is not None else DEFAULT_ORDER:
        for proposal in _instance(name, settings).propose(script.view):
            if isinstance(proposal, Candidate) and (site is None or proposal.site == site):
                return proposal
    return choose(propose(script, rules_named(names, settings)), site)


def rewrite(script: Script, candidate: Candidate) -> Rewrite:
    return apply_candidate(
        script.module,
        candidate,
        script.path.name,
        before=script.text,
        parent_of=script.view.parent_of,
    )


def joint(script: Script, first: Candidate, second: Candidate) -> Candidate | None:
    """Two rules' candidates on `script` as one change, or None where their edits meet."""
    return _joint(first, second, script.view.parent_of)


def joint_all(script: Script, parts: Sequence[Candidate]) -> Candidate | None:
    """Several candidates on `script` as one change (each layer widened: a wider model), or
    None where two meet or there are fewer than two."""
    return _joint_all(parts, script.view.parent_of)
