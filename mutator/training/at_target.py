"""Stop a training at the first epoch where the script's own test metric is at the target.

A change that reaches the target usually gets there before its last epoch: the climb steps
epochs by x8 when a curve is still rising (2 -> 16, 5 -> 40), and a good model crosses the
bar part of the way; a script that trains 100 epochs may be at the target after 5 and
over-fit after. Every epoch after it is paid before the search can stop, and then paid again
by the user at every retraining of the script it writes. The search writes `target.json` in
the folder of a trial that trains a script from scratch (the script as given, a change, the
best's confirm) whose epochs it can rewrite (`TargetStop`); the harness finds the script's
one `evaluate` call (`evaluate_call`: its data
as written, e.g. `model.evaluate(x_test, y_test, verbose=0)`), reads that data where the script
calls `fit`, and after each epoch evaluates the model on it as the script would. At the
target, it sets `stop_training`; metrics.json records `at_target`: the epoch, of how many,
and the value.

The script then goes on: its own evaluate runs on the weights of that epoch, so its value is
the one the callback saw, and the run is exactly a run from scratch of the script with its
epochs cut to that epoch (evaluating changes no weight and draws no random number). The search
writes the cut into the change (`mutator.search.hillclimb`: epochs 40 -> 7): the script it keeps
is the one that was trained. Anything the harness cannot read exactly leaves the watch off: a
script with more than one Keras `fit` or `evaluate`, an evaluate whose data a call computes,
or data not yet defined when `fit` is called.

An evaluation costs a forward pass over the test data; it is skipped while the epoch's own
logged figure of the same metric (validation first, else training) is more than `window` of
the target away from it.
"""

from __future__ import annotations

import ast
import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mutator.training import metrics as metric_rules
from mutator.training.trialio import write_json_atomically

TARGET_FILE = "target.json"
# A test set of at most this many input values (digits' 540 x 64 is 34,560) is evaluated as
# one batch; a larger one (4,096 colour images of 32 x 32 are 12.6 million) in the script's
# own batches, as its activations all at once could take gigabytes.
ONE_BATCH_VALUES = 1_000_000
EVALUATE_OPTIONS = ("batch_size", "sample_weight", "steps")  # passed on as the script wrote them
IGNORED_OPTIONS = ("verbose", "return_dict", "callbacks")  # the watch sets its own
# Options only a Keras fit takes: a `.fit(` with none of them (a scaler's `fit(x_train)`, a
# scikit-learn model's `fit(x, y)`) is not one the watch could stop, nor one Keras trains.
KERAS_FIT_OPTIONS = {
    "epochs",
    "nb_epoch",
    "batch_size",
    "validation_data",
    "validation_split",
    "callbacks",
    "verbose",
    "shuffle",
    "initial_epoch",
    "steps_per_epoch",
}
PURE = (
    ast.Name,
    ast.Attribute,
    ast.Subscript,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Slice,
    ast.UnaryOp,
    ast.USub,
    ast.Load,
)  # what evaluate's data may be written with: names and lookups, no call


