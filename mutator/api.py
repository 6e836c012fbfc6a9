"""The library API the CLI, the search and the pre-commit hook share: locate, propose, apply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst as cst

from mutator import engine
from mutator.candidate import Candidate, Proposal, Skip
from mutator.errors import ModelNotFoundError, NothingToChangeError, UsageError
from mutator.locate import locate
from mutator.model_view import ModelView
from mutator.source import load_module, parse_script
from rules import RULES_BY_NAME, Rule


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
    unknown = [name for name in (names or []) if name not in RULES_BY_NAME]
    unknown += [name for name in settings if name not in RULES_BY_NAME]
    if unknown:
        raise UsageError(f"unknown rule {unknown[0]!r}; rules are: {', '.join(RULES_BY_NAME)}")
    rules = []
    for name in names if names is not None else list(RULES_BY_NAME):
        try:
            rules.append(RULES_BY_NAME[name](**settings.get(name, {})))
        except TypeError as exc:
            raise UsageError(f"bad settings for rule {name}: {exc}") from None
    return rules


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


def rewrite(script: Script, candidate: Candidate) -> engine.Rewrite:
    return engine.apply(
        script.module,
        candidate,
        script.path.name,
        before=script.text,
        parent_of=script.view.parent_of,
    )
