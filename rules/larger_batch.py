"""larger_batch: fewer, smoother steps per epoch, for a model whose loss swings."""

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
class LargerBatch:
    """Multiply the batch size by `factor`, up to `max_batch`.

    Why: a training loss that oscillates from step to step follows gradients too noisy to trust;
    a larger batch averages more examples into each one (and makes an epoch faster). Safety: as
    `smaller_batch`; the size of the training set, which a batch should not exceed, is rarely
    known from the script, so only `max_batch` caps it.
    """

    factor: float = 2.0
    max_batch: int = 1024

    name: ClassVar[str] = "larger_batch"
    road: ClassVar[Road] = "steadier"
    step_setting: ClassVar[str | None] = "factor"
    warm: ClassVar[WarmMapping] = "retrain"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = (
        "double the batch size (up to 1024) where it is defined; 32 if unset"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _MODEL + _COMPILE + "model.fit(x, y, epochs=5, batch_size=16)\n",
            _MODEL + _COMPILE + "model.fit(x, y, epochs=5, batch_size=32)\n",
        ),
        Example(
            _MODEL + _COMPILE + "model.fit(\n    x,\n    y,\n    epochs=5,\n)\n",
            _MODEL
            + _COMPILE
            + "model.fit(\n    x,\n    y,\n    epochs=5,\n    batch_size=64,\n)\n",
        ),
        Example(
            "import argparse\np = argparse.ArgumentParser()\n"
            "p.add_argument('--batch-size', type=int, default=100)\nargs = p.parse_args()\n"
            + _MODEL
            + _COMPILE
            + "model.fit(x, y, batch_size=args.batch_size)\n",
            "import argparse\np = argparse.ArgumentParser()\n"
            "p.add_argument('--batch-size', type=int, default=200)\nargs = p.parse_args()\n"
            + _MODEL
            + _COMPILE
            + "model.fit(x, y, batch_size=args.batch_size)\n",
        ),
        Example(
            _IMPORTS + "\n\ndef train(batch=600):\n    model = Sequential([Dense(10)])\n"
            "    model.fit(x, y, batch_size=batch)\n",
            _IMPORTS + "\n\ndef train(batch=1024):\n    model = Sequential([Dense(10)])\n"
            "    model.fit(x, y, batch_size=batch)\n",
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _MODEL,
        _MODEL + _COMPILE + "model.fit(x, y, batch_size=1024)\n",
        _MODEL + _COMPILE + "model.fit_generator(gen, 10, 5)\n",
        _IMPORTS
        + "N = 64\nmodel = Sequential()\nmodel.add(Dense(N, input_dim=64))\n"
        + _COMPILE
        + "model.fit(x, y, batch_size=N)\n",
        _MODEL + _COMPILE + "model.fit(x, y, **settings)\n",
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        def doubled(old: int) -> int:
            return old if old >= self.max_batch else min(int(old * self.factor), self.max_batch)

        return batch_change(self.name, view, doubled, f"cap ({self.max_batch})")
