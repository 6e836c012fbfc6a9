"""Git through subprocess, for `mutate commit`: only plumbing, never the user's index or checkout.

Mutator commits the best script the way a script would, not the way a person does: objects are
written with `hash-object`, trees are built in a temporary index (GIT_INDEX_FILE), commits with
`commit-tree`, and branches moved with `update-ref OLD NEW`, which fails rather than overwrite a
branch that moved meanwhile. The working tree, the real index and HEAD are never written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mutator.errors import PushBackError

FALLBACK_NAME = "mutator"
FALLBACK_EMAIL = "mutator@localhost"

# user:password@ in a URL that git echoes back (e.g. a token a Jenkins job put in the remote URL).
_CREDENTIALS_IN_URL = re.compile(r"(\w+://)[^/@\s]+@")


class GitFailed(PushBackError):
    """A git command exited non-zero; `detail` is its last meaningful line of stderr.

    Callers turn the failures they expect into advice; any other (a signing key that is
    missing, a corrupt repository) still reaches the user as one line with exit 9.
    """

    def __init__(self, args: tuple[str, ...], returncode: int, stderr: str) -> None:
        self.args_ = args
        self.returncode = returncode
        self.stderr = redact(stderr)
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith(("fatal:", "error:", "!"))]
        self.detail = (errors or lines or [f"git {args[0]} exited {returncode}"])[-1]
        super().__init__(f"git {args[0]} failed: {self.detail}")


def redact(text: str) -> str:
    return _CREDENTIALS_IN_URL.sub(r"\1***@", text)


@dataclass(frozen=True)
class Repo:
    """A work tree's repository; every command runs at its top level."""

    root: Path

    @classmethod
    def containing(cls, folder: Path) -> Repo:
        try:
            out = _git(folder, "rev-parse", "--show-toplevel").strip()
        except GitFailed:
            raise PushBackError(
                f"{folder} is not inside a git repository; `git init` and commit the script "
                "first, or copy best.py by hand"
            ) from None
        return cls(Path(out).resolve())

    def git(
        self, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
    ) -> str:
        return _git(self.root, *args, env=env, stdin=stdin)

    def ok(self, *args: str) -> bool:
        """True when the command exits 0 (for questions such as `merge-base --is-ancestor`)."""
        try:
            _git(self.root, *args)
        except GitFailed:
            return False
        return True

    def blob(self, spec: str) -> bytes:
        """The raw bytes of `REV:path`, as stored (no filters)."""
        return _git_bytes(self.root, "cat-file", "blob", spec)

    def checked_out_blob(self, spec: str) -> bytes:
        """`REV:path` as a checkout would write it (eol and smudge filters applied)."""
        return _git_bytes(self.root, "cat-file", "--filters", spec)

    def rev(self, spec: str) -> str | None:
        try:
            return self.git("rev-parse", "--verify", "--quiet", spec).strip() or None
        except GitFailed:
            return None

    def checked_out_branches(self) -> set[str]:
        """Branches checked out in any work tree of this repository (refs/heads/...)."""
        out = self.git("worktree", "list", "--porcelain")
        return {line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("branch ")}

    @contextmanager
    def temporary_index(self) -> Iterator[dict[str, str]]:
        """The env for commands that must build a tree without touching .git/index."""
        with tempfile.TemporaryDirectory(prefix="mutator-index-") as folder:
            yield {"GIT_INDEX_FILE": str(Path(folder) / "index")}

    def identity_env(self) -> dict[str, str]:
        """GIT_AUTHOR_*/GIT_COMMITTER_* for what neither the environment nor git config sets.

        A CI agent often has no user.name/email; git would then refuse to commit, so mutator
        signs as itself. Whatever the user configured wins, field by field.
        """
        env: dict[str, str] = {}
        for role in ("author", "committer"):
            for field, fallback in (("name", FALLBACK_NAME), ("email", FALLBACK_EMAIL)):
                variable = f"GIT_{role.upper()}_{field.upper()}"
                if os.environ.get(variable) or self._config(f"{role}.{field}"):
                    continue
                if not self._config(f"user.{field}"):
                    env[variable] = fallback
        return env

    def _config(self, key: str) -> str | None:
        try:
            return self.git("config", "--get", key).strip() or None
        except GitFailed:
            return None


def push_env() -> dict[str, str]:
    """No credential prompt on a terminal that is not there (Jenkins): fail instead of hanging.

    Credentials still come the usual ways: credential helpers, GIT_ASKPASS, SSH agents or
    GIT_SSH_COMMAND, GIT_CONFIG_* (e.g. http.extraHeader). Mutator stores none of them.
    """
    if "GIT_TERMINAL_PROMPT" in os.environ or sys.stdin.isatty():
        return {}
    return {"GIT_TERMINAL_PROMPT": "0"}


def _git(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> str:
    return _run(cwd, args, env, stdin.encode("utf-8") if stdin is not None else None).decode(
        "utf-8", "replace"
    )


def _git_bytes(cwd: Path, *args: str) -> bytes:
    return _run(cwd, args, None, None)


def _run(
    cwd: Path, args: tuple[str, ...], env: Mapping[str, str] | None, stdin: bytes | None
) -> bytes:
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            env={**os.environ, **env} if env else None,
            check=False,
        )
    except FileNotFoundError:
        if not cwd.is_dir():
            raise PushBackError(f"{cwd}: no such folder") from None
        raise PushBackError("git is not installed (not on PATH); install git first") from None
    if result.returncode != 0:
        raise GitFailed(args, result.returncode, result.stderr.decode("utf-8", "replace"))
    return result.stdout
