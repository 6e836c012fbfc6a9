"""The mutation rules, one per module, and the order the search tries them in.

The order is explicit (and checked by a test against the modules in this folder): capacity of
the existing layers first, then depth, then training time, as seed 002's tweaker did. The search
may reorder at run time from a trial's evidence (e.g. epochs first when the curve still rises).
"""

from __future__ import annotations

from rules._rule import Example, Rule
from rules.add_conv_block import AddConvBlock
from rules.add_dense import AddDense
from rules.larger_kernel import LargerKernel
from rules.more_epochs import MoreEpochs
from rules.more_filters import MoreFilters

DEFAULT_ORDER: tuple[type, ...] = (MoreFilters, LargerKernel, AddConvBlock, AddDense, MoreEpochs)

RULES_BY_NAME: dict[str, type] = {rule.name: rule for rule in DEFAULT_ORDER}


def default_rules() -> list[Rule]:
    """One instance of every rule with its default settings, in the default order."""
    return [rule() for rule in DEFAULT_ORDER]


__all__ = ["DEFAULT_ORDER", "RULES_BY_NAME", "Example", "Rule", "default_rules"]
