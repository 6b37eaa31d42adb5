"""Helpers a dissector calls: which calls name one, its signature, and binding the arguments.

A helper is a plain module-level function with annotated parameters; pyfd
inlines its body at each call (`syntax.Lowering._inline`), in a function
scope of its own. This module reads the `def` and the call; it emits nothing.
"""

from __future__ import annotations

import ast
import types
from dataclasses import dataclass
from typing import Any

from pyfd.function import DissectorFunction
from pyfd.headers import Header
from pyfd.keys import BpfFlowKeys
from pyfd.packet import Packet
from pyfd.types import FixedInt

from ..diagnostics import CompileTypeError, UnsupportedError
from ..source import FunctionSource
from ..typesys import FROM_PYFD, U64, IntTy
from .scope import FunctionScope
from .semantics import fail

# What a helper may return: one integer type, a tuple of them, or nothing.
ResultType = IntTy | tuple[IntTy, ...] | None


def resolve(node: ast.expr | None, namespace: dict[str, Any]) -> Any:
    """The object an annotation names in `namespace` (`u16`, `IPv4`, `headers.IPv4`, a string of one), or None."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(node, ast.Name):
        if node.id in ("int", "bool", "tuple") and node.id not in namespace:
            return {"int": int, "bool": bool, "tuple": tuple}[node.id]
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return getattr(namespace.get(node.value.id), node.attr, None)
    return None


def integer_type(obj: Any) -> IntTy | None:
    """The integer type an annotation object names (`int` is u64), or None."""
    if obj is int:
        return U64
    if isinstance(obj, type) and issubclass(obj, FixedInt) and obj in FROM_PYFD:
        return FROM_PYFD[obj]
    return None


def is_header_class(obj: Any) -> bool:
    """True for a class declared with `class X(Header)`."""
    return isinstance(obj, type) and issubclass(obj, Header) and obj is not Header


@dataclass(frozen=True)
class Signature:
    """A helper's parameters (name, Packet | BpfFlowKeys | header class | IntTy) and result type."""

    params: list[tuple[str, Any]]
    result: ResultType


def helper_target(node: ast.Call, fn: FunctionScope) -> types.FunctionType | None:
    """The Python function a call names, if it is one pyfd can inline (resolved without lowering)."""
    func = node.func
    namespace = fn.source.globals
    obj: Any = None
    if isinstance(func, ast.Name):
        if func.id in fn.params or func.id in fn.stored or func.id not in namespace:
            return None
        obj = namespace[func.id]
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id not in fn.stored and func.value.id not in fn.params:
        module = namespace.get(func.value.id)
        if not isinstance(module, types.ModuleType):
            return None
        obj = getattr(module, func.attr, None)
    if isinstance(obj, DissectorFunction):  # any @dissector function
        obj = obj.fn
    return obj if isinstance(obj, types.FunctionType) else None


def helper_signature(src: FunctionSource) -> Signature:
    """Read a helper's `def`: plain annotated parameters and an integer (or tuple, or no) result."""
    fdef = src.node
    args = fdef.args
    where = f"helper `{fdef.name}`"
    for extra, what in ((args.vararg, "*args"), (args.kwarg, "**kwargs")):
        if extra is not None:
            raise UnsupportedError(f"{where} takes {what}; a helper takes plain annotated parameters", src.span(extra))
    if args.kwonlyargs or args.posonlyargs or args.defaults:
        raise UnsupportedError(f"{where} has keyword-only, positional-only or default parameters; pyfd inlines plain parameters only", src.span(fdef))
    params: list[tuple[str, Any]] = []
    for arg in args.args:
        obj = resolve(arg.annotation, src.globals)
        ty = integer_type(obj)
        if obj is Packet or obj is BpfFlowKeys or is_header_class(obj):
            params.append((arg.arg, obj))
        elif ty is not None:
            params.append((arg.arg, ty))
        else:
            got = "has no annotation" if arg.annotation is None else f"is annotated `{ast.unparse(arg.annotation)}`"
            raise CompileTypeError(
                f"parameter `{arg.arg}` of {where} {got}",
                src.span(arg),
                hint="annotate it: Packet, BpfFlowKeys, a header class, or an integer type (u8 .. i64)",
            )
    return Signature(params, _result_type(src, where))


def _result_type(src: FunctionSource, where: str) -> ResultType:
    """What a helper's result annotation says it returns."""
    returns = src.node.returns
    if returns is None or (isinstance(returns, ast.Constant) and returns.value is None):
        return None
    obj = resolve(returns, src.globals)
    ty = integer_type(obj)
    if ty is not None:
        return ty
    if isinstance(returns, ast.Subscript) and resolve(returns.value, src.globals) is tuple:
        elts = returns.slice.elts if isinstance(returns.slice, ast.Tuple) else [returns.slice]
        tys: list[IntTy] = []
        for elt in elts:
            one = integer_type(resolve(elt, src.globals))
            if one is None:
                raise CompileTypeError(f"{where} returns a tuple with an element of type `{ast.unparse(elt)}`; elements are integer types", src.span(elt))
            tys.append(one)
        return tuple(tys)
    raise CompileTypeError(f"{where} returns `{ast.unparse(returns)}`; a helper returns an integer type, a tuple of them, or None", src.span(returns))


def bind_arguments(node: ast.Call, name: str, names: list[str], caller: FunctionSource) -> dict[str, ast.expr]:
    """The argument expression given for each parameter in `names`, by position or keyword."""
    given: dict[str, ast.expr] = {}
    if len(node.args) > len(names):
        fail(caller.span(node.args[len(names)]), f"`{name}` takes {len(names)} arguments, but {len(node.args)} are given")
    for pname, arg in zip(names, node.args, strict=False):  # fewer positional arguments: the rest come by keyword
        given[pname] = arg
    for kw in node.keywords:
        if kw.arg is None or kw.arg not in names:
            fail(caller.span(kw), f"`{name}` has no parameter `{kw.arg}`" if kw.arg else "`**kwargs` is not supported")
        if kw.arg in given:
            fail(caller.span(kw), f"`{name}` got two values for `{kw.arg}`")
        given[kw.arg] = kw.value
    missing = [p for p in names if p not in given]
    if missing:
        fail(caller.span(node), f"`{name}` is missing the argument `{missing[0]}`")
    return given
