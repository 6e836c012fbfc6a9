"""How the harness hooks into Keras: per-fit epoch records, BackupAndRestore injection, and the
results of `evaluate`, kept apart from the harness's process plumbing.

Nothing here imports Keras at module import: the harness passes the `keras` module in once the
script has shown that it uses it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mutator.training import metrics as metric_rules
from mutator.training.at_target import TargetWatch, caller_namespace, resolve
from mutator.training.at_target import callback_class as target_callback_class
from mutator.training.budget import BudgetWatch, TrialBudget, charged, clocks, count_parameters
from mutator.training.budget import callback_class as budget_callback_class
from mutator.training.peak import PeakStop
from mutator.training.peak import callback_class as peak_callback_class
from mutator.training.prune import PrunePlan
from mutator.training.prune import callback_class as prune_callback_class
from mutator.training.trialio import one_line_error, write_json_atomically
from mutator.training.warm_plan import StartRecord, WarmPlan, apply_plan


@dataclass
class FitRecord:
    """One `fit` call: where this process started it, how far it got, and its epoch logs.

    `epochs` holds one list per logged key, aligned on epochs `first_epoch`, `first_epoch + 1`...
    (None where a key was not logged that epoch, e.g. with validation_freq > 1). After a resume
    the lists still start at epoch 0 when the killed run's logs were saved, else at the resume.

    `parameters` is the model's `count_params()` once it is built (None: it could not be
    counted); `epoch_seconds` the wall seconds of each epoch this process trained, in order,
    and `epoch_cpu_seconds` the process's CPU seconds in them (not kept across a resume: a
    resumed process traces its graph again in its first epoch).
    """

    fit: int
    epochs_requested: int | None
    initial_epoch: int = 0
    first_epoch: int = 0
    count: int = 0
    epochs: dict[str, list[float | None]] = field(default_factory=dict)
    finished: bool = False
    settled: bool = False  # initial_epoch is known
    parameters: int | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    epoch_cpu_seconds: list[float] = field(default_factory=list)

    def begin_epoch(self, epoch: int) -> None:
        if not self.settled:
            self.initial_epoch, self.settled = epoch, True
        if self.count == 0:
            self.first_epoch = epoch

    def add_epoch(
        self,
        logs: dict[str, Any] | None,
        seconds: float | None = None,
        cpu_seconds: float | None = None,
    ) -> None:
        if seconds is not None:
            self.epoch_seconds.append(round(seconds, 4))
            self.epoch_cpu_seconds.append(round(seconds if cpu_seconds is None else cpu_seconds, 4))
        values = {key: metric_rules.as_float(value) for key, value in (logs or {}).items()}
        for key in values:
            self.epochs.setdefault(key, [None] * self.count)
        for key, series in self.epochs.items():
            series.append(values.get(key))
        self.count += 1

    def restore(self, saved: dict[str, Any] | None, resumed_at: int) -> None:
        """Take back the killed run's logs up to the epoch Keras resumes at (they may run ahead)."""
        self.initial_epoch, self.settled = resumed_at, True
        first, count = (saved or {}).get("first_epoch", 0), (saved or {}).get("count", 0)
        if saved and first <= resumed_at <= first + count:
            keep = resumed_at - first
            self.epochs = {key: list(series)[:keep] for key, series in saved["epochs"].items()}
            self.first_epoch, self.count = first, keep
        else:
            self.epochs, self.first_epoch, self.count = {}, resumed_at, 0

    @property
    def charged_seconds(self) -> list[float]:
        """Each timed epoch as a budget charges it (`budget.charged`)."""
        return [
            charged(wall, cpu)
            for wall, cpu in zip(self.epoch_seconds, self.epoch_cpu_seconds, strict=True)
        ]

    def settle(self, start: int) -> None:
        if not self.settled:
            self.initial_epoch, self.settled = start, True
        if self.count == 0:
            self.first_epoch = self.initial_epoch

    def state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("first_epoch", "count", "epochs", "finished")}

    def to_json(self) -> dict[str, Any]:
        return {
            "fit": self.fit,
            "initial_epoch": self.initial_epoch,
            "first_epoch": self.first_epoch,
            "epochs_completed": self.first_epoch + self.count,
            "epochs_requested": self.epochs_requested,
            "finished": self.finished,
            "epochs": self.epochs,
            "parameters": self.parameters,
            "epoch_seconds": self.epoch_seconds,
            "epoch_cpu_seconds": self.epoch_cpu_seconds,
        }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _callback_classes(keras: Any) -> tuple[type, type, type]:
    """The harness's callbacks; defined late because their base classes are Keras's."""

    class FitRecorder(keras.callbacks.Callback):
        """Logs each epoch and its wall time, and saves the logs beside the backup before the
        backup is written; counts the model's parameters once it is built."""

        def __init__(self, record: FitRecord, state_path: Path | None) -> None:
            super().__init__()
            self._record, self._state_path = record, state_path
            self._epoch_started: tuple[float, float] | None = None

        def on_train_begin(self, logs=None):
            self._record.parameters = count_parameters(self.model)

        def on_epoch_begin(self, epoch, logs=None):
            self._record.begin_epoch(epoch)
            self._epoch_started = clocks()

        def on_epoch_end(self, epoch, logs=None):
            started, self._epoch_started = self._epoch_started, None
            ended = clocks()
            wall, cpu = (None, None) if started is None else (ended[0] - started[0], ended[1] - started[1])
            if self._record.parameters is None:  # built by its first batch (subclassed)
                self._record.parameters = count_parameters(self.model)
            self._record.add_epoch(logs, wall, cpu)
            if self._state_path is not None:
                write_json_atomically(self._state_path, self._record.state())

    class EvaluationRecorder(keras.callbacks.Callback):
        """Catches evaluate's results as a dict, whatever `return_dict` asked for."""

        logs: dict[str, Any] | None = None

        def on_test_end(self, logs=None):
            self.logs = dict(logs or {})

    class ResumableBackup(keras.callbacks.BackupAndRestore):
        """BackupAndRestore that survives a bad backup and skips a fit that already finished.

        Keeps its checkpoint at the end of a fit, so a trial killed in a later fit does not
        retrain this one; saves once more at train end so weights restored by callbacks before
        it (EarlyStopping's best weights) are the ones kept.
        """

        def __init__(self, backup_dir: Path, record: FitRecord, state_path: Path) -> None:
            super().__init__(str(backup_dir), double_checkpoint=True, delete_checkpoint=False)
            self._record, self._state_path = record, state_path
            self._disabled = False

        def on_train_begin(self, logs=None):
            self._disabled = not self.model.built
            if self._disabled:
                # Keras can only restore into built weights; a subclassed model is built by its
                # first batch, after this point. Backups it could never restore are not written.
                print(
                    f"mutator: fit {self._record.fit} starts with an unbuilt model (subclassed?);"
                    " it will not resume after a kill",
                    file=sys.stderr,
                )
                return
            try:
                super().on_train_begin(logs)
            except Exception as error:  # noqa: BLE001 - a bad backup must not fail the trial
                print(
                    f"mutator: cannot resume from {self.backup_dir} ({one_line_error(error)}); "
                    "this fit starts over",
                    file=sys.stderr,
                )
                self.model._initial_epoch = None
                shutil.rmtree(self.backup_dir, ignore_errors=True)
                self._state_path.unlink(missing_ok=True)
            resumed_at = self.model._initial_epoch or 0
            self._current_epoch = resumed_at
            if resumed_at:
                saved = _read_json(self._state_path)
                self._record.restore(saved, resumed_at)
                if saved and saved.get("finished"):
                    self.model._initial_epoch = max(resumed_at, self.params.get("epochs") or 0)
                print(
                    f"mutator: fit {self._record.fit} resumes after epoch {resumed_at}"
                    + (" (already finished)" if saved and saved.get("finished") else ""),
                    file=sys.stderr,
                )

        def on_epoch_end(self, epoch, logs=None):
            if not self._disabled:
                super().on_epoch_end(epoch, logs)

        def on_train_batch_end(self, batch, logs=None):
            if not self._disabled:
                super().on_train_batch_end(batch, logs)

        def on_train_end(self, logs=None):
            if self._disabled:
                return
            try:
                self._save_model()
            except Exception as error:  # noqa: BLE001 - only resuming would suffer
                print(f"mutator: final backup failed ({one_line_error(error)})", file=sys.stderr)
                return
            self._record.finished = True
            write_json_atomically(self._state_path, self._record.state())
            super().on_train_end(logs)

    return FitRecorder, EvaluationRecorder, ResumableBackup


