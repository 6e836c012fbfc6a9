"""The run directory: one JSON line per finished trial, and a folder per trial.

Everything the search knows is here, so a run killed at any moment is rebuilt from these files:

    .mutator/<script-stem>/
        run.json            what was asked (script, its sha256, target, metric...) - written once
        ledger.jsonl        one line per finished trial, appended and fsynced
        trials/0001/        the trial's script (under its own file name), trial.json, log.txt,
                            metrics.json, checkpoint/ (BackupAndRestore), model.keras, and
                            warm.json when it starts from a parent's weights
        weights/0001.keras  the models of the trials children start from (hard links)
        best.py             the best version so far: a normal runnable script
        best.keras          its trained model
        report.html, metrics.png
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mutator.engine.rewrite import unified_diff
from mutator.engine.source import write_atomically
from mutator.errors import MutatorError, UsageError

LEDGER = "ledger.jsonl"
RUN = "run.json"


def trial_metrics(trial_dir: Path) -> dict[str, Any]:
    """A trial's metrics.json (the harness writes it last, once the trial is judged), or {}
    when it is missing or unreadable."""
    try:
        metrics = json.loads((trial_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class TrialRecord:
    """One finished trial, as stored in ledger.jsonl."""

    id: int
    parent: int | None  # the trial whose script this one changed (None for the baseline)
    rule: str | None  # None for the baseline
    site: int | None
    params: dict[str, Any]
    description: str
    sha256: str
    diff: str
    status: str  # ok | failed | nan | no_metric | over_budget | timeout | crashed | cancelled
    value: float | None
    # baseline | accepted | rejected | confirm (the best retrained from scratch) | noise (the
    # best retrained with other seeds, to measure the spread; never a candidate)
    decision: str
    best_after: float | None  # the best metric once this trial was decided
    seconds: float
    started: str
    finished: str
    resumed_from_epoch: int = 0
    restarts: int = 0
    error: str | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    # Since fast trials (older ledgers lack them: the defaults read them as before):
    start: str = "cold"  # warm: from its parent's weights (its value is an estimate) | cold
    start_reason: str | None = None  # what the warm start did, or why the trial started cold
    round: int | None = None  # trials of one round trained side by side on the same best
    beaten_by: int | None = None  # a rejected trial that improved, but less than this one
    # Since the smarter climb:
    diagnosis: str | None = None  # the best's condition that ordered the round's rules
    step: float | None = None  # the factor its rule used (adaptive steps)
    pruned: dict[str, Any] | None = None  # stopped early: {"epoch", "value", "reference"}
    # Since joint changes: the other rules' parts, each {"rule", "site", "params", "step"}
    also: list[dict[str, Any]] | None = None
    # Since noise is measured: how far every seed the script sets was moved (0: as written),
    # and for a candidate judged against the noise band, {"gain", "band", "sd", "df", "verdict"}.
    seed_offset: int = 0
    noise: dict[str, Any] | None = None
    # How many examples the metric was measured on, when the harness could count them (the
    # noise band's prior: an accuracy over n examples moves about sqrt(p (1 - p) / n)).
    examples: int | None = None
    # The model's size and pace, as the harness measured them (None: not counted, no epoch
    # trained, or a ledger from before they were recorded): `mutator.training.budget`.
    parameters: int | None = None
    seconds_per_epoch: float | None = None
    # The script as given, stopped once its validation loss had passed its lowest point
    # (`mutator.training.peak`): {"epoch", "planned", "best_epoch", "value", "best", "key"}.
    past_peak: dict[str, Any] | None = None
    # Stopped at the epoch its evaluate met the target, its script's epochs cut to it
    # (`mutator.training.at_target`): {"epoch", "planned", "key", "value", "evaluations"}.
    at_target: dict[str, Any] | None = None

    @property
    def address(self) -> dict[str, Any]:
        """What `Candidate.address()` gave for this trial's change (the key of refused changes)."""
        address = {"rule": self.rule, "site": self.site, "params": self.params}
        if self.also:
            address["also"] = [
                {"rule": part["rule"], "site": part["site"], "params": part["params"]}
                for part in self.also
            ]
        return address

    @property
    def rechecked(self) -> int | None:
        """For a recheck, the trial whose change it trained again (its first run)."""
        return (self.noise or {}).get("rechecked")

    @property
    def parts(self) -> list[tuple[str, float | None]]:
        """Each rule this trial's change used, with the step it used it at (its own first)."""
        if self.rule is None:
            return []
        return [(self.rule, self.step), *((p["rule"], p.get("step")) for p in self.also or [])]

    @property
    def rules_label(self) -> str:
        """The rule column of history, report and commit message: `more_filters+more_epochs`
        (empty for the baseline and a confirm)."""
        return "+".join(rule for rule, _ in self.parts)


