"""The engine changes only what a candidate targets, verifies the result, and writes atomically."""

from __future__ import annotations

from textwrap import dedent

import libcst as cst
import pytest

from mutator import api
from mutator.engine.candidate import Candidate, InsertStatements, RemoveStatement, Replace, Skip
from mutator.engine.removal import without_element
from mutator.engine.rewrite import apply_candidate, unified_diff
from mutator.engine.source import write_atomically
from mutator.errors import RewriteError

MESSY = (
    "# -*- coding: utf-8 -*-\r\n"
    "# précision ≥ 95 % — entraînement\r\n"
    "from keras import Sequential\r\n"
    "from keras.layers import Conv2D, Flatten, Dense\r\n"
    "\r\n"
    "if __name__ == '__main__':\r\n"
    "\tmodel = Sequential()\r\n"
    "\tmodel.add(Conv2D(\r\n"
    "\t\t4,  # few filters on purpose\r\n"
    "\t\tkernel_size=(3,3),\r\n"
    "\t\tactivation='relu', input_shape=(8,8,1)\r\n"
    "\t))\r\n"
    "\tmodel.add(Flatten())\r\n"
    "\r\n"
    "\t# the classifier\r\n"
    "\tmodel.add(Dense(10, activation='softmax'))\r\n"
    "\tmodel.fit(x, y, epochs = 2)"
)


def rewrite(text: str, rule: str, site: int | None = None) -> str:
    script = api.Script.from_text(text)
    candidate = api.choose(api.propose(script, api.rules_named([rule])), site)
    return api.rewrite(script, candidate).source


def test_replacement_changes_one_token_and_keeps_every_other_byte():
    out = rewrite(MESSY, "more_filters")
    assert out == MESSY.replace("\t\t4,  # few", "\t\t8,  # few")


def test_epochs_with_spaces_around_equals_keeps_them():
    assert rewrite(MESSY, "more_epochs").endswith("\tmodel.fit(x, y, epochs = 4)")


def test_inserted_statement_uses_the_files_newline_and_indent():
    out = rewrite(MESSY, "add_dense")
    assert out == MESSY.replace(
        "\tmodel.add(Flatten())\r\n",
        "\tmodel.add(Flatten())\r\n\tmodel.add(Dense(64, activation='relu'))\r\n",
    )
    assert "\n" not in out.replace("\r\n", "")  # no bare LF slipped in


def test_inserted_block_in_a_crlf_tab_file():
    out = rewrite(MESSY, "add_conv_block")
    expected = MESSY.replace(
        # MaxPooling2D was not imported: the import gains it, nothing else on that line changes.
        "from keras.layers import Conv2D, Flatten, Dense\r\n",
        "from keras.layers import Conv2D, Flatten, Dense, MaxPooling2D\r\n",
    ).replace(
        "\t))\r\n",
        # The clone keeps the neighbour's habits (keyword kernel, quotes) but not its comment nor
        # its input_shape; with no pooling layer to copy, a MaxPooling2D is written.
        "\t))\r\n\tmodel.add(Conv2D(8, kernel_size=(3,3), activation='relu'))\r\n"
        "\tmodel.add(MaxPooling2D((2, 2)))\r\n",
    )
    assert out == expected


def test_list_style_insert_keeps_one_element_per_line_and_comments():
    text = (
        "import keras\nfrom keras import layers\n"
        "model = keras.Sequential([\n"
        "    layers.Flatten(input_shape=(8, 8)),  # flat\n"
        '    layers.Dense(10, activation="softmax")\n'
        "])\n"
    )
    assert rewrite(text, "add_dense") == text.replace(
        "  # flat\n", '  # flat\n    layers.Dense(64, activation="relu"),\n'
    )


def test_adding_epochs_to_a_fit_without_them():
    text = (
        "from keras.models import Sequential\nfrom keras.layers import Dense\n"
        "model = Sequential([Dense(10)])\nmodel.fit(\n    x,\n    y,\n)\n"
    )
    out = rewrite(text, "more_epochs")
    assert out.endswith("model.fit(\n    x,\n    y,\n    epochs=2,\n)\n")