def offset_script_seeds(keras: Any, offset: int) -> None:
    """Every seed the script sets through Keras or TensorFlow, moved by `offset`.

    A script that calls `keras.utils.set_random_seed(0)` itself trains the same model whatever
    the harness seeded before it: to see how much its metric moves from seed to seed, the
    script's own seed must move. Data splits seeded apart (`random_state=0`) stay as written:
    the noise measured is the model's, on the script's own data.
    """
    original = keras.utils.set_random_seed

    def set_random_seed(seed: int) -> None:
        original(int(seed) + offset)

    names = ("keras.utils", "keras.src.utils.rng_utils", "keras._tf_keras.keras.utils")
    for name in names:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "set_random_seed", None) is original:
            module.set_random_seed = set_random_seed
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None:
        original_tf = tensorflow.random.set_seed

        def set_seed(seed: int | None) -> None:
            original_tf(None if seed is None else int(seed) + offset)

        tensorflow.random.set_seed = set_seed


class KerasHooks:
    """Wraps `keras.Model.fit` and `.evaluate` (tf.keras is the same class in Keras 3) to record.

    `checkpoint_dir` None means no BackupAndRestore is added (--no-backup).
    """

    def __init__(
        self,
        checkpoint_dir: Path | None,
        seed: int | None = None,
        warm: WarmPlan | None = None,
        prune: PrunePlan | None = None,
        seed_offset: int = 0,
        budget: TrialBudget | None = None,
        peak: PeakStop | None = None,
        target: TargetWatch | None = None,
    ) -> None:
        import keras

        self.keras = keras
        self.checkpoint_dir = checkpoint_dir
        self.warm = warm
        self.prune = prune  # watches the first fit only, as the warm start applies to it
        self.pruner: Any = None
        self.peak = peak  # the script as given: its first fit stops past its peak (`peak`)
        self.peaker: Any = None
        self.target = target  # a change from scratch: its first fit stops at the target
        self.targeter: Any = None
        # every fit is held to the budget (`budget`); the first breach stops the trial
        self.budget = BudgetWatch(budget) if budget is not None else None
        self.start: StartRecord | None = None  # what the first fit started from
        self.fits: list[FitRecord] = []
        self.evaluations: list[dict[str, float | None]] = []
        self.last_model: Any = None
        # Whether the data fit validated on is the data evaluate tested on (None: cannot tell):
        # then the figure the search selects on is the figure it reports, and is optimistic.
        self.validation_is_test: bool | None = None
        # How many examples the first evaluate tested on (None: cannot tell, e.g. a dataset):
        # an accuracy over n examples moves about sqrt(p (1 - p) / n) from seed to seed.
        self.evaluated_examples: int | None = None
        self._validation: tuple[Any, Any] | None = None
        self._fit_depth = 0
        self._fit_recorder, self._evaluation_recorder, self._backup = _callback_classes(keras)
        self._budget_callback = budget_callback_class(keras) if budget is not None else None
        if seed_offset:
            offset_script_seeds(keras, seed_offset)
        if seed is not None or seed_offset:
            keras.utils.set_random_seed((seed or 0) + seed_offset)

    def install(self) -> KerasHooks:
        model_class = self.keras.Model
        original_fit, original_evaluate = model_class.fit, model_class.evaluate
        fit_signature = inspect.signature(original_fit)
        evaluate_signature = inspect.signature(original_evaluate)

        @functools.wraps(original_fit)
        def fit(model, *args, **kwargs):
            return self._fit(original_fit, fit_signature, model, args, kwargs)

        @functools.wraps(original_evaluate)
        def evaluate(model, *args, **kwargs):
            return self._evaluate(original_evaluate, evaluate_signature, model, args, kwargs)

        model_class.fit, model_class.evaluate = fit, evaluate
        return self

    def _fit(self, original, signature, model, args, kwargs):
        try:
            bound = signature.bind(model, *args, **kwargs)
        except TypeError:
            return original(model, *args, **kwargs)  # let Keras word the error
        if self.start is None:
            self.start = (
                apply_plan(self.keras, model, bound.arguments, self.warm)
                if self.warm is not None
                else StartRecord()
            )
        validation = bound.arguments.get("validation_data")
        if isinstance(validation, (tuple, list)) and len(validation) >= 2:
            self._validation = (validation[0], validation[1])
        epochs = metric_rules.as_float(bound.arguments.get("epochs", 1))
        record = FitRecord(
            fit=len(self.fits) + 1, epochs_requested=None if epochs is None else int(epochs)
        )
        self.fits.append(record)
        self.last_model = model
        callbacks = bound.arguments.get("callbacks")
        injected = False
        if not isinstance(callbacks, self.keras.callbacks.CallbackList):
            callbacks, state_path, backup = list(callbacks or []), None, []
            user_backup = any(
                isinstance(c, self.keras.callbacks.BackupAndRestore) for c in callbacks
            )
            if self.checkpoint_dir is not None and not user_backup:
                state_path = self.checkpoint_dir / f"fit-{record.fit}.json"
                backup = [
                    self._backup(self.checkpoint_dir / f"fit-{record.fit}", record, state_path)
                ]
                # Keras never clears `_initial_epoch` after a restore, so a later fit of the same
                # model would silently skip that many epochs; start each of our fits clean.
                model._initial_epoch = None
                injected = True
            pruner = []
            if self.prune is not None and self.pruner is None:
                examples = validation_examples(bound.arguments)
                self.pruner = prune_callback_class(self.keras)(self.prune, examples)
                pruner = [self.pruner]
            if self.peak is not None and self.peaker is None:
                self.peaker = peak_callback_class(self.keras)(self.peak)
                pruner.append(self.peaker)
            if self.target is not None and record.fit == 1:
                self.targeter = self._target_callback()
                pruner += [self.targeter] if self.targeter is not None else []
            budget = []
            if self.budget is not None and self._budget_callback is not None:
                budget = [self._budget_callback(self.budget, record)]  # after the recorder
            bound.arguments["callbacks"] = [
                *callbacks,
                self._fit_recorder(record, state_path),
                *budget,
                *pruner,
                *backup,
            ]
        self._fit_depth += 1
        try:
            history = original(*bound.args, **bound.kwargs)
            record.finished = True
            if record.count == 0 and isinstance(getattr(history, "history", None), dict):
                for values in zip(*history.history.values(), strict=False):
                    record.add_epoch(dict(zip(history.history, values, strict=False)))
            return history
        finally:
            self._fit_depth -= 1
            start = (
                getattr(model, "_initial_epoch", None) or bound.arguments.get("initial_epoch") or 0
            )
            record.settle(int(start))
            if record.parameters is None:  # our callbacks were not added, or never ran
                record.parameters = count_parameters(model)
            if injected:
                model._initial_epoch = None

    def _target_callback(self) -> Any:
        """The target watch (`at_target`), with the script's evaluate data read where it
        called fit; None when that data is not there yet."""
        assert self.target is not None
        namespace = caller_namespace(self.target.script)
        arguments = resolve(self.target.call, namespace) if namespace is not None else None
        if arguments is None:
            print("mutator: no stop at the target: evaluate's data is not defined at fit")
            return None
        return target_callback_class(self.keras)(self.target.plan, arguments)

    def _evaluate(self, original, signature, model, args, kwargs):
        if self._fit_depth or kwargs.get("_use_cached_eval_dataset"):
            return original(model, *args, **kwargs)  # validation inside fit: already in history
        catcher = None
        call_args, call_kwargs = (model, *args), kwargs
        with contextlib.suppress(TypeError):
            bound = signature.bind(model, *args, **kwargs)
            if not self.evaluations:
                self.evaluated_examples = example_count(bound.arguments.get("x"))
            if self._validation is not None:
                tested = (bound.arguments.get("x"), bound.arguments.get("y"))
                self.validation_is_test = all(
                    same_data(a, b) for a, b in zip(self._validation, tested, strict=True)
                )
            callbacks = bound.arguments.get("callbacks")
            if not isinstance(callbacks, self.keras.callbacks.CallbackList):
                catcher = self._evaluation_recorder()
                bound.arguments["callbacks"] = [*(callbacks or []), catcher]
                call_args, call_kwargs = bound.args, bound.kwargs
        result = original(*call_args, **call_kwargs)
        logs = catcher.logs if catcher is not None and catcher.logs is not None else None
        logs = logs if logs is not None else name_results(result, model)
        self.evaluations.append({key: metric_rules.as_float(value) for key, value in logs.items()})
        return result

    def save_last_model(self, trial_dir: Path) -> tuple[str | None, str | None]:
        """(path relative to the trial dir, None) or (None, why it could not be saved)."""
        if self.last_model is None:
            return None, None
        partial, target = trial_dir / ".model-partial.keras", trial_dir / "model.keras"
        try:
            self.last_model.save(str(partial))
            os.replace(partial, target)
        except Exception as error:  # noqa: BLE001 - a model we cannot save is not a failed trial
            partial.unlink(missing_ok=True)
            return None, one_line_error(error)
        return target.name, None


