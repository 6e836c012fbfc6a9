"""Where the optimizer, its learning rate and the batch size live: every kind of site, and the
cases that must come back "unresolved" with a reason rather than raise."""

from __future__ import annotations

import pytest

from mutator import api
from mutator.engine.training_sites import format_rate

KERAS = "import keras\nfrom keras import layers\n"
MODEL = "model = keras.Sequential([layers.Dense(10, input_dim=64)])\n"
FIT = "model.fit(x, y, epochs=2)\n"


def view_of(text: str):
    return api.Script.from_text(text).view


def optimizer_of(text: str):
    return view_of(text).optimizer


@pytest.mark.parametrize(
    "code, kind, optimizer, rate",
    [
        # by name: the optimizer's own default rate
        ("model.compile(optimizer='adam', loss='mse')", "default", "Adam", 0.001),
        ("model.compile('SGD', 'mse')", "default", "SGD", 0.01),
        ("OPT = 'rmsprop'\nmodel.compile(optimizer=OPT)", "default", "RMSprop", 0.001),
        ("model.compile(loss='mse')", "default", "RMSprop", 0.001),  # Keras's default
        # an object, the rate written in it
        (
            "model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01))",
            "literal",
            "Adam",
            0.01,
        ),
        ("model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))", "literal", "SGD", 0.1),
        ("model.compile(optimizer=keras.optimizers.Adam(lr=2e-4))", "literal", "Adam", 2e-4),
        ("model.compile(optimizer=keras.optimizers.Nadam())", "default", "Nadam", 0.001),
        ("model.compile(optimizer=keras.optimizers.SGD(momentum=0.9))", "default", "SGD", 0.01),
        ("model.compile(optimizer=keras.optimizers.legacy.Adam(1e-3))", "literal", "Adam", 1e-3),
        (
            "model.compile(optimizer=keras.mixed_precision.LossScaleOptimizer("
            "keras.optimizers.Adamax(0.002)))",
            "literal",
            "Adamax",
            0.002,
        ),
        # the rate followed to where it is defined
        ("LR = 1e-4\nmodel.compile(optimizer=keras.optimizers.SGD(LR))", "constant", "SGD", 1e-4),
        (
            "LR = 0.05\nopt = keras.optimizers.SGD(learning_rate=LR)\nmodel.compile(optimizer=opt)",
            "constant",
            "SGD",
            0.05,
        ),
        (
            "def train(lr=0.02):\n    rate = lr\n"
            "    model = keras.Sequential([layers.Dense(10)])\n"
            "    model.compile(optimizer=keras.optimizers.RMSprop(rate))\n    model.fit(x, y)",
            "parameter",
            "RMSprop",
            0.02,
        ),
        (
            "def train():\n    rate = 0.3\n    model = keras.Sequential([layers.Dense(10)])\n"
            "    model.compile(optimizer=keras.optimizers.RMSprop(rate))\n    model.fit(x, y)",
            "variable",
            "RMSprop",
            0.3,
        ),
        (
            "import argparse\np = argparse.ArgumentParser()\n"
            "p.add_argument('--lr', type=float, default=0.01)\nargs = p.parse_args()\n"
            "model.compile(optimizer=keras.optimizers.SGD(args.lr))",
            "argparse",
            "SGD",
            0.01,
        ),
        (
            "from absl import flags\nflags.DEFINE_float('learning_rate', 3e-4, 'rate')\n"
            "FLAGS = flags.FLAGS\n"
            "model.compile(optimizer=keras.optimizers.Adam(FLAGS.learning_rate))",
            "flag",
            "Adam",
            3e-4,
        ),
        (
            "cfg = {'lr': 0.004}\nc = Box(cfg)\n"
            "model.compile(optimizer=keras.optimizers.Adam(learning_rate=c.lr))",
            "config",
            "Adam",
            0.004,
        ),
        (
            "model.compile(optimizer=keras.optimizers.Adam(1e-3 * n_workers))",
            "expression",
            "Adam",
            None,
        ),
        # another library's optimizer, its rate written as a keyword
        (
            "model.compile(optimizer=tfa.optimizers.LAMB(learning_rate=0.01))",
            "literal",
            "LAMB",
            0.01,
        ),
    ],
)
def test_optimizer_sites(code, kind, optimizer, rate):
    site = optimizer_of(KERAS + MODEL + code + "\n" + FIT)
    assert (site.kind, site.optimizer, site.learning_rate) == (kind, optimizer, rate)
    assert site.detail
    if kind not in ("default", "unresolved"):
        assert site.node is not None


