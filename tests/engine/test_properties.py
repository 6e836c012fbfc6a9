"""Properties of every rule on generated Sequential Keras scripts.

A hypothesis strategy writes small but messy scripts (five import styles, `.add` or list models,
CRLF, tabs, comments, quotes, no final newline...) and remembers what it wrote: the layer stack
and which line holds which token. The properties check the rewrites against that record, so a rule
that edits the wrong line, loses a comment or proposes a change the model cannot take is caught.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutator import api
from mutator.engine.candidate import Candidate, Skip
from mutator.engine.rewrite import splice, transform
from rules import default_rules
from rules.more_filters import MoreFilters

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# import style -> (import lines, how Sequential is spelled, prefix of layer classes)
IMPORTS = {
    "from": (
        [
            "from keras.models import Sequential",
            "from keras.layers import Conv2D, MaxPooling2D, Flatten, Dense, Dropout",
        ],
        "Sequential",
        "",
    ),
    "layers_module": (
        ["from tensorflow import keras", "from keras import layers"],
        "keras.Sequential",
        "layers.",
    ),
    "tf": (["import tensorflow as tf"], "tf.keras.Sequential", "tf.keras.layers."),
    "alias": (
        ["from keras.models import Sequential", "import keras.layers as L"],
        "Sequential",
        "L.",
    ),
    "star": (
        ["from keras.models import Sequential", "from keras.layers import *"],
        "Sequential",
        "",
    ),
    # Keras 3's preview name (built against keras itself: see build_model)
    "keras_core": (
        ["import keras_core as keras", "from keras_core import layers"],
        "keras.Sequential",
        "layers.",
    ),
}
COMMENTS = st.sampled_from(
    [
        "# note",
        "#tight",
        "# précision ≥ 95 % — entraînement",
        "# 日本語のコメント",
        "# TODO: tune (later)",
        "# é",
    ]
)
INPUT_SIZE = 8
LAYER_RULES = (
    "more_filters",
    "wider_dense",
    "larger_kernel",
    "add_conv_block",
    "add_dense",
    "add_batchnorm",
)
RECURRENT = ("LSTM", "GRU", "SimpleRNN")
# The layer classes a "from" import of a recurrent script names.
RECURRENT_FROM = "from keras.layers import LSTM, GRU, SimpleRNN, Bidirectional, Dense"


# -- the generated script and what the generator knows about it ------------------------------


@dataclass(frozen=True)
class LayerSpec:
    kind: str
    filters: int | None = None
    kernel: int | None = None
    padding: str | None = None  # None: not written (Keras' "valid")
    units: int | None = None
    cell: str | None = None  # the recurrent layer a Bidirectional wraps
    sequences: bool = False  # return_sequences=True (a recurrent layer another one reads)


@dataclass
class Generated:
    text: str
    build: str  # the part of `text` that builds the model; `text == build + fit`
    fit: str
    style: str  # "add", "lines" (one list element per line) or "inline" (list on one line)
    newline: str
    prefix: str  # how layer classes are spelled: "", "layers.", "tf.keras.layers.", "L."
    statement_indent: str  # indent of `model = ...`
    element_indent: str  # indent of a list element in the "lines" style
    layers: list[LayerSpec]
    epochs: int | None  # what `fit` trains for (1 when not written); None: no fit call
    lines: dict[str, set[int]] = field(default_factory=dict)  # tag -> line numbers (from 0)
    optimizer: str | None = None  # the class compile makes ("Adam"); None: no compile call
    learning_rate: float | None = None  # its rate, written or its default
    batch: int | None = None  # what `fit` takes (32 when not written); None: no fit call

    def tagged(self, tag: str) -> set[int]:
        return self.lines.get(tag, set())


class _Writer:
    """Lines of a script being generated, the tags of each line, and the formatting habits."""

    def __init__(self, draw, unit: str) -> None:
        self.draw = draw
        self.unit = unit  # one level of indentation: four spaces or a tab
        self.lines: list[str] = []
        self.tags: dict[str, set[int]] = {}

    def emit(self, text: str, *tags: str) -> None:
        for tag in tags:
            self.tags.setdefault(tag, set()).add(len(self.lines))
        self.lines.append(text)

    def gap(self, indent: str) -> None:
        """Blank lines and comment lines, as people leave them between statements."""
        for _ in range(self.draw(st.integers(0, 2))):
            self.emit(indent + self.draw(COMMENTS) if self.draw(st.booleans()) else "")

    def eol(self) -> str:
        """Nothing, or a comment at the end of the line."""
        return self.draw(st.one_of(st.just(""), COMMENTS.map(lambda c: "  " + c)))


def _size_after(layers: list[LayerSpec]) -> list[int]:
    """Spatial size after each layer up to Flatten, on an 8x8 input (<1: does not fit)."""
    size, sizes = INPUT_SIZE, []
    for layer in layers:
        if layer.kind == "Conv2D":
            size = size if layer.padding == "same" else size - layer.kernel + 1
        elif layer.kind == "MaxPooling2D":
            size = size // 2 if size >= 2 else 0
        else:
            break
        sizes.append(size)
    return sizes


def fits(layers: list[LayerSpec]) -> bool:
    return all(size >= 1 for size in _size_after(layers))


@st.composite
def layer_stacks(draw) -> list[LayerSpec]:
    layers: list[LayerSpec] = []
    size = INPUT_SIZE
    for _ in range(draw(st.integers(1, 3))):
        padding = draw(st.sampled_from([None, None, "same", "valid"]))
        kernel = draw(st.sampled_from([k for k in (1, 3, 5) if padding == "same" or k <= size]))
        layers.append(LayerSpec("Conv2D", draw(st.integers(1, 64)), kernel, padding))
        size = size if padding == "same" else size - kernel + 1
        if size >= 2 and draw(st.booleans()):
            layers.append(LayerSpec("MaxPooling2D"))
            size //= 2
    layers.append(LayerSpec("Flatten"))
    for _ in range(draw(st.integers(0, 2))):
        layers.append(LayerSpec("Dense", units=draw(st.integers(1, 64))))
    if draw(st.booleans()):
        layers.append(LayerSpec("Dropout"))
    layers.append(LayerSpec("Dense", units=10))
    assert fits(layers)
    return layers


@st.composite
def recurrent_stacks(draw) -> list[LayerSpec]:
    """1-2 recurrent layers (some in Bidirectional) over 8 timesteps x 8 features, a classifier."""
    count = draw(st.integers(1, 2))
    layers: list[LayerSpec] = []
    for i in range(count):
        cell = draw(st.sampled_from(RECURRENT))
        units, sequences = draw(st.integers(1, 64)), i < count - 1
        if draw(st.booleans()):
            layers.append(LayerSpec("Bidirectional", units=units, cell=cell, sequences=sequences))
        else:
            layers.append(LayerSpec(cell, units=units, sequences=sequences))
    if draw(st.booleans()):
        layers.append(LayerSpec("Dense", units=draw(st.integers(1, 64))))
    layers.append(LayerSpec("Dense", units=10))
    return layers


def _call_args(
    draw, layer: LayerSpec, first: bool, quote: str, prefix: str = ""
) -> list[tuple[str, tuple[str, ...]]]:
    """The arguments of one layer call, each with the tags of the token it holds."""

    def kw(name: str, value: str) -> str:
        return name + draw(st.sampled_from(["=", " = "])) + value

    def text(value: str) -> str:
        return f"{quote}{value}{quote}"

    positional: list[tuple[str, tuple[str, ...]]] = []
    keywords: list[tuple[str, tuple[str, ...]]] = []
    if layer.kind == "Conv2D":
        k = layer.kernel
        kernel = draw(st.sampled_from([str(k), f"({k}, {k})"]))
        if draw(st.booleans()):
            positional.append((str(layer.filters), ("filters",)))
            if draw(st.booleans()):
                positional.append((kernel, ("kernel",)))
            else:
                keywords.append((kw("kernel_size", kernel), ("kernel",)))
        else:
            keywords.append((kw("filters", str(layer.filters)), ("filters",)))
            keywords.append((kw("kernel_size", kernel), ("kernel",)))
        if layer.padding:
            keywords.append((kw("padding", text(layer.padding)), ()))
        if draw(st.booleans()):
            keywords.append((kw("activation", text("relu")), ()))
    elif layer.kind == "MaxPooling2D":
        form = draw(st.sampled_from(["", "2", "(2, 2)", "pool_size"]))
        if form == "pool_size":
            keywords.append((kw("pool_size", draw(st.sampled_from(["2", "(2, 2)"]))), ()))
        elif form:
            positional.append((form, ()))
    elif layer.kind == "Dense":
        if draw(st.booleans()):
            positional.append((str(layer.units), ("units",)))
        else:
            keywords.append((kw("units", str(layer.units)), ("units",)))
        if layer.units == 10:
            keywords.append((kw("activation", text("softmax")), ()))
        elif draw(st.booleans()):
            keywords.append((kw("activation", text("relu")), ()))
    elif layer.kind == "Dropout":
        positional.append(draw(st.sampled_from([("0.25", ()), (kw("rate", "0.5"), ())])))
    elif layer.cell is not None:  # Bidirectional(<the recurrent layer's call>)
        inner = replace(layer, kind=layer.cell, cell=None)
        cell_args = ", ".join(arg for arg, _ in _call_args(draw, inner, False, quote, prefix))
        positional.append((f"{prefix}{layer.cell}({cell_args})", ("units",)))
    elif layer.kind in RECURRENT:
        units = str(layer.units)
        if draw(st.booleans()):
            positional.append((units, ("units",)))
        else:
            keywords.append((kw("units", units), ("units",)))
        if layer.sequences:
            keywords.append((kw("return_sequences", "True"), ()))
    if first:
        sequence = layer.kind in RECURRENT or layer.cell is not None  # timesteps x features
        shape = f"({INPUT_SIZE}, {INPUT_SIZE}{'' if sequence else ', 1'})"
        keywords.append((kw("input_shape", shape), ()))
    return positional + draw(st.permutations(keywords))


def _write_call(
    out: _Writer, i: int, head: str, args: list[tuple[str, tuple[str, ...]]], tail: str
) -> None:
    """`head` + the arguments + `tail` on one line, or (some convs) one argument per line."""
    if not head.rstrip().endswith("Conv2D(") or out.draw(st.integers(0, 3)):
        tags = [f"{tag}{i}" for _, arg_tags in args for tag in arg_tags]
        out.emit(head + ", ".join(arg for arg, _ in args) + tail + out.eol(), f"layer{i}", *tags)
        return
    indent = head[: len(head) - len(head.lstrip())]
    out.emit(head + out.eol(), f"layer{i}")
    last_comma = out.draw(st.booleans())
    for j, (arg, arg_tags) in enumerate(args):
        comma = "," if j < len(args) - 1 or last_comma else ""
        tags = [f"{tag}{i}" for tag in arg_tags]
        out.emit(indent + out.unit + arg + comma + out.eol(), f"layer{i}", *tags)
    out.emit(indent + tail + out.eol(), f"layer{i}")


def _write_model(
    out: _Writer, style: str, layers: list[LayerSpec], sequential: str, prefix: str, indent: str
) -> None:
    """`model = Sequential()` and `.add` lines, or `model = Sequential([...])`, tagged."""
    draw = out.draw
    unit = out.unit
    quote = draw(st.sampled_from(['"', "'"]))
    calls = [_call_args(draw, layer, i == 0, quote, prefix) for i, layer in enumerate(layers)]
    out.gap(indent)
    if style == "inline":
        elements = [
            f"{prefix}{layer.kind}({', '.join(arg for arg, _ in args)})"
            for layer, args in zip(layers, calls, strict=True)
        ]
        tags = [
            f"{tag}{i}"
            for i in range(len(layers))
            for tag in ("layer", "filters", "kernel", "units")
        ]
        line = f"{indent}model = {sequential}([{', '.join(elements)}])"
        out.emit(line + out.eol(), "model", *tags)
        return
    if style == "add":
        out.emit(f"{indent}model = {sequential}()" + out.eol(), "model")
        for i, (layer, args) in enumerate(zip(layers, calls, strict=True)):
            out.gap(indent)
            _write_call(out, i, f"{indent}model.add({prefix}{layer.kind}(", args, "))")
        return
    start = len(out.lines)
    # "listvar": the list is built in a variable first, then `Sequential(stack)`
    opening = "stack = [" if style == "listvar" else f"model = {sequential}(["
    out.emit(f"{indent}{opening}" + out.eol())
    closing = draw(st.sampled_from([",\n])", "\n])", "])"]))
    for i, (layer, args) in enumerate(zip(layers, calls, strict=True)):
        if draw(st.integers(0, 3)) == 0:
            out.emit(indent + unit + draw(COMMENTS))
        last = i == len(layers) - 1
        tail = ")" + (closing.split("\n")[0] if last else ",")
        if style == "listvar":
            tail = tail.replace("])", "]")
        _write_call(out, i, f"{indent}{unit}{prefix}{layer.kind}(", args, tail)
    if "\n" in closing:
        out.emit(f"{indent}]" + ("" if style == "listvar" else ")") + out.eol())
    if style == "listvar":
        out.gap(indent)
        out.emit(f"{indent}model = {sequential}(stack)" + out.eol())
    for line in range(start, len(out.lines)):
        out.tags.setdefault("model", set()).add(line)


def _write_compile(out: _Writer, sequential: str) -> tuple[str | None, float | None]:
    """A compile line (or none): the optimizer by name, or, where a Keras module is bound, as an
    object with its rate written or read from `LR`; tagged "rate" where the rate is defined."""
    draw = out.draw
    root = sequential.rpartition(".")[0]  # "keras", "tf.keras", or "" (no module bound)
    styles = ["none", "string", "object", "constant"] if root else ["none", "string"]
    style = draw(st.sampled_from(styles))
    if style == "none":
        return None, None
    quote = draw(st.sampled_from(['"', "'"]))
    loss = f"loss={quote}sparse_categorical_crossentropy{quote}"
    if style == "string":
        name = draw(st.sampled_from(["adam", "sgd", "rmsprop", "Nadam"]))
        line = f"model.compile(optimizer={quote}{name}{quote}, {loss})"
        out.emit(line + out.eol(), "rate")
        cls = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "Nadam": "Nadam"}[name]
        return cls, 0.01 if cls == "SGD" else 0.001
    cls = draw(st.sampled_from(["SGD", "Adam"]))
    # floats only: Keras 3 refuses `learning_rate=1`
    rate = draw(st.sampled_from(["0.01", "1e-3", "0.5", "1.0", "2e-6", "1e-06"]))
    if style == "constant":
        out.emit(f"LR = {rate}" + out.eol(), "rate")
        out.emit(f"model.compile(optimizer={root}.optimizers.{cls}(LR), {loss})" + out.eol())
    else:
        line = f"model.compile({root}.optimizers.{cls}(learning_rate={rate}), {loss})"
        out.emit(line + out.eol(), "rate")
    return cls, float(rate)


def _write_fit(out: _Writer, epochs_style: str, epochs: int) -> int:
    """The fit line (and what it reads), tagged; the batch size it trains with."""
    draw = out.draw
    out.gap("")
    eq = draw(st.sampled_from(["=", " = "]))
    size = draw(st.sampled_from([8, 16, 32, 100, 1024]))
    batch = draw(st.sampled_from(["", f", batch_size{eq}{size}", f", batch_size{eq}BATCH"]))
    if "BATCH" in batch:
        out.emit(f"BATCH = {size}" + out.eol(), "batch")
    if epochs_style == "variable":
        out.emit(f"n_epochs = {epochs}" + out.eol(), "epochs")
        fit = f"model.fit(x, y{batch}, epochs{eq}n_epochs)"
    elif epochs_style == "constant":
        fit = f"model.fit(x, y{batch}, epochs{eq}EPOCHS)"
    elif epochs_style == "absent":
        fit = f"model.fit(x, y{batch})"
    else:
        fit = f"model.fit(x, y, epochs{eq}{epochs}{batch})"
    tags = ["epochs"] if epochs_style in ("literal", "absent") else []
    out.emit(fit + out.eol(), *tags, *([] if "BATCH" in batch else ["batch"]))
    if draw(st.booleans()):
        out.emit(draw(COMMENTS))
    return size if batch else 32


@st.composite
def scripts(
    draw, styles: tuple[str, ...] = ("add", "lines", "inline", "listvar"), recurrent: bool = False
) -> Generated:
    """A Sequential CNN script for 8x8x1 inputs (`recurrent`: an RNN for 8 timesteps x 8
    features), in one of many styles, and what it holds."""
    import_lines, sequential, prefix = IMPORTS[draw(st.sampled_from(sorted(IMPORTS)))]
    style = draw(st.sampled_from(styles))
    layers = draw(recurrent_stacks() if recurrent else layer_stacks())
    if recurrent:
        import_lines = [
            RECURRENT_FROM if line.startswith("from keras.layers import") and "*" not in line else line
            for line in import_lines
        ]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    unit = draw(st.sampled_from(["    ", "\t"]))
    in_function = draw(st.booleans())
    epochs_style = draw(st.sampled_from(["literal", "constant", "variable", "absent", "no_fit"]))
    epochs = draw(st.integers(1, 120))
    out = _Writer(draw, unit)
    if draw(st.booleans()):
        out.emit(draw(COMMENTS))
    for line in import_lines:
        out.emit(line + out.eol())
    out.gap("")
    if epochs_style == "constant":
        out.emit(f"EPOCHS = {epochs}" + out.eol(), "epochs")
    indent = unit if in_function else ""
    if in_function:
        out.gap("")
        out.emit("def build_model():" + out.eol())
    _write_model(out, style, layers, sequential, prefix, indent)
    if in_function:
        out.gap(indent)
        out.emit(f"{indent}return model" + out.eol())
        out.gap("")
        out.emit("model = build_model()" + out.eol())
    fit_start = len(out.lines)
    optimizer, learning_rate = _write_compile(out, sequential)
    batch = _write_fit(out, epochs_style, epochs) if epochs_style != "no_fit" else None
    text = newline.join(out.lines) + (newline if draw(st.booleans()) else "")
    build = newline.join(out.lines[:fit_start]) + newline if fit_start < len(out.lines) else text
    return Generated(
        text=text,
        build=build,
        fit=text[len(build) :],
        style=style,
        newline=newline,
        prefix=prefix,
        statement_indent=indent,
        element_indent=indent + unit,
        layers=layers,
        epochs={"no_fit": None, "absent": 1}.get(epochs_style, epochs),
        lines=out.tags,
        optimizer=optimizer,
        learning_rate=learning_rate,
        batch=batch,
    )


# -- what each rule should propose, worked out from the layer stack ---------------------------


def conv_sites(gen: Generated) -> list[int]:
    return [i for i, layer in enumerate(gen.layers) if layer.kind == "Conv2D"]


def expected_kernel_sites(gen: Generated) -> dict[int, int]:
    """Conv index -> its grown kernel, for every conv whose grown kernel still fits."""
    sites = {}
    for i in conv_sites(gen):
        grown = min(gen.layers[i].kernel + 2, 7)
        trial = list(gen.layers)
        trial[i] = replace(trial[i], kernel=grown)
        if fits(trial):
            sites[i] = grown
    return sites


def expected_conv_block(gen: Generated) -> tuple[int, int, str | None] | None:
    """(anchor, new filters, new padding) of the block add_conv_block adds, or None if none fits."""
    last = conv_sites(gen)[-1]
    anchor = last
    while gen.layers[anchor + 1].kind == "MaxPooling2D":
        anchor += 1
    conv = gen.layers[last]
    for padding in (conv.padding, "same"):
        new = [replace(conv, padding=padding), LayerSpec("MaxPooling2D")]
        if fits(gen.layers[: anchor + 1] + new + gen.layers[anchor + 1 :]):
            return anchor, min(conv.filters * 2, 512), padding
        if conv.padding is not None:
            return None  # a written padding is not overridden
    return None


def hidden_dense_sites(gen: Generated) -> list[int]:
    """Every Dense layer but the output layer (the last): what wider_dense may widen."""
    return [i for i, layer in enumerate(gen.layers[:-1]) if layer.kind == "Dense"]


def recurrent_sites(gen: Generated) -> list[int]:
    return [i for i, layer in enumerate(gen.layers) if layer.units and layer.kind != "Dense"]


def expected_dense(gen: Generated) -> tuple[int, int]:
    """(anchor, units) of the hidden Dense add_dense adds: before the output, like the last hidden."""
    hidden = [layer for layer in gen.layers[:-1] if layer.kind == "Dense"]
    return len(gen.layers) - 2, hidden[-1].units if hidden else 64


# -- helpers -----------------------------------------------------------------------------------


def candidates(proposals) -> list[Candidate]:
    return [p for p in proposals if isinstance(p, Candidate)]


def propose_all(text: str) -> tuple[api.Script, list[Candidate | Skip]]:
    script = api.Script.from_text(text)
    return script, api.propose(script, default_rules())


def split(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def changed_lines(before: str, after: str) -> set[int]:
    old, new = split(before), split(after)
    assert len(new) == len(old), "a replacement must not add or remove lines"
    return {i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b}


def comments(text: str) -> list[str]:
    """The script's comments in order (the generated scripts have no `#` inside strings)."""
    return re.findall(r"#[^\r\n]*", text)


