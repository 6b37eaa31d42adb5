"""Fixed-width integer types: annotations for the compiler, wrapping casts in Python.

`u16(70000) == 4464` in plain Python, exactly as a store into a 16-bit BPF
register half or field truncates. All arithmetic in a dissector is done on 64
bits (as in BPF's ALU64); a value narrows only where it is stored into a typed
local, a `keys` field, or passed through one of these casts.
"""

from __future__ import annotations

from typing import ClassVar, Self


class FixedInt(int):
    """Base of the fixed-width integer types; calling one wraps its argument."""

    bits: ClassVar[int] = 64
    signed: ClassVar[bool] = False

    def __new__(cls, value: int = 0) -> Self:
        return super().__new__(cls, wrap(int(value), cls.bits, cls.signed))

    @classmethod
    def min(cls) -> int:
        """Smallest value of the type."""
        return -(1 << (cls.bits - 1)) if cls.signed else 0

    @classmethod
    def max(cls) -> int:
        """Largest value of the type."""
        return (1 << (cls.bits - 1)) - 1 if cls.signed else (1 << cls.bits) - 1


def wrap(value: int, bits: int, signed: bool) -> int:
    """Reduce `value` modulo 2**bits into the range of that unsigned/signed type."""
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


class u8(FixedInt):
    """Unsigned 8-bit integer."""

    bits = 8


class u16(FixedInt):
    """Unsigned 16-bit integer."""

    bits = 16


class u32(FixedInt):
    """Unsigned 32-bit integer."""

    bits = 32


class u64(FixedInt):
    """Unsigned 64-bit integer."""

    bits = 64


class i32(FixedInt):
    """Signed 32-bit integer."""

    bits = 32
    signed = True


class i64(FixedInt):
    """Signed 64-bit integer."""

    bits = 64
    signed = True


INT_TYPES: tuple[type[FixedInt], ...] = (u8, u16, u32, u64, i32, i64)
