"""Properties of every rule on generated functional scripts with branches and merges.

`tests/engine/test_properties.py` generates Sequential scripts; this module generates the
functional kind its strategy does not write: one or two `keras.Input`s, two or three Dense
branches (each on an input, so one input may feed several), merged by a Concatenate or an Add in
any of their spellings, sometimes a hidden Dense after the merge, a classifier. The branches are
written on names of their own, or all on `x` with an alias taken at each branch's end, or inline
in the merge's list. What the generator knows (which layer reads which, which widths an Add ties
together) is checked against what the rules propose and what their rewrites read back as.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutator import api
from mutator.engine.candidate import Candidate
from rules import default_rules

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# import lines -> how keras.Input, Model, a layer class and a merge (class, function) are spelled
IMPORTS = {
    "layers_module": (
        "import keras\nfrom keras import layers\n",
        "keras.Input",
        "keras.Model",
        "layers.{}",
        "layers.{}",
    ),
    "keras_layers": (
        "import keras\n",
        "keras.Input",
        "keras.Model",
        "keras.layers.{}",
        "keras.layers.{}",
    ),
    "tf": (
        "import tensorflow as tf\n",
        "tf.keras.Input",
        "tf.keras.Model",
        "tf.keras.layers.{}",
        "tf.keras.layers.{}",
    ),
    "from": (
        "from keras.models import Model\n"
        "from keras.layers import Input, Dense, Concatenate, Add, concatenate, add\n",
        "Input",
        "Model",
        "{}",
        "{}",
    ),
}
INSERTED = {"add_dense": 1, "add_batchnorm": 1, "add_dropout": 1}


@dataclass(frozen=True)
class Branch:
    source: int  # the input it reads
    units: tuple[int, ...]  # its Dense layers


@dataclass(frozen=True)
class Graph:
    text: str
    inputs: int
    branches: tuple[Branch, ...]
    merge: str  # "Concatenate" or "Add"
    hidden: int | None  # units of a Dense after the merge
    naming: str  # "own", "reused" or "inline"

    def sites(self) -> list[tuple[str, int, int]]:
        """(what, branch or -1, position) of each layer, in the order the script applies them."""
        found = [
            ("dense", b, i)
            for b, branch in enumerate(self.branches)
            for i in range(len(branch.units))
        ]
        found.append(("merge", -1, 0))
        if self.hidden is not None:
            found.append(("hidden", -1, 0))
        return [*found, ("output", -1, 0)]

    def widenable(self) -> set[int]:
        """The sites wider_dense may widen: not the output, not a branch's last Dense before an
        Add (the other branches' widths would no longer match)."""
        sites = set()
        for site, (what, branch, position) in enumerate(self.sites()):
            if what == "hidden":
                sites.add(site)
            last = what == "dense" and position == len(self.branches[branch].units) - 1
            if what == "dense" and not (last and self.merge == "Add"):
                sites.add(site)
        return sites


@st.composite
def graphs(draw) -> Graph:
    header, input_call, model_call, layer, merge_spelling = IMPORTS[
        draw(st.sampled_from(sorted(IMPORTS)))
    ]
    inputs = draw(st.integers(1, 2))
    merge = draw(st.sampled_from(["Concatenate", "Add"]))
    width = draw(st.integers(1, 16))  # the last width of every branch, when they are added
    branches = []
    for number in range(draw(st.integers(2, 3))):
        units = list(draw(st.lists(st.integers(1, 16), min_size=1, max_size=2)))
        if merge == "Add":
            units[-1] = width
        branches.append(Branch(number % inputs, tuple(units)))
    hidden = draw(st.one_of(st.none(), st.integers(1, 16)))
    naming = draw(st.sampled_from(["own", "reused", "inline"]))
    function = draw(st.booleans())  # `concatenate([...])` rather than `Concatenate()([...])`
    activation = draw(st.sampled_from(["", ', activation="relu"']))

    def dense(units: int, taken: str) -> str:
        return f"{layer.format('Dense')}({units}{activation})({taken})"

    lines = [header]
    sizes = draw(st.lists(st.integers(2, 12), min_size=inputs, max_size=inputs))
    for i, size in enumerate(sizes):
        lines.append(f"in_{i} = {input_call}(shape=({size},))")
    ends = []
    for b, branch in enumerate(branches):
        taken = f"in_{branch.source}"
        if naming == "inline":
            for units in branch.units:
                taken = dense(units, taken)
            ends.append(taken)
            continue
        name = "x" if naming == "reused" else f"branch_{b}"
        for units in branch.units:
            lines.append(f"{name} = {dense(units, taken)}")
            taken = name
        if naming == "reused":
            lines.append(f"end_{b} = x")
            name = f"end_{b}"
        ends.append(name)
    listed = ", ".join(ends)
    if function:
        merged = f"{merge_spelling.format(merge.lower())}([{listed}])"
    else:
        merged = f"{merge_spelling.format(merge)}()([{listed}])"
    lines.append(f"merged = {merged}")
    if hidden is not None:
        lines.append(f"merged = {dense(hidden, 'merged')}")
    lines.append(f"out = {layer.format('Dense')}(10)(merged)")
    model_inputs = ", ".join(f"in_{i}" for i in range(inputs))
    lines.append(f"model = {model_call}(inputs=[{model_inputs}], outputs=out)")
    lines.append("model.fit(x_data, y_data, epochs=2)")
    text = "\n".join(lines) + "\n"
    return Graph(text, inputs, tuple(branches), merge, hidden, naming)


def propose_all(graph: Graph) -> tuple[api.Script, list[Candidate]]:
    script = api.Script.from_text(graph.text)
    made = [p for p in api.propose(script, default_rules()) if isinstance(p, Candidate)]
    return script, made


# -- reading -------------------------------------------------------------------------------------


@FAST
@given(graph=graphs())
def test_the_whole_graph_is_read(graph):
    view = api.Script.from_text(graph.text).view
    sites = graph.sites()
    kinds = [layer.kind for layer in view.layers]
    assert kinds == [{"merge": graph.merge}.get(what, "Dense") for what, _, _ in sites]
    assert len(view.flow.inputs) == graph.inputs and view.notes == ()
    merge = next(i for i, (what, _, _) in enumerate(sites) if what == "merge")
    ends = [
        i
        for i, (what, branch, position) in enumerate(sites)
        if what == "dense" and position == len(graph.branches[branch].units) - 1
    ]
    assert view.flow.reads[merge] == tuple(ends)
    for i, (what, branch, position) in enumerate(sites):
        if what == "dense" and position == 0:
            assert view.flow.reads_inputs[i] == (graph.branches[branch].source,)
        elif what == "dense":
            assert view.flow.reads[i] == (i - 1,)


# -- what the rules propose, and what their rewrites read back as ------------------------------


@FAST
@given(graph=graphs())
def test_wider_dense_widens_every_branch_but_where_an_add_ties_the_widths(graph):
    _, made = propose_all(graph)
    widened = {c.site for c in made if c.rule == "wider_dense"}
    assert widened == graph.widenable()


@FAST
@given(graph=graphs())
def test_an_inserted_layer_takes_its_anchor_and_is_taken_by_the_anchors_readers(graph):
    """The new layer sits between its anchor and what took the anchor's output, and nothing
    else in the graph changes: another branch never takes it."""
    script, made = propose_all(graph)
    before = script.view
    for candidate in made:
        source = api.rewrite(script, candidate).source
        cst.parse_module(source)
        after = api.Script.from_text(source).view
        assert after.notes == before.notes and len(after.flow.inputs) == graph.inputs
        count = INSERTED.get(candidate.rule, 0)
        assert len(after.layers) == len(before.layers) + count, candidate
        if not count:
            assert after.flow.reads == before.flow.reads
            continue
        anchor = candidate.params["after"]
        new = anchor + 1

        def moved(i: int, new: int = new) -> int:
            return i if i < new else i + 1

        assert after.flow.reads[new] == (anchor,), candidate
        expected = [
            tuple(new if r == anchor else moved(r) for r in reads) for reads in before.flow.reads
        ]
        got = [reads for i, reads in enumerate(after.flow.reads) if i != new]
        assert got == expected, candidate


# -- (slow) Keras builds the rewrites ------------------------------------------------------------


def build(source: str):
    import numpy as np

    namespace: dict = {}
    exec(compile(source[: source.index("model.fit(")], "<graph>", "exec"), namespace)
    model = namespace["model"]
    x = [np.ones((4, *tuple(t.shape[1:])), "float32") for t in model.inputs]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    loss = model.train_on_batch(x, np.arange(4))
    assert np.isfinite(np.asarray(loss)).all()
    return model


@pytest.fixture(scope="module")
def keras_imported():
    pytest.importorskip("tensorflow")
    return pytest.importorskip("keras")


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=graphs(), data=st.data())
def test_every_rule_rewrites_a_graph_keras_builds(keras_imported, graph, data):
    script, made = propose_all(graph)
    build(graph.text)
    for rule in sorted({c.rule for c in made if c.rule in INSERTED or c.rule == "wider_dense"}):
        candidate = data.draw(st.sampled_from([c for c in made if c.rule == rule]), label=rule)
        build(api.rewrite(script, candidate).source)