def only_digits_changed(before: str, after: str) -> bool:
    return re.split(r"\d+", before) == re.split(r"\d+", after)


def inserted_block(before: str, after: str, at: int, count: int) -> list[str]:
    """The `count` lines inserted at line `at`; fails unless that is the only change."""
    old, new = split(before), split(after)
    assert len(new) == len(old) + count
    assert new[:at] == old[:at], "lines before the insertion changed"
    assert new[at + count :] == old[at:], "lines after the insertion changed"
    assert "".join(new[:at] + new[at + count :]) == before
    return new[at : at + count]


def is_insertion(before: str, after: str, at: int, count: int) -> bool:
    old, new = split(before), split(after)
    return len(new) == len(old) + count and new[:at] + new[at + count :] == old


def first_line_of(gen: Generated, layer: int) -> int:
    return min(gen.tagged(f"layer{layer}"))


def last_line_of(gen: Generated, layer: int) -> int:
    return max(gen.tagged(f"layer{layer}"))


# -- 1. every candidate gives code that parses and compiles -------------------------------------


@FAST
@given(gen=scripts())
def test_every_candidate_rewrites_to_code_that_parses_and_compiles(gen):
    script, proposals = propose_all(gen.text)
    assert candidates(proposals), "every generated model has something to change"
    for candidate in candidates(proposals):
        source = api.rewrite(script, candidate).source
        cst.parse_module(source)
        compile(source, "<rewritten>", "exec", dont_inherit=True)
        # what every rule must leave alone, wherever it edits
        assert comments(source) == comments(gen.text)
        assert source.endswith(gen.newline) == gen.text.endswith(gen.newline)
        if gen.newline == "\r\n":
            assert "\n" not in source.replace("\r\n", ""), "a bare LF in a CRLF file"


