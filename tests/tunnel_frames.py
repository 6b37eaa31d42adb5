"""Tunnel frames for samples/tunnels.py: each tunnel lib.py follows, with where its headers are and the inner flow's keys.

Built with scapy (explicit MACs on every Ethernet header, inner ones too):
VXLAN, VXLAN-GPE, Geneve (with options), GTP-U (with the optional word and
extension header chains), MPLS (over Ethernet, GRE, IP and UDP), and GUE,
which scapy has no layer for (its 4-byte header is packed here, as
draft-ietf-intarea-gue lays it out). Each `Tunnel` says where the outer UDP
header is, from which length on the tunnel is followed, where the inner IP
and transport headers are, and which inner flow the keys must then hold;
`NotFollowed` frames are datagrams to a tunnel port that carry no packet the
sample follows, which it must dissect exactly as samples/full.py does.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from frames import DST_MAC, SRC_MAC
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.contrib.gtp import GTP_PDCP_PDU_ExtensionHeader, GTP_U_Header, GTP_UDPPort_ExtensionHeader, GTPPDUSessionContainer
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

if TYPE_CHECKING:
    from paged import Frame

__all__ = ["Tunnel", "NotFollowed", "TUNNELS", "NOT_FOLLOWED", "PORTS", "inner_v4", "inner_v6", "gue0", "outer_udp"]

# The IANA destination ports samples/tunnels.py follows.
PORTS = {"vxlan": 4789, "vxlan_gpe": 4790, "geneve": 6081, "gtpu": 2152, "gue": 6080, "mpls_udp": 6635}

ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_UC, ETH_P_TEB = 0x0800, 0x86DD, 0x8847, 0x6558
IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_MPLS = 4, 41, 137
INNER_MAC_SRC, INNER_MAC_DST = "02:00:00:00:01:01", "02:00:00:00:01:02"
OUTER_SPORT = 49152  # one source port for every frame: the entropy an encapsulator might have added is absent


def eth(ethertype: int | None = None) -> ScapyPacket:
    """An outer Ethernet header with explicit MACs."""
    if ethertype is None:
        return Ether(src=SRC_MAC, dst=DST_MAC)
    return Ether(src=SRC_MAC, dst=DST_MAC, type=ethertype)


def inner_eth() -> ScapyPacket:
    """An inner Ethernet header (inside VXLAN, Geneve, VXLAN-GPE) with explicit MACs."""
    return Ether(src=INNER_MAC_SRC, dst=INNER_MAC_DST)


def inner_v4(i: int = 0) -> ScapyPacket:
    """Inner flow i over IPv4: TCP 192.168.x.y:1000+i -> 172.16.0.1:80."""
    return IP(src=f"192.168.{i // 250}.{1 + i % 250}", dst="172.16.0.1") / TCP(sport=1000 + i, dport=80) / Raw(b"inner")


def inner_v6(i: int = 0) -> ScapyPacket:
    """Inner flow i over IPv6: UDP 2001:db8:1::i:3333 -> 2001:db8:2::2:4444."""
    return IPv6(src=f"2001:db8:1::{i + 1:x}", dst="2001:db8:2::2") / UDP(sport=3333, dport=4444 + i) / Raw(b"inner")


def outer_udp(dport: int, *, sport: int = OUTER_SPORT, v6: bool = False) -> ScapyPacket:
    """The outer Ethernet, IP and UDP headers of a tunnel between two hosts."""
    ip = IPv6(src="2001:db8::a", dst="2001:db8::b") if v6 else IP(src="10.0.0.1", dst="10.0.0.2")
    return eth() / ip / UDP(sport=sport, dport=dport)


def gue0(proto: int, ext: bytes = b"", *, control: bool = False) -> bytes:
    """A GUE variant 0 header: version 0, the C flag, hlen = the extension fields' words, the payload's IP protocol, no flags."""
    assert len(ext) % 4 == 0 and len(ext) // 4 < 32
    return struct.pack("!BBH", (0 << 6) | (int(control) << 5) | (len(ext) // 4), proto, 0) + ext


def _at(packet: ScapyPacket, layer: type[ScapyPacket], nth: int = 1) -> int:
    """The offset of the nth `layer` in the built packet."""
    found = packet.getlayer(layer, nth)
    assert found is not None, (layer, nth)
    return len(bytes(packet)) - len(bytes(found))


@dataclass(frozen=True)
class Tunnel:
    """A frame whose tunnel (or MPLS stack) the sample follows to an inner flow.

    `udp` is the outer UDP header (None: MPLS over Ethernet, GRE or IP).
    From `followed` bytes on, the tunnel is followed: its header, options and
    extension headers, an inner Ethernet header, and (where the inner type
    comes from the inner packet's first byte) that byte are in the frame;
    for an MPLS stack, from its first label. `inner_l3` and `inner_l4` are
    the inner IP and transport headers. `nested`: a tunnel inside a tunnel
    (the cuts in between are those of the outer one's inner packet).
    """

    name: str
    frame: bytes
    udp: int | None
    followed: int
    inner_l3: int
    inner_l4: int
    n_proto: int
    ip_proto: int
    src: str
    dst: str
    sport: int
    dport: int
    encap: bool = True
    stack: bool = False
    nested: bool = False


def _tunnel(name: str, packet: ScapyPacket, inner: ScapyPacket, *, follow: str = "header", encap: bool = True, nested_at: int | None = None) -> Tunnel:
    """A Tunnel from a built packet whose last IP or IPv6 header starts `inner`.

    `follow` says from which length on the tunnel is followed: "header" at
    the inner IP header, "nibble" one byte into it (GTP-U: its version nibble
    is the type), "gue1" four bytes into it (GUE variant 1: the IP header is
    where GUE's 4 bytes would be), "vlan" at an inner VLAN tag, "stack" at
    the first MPLS label. `nested_at`: where the outer of two tunnels is
    followed (its inner packet is the inner tunnel's outer one).
    """
    v4 = isinstance(inner, IP)
    l3_cls = IP if v4 else IPv6
    count = sum(1 for layer in _layers(packet) if isinstance(layer, l3_cls))
    inner_l3 = _at(packet, l3_cls, count)
    l4 = inner[TCP] if inner.haslayer(TCP) else inner[UDP]
    followed = {
        "header": lambda: inner_l3,
        "nibble": lambda: inner_l3 + 1,
        "gue1": lambda: inner_l3 + 4,
        "vlan": lambda: _at(packet, Dot1Q),
        "stack": lambda: _at(packet, MPLS),
    }[follow]() if nested_at is None else nested_at
    src, dst = (inner[IP].src, inner[IP].dst) if v4 else (inner[IPv6].src, inner[IPv6].dst)
    udp = _at(packet, UDP) if packet.haslayer(UDP) else len(packet)  # the outer UDP header, if the first is not the inner one
    return Tunnel(
        name, bytes(packet), udp if udp < inner_l3 else None,
        followed, inner_l3, inner_l3 + (20 if v4 else 40), ETH_P_IP if v4 else ETH_P_IPV6, 6 if isinstance(l4, TCP) else 17,
        str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst)), int(l4.sport), int(l4.dport), encap, follow == "stack", nested_at is not None,
    )


def _layers(packet: ScapyPacket) -> list[ScapyPacket]:
    """The layers of a packet, outermost first."""
    out = []
    layer: ScapyPacket = packet
    while layer:
        out.append(layer)
        layer = layer.payload
    return out


def _tunnels() -> list[Tunnel]:
    v4, v6 = inner_v4(0), inner_v6(0)
    p = PORTS
    gtp = outer_udp(p["gtpu"], sport=p["gtpu"])
    gpe = outer_udp(p["vxlan_gpe"])
    return [
        _tunnel("vxlan_ipv4", outer_udp(p["vxlan"]) / VXLAN(vni=42) / inner_eth() / v4, v4),
        _tunnel("vxlan_ipv6", outer_udp(p["vxlan"]) / VXLAN(vni=42) / inner_eth() / v6, v6),
        _tunnel("vxlan_over_ipv6", outer_udp(p["vxlan"], v6=True) / VXLAN(vni=7) / inner_eth() / v4, v4),
        _tunnel("vxlan_gbp_flags", outer_udp(p["vxlan"]) / VXLAN(flags="Instance+G", gpid=5, vni=9) / inner_eth() / v4, v4),
        _tunnel("vxlan_inner_vlan", outer_udp(p["vxlan"]) / VXLAN(vni=42) / inner_eth() / Dot1Q(vlan=3) / v4, v4, follow="vlan"),
        _tunnel("gpe_ipv4", gpe / VXLAN(flags="Instance+NextProtocol", NextProtocol=1, vni=1) / v4, v4),
        _tunnel("gpe_ipv6", gpe / VXLAN(flags="Instance+NextProtocol", NextProtocol=2, vni=1) / v6, v6),
        _tunnel("gpe_ethernet", gpe / VXLAN(flags="Instance+NextProtocol", NextProtocol=3, vni=1) / inner_eth() / v6, v6),
        _tunnel("geneve_teb", outer_udp(p["geneve"]) / GENEVE(proto=ETH_P_TEB, vni=5) / inner_eth() / v4, v4),
        _tunnel("geneve_ipv4", outer_udp(p["geneve"]) / GENEVE(proto=ETH_P_IP, vni=5) / v4, v4),
        _tunnel("geneve_ipv6_options", outer_udp(p["geneve"]) / GENEVE(
            proto=ETH_P_IPV6, vni=5, critical=1,
            options=[GeneveOptions(classid=0x0102, type=0x80, data=b"abcdefgh"), GeneveOptions(classid=0xFFFF, type=1, data=b"1234")],
        ) / v6, v6),
        _tunnel("geneve_teb_options_over_ipv6", outer_udp(p["geneve"], v6=True) / GENEVE(
            proto=ETH_P_TEB, vni=5, options=[GeneveOptions(classid=0x0103, type=2, data=b"x" * 12)],
        ) / inner_eth() / v4, v4),
        _tunnel("geneve_mpls", outer_udp(p["geneve"]) / GENEVE(proto=ETH_P_MPLS_UC, vni=5) / MPLS(label=16, s=1) / v4, v4, follow="stack"),
        _tunnel("gtpu_ipv4", gtp / GTP_U_Header(teid=0x1234, gtp_type=255) / v4, v4, follow="nibble"),
        _tunnel("gtpu_ipv6", gtp / GTP_U_Header(teid=0x1234, gtp_type=255) / v6, v6, follow="nibble"),
        _tunnel("gtpu_seq", gtp / GTP_U_Header(teid=1, gtp_type=255, S=1, seq=77) / v4, v4, follow="nibble"),
        _tunnel("gtpu_npdu", gtp / GTP_U_Header(teid=1, gtp_type=255, PN=1, npdu=3) / v6, v6, follow="nibble"),
        _tunnel("gtpu_pdu_session", gtp / GTP_U_Header(teid=1, gtp_type=255, E=1, next_ex=0x85) / GTPPDUSessionContainer(QFI=9) / v4,
                v4, follow="nibble"),
        _tunnel("gtpu_three_ext", gtp / GTP_U_Header(teid=1, gtp_type=255, E=1, S=1, seq=5, next_ex=0x40)
                / GTP_UDPPort_ExtensionHeader(udp_port=5000, next_ex=0xC0) / GTP_PDCP_PDU_ExtensionHeader(pdcp_pdu=9, next_ex=0x85)
                / GTPPDUSessionContainer(QFI=1) / v6, v6, follow="nibble"),
        _tunnel("gtpu_ext_ignored_without_e", gtp / GTP_U_Header(teid=1, gtp_type=255, S=1, seq=5, next_ex=0x85) / v4, v4, follow="nibble"),
        _tunnel("gtpu_over_ipv6", outer_udp(p["gtpu"], sport=p["gtpu"], v6=True) / GTP_U_Header(teid=9, gtp_type=255) / v4, v4, follow="nibble"),
        _tunnel("gue0_ipip", outer_udp(p["gue"]) / Raw(gue0(IPPROTO_IPIP)) / v4, v4),
        _tunnel("gue0_ipv6_extension_fields", outer_udp(p["gue"]) / Raw(gue0(IPPROTO_IPV6, b"\x80\x00\x00\x00" + b"\xaa" * 8)) / v6, v6),
        _tunnel("gue1_ipv4", outer_udp(p["gue"]) / v4, v4, follow="gue1"),
        _tunnel("gue1_ipv6", outer_udp(p["gue"]) / v6, v6, follow="gue1"),
        _tunnel("mpls_udp_one", outer_udp(p["mpls_udp"]) / MPLS(label=100, s=1) / v4, v4, follow="stack"),
        _tunnel("mpls_udp_three", outer_udp(p["mpls_udp"]) / MPLS(label=100, s=0) / MPLS(label=7, s=0) / MPLS(label=1234, s=1) / v6,
                v6, follow="stack"),
        _tunnel("mpls_eth_ipv4", eth(ETH_P_MPLS_UC) / MPLS(label=100, s=1) / v4, v4, follow="stack", encap=False),
        _tunnel("mpls_eth_two_ipv6", eth(ETH_P_MPLS_UC) / MPLS(label=100, s=0) / MPLS(label=2, s=1) / v6, v6, follow="stack", encap=False),
        _tunnel("mpls_eth_explicit_null", eth(ETH_P_MPLS_UC) / MPLS(label=0, s=1) / v4, v4, follow="stack", encap=False),
        _tunnel("mpls_gre", eth() / IP(src="10.0.0.1", dst="10.0.0.2") / GRE(proto=ETH_P_MPLS_UC) / MPLS(label=5, s=0) / MPLS(label=6, s=1) / v4,
                v4, follow="stack"),
        _tunnel("mpls_in_ip", eth() / IP(src="10.0.0.1", dst="10.0.0.2", proto=IPPROTO_MPLS) / MPLS(label=5, s=1) / v6, v6,
                follow="stack", encap=False),
        _tunnel("vxlan_in_gtpu", gtp / GTP_U_Header(teid=1, gtp_type=255) / IP(src="10.9.0.1", dst="10.9.0.2")
                / UDP(sport=40000, dport=p["vxlan"]) / VXLAN(vni=1) / inner_eth() / v4, v4,
                nested_at=14 + 20 + 8 + 8 + 1),  # GTP-U's inner IPv4 header, by its version nibble
    ]


@dataclass(frozen=True)
class NotFollowed:
    """A datagram to a tunnel port that is not followed: the sample must dissect it as samples/full.py does."""

    name: str
    frame: bytes
    why: str


def _not_followed() -> list[NotFollowed]:
    v4 = inner_v4(0)
    p = PORTS
    gtp = outer_udp(p["gtpu"], sport=p["gtpu"])
    return [
        NotFollowed("vxlan_no_i_flag", bytes(outer_udp(p["vxlan"]) / VXLAN(flags=0, vni=42) / inner_eth() / v4), "the I flag is clear"),
        NotFollowed("gpe_nsh", bytes(outer_udp(p["vxlan_gpe"]) / VXLAN(flags="Instance+NextProtocol", NextProtocol=4) / Raw(b"\0" * 24)), "NSH"),
        NotFollowed("gpe_no_p_flag", bytes(outer_udp(p["vxlan_gpe"]) / Raw(b"\x08\0\0\x01\0\0\x01\0") / v4), "the P flag is clear"),
        NotFollowed("gpe_version_1", bytes(outer_udp(p["vxlan_gpe"]) / Raw(b"\x1c\0\0\x01\0\0\x01\0") / v4), "version 1"),
        NotFollowed("gpe_oam", bytes(outer_udp(p["vxlan_gpe"]) / VXLAN(flags="Instance+NextProtocol+OAM", NextProtocol=1) / v4), "an OAM packet"),
        NotFollowed("geneve_oam", bytes(outer_udp(p["geneve"]) / GENEVE(proto=ETH_P_IP, oam=1) / v4), "a control packet"),
        NotFollowed("geneve_version_1", bytes(outer_udp(p["geneve"]) / GENEVE(version=1, proto=ETH_P_IP) / v4), "version 1"),
        NotFollowed("geneve_other_proto", bytes(outer_udp(p["geneve"]) / GENEVE(proto=0x894F) / Raw(b"\0" * 24)), "NSH inside Geneve"),
        NotFollowed("geneve_options_cut", bytes(outer_udp(p["geneve"]) / Raw(b"\x05\x00\x08\x00\0\0\x05\0" + b"\0" * 12)), "options past the end"),
        NotFollowed("gtpu_echo", bytes(gtp / GTP_U_Header(teid=0, gtp_type=1, S=1, seq=1)), "an echo request"),
        NotFollowed("gtpu_end_marker", bytes(gtp / GTP_U_Header(teid=5, gtp_type=254)), "an end marker"),
        NotFollowed("gtpu_prime", bytes(gtp / GTP_U_Header(teid=5, gtp_type=255, PT=0) / v4), "GTP' (protocol type 0)"),
        NotFollowed("gtpu_version_2", bytes(gtp / Raw(b"\x50\xff\x00\x28\0\0\0\x01") / v4), "version 2"),
        NotFollowed("gtpu_ext_length_0", bytes(gtp / Raw(b"\x34\xff\x00\x30\0\0\0\x01" + b"\0\0\0\x85" + b"\x00\x00\x00\x00") / v4),
                    "an extension header of length 0"),
        NotFollowed("gtpu_nine_ext", bytes(gtp / Raw(b"\x34\xff\x00\x30\0\0\0\x01" + b"\0\0\0\x85" + b"\x01\x00\x00\x85" * 8
                                                     + b"\x01\x00\x00\x00") / v4), "nine extension headers, one more than GTPU_MAX_EXT"),
        NotFollowed("gtpu_ethernet_pdu", bytes(gtp / GTP_U_Header(teid=5, gtp_type=255) / inner_eth() / v4), "an Ethernet PDU (no IP version nibble)"),
        NotFollowed("gtpu_empty", bytes(gtp / GTP_U_Header(teid=5, gtp_type=255)), "a G-PDU with no T-PDU"),
        NotFollowed("gue_control", bytes(outer_udp(p["gue"]) / Raw(gue0(0, control=True)) / Raw(b"\0" * 8)), "a control message"),
        NotFollowed("gue_other_proto", bytes(outer_udp(p["gue"]) / Raw(gue0(6)) / TCP()), "TCP directly (not followed)"),
        NotFollowed("gue_variant_2", bytes(outer_udp(p["gue"]) / Raw(b"\x80\x04\0\0") / v4), "variant 2"),
        NotFollowed("gue_ext_cut", bytes(outer_udp(p["gue"]) / Raw(b"\x04\x04\0\0" + b"\0" * 8)), "extension fields past the end"),
        NotFollowed("vxlan_source_port", bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=p["vxlan"], dport=5000)
                                              / VXLAN(vni=1) / inner_eth() / v4), "4789 as the source port only"),
        NotFollowed("vxlan_fragment", bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / UDP(sport=1, dport=p["vxlan"])
                                           / VXLAN(vni=1) / inner_eth() / v4), "a first fragment: no ports, no tunnel"),
        NotFollowed("tcp_to_vxlan_port", bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=p["vxlan"])
                                              / VXLAN(vni=1) / inner_eth() / v4), "TCP, not UDP"),
    ]


TUNNELS: list[Tunnel] = _tunnels()
NOT_FOLLOWED: list[NotFollowed] = _not_followed()


def flows(kind: str, n: int) -> list[bytes]:
    """n frames, inner flows 0..n-1 inside one tunnel of `kind` between two hosts: outer addresses and ports all fixed."""
    p = PORTS

    def one(i: int) -> ScapyPacket:
        v4 = inner_v4(i)
        match kind:
            case "gtpu":
                return outer_udp(p["gtpu"], sport=p["gtpu"]) / GTP_U_Header(teid=0x100, gtp_type=255) / v4
            case "vxlan":
                return outer_udp(p["vxlan"]) / VXLAN(vni=42) / inner_eth() / v4
            case "geneve":
                return outer_udp(p["geneve"]) / GENEVE(proto=ETH_P_TEB, vni=42) / inner_eth() / v4
            case "vxlan_gpe":
                return outer_udp(p["vxlan_gpe"]) / VXLAN(flags="Instance+NextProtocol", NextProtocol=1, vni=42) / v4
            case "gue":
                return outer_udp(p["gue"]) / Raw(gue0(IPPROTO_IPIP)) / v4
            case "mpls_udp":
                return outer_udp(p["mpls_udp"]) / MPLS(label=100, s=0) / MPLS(label=200, s=1) / v4
            case "mpls_eth":
                return eth(ETH_P_MPLS_UC) / MPLS(label=100, s=0) / MPLS(label=200, s=1) / v4
        raise ValueError(f"unknown tunnel kind {kind!r}")

    return [bytes(one(i)) for i in range(n)]


def paged_frames() -> list[Frame]:
    """Tunnel frames for tests/paged.py's receive path (unicast to its tap), each a different inner flow."""
    from paged import TAP_MAC, Frame

    chosen = ["vxlan_ipv4", "vxlan_over_ipv6", "geneve_ipv6_options", "gtpu_three_ext", "gtpu_pdu_session", "gue0_ipip",
              "mpls_udp_three", "mpls_eth_two_ipv6"]
    by_name = {t.name: t for t in TUNNELS}
    out: list[Frame] = []
    for i, name in enumerate(chosen):
        t = by_name[name]
        # Another inner flow per frame: the inner ports' high byte (sport is never 0 here).
        data = bytearray(t.frame)
        data[t.inner_l4] = (data[t.inner_l4] + i) & 0xFF
        data[:6] = bytes.fromhex(TAP_MAC.replace(":", ""))
        l3_end = 14 + (20 if data[12:14] == b"\x08\x00" else 40 if data[12:14] == b"\x86\xdd" else 4)
        out.append(Frame(name, bytes(data), 14, l3_end, t.inner_l4))
    return out
