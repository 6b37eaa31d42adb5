"""struct bpf_flow_keys: the ctypes mirror, and FlowKeys, a decoded read-only view."""

from __future__ import annotations

import ctypes
import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Final

from .. import abi
from ..abi import FLOW_KEYS_LAYOUT as FLOW_KEYS_LAYOUT  # the uapi table, re-exported
from ..abi import FLOW_KEYS_SIZE

ETH_P_IP: Final = 0x0800
ETH_P_IPV6: Final = 0x86DD


class FlowDissectorFlags(IntFlag):
    """Input flags in bpf_flow_keys.flags: BPF_FLOW_DISSECTOR_F_* in include/uapi/linux/bpf.h."""

    PARSE_1ST_FRAG = abi.BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG  # keep parsing a first fragment
    STOP_AT_FLOW_LABEL = abi.BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL  # stop at a non-zero IPv6 flow label
    STOP_AT_ENCAP = abi.BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP  # stop at an encapsulation header


class BpfRetCode(IntEnum):
    """What a flow dissector may return: enum bpf_ret_code."""

    BPF_OK = abi.BPF_OK
    BPF_DROP = abi.BPF_DROP
    BPF_FLOW_DISSECTOR_CONTINUE = abi.BPF_FLOW_DISSECTOR_CONTINUE  # discard the keys, run the kernel's C dissector


class _Ipv4Addrs(ctypes.Structure):
    _fields_ = [("ipv4_src", ctypes.c_uint32), ("ipv4_dst", ctypes.c_uint32)]


class _Ipv6Addrs(ctypes.Structure):
    _fields_ = [("ipv6_src", ctypes.c_uint32 * 4), ("ipv6_dst", ctypes.c_uint32 * 4)]


class _Addrs(ctypes.Union):
    _anonymous_ = ("v4", "v6")
    _fields_ = [("v4", _Ipv4Addrs), ("v6", _Ipv6Addrs)]


class bpf_flow_keys(ctypes.Structure):
    """struct bpf_flow_keys (uapi); be16/be32 fields hold network-order bytes."""

    _anonymous_ = ("addrs",)
    _fields_ = [
        ("nhoff", ctypes.c_uint16),
        ("thoff", ctypes.c_uint16),
        ("addr_proto", ctypes.c_uint16),
        ("is_frag", ctypes.c_uint8),
        ("is_first_frag", ctypes.c_uint8),
        ("is_encap", ctypes.c_uint8),
        ("ip_proto", ctypes.c_uint8),
        ("n_proto", ctypes.c_uint16),  # __be16
        ("sport", ctypes.c_uint16),  # __be16
        ("dport", ctypes.c_uint16),  # __be16
        ("addrs", _Addrs),
        ("flags", ctypes.c_uint32),
        ("flow_label", ctypes.c_uint32),  # __be32
    ]


# The uapi layout, field by field, is FLOW_KEYS_LAYOUT (pyfd.abi); the test
# suite holds the ctypes mirror above to it.

# Host-order fields first, then network-order ones (n_proto, sport, dport at
# 10..16; addresses at 16..48; flow_label at 52).
_HEAD = struct.Struct("=HHHBBBB")  # nhoff .. ip_proto, native order
_PORTS = struct.Struct("!HHH")  # n_proto, sport, dport at 10
_FLAGS = struct.Struct("=I")  # flags at 48, native order
_LABEL = struct.Struct("!I")  # flow_label at 52