@FAST
@given(gen=scripts())
def test_splicing_the_changed_statements_gives_exactly_the_printed_module(gen):
    """The engine prints only what changed; that must be byte for byte what libcst prints."""
    script, proposals = propose_all(gen.text)
    for candidate in candidates(proposals):
        new_module = transform(script.module, candidate, script.view.parent_of)
        spliced = splice(script.module, new_module, gen.text)
        assert spliced is None or spliced == new_module.code
        assert api.rewrite(script, candidate).source == new_module.code


def test_splice_gives_up_on_a_statement_it_cannot_place_for_certain():
    text = "import keras\nx = 1\nx = 1\n"
    module = cst.parse_module(text)
    twin = module.body[1]
    changed = module.with_changes(body=[module.body[0], twin.with_changes(), module.body[2]])
    assert splice(module, changed, text) is None  # two identical `x = 1` lines
    alone = module.with_changes(body=[module.body[0], module.body[1], cst.parse_statement("y = 2\n")])
    assert splice(module, alone, text) is None  # the replaced `x = 1` is not unique either
    after_import = [module.body[0], cst.parse_statement("y = 2\n"), *module.body[1:]]
    assert splice(module, module.with_changes(body=after_import), text) == (
        "import keras\ny = 2\nx = 1\nx = 1\n"
    )  # inserted after a statement that is unique: placed


