"""The mutation rules, one per module named after the rule, and the order the search tries them in.

The order is explicit (and checked by a test against the modules in this folder): capacity of
the existing layers first, then depth, then training time, as seed 002's tweaker did, then
regularisation. The search reorders it from the best trial's curves (`mutator.search.diagnosis`):
capacity first when the model under-fits, epochs when it is under-trained, dropout when it
over-fits.

`SHRINK_ORDER` is the other direction, for `mutate slim` (`mutator.search.slim`): the moves that
make a model that already reaches its target smaller or cheaper, largest cut first. They never
join the climb's default order (a climb that shrinks would undo its own gains), but `--rules`
may name them, as any rule.

Rule modules are imported when a rule is first asked for, not with this package: `mutate preview`
usually needs only the first rule that has a candidate.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from rules._rule import Example, Rule

DEFAULT_ORDER: tuple[str, ...] = (
    "more_filters",
    "wider_dense",
    "wider_recurrent",
    "larger_kernel",
    "add_conv_block",
    "add_dense",
    "more_epochs",
    "higher_learning_rate",
    "smaller_batch",
    "add_batchnorm",
    "lower_learning_rate",
    "larger_batch",
    "fewer_epochs",
    "add_dropout",
)

SHRINK_ORDER: tuple[str, ...] = (
    "remove_dense",
    "remove_conv_block",
    "fewer_filters",
    "fewer_units",
    "fewer_epochs",
)

# Every rule there is, each once: the climb's, then the shrinking ones it does not use.
ALL_RULES: tuple[str, ...] = (
    *DEFAULT_ORDER,
    *(name for name in SHRINK_ORDER if name not in DEFAULT_ORDER),
)


def rule_class(name: str) -> type[Rule]:
    """The class of rule `name`, from `rules/<name>.py`; KeyError for a name in neither order."""
    if name not in ALL_RULES:
        raise KeyError(name)
    module = importlib.import_module(f"{__name__}.{name}")
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "name", None) == name:
            return value
    raise KeyError(f"rules/{name}.py defines no class whose name is {name!r}")


def warm_mappings(names: Sequence[str]) -> list[str]:
    """The warm mapping each rule of `names` declares (`Rule.warm`), as `warm_plan` reads them.

    A name this mutator no longer has (an old ledger's) maps as a capacity change did before
    rules declared it: "transfer".
    """
    found = []
    for name in names:
        try:
            found.append(rule_class(name).warm)
        except KeyError:
            found.append("transfer")
    return found


def default_rules() -> list[Rule]:
    """One instance of every rule with its default settings, in the default order."""
    return [rule_class(name)() for name in DEFAULT_ORDER]


def every_rule() -> list[Rule]:
    """One instance of every rule there is (`ALL_RULES`): what the examples and goldens cover."""
    return [rule_class(name)() for name in ALL_RULES]


__all__ = [
    "ALL_RULES",
    "DEFAULT_ORDER",
    "SHRINK_ORDER",
    "Example",
    "Rule",
    "default_rules",
    "every_rule",
    "rule_class",
    "warm_mappings",
]