@dataclass(frozen=True)
class TargetStop:
    """Where a training's first fit stops: once its metric is at `target` (see the module)."""

    target: float
    mode: str  # max | min | auto (the script as given: read from the metric's name)
    metric: str | None  # the search's metric; None: the first accuracy evaluate reports
    epochs: int  # the epochs the script asks for: the watch applies to that fit alone
    window: float = 0.10  # evaluate only when the epoch's logged figure is this share near

    def write(self, trial_dir: Path) -> None:
        write_json_atomically(trial_dir / TARGET_FILE, asdict(self))

    @classmethod
    def read(cls, trial_dir: Path) -> TargetStop | None:
        try:
            return cls(**json.loads((trial_dir / TARGET_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def reached(self, value: float | None, key: str | None = None) -> bool:
        """Whether `value` (of the metric `key`: it tells the way when the mode is auto) is at
        the target."""
        if value is None or not math.isfinite(value):
            return False
        if metric_rules.infer_mode(key, self.mode) == "max":
            return value >= self.target
        return value <= self.target

    def near(self, logged: float | None, key: str | None = None) -> bool:
        """Whether an epoch's logged figure (of `key`) is close enough to the target to
        evaluate: a figure not logged is no reason to skip."""
        if logged is None or not math.isfinite(logged):
            return True
        reach = abs(self.target) * self.window
        if metric_rules.infer_mode(key, self.mode) == "max":
            return logged >= self.target - reach
        return logged <= self.target + reach

    def value_of(self, logs: dict[str, Any]) -> tuple[str, float] | None:
        """The evaluate's figure the search reads (`metrics.choose_metric`): its key and value."""
        try:
            choice = metric_rules.choose_metric(evaluations=[logs], fits=[], metric=self.metric)
        except metric_rules.MetricNotFoundError:
            return None
        return choice.name, choice.value


@dataclass(frozen=True)
class EvaluateCall:
    """The script's evaluate, as written: the source of each argument the watch passes on."""

    x: str
    y: str | None
    options: tuple[tuple[str, str], ...]  # (name, source) of batch_size, sample_weight, steps


def evaluate_call(source: str) -> EvaluateCall | None:
    """The script's one `.evaluate(...)` call, when it is the only one and the script calls
    a Keras `.fit(` once (`KERAS_FIT_OPTIONS`); None when there is anything the watch cannot
    pass on exactly."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    named = {
        name: [c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr == name]
        for name in ("fit", "evaluate")
    }
    keras_fits = [c for c in named["fit"] if {k.arg for k in c.keywords} & KERAS_FIT_OPTIONS]
    if len(keras_fits) != 1 or len(named["evaluate"]) != 1:
        return None
    call = named["evaluate"][0]
    if any(isinstance(arg, ast.Starred) for arg in call.args) or len(call.args) > 3:
        return None
    given = dict(zip(("x", "y", "batch_size"), call.args, strict=False))
    for keyword in call.keywords:
        if keyword.arg is None or keyword.arg in given:
            return None  # **kwargs, or an argument given twice
        if keyword.arg not in ("x", "y", *EVALUATE_OPTIONS, *IGNORED_OPTIONS):
            return None
        if keyword.arg not in IGNORED_OPTIONS:
            given[keyword.arg] = keyword.value
    if "x" not in given or not all(_pure(node) for node in given.values()):
        return None
    return EvaluateCall(
        x=ast.unparse(given["x"]),
        y=ast.unparse(given["y"]) if "y" in given else None,
        options=tuple(
            (name, ast.unparse(given[name])) for name in EVALUATE_OPTIONS if name in given
        ),
    )


def _pure(node: ast.AST) -> bool:
    return all(isinstance(child, PURE + (ast.expr_context,)) for child in ast.walk(node))


@dataclass(frozen=True)
class TargetWatch:
    """What the harness needs to watch a fit: the plan, and the script's evaluate as written."""

    plan: TargetStop
    call: EvaluateCall
    script: str

    @classmethod
    def read(cls, trial_dir: Path, script: Path) -> TargetWatch | None:
        """The watch a trial dir asks for, when the script's evaluate can be passed on."""
        plan = TargetStop.read(trial_dir)
        if plan is None:
            return None
        try:
            call = evaluate_call(script.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None
        return cls(plan, call, str(script)) if call is not None else None


def caller_namespace(script: str) -> dict[str, Any] | None:
    """The names visible where the script called `fit`: the innermost frame of the script's
    own file on the stack (globals, then that frame's locals). None outside it."""
    wanted = os.path.abspath(script)
    frame = sys._getframe(1)
    try:
        while frame is not None:
            if os.path.abspath(frame.f_code.co_filename) == wanted:
                return {**frame.f_globals, **frame.f_locals}
            frame = frame.f_back
        return None
    finally:
        del frame


def resolve(call: EvaluateCall, namespace: dict[str, Any]) -> dict[str, Any] | None:
    """evaluate's arguments, read from `namespace` now; None when one is not defined yet."""
    sources = {"x": call.x, **({"y": call.y} if call.y is not None else {}), **dict(call.options)}
    try:
        return {name: eval(source, {}, namespace) for name, source in sources.items()}  # noqa: S307
    except Exception:  # noqa: BLE001 - not defined (yet): the watch stays off
        return None


def line(stopped: dict[str, Any]) -> str:
    """How a stop reads in the trial's log and the search's messages."""
    return (
        f"at the target after epoch {stopped['epoch']} of {stopped['planned']}: "
        f"{stopped['key']} {stopped['value']:.4g}"
    )


def callback_class(keras: Any) -> type:
    class TargetCallback(keras.callbacks.Callback):
        """Evaluates the model as the script will after each epoch near the target, and stops
        the fit there (`TargetStop`)."""

        def __init__(self, plan: TargetStop, arguments: dict[str, Any]) -> None:
            super().__init__()
            self.plan = plan
            self.arguments = arguments
            self.trained = 0
            self.evaluations = 0
            self.off = False
            self.stopped: dict[str, Any] | None = None

        def on_train_begin(self, logs=None):
            if (self.params or {}).get("epochs") != self.plan.epochs:
                self.off = True  # not the fit the search cut: left alone

        def on_epoch_end(self, epoch, logs=None):
            self.trained = epoch + 1  # counted from the fit's start, as a resumed one is too
            if self.off or self.stopped is not None or self.trained >= self.plan.epochs:
                return  # the last epoch: the script's own evaluate is next anyway
            if self.model.stop_training:
                return  # another watch stopped it here (past its peak, hopeless, over budget)
            logs = logs or {}
            key = self.plan.metric or next(
                (k for k in metric_rules.ACCURACY_KEYS if f"val_{k}" in logs or k in logs), None
            )
            logged = None
            if key is not None:
                logged = metric_rules.as_float(logs.get(f"val_{key}", logs.get(key)))
            if not self.plan.near(logged, key):
                return
            self.evaluations += 1
            results = self._evaluate()
            found = self.plan.value_of(dict(results))
            if found is not None and self.plan.reached(found[1], found[0]):
                self.stopped = {
                    "epoch": self.trained,
                    "planned": self.plan.epochs,
                    "key": found[0],
                    "value": float(found[1]),
                    "evaluations": self.evaluations,
                }
                self.model.stop_training = True
                print(f"mutator: {line(self.stopped)}", flush=True)

        def _evaluate(self) -> dict[str, Any]:
            """evaluate's results; a test set small enough is one batch (`test_on_batch`:
            the same figures without evaluate's fixed cost, about 50 ms a call)."""
            arguments = self.arguments
            if set(arguments) <= {"x", "y", "sample_weight", "batch_size"} and one_batch(
                arguments["x"]
            ):
                return self.model.test_on_batch(
                    arguments["x"],
                    arguments.get("y"),
                    sample_weight=arguments.get("sample_weight"),
                    return_dict=True,
                )
            return self.model.evaluate(**arguments, verbose=0, return_dict=True)

    return TargetCallback


def one_batch(x: Any) -> bool:
    """Whether `x` is arrays (one, or a list, tuple or dict of them) of at most
    `ONE_BATCH_VALUES` values in all: a forward pass over all of it at once costs little
    memory."""
    parts = (
        list(x.values()) if isinstance(x, dict) else list(x) if isinstance(x, list | tuple) else [x]
    )
    if not parts or not all(getattr(part, "shape", None) for part in parts):
        return False  # a dataset, a generator, an empty list: evaluate reads it
    sizes = [getattr(part, "size", None) for part in parts]
    return all(isinstance(size, int) for size in sizes) and sum(sizes) <= ONE_BATCH_VALUES
