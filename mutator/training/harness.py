"""`python -m mutator.training.harness SCRIPT --trial-dir DIR`: train the user's script as it is, report how it did.

One trial is one process running this module in the trial's working directory. The script runs
unchanged as `__main__`; when it uses Keras, `Model.fit` and `Model.evaluate` are wrapped so that
every fit's epochs and every evaluation's results are recorded, and every fit gets a
`BackupAndRestore` so that a trial killed mid-training resumes at its last completed epoch when
it is run again with the same trial dir. Whatever happens, `DIR/metrics.json` is written
(atomically) and the exit code says whether the trial produced a usable number: 0 when its
status is "ok", 1 otherwise.

Every trial records its model's size and pace: `parameters`, the `count_params()` of the last
fit's model (counted when that fit starts, or after its first batch when the model is built
only then; None when it cannot be counted), and `seconds_per_epoch`, the median seconds of an
epoch of the fit that trained most epochs, its first (graph tracing) left out when there are
two or more (None when no epoch trained). An epoch counts its wall seconds, or its CPU seconds
when fewer (`budget.charged`: other work on the machine stretches the one, not the other);
each fit's history keeps both. With a `budget.json`, a model over it is stopped (`budget`)
and the status is "over_budget".

Keras is imported only here and only when the script (or a module beside it) imports it, so a
plain Python script trains without paying for TensorFlow.

Layout of a trial dir, as far as the harness is concerned:
    metrics.json            the result (see `build_report`)
    warm.json               (input, optional) what the first fit may start from: warm_plan
    prune.json              (input, optional) the best's curve, to stop a trailing fit: prune
    peak.json               (input, optional) stop the first fit past its lowest val loss: peak
    target.json             (input, optional) stop the first fit at the target: at_target
    budget.json             (input, optional) limits on the model's size and pace: budget
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
import os
import random
import re
import runpy
import shutil
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mutator.training import metrics as metric_rules
from mutator.training.at_target import TargetWatch
from mutator.training.budget import OverBudgetError, TrialBudget, seconds_per_epoch
from mutator.training.keras_hooks import FitRecord, KerasHooks
from mutator.training.peak import PeakStop
from mutator.training.prune import PrunePlan
from mutator.training.trialio import one_line_error, write_json_atomically
from mutator.training.warm_plan import StartRecord, WarmPlan

KERAS_ROOTS = frozenset({"keras", "keras_core", "tensorflow", "tf_keras"})
CAPTURE_LIMIT = 4_000_000  # characters of stdout kept for --metric-regex (the last ones matter)
MAX_SCANNED_MODULES = 200
STATUS_OK, STATUS_FAILED, STATUS_NAN, STATUS_NO_METRIC = "ok", "failed", "nan", "no_metric"
STATUS_OVER_BUDGET = "over_budget"


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
        prog="python -m mutator.training.harness", description="Run one training trial, write metrics.json."
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
    except OverBudgetError as over:  # the budget's stop, not the script's fault: no traceback
        return str(over)
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


def seed_offset() -> int:
    """`MUTATOR_SEED_OFFSET` from the search: a trial that measures the script's run-to-run
    noise trains it again with every seed the script sets moved by this much (0: as written)."""
    raw = os.environ.get("MUTATOR_SEED_OFFSET", "")
    try:
        return int(raw) if raw else 0
    except ValueError:
        raise ValueError(f"MUTATOR_SEED_OFFSET must be an integer, not {raw!r}") from None


def apply_threads() -> int | None:
    """`MUTATOR_THREADS` from the search: the CPU threads this trial may use (its share of the
    cores when trials run side by side). Set for TensorFlow and OpenMP before they start; in a
    fork of a warm worker, TensorFlow is imported but has not started its thread pools yet."""
    raw = os.environ.get("MUTATOR_THREADS")
    if not raw or not raw.isdigit() or int(raw) < 1:
        return None
    threads = int(raw)
    for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(min(threads, 2)))
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None:
        with contextlib.suppress(Exception):  # RuntimeError once TensorFlow has started
            tensorflow.config.threading.set_intra_op_parallelism_threads(threads)
            tensorflow.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    return threads


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
    seed_offset: int = 0
    start: dict[str, Any] | None = None  # warm or cold, and why (see warm_plan)
    pruned: dict[str, Any] | None = None  # stopped early as hopeless (see prune)
    past_peak: dict[str, Any] | None = None  # the script as given, stopped past its peak (peak)
    at_target: dict[str, Any] | None = None  # a change, stopped at the target (at_target)
    validation_is_test: bool | None = None  # fit validated on the arrays evaluate tested on
    evaluated_examples: int | None = None  # how many examples the first evaluate tested on
    over_budget: dict[str, Any] | None = None  # the budget's breach (see budget)

    @property
    def parameters(self) -> int | None:
        """The last fit's model's size: the model the script trained."""
        return self.fits[-1].parameters if self.fits else None

    @property
    def seconds_per_epoch(self) -> float | None:
        return seconds_per_epoch([fit.charged_seconds for fit in self.fits])


def build_report(
    options: HarnessOptions,
    outcome: TrialOutcome,
    seconds: float,
    cpu_seconds: float | None = None,
) -> dict[str, Any]:
    """The metrics.json document: the verdict, then every record behind it.

    `cpu_seconds` is the CPU time of the trial's threads: unlike `seconds` (wall), it does not
    grow when other processes load the machine, so what the search decides on a trial's cost
    (`warm_after`) does not change with the load.
    """
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
    report = dataclasses.asdict(verdict)
    if outcome.over_budget is not None:
        # the metric stays as found (a script may catch the stop and evaluate), but it counts
        # no more than a failed script's: the model is not one the search may keep
        report["status"], report["error"] = STATUS_OVER_BUDGET, outcome.over_budget["error"]
    return {
        **report,
        "parameters": outcome.parameters,
        "seconds_per_epoch": outcome.seconds_per_epoch,
        "over_budget": outcome.over_budget,
        "history": [fit.to_json() for fit in outcome.fits],
        "evaluate": outcome.evaluations,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3) if cpu_seconds is not None else None,
        "model_path": outcome.model_path,
        "model_error": outcome.model_error,
        "keras": outcome.keras,
        "seed": outcome.seed,
        "seed_offset": outcome.seed_offset,
        "start": outcome.start or StartRecord().to_json(),
        "pruned": outcome.pruned,
        "past_peak": outcome.past_peak,
        "at_target": outcome.at_target,
        "validation_is_test": outcome.validation_is_test,
        "evaluated_examples": outcome.evaluated_examples,
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
        apply_threads()
        if uses_keras(options.script, [options.source_dir] if options.source_dir else []):
            checkpoints = options.trial_dir / "checkpoint" if options.backup else None
            warm = WarmPlan.read(options.trial_dir)
            prune = PrunePlan.read(options.trial_dir)
            budget = TrialBudget.read(options.trial_dir)
            peak = PeakStop.read(options.trial_dir)
            outcome.seed_offset = seed_offset()
            hooks = KerasHooks(
                checkpoints,
                outcome.seed,
                warm,
                prune,
                seed_offset=outcome.seed_offset,
                budget=budget,
                peak=peak,
                target=TargetWatch.read(options.trial_dir, options.script)
                if options.metric_regex is None  # the metric is not evaluate's
                else None,
            ).install()
            outcome.keras = True
        outcome.error = run_script(options, tee)
    except Exception as error:  # noqa: BLE001 - a harness fault is reported like a script fault
        traceback.print_exc()
        outcome.error = one_line_error(error)
    if hooks is not None:
        outcome.fits, outcome.evaluations = hooks.fits, hooks.evaluations
        outcome.start = (hooks.start or StartRecord()).to_json()
        outcome.pruned = hooks.pruner.pruned if hooks.pruner is not None else None
        outcome.past_peak = hooks.peaker.stopped if hooks.peaker is not None else None
        outcome.at_target = hooks.targeter.stopped if hooks.targeter is not None else None
        outcome.validation_is_test = hooks.validation_is_test
        outcome.evaluated_examples = hooks.evaluated_examples
        outcome.over_budget = _breach(hooks, outcome)
        if outcome.error is None and outcome.over_budget is None:
            outcome.model_path, outcome.model_error = hooks.save_last_model(options.trial_dir)
    outcome.printed = tee.text() if tee is not None else None
    outcome.accuracy_file, outcome.accuracy_problem = read_accuracy_file(
        accuracy_path, accuracy_before
    )
    return outcome


def _breach(hooks: KerasHooks, outcome: TrialOutcome) -> dict[str, Any] | None:
    """The budget's verdict: a breach that stopped a fit, else (for a script that ran to its
    end) its own figures against the limits; with the line the user reads as its error."""
    if hooks.budget is None:
        return None
    breach = hooks.budget.breach
    if breach is None and outcome.error is None:
        breach = hooks.budget.final(outcome.parameters, [f.charged_seconds for f in outcome.fits])
    return None if breach is None else {**breach.to_json(), "error": breach.error()}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one trial and write metrics.json; 0 when its status is "ok", 1 otherwise."""
    started, started_cpu = time.monotonic(), time.process_time()
    options = parse_args(argv)
    options.trial_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = options.trial_dir / "metrics.json"
    metrics_path.unlink(missing_ok=True)  # a stale result must never pass for this run's
    outcome = run_trial(options)
    report = build_report(
        options, outcome, time.monotonic() - started, time.process_time() - started_cpu
    )
    write_json_atomically(metrics_path, report)
    if outcome.error is None or outcome.over_budget is not None:  # over budget: never resumed
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
