"""larger_kernel: widen a convolution's kernel, 3 -> 5 -> 7 (seed 002's second move); a 1-D
one 3 -> 5 -> 9 -> 15, or in larger steps far from the target (3 -> 9)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import libcst as cst

from mutator.engine import shapes
from mutator.engine.callargs import integer, literal_int, literal_ints, literal_str
from mutator.engine.candidate import Candidate, Edit, Proposal, Replace, Skip
from mutator.engine.keras_names import CONV_KINDS, spatial_rank
from mutator.engine.model_view import Layer, ModelView
from rules._rule import Example, Road, WarmMapping
from rules._style import in_model

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Conv2D\n"
_IMPORTS_1D = "from keras.models import Sequential\nfrom keras.layers import Conv1D\n"


@dataclass(frozen=True)
class LargerKernel:
    """Grow a Conv layer's kernel by `step` in every dimension, up to `max_kernel`; a 1-D
    kernel's span (its length less one) is multiplied by `span` instead (2: k -> 2k - 1), up
    to `max_kernel_1d`.

    Why: a larger receptive field sees larger patterns. A 1-D kernel's taps are its length, a
    2-D one's its area: 7 taps in a row see less of a signal than 7x7 do of an image, and 1-D
    models commonly read 9 to 15 samples at once, so a 1-D kernel grows by its own length.
    `span` is the setting the search's adaptive steps scale (`step_setting`): far from the
    target a 1-D kernel of 3 goes to 9 in one trial, not in two (a 1-D CNN on noisy waves at
    0.71 of a 0.85 target: kernel 5, 0.78; kernel 9, 0.81). A 2-D kernel keeps its step: its
    cap (7) is one or two steps away.
    Safety: stops where the kernel would not fit the feature map it reads (when the input shape
    is written), and at its cap otherwise.
    """

    step: int = 2
    max_kernel: int = 7
    max_kernel_1d: int = 15
    span: int = 2

    name: ClassVar[str] = "larger_kernel"
    road: ClassVar[Road] = "capacity"
    step_setting: ClassVar[str | None] = "span"
    warm: ClassVar[WarmMapping] = "transfer"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = (
        "grow a Conv layer's kernel (3 -> 5 -> 7; 1-D: 3 -> 5 -> 9 -> 15), within the input size"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _IMPORTS
            + "model = Sequential()\nmodel.add(Conv2D(32, (3, 3), input_shape=(28, 28, 1)))\n",
            _IMPORTS
            + "model = Sequential()\nmodel.add(Conv2D(32, (5, 5), input_shape=(28, 28, 1)))\n",
        ),
        Example(
            "from keras.models import Sequential\nfrom keras.layers import Convolution2D\n"
            "model = Sequential()\nmodel.add(Convolution2D(32, 3, 3, input_shape=(28, 28, 1)))\n",
            "from keras.models import Sequential\nfrom keras.layers import Convolution2D\n"
            "model = Sequential()\nmodel.add(Convolution2D(32, 5, 5, input_shape=(28, 28, 1)))\n",
        ),
        Example(
            "import tensorflow as tf\nmodel = tf.keras.Sequential([tf.keras.layers.Conv1D(8, kernel_size=3)])\n",
            "import tensorflow as tf\nmodel = tf.keras.Sequential([tf.keras.layers.Conv1D(8, kernel_size=5)])\n",
        ),
        Example(
            _IMPORTS_1D + "model = Sequential()\nmodel.add(Conv1D(16, 5, input_shape=(128, 1)))\n",
            _IMPORTS_1D + "model = Sequential()\nmodel.add(Conv1D(16, 9, input_shape=(128, 1)))\n",
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        # a 7x7 kernel on a 6x6 input would not fit
        _IMPORTS + "model = Sequential()\nmodel.add(Conv2D(8, 5, input_shape=(6, 6, 1)))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(Conv2D(8, 7))\n",
        _IMPORTS + "model = Sequential()\nmodel.add(Conv2D(8, size))\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        proposals: list[Proposal] = []
        ops = shapes.model_ops(view)
        for layer in view.layers_of(CONV_KINDS):
            proposal = self._propose_one(view, layer, ops)
            if isinstance(proposal, Candidate) and not _keeps_size(layer):
                conflict = shapes.size_conflict(view, layer, frozenset({shapes.SPATIAL}))
                if conflict is not None:
                    reason = f"its output's height and width must stay: {conflict}"
                    proposal = Skip(self.name, layer.index, reason)
            proposals.append(proposal)
        return proposals

    def _propose_one(self, view: ModelView, layer: Layer, ops: list) -> Proposal:
        arg = layer.arg(1, "kernel_size")
        legacy = _keras1_rows_cols(layer)
        if legacy is not None:
            return self._propose_rows_cols(layer, legacy)
        if arg is None:
            return Skip(self.name, layer.index, "kernel_size not given")
        single = literal_int(arg.value)
        many = literal_ints(arg.value)
        if single is None and (many is None or None in many):
            return Skip(
                self.name, layer.index, f"kernel_size={view.code(arg.value)} is not a literal"
            )
        old = (single,) if single is not None else tuple(v for v in many if v is not None)
        new, cap = self._grown(old, spatial_rank(layer.kind))
        if new == old:
            return Skip(self.name, layer.index, f"kernel {old} is at the cap ({cap})")
        op = ops[layer.index]
        if op.kind == "window":
            trial = list(ops)
            trial[layer.index] = replace(op, window=new * (len(op.window) // len(new)))
            if shapes.fits(view, trial) is False:
                return Skip(
                    self.name,
                    layer.index,
                    f"a kernel of {_fmt(new)} would not fit the feature map at layer {layer.index}",
                )
        edits: tuple[Edit, ...]
        if single is not None:
            edits = (Replace(arg.value, integer(new[0])),)
        else:
            assert isinstance(arg.value, (cst.Tuple, cst.List))
            edits = tuple(
                Replace(element.value, integer(value))
                for element, value in zip(arg.value.elements, new, strict=True)
            )
        return Candidate(
            self.name,
            layer.index,
            {"kernel": [list(old), list(new)]},
            f"layer {layer.index} ({layer.written_as}{in_model(layer)}): kernel {_fmt(old)} -> {_fmt(new)}",
            edits,
        )

    def _grown(self, old: tuple[int, ...], rank: int | None) -> tuple[tuple[int, ...], int]:
        """The kernel one step larger, and the cap it stops at."""
        if rank == 1:
            cap = self.max_kernel_1d
            grown = (max(k + self.step, self.span * (k - 1) + 1) for k in old)
            return tuple(min(k, cap) for k in grown), cap
        return tuple(min(k + self.step, self.max_kernel) for k in old), self.max_kernel

    def _propose_rows_cols(self, layer: Layer, args: tuple[cst.Arg, cst.Arg]) -> Proposal:
        """Keras 1's `Convolution2D(nb_filter, nb_row, nb_col)`: both numbers are the kernel."""
        old = tuple(literal_int(arg.value) or 0 for arg in args)
        new = tuple(min(k + self.step, self.max_kernel) for k in old)
        if new == old:
            return Skip(self.name, layer.index, f"kernel {old} is at the cap ({self.max_kernel})")
        return Candidate(
            self.name,
            layer.index,
            {"kernel": [list(old), list(new)]},
            f"layer {layer.index} ({layer.written_as}{in_model(layer)}): "
            f"kernel {_fmt(old)} -> {_fmt(new)} (Keras 1 nb_row, nb_col)",
            tuple(Replace(arg.value, integer(value)) for arg, value in zip(args, new, strict=True)),
        )


def _keras1_rows_cols(layer: Layer) -> tuple[cst.Arg, cst.Arg] | None:
    """`Convolution2D(4, 3, 3)`: Keras 1 (and Keras 2's legacy support) read the two numbers
    after the filters as the kernel's rows and columns, not as a kernel and strides."""
    if not layer.written_as.endswith("Convolution2D") or layer.call is None:
        return None
    rows, cols = layer.arg(1), layer.arg(2)
    if rows is None or cols is None or rows.keyword is not None or cols.keyword is not None:
        return None
    if literal_int(rows.value) is None or literal_int(cols.value) is None:
        return None
    return rows, cols


def _keeps_size(layer: Layer) -> bool:
    """A larger kernel leaves the output's size as it is under padding "same" (or "causal")."""
    padding = layer.arg(3, "padding", "border_mode")
    return padding is not None and literal_str(padding.value) in ("same", "causal")


def _fmt(kernel: tuple[int, ...]) -> str:
    return "x".join(str(k) for k in kernel)