@pytest.mark.parametrize(
    "schedule, kind, value",
    [
        ("keras.optimizers.schedules.ExponentialDecay(0.1, 100, 0.96)", "literal", 0.1),
        ("keras.optimizers.schedules.PolynomialDecay(initial_learning_rate=LR, decay_steps=9)",
         "constant", 0.05),
        ("keras.optimizers.schedules.CosineDecayRestarts(LR, 10)", "constant", 0.05),
    ],
)  # fmt: skip
def test_a_schedules_initial_rate_is_the_rate(schedule, kind, value):
    site = optimizer_of(
        KERAS + "LR = 0.05\n" + MODEL + f"sched = {schedule}\n"
        "model.compile(optimizer=keras.optimizers.SGD(learning_rate=sched))\n" + FIT
    )
    assert (site.kind, site.learning_rate, site.optimizer) == (kind, value, "SGD")
    assert site.schedule == schedule.split("(")[0].rsplit(".", 1)[1]
    assert site.names[0] == "sched"
    if kind == "literal":
        assert site.detail.startswith("initial_learning_rate=0.1 in keras.optimizers.schedules.")


@pytest.mark.parametrize(
    "code, reason",
    [
        ("model.compile(optimizer='fancy')", "no Keras optimizer is called that"),
        ("model.compile(optimizer=make_optimizer())", "make_optimizer is not a Keras optimizer"),
        ("model.compile(optimizer=tfa.optimizers.LAMB())", "not a Keras optimizer"),
        ("model.compile(optimizer=keras.optimizers.Adam(**kw))", "** arguments"),
        ("model.compile(**settings)", "** arguments"),
        ("model.compile(optimizer=keras.optimizers.Adam(CustomSchedule(64)))", "made by a call"),
        ("model.compile(optimizer=keras.optimizers.Adam(cfg['lr']))", "learning_rate=cfg['lr']"),
        (
            "model.compile(optimizer=keras.optimizers.Adam("
            "keras.optimizers.schedules.PiecewiseConstantDecay([10], [0.1, 0.01])))",
            "only a decay schedule's initial rate",
        ),
        (
            "model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay("
            "0.0, 1000, warmup_target=0.1, warmup_steps=100)))",
            "warms up",
        ),
        (
            "import argparse\np = argparse.ArgumentParser()\n"
            "p.add_argument('--optimizer', default='adam')\nargs = p.parse_args()\n"
            "model.compile(optimizer=args.optimizer)",
            "comes from argparse --optimizer",
        ),
        ("", "no `model.compile(...)` found"),
    ],
)
def test_what_cannot_be_followed_is_unresolved_with_a_reason(code, reason):
    site = optimizer_of(KERAS + MODEL + code + "\n" + FIT)
    assert site.kind == "unresolved" and site.node is None
    assert reason in site.detail


def test_no_compile_and_no_fit_is_no_site():
    assert optimizer_of(KERAS + MODEL) is None


def test_the_compile_call_is_found_where_the_model_is_built_or_trained():
    built = (
        KERAS + "def build():\n    net = keras.Sequential([layers.Dense(10)])\n"
        "    net.compile(optimizer='nadam')\n    return net\n\n"
        "pattern = re.compile('x')\nmodel = build()\nmodel.fit(x, y)\n"
    )
    assert optimizer_of("import re\n" + built).optimizer == "Nadam"
    helper = (
        KERAS + "def compile_model(m, lr):\n    m.compile(optimizer=keras.optimizers.SGD(0.2))\n"
        "    return m\n\n" + MODEL + "compile_model(model, 0.1)\nmodel.fit(x, y)\n"
    )
    assert optimizer_of(helper).learning_rate == 0.2  # the only compile call of the script


@pytest.mark.parametrize(
    "imports, callee, import_line",
    [
        ("import keras\nfrom keras import layers\n", "keras.optimizers.Adam", None),
        ("from tensorflow import keras\nfrom keras import layers\n", "keras.optimizers.Adam", None),
        ("import keras_core as keras\nfrom keras_core import layers\n", "keras.optimizers.Adam", None),
        ("import tensorflow as tf\nfrom tensorflow.keras import layers\n", "tf.keras.optimizers.Adam",
         None),
        ("from keras import layers, optimizers as o\n", "o.Adam", None),
        ("from keras import layers\nfrom keras.optimizers import Adam as A\n", "A", None),
        ("from tensorflow.keras import layers\nimport numpy as np\n", "Adam",
         "from tensorflow.keras.optimizers import Adam"),
        ("from keras import layers\n", "Adam", "from keras.optimizers import Adam"),
    ],
)  # fmt: skip
def test_a_named_optimizer_is_spelled_as_the_script_spells_keras(imports, callee, import_line):
    text = (
        "from keras.models import Sequential\n"
        + imports
        + "model = Sequential([layers.Dense(1)])\nmodel.compile(optimizer='adam')\n"
        + FIT
    )
    script = api.Script.from_text(text)
    spelling = script.view.optimizer.spelling
    assert (spelling.callee, spelling.import_line) == (callee, import_line)
    if import_line is not None:  # after the last Keras import
        assert script.module.code_for_node(spelling.anchor) == imports.splitlines(True)[0]


