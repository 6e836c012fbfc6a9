"""What a trial is given besides its script: where it starts from, what it must keep up with,
what its model may cost, and how it runs (its share of the cores, its timeout, its seed).

The search writes the first three into the trial folder (`warm.json`, `prune.json`,
`budget.json`, `peak.json` for the script as given, `target.json` for a change trained from
scratch: `place_inputs`), where the harness finds them under any runner; the rest becomes the
runner's `TrialSpec`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mutator.engine.candidate import Candidate
from mutator.search.config import BudgetSettings, TuneSettings, cores
from mutator.search.diagnosis import DIVERGING, OVER_FITTING, diagnose
from mutator.search.ledger import Ledger, trial_metrics
from mutator.search.state import SearchState
from mutator.training.at_target import TARGET_FILE, TargetStop
from mutator.training.budget import BUDGET_FILE, TrialBudget
from mutator.training.peak import PEAK_FILE, PeakStop
from mutator.training.prune import PRUNE_FILE, PrunePlan, watched_key
from mutator.training.runner import TrialSpec
from mutator.training.warm_plan import COLD, CONTINUE, WARM_FILE, WarmPlan, warm_mode
from rules import rule_class, warm_mappings


def place_inputs(
    folder: Path,
    warm: WarmPlan | None = None,
    prune: PrunePlan | None = None,
    budget: TrialBudget | None = None,
    peak: PeakStop | None = None,
    target: TargetStop | None = None,
) -> None:
    """The trial folder's input files: each one given is written, each other one removed (a
    resumed or reused folder may hold an earlier run's, which must not steer this one)."""
    given = (
        (warm, WARM_FILE),
        (prune, PRUNE_FILE),
        (budget, BUDGET_FILE),
        (peak, PEAK_FILE),
        (target, TARGET_FILE),
    )
    for plan, name in given:
        if plan is not None:
            plan.write(folder)
        else:
            (folder / name).unlink(missing_ok=True)


def warm_plan(
    ledger: Ledger, state: SearchState, candidate: Candidate, settings: TuneSettings
) -> tuple[WarmPlan | None, str]:
    """Where a child of the best may start from, or why it starts from scratch."""
    if not settings.fast.warm_start:
        return None, "warm start is off"
    if (unsound := unsound_parent(state, settings)) is not None:
        return None, unsound
    parent = state.weights_id
    kept = ledger.keep_weights(parent) if parent is not None else None
    if parent is None or kept is None:
        return None, "its parent saved no model to start from"
    ran = script_seconds(ledger.trial_dir(parent))
    if ran is not None and ran < settings.fast.warm_after:
        return None, (
            f"cold is as cheap: its parent's script ran in {ran:.1f} s "
            f"(< warm_after {settings.fast.warm_after:g} s), and a cold metric needs no confirm"
        )
    fits = fit_count(ledger.trial_dir(parent))
    if fits != 1:
        return None, f"the script calls fit {fits} times; only one fit can be continued"
    mode = warm_mode(warm_mappings(candidate.rules))
    if mode == COLD:
        return None, "; ".join(
            f"{rule_class(name).name}: {rule_class(name).cold_why or 'no sound mapping'}"
            for name in candidate.rules
            if rule_class(name).warm == COLD
        )
    if mode == CONTINUE:
        old = (candidate.params.get("epochs") or [None])[0]
        if not isinstance(old, int):
            return None, "the parent's epochs are not known"
        return WarmPlan(CONTINUE, parent, str(kept), epochs_done=old), ""
    return WarmPlan(mode, parent, str(kept), share=settings.fast.warm_share), ""


def unsound_parent(state: SearchState, settings: TuneSettings) -> str | None:
    """Why the best's weights are no place for a child to start, from its curves (`diagnosis`),
    or None.

    A parent that diverged (NaN, rising, thrashing) hands on the damage its large steps did (a
    learning rate cut from 3.0 stayed at the parent's 0.63); one that over-fitted hands on what
    it memorised (a Dropout added to a regression trained 100 epochs past its best began at
    the parent's over-fitted val loss, and was pruned for it). Their children start from scratch.
    """
    if state.best_stopped:
        return "its parent was stopped past its peak: its weights are not its script's"
    diagnosis = diagnose(
        state.best_history, settings.goal.target, state.mode, settings.goal.min_improvement
    )
    if diagnosis.kind == DIVERGING:
        return "its parent diverged: weights blown up by its steps are no place to start"
    if diagnosis.kind == OVER_FITTING:
        return "its parent over-fitted: what its weights memorised is no place to start"
    return None


