"""Byte layouts: where each field of a struct lives and how it is encoded.

One `Field` describes a field of `struct bpf_flow_keys` or of a packet header:
its byte offset, its storage unit (1, 2, 4, 8 or 16 bytes), the byte order of
that unit, and for bit fields the shift and width inside the unit. The Python
run and the compiler read the same `Field`, so they cannot disagree on layout.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal

from .types import FixedInt

ByteOrder = Literal["big", "little"]


@dataclass(frozen=True, slots=True)
class Field:
    """One field: `bits` wide, at `shift` inside a `size`-byte unit at `offset`."""

    name: str
    offset: int
    size: int
    order: ByteOrder
    shift: int = 0
    bits: int = 0  # 0: the whole unit

    @property
    def width(self) -> int:
        """Width of the field's value in bits."""
        return self.bits or self.size * 8

    @property
    def is_bitfield(self) -> bool:
        """True for a field narrower than its storage unit."""
        return self.bits != 0

    def decode(self, buf: bytes | bytearray | memoryview, base: int = 0) -> int:
        """The field's value (host-order, unsigned) read from `buf` at `base`."""
        start = base + self.offset
        unit = int.from_bytes(buf[start : start + self.size], self.order)
        if self.bits:
            return (unit >> self.shift) & ((1 << self.bits) - 1)
        return unit

    def encode_into(self, buf: bytearray, value: int, base: int = 0) -> None:
        """Store `value`, truncated to the field's width, into `buf` at `base`."""
        start = base + self.offset
        value &= (1 << self.width) - 1
        if self.bits:
            unit = int.from_bytes(buf[start : start + self.size], self.order)
            mask = ((1 << self.bits) - 1) << self.shift
            value = (unit & ~mask) | (value << self.shift)
        buf[start : start + self.size] = value.to_bytes(self.size, self.order)


class _BitsType:
    """The annotation `Bits[N]`: an N-bit field packed most significant bit first."""

    def __init__(self, bits: int) -> None:
        if not isinstance(bits, int) or not 1 <= bits <= 64:
            raise TypeError(f"Bits[{bits!r}]: the width must be an integer from 1 to 64")
        self.bits = bits

    def __repr__(self) -> str:
        return f"Bits[{self.bits}]"


class _BytesType:
    """The annotation `Bytes[N]`: N opaque bytes (a MAC address, an IPv6 address)."""

    def __init__(self, size: int) -> None:
        if not isinstance(size, int) or not 1 <= size <= 64:
            raise TypeError(f"Bytes[{size!r}]: the size must be an integer from 1 to 64")
        self.size = size

    def __repr__(self) -> str:
        return f"Bytes[{self.size}]"


class Bits:
    """`version: Bits[4]` declares a 4-bit field of a header."""

    def __class_getitem__(cls, bits: int) -> _BitsType:
        return _BitsType(bits)


class Bytes:
    """`dst: Bytes[6]` declares six opaque bytes of a header."""

    def __class_getitem__(cls, size: int) -> _BytesType:
        return _BytesType(size)


def resolve_annotations(cls: type) -> dict[str, Any]:
    """The class's own annotations, evaluated even under `from __future__ import annotations`."""
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module else {}
    namespace.update(vars(cls))
    out: dict[str, Any] = {}
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if isinstance(annotation, str):
            annotation = eval(annotation, namespace)  # noqa: S307 - the user's own class body
        out[name] = annotation
    return out


def network_layout(owner: str, annotations: dict[str, Any]) -> tuple[dict[str, Field], int]:
    """Lay out fields in declaration order, network byte order, bit fields MSB first.

    Consecutive bit fields form a group that ends at the first byte boundary.
    A group of 3, 5, 6 or 7 bytes is read through the next load size up (4 or
    8 bytes), placed at the group's start if that stays inside the header,
    else ending at the group's end (a VXLAN VNI is read as 4 bytes).
    """
    fields: dict[str, Field] = {}
    groups: list[tuple[int, int, list[tuple[str, int]]]] = []  # (offset, bytes, [(name, bits)])
    offset = 0
    pending: list[tuple[str, int]] = []

    for name, annotation in annotations.items():
        if isinstance(annotation, _BitsType):
            pending.append((name, annotation.bits))
            total = sum(bits for _, bits in pending)
            if total % 8 == 0:
                if total > 64:
                    names = ", ".join(n for n, _ in pending)
                    raise TypeError(f"{owner}: the bit fields {names} span {total} bits; a group may span at most 64")
                groups.append((offset, total // 8, list(pending)))
                offset += total // 8
                pending.clear()
            continue
        if pending:
            break
        if isinstance(annotation, _BytesType):
            fields[name] = Field(name, offset, annotation.size, "big")
            offset += annotation.size
        elif isinstance(annotation, type) and issubclass(annotation, FixedInt):
            if annotation.signed:
                raise TypeError(f"{owner}.{name}: header fields are unsigned; use u8, u16, u32 or u64")
            fields[name] = Field(name, offset, annotation.bits // 8, "big")
            offset += annotation.bits // 8
        else:
            raise TypeError(
                f"{owner}.{name}: unsupported field type {annotation!r}; "
                "use u8, u16, u32, u64, Bits[N] or Bytes[N]"
            )
    if pending:
        names = ", ".join(n for n, _ in pending)
        total = sum(bits for _, bits in pending)
        raise TypeError(f"{owner}: the bit fields {names} add up to {total} bits; consecutive bit fields must end on a byte boundary")

    size = offset
    for start, nbytes, members in groups:
        unit = next(u for u in (1, 2, 4, 8) if u >= nbytes)
        unit_start = start if start + unit <= size else start + nbytes - unit
        if unit_start < 0:
            raise TypeError(f"{owner}: a {nbytes}-byte group of bit fields needs a {unit}-byte read that does not fit in the header")
        used = (start - unit_start) * 8
        for name, bits in members:
            used += bits
            fields[name] = Field(name, unit_start, unit, "big", shift=unit * 8 - used, bits=bits)
    order = list(annotations)
    return {name: fields[name] for name in order}, size
