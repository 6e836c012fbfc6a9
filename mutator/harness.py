"""`python -m mutator.harness SCRIPT --trial-dir DIR`: train the user's script as it is, report how it did.

One trial is one process running this module in the trial's working directory. The script runs
unchanged as `__main__`; when it uses Keras, `Model.fit` and `Model.evaluate` are wrapped so that
every fit's epochs and every evaluation's results are recorded, and every fit gets a
`BackupAndRestore` so that a trial killed mid-training resumes at its last completed epoch when
it is run again with the same trial dir. Whatever happens, `DIR/metrics.json` is written
(atomically) and the exit code says whether the trial produced a usable number: 0 when its
status is "ok", 1 otherwise.

Keras is imported only here and only when the script (or a module beside it) imports it, so a
plain Python script trains without paying for TensorFlow.

Layout of a trial dir, as far as the harness is concerned:
    metrics.json            the result (see `build_report`)
    model.keras             the last trained model, when the script finished
    checkpoint/fit-N/       Keras BackupAndRestore state of the N-th fit (1-based)
    checkpoint/fit-N.json   that fit's epoch logs so far, and whether it finished
The checkpoint folder is removed once the script has run to its end.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import functools
import inspect
import json
import math
import os
import random
import re
import runpy
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mutator import metrics as metric_rules

KERAS_ROOTS = frozenset({"keras", "tensorflow", "tf_keras"})
CAPTURE_LIMIT = 4_000_000  # characters of stdout kept for --metric-regex (the last ones matter)
MAX_SCANNED_MODULES = 200
STATUS_OK, STATUS_FAILED, STATUS_NAN, STATUS_NO_METRIC = "ok", "failed", "nan", "no_metric"


@dataclass(frozen=True)
class HarnessOptions:
    """The command line, resolved to absolute paths before the script can change directory."""

    script: Path
    trial_dir: Path
    metric: str | None = None
    mode: str = "auto"
    metric_regex: str | None = None
    backup: bool = True
    source_dir: Path | None = None
    script_args: tuple[str, ...] = ()


def parse_args(argv: Sequence[str] | None = None) -> HarnessOptions:
    """Everything after the first `--` belongs to the script."""
    args = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, script_args = args[:split], args[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m mutator.harness", description="Run one training trial, write metrics.json."
    )
    parser.add_argument("script", type=Path, help="the training script, run unchanged")
    parser.add_argument("--trial-dir", type=Path, required=True, help="where results go")
    parser.add_argument("--metric", help="key to judge by (default: the test accuracy)")
    parser.add_argument("--mode", choices=("auto", "max", "min"), default="auto")
    parser.add_argument("--metric-regex", help="read the metric from stdout: last match, group 1")
    parser.add_argument(
        "--no-backup",
        dest="backup",
        action="store_false",
        help="do not add BackupAndRestore to fits (no resume)",
    )
    parser.add_argument(
        "--source-dir",
        type=Path,
        help="the original script's folder, importable by the trial's copy",
    )
    ns = parser.parse_args(args)
    return HarnessOptions(
        script=ns.script.resolve(),
        trial_dir=ns.trial_dir.resolve(),
        metric=ns.metric,
        mode=ns.mode,
        metric_regex=ns.metric_regex,
        backup=ns.backup,
        source_dir=ns.source_dir.resolve() if ns.source_dir else None,
        script_args=tuple(script_args),
    )


# -- does the script need Keras? ---------------------------------------------------------------


def _imported_modules(source: str) -> set[str]:
    """Absolute module names the source imports anywhere (functions included), by the AST."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def uses_keras(script: Path, search_dirs: Iterable[Path] = ()) -> bool:
    """Whether the script, or a module of its own it imports from `search_dirs`, imports Keras.

    Read from the syntax tree: a comment or a string that mentions keras does not count.
    """
    folders = [script.parent, *search_dirs]
    pending, seen = [script], set()
    while pending and len(seen) < MAX_SCANNED_MODULES:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            modules = _imported_modules(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue  # the run itself will report an unreadable script
        if any(name.split(".")[0] in KERAS_ROOTS for name in modules):
            return True
        for name in modules:
            relative = Path(*name.split("."))
            for folder in folders:
                for candidate in (folder / f"{relative}.py", folder / relative / "__init__.py"):
                    if candidate.is_file():
                        pending.append(candidate)
    return False


# -- what the script printed --------------------------------------------------------------------


class TeeStream:
    """Writes through to the real stream and keeps the tail of the text for --metric-regex."""

    def __init__(self, stream: Any, limit: int = CAPTURE_LIMIT) -> None:
        self._stream, self._limit = stream, limit
        self._chunks: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        self._chunks.append(text)
        self._size += len(text)
        if self._size > 2 * self._limit:
            self._chunks = ["".join(self._chunks)[-self._limit :]]
            self._size = len(self._chunks[0])
        return len(text) if written is None else written

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def text(self) -> str:
        return "".join(self._chunks)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self._stream, name)


