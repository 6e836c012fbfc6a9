"""What the locator found: the model's layers in order, how each is attached, and where epochs live.

Rules read a ModelView and never the raw tree, so the many ways people write a Keras model reduce
to one shape here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import libcst as cst

from mutator.engine.callargs import find_arg, literal_int, literal_ints

Style = Literal["sequential-add", "sequential-list", "functional"]
EpochsKind = Literal[
    "literal",
    "constant",
    "variable",
    "parameter",
    "argparse",
    "flag",  # absl: flags.DEFINE_integer("epochs", 10, ...) read as FLAGS.epochs
    "config",  # a defaults dict: dict(epochs=27) or {"epochs": 27}, read as config.epochs
    "expression",  # computed (int(math.ceil(12 / n))): wrapped by a factor, never evaluated
    "default",
    "unresolved",
]


@dataclass(frozen=True, eq=False)
class AddedLayer:
    """`model.add(<layer>)` (or `layer_list.append(<layer>)`): new layers are new statements
    of the same call beside it."""

    statement: cst.SimpleStatementLine
    receiver: str
    in_loop: bool = False
    depth: int = 0  # if/for/with blocks around the statement, within its function
    method: str = "add"  # "append" for a layer list built before `Sequential(that_list)`


@dataclass(frozen=True, eq=False)
class ListedLayer:
    """An element of `Sequential([...])`: new layers are new elements of that list."""

    list_node: cst.List
    element: cst.Element


@dataclass(frozen=True, eq=False)
class AppliedLayer:
    """Functional API, `target = <layer>(input_name)`; target is None when the call is nested."""

    statement: cst.SimpleStatementLine
    target: str | None
    input_name: str | None


#: The kind of a layer that is not a keras.layers class (custom, or a same-named class elsewhere).
UNKNOWN_KIND = "unknown"

Holder = AddedLayer | ListedLayer | AppliedLayer


@dataclass(frozen=True, eq=False)
class Layer:
    index: int
    kind: str  # canonical class name, e.g. "Conv2D" (also for `Convolution2D`)
    written_as: str  # the callee as the script spells it, e.g. "layers.Conv2D"
    call: cst.Call | None  # None when the element is not a call we can read (a variable, say)
    holder: Holder
    # A user's subclass of a Keras layer (`class StdConv(layers.Conv2D)`): how the script spells
    # the Keras base, which new layers are written as. None for Keras's own classes.
    written_base: str | None = None
    # The model this layer belongs to when the trained model is composed of models (a feature
    # extractor built by its own function): its name, or None for the trained model's own.
    model: str | None = None

    @property
    def style_callee(self) -> str:
        """The callee new layers beside this one are spelled like: the Keras class, not a subclass."""
        return self.written_base or self.written_as

    def arg(self, position: int | None, *keywords: str) -> cst.Arg | None:
        return find_arg(self.call, position, *keywords) if self.call is not None else None

    def int_arg(self, position: int | None, *keywords: str) -> int | None:
        arg = self.arg(position, *keywords)
        return literal_int(arg.value) if arg else None

    def ints_arg(self, position: int | None, *keywords: str) -> tuple[int | None, ...] | None:
        arg = self.arg(position, *keywords)
        return literal_ints(arg.value) if arg else None


@dataclass(frozen=True, eq=False)
class EpochsSite:
    """Where the number of epochs really lives, and the literal to change there.

    `node` is the Integer to replace; for kind "default" (no epochs written) it is None and the
    `fit_call` gets a new keyword instead.
    """

    kind: EpochsKind
    value: int | None
    node: cst.BaseExpression | None  # the Integer to replace (the expression, for "expression")
    fit_call: cst.Call
    detail: str
    # The names followed from the fit call to the number (`epochs=EPOCHS` -> ("EPOCHS",)): when
    # one of them also feeds a layer, changing it would change the model, not only the training.
    names: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class ModelView:
    module: cst.Module
    name: str
    scope: str
    style: Style
    layers: tuple[Layer, ...]
    epochs: EpochsSite | None
    input_shape: tuple[int | None, ...] | None
    input_name: str | None = None
    # `from keras.layers import Conv2D, ...` statements by the local names they bind, so a rule
    # that needs a layer class the script has not imported can add it there.
    layer_imports: dict[str, cst.ImportFrom] = field(default_factory=dict)
    star_import: bool = False  # `from keras.layers import *`: every layer name is already bound
    notes: tuple[str, ...] = ()
    parent_of: dict[int, cst.CSTNode] = field(default_factory=dict, repr=False)

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def layers_of(self, kinds: frozenset[str] | set[str]) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind in kinds]
