"""A change trained from scratch stops at the target, and the script keeps the epochs it trained.

The search's half of `mutator.training.at_target`: `stop_for` says whether a candidate's trial
may stop once its metric is at the target (it trains from scratch, the metric is evaluate's as
the script prints it, and its epochs are written where the engine can cut them), and
`cut` turns a trial that stopped after epoch k of E into the change it really was: the
candidate's script with its epochs cut to k (the `fewer_epochs` rule's edit), its diff, its
description, and the script in the trial folder. Its value is that script's from scratch: the
run is the cut script's run, epoch for epoch.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mutator import api
from mutator.engine.candidate import Candidate
from mutator.engine.rewrite import unified_diff
from mutator.engine.source import write_atomically
from mutator.errors import MutatorError
from mutator.search.config import TuneSettings
from mutator.search.decide import Planned
from mutator.training.at_target import TargetStop
from rules.fewer_epochs import FewerEpochs


def stop_for(
    item: Planned, settings: TuneSettings, mode: str, script: Path, model_name: str | None
) -> TargetStop | None:
    """The target watch for a planned trial, or None: only a candidate trained from scratch,
    judged on evaluate's figure (not a validation one, not a printed one), whose epochs the
    engine can cut."""
    goal = settings.goal
    if not settings.fast.target_stop or goal.target is None or item.kind != "candidate":
        return None
    if item.warm is not None or goal.metric_regex is not None or goal.select_on != "test":
        return None
    if goal.metric is not None and goal.metric.startswith("val_"):
        return None
    epochs = cuttable_epochs(item.source, script, model_name)
    if epochs is None or epochs < 2:
        return None
    return TargetStop(target=goal.target, mode=mode, metric=goal.metric, epochs=epochs)


def cuttable_epochs(source: str, script: Path, model_name: str | None) -> int | None:
    """The epochs `source` asks for, when the engine can rewrite them (see `fewer_epochs`)."""
    try:
        parsed = api.Script.from_text(source, script, model_name)
    except MutatorError:
        return None
    cut = [p for p in api.propose(parsed, [FewerEpochs(to_epochs=1)]) if isinstance(p, Candidate)]
    return cut[0].params["epochs"][0] if cut else None


def cut(
    item: Planned,
    metrics: dict | None,
    parent_source: str,
    script: Path,
    folder: Path,
    model_name: str | None,
) -> Planned:
    """`item` as it was trained: when its fit stopped at the target after epoch k, its script
    with epochs cut to k, written over the one in its trial `folder`; else `item` itself."""
    stopped = (metrics or {}).get("at_target")
    if not isinstance(stopped, dict) or not isinstance(stopped.get("epoch"), int):
        return item
    epochs = stopped["epoch"]
    try:
        parsed = api.Script.from_text(item.source, script, model_name)
        proposals = api.propose(parsed, [FewerEpochs(to_epochs=epochs)])
    except MutatorError:
        return item
    candidate = next((p for p in proposals if isinstance(p, Candidate)), None)
    if candidate is None:
        return item
    source = api.rewrite(parsed, candidate).source
    write_atomically(folder / script.name, source)  # a resumed round trains it again
    before, after = candidate.params["epochs"]
    return replace(
        item,
        source=source,
        diff=unified_diff(parent_source, source, script.name),
        description=f"{item.description}; epochs {before} -> {after}, where it met the target "
        f"({stopped['key']} {stopped['value']:.4g})",
    )