@dataclass(frozen=True)
class FinalBest:
    """The best trial of a ledger, and the value that counts for it."""

    record: TrialRecord
    value: float | None  # its confirm trial's from-scratch value when it had one
    confirmed: bool  # False: `value` is a warm-start estimate nobody retrained


def final_best(records: list[TrialRecord]) -> FinalBest | None:
    """The last accepted trial (else the baseline), as the search rebuilds it, with its value."""
    best: TrialRecord | None = None
    value: float | None = None
    confirmed = True
    for record in records:
        if record.decision == "baseline" and record.status == "ok":
            best, value, confirmed = record, record.value, True
        elif record.decision == "accepted":
            best, value, confirmed = record, record.value, record.start != "warm"
            first = (record.noise or {}).get("first") if record.rechecked else None
            if record.rechecked:
                # a recheck: both runs from scratch count, as the search counts them
                value = record.value if first is None else (first + record.value) / 2
                confirmed = True
        elif record.decision == "confirm" and best is not None:
            value, confirmed = (record.value if record.status == "ok" else None), True
        elif (
            record.decision in ("noise", "final")
            and best is not None
            and confirmed
            and record.sha256 == best.sha256
            and record.value is not None
        ):  # the best is what its script reaches on average over its seeds, as the search says
            runs = _runs_of(records[: records.index(record) + 1], best.sha256)
            value = sum(runs) / len(runs) if runs else value
    return None if best is None else FinalBest(best, value, confirmed)


def from_scratch(record: TrialRecord) -> bool:
    """Whether the record's value is what its script reaches when run as it is (at its seed):
    trained cold to its last epoch. A rechecked change's first run counts too."""
    return (
        record.status == "ok"
        and record.value is not None
        and record.start != "warm"
        and not record.pruned
        and not record.past_peak
    )


def _runs_of(records: list[TrialRecord], sha: str) -> list[float]:
    """The from-scratch values of the script `sha` at each seed offset it ran with."""
    by_offset: dict[int, float] = {}
    for r in records:
        if r.sha256 == sha and from_scratch(r):
            by_offset[r.seed_offset] = float(r.value)  # type: ignore[arg-type]
    return [by_offset[k] for k in sorted(by_offset)]


@dataclass(frozen=True)
class Spread:
    """The best script's figure over its runs from scratch at several seeds (`final_runs`)."""

    mean: float
    sd: float
    values: tuple[float, ...]

    def line(self) -> str:
        runs = ", ".join(f"{v:.4f}" for v in self.values)
        return (
            f"best.py reaches {self.mean:.4f} ± {self.sd:.4f} "
            f"(mean ± sd of {len(self.values)} runs from scratch at other seeds: {runs})"
        )


def final_spread(records: list[TrialRecord]) -> Spread | None:
    """The best's from-scratch values at every seed it ran with, once final runs measured it."""
    best = final_best(records)
    if best is None:
        return None
    sha = best.record.sha256
    if not any(r.decision == "final" and r.sha256 == sha for r in records):
        return None
    values = tuple(_runs_of(records, sha))
    if not values:
        return None
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)
    return Spread(mean, variance**0.5, values)


class RunLockedError(MutatorError):
    exit_code = 7


