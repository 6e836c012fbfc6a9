"""`mutate tune --commit/--notify`: refused before training, then commit, then notify.

The repositories are real (a bare `origin` and a clone, from test_pushback), the webhook is a real
local HTTP server (conftest). The fast tests finish a hand-built run; one slow test trains.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gitwork import FIXTURE, git, rev
from test_pushback import BRANCH, make_run

from mutator.cli.app import main
from mutator.publish.after_tune import CommitRequest, FollowUp

pytestmark = pytest.mark.usefixtures("isolated_git")


@pytest.fixture(autouse=True)
def _no_inherited_channels(monkeypatch):
    for name in ("MUTATOR_SMTP_PASSWORD", "MUTATOR_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)


def tune(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["tune", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def follow_up(work: Path, **options) -> FollowUp:
    notify = options.pop("notify", False)
    table = options.pop("table", {})
    return FollowUp.prepare(
        work / "cnn_digits.py",
        work / ".mutator" / "cnn_digits",
        CommitRequest(**options),
        notify,
        table,
        work / "pyproject.toml",
    )


# -- refused before the first trial trains -------------------------------------------------------


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (lambda w: (w / "README.md").write_text("half-way through an edit\n"), "uncommitted"),
        (lambda w: (w / "cnn_digits.py").write_text("# edited\n", encoding="utf-8"), "not the"),
    ],
    ids=["dirty-tree", "script-not-committed"],
)
def test_commit_is_refused_before_any_training(capsys, work, spoil, expected):
    spoil(work)
    code, out, err = tune(capsys, str(work / "cnn_digits.py"), "--commit", "--max-trials", "1")
    assert code == 9
    assert err.startswith("mutate: error: ") and err.count("\n") == 1 and expected in err
    assert not (work / ".mutator").exists()  # no trial ran


def test_commit_outside_a_repository_is_refused_before_any_training(capsys, tmp_path):
    shutil.copy(FIXTURE, tmp_path / "cnn_digits.py")
    code, _, err = tune(capsys, str(tmp_path / "cnn_digits.py"), "--commit")
    assert code == 9 and "not inside a git repository" in err
    assert not (tmp_path / ".mutator").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--commit", "--branch", "bad..name"], "not a valid branch name"),
        (["--push"], "--push needs --commit"),
        (["--branch", "b", "--beside"], "--branch, --beside need --commit"),
        (["--notify"], "--notify: nothing configured"),
    ],
)
def test_wrong_options_are_usage_errors_before_any_training(capsys, work, argv, expected):
    code, _, err = tune(capsys, str(work / "cnn_digits.py"), *argv)
    assert code == 2 and expected in err and err.count("\n") == 1
    assert not (work / ".mutator").exists()


def test_a_wrong_notify_setting_is_refused_before_any_training(capsys, work):
    (work / "pyproject.toml").write_text("[tool.mutator.notify]\nwebhook_url = 'ftp://x'\n")
    git(work, "add", "pyproject.toml")
    git(work, "commit", "--quiet", "-m", "config")
    code, _, err = tune(capsys, str(work / "cnn_digits.py"), "--notify")
    assert code == 2 and "https:// or http://" in err
    assert not (work / ".mutator").exists()


# -- after the search: commit, then notify -------------------------------------------------------


def test_the_commit_is_pushed_and_the_notification_names_it(capsys, work, origin, webhook):
    hook = webhook()
    table = {"notify": {"webhook_url": hook.url}}
    after = follow_up(work, push=True, notify=True, table=table)
    best = make_run(work)

    assert after.finish(1) == 1  # the search's own code: target not reached
    tip = rev(origin, f"refs/heads/{BRANCH}")
    assert tip and git(work, "show", f"{tip}:cnn_digits.py") + "\n" == best
    out = capsys.readouterr().out
    assert f"committed {tip[:7]} on {BRANCH}" in out
    assert f"pushed {BRANCH} to origin" in out and "notified: webhook to 127.0.0.1:" in out
    (payload,) = hook.received
    assert payload["mutator"]["committed"] == f"{BRANCH} at {tip[:7]}, pushed to origin"
    assert f"Committed: `{BRANCH} at {tip[:7]}, pushed to origin`" in payload["text"]


def test_a_refused_commit_is_exit_9_and_the_notification_still_goes(capsys, work, webhook):
    hook = webhook()
    after = follow_up(work, notify=True, table={"notify": {"webhook_url": hook.url}})
    make_run(work)
    (work / "README.md").write_text("edited while the search ran\n")

    assert after.finish(0) == 9
    captured = capsys.readouterr()
    assert captured.err.startswith("mutate: error: tracked files have uncommitted changes")
    assert rev(work, f"refs/heads/{BRANCH}") is None
    (payload,) = hook.received
    assert payload["mutator"]["committed"] is None
    assert (work / ".mutator" / "cnn_digits" / "best.py").exists()


def test_a_failed_notification_is_exit_8_and_the_commit_stays(capsys, work, webhook):
    hook = webhook(status=500)
    after = follow_up(work, notify=True, table={"notify": {"webhook_url": hook.url}})
    make_run(work)
    before = sorted(p.name for p in (work / ".mutator" / "cnn_digits").iterdir())

    assert after.finish(0) == 8
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mutate: error: webhook to 127.0.0.1:")
    assert rev(work, f"refs/heads/{BRANCH}") is not None
    assert sorted(p.name for p in (work / ".mutator" / "cnn_digits").iterdir()) == before


# -- for real ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tune_trains_commits_pushes_and_notifies(work, origin, webhook):
    hook = webhook()
    main_before = rev(origin, "refs/heads/main")
    result = subprocess.run(
        [sys.executable, "-m", "mutator", "tune", "cnn_digits.py", "--rule", "more_epochs"]
        + ["--max-trials", "2", "--seed", "0", "--target", "0.99", "--commit", "--push"]
        + ["--noise-runs", "0"]  # the margin decides: trial 2 is the change committed
        + ["--notify"],
        cwd=work,
        env={**os.environ, "MUTATOR_WEBHOOK_URL": hook.url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result.stdout + result.stderr  # 0.99 is out of reach
    tip = rev(origin, f"refs/heads/{BRANCH}")
    assert tip is not None and rev(origin, "refs/heads/main") == main_before
    message = git(work, "log", "-1", "--format=%B", tip)
    assert re.search(r"^- trial 2 more_epochs: epochs 2 -> (4|8|16) ", message, re.M), message
    assert git(work, "show", f"{tip}:cnn_digits.py") + "\n" == (
        work / ".mutator" / "cnn_digits" / "best.py"
    ).read_text()
    assert git(work, "status", "--porcelain", "--untracked-files=no") == ""
    (payload,) = hook.received
    assert payload["mutator"]["accepted"][0]["rule"] == "more_epochs"
    assert payload["mutator"]["committed"].startswith(f"{BRANCH} at {tip[:7]}")


@pytest.mark.slow
def test_a_baseline_that_fails_is_still_notified(tmp_path, webhook):
    from test_tune_e2e import MISBEHAVING

    hook = webhook()
    (tmp_path / "train.py").write_text(MISBEHAVING.replace("Conv2D(4,", "Conv2D(5,"))
    result = subprocess.run(
        [sys.executable, "-m", "mutator", "tune", "train.py", "--notify"],
        cwd=tmp_path,
        env={**os.environ, "MUTATOR_WEBHOOK_URL": hook.url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 7 and "does not train" in result.stderr
    (payload,) = hook.received
    assert payload["mutator"]["outcome"] == "failed"
    assert "this script breaks with more filters" in payload["text"]
