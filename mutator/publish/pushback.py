"""`mutate commit`: put a run's best.py on a branch of the user's repository, optionally pushed.

The user's checkout is theirs: the commit is built with git plumbing in a temporary index, so the
working tree, the index and the current branch are byte-identical afterwards. The commit goes on
its own branch (`mutator/<stem>` unless told), whose parent is HEAD or, when that branch already
exists and descends from HEAD, its tip. Anything that would make the commit a lie or lose work is
refused with a PushBackError (exit 9) saying what to do:

- the script is not in a repository, or HEAD does not hold it;
- HEAD's script is not the one the run started from (tuned from uncommitted changes, or HEAD
  moved on since): the commit would silently undo or mix in changes;
- tracked files are modified: the user is mid-change and should decide first;
- the branch exists but does not descend from HEAD, or is checked out: never rewritten.
Pushing is a plain `git push REMOTE refs/heads/B:refs/heads/B`: never forced.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

from mutator.errors import PushBackError, UsageError
from mutator.publish.gitrepo import GitFailed, Repo, push_env, redact
from mutator.publish.pushback_message import compose_message, plural
from mutator.search.ledger import Ledger, TrialRecord

BRANCH_PREFIX = "mutator/"
FILE_MODES = ("100644", "100755")


@dataclass(frozen=True)
class PushBackResult:
    """What `commit_best` did. `committed` is False when the branch already had this version or
    there was nothing to commit; `reason` then says which. `commit` is the branch's tip."""

    committed: bool
    message: str
    branch: str | None = None
    commit: str | None = None
    path: str | None = None  # the file written, relative to the repository's top
    pushed: bool = False
    remote: str | None = None
    reason: str | None = None

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    @property
    def short(self) -> str:
        return (self.commit or "")[:7]


def commit_best(
    script: Path,
    run_dir: Path,
    *,
    branch: str | None = None,
    push: bool = False,
    remote: str = "origin",
    beside: bool = False,
) -> PushBackResult:
    """Commit `run_dir/best.py` as `script` (or as `<stem>.best.py` beside it) on `branch`.

    Raises UsageError when the run has no trials, PushBackError when the commit or push is
    refused or fails (after a failed push the commit stays on the local branch).
    """
    ledger = Ledger(run_dir)
    records = ledger.records()
    if not records:
        raise UsageError(f"no trials recorded in {run_dir}; run `mutate tune {script}` first")
    accepted = [r for r in records if r.decision == "accepted"]
    if not accepted:
        return PushBackResult(
            committed=False,
            message="",
            reason=f"no change was accepted in {plural(len(records), 'trial')}; "
            f"{script.name} is already the best version",
        )
    best = _best_source(ledger, accepted[-1])
    run = ledger.settings()

    repo, head, script_path, mode = _locate(script)
    _check_started_from(repo, head, script_path, run.get("script_sha256"))
    _check_clean(repo, run_dir)

    target_path = (
        str(Path(script_path).with_name(f"{Path(script_path).stem}.best.py").as_posix())
        if beside
        else script_path
    )
    branch = branch or _default_branch(script_path)
    ref, tip = _branch_to_extend(repo, head, branch)
    parent = tip or head

    message = compose_message(script.name, records, run, _run_label(repo, run_dir), ledger)
    tree = _tree_with(repo, parent, target_path, mode, best)
    if tree == repo.rev(f"{parent}^{{tree}}"):
        if tip is None:
            return PushBackResult(
                committed=False,
                message=message,
                path=target_path,
                reason=f"best.py is identical to {target_path} at HEAD",
            )
        result = PushBackResult(
            committed=False,
            message=message,
            branch=branch,
            commit=tip,
            path=target_path,
            reason=f"{branch} already holds this version ({tip[:7]}); no new commit",
        )
    else:
        commit = repo.git(
            "commit-tree", tree, "-p", parent, "-F", "-", env=repo.identity_env(), stdin=message
        ).strip()
        try:
            repo.git("update-ref", "-m", "mutate commit", ref, commit, tip or _zero(head))
        except GitFailed as exc:
            raise PushBackError(
                f"could not update branch {branch} ({exc.detail}); it was changed meanwhile, "
                "run `mutate commit` again"
            ) from None
        result = PushBackResult(
            committed=True, message=message, branch=branch, commit=commit, path=target_path
        )
    if push:
        _push(repo, remote, branch, result.short)
        result = dataclasses.replace(result, pushed=True, remote=remote)
    return result


