"""The noise band on recorded values: what it rests on, and what a gain must clear."""

from __future__ import annotations

import math

import pytest
from records import trial_record

from mutator.search import noise
from mutator.search.noise import ACCEPT, RECHECK, REFUSE, NoiseBand, measure, verdict, widening


def test_no_band_until_a_script_has_run_twice():
    assert measure({}, 2.0) is None
    assert measure({"a": {0: 0.5}, "b": {0: 0.6}}, 2.0) is None


def test_the_pooled_sd_of_scripts_run_with_several_seeds():
    band = measure({"a": {0: 0.50, 1: 0.54}, "b": {0: 0.70, 3: 0.74, 4: 0.72}}, 2.0)
    assert band is not None and band.df == 3 and band.runs == 5 and band.scripts == 2
    # squares: a 2 x 0.02^2, b 0.02^2 + 0.02^2: 0.0016 over 3 degrees of freedom
    assert band.sd == pytest.approx(math.sqrt(0.0016 / 3))
    assert band.band() == pytest.approx(2 * band.sd * math.sqrt(2))
    assert band.band(2) == pytest.approx(2 * band.sd * math.sqrt(1.5))


def test_an_accuracy_band_is_read_at_the_level_of_the_best():
    """A weak model's seed-to-seed swing (0.33 vs 0.47) is not the trained model's."""
    runs = {"baseline": {0: 0.33, 1: 0.47}}
    near_chance = measure(runs, 2.0, level=0.40)
    trained = measure(runs, 2.0, level=0.97)
    assert near_chance.sd == pytest.approx(0.07 * math.sqrt(2), rel=0.01)
    assert trained.sd < near_chance.sd / 2


def test_a_loss_band_is_read_relative_to_its_level():
    # a regression at MAE 134 moving 13 from seed to seed moves about 4.5 at MAE 46
    runs = {"baseline": {0: 142.9, 1: 124.9}}
    at_start, at_best = measure(runs, 2.0, level=133.9), measure(runs, 2.0, level=46.6)
    assert at_start.sd == pytest.approx(9.0 * math.sqrt(2), rel=0.01)
    assert at_best.sd == pytest.approx(at_start.sd * 46.6 / 133.9)
    # a metric that can be negative or zero keeps its own units
    assert measure({"r": {0: -1.0, 1: 1.0}}, 2.0, level=3.0).sd == pytest.approx(math.sqrt(2))


def test_sampling_over_the_evaluated_examples_tempers_a_band_from_one_pair():
    # near chance, two runs 0.13 and 0.17 of 360 examples; judged at the best's 0.74
    runs = {"base": {0: 0.1278, 1: 0.1694}}
    alone = measure(runs, 2.0, level=0.74)
    tempered = measure(runs, 2.0, level=0.74, examples=360)
    assert alone is not None and tempered is not None
    assert alone.df == 1 and tempered.df == 1 + noise.PRIOR_DF
    assert tempered.at_once() < alone.at_once() / 2  # t at 5 df, not at 1
    assert tempered.examples == 360 and "and 360 examples" in tempered.line()


def test_runs_that_differ_more_than_sampling_pull_the_band_wide():
    # a weak model that lands in another minimum at each seed: 0.71 and 0.44 of 171 examples
    wild = measure({"base": {0: 0.71, 1: 0.44}}, 2.0, level=0.58, examples=171)
    calm = measure({"base": {0: 0.59, 1: 0.57}}, 2.0, level=0.58, examples=171)
    assert wild is not None and calm is not None
    assert wild.sd > 2 * calm.sd
    assert calm.sd == pytest.approx(math.sqrt(0.58 * 0.42 / 171), rel=0.35)  # near sampling's


def test_the_prior_needs_a_measured_pair_and_an_accuracy():
    assert measure({"base": {0: 0.5}}, 2.0, level=0.5, examples=360) is None
    loss = measure({"base": {0: 40.0, 1: 44.0}}, 2.0, level=42.0, examples=360)
    assert loss is not None and loss.examples is None and loss.df == 1


def test_a_band_from_few_runs_is_widened_for_a_gain_seen_once():
    assert widening(1) == pytest.approx(6.314 / 1.645)
    assert widening(2) > widening(5) > widening(30) > widening(100) == 1.0
    band = NoiseBand(sd=0.01, df=1, runs=2, scripts=1, multiple=2.0)
    assert band.at_once() == pytest.approx(band.band() * widening(1))


@pytest.mark.parametrize(
    "gain, rechecked, expected",
    [
        (None, False, REFUSE),
        (0.0005, False, REFUSE),  # within min_improvement
        (0.05, False, RECHECK),  # beyond the margin, inside the widened band: once more
        (0.20, False, ACCEPT),  # beyond even the widened band: a gain at once
        (0.05, True, ACCEPT),  # the mean of two runs clears the band for a mean
        (0.02, True, REFUSE),  # still inside after its recheck: noise
    ],
)
def test_a_gain_is_kept_refused_or_run_again(gain, rechecked, expected):
    band = NoiseBand(sd=0.01, df=2, runs=3, scripts=1, multiple=2.0)
    assert band.band(2) < 0.05 < band.at_once() < 0.20
    assert verdict(gain, band, 0.001, rechecked) == expected


def test_a_gain_that_reaches_the_target_needs_only_the_margin():
    # the target is the user's bar: a from-scratch run at the script's seeds decides it
    band = NoiseBand(sd=0.05, df=1, runs=2, scripts=1, multiple=2.0)
    assert verdict(0.04, band, 0.001, False) == RECHECK
    assert verdict(0.04, band, 0.001, False, reaches_target=True) == ACCEPT
    assert verdict(0.0005, band, 0.001, False, reaches_target=True) == REFUSE


def test_without_a_band_the_margin_alone_decides():
    assert verdict(0.002, None, 0.001, False) == ACCEPT
    assert verdict(0.001, None, 0.001, False) == REFUSE


def test_the_line_says_what_the_band_rests_on():
    line = NoiseBand(0.0226, 2, 3, 1, 2.0).line()
    assert line == "noise band ±0.0639 (sd 0.0226 from 3 runs of 1 script, x2)"
    assert noise.mean([1.0, 2.0]) == 1.5


def record(trial_id, decision, value, sha="best", offset=0, start="cold", **extra):
    rule = None if decision in ("baseline", "final") else "more_filters"
    return trial_record(
        trial_id,
        decision,
        value,
        rule=rule,
        site=0,
        sha256=sha,
        start=start,
        seed_offset=offset,
        description="",
        **extra,
    )


def test_the_final_figure_is_the_mean_and_sd_of_the_best_at_every_seed():
    from mutator.search.ledger import final_spread

    records = [
        record(1, "baseline", 0.33, sha="base"),
        record(2, "noise", 0.47, sha="base", offset=1),
        record(3, "accepted", 0.96, start="warm"),  # an estimate: not a run from scratch
        record(4, "confirm", 0.97),
        record(5, "final", 0.98, offset=2),
        record(6, "final", 0.96, offset=3),
    ]
    spread = final_spread(records)
    assert spread.values == (0.97, 0.98, 0.96)
    assert spread.mean == pytest.approx(0.97) and spread.sd == pytest.approx(0.01)
    assert spread.line().startswith("best.py reaches 0.9700 ± 0.0100 (mean ± sd of 3 runs")
    assert final_spread(records[:4]) is None  # no final runs: no spread to tell
