"""The spatial size of the feature map after each layer, when the input shape is written down;
and, in a functional model, where a change of a layer's output size would meet a merge.

Rules use it to stay within what the model allows: no kernel larger than its input, no pooling
below 1x1, no Add of a widened and an unchanged branch. Only literal arguments are understood;
anything else makes the answer "unknown" (None), and the rules then fall back to their own caps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import libcst as cst

from mutator.engine import keras_names
from mutator.engine.callargs import literal_int, literal_str
from mutator.engine.model_view import Layer, ModelView


@dataclass(frozen=True)
class SpatialOp:
    """What a layer does to the spatial dimensions: a window, a stride and a padding."""

    kind: str  # "window", "keep", "flatten", "unknown"
    window: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    padding: str = "valid"


def _as_tuple(value: int | tuple[int | None, ...] | None, rank: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank or any(v is None for v in value):
        return None
    return tuple(v for v in value if v is not None)


def spatial_op(layer: Layer) -> SpatialOp:
    kind = layer.kind
    if kind in keras_names.FLATTENING_KINDS or kind == "Dense":
        return SpatialOp("flatten")
    if kind in keras_names.SHAPE_PRESERVING_KINDS or kind in keras_names.INPUT_KINDS:
        return SpatialOp("keep")
    if kind in keras_names.MERGE_KINDS - {"Dot"}:
        return SpatialOp("keep")  # the inputs' height and width, which must agree
    rank = keras_names.spatial_rank(kind)
    if rank is None or layer.call is None:
        return SpatialOp("unknown")
    is_conv = kind in keras_names.CONV_KINDS
    window_pos, stride_pos, padding_pos = (1, 2, 3) if is_conv else (0, 1, 2)
    window_kw = "kernel_size" if is_conv else "pool_size"
    window_arg = layer.arg(window_pos, window_kw)
    if window_arg is None:
        window = (1,) * rank if is_conv else (2,) * rank  # conv needs a kernel; pools default to 2
    else:
        window = _as_tuple(
            layer.int_arg(window_pos, window_kw) or layer.ints_arg(window_pos, window_kw), rank
        )
    stride_arg = layer.arg(stride_pos, "strides")
    if stride_arg is None:
        strides = (1,) * rank if is_conv else window
    else:
        strides = _as_tuple(
            layer.int_arg(stride_pos, "strides") or layer.ints_arg(stride_pos, "strides"), rank
        )
    padding_arg = layer.arg(padding_pos, "padding")
    padding = "valid" if padding_arg is None else literal_str(padding_arg.value)
    if window is None or strides is None or padding not in ("valid", "same", "causal"):
        return SpatialOp("unknown")
    return SpatialOp("window", window, strides, padding)


def apply_op(size: tuple[int, ...], op: SpatialOp) -> tuple[int, ...] | None:
    """The size after `op`, None when it cannot be known."""
    if op.kind == "keep":
        return size
    if op.kind != "window" or len(op.window) != len(size):
        return None
    if op.padding in ("same", "causal"):
        return tuple(math.ceil(n / s) for n, s in zip(size, op.strides, strict=True))
    return tuple(
        (n - w) // s + 1 if n >= w else 0
        for n, w, s in zip(size, op.window, op.strides, strict=True)
    )


def input_spatial_size(view: ModelView) -> tuple[int, ...] | None:
    """Spatial dims of the input (channels last), when the first conv layer tells its rank."""
    shape = view.input_shape
    convs = view.layers_of(keras_names.CONV_KINDS)
    if shape is None or not convs:
        return None
    rank = keras_names.spatial_rank(convs[0].kind)
    if rank is None or len(shape) != rank + 1:
        return None
    dims = shape[:rank]
    if any(d is None for d in dims):
        return None
    return tuple(d for d in dims if d is not None)


def trace(view: ModelView, ops: list[SpatialOp]) -> list[tuple[int, ...] | None] | None:
    """Size after each op (None after flattening or when unknown); None if the input is unknown."""
    size: tuple[int, ...] | None = input_spatial_size(view)
    if size is None:
        return None
    sizes: list[tuple[int, ...] | None] = []
    for op in ops:
        if size is not None:
            size = None if op.kind == "flatten" else apply_op(size, op)
        sizes.append(size)
    return sizes


def fits(view: ModelView, ops: list[SpatialOp]) -> bool | None:
    """True if no feature map shrinks below 1, False if one does, None when it cannot be known.

    `ops` has one op per layer of the model (or, for a chain, with new ops inserted)."""
    if view.flow is not None and len(ops) == len(view.layers):
        return _fits_graph(view, ops, {})
    sizes = trace(view, ops)
    if sizes is None:
        return None
    flattened = False
    for op, size in zip(ops, sizes, strict=True):
        if op.kind == "flatten":
            flattened = True
        if flattened:
            continue
        if size is None:
            return None
        if min(size) < 1:
            return False
    return True


def fits_after(
    view: ModelView, ops: list[SpatialOp], after: int, new: list[SpatialOp]
) -> bool | None:
    """`fits` for the model's `ops` with `new` ops inserted after layer `after`."""
    if view.flow is not None:
        return _fits_graph(view, ops, {after: new})
    return fits(view, ops[: after + 1] + new + ops[after + 1 :])