# -- 2. lines outside the edited statement stay byte for byte ---------------------------------


TOKEN_TAG = {
    "more_filters": "filters{site}",
    "wider_dense": "units{site}",
    "wider_recurrent": "units{site}",
    "larger_kernel": "kernel{site}",
    "more_epochs": "epochs",
}


@FAST
@given(gen=scripts())
def test_replacements_change_exactly_the_lines_of_the_edited_token(gen):
    script, proposals = propose_all(gen.text)
    for candidate in candidates(proposals):
        if candidate.rule not in TOKEN_TAG:
            continue
        after = api.rewrite(script, candidate).source
        expected = gen.tagged(TOKEN_TAG[candidate.rule].format(site=candidate.site))
        assert expected, "the generator recorded where the token is"
        changed = changed_lines(gen.text, after)
        assert changed == expected, candidate
        old, new = split(gen.text), split(after)
        for i in changed:
            if old[i].startswith("model.fit(") and "epochs" not in old[i]:
                assert re.search(r"epochs=2\)", new[i]), new[i]  # Keras' default of 1, doubled
            else:
                assert only_digits_changed(old[i], new[i]), (old[i], new[i])
        assert after.endswith(gen.newline) == gen.text.endswith(gen.newline)


INSERTED = {
    "add_dense": ["Dense"],
    "add_conv_block": ["Conv2D", "MaxPooling2D"],
    "add_batchnorm": ["BatchNormalization"],
}


