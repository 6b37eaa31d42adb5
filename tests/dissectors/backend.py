"""Dissectors that exercise the native backend: register pressure, spills, layout."""

from pyfd import BPF_DROP, BPF_OK, BpfFlowKeys, Packet, dissector
from pyfd.headers import Header
from pyfd.types import u8

from .semantics import Words


class Sixteen(Header):
    """Sixteen single bytes."""

    b0: u8
    b1: u8
    b2: u8
    b3: u8
    b4: u8
    b5: u8
    b6: u8
    b7: u8
    b8: u8
    b9: u8
    b10: u8
    b11: u8
    b12: u8
    b13: u8
    b14: u8
    b15: u8


@dissector
def pressure(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Fourteen computed values live at once: more than r0-r9 can hold."""
    w = pkt.header(Sixteen, keys.nhoff)
    v0 = w.b0 * 3 + 1
    v1 = w.b1 * 5 + 2
    v2 = w.b2 * 7 + 3
    v3 = w.b3 * 9 + 4
    v4 = w.b4 * 11 + 5
    v5 = w.b5 * 13 + 6
    v6 = w.b6 * 15 + 7
    v7 = w.b7 * 17 + 8
    v8 = w.b8 * 19 + 9
    v9 = w.b9 * 21 + 10
    v10 = w.b10 * 23 + 11
    v11 = w.b11 * 25 + 12
    v12 = w.b12 * 27 + 13
    v13 = w.b13 * 29 + 14
    keys.ipv4_src = v0 + v1 * 2 + v2 * 3 + v3 * 4 + v4 * 5 + v5 * 6 + v6 * 7 + v7 * 8 + v8 * 9 + v9 * 10 + v10 * 11 + v11 * 12 + v12 * 13 + v13 * 14
    keys.ipv4_dst = (
        v13 ^ (v12 << 1) ^ (v11 << 2) ^ (v10 << 3) ^ (v9 << 4) ^ (v8 << 5) ^ (v7 << 6)
        ^ (v6 << 7) ^ (v5 << 8) ^ (v4 << 9) ^ (v3 << 10) ^ (v2 << 11) ^ (v1 << 12) ^ (v0 << 13)
    )
    keys.sport = v0 - v13 + v7
    keys.dport = v1 * v12 - v6
    if v0 + v1 + v2 + v3 + v4 + v5 + v6 > v7 + v8 + v9 + v10 + v11 + v12 + v13:
        return BPF_OK
    return BPF_DROP


@dissector
def packet_pressure(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Fourteen bytes read at constant offsets, all live at once: re-read, not spilled."""
    w = pkt.header(Sixteen, 14)
    b0 = w.b0
    b1 = w.b1
    b2 = w.b2
    b3 = w.b3
    b4 = w.b4
    b5 = w.b5
    b6 = w.b6
    b7 = w.b7
    b8 = w.b8
    b9 = w.b9
    b10 = w.b10
    b11 = w.b11
    b12 = w.b12
    b13 = w.b13
    keys.ipv4_src = b0 + b1 * 2 + b2 * 3 + b3 * 4 + b4 * 5 + b5 * 6 + b6 * 7 + b7 * 8 + b8 * 9 + b9 * 10 + b10 * 11 + b11 * 12 + b12 * 13 + b13 * 14
    keys.ipv4_dst = (
        b13 ^ (b12 << 1) ^ (b11 << 2) ^ (b10 << 3) ^ (b9 << 4) ^ (b8 << 5) ^ (b7 << 6)
        ^ (b6 << 7) ^ (b5 << 8) ^ (b4 << 9) ^ (b3 << 10) ^ (b2 << 11) ^ (b1 << 12) ^ (b0 << 13)
    )
    if b0 > b13:
        return BPF_OK
    return BPF_DROP


@dissector
def conditions(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Many conditions used as values over a few live values: no spill is needed."""
    w = pkt.header(Sixteen, keys.nhoff)
    a = w.b0
    b = w.b1
    c = w.b2
    d = w.b3
    keys.is_frag = (a < b) + (a < c) * 2 + (a < d) * 4 + (b < c) * 8 + (b < d) * 16 + (c < d) * 32
    keys.is_first_frag = (a == b) + (a == c) * 2 + (a == d) * 4 + (b == c) * 8 + (b == d) * 16 + (c == d) * 32
    keys.is_encap = (a >= b) + (a >= c) * 2 + (a >= d) * 4 + (b >= c) * 8 + (b >= d) * 16 + (c >= d) * 32
    keys.ip_proto = (a != b) + (a > c) * 2 + (a <= d) * 4 + (b != c) * 8 + (b > d) * 16 + (c <= d) * 32
    if a < b and c < d:
        return BPF_OK
    return BPF_DROP


@dissector
def computed_offsets(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Header offsets whose bound the compiler knows and the verifier does not: clamped anyway."""
    w = pkt.header(Words, keys.nhoff)
    a = pkt.header(Sixteen, w.a // (w.b | 1))  # the verifier tracks no bound through a division
    b = pkt.header(Sixteen, w.c >> 5)  # nor through a byte swap
    c = pkt.header(Sixteen, w.d % 50)  # nor through a modulo
    keys.sport = a.b0 + b.b1 + c.b2
    keys.dport = a.b15 ^ b.b14 ^ c.b13
    return BPF_OK


ALL = [pressure, packet_pressure, conditions, computed_offsets]