def test_a_candidate_that_breaks_the_code_is_refused():
    module = cst.parse_module("x = 1\n")
    # libcst prints it, but CPython refuses it: the compile step must catch that too.
    broken = Candidate(
        "evil", 0, {}, "breaks", (Replace(module.body[0], cst.parse_statement("return 1\n")),)
    )
    with pytest.raises(RewriteError, match="rule evil produced invalid code"):
        apply_candidate(module, broken)


def test_an_edit_that_finds_no_place_is_refused():
    module = cst.parse_module("x = 1\n")
    stray = cst.parse_statement("y = 2\n")
    lost = Candidate("lost", 0, {}, "nowhere", (InsertStatements(stray, (stray,)),))
    with pytest.raises(RewriteError, match="rule lost: 1 edit"):
        apply_candidate(module, lost)


def test_diff_marks_a_missing_final_newline():
    diff = unified_diff("a = 1", "a = 2", "f.py")
    assert diff.endswith("+a = 2\n\\ No newline at end of file\n")


def test_write_atomically_keeps_mode_and_leaves_no_temp(tmp_path):
    target = tmp_path / "train.py"
    target.write_text("old\n")
    target.chmod(0o755)
    write_atomically(target, "new\r\n")
    assert target.read_bytes() == b"new\r\n"
    assert target.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["train.py"]


def test_comment_lines_above_the_next_element_stay_with_it():
    text = (
        "import keras\nfrom keras import layers\n"
        "model = keras.Sequential([\n"
        "    layers.Flatten(input_shape=(8, 8)),  # flat\n\n"
        "    # the classifier\n"
        '    layers.Dense(10, activation="softmax"),\n'
        "])\n"
    )
    assert rewrite(text, "add_dense") == text.replace(
        "  # flat\n", '  # flat\n    layers.Dense(64, activation="relu"),\n'
    )


# -- joint changes ------------------------------------------------------------------------------

JOINT = """\
from keras.models import Sequential
from keras.layers import Conv2D, Flatten, Dense

model = Sequential()
model.add(Conv2D(4, (3, 3), input_shape=(8, 8, 1)))  # small on purpose
model.add(Flatten())
model.add(Dense(10, activation='softmax'))
model.fit(x, y, epochs=2)
"""


def first_of(script: api.Script, rule: str) -> Candidate:
    return api.choose(api.propose(script, api.rules_named([rule])))


def test_a_joint_change_makes_both_edits_and_names_both_rules():
    script = api.Script.from_text(JOINT)
    joined = api.joint(script, first_of(script, "more_filters"), first_of(script, "more_epochs"))
    assert joined is not None
    assert joined.rules == ("more_filters", "more_epochs")
    assert joined.description == (
        "layer 0 (Conv2D): filters 4 -> 8, with epochs 2 -> 4 (epochs=2 in the fit call)"
    )
    source = api.rewrite(script, joined).source
    assert source == JOINT.replace("Conv2D(4,", "Conv2D(8,").replace("epochs=2", "epochs=4")


def test_no_joint_change_where_the_edits_meet_or_the_rule_is_the_same():
    script = api.Script.from_text(JOINT)
    filters = first_of(script, "more_filters")
    call = filters.edits[0].old
    inside = Candidate("larger_kernel", 0, {}, "touches the same node", (Replace(call, call),))
    assert api.joint(script, filters, inside) is None
    code = script.module.code_for_node
    statement = next(s for s in script.module.body if "add(Conv2D" in code(s))
    around = Candidate("add_dense", 0, {}, "after its line", (InsertStatements(statement, ()),))
    assert api.joint(script, filters, around) is None  # the insertion's anchor holds the edit
    assert api.joint(script, filters, filters) is None
    joined = api.joint(script, filters, first_of(script, "more_epochs"))
    assert joined is not None
    assert api.joint(script, joined, first_of(script, "more_epochs")) is None  # epochs twice
    assert api.joint(script, first_of(script, "more_epochs"), joined) is None  # nested second


