"""Reusable protocol parsers, written in pyfd's own restricted Python.

Each parser reads one header at `keys.thoff`, fills in what it learns, moves
`keys.thoff` past the header, and returns a pair `(verdict, proto)`:

- `verdict` is `BPF_OK` or `BPF_DROP` when dissection is over, or `NEXT` when
  another header follows at `keys.thoff`;
- `proto` is then that header's Ethernet type (`ETH_P_IP` after IP-in-IP,
  whatever GRE carries, the inner type after a VLAN tag).

A dissector composes them in a bounded loop; the compiler inlines every call
and compiles the loop once, as a loop the verifier walks pass by pass, with
the bounds checks it needs:

    @dissector
    def full(pkt: Packet, keys: BpfFlowKeys) -> int:
        proto: u16 = keys.n_proto
        for _ in range(lib.MAX_HEADERS):
            verdict, proto = lib.network(pkt, keys, proto)
            if verdict != lib.NEXT:
                return verdict
        return BPF_DROP

A short packet anywhere ends the dissector with BPF_DROP (that is what
`pkt.header` does), leaving the keys as they were filled so far. The parsers
follow the kernel's reference BPF dissector
(tools/testing/selftests/bpf/progs/bpf_flow.c) field for field; where they
differ, the parser's docstring says how and why.
"""

from __future__ import annotations

from .constants import (
    BPF_DROP, BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG, BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP,
    BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL, BPF_OK, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6,
    ETH_P_MPLS_MC, ETH_P_MPLS_UC, ETH_P_TEB, GRE_MIN_HLEN, IP_MF, IP_OFFSET, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT,
    IPPROTO_GRE, IPPROTO_HOPOPTS, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_ROUTING, IPPROTO_TCP,
    IPPROTO_UDP, IPPROTO_UDPLITE, IPV6_HLEN, VLAN_HLEN,
)
from .headers import GRE, ICMP, IPv4, IPv6, IPv6Frag, IPv6Opt, MPLS, TCP, UDP, VLAN, Ethernet
from .keys import BpfFlowKeys
from .packet import Packet
from .types import u8, u16

# The verdict that says: another header follows at keys.thoff.
NEXT = 1

# How many network headers one packet may stack (VLAN tags count as one, each
# encapsulation as one more): the reference is bounded by its tail-call limit
# (33), this one by an explicit count that keeps the program small.
MAX_HEADERS = 4

# How many IPv6 extension headers may precede the transport header.
MAX_IPV6_EXT = 4

__all__ = [
    "NEXT", "MAX_HEADERS", "MAX_IPV6_EXT", "network", "vlan", "mpls", "ipv4", "ipv6", "ipv6_ext", "transport",
    "encapsulated", "gre", "tcp", "udp", "icmp",
]


def network(pkt: Packet, keys: BpfFlowKeys, proto: u16) -> tuple[u8, u16]:
    """One network-layer header, chosen by its Ethernet type `proto`."""
    if proto == ETH_P_IP:
        return ipv4(pkt, keys)
    if proto == ETH_P_IPV6:
        return ipv6(pkt, keys)
    if proto == ETH_P_8021Q or proto == ETH_P_8021AD:
        return vlan(pkt, keys, proto)
    if proto == ETH_P_MPLS_UC or proto == ETH_P_MPLS_MC:
        return mpls(pkt, keys)
    return BPF_DROP, 0  # an Ethernet type the dissector does not know


def vlan(pkt: Packet, keys: BpfFlowKeys, proto: u16) -> tuple[u8, u16]:
    """One 802.1Q tag, or an 802.1ad tag followed by an 802.1Q tag; nothing deeper.

    `keys.nhoff` moves past the tags and `keys.n_proto` becomes the inner
    Ethernet type, as when the kernel itself strips the tags.
    """
    if proto == ETH_P_8021AD:
        outer = pkt.header(VLAN, keys.thoff)
        if outer.proto != ETH_P_8021Q:
            return BPF_DROP, 0
        keys.nhoff += VLAN_HLEN
        keys.thoff += VLAN_HLEN
    tag = pkt.header(VLAN, keys.thoff)
    keys.nhoff += VLAN_HLEN
    keys.thoff += VLAN_HLEN
    if tag.proto == ETH_P_8021Q or tag.proto == ETH_P_8021AD:
        return BPF_DROP, 0  # a third tag, or two 802.1Q tags
    keys.n_proto = tag.proto
    return NEXT, tag.proto


def mpls(pkt: Packet, keys: BpfFlowKeys) -> tuple[u8, u16]:
    """An MPLS label stack: the first label must be there; nothing under it is dissected."""
    pkt.header(MPLS, keys.thoff)
    return BPF_OK, 0


def ipv4(pkt: Packet, keys: BpfFlowKeys) -> tuple[u8, u16]:
    """IPv4, with options; a fragment ends dissection unless it is a first one and PARSE_1ST_FRAG is set."""
    ip = pkt.header(IPv4, keys.thoff)
    if ip.ihl < 5:
        return BPF_DROP, 0
    keys.addr_proto = ETH_P_IP
    keys.ipv4_src = ip.saddr
    keys.ipv4_dst = ip.daddr
    keys.ip_proto = ip.protocol
    keys.thoff += ip.ihl * 4
    if not pkt.has(keys.thoff):  # the options must be in the packet too
        return BPF_DROP, 0
    if ip.frag_off & (IP_MF | IP_OFFSET):
        keys.is_frag = 1
        if ip.frag_off & IP_OFFSET:
            return BPF_OK, 0  # later fragments carry no transport header
        keys.is_first_frag = 1
        if not keys.flags & BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG:
            return BPF_OK, 0
    return transport(pkt, keys, ip.protocol)


