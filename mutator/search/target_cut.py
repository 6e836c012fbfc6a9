"""A training from scratch stops at the target, and the script keeps the epochs it trained.

The search's half of `mutator.training.at_target`: `stop_for` says whether a trial may stop
once its metric is at the target (the script as given, a change trained from scratch, or the
best's confirm; the metric is evaluate's as the script prints it, and its epochs are written
where the engine can cut them), and `cut` turns a trial that stopped after epoch k of E into
the script it really trained: its script with its epochs cut to k (the `fewer_epochs` rule's
edit), its diff, its description, and the script in the trial folder. Its value is that
script's from scratch: the run is the cut script's run, epoch for epoch. A baseline or a
confirm so cut makes the cut script the best (`state.absorb`): the script as given reaches
the target in fewer epochs.
"""

from __future__ import annotations

import ast
from collections import Counter
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
    """The target watch for a planned trial, or None: only the script as given, a change
    trained from scratch or the best's confirm (the best's script from scratch), judged on
    evaluate's figure (not a validation one, not a printed one), whose epochs the engine can
    cut. `mode` is the metric's way, `auto` while the script as given has not reported it."""
    goal = settings.goal
    if not settings.fast.target_stop or goal.target is None:
        return None
    if item.kind not in ("baseline", "candidate", "confirm"):
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
    """The epochs `source` asks for, when the engine can rewrite them (see `fewer_epochs`) and
    nothing but the fit reads them: a learning-rate schedule sized by `EPOCHS` would make
    the cut script train otherwise than the stopped run did."""
    try:
        parsed = api.Script.from_text(source, script, model_name)
    except MutatorError:
        return None
    site = parsed.view.epochs
    if site is None or not read_once(source, site.names):
        return None
    cut = [p for p in api.propose(parsed, [FewerEpochs(to_epochs=1)]) if isinstance(p, Candidate)]
    return cut[0].params["epochs"][0] if cut else None


def read_once(source: str, names: tuple[str, ...]) -> bool:
    """Whether each of `names` is read at most once in `source` (on its way to the fit)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # libcst read it, Python's parser did not: do not guess
        return False
    reads = Counter(
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    )
    return all(reads[name] <= 1 for name in names)


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
