"""Warm start: a child script's model begins from its parent's trained weights, not from scratch.

A child differs from its parent by one rule's change, so most of what the parent learnt still
applies. `transfer_weights` aligns the layers by class (`net2net.align`), so that layers a rule
inserted stand out, and gives each child layer the parent's weights in the form its shape needs:

- same shapes: copied as they are;
- more units or filters (Conv1D/2D/3D, Dense): Net2WiderNet (Chen, Goodfellow and Shlens, 2016,
  "Net2Net: Accelerating Learning via Knowledge Transfer"). New units copy the incoming weights of
  random existing ones, and the layer that consumes them (through activations, pooling, Dropout,
  Flatten, global pooling; BatchNormalization's per-channel parameters are copied along) has its
  input weights from each copied unit split among the copies. Net2Net over a plain re-init
  because the child then starts where the parent ended instead of re-learning it;
- more units in a recurrent layer (SimpleRNN, GRU, LSTM, alone or in a Bidirectional):
  Net2WiderNet gate by gate, the recurrent kernel's rows split like a consumer's inputs
  (`net2net_recurrent`);
- a larger kernel: the parent's kernel centred in zeros;
- an inserted Conv or Dense: an identity, when its kernel, padding and activation allow one.

What is function-preserving (`Transfer.function_preserved`, checked in the tests on `predict`):
copies, widening (with element-wise activations), kernel growth under padding "same" and stride
1, identities (linear, or relu on a non-negative input) and inserted Dropout. What is not: a
"valid" kernel growth or an inserted pooling (the spatial size changes, so the Dense after the
Flatten starts "fresh", from the child's own initialisation), any other fresh layer, a changed
setting. The widening split is uneven on purpose: random positive shares that sum to 1 keep the
sum, so the function, but give the copies different gradients; equal halves would keep them
copies forever. (With Adam the first step is sign-like and moves the copies alike; they part from
the second step on. With SGD they part at once.)

Layers are paired in `model.layers` order, but the map follows the child's graph (`_Graph`):
widened units reach the layers that take them, in a chain or in a branch of a functional model,
not the next layer in that order (which may be another branch's); a Concatenate on the last axis
passes them on, at their place among the other inputs' units; any other merge stops them (its
inputs must keep one shape, so the function changes). The child is left untouched ("cold") when
the models cannot be mapped soundly: different input shapes, a subclassed model, a custom layer
whose weight shapes changed, or no layer that could take any parent weight.

Keras is imported only inside functions: the harness imports this module only in Keras trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mutator.training import net2net, net2net_recurrent
from mutator.training.net2net import ChannelMap, LayerFacts
from mutator.training.net2net_recurrent import Cell

# The words of `Transfer.layers`; an entry joins several with " + " ("inputs split + widened").
COPIED, WIDENED, SPLIT, MAPPED = "copied", "widened", "inputs split", "channels mapped"
ENLARGED, IDENTITY, FRESH = "kernel enlarged", "identity", "fresh"
FROM_PARENT = (COPIED, WIDENED, SPLIT, MAPPED, ENLARGED)
NET2NET = (WIDENED, SPLIT, MAPPED, ENLARGED, IDENTITY)


@dataclass(frozen=True)
class Transfer:
    """What `transfer_weights` did to the child.

    `layers` has one entry per child layer with weights, in `model.layers` order: "copied" (the
    parent's weights as they are), "widened" (more units, Net2Net copies), "inputs split" (the
    consumer of widened units), "channels mapped" (BatchNormalization after widened units),
    "kernel enlarged" (centred in zeros), "identity" (an inserted layer that passes its input
    through), "fresh" (the child's own initialisation); several joined by " + ". Empty when cold.
    """

    mode: str  # "warm" | "cold"
    why: str
    function_preserved: bool
    layers: tuple[str, ...]


class _Cold(Exception):
    """Why the child must train from scratch; raised before any weight of the child is set."""


def transfer_weights(parent: Any, child: Any, *, seed: int = 0) -> Transfer:
    """Set the built `child`'s weights from `parent`'s in place, or leave it untouched (cold).

    `seed` picks which units a widening copies, so a replayed trial maps the same way.
    """
    try:
        if reason := net2net.unmappable(parent, child):
            raise _Cold(reason)
        plan = _Plan(np.random.default_rng(seed), _Graph(child))
        for old, new in net2net.align(_layers(parent), _layers(child)):
            plan.step(old, new)
        plan.finish()
        if not any(part in FROM_PARENT for entry in plan.entries for part in entry.split(" + ")):
            raise _Cold("no layer of the child can take any of the parent's weights")
        for layer, arrays in plan.assignments:  # all checked before any is set: cold is untouched
            if [a.shape for a in arrays] != [tuple(w.shape) for w in layer.weights]:
                raise _Cold(f"the mapping of {layer.name} does not fit it (a warm-start bug)")
    except _Cold as cold:
        return Transfer(mode="cold", why=f"cold: {cold}", function_preserved=False, layers=())
    for layer, arrays in plan.assignments:
        layer.set_weights(
            [np.asarray(a, dtype=w.dtype) for a, w in zip(arrays, layer.weights, strict=True)]
        )
    return Transfer("warm", plan.why(), plan.preserved, tuple(plan.entries))


def copy_optimizer_state(parent: Any, child: Any, *, keep_learning_rate: bool = False) -> str | None:
    """Give the child's optimizer the parent's variables (moments, iterations, learning rate).

    For a "more epochs" child, whose architecture is the parent's: it then goes on as the parent
    would have. `keep_learning_rate`: the child's own learning rate stays (a child whose change
    is its learning rate). Matched by order and shape; None when copied, else one line saying
    why not.
    """
    old, new = getattr(parent, "optimizer", None), getattr(child, "optimizer", None)
    if old is None:
        return "the parent has no optimizer (it was loaded or built without compile)"
    if new is None:
        return "the child has no optimizer (compile it before the copy)"
    if type(old) is not type(new):
        return f"the optimizer changed: {type(old).__name__} -> {type(new).__name__}"
    if not old.built:
        return "the parent's optimizer holds no state (it never took a step)"
    if not new.built:
        new.build(child.trainable_variables)
    sources, targets = old.variables, new.variables
    if len(sources) != len(targets):
        return f"the parent's optimizer has {len(sources)} variables, the child's {len(targets)}"
    for source, target in zip(sources, targets, strict=True):
        if tuple(source.shape) != tuple(target.shape):
            return (
                f"optimizer variable {target.path} is {tuple(source.shape)} in the parent, "
                f"{tuple(target.shape)} in the child"
            )
    for source, target in zip(sources, targets, strict=True):
        if keep_learning_rate and target.path.rsplit("/", 1)[-1] == "learning_rate":
            continue
        target.assign(np.asarray(source))
    return None


def _layers(model: Any) -> list[LayerFacts]:
    return [LayerFacts.of(layer) for layer in model.layers if type(layer).__name__ != "InputLayer"]


class _Graph:
    """Which layers of a built Keras model take which layers' outputs (Keras 3's nodes).

    `sources` is None for a layer applied more than once (shared), or when the model keeps no
    graph: the plan then takes the layer before it in order, as in a chain.
    """

    def __init__(self, model: Any) -> None:
        self.taken: dict[int, list[Any] | None] = {}
        for layer in model.layers:
            try:
                nodes = layer._inbound_nodes
                parents = [node.operation for node in nodes[0].parent_nodes]
                self.taken[id(layer)] = parents if len(nodes) == 1 else None
            except (AttributeError, IndexError, TypeError):
                self.taken[id(layer)] = None

    def sources(self, layer: Any) -> list[Any] | None:
        return self.taken.get(id(layer))


class _Plan:
    """The walk over aligned layers: what each child layer gets, and what flows out of it.

    While a layer is handled, `mapping` is the Net2Net map of the widened units it takes (None
    when there are none), then the map of its own output; `non_negative` says its input, then
    its output, cannot be negative. `flowing` keeps each layer's map until the layers that take
    its output have been handled.
    """

    def __init__(self, rng: np.random.Generator, graph: _Graph) -> None:
        self.rng = rng
        self.graph = graph
        self.mapping: ChannelMap | None = None
        self.widened = ""  # the layer `mapping` comes from
        self.non_negative = False
        self.flowing: dict[int, tuple[ChannelMap, str]] = {}  # id(child layer) -> its map
        self.positive: dict[int, bool] = {}  # id(child layer) -> its output is non-negative
        self.taken: set[int] = set()  # ids of child layers whose output a later layer took
        self.last: Any = None  # the child layer handled last
        self.preserved = True
        self.entries: list[str] = []
        self.events: list[str] = []
        self.copied = 0
        self.assignments: list[tuple[Any, list[np.ndarray]]] = []

    def step(self, old: LayerFacts | None, new: LayerFacts | None) -> None:
        if new is None:
            self._changed(f"{old.name if old else '?'} removed")
            return
        self._take(new)
        if old is None:
            self._inserted(new)
        else:
            self._matched(old, new)
        self.non_negative = net2net.non_negative_after(new.layer, self.non_negative)
        if self.mapping is not None:
            self.flowing[id(new.layer)] = (self.mapping, self.widened)
        self.positive[id(new.layer)] = self.non_negative
        self.last = new.layer

    def finish(self) -> None:
        """Widened units no layer consumed change the model's output."""
        for key, (_, widened) in self.flowing.items():
            if key not in self.taken:
                self._changed(f"the new units of {widened} reach the output unsplit")

    def _take(self, new: LayerFacts) -> None:
        """Set `mapping` and `non_negative` from the outputs `new` takes."""
        sources = self.graph.sources(new.layer)
        if sources is None:
            sources = [self.last] if self.last is not None else []
        self.taken |= {id(source) for source in sources}
        self.non_negative = bool(sources) and all(self.positive.get(id(s), False) for s in sources)
        maps = [(source, self.flowing.get(id(source))) for source in sources]
        pending = [(source, found) for source, found in maps if found is not None]
        self.mapping, self.widened = None, ""
        if not pending:
            return
        if len(sources) == 1:
            self.mapping, self.widened = pending[0][1]
            return
        if new.kind == "Concatenate":
            joined = _concatenated(new.layer, maps)
            if joined is not None:
                self.mapping = joined
                self.widened = " + ".join(widened for _, (_, widened) in pending)
                return
        for _, (_, widened) in pending:
            self._changed(f"the new units of {widened} reach {new.name} unsplit")

    def why(self) -> str:
        used = {part for entry in self.entries for part in entry.split(" + ")}
        copied = [f"{self.copied} layer{'' if self.copied == 1 else 's'} copied"]
        events = ", ".join(self.events + (copied if self.copied else []))
        status = "function preserved" if self.preserved else "function changed"
        return f"{'net2net' if used & set(NET2NET) else 'copy'}: {events} ({status})"

    def _inserted(self, new: LayerFacts) -> None:
        if not new.shapes:
            if new.kind not in net2net.INFERENCE_IDENTITY:  # Dropout & co. act in training only
                self._changed(f"{new.name} inserted")
            if not net2net.keeps_channels(new.layer):
                self._stop(new.name)
            return
        identity = net2net.identity_weights(new, self.non_negative)
        if identity is None or self.mapping is not None:
            self._fresh(new, "inserted")
            return
        self._assign(new, IDENTITY, identity)
        self.events.append(f"{new.name} inserted as identity")

    def _matched(self, old: LayerFacts, new: LayerFacts) -> None:
        if old.essence != new.essence:
            self._changed(f"{new.name} has other settings")
        if not new.shapes and not old.shapes:
            # A Concatenate passes on the map `_take` made of its inputs' maps.
            if not net2net.keeps_channels(new.layer) and new.kind != "Concatenate":
                self._stop(new.name)
            return
        if not net2net.is_keras_layer(new.layer) and old.shapes != new.shapes:
            raise _Cold(
                f"custom layer {new.name} ({type(new.layer).__name__}) changed its weight shapes "
                f"{_listed(old.shapes)} -> {_listed(new.shapes)}"
            )
        if new.kind in net2net.KERNEL_LAYERS and getattr(new.layer, "groups", 1) == 1:
            self._kernel_layer(old, new)
        elif (cell := net2net_recurrent.cell_of(new.layer)) is not None:
            self._recurrent_layer(old, new, cell)
        elif new.kind == "BatchNormalization" and self.mapping is not None:
            self._channels(old, new, self.mapping)
        elif old.shapes == new.shapes:
            self._stop(new.name)
            self._assign(new, COPIED, old.layer.get_weights())
        else:
            self._fresh(new, _reshaped(old, new))

    def _kernel_layer(self, old: LayerFacts, new: LayerFacts) -> None:
        """Conv or Dense: split the inputs, centre the kernel, widen the outputs, as needed."""
        parent, child_kernel = old.layer.get_weights(), new.shapes[0]
        if len(parent) != len(new.shapes) or len(parent) not in (1, 2):
            self._fresh(new, _reshaped(old, new))
            return
        kernel, bias = parent[0], parent[1] if len(parent) == 2 else None
        if kernel.ndim != len(child_kernel):
            self._fresh(new, _reshaped(old, new))
            return
        parts: list[str] = []
        inputs = kernel.shape[-2], child_kernel[-2]
        mapping, self.mapping = self.mapping, None
        if mapping is not None:
            mapping = mapping.for_inputs(*inputs, dense=kernel.ndim == 2)
            if mapping is None:
                self._fresh(new, f"input {inputs[0]}->{inputs[1]}")
                return
            kernel = net2net.split_inputs(kernel, mapping)
            parts.append(SPLIT)
            self.events.append(f"{new.name} inputs split")
        elif inputs[0] != inputs[1]:
            self._fresh(new, f"input {inputs[0]}->{inputs[1]}")
            return
        spatial = kernel.shape[:-2], tuple(child_kernel[:-2])
        if spatial[0] != spatial[1]:
            if not net2net.can_centre(*spatial):
                self._fresh(new, f"kernel {_size(spatial[0])}->{_size(spatial[1])}")
                return
            kernel = net2net.centre_kernel(kernel, spatial[1])
            parts.append(ENLARGED)
            self._enlarged(new, *spatial)
        outputs = kernel.shape[-1], child_kernel[-1]
        if outputs[1] < outputs[0]:
            self._fresh(new, f"output {outputs[0]}->{outputs[1]}")
            return
        if outputs[1] > outputs[0]:
            last = getattr(new.layer, "data_format", "channels_last") != "channels_first"
            self.mapping = net2net.widen(*outputs, self.rng, channels_last=last)
            self.widened = new.name
            kernel, bias = net2net.widen_outputs(kernel, bias, self.mapping)
            parts.append(WIDENED)
            self.events.append(f"layer {new.name} widened {outputs[0]}->{outputs[1]}")
            if (activation := net2net.activation_name(new.layer)) in net2net.NOT_ELEMENTWISE:
                self._changed(f"{new.name}'s {activation} mixes its units")
            elif activation is None:
                self._changed(f"{new.name}'s activation is unknown")
        self._assign(new, " + ".join(parts) or COPIED, [kernel] if bias is None else [kernel, bias])

    def _recurrent_layer(self, old: LayerFacts, new: LayerFacts, cell: Cell) -> None:
        """SimpleRNN, GRU, LSTM or a Bidirectional of one: split the inputs, widen gate by gate."""
        parent, before = old.layer.get_weights(), net2net_recurrent.cell_of(old.layer)
        mapping, self.mapping = self.mapping, None
        if before is None or (before.kind, before.directions) != (cell.kind, cell.directions):
            self._fresh(new, _reshaped(old, new))
            return
        if cell.units < before.units:
            self._fresh(new, f"units {before.units}->{cell.units}")
            return
        parts: list[str] = []
        inputs = parent[0].shape[0], new.shapes[0][0]
        if mapping is not None:
            mapping = mapping.for_inputs(*inputs, dense=False)
            if mapping is None:
                self._fresh(new, f"input {inputs[0]}->{inputs[1]}")
                return
            parts.append(SPLIT)
            self.events.append(f"{new.name} inputs split")
        elif inputs[0] != inputs[1]:
            self._fresh(new, f"input {inputs[0]}->{inputs[1]}")
            return
        outputs = flowing = None
        if cell.units > before.units:
            outputs = net2net.widen(before.units, cell.units, self.rng)
            flowing = net2net_recurrent.output_map(outputs, cell)
            if flowing is None:
                self._fresh(new, f"merge mode {cell.merge_mode!r}")
                return
            parts.append(WIDENED)
        arrays = net2net_recurrent.widen_layer(parent, cell, outputs, mapping)
        if [a.shape for a in arrays] != list(new.shapes):
            self._fresh(new, _reshaped(old, new))
            return
        if flowing is not None:
            self.mapping, self.widened = flowing, new.name
            self.events.append(f"layer {new.name} widened {before.units}->{cell.units}")
        self._assign(new, " + ".join(parts) or COPIED, arrays)

    def _enlarged(self, new: LayerFacts, before: tuple[int, ...], after: tuple[int, ...]) -> None:
        same = new.layer.padding == "same" and all(step == 1 for step in new.layer.strides)
        self.preserved = self.preserved and same
        change = "" if same else f" (padding {new.layer.padding}: its output shape changes)"
        self.events.append(f"{new.name} kernel {_size(before)}->{_size(after)} centred{change}")

    def _channels(self, old: LayerFacts, new: LayerFacts, mapping: ChannelMap) -> None:
        """Per-channel parameters after widened units: each copy gets its source's values."""
        vectors = old.layer.get_weights()
        fits = all(v.ndim == 1 and len(v) == mapping.parent_units for v in vectors)
        if not fits or any(shape != (mapping.child_units,) for shape in new.shapes):
            self._fresh(new, _reshaped(old, new))
            return
        self._assign(new, MAPPED, net2net.map_channels(vectors, mapping))
        self.events.append(f"{new.name} channels mapped")

    def _assign(self, new: LayerFacts, entry: str, arrays: list[np.ndarray]) -> None:
        self.entries.append(entry)
        self.copied += entry == COPIED
        self.assignments.append((new.layer, arrays))

    def _fresh(self, new: LayerFacts, reason: str) -> None:
        self._stop(new.name)
        self.entries.append(FRESH)
        self._changed(f"{new.name} fresh ({reason})")

    def _changed(self, event: str) -> None:
        """Something the parent's function does not survive."""
        self.preserved = False
        self.events.append(event)

    def _stop(self, at: str) -> None:
        """A pending Net2Net map cannot go past `at`: the new units reach it as they are."""
        if self.mapping is not None:
            self._changed(f"the new units of {self.widened} reach {at} unsplit")
        self.mapping = None