def model_ops(view: ModelView) -> list[SpatialOp]:
    return [spatial_op(layer) for layer in view.layers]


_FLAT = "flat"  # a layer's output in `_fits_graph` once a Flatten (or a Dense) has run


def _fits_graph(
    view: ModelView, ops: list[SpatialOp], inserted: dict[int, list[SpatialOp]]
) -> bool | None:
    """`fits` along a functional model's graph: each layer works on the feature map of the first
    tensor it takes (merges need theirs to agree); `inserted` ops run after their layer."""
    flow = view.flow
    assert flow is not None
    rank = _conv_rank(view)
    sizes: list[tuple[int, ...] | str | None] = []
    for layer in view.layers:
        i = layer.index
        taken = [sizes[j] for j in flow.reads[i]]
        taken += [_spatial(flow.inputs[k].shape, rank) for k in flow.reads_inputs[i]]
        size = taken[0] if taken and i not in flow.unread else None
        for op in [ops[i], *inserted.get(i, [])]:
            if size is None or size == _FLAT:
                continue
            if op.kind == "flatten":
                size = _FLAT
            else:
                size = apply_op(size, op)
                if size is not None and min(size, default=1) < 1:
                    return False
        sizes.append(size)
    return None if any(size is None for size in sizes) else True


def _conv_rank(view: ModelView) -> int | None:
    convs = view.layers_of(keras_names.CONV_KINDS)
    return keras_names.spatial_rank(convs[0].kind) if convs else None


def _spatial(shape: tuple[int | None, ...] | None, rank: int | None) -> tuple[int, ...] | None:
    """An input's height and width (channels last), when its shape is written down."""
    if shape is None or rank is None or len(shape) != rank + 1:
        return None
    dims = shape[:rank]
    if any(d is None for d in dims):
        return None
    return tuple(d for d in dims if d is not None)


# -- what a change of size reaches in a functional model's graph --------------------------------
# What a change to a layer's output size touches: its last axis (units, filters) and its other
# axes (the height and width a kernel or a pooling changes).
LAST, SPATIAL = "last", "spatial"
# Layers that make their own output's last axis, whatever their input's.
_SIZING = (
    frozenset({"Dense", "Embedding", "Bidirectional"})
    | keras_names.CONV_KINDS
    | keras_names.RECURRENT_KINDS
)
_GLOBAL_POOLING = frozenset(k for k in keras_names.FLATTENING_KINDS if k.startswith("Global"))
ELEMENTWISE_MERGES = keras_names.MERGE_KINDS - {"Concatenate"}


