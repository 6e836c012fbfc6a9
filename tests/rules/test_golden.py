"""Whole-script golden files: every rule on every fixture, byte for byte.

`fixtures/cnn_add.py` beside `fixtures/cnn_add.more_filters.expected.py` is the output of the
rule's first candidate; a rule with no candidate on a fixture has no expected file, and its
reasons are in `fixtures/<name>.skips.txt`. Regenerate after a deliberate change with
`python -m pytest tests/rules/test_golden.py --update-golden`, and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mutator import api
from mutator.engine.candidate import Candidate, Skip
from mutator.errors import ModelNotFoundError
from rules import ALL_RULES

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
NOT_KERAS = {"sklearn_digits.py", "not_ml.py"}
SCRIPTS = sorted(
    p for p in FIXTURES.glob("*.py") if ".expected." not in p.name and p.name not in NOT_KERAS
)
RULES = api.rules_named(ALL_RULES)


def _expected(script: Path, rule: str) -> Path:
    return script.with_name(f"{script.stem}.{rule}.expected.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_rule_on_fixture_matches_golden(script, rule, request):
    loaded = api.Script.load(script)
    candidates = [p for p in rule.propose(loaded.view) if isinstance(p, Candidate)]
    expected = _expected(script, rule.name)
    if request.config.getoption("--update-golden"):
        if candidates:
            source = api.rewrite(loaded, candidates[0]).source
            expected.write_bytes(source.encode("utf-8"))
        else:
            expected.unlink(missing_ok=True)
    if not candidates:
        assert not expected.exists(), f"{rule.name} no longer applies to {script.name}"
        return
    assert expected.exists(), f"no golden file {expected.name}; run with --update-golden"
    got = api.rewrite(loaded, candidates[0]).source
    assert got.encode("utf-8") == expected.read_bytes()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_skips_are_recorded(script, request):
    """Why each rule declines each site is part of the golden output: reasons must stay useful."""
    loaded = api.Script.load(script)
    lines = [
        f"{p.rule} @{p.site}: {p.reason}\n"
        for p in api.propose(loaded, RULES)
        if isinstance(p, Skip)
    ]
    path = script.with_name(f"{script.stem}.skips.txt")
    if request.config.getoption("--update-golden"):
        if lines:
            path.write_text("".join(lines), encoding="utf-8")
        else:
            path.unlink(missing_ok=True)
    assert (path.read_text(encoding="utf-8") if path.exists() else "") == "".join(lines)


def test_every_fixture_has_at_least_one_applicable_rule():
    for script in SCRIPTS:
        loaded = api.Script.load(script)
        assert any(isinstance(p, Candidate) for p in api.propose(loaded, RULES)), script.name


@pytest.mark.parametrize("name", sorted(NOT_KERAS))
def test_non_keras_fixtures_have_no_model(name):
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    with pytest.raises(ModelNotFoundError):
        api.Script.load(path)


def test_golden_files_belong_to_a_fixture_and_a_rule():
    names = {rule.name for rule in RULES}
    for path in FIXTURES.glob("*.expected.py"):
        stem, rule, *_ = path.name.split(".")
        assert (FIXTURES / f"{stem}.py").exists() and rule in names, path.name


def test_a_subclassed_model_nested_call_skips_insertion_with_the_reason():
    reasons = (FIXTURES / "subclassed_model.skips.txt").read_text(encoding="utf-8")
    assert "add_dense @2: call() is not a straight chain of `x = self.layer(x)`" in reasons