def ipv6(pkt: Packet, keys: BpfFlowKeys) -> tuple[u8, u16]:
    """IPv6: addresses, flow label, then extension headers and the transport header.

    With BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL it stops at a non-zero flow
    label (a zero label goes on to the ports), as the reference does.
    """
    ip6 = pkt.header(IPv6, keys.thoff)
    keys.addr_proto = ETH_P_IPV6
    keys.ipv6_src = ip6.saddr
    keys.ipv6_dst = ip6.daddr
    keys.thoff += IPV6_HLEN
    keys.ip_proto = ip6.nexthdr
    keys.flow_label = ip6.flow_label
    if keys.flags & BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL and ip6.flow_label != 0:
        return BPF_OK, 0
    return ipv6_ext(pkt, keys, ip6.nexthdr)


def ipv6_ext(pkt: Packet, keys: BpfFlowKeys, nexthdr: u8) -> tuple[u8, u16]:
    """Skip IPv6 extension headers (at most MAX_IPV6_EXT), then the transport header.

    Hop-by-hop, routing and destination options are skipped by their length.
    The reference skips only hop-by-hop and destination options and drops a
    packet with a routing header; a routing header has the same length field,
    and the kernel's own dissector skips it, so this one does too.
    """
    for _ in range(MAX_IPV6_EXT):
        if nexthdr == IPPROTO_HOPOPTS or nexthdr == IPPROTO_ROUTING or nexthdr == IPPROTO_DSTOPTS:
            opt = pkt.header(IPv6Opt, keys.thoff)
            keys.thoff += (opt.hdrlen + 1) * 8
            nexthdr = opt.nexthdr
            keys.ip_proto = nexthdr
        elif nexthdr == IPPROTO_FRAGMENT:
            frag = pkt.header(IPv6Frag, keys.thoff)
            keys.thoff += 8
            keys.is_frag = 1
            nexthdr = frag.nexthdr
            keys.ip_proto = nexthdr
            if frag.offset != 0:
                return BPF_OK, 0  # later fragments carry no transport header
            keys.is_first_frag = 1
            if not keys.flags & BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG:
                return BPF_OK, 0
        else:
            break
    else:
        return BPF_DROP, 0  # more extension headers than MAX_IPV6_EXT
    return transport(pkt, keys, nexthdr)


def transport(pkt: Packet, keys: BpfFlowKeys, proto: u8) -> tuple[u8, u16]:
    """What an IP header carries, by protocol number.

    ICMPv6 is read like ICMP; the reference has no case for it and drops all
    of it, neighbour discovery included.
    """
    if proto == IPPROTO_TCP:
        return tcp(pkt, keys)
    if proto == IPPROTO_UDP or proto == IPPROTO_UDPLITE:
        return udp(pkt, keys)
    if proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
        return icmp(pkt, keys)
    if proto == IPPROTO_IPIP:
        return encapsulated(keys, ETH_P_IP)
    if proto == IPPROTO_IPV6:
        return encapsulated(keys, ETH_P_IPV6)
    if proto == IPPROTO_GRE:
        return gre(pkt, keys)
    return BPF_DROP, 0  # a protocol the dissector does not know


def encapsulated(keys: BpfFlowKeys, inner: u16) -> tuple[u8, u16]:
    """An encapsulated packet of Ethernet type `inner` follows at keys.thoff.

    With STOP_AT_ENCAP the keys describe the outer packet. Otherwise
    `keys.nhoff` and `keys.n_proto` move to the inner network header, as the
    kernel's own dissector reports it and as VLAN tags already move them; the
    reference leaves the outer values, which pairs an IPv4 n_proto with the
    IPv6 addresses of a 6in4 packet.
    """
    keys.is_encap = 1
    if keys.flags & BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP:
        return BPF_OK, 0
    keys.nhoff = keys.thoff
    keys.n_proto = inner
    return NEXT, inner


def gre(pkt: Packet, keys: BpfFlowKeys) -> tuple[u8, u16]:
    """GRE version 0 and its optional checksum, key and sequence words; other versions stop here."""
    hdr = pkt.header(GRE, keys.thoff)
    if hdr.version != 0:
        return BPF_OK, 0
    keys.thoff += GRE_MIN_HLEN + (hdr.csum + hdr.key + hdr.seq) * 4
    keys.is_encap = 1
    if not pkt.has(keys.thoff):  # the optional words must be there (the reference does not check)
        return BPF_DROP, 0
    if keys.flags & BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP:
        return BPF_OK, 0
    if hdr.proto == ETH_P_TEB:  # transparent Ethernet bridging: an Ethernet header first
        eth = pkt.header(Ethernet, keys.thoff)
        keys.thoff += ETH_HLEN
        return encapsulated(keys, eth.proto)
    return encapsulated(keys, hdr.proto)


def tcp(pkt: Packet, keys: BpfFlowKeys) -> tuple[u8, u16]:
    """TCP ports; the header, options included, must be in the packet."""
    hdr = pkt.header(TCP, keys.thoff)
    if hdr.doff < 5:
        return BPF_DROP, 0
    if not pkt.has(keys.thoff + hdr.doff * 4):
        return BPF_DROP, 0
    keys.sport = hdr.sport
    keys.dport = hdr.dport
    return BPF_OK, 0


def udp(pkt: Packet, keys: BpfFlowKeys) -> tuple[u8, u16]:
    """UDP (and UDP-Lite) ports."""
    hdr = pkt.header(UDP, keys.thoff)
    keys.sport = hdr.sport
    keys.dport = hdr.dport
    return BPF_OK, 0


def icmp(pkt: Packet, keys: BpfFlowKeys) -> tuple[u8, u16]:
    """ICMP: the 8-byte header must be there; there are no ports."""
    pkt.header(ICMP, keys.thoff)
    return BPF_OK, 0
