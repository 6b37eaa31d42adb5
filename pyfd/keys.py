"""`BpfFlowKeys`: the kernel's `struct bpf_flow_keys`, 56 bytes, exact layout.

In Python every field reads and writes as a host-order integer; the fields the
kernel keeps in network order (n_proto, sport, dport, the addresses,
flow_label) are converted on the way in and out, and a stored value wraps to
the field's width exactly as a BPF store does. The 56 bytes behind the object
are the kernel's bytes, so the Python run and the kernel run compare byte for
byte.
"""

from __future__ import annotations

from typing import ClassVar, overload

from .abi import FLOW_KEYS_LAYOUT
from .abi import FLOW_KEYS_SIZE as KEYS_SIZE
from .constants import ETH_HLEN
from .layout import Field

# Offsets and sizes come from the uapi table in pyfd.abi (the runtime's ctypes
# mirror is checked against it); the language adds byte order:
# these fields are kept in network order, the rest in the kernel's native
# (little-endian) order.
_NETWORK_ORDER = frozenset({"n_proto", "sport", "dport", "ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst", "flow_label"})
_FIELDS = [Field(name, offset, size, "big" if name in _NETWORK_ORDER else "little") for name, offset, size in FLOW_KEYS_LAYOUT]

KEY_FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}


class _KeyField:
    """Descriptor: one field of the 56-byte buffer, host-order int in Python; named by its attribute."""

    field: Field

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = KEY_FIELDS[name]

    @overload
    def __get__(self, obj: None, owner: type) -> _KeyField: ...
    @overload
    def __get__(self, obj: BpfFlowKeys, owner: type) -> int: ...
    def __get__(self, obj: BpfFlowKeys | None, owner: type) -> int | _KeyField:
        if obj is None:
            return self
        return self.field.decode(obj._buf)

    def __set__(self, obj: BpfFlowKeys, value: int | bytes) -> None:
        if isinstance(value, (bytes, bytearray)):  # opaque header bytes, in network order as the field is
            fld = self.field
            if len(value) != fld.size or fld.is_bitfield or fld.order != "big":
                raise TypeError(f"keys.{fld.name} takes {fld.size} bytes, not {len(value)}")
            obj._buf[fld.offset : fld.offset + fld.size] = value
            return
        self.field.encode_into(obj._buf, int(value))


class BpfFlowKeys:
    """The flow keys a dissector fills in (`struct bpf_flow_keys`)."""

    SIZE: ClassVar[int] = KEYS_SIZE
    FIELDS: ClassVar[dict[str, Field]] = KEY_FIELDS

    # One descriptor per field of struct bpf_flow_keys (pyfd.abi), in its order.
    nhoff = _KeyField()
    thoff = _KeyField()
    addr_proto = _KeyField()
    is_frag = _KeyField()
    is_first_frag = _KeyField()
    is_encap = _KeyField()
    ip_proto = _KeyField()
    n_proto = _KeyField()
    sport = _KeyField()
    dport = _KeyField()
    ipv4_src = _KeyField()
    ipv4_dst = _KeyField()
    ipv6_src = _KeyField()
    ipv6_dst = _KeyField()
    flags = _KeyField()
    flow_label = _KeyField()

    __slots__ = ("_buf",)

    def __init__(self, raw: bytes = bytes(KEYS_SIZE), **fields: int) -> None:
        if len(raw) != KEYS_SIZE:
            raise ValueError(f"struct bpf_flow_keys is {KEYS_SIZE} bytes, got {len(raw)}")
        self._buf = bytearray(raw)
        for name, value in fields.items():
            if name not in KEY_FIELDS:
                raise AttributeError(f"struct bpf_flow_keys has no field {name!r}")
            setattr(self, name, value)

    @classmethod
    def at_entry(cls, frame: bytes, *, flags: int = 0, nhoff: int = ETH_HLEN) -> BpfFlowKeys:
        """The keys as BPF_PROG_TEST_RUN hands them to a dissector for `frame`."""
        n_proto = int.from_bytes(frame[12:14], "big") if len(frame) >= ETH_HLEN else 0
        return cls(nhoff=nhoff, thoff=nhoff, n_proto=n_proto, flags=flags)

    def clamp_offsets(self, start: int, length: int) -> None:
        """What the kernel does after the program: nhoff into [start, len], thoff into [nhoff, len]."""
        self.nhoff = min(max(self.nhoff, start), length)
        self.thoff = min(max(self.thoff, self.nhoff), length)

    @property
    def raw(self) -> bytes:
        """The 56 bytes, exactly as the kernel lays them out."""
        return bytes(self._buf)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BpfFlowKeys) and self._buf == other._buf

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name):#x}" if name in ("n_proto", "addr_proto") else f"{name}={getattr(self, name)}"
            for name in KEY_FIELDS
            if name not in ("ipv6_src", "ipv6_dst") and getattr(self, name)
        )
        return f"BpfFlowKeys({shown})"
