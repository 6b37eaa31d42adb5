"""Kernel equivalence: does the kernel hash a frame alike with a BPF flow dissector attached as with its own?

The judge is the kernel's built-in C dissector (`__skb_flow_dissect`,
net/core/flow_dissector.c) as `skb_get_hash()` uses it: runtime.kernelhash
test-runs a tc program returning `bpf_get_hash_recalc(skb)` in a throwaway
network namespace, once with nothing attached and once with the dissector
under test attached, and the two hashes of each frame must be equal.

The hash (`__flow_hash_from_keys`) covers struct flow_keys from `basic` on:
n_proto, ip_proto, the flow label, the first VLAN tag, the GRE key id, the
ports word and the addresses. A BPF dissector reports only what `struct
bpf_flow_keys` carries (`__skb_flow_bpf_to_target`), so where the C
dissector reaches a field the keys do not have, no BPF dissector can hash
alike. Each corpus frame lists those fields (MISSING names them with the
kernel field); a frame with none is "in keys" and must hash alike.

The corpus is built with scapy (explicit MACs on every Ethernet header) and
plain bytes for the headers scapy has no exact layer for (GRE with every flag
combination, PPTP, DCCP): every stack samples/full.py knows, SCTP, DCCP,
UDP-Lite, ESP, AH, odd TCP data offsets, GRE flag combinations and versions,
nesting past the kernel's MAX_FLOW_DISSECT_HDRS (15), seeded random
addresses and ports, and each base stack cut at every length inside it.
"""

from __future__ import annotations

import random
import struct
from typing import Any
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from frames import DST_MAC, SRC_MAC
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH, ESP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

__all__ = [
    "MISSING",
    "CorpusFrame",
    "Tally",
    "corpus",
    "tally",
]

# Hashed fields of struct flow_keys (include/net/flow_dissector.h) that the C
# dissector fills and struct bpf_flow_keys has no room for, by the name the
# corpus uses.
MISSING: dict[str, str] = {
    "vlan": (
        "flow_keys.vlan (vlan_id, vlan_priority, vlan_tpid, vlan_eth_type of the first 802.1Q/802.1ad tag; "
        "FLOW_DISSECTOR_KEY_VLAN): bpf_flow_keys has no VLAN field"
    ),
    "gre_keyid": "flow_keys.keyid (a non-zero GRE key; FLOW_DISSECTOR_KEY_GRE_KEYID): bpf_flow_keys has no key id",
    "pptp_call_id": (
        "flow_keys.keyid (GRE version 1's key masked to the PPTP call id, GRE_PPTP_KEY_MASK; "
        "FLOW_DISSECTOR_KEY_GRE_KEYID): bpf_flow_keys has no key id"
    ),
}

ETH_P_IP, ETH_P_IPV6, ETH_P_8021Q, ETH_P_8021AD = 0x0800, 0x86DD, 0x8100, 0x88A8
ETH_P_MPLS_UC, ETH_P_MPLS_MC, ETH_P_TEB, ETH_P_ARP = 0x8847, 0x8848, 0x6558, 0x0806
GRE_PROTO_PPP = 0x880B
PPP_IP, PPP_IPV6 = 0x0021, 0x0057


@dataclass(frozen=True)
class Built:
    """Bytes from some header on, and the hashed-but-not-in-keys fields in them: (name, bytes needed to reach it)."""

    data: bytes
    extras: tuple[tuple[str, int], ...] = ()

    def under(self, header: bytes, *extras: tuple[str, int]) -> Built:
        """This payload behind `header`, whose own extras are given relative to the header's start."""
        shifted = tuple((name, need + len(header)) for name, need in self.extras)
        return Built(header + self.data, tuple(extras) + shifted)


EMPTY = Built(b"")


@dataclass(frozen=True)
class CorpusFrame:
    """One frame of the corpus: its category, a name, the bytes, and the kernel fields it needs beyond the keys."""

    category: str
    name: str
    frame: bytes
    missing: tuple[str, ...] = field(default=())

    @property
    def in_keys(self) -> bool:
        """True when every field the kernel hashes for this frame fits in struct bpf_flow_keys."""
        return not self.missing


def _scapy(header: ScapyPacket, inner: Built) -> Built:
    """A scapy header (lengths and checksums computed over the payload) in front of `inner`."""
    whole = bytes(header / Raw(inner.data)) if inner.data else bytes(header)
    return inner.under(whole[: len(whole) - len(inner.data)])


