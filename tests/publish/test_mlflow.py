"""Tracking a search in MLflow (`mutator.publish.tracking`, `mlflow_tracker`).

The fast tests need no server: redaction, params, which trials are missing, the start check
against a closed port, a server that fails mid-search (a fake client), the history link. The
slow ones run `mutate tune` against a real `mlflow server` (SQLite store, local artifact
folder) this module starts, with a credential planted in the URI and the environment.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from mutator.cli.app import main
from mutator.errors import TrackingError, UsageError
from mutator.publish import tracking
from mutator.publish.tracking import TrackedRun
from mutator.search.config import TuneSettings, settings_from
from mutator.search.ledger import Ledger, TrialRecord

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "cnn_digits.py"
SECRET = "s3cr3t-planted"
USER = "bob-the-user"


@pytest.fixture(autouse=True)
def _untracked(monkeypatch):
    """No MLflow variable leaks in from the shell; no telemetry from MLflow's client."""
    for name in list(os.environ):
        if name.startswith("MLFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def record(trial: int, decision: str = "rejected", value: float | None = 0.5) -> TrialRecord:
    return TrialRecord(
        id=trial,
        parent=None if trial == 1 else 1,
        rule=None if trial == 1 else "more_epochs",
        site=None if trial == 1 else 0,
        params={},
        description="the script as given" if trial == 1 else "epochs 2 -> 4",
        sha256=f"sha{trial}",
        diff="" if trial == 1 else "--- a\n+++ b\n-epochs=2\n+epochs=4\n",
        status="ok",
        value=value,
        decision=decision,
        best_after=value,
        seconds=1.5,
        started="2026-01-01T00:00:00+00:00",
        finished="2026-01-01T00:00:02+00:00",
        history={"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]},
    )


# -- no server -----------------------------------------------------------------------------------
def test_uris_are_redacted_and_secrets_scrubbed(monkeypatch):
    assert tracking.redact_uri("http://u:p@host:5000/x") == "http://host:5000/x"
    assert tracking.redact_uri("see https://tok@h/ and http://h2") == "see https://h/ and http://h2"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://{USER}:{SECRET}@127.0.0.1:1")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-123456")
    text = f"failed: {SECRET} and tok-123456 at http://{USER}:{SECRET}@127.0.0.1:1/api"
    assert tracking.scrub(text) == "failed: *** and *** at http://127.0.0.1:1/api"


def test_settings_become_text_params_without_credentials():
    settings = TuneSettings.of(mlflow="http://host:5000", rules=("more_epochs",), max_trials=3)
    params = tracking.params_of(settings)
    assert set(params) == set(settings.flat())
    assert all(isinstance(v, str) for v in params.values())
    assert params["mlflow"] == "http://host:5000" and params["max_trials"] == "3"
    assert json.loads(params["rules"]) == ["more_epochs"]
    assert params["target"] == "null"


def test_a_uri_with_credentials_is_refused_in_the_settings():
    with pytest.raises(UsageError) as refused:
        settings_from({"mlflow": f"http://{USER}:{SECRET}@host:5000"}, {})
    assert SECRET not in str(refused.value) and "MLFLOW_TRACKING_PASSWORD" in str(refused.value)
    assert settings_from({}, {"mlflow": "http://host:5000"}).tracking.uri == "http://host:5000"


def test_tracking_is_on_by_setting_else_environment(monkeypatch):
    assert tracking.tracking_uri(TuneSettings()) is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    assert tracking.tracking_uri(TuneSettings()) is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert tracking.tracking_uri(TuneSettings()) == "http://env:5000"
    assert tracking.tracking_uri(TuneSettings.of(mlflow="http://flag:1")) == "http://flag:1"


def test_missing_trials_are_the_ledger_ones_mlflow_lacks_once_each():
    records = [record(1, "baseline"), record(2), record(3), record(3)]
    assert [r.id for r in tracking.missing_trials(records, {1})] == [2, 3]
    assert tracking.missing_trials(records, {1, 2, 3}) == []


def test_an_unreachable_server_is_exit_10_before_any_trial(tmp_path, capsys, monkeypatch):
    (tmp_path / "cnn_digits.py").write_text(FIXTURE.read_text())
    port = closed_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://{USER}:{SECRET}@127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)
    code = main(["tune", str(tmp_path / "cnn_digits.py"), "--max-trials", "1"])
    out, err = capsys.readouterr()
    assert code == TrackingError.exit_code == 10
    assert err.startswith("mutate: error: the MLflow tracking server at http://127.0.0.1:")
    assert err.count("\n") == 1 and SECRET not in out + err and USER not in out + err
    assert not (tmp_path / ".mutator" / "cnn_digits" / "trials").exists()  # nothing trained
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the flag says the same
    code = main(["tune", str(tmp_path / "cnn_digits.py"), "--mlflow", f"http://127.0.0.1:{port}"])
    assert code == 10 and "cannot be reached" in capsys.readouterr().err


def test_tune_without_tracking_imports_neither_mlflow_nor_keras_before_training(tmp_path):
    """Everything `mutate tune` does up to the search, with the search stubbed out."""
    (tmp_path / "cnn_digits.py").write_text(FIXTURE.read_text())
    code = textwrap.dedent(
        f"""
        import sys
        from mutator.errors import MutatorError
        from mutator.search import tune
        def stub(*args, tracker=None, **kwargs):
            assert tracker is None
            raise MutatorError("stubbed")
        tune.tune = stub
        from mutator.cli import main
        code = main(["tune", {str(tmp_path / "cnn_digits.py")!r}, "--max-trials", "1"])
        heavy = sorted({{m.split('.')[0] for m in sys.modules}} & {{"mlflow", "keras"}})
        print("HEAVY", heavy, code, file=sys.stderr)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert "HEAVY [] 1" in done.stderr, done.stderr


def test_history_and_report_link_the_mlflow_run(tmp_path, capsys):
    (tmp_path / "cnn_digits.py").write_text(FIXTURE.read_text())
    ledger = Ledger(tmp_path / ".mutator" / "cnn_digits")
    ledger.root.mkdir(parents=True)
    ledger.append(record(1, "baseline"))
    url = "http://127.0.0.1:5000/#/experiments/1/runs/abc"
    TrackedRun("abc", "1", "cnn_digits", "http://127.0.0.1:5000", url).write(ledger.root)
    assert main(["history", str(tmp_path / "cnn_digits.py")]) == 0
    assert f"MLflow: {url}" in capsys.readouterr().out
    from mutator.search.report import write_report

    page = write_report(ledger.root, "cnn_digits.py", [record(1, "baseline")], None, "done", url)
    assert f"<a href='{url}'>" in page.read_text()


class FlakyClient:
    """MlflowClient's calls the tracker makes, in memory; `down` makes every call fail."""

    def __init__(self) -> None:
        self.down = False
        self.runs: dict[str, dict] = {}

    def __getattr__(self, name):
        def call(*args, **kwargs):
            if self.down:
                raise ConnectionError(f"http://{USER}:{SECRET}@127.0.0.1:1 refused")
            if name == "create_run":
                run_id = f"run{len(self.runs)}"
                self.runs[run_id] = {"tags": kwargs.get("tags", {}), "status": "RUNNING"}
                return type("Run", (), {"info": type("Info", (), {"run_id": run_id})})
            if name == "set_terminated":
                self.runs[args[0]]["status"] = args[1]
            return None

        return call


def test_a_server_failing_mid_search_warns_once_and_the_end_logs_what_is_missing(
    tmp_path, monkeypatch
):
    pytest.importorskip("mlflow")
    from mutator.publish.mlflow_tracker import MlflowTracker

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)
    ledger = Ledger(tmp_path / "run")
    ledger.root.mkdir()
    tracker = MlflowTracker(
        "http://127.0.0.1:1", tmp_path / "train.py", TuneSettings(), "train", "train"
    )
    tracker.client = client = FlakyClient()
    tracker.run = TrackedRun("parent", "1", "train", "http://127.0.0.1:1", None)
    said: list[str] = []
    tracker._ledger, tracker._reporter = ledger, type("R", (), {"message": said.append})()
    for trial in (1, 2, 3):
        ledger.append(record(trial, "baseline" if trial == 1 else "rejected"))
        client.down = trial == 2  # the server goes away at trial 2 and comes back
        tracker.trial_finished(record(trial))
    assert tracker.logged == {1} and len(said) == 1  # trial 3 is not tried: one warning only
    assert said[0].startswith("warning: MLflow failed (ConnectionError: http://127.0.0.1:1 ")
    assert SECRET not in said[0]
    tracker._catch_up()
    assert tracker.logged == {1, 2, 3}
    trial_ids = [run["tags"]["mutator.trial_id"] for run in client.runs.values()]
    assert sorted(trial_ids) == ["1", "2", "3"]


# -- a real server -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on a free port with a SQLite store and a local artifact folder."""
    pytest.importorskip("mlflow")
    folder = tmp_path_factory.mktemp("mlflow")
    port = closed_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow)] if mlflow.exists() else [sys.executable, "-m", "mlflow"]
    command += ["server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    command += ["--artifacts-destination", str(folder / "artifacts")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = (folder / "server.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    server = subprocess.Popen(
        command,
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"},
        start_new_session=True,  # its workers go with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start:\n" + (folder / "server.log").read_text())
            time.sleep(0.5)
        yield url, folder
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def tune_env(url: str) -> dict[str, str]:
    """The environment of a tracked `mutate tune`, a credential planted in the URI and beside it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    host = url.removeprefix("http://")
    return env | {
        "MLFLOW_TRACKING_URI": f"http://{USER}:{SECRET}@{host}",
        "MLFLOW_TRACKING_USERNAME": USER,
        "MLFLOW_TRACKING_PASSWORD": SECRET,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def tune_command(*extra: str) -> list[str]:
    command = [sys.executable, "-m", "mutator", "tune", "cnn_digits.py", "--rule", "more_epochs"]
    return command + ["--noise-runs", "0", "--seed", "0", "--parallel", "1", *extra]


def run_tune(work: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        tune_command(*extra), cwd=work, env=tune_env(url), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def git(work: Path, *args: str) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    done = subprocess.run(["git", *identity, *args], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
@pytest.mark.usefixtures("isolated_git")
def test_a_search_is_tracked_resumed_without_duplicates_and_leaks_no_credential(
    mlflow_server, tmp_path
):
    from mlflow.tracking import MlflowClient

    url, server_folder = mlflow_server
    work = tmp_path / "project"
    work.mkdir()
    (work / "cnn_digits.py").write_text(FIXTURE.read_text())
    git(work, "init", "-q")
    git(work, "add", "cnn_digits.py")
    git(work, "commit", "-q", "-m", "the script")
    first = run_tune(work, url, "--max-trials", "2")
    assert first.returncode == 0, first.stdout + first.stderr  # no target: 0
    run_dir = work / ".mutator" / "cnn_digits"
    tracked = TrackedRun.read(run_dir)
    assert tracked is not None and tracked.run_url.startswith(f"{url}/#/experiments/")
    assert f"tracked in MLflow: {tracked.run_url}" in first.stdout

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("cnn_digits")
    assert experiment.experiment_id == tracked.experiment_id
    parent = client.get_run(tracked.run_id)
    records = Ledger(run_dir).records()
    assert [r.id for r in records] == [1, 2]
    # the parent run: settings, baseline and best, outcome, git commit, artifacts
    assert parent.info.status == "FINISHED"
    assert (
        parent.data.params["max_trials"] == "2" and parent.data.params["rules"] == '["more_epochs"]'
    )
    assert parent.data.metrics["baseline"] == pytest.approx(records[0].value)
    assert parent.data.tags["mutator.outcome"] == "max_trials"
    assert parent.data.tags["mlflow.source.git.commit"] == git(work, "rev-parse", "HEAD")
    artifacts = {a.path for a in client.list_artifacts(tracked.run_id)}
    assert {"best.py", "best.diff", "report.html", "ledger.jsonl", "model"} <= artifacts
    assert [a.path for a in client.list_artifacts(tracked.run_id, "model")] == ["model/best.keras"]
    # one nested run per trial: its metric, its curves by epoch, its script and diff
    nested = nested_runs(client, tracked)
    assert sorted(nested) == [1, 2]
    for r in records:
        run = nested[r.id]
        assert run.data.metrics["value"] == pytest.approx(r.value)
        assert run.data.metrics["parameters"] == r.parameters > 0  # the model's size
        assert run.data.metrics["seconds_per_epoch"] == pytest.approx(r.seconds_per_epoch)
        assert run.data.tags["decision"] == r.decision and run.data.tags["start"] == r.start
        assert run.data.params["change"] == r.description
        for key, curve in r.history.items():
            history = client.get_metric_history(run.info.run_id, key)
            assert [m.step for m in history] == list(range(len(curve)))
            assert [m.value for m in history] == pytest.approx(curve)
    assert {a.path for a in client.list_artifacts(nested[2].info.run_id)} == {
        "cnn_digits.py",
        "change.diff",
    }
    # the best model, registered, its version tagged with the metric
    (version,) = client.search_model_versions("name='cnn_digits'")
    assert version.run_id == tracked.run_id and version.tags["metric"] == "accuracy"
    assert float(version.tags["accuracy"]) == pytest.approx(parent.data.metrics["best"], abs=1e-5)
    # the report and history link the run
    assert tracked.run_url in (run_dir / "report.html").read_text()
    history = subprocess.run(
        [sys.executable, "-m", "mutator", "history", "cnn_digits.py"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert f"MLflow: {tracked.run_url}" in history.stdout

    # resumed with a bigger budget (as after a kill): the same parent run, no trial twice
    second = run_tune(work, url, "--max-trials", "3")
    assert second.returncode == 0, second.stdout + second.stderr
    assert TrackedRun.read(run_dir) == tracked
    nested_ids = [int(r.data.tags["mutator.trial_id"]) for r in nested_list(client, tracked)]
    assert sorted(nested_ids) == [r.id for r in Ledger(run_dir).records()] == [1, 2, 3]
    assert client.get_run(tracked.run_id).data.tags["mutator.resumed.max_trials"] == "3"

    # the planted credential: in no param, tag, output, artifact, run file or server file
    said = first.stdout + first.stderr + second.stdout + second.stderr + history.stdout
    assert SECRET not in said and USER not in said
    for run in [client.get_run(tracked.run_id), *nested_list(client, tracked)]:
        for text in [*run.data.params.values(), *run.data.tags.values()]:
            assert SECRET not in text and USER not in text
    for folder in (server_folder, run_dir):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert SECRET.encode() not in data and USER.encode() not in data, path


@pytest.mark.slow
def test_a_search_killed_mid_trial_resumes_in_its_run_and_logs_no_trial_twice(
    mlflow_server, tmp_path
):
    from mlflow.tracking import MlflowClient

    url, _ = mlflow_server
    work = tmp_path / "killed"
    work.mkdir()
    (work / "cnn_digits.py").write_text(FIXTURE.read_text())
    run_dir = work / ".mutator" / "cnn_digits"
    killed = subprocess.Popen(
        tune_command("--max-trials", "3"), cwd=work, env=tune_env(url),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "trials" / "0002").exists():  # the baseline is logged, trial 2 trains
            assert killed.poll() is None and time.monotonic() < deadline, "no second trial began"
            time.sleep(0.1)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    tracked = TrackedRun.read(run_dir)
    assert tracked is not None
    client = MlflowClient(url)
    assert client.get_run(tracked.run_id).info.status == "RUNNING"  # killed: never ended

    resumed = run_tune(work, url, "--max-trials", "3")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming" in resumed.stdout
    assert TrackedRun.read(run_dir) == tracked  # the same parent run
    ids = sorted(int(r.data.tags["mutator.trial_id"]) for r in nested_list(client, tracked))
    assert ids == [r.id for r in Ledger(run_dir).records()] == [1, 2, 3]
    assert client.get_run(tracked.run_id).info.status == "FINISHED"


def nested_list(client, tracked: TrackedRun) -> list:
    return client.search_runs(
        [tracked.experiment_id], f"tags.`mlflow.parentRunId` = '{tracked.run_id}'"
    )


def nested_runs(client, tracked: TrackedRun) -> dict:
    return {int(r.data.tags["mutator.trial_id"]): r for r in nested_list(client, tracked)}
