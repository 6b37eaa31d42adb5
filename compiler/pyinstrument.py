"""The CPython run of a dissector, with the kernel's integer widths.

The user's function runs as ordinary Python, with one change: every operation
the frontend typed as a 64-bit BPF operation wraps its result the way the BPF
instruction does, and every store into a typed local narrows to the local's
type. The types come from the frontend's `TypeRecord`, so the compiled program
and this run follow one typing, not two.

A chain of typed operations (`a + b + c`, `-~x`) becomes one call that
applies them in order, `__pyfd_binops(spec, a, b, c)`: its operands are
evaluated left to right as Python evaluates the chain, and the tree stays as
deep as the user's. Wrapping every step in a call of its own would double
it, and CPython compiles a tree only so deep (about 1,500 levels on 3.12).

`~` always acts on an integer (`~int(x)`): a condition used as a value is 1
or 0 in the kernel, but `True` in Python, and `~True` is deprecated from
3.12 (and refused from 3.16) in favour of exactly that.

Maps and Configs are the dissector's own (`pyfd.maps.PythonState`, passed to
`instrument`), not the module's declarations: every name the frontend found
naming one (`TypeRecord.state_refs`) reads `__pyfd_state.maps[NAME]` or
`__pyfd_state.config[NAME]` instead, and the statements that write a map
(`map_stmts`) do it as the kernel does: `m[k] = v` as `m.store(k, v)` (a
full hash map ignores it), `m[k] op= v` as `m.augment(k, op, v)`, `del m[k]`
as `m.delete(k)` (an absent key is no error), each evaluating its parts in
Python's order.
"""

from __future__ import annotations

import ast
import copy
import operator
from collections.abc import Callable
from typing import Any

from pyfd.types import wrap

from .diagnostics import UnsupportedError
from .frontend import Lowered
from .frontend.statements import as_load as _as_load
from .recursion import recursion_room
from .source import FunctionSource
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


_WRAPPED: dict[str, Callable[[int, int], int]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "&": operator.and_, "|": operator.or_, "^": operator.xor,
}


def _binops(spec: tuple[tuple[str, int, bool], ...], first: int, *rest: int) -> int:
    """`first op1 rest[0] op2 rest[1] ...`, left to right, each step as its BPF instruction computes it."""
    value = first
    for (symbol, bits, signed), operand in zip(spec, rest, strict=True):
        if symbol == "<<":
            value = _shl(value, operand, signed)
        elif symbol == ">>":
            value = _shr(value, operand, signed)
        elif symbol == "//":
            value = _udiv(value, operand)
        elif symbol == "%":
            value = _umod(value, operand)
        else:
            value = wrap(_WRAPPED[symbol](value, operand), bits, signed)
    return value


def _unaryops(spec: tuple[tuple[str, int, bool], ...], value: int) -> int:
    """Unary `-` and `~` applied innermost first, each wrapped as BPF's NEG and XOR -1 compute it."""
    for symbol, bits, signed in spec:
        value = wrap(-value if symbol == "-" else ~int(value), bits, signed)
    return value


def _invert(value: int) -> int:
    """`~value` of the integer value: 1 and 0 for a condition, as in the kernel."""
    return ~int(value)


def _wrap_tuple(values: tuple[int, ...], types: tuple[tuple[int, bool], ...]) -> tuple[int, ...]:
    if len(values) != len(types):  # the compiler checked the arity; keep Python's own error otherwise
        return values
    return tuple(wrap(v, bits, signed) for v, (bits, signed) in zip(values, types, strict=True))


def _map_store(value: int, state: Any, key: int) -> None:
    """`m[key] = value`, its parts evaluated in Python's order (the value first)."""
    state.store(key, value)


HELPERS: dict[str, Callable[..., Any]] = {
    "__pyfd_map_store": _map_store,
    "__pyfd_wrap": wrap,
    "__pyfd_wrap_tuple": _wrap_tuple,
    "__pyfd_shl": _shl,
    "__pyfd_shr": _shr,
    "__pyfd_udiv": _udiv,
    "__pyfd_umod": _umod,
    "__pyfd_binops": _binops,
    "__pyfd_unaryops": _unaryops,
    "__pyfd_invert": _invert,
}

