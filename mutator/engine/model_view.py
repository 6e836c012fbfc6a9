"""What the locator found: the model's layers in order, how each is attached, and where epochs live.

Rules read a ModelView and never the raw tree, so the many ways people write a Keras model reduce
to one shape here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import libcst as cst

from mutator.engine.callargs import find_arg, literal_int, literal_ints

if TYPE_CHECKING:
    from mutator.engine.facts import ScriptFacts

Style = Literal["sequential-add", "sequential-list", "functional", "subclassed"]
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


@dataclass(frozen=True, eq=False)
class AttributeLayer:
    """A subclassed model's `self.<attribute> = <layer>` in `__init__`, applied in `call`.

    New layers are new attributes after `statement` and new applications after `applied`, when
    `call` applies this one as a statement of its own (`output = self.<attribute>(output)`);
    `not_chain` says why nothing can be inserted after it when it does not.
    """

    statement: cst.SimpleStatementLine  # the assignment in __init__
    attribute: str
    applied: cst.SimpleStatementLine | None = None
    output: str | None = None  # the name `applied` assigns
    self_names: tuple[str, str] = ("self", "self")  # the instance's name in __init__, in call
    taken: frozenset[str] = frozenset()  # the class's attribute and method names
    not_chain: str | None = None


#: The kind of a layer that is not a keras.layers class (custom, or a same-named class elsewhere).
UNKNOWN_KIND = "unknown"

Holder = AddedLayer | ListedLayer | AppliedLayer | AttributeLayer


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
    # The layer a wrapper applies (`Bidirectional(LSTM(32))`'s LSTM), so rules can reach its
    # arguments; its kind and call are its own, its place in the model is the wrapper's.
    wrapped: Layer | None = None

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


@dataclass(frozen=True)
class ModelInput:
    """A `keras.Input(...)` a functional model takes: the name it is bound to, and its shape."""

    name: str | None
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True, eq=False)
class Flow:
    """Which layers of a functional model take which tensors, by index into `ModelView.layers`.

    `reads[i]`: the layers whose outputs layer i takes, in its arguments' order; `reads_inputs[i]`:
    the model inputs it takes (indices into `inputs`); `outputs`: the layers whose outputs are the
    model's. `unread`: layers that also take a tensor we cannot read (`a + b`, a function's
    parameter); `opaque`: layers whose output code we cannot read also takes, so its shape must
    stay as it is.
    """

    reads: tuple[tuple[int, ...], ...]
    reads_inputs: tuple[tuple[int, ...], ...]
    inputs: tuple[ModelInput, ...]
    outputs: tuple[int, ...]
    unread: frozenset[int] = frozenset()
    opaque: frozenset[int] = frozenset()


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


# Where a training setting is defined, as for epochs; "pipeline": fit takes a tf.data.Dataset or a
# generator, whose batches are made where it is built.
BatchSizeKind = Literal[EpochsKind, "pipeline"]


@dataclass(frozen=True, eq=False)
class BatchSizeSite:
    """Where the batch size of the trained model's `fit` lives: `node` is the Integer to replace;
    for kind "default" (not written: Keras takes 32) it is None and `fit_call` gets the keyword."""

    kind: BatchSizeKind
    value: int | None
    node: cst.BaseExpression | None
    fit_call: cst.Call
    detail: str
    names: tuple[str, ...] = ()  # as EpochsSite.names


@dataclass(frozen=True, eq=False)
class OptimizerSpelling:
    """How a new optimizer object is written where the model is compiled: `callee`
    (`keras.optimizers.Adam`, `tf.keras.optimizers.Adam`, `Adam`) and, when the script must
    import it first, `import_line` to add after `anchor`; or `why` it cannot be written."""

    callee: str | None
    import_line: str | None = None
    anchor: cst.SimpleStatementLine | None = None
    why: str = ""


@dataclass(frozen=True, eq=False)
class OptimizerSite:
    """The optimizer the trained model is compiled with, and where its learning rate lives.

    `kind` says where the rate is defined, as for epochs. "default" is a rate not written (a
    string, `optimizer="adam"`; an object without one; no optimizer at all): `learning_rate` is
    then that optimizer's own default, `node` is None, and the rate is written into
    `optimizer_call` as a keyword or, when there is no object, an object spelled `spelling`
    replaces `written` (or is given to `compile_call`). A schedule's `initial_learning_rate` is
    the rate when the optimizer is given a schedule (`schedule` names it).
    """

    kind: EpochsKind
    optimizer: str | None  # the canonical class, "Adam", "SGD"; None when it cannot be told
    learning_rate: float | None
    node: cst.BaseExpression | None  # the number to replace (the expression, for "expression")
    compile_call: cst.Call | None
    detail: str
    written: cst.BaseExpression | None = None  # `optimizer=` as compile gets it; None: not given
    optimizer_call: cst.Call | None = None  # the optimizer's constructor, when it is an object
    schedule: str | None = None
    names: tuple[str, ...] = ()  # as EpochsSite.names
    spelling: OptimizerSpelling | None = None


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
    optimizer: OptimizerSite | None = None  # None: the model is neither compiled nor trained
    batch_size: BatchSizeSite | None = None  # None: no fit call trains it
    # A functional model's graph; None for a chain, where each layer takes the one before it.
    flow: Flow | None = None
    # The script's facts, to follow a layer argument given by name (`layer_args`).
    facts: ScriptFacts | None = field(default=None, repr=False)

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def layers_of(self, kinds: frozenset[str] | set[str]) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind in kinds]

    # -- neighbours in the data flow (in a chain, the layers before and after in order) --------
    def sources(self, layer: Layer) -> tuple[Layer, ...]:
        """The layers whose outputs `layer` takes."""
        if self.flow is None:
            return (self.layers[layer.index - 1],) if layer.index > 0 else ()
        return tuple(self.layers[i] for i in self.flow.reads[layer.index])

    def readers(self, layer: Layer) -> tuple[Layer, ...]:
        """The layers that take `layer`'s output."""
        if self.flow is None:
            following = layer.index + 1
            return (self.layers[following],) if following < len(self.layers) else ()
        reads = self.flow.reads
        return tuple(other for other in self.layers if layer.index in reads[other.index])

    def previous_layer(self, layer: Layer) -> Layer | None:
        """The layer whose output `layer` takes, when it takes nothing else; else None."""
        found = self.sources(layer)
        flow = self.flow
        if flow is not None and (flow.reads_inputs[layer.index] or layer.index in flow.unread):
            return None
        return found[0] if len(found) == 1 else None

    def next_layer(self, layer: Layer) -> Layer | None:
        """The layer that takes `layer`'s output, when it is the only one; else None."""
        found = self.readers(layer)
        return found[0] if len(found) == 1 else None

    def is_output(self, layer: Layer) -> bool:
        if self.flow is None:
            return layer.index == len(self.layers) - 1
        return layer.index in self.flow.outputs

    def downstream(self, layer: Layer) -> list[Layer]:
        """Every layer that `layer`'s output reaches, in model order."""
        reached = {layer.index}
        for other in self.layers[layer.index + 1 :]:
            if any(source.index in reached for source in self.sources(other)):
                reached.add(other.index)
        return [other for other in self.layers if other.index in reached - {layer.index}]
