"""The architecture, checked: imports point one way between the rooms, and nothing cycles.

Every import in every module (those inside functions too: a lazy import is still a dependency)
is read from the syntax tree and mapped to its room. A room may import itself and the rooms
below it in LAYERS, never one above or beside it. Module-level imports must not form a cycle
between modules either, in any room. And the commands that only read scripts keep Keras,
TensorFlow, Docker, Ray and MLflow out of their process.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top. A room may import the rooms before it in this tuple, and itself.
LAYERS: tuple[str, ...] = (
    "mutator.errors",
    "mutator.engine",
    "rules",
    "mutator.api",
    "mutator.training",
    "mutator.containers",
    "mutator.cluster",
    "mutator.search",
    "mutator.publish",
    "mutator.cli",
)
# Modules that are not in a room of their own: the package's version and `python -m mutator`.
OUTSIDE_ROOMS = {"mutator": -1, "mutator.__main__": len(LAYERS)}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(root: Path = ROOT) -> dict[str, Path]:
    files = [*root.glob("mutator/**/*.py"), *root.glob("rules/*.py")]
    return {module_name(path, root): path for path in files if "__pycache__" not in path.parts}


def room_of(name: str) -> int | None:
    """The index in LAYERS of the room holding module `name`; None for outside modules."""
    if name in OUTSIDE_ROOMS:
        return OUTSIDE_ROOMS[name]
    for index, room in enumerate(LAYERS):
        if name == room or name.startswith(room + "."):
            return index
    return None


def imports_of(
    path: Path, module: str, known: dict[str, Path], *, top_level_only: bool = False
) -> set[str]:
    """Project modules `path` imports (absolute names), anywhere or only at module level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    # `from mutator.engine import rewrite` names a module; `from mutator.api import Script` not.
    return {name for name in found if name in known}


def test_every_module_is_in_a_room():
    homeless = [name for name in sources() if room_of(name) is None]
    assert homeless == [], f"add these to a room in LAYERS: {homeless}"


def wrong_way_imports(root: Path = ROOT) -> list[str]:
    known = sources(root)
    wrong = []
    for module, path in sorted(known.items()):
        mine = room_of(module)
        for imported in sorted(imports_of(path, module, known)):
            theirs = room_of(imported)
            if theirs is not None and mine is not None and theirs > mine:
                wrong.append(f"{module} imports {imported} ({LAYERS[theirs]} is above it)")
    return wrong


def test_imports_point_down_the_layers():
    wrong = wrong_way_imports()
    assert wrong == [], "\n".join(wrong)


def test_no_cycle_between_modules_at_import_time():
    known = sources()
    graph = {
        module: imports_of(path, module, known, top_level_only=True) - {module}
        for module, path in known.items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_no_cycle_between_rooms_even_through_lazy_imports():
    rooms: dict[str, set[str]] = {}
    known = sources()
    for module, path in known.items():
        mine = room_of(module)
        if mine is None or not 0 <= mine < len(LAYERS):
            continue
        for imported in imports_of(path, module, known):
            theirs = room_of(imported)
            if theirs is not None and 0 <= theirs < len(LAYERS) and theirs != mine:
                rooms.setdefault(LAYERS[mine], set()).add(LAYERS[theirs])
    cycle = find_cycle(rooms)
    assert cycle is None, " -> ".join(cycle or [])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that returns to its start, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_a_wrong_way_import_is_caught_even_inside_a_function(tmp_path):
    """The checker itself, on a small tree: an engine module importing the search."""
    for name, text in {
        "mutator/engine/bad.py": "def later():\n    from mutator.search import hillclimb\n",
        "mutator/engine/good.py": "from mutator.errors import MutatorError\n",
        "mutator/search/hillclimb.py": "from mutator.engine import good\n",
        "mutator/errors.py": "",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert wrong_way_imports(tmp_path) == [
        "mutator.engine.bad imports mutator.search.hillclimb (mutator.search is above it)"
    ]


HEAVY = ("keras", "tensorflow", "docker", "ray", "mlflow")


@pytest.mark.parametrize(
    "argv",
    [
        ["preview", "{script}"],
        ["apply", "{script}", "--rule", "more_filters"],
        ["inspect", "{script}"],
        ["hook", "{script}"],
        ["rules"],
    ],
    ids=["preview", "apply", "inspect", "hook", "rules"],
)
def test_commands_that_read_scripts_never_import_heavy_packages(argv):
    script = ROOT / "fixtures" / "cnn_digits.py"
    args = [part.format(script=script) for part in argv]
    code = textwrap.dedent(
        f"""
        import sys
        from mutator.cli import main
        code = main({args!r})
        heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
        print('HEAVY', heavy, file=sys.stderr)
        sys.exit(code)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stderr, done.stderr