def eth(ethertype: int, inner: Built) -> Built:
    """An Ethernet header with the fixed test MACs."""
    return _scapy(Ether(src=SRC_MAC, dst=DST_MAC, type=ethertype), inner)


def ipv4(inner: Built, proto: int, src: str = "10.0.0.1", dst: str = "10.0.0.2", **fields: Any) -> Built:
    """An IPv4 header carrying `proto`."""
    return _scapy(IP(src=src, dst=dst, proto=proto, **fields), inner)


def ipv6(inner: Built, nh: int, src: str = "2001:db8::1", dst: str = "2001:db8::2", **fields: Any) -> Built:
    """An IPv6 header whose next header is `nh`."""
    return _scapy(IPv6(src=src, dst=dst, nh=nh, **fields), inner)


def tcp(sport: int = 1234, dport: int = 80, payload: bytes = b"", **fields: Any) -> Built:
    """A TCP header (20 bytes unless dataofs/options say otherwise) and payload."""
    return Built(bytes(TCP(sport=sport, dport=dport, **fields)) + payload)


def udp(sport: int = 5353, dport: int = 53, payload: bytes = b"q" * 8) -> Built:
    """A UDP header and payload (also UDP-Lite: the same first 8 bytes)."""
    return Built(bytes(UDP(sport=sport, dport=dport) / Raw(payload)))


def gre(
    proto: int,
    inner: Built = EMPTY,
    *,
    c: bool = False,
    r: bool = False,
    k: int | None = None,
    s: bool = False,
    a: bool = False,
    version: int = 0,
    pptp: bool = False,
) -> Built:
    """A GRE header with the chosen flags, optional words and version, in front of `inner`.

    The extras follow __skb_flow_dissect_gre: the key id is hashed only when
    the routing bit is clear, the version is 0 (key as is) or 1 carrying PPP
    with K (key masked to the call id), and the key word is in the frame.
    """
    flags = (c << 15) | (r << 14) | ((k is not None) << 13) | (s << 12) | (a << 7) | version
    head = struct.pack("!HH", flags, proto)
    if c or r:
        head += struct.pack("!HH", 0xBEEF, 0)  # checksum and reserved (RFC 1701's offset when R is set)
    key_end = len(head) + 4
    if k is not None:
        head += struct.pack("!I", k)
    if s:
        head += struct.pack("!I", 7)
    if a:
        head += struct.pack("!I", 9)
    extras: list[tuple[str, int]] = []
    # The kernel counts 4 bytes for C only, not for R (it stops at R anyway).
    kernel_key_end = 4 + 4 * c + 4
    if k is not None and not r:
        if version == 0 and k != 0:
            extras.append(("gre_keyid", kernel_key_end))
        if version == 1 and proto == GRE_PROTO_PPP and k & 0xFFFF:
            extras.append(("pptp_call_id", kernel_key_end))
    assert key_end == kernel_key_end or k is None or r
    return inner.under(head, *extras)


def ppp(protocol: int, inner: Built) -> Built:
    """PPP in HDLC-like framing (address 0xff, control 0x03), as PPTP carries it."""
    return inner.under(struct.pack("!BBH", 0xFF, 0x03, protocol))


def vlan(tpid_inner: int, inner: Built, vid: int = 5) -> Built:
    """One VLAN tag (TCI, then the inner Ethernet type); the C dissector hashes the first tag it reads."""
    return inner.under(struct.pack("!HH", vid, tpid_inner), ("vlan", 4))


def mpls(inner: Built, labels: Sequence[int] = (100,)) -> Built:
    """An MPLS label stack (bottom of stack set on the last label)."""
    out = inner
    for i, label in reversed(list(enumerate(labels))):
        out = _scapy(MPLS(label=label, s=int(i == len(labels) - 1), ttl=64), out)
    return out


def raw(data: bytes) -> Built:
    """Bytes without structure (payloads, transport headers scapy has no layer for)."""
    return Built(data)