def example_count(data: Any) -> int | None:
    """The number of examples in `x` as evaluate takes it: an array's first dimension, or the
    first input's of a list or dict of arrays; None for what has no length to read (datasets,
    generators)."""
    if isinstance(data, dict):
        data = next(iter(data.values()), None)
    elif isinstance(data, list | tuple):
        data = data[0] if data else None
    shape = getattr(data, "shape", None)
    try:
        count = int(shape[0]) if shape is not None and len(shape) else None
    except (TypeError, ValueError):
        return None
    return count if count is not None and count > 0 else None


def validation_examples(arguments: dict[str, Any]) -> int | None:
    """How many examples fit validates on: `validation_data`'s, or the share of `x` that
    `validation_split` holds out (Keras keeps the first ceil(n (1 - split)) for training);
    None when there is none or it cannot be counted (a dataset, a generator)."""
    validation = arguments.get("validation_data")
    if isinstance(validation, (tuple, list)) and validation:
        return example_count(validation[0])
    if validation is not None:
        return example_count(validation)
    split = metric_rules.as_float(arguments.get("validation_split"))
    total = example_count(arguments.get("x"))
    if not split or total is None or not 0.0 < split < 1.0:
        return None
    held_out = total - math.ceil(total * (1.0 - split))
    return held_out or None


def same_data(first: Any, second: Any) -> bool:
    """The same arrays: the same object, or arrays of one shape and the same values (a copy made
    by `np.asarray`, a slice taken twice). Big arrays are compared by their shape and a sample."""
    if first is second:
        return True
    try:
        import numpy as np

        a, b = np.asarray(first), np.asarray(second)
        if a.shape != b.shape or a.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
            return False
        if a.size > 10_000_000:
            step = max(1, a.shape[0] // 1000)
            a, b = a[::step], b[::step]
        return bool(np.array_equal(a, b))
    except Exception:  # noqa: BLE001 - tensors, datasets, dicts: cannot tell, so not the same
        return False


def name_results(result: Any, model: Any) -> dict[str, Any]:
    """evaluate's return value as a dict: lists are named after `model.metrics_names`."""
    if isinstance(result, dict):
        return dict(result)
    values = list(result) if isinstance(result, list | tuple) else [result]
    names = list(getattr(model, "metrics_names", None) or [])
    if len(names) != len(values):
        names = ["loss", *(f"metric_{index}" for index in range(1, len(values)))]
    return dict(zip(names, values, strict=True))


# -- the result ---------------------------------------------------------------------------------
