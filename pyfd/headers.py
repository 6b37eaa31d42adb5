"""Packet header layouts, declared as annotated classes in network byte order.

    class MyVXLAN(Header):  # pyfd.headers.VXLAN names the I flag too
        flags: u8
        reserved: Bits[24]
        vni: Bits[24]
        reserved2: u8

Fields are laid out in declaration order with no padding; `u8`..`u64` are
big-endian, `Bits[N]` fields pack most significant bit first and must together
fill 1, 2, 4 or 8 bytes, `Bytes[N]` are opaque bytes. Reading a field gives a
host-order int, in Python and in the compiled program alike.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .layout import Bits, Bytes, Field, network_layout, resolve_annotations
from .types import u8, u16, u32

__all__ = [
    "Header", "Bits", "Bytes", "Ethernet", "VLAN", "MPLS", "IPv4", "IPv6", "IPv6Opt", "IPv6Frag", "GRE", "PPP", "Ports",
    "TCP", "UDP", "ICMP", "IPVersion", "VXLAN", "VXLANGPE", "Geneve", "GTPU", "GTPUOpt", "GTPUExt", "GTPUExtNext", "GUE",
    "header_fields",
]


class _HeaderField:
    """Descriptor reading one field of a header view (read-only: packets are)."""

    def __init__(self, field: Field) -> None:
        self.field = field

    def __get__(self, obj: Header | None, owner: type) -> Any:
        if obj is None:
            return self
        if not obj._readable(self.field):  # opaque bytes (an IPv6 address): copied whole into the keys
            start = obj._offset + self.field.offset
            return bytes(obj._data[start : start + self.field.size])
        return self.field.decode(obj._data, obj._offset)

    def __set__(self, obj: Header, value: int) -> None:
        raise AttributeError("packet headers are read-only: a flow dissector cannot write the packet")


class Header:
    """Base class of packet header layouts; subclasses declare annotated fields."""

    size: ClassVar[int] = 0
    fields: ClassVar[dict[str, Field]] = {}

    __slots__ = ("_data", "_offset")
    _data: bytes
    _offset: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields, size = network_layout(cls.__name__, resolve_annotations(cls))
        if size == 0:
            raise TypeError(f"header {cls.__name__} declares no fields")
        cls.fields = fields
        cls.size = size
        for field in fields.values():
            setattr(cls, field.name, _HeaderField(field))

    def __init__(self, data: bytes, offset: int = 0) -> None:
        if offset < 0 or offset + self.size > len(data):
            raise ValueError(f"{type(self).__name__} needs {self.size} bytes at offset {offset}")
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_offset", offset)

    @staticmethod
    def _readable(field: Field) -> bool:
        return field.is_bitfield or field.size in (1, 2, 4, 8)

    def __repr__(self) -> str:
        parts = []
        for name, field in self.fields.items():
            if self._readable(field):
                parts.append(f"{name}={field.decode(self._data, self._offset)}")
            else:
                start = self._offset + field.offset
                parts.append(f"{name}={bytes(self._data[start:start + field.size]).hex(':')}")
        return f"{type(self).__name__}({', '.join(parts)})"


def header_fields(kind: type[Header]) -> dict[str, Field]:
    """The fields of a header class, by name."""
    return kind.fields


class Ethernet(Header):
    """Ethernet II header (14 bytes)."""

    dst: Bytes[6]
    src: Bytes[6]
    proto: u16


class IPv4(Header):
    """IPv4 header without options (20 bytes; `ihl` counts 32-bit words)."""

    version: Bits[4]
    ihl: Bits[4]
    tos: u8
    tot_len: u16
    id: u16
    frag_off: u16  # flags (IP_MF = 0x2000) and offset (IP_OFFSET = 0x1fff)
    ttl: u8
    protocol: u8
    check: u16
    saddr: u32
    daddr: u32


class Ports(Header):
    """The first four bytes of TCP, UDP and SCTP: source and destination port."""

    sport: u16
    dport: u16


class VLAN(Header):
    """802.1Q / 802.1ad tag after its Ethernet type: TCI, then the encapsulated Ethernet type (4 bytes)."""

    pcp: Bits[3]
    dei: Bits[1]
    vid: Bits[12]
    proto: u16


class MPLS(Header):
    """One MPLS label stack entry (RFC 3032, 4 bytes)."""

    label: Bits[20]
    tc: Bits[3]
    bos: Bits[1]  # bottom of stack
    ttl: u8


class IPv6(Header):
    """IPv6 fixed header (40 bytes); the addresses are opaque 16-byte fields."""

    version: Bits[4]
    traffic_class: Bits[8]
    flow_label: Bits[20]
    payload_len: u16
    nexthdr: u8
    hop_limit: u8
    saddr: Bytes[16]
    daddr: Bytes[16]


class IPv6Opt(Header):
    """The start of an IPv6 hop-by-hop, routing or destination options header.

    `hdrlen` counts 8-byte units after the first 8 bytes: the header is
    `(hdrlen + 1) * 8` bytes long.
    """

    nexthdr: u8
    hdrlen: u8


class IPv6Frag(Header):
    """IPv6 fragment header (8 bytes); `offset` counts 8-byte units, `more` is the M flag."""

    nexthdr: u8
    reserved: u8
    offset: Bits[13]
    res: Bits[2]
    more: Bits[1]
    identification: u32


class GRE(Header):
    """GRE base header (RFC 2784, 2890; 4 bytes); optional checksum, key and sequence words follow."""

    csum: Bits[1]  # C: checksum and reserved word present
    routing: Bits[1]
    key: Bits[1]  # K: key word present
    seq: Bits[1]  # S: sequence number word present
    strict: Bits[1]
    recur: Bits[3]
    ack: Bits[1]
    flags: Bits[4]
    version: Bits[3]
    proto: u16  # an Ethernet type


class PPP(Header):
    """PPP in HDLC-like framing (RFC 1662), as PPTP's GRE carries it (4 bytes, PPP_HDRLEN)."""

    address: u8
    control: u8
    protocol: u16


