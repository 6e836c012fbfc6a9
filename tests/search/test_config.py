"""The settings: flat keys in the configuration file and the flags, groups in the code, and the
one table (`FLAT_KEYS`) between them."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from mutator.cli import app
from mutator.cli.commands import setting_flags
from mutator.errors import UsageError
from mutator.search.config import FLAT_KEYS, TuneSettings, find_config, settings_from

# A value other than the default for every flat key, as a user writes it in the file.
SAMPLES: dict[str, Any] = {
    "target": 0.9,
    "metric": "val_loss",
    "mode": "min",
    "metric_regex": "acc=([0-9.]+)",
    "select_on": "validation",
    "min_improvement": 0.01,
    "max_trials": 7,
    "time_budget": "30m",
    "trial_timeout": "90s",
    "retries": 3,
    "max_params": 250000,
    "max_epoch_seconds": "2m",
    "noise_runs": 3,
    "noise_multiple": 1.5,
    "final_runs": 2,
    "rules": ["more_filters", "add_dense"],
    "rule_settings": {"more_filters": {"factor": 4}},
    "seed": 7,
    "epochs_first_when_rising": False,
    "adaptive_steps": False,
    "joint_changes": False,
    "join_near_misses": False,
    "guess_cap": False,
    "parallel": 2,
    "warm_start": False,
    "warm_share": 0.25,
    "warm_after": "10s",
    "prune": False,
    "prune_margin": 0.1,
    "prune_grace": 3,
    "peak_stop": False,
    "target_stop": False,
    "worker": False,
    "worker_recycle": 5,
    "runner": "docker",
    "script_args": ["--lr", "0.1"],
    "docker_image": "mine:1",
    "images": {"sklearn": "s"},
    "docker_cpus": 2.0,
    "docker_memory": "2g",
    "docker_network": "none",
    "docker_keep_failed": True,
    "docker_restart_grace": 20.0,
    "ray_address": "10.0.0.1:6379",
    "ray_cpus": 1.5,
    "ray_gpus": 1.0,
    "ray_memory": "4g",
    "mlflow": "http://mlflow.example:5000",
    "mlflow_experiment": "digits-search",
    "mlflow_model_name": "digits-cnn",
}
# What the code reads for them: durations in seconds, lists as tuples.
PARSED = {
    "time_budget": 1800.0,
    "trial_timeout": 90.0,
    "warm_after": 10.0,
    "max_epoch_seconds": 120.0,
}
# The settings only the configuration file sets (no flag of their own).
FILE_ONLY = {
    "rule_settings",
    "epochs_first_when_rising",
    "adaptive_steps",
    "prune_margin",
    "prune_grace",
    "worker_recycle",
    "images",
    "docker_restart_grace",
}
# `mutate tune`'s options that are not settings of the search.
NOT_SETTINGS = {"help", "script", "model", "workdir", "fresh"}
NOT_SETTINGS |= {"commit", "branch", "push", "remote", "beside", "notify", "then_slim"}


def expected(key: str) -> Any:
    value = PARSED.get(key, SAMPLES[key])
    return tuple(value) if isinstance(value, list) else value


def read(settings: TuneSettings, key: str) -> Any:
    group, name = FLAT_KEYS[key]
    return getattr(getattr(settings, group), name)


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


def test_the_table_places_every_field_of_every_group_once():
    places = {
        (group.name, name.name)
        for group in dataclasses.fields(TuneSettings)
        for name in dataclasses.fields(group.default_factory)
    }
    assert sorted(FLAT_KEYS.values()) == sorted(places)
    assert set(SAMPLES) == set(FLAT_KEYS)


def test_every_flat_key_in_the_file_reaches_its_group(tmp_path: Path):
    lines = [f"{key} = {toml(value)}" for key, value in SAMPLES.items()]
    (tmp_path / "mutator.toml").write_text("\n".join(lines) + "\n")
    path, table = find_config(tmp_path / "train.py")
    settings = settings_from(table, {}, str(path))
    for key in FLAT_KEYS:
        assert read(settings, key) == expected(key), key
    assert settings.flat() == {key: expected(key) for key in FLAT_KEYS}
    assert TuneSettings.of(**settings.flat()) == settings


def test_flat_keywords_build_the_same_settings_in_code():
    settings = TuneSettings.of(noise_runs=0, docker_cpus=2.0, runner="ray")
    assert (settings.noise.runs, settings.docker.cpus, settings.runner.name) == (0, 2.0, "ray")
    assert settings.budget == TuneSettings().budget
    assert settings_from({}, {"noise_runs": 0}) == TuneSettings.of(noise_runs=0)


def test_the_rules_table_and_dashed_keys_still_read():
    table = {"noise-runs": 2, "rules": {"order": ["add_dense"], "add_dense": {"units": 64}}}
    settings = settings_from(table, {})
    assert settings.noise.runs == 2 and settings.climb.rules == ("add_dense",)
    assert settings.climb.rule_settings == {"add_dense": {"units": 64}}


def test_an_unknown_key_is_refused_with_the_known_ones():
    with pytest.raises(UsageError) as refused:
        settings_from({"noise_run": 2}, {}, "pyproject.toml")
    message = str(refused.value)
    assert message.startswith("pyproject.toml: unknown setting 'noise_run'; known: ")
    assert "\n" not in message and message.endswith(", ".join(sorted(FLAT_KEYS)))
    with pytest.raises(TypeError, match="noise_run"):
        TuneSettings.of(noise_run=2)


def test_the_checks_still_refuse_values_no_search_can_use():
    with pytest.raises(UsageError, match="noise_runs cannot be negative"):
        settings_from({"noise_runs": -1}, {})
    with pytest.raises(UsageError, match="warm_share must be in"):
        settings_from({}, {"warm_share": 2.0})


def test_the_size_and_pace_budget_from_the_file_and_the_flags():
    settings = settings_from({"max_params": 1e6, "max_epoch_seconds": 2.5}, {})
    assert (settings.budget.max_params, settings.budget.max_epoch_seconds) == (1_000_000, 2.5)
    args = app.build_parser("tune").parse_args(
        ["tune", "train.py", "--max-params", "5000", "--max-epoch-seconds", "30s"]
    )
    args.script_args = []
    flagged = settings_from({"max_params": 10}, setting_flags(args))  # flags over the file
    assert (flagged.budget.max_params, flagged.budget.max_epoch_seconds) == (5000, 30.0)
    assert TuneSettings().budget.max_params is None  # no budget unless asked
    assert TuneSettings().budget.max_epoch_seconds is None


@pytest.mark.parametrize(
    "table, message",
    [
        ({"max_params": 0}, "max_params must be a positive whole number, not 0"),
        ({"max_params": -5}, "max_params must be a positive whole number"),
        ({"max_params": 2.5}, "max_params must be a positive whole number, not 2.5"),
        ({"max_params": "big"}, "max_params must be a positive whole number"),
        ({"max_epoch_seconds": 0}, "max_epoch_seconds must be positive, not 0.0"),
        ({"max_epoch_seconds": -3}, "max_epoch_seconds must be positive"),
        ({"max_epoch_seconds": "soon"}, "cannot read 'soon' as a duration"),
    ],
)
def test_a_budget_no_model_can_meet_is_refused(table, message):
    with pytest.raises(UsageError, match=message):
        settings_from(table, {})


def test_a_bad_budget_flag_is_a_usage_error(capsys):
    assert app.main(["tune", "train.py", "--max-params", "lots"]) == 2
    assert "--max-params: invalid int value: 'lots'" in capsys.readouterr().err


def tune_options() -> list[argparse.Action]:
    parser = argparse.ArgumentParser()
    app._add_tune(parser)
    return parser._actions


def test_every_tune_flag_of_a_setting_sets_its_flat_key():
    argv = ["tune", "train.py"]
    flagged = set()
    for action in tune_options():
        if action.dest not in FLAT_KEYS:
            assert action.dest in NOT_SETTINGS, f"{action.option_strings}: not in FLAT_KEYS"
            continue
        flagged.add(action.dest)
        value = SAMPLES[action.dest]
        if action.nargs == 0:
            assert action.const == value, action.option_strings
            argv.append(action.option_strings[0])
            continue
        for one in value if isinstance(value, list) else [value]:
            argv += [action.option_strings[0], str(one)]
    assert flagged == set(FLAT_KEYS) - FILE_ONLY - {"script_args"}
    args = app.build_parser("tune").parse_args(argv)
    args.script_args = SAMPLES["script_args"]  # what `app` cuts from after `--`
    settings = settings_from({}, setting_flags(args))
    for key in [*flagged, "script_args"]:
        assert read(settings, key) == expected(key), key


def test_every_slim_flag_is_a_tune_flag_of_the_same_setting():
    """`mutate slim` takes a subset of tune's flags: the same keys, read the same way."""
    parser = argparse.ArgumentParser()
    app._add_slim(parser)
    tune = {a.dest: a.option_strings for a in tune_options()}
    for action in parser._actions:
        assert action.dest in tune and tune[action.dest] == action.option_strings, action.dest


def test_flags_not_given_leave_the_file_and_the_defaults():
    args = app.build_parser("tune").parse_args(["tune", "train.py"])
    args.script_args = []
    assert settings_from({}, setting_flags(args)) == TuneSettings()
    assert settings_from({"noise_runs": 2}, setting_flags(args)).noise.runs == 2
