"""`mutate commit` against real git repositories: a bare `origin`, a clone, a hand-built run.

Every test checks what matters to the user: their working tree, index and current branch are
byte-identical afterwards, nothing is ever force-pushed, and a refusal creates nothing.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from gitwork import FIXTURE, clone, git, rev

from mutator import api
from mutator.cli.app import main
from mutator.errors import PushBackError
from mutator.publish.gitrepo import Repo
from mutator.publish.pushback import commit_best
from mutator.publish.pushback_message import compose_message
from mutator.search.ledger import Ledger, TrialRecord, sha256

BRANCH = "mutator/cnn_digits"
RUN = Path(".mutator") / "cnn_digits"


pytestmark = pytest.mark.usefixtures("isolated_git")


def rewrite(source: str, rule: str) -> str:
    script = api.Script.from_text(source, Path("cnn_digits.py"))
    return api.rewrite(script, api.choose(api.propose(script, api.rules_named([rule])))).source


def record(trial: int, decision: str, rule: str | None, value, best_after, source: str, parent):
    return TrialRecord(
        id=trial,
        parent=parent,
        rule=rule,
        site=0 if rule else None,
        params={},
        description=f"{rule} change" if rule else "baseline: the script as given",
        sha256=sha256(source),
        diff="",
        status="ok" if value is not None else "failed",
        value=value,
        decision=decision,
        best_after=best_after,
        seconds=1.0,
        started="2024-01-01T00:00:00+00:00",
        finished="2024-01-01T00:00:01+00:00",
    )


def make_run(work: Path, accepted: tuple[str, ...] = ("more_filters", "more_epochs")) -> str:
    """A run as `mutate tune` leaves it: baseline, accepted and rejected trials, best.py.

    Returns best.py's text. The trials: 1 baseline 0.41; then, per accepted rule, an accepted
    trial (+0.15 each time) followed by a rejected `larger_kernel` trial.
    """
    script = work / "cnn_digits.py"
    original = script.read_bytes().decode("utf-8")  # CRLF kept, as `mutate tune` reads it
    ledger = Ledger(work / RUN)
    if ledger.root.exists():
        shutil.rmtree(ledger.root)
    ledger.start(
        {
            "script": str(script.resolve()),
            "script_sha256": sha256(original),
            "model": "model",
            "settings": {"target": 0.97, "metric": None, "mode": "auto"},
        }
    )
    ledger.append(record(1, "baseline", None, 0.41, 0.41, original, None))
    best, best_id, value, trial = original, 1, 0.41, 1
    for rule in accepted:
        trial += 1
        best, value = rewrite(best, rule), round(value + 0.15, 4)
        ledger.append(record(trial, "accepted", rule, value, value, best, best_id))
        best_id = trial
        trial += 1
        refused = rewrite(best, "larger_kernel")
        ledger.append(record(trial, "rejected", "larger_kernel", 0.3, value, refused, best_id))
    if not accepted:
        trial += 1
        refused = rewrite(best, "larger_kernel")
        ledger.append(record(trial, "rejected", "larger_kernel", 0.3, 0.41, refused, 1))
    ledger.best_script.write_bytes(best.encode("utf-8"))
    return best


def snapshot(work: Path) -> dict[str, bytes]:
    """Every file of the work tree, the index, HEAD, and every ref but mutator's own branch."""
    state = {
        str(path.relative_to(work)): path.read_bytes()
        for path in sorted(work.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(work).parts
    }
    state[".git/index"] = (work / ".git" / "index").read_bytes()
    state[".git/HEAD"] = (work / ".git" / "HEAD").read_bytes()
    refs = git(work, "for-each-ref").splitlines()
    state["refs"] = "\n".join(r for r in refs if f"refs/heads/{BRANCH}" not in r).encode()
    return state


def mutate(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["commit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- the commit --------------------------------------------------------------------------------


def test_commit_puts_best_on_its_own_branch_and_leaves_the_checkout_alone(capsys, work):
    best = make_run(work)
    head = rev(work, "HEAD")
    before = snapshot(work)

    code, out, err = mutate(capsys, str(work / "cnn_digits.py"))

    assert code == 0, err
    tip = rev(work, BRANCH)
    assert tip and tip != head
    assert git(work, "rev-list", "--parents", "-n", "1", tip).split() == [tip, head]
    assert git(work, "diff", "--name-only", head, tip).splitlines() == ["cnn_digits.py"]
    assert git(work, "show", f"{tip}:cnn_digits.py") + "\n" == best
    assert git(work, "ls-tree", tip, "cnn_digits.py").split()[0] == "100644"
    message = git(work, "log", "-1", "--format=%B", tip)
    subject = "mutate: cnn_digits.py 0.4100 -> 0.7100 (target 0.97 not reached)"
    assert message.splitlines()[0] == subject
    assert "- trial 2 more_filters: more_filters change: 0.4100 -> 0.5600" in message
    assert "- trial 4 more_epochs: more_epochs change: 0.5600 -> 0.7100" in message
    assert "larger_kernel" not in message
    assert "5 trials (2 accepted, 2 reverted)" in message
    assert message.splitlines()[-2:] == ["Mutator-Run: .mutator/cnn_digits", "Mutator-Best-Trial: 4"]
    assert git(work, "log", "-1", "--format=%an <%ae>", tip) == "Test User <test@example.com>"
    assert out == f"committed {tip[:7]} on {BRANCH}: {subject}\n"
    assert snapshot(work) == before
    assert git(work, "symbolic-ref", "HEAD") == "refs/heads/main"


def test_the_script_keeps_its_executable_mode(capsys, work):
    script = work / "cnn_digits.py"
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    git(work, "commit", "--quiet", "-am", "executable")
    make_run(work)
    assert mutate(capsys, str(script))[0] == 0
    assert git(work, "ls-tree", BRANCH, "cnn_digits.py").split()[0] == "100755"


def test_push_creates_the_branch_on_the_remote_and_leaves_its_main_alone(capsys, work, origin):
    make_run(work)
    remote_main = rev(origin, "refs/heads/main")

    code, out, err = mutate(capsys, str(work / "cnn_digits.py"), "--push")

    assert code == 0, err
    assert rev(origin, f"refs/heads/{BRANCH}") == rev(work, BRANCH)
    assert rev(origin, "refs/heads/main") == remote_main
    assert out.splitlines()[-1] == f"pushed {BRANCH} to origin"


def test_a_crlf_checkout_is_compared_and_stored_as_git_would(capsys, work):
    git(work, "config", "core.autocrlf", "true")  # LF in the repository, CRLF in the work tree
    (work / "cnn_digits.py").unlink()
    git(work, "checkout", "--", "cnn_digits.py")
    assert b"\r\n" in (work / "cnn_digits.py").read_bytes()
    best = make_run(work)
    assert "\r\n" in best

    code, _, err = mutate(capsys, str(work / "cnn_digits.py"))

    assert code == 0, err
    assert git(work, "diff", "--name-only", "HEAD", BRANCH).splitlines() == ["cnn_digits.py"]
    stored = subprocess.run(
        ["git", "cat-file", "blob", f"{BRANCH}:cnn_digits.py"], cwd=work, capture_output=True
    ).stdout
    assert stored == best.replace("\r\n", "\n").encode()


def test_beside_adds_a_best_file_and_keeps_the_script(capsys, work):
    best = make_run(work)
    code, _, err = mutate(capsys, str(work / "cnn_digits.py"), "--beside")
    assert code == 0, err
    assert git(work, "diff", "--name-status", "HEAD", BRANCH).splitlines() == [
        "A\tcnn_digits.best.py"
    ]
    assert git(work, "show", f"{BRANCH}:cnn_digits.best.py") + "\n" == best


def test_a_script_in_a_subfolder_and_a_chosen_branch(capsys, work):
    (work / "models").mkdir()
    git(work, "mv", "cnn_digits.py", "models/cnn_digits.py")
    git(work, "commit", "--quiet", "-m", "move")
    sub = work / "models"
    script = sub / "cnn_digits.py"
    run_dir = work / "runs" / "one"
    make_run(sub)
    shutil.move(sub / RUN, run_dir)

    code, out, err = mutate(capsys, str(script), "--workdir", str(run_dir), "--branch", "try/x")

    assert code == 0, err
    assert git(work, "diff", "--name-only", "HEAD", "try/x").splitlines() == [
        "models/cnn_digits.py"
    ]
    assert "Mutator-Run: runs/one" in git(work, "log", "-1", "--format=%B", "try/x")
    assert rev(work, BRANCH) is None


def test_committing_the_same_result_twice_makes_no_new_commit(capsys, work):
    make_run(work)
    assert mutate(capsys, str(work / "cnn_digits.py"))[0] == 0
    tip = rev(work, BRANCH)

    code, out, _ = mutate(capsys, str(work / "cnn_digits.py"))

    assert code == 0
    assert rev(work, BRANCH) == tip
    assert f"{BRANCH} already holds this version ({tip[:7]})" in out


def test_a_later_run_goes_on_top_of_the_existing_branch(capsys, work):
    make_run(work)
    assert mutate(capsys, str(work / "cnn_digits.py"))[0] == 0
    first = rev(work, BRANCH)
    best = make_run(work, accepted=("more_filters",))  # a fresh run with another result

    code, _, err = mutate(capsys, str(work / "cnn_digits.py"))

    assert code == 0, err
    tip = rev(work, BRANCH)
    assert git(work, "rev-list", "--parents", "-n", "1", tip).split() == [tip, first]
    assert git(work, "show", f"{tip}:cnn_digits.py") + "\n" == best


def test_without_git_identity_mutator_signs_as_itself(capsys, work):
    git(work, "config", "--unset", "user.name")
    git(work, "config", "--unset", "user.email")
    make_run(work)
    config = (work / ".git" / "config").read_bytes()

    code, _, err = mutate(capsys, str(work / "cnn_digits.py"))

    assert code == 0, err
    assert git(work, "log", "-1", "--format=%an <%ae>|%cn <%ce>", BRANCH) == (
        "mutator <mutator@localhost>|mutator <mutator@localhost>"
    )
    assert (work / ".git" / "config").read_bytes() == config
    assert "GIT_AUTHOR_NAME" not in os.environ


def test_nothing_accepted_commits_nothing(capsys, work):
    make_run(work, accepted=())
    code, out, _ = mutate(capsys, str(work / "cnn_digits.py"), "--push")
    assert code == 0
    assert out == (
        "nothing to commit: no change was accepted in 2 trials; "
        "cnn_digits.py is already the best version\n"
    )
    assert rev(work, BRANCH) is None


def test_the_library_call_reports_what_it_did(work):
    make_run(work)
    result = commit_best(work / "cnn_digits.py", work / RUN)
    assert result.committed and result.branch == BRANCH and result.path == "cnn_digits.py"
    assert result.commit == rev(work, BRANCH) and not result.pushed
    assert result.subject.startswith("mutate: cnn_digits.py 0.4100 -> 0.7100")


# -- refusals: exit 9, nothing created ----------------------------------------------------------


def test_no_run_is_a_usage_error(capsys, work):
    code, _, err = mutate(capsys, str(work / "cnn_digits.py"))
    assert code == 2 and "no trials recorded" in err


def test_dirty_tracked_file_is_refused(capsys, work):
    make_run(work)
    (work / "README.md").write_text("half-done edit\n")
    before = snapshot(work)

    code, out, err = mutate(capsys, str(work / "cnn_digits.py"))

    assert code == 9 and out == ""
    assert err.count("\n") == 1 and "README.md" in err and "commit or stash" in err
    assert rev(work, BRANCH) is None
    assert snapshot(work) == before


def test_untracked_files_are_fine(capsys, work):
    make_run(work)
    (work / "notes.txt").write_text("scratch\n")
    assert mutate(capsys, str(work / "cnn_digits.py"))[0] == 0


def test_script_changed_since_the_run_is_refused(capsys, work):
    make_run(work)
    script = work / "cnn_digits.py"
    script.write_text(script.read_text() + "# edited after tuning\n")
    git(work, "commit", "--quiet", "-am", "edit")

    code, _, err = mutate(capsys, str(script))

    assert code == 9 and "is not the version the run started from" in err
    assert rev(work, BRANCH) is None


def test_tuning_uncommitted_changes_is_refused(capsys, work):
    script = work / "cnn_digits.py"
    script.write_text(script.read_text() + "# not committed\n")
    make_run(work)  # tuned from the work tree
    git(work, "stash", "--quiet")  # the user put the change aside: the tree is clean again

    code, _, err = mutate(capsys, str(script))

    assert code == 9 and "uncommitted changes, or committed since" in err
    assert rev(work, BRANCH) is None


def test_not_a_git_repository_is_refused(capsys, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    shutil.copyfile(FIXTURE, folder / "cnn_digits.py")
    make_run(folder)

    code, _, err = mutate(capsys, str(folder / "cnn_digits.py"))

    assert code == 9 and "not inside a git repository" in err


def test_an_unrelated_branch_of_that_name_is_left_alone(capsys, work):
    git(work, "branch", BRANCH)
    (work / "README.md").write_text("moved on\n")
    git(work, "commit", "--quiet", "-am", "main moves on")  # HEAD is no longer in the branch
    theirs = rev(work, BRANCH)
    make_run(work)

    code, _, err = mutate(capsys, str(work / "cnn_digits.py"))

    assert code == 9 and f"--branch {BRANCH}-" in err
    assert rev(work, BRANCH) == theirs


def test_the_checked_out_branch_is_never_moved(capsys, work):
    make_run(work)
    head = rev(work, "HEAD")
    code, _, err = mutate(capsys, str(work / "cnn_digits.py"), "--branch", "main")
    assert code == 9 and "checked out" in err
    assert rev(work, "main") == head


def test_a_bad_branch_name_is_a_usage_error(capsys, work):
    make_run(work)
    code, _, err = mutate(capsys, str(work / "cnn_digits.py"), "--branch", "a..b")
    assert code == 2 and "not a valid branch name" in err


def test_a_rejected_push_keeps_the_local_commit_and_forces_nothing(capsys, tmp_path, work, origin):
    other = clone(tmp_path, origin, "other")  # someone else pushed their own mutator branch
    git(other, "checkout", "--quiet", "-b", BRANCH, "origin/main")
    (other / "README.md").write_text("their change\n")
    git(other, "commit", "--quiet", "-am", "theirs")
    git(other, "push", "--quiet", "origin", BRANCH)
    theirs = rev(origin, f"refs/heads/{BRANCH}")
    make_run(work)

    code, out, err = mutate(capsys, str(work / "cnn_digits.py"), "--push")

    assert code == 9 and out == ""
    assert "rejected" in err and f"stays on local branch {BRANCH}" in err
    assert err.count("\n") == 1
    ours = rev(work, BRANCH)
    assert ours and ours != theirs and f"({ours[:7]})" in err
    assert rev(origin, f"refs/heads/{BRANCH}") == theirs


def test_an_unreachable_remote_keeps_the_local_commit(capsys, tmp_path, work):
    git(work, "remote", "add", "gone", str(tmp_path / "no-such-repo.git"))
    make_run(work)

    code, _, err = mutate(capsys, str(work / "cnn_digits.py"), "--push", "--remote", "gone")

    assert code == 9 and "could not push to gone" in err and err.count("\n") == 1
    assert rev(work, BRANCH) is not None


def test_a_token_in_a_remote_url_is_not_printed(capsys, work):
    make_run(work)
    url = "https://user:s3cret-token@127.0.0.1:1/repo.git"  # nothing listens on port 1

    code, _, err = mutate(capsys, str(work / "cnn_digits.py"), "--push", "--remote", url)

    assert code == 9 and "could not push" in err
    assert "s3cret-token" not in err and "https://***@127.0.0.1:1/repo.git" in err


def test_an_unexpected_git_failure_is_a_one_line_push_back_error(work):
    with pytest.raises(PushBackError) as caught:
        Repo(work).git("cat-file", "blob", "HEAD:no-such-file")
    assert caught.value.exit_code == 9
    assert str(caught.value).startswith("git cat-file failed: fatal: ")
    assert "\n" not in str(caught.value)


# -- the message -------------------------------------------------------------------------------


def test_each_change_is_measured_against_the_best_before_it():
    source = "x = 1\n"
    records = [
        record(1, "baseline", None, 0.5, 0.5, source, None),
        record(2, "rejected", "more_filters", None, 0.5, source, 1),  # failed: no value
        record(3, "accepted", "more_epochs", 0.6, 0.6, source, 1),
        record(4, "accepted", "add_dense", 0.98, 0.98, source, 3),
    ]
    run = {"settings": {"target": 0.97, "mode": "max", "metric": "val_accuracy"}}
    message = compose_message("train.py", records, run, ".mutator/train")
    assert message.splitlines()[0] == "mutate: train.py 0.5000 -> 0.9800 (target 0.97 reached)"
    assert "- trial 3 more_epochs: more_epochs change: 0.5000 -> 0.6000" in message
    assert "- trial 4 add_dense: add_dense change: 0.6000 -> 0.9800" in message
    assert "(val_accuracy, higher is better)" in message


def test_commit_does_not_import_keras(work):
    make_run(work)
    probe = (
        "import sys\nfrom mutator.cli.app import main\n"
        f"code = main(['commit', {str(work / 'cnn_digits.py')!r}])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow'})\n"
        "print('HEAVY', heavy, code, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "HEAVY [] 0" in result.stderr
