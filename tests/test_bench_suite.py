"""The benchmark suite's pure parts: the task registry, the medians, ratios and geometric mean,
when an anchor's search met a target, Optuna's stand-in for KerasTuner's `hp`, and the command
line. No Keras, no training."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_suite  # noqa: E402 - bench/ is not a package: its modules import each other flat
import optuna_search  # noqa: E402
import search_runs  # noqa: E402
import search_space  # noqa: E402
import suite_report  # noqa: E402
from suite import TASKS, task_named  # noqa: E402

from mutator.api import Script  # noqa: E402
from rules import DEFAULT_ORDER  # noqa: E402


def run(
    method: str, seed: int, wall: float | None, variant: str | None = None, **extra
) -> search_runs.Run:
    """A Run that reached its target in `wall` seconds, or missed it (None)."""
    return search_runs.Run(
        method=method,
        variant=variant if method == "mutate" else None,
        seed=seed,
        target=0.95,
        reached=wall is not None,
        trials=3,
        epochs=10,
        trial_seconds=5.0,
        wall=wall if wall is not None else 300.0,
        process_wall=300.0 if wall is None else wall + 1.0,
        cpu=1.0,
        reason="target" if wall is not None else "time_cap",
        best=0.96 if wall is not None else 0.9,
        load=(1.0, 1.0),
        task="lstm_digits",
        **extra,
    )


# -- the registry --------------------------------------------------------------------------------


def test_the_suite_has_the_tasks_issues_26_and_28_name_and_eleven_in_all():
    names = [task.name for task in TASKS]
    assert len(names) == len(set(names)) >= 11
    assert {"lstm_digits", "sgd_slow_cnn", "overfit_diabetes"} <= set(names)
    assert task_named("lstm_digits").target == 0.95
    with pytest.raises(KeyError, match="no task 'nope'"):
        task_named("nope")


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.name)
def test_every_task_is_a_script_mutate_can_read(task):
    source = task.script.read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert "set_random_seed(0)" in source, "seeded as the fixtures are"
    assert "print(" in source and "test" in source, "prints its test metric"
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
    assert imported <= {"keras", "numpy", "sklearn"}, "data only from packages or generated"
    assert Script.load(task.script).view is not None  # the locator finds its model


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.name)
def test_every_task_has_a_target_and_a_space_to_search(task):
    assert task.mode in ("max", "min")
    if task.metric == "accuracy":
        assert task.mode == "max" and 0 < task.target <= 1
    assert task.target > 0
    space = task.space
    assert list(space.epochs) == sorted(space.epochs) and space.default_epochs in space.epochs
    assert callable(space.build) and callable(space.load_data)
    assert space.batch_size > 0 and 0 < space.validation_split < 1
    assert task.calibration and "TODO" not in task.calibration


def test_mutate_is_told_the_metric_only_when_it_is_not_the_accuracy():
    assert task_named("lstm_digits").for_mutate().metric_args() == []
    loss = [task for task in TASKS if task.mode == "min"]
    assert loss, "the suite has a task judged by a loss"
    assert loss[0].for_mutate().metric_args() == ["--metric", loss[0].metric, "--mode", "min"]


def test_the_old_rules_variant_names_rules_that_still_exist():
    assert set(search_runs.OLD_RULES) <= set(DEFAULT_ORDER)
    flags = search_runs.MUTATE_VARIANTS["old-rules"]
    assert flags[::2] == ("--rule",) * 6 and flags[1::2] == search_runs.OLD_RULES
    assert search_runs.label("mutate", "old-rules") == "mutate (old-rules)"
    assert search_runs.label("mutate", "no-prune") == "mutate --no-prune"


# -- reached, best, first reached ----------------------------------------------------------------


def test_a_loss_target_is_reached_from_below():
    assert search_space.reached(47.9, 48.0, "min") and not search_space.reached(48.1, 48.0, "min")
    assert search_space.reached(0.949999988, 0.95) and not search_space.reached(None, 0.95)
    assert search_runs.best_of([50.0, None, 45.0], "min") == 45.0
    assert search_runs.best_of([0.5, None, 0.7], "max") == 0.7
    assert search_runs.best_of([None], "max") is None


def test_mutate_counts_a_loss_target_on_from_scratch_values_only():
    path = [
        {"decision": "baseline", "start": "cold", "counts": 140.0},
        {"decision": "accepted", "start": "warm", "counts": 47.0},  # an estimate
        {"decision": "confirm", "start": "cold", "counts": 46.5},
    ]
    assert search_runs.first_reached(path, 48.0, "min") == 2
    assert search_runs.first_reached(path, 40.0, "min") is None
    stopped = {"decision": "baseline", "start": "cold", "counts": 44.8, "past_peak": True}
    cut = {"decision": "accepted", "start": "cold", "counts": 44.7}
    assert search_runs.first_reached([stopped, cut], 48.0, "min") == 1  # not the stopped one


def test_an_anchors_target_is_met_at_the_earliest_epoch_or_trial():
    events = [
        {"event": "start", "at": 5.0},
        {"event": "trial", "at": 10.0, "test_value": 0.9, "epochs_trained": 5, "seconds": 4.0},
        {
            "event": "met",
            "target": 0.95,
            "at": 14.0,
            "test_value": 0.96,
            "epoch": 3,
            "seconds": 3.0,
            "params": 1000,
            "seconds_per_epoch": 0.5,
        },
        {"event": "trial", "at": 30.0, "test_value": 0.97, "epochs_trained": 20, "seconds": 19.0},
    ]
    hit = search_runs.anchor_hit(events, 0.95, "max")
    assert hit["at"] == 14.0 and hit["params"] == 1000
    assert [t["epochs_trained"] for t in hit["trials"]] == [5, 3]  # the part of trial 2 that ran
    assert search_runs.anchor_hit(events, 0.97, "max")["at"] == 30.0  # no met line for it
    assert search_runs.anchor_hit(events, 0.99, "max") is None


# -- the anchors ---------------------------------------------------------------------------------


def test_every_anchor_has_a_child_process_and_a_label():
    assert search_runs.ANCHORS == ("random", "hyperband", "bayesian", "optuna")
    for method in search_runs.ANCHORS:
        assert search_runs.LABELS[method] and suite_report.name(method) != method
        command = search_runs.anchor_command(method)
        assert command[0] == sys.executable and Path(command[1]).is_file()
    assert search_runs.anchor_command("optuna")[1:] == [str(BENCH / "optuna_search.py")]
    assert search_runs.anchor_command("random")[2:] == ["kerastuner", "--method", "random"]


def test_optuna_offers_kerastuners_hp_over_the_same_values():
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
    for _ in range(12):  # past TPE's 10 random start-up trials
        trial = study.ask()
        hp = optuna_search.OptunaHP(trial)
        assert hp.Int("layers", 1, 3, default=3) in (1, 2, 3)
        units = hp.Choice("units", [4, 8, 16], default=4)
        assert units in (4, 8, 16)
        assert hp.Choice("units", [4, 8, 16]) == units, "a name asked twice is one value"
        assert 1e-4 <= hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=1e-3) <= 0.1
        dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.0)
        assert dropout * 10 == pytest.approx(round(dropout * 10))
        assert hp.Boolean("batchnorm", default=False) in (False, True)
        study.tell(trial, float(units))
    spaces = trial.distributions
    assert spaces["layers"] == optuna.distributions.IntDistribution(1, 3)
    assert spaces["units"] == optuna.distributions.CategoricalDistribution([4, 8, 16])
    assert spaces["learning_rate"] == optuna.distributions.FloatDistribution(1e-4, 0.1, log=True)
    assert spaces["dropout"] == optuna.distributions.FloatDistribution(0.0, 0.5, step=0.1)
    assert spaces["batchnorm"] == optuna.distributions.CategoricalDistribution([False, True])


def test_optunas_child_takes_kerastuners_flags_but_the_method_and_directory():
    import argparse

    parser = argparse.ArgumentParser()
    search_space.add_search_flags(parser)
    args = parser.parse_args(["--targets", "48", "--out", "o.jsonl", "--task", "overfit_diabetes"])
    assert (args.seed, args.max_trials, args.every_epoch) == (0, 20, False)
    assert args.targets == [48.0] and args.task == "overfit_diabetes"


def test_a_saved_models_parameters_leave_out_the_optimizer_and_seeds():
    assert not search_runs.is_state("layers/dense/vars/0")
    assert not search_runs.is_state("hidden/vars/0")  # a subclassed model's attribute
    assert search_runs.is_state("optimizer/vars/3")
    assert search_runs.is_state("layers/dropout/seed_generator/vars/0")
    assert search_runs.params_of(Path("/nonexistent"), 1) is None


# -- the summaries -------------------------------------------------------------------------------


def test_geometric_mean_and_median():
    assert suite_report.geometric_mean([1.0, 4.0]) == pytest.approx(2.0)
    assert suite_report.geometric_mean([0.5, math.inf]) == math.inf
    assert suite_report.geometric_mean([]) is None
    with pytest.raises(ValueError):
        suite_report.geometric_mean([0.0, 1.0])
    assert suite_report.median_of([3, None, 1, 2]) == 2
    assert suite_report.median_of([None]) is None


def test_ratio_to_the_best_anchor():
    assert suite_report.ratio(10.0, 40.0) == 0.25
    assert suite_report.ratio(math.inf, 40.0) == math.inf  # mutate missed, an anchor did not
    assert suite_report.ratio(10.0, math.inf) is None  # no anchor reached it: no ratio
    assert suite_report.ratio(None, 40.0) is None


def test_a_task_row_takes_medians_over_seeds_with_misses_as_infinite():
    runs = [
        run("mutate", 1, 10.0, "full", params=500, seconds_per_epoch=0.2),
        run("mutate", 2, 20.0, "full", params=700, seconds_per_epoch=0.4),
        run("mutate", 3, None, "full"),
        run("mutate", 1, None, "old-rules"),
        *(run("random", s, w, params=9000) for s, w in ((1, 40.0), (2, 50.0), (3, 60.0))),
        *(run("hyperband", s, None) for s in (1, 2, 3)),
    ]
    row = suite_report.task_row("lstm_digits", 0.95, runs)
    mutate = row["methods"]["mutate"]
    assert (mutate["wall"], mutate["misses"], mutate["reached"]) == (20.0, 1, 2)
    assert (mutate["params"], mutate["seconds_per_epoch"]) == (600, pytest.approx(0.3))
    assert row["methods"]["mutate old-rules"]["wall"] == math.inf
    assert row["methods"]["hyperband"]["misses"] == 3
    assert row["best_anchor"] == "random" and row["ratio"] == pytest.approx(0.4)
    assert row["goal"]["met"] is True
    missed = suite_report.task_row(
        "t", 0.95, [run("mutate", 1, None, "full"), run("random", 1, 9.0)]
    )
    with_optuna = suite_report.task_row(
        "t", 0.95, [run("mutate", 1, 4.0, "full"), run("random", 1, 9.0), run("optuna", 1, 8.0)]
    )
    assert with_optuna["best_anchor"] == "optuna" and with_optuna["ratio"] == 0.5
    overall = suite_report.overall([row, missed])
    assert overall["geometric_mean"] == math.inf and overall["goal_met_tasks"] == 1
    assert suite_report.json_rows([missed])[0]["ratio"] is None  # JSON has no infinity


def test_the_table_prints_when_every_method_missed(capsys):
    rows = [
        suite_report.task_row(
            "lstm_digits", 0.95, [run("mutate", 1, None, "full"), run("random", 1, None)]
        )
    ]
    suite_report.print_table(rows, ["mutate", "random"])
    suite_report.print_sizes(rows, ["mutate", "random"])
    suite_report.print_overall(suite_report.overall(rows))
    out = capsys.readouterr().out
    assert "miss (0/1)" in out and "lstm_digits" in out and "over 0 of 1 task(s): -" in out


# -- the command line ----------------------------------------------------------------------------


def test_quick_is_a_short_run_and_seed_zero_is_refused(capsys):
    args = bench_suite.parse(["--quick", "--tasks", "lstm_digits"])
    assert args.seeds == [1] and args.methods == ["mutate", "random"]
    assert args.variants == ["full", "old-rules"] and [t.name for t in args.tasks] == [
        "lstm_digits"
    ]
    assert bench_suite.columns(args) == ["mutate", "mutate old-rules", "random"]
    assert "optuna" not in args.methods, "--quick stays three searches a task"
    everything = bench_suite.parse([])
    assert len(everything.tasks) == len(TASKS) and "optuna" in everything.methods
    assert bench_suite.columns(everything)[-4:] == ["random", "hyperband", "bayesian", "optuna"]
    chosen = bench_suite.parse(["--methods", "mutate", "optuna", "random", "--variants", "full"])
    assert bench_suite.columns(chosen) == ["mutate", "random", "optuna"]
    with pytest.raises(SystemExit):
        bench_suite.parse(["--seeds", "0"])
    assert "KerasTuner takes it as no seed" in capsys.readouterr().err


def test_anchors_from_an_earlier_run_are_read_back_only_at_the_same_budget(tmp_path, capsys):
    import json
    from dataclasses import asdict

    earlier = {
        "settings": {"max_trials": 10, "time_cap": 150.0},
        "runs": [asdict(run("random", 1, 12.5)), asdict(run("mutate", 1, 9.0, "full"))],
    }
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(earlier))
    args = bench_suite.parse(
        ["--max-trials", "10", "--time-cap", "150", "--anchors-from", str(path)]
    )
    stored = bench_suite.stored_anchors(path, args)
    assert list(stored) == [("lstm_digits", "random", 1)]  # mutate is always run again
    assert stored["lstm_digits", "random", 1][0] == run("random", 1, 12.5)
    with pytest.raises(SystemExit, match="ran with max_trials 10, not 20"):
        bench_suite.stored_anchors(path, bench_suite.parse(["--anchors-from", str(path)]))
    path.write_text("{not json")
    with pytest.raises(SystemExit, match="not a results JSON"):
        bench_suite.stored_anchors(path, args)


def test_mutates_time_ends_with_the_round_that_met_the_target():
    done = search_runs.Finished(0, started=100.0, wall=12.0, cpu=10.0, launched=1_000_000.0)
    stamp = "1970-01-12T13:46:50.250+00:00"  # 1,000,010.25 s after the epoch
    assert search_runs.to_target({"finished": stamp}, done) == pytest.approx(10.25)
    assert search_runs.to_target({"finished": "1970-01-12T13:46:50+00:00"}, done) == 12.0
    assert search_runs.to_target({}, done) == 12.0  # no stamp: the whole process
    late = "1970-01-12T13:47:00.000+00:00"  # after the process ended: not to be believed
    assert search_runs.to_target({"finished": late}, done) == 12.0