def _proto_text(value: int) -> str:
    return f"0x{value:04x}"


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FlowKeys:
    """The 56 bytes of a struct bpf_flow_keys, decoded to host-order values on access."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes):
            raise TypeError(f"FlowKeys wants bytes, got {type(self.raw).__name__}")
        if len(self.raw) != FLOW_KEYS_SIZE:
            raise ValueError(f"struct bpf_flow_keys is {FLOW_KEYS_SIZE} bytes, got {len(self.raw)}")

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> FlowKeys:
        """Decode the 56 bytes of a struct bpf_flow_keys."""
        return cls(bytes(data))

    @classmethod
    def from_struct(cls, keys: bpf_flow_keys) -> FlowKeys:
        """Decode a ctypes bpf_flow_keys."""
        return cls(bytes(keys))

    @classmethod
    def build(
        cls,
        *,
        nhoff: int = 0,
        thoff: int = 0,
        addr_proto: int = 0,
        is_frag: int = 0,
        is_first_frag: int = 0,
        is_encap: int = 0,
        ip_proto: int = 0,
        n_proto: int = 0,
        sport: int = 0,
        dport: int = 0,
        src: Address | str | None = None,
        dst: Address | str | None = None,
        flags: int = 0,
        flow_label: int = 0,
    ) -> FlowKeys:
        """Make keys from host-order values; src/dst go where addr_proto says."""
        head = _HEAD.pack(nhoff, thoff, addr_proto, is_frag, is_first_frag, is_encap, ip_proto)
        ports = _PORTS.pack(n_proto, sport, dport)
        addrs = bytearray(32)
        if src is not None or dst is not None:
            if addr_proto == ETH_P_IP:
                parse: Callable[[Address | str], Address] = ipaddress.IPv4Address
                width, dst_at = 4, 4
            elif addr_proto == ETH_P_IPV6:
                parse, width, dst_at = ipaddress.IPv6Address, 16, 16
            else:
                raise ValueError(
                    f"src/dst need addr_proto ETH_P_IP (0x0800) or ETH_P_IPV6 (0x86dd), "
                    f"got {_proto_text(addr_proto)}"
                )
            if src is not None:
                addrs[0:width] = parse(src).packed
            if dst is not None:
                addrs[dst_at : dst_at + width] = parse(dst).packed
        tail = _FLAGS.pack(flags) + _LABEL.pack(flow_label)
        return cls(head + ports + bytes(addrs) + tail)

    def to_struct(self) -> bpf_flow_keys:
        """Return a ctypes bpf_flow_keys holding these bytes."""
        return bpf_flow_keys.from_buffer_copy(self.raw)

    # --- host-order fields -------------------------------------------------------

    @property
    def nhoff(self) -> int:
        """Network header offset."""
        return int(_HEAD.unpack_from(self.raw, 0)[0])

    @property
    def thoff(self) -> int:
        """Transport header offset."""
        return int(_HEAD.unpack_from(self.raw, 0)[1])

    @property
    def addr_proto(self) -> int:
        """ETH_P_IP or ETH_P_IPV6: which address union member is valid."""
        return int(_HEAD.unpack_from(self.raw, 0)[2])

    @property
    def is_frag(self) -> int:
        """Non-zero if the packet is an IP fragment."""
        return self.raw[6]

    @property
    def is_first_frag(self) -> int:
        """Non-zero if the packet is the first IP fragment."""
        return self.raw[7]

    @property
    def is_encap(self) -> int:
        """Non-zero if the dissector went through an encapsulation."""
        return self.raw[8]

    @property
    def ip_proto(self) -> int:
        """The transport protocol (IPPROTO_*)."""
        return self.raw[9]

    @property
    def n_proto(self) -> int:
        """The L3 protocol (ETH_P_*), host order."""
        return int(_PORTS.unpack_from(self.raw, 10)[0])

    @property
    def sport(self) -> int:
        """Source port, host order."""
        return int(_PORTS.unpack_from(self.raw, 10)[1])

    @property
    def dport(self) -> int:
        """Destination port, host order."""
        return int(_PORTS.unpack_from(self.raw, 10)[2])

    @property
    def ipv4_src(self) -> ipaddress.IPv4Address:
        """Bytes 16..20 read as an IPv4 source address."""
        return ipaddress.IPv4Address(self.raw[16:20])

    @property
    def ipv4_dst(self) -> ipaddress.IPv4Address:
        """Bytes 20..24 read as an IPv4 destination address."""
        return ipaddress.IPv4Address(self.raw[20:24])

    @property
    def ipv6_src(self) -> ipaddress.IPv6Address:
        """Bytes 16..32 read as an IPv6 source address."""
        return ipaddress.IPv6Address(self.raw[16:32])

    @property
    def ipv6_dst(self) -> ipaddress.IPv6Address:
        """Bytes 32..48 read as an IPv6 destination address."""
        return ipaddress.IPv6Address(self.raw[32:48])

    @property
    def flags(self) -> int:
        """Input flags (FlowDissectorFlags), host order."""
        return int(_FLAGS.unpack_from(self.raw, 48)[0])

    @property
    def flow_label(self) -> int:
        """IPv6 flow label, host order."""
        return int(_LABEL.unpack_from(self.raw, 52)[0])

    @property
    def src(self) -> Address | None:
        """The source address that addr_proto selects, or None."""
        if self.addr_proto == ETH_P_IP:
            return self.ipv4_src
        if self.addr_proto == ETH_P_IPV6:
            return self.ipv6_src
        return None

    @property
    def dst(self) -> Address | None:
        """The destination address that addr_proto selects, or None."""
        if self.addr_proto == ETH_P_IP:
            return self.ipv4_dst
        if self.addr_proto == ETH_P_IPV6:
            return self.ipv6_dst
        return None

    # --- presentation ------------------------------------------------------------

    def _endpoint(self, addr: Address | None, port: int) -> str:
        if addr is None:
            return str(port)
        text = f"[{addr}]" if addr.version == 6 else str(addr)
        return f"{text}:{port}"

    def __repr__(self) -> str:
        parts = [
            f"nhoff={self.nhoff}",
            f"thoff={self.thoff}",
            f"n_proto={_proto_text(self.n_proto)}",
            f"ip_proto={self.ip_proto}",
            f"addr_proto={_proto_text(self.addr_proto)}",
        ]
        if self.src is not None:
            parts.append(f"src={self._endpoint(self.src, self.sport)}")
            parts.append(f"dst={self._endpoint(self.dst, self.dport)}")
        elif self.sport or self.dport:
            parts.append(f"sport={self.sport}")
            parts.append(f"dport={self.dport}")
        for name in ("is_frag", "is_first_frag", "is_encap"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value}")
        if self.flow_label:
            parts.append(f"flow_label=0x{self.flow_label:05x}")
        parts.append(f"flags={self.flags}")
        return f"FlowKeys({', '.join(parts)})"

    def _fields_for_diff(self, other: FlowKeys) -> list[tuple[str, Callable[[FlowKeys], object]]]:
        """Fields to compare, covering all 56 bytes; addresses as both sides' addr_proto allow."""
        fields: list[tuple[str, Callable[[FlowKeys], object]]] = [
            ("nhoff", lambda k: k.nhoff),
            ("thoff", lambda k: k.thoff),
            ("addr_proto", lambda k: _proto_text(k.addr_proto)),
            ("is_frag", lambda k: k.is_frag),
            ("is_first_frag", lambda k: k.is_first_frag),
            ("is_encap", lambda k: k.is_encap),
            ("ip_proto", lambda k: k.ip_proto),
            ("n_proto", lambda k: _proto_text(k.n_proto)),
            ("sport", lambda k: k.sport),
            ("dport", lambda k: k.dport),
        ]
        protos = {self.addr_proto, other.addr_proto}
        if protos == {ETH_P_IP}:
            fields += [
                ("ipv4_src", lambda k: k.ipv4_src),
                ("ipv4_dst", lambda k: k.ipv4_dst),
                ("address bytes 24..48 (unused for IPv4)", lambda k: k.raw[24:48].hex()),
            ]
        elif protos == {ETH_P_IPV6}:
            fields += [("ipv6_src", lambda k: k.ipv6_src), ("ipv6_dst", lambda k: k.ipv6_dst)]
        else:
            fields += [
                ("address bytes 16..32", lambda k: k.raw[16:32].hex()),
                ("address bytes 32..48", lambda k: k.raw[32:48].hex()),
            ]
        fields += [
            ("flags", lambda k: k.flags),
            ("flow_label", lambda k: f"0x{k.flow_label:05x}"),
        ]
        return fields

    def diff(self, other: FlowKeys) -> list[str]:
        """Name each field that differs, as 'field: mine != theirs' (empty iff raw bytes equal)."""
        return [
            f"{name}: {get(self)} != {get(other)}"
            for name, get in self._fields_for_diff(other)
            if get(self) != get(other)
        ]
