"""What the restricted language's values and operators mean, as IR.

The syntax walk (`syntax`) finds an operator in its one table, keyed by the
`ast` operator class, and hands the operator object here with the lowered
operands and the source spans to blame. Everything here is about values:
types (`typesys`), constant folding with Python's semantics, the checks that
keep the kernel and the CPython run in agreement, narrowing and casts. No
`ast` here: positions arrive as spans, source text as strings.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any, NoReturn

from pyfd.constants import RETURN_CODES
from pyfd.headers import Header
from pyfd.types import wrap

from ..diagnostics import CompileError, CompileTypeError, InternalCompilerError, ReturnValueError, Span
from ..ir.builder import IRBuilder
from ..ir.nodes import (
    Binary, BinaryOp, Branch, Cmp, Copy, Extend, Imm, Operand, Reg, Return, SetCond, Unary, UnaryOp,
    compare_exact,
)
from ..typesys import BOOL, I64, LITERAL, U64, IntTy, arithmetic_result

# -- values -----------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """An integer value: an operand, its type, and its exact value if constant."""

    op: Operand
    ty: IntTy
    const: int | None = None
    # The constants a non-constant value can hold, when the frontend knows them
    # (a helper that returns only constants, a local assigned only those).
    choices: frozenset[int] | None = None
    # An upper bound of its 64-bit pattern where an operation gives one (`x & 7`,
    # `x % 8`): what proves an array index in range (maps.index_bound).
    bound: int | None = None


@dataclass(frozen=True)
class HeaderView:
    """A header of type `kind` at packet offset `base` (already bounds-checked), read through `window`."""

    kind: type[Header]
    base: Operand
    window: int | None = None


@dataclass(frozen=True)
class BytesView:
    """`size` opaque bytes of the packet at `base + offset` (an IPv6 address), copied as a whole."""

    base: Operand
    offset: int
    size: int
    name: str
    window: int | None = None


@dataclass(frozen=True)
class TupleValue:
    """The result of a helper annotated `-> tuple[...]`: one integer per element."""

    items: tuple[Value, ...]


@dataclass(frozen=True)
class Param:
    """The packet or keys parameter."""

    kind: str  # "packet" | "keys"


@dataclass(frozen=True)
class Global:
    """A module-level object the dissector refers to (a type, a header class...)."""

    obj: Any


# What lowering an expression gives.
Meaning = Value | HeaderView | BytesView | TupleValue | Param | Global


@dataclass(frozen=True)
class Sites:
    """Where an operation and its two operands are, to blame the right one."""

    whole: Span
    left: Span
    right: Span


def literal(value: int) -> Value:
    """An integer constant whose type comes from context."""
    return Value(Imm(value), LITERAL, value)


def fail(span: Span, message: str, *, hint: str | None = None, kind: type[CompileError] = CompileTypeError) -> NoReturn:
    """Refuse the program at `span`."""
    raise kind(message, span, hint=hint)


def article(word: str) -> str:
    """`word` with its indefinite article: "an IPv4", "an 8-bit", "a Ports"."""
    return f"{'an' if word[:1] in 'AEIOUaeiou8' else 'a'} {word}"


# -- operator tables --------------------------------------------------------


class Family(Enum):
    """Operators that share their checks."""

    PLAIN = auto()  # + - * & | ^: any operands
    DIVISION = auto()  # // %: unsigned only, no constant zero divisor
    SHIFT = auto()  # << >>: a constant count within 0..63


@dataclass(frozen=True)
class ArithOp:
    """A binary operator: its IR operation by signedness, and Python's meaning for folding."""

    symbol: str  # for messages only
    unsigned: BinaryOp
    signed: BinaryOp | None  # None: BPF has no signed form, so it is refused
    fold: Callable[[int, int], int]
    family: Family = Family.PLAIN
    left_in_range: bool = False  # a constant left operand must fit the result type (`>>` of a literal)


ADD = ArithOp("+", BinaryOp.ADD, BinaryOp.ADD, operator.add)
SUB = ArithOp("-", BinaryOp.SUB, BinaryOp.SUB, operator.sub)
MUL = ArithOp("*", BinaryOp.MUL, BinaryOp.MUL, operator.mul)
FLOORDIV = ArithOp("//", BinaryOp.UDIV, None, operator.floordiv, Family.DIVISION)
MOD = ArithOp("%", BinaryOp.UMOD, None, operator.mod, Family.DIVISION)
BITAND = ArithOp("&", BinaryOp.AND, BinaryOp.AND, operator.and_)
BITOR = ArithOp("|", BinaryOp.OR, BinaryOp.OR, operator.or_)
BITXOR = ArithOp("^", BinaryOp.XOR, BinaryOp.XOR, operator.xor)
LSHIFT = ArithOp("<<", BinaryOp.SHL, BinaryOp.SHL, operator.lshift, Family.SHIFT)
# BPF's RSH for unsigned, ARSH when the operation is signed (both operands signed).
RSHIFT = ArithOp(">>", BinaryOp.LSHR, BinaryOp.ASHR, operator.rshift, Family.SHIFT, left_in_range=True)