# -- running the script -------------------------------------------------------------------------


def one_line_error(error: BaseException) -> str:
    """`Type: first line of the message`, short enough for a ledger row."""
    if isinstance(error, SystemExit):
        return f"SystemExit: {error.code}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = lines[0] if lines else ""
    if message.endswith(":") and len(lines) > 1:
        # TensorFlow's "Graph execution error:" says where; the cause is its last plain line.
        causes = [line for line in lines[1:] if not line.startswith(("[[", "File ", "Detected at"))]
        message = f"{message} {causes[-1]}" if causes else message
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def run_script(options: HarnessOptions, stdout: Any | None = None) -> str | None:
    """Run the script as `__main__` with its own argv and import path; the error line, or None.

    `SystemExit(0)` and `SystemExit(None)` are a normal end; the traceback of anything else goes
    to stderr, which the runner logs. Interpreter state is put back afterwards.
    """
    saved_argv, saved_path, saved_stdout = sys.argv, list(sys.path), sys.stdout
    sys.argv = [str(options.script), *options.script_args]
    extra = [str(options.source_dir)] if options.source_dir else []
    sys.path[:] = [str(options.script.parent), *extra, *saved_path[1:]]
    if stdout is not None:
        sys.stdout = stdout
    try:
        runpy.run_path(str(options.script), run_name="__main__")
        return None
    except SystemExit as exit_:
        if exit_.code in (None, 0):
            return None
        return one_line_error(exit_)
    except BaseException as error:  # noqa: BLE001 - the user's script may raise anything
        sys.stdout.flush()
        traceback.print_exc()
        return one_line_error(error)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        sys.argv, sys.stdout = saved_argv, saved_stdout
        sys.path[:] = saved_path


def apply_seed() -> int | None:
    """`MUTATOR_SEED` from the runner seeds Python and NumPy (Keras seeds itself in its hooks)."""
    raw = os.environ.get("MUTATOR_SEED")
    if not raw:
        return None
    try:
        seed = int(raw)
    except ValueError:
        raise ValueError(f"MUTATOR_SEED must be an integer, not {raw!r}") from None
    random.seed(seed)
    with contextlib.suppress(ImportError):
        import numpy

        numpy.random.seed(seed)
    return seed


def read_accuracy_file(
    path: Path, before: tuple[int, int] | None
) -> tuple[float | None, str | None]:
    """The seeds' accuracy.txt, only if this run wrote it: (value, None) or (None, why not)."""
    stamp = _stamp(path)
    if stamp is None or stamp == before:
        return None, None
    try:
        return metric_rules.parse_accuracy_text(
            path.read_text(encoding="utf-8", errors="replace")
        ), None
    except ValueError as error:
        return None, str(error)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


# -- Keras --------------------------------------------------------------------------------------


@dataclass
class FitRecord:
    """One `fit` call: where this process started it, how far it got, and its epoch logs.

    `epochs` holds one list per logged key, aligned on epochs `first_epoch`, `first_epoch + 1`...
    (None where a key was not logged that epoch, e.g. with validation_freq > 1). After a resume
    the lists still start at epoch 0 when the killed run's logs were saved, else at the resume.
    """

    fit: int
    epochs_requested: int | None
    initial_epoch: int = 0
    first_epoch: int = 0
    count: int = 0
    epochs: dict[str, list[float | None]] = field(default_factory=dict)
    finished: bool = False
    settled: bool = False  # initial_epoch is known

    def begin_epoch(self, epoch: int) -> None:
        if not self.settled:
            self.initial_epoch, self.settled = epoch, True
        if self.count == 0:
            self.first_epoch = epoch

    def add_epoch(self, logs: dict[str, Any] | None) -> None:
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
        }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _callback_classes(keras: Any) -> tuple[type, type, type]:
    """The harness's callbacks; defined late because their base classes are Keras's."""

    class FitRecorder(keras.callbacks.Callback):
        """Logs each epoch, and saves the logs beside the backup before the backup is written."""

        def __init__(self, record: FitRecord, state_path: Path | None) -> None:
            super().__init__()
            self._record, self._state_path = record, state_path

        def on_epoch_begin(self, epoch, logs=None):
            self._record.begin_epoch(epoch)

        def on_epoch_end(self, epoch, logs=None):
            self._record.add_epoch(logs)
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


