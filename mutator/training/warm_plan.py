"""Where a trial starts from: `warm.json` in its trial dir, written by the search, read by the harness.

A child of an accepted trial need not train from nothing. The search writes what it may start
from; the harness, at the script's first `fit`, tries it and records what it did:

- `continue` (more epochs, same architecture): the parent's final weights and optimizer state,
  and `initial_epoch` = the parent's epochs, so the child trains only the epochs it added;
- `transfer` (a capacity change): the parent's weights mapped onto the new architecture
  (`warmstart.transfer_weights`: Net2Net where shapes allow), then `share` of the script's
  epochs;
- `retrain` (the same architecture trained differently: a learning rate, a batch size): the
  parent's weights and optimizer state (its moments, not its learning rate: that is what
  changed), then `share` of the script's epochs.

Which one a child takes comes from the rules that made it: each declares its mapping (`warm`
in `rules._rule`), and a rule with no sound one declares `cold`.

Whatever the plan, the harness falls back to the script's own from-scratch training when the
plan cannot be applied soundly, and says why; metrics.json's `start` holds the outcome. A
warm-started metric is an estimate of what the script reaches from scratch: the search confirms
its best from scratch before it reports a target as reached.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mutator.training.trialio import one_line_error, write_json_atomically

WARM_FILE = "warm.json"
CONTINUE, TRANSFER, RETRAIN, COLD = "continue", "transfer", "retrain", "cold"


def warm_mode(mappings: Sequence[str]) -> str:
    """How a child starts warm, from the mappings its rules declare (one per part of a joint
    change): `continue` when every part only adds epochs; `cold` when any part has no sound
    mapping; `retrain` when the architecture stays (a learning rate, with or without more
    epochs); else `transfer`, which maps the weights onto the new architecture."""
    kinds = set(mappings)
    if not kinds or kinds == {CONTINUE}:
        return CONTINUE if kinds else COLD
    if COLD in kinds:
        return COLD
    if kinds <= {RETRAIN, CONTINUE}:
        return RETRAIN
    return TRANSFER


@dataclass(frozen=True)
class WarmPlan:
    mode: str  # continue | transfer
    parent_trial: int
    parent_model: str  # the parent's trained .keras file (absolute: a container mounts it there)
    epochs_done: int = 0  # continue: the epochs the parent trained, where the child goes on
    share: float = 0.5  # transfer: the share of the script's epochs the child trains

    def write(self, trial_dir: Path) -> None:
        write_json_atomically(trial_dir / WARM_FILE, asdict(self))

    @classmethod
    def read(cls, trial_dir: Path) -> WarmPlan | None:
        try:
            data = json.loads((trial_dir / WARM_FILE).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


@dataclass
class StartRecord:
    """What the first fit started from, for metrics.json: `warm` or `cold`, and why."""

    mode: str = "cold"
    why: str | None = None
    parent_trial: int | None = None
    initial_epoch: int = 0
    epochs: int | None = None  # the epochs this fit was asked for, after a transfer's share

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def apply_plan(keras: Any, model: Any, arguments: dict[str, Any], plan: WarmPlan) -> StartRecord:
    """Start `model` from the plan, changing fit's bound `arguments`; cold (untouched) if unsound."""
    record = StartRecord(parent_trial=plan.parent_trial)
    epochs = arguments.get("epochs", 1)
    if not isinstance(epochs, int):
        record.why = f"cannot read fit's epochs ({epochs!r})"
        return record
    if not isinstance(model, keras.Sequential) and type(model).__name__ != "Functional":
        record.why = (
            f"a subclassed model ({type(model).__name__}): its weights have no sound mapping "
            "from the parent's, so it trains from scratch"
        )
        return record
    if not getattr(model, "built", False):
        record.why = "the model is built by its first batch, after the start could be set"
        return record
    try:
        parent = keras.models.load_model(plan.parent_model, compile=plan.mode != TRANSFER)
    except Exception as error:  # noqa: BLE001 - custom objects, a missing file: start cold
        record.why = f"cannot load the parent's model ({one_line_error(error)})"
        return record
    if plan.mode == CONTINUE:
        return _continue(model, parent, arguments, plan, epochs, record)
    if plan.mode == RETRAIN:
        return _retrain(model, parent, arguments, plan, epochs, record)
    return _transfer(model, parent, arguments, plan, epochs, record)


def _continue(model, parent, arguments, plan, epochs, record) -> StartRecord:  # type: ignore[no-untyped-def]
    from mutator.training.warmstart import copy_optimizer_state

    if epochs <= plan.epochs_done:
        record.why = f"fit asks for {epochs} epochs, not more than the parent's {plan.epochs_done}"
        return record
    shapes = [tuple(w.shape) for w in model.weights]
    if shapes != [tuple(w.shape) for w in parent.weights]:
        record.why = "the model's weights are not the parent's shapes"
        return record
    model.set_weights(parent.get_weights())
    not_copied = copy_optimizer_state(parent, model)
    arguments["initial_epoch"] = plan.epochs_done
    record.mode, record.initial_epoch, record.epochs = "warm", plan.epochs_done, epochs
    record.why = f"continued from trial {plan.parent_trial} at epoch {plan.epochs_done}" + (
        f" (optimizer state fresh: {not_copied})" if not_copied else ""
    )
    return record


def _retrain(model, parent, arguments, plan, epochs, record) -> StartRecord:  # type: ignore[no-untyped-def]
    from mutator.training.warmstart import copy_optimizer_state

    shapes = [tuple(w.shape) for w in model.weights]
    if shapes != [tuple(w.shape) for w in parent.weights]:
        record.why = "the model's weights are not the parent's shapes"
        return record
    model.set_weights(parent.get_weights())
    not_copied = copy_optimizer_state(parent, model, keep_learning_rate=True)
    shortened = max(1, math.ceil(plan.share * epochs))
    arguments["epochs"] = shortened
    record.mode, record.epochs = "warm", shortened
    record.why = (
        f"from trial {plan.parent_trial}: its weights"
        + (f" (optimizer state fresh: {not_copied})" if not_copied else " and optimizer state")
        + f"; {shortened} of {epochs} epochs"
    )
    return record


def _transfer(model, parent, arguments, plan, epochs, record) -> StartRecord:  # type: ignore[no-untyped-def]
    from mutator.training.warmstart import transfer_weights

    try:
        transfer = transfer_weights(parent, model, seed=plan.parent_trial)
    except Exception as error:  # noqa: BLE001 - a mapping bug must cost a warm start, not a trial
        print(f"mutator: warm start failed, training from scratch: {error!r}", file=sys.stderr)
        record.why = f"the weight transfer failed ({one_line_error(error)})"
        return record
    if transfer.mode != "warm":
        record.why = transfer.why
        return record
    shortened = max(1, math.ceil(plan.share * epochs))
    arguments["epochs"] = shortened
    record.mode, record.epochs = "warm", shortened
    record.why = f"from trial {plan.parent_trial}: {transfer.why}; {shortened} of {epochs} epochs"
    return record
