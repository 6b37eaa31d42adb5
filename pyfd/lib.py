"""Reusable protocol parsers, written in pyfd's own restricted Python, that dissect as the kernel does.

They follow the kernel's built-in C dissector (`__skb_flow_dissect` in
net/core/flow_dissector.c, as `skb_get_hash()` runs it), pass for pass, so
that a namespace hashes its packets alike with them attached as without:
the keys hold the kernel's loop state. `keys.n_proto` is its `proto` (the
Ethernet type of the header at hand), `keys.ip_proto` its `ip_proto`,
`keys.thoff` its `nhoff` cursor (what the kernel reports as the transport
offset at the end), and `keys.nhoff` where the header that `keys.n_proto`
names begins.

Each parser takes one pass and returns a step, which is a return code when
dissection is over (BPF_OK where the kernel's dissector succeeds, BPF_DROP
where it fails, BPF_FLOW_DISSECTOR_CONTINUE for an Ethernet type the kernel
knows and these parsers do not) or one of

- `NEXT_PROTO` (the kernel's FLOW_DISSECT_RET_PROTO_AGAIN): a network-layer
  header of type `keys.n_proto` follows at `keys.thoff` (`network`);
- `NEXT_IP_PROTO`: the protocol `keys.ip_proto` follows at `keys.thoff`
  (`transport`). From `network` this is the kernel's fall-through from an
  IP header to its payload; from `transport` (an IPv6 extension header) its
  FLOW_DISSECT_RET_IPPROTO_AGAIN.

A dissector runs them in a bounded loop, one pass per turn, and the kernel
allows MAX_HEADERS passes after the first (MAX_FLOW_DISSECT_HDRS):

    @dissector
    def full(pkt: Packet, keys: BpfFlowKeys) -> int:
        step: u8 = lib.NEXT_PROTO
        for _ in range(lib.MAX_HEADERS + 1):
            verdict = lib.one_pass(pkt, keys, step)  # network(), transport(), or both
            if verdict != lib.NEXT_PROTO:
                if verdict != lib.NEXT_IP_PROTO:
                    return verdict                   # BPF_OK, BPF_DROP or CONTINUE: done
            step = verdict
        return lib.out_of_headers(pkt, keys, step)

A header that is not wholly in the packet ends the dissector with BPF_DROP
(that is what `pkt.header` does), exactly where the kernel's
`__skb_header_pointer` fails and it returns false; the keys stay as filled so
far, and the kernel hashes them all the same. The hash covers n_proto,
ip_proto, the addresses, the ports word and the flow label, so those follow
the kernel exactly; where a parser departs from the kernel's reference BPF
dissector (tools/testing/selftests/bpf/progs/bpf_flow.c), its docstring says
how and why.
"""

from __future__ import annotations

from .constants import (
    BPF_DROP, BPF_FLOW_DISSECTOR_CONTINUE, BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG, BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP,
    BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL, BPF_OK, ETH_HLEN, ETH_P_1588, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP,
    ETH_P_BATMAN, ETH_P_CFM, ETH_P_FCOE, ETH_P_HSR, ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_MC, ETH_P_MPLS_UC, ETH_P_PPP_SES,
    ETH_P_PRP, ETH_P_RARP, ETH_P_TEB, ETH_P_TIPC, GRE_MIN_HLEN, GRE_PROTO_PPP, IP_MF, IP_OFFSET, IPPROTO_AH,
    IPPROTO_DCCP, IPPROTO_DSTOPTS, IPPROTO_ESP, IPPROTO_FRAGMENT, IPPROTO_GRE, IPPROTO_HOPOPTS, IPPROTO_IPIP,
    IPPROTO_IPV6, IPPROTO_MPLS, IPPROTO_ROUTING, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, IPV6_HLEN,
    MPLS_HLEN, PPP_HDRLEN, PPP_IP, PPP_IPV6, VLAN_HLEN,
)
from .constants import UDP_HLEN
from .headers import GRE, GTPU, GUE, MPLS, PPP, VLAN, VXLAN, VXLANGPE, Ethernet, Geneve, GTPUExt, GTPUExtNext, GTPUOpt
from .headers import IPv4, IPv6, IPv6Frag, IPv6Opt, IPVersion, Ports
from .keys import BpfFlowKeys
from .maps import Array, Config
from .packet import Packet
from .types import u8, u16