def size_conflict(view: ModelView, layer: Layer, change: frozenset[str]) -> str | None:
    """Why changing the size of `layer`'s output (`LAST`: its last axis; `SPATIAL`: the others)
    would break the model, or None when nothing but layers that adapt to it takes it.

    The change is followed through the layers that pass it on (pooling, dropout, normalisation,
    Flatten, a Concatenate on the last axis) until layers that make their own size (Dense, Conv,
    recurrent layers) absorb it; a merge that needs its inputs of one shape breaks.
    """
    flow = view.flow
    if flow is None or not change:
        return None
    pending = [(layer, frozenset(change))]
    seen: set[tuple[int, frozenset[str]]] = set()
    while pending:
        at, changed = pending.pop()
        if at.index in flow.opaque:
            return (
                f"layer {at.index}'s output is also taken by code we cannot read: "
                f"its shape must stay as it is"
            )
        for reader in view.readers(at):
            if (reader.index, changed) in seen:
                continue
            seen.add((reader.index, changed))
            why = _breaks(layer, reader, changed)
            if why is not None:
                return why
            passed = _passes(reader, changed)
            if passed:
                pending.append((reader, passed))
    return None


def _breaks(layer: Layer, merge: Layer, changed: frozenset[str]) -> str | None:
    """Why `merge`, reached by the change of `layer`'s output, cannot take it; None if it can."""
    if merge.kind in ELEMENTWISE_MERGES:
        return (
            f"layer {layer.index}'s output reaches the {merge.kind} at layer {merge.index}, "
            "which needs all its inputs of one shape"
        )
    if merge.kind == "Reshape":
        return (
            f"layer {layer.index}'s output reaches the Reshape at layer {merge.index}, "
            "whose target shape is written out"
        )
    if merge.kind == "Concatenate":
        axis = concatenate_axis(merge)
        if SPATIAL in changed or axis != -1:
            where = "the last axis" if axis == -1 else f"axis {axis if axis is not None else '?'}"
            return (
                f"layer {layer.index}'s output reaches the Concatenate at layer {merge.index}, "
                f"which needs its inputs of one shape but on {where}"
            )
    return None


def _passes(reader: Layer, changed: frozenset[str]) -> frozenset[str]:
    """What is still changed after `reader`."""
    kind = reader.kind
    if kind in _SIZING:
        return changed - {LAST}
    if kind in _GLOBAL_POOLING:
        return changed - {SPATIAL}
    if kind == "Flatten":
        return frozenset({LAST})
    return changed


def width_reaches_output(view: ModelView, layer: Layer) -> str | None:
    """Why the width of `layer`'s output (its last axis: filters, units) is what the model must
    produce, or None when a layer that makes its own width takes it on every way out.

    Followed along the chain or the graph: through layers that pass the width on (pooling,
    Flatten, dropout, an Activation) to the model's output, whose width is the number of
    classes or targets, or to a Reshape, whose target shape is written out. `size_conflict`
    answers for the merges of a graph; this answers for the model's ends, in a chain too.
    """
    pending, seen = [layer], {layer.index}
    while pending:
        at = pending.pop()
        if view.is_output(at):
            if at is layer:
                return (
                    f"layer {layer.index} is the model's output: its width is the number of outputs"
                )
            return (
                f"layer {layer.index}'s width reaches the model's output at layer {at.index} "
                "unchanged: it is the number of outputs"
            )
        for reader in view.readers(at):
            if reader.index in seen:
                continue
            seen.add(reader.index)
            if reader.kind == "Reshape":
                return (
                    f"layer {layer.index}'s output reaches the Reshape at layer {reader.index}, "
                    "whose target shape is written out"
                )
            if not makes_width(reader):
                pending.append(reader)
    return None


def makes_width(layer: Layer) -> bool:
    """Whether `layer`'s output width is its own (Dense, Conv, recurrent, `TimeDistributed(Dense)`),
    whatever the width it takes."""
    if layer.kind in _SIZING:
        return True
    wrapped = layer.wrapped
    return (
        layer.kind in keras_names.WRAPPER_KINDS and wrapped is not None and wrapped.kind in _SIZING
    )


def concatenate_axis(layer: Layer) -> int | None:
    """The axis a Concatenate joins on (-1 by default, as Keras's); None when not a literal.
    The function `concatenate([a, b], axis=1)` takes its axis by keyword, the class its first
    argument."""
    function = layer.written_as.rpartition(".")[2][:1].islower()
    arg = layer.arg(None, "axis") if function else layer.arg(0, "axis")
    if arg is None:
        return -1
    value = arg.value
    if isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus):
        positive = literal_int(value.expression)
        return -positive if positive is not None else None
    return literal_int(value)