def _concatenated(
    layer: Any, maps: list[tuple[Any, tuple[ChannelMap, str] | None]]
) -> ChannelMap | None:
    """The map of a Concatenate on the last axis of its inputs, some of them widened: each
    widened input's units where the parent had them, the others' as they are."""
    try:
        rank = len(layer.output.shape)
        widths = [int(source.output.shape[-1]) for source, _ in maps]
    except (AttributeError, TypeError, ValueError):
        return None
    if layer.axis not in (-1, rank - 1):
        return None
    source, share, parent_offset, last = [], [], 0, True
    for (_, found), width in zip(maps, widths, strict=True):
        if found is None:
            source.append(np.arange(width) + parent_offset)
            share.append(np.ones(width))
            parent_offset += width
            continue
        mapping = found[0]
        if mapping.child_units != width:
            return None
        source.append(mapping.source + parent_offset)
        share.append(mapping.share)
        parent_offset += mapping.parent_units
        last = last and mapping.channels_last
    return ChannelMap(np.concatenate(source), np.concatenate(share), parent_offset, last)


def _listed(shapes: tuple[tuple[int, ...], ...]) -> str:
    return "[" + ", ".join(str(shape) for shape in shapes) + "]"


def _reshaped(old: LayerFacts, new: LayerFacts) -> str:
    return f"weights {_listed(old.shapes)} -> {_listed(new.shapes)}"


def _size(spatial: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in spatial)