# Steps that say another pass follows (not return codes: 0, 2 and 129 are).
NEXT_PROTO = 1
NEXT_IP_PROTO = 3

# net/core/flow_dissector.c, MAX_FLOW_DISSECT_HDRS: the kernel takes 15 more
# passes after the first (each VLAN tag, encapsulation and IPv6 extension
# header is one), then stops where it is and calls the dissection good.
MAX_HEADERS = 15

__all__ = [
    "NEXT_PROTO", "NEXT_IP_PROTO", "MAX_HEADERS", "one_pass", "network", "transport", "out_of_headers", "vlan", "mpls", "ipv4",
    "ipv6", "ipv6_opt", "ipv6_frag", "ports", "encapsulated", "gre",
    "VXLAN_PORT", "VXLAN_GPE_PORT", "GENEVE_PORT", "GTPU_PORT", "GUE_PORT", "MPLS_UDP_PORT", "tunnel_ports", "TUNNEL_UNSET", "TUNNEL_OFF",
    "TUNNEL_NONE", "TUNNEL_VXLAN", "TUNNEL_VXLAN_GPE", "TUNNEL_GENEVE", "TUNNEL_GTPU", "TUNNEL_GUE", "TUNNEL_MPLS",
    "GTPU_MAX_EXT", "tunnel_pass", "tunnel_network", "tunnel_transport", "udp", "udp_tunnel", "tunnel_inner",
    "udp_encapsulated", "mpls_stack", "ip_version", "inner_ethernet", "vxlan", "vxlan_gpe", "geneve", "gtpu", "gue",
    "mpls_udp",
]


def one_pass(pkt: Packet, keys: BpfFlowKeys, step: u8) -> u8:
    """One pass of the kernel's loop: a network-layer header and what its IP protocol names, or an IP protocol alone.

    The kernel goes from an IP header straight on to its payload in the same
    pass (only another header after that counts against MAX_HEADERS), so
    `network` and `transport` share one pass when `step` is NEXT_PROTO.
    """
    if step == NEXT_PROTO:
        after = network(pkt, keys)
        if after != NEXT_IP_PROTO:
            return after
    return transport(pkt, keys)