class TCP(Header):
    """TCP header without options (20 bytes; `doff` counts 32-bit words)."""

    sport: u16
    dport: u16
    seq: u32
    ack_seq: u32
    doff: Bits[4]
    reserved: Bits[4]
    flags: u8
    window: u16
    check: u16
    urg_ptr: u16


class UDP(Header):
    """UDP header (8 bytes)."""

    sport: u16
    dport: u16
    len: u16
    check: u16


class ICMP(Header):
    """ICMP header (8 bytes, as struct icmphdr)."""

    type: u8
    code: u8
    checksum: u16
    rest: u32


class IPVersion(Header):
    """The first byte of an IPv4 or IPv6 header: what MPLS, GTP-U and GUE variant 1 tell an inner packet by."""

    version: Bits[4]  # 4 or 6
    low: Bits[4]  # IPv4's ihl, or the top of IPv6's traffic class


class VXLAN(Header):
    """VXLAN header (RFC 7348, 8 bytes): the I flag says the VNI is valid; an Ethernet frame follows."""

    reserved_flags: Bits[4]
    i: Bits[1]  # I: the VNI is valid; RFC 7348 section 5 says it MUST be set
    reserved_flags2: Bits[3]
    reserved: Bits[24]
    vni: Bits[24]
    reserved2: Bits[8]


class VXLANGPE(Header):
    """VXLAN-GPE header (draft-ietf-nvo3-vxlan-gpe, 8 bytes): VXLAN with a version and a next protocol."""

    reserved_flags: Bits[2]
    version: Bits[2]  # 0
    i: Bits[1]  # I: the VNI is valid
    p: Bits[1]  # P: next_proto is present
    b: Bits[1]  # B: BUM traffic
    o: Bits[1]  # O: an OAM packet
    reserved: u16
    next_proto: u8  # 1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH, 5 MPLS
    vni: Bits[24]
    reserved2: Bits[8]


class Geneve(Header):
    """Geneve base header (RFC 8926, 8 bytes); `opt_len` 4-byte words of options follow, then `proto`."""

    version: Bits[2]  # 0
    opt_len: Bits[6]  # options length, in 4-byte multiples
    o: Bits[1]  # O: a control packet (transit devices must not interpret the payload)
    c: Bits[1]  # C: critical options are present
    reserved: Bits[6]
    proto: u16  # an Ethernet type: ETH_P_TEB for Ethernet
    vni: Bits[24]
    reserved2: Bits[8]


class GTPU(Header):
    """GTP-U header (3GPP TS 29.281 section 5.1, 8 bytes); with E, S or PN set, GTPUOpt follows."""

    version: Bits[3]  # 1
    pt: Bits[1]  # protocol type: 1 GTP, 0 GTP'
    spare: Bits[1]
    e: Bits[1]  # E: extension headers follow
    s: Bits[1]  # S: the sequence number is meaningful
    pn: Bits[1]  # PN: the N-PDU number is meaningful
    message_type: u8  # 255: G-PDU, a user packet (T-PDU) follows
    length: u16  # bytes after these 8
    teid: u32


class GTPUOpt(Header):
    """The optional GTP-U word (TS 29.281 section 5.1), present when E, S or PN is set (4 bytes)."""

    sequence: u16
    npdu: u8
    next_ext: u8  # the first extension header's type (read only with E set; 0: none)


class GTPUExt(Header):
    """The first byte of a GTP-U extension header (TS 29.281 section 5.2.1): its length in 4-byte units."""

    length: u8


class GTPUExtNext(Header):
    """The last byte of a GTP-U extension header: the next one's type (0: no more)."""

    next_ext: u8


class GUE(Header):
    """GUE variant 0 header (draft-ietf-intarea-gue, 4 bytes); `hlen` 4-byte words of extension fields follow."""

    variant: Bits[2]  # 0 (variant 1 has no header: IPv4 or IPv6 directly)
    c: Bits[1]  # C: a control message, not a packet
    hlen: Bits[5]  # extension fields length, in 4-byte words
    proto: u8  # the IP protocol of the payload (IPPROTO_IPIP, IPPROTO_IPV6, ...)
    flags: u16
