"""The raw facts one pass over a script collects, before any decision about which model is which."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import libcst as cst


@dataclass(frozen=True, eq=False)
class Assignment:
    scope: str
    order: int  # position of its statement in the file: later statements have larger numbers
    target: cst.BaseAssignTargetExpression
    value: cst.BaseExpression
    statement: cst.SimpleStatementLine


@dataclass(frozen=True, eq=False)
class Construction:
    """A `Sequential(...)` or `Model(...)` call, or a call of a subclass of keras.Model."""

    kind: Literal["sequential", "functional", "subclassed"]
    scope: str
    order: int
    call: cst.Call
    statement: cst.SimpleStatementLine | None
    model_class: str | None = None  # subclassed: the class's marker, a key of `model_classes`


@dataclass(frozen=True, eq=False)
class ModelClass:
    """`class Net(keras.Model)` (or a subclass of another such class of the script)."""

    name: str
    scope: str  # its body's scope: its methods are `<scope>.__init__`, `<scope>.call`
    node: cst.ClassDef
    bases: tuple[str, ...] = ()  # markers of the script's model classes it derives from


@dataclass(frozen=True, eq=False)
class FitCall:
    scope: str
    order: int
    receiver: str
    call: cst.Call


@dataclass(frozen=True, eq=False)
class CompileCall:
    """`receiver.compile(...)`, with the names bound there (an import's qualified name, or ""
    for the script's own), so a new optimizer object can be spelled the way the script spells
    Keras."""

    scope: str
    order: int
    receiver: str
    call: cst.Call
    names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class FunctionCall:
    """`name(...)`: a call of one of the script's functions, which may pass a parameter that
    the function otherwise takes from its default."""

    scope: str
    order: int
    call: cst.Call


@dataclass(frozen=True, eq=False)
class KerasImport:
    """An import statement of a Keras package (`keras`, `tensorflow.keras`, `keras_core`) or of
    tensorflow: where a new `from <package>.optimizers import X` goes."""

    scope: str
    statement: cst.SimpleStatementLine
    package: str  # `keras`, `tensorflow.keras`, `keras_core`


@dataclass(frozen=True, eq=False)
class AddCall:
    """`receiver.add(<layer>)`, with how deeply its statement is nested in if/for/with blocks."""

    scope: str
    order: int
    receiver: str
    call: cst.Call
    statement: cst.SimpleStatementLine
    in_loop: bool
    depth: int
    method: str = "add"  # or "append": a list of layers built for `Sequential(the_list)`


@dataclass(eq=False)
class ScriptFacts:
    module: cst.Module
    star_layers: bool = False
    constructions: list[Construction] = field(default_factory=list)
    adds: list[AddCall] = field(default_factory=list)
    fits: list[FitCall] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    returns: list[tuple[str, cst.BaseExpression]] = field(default_factory=list)
    arguments: list[cst.Call] = field(default_factory=list)  # argparse `add_argument` calls
    functions: dict[str, cst.FunctionDef] = field(default_factory=dict)
    layer_kinds: dict[cst.Call, str] = field(default_factory=dict)
    # Where each layer call is read: its scope and statement number (`follow.Use`), so an
    # argument given by name can be followed to where its number is written.
    layer_uses: dict[cst.Call, tuple[str, int]] = field(default_factory=dict)
    # Calls of Keras's merge functions (`layers.concatenate([a, b])`) -> the kind they make.
    merge_calls: dict[cst.Call, str] = field(default_factory=dict)
    layer_imports: dict[str, cst.ImportFrom] = field(default_factory=dict)
    appends: list[AddCall] = field(default_factory=list)  # `name.append(<call>)`
    flag_defines: list[cst.Call] = field(default_factory=list)  # absl DEFINE_integer/float
    compiles: list[CompileCall] = field(default_factory=list)
    optimizer_kinds: dict[cst.Call, str] = field(default_factory=dict)  # a call -> "Adam"
    schedule_kinds: dict[cst.Call, str] = field(default_factory=dict)  # -> "ExponentialDecay"
    keras_imports: list[KerasImport] = field(default_factory=list)
    function_calls: dict[str, list[FunctionCall]] = field(default_factory=dict)  # by name
    # Classes of the script that subclass a Keras layer: marker -> (canonical kind, base code).
    layer_subclasses: dict[str, tuple[str, str]] = field(default_factory=dict)
    layer_bases: dict[cst.Call, str] = field(default_factory=dict)  # a subclass call -> base code
    model_subclasses: list[str] = field(default_factory=list)  # `class Net(keras.Model)` names
    model_classes: dict[str, ModelClass] = field(default_factory=dict)  # by marker
    builds: list[FitCall] = field(default_factory=list)  # `model.build(shape)`, as fits are
    # id(node) -> parent for the nodes the walk passed (imports excepted): lets the engine find
    # the path to an edit without walking the tree again.
    parent_of: dict[int, cst.CSTNode] = field(default_factory=dict)

    def last_assignment(self, scope: str, name: str, before: int) -> Assignment | None:
        """The last plain `name = ...` in `scope` that comes before statement number `before`."""
        found = None
        for assignment in self.assignments:
            if assignment.order >= before:
                break
            if (
                assignment.scope == scope
                and isinstance(assignment.target, cst.Name)
                and assignment.target.value == name
            ):
                found = assignment
        return found
