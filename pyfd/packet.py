"""`Packet`: the bytes a dissector reads, with the kernel's bounds semantics."""

from __future__ import annotations

from typing import TypeVar

from .abi import MAX_PACKET_OFF  # the verifier's limit on a packet offset
from .constants import BPF_DROP
from .headers import Header

H = TypeVar("H", bound=Header)


class DissectorExit(Exception):
    """Leaves the dissector with a return code (a failed bounds check gives BPF_DROP)."""

    def __init__(self, retval: int) -> None:
        super().__init__(retval)
        self.retval = retval


class Packet:
    """The frame a dissector sees, from `data` (offset 0) to `data_end`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)

    def __len__(self) -> int:
        return len(self.data)

    def has(self, end: int) -> bool:
        """True if the packet holds at least `end` bytes (as the compiled bounds check decides)."""
        return 0 <= end <= MAX_PACKET_OFF and end <= len(self.data)

    def header(self, kind: type[H], offset: int) -> H:
        """A view of header `kind` at `offset`; ends the dissector with BPF_DROP if it doesn't fit."""
        if not 0 <= offset <= MAX_PACKET_OFF - kind.size or offset + kind.size > len(self.data):
            raise DissectorExit(BPF_DROP)
        return kind(self.data, offset)
