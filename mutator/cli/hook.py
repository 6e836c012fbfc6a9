"""The pre-commit front door: for each staged training script, the change the search would try first.

pre-commit hands over every staged `.py` file; most are not training scripts and are passed over
in silence. A script that imports keras/tensorflow gets one line saying whether its model was found
and, when it was, the first candidate of the configured rule order as a diff (the search itself
may put `more_epochs` first once training shows a rising curve: that needs a trained baseline,
which a commit hook cannot afford). The hook never blocks a commit unless `strict` is set, and it
never imports keras: it has to be as quick as a linter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mutator import api
from mutator.containers import detect
from mutator.engine.source import load_module
from mutator.errors import MutatorError
from mutator.search import config

PREFIX = "mutate-preview"


@dataclass(frozen=True)
class Finding:
    """What the hook has to say about one file."""

    path: Path
    summary: str  # one line
    diff: str = ""  # the first change, when there is one
    problem: bool = False  # a training script mutator cannot work with (fails the hook in --strict)
    training_script: bool = True


def preview_file(path: Path) -> Finding:
    """The first proposed change for `path`, or why there is none; never raises MutatorError."""
    try:
        _, module = load_module(path)
    except MutatorError as exc:
        # A file that does not parse is another hook's business, unless it is a training script.
        mentions_keras = _mentions_keras(path)
        return Finding(path, f"cannot read it: {exc}", problem=mentions_keras,
                       training_script=mentions_keras)
    if not detect.imported_roots(module) & detect.KERAS_MODULES:
        return Finding(path, "not a Keras script", training_script=False)
    try:
        config_path, table = config.find_config(path)
        settings = config.settings_from(table, {}, str(config_path or "config"))
        script = api.Script.load(path)
        rules = api.rules_named(settings.climb.rules, settings.climb.rule_settings)
        candidate = api.choose(api.propose(script, rules))
        result = api.rewrite(script, candidate)
    except MutatorError as exc:
        return Finding(path, _strip_path(str(exc), path), problem=True)
    view = script.view
    summary = (
        f"model {view.name!r} found ({view.style}, {len(view.layers)} layers); "
        f"the search would first try {candidate.rule} @{candidate.site}: {candidate.description}"
    )
    return Finding(path, summary, diff=result.diff)


def run(
    paths: Sequence[Path],
    strict: bool = False,
    show_diff: bool = True,
    write: Callable[[str], object] = print,
) -> int:
    """Preview every path; exit status 1 only when `strict` and a training script has a problem."""
    failed = False
    for path in paths:
        finding = preview_file(path)
        if not finding.training_script:
            continue
        write(f"{PREFIX}: {path}: {finding.summary}")
        if show_diff and finding.diff:
            write(finding.diff.rstrip("\n"))
        failed = failed or finding.problem
    if failed and strict:
        write(f"{PREFIX}: blocking the commit (--strict); fix the script or drop --strict")
        return 1
    return 0


def _mentions_keras(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(name in text for name in ("keras", "tensorflow"))


def _strip_path(message: str, path: Path) -> str:
    """Errors start with the file name, which the hook's line already gives."""
    for prefix in (f"{path}: ", f"{path.name}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
