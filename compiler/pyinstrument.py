"""The CPython run of a dissector, with the kernel's integer widths.

The user's function runs as ordinary Python, with one change: every operation
the frontend typed as a 64-bit BPF operation wraps its result the way the BPF
instruction does, and every store into a typed local narrows to the local's
type. The types come from the frontend's `TypeRecord`, so the compiled program
and this run follow one typing, not two.
"""

from __future__ import annotations

import ast
import copy
from typing import Any, Callable

from pyfd.types import wrap

from .frontend import Lowered
from .typesys import IntTy

_M64 = (1 << 64) - 1


def _shl(a: int, b: int, signed: bool) -> int:
    return wrap(a << (b & 63), 64, signed)


def _shr(a: int, b: int, signed: bool) -> int:
    # The operation is unsigned (RSH) unless both operands are signed, so a
    # negative left operand of an unsigned shift (`i64(x) >> u8(n)`) shifts its
    # 64-bit pattern; a signed shift (ARSH) shifts the canonical signed value.
    return wrap(wrap(a, 64, signed) >> (b & 63), 64, signed)


def _udiv(a: int, b: int) -> int:
    a, b = a & _M64, b & _M64
    return a // b if b else 0  # BPF: division by zero gives 0


def _umod(a: int, b: int) -> int:
    a, b = a & _M64, b & _M64
    return a % b if b else a  # BPF: modulo zero leaves the dividend


HELPERS: dict[str, Callable[..., int]] = {
    "__pyfd_wrap": wrap,
    "__pyfd_shl": _shl,
    "__pyfd_shr": _shr,
    "__pyfd_udiv": _udiv,
    "__pyfd_umod": _umod,
}


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value=value)


class _Instrument(ast.NodeTransformer):
    def __init__(self, lowered: Lowered) -> None:
        self.types = lowered.types

    def _wrap(self, node: ast.expr, ty: IntTy) -> ast.expr:
        return ast.copy_location(_call("__pyfd_wrap", node, _const(ty.bits), _const(ty.signed)), node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        ty = self.types.results.get(node)
        new = self.generic_visit(copy.copy(node))
        assert isinstance(new, ast.BinOp)
        if ty is None:  # constant folded, or never lowered (dead code)
            return new
        match node.op:
            case ast.LShift():
                return ast.copy_location(_call("__pyfd_shl", new.left, new.right, _const(ty.signed)), node)
            case ast.RShift():
                return ast.copy_location(_call("__pyfd_shr", new.left, new.right, _const(ty.signed)), node)
            case ast.FloorDiv():
                return ast.copy_location(_call("__pyfd_udiv", new.left, new.right), node)
            case ast.Mod():
                return ast.copy_location(_call("__pyfd_umod", new.left, new.right), node)
        return self._wrap(new, ty)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        ty = self.types.results.get(node)
        new = self.generic_visit(copy.copy(node))
        assert isinstance(new, ast.expr)
        return new if ty is None else self._wrap(new, ty)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        new = self.generic_visit(copy.copy(node))
        assert isinstance(new, ast.expr)
        return ast.copy_location(_call("bool", new), node)  # a condition as a value is 0 or 1

    def visit_Assign(self, node: ast.Assign) -> ast.stmt:
        ty = self.types.stores.get(node)
        new = self.generic_visit(copy.copy(node))
        assert isinstance(new, ast.Assign)
        if ty is not None:
            new.value = self._wrap(new.value, ty)
        return new

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt:
        ty = self.types.stores.get(node)
        value = self.visit(node.value) if node.value is not None else None
        assert isinstance(node.target, (ast.Name, ast.Attribute))
        if ty is not None and value is not None:
            value = self._wrap(value, ty)
        target = copy.copy(node.target)
        return ast.copy_location(ast.Assign(targets=[target], value=value or _const(0)), node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        binop = node.__dict__.get("_pyfd_binop")
        if binop is None:  # never lowered: dead code
            return node
        value = self.visit(binop)
        ty = self.types.stores.get(node)
        if ty is not None:
            value = self._wrap(value, ty)
        target = copy.copy(node.target)
        return ast.copy_location(ast.Assign(targets=[target], value=value), node)


def instrument(lowered: Lowered) -> Callable[..., int]:
    """The dissector as a CPython function that wraps integers like the kernel."""
    source = lowered.source
    fdef = copy.copy(source.node)
    fdef.decorator_list = []
    new = _Instrument(lowered).visit(fdef)
    module = ast.Module(body=[new], type_ignores=[])
    ast.fix_missing_locations(module)
    code = compile(module, source.file, "exec")
    namespace: dict[str, Any] = dict(source.globals)
    namespace.update(HELPERS)
    exec(code, namespace)  # noqa: S102 - the user's own function, recompiled
    fn: Callable[..., int] = namespace[fdef.name]
    return fn
