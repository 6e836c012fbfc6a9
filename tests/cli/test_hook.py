"""The pre-commit hook: `mutate hook` directly, and through a real `pre-commit try-repo`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mutator.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_training_script_gets_its_first_change_as_a_diff(tmp_path, capsys):
    script = shutil.copy(FIXTURES / "cnn_digits.py", tmp_path / "train.py")
    assert main(["hook", str(script)]) == 0
    out = capsys.readouterr().out
    assert f"mutate-preview: {script}: model 'model' found" in out
    assert "the search would first try more_filters @0" in out
    assert "-model.add(Conv2D(4, (3, 3)" in out
    assert "+model.add(Conv2D(8, (3, 3)" in out
    assert Path(script).read_text() == (FIXTURES / "cnn_digits.py").read_text()  # never written


def test_configured_rule_order_decides_the_first_change(tmp_path, capsys):
    script = shutil.copy(FIXTURES / "cnn_digits.py", tmp_path / "train.py")
    _write(tmp_path, "mutator.toml", 'rules = ["more_epochs", "more_filters"]\n')
    assert main(["hook", "--no-diff", str(script)]) == 0
    out = capsys.readouterr().out
    assert "the search would first try more_epochs" in out
    assert "@@" not in out  # --no-diff


def test_other_python_files_are_passed_over_in_silence(tmp_path, capsys):
    util = _write(tmp_path, "util.py", "import os\nprint(os.getcwd())\n")
    broken = _write(tmp_path, "half.py", "def f(:\n")  # not ours: another hook reports it
    assert main(["hook", "--strict", str(util), str(broken)]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("nomodel.py", "import keras\nprint(keras.__version__)\n", "no Keras model found"),
        ("broken.py", "import keras\nmodel = keras.Sequential(\n", "syntax error"),
        (
            "fixed.py",
            "from keras import Sequential, layers\nN = 8\n"
            "model = Sequential([layers.Dense(N)])\nmodel.fit(x, y, epochs=N, batch_size=N)\n",
            "no rule can change this model",
        ),
    ],
)
def test_a_problem_is_reported_and_blocks_only_with_strict(tmp_path, capsys, name, text, expected):
    path = _write(tmp_path, name, text)
    assert main(["hook", str(path)]) == 0
    assert expected in capsys.readouterr().out
    assert main(["hook", "--strict", str(path)]) == 1
    out = capsys.readouterr().out
    assert expected in out and "blocking the commit (--strict)" in out


def test_hook_does_not_import_keras(tmp_path):
    script = shutil.copy(FIXTURES / "cnn_digits.py", tmp_path / "train.py")
    probe = (
        "import sys\nfrom mutator.cli.app import main\n"
        f"code = main(['hook', {str(script)!r}])\n"
        "heavy = [m for m in ('keras', 'tensorflow') if m in sys.modules]\n"
        "print('HEAVY', heavy)\nraise SystemExit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory) -> Path:
    """One hook environment for the module: pre-commit installs mutator into it once."""
    if shutil.which("pre-commit") is None and not os.environ.get("CI"):
        pytest.skip("pre-commit is not installed (pip install -e '.[dev]')")
    return tmp_path_factory.mktemp("pre-commit-home")


def _repo_with_staged(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    for name, text in files.items():
        _write(repo, name, text)
    _git(repo, "add", *files)
    return repo


def _try_repo(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "mutate-preview"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_pre_commit_try_repo_previews_the_staged_script(tmp_path, pre_commit_home):
    repo = _repo_with_staged(
        tmp_path,
        {
            "train.py": (FIXTURES / "cnn_digits.py").read_text(encoding="utf-8"),
            "util.py": "print('not a model')\n",
            "notes.txt": "not python\n",
        },
    )
    done = _try_repo(repo, pre_commit_home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mutate preview" in done.stdout and "Passed" in done.stdout
    assert "mutate-preview: train.py: model 'model' found" in done.stdout
    assert "+model.add(Conv2D(8, (3, 3)" in done.stdout
    assert "util.py" not in done.stdout
    assert _git(repo, "status", "--porcelain").splitlines() == [
        "A  notes.txt",
        "A  train.py",
        "A  util.py",
    ]  # the hook changed nothing in the repository


def test_pre_commit_try_repo_does_not_block_a_script_without_a_model(tmp_path, pre_commit_home):
    repo = _repo_with_staged(tmp_path, {"train.py": "import keras\nprint(keras)\n"})
    done = _try_repo(repo, pre_commit_home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mutate-preview: train.py: no Keras model found" in done.stdout