def prune_plan(state: SearchState, settings: TuneSettings) -> PrunePlan | None:
    """The best's curve a candidate must keep up with, when pruning is on and there is one.

    The curve is one run's: where the script's runs differ from seed to seed by more than
    `prune_margin` (noise measured, `mutator.search.noise`), a candidate may trail it by one
    noise band (the spread of the difference of two runs) before it is stopped, or the pruner
    would stop changes for the seed they drew. A validation loss is watched relative to its
    own value (`prune_margin` of it): losses have no common scale, and the noise band is in
    the metric's units, not the loss's. With noise measured, an accuracy's margin is also at
    least what sampling moves it by over the trial's validation examples (counted in the
    trial: `PrunePlan.margin_at`), which for a small validation set is more than the band.
    """
    if not settings.fast.prune:
        return None
    watched = watched_key(state.best_history)
    if watched is None:
        return None
    key, mode = watched
    curve = tuple(v for v in state.best_history.get(key, []) if v is not None)
    relative = mode == "min"
    band = (
        state.noise_band(settings.noise.multiple)
        if settings.noise.runs and not relative
        else None
    )
    margin = max(settings.fast.prune_margin, band.band(1) if band is not None else 0.0)
    return PrunePlan(
        key,
        mode,
        curve,
        margin=round(margin, 6),
        grace=settings.fast.prune_grace,
        reference_trial=state.weights_id,
        relative=relative,
        sampling_multiple=settings.noise.multiple if band is not None else None,
    )


def budget_for(settings: TuneSettings | BudgetSettings) -> TrialBudget | None:
    """The size and pace a candidate's model is held to (`budget.json`), or None when no limit
    is set. Only the changes the search judges are held to it (a candidate, and the recheck
    of one, whose second run must stay within it too): the script as pushed is what it is, so
    its baseline and noise runs, and the confirm and final runs of the best, train without
    one (a best other than the baseline was a candidate within it)."""
    budget = settings.budget if isinstance(settings, TuneSettings) else settings
    if budget.max_params is None and budget.max_epoch_seconds is None:
        return None
    return TrialBudget(budget.max_params, budget.max_epoch_seconds)


def guess_budget(budget: TrialBudget | None, spent: float) -> TrialBudget:
    """A candidate's budget: the user's limits (`budget_for`), and what a guess may cost: its
    pace times its epochs within the seconds the search has `spent` so far.

    A search that lets a trial cost more than all the evidence behind it can pay most of its
    time for one guess (a second Conv block of 512 filters after one of 512: 132 s after 95 s
    of search). Held to what was spent, no trial costs more than the search before it, and
    the allowance grows with what the search spends, so the big steps it needs still come,
    once cheaper ones have been measured.
    """
    return replace(budget or TrialBudget(), max_fit_seconds=round(spent, 3))


def over_budget_note(budget: TrialBudget | None, metrics: dict) -> str | None:
    """What to tell the user when the script as given is already over the budget: every
    candidate as big (or as slow) will be refused."""
    if budget is None:
        return None
    breach = budget.over_params(metrics.get("parameters"), "the baseline") or (
        budget.over_pace(metrics.get("seconds_per_epoch"), "the baseline")
    )
    if breach is None:
        return None
    return (
        f"the script as given is {breach.error()}: it stays the start, but only a candidate "
        "within the budget can be accepted (`mutate slim` shrinks a model)"
    )


def trial_spec(
    script: Path,
    ledger: Ledger,
    spent: float,
    folder: Path,
    settings: TuneSettings,
    side_by_side: int,
    warm: bool,
    seed_offset: int = 0,
) -> TrialSpec:
    """The runner's view of a trial: its files, timeout (within what is left of the time
    budget, `spent` seconds of it gone), seed and share of the cores."""
    remaining = None
    if settings.budget.time_budget is not None:
        remaining = max(1.0, settings.budget.time_budget - spent)
    timeout = min(filter(None, [settings.budget.trial_timeout, remaining]), default=None)
    env = seed_env(settings.climb.seed)
    if seed_offset:
        env["MUTATOR_SEED_OFFSET"] = str(seed_offset)
    if side_by_side > 1:
        env["MUTATOR_THREADS"] = str(max(1, cores() // side_by_side))
    return TrialSpec(
        script=folder / script.name,
        trial_dir=folder,
        metric=settings.goal.metric,
        mode=settings.goal.mode,
        metric_regex=settings.goal.metric_regex,
        timeout=timeout,
        script_args=settings.runner.script_args,
        env=env,
        source_dir=script.resolve().parent,
        read_only_dirs=(ledger.weights_dir,) if warm else (),
        side_by_side=side_by_side,
    )


def fit_count(trial_dir: Path) -> int:
    return len(trial_metrics(trial_dir).get("history") or [])


def script_seconds(trial_dir: Path) -> float | None:
    """How long the trial's script ran (its own time, not the worker's start), when recorded:
    its wall seconds, or its CPU seconds when fewer (a machine loaded by other work stretches
    the wall time, not the CPU time), so that whether its children start cold does not turn
    on the machine's load and a seeded run takes the same path twice."""
    metrics = trial_metrics(trial_dir)
    known = [
        float(value)
        for value in (metrics.get("seconds"), metrics.get("cpu_seconds"))
        if isinstance(value, (int, float)) and value > 0
    ]
    return min(known) if known else None


def seed_env(seed: int | None) -> dict[str, str]:
    return {} if seed is None else {"MUTATOR_SEED": str(seed), "PYTHONHASHSEED": str(seed)}