TWO_LAYERS = """from keras.models import Sequential
from keras.layers import Dense

model = Sequential()
model.add(Dense(4, activation="relu", input_dim=8))  # first
model.add(Dense(4, activation="relu"))
model.add(Dense(2, activation="softmax"))
model.fit(x, y, epochs=3)
"""


def test_every_layer_wider_is_one_change_and_joins_more_epochs():
    script = api.Script.from_text(TWO_LAYERS)
    widths = [
        c for c in api.propose(script, api.rules_named(["wider_dense"])) if isinstance(c, Candidate)
    ]
    assert [c.site for c in widths] == [0, 1]  # the output layer keeps its size
    wider = api.joint_all(script, widths)
    assert wider is not None and wider.rules == ("wider_dense", "wider_dense")
    assert api.joint_all(script, widths[:1]) is None  # one layer: its own change, nothing joined
    assert api.joint_all(script, [widths[0], widths[0]]) is None  # the same site twice
    both = api.joint(script, wider, first_of(script, "more_epochs"))
    assert both is not None and both.rules == ("wider_dense", "wider_dense", "more_epochs")
    assert [part.address()["site"] for part in both.also] == [1, 0]
    source = api.rewrite(script, both).source
    assert source == TWO_LAYERS.replace("Dense(4,", "Dense(8,").replace("epochs=3", "epochs=6")


# -- removals -----------------------------------------------------------------------------------


def test_removed_statement_takes_its_own_comment_in_a_crlf_tab_file():
    hidden = "\tmodel.add(Dense(32, activation='relu'))  # hidden, on purpose\r\n"
    text = MESSY.replace("\tmodel.add(Flatten())\r\n", "\tmodel.add(Flatten())\r\n" + hidden)
    # Every other byte stays, the missing final newline too.
    assert rewrite(text, "remove_dense") == MESSY


def test_comment_lines_above_a_removed_statement_stay():
    text = dedent("""\
        from keras.models import Sequential
        from keras.layers import Dense, Flatten
        model = Sequential()
        model.add(Flatten(input_shape=(8, 8)))

        # the head
        model.add(Dense(64, activation="relu"))  # goes with its line
        model.add(Dense(10))
        """)
    assert rewrite(text, "remove_dense") == text.replace(
        '\nmodel.add(Dense(64, activation="relu"))  # goes with its line', ""
    )


def test_removing_a_blocks_last_statement_keeps_the_comment_lines_above_it():
    module = cst.parse_module("if ok:\n    a = 1\n    # about b\n    b = 2  # b\n# after\nc = 3\n")
    last = module.body[0].body.body[-1]
    removal = Candidate("cut", 0, {}, "b goes", (RemoveStatement(last),))
    out = apply_candidate(module, removal).source
    assert out == "if ok:\n    a = 1\n    # about b\n# after\nc = 3\n"


def test_a_subclassed_layer_leaves_init_and_call():
    text = dedent("""\
        import keras
        from keras import layers


        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.flat = layers.Flatten()
                self.hidden = layers.Dense(32)  # hidden
                self.out = layers.Dense(10)

            def call(self, inputs):
                x = self.flat(inputs)
                # the head
                x = self.hidden(x)
                return self.out(x)


        model = Net()
        """)
    expected = text.replace("        self.hidden = layers.Dense(32)  # hidden\n", "").replace(
        "        x = self.hidden(x)\n", ""
    )
    assert rewrite(text, "remove_dense") == expected


def test_one_line_list_loses_one_element_and_its_comma():
    text = (
        "from keras.models import Sequential\nfrom keras.layers import Dense, Flatten\n"
        "model = Sequential([Flatten(input_shape=(8, 8)), Dense(32), Dense(10)])\n"
    )
    assert rewrite(text, "remove_dense") == text.replace(" Dense(32),", "")


ONE_PER_LINE = """\
[
    A,  # a
    # above B
    B,  # b
    # above C
    C,  # c
]"""


