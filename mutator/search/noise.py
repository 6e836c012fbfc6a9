"""How much a script's metric moves from seed to seed, and whether a gain clears it.

A single run's gain decides nothing when the script's own runs differ by as much (a CNN stuck
near chance went 0.048 -> 0.102 -> 0.172 on three changes that did nothing). So the search
measures the noise: the baseline's script (later the best's) is trained again with every seed
it sets moved (`MUTATOR_SEED_OFFSET`), on a core that would otherwise idle, and the values of
each script, at its several seeds, give a pooled standard deviation.

The band is `multiple` standard deviations of the difference of two runs (sqrt(2) x sd). A
gain that clears it even widened for how few runs back the estimate (Student's t over the
normal, at 95%: from one pair of runs the sd itself is a guess) is a gain at once; one at or
under `min_improvement` is none; one between is trained again with another seed (a
`recheck`), and counts only when the mean of its two runs clears the band for a mean
(sqrt(1/2 + 1) x sd). A recheck measures the noise once more, at the level of the change.

Noise is not the same at every level: a 2-epoch model near chance moves by 0.15 from seed to
seed, the same model trained to 0.98 by 0.005. For a metric between 0 and 1 (an accuracy),
each script's spread is read relative to a binomial's at its mean (sqrt(m (1 - m))) and the
band is scaled back to the level of the best it judges against. A positive metric that is not
an accuracy (a loss, an MAE) is read relative to its mean instead: a regression at MAE 134
that moves 13 from seed to seed moves about 4.5 once it is at 46.

Two or three runs say little of a spread (from one pair, Student's t widens a band almost four
times). For an accuracy over n examples counted by the harness, the band also leans on what
sampling alone gives: sqrt(m (1 - m) / n) from seed to seed, which is about what the spread of
trained networks across seeds measures (Jordan, "On the variance of neural network training
with respect to test sets and distributions", 2023). That prior counts as `PRIOR_DF` degrees
of freedom beside the measured ones: a script whose runs differ by more (a weak model that
lands in a different minimum at every seed) pulls the band wide, one that agrees with sampling
is judged at that from its first pair of runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Student's t at 95% (one-sided) over the normal's 1.645, by degrees of freedom: how much wider
# a band must be when its sd comes from so few runs.
_T95 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860}
_T95.update({9: 1.833, 10: 1.812, 12: 1.782, 15: 1.753, 20: 1.725, 30: 1.697})
_Z95 = 1.645
PRIOR_DF = 4  # what sampling's spread weighs as, in degrees of freedom of measured runs

ACCEPT, RECHECK, REFUSE = "accept", "recheck", "refuse"


def widening(df: int) -> float:
    """t(95%, df) / z(95%): 3.84 with one degree of freedom, 1.0 with many."""
    if df <= 0:
        return math.inf
    known = [d for d in _T95 if d <= df]
    return _T95[max(known)] / _Z95 if df <= 30 else 1.0


@dataclass(frozen=True)
class NoiseBand:
    """The measured run-to-run spread of the scripts the search trained more than once."""

    sd: float  # pooled standard deviation of one run's metric, at the level it judges
    df: int  # degrees of freedom: runs minus scripts, plus the prior's when there is one
    runs: int
    scripts: int
    multiple: float
    examples: int | None = None  # the evaluated examples the sampling prior rests on

    def band(self, runs_of_candidate: int = 1) -> float:
        """What a gain must exceed: `multiple` sds of the difference of the candidate's mean
        and the best's run."""
        return self.multiple * self.sd * math.sqrt(1 / runs_of_candidate + 1)

    def at_once(self) -> float:
        """What a single run's gain must exceed to count without a recheck: the band, widened
        for how few runs the sd rests on."""
        return self.band(1) * widening(self.df)

    def line(self) -> str:
        prior = f" and {self.examples} examples" if self.examples else ""
        return (
            f"noise band ±{self.band():.4f} (sd {self.sd:.4f} from {self.runs} runs of "
            f"{self.scripts} script{'s' if self.scripts != 1 else ''}{prior}, "
            f"x{self.multiple:g})"
        )

    def to_json(self) -> dict[str, float | int]:
        return {
            "band": round(self.band(), 6),
            "at_once": round(self.at_once(), 6),
            "sd": round(self.sd, 6),
            "df": self.df,
            "runs": self.runs,
            "scripts": self.scripts,
            "examples": self.examples,
        }


def measure(
    runs: Mapping[str, Mapping[int, float]],
    multiple: float,
    level: float | None = None,
    examples: int | None = None,
) -> NoiseBand | None:
    """The pooled spread of `runs` (script sha -> seed offset -> from-scratch value), at
    `level` (the best's value) for a metric in [0, 1], with sampling's spread over `examples`
    as a prior; None while no script has two values (the noise is measured, not assumed)."""
    groups = [
        [v for v in values.values() if v is not None and math.isfinite(v)]
        for values in runs.values()
    ]
    groups = [g for g in groups if len(g) >= 2]
    if not groups:
        return None
    unit = all(0.0 <= v <= 1.0 for g in groups for v in g) and level is not None
    unit = unit and 0.0 <= level <= 1.0  # type: ignore[operator]
    relative = (
        not unit and level is not None and level > 0 and all(v > 0 for g in groups for v in g)
    )
    squares, df, count = 0.0, 0, 0
    for group in groups:
        mean = sum(group) / len(group)
        scale = _binomial(mean) if unit else mean if relative else 1.0
        squares += sum(((v - mean) / scale) ** 2 for v in group)
        df += len(group) - 1
        count += len(group)
    prior = examples if unit and examples is not None and examples > 0 else None
    if prior is not None:  # in binomial units, sampling's sd is 1 / sqrt(n) at every level
        squares, df = squares + PRIOR_DF / prior, df + PRIOR_DF
    level_scale = _binomial(level) if unit else level if relative else 1.0  # type: ignore[arg-type]
    sd = math.sqrt(squares / df) * level_scale
    return NoiseBand(sd, df, count, len(groups), multiple, prior)


def _binomial(p: float) -> float:
    """sqrt(p (1 - p)), kept off zero: a script at 1.0 still moves a little."""
    p = min(max(p, 0.02), 0.98)
    return math.sqrt(p * (1 - p))


def verdict(
    gain: float | None,
    band: NoiseBand | None,
    margin: float,
    rechecked: bool,
    reaches_target: bool = False,
) -> str:
    """What a candidate's gain over the best means: accept, recheck (inside the band, not yet
    trained again) or refuse.

    Without a measured band, the margin alone decides, as before noise was measured. A change
    whose value reaches the target is accepted on the margin alone: the target is the user's
    own bar, not a comparison, and the search never stops on it before the script has reached
    it from scratch (a confirm, which is the recheck such a change needs), so noise cannot walk
    the climb there.
    """
    if gain is None or math.isnan(gain) or gain <= margin:
        return REFUSE
    if band is None or reaches_target:
        return ACCEPT
    if rechecked:
        return ACCEPT if gain > band.band(2) else REFUSE
    return ACCEPT if gain > band.at_once() else RECHECK


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)
