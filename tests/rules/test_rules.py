"""Every rule's own examples and no-match cases, and the registry of rules."""

from __future__ import annotations

import json
import pkgutil
from pathlib import Path

import pytest

import rules
from mutator import api
from mutator.engine.candidate import Candidate, Skip

RULES = api.rules_named(rules.ALL_RULES)
EXAMPLES = [
    pytest.param(rule, example, id=f"{rule.name}-{i}")
    for rule in RULES
    for i, example in enumerate(rule.examples)
]
NO_MATCH = [
    pytest.param(rule, text, id=f"{rule.name}-{i}")
    for rule in RULES
    for i, text in enumerate(rule.no_match)
]


@pytest.mark.parametrize(("rule", "example"), EXAMPLES)
def test_example_rewrites_as_documented(rule, example):
    script = api.Script.from_text(example.before)
    candidate = api.choose(rule.propose(script.view), example.site)
    assert api.rewrite(script, candidate).source == example.after


@pytest.mark.parametrize(("rule", "text"), NO_MATCH)
def test_no_match_proposes_nothing(rule, text):
    proposals = rule.propose(api.Script.from_text(text).view)
    assert not [p for p in proposals if isinstance(p, Candidate)]
    # When a rule looked at a site and declined, it says why.
    assert all(p.reason for p in proposals if isinstance(p, Skip))


def test_every_rule_module_is_in_an_order():
    folder = Path(rules.__file__).parent
    modules = {m.name for m in pkgutil.iter_modules([str(folder)]) if not m.name.startswith("_")}
    assert modules == set(rules.DEFAULT_ORDER) | set(rules.SHRINK_ORDER)
    assert len(set(rules.ALL_RULES)) == len(rules.ALL_RULES)


def test_the_climb_never_shrinks_unless_asked():
    """Only fewer_epochs (regularisation: an over-fitting model stopped at its best epoch) is
    in both orders; the rules that cut layers and widths are slim's alone."""
    assert set(rules.DEFAULT_ORDER) & set(rules.SHRINK_ORDER) == {"fewer_epochs"}


def test_every_rule_has_a_name_description_and_examples():
    names = [rule.name for rule in RULES]
    assert len(set(names)) == len(names)
    for rule in RULES:
        assert rule.description and rule.examples and rule.no_match, rule.name
        assert rule.__module__.endswith(rule.name), "a rule lives in the module named after it"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_rule_says_what_the_search_must_know_about_it(rule):
    """Its road (which diagnosis calls for it), the setting its step scales, its warm mapping."""
    from dataclasses import fields

    from rules._rule import ROADS, WARM_MAPPINGS

    cls = type(rule)
    for attribute in ("road", "step_setting", "warm", "cold_why"):
        assert attribute in vars(cls), f"{rule.name} does not declare {attribute}"
    assert rule.road in ROADS
    assert rule.warm in WARM_MAPPINGS
    assert bool(rule.cold_why) == (rule.warm == "cold"), "a cold rule says why, only it"
    if rule.step_setting is not None:
        settings = {f.name: f for f in fields(cls)}
        assert rule.step_setting in settings, f"{rule.step_setting} is not a setting of {rule.name}"
        value = getattr(rule, rule.step_setting)
        assert isinstance(value, (int, float)) and value > 1, "a step setting multiplies"


def test_rules_take_typed_settings():
    wide = rules.rule_class("more_filters")(factor=4, max_filters=64)
    script = api.Script.from_text(
        "from keras.models import Sequential\nfrom keras.layers import Conv2D, Dense, Flatten\n"
        "model = Sequential()\nmodel.add(Conv2D(8, 3))\nmodel.add(Conv2D(32, 3))\n"
        "model.add(Flatten())\nmodel.add(Dense(10))\n"
    )
    proposals = wide.propose(script.view)
    assert proposals[0].params == {"filters": [8, 32]}
    assert proposals[1].params == {"filters": [32, 64]}  # capped


def test_candidates_are_addressed_and_json_serialisable():
    script = api.Script.from_text(RULES[0].examples[0].before)
    for proposal in api.propose(script, RULES):
        if isinstance(proposal, Candidate):
            address = json.loads(json.dumps(proposal.address()))
            assert address["rule"] == proposal.rule and address["site"] == proposal.site


def test_unknown_rule_is_a_usage_error():
    with pytest.raises(Exception, match="unknown rule 'bigger'"):
        api.rules_named(["bigger"])
