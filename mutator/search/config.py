"""Tuning settings: command-line flags over `[tool.mutator]` (pyproject.toml) or `mutator.toml`
beside the script, over defaults. Secrets never live here: they come from the environment."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mutator.errors import UsageError


@dataclass(frozen=True)
class TuneSettings:
    target: float | None = None
    metric: str | None = None  # None: evaluate's accuracy, else val_accuracy, else accuracy
    mode: str = "auto"  # max | min | auto (names with "loss"/"error" are minimised)
    metric_regex: str | None = None
    # "test": the metric as found (evaluate's first); "validation": select on val_accuracy and
    # report evaluate's figure at the end, on data no decision used (mutator.search.selection)
    select_on: str = "test"
    min_improvement: float = 0.001
    # Noise: the baseline's script (later the best's) trained again with other seeds, this many
    # times in all, on cores a round leaves free; a gain must clear `noise_multiple` sds of the
    # difference of two runs (mutator.search.noise), and a pruned candidate may trail the
    # best's curve by one band. 0: off, the margin alone decides.
    noise_runs: int = 1
    noise_multiple: float = 2.0
    # The final figure with its spread: best.py trained this many more times, with other seeds,
    # when the search ends (0: the best's one from-scratch value stands alone).
    final_runs: int = 0
    max_trials: int = 20
    time_budget: float | None = None  # seconds, over the whole run including resumed parts
    trial_timeout: float | None = 1800.0
    seed: int | None = None
    rules: tuple[str, ...] | None = None  # None: the default order
    rule_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    runner: str = "local"
    # Order the rules by the best trial's curves (under-fitting: capacity first; under-trained:
    # epochs first; over-fitting: regularising first). False keeps the configured order.
    epochs_first_when_rising: bool = True
    adaptive_steps: bool = True  # a rule that gained much takes a bigger step next (x2, x4, x8)
    # A model that under-fits while still learning gets capacity and epochs as one change too.
    joint_changes: bool = True
    prune: bool = True  # stop a candidate whose curve trails the best's by prune_margin
    prune_margin: float = 0.05
    prune_grace: int = 2  # epochs a candidate trains before it may be stopped
    retries: int = 1  # a crashed trial is run again this many times, resuming from its checkpoint
    # Fast trials: candidates side by side, children from their parent's weights, a warm worker.
    parallel: int | None = None  # trials at once; None: one per core this process may use
    warm_start: bool = True  # more_epochs continues the parent; capacity rules map its weights
    warm_share: float = 0.5  # the share of the script's epochs a capacity child trains warm
    # A parent whose script ran in less than this (seconds) has its children trained cold: a
    # from-scratch run costs about what a warm one does, and its metric needs no confirm.
    warm_after: float = 5.0
    worker: bool = True  # fork trials from a process that imported TensorFlow once (local runner)
    worker_recycle: int = 50  # trials one worker serves before a fresh one replaces it
    script_args: tuple[str, ...] = ()
    images: dict[str, str] = field(default_factory=dict)  # kind -> image, over detect's defaults
    # --runner docker: one container per trial
    docker_image: str | None = None  # None: the image for the script's kind (mutate detect)
    docker_cpus: float | None = None
    docker_memory: str | None = None  # e.g. "2g"
    docker_network: str | None = None  # "none" cuts trials off the network
    docker_keep_failed: bool = False  # keep a failed trial's container for inspection
    docker_restart_grace: float = 0.0  # seconds to wait for `mutate monitor` to restart a dead one
    # --runner ray: each trial a Ray task with this resource request
    ray_address: str | None = None  # a head's HOST:PORT; None: start a Ray on this machine
    ray_cpus: float | None = None  # None: the cluster's CPUs shared by the trials side by side
    ray_gpus: float = 0.0
    ray_memory: str | None = None  # e.g. "4g": Ray schedules the trial where that much is free


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
    """Defaults, then the config table, then the flags the user gave (None means not given)."""
    known = {f.name for f in dataclasses.fields(TuneSettings)}
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
        if name not in known:
            raise UsageError(
                f"{source}: unknown setting {key!r}; known: {', '.join(sorted(known))}"
            )
        values[name] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    for name in ("time_budget", "trial_timeout", "warm_after"):
        if values.get(name) is not None:
            values[name] = parse_duration(values[name])
    if "rules" in values and values["rules"] is not None:
        values["rules"] = tuple(values["rules"])
    if "script_args" in values:
        values["script_args"] = tuple(values["script_args"])
    if values.get("select_on") == "validation" and values.get("metric") is None:
        values["metric"] = "val_accuracy"
    settings = TuneSettings(**values)
    _check(settings)
    return settings


def _check(settings: TuneSettings) -> None:
    if settings.mode not in ("max", "min", "auto"):
        raise UsageError(f"mode must be max, min or auto, not {settings.mode!r}")
    if settings.max_trials < 1:
        raise UsageError("max_trials must be at least 1 (the baseline is a trial)")
    if settings.min_improvement < 0:
        raise UsageError("min_improvement cannot be negative")
    if settings.select_on not in ("test", "validation"):
        raise UsageError(f"select_on must be test or validation, not {settings.select_on!r}")
    if settings.noise_runs < 0:
        raise UsageError(f"noise_runs cannot be negative, not {settings.noise_runs!r}")
    if settings.final_runs < 0:
        raise UsageError(f"final_runs cannot be negative, not {settings.final_runs!r}")
    if settings.noise_multiple <= 0:
        raise UsageError(f"noise_multiple must be positive, not {settings.noise_multiple!r}")
    if settings.runner not in ("local", "docker", "ray"):
        raise UsageError(f"runner must be local, docker or ray, not {settings.runner!r}")
    if (settings.ray_cpus is not None and settings.ray_cpus <= 0) or settings.ray_gpus < 0:
        raise UsageError("ray_cpus must be positive and ray_gpus cannot be negative")
    if settings.parallel is not None and settings.parallel < 1:
        raise UsageError("parallel must be at least 1")
    if not 0 < settings.warm_share <= 1:
        raise UsageError(f"warm_share must be in (0, 1], not {settings.warm_share!r}")
    if settings.warm_after < 0:
        raise UsageError(f"warm_after cannot be negative, not {settings.warm_after!r}")
    if settings.prune_margin < 0 or settings.prune_grace < 1:
        raise UsageError("prune_margin cannot be negative and prune_grace is at least 1")
    if settings.worker_recycle < 1:
        raise UsageError("worker_recycle must be at least 1")


def cores() -> int:
    """The CPUs this process may use (a container's or a cgroup's limit when it has one)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parallel_trials(settings: TuneSettings) -> int:
    """How many trials the search trains at once: the setting, else one per core."""
    return settings.parallel if settings.parallel is not None else cores()
