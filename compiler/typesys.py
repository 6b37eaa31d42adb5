"""The types of the restricted language and the rules that combine them.

Every value lives in a 64-bit register. Arithmetic is done on 64 bits, in u64
unless both operands are signed (then i64), as BPF's ALU64 does; a value
narrows only where it is stored (a typed local, a keys field) or cast. Integer
literals take the type of the other operand. Comparisons must not mix signed
and unsigned operands: BPF has one comparison per signedness, and Python's
unbounded ints would disagree with the kernel on the mixed case.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyfd.types import FixedInt, i32, i64, u8, u16, u32, u64


@dataclass(frozen=True, slots=True)
class IntTy:
    """An integer type: `bits` wide, signed or not; LITERAL and BOOL are special."""

    name: str
    bits: int
    signed: bool

    def __str__(self) -> str:
        return self.name

    @property
    def min(self) -> int:
        """Smallest value."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        """Largest value."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def contains(self, value: int) -> bool:
        """True if `value` is representable without wrapping."""
        return self.min <= value <= self.max


U8 = IntTy("u8", 8, False)
U16 = IntTy("u16", 16, False)
U32 = IntTy("u32", 32, False)
U64 = IntTy("u64", 64, False)
I32 = IntTy("i32", 32, True)
I64 = IntTy("i64", 64, True)
BOOL = IntTy("bool", 8, False)  # 0 or 1, stored like a u8
LITERAL = IntTy("int", 64, False)  # an integer constant whose type comes from context

FROM_PYFD: dict[type[FixedInt], IntTy] = {u8: U8, u16: U16, u32: U32, u64: U64, i32: I32, i64: I64}


def unsigned_for_bits(bits: int) -> IntTy:
    """The narrowest unsigned type holding `bits` bits."""
    for ty in (U8, U16, U32, U64):
        if bits <= ty.bits:
            return ty
    raise ValueError(f"no integer type is {bits} bits wide")


def arithmetic_result(a: IntTy, b: IntTy) -> IntTy:
    """The type of `a op b` for a typed operand pair (LITERAL takes the other side)."""
    if a is LITERAL and b is LITERAL:
        return LITERAL
    signed = (a.signed or a is LITERAL) and (b.signed or b is LITERAL)
    return I64 if signed else U64