def check_ready(script: Path, run_dir: Path, branch: str | None = None) -> None:
    """Refuse now what `commit_best` would refuse after training (`mutate tune --commit`).

    The script as it is on disk must be HEAD's, tracked files clean, the branch name valid and
    not checked out, so an hour of training does not end in "commit refused". `commit_best`
    checks all of it again at the end: the user may have changed things meanwhile.
    """
    repo, head, script_path, _mode = _locate(script)
    on_disk = hashlib.sha256(script.read_bytes()).hexdigest()
    _check_started_from(repo, head, script_path, on_disk)
    _check_clean(repo, run_dir)
    _branch_to_extend(repo, head, branch or _default_branch(script_path))


def describe(result: PushBackResult) -> list[str]:
    """What `mutate commit` (and `tune --commit`) print: branch, short sha, subject, push."""
    if result.committed:
        lines = [f"committed {result.short} on {result.branch}: {result.subject}"]
    elif result.branch:
        lines = [f"{result.reason}: {result.subject}"]
    else:
        lines = [f"nothing to commit: {result.reason}"]
    if result.pushed:
        lines.append(f"pushed {result.branch} to {redact(result.remote or '')}")
    return lines


# -- checks ----------------------------------------------------------------------------------


def _best_source(ledger: Ledger, last_accepted: TrialRecord) -> bytes:
    """best.py, provided it is the last accepted trial's script (so the message tells the truth)."""
    path = ledger.best_script
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PushBackError(
            f"{path} is missing; run `mutate tune` again to write it (the trials are kept)"
        ) from None
    if hashlib.sha256(data).hexdigest() != last_accepted.sha256:
        raise PushBackError(
            f"{path} is not trial {last_accepted.id}'s script (edited after the run?); "
            f"copy trial {last_accepted.id}'s script back or commit it by hand"
        )
    return data


def _repo_path(repo: Repo, script: Path) -> str:
    resolved = script.resolve()
    try:
        return resolved.relative_to(repo.root).as_posix()
    except ValueError:
        raise PushBackError(f"{script} is outside the repository at {repo.root}") from None


def _mode_in(repo: Repo, head: str, path: str) -> str:
    entry = repo.git("ls-tree", "-z", head, "--", path).split("\0", 1)[0]
    if not entry:
        raise PushBackError(
            f"{path} is not in HEAD ({head[:7]}); commit the script as it was tuned, then run "
            "`mutate commit` again"
        )
    mode = entry.split(" ", 1)[0]
    if mode not in FILE_MODES:
        raise PushBackError(f"{path} is not a regular file in HEAD (mode {mode}); commit by hand")
    return mode


def _locate(script: Path) -> tuple[Repo, str, str, str]:
    """The script's repository, HEAD, the script's path in it and its file mode at HEAD."""
    repo = Repo.containing(script.resolve().parent)
    head = repo.rev("HEAD^{commit}")
    if head is None:
        raise PushBackError(f"{repo.root} has no commits yet; commit {script.name} first")
    script_path = _repo_path(repo, script)
    return repo, head, script_path, _mode_in(repo, head, script_path)


def _check_started_from(repo: Repo, head: str, path: str, wanted: str | None) -> None:
    """HEAD's script must be the one tuned, or the commit would undo or smuggle in changes.

    Stored bytes and checked-out bytes (CRLF/smudge filters) both count: the run read the file
    from the work tree.
    """
    if not wanted:
        raise PushBackError("the run's run.json has no script_sha256; re-run `mutate tune`")
    spec = f"{head}:{path}"
    for read in (repo.blob, repo.checked_out_blob):
        if hashlib.sha256(read(spec)).hexdigest() == wanted:
            return
    raise PushBackError(
        f"{path} at HEAD ({head[:7]}) is not the version the run started from (tuned from "
        "uncommitted changes, or committed since); commit the tuned version or tune again "
        "with --fresh"
    )