class KerasHooks:
    """Wraps `keras.Model.fit` and `.evaluate` (tf.keras is the same class in Keras 3) to record.

    `checkpoint_dir` None means no BackupAndRestore is added (--no-backup).
    """

    def __init__(self, checkpoint_dir: Path | None, seed: int | None = None) -> None:
        import keras

        self.keras = keras
        self.checkpoint_dir = checkpoint_dir
        self.fits: list[FitRecord] = []
        self.evaluations: list[dict[str, float | None]] = []
        self.last_model: Any = None
        self._fit_depth = 0
        self._fit_recorder, self._evaluation_recorder, self._backup = _callback_classes(keras)
        if seed is not None:
            keras.utils.set_random_seed(seed)

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
            bound.arguments["callbacks"] = [
                *callbacks,
                self._fit_recorder(record, state_path),
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
            if injected:
                model._initial_epoch = None

    def _evaluate(self, original, signature, model, args, kwargs):
        if self._fit_depth or kwargs.get("_use_cached_eval_dataset"):
            return original(model, *args, **kwargs)  # validation inside fit: already in history
        catcher = None
        call_args, call_kwargs = (model, *args), kwargs
        with contextlib.suppress(TypeError):
            bound = signature.bind(model, *args, **kwargs)
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


def jsonable(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null (status says "nan" where it matters)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(jsonable(data), indent=2, allow_nan=False)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp", delete=False
    ) as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(handle.name, 0o644)  # mkstemp's 0600 would hide a container's result from the host
    os.replace(handle.name, path)


@dataclass
class TrialOutcome:
    """What one run of the script left behind, before it is judged."""

    error: str | None = None
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    fits: list[FitRecord] = field(default_factory=list)
    accuracy_file: float | None = None
    accuracy_problem: str | None = None
    printed: str | None = None
    model_path: str | None = None
    model_error: str | None = None
    keras: bool = False
    seed: int | None = None


def build_report(options: HarnessOptions, outcome: TrialOutcome, seconds: float) -> dict[str, Any]:
    """The metrics.json document: the verdict, then every record behind it."""
    verdict = metric_rules.judge(
        script_error=outcome.error,
        evaluations=outcome.evaluations,
        fits=[fit.epochs for fit in outcome.fits],
        metric=options.metric,
        mode=options.mode,
        accuracy_file=outcome.accuracy_file,
        accuracy_problem=outcome.accuracy_problem,
        printed=outcome.printed,
        regex=options.metric_regex,
    )
    return {
        **dataclasses.asdict(verdict),
        "history": [fit.to_json() for fit in outcome.fits],
        "evaluate": outcome.evaluations,
        "seconds": round(seconds, 3),
        "model_path": outcome.model_path,
        "model_error": outcome.model_error,
        "keras": outcome.keras,
        "seed": outcome.seed,
        "script": str(options.script),
        "argv": list(options.script_args),
    }


def run_trial(options: HarnessOptions) -> TrialOutcome:
    """Run the script once with every recorder in place; never raises for the script's faults."""
    outcome = TrialOutcome()
    accuracy_path = Path.cwd() / "accuracy.txt"
    accuracy_before = _stamp(accuracy_path)
    tee = hooks = None
    try:
        if options.metric_regex is not None:
            try:
                re.compile(options.metric_regex)
            except re.error as error:
                raise ValueError(f"--metric-regex {options.metric_regex!r}: {error}") from None
            tee = TeeStream(sys.stdout)
        outcome.seed = apply_seed()
        if uses_keras(options.script, [options.source_dir] if options.source_dir else []):
            checkpoints = options.trial_dir / "checkpoint" if options.backup else None
            hooks = KerasHooks(checkpoints, outcome.seed).install()
            outcome.keras = True
        outcome.error = run_script(options, tee)
    except Exception as error:  # noqa: BLE001 - a harness fault is reported like a script fault
        traceback.print_exc()
        outcome.error = one_line_error(error)
    if hooks is not None:
        outcome.fits, outcome.evaluations = hooks.fits, hooks.evaluations
        if outcome.error is None:
            outcome.model_path, outcome.model_error = hooks.save_last_model(options.trial_dir)
    outcome.printed = tee.text() if tee is not None else None
    outcome.accuracy_file, outcome.accuracy_problem = read_accuracy_file(
        accuracy_path, accuracy_before
    )
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    """Run one trial and write metrics.json; 0 when its status is "ok", 1 otherwise."""
    started = time.monotonic()
    options = parse_args(argv)
    options.trial_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = options.trial_dir / "metrics.json"
    metrics_path.unlink(missing_ok=True)  # a stale result must never pass for this run's
    outcome = run_trial(options)
    report = build_report(options, outcome, time.monotonic() - started)
    write_json_atomically(metrics_path, report)
    if outcome.error is None:
        shutil.rmtree(options.trial_dir / "checkpoint", ignore_errors=True)
    detail = (
        report["error"]
        if report["status"] != STATUS_OK
        else f"{report['metric']}={report['value']}"
    )
    print(f"mutator: trial {report['status']}: {detail}", file=sys.stderr)
    return 0 if report["status"] == STATUS_OK else 1


if __name__ == "__main__":
    sys.exit(main())
