"""Tuning settings: command-line flags over `[tool.mutator]` (pyproject.toml) or `mutator.toml`
beside the script, over defaults. Secrets never live here: they come from the environment.

The file and the flags name each setting by one flat key (`noise_runs = 2`, `--noise-runs 2`);
the code reads it from its group (`settings.noise.runs`). `FLAT_KEYS` is the one table between
the two: a new setting is a field in its group, a line there, and a flag whose `dest` is its key.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mutator.errors import UsageError


@dataclass(frozen=True)
class GoalSettings:
    """What is measured, which way is better, and where the search may stop."""

    target: float | None = None
    metric: str | None = None  # None: evaluate's accuracy, else val_accuracy, else accuracy
    mode: str = "auto"  # max | min | auto (names with "loss"/"error" are minimised)
    metric_regex: str | None = None
    # "test": the metric as found (evaluate's first); "validation": select on val_accuracy and
    # report evaluate's figure at the end, on data no decision used (mutator.search.selection)
    select_on: str = "test"
    min_improvement: float = 0.001


@dataclass(frozen=True)
class BudgetSettings:
    """What the search may spend: trials, seconds, and re-runs of a crashed trial; and how big
    and slow a candidate's model may be (`mutator.training.budget`: one over it is stopped
    before it trains, or as soon as its pace is known, and reverted)."""

    max_trials: int = 20
    time_budget: float | None = None  # seconds, over the whole run including resumed parts
    trial_timeout: float | None = 1800.0
    retries: int = 1  # a crashed trial is run again this many times, resuming from its checkpoint
    max_params: int | None = None  # a candidate's model's count_params()
    max_epoch_seconds: float | None = None  # a candidate's wall seconds per epoch


@dataclass(frozen=True)
class NoiseSettings:
    """How much a script's metric moves from seed to seed, and what a gain must clear.

    The baseline's script (later the best's) is trained again with other seeds, `runs` times in
    all, on cores a round leaves free; a gain must clear `multiple` sds of the difference of two
    runs (mutator.search.noise), and a pruned candidate may trail the best's curve by one band.
    `runs` 0: off, the margin alone decides. `final_runs`: best.py trained this many more times
    when the search ends, for the final figure's spread (0: its one from-scratch value).
    """

    runs: int = 1
    multiple: float = 2.0
    final_runs: int = 0


@dataclass(frozen=True)
class ClimbSettings:
    """Which changes the hill-climb tries, in what order, and how far each step goes."""

    rules: tuple[str, ...] | None = None  # None: the default order
    rule_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int | None = None  # seeds every trial's random generators
    # Order the rules by the best trial's curves (under-fitting: capacity first; under-trained:
    # epochs first; over-fitting: regularising first). False keeps the configured order.
    epochs_first_when_rising: bool = True
    adaptive_steps: bool = True  # a rule that gained much takes a bigger step next (x2, x4, x8)
    # A model that under-fits while still learning gets capacity and epochs as one change too.
    joint_changes: bool = True
    # Changes that each gained inside the noise band are tried as one (`HillClimb._joined`).
    join_near_misses: bool = True
    # A candidate may cost no more than the search has spent so far (`starts.guess_budget`).
    guess_cap: bool = True


@dataclass(frozen=True)
class FastTrialSettings:
    """Fast trials: candidates side by side, children from their parent's weights, stopped when
    they trail the best, forked from a warm worker (`mutate tune --help`'s "fast trials")."""

    parallel: int | None = None  # trials at once; None: one per core this process may use
    warm_start: bool = True  # more_epochs continues the parent; capacity rules map its weights
    warm_share: float = 0.5  # the share of the script's epochs a capacity child trains warm
    # A parent whose script ran in less than this (seconds) has its children trained cold: a
    # from-scratch run costs about what a warm one does, and its metric needs no confirm.
    warm_after: float = 5.0
    prune: bool = True  # stop a candidate whose curve trails the best's by prune_margin
    prune_margin: float = 0.05
    prune_grace: int = 2  # epochs a candidate trains before it may be stopped
    # The baseline and its noise run stop once their validation loss has plainly passed its
    # lowest point (`mutator.training.peak`): an over-fitting script's last epochs only cost.
    peak_stop: bool = True
    # A training from scratch (the script as given, a change, a confirm) stops at the epoch its
    # evaluate reaches the target, and the script keeps that many epochs
    # (`mutator.training.at_target`, `mutator.search.target_cut`).
    target_stop: bool = True
    worker: bool = True  # fork trials from a process that imported TensorFlow once
    worker_recycle: int = 50  # trials one worker serves before a fresh one replaces it


@dataclass(frozen=True)
class RunnerSettings:
    """Where each trial trains, and what its script is given."""

    name: str = "local"  # local | docker (the docker group) | ray (the ray group)
    script_args: tuple[str, ...] = ()  # `mutate tune train.py -- --lr 0.1`


@dataclass(frozen=True)
class DockerSettings:
    """--runner docker: one container per trial."""

    image: str | None = None  # None: the image for the script's kind (mutate detect)
    images: dict[str, str] = field(default_factory=dict)  # kind -> image, over detect's defaults
    cpus: float | None = None
    memory: str | None = None  # e.g. "2g"
    network: str | None = None  # "none" cuts trials off the network
    keep_failed: bool = False  # keep a failed trial's container for inspection
    restart_grace: float = 0.0  # seconds to wait for `mutate monitor` to restart a dead one


@dataclass(frozen=True)
class RaySettings:
    """--runner ray: each trial a Ray task with this resource request."""

    address: str | None = None  # a head's HOST:PORT; None: start a Ray on this machine
    cpus: float | None = None  # None: the cluster's CPUs shared by the trials side by side
    gpus: float = 0.0
    memory: str | None = None  # e.g. "4g": Ray schedules the trial where that much is free


@dataclass(frozen=True)
class TrackingSettings:
    """Where the search is tracked (`mutator.publish.tracking`): an MLflow server's URI, else
    MLFLOW_TRACKING_URI from the environment; the experiment and the registered model are named
    after the script's stem unless set. Credentials come from MLFLOW_TRACKING_USERNAME/PASSWORD."""

    uri: str | None = None
    experiment: str | None = None
    model_name: str | None = None


@dataclass(frozen=True)
class TuneSettings:
    """Every setting of `mutate tune`, by what it is for. Built from flat keys by `of` (code and
    tests) or `settings_from` (the configuration file and the flags, parsed and checked)."""

    goal: GoalSettings = field(default_factory=GoalSettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    noise: NoiseSettings = field(default_factory=NoiseSettings)
    climb: ClimbSettings = field(default_factory=ClimbSettings)
    fast: FastTrialSettings = field(default_factory=FastTrialSettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    docker: DockerSettings = field(default_factory=DockerSettings)
    ray: RaySettings = field(default_factory=RaySettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)

    @classmethod
    def of(cls, **flat: Any) -> TuneSettings:
        """From flat keys as the configuration file names them (`noise_runs=0`), unchecked."""
        unknown = sorted(set(flat) - set(FLAT_KEYS))
        if unknown:
            raise TypeError(f"unknown setting(s) {', '.join(unknown)}; see config.FLAT_KEYS")
        groups: dict[str, dict[str, Any]] = {}
        for key, value in flat.items():
            group, name = FLAT_KEYS[key]
            groups.setdefault(group, {})[name] = value
        return cls(**{group: _GROUPS[group](**values) for group, values in groups.items()})

    def flat(self) -> dict[str, Any]:
        """Flat key -> value, as the configuration file and the ledger's run.json name them."""
        return {
            key: getattr(getattr(self, group), name) for key, (group, name) in FLAT_KEYS.items()
        }


_GROUPS = {f.name: f.default_factory for f in dataclasses.fields(TuneSettings)}

# Each flat key (the configuration file's, and the `dest` of its flag) -> (group, field).
FLAT_KEYS: dict[str, tuple[str, str]] = {
    "target": ("goal", "target"),
    "metric": ("goal", "metric"),
    "mode": ("goal", "mode"),
    "metric_regex": ("goal", "metric_regex"),
    "select_on": ("goal", "select_on"),
    "min_improvement": ("goal", "min_improvement"),
    "max_trials": ("budget", "max_trials"),
    "time_budget": ("budget", "time_budget"),
    "trial_timeout": ("budget", "trial_timeout"),
    "retries": ("budget", "retries"),
    "max_params": ("budget", "max_params"),
    "max_epoch_seconds": ("budget", "max_epoch_seconds"),
    "noise_runs": ("noise", "runs"),
    "noise_multiple": ("noise", "multiple"),
    "final_runs": ("noise", "final_runs"),
    "rules": ("climb", "rules"),
    "rule_settings": ("climb", "rule_settings"),
    "seed": ("climb", "seed"),
    "epochs_first_when_rising": ("climb", "epochs_first_when_rising"),
    "adaptive_steps": ("climb", "adaptive_steps"),
    "joint_changes": ("climb", "joint_changes"),
    "join_near_misses": ("climb", "join_near_misses"),
    "guess_cap": ("climb", "guess_cap"),
    "parallel": ("fast", "parallel"),
    "warm_start": ("fast", "warm_start"),
    "warm_share": ("fast", "warm_share"),
    "warm_after": ("fast", "warm_after"),
    "prune": ("fast", "prune"),
    "prune_margin": ("fast", "prune_margin"),
    "prune_grace": ("fast", "prune_grace"),
    "peak_stop": ("fast", "peak_stop"),
    "target_stop": ("fast", "target_stop"),
    "worker": ("fast", "worker"),
    "worker_recycle": ("fast", "worker_recycle"),
    "runner": ("runner", "name"),
    "script_args": ("runner", "script_args"),
    "docker_image": ("docker", "image"),
    "images": ("docker", "images"),
    "docker_cpus": ("docker", "cpus"),
    "docker_memory": ("docker", "memory"),
    "docker_network": ("docker", "network"),
    "docker_keep_failed": ("docker", "keep_failed"),
    "docker_restart_grace": ("docker", "restart_grace"),
    "ray_address": ("ray", "address"),
    "ray_cpus": ("ray", "cpus"),
    "ray_gpus": ("ray", "gpus"),
    "ray_memory": ("ray", "memory"),
    "mlflow": ("tracking", "uri"),
    "mlflow_experiment": ("tracking", "experiment"),
    "mlflow_model_name": ("tracking", "model_name"),
}


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_duration(value: str | float | int) -> float:
    """Seconds from `90`, `"90s"`, `"30m"` or `"2h"`."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise UsageError(f"cannot read {value!r} as a duration; write e.g. 90, 90s, 30m or 2h")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"s": 1, "m": 60, "h": 3600}[unit]


def find_config(script: Path) -> tuple[Path | None, dict[str, Any]]:
    """`mutator.toml` beside the script, else the nearest pyproject.toml with [tool.mutator]."""
    folder = script.resolve().parent
    beside = folder / "mutator.toml"
    if beside.exists():
        return beside, _read(beside)
    for candidate in (folder, *folder.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.exists():
            table = _read(pyproject).get("tool", {}).get("mutator")
            if table is not None:
                return pyproject, table
    return None, {}


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def settings_from(
    table: dict[str, Any], overrides: dict[str, Any], source: str = "config"
) -> TuneSettings:
    """Defaults, then the config table, then the flags the user gave (None means not given);
    both by flat key (`FLAT_KEYS`)."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name == "rules" and isinstance(value, dict):
            # [tool.mutator.rules] order = [...] and [tool.mutator.rules.more_filters] factor = 4
            order = value.get("order")
            if order is not None:
                values["rules"] = tuple(order)
            values["rule_settings"] = {k: v for k, v in value.items() if isinstance(v, dict)}
            continue
        if name == "notify" and isinstance(value, dict):
            continue  # [tool.mutator.notify]: read by mutator.publish.notify.notify_settings
        if name not in FLAT_KEYS:
            raise UsageError(
                f"{source}: unknown setting {key!r}; known: {', '.join(sorted(FLAT_KEYS))}"
            )
        values[name] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    for name in ("time_budget", "trial_timeout", "warm_after", "max_epoch_seconds"):
        if values.get(name) is not None:
            values[name] = parse_duration(values[name])
    if isinstance(values.get("max_params"), float) and values["max_params"].is_integer():
        values["max_params"] = int(values["max_params"])  # `max_params = 1e6` in the file
    if "rules" in values and values["rules"] is not None:
        values["rules"] = tuple(values["rules"])
    if "script_args" in values:
        values["script_args"] = tuple(values["script_args"])
    if values.get("select_on") == "validation" and values.get("metric") is None:
        values["metric"] = "val_accuracy"
    settings = TuneSettings.of(**values)
    _check(settings)
    return settings


def _check(settings: TuneSettings) -> None:
    """Refuse values no search can use; messages name the flat keys the user wrote."""
    goal, budget, noise = settings.goal, settings.budget, settings.noise
    fast, ray = settings.fast, settings.ray
    if goal.mode not in ("max", "min", "auto"):
        raise UsageError(f"mode must be max, min or auto, not {goal.mode!r}")
    if budget.max_trials < 1:
        raise UsageError("max_trials must be at least 1 (the baseline is a trial)")
    if budget.max_params is not None and (
        isinstance(budget.max_params, bool)
        or not isinstance(budget.max_params, int)
        or budget.max_params < 1
    ):
        raise UsageError(f"max_params must be a positive whole number, not {budget.max_params!r}")
    if budget.max_epoch_seconds is not None and not budget.max_epoch_seconds > 0:
        raise UsageError(
            f"max_epoch_seconds must be positive, not {budget.max_epoch_seconds!r}"
        )
    if goal.min_improvement < 0:
        raise UsageError("min_improvement cannot be negative")
    if goal.select_on not in ("test", "validation"):
        raise UsageError(f"select_on must be test or validation, not {goal.select_on!r}")
    if noise.runs < 0:
        raise UsageError(f"noise_runs cannot be negative, not {noise.runs!r}")
    if noise.final_runs < 0:
        raise UsageError(f"final_runs cannot be negative, not {noise.final_runs!r}")
    if noise.multiple <= 0:
        raise UsageError(f"noise_multiple must be positive, not {noise.multiple!r}")
    if settings.runner.name not in ("local", "docker", "ray"):
        raise UsageError(f"runner must be local, docker or ray, not {settings.runner.name!r}")
    if (ray.cpus is not None and ray.cpus <= 0) or ray.gpus < 0:
        raise UsageError("ray_cpus must be positive and ray_gpus cannot be negative")
    if fast.parallel is not None and fast.parallel < 1:
        raise UsageError("parallel must be at least 1")
    if not 0 < fast.warm_share <= 1:
        raise UsageError(f"warm_share must be in (0, 1], not {fast.warm_share!r}")
    if fast.warm_after < 0:
        raise UsageError(f"warm_after cannot be negative, not {fast.warm_after!r}")
    if fast.prune_margin < 0 or fast.prune_grace < 1:
        raise UsageError("prune_margin cannot be negative and prune_grace is at least 1")
    if fast.worker_recycle < 1:
        raise UsageError("worker_recycle must be at least 1")
    if settings.tracking.uri is not None and _USERINFO.match(settings.tracking.uri):
        # the file and the flags are no place for a secret (and run.json records them)
        raise UsageError(
            "mlflow: the URI carries credentials (user:password@); give the bare URI and set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the environment"
        )


_USERINFO = re.compile(r"^\w[\w+.-]*://[^/@\s]+@")


def cores() -> int:
    """The CPUs this process may use (a container's or a cgroup's limit when it has one)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parallel_trials(settings: TuneSettings) -> int:
    """How many trials the search trains at once: the setting, else one per core."""
    return settings.fast.parallel if settings.fast.parallel is not None else cores()