class _Corpus:
    """Collects frames by category."""

    def __init__(self) -> None:
        self.frames: list[CorpusFrame] = []
        self.rng = random.Random(13)

    def add(self, category: str, name: str, built: Built) -> None:
        missing = tuple(sorted({n for n, need in built.extras if need <= len(built.data)}))
        self.frames.append(CorpusFrame(category, name, built.data, missing))

    def v4(self) -> str:
        return ".".join(str(self.rng.randrange(1, 255)) for _ in range(4))

    def v6(self) -> str:
        return "2001:db8:" + ":".join(f"{self.rng.randrange(0x10000):x}" for _ in range(6))

    def port(self) -> int:
        return self.rng.randrange(0x10000)


def _l4(c: _Corpus) -> Iterator[tuple[str, int, Built]]:
    """(name, IP protocol, transport bytes) for every transport the kernel reads ports or an SPI from, and a few it does not."""
    yield "tcp", 6, tcp()
    yield "udp", 17, udp()
    yield "icmp", 1, Built(bytes(ICMP(type=8, id=7, seq=1)))
    yield "sctp", 132, Built(bytes(SCTP(sport=c.port(), dport=c.port())))
    yield "dccp", 33, raw(struct.pack("!HHBBHI", c.port(), c.port(), 4, 0, 0, 0) + bytes(8))
    yield "udplite", 136, udp(c.port(), c.port())
    yield "esp", 50, Built(bytes(ESP(spi=c.rng.randrange(1, 1 << 32), seq=1) / Raw(b"e" * 16)))
    yield "ah", 51, Built(bytes(AH(spi=c.rng.randrange(1, 1 << 32), nh=59, payloadlen=4) / Raw(b"a" * 12)))
    yield "igmp", 2, raw(bytes.fromhex("1164ee9be0000001"))
    yield "proto99", 99, raw(b"x" * 12)