@pytest.mark.parametrize(
    ("before", "index", "after"),
    [
        ("[A, B, C]", 0, "[B, C]"),
        ("[A, B, C]", 1, "[A, C]"),
        ("[A, B, C]", 2, "[A, B]"),
        ("[A, B, ]", 1, "[A, ]"),
        (ONE_PER_LINE, 0, ONE_PER_LINE.replace("    A,  # a\n", "")),
        (ONE_PER_LINE, 1, ONE_PER_LINE.replace("    B,  # b\n", "")),
        (ONE_PER_LINE, 2, ONE_PER_LINE.replace("    C,  # c\n", "")),
        ("[  # layers\n    A,  # a\n    B,\n]", 0, "[  # layers\n    B,\n]"),
        ("[\n    A,  # a\n    B  # b\n]", 1, "[\n    A  # a\n]"),
        ("[A, B,  # b\n    # about C\n    C]", 1, "[A,\n    # about C\n    C]"),
    ],
)
def test_an_element_leaves_its_list_with_its_comma_and_own_comment(before, index, after):
    node = cst.parse_expression(before)
    assert isinstance(node, cst.List)
    new = without_element(node, node.elements[index])
    assert cst.Module([]).code_for_node(new) == after


_DENSE = "from keras.models import Sequential\nfrom keras.layers import Dense, Flatten\n"
_KERAS = "import keras\nfrom keras import layers\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            _DENSE + "model = Sequential()\nmodel.add(Flatten(input_shape=(8, 8)))\n"
            "model.add(Dense(64)); model.add(Dense(32))\nmodel.add(Dense(10))\n",
            "layer 2 is on a line with other statements",
        ),
        (
            _DENSE + "model = Sequential()\nmodel.add(Flatten(input_shape=(8, 8)))\n"
            "if BIG:\n    model.add(Dense(64))\nmodel.add(Dense(10))\n",
            "layer 1 is the only statement of its block",
        ),
        (
            _DENSE + "model = Sequential()\nmodel.add(Flatten(input_shape=(8, 8)))\n"
            "for units in (64, 32):\n    model.add(Dense(units))\nmodel.add(Dense(10))\n",
            "layer 1 is added inside a loop",
        ),
        (
            _KERAS + "inputs = keras.Input(shape=(8,))\nx = layers.Dense(8)(inputs)\n"
            "h = layers.Dense(16)(x)\nmodel = keras.Model(inputs, layers.Dense(1)(h))\n",
            "layer 1 takes `x` and names its output `h`",
        ),
        (
            _KERAS + "inputs = keras.Input(shape=(8,))\nx = layers.Dense(8)(inputs)\n"
            "x = layers.Dropout(0.1)(layers.Dense(16)(x))\n"
            "model = keras.Model(inputs, layers.Dense(1)(x))\n",
            "layer 1 (Dense) is applied inline",
        ),
        (
            _KERAS + "class Net(keras.Model):\n    def __init__(self):\n"
            "        super().__init__()\n        self.flat = layers.Flatten()\n"
            "        self.hidden = layers.Dense(32)\n        self.out = layers.Dense(10)\n"
            "        self.hidden.trainable = False\n\n"
            "    def call(self, inputs):\n        x = self.flat(inputs)\n"
            "        x = self.hidden(x)\n        return self.out(x)\n\n\nmodel = Net()\n",
            "self.hidden is used elsewhere in the class",
        ),
    ],
    ids=["one-line", "only-in-block", "loop", "renamed", "inline", "attribute-used"],
)
def test_a_layer_that_cannot_be_taken_out_alone_is_skipped_saying_why(text, reason):
    script = api.Script.from_text(text)
    proposals = api.propose(script, api.rules_named(["remove_dense"]))
    reasons = [p.reason for p in proposals if isinstance(p, Skip)]
    assert not [p for p in proposals if isinstance(p, Candidate)]
    assert any(r.startswith(reason) for r in reasons), reasons
