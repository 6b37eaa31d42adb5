"""The interpreter's address space: every pointer is a 64-bit integer naming a region and an offset in it.

An address is `(region << 48) + BIAS + offset`. BIAS keeps the low 32 bits
of every pointer non-zero, as a kernel address's are (clang compares a
32-bit half of a pointer with 0 for `if (!ptr)`, as bpf_flow.o does); the
translator folds it into each access's constant offset, so inside an access
the address is `region << 48 | offset`. Region 0 is NULL, and every region
is 2**48 bytes away from the next, so a pointer moved before its region's
start or past its end lands at an offset no buffer has: each access is one
list index and one bounds check (the buffer's own), and every access out of
its region fails. The lists `loads` and `stores` hold, per region, the
buffer loads and stores go to; a read-only region (the packet, `.rodata`, a
frozen map) has an empty buffer in `stores`, the context (whose fields the
kernel rewrites into other loads) an empty one in both, so any access to
them takes the slow path, which performs it or explains why it is refused.
Pointers stored to memory and loaded back stay the same integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

SHIFT: Final = 48
"""Bits of an address that hold the offset; the region number sits above them."""
OFFSET_MASK: Final = (1 << SHIFT) - 1
BIAS: Final = 0x100000
"""Added to every region's base address (see the module docstring)."""
REGIONS: Final = 1 << 16
"""Region numbers fit in the 16 bits above the offset (so `address >> SHIFT` always indexes the lists)."""

NULL: Final = 0
CTX: Final = 1
PACKET: Final = 2
KEYS: Final = 3
STACK_FIRST: Final = 4
MAX_CALL_FRAMES: Final = 8
"""MAX_CALL_FRAMES in include/linux/bpf_verifier.h: the entry and seven nested BPF-to-BPF calls."""
FIRST_DYNAMIC: Final = STACK_FIRST + MAX_CALL_FRAMES

CTX_ADDRESS: Final = (CTX << SHIFT) + BIAS
PACKET_ADDRESS: Final = (PACKET << SHIFT) + BIAS
KEYS_ADDRESS: Final = (KEYS << SHIFT) + BIAS

_NO_LOAD: Final = b""
_NO_STORE: Final = bytearray()


def bytes_(count: int) -> str:
    """`1 byte`, `4 bytes`."""
    return f"{count} byte" if count == 1 else f"{count} bytes"


@dataclass
class Region:
    """One region: what it is (for messages), its bytes, and whether programs may write it."""

    name: str
    buf: bytes | bytearray | memoryview
    writable: bool
    kind: str = "memory"  # "packet", "stack", "keys", "ctx", "map value", "map"


class AddressSpace:
    """The regions of one interpreter: fixed ones (context, packet, keys, stack frames) and map values."""

    def __init__(self) -> None:
        # One spare entry past the last region: `(r + off) >> SHIFT` of a
        # register near 2**64 plus a positive offset is REGIONS, and a
        # pointer moved below 0 gives -1, which Python reads as that entry.
        self.loads: list[bytes | bytearray | memoryview] = [_NO_LOAD] * (REGIONS + 1)
        self.stores: list[bytearray | memoryview] = [_NO_STORE] * (REGIONS + 1)
        self.regions: list[Region | None] = [None] * (REGIONS + 1)
        self.regions[NULL] = Region("NULL", b"", False, "null")
        self.regions[CTX] = Region("the context (struct __sk_buff)", b"", False, "ctx")
        self._next = FIRST_DYNAMIC

    def place(self, number: int, region: Region) -> int:
        """Put `region` at region `number`; return its base address (as programs see it)."""
        self.regions[number] = region
        self.loads[number] = region.buf
        self.stores[number] = region.buf if region.writable and not isinstance(region.buf, bytes) else _NO_STORE
        return (number << SHIFT) + BIAS

    def add(self, region: Region) -> int:
        """Give `region` the next free number; return its base address."""
        if self._next >= REGIONS:
            raise MemoryError(f"the interpreter holds at most {REGIONS - FIRST_DYNAMIC} map values and maps")
        number = self._next
        self._next += 1
        return self.place(number, region)

    def set_packet(self, frame: bytes) -> None:
        """The frame of this run, read-only (programs cannot write the packet: "cannot write into packet")."""
        self.loads[PACKET] = frame

    def region_of(self, address: int) -> tuple[Region | None, int]:
        """The region a program address falls in and the offset into it; a negative offset when it lies just before one."""
        inner = address - BIAS
        if inner < 0:
            return self.regions[NULL], inner
        number, offset = inner >> SHIFT, inner & OFFSET_MASK
        if number >= REGIONS:
            return None, offset
        if offset > OFFSET_MASK // 2 and self.regions[number + 1] is not None:
            return self.regions[number + 1], offset - (1 << SHIFT)
        return self.regions[number], offset

    def describe(self, address: int) -> tuple[str, str]:
        """(what the region is, where program address `address` falls relative to it), for messages."""
        region, offset = self.region_of(address)
        if region is None:
            return "no region", f"at address {address:#x}, which points into no region"
        if region.kind == "null":
            return "NULL", f"at address {address:#x}, a NULL pointer plus {address}"
        length = len(self.loads[PACKET]) if region.kind == "packet" else len(region.buf)
        if region.kind == "stack":
            # Stack offsets are counted from the frame pointer r10, as the verifier counts them.
            return region.name, f"at r10{offset - length:+d}, outside the {length}-byte stack (r10-{length} to r10-1)"
        if offset < 0:
            return region.name, f"{bytes_(-offset)} before the start of {region.name} ({length} bytes)"
        return region.name, f"at offset {offset} of {region.name} ({length} bytes)"

    def _inner(self, address: int) -> tuple[int, int]:
        inner = address - BIAS
        return (inner >> SHIFT, inner & OFFSET_MASK) if 0 <= inner < REGIONS << SHIFT else (REGIONS, 0)

    def read(self, address: int, size: int) -> bytes | None:
        """`size` bytes at program address `address`, or None when they are not all in one region programs may read."""
        number, offset = self._inner(address)
        buf = self.loads[number]
        if offset + size > len(buf):
            return None
        return bytes(buf[offset : offset + size])

    def writable(self, address: int, size: int) -> tuple[bytearray | memoryview, int] | None:
        """(buffer, offset) for `size` bytes at program address `address` that programs may write, or None."""
        number, offset = self._inner(address)
        buf = self.stores[number]
        if offset + size > len(buf):
            return None
        return buf, offset
