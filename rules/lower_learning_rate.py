"""lower_learning_rate: a model whose loss rises, swings or goes NaN gets a smaller step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mutator.engine.candidate import Proposal
from mutator.engine.model_view import ModelView
from rules._rule import Example, Road, WarmMapping
from rules._training import rate_change

_MODEL = (
    "import keras\nfrom keras import layers\n"
    "model = keras.Sequential([layers.Dense(10, input_dim=64)])\n"
)
_FIT = "model.fit(x, y, epochs=5)\n"


@dataclass(frozen=True)
class LowerLearningRate:
    """Divide the learning rate by `factor`, down to `min_learning_rate`.

    Why: a training loss that rises, oscillates or goes NaN is a step too large: the optimizer
    overshoots the minimum it is heading for. Safety: as `higher_learning_rate` (the rate is
    changed where it is defined, a named optimizer becomes an object, a name that also sets a
    layer is left alone, a computed rate is divided as written); the floor keeps a run of
    decreases from stalling training altogether.
    """

    factor: float = 3.0
    min_learning_rate: float = 1e-6

    name: ClassVar[str] = "lower_learning_rate"
    road: ClassVar[Road] = "steadier"
    step_setting: ClassVar[str | None] = "factor"
    warm: ClassVar[WarmMapping] = "retrain"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = (
        "lower the learning rate (/3, down to 1e-06) where it is defined; a named optimizer "
        "becomes an object"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _MODEL + 'model.compile(optimizer="rmsprop", loss="mse")\n' + _FIT,
            _MODEL + "model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.000333), "
            'loss="mse")\n' + _FIT,
        ),
        Example(
            _MODEL
            + "model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss='mse')\n"
            + _FIT,
            _MODEL + "model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.167), "
            "loss='mse')\n" + _FIT,
        ),
        Example(  # an absl flag's default
            "from absl import flags\nflags.DEFINE_float('lr', 0.1, 'step size')\n"
            "FLAGS = flags.FLAGS\n"
            + _MODEL
            + "model.compile(optimizer=keras.optimizers.SGD(learning_rate=FLAGS.lr), loss='mse')\n"
            + _FIT,
            "from absl import flags\nflags.DEFINE_float('lr', 0.0333, 'step size')\n"
            "FLAGS = flags.FLAGS\n"
            + _MODEL
            + "model.compile(optimizer=keras.optimizers.SGD(learning_rate=FLAGS.lr), loss='mse')\n"
            + _FIT,
        ),
        Example(  # a function parameter's default, an object without a rate
            "import keras\nfrom keras import layers\n\n\ndef train(momentum=0.9):\n"
            "    model = keras.Sequential([layers.Dense(10)])\n"
            "    model.compile(optimizer=keras.optimizers.SGD(momentum=momentum), loss='mse')\n"
            "    model.fit(x, y)\n",
            "import keras\nfrom keras import layers\n\n\ndef train(momentum=0.9):\n"
            "    model = keras.Sequential([layers.Dense(10)])\n"
            "    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.00333, "
            "momentum=momentum), loss='mse')\n"
            "    model.fit(x, y)\n",
        ),
        Example(  # computed: divided as written
            _MODEL + "model.compile(optimizer=keras.optimizers.Adam(float(os.environ['LR'])), "
            "loss='mse')\n" + _FIT,
            _MODEL + "model.compile(optimizer=keras.optimizers.Adam(float(os.environ['LR']) / 3.0),"
            " loss='mse')\n" + _FIT,
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _MODEL,  # never compiled nor trained
        _MODEL + "model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-6), loss='mse')\n",
        _MODEL + "model.compile(optimizer=args.optimizer, loss='mse')\n" + _FIT,
        _MODEL + "model.compile(optimizer=keras.optimizers.SGD(learning_rate=args.lr), "
        "loss='mse')\n" + _FIT,  # no argparse option to read the default from
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        return rate_change(self.name, view, self.factor, self.min_learning_rate, up=False)
