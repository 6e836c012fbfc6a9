"""Which environment a script needs (seed jobs 2-3): cnn, ann or sklearn, from what it imports and
the layers of the model it builds; read with libcst, never by searching the text.

The seeds grepped for `Conv2D` (a comment matched) or tested `'keras' or 'tensorflow' in code`
(always true); here a comment or a string never counts, only imports and resolved layer calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from libcst.helpers import get_full_name_for_node

from mutator.engine import keras_names
from mutator.engine.locate import locate
from mutator.engine.source import load_module
from mutator.engine.walk import walk
from mutator.errors import ModelNotFoundError

#: Which image trains which kind; `[tool.mutator.images]` in the configuration overrides it.
DEFAULT_IMAGES = {
    "cnn": "mutator-keras:latest",
    "ann": "mutator-keras:latest",
    "sklearn": "mutator-sklearn:latest",
}
KERAS_MODULES = frozenset({"keras", "keras_core", "tensorflow", "tf_keras"})


@dataclass(frozen=True)
class Detection:
    kind: str | None  # "cnn" | "ann" | "sklearn" | None (unknown)
    reason: str
    image: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind or "unknown", "reason": self.reason, "image": self.image}


class _Imports:
    def __init__(self) -> None:
        self.roots: set[str] = set()

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            self.roots.add((get_full_name_for_node(alias.name) or "").split(".")[0])
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if node.module is not None and not node.relative:
            self.roots.add((get_full_name_for_node(node.module) or "").split(".")[0])
        return False


def imported_roots(module: cst.Module) -> set[str]:
    """Top-level packages the script imports, anywhere in it (also inside functions)."""
    collector = _Imports()
    walk(module, collector)
    return collector.roots


def detect(path: Path, images: Mapping[str, str] | None = None) -> Detection:
    """The kind of `path` and its image; kind None with the reason when it is none of them."""
    _, module = load_module(path)
    return classify(module, {**DEFAULT_IMAGES, **(images or {})})


def classify(module: cst.Module, images: Mapping[str, str]) -> Detection:
    roots = imported_roots(module)
    uses_keras = sorted(roots & KERAS_MODULES)
    if uses_keras:
        try:
            view = locate(module)
        except ModelNotFoundError as exc:
            return Detection(None, f"imports {', '.join(uses_keras)} but {exc}", None)
        convs = view.layers_of(keras_names.CONV_KINDS)
        if convs:
            kinds = ", ".join(sorted({layer.kind for layer in convs}))
            return Detection(
                "cnn", f"model {view.name!r} has convolution layers ({kinds})", images.get("cnn")
            )
        return Detection("ann", f"model {view.name!r} has no convolution layer", images.get("ann"))
    if "sklearn" in roots:
        return Detection(
            "sklearn", "imports scikit-learn and no keras/tensorflow", images.get("sklearn")
        )
    return Detection(None, "imports neither keras/tensorflow nor scikit-learn", None)


def detect_kind(path: Path) -> str | None:
    """Just the kind: what the Docker runner needs to choose an image."""
    return detect(path).kind
