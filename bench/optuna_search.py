"""Optuna's TPE with its median pruner over a suite task's space: the search users pick instead
of KerasTuner, bench_suite.py's `optuna` anchor.

    python bench/optuna_search.py --seed S --targets T [T...] --max-trials N \
        --time-cap SECONDS --out OUT.jsonl [--task NAME] [--every-epoch]

The same child as `search_space.py kerastuner` (its `Child`: the task's data and fit, the test
set at every epoch's end kept off the clock, the `start`, `met`, `trial` and `end` lines the
parent reads), with Optuna searching. Both search one space, written once: the task's
`build(hp)` (bench/suite/spaces.py) is called with `OptunaHP`, which offers KerasTuner's
`hp.Int / Choice / Float / Boolean` backed by the Optuna trial; the epochs are a choice among the
task's, declared after the model's, as RandomSearch's are.

The study is what a user writes from Optuna's documentation, with its defaults:
  - `TPESampler(seed=S)`: 10 random trials before its model takes over (KerasTuner's searches
    start at random too; the spaces' defaults are accepted and not used);
  - `MedianPruner()`, Optuna's default pruner and the one of its Keras examples: from the sixth
    trial on, a trial whose validation metric at an epoch is worse than the median of the
    earlier trials' at that epoch stops there. A Keras callback reports the metric at every
    epoch's end (`trial.report`) and asks `trial.should_prune()`; a pruned trial counts against
    --max-trials, as it does in Optuna's `n_trials`;
  - the trial's value is its last epoch's validation metric, maximised (a loss: minimised);
  - `keras.backend.clear_session()` before each build, as KerasTuner and Optuna's examples do;
  - the study in memory (Optuna's default storage).
It stops at the highest target, at --max-trials or at --time-cap seconds from its start (the
stop is raised through the trial it happens in, which Optuna's log calls failed).

Keras, TensorFlow and Optuna are imported only inside the child: bench_suite.py imports nothing
of this module but its path.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import search_space  # its clock, STARTED, is this child's


class OptunaHP:
    """KerasTuner's `hp`, as the spaces call it, backed by an Optuna trial: each `hp.X(name,
    ...)` is the trial's `suggest_*(name, ...)` over the same values. KerasTuner's `default`
    (a value before its oracle picks one) has no Optuna counterpart: accepted, and unused."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def Int(  # KerasTuner's names, capitalised
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str | None = None,
        default: int | None = None,
        **_: Any,
    ) -> int:
        log = sampling == "log"
        return self.trial.suggest_int(name, min_value, max_value, step=step or 1, log=log)

    def Float(
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str | None = None,
        default: float | None = None,
        **_: Any,
    ) -> float:
        log = sampling == "log"
        return self.trial.suggest_float(name, min_value, max_value, step=step, log=log)

    def Choice(
        self, name: str, values: list, ordered: bool | None = None, default: Any = None, **_: Any
    ) -> Any:
        return self.trial.suggest_categorical(name, list(values))

    def Boolean(self, name: str, default: bool = False, **_: Any) -> bool:
        return self.trial.suggest_categorical(name, [False, True])


def run_optuna(args: argparse.Namespace) -> int:
    import keras
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line a trial, as KerasTuner's
    child = search_space.Child(args)
    space = child.space
    watched = f"val_{space.metric}"  # KerasTuner's objective, too

    class Pruning(keras.callbacks.Callback):
        """Report the validation metric at every epoch's end; end the fit after this epoch where
        the pruner says (stop_training: the epoch's test value is still read, as any epoch's)."""

        def __init__(self, trial: Any) -> None:
            super().__init__()
            self.trial, self.pruned = trial, False

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(watched)
            if value is None:
                return
            self.trial.report(float(value), epoch)
            if self.trial.should_prune():
                self.pruned = True
                self.model.stop_training = True

    ended: dict[int, tuple[float, dict[str, Any]]] = {}  # trial number: its start, its summary

    def objective(trial: Any) -> float:
        child.check_deadline()
        started = time.monotonic()
        keras.backend.clear_session()
        hp = OptunaHP(trial)
        model = space.build(hp)
        epochs = hp.Choice("epochs", list(space.epochs), default=space.default_epochs)
        pruning = Pruning(trial)
        history, last = child.fit(model, epochs, [pruning])
        ended[trial.number] = (started, last)
        if pruning.pruned:
            raise optuna.TrialPruned()
        return float(history.history[watched][-1])

    def trial_ended(study: Any, trial: Any) -> None:
        """After the study stored the trial (Optuna's callbacks): its line, as KerasTuner's."""
        started, last = ended.pop(trial.number, (time.monotonic(), {}))
        record = {
            "trial_id": trial.number,
            "status": trial.state.name,  # COMPLETE, PRUNED or FAIL (a NaN metric)
            "seconds": round(time.monotonic() - started, 3),
            "val_score": trial.value,
            "hp": trial.params,
        }
        child.trial_ended(record, last)

    study = optuna.create_study(
        direction="maximize" if space.mode == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        pruner=optuna.pruners.MedianPruner(),
    )

    def search() -> None:
        study.optimize(objective, n_trials=args.max_trials, callbacks=[trial_ended])

    child.search(search, "max_trials")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    search_space.add_search_flags(parser)
    return run_optuna(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
