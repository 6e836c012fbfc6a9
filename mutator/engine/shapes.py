"""The spatial size of the feature map after each layer, when the input shape is written down.

Rules use it to stay within what the model allows: no kernel larger than its input, no pooling
below 1x1. Only literal arguments are understood; anything else makes the answer "unknown" (None),
and the rules then fall back to their own caps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mutator.engine import keras_names
from mutator.engine.callargs import literal_str
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
    """True if no feature map shrinks below 1, False if one does, None when it cannot be known."""
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


def model_ops(view: ModelView) -> list[SpatialOp]:
    return [spatial_op(layer) for layer in view.layers]
