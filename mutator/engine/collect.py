"""One read-only walk over a script that records, in source order, every fact the locator needs.

It decides nothing: which model is trained, and where its epochs live, is `locate`'s business.
"""

from __future__ import annotations

import libcst as cst
from libcst.helpers import get_full_name_for_node

from mutator.engine import keras_names
from mutator.engine.facts import (
    AddCall,
    Assignment,
    CompileCall,
    Construction,
    FitCall,
    FunctionCall,
    KerasImport,
    ModelClass,
    ScriptFacts,
)
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
        """A marker binding for a subclass of a Keras layer (its kind is the base's) or of
        keras.Model (its instances are models, read by `mutator.engine.subclassed`), else None."""
        for base in node.bases:
            qualified = self.bindings.resolve(base.value)
            if qualified is None:
                continue
            if (
                keras_names.is_functional_model(qualified)
                or keras_names.is_sequential(qualified)
                or qualified in self.facts.model_classes
            ):
                return self._model_class(node, qualified)
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

    def _model_class(self, node: cst.ClassDef, base: str) -> str:
        name = node.name.value
        marker = f"{LOCAL_CLASS}{self._scope}.{name}"
        scope = name if self._scopes == ["<module>"] else f"{self._scope}.{name}"
        bases = (base,) if base in self.facts.model_classes else ()
        self.facts.model_classes[marker] = ModelClass(name, scope, node, bases)
        self.facts.model_subclasses.append(name)
        return marker

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
        for alias in node.names:
            self._note_keras_import(get_full_name_for_node(alias.name))
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        self.bindings.bind_import(node)
        module = get_full_name_for_node(node.module) if node.module and not node.relative else None
        self._note_keras_import(module)
        if module and keras_names.is_layers_module(module):
            if isinstance(node.names, cst.ImportStar):
                self.facts.star_layers = True
            elif self._scope == "<module>":
                for alias in node.names:
                    local = alias.asname.name if alias.asname else alias.name
                    if isinstance(local, cst.Name):
                        self.facts.layer_imports[local.value] = node
        return False

    def _note_keras_import(self, module: str | None) -> None:
        if not module or not self._statements:
            return
        package = keras_names.keras_package(module)
        if package is None and (module == "tensorflow" or module.startswith("tensorflow.")):
            package = "tensorflow.keras"  # `import tensorflow as tf`: Keras is tf.keras
        if package is not None:
            found = KerasImport(self._scope, self._statements[-1], package)
            self.facts.keras_imports.append(found)

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
            elif qualified in self.facts.model_classes:
                found = Construction(
                    "subclassed", self._scope, self._order, node, statement, qualified
                )
                self.facts.constructions.append(found)
        kind = self._layer_kind(node, qualified)
        merge = self._merge_kind(node, qualified) if kind is None else None
        if kind is not None:
            self.facts.layer_kinds[node] = kind
            self.facts.layer_uses[node] = (self._scope, self._order)
        elif merge is not None:
            self.facts.merge_calls[node] = merge
        elif qualified is not None and "optimizer" in qualified.lower():
            self._optimizer_kind(node, qualified)
        func = node.func
        if isinstance(func, cst.Name):
            function_call = FunctionCall(self._scope, self._order, node)
            self.facts.function_calls.setdefault(func.value, []).append(function_call)
        if not isinstance(func, cst.Attribute):
            return
        method = func.attr.value
        if method in ("add", "append") and len(node.args) == 1 and statement is not None:
            if merge is not None:  # `layers.add([a, b])`: a merge, not `model.add(layer)`
                return
            receiver = self.facts.module.code_for_node(func.value)
            in_loop = self._loops[-1] > 0
            found = AddCall(
                self._scope, self._order, receiver, node, statement, in_loop, self._depth[-1], method
            )
            (self.facts.adds if method == "add" else self.facts.appends).append(found)
        elif method in ("DEFINE_integer", "DEFINE_float"):
            self.facts.flag_defines.append(node)
        elif method == "compile":
            receiver = self.facts.module.code_for_node(func.value)
            names = self.bindings.visible()
            self.facts.compiles.append(CompileCall(self._scope, self._order, receiver, node, names))
        elif method in ("fit", "fit_generator", "build"):
            receiver = self.facts.module.code_for_node(func.value)
            found_call = FitCall(self._scope, self._order, receiver, node)
            (self.facts.builds if method == "build" else self.facts.fits).append(found_call)
        elif method == "add_argument":
            self.facts.arguments.append(node)

    def _optimizer_kind(self, node: cst.Call, qualified: str) -> None:
        optimizer = keras_names.optimizer_class(qualified)
        if optimizer is not None:
            self.facts.optimizer_kinds[node] = optimizer
        schedule = keras_names.schedule_class(qualified)
        if schedule is not None:
            self.facts.schedule_kinds[node] = schedule

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


    def _merge_kind(self, node: cst.Call, qualified: str | None) -> str | None:
        if qualified is not None:
            return keras_names.merge_function(qualified)
        func = node.func
        if (
            self.facts.star_layers
            and isinstance(func, cst.Name)
            and self.bindings.is_unbound(func.value)
        ):
            return keras_names.MERGE_FUNCTIONS.get(func.value)
        return None


def collect_facts(module: cst.Module) -> ScriptFacts:
    facts = ScriptFacts(module)
    walk(module, _FactCollector(facts), facts.parent_of)
    return facts