def _check_clean(repo: Repo, run_dir: Path) -> None:
    """Modified tracked files mean the user is mid-change; untracked files (.mutator/) are fine."""
    spec = ["."]
    try:
        inside = run_dir.resolve().relative_to(repo.root).as_posix()
    except ValueError:
        inside = None
    if inside and inside != ".":
        spec.append(f":(exclude){inside}")  # the run directory is mutator's own
    dirty = repo.git(
        # --no-optional-locks: plain `status` may rewrite .git/index to refresh stat data.
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        *spec,
    ).splitlines()
    if dirty:
        names = ", ".join(line[3:] for line in dirty[:3]) + (", ..." if len(dirty) > 3 else "")
        raise PushBackError(
            f"tracked files have uncommitted changes ({names}); commit or stash them first"
        )


def _default_branch(script_path: str) -> str:
    return f"{BRANCH_PREFIX}{Path(script_path).stem}"


def _branch_to_extend(repo: Repo, head: str, branch: str) -> tuple[str, str | None]:
    """The branch's ref and tip (None: new); refused when it exists without HEAD in it."""
    ref = _branch_ref(repo, branch)
    tip = repo.rev(ref)
    if tip is not None and not repo.ok("merge-base", "--is-ancestor", head, tip):
        raise PushBackError(
            f"branch {branch} exists and does not contain HEAD ({head[:7]}); it is left alone: "
            f"pass --branch {branch}-{head[:7]} (or another new name)"
        )
    return ref, tip


def _branch_ref(repo: Repo, branch: str) -> str:
    if not repo.ok("check-ref-format", "--branch", branch) or branch.startswith("-"):
        raise UsageError(f"--branch {branch!r} is not a valid branch name")
    ref = f"refs/heads/{branch}"
    if ref in repo.checked_out_branches():
        raise PushBackError(
            f"branch {branch} is checked out; mutator never moves a checked-out branch: "
            "pass --branch with another name"
        )
    return ref


# -- building and pushing ---------------------------------------------------------------------


def _tree_with(repo: Repo, parent: str, path: str, mode: str, content: bytes) -> str:
    """`parent`'s tree with `path` set to `content`, built in a throwaway index."""
    with repo.temporary_index() as env:
        repo.git("read-tree", parent, env=env)
        staged = Path(env["GIT_INDEX_FILE"]).with_name("best.py")
        staged.write_bytes(content)
        # --path: the clean filters (e.g. CRLF -> LF) of the file's real place apply.
        blob = repo.git("hash-object", "-w", f"--path={path}", str(staged), env=env).strip()
        repo.git("update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env)
        return repo.git("write-tree", env=env).strip()


def _push(repo: Repo, remote: str, branch: str, short: str) -> None:
    ref = f"refs/heads/{branch}"
    try:
        repo.git("push", remote, f"{ref}:{ref}", env=push_env())
    except GitFailed as exc:
        kept = f"the commit stays on local branch {branch} ({short})"
        remote = redact(remote)  # a URL given as the remote may carry a token
        if "rejected" in exc.stderr or "non-fast-forward" in exc.stderr:
            raise PushBackError(
                f"push to {remote} rejected: its {branch} has commits this one lacks; {kept}: "
                "look at both, or commit again with --branch NEW_NAME"
            ) from None
        raise PushBackError(f"could not push to {remote} ({exc.detail}); {kept}") from None


# -- small helpers -----------------------------------------------------------------------------


def _run_label(repo: Repo, run_dir: Path) -> str:
    try:
        return run_dir.resolve().relative_to(repo.root).as_posix()
    except ValueError:
        return str(run_dir.resolve())


def _zero(sha: str) -> str:
    return "0" * len(sha)  # "must not exist yet" for update-ref, in SHA-1 and SHA-256 repos