@dataclass(frozen=True)
class CompareOp:
    """A comparison operator: the IR comparison for unsigned and for signed operands."""

    unsigned: Cmp
    signed: Cmp


EQ = CompareOp(Cmp.EQ, Cmp.EQ)
NE = CompareOp(Cmp.NE, Cmp.NE)
GT = CompareOp(Cmp.UGT, Cmp.SGT)
GE = CompareOp(Cmp.UGE, Cmp.SGE)
LT = CompareOp(Cmp.ULT, Cmp.SLT)
LE = CompareOp(Cmp.ULE, Cmp.SLE)


@dataclass(frozen=True)
class UnaryArith:
    """A unary operator with an IR operation: `-x`, `~x`."""

    ir: UnaryOp
    fold: Callable[[int], int]


NEG = UnaryArith(UnaryOp.NEG, operator.neg)
INVERT = UnaryArith(UnaryOp.NOT, operator.invert)

_S64_MIN, _U64_END = -(1 << 63), 1 << 64


# -- arithmetic -------------------------------------------------------------


def binary(b: IRBuilder, op: ArithOp, lhs: Value, rhs: Value, at: Sites) -> Value:
    """`lhs op rhs` in 64 bits, u64 unless both sides are signed; two literals fold exactly."""
    ty = arithmetic_result(lhs.ty, rhs.ty)
    if ty is LITERAL:
        assert lhs.const is not None and rhs.const is not None
        return fold(op, lhs.const, rhs.const, at)
    for span, v in ((at.left, lhs), (at.right, rhs)):
        if v.const is not None and not (_S64_MIN <= v.const < _U64_END):
            fail(span, f"the constant {v.const} does not fit in 64 bits")
    if op.family is Family.DIVISION:
        _check_division(op, ty, lhs, rhs, at)
    elif op.family is Family.SHIFT:
        _check_shift(op, ty, lhs, rhs, at)
    ir_op = op.signed if ty.signed and op.signed is not None else op.unsigned
    dst = b.fresh()
    if lhs.const is not None and rhs.const is not None:  # both typed constants cannot happen; kept total
        raise InternalCompilerError("constant operands escaped folding", at.whole)
    b.emit(Binary(ir_op, dst, lhs.op, rhs.op, at.whole))
    return Value(dst, ty, bound=_result_bound(ir_op, lhs, rhs))


def upper_bound(value: Value) -> int | None:
    """The largest 64-bit pattern `value` can have, if known (and so it is not negative)."""
    known = constants(value)
    if known:
        return max(known) if min(known) >= 0 else None
    if value.bound is not None:
        return value.bound
    if value.ty is BOOL:
        return 1
    if not value.ty.signed and value.ty.bits < 64:
        return (1 << value.ty.bits) - 1
    return None


def _result_bound(op: BinaryOp, lhs: Value, rhs: Value) -> int | None:
    """An upper bound of `lhs op rhs` from those of its operands, for the operations that give one."""
    a, b = upper_bound(lhs), upper_bound(rhs)
    match op:
        case BinaryOp.AND:  # no bit outside either operand's
            known = [x for x in (a, b) if x is not None]
            return min(known) if known else None
        case BinaryOp.UMOD if rhs.const is not None and rhs.const > 0:
            return rhs.const - 1 if a is None else min(a, rhs.const - 1)
        case BinaryOp.LSHR if a is not None and rhs.const is not None:
            return a >> (rhs.const & 63)
        case BinaryOp.ADD if a is not None and b is not None and a + b < (1 << 64):
            return a + b
    return None