_SYMBOLS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%", ast.BitAnd: "&",
    ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
}


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value=value)


class _Instrument(ast.NodeTransformer):
    """Rewrites a clone of one function; types are looked up on the original nodes."""

    def __init__(self, lowered: Lowered, origin: Origins, callees: dict[ast.AST, str]) -> None:
        self.types = lowered.types
        self.origin = origin
        self.callees = callees  # original Call node -> name of the instrumented helper in the namespace
        self.ret_ty: IntTy | tuple[IntTy, ...] | None = None

    def _orig(self, node: ast.AST) -> ast.AST:
        pair = self.origin.get(id(node))
        return pair[1] if pair is not None and pair[0] is node else node

    def _wrap(self, node: ast.expr, ty: IntTy | tuple[IntTy, ...]) -> ast.expr:
        if isinstance(ty, tuple):
            spec = ast.Tuple(elts=[ast.Tuple(elts=[_const(t.bits), _const(t.signed)], ctx=ast.Load()) for t in ty], ctx=ast.Load())
            return ast.copy_location(_call("__pyfd_wrap_tuple", node, spec), node)
        return ast.copy_location(_call("__pyfd_wrap", node, _const(ty.bits), _const(ty.signed)), node)

    @staticmethod
    def _spec(steps: list[tuple[str, IntTy]]) -> ast.Tuple:
        return ast.Tuple(
            elts=[ast.Tuple(elts=[_const(s), _const(t.bits), _const(t.signed)], ctx=ast.Load()) for s, t in steps], ctx=ast.Load()
        )

    def _state_ref(self, node: ast.expr) -> ast.expr | None:
        """`__pyfd_state.maps[NAME]` (or `.config[NAME]`) where `node` names a map or a Config."""
        ref = self.types.state_refs.get(self._orig(node))
        if ref is None:
            return None
        kind, name = ref
        table = ast.Attribute(value=ast.Name(id="__pyfd_state", ctx=ast.Load()), attr=kind, ctx=ast.Load())
        return ast.copy_location(ast.Subscript(value=table, slice=_const(name), ctx=ast.Load()), node)

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self._state_ref(node) or node

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        ref = self._state_ref(node)
        if ref is not None:
            return ref
        new = self.generic_visit(node)
        assert isinstance(new, ast.expr)
        return new

    def _map_statement(self, node: ast.stmt) -> ast.stmt | None:
        """A statement writing a map, as the kernel performs it (see the module's docstring)."""
        kind = self.types.map_stmts.get(self._orig(node))
        if kind is None:
            return None
        calls: list[ast.expr] = []
        if kind == "store":
            assert isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript)
            target = node.targets[0]
            value = self.visit(node.value)
            calls.append(_call("__pyfd_map_store", value, self.visit(target.value), self.visit(target.slice)))
        elif kind == "augment":
            assert isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Subscript)
            method = ast.Attribute(value=self.visit(node.target.value), attr="augment", ctx=ast.Load())
            key = self.visit(node.target.slice)
            calls.append(ast.Call(func=method, args=[key, _const(_SYMBOLS[type(node.op)]), self.visit(node.value)], keywords=[]))
        else:
            assert isinstance(node, ast.Delete)
            for deleted in node.targets:
                assert isinstance(deleted, ast.Subscript)
                method = ast.Attribute(value=self.visit(deleted.value), attr="delete", ctx=ast.Load())
                calls.append(ast.Call(func=method, args=[self.visit(deleted.slice)], keywords=[]))
        if len(calls) == 1:
            return ast.copy_location(ast.Expr(value=calls[0]), node)
        body: list[ast.stmt] = [ast.copy_location(ast.Expr(value=c), node) for c in calls]
        return ast.copy_location(ast.If(test=_const(True), body=body, orelse=[]), node)

    def visit_Delete(self, node: ast.Delete) -> ast.stmt:
        new = self._map_statement(node)
        if new is not None:
            return new
        result = self.generic_visit(node)
        assert isinstance(result, ast.stmt)
        return result

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        # The typed operations down the left operands: `((a + b) * c)` is [*, +] over a.
        chain: list[tuple[ast.BinOp, IntTy]] = []
        leaf: ast.expr = node
        while isinstance(leaf, ast.BinOp) and (ty := self.types.results.get(self._orig(leaf))) is not None:
            chain.append((leaf, ty))
            leaf = leaf.left
        if not chain:  # constant folded, or never lowered
            new = self.generic_visit(node)
            assert isinstance(new, ast.expr)
            return new
        chain.reverse()
        first = self.visit(leaf)
        rest = [self.visit(op.right) for op, _ in chain]
        spec = self._spec([(_SYMBOLS[type(op.op)], ty) for op, ty in chain])
        return ast.copy_location(_call("__pyfd_binops", spec, first, *rest), node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        chain: list[tuple[ast.UnaryOp, IntTy]] = []
        leaf: ast.expr = node
        while isinstance(leaf, ast.UnaryOp) and (ty := self.types.results.get(self._orig(leaf))) is not None:
            chain.append((leaf, ty))
            leaf = leaf.operand
        if not chain:  # constant folded, `not`, unary `+`, or never lowered
            new = self.generic_visit(node)
            assert isinstance(new, ast.UnaryOp)
            if isinstance(new.op, ast.Invert):
                return ast.copy_location(_call("__pyfd_invert", new.operand), node)
            return new
        chain.reverse()
        spec = self._spec([("-" if isinstance(op.op, ast.USub) else "~", ty) for op, ty in chain])
        return ast.copy_location(_call("__pyfd_unaryops", spec, self.visit(leaf)), node)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        new = self.generic_visit(node)
        assert isinstance(new, ast.expr)
        return ast.copy_location(_call("bool", new), node)  # a condition as a value is 0 or 1

    def visit_Call(self, node: ast.Call) -> ast.expr:
        callee = self.callees.get(self._orig(node))
        new = self.generic_visit(node)
        assert isinstance(new, ast.Call)
        if callee is not None:  # an inlined helper: call its instrumented twin
            new.func = ast.copy_location(ast.Name(id=callee, ctx=ast.Load()), node.func)
        return new

    def visit_Return(self, node: ast.Return) -> ast.stmt:
        new = self.generic_visit(node)
        assert isinstance(new, ast.Return)
        if self.ret_ty is not None and new.value is not None:
            new.value = self._wrap(new.value, self.ret_ty)  # a helper's result narrows to its annotation
        return new

    def visit_Assign(self, node: ast.Assign) -> ast.stmt:
        mapped = self._map_statement(node)
        if mapped is not None:
            return mapped
        ty: IntTy | tuple[IntTy, ...] | None = self.types.stores.get(self._orig(node)) or self.types.unpacks.get(self._orig(node))
        new = self.generic_visit(node)
        assert isinstance(new, ast.Assign)
        if ty is not None:
            new.value = self._wrap(new.value, ty)
        return new

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt:
        ty = self.types.stores.get(self._orig(node))
        value = self.visit(node.value) if node.value is not None else None
        assert isinstance(node.target, (ast.Name, ast.Attribute))
        if ty is not None and value is not None:
            value = self._wrap(value, ty)
        return ast.copy_location(ast.Assign(targets=[node.target], value=value or _const(0)), node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        # `t op= v` runs as `t = t op v`, as the frontend lowered it; the
        # operation's type is recorded under the statement.
        mapped = self._map_statement(node)
        if mapped is not None:
            return mapped
        original = self._orig(node)
        ty = self.types.results.get(original)
        if ty is None:  # never lowered: dead code
            return node
        right = self.visit(node.value)
        assert isinstance(right, ast.expr)
        spec = self._spec([(_SYMBOLS[type(node.op)], ty)])
        value: ast.expr = ast.copy_location(_call("__pyfd_binops", spec, _as_load(node.target), right), node)
        stored = self.types.stores.get(original)
        if stored is not None:
            value = self._wrap(value, stored)
        return ast.copy_location(ast.Assign(targets=[node.target], value=value), node)


# id of a copied node -> (the copy, its original). Holding the copy keeps its
# id from being reused by a node made later while the table is in use.
Origins = dict[int, tuple[ast.AST, ast.AST]]


def _clone(node: ast.AST, origin: Origins) -> ast.AST:
    """A deep copy of `node`, recording which original each copied node came from."""
    twin = copy.deepcopy(node)
    for original, copied in zip(ast.walk(node), ast.walk(twin), strict=True):
        origin[id(copied)] = (copied, original)
    return twin


class _Builder:
    """Instruments the dissector and every helper it inlined, once each."""

    def __init__(self, lowered: Lowered, state: Any = None) -> None:
        self.lowered = lowered
        self.state = state  # pyfd.maps.PythonState: the maps and Configs the run reads and writes
        self.done: dict[Any, Callable[..., Any]] = {}

    def build(self, source: FunctionSource, ret_ty: IntTy | tuple[IntTy, ...] | None = None) -> Callable[..., Any]:
        origin: Origins = {}
        fdef = _clone(source.node, origin)
        assert isinstance(fdef, ast.FunctionDef)
        fdef.decorator_list = []
        namespace: dict[str, Any] = dict(source.globals)
        namespace.update(HELPERS)
        namespace["__pyfd_state"] = self.state
        callees: dict[ast.AST, str] = {}
        for call in ast.walk(source.node):
            callee = self.lowered.types.calls.get(call)
            if callee is not None:
                name = f"__pyfd_helper_{callee.__module__.replace('.', '_')}_{callee.__name__}"
                callees[call] = name
                namespace[name] = self.helper(callee)
        transformer = _Instrument(self.lowered, origin, callees)
        transformer.ret_ty = ret_ty
        new = transformer.visit(fdef)
        assert isinstance(new, ast.FunctionDef)
        # Integer arguments narrow to their parameter's type on the way in, as in the kernel.
        prologue: list[ast.stmt] = [
            ast.Assign(
                targets=[ast.Name(id=name, ctx=ast.Store())],
                value=_call("__pyfd_wrap", ast.Name(id=name, ctx=ast.Load()), _const(ty.bits), _const(ty.signed)),
            )
            for name, ty in self.lowered.types.params.get(source.node, [])
        ]
        for stmt in prologue:
            ast.copy_location(stmt, new)
        new.body = prologue + new.body
        module = ast.Module(body=[new], type_ignores=[])
        ast.fix_missing_locations(module)
        code = compile(module, source.file, "exec")
        exec(code, namespace)  # noqa: S102 - the user's own function, recompiled
        fn: Callable[..., Any] = namespace[new.name]
        return fn

    def helper(self, fn: Any) -> Callable[..., Any]:
        if fn not in self.done:
            source = self.lowered.helpers[fn]
            self.done[fn] = self.build(source, self.lowered.types.returns.get(source.node))
        return self.done[fn]


def instrument(lowered: Lowered, state: Any = None) -> Callable[..., int]:
    """The dissector as a CPython function that wraps integers like the kernel; `state` holds its maps and Configs."""
    if state is None and (lowered.maps or lowered.configs):
        from pyfd.maps import PythonState

        state = PythonState(lowered.maps, lowered.configs)
    try:
        with recursion_room():
            return _Builder(lowered, state).build(lowered.source)
    except RecursionError:
        # CPython compiles a syntax tree only so deep (about 1,500 levels on
        # 3.12, whatever the recursion limit), less than it parses from text.
        raise UnsupportedError(
            "this function is nested too deeply for CPython to compile it again for the Python run",
            lowered.source.span(lowered.source.node),
            hint="split deep expressions or long chains of `elif`s with intermediate locals",
        ) from None
