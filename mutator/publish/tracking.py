"""Track a search in MLflow: whether to, where, and what may be said about it.

Tracking is on when the setting `mlflow` (or `--mlflow URI`) names a server, else when
MLFLOW_TRACKING_URI is set (MLflow's own convention). It is switched on from outside the search:
the CLI asks `tracker_for` and hands the tracker to `mutator.search.tune.tune`, which wraps its
reporter with it; the ledger is always written first and MLflow told after.

This module never imports mlflow: `mutate tune` without tracking, `history` and the reading
commands stay light. The tracker itself (`mlflow_tracker`) is imported only when tracking is on.

Credentials: MLflow reads MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN from the environment. Nothing
here logs the environment, a URI is written or printed only without its `user:password@`, and
any text that reaches a log line (an exception's) goes through `scrub` first.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mutator.engine.source import write_atomically
from mutator.errors import TrackingError

if TYPE_CHECKING:
    from mutator.search.config import TuneSettings
    from mutator.search.ledger import TrialRecord
    from mutator.search.tune import SearchTracker

TRACKING_FILE = "mlflow.json"  # in the run directory: which parent run this search is
TRIAL_TAG = "mutator.trial_id"  # on each nested run: the ledger's trial id
PROBE_TIMEOUT = 5.0  # seconds the start check waits for the server
SECRET_VARIABLES = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
# MLflow's client retries a failing call for minutes by default; a search must not stall on it.
CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
_USERINFO = re.compile(r"(\b[a-zA-Z][\w+.-]*://)[^/@\s]+@")


def redact_uri(text: str) -> str:
    """`http://user:pass@host:5000` -> `http://host:5000` (in a URI or anywhere in a text)."""
    return _USERINFO.sub(r"\1", text)


def scrub(text: str) -> str:
    """Text fit for a log line: no `user:password@`, no value of a secret MLflow variable."""
    text = redact_uri(text)
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    secrets = [os.environ.get(name, "") for name in SECRET_VARIABLES]
    if match := re.match(r"^[a-zA-Z][\w+.-]*://([^/@\s]+)@", uri):
        secrets += match.group(1).split(":", 1)[1:]  # the password of user:password@
    for secret in secrets:
        if len(secret) >= 3:  # a one-letter "secret" would blank out every word
            text = text.replace(secret, "***")
    return text


def tracking_uri(settings: TuneSettings) -> str | None:
    """The setting (`--mlflow`, `mlflow = ...`), else MLFLOW_TRACKING_URI; None: tracking off."""
    return settings.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or None


def params_of(settings: TuneSettings, limit: int = 500) -> dict[str, str]:
    """The settings as MLflow params, by flat key: texts, URIs without credentials, capped."""
    params = {}
    for key, value in settings.flat().items():
        if isinstance(value, tuple):
            value = list(value)
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        params[key] = scrub(text)[:limit]
    return params


def missing_trials(records: list[TrialRecord], logged: set[int]) -> list[TrialRecord]:
    """The ledger's trials MLflow has no finished nested run for, in ledger order, once each."""
    seen = set(logged)
    missing = []
    for record in records:
        if record.id not in seen:
            seen.add(record.id)
            missing.append(record)
    return missing


@dataclass(frozen=True)
class TrackedRun:
    """The MLflow run a search is tracked in, as `mlflow.json` in its run directory records it
    (what `mutate history` and report.html link to; never a credential)."""

    run_id: str
    experiment_id: str
    experiment: str
    tracking_uri: str  # without user:password@
    run_url: str | None  # the run's page in the MLflow UI, for http(s) servers

    @classmethod
    def read(cls, run_dir: Path) -> TrackedRun | None:
        try:
            data = json.loads((run_dir / TRACKING_FILE).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def write(self, run_dir: Path) -> None:
        write_atomically(run_dir / TRACKING_FILE, json.dumps(asdict(self), indent=2) + "\n")

    @property
    def link(self) -> str:
        return self.run_url or f"run {self.run_id} at {self.tracking_uri}"


def run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{redact_uri(uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def check_reachable(uri: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Refuse now, before any trial trains, a server that does not answer (a `/health` probe:
    MLflow's own client would retry for minutes). Non-HTTP stores (a folder) are not probed."""
    if not uri.startswith(("http://", "https://")):
        return
    bare = redact_uri(uri).rstrip("/")
    try:
        with urllib.request.urlopen(f"{bare}/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answered: whether it lets us in, the first real call says
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"the MLflow tracking server at {bare} cannot be reached ({scrub(str(reason))}); "
            "start it, fix MLFLOW_TRACKING_URI or --mlflow, or unset them to tune untracked"
        ) from None


def tracker_for(script: Path, settings: TuneSettings) -> SearchTracker | None:
    """The tracker for `mutate tune`, or None when tracking is off. Raises TrackingError when
    the server cannot be reached or mlflow is not installed: before any trial trains."""
    uri = tracking_uri(settings)
    if uri is None:
        return None
    check_reachable(uri)
    for name, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # MLflow prints every run's URL as it ends: that is the URI with its credentials, per trial.
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    try:
        from mutator.publish.mlflow_tracker import MlflowTracker
    except ImportError as exc:
        raise TrackingError(
            f"tracking in MLflow needs mlflow ({exc.name} is missing): "
            "pip install 'mutator[mlflow]'"
        ) from None
    tracking = settings.tracking
    return MlflowTracker(
        uri,
        script,
        settings,
        experiment=tracking.experiment or script.stem,
        model_name=tracking.model_name or script.stem,
    )


def describe_failure(exc: BaseException) -> str:
    """One line for an MLflow failure: its type and first line, scrubbed of credentials."""
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return scrub(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