def _check_division(op: ArithOp, ty: IntTy, lhs: Value, rhs: Value, at: Sites) -> None:
    """BPF divides unsigned only, and defines division by zero; refuse what would disagree with Python."""
    if ty.signed:
        fail(at.whole, f"signed `{op.symbol}` is not supported", hint="cast the operands to u64 (BPF divides unsigned)")
    for span, v in ((at.left, lhs), (at.right, rhs)):
        if v.const is not None and v.const < 0:
            fail(span, f"negative constant {v.const} in unsigned `{op.symbol}`")
    if rhs.const == 0:  # refused like `14 // 0` in `fold`; a zero read from the packet follows BPF (x // 0 == 0)
        fail(at.right, f"`{op.symbol}` by a constant zero", hint="BPF defines x // 0 as 0 and x % 0 as x; write that instead")


def _check_shift(op: ArithOp, ty: IntTy, lhs: Value, rhs: Value, at: Sites) -> None:
    """A constant shift count must be one BPF and Python agree on."""
    if rhs.const is not None and not 0 <= rhs.const <= 63:
        fail(at.right, f"shift count {rhs.const} is outside 0..63")
    if op.left_in_range and lhs.const is not None and not ty.contains(lhs.const):
        fail(at.left, f"{lhs.const} is outside the range of {ty}")


def fold(op: ArithOp, a: int, b: int, at: Sites) -> Value:
    """Fold an operation on two literals with Python's semantics (as the CPython run does)."""
    if op.family is Family.DIVISION and b == 0:
        fail(at.whole, "division by zero in a constant expression")
    if op.family is Family.SHIFT and not 0 <= b <= 64:
        fail(at.right, f"shift count {b} is outside 0..63")
    value = op.fold(a, b)
    if not -(1 << 64) <= value < (1 << 65):
        fail(at.whole, f"the constant expression is {value}, which does not fit in 64 bits")
    return literal(value)


def unary(b: IRBuilder, op: UnaryArith, operand: Value, span: Span) -> Value:
    """`-x` or `~x`: folded for a constant, else in 64 bits of the operand's signedness."""
    if operand.const is not None:
        return literal(op.fold(operand.const))
    ty = I64 if operand.ty.signed else U64
    dst = b.fresh()
    b.emit(Unary(op.ir, dst, operand.op, span))
    return Value(dst, ty)


# -- comparisons ------------------------------------------------------------


def comparison(op: CompareOp, lhs: Value, rhs: Value, at: Sites) -> Cmp:
    """The IR comparison for `lhs op rhs`: one signedness for both sides, literals within it."""
    typed = [v.ty for v in (lhs, rhs) if v.ty is not LITERAL]
    signed = bool(typed) and typed[0].signed
    if len(typed) == 2 and typed[0].signed != typed[1].signed:
        fail(
            at.whole,
            (
                f"comparison between signed `{lhs.ty}` and unsigned `{rhs.ty}`"
                if lhs.ty.signed
                else f"comparison between unsigned `{lhs.ty}` and signed `{rhs.ty}`"
            ),
            hint="cast one side, e.g. `i64(x)` or `u64(x)`",
        )
    domain = I64 if signed else U64
    for span, v in ((at.left, lhs), (at.right, rhs)):
        if v.ty is LITERAL and typed and v.const is not None and not domain.contains(v.const):
            fail(span, f"{v.const} is outside the range of {article('signed' if signed else 'unsigned')} 64-bit comparison")
    if signed or (not typed and min(lhs.const or 0, rhs.const or 0) < 0):
        return op.signed
    return op.unsigned


def static_cmp(cmp: Cmp, a: int, b: int) -> bool:
    """Compare two literals exactly, as Python (and so the CPython run) does.

    Only literals are constant here, and literals have Python's unbounded
    semantics (see `fold`): reading them as 64-bit patterns would make
    `0xFFFFFFFFFFFFFFFF > -1` or `(1 << 64) > 5` false in the kernel only.
    """
    if cmp is Cmp.SET:
        raise InternalCompilerError(f"no static comparison for {cmp}", None)
    return compare_exact(cmp, a, b)


def set_cond(b: IRBuilder, cmp: Cmp, lhs: Value, rhs: Value, span: Span) -> Value:
    """A comparison used as a value: 1 or 0 (folded for two literals)."""
    if lhs.const is not None and rhs.const is not None:
        return literal(int(static_cmp(cmp, lhs.const, rhs.const)))
    dst = b.fresh()
    b.emit(SetCond(cmp, dst, lhs.op, rhs.op, span))
    return Value(dst, BOOL)


# -- narrowing and casts ----------------------------------------------------


def _needs_extend(have: IntTy, want: IntTy) -> bool:
    """True if a `have` value must be sign- or zero-extended to hold as a `want`."""
    return want.bits < 64 and not (have.bits <= want.bits and have.signed == want.signed and have is not LITERAL)