def _build(c: _Corpus) -> None:
    rng = c.rng
    # --- IPv4 and IPv6 with every transport, fixed and random addresses and ports
    for name, proto, l4 in _l4(c):
        category = name if name in ("sctp", "dccp", "udplite", "esp", "ah") else ("ip_other" if name in ("igmp", "proto99") else "ipv4")
        c.add(category, f"ipv4_{name}", eth(ETH_P_IP, ipv4(l4, proto)))
        category6 = category if category != "ipv4" else "ipv6"
        nh = 58 if name == "icmp" else proto
        l6 = Built(bytes(ICMPv6EchoRequest(id=3, seq=4))) if name == "icmp" else l4
        c.add(category6, f"ipv6_{name}", eth(ETH_P_IPV6, ipv6(l6, nh)))
        # ports or SPI only: the kernel reads 4 bytes at proto_ports_offset, nothing more
        if name in ("tcp", "udp", "sctp", "dccp", "udplite", "esp", "ah"):
            need = 8 if name == "ah" else 4
            for cut in (need - 1, need, need + 1):
                c.add(category, f"ipv4_{name}_cut{cut}", eth(ETH_P_IP, ipv4(raw(l4.data[:cut]), proto)))
                c.add(category6, f"ipv6_{name}_cut{cut}", eth(ETH_P_IPV6, ipv6(raw(l4.data[:cut]), proto)))
    for i in range(40):
        proto = rng.choice((6, 17, 132, 136, 33, 50, 51))
        body = raw(struct.pack("!HHII", c.port(), c.port(), rng.randrange(1 << 32), rng.randrange(1 << 32)) + bytes(12))
        c.add("random", f"random_v4_{i}_p{proto}", eth(ETH_P_IP, ipv4(body, proto, c.v4(), c.v4())))
        c.add("random", f"random_v6_{i}_p{proto}", eth(ETH_P_IPV6, ipv6(body, proto, c.v6(), c.v6(), fl=0)))
        c.add("random", f"random_v6_label_{i}", eth(ETH_P_IPV6, ipv6(body, proto, c.v6(), c.v6(), fl=rng.randrange(1, 1 << 20))))
    # IPv4 header variants
    c.add("ipv4", "ipv4_ihl4", eth(ETH_P_IP, ipv4(tcp(), 6, ihl=4)))
    c.add("ipv4", "ipv4_ihl0", eth(ETH_P_IP, ipv4(tcp(), 6, ihl=0)))
    c.add("ipv4", "ipv4_options_ihl6", eth(ETH_P_IP, ipv4(tcp(40000, 443), 6, options=[b"\x01\x01\x01\x00"])))
    c.add("ipv4", "ipv4_options_ihl15", eth(ETH_P_IP, ipv4(udp(1, 2), 17, options=[b"\x01" * 40])))
    c.add("ipv4", "ipv4_options_past_end", eth(ETH_P_IP, raw(bytes(IP(src="10.0.0.1", dst="10.0.0.2", proto=6, ihl=15))[:20] + b"\x01" * 10)))
    c.add("ipv4", "ipv4_options_past_end_6in4", eth(ETH_P_IP, raw(bytes(IP(src="10.0.0.1", dst="10.0.0.2", proto=41, ihl=15))[:20] + b"\x01" * 10)))
    c.add("ipv4", "ipv4_df", eth(ETH_P_IP, ipv4(tcp(), 6, flags="DF")))
    c.add("ipv4", "ipv4_proto_hopopts", eth(ETH_P_IP, ipv4(raw(b"\x06\x00" + bytes(6) + tcp().data), 0)))
    c.add("ipv4", "ipv4_proto_fragment", eth(ETH_P_IP, ipv4(raw(b"\x06\x00\x00\x00\x00\x00\x00\x01" + tcp().data), 44)))
    # fragments
    for flags, frag, label in (("MF", 0, "first"), ("MF", 100, "middle"), (0, 100, "last"), ("MF+DF", 0, "first_df")):
        for name, proto, l4 in list(_l4(c))[:3]:
            c.add("ipv4_frag", f"ipv4_frag_{label}_{name}", eth(ETH_P_IP, ipv4(l4, proto, flags=flags, frag=frag)))
    # IPv6 flow labels: the hash path asks to stop at a non-zero one
    for fl in (0, 1, 0xFFFFF):
        c.add("ipv6", f"ipv6_label_{fl:x}_tcp", eth(ETH_P_IPV6, ipv6(tcp(), 6, fl=fl)))
    c.add("ipv6", "ipv6_no_next", eth(ETH_P_IPV6, ipv6(raw(b"z" * 8), 59)))
    # IPv6 extension headers
    ext_stacks = {
        "hbh_tcp": IPv6ExtHdrHopByHop() / TCP(sport=1, dport=2),
        "dst_udp": IPv6ExtHdrDestOpt() / UDP(sport=3, dport=4),
        "routing_tcp": IPv6ExtHdrRouting(addresses=["2001:db8::9"]) / TCP(sport=5, dport=6),
        "hbh_dst_routing_udp": IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting() / UDP(sport=7, dport=8),
        "frag_first_tcp": IPv6ExtHdrFragment(offset=0, m=1, id=5) / TCP(sport=9, dport=10),
        "frag_later_tcp": IPv6ExtHdrFragment(offset=10, m=1, id=5) / TCP(sport=9, dport=10),
        "frag_atomic_udp": IPv6ExtHdrFragment(offset=0, m=0, id=5) / UDP(sport=11, dport=12),
        "hbh_frag_udp": IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(offset=0, m=1) / UDP(sport=13, dport=14),
        "frag_dst_tcp": IPv6ExtHdrFragment(offset=0, m=1) / IPv6ExtHdrDestOpt() / TCP(sport=15, dport=16),
        "hbh_sctp": IPv6ExtHdrHopByHop() / SCTP(sport=17, dport=18),
        "dst_esp": IPv6ExtHdrDestOpt() / ESP(spi=0x12345678, seq=1),
        "hbh_ah": IPv6ExtHdrHopByHop() / AH(spi=0x9ABCDEF0, nh=59, payloadlen=4) / Raw(b"a" * 12),
        "dst_long_tcp": IPv6ExtHdrDestOpt(len=30) / Raw(bytes(30 * 8 + 6)) / TCP(sport=19, dport=20),
        "hbh_ipip": IPv6ExtHdrHopByHop() / IP(src="10.9.0.1", dst="10.9.0.2") / UDP(sport=21, dport=22),
        "dst_gre": IPv6ExtHdrDestOpt(),
    }
    for name, stack in ext_stacks.items():
        first = stack.firstlayer()
        nh = {"IPv6ExtHdrHopByHop": 0, "IPv6ExtHdrDestOpt": 60, "IPv6ExtHdrRouting": 43, "IPv6ExtHdrFragment": 44}[type(first).__name__]
        ext_body = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / stack)[40:]
        if name == "dst_gre":
            inner = gre(ETH_P_IP, ipv4(tcp(), 6, "10.8.0.1", "10.8.0.2"))
            ext_body = bytes([47, 0]) + bytes(6) + inner.data
        c.add("ipv6_ext", f"ipv6_{name}", eth(ETH_P_IPV6, ipv6(raw(ext_body), nh)))
    # TCP data offsets 0..15, with and without the options present
    for doff in range(16):
        c.add("tcp_doff", f"tcp_doff{doff}", eth(ETH_P_IP, ipv4(raw(bytes(TCP(sport=1000 + doff, dport=80, dataofs=doff))), 6)))
        c.add("tcp_doff", f"tcp_doff{doff}_v6", eth(ETH_P_IPV6, ipv6(raw(bytes(TCP(sport=2000 + doff, dport=80, dataofs=doff))), 6)))
        if doff > 5:
            opts = bytes(TCP(sport=3000 + doff, dport=80, dataofs=doff)) + b"\x01" * ((doff - 5) * 4)
            c.add("tcp_doff", f"tcp_doff{doff}_options", eth(ETH_P_IP, ipv4(raw(opts), 6)))
    # VLAN tags: the C dissector hashes the first one (not in the keys)
    c.add("vlan", "vlan_q_ipv4_tcp", eth(ETH_P_8021Q, vlan(ETH_P_IP, ipv4(tcp(), 6))))
    c.add("vlan", "vlan_q_ipv6_udp", eth(ETH_P_8021Q, vlan(ETH_P_IPV6, ipv6(udp(), 17))))
    c.add("vlan", "vlan_ad_q_ipv4", eth(ETH_P_8021AD, vlan(ETH_P_8021Q, vlan(ETH_P_IP, ipv4(tcp(), 6), 7), 100)))
    c.add("vlan", "vlan_q_q_ipv4", eth(ETH_P_8021Q, vlan(ETH_P_8021Q, vlan(ETH_P_IP, ipv4(tcp(), 6), 7), 100)))
    c.add("vlan", "vlan_triple_ipv4", eth(ETH_P_8021AD, vlan(ETH_P_8021Q, vlan(ETH_P_8021Q, vlan(ETH_P_IP, ipv4(tcp(), 6), 3), 2), 1)))
    c.add("vlan", "vlan_q_arp", eth(ETH_P_8021Q, vlan(ETH_P_ARP, Built(bytes(ARP(psrc="10.0.0.1", pdst="10.0.0.2", hwsrc=SRC_MAC, hwdst=DST_MAC))))))
    c.add("vlan", "vlan_zero_tci", eth(ETH_P_8021Q, vlan(ETH_P_IP, ipv4(tcp(), 6), 0)))
    c.add("vlan", "vlan_q_mpls", eth(ETH_P_8021Q, vlan(ETH_P_MPLS_UC, mpls(ipv4(tcp(), 6)))))
    # MPLS: the hashing dissector steps over one label and stops
    c.add("mpls", "mpls_uc_ipv4", eth(ETH_P_MPLS_UC, mpls(ipv4(tcp(), 6))))
    c.add("mpls", "mpls_mc_ipv6", eth(ETH_P_MPLS_MC, mpls(ipv6(udp(), 17))))
    c.add("mpls", "mpls_stack", eth(ETH_P_MPLS_UC, mpls(ipv4(tcp(), 6), (16, 17, 18))))
    c.add("mpls", "mpls_entropy", eth(ETH_P_MPLS_UC, mpls(ipv4(tcp(), 6), (7, 12345, 99))))
    c.add("mpls", "mpls_label_only", eth(ETH_P_MPLS_UC, mpls(EMPTY)))
    c.add("mpls", "mpls_in_ipv4", eth(ETH_P_IP, ipv4(mpls(ipv4(tcp(), 6, "10.7.0.1", "10.7.0.2")), 137)))
    c.add("mpls", "mpls_in_ipv6", eth(ETH_P_IPV6, ipv6(mpls(ipv4(tcp(), 6, "10.7.0.1", "10.7.0.2")), 137)))
    c.add("mpls", "mpls_in_gre", eth(ETH_P_IP, ipv4(gre(ETH_P_MPLS_UC, mpls(ipv4(tcp(), 6, "10.7.0.1", "10.7.0.2"))), 47)))
    # Other Ethernet types: some the kernel dissects further (PPPoE), some not at all
    arp = Built(bytes(ARP(psrc="10.0.0.1", pdst="10.0.0.2", hwsrc=SRC_MAC, hwdst=DST_MAC)))
    c.add("ethertype", "ethertype_arp", eth(ETH_P_ARP, arp))
    c.add("ethertype", "ethertype_rarp", eth(0x8035, arp))
    c.add("ethertype", "ethertype_lldp", eth(0x88CC, raw(bytes(30))))
    c.add("ethertype", "ethertype_unknown", eth(0x1234, ipv4(tcp(), 6)))
    c.add("ethertype", "ethertype_pppoe_ipv4", eth(0x8864, raw(struct.pack("!BBHHH", 0x11, 0, 1, 42, PPP_IP) + ipv4(tcp(), 6).data)))
    c.add("ethertype", "ethertype_pppoe_ipv6", eth(0x8864, raw(struct.pack("!BBHHH", 0x11, 0, 1, 62, PPP_IPV6) + ipv6(udp(), 17).data)))
    c.add("ethertype", "ethertype_ptp", eth(0x88F7, raw(bytes(44))))
    c.add("ethertype", "ethertype_hsr", eth(0x892F, raw(struct.pack("!HHH", 0, 0, ETH_P_IP) + ipv4(tcp(), 6).data)))
    # IP in IP, every way
    c.add("encap", "encap_ipip_tcp", eth(ETH_P_IP, ipv4(ipv4(tcp(), 6, "10.1.0.1", "10.1.0.2"), 4)))
    c.add("encap", "encap_6in4_udp", eth(ETH_P_IP, ipv4(ipv6(udp(), 17, "2001:db8:1::1", "2001:db8:1::2"), 41)))
    c.add("encap", "encap_4in6_tcp", eth(ETH_P_IPV6, ipv6(ipv4(tcp(), 6, "10.1.0.1", "10.1.0.2"), 4)))
    c.add("encap", "encap_6in6_udp", eth(ETH_P_IPV6, ipv6(ipv6(udp(), 17, "2001:db8:1::1", "2001:db8:1::2"), 41)))
    c.add("encap", "encap_4in6_label", eth(ETH_P_IPV6, ipv6(ipv4(tcp(), 6, "10.1.0.1", "10.1.0.2"), 4, fl=0x12345)))
    c.add("encap", "encap_6in4_inner_label", eth(ETH_P_IP, ipv4(ipv6(udp(), 17, "2001:db8:1::1", "2001:db8:1::2", fl=0x54321), 41)))
    c.add("encap", "encap_ipip_inner_frag", eth(ETH_P_IP, ipv4(ipv4(tcp(), 6, "10.1.0.1", "10.1.0.2", flags="MF"), 4)))
    c.add("encap", "encap_ipip_outer_frag", eth(ETH_P_IP, ipv4(ipv4(tcp(), 6, "10.1.0.1", "10.1.0.2"), 4, flags="MF")))
    c.add("encap", "encap_6in4_sctp", eth(ETH_P_IP, ipv4(ipv6(Built(bytes(SCTP(sport=9, dport=10))), 132, "2001:db8:1::1", "2001:db8:1::2"), 41)))
    # GRE: every combination of C, K (zero and non-zero key), S and R, over every payload
    inner4 = ipv4(tcp(4321, 22), 6, "10.2.0.1", "10.2.0.2")
    inner6 = ipv6(udp(6000, 7000), 17, "2001:db8:2::1", "2001:db8:2::2")
    payloads = {
        "ipv4": (ETH_P_IP, inner4),
        "ipv6": (ETH_P_IPV6, inner6),
        "teb": (ETH_P_TEB, eth(ETH_P_IP, inner4)),
        "mpls": (ETH_P_MPLS_UC, mpls(inner4)),
        "arp": (ETH_P_ARP, arp),
        "unknown": (0x1234, inner4),
    }
    for bits in range(16):
        cflag, rflag, kflag, sflag = (bool(bits >> i & 1) for i in range(4))
        for key in (0, 0xABCD0123) if kflag else (None,):
            for pname, (proto, inner) in payloads.items():
                name = f"gre_{'C' * cflag}{'R' * rflag}{'K' * kflag}{'S' * sflag}{'' if key is None else ('k0' if key == 0 else 'k')}_{pname}"
                c.add("gre", name, eth(ETH_P_IP, ipv4(gre(proto, inner, c=cflag, r=rflag, k=key, s=sflag), 47)))
    for version in range(2, 8):
        c.add("gre", f"gre_version{version}", eth(ETH_P_IP, ipv4(gre(ETH_P_IP, inner4, version=version), 47)))
    c.add("gre", "gre_teb_vlan", eth(ETH_P_IP, ipv4(gre(ETH_P_TEB, eth(ETH_P_8021Q, vlan(ETH_P_IP, inner4))), 47)))
    c.add("gre", "gre_over_ipv6", eth(ETH_P_IPV6, ipv6(gre(ETH_P_IP, inner4), 47)))
    c.add("gre", "gre_over_ipv6_teb_ipv6", eth(ETH_P_IPV6, ipv6(gre(ETH_P_TEB, eth(ETH_P_IPV6, inner6)), 47)))
    # GRE version 1: PPTP (PPP, K set; the key's low half is the call id)
    for call_id in (0, 0x1234):
        for s, a in ((False, False), (True, False), (True, True), (False, True)):
            for pname, pproto, pinner in (("ip", PPP_IP, inner4), ("ipv6", PPP_IPV6, inner6), ("lcp", 0xC021, raw(bytes(8)))):
                key = (len(pinner.data) + 4) << 16 | call_id
                name = f"pptp_call{call_id:x}{'_S' * s}{'_A' * a}_{pname}"
                c.add("pptp", name, eth(ETH_P_IP, ipv4(gre(GRE_PROTO_PPP, ppp(pproto, pinner), k=key, s=s, a=a, version=1), 47)))
    c.add("pptp", "gre_v1_no_key", eth(ETH_P_IP, ipv4(gre(GRE_PROTO_PPP, ppp(PPP_IP, inner4), version=1), 47)))
    c.add("pptp", "gre_v1_not_ppp", eth(ETH_P_IP, ipv4(gre(ETH_P_IPV6, inner6, k=5, version=1), 47)))
    c.add("pptp", "gre_v1_not_ppp_ipv4", eth(ETH_P_IP, ipv4(gre(ETH_P_IP, inner4, k=0, version=1), 47)))
    c.add("pptp", "pptp_csum", eth(ETH_P_IP, ipv4(gre(GRE_PROTO_PPP, ppp(PPP_IP, inner4), c=True, k=7 << 16, version=1), 47)))
    # Nesting, to the kernel's limit of 15 more headers and past it
    for depth in range(1, 21):
        chain = ipv4(tcp(100 + depth, 200), 6, "10.3.0.1", f"10.3.0.{depth}")
        for level in range(depth):
            chain = ipv4(chain, 4, "10.4.0.1", f"10.4.{level}.1")
        c.add("nesting", f"nest_ipip_{depth}", eth(ETH_P_IP, chain))
        chain6: Built = ipv6(udp(100 + depth, 300), 17, "2001:db8:3::1", f"2001:db8:3::{depth:x}")
        for level in range(depth):
            chain6 = ipv4(chain6, 41, "10.5.0.1", f"10.5.{level}.1") if level % 2 == 0 else ipv6(chain6, 4, "2001:db8:5::1", f"2001:db8:5::{level:x}")
        c.add("nesting", f"nest_4in6in4_{depth}", eth(ETH_P_IP if depth % 2 else ETH_P_IPV6, chain6))
        chain_gre = ipv4(tcp(100 + depth, 400), 6, "10.6.0.1", f"10.6.0.{depth}")
        for level in range(depth):
            chain_gre = ipv4(gre(ETH_P_IP, chain_gre), 47, "10.6.1.1", f"10.6.1.{level + 1}")
        c.add("nesting", f"nest_gre_{depth}", eth(ETH_P_IP, chain_gre))
        stacked = tcp(100 + depth, 500)
        nh = 6
        for level in range(depth):
            stacked = stacked.under(bytes([nh, 0]) + bytes(6))
            nh = 0 if level % 2 == 0 else 60
        c.add("nesting", f"nest_ipv6_ext_{depth}", eth(ETH_P_IPV6, ipv6(stacked, nh)))
    # Truncations: each base stack cut at every length inside it
    bases = {
        "ipv4_tcp": eth(ETH_P_IP, ipv4(tcp(), 6)),
        "ipv4_options_udp": eth(ETH_P_IP, ipv4(udp(1, 2), 17, options=[b"\x01" * 8])),
        "ipv6_tcp": eth(ETH_P_IPV6, ipv6(tcp(), 6)),
        "ipv6_hbh_frag_dst_udp": eth(
            ETH_P_IPV6,
            ipv6(raw(bytes(IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(offset=0, m=0) / IPv6ExtHdrDestOpt() / UDP(sport=1, dport=2))[40:]), 0),
        ),
        "ipv4_sctp": eth(ETH_P_IP, ipv4(Built(bytes(SCTP(sport=77, dport=88))), 132)),
        "ipv6_ah": eth(ETH_P_IPV6, ipv6(Built(bytes(AH(spi=0x01020304, nh=59, payloadlen=4) / Raw(b"a" * 12))), 51)),
        "ipip_tcp": eth(ETH_P_IP, ipv4(ipv4(tcp(), 6, "10.1.0.1", "10.1.0.2"), 4)),
        "6in4_udp": eth(ETH_P_IP, ipv4(ipv6(udp(), 17, "2001:db8:1::1", "2001:db8:1::2"), 41)),
        "4in6_tcp": eth(ETH_P_IPV6, ipv6(ipv4(tcp(), 6, "10.1.0.1", "10.1.0.2"), 4)),
        "gre_csum_key_seq_ipv6": eth(ETH_P_IP, ipv4(gre(ETH_P_IPV6, inner6, c=True, k=0x11223344, s=True), 47)),
        "gre_key0_ipv6": eth(ETH_P_IP, ipv4(gre(ETH_P_IPV6, inner6, k=0), 47)),
        "gre_csum_seq_teb_ipv6": eth(ETH_P_IP, ipv4(gre(ETH_P_TEB, eth(ETH_P_IPV6, inner6), c=True, s=True), 47)),
        "pptp_seq_ack_ipv6": eth(ETH_P_IP, ipv4(gre(GRE_PROTO_PPP, ppp(PPP_IPV6, inner6), k=0x00400000, s=True, a=True, version=1), 47)),
        "vlan_ad_q_ipv4_tcp": eth(ETH_P_8021AD, vlan(ETH_P_8021Q, vlan(ETH_P_IP, ipv4(tcp(), 6), 7), 100)),
        "mpls_in_ipv4": eth(ETH_P_IP, ipv4(mpls(ipv4(tcp(), 6, "10.7.0.1", "10.7.0.2")), 137)),
    }
    for name, built in bases.items():
        for end in range(15, len(built.data)):
            c.add("trunc", f"trunc_{name}_{end}", Built(built.data[:end], built.extras))


