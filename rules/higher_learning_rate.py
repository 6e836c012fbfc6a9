"""higher_learning_rate: a model that learns too slowly gets a larger step, where it is set."""

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
class HigherLearningRate:
    """Multiply the learning rate by `factor`, up to `max_learning_rate`.

    Why: a training loss that falls slowly but steadily (plain SGD at 1e-4, say) is a step too
    small: the model has the capacity, it only needs more epochs than anyone will give it. Safety:
    the rate is changed where it is defined (a literal, `lr=` kept as `lr=`, a positional rate, a
    constant, a variable, a parameter, argparse or absl default, a defaults dict, a decay
    schedule's `initial_learning_rate`); an optimizer given by name (`optimizer="adam"`) becomes
    the same optimizer as an object with its default rate scaled, spelled as the script spells
    Keras; a name that also sets a layer's arguments is left alone, and a computed rate is
    multiplied as written. Nothing about the model changes, so the parent's weights carry over.
    """

    factor: float = 3.0
    max_learning_rate: float = 1.0

    name: ClassVar[str] = "higher_learning_rate"
    road: ClassVar[Road] = "faster"
    step_setting: ClassVar[str | None] = "factor"
    warm: ClassVar[WarmMapping] = "retrain"
    cold_why: ClassVar[str] = ""
    description: ClassVar[str] = (
        "raise the learning rate (x3, up to 1.0) where it is defined; a named optimizer "
        "becomes an object"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            _MODEL + "model.compile(optimizer='adam', loss='mse')  # defaults\n" + _FIT,
            _MODEL + "model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.003), "
            "loss='mse')  # defaults\n" + _FIT,
        ),
        Example(
            "import tensorflow as tf\nmodel = tf.keras.Sequential([tf.keras.layers.Dense(10)])\n"
            "model.compile(tf.keras.optimizers.SGD(0.01, momentum=0.9), 'mse')\n" + _FIT,
            "import tensorflow as tf\nmodel = tf.keras.Sequential([tf.keras.layers.Dense(10)])\n"
            "model.compile(tf.keras.optimizers.SGD(0.03, momentum=0.9), 'mse')\n" + _FIT,
        ),
        Example(  # Keras 2's `lr=`, in a variable, from a module constant
            "from keras.models import Sequential\nfrom keras.layers import Dense\n"
            "from keras.optimizers import SGD\nLR = 1e-4  # too small\n"
            "model = Sequential([Dense(10)])\nopt = SGD(lr=LR)\n"
            "model.compile(optimizer=opt, loss='mse')\n" + _FIT,
            "from keras.models import Sequential\nfrom keras.layers import Dense\n"
            "from keras.optimizers import SGD\nLR = 0.0003  # too small\n"
            "model = Sequential([Dense(10)])\nopt = SGD(lr=LR)\n"
            "model.compile(optimizer=opt, loss='mse')\n" + _FIT,
        ),
        Example(  # no `keras` name bound: the class is imported beside the other Keras imports
            "from keras.models import Sequential\nfrom keras.layers import Dense\n\n"
            "model = Sequential([Dense(10)])\nmodel.compile(optimizer='sgd', loss='mse')\n" + _FIT,
            "from keras.models import Sequential\nfrom keras.layers import Dense\n"
            "from keras.optimizers import SGD\n\n"
            "model = Sequential([Dense(10)])\n"
            "model.compile(optimizer=SGD(learning_rate=0.03), loss='mse')\n" + _FIT,
        ),
        Example(
            "import argparse\nparser = argparse.ArgumentParser()\n"
            "parser.add_argument('--learning-rate', type=float, default=0.001)\n"
            "args = parser.parse_args()\n"
            + _MODEL
            + "model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss='mse')\n"
            + _FIT,
            "import argparse\nparser = argparse.ArgumentParser()\n"
            "parser.add_argument('--learning-rate', type=float, default=0.003)\n"
            "args = parser.parse_args()\n"
            + _MODEL
            + "model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss='mse')\n"
            + _FIT,
        ),
        Example(
            _MODEL + "schedule = keras.optimizers.schedules.ExponentialDecay(\n"
            "    initial_learning_rate=0.01, decay_steps=100, decay_rate=0.9)\n"
            "model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss='mse')\n"
            + _FIT,
            _MODEL + "schedule = keras.optimizers.schedules.ExponentialDecay(\n"
            "    initial_learning_rate=0.03, decay_steps=100, decay_rate=0.9)\n"
            "model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss='mse')\n"
            + _FIT,
        ),
        Example(  # no optimizer: Keras's RMSprop, written out
            _MODEL + "model.compile(loss='mse')\n" + _FIT,
            _MODEL + "model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.003), "
            "loss='mse')\n" + _FIT,
        ),
        Example(  # computed: multiplied as written
            _MODEL
            + "model.compile(optimizer=keras.optimizers.Adam(1e-3 * workers), loss='mse')\n"
            + _FIT,
            _MODEL
            + "model.compile(optimizer=keras.optimizers.Adam(0.003 * workers), loss='mse')\n"
            + _FIT,
        ),
    )
    no_match: ClassVar[tuple[str, ...]] = (
        _MODEL,  # never compiled nor trained
        _MODEL + "model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss='mse')\n",
        _MODEL + "model.compile(optimizer=make_optimizer(), loss='mse')\n" + _FIT,
        _MODEL + "model.compile(optimizer=keras.optimizers.Adam(learning_rate=CustomSchedule(64)),"
        " loss='mse')\n" + _FIT,
        "import keras\nfrom keras import layers\nN = 0.5\n"
        "model = keras.Sequential([layers.Dropout(N), layers.Dense(10)])\n"
        "model.compile(optimizer=keras.optimizers.SGD(N), loss='mse')\n" + _FIT,
    )

    def propose(self, view: ModelView) -> list[Proposal]:
        return rate_change(self.name, view, self.factor, self.max_learning_rate, up=True)