def test_a_name_taken_by_the_script_is_not_imported_over():
    site = optimizer_of(
        "from keras.models import Sequential\nfrom keras.layers import Dense\nAdam = 'mine'\n"
        "model = Sequential([Dense(1)])\nmodel.compile(optimizer='adam')\n" + FIT
    )
    assert site.spelling.callee is None and "Adam already names" in site.spelling.why


@pytest.mark.parametrize(
    "code, kind, value",
    [
        ("model.fit(x, y, batch_size=64)", "literal", 64),
        ("model.fit(x, y, 128, 3)", "literal", 128),
        ("BATCH = 16\nmodel.fit(x, y, batch_size=BATCH)", "constant", 16),
        ("b = 8\nbs = b\nmodel.fit(x, y, batch_size=bs)", "variable", 8),
        (
            "import argparse\np = argparse.ArgumentParser()\n"
            "p.add_argument('--batch-size', type=int, default=50)\nargs = p.parse_args()\n"
            "model.fit(x, y, batch_size=args.batch_size)",
            "argparse",
            50,
        ),
        (
            "from absl import flags\nflags.DEFINE_integer('batch_size', 24, 'size')\n"
            "FLAGS = flags.FLAGS\nmodel.fit(x, y, batch_size=FLAGS.batch_size)",
            "flag",
            24,
        ),
        ("defaults = dict(batch_size=40)\nmodel.fit(x, y, batch_size=cfg.batch_size)", "config", 40),
        ("model.fit(x, y, batch_size=len(x) // 10)", "expression", None),
        ("model.fit(x, y, epochs=3)", "default", 32),
        ("model.fit(x, y, batch_size=sizes[0])", "unresolved", None),
        ("model.fit(x, y, **fit_args)", "unresolved", None),
        ("model.fit(train_ds, epochs=3)", "pipeline", None),
        ("ds = tf.data.Dataset.from_tensor_slices((x, y))\nds = ds.shuffle(9).batch(32)\n"
         "model.fit(ds, y_unused, epochs=3)", "pipeline", None),
        ("model.fit(datagen.flow(x, y, batch_size=32), epochs=3)", "pipeline", None),
        ("model.fit_generator(gen, 10, 2)", "pipeline", None),
    ],
)  # fmt: skip
def test_batch_size_sites(code, kind, value):
    site = view_of(KERAS + MODEL + "model.compile(optimizer='adam')\n" + code + "\n").batch_size
    assert (site.kind, site.value) == (kind, value)
    assert site.detail


def test_a_batch_size_from_a_parameter_default():
    view = view_of(
        KERAS + "def train(batch=20):\n    model = keras.Sequential([layers.Dense(10)])\n"
        "    model.fit(x, y, batch_size=batch)\n"
    )
    assert (view.batch_size.kind, view.batch_size.value, view.batch_size.names) == (
        "parameter",
        20,
        ("batch",),
    )


def test_no_fit_is_no_batch_size():
    assert view_of(KERAS + MODEL).batch_size is None


@pytest.mark.parametrize(
    "value, written",
    [(0.003, "0.003"), (3e-05, "3e-05"), (0.001 / 3, "0.000333"), (0.1 * 3, "0.3"), (1.0, "1.0")],
)
def test_rates_are_written_readably(value, written):
    assert format_rate(value) == written


@pytest.mark.parametrize(
    "calls, kind, value, detail",
    [
        ("train()\n", "parameter", 0.01, "default of parameter lr=0.01 in train()"),
        ("train(lr=0.5)\n", "literal", 0.5, "lr=0.5 in the call train(...)"),
        ("RATE = 0.2\ntrain(RATE)\n", "constant", 0.2, "RATE = 0.2 (module constant)"),
        ("train(0.5)\ntrain()\n", "unresolved", None, "train() is called 2 times"),
        ("train(*options)\n", "unresolved", None, "train(*...) may be given its own lr"),
    ],
)
def test_a_parameter_is_followed_to_the_call_that_passes_it(calls, kind, value, detail):
    site = optimizer_of(
        KERAS + "def train(lr=0.01):\n    model = keras.Sequential([layers.Dense(10)])\n"
        "    model.compile(optimizer=keras.optimizers.SGD(lr))\n    model.fit(x, y)\n\n" + calls
    )
    assert (site.kind, site.learning_rate) == (kind, value)
    assert detail in site.detail


def test_a_parameter_without_a_default_is_read_from_the_one_call():
    site = optimizer_of(
        KERAS + "def compile_model(m, lr):\n    m.compile(optimizer=keras.optimizers.Adam(lr))\n"
        "    return m\n\n" + MODEL + "model = compile_model(model, 3e-4)\nmodel.fit(x, y)\n"
    )
    assert (site.kind, site.learning_rate) == ("literal", 3e-4)