def without_new_import(gen: Generated, after: str, rule: str) -> str:
    """`after` less the class an insertion rule added to `from keras.layers import ...`: the
    script's only plain import of layers that lacks it (the other styles spell a module)."""
    if rule != "add_batchnorm" or gen.prefix or "import *" in gen.text:
        return after
    undone, count = re.subn(r"(from keras\.layers import [^\r\n#]*?), BatchNormalization", r"\1", after)
    assert count == 1, "BatchNormalization is imported beside the other layers"
    return undone


@FAST
@given(gen=scripts(styles=("add",)))
def test_added_statements_are_pure_insertions_after_their_anchor(gen):
    script, proposals = propose_all(gen.text)
    indent, newline, prefix = map(re.escape, (gen.statement_indent, gen.newline, gen.prefix))
    for candidate in candidates(proposals):
        if candidate.rule not in INSERTED:
            continue
        after = api.rewrite(script, candidate).source
        after = without_new_import(gen, after, candidate.rule)
        kinds = INSERTED[candidate.rule]
        anchor = candidate.params["after"]
        new_lines = inserted_block(gen.text, after, last_line_of(gen, anchor) + 1, len(kinds))
        for line, kind in zip(new_lines, kinds, strict=True):
            assert re.fullmatch(
                rf"{indent}model\.add\({prefix}{kind}\([^\r\n]*\)\){newline}", line
            ), line


@FAST
@given(gen=scripts(styles=("lines", "inline")))
def test_added_list_elements_change_only_the_sequential_statement(gen):
    script, proposals = propose_all(gen.text)
    span = gen.tagged("model")
    start, end = min(span), max(span)
    for candidate in candidates(proposals):
        if candidate.rule not in INSERTED:
            continue
        after = api.rewrite(script, candidate).source
        after = without_new_import(gen, after, candidate.rule)
        old, new = split(gen.text), split(after)
        opcodes = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
        for op, i1, i2, _, _ in opcodes:
            if op != "equal":
                assert start <= i1 and i2 <= end + 1, (op, i1, i2, start, end)
        assert new[:start] == old[:start]
        assert new[len(new) - (len(old) - end - 1) :] == old[end + 1 :]
        kinds = INSERTED[candidate.rule]
        if gen.style == "lines":
            # One element per line stays so: whole new lines, right after the anchor or (past
            # the comment lines above it) right before the next element.
            anchor = candidate.params["after"]
            places = {last_line_of(gen, anchor) + 1, first_line_of(gen, anchor + 1)}
            at = next(
                (at for at in sorted(places) if is_insertion(gen.text, after, at, len(kinds))), None
            )
            assert at is not None, "new elements are whole new lines beside the anchor"
            new_lines = inserted_block(gen.text, after, at, len(kinds))
            element, newline = re.escape(gen.element_indent), re.escape(gen.newline)
            for line, kind in zip(new_lines, kinds, strict=True):
                pattern = rf"{element}{re.escape(gen.prefix)}{kind}\([^\r\n]*\),{newline}"
                assert re.fullmatch(pattern, line), line
        else:
            assert len(new) == len(old)


