"""One read-only walk over a script that records, in source order, every fact the locator needs.

It decides nothing: which model is trained, and where its epochs live, is `locate`'s business.
"""

from __future__ import annotations

import libcst as cst
from libcst.helpers import get_full_name_for_node

from mutator.engine import keras_names
from mutator.engine.facts import AddCall, Assignment, Construction, FitCall, ScriptFacts
from mutator.engine.names import LOCAL_CLASS, Bindings
from mutator.engine.walk import walk


class _FactCollector:
    def __init__(self, facts: ScriptFacts) -> None:
        self.facts = facts
        self.bindings = Bindings()
        self._scopes: list[str] = ["<module>"]
        self._loops = [0]
        self._depth = [0]  # indented blocks entered within the current scope
        self._statements: list[cst.SimpleStatementLine] = []
        self._order = 0

    # -- scopes, loops and statements --------------------------------------------------------
    def _enter(self, kind: str, name: str) -> str:
        qualified = name if self._scopes == ["<module>"] else f"{self._scopes[-1]}.{name}"
        self._scopes.append(qualified)
        self._loops.append(0)
        self._depth.append(0)
        self.bindings.push(kind)
        return qualified

    def _exit(self) -> None:
        self._scopes.pop()
        self._loops.pop()
        self._depth.pop()
        self.bindings.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.bindings.bind(node.name)
        self.facts.functions[self._enter("function", node.name.value)] = node
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            self.bindings.bind(param.name)
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                self.bindings.bind(star.name)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._exit()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        marker = self._classify(node)
        if marker is not None:
            self.bindings.bind_marker(node.name.value, marker)
        else:
            self.bindings.bind(node.name)
        self._enter("class", node.name.value)

    def _classify(self, node: cst.ClassDef) -> str | None:
        """A marker binding for a subclass of a Keras layer (its kind is the base's), else None;
        a subclass of keras.Model is noted, so the locator can say why it cannot read it."""
        for base in node.bases:
            qualified = self.bindings.resolve(base.value)
            if qualified is None:
                continue
            if keras_names.is_functional_model(qualified) or keras_names.is_sequential(qualified):
                self.facts.model_subclasses.append(node.name.value)
                return None
            inherited = self.facts.layer_subclasses.get(qualified)
            cls = keras_names.layer_class(qualified)
            if cls is not None or inherited is not None:
                marker = f"{LOCAL_CLASS}{self._scope}.{node.name.value}"
                base_code = self.facts.module.code_for_node(base.value)
                kind = keras_names.canonical_kind(cls) if cls is not None else inherited[0]
                written = base_code if cls is not None else inherited[1]
                self.facts.layer_subclasses[marker] = (kind, written)
                return marker
        return None

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self._exit()

    def visit_For(self, node: cst.For) -> None:
        self._loops[-1] += 1
        self.bindings.bind(node.target)

    def leave_For(self, node: cst.For) -> None:
        self._loops[-1] -= 1

    def visit_While(self, node: cst.While) -> None:
        self._loops[-1] += 1

    def leave_While(self, node: cst.While) -> None:
        self._loops[-1] -= 1

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._depth[-1] += 1

    def leave_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._depth[-1] -= 1

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statements.append(node)
        self._order += 1

    def leave_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statements.pop()

    @property
    def _scope(self) -> str:
        return self._scopes[-1]

    # -- imports and assignments -------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> bool:
        self.bindings.bind_import(node)
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        self.bindings.bind_import(node)
        module = get_full_name_for_node(node.module) if node.module and not node.relative else None
        if module and keras_names.is_layers_module(module):
            if isinstance(node.names, cst.ImportStar):
                self.facts.star_layers = True
            elif self._scope == "<module>":
                for alias in node.names:
                    local = alias.asname.name if alias.asname else alias.name
                    if isinstance(local, cst.Name):
                        self.facts.layer_imports[local.value] = node
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        statement = self._statements[-1] if self._statements else None
        if len(node.targets) == 1 and statement is not None:
            target = node.targets[0].target
            self.facts.assignments.append(
                Assignment(self._scope, self._order, target, node.value, statement)
            )

    def leave_Assign(self, node: cst.Assign) -> None:
        # Bound once the value is read: `layers = [layers.Conv2D(...)]` still means the module
        # inside the list, as Python evaluates it.
        for target in node.targets:
            self.bindings.bind(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        statement = self._statements[-1] if self._statements else None
        if node.value is not None and statement is not None:
            self.facts.assignments.append(
                Assignment(self._scope, self._order, node.target, node.value, statement)
            )

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.bindings.bind(node.target, node.value)

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None:
            self.facts.returns.append((self._scope, node.value))

    # -- calls -------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        statement = self._statements[-1] if self._statements else None
        qualified = self.bindings.resolve(node.func)
        if qualified is not None:
            if keras_names.is_sequential(qualified):
                self.facts.constructions.append(
                    Construction("sequential", self._scope, self._order, node, statement)
                )
            elif keras_names.is_functional_model(qualified):
                self.facts.constructions.append(
                    Construction("functional", self._scope, self._order, node, statement)
                )
        kind = self._layer_kind(node, qualified)
        if kind is not None:
            self.facts.layer_kinds[node] = kind
        func = node.func
        if not isinstance(func, cst.Attribute):
            return
        method = func.attr.value
        if method in ("add", "append") and len(node.args) == 1 and statement is not None:
            receiver = self.facts.module.code_for_node(func.value)
            in_loop = self._loops[-1] > 0
            found = AddCall(
                self._scope, self._order, receiver, node, statement, in_loop, self._depth[-1], method
            )
            (self.facts.adds if method == "add" else self.facts.appends).append(found)
        elif method == "DEFINE_integer":
            self.facts.flag_defines.append(node)
        elif method in ("fit", "fit_generator"):
            receiver = self.facts.module.code_for_node(func.value)
            self.facts.fits.append(FitCall(self._scope, self._order, receiver, node))
        elif method == "add_argument":
            self.facts.arguments.append(node)

    def _layer_kind(self, node: cst.Call, qualified: str | None) -> str | None:
        subclass = self.facts.layer_subclasses.get(qualified or "")
        if subclass is not None:
            self.facts.layer_bases[node] = subclass[1]
            return subclass[0]
        if qualified is not None:
            cls = keras_names.layer_class(qualified)
            if cls is not None:
                return keras_names.canonical_kind(cls)
            return "Input" if keras_names.is_input(qualified) else None
        func = node.func
        if (
            self.facts.star_layers
            and isinstance(func, cst.Name)
            and func.value in keras_names.STAR_IMPORTABLE_LAYERS
            and self.bindings.is_unbound(func.value)
        ):
            return keras_names.canonical_kind(func.value)
        return None


def collect_facts(module: cst.Module) -> ScriptFacts:
    facts = ScriptFacts(module)
    walk(module, _FactCollector(facts), facts.parent_of)
    return facts