def network(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """One network-layer header, of Ethernet type `keys.n_proto`, at `keys.thoff`.

    Ethernet types the kernel knows but these parsers do not (PPPoE, TIPC,
    FCoE, B.A.T.M.A.N., PTP, PRP/HSR, CFM) go to the kernel's own dissector
    (BPF_FLOW_DISSECTOR_CONTINUE), which then hashes them as it always does;
    the reference drops them. Unknown types are a failed dissection, as in
    the kernel (and the reference).
    """
    proto = keys.n_proto
    if proto == ETH_P_IP:
        return ipv4(pkt, keys)
    if proto == ETH_P_IPV6:
        return ipv6(pkt, keys)
    if proto == ETH_P_8021Q or proto == ETH_P_8021AD:
        return vlan(pkt, keys)
    if proto == ETH_P_MPLS_UC or proto == ETH_P_MPLS_MC:
        return mpls(keys)
    if proto == ETH_P_ARP or proto == ETH_P_RARP:
        return BPF_OK  # the hashing dissector reads nothing of ARP (it has no ARP key)
    if proto == ETH_P_PPP_SES or proto == ETH_P_TIPC or proto == ETH_P_FCOE or proto == ETH_P_BATMAN:
        return BPF_FLOW_DISSECTOR_CONTINUE
    if proto == ETH_P_1588 or proto == ETH_P_PRP or proto == ETH_P_HSR or proto == ETH_P_CFM:
        return BPF_FLOW_DISSECTOR_CONTINUE
    return BPF_DROP


def vlan(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """One 802.1Q or 802.1ad tag; `keys.n_proto` becomes the type it carries (another tag, too).

    The kernel takes any sequence of tags, one per pass, as this does; the
    reference takes only 802.1Q or 802.1ad then 802.1Q, and drops the rest.
    The kernel also hashes the first tag's id, which the keys cannot carry.
    """
    tag = pkt.header(VLAN, keys.thoff)
    keys.thoff += VLAN_HLEN
    keys.nhoff = keys.thoff
    keys.n_proto = tag.proto
    return NEXT_PROTO


def mpls(keys: BpfFlowKeys) -> u8:
    """MPLS: step over one label and stop, as the hashing dissector does.

    Without the MPLS keys (which `skb_get_hash()`'s dissector does not ask
    for) __skb_flow_dissect_mpls reads nothing, and the kernel moves its
    offset past one label and calls the dissection good, even when the label
    is not in the packet. The reference reads the label and stops at it.
    """
    keys.thoff += MPLS_HLEN
    return BPF_OK


def ipv4(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """IPv4, with options; a fragment ends dissection unless it is a first one and PARSE_1ST_FRAG is set.

    Like the kernel, it does not ask for the options to be in the packet:
    a header cut short in its options goes on to its protocol, at an offset
    past the end (the reference drops it, before it sets the inner n_proto
    of 6in4).
    """
    ip = pkt.header(IPv4, keys.thoff)
    if ip.ihl < 5:
        return BPF_DROP
    keys.thoff += ip.ihl * 4
    keys.ip_proto = ip.protocol
    keys.addr_proto = ETH_P_IP
    keys.ipv4_src = ip.saddr
    keys.ipv4_dst = ip.daddr
    if ip.frag_off & (IP_MF | IP_OFFSET):
        keys.is_frag = 1
        if ip.frag_off & IP_OFFSET:
            return BPF_OK  # later fragments carry no transport header
        keys.is_first_frag = 1
        if not keys.flags & BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG:
            return BPF_OK
    return NEXT_IP_PROTO


def ipv6(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """IPv6: addresses and flow label, then its next header.

    As the kernel does, a zero flow label is not written (an outer label
    stays) and with BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL a non-zero one
    ends dissection; `skb_get_hash()` always passes that flag.
    """
    ip6 = pkt.header(IPv6, keys.thoff)
    keys.ip_proto = ip6.nexthdr
    keys.thoff += IPV6_HLEN
    keys.addr_proto = ETH_P_IPV6
    keys.ipv6_src = ip6.saddr
    keys.ipv6_dst = ip6.daddr
    if ip6.flow_label != 0:
        keys.flow_label = ip6.flow_label
        if keys.flags & BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL:
            return BPF_OK
    return NEXT_IP_PROTO


def transport(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """What `keys.ip_proto` names at `keys.thoff`: an extension header, an encapsulation, or the ports.

    IPv6 extension headers count only inside IPv6 (in IPv4 the kernel sees
    protocol 0, 43, 44 or 60 as one without ports). Everything that is not
    followed further is done: ICMP and ICMPv6, ESP and AH (their SPI is the
    ports word), SCTP and DCCP, and unknown protocols all count as a good
    dissection, as in the kernel; the reference drops all of those but ICMP
    and has no ports for SCTP, DCCP, ESP or AH.
    """
    proto = keys.ip_proto
    if proto == IPPROTO_GRE:
        return gre(pkt, keys)
    if keys.n_proto == ETH_P_IPV6:
        if proto == IPPROTO_HOPOPTS or proto == IPPROTO_ROUTING or proto == IPPROTO_DSTOPTS:
            return ipv6_opt(pkt, keys)
        if proto == IPPROTO_FRAGMENT:
            return ipv6_frag(pkt, keys)
    if proto == IPPROTO_IPIP:
        return encapsulated(keys, ETH_P_IP)
    if proto == IPPROTO_IPV6:
        return encapsulated(keys, ETH_P_IPV6)
    if proto == IPPROTO_MPLS:
        keys.nhoff = keys.thoff  # MPLS in IP: no encapsulation flag, as in the kernel
        keys.n_proto = ETH_P_MPLS_UC
        return NEXT_PROTO
    return ports(pkt, keys)


def ports(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """The ports word the kernel hashes (`__skb_flow_get_ports`): 4 bytes at `proto_ports_offset(ip_proto)`.

    TCP, UDP, UDP-Lite, SCTP and DCCP have their ports first, ESP its SPI;
    AH has its SPI 4 bytes in (include/linux/in.h). Only those 4 bytes need
    to be in the packet: a TCP header cut after its ports, or with a data
    offset under 5, still has them (the reference drops both). There are no
    ports in any fragment, not even with PARSE_1ST_FRAG (the kernel keeps
    fragments of one datagram in one flow); nor where the word is cut short.
    """
    proto = keys.ip_proto
    offset: u16 = 0
    if proto == IPPROTO_AH:
        offset = 4
    elif not (
        proto == IPPROTO_TCP or proto == IPPROTO_UDP or proto == IPPROTO_UDPLITE or proto == IPPROTO_SCTP
        or proto == IPPROTO_DCCP or proto == IPPROTO_ESP
    ):
        return BPF_OK
    if keys.is_frag:
        return BPF_OK
    if pkt.has(keys.thoff + offset + 4):
        word = pkt.header(Ports, keys.thoff + offset)
        keys.sport = word.sport
        keys.dport = word.dport
    return BPF_OK


def ipv6_opt(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """A hop-by-hop, routing or destination options header: skipped by its length, one pass each.

    The reference skips hop-by-hop and destination options only and drops a
    packet with a routing header; the kernel skips all three alike.
    """
    opt = pkt.header(IPv6Opt, keys.thoff)
    keys.ip_proto = opt.nexthdr
    keys.thoff += (opt.hdrlen + 1) * 8
    return NEXT_IP_PROTO


def ipv6_frag(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """An IPv6 fragment header: a fragment; the first one goes on with PARSE_1ST_FRAG."""
    frag = pkt.header(IPv6Frag, keys.thoff)
    keys.is_frag = 1
    keys.thoff += 8
    keys.ip_proto = frag.nexthdr
    if frag.offset == 0:
        keys.is_first_frag = 1
        if keys.flags & BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG:
            return NEXT_IP_PROTO
    return BPF_OK


def encapsulated(keys: BpfFlowKeys, inner: u16) -> u8:
    """A packet of Ethernet type `inner` follows at keys.thoff (IP in IP, GRE).

    `keys.n_proto` and `keys.nhoff` move to the inner header, as the kernel
    reports it, also with STOP_AT_ENCAP (then nothing more is read: ip_proto,
    the addresses and thoff describe the outer packet). The reference leaves
    the outer n_proto, which pairs an IPv4 n_proto with the IPv6 addresses of
    a 6in4 packet.
    """
    keys.n_proto = inner
    keys.nhoff = keys.thoff
    keys.is_encap = 1
    if keys.flags & BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP:
        return BPF_OK
    return NEXT_PROTO


def gre(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """GRE version 0 (RFC 2784, 2890) and version 1 (PPTP, RFC 2637), as __skb_flow_dissect_gre reads them.

    With the routing bit set, or a version above 1, dissection ends at the
    GRE header. Otherwise n_proto becomes the GRE protocol at once (so a
    GRE header cut short reports it), the checksum and sequence words are
    skipped without being read, and the key word must be in the packet (the
    kernel hashes it; the keys cannot carry it). Version 1 must be PPP with
    a key; its optional acknowledgment and its PPP header are skipped, and
    PPP carrying IPv4 or IPv6 goes on into it. The reference ignores the
    routing bit, stops at version 1, and checks none of the optional words.
    """
    hdr = pkt.header(GRE, keys.thoff)
    if hdr.routing:
        return BPF_OK
    if hdr.version > 1:
        return BPF_OK
    keys.n_proto = hdr.proto
    if hdr.version == 1 and not (hdr.proto == GRE_PROTO_PPP and hdr.key):
        return BPF_OK
    offset: u16 = GRE_MIN_HLEN + hdr.csum * 4
    if hdr.key:
        if not pkt.has(keys.thoff + offset + 4):
            return BPF_DROP
        offset += 4
    offset += hdr.seq * 4
    if hdr.version == 0:
        if hdr.proto == ETH_P_TEB:  # transparent Ethernet bridging: an Ethernet header first
            eth = pkt.header(Ethernet, keys.thoff + offset)
            keys.n_proto = eth.proto
            offset += ETH_HLEN
    else:
        offset += hdr.ack * 4
        frame = pkt.header(PPP, keys.thoff + offset)
        if frame.protocol == PPP_IP:
            keys.n_proto = ETH_P_IP
        elif frame.protocol == PPP_IPV6:
            keys.n_proto = ETH_P_IPV6
        offset += PPP_HDRLEN
    keys.thoff += offset
    keys.nhoff = keys.thoff
    keys.is_encap = 1
    if keys.flags & BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP:
        return BPF_OK
    return NEXT_PROTO


def out_of_headers(pkt: Packet, keys: BpfFlowKeys, step: u8) -> u8:
    """After MAX_HEADERS more passes: stop where the kernel stops and call it good.

    The kernel reads the ports at the end of every IP-protocol pass, so when
    its last pass was an IPv6 extension header whose next header has ports,
    it has them; a network-layer header left waiting is not read.
    """
    if step == NEXT_IP_PROTO:
        return ports(pkt, keys)
    return BPF_OK


# -- UDP tunnels and MPLS label stacks (samples/tunnels.py) ---------------------
#
# The kernel's dissector stops at a UDP header, so every flow inside a tunnel
# between two hosts hashes as the one outer flow. These parsers go on into
# the tunnel that the UDP destination port names, and through an MPLS label
# stack to the packet under it. They run in the same loop as the parsers
# above (`tunnel_pass` in place of `one_pass`), so a tunnel counts as one
# pass, like GRE, and every MPLS label as one more: nesting is bounded by
# MAX_HEADERS as the rest is.
#
# What a dissector reports:
# - An inner packet that is followed: `is_encap` set, `n_proto` and `nhoff`
#   (and `thoff`) at its network header, the outer ports cleared (the inner
#   flow has its own, or none), then the inner packet dissected as any, so
#   the inner addresses, protocol and ports end up in the keys. An inner
#   packet cut short fails as any packet does (BPF_DROP, keys as far as they
#   got), as after GRE.
# - With BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP: the outer flow, exactly as
#   `one_pass` leaves it (addresses, UDP, its ports, thoff at the UDP
#   header: the outer flow's transport header, which skb_get_poff() sizes),
#   with `is_encap` set. Unlike after IP in IP and GRE, n_proto stays the
#   outer type: the outer flow has a transport header of its own.
# - A datagram that is not a complete, valid tunnel header of a kind these
#   parsers follow (cut short, a flag that says it carries no packet, a
#   control or OAM message, a payload type not followed): an ordinary UDP
#   datagram, exactly as `one_pass` leaves it (BPF_OK, no `is_encap`).

# The tunnel types `udp_tunnel` names.
TUNNEL_NONE = 0
TUNNEL_VXLAN = 1
TUNNEL_VXLAN_GPE = 2
TUNNEL_GENEVE = 3
TUNNEL_GTPU = 4
TUNNEL_GUE = 5
TUNNEL_MPLS = 6

# The UDP destination port of each tunnel type, set when the program is
# loaded (`load(config={"VXLAN_PORT": 8472})`, `pyfd attach --set
# VXLAN_PORT=8472`); the defaults are the IANA ports. 0 turns a type off.
# They live in the frozen .rodata, so the verifier knows them.
VXLAN_PORT = Config(u16, 4789)  # RFC 7348
VXLAN_GPE_PORT = Config(u16, 4790)  # draft-ietf-nvo3-vxlan-gpe
GENEVE_PORT = Config(u16, 6081)  # RFC 8926
GTPU_PORT = Config(u16, 2152)  # 3GPP TS 29.281 (both sides use it)
GUE_PORT = Config(u16, 6080)  # draft-ietf-intarea-gue
MPLS_UDP_PORT = Config(u16, 6635)  # RFC 7510

# And while the program runs: tunnel_ports[port] for each UDP destination
# port, 0 (TUNNEL_UNSET, as every port starts) to let the ports above decide,
# a TUNNEL_* type to make the port that tunnel whatever they say, and
# TUNNEL_OFF (or any value above TUNNEL_MPLS) to make it no tunnel.
# `loaded.maps["tunnel_ports"][8472] = lib.TUNNEL_VXLAN`, or `pyfd map
# --netns T tunnel_ports set 8472 1` once attached. An array indexed by the
# port, not a hash map: the verifier inlines an array lookup into a few
# instructions (array_map_gen_lookup in kernel/bpf/arraymap.c), where a hash
# lookup costs a helper call and a hash, some 20 ns per UDP header here.
tunnel_ports = Array(u8, max_entries=65536)
TUNNEL_UNSET = 0
TUNNEL_OFF = 255

VXLAN_HLEN = 8
GENEVE_HLEN = 8
GTPU_HLEN = 8
GTPU_OPT_LEN = 4  # sequence number, N-PDU number, next extension header type
GTPU_G_PDU = 255  # message type of a user packet (T-PDU)
GUE_HLEN = 4
VXLAN_GPE_NP_IPV4 = 1  # VXLAN-GPE next protocols
VXLAN_GPE_NP_IPV6 = 2
VXLAN_GPE_NP_ETHERNET = 3

# GTP-U extension headers followed in one GTP-U header; a longer chain is
# not followed (TS 29.281 sets no limit; 5G user planes send one or two).
GTPU_MAX_EXT = 8


def tunnel_pass(pkt: Packet, keys: BpfFlowKeys, step: u8) -> u8:
    """One pass as `one_pass` takes it, with UDP tunnels and MPLS label stacks followed."""
    if step == NEXT_PROTO:
        after = tunnel_network(pkt, keys)
        if after != NEXT_IP_PROTO:
            return after
    return tunnel_transport(pkt, keys)


def tunnel_network(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """`network`, with an MPLS label stack followed to the packet under it (`mpls_stack`)."""
    if keys.n_proto == ETH_P_MPLS_UC or keys.n_proto == ETH_P_MPLS_MC:
        return mpls_stack(pkt, keys)
    return network(pkt, keys)


def tunnel_transport(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """`transport`, with UDP going on into a tunnel (`udp`)."""
    if keys.ip_proto == IPPROTO_UDP:
        return udp(pkt, keys)
    return transport(pkt, keys)


def udp(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """UDP: its ports, as `ports` reads them, then the tunnel its destination port names, if any.

    A fragment has no ports and no tunnel header (the kernel keeps all
    fragments of a datagram in one flow); a tunnel header follows a whole
    UDP header.
    """
    verdict = ports(pkt, keys)
    if keys.is_frag:
        return verdict
    if not pkt.has(keys.thoff + UDP_HLEN):
        return verdict
    kind = udp_tunnel(keys.dport)
    if kind == TUNNEL_NONE:
        return verdict
    inner, offset = tunnel_inner(pkt, kind, keys.thoff + UDP_HLEN)
    if inner == 0:
        return verdict  # not a packet in a tunnel: an ordinary datagram
    return udp_encapsulated(keys, inner, offset)


def udp_tunnel(dport: u16) -> u8:
    """The tunnel a UDP destination port names: by `tunnel_ports` where it is set for the port, else by the load-time ports (TUNNEL_NONE: none).

    Only the destination port counts: encapsulators put the inner flow's
    entropy in the source port (RFC 7348 section 5, RFC 8926 section 3.3),
    and GTP-U uses 2152 on both sides.
    """
    kind: u8 = tunnel_ports[dport]
    if kind != TUNNEL_UNSET:
        if kind > TUNNEL_MPLS:
            return TUNNEL_NONE  # TUNNEL_OFF
        return kind
    if dport == 0:
        return TUNNEL_NONE  # a port set to 0 turns its type off
    if dport == VXLAN_PORT:
        return TUNNEL_VXLAN
    if dport == VXLAN_GPE_PORT:
        return TUNNEL_VXLAN_GPE
    if dport == GENEVE_PORT:
        return TUNNEL_GENEVE
    if dport == GTPU_PORT:
        return TUNNEL_GTPU
    if dport == GUE_PORT:
        return TUNNEL_GUE
    if dport == MPLS_UDP_PORT:
        return TUNNEL_MPLS
    return TUNNEL_NONE


def tunnel_inner(pkt: Packet, kind: u8, start: u16) -> tuple[u16, u16]:
    """What a tunnel header of type `kind` at `start` carries: its Ethernet type and offset, or (0, 0) when nothing is followed."""
    if kind == TUNNEL_VXLAN:
        return vxlan(pkt, start)
    if kind == TUNNEL_VXLAN_GPE:
        return vxlan_gpe(pkt, start)
    if kind == TUNNEL_GENEVE:
        return geneve(pkt, start)
    if kind == TUNNEL_GTPU:
        return gtpu(pkt, start)
    if kind == TUNNEL_GUE:
        return gue(pkt, start)
    if kind == TUNNEL_MPLS:
        return mpls_udp(start)
    return 0, 0


def udp_encapsulated(keys: BpfFlowKeys, inner: u16, offset: u16) -> u8:
    """A packet of Ethernet type `inner` at `offset` inside a UDP tunnel: go on into it, or with STOP_AT_ENCAP stop at the outer flow."""
    keys.is_encap = 1
    if keys.flags & BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP:
        return BPF_OK
    keys.n_proto = inner
    keys.nhoff = offset
    keys.thoff = offset
    keys.sport = 0
    keys.dport = 0
    return NEXT_PROTO


def ip_version(pkt: Packet, offset: u16) -> u16:
    """IPv4 or IPv6 by the version nibble at `offset`, for payloads that do not say which (0: neither, or no byte there)."""
    if not pkt.has(offset + 1):
        return 0
    first = pkt.header(IPVersion, offset)
    if first.version == 4:
        return ETH_P_IP
    if first.version == 6:
        return ETH_P_IPV6
    return 0


def inner_ethernet(pkt: Packet, offset: u16) -> tuple[u16, u16]:
    """An Ethernet frame at `offset` inside a tunnel: its type, and where what it carries begins ((0, 0) if cut short)."""
    if not pkt.has(offset + ETH_HLEN):
        return 0, 0
    eth = pkt.header(Ethernet, offset)
    return eth.proto, offset + ETH_HLEN


def vxlan(pkt: Packet, start: u16) -> tuple[u16, u16]:
    """VXLAN (RFC 7348): an 8-byte header whose I flag must be set, then an Ethernet frame.

    RFC 7348 section 5: the I flag MUST be set for a valid VNI; Linux's
    vxlan_rcv drops a packet without it. The other flag bits are ignored
    on receipt, as the RFC says.
    """
    if not pkt.has(start + VXLAN_HLEN):
        return 0, 0
    hdr = pkt.header(VXLAN, start)
    if not hdr.i:
        return 0, 0
    return inner_ethernet(pkt, start + VXLAN_HLEN)


def vxlan_gpe(pkt: Packet, start: u16) -> tuple[u16, u16]:
    """VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe): version 0 with the I and P flags, then IPv4, IPv6 or Ethernet by its next protocol.

    NSH and other next protocols are not followed, nor an OAM packet (the
    O flag), which carries no user traffic.
    """
    if not pkt.has(start + VXLAN_HLEN):
        return 0, 0
    hdr = pkt.header(VXLANGPE, start)
    if hdr.version != 0 or not hdr.i or not hdr.p or hdr.o:
        return 0, 0
    offset = start + VXLAN_HLEN
    if hdr.next_proto == VXLAN_GPE_NP_IPV4:
        return ETH_P_IP, offset
    if hdr.next_proto == VXLAN_GPE_NP_IPV6:
        return ETH_P_IPV6, offset
    if hdr.next_proto == VXLAN_GPE_NP_ETHERNET:
        return inner_ethernet(pkt, offset)
    return 0, 0


def geneve(pkt: Packet, start: u16) -> tuple[u16, u16]:
    """Geneve (RFC 8926): version 0, `opt_len` words of options skipped, then the packet its protocol type names.

    A control packet (the O flag) is not followed: RFC 8926 section 3.4
    says transit devices MUST NOT interpret its payload. Followed: Ethernet
    (ETH_P_TEB), IPv4, IPv6 and MPLS; the options need not be understood
    (the C flag matters to tunnel endpoints only), but must be in the packet.
    """
    if not pkt.has(start + GENEVE_HLEN):
        return 0, 0
    hdr = pkt.header(Geneve, start)
    if hdr.version != 0 or hdr.o:
        return 0, 0
    offset = start + GENEVE_HLEN + hdr.opt_len * 4
    if not pkt.has(offset):
        return 0, 0
    proto = hdr.proto
    if proto == ETH_P_TEB:
        return inner_ethernet(pkt, offset)
    if proto == ETH_P_IP or proto == ETH_P_IPV6 or proto == ETH_P_MPLS_UC or proto == ETH_P_MPLS_MC:
        return proto, offset
    return 0, 0


def gtpu(pkt: Packet, start: u16) -> tuple[u16, u16]:
    """GTP-U (3GPP TS 29.281): a G-PDU's user packet, IPv4 or IPv6 by its version nibble, past the optional fields and extension headers.

    Version 1, protocol type 1 (GTP, not GTP'), message type 255 (G-PDU)
    only: echo, error indication and end marker carry no user packet. With
    any of E, S or PN set the 4-byte sequence/N-PDU/next-type word follows
    (section 5.1; its next type counts only with E). Each extension header
    (section 5.2.1) gives its length in 4-byte units in its first byte
    (0 is invalid) and the next one's type in its last; up to GTPU_MAX_EXT
    are followed. A T-PDU has no Ethernet header (an IP PDU session).
    """
    if not pkt.has(start + GTPU_HLEN):
        return 0, 0
    hdr = pkt.header(GTPU, start)
    if hdr.version != 1 or hdr.pt != 1 or hdr.message_type != GTPU_G_PDU:
        return 0, 0
    offset = start + GTPU_HLEN
    if hdr.e or hdr.s or hdr.pn:
        if not pkt.has(offset + GTPU_OPT_LEN):
            return 0, 0
        opt = pkt.header(GTPUOpt, offset)
        next_ext: u8 = 0
        if hdr.e:
            next_ext = opt.next_ext
        offset += GTPU_OPT_LEN
        for _ in range(GTPU_MAX_EXT):
            if next_ext == 0:
                break
            if not pkt.has(offset + 1):
                return 0, 0
            ext = pkt.header(GTPUExt, offset)
            if ext.length == 0:
                return 0, 0
            end = offset + ext.length * 4
            if not pkt.has(end):
                return 0, 0
            last = pkt.header(GTPUExtNext, end - 1)
            next_ext = last.next_ext
            offset = end
        if next_ext != 0:
            return 0, 0  # more than GTPU_MAX_EXT extension headers
    return ip_version(pkt, offset), offset


def gue(pkt: Packet, start: u16) -> tuple[u16, u16]:
    """GUE (draft-ietf-intarea-gue): variant 0, its header and `hlen` words of extension fields, then IPv4, IPv6 or MPLS; variant 1, IPv4 or IPv6 directly.

    Variant 0's `proto` is the IP protocol of the payload: IPPROTO_IPIP,
    IPPROTO_IPV6 and IPPROTO_MPLS are followed. A control message (the C
    flag) carries no packet. Variant 1 has no header: its first two bits
    are those of IPv4's or IPv6's version.
    """
    if not pkt.has(start + GUE_HLEN):
        return 0, 0
    hdr = pkt.header(GUE, start)
    if hdr.variant == 1:
        return ip_version(pkt, start), start
    if hdr.variant != 0 or hdr.c:
        return 0, 0
    offset = start + GUE_HLEN + hdr.hlen * 4
    if not pkt.has(offset):
        return 0, 0
    if hdr.proto == IPPROTO_IPIP:
        return ETH_P_IP, offset
    if hdr.proto == IPPROTO_IPV6:
        return ETH_P_IPV6, offset
    if hdr.proto == IPPROTO_MPLS:
        return ETH_P_MPLS_UC, offset
    return 0, 0


def mpls_udp(start: u16) -> tuple[u16, u16]:
    """MPLS in UDP (RFC 7510): the datagram's payload is a label stack."""
    return ETH_P_MPLS_UC, start


def mpls_stack(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """One MPLS label stack entry (RFC 3032) per pass, down to the bottom of the stack; then IPv4 or IPv6 by its version nibble.

    Where the kernel steps over one label and stops (`mpls`), this follows
    the stack, each label one pass (so MAX_HEADERS bounds it), and under the
    bottom label the payload, which MPLS does not name: a version nibble of
    4 or 6 is IPv4 or IPv6 (RFC 4385 chose the control word's first nibble,
    0, and G-ACh's, 1, not to clash with them). Anything else ends
    dissection at the stack (BPF_OK). A label cut short is a failed
    dissection. MPLS is not an encapsulation (`is_encap` stays).
    """
    entry = pkt.header(MPLS, keys.thoff)
    keys.thoff += MPLS_HLEN
    if not entry.bos:
        return NEXT_PROTO  # another label: n_proto stays MPLS
    inner = ip_version(pkt, keys.thoff)
    if inner == 0:
        return BPF_OK
    keys.n_proto = inner
    keys.nhoff = keys.thoff
    return NEXT_PROTO
