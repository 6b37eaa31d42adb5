"""The frontend: a dissector's Python `ast` to IR.

Only a whitelisted subset is lowered; anything else is refused with a
`CompileError` naming the construct at its span. While lowering, the frontend
records the type it gave every arithmetic node and typed assignment
(`TypeRecord`), which `pyinstrument` uses to run the same function in CPython
with exactly the kernel's integer widths.
"""

from __future__ import annotations

import ast
import types
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn

from pyfd.constants import BPF_DROP, RETURN_CODES
from pyfd.headers import Header
from pyfd.keys import KEY_FIELDS, BpfFlowKeys
from pyfd.layout import Field
from pyfd.packet import MAX_PACKET_OFF, Packet
from pyfd.types import FixedInt

from .diagnostics import (
    CompileError, CompileNameError, CompileTypeError, InternalCompilerError, PacketAccessError,
    ReturnValueError, Span, UnsupportedError,
)
from .ir.nodes import (
    Binary, BinaryOp, Block, Branch, ByteSwap, CheckPacket, Cmp, Copy, Extend, Function, Imm,
    Instruction, Jump, LoadKeys, LoadPacket, Operand, Reg, Return, SetCond, StoreKeys, Terminator,
    Unary, UnaryOp, compare_exact, evaluate_binary,
)
from .recursion import recursion_room
from .source import FunctionSource, function_source
from .typesys import BOOL, FROM_PYFD, I64, LITERAL, U64, IntTy, arithmetic_result, unsigned_for_bits

# Names of constructs for "X is not supported" messages.
_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.While: "`while` loops",
    ast.For: "`for` loops",
    ast.AsyncFor: "`async for` loops",
    ast.Try: "`try` statements",
    ast.TryStar: "`try` statements",
    ast.With: "`with` statements",
    ast.AsyncWith: "`async with` statements",
    ast.Raise: "`raise`",
    ast.Assert: "`assert`",
    ast.Delete: "`del`",
    ast.Import: "`import`",
    ast.ImportFrom: "`import`",
    ast.Global: "`global`",
    ast.Nonlocal: "`nonlocal`",
    ast.FunctionDef: "nested functions",
    ast.AsyncFunctionDef: "nested functions",
    ast.ClassDef: "class definitions",
    ast.Match: "`match` statements",
    ast.Lambda: "`lambda`",
    ast.ListComp: "list comprehensions",
    ast.SetComp: "set comprehensions",
    ast.DictComp: "dict comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.List: "list literals",
    ast.Tuple: "tuples",
    ast.Dict: "dict literals",
    ast.Set: "set literals",
    ast.JoinedStr: "f-strings",
    ast.Subscript: "subscripts (`x[i]`)",
    ast.Starred: "`*args`",
    ast.Await: "`await`",
    ast.Yield: "`yield`",
    ast.YieldFrom: "`yield from`",
    ast.NamedExpr: "assignment expressions (`:=`)",
    ast.IfExp: "conditional expressions (`a if c else b`)",
    ast.Slice: "slices",
}
_LOOP_HINT = "use `for _ in range(N)` with a constant N: a loop the verifier can walk to its end"
_HINTS: dict[type[ast.AST], str] = {
    ast.While: _LOOP_HINT,
    ast.AsyncFor: _LOOP_HINT,
    ast.IfExp: "use an `if` statement that assigns a local in both branches",
    ast.Try: "a failed packet read already ends the dissector with BPF_DROP",
}