class Ledger:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- layout -----------------------------------------------------------------------------
    def trial_dir(self, trial_id: int) -> Path:
        return self.root / "trials" / f"{trial_id:04d}"

    @property
    def best_script(self) -> Path:
        return self.root / "best.py"

    @property
    def best_model(self) -> Path:
        return self.root / "best.keras"

    def whole_diff(self, script: str, records: list[TrialRecord]) -> str:
        """The script as given (the first trial's copy) against best.py: every accepted change
        at once; "" before there is either."""
        original = self.trial_dir(records[0].id) / script if records else None
        if original is None or not original.exists() or not self.best_script.exists():
            return ""
        before = original.read_text(encoding="utf-8")
        after = self.best_script.read_text(encoding="utf-8")
        return unified_diff(before, after, script, "best.py")

    # -- the run's identity -----------------------------------------------------------------
    def start(self, settings: dict[str, Any]) -> None:
        """Record what was asked; on resume, refuse when the script is no longer the same."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / RUN
        if path.exists():
            previous = json.loads(path.read_text(encoding="utf-8"))
            if previous.get("script_sha256") != settings.get("script_sha256"):
                raise UsageError(
                    f"{settings.get('script')} changed since the run in {self.root} started; "
                    "pass --fresh to start over (the old run is moved aside)"
                )
            return
        write_atomically(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")

    def settings(self) -> dict[str, Any]:
        path = self.root / RUN
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def move_aside(self) -> Path | None:
        """For --fresh: keep the old run (renamed), never delete a user's results."""
        if not self.root.exists():
            return None
        number = 1
        while (aside := self.root.with_name(f"{self.root.name}.old{number}")).exists():
            number += 1
        self.root.rename(aside)
        return aside

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One tuning process per run directory: two would train into the same trial folders."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(
                    f"another `mutate tune` is running in {self.root}; wait for it or stop it"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- trials ------------------------------------------------------------------------------
    def records(self) -> list[TrialRecord]:
        path = self.root / LEDGER
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(TrialRecord(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                # A line torn by a kill mid-append: that trial is simply not finished.
                continue
        return records

    def append(self, record: TrialRecord) -> None:
        line = json.dumps(asdict(record), sort_keys=True) + "\n"
        fd = os.open(self.root / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def prepare_trial(
        self, trial_id: int, filename: str, source: str, meta: dict[str, Any]
    ) -> Path:
        """The trial's folder with its script; kept as is when an interrupted run left it.

        A folder whose script matches is reused so its checkpoint lets training resume; one
        whose script differs (the run was asked something else) is cleared first.
        """
        folder = self.trial_dir(trial_id)
        script = folder / filename
        if folder.exists() and not (
            script.exists() and script.read_text(encoding="utf-8") == source
        ):
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if not script.exists():
            write_atomically(script, source)
        write_atomically(folder / "trial.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return folder

    @property
    def weights_dir(self) -> Path:
        """Kept models children start from; read-only to the trials (a container mounts it so)."""
        return self.root / "weights"

    def keep_weights(self, trial_id: int) -> Path | None:
        """The trial's trained model, kept under weights/ for its children (a hard link)."""
        model = self.trial_dir(trial_id) / "model.keras"
        if not model.exists():
            return None
        self.weights_dir.mkdir(exist_ok=True)
        kept = self.weights_dir / f"{trial_id:04d}.keras"
        if not kept.exists():
            try:
                os.link(model, kept)
            except OSError:
                shutil.copyfile(model, kept)
        return kept

    def trial_source(self, record: TrialRecord, filename: str) -> str:
        """The script trial `record` trained, as its folder holds it: what a resumed search
        rebuilds its best from, so one edited since the trial refuses the resume."""
        path = self.trial_dir(record.id) / filename
        source = path.read_text(encoding="utf-8")
        if sha256(source) != record.sha256:
            raise MutatorError(f"{path} was changed after trial {record.id}; the run cannot resume")
        return source

    def trial_mode(self, record: TrialRecord, configured: str) -> str:
        """Which way the trial's metric is better: as configured, else as the harness read its
        name (`metrics.json`), else max."""
        if configured in ("max", "min"):
            return configured
        mode = trial_metrics(self.trial_dir(record.id)).get("mode")
        return mode if mode in ("max", "min") else "max"

    def save_best(self, source: str, trial_id: int) -> None:
        write_atomically(self.best_script, source)
        model = self.trial_dir(trial_id) / "model.keras"
        if model.exists():
            tmp = self.best_model.with_suffix(".keras.tmp")
            shutil.copyfile(model, tmp)
            os.replace(tmp, self.best_model)
