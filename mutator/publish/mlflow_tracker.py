"""The search in MLflow: a parent run per search, a nested run per trial, the best model registered.

Imported only when tracking is on (`tracking.tracker_for`); it speaks to the server through
`MlflowClient` alone (no fluent global run, no keras flavour: best.keras is logged as a file, so
the tuning process never imports Keras).

The ledger comes first: a trial is logged after its ledger line is written, and what MLflow
has is read back from it (each nested run carries `mutator.trial_id`), so a resumed search
goes on in the parent run `mlflow.json` names and logs only the trials MLflow lacks. A server
that fails mid-search costs one warning line; the search goes on untracked and `finish` logs
what is missing (again on the next `mutate tune` of this run, if the server is still away).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_SOURCE_NAME

from mutator.errors import PushBackError, TrackingError
from mutator.publish.tracking import (
    TRIAL_TAG,
    TrackedRun,
    describe_failure,
    missing_trials,
    params_of,
    redact_uri,
    run_url,
)
from mutator.search.config import TuneSettings
from mutator.search.hillclimb import Reporter, SearchOutcome
from mutator.search.ledger import LEDGER, Ledger, TrialRecord, final_best, trial_metrics

GIT_COMMIT_TAG = "mlflow.source.git.commit"
REGISTERED_TAG = "mutator.registered"  # "<trial>:<sha256>" of the best model last registered
BATCH = 900  # MLflow takes at most 1000 metrics per log_batch


class MlflowTracker:
    """`tune.SearchTracker` for an MLflow server."""

    def __init__(
        self, uri: str, script: Path, settings: TuneSettings, experiment: str, model_name: str
    ) -> None:
        self.uri = uri
        self.script = script
        self.settings = settings
        self.experiment = experiment
        self.model_name = model_name
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self.link: str | None = None
        self.run: TrackedRun | None = None
        self.logged: set[int] = set()
        self.failing = False  # the server failed mid-search: try again in `finish`
        self._lock = threading.Lock()
        self._ledger: Ledger | None = None
        self._reporter: Reporter | None = None

    # -- tune.SearchTracker -------------------------------------------------------------------
    def watch(self, ledger: Ledger, reporter: Reporter) -> Reporter:
        self._ledger, self._reporter = ledger, reporter
        try:
            self.run = self._open_parent(ledger)
            self.logged = self._logged_trials()
        except Exception as exc:  # noqa: BLE001 - any refusal of the server, said in one line
            raise TrackingError(
                f"MLflow at {redact_uri(self.uri)} refused the search: {describe_failure(exc)}"
            ) from None
        self.run.write(ledger.root)
        self.link = self.run.link
        reporter.message(f"tracked in MLflow: {self.link}")
        return _TrackingReporter(reporter, self)

    def trial_finished(self, record: TrialRecord) -> None:
        with self._lock:
            if self.failing or record.id in self.logged:
                return
            try:
                self._log_trial(record)
            except Exception as exc:  # noqa: BLE001 - tracking never stops the search
                self.failing = True
                self._say(
                    f"warning: MLflow failed ({describe_failure(exc)}); the search goes on, "
                    "and the trials MLflow lacks are logged when it ends"
                )

    def finish(self, outcome: SearchOutcome, summary: str) -> None:
        with self._lock:
            try:
                self._catch_up()
                self._close_parent(outcome, summary)
            except Exception as exc:  # noqa: BLE001 - the results on disk are what count
                self._say(
                    f"warning: MLflow failed at the end ({describe_failure(exc)}); what it "
                    "lacks is logged by the next `mutate tune` of this run"
                )

    def abandon(self, interrupted: bool) -> None:
        if self.run is None:
            return
        with contextlib.suppress(Exception):  # a resume reopens the run anyway
            self.client.set_terminated(self.run.run_id, "KILLED" if interrupted else "FAILED")

    # -- the parent run -------------------------------------------------------------------------
    def _open_parent(self, ledger: Ledger) -> TrackedRun:
        experiment = self.client.get_experiment_by_name(self.experiment)
        if experiment is not None and experiment.lifecycle_stage == "deleted":
            self.client.restore_experiment(experiment.experiment_id)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(self.experiment)
        )
        previous = TrackedRun.read(ledger.root)
        if previous is not None and previous.experiment_id == experiment_id:
            run = self._reopen(previous.run_id)
            if run is not None:
                self._note_changed_settings(run)
                return previous
        run = self.client.create_run(
            experiment_id,
            run_name=self.script.stem,
            tags={MLFLOW_SOURCE_NAME: self.script.name, "mutator.script": self.script.name}
            | self._git_tags(),
        )
        params = [Param(k, v) for k, v in params_of(self.settings).items()]
        self.client.log_batch(run.info.run_id, params=params)
        run_id = run.info.run_id
        return TrackedRun(
            run_id,
            experiment_id,
            self.experiment,
            redact_uri(self.uri),
            run_url(self.uri, experiment_id, run_id),
        )

    def _reopen(self, run_id: str) -> Any:
        try:
            run = self.client.get_run(run_id)
        except Exception:  # noqa: BLE001 - gone from the server: a new parent run
            return None
        if run.info.lifecycle_stage == "deleted":
            return None
        self.client.update_run(run_id, status="RUNNING")
        return run

    def _note_changed_settings(self, run: Any) -> None:
        """Params cannot change: a resume with other settings (a bigger budget) says so in tags."""
        logged = run.data.params
        changed = {k: v for k, v in params_of(self.settings).items() if logged.get(k) != v}
        tags = [RunTag(f"mutator.resumed.{k}", v) for k, v in changed.items()]
        if tags:
            self.client.log_batch(run.info.run_id, tags=tags)

    def _git_tags(self) -> dict[str, str]:
        from mutator.publish.gitrepo import Repo

        try:
            commit = Repo.containing(self.script.resolve().parent).rev("HEAD")
        except PushBackError:
            return {}
        return {GIT_COMMIT_TAG: commit} if commit else {}

    def _close_parent(self, outcome: SearchOutcome, summary: str) -> None:
        assert self.run is not None and self._ledger is not None
        run_id, ledger = self.run.run_id, self._ledger
        records = ledger.records()
        baseline = next((r for r in records if r.decision == "baseline"), None)
        best = final_best(records)
        metrics = {"trials": float(len(records))}
        if baseline is not None and baseline.value is not None:
            metrics["baseline"] = baseline.value
        if best is not None and best.value is not None:
            metrics["best"] = best.value
        now = _millis()
        tags = {
            "mutator.outcome": outcome.reason,
            "mutator.summary": summary.splitlines()[0][:500] if summary else "",
            "mutator.metric": self._metric_name(records),
        }
        if best is not None:
            tags["mutator.best_trial"] = str(best.record.id)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        for name in ("best.py", "report.html", "metrics.png", LEDGER):
            if (ledger.root / name).is_file():
                self.client.log_artifact(run_id, str(ledger.root / name))
        if diff := ledger.whole_diff(self.script.name, records):
            self.client.log_text(run_id, diff, "best.diff")
        if best is not None:
            self._register(best.record, best.value, best.confirmed, tags["mutator.metric"])
        self.client.set_terminated(run_id, "FINISHED")

    def _register(
        self, best: TrialRecord, value: float | None, confirmed: bool, metric: str
    ) -> None:
        """best.keras as an artifact, then a version of the registered model made from it (the
        keras flavour would import Keras into this process), tagged with its metric."""
        assert self.run is not None and self._ledger is not None
        model = self._ledger.best_model
        if not model.is_file():
            return
        marker = f"{best.id}:{best.sha256}"
        run = self.client.get_run(self.run.run_id)
        if run.data.tags.get(REGISTERED_TAG) == marker:
            return  # a resume that found nothing better: that version is registered already
        self.client.log_artifact(self.run.run_id, str(model), "model")
        try:
            self.client.get_registered_model(self.model_name)
        except Exception:  # noqa: BLE001 - not there yet
            self.client.create_registered_model(
                self.model_name, description=f"The best model mutator found for {self.script.name}"
            )
        tags = {
            "metric": metric,
            metric: "" if value is None else f"{value:.6g}",
            "confirmed": str(confirmed).lower(),
            "mutator.trial_id": str(best.id),
            "script_sha256": best.sha256,
        }
        self.client.create_model_version(
            self.model_name,
            source=f"{run.info.artifact_uri}/model/{model.name}",
            run_id=self.run.run_id,
            tags=tags,
            description=best.description[:500],
            await_creation_for=0,  # a file artifact is READY at once; waiting only logs a line
        )
        self.client.set_tag(self.run.run_id, REGISTERED_TAG, marker)

    # -- nested runs, one per trial ---------------------------------------------------------------
    def _logged_trials(self) -> set[int]:
        """The trial ids MLflow has a finished nested run for; unfinished ones (a kill mid-log)
        are deleted, to be logged again whole."""
        assert self.run is not None
        runs = self.client.search_runs(
            [self.run.experiment_id],
            filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.run.run_id}'",
            max_results=5000,
        )
        logged = set()
        for run in runs:
            trial = run.data.tags.get(TRIAL_TAG)
            if trial is None:
                continue
            if run.info.status == "FINISHED" and int(trial) not in logged:
                logged.add(int(trial))
            else:
                self.client.delete_run(run.info.run_id)
        return logged

    def _catch_up(self) -> None:
        assert self._ledger is not None
        self.failing = False
        for record in missing_trials(self._ledger.records(), self.logged):
            self._log_trial(record)

    def _log_trial(self, record: TrialRecord) -> None:
        assert self.run is not None and self._ledger is not None
        folder = self._ledger.trial_dir(record.id)
        facts = trial_metrics(folder)
        started, finished = _millis(record.started), _millis(record.finished)
        label = record.rules_label or record.decision
        run = self.client.create_run(
            self.run.experiment_id,
            start_time=started,
            tags={
                MLFLOW_PARENT_RUN_ID: self.run.run_id,
                MLFLOW_RUN_NAME: f"{record.id:04d} {label}",
                TRIAL_TAG: str(record.id),
            },
            run_name=f"{record.id:04d} {label}",
        )
        run_id = run.info.run_id
        params = {
            "rule": label,
            "site": json.dumps([record.site, *(p["site"] for p in record.also or [])]),
            "step": "" if record.step is None else f"{record.step:g}",
            "change": record.description[:500],
            "parent_trial": "" if record.parent is None else str(record.parent),
        }
        tags = {
            "decision": record.decision,
            "status": record.status,
            "start": record.start,
            "pruned": str(bool(record.pruned)).lower(),
            "metric": str(facts.get("metric") or ""),
        }
        if record.start_reason:
            tags["start_reason"] = record.start_reason[:500]
        if record.error:
            tags["error"] = record.error[:500]
        metrics = [
            Metric("seconds", float(record.seconds), finished, 0),
            Metric("warm", 1.0 if record.start == "warm" else 0.0, finished, 0),
            Metric("pruned", 1.0 if record.pruned else 0.0, finished, 0),
            Metric("accepted", 1.0 if record.decision == "accepted" else 0.0, finished, 0),
        ]
        if record.value is not None:
            metrics.append(Metric("value", float(record.value), finished, 0))
        if record.parameters is not None:  # the model's size and pace (issue 30)
            metrics.append(Metric("parameters", float(record.parameters), finished, 0))
        if record.seconds_per_epoch is not None:
            metrics.append(
                Metric("seconds_per_epoch", float(record.seconds_per_epoch), finished, 0)
            )
        for key, curve in record.history.items():  # per epoch: step = the epoch
            metrics += [
                Metric(key, float(v), started + epoch, epoch)
                for epoch, v in enumerate(curve)
                if isinstance(v, (int, float))
            ]
        self.client.log_batch(
            run_id,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        for start in range(0, len(metrics), BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + BATCH])
        trial_script = folder / self.script.name
        if trial_script.is_file():
            self.client.log_artifact(run_id, str(trial_script))
        if record.diff:
            self.client.log_text(run_id, record.diff, "change.diff")
        self.client.set_terminated(run_id, "FINISHED", end_time=max(finished, started))
        self.logged.add(record.id)

    def _metric_name(self, records: list[TrialRecord]) -> str:
        assert self._ledger is not None
        for record in records:
            name = trial_metrics(self._ledger.trial_dir(record.id)).get("metric")
            if name:
                return str(name)
        return self.settings.goal.metric or "metric"

    def _say(self, text: str) -> None:
        if self._reporter is not None:
            self._reporter.message(text)


class _TrackingReporter:
    """The user's reporter, and each finished trial logged to MLflow after it is shown."""

    def __init__(self, inner: Reporter, tracker: MlflowTracker) -> None:
        self.inner = inner
        self.tracker = tracker

    def trial_started(self, trial_id: int, description: str, resumed: bool) -> None:
        self.inner.trial_started(trial_id, description, resumed)

    def trial_finished(self, record: TrialRecord) -> None:
        self.inner.trial_finished(record)
        self.tracker.trial_finished(record)

    def message(self, text: str) -> None:
        self.inner.message(text)


def _millis(stamp: str | None = None) -> int:
    """Milliseconds since the epoch, of an ISO time stamp (the ledger's) or of now."""
    if stamp:
        try:
            return int(datetime.fromisoformat(stamp).timestamp() * 1000)
        except ValueError:
            pass
    return int(time.time() * 1000)