_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%", ast.BitAnd: "&",
    ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
}
_CMP_NAMES: dict[type[ast.cmpop], str] = {ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_CMPS_UNSIGNED: dict[type[ast.cmpop], Cmp] = {
    ast.Eq: Cmp.EQ, ast.NotEq: Cmp.NE, ast.Gt: Cmp.UGT, ast.GtE: Cmp.UGE, ast.Lt: Cmp.ULT, ast.LtE: Cmp.ULE,
}
_CMPS_SIGNED: dict[type[ast.cmpop], Cmp] = {
    ast.Eq: Cmp.EQ, ast.NotEq: Cmp.NE, ast.Gt: Cmp.SGT, ast.GtE: Cmp.SGE, ast.Lt: Cmp.SLT, ast.LtE: Cmp.SLE,
}


@dataclass(frozen=True)
class Value:
    """An integer value: an operand, its type, and its exact value if constant."""

    op: Operand
    ty: IntTy
    const: int | None = None
    # The constants a non-constant value can hold, when the frontend knows them
    # (a helper that returns only constants, a local assigned only those).
    choices: frozenset[int] | None = None


@dataclass(frozen=True)
class HeaderView:
    """A header of type `kind` at packet offset `base` (already bounds-checked)."""

    kind: type[Header]
    base: Operand


@dataclass(frozen=True)
class Conflict:
    """A header name bound to different packet positions on different paths."""

    span: Span
    partial: bool = False  # some path reaching the merge did not bind the name at all


@dataclass(frozen=True)
class BytesView:
    """`size` opaque bytes of the packet at `base + offset` (an IPv6 address), copied as a whole."""

    base: Operand
    offset: int
    size: int
    name: str


@dataclass(frozen=True)
class TupleValue:
    """The result of a helper annotated `-> tuple[...]`: one integer per element."""

    items: tuple[Value, ...]


@dataclass(frozen=True)
class _Param:
    """The packet or keys parameter."""

    kind: str  # "packet" | "keys"


@dataclass(frozen=True)
class _Global:
    """A module-level object the dissector refers to (a type, a header class...)."""

    obj: Any


@dataclass
class _Frame:
    """What `return` does in the function being lowered: the dissector's, or an inlined helper's."""

    name: str
    ret_ty: IntTy | None = None  # a helper's result type; None for the dissector or a `-> None` helper
    helper: bool = False
    result: Reg | None = None  # where a helper's result goes
    join: str | None = None  # the block after the call
    returns: list[tuple[str, "_Env"]] = field(default_factory=list)
    choices: set[int] | None = field(default_factory=set)  # constants returned; None once any other value is
    # `-> tuple[u8, u16]`: the element types, result registers and constants of each element.
    tuple_tys: tuple[IntTy, ...] | None = None
    tuple_results: tuple[Reg, ...] = ()
    tuple_choices: list[set[int] | None] = field(default_factory=list)
    tail: "_Frame | None" = None  # `return helper(...)`: the helper's returns are the caller's


@dataclass
class _Loop:
    """A `for` loop being lowered: where its `break`s and `continue`s leave from."""

    breaks: list[tuple[str, "_Env"]] = field(default_factory=list)
    continues: list[tuple[str, "_Env"]] = field(default_factory=list)


# The most iterations a `for` loop may run: the verifier walks every one of
# them through the whole body, and its budget is one million instructions.
MAX_ITERATIONS = 64
# How deep helpers may call helpers.
MAX_INLINE_DEPTH = 16


@dataclass
class TypeRecord:
    """Types the frontend gave AST nodes, for the CPython run of the same function."""

    results: dict[ast.AST, IntTy] = field(default_factory=dict)  # BinOp/UnaryOp result types
    stores: dict[ast.AST, IntTy] = field(default_factory=dict)  # Assign/AnnAssign to a local
    calls: dict[ast.AST, Callable[..., Any]] = field(default_factory=dict)  # Call -> the helper it inlines
    params: dict[ast.AST, list[tuple[str, IntTy]]] = field(default_factory=dict)  # helper def -> its integer parameters
    returns: dict[ast.AST, IntTy | tuple[IntTy, ...]] = field(default_factory=dict)  # helper def -> its result type(s)
    unpacks: dict[ast.AST, tuple[IntTy, ...]] = field(default_factory=dict)  # `a, b = helper()` -> the locals' types


@dataclass
class _Env:
    """What is known on the current path: assigned locals and header bindings."""

    assigned: set[str]
    headers: dict[str, HeaderView | Conflict]
    choices: dict[str, frozenset[int]] = field(default_factory=dict)  # locals known to hold one of these constants

    def copy(self) -> "_Env":
        return _Env(set(self.assigned), dict(self.headers), dict(self.choices))


def _merge(envs: list[_Env], span: Span) -> _Env:
    assigned = set.intersection(*(e.assigned for e in envs))
    choices = {
        name: frozenset().union(*(e.choices[name] for e in envs))
        for name in set.intersection(*(set(e.choices) for e in envs))
    }
    headers: dict[str, HeaderView | Conflict] = {}
    for name in set().union(*(e.headers for e in envs)):
        seen = [e.headers.get(name) for e in envs]
        first = seen[0]
        if first is not None and all(s == first for s in seen):
            headers[name] = first  # type: ignore[assignment]
        else:
            headers[name] = Conflict(span, partial=None in seen)
    return _Env(assigned, headers, choices)


@dataclass
class Lowered:
    """The frontend's result: the IR function and the recorded types."""

    function: Function
    types: TypeRecord
    source: FunctionSource
    # The sources of the helper functions it inlined, by function (their AST
    # nodes are the keys of `types`).
    helpers: dict[Any, FunctionSource] = field(default_factory=dict)


def lower_function(fn: Callable[..., Any]) -> Lowered:
    """Lower a dissector function to IR, or raise a CompileError."""
    source = function_source(fn)
    lowering = _Lowering(source)
    try:
        with recursion_room():
            return lowering.run()
    except CompileError:
        raise
    except RecursionError:  # deeper than even recursion_room allows: report where it gave up
        node, src = lowering.deepest
        raise UnsupportedError(
            "this is nested too deeply for pyfd to compile",
            src.span(node),
            hint="split the expression or the chain of `elif`s with intermediate locals",
        ) from None
    except Exception as exc:  # a bug outside any statement (the signature, the end of the body)
        raise InternalCompilerError(
            f"internal compiler error while compiling `{source.node.name}`: {type(exc).__name__}: {exc}", source.span(source.node)
        ) from exc


class _Lowering:
    def __init__(self, source: FunctionSource) -> None:
        self.src = source
        self.node = source.node
        self.types = TypeRecord()
        self.blocks: list[Block] = []
        self.label: str | None = None
        self.insns: list[Instruction] = []
        self.counter = 0
        self.env = _Env(set(), {})
        self.local_types: dict[str, IntTy] = {}
        self.local_regs: dict[str, Reg] = {}
        self.params: dict[str, _Param] = {}
        self.local_names: dict[str, str] = {}  # register name -> Python name, for listings
        # Names assigned anywhere in the function: local everywhere in it, as Python scopes them.
        self.stored_names = {n.id for n in ast.walk(source.node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        self.drop_label: str | None = None
        self.drop_span: Span | None = None
        self.root = source
        self.frame = _Frame(source.node.name)
        self.loops: list[_Loop] = []
        self.call_stack: list[Any] = []  # code objects of the functions being inlined
        self.helpers: dict[Any, FunctionSource] = {}
        self.inline_count = 0
        self.prefix = ""  # register name prefix of the current inlined helper
        self.deepest: tuple[ast.AST, FunctionSource] = (source.node, source)  # the node being lowered, for a RecursionError

    # -- plumbing ---------------------------------------------------------

    def span(self, node: ast.AST) -> Span:
        return self.src.span(node)

    def fail(self, node: ast.AST, message: str, *, hint: str | None = None, kind: type[CompileError] = CompileError) -> NoReturn:
        raise kind(message, self.span(node), hint=hint)

    def fresh(self, hint: str = "t") -> Reg:
        self.counter += 1
        return Reg(f"{hint}{self.counter}")

    def new_label(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}{self.counter}"

    @property
    def reachable(self) -> bool:
        return self.label is not None

    def emit(self, insn: Instruction) -> None:
        self.insns.append(insn)

    def terminate(self, term: Terminator) -> None:
        assert self.label is not None
        self.blocks.append(Block(self.label, self.insns, term))
        self.label, self.insns = None, []

    def start(self, label: str) -> None:
        self.label, self.insns = label, []

    def drop(self, span: Span) -> str:
        if self.drop_label is None:
            self.drop_label = self.new_label("drop")
            self.drop_span = span
        return self.drop_label

    # -- entry ------------------------------------------------------------

    def run(self) -> Lowered:
        node = self.node
        self._check_signature(node)
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Yield, ast.YieldFrom)):  # makes the function a generator, even in dead code
                self.unsupported(inner)
        self.start("entry")
        body = list(node.body)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body = body[1:]  # docstring
        self.lower_body(body)
        if self.reachable:
            last = node.body[-1]
            raise ReturnValueError(
                f"missing return: the end of `{node.name}` is reachable",
                self.span(last),
                hint="end every path with `return BPF_OK`, `return BPF_DROP` or `return BPF_FLOW_DISSECTOR_CONTINUE`",
            )
        if self.drop_label is not None:
            assert self.drop_span is not None
            self.start(self.drop_label)
            self.terminate(Return(BPF_DROP, self.drop_span))
        self.local_names.update({r.name: n for n, r in self.local_regs.items()})
        fn = Function(node.name, self.src.file, self.blocks, self.span(node), self.local_names)
        return Lowered(fn, self.types, self.src, self.helpers)

    def _check_signature(self, node: ast.FunctionDef) -> None:
        if not node.name.isascii():
            # The name becomes the BPF program's, the ELF symbol's and the BTF
            # FUNC's: the kernel takes letters, digits, `_` and `.` in a
            # program name (kernel/bpf/syscall.c, bpf_obj_name_cpy: isalnum is
            # ASCII there) and ASCII identifiers in BTF (btf_name_valid_identifier).
            line = self.src.span(node).source_line()
            at = line.find(node.name)  # after `def` and indentation: ASCII, so this is also its byte column
            col = len(line[:at].encode())
            span = Span(self.src.file, node.lineno, col, node.lineno, col + len(node.name.encode())) if at >= 0 else self.span(node)
            bad = ", ".join(repr(c) for c in dict.fromkeys(c for c in node.name if not c.isascii()))
            raise CompileNameError(
                f"the dissector's name `{node.name}` has non-ASCII characters ({bad}); a BPF program name is ASCII letters, digits and `_`",
                span,
                hint="rename the function",
            )
        args = node.args
        for extra, what in ((args.vararg, "*args"), (args.kwarg, "**kwargs")):
            if extra is not None:
                self.fail(extra, f"a dissector takes no {what}", kind=UnsupportedError)
        if args.kwonlyargs or args.posonlyargs or args.defaults or len(args.args) != 2:
            extra = [*args.posonlyargs, *args.args, *args.kwonlyargs][2:]
            self.fail(extra[0] if extra else node, f"`{node.name}` must take exactly two parameters: (pkt: Packet, keys: BpfFlowKeys)", kind=CompileTypeError)
        for arg, want, kind in ((args.args[0], Packet, "packet"), (args.args[1], BpfFlowKeys, "keys")):
            annotation = self._resolve_annotation(arg.annotation)
            if annotation is not want:
                got = "has no annotation" if arg.annotation is None else f"is annotated `{ast.unparse(arg.annotation)}`"
                self.fail(arg, f"parameter `{arg.arg}` {got}; it must be annotated `{want.__name__}`", kind=CompileTypeError)
            self.params[arg.arg] = _Param(kind)
        if node.returns is not None and self._resolve_annotation(node.returns) is not int:
            self.fail(node.returns, f"a dissector returns `int`, not `{ast.unparse(node.returns)}`", kind=CompileTypeError)

    def _resolve_annotation(self, node: ast.expr | None) -> Any:
        return _resolve(node, self.src.globals)

    # -- statements -------------------------------------------------------

    def lower_body(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if not self.reachable:
                # Code no path reaches would be neither compiled nor checked,
                # yet the CPython run would still have to carry it.
                self.fail(
                    stmt,
                    "this code is never reached: every path before it has returned or left the loop",
                    hint="delete it, or move it before the `return`, `break` or `continue`",
                    kind=UnsupportedError,
                )
            self.lower_stmt(stmt)

    def lower_stmt(self, stmt: ast.stmt) -> None:
        self.deepest = (stmt, self.src)
        try:
            self._stmt(stmt)
        except (CompileError, RecursionError):  # a RecursionError is located by lower_function
            raise
        except Exception as exc:  # a bug in pyfd: report it at the user's line, never as a traceback
            raise InternalCompilerError(f"internal compiler error while compiling this statement: {type(exc).__name__}: {exc}", self.span(stmt)) from exc

    def _stmt(self, stmt: ast.stmt) -> None:
        match stmt:
            case ast.Return(value=value):
                self._return(stmt, value)
            case ast.If():
                self._if(stmt)
            case ast.For():
                self._for(stmt)
            case ast.Break() | ast.Continue() if self.loops:
                loop = self.loops[-1]
                (loop.breaks if isinstance(stmt, ast.Break) else loop.continues).append(self._leave(self.span(stmt)))
            case ast.Expr(value=ast.Call() as call) if self._helper_target(call) is not None:
                self._call(call)  # a helper called for its effect on the keys; its result, if any, unused
            case ast.Assign(targets=[target], value=value):
                self._assign(stmt, target, value, None)
            case ast.Assign():
                self.fail(stmt, "chained assignment (`a = b = ...`) is not supported", kind=UnsupportedError)
            case ast.AnnAssign(target=target, annotation=annotation, value=value):
                if value is None:
                    self.fail(stmt, "a declaration needs a value: `x: u16 = 0`", kind=UnsupportedError)
                self._assign(stmt, target, value, annotation)
            case ast.AugAssign(target=target, op=op, value=value):
                self._augassign(stmt, target, op, value)
            case ast.Expr(value=ast.Call() as call) if self._is_header_call(call):
                self.header(call)
            case ast.Expr(value=value):
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    return  # a string used as a comment
                if not isinstance(value, ast.Constant):
                    self.expr(value)  # `print(x)`, `yield`, `(x := 1)`: name the construct, not "no effect"
                self.fail(stmt, "this expression has no effect", hint="only `pkt.header(...)` may stand alone, to require bytes", kind=UnsupportedError)
            case ast.Pass():
                return
            case _:
                self.unsupported(stmt)

    def unsupported(self, node: ast.AST) -> NoReturn:
        what = _CONSTRUCTS.get(type(node), f"`{type(node).__name__}`")
        plural = what.split(" (")[0].endswith("s")  # "subscripts (`x[i]`)" is plural
        self.fail(node, f"{what} {'are' if plural else 'is'} not supported in a dissector", hint=_HINTS.get(type(node)), kind=UnsupportedError)

    def _return(self, stmt: ast.Return, value: ast.expr | None) -> None:
        frame = self.frame
        if value is None:
            if frame.helper and frame.ret_ty is None and frame.tuple_tys is None:
                self._return_from_helper(frame, None, stmt)
                return
            what = "a dissector" if not frame.helper else f"`{frame.name}` (annotated with a result)"
            self.fail(stmt, f"{what} must return a value", hint="return BPF_OK, BPF_DROP or BPF_FLOW_DISSECTOR_CONTINUE" if not frame.helper else None, kind=ReturnValueError)
        if frame.tuple_tys is not None:
            self._return_tuple(frame, stmt, value)
            return
        if frame.helper and frame.ret_ty is None:
            self.fail(value, f"`{frame.name}` returns nothing (it has no result annotation, or `-> None`), but this returns a value", hint=f"annotate the result: `def {frame.name}(...) -> u16:`", kind=ReturnValueError)
        if isinstance(value, ast.Call) and self._helper_target(value) is not None:
            # `return helper(...)`: the helper's own returns end this function too.
            result = self._call(value, tail=True)
            if result is None:
                return
        else:
            result = self.expr(value)
        if not isinstance(result, Value):
            if not frame.helper:
                self.fail(value, "a dissector must return a constant return code", hint="return BPF_OK, BPF_DROP or BPF_FLOW_DISSECTOR_CONTINUE", kind=ReturnValueError)
            self.fail(value, f"`{ast.unparse(value)}` is not an integer value", kind=CompileTypeError)
        self._return_value(frame, result, value, stmt)

    def _return_value(self, frame: _Frame, result: Value, value: ast.expr, stmt: ast.stmt) -> None:
        """Return `result` from `frame` (a helper's result, or the dissector's return code)."""
        if frame.helper:
            assert frame.ret_ty is not None
            self._check_literal(result, frame.ret_ty, value, f"the result of `{frame.name}`")
            narrowed = self._narrowed(result, frame.ret_ty, self.span(value))
            if frame.tail is not None:
                self._return_value(frame.tail, narrowed, value, stmt)
            else:
                self._return_from_helper(frame, narrowed, stmt)
            return
        span = self.span(stmt)
        codes = {result.const} if result.const is not None else result.choices
        if not codes:
            self.fail(
                value,
                "a dissector must return a constant return code",
                hint="return BPF_OK, BPF_DROP or BPF_FLOW_DISSECTOR_CONTINUE, or a local or helper result that only ever holds one of them",
                kind=ReturnValueError,
            )
        bad = sorted(c for c in codes if c not in RETURN_CODES)
        if bad:
            where = f"{bad[0]}" if result.const is not None else f"`{ast.unparse(value)}` may be {bad[0]}, which"
            self.fail(
                value,
                f"{where} is not a flow dissector return code",
                hint="return BPF_OK (0), BPF_DROP (2) or BPF_FLOW_DISSECTOR_CONTINUE (129)",
                kind=ReturnValueError,
            )
        ordered = sorted(codes)
        for code in ordered[:-1]:  # a value that may be one of several codes: one compare per code
            here, rest = self.new_label("ret"), self.new_label("retnext")
            self.terminate(Branch(Cmp.EQ, result.op, Imm(code), here, rest, span))
            self.start(here)
            self.terminate(Return(code, span))
            self.start(rest)
        self.terminate(Return(ordered[-1], span))

    def _return_tuple(self, frame: _Frame, stmt: ast.Return, value: ast.expr) -> None:
        """`return a, b` from a helper annotated `-> tuple[...]`, or `return other(...)` returning the same."""
        assert frame.tuple_tys is not None
        n = len(frame.tuple_tys)
        if isinstance(value, ast.Call) and self._helper_target(value) is not None:
            # `return helper(...)`: the helper's returns deliver straight to this one's caller.
            self._call(value, tail=True)
            return
        if not (isinstance(value, ast.Tuple) and len(value.elts) == n):
            self.fail(value, f"`{frame.name}` returns a tuple of {n} integers: `return a, b`", kind=ReturnValueError)
        items = [self.int_expr(e) for e in value.elts]
        for i, (item, elt, ty) in enumerate(zip(items, value.elts, frame.tuple_tys)):
            self._check_literal(item, ty, elt, f"result {i} of `{frame.name}`")
        self._deliver_tuple(frame, items, self.span(stmt))

    def _deliver_tuple(self, frame: _Frame, items: list[Value], span: Span) -> None:
        """Narrow `items` to `frame`'s result types and leave to its caller (or its tail caller's)."""
        assert frame.tuple_tys is not None
        narrowed = [self._narrowed(item, ty, span) for item, ty in zip(items, frame.tuple_tys)]
        if frame.tail is not None:
            self._deliver_tuple(frame.tail, narrowed, span)
            return
        for i, item in enumerate(narrowed):
            frame.tuple_choices[i] = _with_choices(frame.tuple_choices[i], item)
            self.emit(Copy(frame.tuple_results[i], item.op, span))
        frame.returns.append(self._leave(span))

    def _return_from_helper(self, frame: _Frame, result: Value | None, stmt: ast.stmt) -> None:
        assert frame.join is not None
        if result is not None:
            assert frame.result is not None
            frame.choices = _with_choices(frame.choices, result)
            self.emit(Copy(frame.result, result.op, self.span(stmt)))
        frame.returns.append(self._leave(self.span(stmt)))

    def _narrowed(self, value: Value, ty: IntTy, span: Span) -> Value:
        """`value` converted to `ty` as an assignment to a `ty` local converts it."""
        from pyfd.types import wrap

        if value.const is not None:
            v = wrap(value.const, ty.bits, ty.signed)
            return Value(Imm(v), ty, v)
        choices = frozenset(wrap(c, ty.bits, ty.signed) for c in value.choices) if value.choices else None
        if ty.bits < 64 and not (value.ty.bits <= ty.bits and value.ty.signed == ty.signed and value.ty is not LITERAL):
            dst = self.fresh()
            self.emit(Extend(ty.signed, ty.bits, dst, value.op, span))
            return Value(dst, ty, None, choices)
        return Value(value.op, ty, None, choices)

    def _check_literal(self, value: Value, ty: IntTy, node: ast.AST, what: str) -> None:
        """Refuse an integer literal that `ty` cannot hold, where it narrows into `what`.

        One rule wherever a literal narrows (a typed local, a helper's argument
        or result, a keys field): it must fit. A computed value wraps, as in
        the kernel; a cast (`u8(300)`) wraps on purpose.
        """
        if value.ty is LITERAL and value.const is not None and not ty.contains(value.const):
            self.fail(
                node,
                f"{value.const} does not fit in {what}: {ty} holds {ty.min}..{ty.max}",
                hint=f"write `{ty}({value.const})` to wrap it on purpose",
                kind=CompileTypeError,
            )

    def _leave(self, span: Span) -> tuple[str, _Env]:
        """End the current block with a jump patched later (see `_join`); returns its label and env."""
        assert self.label is not None
        end = (self.label, self.env)
        self.terminate(Jump("", span))
        return end

    def _join(self, ends: list[tuple[str, _Env]], hint: str, span: Span, label: str | None = None) -> None:
        """Continue at one new block from every block in `ends` (left with `_leave`)."""
        if not ends:
            return
        join = label or self.new_label(hint)
        targets = {lbl for lbl, _ in ends}
        for i, block in enumerate(self.blocks):
            if block.label in targets and isinstance(block.term, Jump) and block.term.target == "":
                self.blocks[i] = Block(block.label, block.insns, Jump(join, block.term.span))
        self.start(join)
        self.env = _merge([env for _, env in ends], span)

    def _if(self, stmt: ast.If) -> None:
        then_label, else_label = self.new_label("then"), self.new_label("else")
        self.cond(stmt.test, then_label, else_label)
        before = self.env
        ends: list[tuple[str, _Env]] = []
        for label, body, truth in ((then_label, stmt.body, True), (else_label, stmt.orelse, False)):
            self.start(label)
            self.env = before.copy()
            self._refine(stmt.test, truth)
            self.lower_body(body)
            if self.reachable:
                ends.append(self._leave(self.span(stmt)))
        self._join(ends, "endif", self.span(stmt))

    def _refine(self, test: ast.expr, truth: bool) -> None:
        """Narrow what a local may hold on the branch where `test` is `truth` (`if status != NEXT`)."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            self._refine(test.operand, not truth)
            return
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq))):
            return
        left, right = test.left, test.comparators[0]
        if not isinstance(left, ast.Name):
            left, right = right, left
        if not isinstance(left, ast.Name) or left.id not in self.env.choices:
            return
        constant = self._constant(right)
        if constant is None:
            return
        equal = isinstance(test.ops[0], ast.Eq) == truth
        held = self.env.choices[left.id]
        self.env.choices[left.id] = held & {constant} if equal else held - {constant}

    def _constant(self, node: ast.expr) -> int | None:
        """The value of a literal or a module-level integer constant, without lowering anything."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return int(node.value)
        if isinstance(node, ast.Name) and node.id not in self.stored_names and node.id not in self.params:
            obj = self.src.globals.get(node.id)
            return int(obj) if isinstance(obj, int) else None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id not in self.stored_names:
            obj = getattr(self.src.globals.get(node.value.id), node.attr, None)
            return int(obj) if isinstance(obj, int) else None
        return None

    def _for(self, stmt: ast.For) -> None:
        loop_hint = "write `for _ in range(N)` with a constant N"
        if not isinstance(stmt.target, ast.Name):
            self.fail(stmt.target, "a `for` loop variable must be a single name", hint=loop_hint, kind=UnsupportedError)
        it = stmt.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range" and "range" not in self.src.globals and not it.keywords and 1 <= len(it.args) <= 3):
            self.fail(it, "a `for` loop must iterate over `range(...)` with constant bounds", hint=loop_hint, kind=UnsupportedError)
        bounds: list[int] = []
        for arg in it.args:
            value = self.expr(arg)
            if not isinstance(value, Value) or value.const is None:
                self.fail(arg, "a loop needs a constant bound: the verifier must see every iteration", hint=loop_hint, kind=UnsupportedError)
            bounds.append(value.const)
        if len(bounds) == 3 and bounds[2] == 0:
            self.fail(it.args[2], "range() step must not be zero", kind=CompileTypeError)
        values = range(*bounds)
        if len(values) > MAX_ITERATIONS:
            self.fail(it, f"this loop runs {len(values)} times; a loop may run at most {MAX_ITERATIONS} times, each one walked by the verifier", kind=UnsupportedError)
        name = stmt.target.id
        if name in self.params:
            self.fail(stmt.target, f"cannot assign to the parameter `{name}`", kind=CompileNameError)
        span = self.span(stmt)
        # A loop the verifier walks iteration by iteration (it accepts bounded
        # loops): a hidden counter runs over the range, and the loop variable
        # takes its value at the top of each pass. An empty range jumps past
        # the loop, whose body is still lowered (checked) in blocks no path
        # reaches, which the passes remove.
        step = values.step
        counter = Reg(f"{self.prefix}loop{self.new_label('')}")
        self.emit(Copy(counter, Imm(values.start), span))
        head, body, latch, done = (self.new_label(h) for h in ("loop", "body", "latch", "loopexit"))
        self.terminate(Jump(head if values else done, span))
        self.env = self._loop_entry_env(stmt)
        entry_env = self.env
        self.start(head)
        signed = min(values.start, values.stop) < 0
        cmp = (Cmp.SLT if signed else Cmp.ULT) if step > 0 else (Cmp.SGT if signed else Cmp.UGT)
        self.terminate(Branch(cmp, counter, Imm(values.stop), body, done, span))
        self.start(body)
        self.env = entry_env.copy()
        self._assign_local(None, stmt.target, Value(counter, I64 if signed else U64), None, self.span(stmt.target))
        self.loops.append(_Loop())
        self.lower_body(stmt.body)
        loop = self.loops.pop()
        ends = loop.continues + ([self._leave(span)] if self.reachable else [])
        if ends:
            self._join(ends, "latch", span, label=latch)
            self.emit(Binary(BinaryOp.ADD, counter, counter, Imm(step), span))
            self.terminate(Jump(head, span))
        self.start(done)
        self.env = entry_env.copy()
        if stmt.orelse:
            self.lower_body(stmt.orelse)  # `for ... else`: runs when no `break` left the loop
        exits = loop.breaks + ([self._leave(span)] if self.reachable else [])
        self._join(exits, "endfor", span)

    def _loop_entry_env(self, stmt: ast.For) -> _Env:
        """What holds at the top of every pass: what held before, less what the body may change."""
        env = self.env.copy()
        stored = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for name in stored:
            env.choices.pop(name, None)
            if name in env.headers:
                env.headers[name] = Conflict(self.span(stmt), partial=True)
        return env

    def _assign(self, stmt: ast.stmt, target: ast.expr, value: ast.expr, annotation: ast.expr | None) -> None:
        if isinstance(target, ast.Attribute):
            if annotation is not None:
                self.fail(target, "only local names can be annotated", kind=UnsupportedError)
            self._store_attribute(target, value, self.expr(value))
            return
        if isinstance(target, ast.Tuple) and annotation is None:
            self._unpack(stmt, target, value)
            return
        if not isinstance(target, ast.Name):
            self.unsupported(target)
        name = target.id
        if name in self.params:
            self.fail(target, f"cannot assign to the parameter `{name}`", kind=CompileNameError)
        declared: IntTy | type[Header] | None = None
        if annotation is not None:
            declared = self._declared_type(annotation)
        result = self.expr(value)
        if isinstance(result, HeaderView):
            if declared is not None and declared is not result.kind:
                self.fail(annotation or target, f"`{name}` is declared `{ast.unparse(annotation)}` but holds {_a(result.kind.__name__)} header", kind=CompileTypeError)  # type: ignore[arg-type]
            if name in self.local_types:
                self.fail(target, f"`{name}` holds an integer; it cannot also hold {_a(result.kind.__name__)} header", kind=CompileTypeError)
            self.env.headers[name] = result
            return
        if isinstance(result, BytesView):
            self.fail(value, f"`{ast.unparse(value)}` is {result.size} opaque bytes, not an integer", hint="copy it straight into a keys field of the same size: `keys.ipv6_src = ip6.saddr`", kind=CompileTypeError)
        if not isinstance(result, Value):
            self.fail(value, f"`{ast.unparse(value)}` is not an integer value", kind=CompileTypeError)
        if isinstance(declared, type):
            self.fail(annotation, f"`{name}` is declared as a header but assigned an integer", kind=CompileTypeError)  # type: ignore[arg-type]
        self._assign_local(stmt, target, result, annotation if declared is not None else None, self.span(stmt), declared=declared, value_node=value)

    def _unpack(self, stmt: ast.stmt, target: ast.Tuple, value: ast.expr) -> None:
        """`a, b = helper(...)` for a helper annotated `-> tuple[...]`."""
        result = self.expr(value) if isinstance(value, ast.Call) else None
        if not isinstance(result, TupleValue):
            self.fail(value, "only the result of a helper annotated `-> tuple[...]` can be unpacked", kind=UnsupportedError)
        if len(target.elts) != len(result.items):
            self.fail(target, f"`{ast.unparse(value)}` returns {len(result.items)} values, not {len(target.elts)}", kind=CompileTypeError)
        tys: list[IntTy] = []
        for elt in target.elts:
            if not isinstance(elt, ast.Name):
                self.fail(elt, "unpack into plain local names", kind=UnsupportedError)
            if elt.id in self.params:
                self.fail(elt, f"cannot assign to the parameter `{elt.id}`", kind=CompileNameError)
        for elt, item in zip(target.elts, result.items):
            assert isinstance(elt, ast.Name)
            self._assign_local(None, elt, item, None, self.span(stmt), value_node=value)
            tys.append(self.local_types[elt.id])
        self.types.unpacks[stmt] = tuple(tys)

    def _assign_local(
        self, stmt: ast.stmt | None, target: ast.Name, result: Value, annotation: ast.expr | None, span: Span,
        *, declared: IntTy | None = None, value_node: ast.expr | None = None,
    ) -> None:
        """`name = result` for an integer local, narrowed to the local's type."""
        name = target.id
        if name in self.env.headers:
            self.fail(target, f"`{name}` holds a header; it cannot also hold an integer", kind=CompileTypeError)
        ty = self.local_types.get(name)
        if declared is not None:
            if ty is not None and ty != declared:
                self.fail(annotation, f"`{name}` already has type `{ty}`", hint="a local keeps one type; use another name", kind=CompileTypeError)  # type: ignore[arg-type]
            ty = declared
        if ty is None:
            ty = self._infer(result, value_node or target)
        elif value_node is not None:
            self._check_literal(result, ty, value_node, f"`{name}`")
        self.local_types[name] = ty
        reg = self.local_regs.setdefault(name, Reg(f"{self.prefix}{name}"))
        if stmt is not None:
            self.types.stores[stmt] = ty
        self._narrow_into(reg, result, ty, span)
        self.env.assigned.add(name)
        codes = {result.const} if result.const is not None else result.choices
        if codes:
            from pyfd.types import wrap

            self.env.choices[name] = frozenset(wrap(c, ty.bits, ty.signed) for c in codes)
        else:
            self.env.choices.pop(name, None)

    def _infer(self, value: Value, node: ast.expr) -> IntTy:
        if value.ty is LITERAL:
            assert value.const is not None
            if U64.contains(value.const):
                return U64
            if I64.contains(value.const):
                return I64
            self.fail(node, f"the constant {value.const} does not fit in 64 bits", kind=CompileTypeError)
        return value.ty if value.ty is not BOOL else BOOL

    def _declared_type(self, annotation: ast.expr) -> IntTy | type[Header]:
        obj = self._resolve_annotation(annotation)
        if isinstance(obj, type) and issubclass(obj, FixedInt) and obj in FROM_PYFD:
            return FROM_PYFD[obj]
        if isinstance(obj, type) and issubclass(obj, Header) and obj is not Header:
            return obj
        if obj is int:
            return U64
        if obj is bool:
            return BOOL
        self.fail(annotation, f"unsupported type `{ast.unparse(annotation)}`", hint="use u8, u16, u32, u64, i32, i64 or a header class", kind=CompileTypeError)

    def _narrow_into(self, dst: Reg, value: Value, ty: IntTy, span: Span) -> None:
        """`dst = value` narrowed to `ty`, exactly as the Python run wraps it."""
        if value.const is not None:
            from pyfd.types import wrap

            self.emit(Copy(dst, Imm(wrap(value.const, ty.bits, ty.signed)), span))
        elif ty.bits < 64 and not (value.ty.bits <= ty.bits and value.ty.signed == ty.signed and value.ty is not LITERAL):
            self.emit(Extend(ty.signed, ty.bits, dst, value.op, span))
        else:
            self.emit(Copy(dst, value.op, span))

    def _augassign(self, stmt: ast.AugAssign, target: ast.expr, op: ast.operator, value: ast.expr) -> None:
        # `t op= v` is `t = t op v`; the CPython run is desugared the same way (pyinstrument).
        load_target = _as_load(target)
        binop = ast.copy_location(ast.BinOp(left=load_target, op=op, right=value), stmt)
        ast.fix_missing_locations(binop)
        stmt.__dict__["_pyfd_binop"] = binop
        if isinstance(target, ast.Name) and not (target.id in self.env.assigned or target.id in self.params or target.id in self.env.headers):
            self.fail(target, f"`{target.id}` is used before it is assigned", kind=CompileNameError)
        self._assign(stmt, target, binop, None)

    def _store_attribute(self, target: ast.Attribute, value: ast.expr, result: Value | HeaderView | Any) -> None:
        base = self._name_binding(target.value) if isinstance(target.value, ast.Name) else None
        if isinstance(base, HeaderView):
            self.fail(target, "packet headers are read-only: a flow dissector cannot write the packet", kind=CompileTypeError)
        if not (isinstance(base, _Param) and base.kind == "keys"):
            self.fail(target, f"cannot assign to `{ast.unparse(target)}`", hint="only fields of the keys parameter can be assigned", kind=CompileNameError)
        fld = self._key_field(target)
        span = self.span(target)
        if isinstance(result, BytesView):
            if fld.is_bitfield or fld.size != result.size or fld.order != "big":
                self.fail(value, f"{result.name} is {result.size} bytes; keys.{fld.name} is {_a(f'{fld.width}-bit')} field", hint="copy opaque bytes only into a keys field of the same size", kind=CompileTypeError)
            self._copy_bytes(result, fld, span)
            return
        if not isinstance(result, Value):
            self.fail(value, f"keys.{fld.name} must be assigned an integer", kind=CompileTypeError)
        if fld.size not in (1, 2, 4, 8):
            self.fail(target, f"keys.{fld.name} is a {fld.size * 8}-bit field; it cannot be assigned from an integer expression", hint="assign it a header field of the same size, e.g. `keys.ipv6_src = ip6.saddr`", kind=CompileTypeError)
        if result.const is not None:
            self._check_literal(result, unsigned_for_bits(fld.width), value, f"keys.{fld.name}")
            raw = result.const & ((1 << fld.width) - 1)
            if fld.order == "big":
                raw = int.from_bytes(raw.to_bytes(fld.size, "big"), "little")
            self.emit(StoreKeys(fld.offset, fld.size, Imm(raw), span))
            return
        src: Operand = result.op
        if fld.order == "big" and fld.size > 1:
            swapped = self.fresh()
            self.emit(ByteSwap(fld.size * 8, swapped, src, span))
            src = swapped
        self.emit(StoreKeys(fld.offset, fld.size, src, span))

    def _copy_bytes(self, src: BytesView, fld: Field, span: Span) -> None:
        """Copy packet bytes into the keys verbatim, in the widest loads and stores that fit.

        Both sides are in network order, so no byte swap: a little-endian load
        followed by a little-endian store of the same width moves the bytes as
        they are.
        """
        done = 0
        while done < src.size:
            width = next(w for w in (8, 4, 2, 1) if w <= src.size - done and (fld.offset + done) % w == 0)
            raw = self.fresh()
            self.emit(LoadPacket(raw, src.base, src.offset + done, width, span))
            self.emit(StoreKeys(fld.offset + done, width, raw, span))
            done += width

    def _key_field(self, node: ast.Attribute) -> Field:
        fld = KEY_FIELDS.get(node.attr)
        if fld is None:
            names = ", ".join(KEY_FIELDS)
            self.fail(node, f"struct bpf_flow_keys has no field `{node.attr}`", hint=f"fields: {names}", kind=CompileNameError)
        return fld

    # -- conditions -------------------------------------------------------

    def cond(self, node: ast.expr, true: str, false: str) -> None:
        """Lower a condition as control flow; continue at `true` or `false`."""
        span = self.span(node)
        match node:
            case ast.BoolOp(op=ast.And(), values=values):
                for v in values[:-1]:
                    nxt = self.new_label("and")
                    self.cond(v, nxt, false)
                    self.start(nxt)
                self.cond(values[-1], true, false)
            case ast.BoolOp(op=ast.Or(), values=values):
                for v in values[:-1]:
                    nxt = self.new_label("or")
                    self.cond(v, true, nxt)
                    self.start(nxt)
                self.cond(values[-1], true, false)
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                self.cond(operand, false, true)
            case ast.Call() if self._is_header_call(node, "has"):
                self.terminate(self._has(node, true, false))
            case ast.Compare():
                cmp, lhs, rhs = self._compare(node)
                if lhs.const is not None and rhs.const is not None:
                    self.terminate(Jump(true if _static_cmp(cmp, lhs.const, rhs.const) else false, span))
                else:
                    self.terminate(Branch(cmp, lhs.op, rhs.op, true, false, span))
            case _:
                value = self.int_expr(node)
                if value.const is not None:
                    self.terminate(Jump(true if value.const else false, span))
                else:
                    self.terminate(Branch(Cmp.NE, value.op, Imm(0), true, false, span))

    def _compare(self, node: ast.Compare) -> tuple[Cmp, Value, Value]:
        if len(node.ops) != 1:
            self.fail(node, "chained comparisons are not supported", hint="write `a < b and b < c`", kind=UnsupportedError)
        op = node.ops[0]
        if type(op) not in _CMPS_UNSIGNED:
            self.fail(node, f"the `{_CMP_NAMES.get(type(op), type(op).__name__)}` operator is not supported", hint="compare integers with ==, !=, <, <=, >, >=", kind=UnsupportedError)
        lhs, rhs = self.int_expr(node.left), self.int_expr(node.comparators[0])
        typed = [v.ty for v in (lhs, rhs) if v.ty is not LITERAL]
        signed = bool(typed) and typed[0].signed
        if len(typed) == 2 and typed[0].signed != typed[1].signed:
            self.fail(
                node,
                f"comparison between signed `{lhs.ty}` and unsigned `{rhs.ty}`" if lhs.ty.signed else f"comparison between unsigned `{lhs.ty}` and signed `{rhs.ty}`",
                hint="cast one side, e.g. `i64(x)` or `u64(x)`",
                kind=CompileTypeError,
            )
        domain = I64 if signed else U64
        for side, v in ((node.left, lhs), (node.comparators[0], rhs)):
            if v.ty is LITERAL and typed and v.const is not None and not domain.contains(v.const):
                self.fail(side, f"{v.const} is outside the range of {_a('signed' if signed else 'unsigned')} 64-bit comparison", kind=CompileTypeError)
        table = _CMPS_SIGNED if signed or (not typed and min(lhs.const or 0, rhs.const or 0) < 0) else _CMPS_UNSIGNED
        return table[type(op)], lhs, rhs

    # -- expressions ------------------------------------------------------

    def int_expr(self, node: ast.expr) -> Value:
        """Lower an expression that must be an integer."""
        result = self.expr(node)
        if isinstance(result, Value):
            return result
        if isinstance(result, HeaderView):
            self.fail(node, f"{_a(result.kind.__name__)} header is not an integer", hint="read one of its fields", kind=CompileTypeError)
        if isinstance(result, TupleValue):
            self.fail(node, f"`{ast.unparse(node)}` returns {len(result.items)} values", hint="unpack them: `a, b = helper(...)`", kind=CompileTypeError)
        if isinstance(result, BytesView):
            self.fail(node, f"{result.name} is {result.size} opaque bytes, not an integer", hint="copy it whole into a keys field of the same size, e.g. `keys.ipv6_src = ip6.saddr`", kind=CompileTypeError)
        self.fail(node, f"`{ast.unparse(node)}` is not an integer value", kind=CompileTypeError)

    def expr(self, node: ast.expr) -> Value | HeaderView | _Param | _Global:
        """Lower an expression."""
        self.deepest = (node, self.src)
        try:
            return self._expr(node)
        except (CompileError, RecursionError):  # a RecursionError is located by lower_function
            raise
        except Exception as exc:
            raise InternalCompilerError(f"internal compiler error while compiling this expression: {type(exc).__name__}: {exc}", self.span(node)) from exc

    def _expr(self, node: ast.expr) -> Value | HeaderView | _Param | _Global:
        match node:
            case ast.Constant(value=bool() as b):
                return Value(Imm(int(b)), LITERAL, int(b))
            case ast.Constant(value=int() as i):
                return Value(Imm(i), LITERAL, i)
            case ast.Constant(value=other):
                kind = {str: "string", float: "float", bytes: "bytes", type(None): "`None`", complex: "complex"}.get(type(other), type(other).__name__)
                self.fail(node, f"{kind} literals are not supported; a dissector computes with integers", kind=UnsupportedError)
            case ast.Name(id=name):
                return self._name(node, name)
            case ast.Attribute(value=base, attr=attr):
                return self._attribute(node, base, attr)
            case ast.BinOp():
                return self._binop(node)
            case ast.UnaryOp():
                return self._unaryop(node)
            case ast.BoolOp() | ast.Compare():
                return self._materialize_bool(node)
            case ast.Call():
                result = self._call(node)
                if result is None:  # a helper without a result, used as a value
                    name = ast.unparse(node.func)
                    self.fail(
                        node,
                        f"`{name}` returns nothing (it has no result annotation), so this call has no value",
                        hint=f"annotate its result (`def {name.rsplit('.', 1)[-1]}(...) -> u16:`), or call it as a statement of its own",
                        kind=CompileTypeError,
                    )
                return result
        self.unsupported(node)

    def _name_binding(self, node: ast.Name) -> Value | HeaderView | _Param | _Global | None:
        name = node.id
        if name in self.params:
            return self.params[name]
        if name in self.env.headers:
            view = self.env.headers[name]
            if isinstance(view, Conflict) and view.partial:
                self.fail(
                    node,
                    f"`{name}` is not bound to a header on every path that reaches here (the paths merge at line {view.span.line})",
                    hint="call pkt.header(...) on every path, or read the fields inside the branch that binds it",
                    kind=CompileNameError,
                )
            if isinstance(view, Conflict):
                self.fail(
                    node,
                    f"`{name}` refers to different packet headers on the paths that reach here (they merge at line {view.span.line})",
                    hint="read the fields you need inside each branch, or call pkt.header(...) again after it",
                    kind=CompileNameError,
                )
            return view
        if name in self.local_types:
            if name not in self.env.assigned:
                self.fail(node, f"`{name}` may be used before it is assigned", hint="assign it on every path that reaches here", kind=CompileNameError)
            return Value(self.local_regs[name], self.local_types[name], None, self.env.choices.get(name))
        if name in self.stored_names:  # assigned later: Python raises UnboundLocalError here, even if a global has the name
            self.fail(node, f"`{name}` is used before it is assigned", hint=f"`{name}` is assigned later in the function, which makes it a local everywhere in it", kind=CompileNameError)
        return None

    def _name(self, node: ast.Name, name: str) -> Value | HeaderView | _Param | _Global:
        bound = self._name_binding(node)
        if bound is not None:
            return bound
        if name not in self.src.globals:
            import builtins

            if hasattr(builtins, name):
                self.fail(node, f"the builtin `{name}` is not supported in a dissector", kind=UnsupportedError)
            self.fail(node, f"name `{name}` is not defined", kind=CompileNameError)
        obj = self.src.globals[name]
        if isinstance(obj, bool):
            return Value(Imm(int(obj)), LITERAL, int(obj))
        if isinstance(obj, int):
            return Value(Imm(obj), LITERAL, int(obj))
        return _Global(obj)

    def _attribute(self, node: ast.Attribute, base: ast.expr, attr: str) -> Value:
        owner = self.expr(base)
        span = self.span(node)
        if isinstance(owner, _Param) and owner.kind == "keys":
            fld = self._key_field(node)
            if fld.size not in (1, 2, 4, 8):
                self.fail(node, f"keys.{attr} is a {fld.size * 8}-bit field and cannot be read as an integer", kind=CompileTypeError)
            raw = self.fresh()
            self.emit(LoadKeys(raw, fld.offset, fld.size, span))
            return self._decode(raw, fld, span)
        if isinstance(owner, HeaderView):
            fld = owner.kind.fields.get(attr)
            if fld is None:
                names = ", ".join(owner.kind.fields)
                self.fail(node, f"header {owner.kind.__name__} has no field `{attr}`", hint=f"fields: {names}", kind=CompileNameError)
            if not fld.is_bitfield and fld.size not in (1, 2, 4, 8):
                return BytesView(owner.base, fld.offset, fld.size, f"{owner.kind.__name__}.{attr}")  # type: ignore[return-value]
            raw = self.fresh()
            self.emit(LoadPacket(raw, owner.base, fld.offset, fld.size, span))
            return self._decode(raw, fld, span)
        if isinstance(owner, _Param):
            self.fail(node, f"the packet has no attribute `{attr}`", hint="read headers with pkt.header(Header, offset)", kind=CompileNameError)
        if isinstance(owner, _Global) and isinstance(owner.obj, types.ModuleType):  # `lib.ipv4`, `pyfd.BPF_OK`
            if not hasattr(owner.obj, attr):
                self.fail(node, f"module `{owner.obj.__name__}` has no attribute `{attr}`", kind=CompileNameError)
            obj = getattr(owner.obj, attr)
            if isinstance(obj, (bool, int)):
                return Value(Imm(int(obj)), LITERAL, int(obj))
            return _Global(obj)  # type: ignore[return-value]
        self.fail(node, f"`{ast.unparse(node)}` is not supported", kind=UnsupportedError)

    def _decode(self, raw: Reg, fld: Field, span: Span) -> Value:
        """A field's host-order value from its raw little-endian load."""
        value = raw
        if fld.order == "big" and fld.size > 1:
            value = self.fresh()
            self.emit(ByteSwap(fld.size * 8, value, raw, span))
        if fld.is_bitfield:
            if fld.shift:
                shifted = self.fresh()
                self.emit(Binary(BinaryOp.LSHR, shifted, value, Imm(fld.shift), span))
                value = shifted
            if fld.shift + fld.bits < fld.size * 8:
                masked = self.fresh()
                self.emit(Binary(BinaryOp.AND, masked, value, Imm((1 << fld.bits) - 1), span))
                value = masked
        return Value(value, unsigned_for_bits(fld.width))

    def _binop(self, node: ast.BinOp) -> Value:
        symbol = _BINOPS.get(type(node.op))
        if symbol is None:
            hint = "use `//` for integer division" if isinstance(node.op, ast.Div) else None
            name = {ast.Div: "`/`", ast.Pow: "`**`", ast.MatMult: "`@`"}.get(type(node.op), type(node.op).__name__)
            self.fail(node, f"the {name} operator is not supported", hint=hint, kind=UnsupportedError)
        lhs, rhs = self.int_expr(node.left), self.int_expr(node.right)
        ty = arithmetic_result(lhs.ty, rhs.ty)
        span = self.span(node)
        if ty is LITERAL:
            assert lhs.const is not None and rhs.const is not None
            return self._fold(node, symbol, lhs.const, rhs.const)
        self.types.results[node] = ty
        for side, v in ((node.left, lhs), (node.right, rhs)):
            if v.const is not None and not (-(1 << 63) <= v.const < (1 << 64)):
                self.fail(side, f"the constant {v.const} does not fit in 64 bits", kind=CompileTypeError)
        match symbol:
            case "//" | "%":
                if ty.signed:
                    self.fail(node, f"signed `{symbol}` is not supported", hint="cast the operands to u64 (BPF divides unsigned)", kind=CompileTypeError)
                for side, v in ((node.left, lhs), (node.right, rhs)):
                    if v.const is not None and v.const < 0:
                        self.fail(side, f"negative constant {v.const} in unsigned `{symbol}`", kind=CompileTypeError)
                if rhs.const == 0:  # refused like `14 // 0` in _fold; a zero read from the packet follows BPF (x // 0 == 0)
                    self.fail(node.right, f"`{symbol}` by a constant zero", hint="BPF defines x // 0 as 0 and x % 0 as x; write that instead", kind=CompileTypeError)
                op = BinaryOp.UDIV if symbol == "//" else BinaryOp.UMOD
            case "<<" | ">>":
                if rhs.const is not None and not 0 <= rhs.const <= 63:
                    self.fail(node.right, f"shift count {rhs.const} is outside 0..63", kind=CompileTypeError)
                if symbol == "<<":
                    op = BinaryOp.SHL
                else:
                    op = BinaryOp.ASHR if ty.signed else BinaryOp.LSHR
                    if lhs.const is not None and not ty.contains(lhs.const):
                        self.fail(node.left, f"{lhs.const} is outside the range of {ty}", kind=CompileTypeError)
            case _:
                op = {"+": BinaryOp.ADD, "-": BinaryOp.SUB, "*": BinaryOp.MUL, "&": BinaryOp.AND, "|": BinaryOp.OR, "^": BinaryOp.XOR}[symbol]
        dst = self.fresh()
        if lhs.const is not None and rhs.const is not None:  # both typed constants cannot happen; kept total
            raise InternalCompilerError("constant operands escaped folding", span)
        self.emit(Binary(op, dst, lhs.op, rhs.op, span))
        return Value(dst, ty)

    def _fold(self, node: ast.BinOp, symbol: str, a: int, b: int) -> Value:
        """Fold an operation on two literals with Python's semantics (as the CPython run does)."""
        if symbol in ("//", "%") and b == 0:
            self.fail(node, "division by zero in a constant expression", kind=CompileTypeError)
        if symbol in ("<<", ">>") and not 0 <= b <= 64:
            self.fail(node.right, f"shift count {b} is outside 0..63", kind=CompileTypeError)
        ops: dict[str, Callable[[int, int], int]] = {
            "+": int.__add__, "-": int.__sub__, "*": int.__mul__, "//": int.__floordiv__, "%": int.__mod__,
            "&": int.__and__, "|": int.__or__, "^": int.__xor__, "<<": int.__lshift__, ">>": int.__rshift__,
        }
        value = ops[symbol](a, b)
        if not -(1 << 64) <= value < (1 << 65):
            self.fail(node, f"the constant expression is {value}, which does not fit in 64 bits", kind=CompileTypeError)
        return Value(Imm(value), LITERAL, value)

    def _unaryop(self, node: ast.UnaryOp) -> Value:
        if isinstance(node.op, ast.Not):
            return self._materialize_bool(node)
        operand = self.int_expr(node.operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        if operand.const is not None:
            value = -operand.const if isinstance(node.op, ast.USub) else ~operand.const
            return Value(Imm(value), LITERAL, value)
        ty = I64 if operand.ty.signed else U64
        self.types.results[node] = ty
        dst = self.fresh()
        self.emit(Unary(UnaryOp.NEG if isinstance(node.op, ast.USub) else UnaryOp.NOT, dst, operand.op, self.span(node)))
        return Value(dst, ty)

    def _materialize_bool(self, node: ast.expr) -> Value:
        """A condition used as a value: 1 or 0."""
        span = self.span(node)
        if isinstance(node, ast.Compare):
            cmp, lhs, rhs = self._compare(node)
            if lhs.const is not None and rhs.const is not None:
                v = int(_static_cmp(cmp, lhs.const, rhs.const))
                return Value(Imm(v), LITERAL, v)
            dst = self.fresh()
            self.emit(SetCond(cmp, dst, lhs.op, rhs.op, span))
            return Value(dst, BOOL)
        dst = self.fresh("b")
        yes, no, join = self.new_label("true"), self.new_label("false"), self.new_label("bool")
        self.cond(node, yes, no)
        for label, bit in ((yes, 1), (no, 0)):
            self.start(label)
            self.emit(Copy(dst, Imm(bit), span))
            self.terminate(Jump(join, span))
        self.start(join)
        return Value(dst, BOOL)

    def _is_header_call(self, node: ast.Call, method: str = "header") -> bool:
        func = node.func
        return (
            isinstance(func, ast.Attribute)
            and func.attr == method
            and isinstance(func.value, ast.Name)
            and isinstance(self.params.get(func.value.id), _Param)
            and self.params[func.value.id].kind == "packet"
        )

    def _call(self, node: ast.Call, *, tail: bool = False) -> Value | HeaderView | None:
        if self._is_header_call(node):
            return self.header(node)
        if self._is_header_call(node, "has"):
            return self._materialize_bool(node)
        helper = self._helper_target(node)
        if helper is not None:
            return self._inline(node, helper, tail=tail)
        if node.keywords:
            self.fail(node, "keyword arguments are not supported here", kind=UnsupportedError)
        callee = self.expr(node.func) if isinstance(node.func, (ast.Name, ast.Attribute)) else None
        if isinstance(callee, _Global) and isinstance(callee.obj, type) and issubclass(callee.obj, FixedInt) and callee.obj in FROM_PYFD:
            if len(node.args) != 1:
                self.fail(node, f"{callee.obj.__name__}(...) takes one argument", kind=CompileTypeError)
            return self._cast(node, FROM_PYFD[callee.obj], self.int_expr(node.args[0]))
        if isinstance(node.func, ast.Name) and node.func.id == self.node.name:
            self.fail(node, "recursion is not supported: BPF has no unbounded call stack", kind=UnsupportedError)
        self.fail(
            node,
            f"call to `{ast.unparse(node.func)}` is not supported",
            hint="a dissector may call pkt.header(...), the casts u8(...) .. i64(...), and module-level functions with annotated parameters",
            kind=UnsupportedError,
        )

    def _helper_target(self, node: ast.Call) -> Callable[..., Any] | None:
        """The Python function a call names, if it is one pyfd can inline (resolved without lowering)."""
        func = node.func
        obj: Any = None
        if isinstance(func, ast.Name):
            if func.id in self.params or func.id in self.stored_names or func.id not in self.src.globals:
                return None
            obj = self.src.globals[func.id]
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id not in self.stored_names and func.value.id not in self.params:
            module = self.src.globals.get(func.value.id)
            if not isinstance(module, types.ModuleType):
                return None
            obj = getattr(module, func.attr, None)
        from pyfd.function import DissectorFunction as Dissector  # any @dissector function

        if isinstance(obj, Dissector):
            obj = obj.fn
        return obj if isinstance(obj, types.FunctionType) else None

    def _helper_signature(self, src: FunctionSource) -> tuple[list[tuple[str, Any]], IntTy | tuple[IntTy, ...] | None]:
        """A helper's parameters (name, Packet | BpfFlowKeys | header class | IntTy) and result type."""
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
            obj = _resolve(arg.annotation, src.globals)
            if obj is Packet or obj is BpfFlowKeys or (isinstance(obj, type) and issubclass(obj, Header) and obj is not Header):
                params.append((arg.arg, obj))
            elif obj is int or (isinstance(obj, type) and issubclass(obj, FixedInt) and obj in FROM_PYFD):
                params.append((arg.arg, U64 if obj is int else FROM_PYFD[obj]))
            else:
                got = "has no annotation" if arg.annotation is None else f"is annotated `{ast.unparse(arg.annotation)}`"
                raise CompileTypeError(
                    f"parameter `{arg.arg}` of {where} {got}",
                    src.span(arg),
                    hint="annotate it: Packet, BpfFlowKeys, a header class, or an integer type (u8 .. i64)",
                )
        ret: IntTy | None = None
        if fdef.returns is not None and not (isinstance(fdef.returns, ast.Constant) and fdef.returns.value is None):
            obj = _resolve(fdef.returns, src.globals)
            if obj is int:
                ret = U64
            elif isinstance(obj, type) and issubclass(obj, FixedInt) and obj in FROM_PYFD:
                ret = FROM_PYFD[obj]
            elif isinstance(fdef.returns, ast.Subscript) and _resolve(fdef.returns.value, src.globals) is tuple:
                elts = fdef.returns.slice.elts if isinstance(fdef.returns.slice, ast.Tuple) else [fdef.returns.slice]
                tys: list[IntTy] = []
                for elt in elts:
                    one = _resolve(elt, src.globals)
                    if one is int:
                        tys.append(U64)
                    elif isinstance(one, type) and issubclass(one, FixedInt) and one in FROM_PYFD:
                        tys.append(FROM_PYFD[one])
                    else:
                        raise CompileTypeError(f"{where} returns a tuple with an element of type `{ast.unparse(elt)}`; elements are integer types", src.span(elt))
                return params, tuple(tys)
            elif obj is not None or fdef.returns is not None:
                raise CompileTypeError(f"{where} returns `{ast.unparse(fdef.returns)}`; a helper returns an integer type, a tuple of them, or None", src.span(fdef.returns))
        return params, ret

    def _inline(self, node: ast.Call, fn: Callable[..., Any], *, tail: bool) -> Value | TupleValue | None:
        """Lower a call to a helper function by inlining its body here."""
        name = ast.unparse(node.func)
        try:
            src = self.helpers.get(fn) or function_source(fn)
        except CompileError as exc:
            self.fail(node, f"cannot inline `{name}`: {exc.message}", kind=UnsupportedError)
        self.helpers[fn] = src
        key = (src.file, src.node.lineno)
        if key in self.call_stack or key == (self.root.file, self.root.node.lineno):
            self.fail(node, f"recursion is not supported: `{name}` is already being called here", hint="BPF has no unbounded call stack; bound the nesting with a `for _ in range(N)` loop", kind=UnsupportedError)
        if len(self.call_stack) >= MAX_INLINE_DEPTH:
            self.fail(node, f"helpers nest more than {MAX_INLINE_DEPTH} deep here", kind=UnsupportedError)
        params, ret_ty = self._helper_signature(src)
        if tail and ret_ty is None:
            self.fail(node, f"`{name}` returns nothing, so its result cannot be returned", kind=ReturnValueError)
        # Bind the arguments, in the caller.
        names = [p for p, _ in params]
        given: dict[str, ast.expr] = {}
        if len(node.args) > len(params):
            self.fail(node.args[len(params)], f"`{name}` takes {len(params)} arguments, but {len(node.args)} are given", kind=CompileTypeError)
        for pname, arg in zip(names, node.args):
            given[pname] = arg
        for kw in node.keywords:
            if kw.arg is None or kw.arg not in names:
                self.fail(kw, f"`{name}` has no parameter `{kw.arg}`" if kw.arg else "`**kwargs` is not supported", kind=CompileTypeError)
            if kw.arg in given:
                self.fail(kw, f"`{name}` got two values for `{kw.arg}`", kind=CompileTypeError)
            given[kw.arg] = kw.value
        missing = [p for p in names if p not in given]
        if missing:
            self.fail(node, f"`{name}` is missing the argument `{missing[0]}`", kind=CompileTypeError)
        bound: list[tuple[str, Any, Any]] = []
        for pname, kind in params:
            arg = given[pname]
            value = self.expr(arg)
            if kind is Packet or kind is BpfFlowKeys:
                want = "packet" if kind is Packet else "keys"
                if not (isinstance(value, _Param) and value.kind == want):
                    self.fail(arg, f"`{pname}` of `{name}` must be the dissector's {'packet' if kind is Packet else 'keys'} parameter", kind=CompileTypeError)
            elif isinstance(kind, type):  # a header class
                if not (isinstance(value, HeaderView) and value.kind is kind):
                    self.fail(arg, f"`{pname}` of `{name}` must be {_a(kind.__name__)} header", hint="pass a name bound with pkt.header(...)", kind=CompileTypeError)
            elif not isinstance(value, Value):
                self.int_expr(arg)  # the error for a non-integer
            else:
                self._check_literal(value, kind, arg, f"parameter `{pname}` of `{name}`")
            bound.append((pname, kind, value))
        caller = self.frame
        if tail and isinstance(ret_ty, tuple) and (caller.tuple_tys is None or len(caller.tuple_tys) != len(ret_ty)):
            what = "a dissector returns a return code" if not caller.helper else f"`{caller.name}` does not return {len(ret_ty)} values"
            self.fail(node, f"`{name}` returns a tuple of {len(ret_ty)}; {what}", kind=ReturnValueError)
        if tail and not isinstance(ret_ty, tuple) and caller.tuple_tys is not None:
            self.fail(node, f"`{caller.name}` returns a tuple; `{name}` does not", kind=ReturnValueError)
        # Lower the body in a frame of its own.
        saved = (self.src, self.node, self.params, self.local_types, self.local_regs, self.stored_names, self.env, self.frame, self.loops, self.prefix)
        caller_env = self.env
        self.inline_count += 1
        self.src, self.node = src, src.node
        self.prefix = f"{src.node.name}.{self.inline_count}."
        self.params, self.local_types, self.local_regs, self.loops = {}, {}, {}, []
        self.stored_names = {n.id for n in ast.walk(src.node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        self.env = _Env(set(), {})
        span = src.span(src.node)
        frame = _Frame(src.node.name, None, helper=True, join=self.new_label("return"), tail=saved[7] if tail else None)
        if isinstance(ret_ty, tuple):
            frame.tuple_tys = ret_ty
            frame.tuple_results = tuple(Reg(f"{self.prefix}result{i}") for i in range(len(ret_ty)))
            frame.tuple_choices = [set() for _ in ret_ty]
        elif ret_ty is not None:
            frame.ret_ty, frame.result = ret_ty, Reg(f"{self.prefix}result")
        self.frame = frame
        self.call_stack.append(key)
        self.types.calls[node] = fn
        self.types.params[src.node] = [(p, k) for p, k, _ in bound if isinstance(k, IntTy)]
        if ret_ty is not None:
            self.types.returns[src.node] = ret_ty
        try:
            for inner in ast.walk(src.node):
                if isinstance(inner, (ast.Yield, ast.YieldFrom, ast.Await)):
                    self.unsupported(inner)
            for pname, kind, value in bound:
                if kind is Packet or kind is BpfFlowKeys:
                    self.params[pname] = value
                elif isinstance(kind, IntTy):
                    self._assign_local(None, ast.Name(id=pname), value, None, span, declared=kind)
                else:
                    self.env.headers[pname] = value
            body = list(src.node.body)
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body = body[1:]
            self.lower_body(body)
            if self.reachable:
                if ret_ty is not None:
                    last = src.node.body[-1]
                    raise ReturnValueError(f"missing return: the end of helper `{src.node.name}` is reachable", self.span(last), hint=f"end every path with `return` and a `{ret_ty}` value")
                self._return_from_helper(frame, None, src.node.body[-1])
        finally:
            self.call_stack.pop()
            self.local_names.update({r.name: f"{src.node.name}.{n}" for n, r in self.local_regs.items()})
            (self.src, self.node, self.params, self.local_types, self.local_regs, self.stored_names, self.env, self.frame, self.loops, self.prefix) = saved
        if tail:
            return None
        call_span = self.span(node)
        if not frame.returns:
            self.fail(node, f"`{name}` never returns here", kind=CompileError)
        self._join(frame.returns, "after", call_span)
        self.env = caller_env.copy()
        if frame.tuple_tys is not None:
            return TupleValue(tuple(
                Value(reg, ty, None, frozenset(held) if held else None)
                for reg, ty, held in zip(frame.tuple_results, frame.tuple_tys, frame.tuple_choices)
            ))
        if ret_ty is None:
            return None  # no value: a statement of its own, or refused where a value is needed (_expr)
        assert frame.result is not None
        choices = frozenset(frame.choices) if frame.choices else None
        return Value(frame.result, ret_ty, None, choices)

    def _cast(self, node: ast.Call, ty: IntTy, value: Value) -> Value:
        from pyfd.types import wrap

        if value.const is not None:
            v = wrap(value.const, ty.bits, ty.signed)
            return Value(Imm(v), LITERAL, v)
        if ty.bits == 64:
            return Value(value.op, ty)
        dst = self.fresh()
        self.emit(Extend(ty.signed, ty.bits, dst, value.op, self.span(node)))
        return Value(dst, ty)

    def _has(self, node: ast.Call, true: str, false: str) -> CheckPacket:
        """`pkt.has(end)`: true if the packet holds at least `end` bytes (a check that reads nothing)."""
        if node.keywords or len(node.args) != 1:
            self.fail(node, "pkt.has takes one argument: the packet length to require", kind=CompileTypeError)
        end = self.int_expr(node.args[0])
        span = self.span(node)
        if end.const is not None:
            if not 0 <= end.const <= MAX_PACKET_OFF:
                self.fail(node.args[0], f"constant length {end.const} is outside 0..{MAX_PACKET_OFF}", kind=PacketAccessError)
            return CheckPacket(Imm(end.const), 0, true, false, span)
        base = self.fresh("end")
        self.emit(Copy(base, end.op, span))
        return CheckPacket(base, 0, true, false, span)

    def header(self, node: ast.Call) -> HeaderView:
        """`pkt.header(Kind, offset)`: a bounds check, then a view later reads share."""
        if node.keywords or len(node.args) != 2:
            self.fail(node, "pkt.header takes two arguments: a header class and an offset", kind=CompileTypeError)
        kind_node, offset_node = node.args
        kind = self.expr(kind_node)
        if not (isinstance(kind, _Global) and isinstance(kind.obj, type) and issubclass(kind.obj, Header) and kind.obj is not Header):
            self.fail(kind_node, f"`{ast.unparse(kind_node)}` is not a header class", hint="declare one: class MyHeader(Header): ...", kind=CompileTypeError)
        header: type[Header] = kind.obj
        offset = self.int_expr(offset_node)
        span = self.span(node)
        if offset.const is not None:
            if offset.const < 0:
                self.fail(offset_node, f"constant offset {offset.const} is negative", kind=PacketAccessError)
            if offset.const > MAX_PACKET_OFF - header.size:
                self.fail(
                    offset_node,
                    f"constant offset {offset.const} is beyond what the verifier can track (at most {MAX_PACKET_OFF - header.size} for a {header.size}-byte header)",
                    kind=PacketAccessError,
                )
            base: Operand = Imm(offset.const)
        else:
            # A fresh register, written once, so no later assignment can move the
            # base between the check and the reads (the IR checker insists).
            base = self.fresh("hdr")
            self.emit(Copy(base, offset.op, span))
        ok = self.new_label("inbounds")
        self.terminate(CheckPacket(base, header.size, ok, self.drop(span), span))
        self.start(ok)
        return HeaderView(header, base)


def _resolve(node: ast.expr | None, namespace: dict[str, Any]) -> Any:
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


def _with_choices(held: set[int] | None, value: Value) -> set[int] | None:
    """The constants a helper may return, after one more `return value`; None once any is unknown."""
    codes = {value.const} if value.const is not None else value.choices
    return None if held is None or not codes else held | set(codes)


def _a(word: str) -> str:
    """`word` with its indefinite article: "an IPv4", "an 8-bit", "a Ports"."""
    return f"{'an' if word[:1] in 'AEIOUaeiou8' else 'a'} {word}"


def _static_cmp(cmp: Cmp, a: int, b: int) -> bool:
    """Compare two literals exactly, as Python (and so the CPython run) does.

    Only literals are constant here, and literals have Python's unbounded
    semantics (see `_fold`): reading them as 64-bit patterns would make
    `0xFFFFFFFFFFFFFFFF > -1` or `(1 << 64) > 5` false in the kernel only.
    """
    if cmp is Cmp.SET:
        raise InternalCompilerError(f"no static comparison for {cmp}", None)
    return compare_exact(cmp, a, b)


def _as_load(target: ast.expr) -> ast.expr:
    """A copy of an assignment target that reads it."""
    if isinstance(target, ast.Name):
        return ast.copy_location(ast.Name(id=target.id, ctx=ast.Load()), target)
    if isinstance(target, ast.Attribute):
        return ast.copy_location(ast.Attribute(value=target.value, attr=target.attr, ctx=ast.Load()), target)
    return target


__all__ = ["lower_function", "Lowered", "TypeRecord", "evaluate_binary"]
