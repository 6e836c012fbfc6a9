"""Real git repositories for tests: a bare `origin` and a clone holding the CNN fixture."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "cnn_digits.py"


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def rev(cwd: Path, spec: str) -> str | None:
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", spec], cwd=cwd, capture_output=True, text=True
    )
    return result.stdout.strip() or None


def clone(tmp_path: Path, origin: Path, name: str) -> Path:
    git(tmp_path, "clone", "--quiet", str(origin), name)
    work = tmp_path / name
    git(work, "config", "user.name", "Test User")
    git(work, "config", "user.email", "test@example.com")
    return work


def origin_and_clone(tmp_path: Path) -> tuple[Path, Path]:
    """A bare `origin` and a clone `work` whose main holds the script and a README, pushed."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(bare))
    work = clone(tmp_path, bare, "work")
    git(work, "checkout", "--quiet", "-b", "main")
    shutil.copyfile(FIXTURE, work / "cnn_digits.py")
    (work / "README.md").write_text("a project\n")
    git(work, "add", ".")
    git(work, "commit", "--quiet", "-m", "initial")
    git(work, "push", "--quiet", "origin", "main")
    return bare, work
