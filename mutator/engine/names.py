"""Which module a name in the script comes from: an import table per scope, as Python binds names.

`import tensorflow as tf` makes `tf.keras.layers.Conv2D` mean `tensorflow.keras.layers.Conv2D`;
`from keras.layers import Conv2D as C` makes `C` mean `keras.layers.Conv2D`; `layers =
tf.keras.layers` is followed too. A name rebound to anything else (a parameter called `layers`,
`Dense = MyDense`) no longer resolves, so a same-named class from elsewhere is never taken for a
Keras layer. This is what libcst's QualifiedNameProvider computes, at a tenth of the cost: that
provider needs three metadata passes over the whole tree, which made `preview` 10x its parse.
"""

from __future__ import annotations

import libcst as cst
from libcst.helpers import get_full_name_for_node

_LOCAL = ""  # bound in the script to something that is not an import
LOCAL_CLASS = "<class>"  # the prefix of a class of the script's own that the collector tracks


class Bindings:
    def __init__(self) -> None:
        self._scopes: list[tuple[str, dict[str, str]]] = [("module", {})]

    def push(self, kind: str) -> None:
        """Enter a function or class body; its names shadow the enclosing ones."""
        self._scopes.append((kind, {}))

    def pop(self) -> None:
        self._scopes.pop()

    def bind_import(self, node: cst.Import | cst.ImportFrom) -> None:
        names = self._scopes[-1][1]
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = get_full_name_for_node(alias.name) or ""
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    names[alias.asname.name.value] = full
                else:
                    top = full.split(".", 1)[0]
                    names[top] = top
            return
        if node.relative or node.module is None or isinstance(node.names, cst.ImportStar):
            return
        module = get_full_name_for_node(node.module) or ""
        for alias in node.names:
            imported = get_full_name_for_node(alias.name) or ""
            local = alias.asname.name if alias.asname is not None else alias.name
            if isinstance(local, cst.Name):
                names[local.value] = f"{module}.{imported}"

    def bind(self, target: cst.BaseExpression, value: cst.BaseExpression | None = None) -> None:
        """`target = value`: an alias when value names an import, else a local that shadows."""
        if isinstance(target, cst.Name):
            resolved = self.resolve(value) if value is not None else None
            self._scopes[-1][1][target.value] = resolved or _LOCAL
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self.bind(element.value)

    def bind_marker(self, name: str, marker: str) -> None:
        """`name` is a class of the script's own, known to the collector as `marker`."""
        self._scopes[-1][1][name] = marker

    def resolve(self, expr: cst.BaseExpression | None) -> str | None:
        """The qualified name of a dotted expression, or None when it is not from an import."""
        if expr is None:
            return None
        dotted = get_full_name_for_node(expr)
        if not dotted or not isinstance(expr, (cst.Name, cst.Attribute)):
            return None
        head, _, rest = dotted.partition(".")
        bound = self._lookup(head)
        if not bound:
            return None
        return f"{bound}.{rest}" if rest else bound

    def visible(self) -> dict[str, str]:
        """Every name bound here, as `resolve` sees it: an import's qualified name, or "" for a
        name the script binds to anything else."""
        innermost = len(self._scopes) - 1
        found: dict[str, str] = {}
        for depth in range(innermost + 1):
            kind, names = self._scopes[depth]
            if kind != "class" or depth == innermost:
                found.update(names)
        return found

    def is_unbound(self, name: str) -> bool:
        return self._lookup(name) is None

    def _lookup(self, name: str) -> str | None:
        innermost = len(self._scopes) - 1
        for depth in range(innermost, -1, -1):
            kind, names = self._scopes[depth]
            if kind == "class" and depth != innermost:
                continue  # class bodies are not enclosing scopes for their methods
            if name in names:
                return names[name]
        return None