def wrapped(codes: frozenset[int] | set[int], ty: IntTy) -> frozenset[int]:
    """The constants `codes` as a `ty` holds them."""
    return frozenset(wrap(c, ty.bits, ty.signed) for c in codes)


def narrowed(b: IRBuilder, value: Value, ty: IntTy, span: Span) -> Value:
    """`value` converted to `ty` as an assignment to a `ty` local converts it."""
    if value.const is not None:
        v = wrap(value.const, ty.bits, ty.signed)
        return Value(Imm(v), ty, v)
    choices = wrapped(value.choices, ty) if value.choices else None
    if _needs_extend(value.ty, ty):
        dst = b.fresh()
        b.emit(Extend(ty.signed, ty.bits, dst, value.op, span))
        return Value(dst, ty, None, choices)
    return Value(value.op, ty, None, choices)


def narrow_into(b: IRBuilder, dst: Reg, value: Value, ty: IntTy, span: Span) -> None:
    """`dst = value` narrowed to `ty`, exactly as the Python run wraps it."""
    if value.const is not None:
        b.emit(Copy(dst, Imm(wrap(value.const, ty.bits, ty.signed)), span))
    elif _needs_extend(value.ty, ty):
        b.emit(Extend(ty.signed, ty.bits, dst, value.op, span))
    else:
        b.emit(Copy(dst, value.op, span))


def cast(b: IRBuilder, ty: IntTy, value: Value, span: Span) -> Value:
    """`u16(x)` and the other casts: wrap a constant, extend anything narrower than 64 bits."""
    if value.const is not None:
        return literal(wrap(value.const, ty.bits, ty.signed))
    if ty.bits == 64:
        return Value(value.op, ty)
    dst = b.fresh()
    b.emit(Extend(ty.signed, ty.bits, dst, value.op, span))
    return Value(dst, ty)


def check_literal(value: Value, ty: IntTy, span: Span, what: str) -> None:
    """Refuse an integer literal that `ty` cannot hold, where it narrows into `what`.

    One rule wherever a literal narrows (a typed local, a helper's argument
    or result, a keys field): it must fit. A computed value wraps, as in
    the kernel; a cast (`u8(300)`) wraps on purpose.
    """
    if value.ty is LITERAL and value.const is not None and not ty.contains(value.const):
        fail(span, f"{value.const} does not fit in {what}: {ty} holds {ty.min}..{ty.max}", hint=f"write `{ty}({value.const})` to wrap it on purpose")


def local_type(value: Value, span: Span) -> IntTy:
    """The type of a local first assigned `value` without an annotation."""
    if value.ty is LITERAL:
        assert value.const is not None
        if U64.contains(value.const):
            return U64
        if I64.contains(value.const):
            return I64
        fail(span, f"the constant {value.const} does not fit in 64 bits")
    return value.ty


def constants(value: Value) -> set[int] | frozenset[int] | None:
    """The constants `value` may be: itself if constant, else its known choices."""
    return {value.const} if value.const is not None else value.choices


# -- the dissector's result -------------------------------------------------

_CODES_HINT = "return BPF_OK, BPF_DROP or BPF_FLOW_DISSECTOR_CONTINUE"


def return_code(b: IRBuilder, result: Value, text: str, value_span: Span, span: Span) -> None:
    """Leave the dissector with `result`, which must be one of the return codes on every path.

    A value that may be one of several codes (a helper's verdict) becomes one
    compare per code: `Return` takes a constant, as the verifier wants r0 known.
    """
    codes = constants(result)
    if not codes:
        fail(
            value_span,
            "a dissector must return a constant return code",
            hint=f"{_CODES_HINT}, or a local or helper result that only ever holds one of them",
            kind=ReturnValueError,
        )
    bad = sorted(c for c in codes if c not in RETURN_CODES)
    if bad:
        where = f"{bad[0]}" if result.const is not None else f"`{text}` may be {bad[0]}, which"
        fail(
            value_span,
            f"{where} is not a flow dissector return code",
            hint="return BPF_OK (0), BPF_DROP (2) or BPF_FLOW_DISSECTOR_CONTINUE (129)",
            kind=ReturnValueError,
        )
    ordered = sorted(codes)
    for code in ordered[:-1]:
        here, rest = b.new_block("ret"), b.new_block("retnext")
        b.terminate(Branch(Cmp.EQ, result.op, Imm(code), here, rest, span))
        b.position(here)
        b.terminate(Return(code, span))
        b.position(rest)
    b.terminate(Return(ordered[-1], span))
