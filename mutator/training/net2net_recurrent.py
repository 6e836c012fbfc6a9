"""Net2WiderNet for recurrent layers: SimpleRNN, GRU and LSTM, alone or inside Bidirectional.

A recurrent cell's weights are blocks, one per gate (LSTM: i, f, c, o; GRU: z, r, h; SimpleRNN:
one): the kernel is (inputs, gates * units), the recurrent kernel (units, gates * units), the bias
(gates * units,), or (2, gates * units) for a GRU with `reset_after`. A new unit copies, in every
gate, the columns of the unit it copies. The recurrent kernel's rows read the previous step's
units, so they are split like a consumer's inputs: each copy's row times its share. By induction
over the time steps (the state starts at zero, every gate's non-linearity is element-wise), each
copy's state is its source's at every step, so the layer outputs the parent's units with the copies
repeated, and the next layer's inputs split as after a wider Dense: the function is preserved.

In a Bidirectional both directions widen with the same map: a "concat" merge then lays the
backward copies after the forward ones; "sum", "ave" and "mul" keep one unit per pair, a copy
of its source's pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mutator.training.net2net import ChannelMap, kind_of, split_inputs

GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}
ELEMENTWISE_MERGES = frozenset({"sum", "ave", "mul"})


@dataclass(frozen=True)
class Cell:
    """What the widening reads of a recurrent layer: its gates, units and directions."""

    kind: str
    units: int
    directions: int  # 2 inside a Bidirectional
    merge_mode: str | None  # a Bidirectional's; None for one direction

    @property
    def gates(self) -> int:
        return GATES[self.kind]


def cell_of(layer: Any) -> Cell | None:
    """The cell of a Keras SimpleRNN, GRU or LSTM, or of a Bidirectional of one; else None."""
    kind = kind_of(layer)
    if kind == "Bidirectional":
        forward = getattr(layer, "forward_layer", None)
        inner = cell_of(forward) if forward is not None else None
        if inner is None or inner.directions != 1:
            return None
        return Cell(inner.kind, inner.units, 2, layer.merge_mode)
    if kind in GATES:
        return Cell(kind, int(layer.units), 1, None)
    return None


def gate_columns(mapping: ChannelMap, gates: int) -> np.ndarray:
    """The parent's column of each child column, gate block by gate block."""
    return np.concatenate([gate * mapping.parent_units + mapping.source for gate in range(gates)])


def widen_cell(
    weights: list[np.ndarray], gates: int, outputs: ChannelMap | None, inputs: ChannelMap | None
) -> list[np.ndarray]:
    """One direction's kernel, recurrent kernel and bias: inputs split, then units copied."""
    kernel, recurrent, *bias = weights
    if inputs is not None:
        kernel = split_inputs(kernel, inputs)
    if outputs is None:
        return [kernel, recurrent, *bias]
    columns = gate_columns(outputs, gates)
    recurrent = recurrent[outputs.source][:, columns] * outputs.share[:, None]
    return [kernel[:, columns], recurrent, *(vector[..., columns] for vector in bias)]


def output_map(mapping: ChannelMap, cell: Cell) -> ChannelMap | None:
    """The map of the units the layer outputs: a Bidirectional's "concat" holds two copies."""
    if cell.directions == 1 or cell.merge_mode in ELEMENTWISE_MERGES:
        return mapping
    if cell.merge_mode != "concat":
        return None
    return ChannelMap(
        source=np.concatenate([mapping.source, mapping.source + mapping.parent_units]),
        share=np.concatenate([mapping.share, mapping.share]),
        parent_units=2 * mapping.parent_units,
    )


def widen_layer(
    weights: list[np.ndarray], cell: Cell, outputs: ChannelMap | None, inputs: ChannelMap | None
) -> list[np.ndarray]:
    """Every direction's weights (a Bidirectional lists the forward layer's, then the backward's)."""
    per_direction = len(weights) // cell.directions
    return [
        array
        for start in range(0, len(weights), per_direction)
        for array in widen_cell(weights[start : start + per_direction], cell.gates, outputs, inputs)
    ]
