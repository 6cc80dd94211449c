"""Which response keys the provider's own JSON parser reads, found by reading its source.

For every class of a module with a ``from_api`` classmethod, :func:`parser_reads` follows the
mapping ``from_api`` receives: ``data.get("Key")`` and ``data["Key"]`` are reads, values taken
from it carry their path (``detail = data.get("Detail") or {}``, ``for stage in data.get("Stages")``,
``next(d for d in details ...)``), module helpers called with such a value are followed into, and
the fields ``cls(field=...)`` is built with carry their path into the class's other methods
(``self.detail.get("StartTime")`` reads ``Detail.StartTime``). Content of JSON *strings*
(``json.loads(...)``) is not followed: the SDK types those fields as strings.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

Path = tuple[str, ...]
ELEMENT = "[]"  # a list element
_SEQ = "<seq>"  # marks the value of a comprehension: its elements carry the path without it
_PASS_THROUGH = frozenset({"dict", "list", "tuple", "sorted", "reversed", "iter"})


def _element(paths: Iterable[Path]) -> set[Path]:
    return {p[:-1] if p and p[-1] == _SEQ else (*p, ELEMENT) for p in paths}


class _Reader:
    def __init__(self, module: ast.Module) -> None:
        self.functions = {node.name: node for node in module.body if isinstance(node, ast.FunctionDef)}
        self.reads: set[Path] = set()
        self.fields: dict[str, set[Path]] = {}
        self._followed: set[tuple[str, frozenset[tuple[str, frozenset[Path]]]]] = set()

    # --- statements ---------------------------------------------------------------------------

    def function(self, node: ast.FunctionDef, env: dict[str, set[Path]]) -> set[Path]:
        returns: set[Path] = set()
        self._block(node.body, dict(env), returns)
        return returns

    def _block(self, body: list[ast.stmt], env: dict[str, set[Path]], returns: set[Path]) -> None:
        for stmt in body:
            self._stmt(stmt, env, returns)

    def _stmt(self, stmt: ast.stmt, env: dict[str, set[Path]], returns: set[Path]) -> None:
        if isinstance(stmt, ast.Assign):
            self._assign(stmt.targets, stmt.value, env)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self._assign([stmt.target], stmt.value, env)
        elif isinstance(stmt, ast.For):
            paths = _element(self.expr(stmt.iter, env))
            if isinstance(stmt.target, ast.Name):
                env[stmt.target.id] = paths
            self._block(stmt.body, env, returns)
            self._block(stmt.orelse, env, returns)
        elif isinstance(stmt, ast.Return):
            if stmt.value is not None:
                returns |= self.expr(stmt.value, env)
        elif isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            return
        else:
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.expr):
                    self.expr(child, env)
            for name in ("body", "orelse", "finalbody"):
                self._block(getattr(stmt, name, []), env, returns)
            for handler in getattr(stmt, "handlers", []):
                self._block(handler.body, env, returns)

    def _assign(self, targets: list[ast.expr], value: ast.expr, env: dict[str, set[Path]]) -> None:
        for target in targets:
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
                for name, item in zip(target.elts, value.elts, strict=True):
                    if isinstance(name, ast.Name):
                        env[name.id] = self.expr(item, env)
            elif isinstance(target, ast.Name):
                env[target.id] = self.expr(value, env)
            else:
                self.expr(value, env)

    # --- expressions --------------------------------------------------------------------------

    def _key(self, base: set[Path], key: str) -> set[Path]:
        found = {(*p, key) for p in base}
        self.reads |= found
        return found

    def expr(self, node: ast.expr, env: dict[str, set[Path]]) -> set[Path]:
        if isinstance(node, ast.Name):
            return set(env.get(node.id, set()))
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return set(self.fields.get(node.attr, set()))
            self.expr(node.value, env)
            return set()
        if isinstance(node, ast.BoolOp):
            return set().union(*(self.expr(v, env) for v in node.values))
        if isinstance(node, ast.IfExp):
            self.expr(node.test, env)
            return self.expr(node.body, env) | self.expr(node.orelse, env)
        if isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                return self._key(self.expr(node.value, env), key.value)
            if isinstance(key, ast.Constant) and isinstance(key.value, int):
                return _element(self.expr(node.value, env))
            self.expr(key, env)
            if isinstance(node.value, ast.Dict):
                return self._dict_values(node.value, env)
            self.expr(node.value, env)
            return set()
        if isinstance(node, (ast.GeneratorExp, ast.ListComp, ast.SetComp)):
            inner = dict(env)
            for generator in node.generators:
                paths = _element(self.expr(generator.iter, inner))
                if isinstance(generator.target, ast.Name):
                    inner[generator.target.id] = paths
                for condition in generator.ifs:
                    self.expr(condition, inner)
            return {(*p, _SEQ) for p in self.expr(node.elt, inner)}
        if isinstance(node, ast.Call):
            return self._call(node, env)
        if isinstance(node, ast.Lambda):
            return set()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child, env)
        return set()

    def _dict_values(self, node: ast.Dict, env: dict[str, set[Path]]) -> set[Path]:
        for key in node.keys:
            if key is not None:
                self.expr(key, env)
        return set().union(*(self.expr(v, env) for v in node.values))

    def _call(self, node: ast.Call, env: dict[str, set[Path]]) -> set[Path]:
        func = node.func
        args = [self.expr(a, env) for a in node.args]
        keywords = {k.arg: self.expr(k.value, env) for k in node.keywords}
        if isinstance(func, ast.Attribute) and func.attr == "get" and node.args:
            first = node.args[0]
            default = set().union(*args[1:])
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                return self._key(self.expr(func.value, env), first.value) | default
            if isinstance(func.value, ast.Dict):
                return self._dict_values(func.value, env) | default
        if isinstance(func, ast.Name):
            if func.id == "cls":  # from_api builds the record: remember what each field came from
                for name, paths in keywords.items():
                    if name is not None:
                        self.fields[name] = self.fields.get(name, set()) | paths
                return set()
            if func.id in _PASS_THROUGH:
                return set().union(*args)
            if func.id == "next":
                return _element(args[0]) | set().union(*args[1:]) if args else set()
            if func.id in self.functions:
                return self._follow(self.functions[func.id], args)
            return set()
        self.expr(func, env)
        return set()

    def _follow(self, function: ast.FunctionDef, args: list[set[Path]]) -> set[Path]:
        params = [a.arg for a in function.args.posonlyargs + function.args.args]
        env = {name: paths for name, paths in zip(params, args, strict=False) if paths}
        key = (function.name, frozenset((name, frozenset(paths)) for name, paths in env.items()))
        if not env or key in self._followed:
            return set()
        self._followed.add(key)
        return self.function(function, env)


def parser_reads(source: str) -> dict[str, set[Path]]:
    """Return, per class with a ``from_api`` classmethod, the key paths its parsing reads."""
    module = ast.parse(source)
    classes = {node.name: node for node in module.body if isinstance(node, ast.ClassDef)}
    found: dict[str, set[Path]] = {}
    for name, cls in classes.items():
        methods = {m.name: m for m in cls.body if isinstance(m, ast.FunctionDef)}
        from_api = methods.get("from_api")
        if from_api is None:
            continue
        reader = _Reader(module)
        params = [a.arg for a in from_api.args.args]
        reader.function(from_api, {params[1]: {()}})
        inherited = [
            m
            for base in cls.bases
            if isinstance(base, ast.Name) and base.id in classes
            for m in classes[base.id].body
            if isinstance(m, ast.FunctionDef)
        ]
        for method in [*inherited, *methods.values()]:
            if method.name not in ("from_api", "from_json"):
                reader.function(method, {})
        found[name] = {p for p in reader.reads if _SEQ not in p}
    return found