def corpus() -> list[CorpusFrame]:
    """The whole corpus, in a fixed order (seeded, so the same on every run)."""
    c = _Corpus()
    _build(c)
    names = Counter(f.name for f in c.frames)
    dup = [n for n, k in names.items() if k > 1]
    if dup:
        raise ValueError(f"corpus frame names repeat: {dup[:5]}")
    return c.frames


@dataclass
class Tally:
    """Agreement counts of one dissector over one category: in-keys frames, out-of-keys frames, frames not run."""

    in_keys: int = 0
    in_keys_same: int = 0
    out_keys: int = 0
    out_keys_same: int = 0
    not_run: int = 0
    differ: list[str] = field(default_factory=list)  # names of in-keys frames that hash differently

    def cell(self) -> str:
        """`same/in-keys (+same/out-of-keys)` for a table."""
        text = f"{self.in_keys_same}/{self.in_keys}"
        if self.out_keys:
            text += f" (+{self.out_keys_same}/{self.out_keys})"
        return text


def tally(frames: Sequence[CorpusFrame], same: Iterable[bool | None]) -> dict[str, Tally]:
    """Per category (and "all"): how many frames hash alike, in keys and out of keys."""
    out: dict[str, Tally] = defaultdict(Tally)
    for frame, agree in zip(frames, same, strict=True):
        for key in (frame.category, "all"):
            t = out[key]
            if agree is None:
                t.not_run += 1
            elif frame.in_keys:
                t.in_keys += 1
                t.in_keys_same += agree
                if not agree:
                    t.differ.append(frame.name)
            else:
                t.out_keys += 1
                t.out_keys_same += agree
    return dict(out)
