"""The interpreter's address space: every pointer is a 64-bit integer naming a region and an offset in it.

An address is `region << 48 | offset`. Region 0 is NULL, and every region
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

CTX_ADDRESS: Final = CTX << SHIFT
PACKET_ADDRESS: Final = PACKET << SHIFT
KEYS_ADDRESS: Final = KEYS << SHIFT

_NO_LOAD: Final = b""
_NO_STORE: Final = bytearray()


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
        """Put `region` at region `number`; return its base address."""
        self.regions[number] = region
        self.loads[number] = region.buf
        self.stores[number] = region.buf if region.writable and not isinstance(region.buf, bytes) else _NO_STORE  # type: ignore[assignment]
        return number << SHIFT

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
        """The region an address falls in and the offset into it; a negative offset when it lies just before one."""
        if address < 0:
            return self.regions[NULL], address
        number, offset = address >> SHIFT, address & OFFSET_MASK
        if number >= REGIONS:
            return None, offset
        if offset > OFFSET_MASK // 2 and self.regions[number + 1] is not None:
            return self.regions[number + 1], offset - (1 << SHIFT)
        return self.regions[number], offset

    def describe(self, address: int) -> tuple[str, str]:
        """(what the region is, where `address` falls relative to it), for messages."""
        region, offset = self.region_of(address)
        if region is None:
            return "no region", f"at address {address:#x}, which points into no region"
        if region.kind == "null":
            return "NULL", f"at address {address:#x}, a NULL pointer {'plus' if offset >= 0 else 'minus'} {abs(offset)}"
        length = len(self.loads[PACKET]) if region.kind == "packet" else len(region.buf)
        if region.kind == "stack":
            # Stack offsets are counted from the frame pointer r10, as the verifier counts them.
            return region.name, f"at r10{offset - length:+d}, outside the {length}-byte stack (r10-{length} to r10-1)"
        if offset < 0:
            return region.name, f"{-offset} bytes before the start of {region.name} ({length} bytes)"
        return region.name, f"at offset {offset} of {region.name} ({length} bytes)"

    def read(self, address: int, size: int) -> bytes | None:
        """`size` bytes at `address`, or None when they are not all in one region the program may read."""
        buf = self.loads[address >> SHIFT] if 0 <= address >> SHIFT <= REGIONS else _NO_LOAD
        offset = address & OFFSET_MASK
        if address < 0 or offset + size > len(buf):
            return None
        return bytes(buf[offset : offset + size])

    def writable(self, address: int, size: int) -> tuple[bytearray | memoryview, int] | None:
        """(buffer, offset) for `size` bytes at `address` the program may write, or None."""
        buf = self.stores[address >> SHIFT] if 0 <= address >> SHIFT <= REGIONS else _NO_STORE
        offset = address & OFFSET_MASK
        if address < 0 or offset + size > len(buf):
            return None
        return buf, offset
