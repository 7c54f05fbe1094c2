"""The model files' expression language, compiled to vectorised numpy code without ``eval`` of model text.

Expressions are parsed with :mod:`ast`, every node is checked against a whitelist, and the checked tree is
rebuilt into one Python function per block of named expressions. Names resolve only to the block's inputs
(thetas, covariates, etas, kappas) and to names defined earlier in the block; the only callables are the
language's own functions, bound to numpy. Conditionals and boolean operators become ``numpy.where`` and
``numpy.logical_*`` so that every expression works element-wise on arrays of patients or samples.
"""

from __future__ import annotations

import ast
import functools
import keyword
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ModelError

_FUNCTIONS: dict[str, tuple[str, int | None]] = {
    # name in the language: (helper in the generated code, number of arguments or None for >= 2)
    "exp": ("_exp", 1),
    "log": ("_log", 1),
    "sqrt": ("_sqrt", 1),
    "abs": ("_abs", 1),
    "min": ("_min", None),
    "max": ("_max", None),
}

_BINARY_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_UNARY_OPERATORS = (ast.UAdd, ast.USub)
_COMPARISONS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


def _n_ary(function: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    return lambda *args: functools.reduce(function, args)


_HELPERS: dict[str, Any] = {
    "_exp": np.exp,
    "_log": np.log,
    "_sqrt": np.sqrt,
    "_abs": np.abs,
    "_min": _n_ary(np.minimum),
    "_max": _n_ary(np.maximum),
    "_where": np.where,
    "_and": _n_ary(np.logical_and),
    "_or": _n_ary(np.logical_or),
    "_not": np.logical_not,
    "_float": lambda value: np.asarray(value, dtype=float),
}


class _Checker(ast.NodeTransformer):
    """Rejects anything outside the language and rewrites the rest into calls of the numpy helpers."""

    def __init__(self, path: str, known: set[str], constant_offset: int = 0) -> None:
        self.path = path
        self.known = known
        self.used: set[str] = set()
        self.constants: list[float] = []
        self.constant_offset = constant_offset

    def fail(self, message: str) -> ModelError:
        return ModelError(self.path, message)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        raise self.fail(f"'{type(node).__name__}' is not allowed in an expression")

    def visit_Expression(self, node: ast.Expression) -> ast.AST:
        node.body = self.visit(node.body)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, bool) or isinstance(node.value, int | float):
            # Constants become numpy floats so that arithmetic never falls back to Python's (unbounded integer
            # powers such as 10**10**10 would hang; 1/0 would raise): overflow gives inf, caught later.
            self.constants.append(float(node.value))
            return ast.Name(id=f"_c{self.constant_offset + len(self.constants) - 1}", ctx=ast.Load())
        raise self.fail(f"constant {node.value!r} is not a number")

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id.startswith("_"):
            raise self.fail(f"name '{node.id}' is not allowed (names may not start with '_')")
        if node.id not in self.known:
            raise self.fail(f"unknown name '{node.id}'")
        self.used.add(node.id)
        return ast.Name(id=node.id, ctx=ast.Load())

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if not isinstance(node.op, _BINARY_OPERATORS):
            raise self.fail(f"operator '{type(node.op).__name__}' is not allowed")
        return ast.BinOp(left=self.visit(node.left), op=node.op, right=self.visit(node.right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if isinstance(node.op, ast.Not):
            return _call("_not", [self.visit(node.operand)])
        if not isinstance(node.op, _UNARY_OPERATORS):
            raise self.fail(f"operator '{type(node.op).__name__}' is not allowed")
        return ast.UnaryOp(op=node.op, operand=self.visit(node.operand))

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        helper = "_and" if isinstance(node.op, ast.And) else "_or"
        return _call(helper, [self.visit(value) for value in node.values])

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        parts: list[ast.expr] = []
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if not isinstance(op, _COMPARISONS):
                raise self.fail(f"comparison '{type(op).__name__}' is not allowed")
            right = self.visit(comparator)
            parts.append(ast.Compare(left=left, ops=[op], comparators=[right]))
            left = right
        return parts[0] if len(parts) == 1 else _call("_and", parts)

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        return _call("_where", [self.visit(node.test), self.visit(node.body), self.visit(node.orelse)])

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if not isinstance(node.func, ast.Name):
            raise self.fail("only the functions exp, log, sqrt, abs, min, max may be called")
        name = node.func.id
        if name not in _FUNCTIONS:
            raise self.fail(f"unknown function '{name}' (allowed: {', '.join(_FUNCTIONS)})")
        if node.keywords:
            raise self.fail(f"'{name}' takes no keyword arguments")
        helper, n_args = _FUNCTIONS[name]
        if n_args is not None and len(node.args) != n_args:
            raise self.fail(f"'{name}' takes {n_args} argument(s), got {len(node.args)}")
        if n_args is None and len(node.args) < 2:
            raise self.fail(f"'{name}' takes at least 2 arguments")
        return _call(helper, [self.visit(arg) for arg in node.args])


def _call(helper: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(func=ast.Name(id=helper, ctx=ast.Load()), args=args, keywords=[])


def check_expression(
    text: Any, *, path: str, known: Iterable[str], constant_offset: int = 0
) -> tuple[ast.expr, frozenset[str], list[float]]:
    """Parse and check one expression; return the rewritten tree, the names it uses and its constants.

    Numbers (int or float in JSON) are accepted as constant expressions. Constant k of the expression is
    referred to as ``_c{constant_offset + k}`` in the rewritten tree.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ModelError(path, f"expected an expression (text or number), got {type(text).__name__}")
    source = repr(float(text)) if not isinstance(text, str) else text
    if not source.strip():
        raise ModelError(path, "empty expression")
    if len(source) > 2000:
        raise ModelError(path, "expression longer than 2000 characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ModelError(path, f"syntax error in '{source}': {exc.msg}") from None
    checker = _Checker(path, set(known), constant_offset)
    checked = checker.visit(tree)
    return checked.body, frozenset(checker.used), checker.constants


@dataclass(frozen=True)
class CompiledBlock:
    """An ordered block of named expressions compiled into a single vectorised function.

    ``inputs`` are the names the caller provides; ``outputs`` the names the block defines, in order.
    Calling the block with a mapping of input arrays returns a dict of output arrays (broadcast as numpy
    broadcasts the inputs). Floating-point warnings are silenced: callers check the results for finiteness
    and sign and report the offending parameter by name.
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    used_inputs: frozenset[str]
    _function: Callable[..., tuple[Any, ...]]

    def __call__(self, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        try:
            arguments = [values[name] for name in self.inputs]
        except KeyError as exc:
            raise KeyError(f"missing input {exc.args[0]!r} for the expression block") from None
        with np.errstate(all="ignore"):
            results = self._function(*arguments)
        return dict(zip(self.outputs, results, strict=True))


def compile_block(
    expressions: Mapping[str, Any], *, inputs: Iterable[str], paths: Mapping[str, str]
) -> CompiledBlock:
    """Compile ``name -> expression`` (in order; later ones may use earlier names) into one function.

    ``paths`` gives, per output name, the field path used in error messages.
    """
    input_names = tuple(inputs)
    known = set(input_names)
    statements: list[ast.stmt] = []
    used_inputs: set[str] = set()
    constants: list[float] = []
    for name, text in expressions.items():
        path = paths.get(name, name)
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ModelError(path, f"'{name}' is not a valid name")
        tree, used, new_constants = check_expression(
            text, path=path, known=known, constant_offset=len(constants)
        )
        constants.extend(new_constants)
        used_inputs |= used & set(input_names)
        statements.append(
            ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=_call("_float", [tree]))
        )
        known.add(name)
    output_names = tuple(expressions)
    statements.append(
        ast.Return(
            value=ast.Tuple(elts=[ast.Name(id=n, ctx=ast.Load()) for n in output_names], ctx=ast.Load())
        )
    )
    function_def = ast.FunctionDef(
        name="_block",
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=name) for name in input_names],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=statements,
        decorator_list=[],
        type_params=[],
    )
    module = ast.fix_missing_locations(ast.Module(body=[function_def], type_ignores=[]))
    # The tree was built only from whitelisted nodes; the namespace has no builtins.
    namespace: dict[str, Any] = {"__builtins__": {}, **_HELPERS}
    namespace.update({f"_c{k}": np.float64(value) for k, value in enumerate(constants)})
    exec(compile(module, "<mipd-model>", "exec"), namespace)
    return CompiledBlock(
        inputs=input_names,
        outputs=output_names,
        used_inputs=frozenset(used_inputs),
        _function=namespace["_block"],
    )