# -- 3. more_filters compounds at its site, up to the cap ---------------------------------------


def kernel_of(layer) -> int | tuple[int | None, ...] | None:
    return layer.int_arg(1, "kernel_size") or layer.ints_arg(1, "kernel_size")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gen=scripts(), data=st.data())
def test_more_filters_compounds_at_the_same_site_up_to_the_cap(gen, data):
    site = data.draw(st.sampled_from(conv_sites(gen)), label="site")
    filters, text = gen.layers[site].filters, gen.text
    others = {i: gen.layers[i].filters for i in conv_sites(gen) if i != site}
    kernel = kernel_of(api.Script.from_text(text).view.layers[site])
    rule = MoreFilters()
    for _ in range(12):
        script = api.Script.from_text(text)
        layer = script.view.layers[site]
        assert layer.int_arg(0, "filters") == filters
        assert kernel_of(layer) == kernel
        assert {i: script.view.layers[i].int_arg(0, "filters") for i in others} == others
        at_site = [p for p in rule.propose(script.view) if p.site == site]
        assert len(at_site) == 1
        if filters == 512:
            assert isinstance(at_site[0], Skip)
            return
        assert isinstance(at_site[0], Candidate)
        assert at_site[0].params["filters"] == [filters, min(2 * filters, 512)]
        text = api.rewrite(script, at_site[0]).source
        filters = min(2 * filters, 512)
    raise AssertionError("more_filters never reached its cap")


# -- 4. addresses are JSON and proposing is deterministic --------------------------------------


@FAST
@given(gen=scripts())
def test_addresses_are_json_and_proposals_replay(gen):
    first_script, first = propose_all(gen.text)
    again_script, again = propose_all(gen.text)
    addresses = [c.address() for c in candidates(first)]
    assert json.loads(json.dumps(addresses)) == addresses
    assert [c.address() for c in candidates(again)] == addresses
    assert [(s.rule, s.site, s.reason) for s in first if isinstance(s, Skip)] == [
        (s.rule, s.site, s.reason) for s in again if isinstance(s, Skip)
    ]
    for one, two in zip(candidates(first), candidates(again), strict=True):
        assert api.rewrite(first_script, one).source == api.rewrite(again_script, two).source


# -- 5. what is proposed matches the model that was written -----------------------------------


@FAST
@given(gen=scripts())
def test_proposals_match_the_written_model(gen):
    _, proposals = propose_all(gen.text)
    by_rule: dict[str, list[Candidate]] = {}
    for candidate in candidates(proposals):
        by_rule.setdefault(candidate.rule, []).append(candidate)
    assert {c.site: c.params["filters"] for c in by_rule.get("more_filters", [])} == {
        i: [gen.layers[i].filters, 2 * gen.layers[i].filters] for i in conv_sites(gen)
    }
    grown = expected_kernel_sites(gen)
    kernels = {c.site: c.params["kernel"] for c in by_rule.get("larger_kernel", [])}
    assert set(kernels) == set(grown)
    for site, (old, new) in kernels.items():
        assert len(old) == len(new) in (1, 2)
        assert set(old) == {gen.layers[site].kernel} and set(new) == {grown[site]}
    block = expected_conv_block(gen)
    assert [c.params for c in by_rule.get("add_conv_block", [])] == (
        [] if block is None else [{"after": block[0], "filters": block[1]}]
    )
    anchor, units = expected_dense(gen)
    assert [c.params for c in by_rule.get("add_dense", [])] == [{"after": anchor, "units": units}]
    assert {c.site: c.params["units"] for c in by_rule.get("wider_dense", [])} == {
        i: [gen.layers[i].units, 2 * gen.layers[i].units] for i in hidden_dense_sites(gen)
    }
    normalised = sorted(conv_sites(gen) + hidden_dense_sites(gen))  # none has one after it yet
    assert [c.params for c in by_rule.get("add_batchnorm", [])] == [
        {"after": i} for i in normalised
    ]
    epochs = [c.params["epochs"] for c in by_rule.get("more_epochs", [])]
    assert epochs == ([] if gen.epochs is None else [[gen.epochs, 2 * gen.epochs]])  # cap: 64x own


# -- 6. (slow) the rewritten model really builds in Keras, with the expected change ------------


def build_model(source: str, shape: tuple[int, ...] = (INPUT_SIZE, INPUT_SIZE, 1)):
    import sys

    import keras

    sys.modules.setdefault("keras_core", keras)  # Keras 3 is what keras_core was a preview of
    namespace: dict = {"__name__": "generated_script"}
    exec(compile(source, "<generated>", "exec", dont_inherit=True), namespace)
    model = namespace["model"]
    import numpy as np

    assert tuple(model(np.zeros((1, *shape), "float32")).shape) == (1, 10)
    return model


