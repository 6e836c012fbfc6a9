"""smaller_batch: more, noisier steps per epoch, for a model that learns too slowly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mutator.engine.candidate import Proposal
from mutator.engine.model_view import ModelView
from rules._rule import Example, Road, WarmMapping
from rules._training import batch_change

_IMPORTS = "from keras.models import Sequential\nfrom keras.layers import Dense\n"
_MODEL = _IMPORTS + "model = Sequential()\nmodel.add(Dense(10, input_dim=64))\n"
_COMPILE = "model.compile(optimizer='adam', loss='mse')\n"


@dataclass(frozen=True)
class SmallerBatch:
    """Divide the batch size by `factor`, not below `min_batch`.

    Why: with a small data set, a smaller batch makes more updates per epoch, and its noisier
    gradients help a loss that has stalled: the cheapest way to learn faster in the same epochs.
    Safety: the size is changed where it is defined (a literal, a constant, a variable, a
    parameter, argparse or absl default, a defaults dict); when fit has none, Keras's 32 is
    written as 16; a name that also sets a layer's arguments is left alone; a fit that takes a
    tf.data.Dataset or a generator is skipped, as its batches are made in the pipeline.
    """

    factor: float = 2.0
    min_batch: int = 8

    name: ClassVar[str] = "smaller_batch"
    road: ClassVar[Road] = "faster"
    step_setting: ClassVar[str | None] = "factor"
    warm: ClassVar[WarmMapping] = "retrain"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = "halve the batch size (down to 8) where it is defined; 32 if unset"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _MODEL + _COMPILE + "model.fit(x, y, epochs=5, batch_size=128)\n",
            _MODEL + _COMPILE + "model.fit(x, y, epochs=5, batch_size=64)\n",
        ),
        Example(
            _MODEL + _COMPILE + "model.fit(x, y, epochs=5)\n",
            _MODEL + _COMPILE + "model.fit(x, y, epochs=5, batch_size=16)\n",
        ),
        Example(
            "BATCH_SIZE = 20  # fits in memory\n"
            + _MODEL
            + _COMPILE
            + "model.fit(x, y, BATCH_SIZE, 5)\n",
            "BATCH_SIZE = 10  # fits in memory\n"
            + _MODEL
            + _COMPILE
            + "model.fit(x, y, BATCH_SIZE, 5)\n",
        ),
        Example(
            "defaults = {'batch_size': 64, 'lr': 0.1}\n"
            + _MODEL
            + _COMPILE
            + "model.fit(x, y, batch_size=config.batch_size)\n",
            "defaults = {'batch_size': 32, 'lr': 0.1}\n"
            + _MODEL
            + _COMPILE
            + "model.fit(x, y, batch_size=config.batch_size)\n",
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _MODEL,
        _MODEL + _COMPILE + "model.fit(x, y, batch_size=8)\n",
        _MODEL + _COMPILE + "model.fit(train_ds, epochs=3)\n",  # a tf.data.Dataset
        _MODEL + _COMPILE + "ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)\n"
        "model.fit(ds, validation_data=val, epochs=3)\n",
        _MODEL + _COMPILE + "model.fit(x, y, batch_size=len(x) // 10)\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        def halved(old: int) -> int:
            return old if old <= self.min_batch else max(int(old / self.factor), self.min_batch)

        return batch_change(self.name, view, halved, f"floor ({self.min_batch})")