def layer_kinds(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def _check_more_filters(before, after, candidate: Candidate) -> None:
    site = candidate.site
    assert layer_kinds(after) == layer_kinds(before)
    assert after.layers[site].filters == 2 * before.layers[site].filters
    assert after.count_params() > before.count_params()


def _check_larger_kernel(before, after, candidate: Candidate) -> None:
    site = candidate.site
    assert layer_kinds(after) == layer_kinds(before)
    old, new = candidate.params["kernel"]
    assert tuple(before.layers[site].kernel_size) == tuple(old) * (2 // len(old))
    assert tuple(after.layers[site].kernel_size) == tuple(new) * (2 // len(new))


def _check_wider_dense(before, after, candidate: Candidate) -> None:
    site = candidate.site
    assert layer_kinds(after) == layer_kinds(before)
    assert [before.layers[site].units, after.layers[site].units] == candidate.params["units"]
    assert after.count_params() > before.count_params()


def _check_add_batchnorm(before, after, candidate: Candidate) -> None:
    at = candidate.params["after"] + 1
    kinds = layer_kinds(before)
    assert layer_kinds(after) == kinds[:at] + ["BatchNormalization"] + kinds[at:]


def _check_add_dense(before, after, candidate: Candidate) -> None:
    at = candidate.params["after"] + 1
    kinds = layer_kinds(before)
    assert layer_kinds(after) == kinds[:at] + ["Dense"] + kinds[at:]
    assert after.layers[at].units == candidate.params["units"]


def _check_add_conv_block(before, after, candidate: Candidate) -> None:
    at = candidate.params["after"] + 1
    kinds = layer_kinds(before)
    assert layer_kinds(after) == kinds[:at] + ["Conv2D", "MaxPooling2D"] + kinds[at:]
    assert after.layers[at].filters == candidate.params["filters"]


CHECKS: dict[str, Callable] = {
    "more_filters": _check_more_filters,
    "wider_dense": _check_wider_dense,
    "add_batchnorm": _check_add_batchnorm,
    "larger_kernel": _check_larger_kernel,
    "add_dense": _check_add_dense,
    "add_conv_block": _check_add_conv_block,
}


@pytest.fixture(scope="module")
def keras_imported():
    """Import Keras before hypothesis starts: TensorFlow's import changes the recursion limit."""
    pytest.importorskip("tensorflow")
    return pytest.importorskip("keras")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gen=scripts(), data=st.data())
def test_rewritten_model_builds_in_keras_with_the_expected_change(keras_imported, gen, data):
    before = build_model(gen.build)
    assert layer_kinds(before) == [layer.kind for layer in gen.layers]
    script, proposals = propose_all(gen.text)
    for rule in LAYER_RULES:
        options = [c for c in candidates(proposals) if c.rule == rule]
        if not options:
            continue
        candidate = data.draw(st.sampled_from(options), label=rule)
        source = api.rewrite(script, candidate).source
        assert source.endswith(gen.fit)
        after = build_model(source[: len(source) - len(gen.fit)])
        CHECKS[rule](before, after, candidate)


# -- 6. a joint change is its parts, one after the other ---------------------------------------


@FAST
@given(gen=scripts())
def test_a_joint_change_writes_what_its_parts_write_one_after_the_other(gen):
    script, proposals = propose_all(gen.text)
    epochs = [c for c in candidates(proposals) if c.rule == "more_epochs"]
    capacity = [c for c in candidates(proposals) if c.rule in LAYER_RULES]
    for first in capacity:
        for second in epochs:
            joined = api.joint(script, first, second)
            assert joined is not None, "a layer change and the epochs never share a node"
            assert joined.address() == {**first.address(), "also": [second.address()]}
            source = api.rewrite(script, joined).source
            after_first = api.Script.from_text(api.rewrite(script, first).source)
            again = [
                c
                for c in api.propose(after_first, api.rules_named(["more_epochs"]))
                if isinstance(c, Candidate) and c.address() == second.address()
            ]
            assert len(again) == 1, "the epochs change is proposed the same after a layer change"
            assert source == api.rewrite(after_first, again[0]).source


# -- 7. recurrent models: wider_recurrent, and every rule that reads them ----------------------

SEQUENCE = (INPUT_SIZE, INPUT_SIZE)  # 8 timesteps x 8 features


@FAST
@given(gen=scripts(recurrent=True))
def test_wider_recurrent_changes_only_the_units_of_its_layer(gen):
    script, proposals = propose_all(gen.text)
    wider = [c for c in candidates(proposals) if c.rule == "wider_recurrent"]
    assert {c.site: c.params["units"] for c in wider} == {
        i: [gen.layers[i].units, 2 * gen.layers[i].units] for i in recurrent_sites(gen)
    }
    for candidate in candidates(proposals):
        source = api.rewrite(script, candidate).source
        compile(source, "<rewritten>", "exec", dont_inherit=True)
        assert comments(source) == comments(gen.text)
        if candidate.rule != "wider_recurrent":
            continue
        changed = changed_lines(gen.text, source)
        assert changed == gen.tagged(f"units{candidate.site}"), candidate
        old, new = split(gen.text), split(source)
        assert all(only_digits_changed(old[i], new[i]) for i in changed)


def _units(layer) -> int:
    return layer.forward_layer.units if type(layer).__name__ == "Bidirectional" else layer.units


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gen=scripts(recurrent=True), data=st.data())
def test_a_rewritten_recurrent_model_builds_and_trains_one_step(keras_imported, gen, data):
    import numpy as np

    before = build_model(gen.build, SEQUENCE)
    assert layer_kinds(before) == [layer.kind for layer in gen.layers]
    script, proposals = propose_all(gen.text)
    for rule in ("wider_recurrent", "wider_dense", "add_dense", "add_batchnorm"):
        options = [c for c in candidates(proposals) if c.rule == rule]
        if not options:
            continue
        candidate = data.draw(st.sampled_from(options), label=rule)
        source = api.rewrite(script, candidate).source
        after = build_model(source[: len(source) - len(gen.fit)], SEQUENCE)
        if rule == "wider_recurrent":
            assert layer_kinds(after) == layer_kinds(before)
            units = [_units(before.layers[candidate.site]), _units(after.layers[candidate.site])]
            assert units == candidate.params["units"]
        else:
            CHECKS[rule](before, after, candidate)
        after.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        loss = after.train_on_batch(np.ones((4, *SEQUENCE), "float32"), np.arange(4))
        assert np.isfinite(np.asarray(loss)).all()


# -- 8. the learning rate and the batch size change where they are defined, and only there -----

TRAINING_RULES = ("higher_learning_rate", "lower_learning_rate", "smaller_batch", "larger_batch")


def expected_training_change(gen: Generated, rule: str) -> list | None:
    """[old, new] of the setting `rule` changes (default settings), or None when it cannot."""
    from mutator.engine.training_sites import format_rate

    if rule.endswith("learning_rate"):
        old = gen.learning_rate
        if old is None:
            return None
        new = min(old * 3, 1.0) if rule.startswith("higher") else max(old / 3, 1e-6)
        new = float(format_rate(new))
    else:
        old = gen.batch
        if old is None:
            return None
        new = min(old * 2, 1024) if rule == "larger_batch" else max(old // 2, 8)
    return None if new == old else [old, new]


def without_optimizer_import(gen: Generated, after: str) -> str:
    """`after` without the optimizer import a named optimizer may need, checked for its place."""
    old, new = split(gen.text), split(after)
    if len(new) == len(old):
        return after
    assert len(new) == len(old) + 1, "at most one new line: the optimizer's import"
    at = next(i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b)
    pattern = rf"from (keras|tensorflow\.keras|keras_core)\.optimizers import {gen.optimizer}"
    assert re.fullmatch(pattern + re.escape(gen.newline), new[at]), new[at]
    assert all(line.startswith(("from ", "import ", "#")) for line in old[:at]), "among imports"
    return "".join(new[:at] + new[at + 1 :])


@FAST
@given(gen=scripts())
def test_training_rules_change_their_setting_where_it_is_defined(gen):
    script, proposals = propose_all(gen.text)
    for rule in TRAINING_RULES:
        found = [c for c in candidates(proposals) if c.rule == rule]
        key = "batch_size" if rule.endswith("batch") else "learning_rate"
        expected = expected_training_change(gen, rule)
        assert [c.params[key] for c in found] == ([] if expected is None else [expected])
        for candidate in found:
            after = without_optimizer_import(gen, api.rewrite(script, candidate).source)
            tag = "batch" if key == "batch_size" else "rate"
            assert changed_lines(gen.text, after) == gen.tagged(tag), candidate


def run_until_fit(source: str) -> dict:
    """The namespace of the script run up to its fit call (Keras imported, nothing trained)."""
    import sys

    import keras

    sys.modules.setdefault("keras_core", keras)
    lines = source.splitlines(keepends=True)
    end = next((i for i, line in enumerate(lines) if line.startswith("model.fit(")), len(lines))
    namespace: dict = {"__name__": "generated_script"}
    exec(compile("".join(lines[:end]), "<generated>", "exec", dont_inherit=True), namespace)
    return namespace


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gen=scripts())
def test_training_rules_compile_in_keras_and_train_one_step(keras_imported, gen):
    import numpy as np

    script, proposals = propose_all(gen.text)
    for candidate in candidates(proposals):
        if candidate.rule not in TRAINING_RULES:
            continue
        source = api.rewrite(script, candidate).source
        namespace = run_until_fit(source)
        model = namespace["model"]
        if "learning_rate" in candidate.params:
            rate = float(np.asarray(model.optimizer.learning_rate))
            assert rate == pytest.approx(candidate.params["learning_rate"][1], rel=1e-6)
            size = 4
        else:
            size = candidate.params["batch_size"][1]
            fit = next(line for line in split(source) if line.startswith("model.fit("))
            written = re.search(r"batch_size\s*=\s*(\w+)", fit).group(1)
            assert namespace.get(written, int(written) if written.isdigit() else None) == size
            if getattr(model, "optimizer", None) is None:
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x = np.ones((size, INPUT_SIZE, INPUT_SIZE, 1), "float32")
        loss = model.train_on_batch(x, np.arange(size) % 10)
        assert np.isfinite(np.asarray(loss)).all()


# -- 8. a removal takes out its layer's lines and nothing else -----------------------------------

REMOVALS = ("remove_dense", "remove_conv_block")


def expected_removals(gen: Generated) -> dict[tuple[str, int], list[int]]:
    """(rule, site) -> the layers each removal takes out: every hidden Dense; every Conv but the
    first (it carries the input shape), with the pooling right after it."""
    found = {("remove_dense", i): [i] for i in hidden_dense_sites(gen)}
    for i in conv_sites(gen)[1:]:
        pooled = gen.layers[i + 1].kind == "MaxPooling2D"
        found[("remove_conv_block", i)] = [i, i + 1] if pooled else [i]
    return found


def propose_removals(text: str) -> tuple[api.Script, list[Candidate | Skip]]:
    script = api.Script.from_text(text)
    return script, api.propose(script, api.rules_named(REMOVALS))


@FAST
@given(gen=scripts())
def test_a_removal_takes_out_its_layers_lines_and_nothing_else(gen):
    script, proposals = propose_removals(gen.text)
    made = {(c.rule, c.site): c for c in candidates(proposals)}
    expected = expected_removals(gen)
    assert set(made) == set(expected)
    for key, candidate in made.items():
        after = api.rewrite(script, candidate).source
        if gen.style == "inline":
            # The list's line loses the elements; its comment and every other line stay.
            assert changed_lines(gen.text, after) <= gen.tagged("model")
            assert comments(after) == comments(gen.text)
            assert len(after) < len(gen.text)
            continue
        # Whole lines go: the layer's own (its end-of-line comment too, a call over several
        # lines all of them); the blank and comment lines around it stay.
        removed = set().union(*(gen.tagged(f"layer{i}") for i in expected[key]))
        kept = [line for i, line in enumerate(split(gen.text)) if i not in removed]
        assert split(after) == kept


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gen=scripts(), data=st.data())
def test_a_model_with_a_layer_removed_builds_in_keras(keras_imported, gen, data):
    script, proposals = propose_removals(gen.text)
    options = candidates(proposals)
    if not options:
        return
    candidate = data.draw(st.sampled_from(options), label="removal")
    source = api.rewrite(script, candidate).source
    assert source.endswith(gen.fit)
    after = build_model(source[: len(source) - len(gen.fit)])
    gone = expected_removals(gen)[(candidate.rule, candidate.site)]
    assert layer_kinds(after) == [layer.kind for i, layer in enumerate(gen.layers) if i not in gone]
