"""The behaviour oracle for samples/full.py: frames, flags and the expected result.

Each FullCase gives a frame (from the Ethernet header, as BPF_PROG_TEST_RUN
takes it), the input flags, the expected return code, and the expected keys
after the kernel's clamp (nhoff into [14, len], thoff into [nhoff, len]). The
keys dict names every field, zero or not: nhoff, thoff, addr_proto, is_frag,
is_first_frag, is_encap, ip_proto, n_proto, sport, dport, the address pair that
addr_proto selects (ipv6_src/ipv6_dst for 0x86dd, ipv4_src/ipv4_dst otherwise;
"0.0.0.0" when no address was written) and flow_label. Ports, n_proto,
addr_proto and flow_label are host-order integers, as runtime.flowkeys.FlowKeys
reports them. The `flags` field of the keys is the input and is not listed.

The reference is the kernel's own C dissector, `__skb_flow_dissect` in
net/core/flow_dissector.c, as `skb_get_hash()` runs it (the flow_keys
dissector: no ARP, MPLS or TCP keys), read together with the kernel's
test-run entry state (nhoff = thoff = 14, n_proto = the frame's Ethernet type,
so a tagged frame enters with n_proto 0x8100/0x88a8 and nhoff at the TCI):
thoff is its final offset, n_proto its final `proto`, and the return code
BPF_OK where it returns true, BPF_DROP where false. tests/kequiv.py checks
the part the kernel hashes against the kernel itself. The table was first
written from the selftests' bpf_flow.c; where the kernel and bpf_flow.c
differ the table follows the kernel, and the case says "DIFF Dn".

Rules of the kernel that the table keeps (bpf_flow.c alike):

- Headers are read at keys.thoff; a header not wholly in the frame is a
  BPF_DROP with the keys as written so far (test runs have no skb, so
  bpf_skb_load_bytes never rescues a short read). Only the ports word is an
  exception: 4 bytes missing there mean no ports, not a failure (D8).
- Unknown ethertype -> BPF_DROP.
- IPv4: ihl < 5 -> DROP before any key is written; then ip_proto, addr_proto,
  addresses, thoff += ihl*4; MF or a non-zero offset sets is_frag; offset 0
  also sets is_first_frag and stops (BPF_OK, ports 0) unless PARSE_1ST_FRAG;
  a non-zero offset always stops.
- IPv6: addresses, thoff += 40, ip_proto = nexthdr, flow_label = low 20 bits
  when non-zero; STOP_AT_FLOW_LABEL stops (BPF_OK) only when it is non-zero.
  Hop-by-hop/routing/destination options are skipped by (hdrlen+1)*8, without
  checking that the whole extension header is present (the next read catches
  it). The fragment header sets is_frag, ip_proto = its nexthdr, thoff += 8;
  offset 0 (M or not: an atomic fragment counts) sets is_first_frag and
  continues only with PARSE_1ST_FRAG.
- VLAN: each tag adds 4 to nhoff and thoff; n_proto becomes the type it
  carries.
- IPIP (4) and IPv6 (41): is_encap; nhoff and n_proto move to the inner header;
  STOP_AT_ENCAP -> BPF_OK there (ip_proto 4/41, outer addresses).
- GRE version 0: n_proto = its protocol; thoff += 4, +4 for each of C, K, S
  (only the key word must be in the frame); is_encap; TEB (0x6558): the inner
  Ethernet header must be present, thoff += 14, n_proto = its type;
  STOP_AT_ENCAP -> BPF_OK past all of it.
- After encapsulation the inner headers overwrite addresses, ip_proto, ports
  (a zero IPv6 label keeps an outer one). For an IPv4 header inside IPv6,
  bytes 24..48 of the keys keep what the outer IPv6 header wrote; the table
  does not specify them (only ipv4_src/ipv4_dst).

Differences from bpf_flow.c (cases with a difference say "DIFF Dn" in their note):

- D1: the IPv6 routing header (43) is skipped like hop-by-hop and destination
  options; bpf_flow.c drops every routed IPv6 packet as an unknown transport.
- D2: ICMPv6 (58) is treated like ICMP (BPF_OK, ports 0); bpf_flow.c has no
  ICMPv6 case and drops all of it, neighbour discovery included.
- D3: when the dissector goes into an encapsulated packet (IPIP, IPv6 in IP,
  GRE), nhoff and n_proto follow it, also with STOP_AT_ENCAP: the inner
  header's offset and protocol (for TEB past the inner Ethernet header).
  bpf_flow.c leaves the outer nhoff/n_proto because parse_eth_proto passes
  the inner protocol as a tail-call argument instead of through the keys,
  which pairs an IPv4 n_proto with IPv6 addresses for 6in4. The selftest's
  "ipip-encap"/"ip-gre" cases expect nhoff 14; this table expects the inner
  offset.
- D4: VLAN tags inside GRE TEB are handled with the entry rules (follows from
  D3): bpf_flow.c's VLAN program tests keys->n_proto, which still holds the
  outer IP protocol, and adds the tag length to the outer nhoff.
- D6: bpf_flow.c returns BPF_FLOW_DISSECTOR_CONTINUE at entry for an IPv4
  packet from 127.0.0.127 (ihl 5), a hook for its own selftests; a production
  dissector has no reason to hand one address to the kernel, so samples/full.py
  dissects it like any other.
- D7: the ports word is read where proto_ports_offset() (include/linux/in.h)
  has one: TCP, UDP, UDP-Lite, SCTP, DCCP, ESP (its SPI) and AH (its SPI, 4
  bytes in); every other IP protocol (ICMP without a length check, ICMPv6,
  no next header, unknown ones) is a good dissection without ports.
  bpf_flow.c drops all but TCP, UDP, UDP-Lite and ICMP.
- D8: only the 4 bytes of the ports must be there: a TCP header cut after
  them, a TCP data offset under 5 or options past the end still give the
  ports (the kernel's hashing dissector asks for no TCP key), and a word cut
  short gives none, with BPF_OK. bpf_flow.c drops all of these.
- D9: no ports in any fragment, not even the first with PARSE_1ST_FRAG (the
  kernel keeps every fragment of a datagram in one flow); bpf_flow.c reads
  the first fragment's.
- D10: any sequence of 802.1Q/802.1AD tags, one per pass; bpf_flow.c takes
  only 802.1Q or 802.1AD + 802.1Q.
- D11: MPLS: thoff steps over one label and the dissection is good, even if
  the label is cut (the hashing dissector has no MPLS key and reads none);
  bpf_flow.c reads the label and leaves thoff at it.
- D12: ARP and RARP are a good dissection with the entry keys (the hashing
  dissector has no ARP key); bpf_flow.c drops them.
- D13: GRE as the kernel reads it: n_proto takes the GRE protocol at once (so
  a cut key word or inner Ethernet header is a BPF_DROP that reports it, at
  the GRE header, without is_encap); the routing bit and versions above 1
  stop at the GRE header; version 1 carrying PPP with a key (PPTP) goes on
  past the acknowledgment and the PPP header into IPv4 or IPv6. bpf_flow.c
  ignores the routing bit, stops at version 1 and checks none of the words.
- D14: IPv4 options past the frame's end are not a failure: the dissector goes
  on to the protocol at the offset past the end; bpf_flow.c drops.
- D15: an IPv6 extension header cut short is stepped over by its length as
  the kernel does (thoff clamped to the packet) and the dissection is good;
  bpf_flow.c drops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from frames import DST_MAC, SRC_MAC, ether
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PadN,
)
from scapy.layers.l2 import ARP, GRE, Dot1AD, Dot1Q
from scapy.packet import Raw

__all__ = [
    "BPF_DROP",
    "BPF_FLOW_DISSECTOR_CONTINUE",
    "BPF_OK",
    "CASES",
    "DIFFERENCES",
    "DST_MAC",
    "KEY_FIELDS",
    "PARSE_1ST_FRAG",
    "SRC_MAC",
    "STOP_AT_ENCAP",
    "STOP_AT_FLOW_LABEL",
    "V4_FIELDS",
    "V6_FIELDS",
    "FullCase",
]

# enum bpf_ret_code and BPF_FLOW_DISSECTOR_F_* (uapi); the table test holds them
# to runtime.flowkeys.
BPF_OK = 0
BPF_DROP = 2
BPF_FLOW_DISSECTOR_CONTINUE = 129
PARSE_1ST_FRAG = 1
STOP_AT_FLOW_LABEL = 2
STOP_AT_ENCAP = 4

# Fields every case names, then the address pair chosen by addr_proto.
KEY_FIELDS = (
    "nhoff",
    "thoff",
    "addr_proto",
    "is_frag",
    "is_first_frag",
    "is_encap",
    "ip_proto",
    "n_proto",
    "sport",
    "dport",
    "flow_label",
)
V4_FIELDS = ("ipv4_src", "ipv4_dst")
V6_FIELDS = ("ipv6_src", "ipv6_dst")

# The documented differences from bpf_flow.c, by the tag used in notes.
DIFFERENCES = {
    "D1": "IPv6 routing header skipped like hop-by-hop/destination options",
    "D2": "ICMPv6 treated like ICMP: BPF_OK",
    "D3": "nhoff and n_proto follow into an encapsulated packet, also with STOP_AT_ENCAP",
    "D4": "VLAN tags inside GRE TEB use the entry rules",
    "D6": "no selftest hook sending IPv4 from 127.0.0.127 to the kernel's dissector",
    "D7": "ports word wherever proto_ports_offset() has one; other IP protocols BPF_OK",
    "D8": "only the 4 port bytes must be there; none there is no failure",
    "D9": "no ports in fragments, not even the first with PARSE_1ST_FRAG",
    "D10": "any sequence of VLAN tags",
    "D11": "MPLS: step over one label, BPF_OK",
    "D12": "ARP and RARP: BPF_OK",
    "D13": "GRE as the kernel reads it: routing bit, PPTP, the key word checked",
    "D14": "IPv4 options past the end go on to the protocol",
    "D15": "a cut IPv6 extension header is stepped over, BPF_OK",
}


@dataclass(frozen=True)
class FullCase:
    """One frame, its input flags, and the return code and keys expected."""

    name: str
    frame: bytes
    flags: int
    retval: int
    keys: dict[str, int | str]
    note: str


def ip4(src: str = "10.0.0.1", dst: str = "10.0.0.2", **fields: Any) -> IP:
    """The outer IPv4 header (explicit addresses: scapy never looks up a route)."""
    return IP(src=src, dst=dst, **fields)


def inner4(src: str = "10.1.0.1", dst: str = "10.1.0.2", **fields: Any) -> IP:
    """An encapsulated IPv4 header."""
    return IP(src=src, dst=dst, **fields)


def ip6(src: str = "2001:db8::1", dst: str = "2001:db8::2", **fields: Any) -> IPv6:
    """The outer IPv6 header."""
    return IPv6(src=src, dst=dst, **fields)


def inner6(src: str = "2001:db8:1::1", dst: str = "2001:db8:1::2", **fields: Any) -> IPv6:
    """An encapsulated IPv6 header."""
    return IPv6(src=src, dst=dst, **fields)


CASES: tuple[FullCase, ...] = (
    # --- IPv4
    FullCase(
        name="ipv4_tcp",
        frame=bytes(ether() / ip4() / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="IPv4 ihl 5: addresses, ip_proto, thoff = nhoff + 20, TCP ports",
    ),
    FullCase(
        name="ipv4_udp",
        frame=bytes(ether() / ip4() / UDP(sport=5353, dport=53) / Raw(b"q" * 12)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 5353, "dport": 53,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="IPv4 UDP: ports from the 8-byte UDP header",
    ),
    FullCase(
        name="ipv4_udplite",
        frame=bytes(ether() / ip4(proto=136) / UDP(sport=7000, dport=7001)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 136, "sport": 7000, "dport": 7001,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="IPPROTO_UDPLITE (136) is read like UDP",
    ),
    FullCase(
        name="ipv4_icmp",
        frame=bytes(ether() / ip4() / ICMP(type=8, id=7, seq=1)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 1, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="ICMP: 8-byte header must be present, BPF_OK, ports stay 0",
    ),
    FullCase(
        name="ipv4_other_sctp",
        frame=bytes(ether() / ip4(proto=132) / Raw(bytes(range(16)))),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 132, "sport": 1, "dport": 515,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D7: SCTP (132): ports from its first 4 bytes (proto_ports_offset), BPF_OK",
    ),
    FullCase(
        name="ipv4_other_esp",
        frame=bytes(ether() / ip4(proto=50) / Raw(bytes(range(16)))),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 50, "sport": 1, "dport": 515,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D7: ESP (50): the SPI is the ports word, BPF_OK",
    ),
    FullCase(
        name="ipv4_ihl_4",
        frame=bytes(ether() / ip4(ihl=4) / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="ihl < 5 -> BPF_DROP before any key is written",
    ),
    FullCase(
        name="ipv4_ihl_0",
        frame=bytes(ether() / ip4(ihl=0) / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="ihl 0 -> BPF_DROP before any key is written",
    ),
    FullCase(
        name="ipv4_options_ihl6_tcp",
        frame=bytes(ether() / ip4(src="192.0.2.1", dst="198.51.100.7", options=[b"\x01\x01\x01\x00"]) / TCP(sport=40000, dport=443)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 40000, "dport": 443,
            "ipv4_src": "192.0.2.1", "ipv4_dst": "198.51.100.7", "flow_label": 0,
        },
        note="ihl 6: thoff = nhoff + 24, ports read after the options",
    ),
    FullCase(
        name="ipv4_options_ihl15_udp",
        frame=bytes(ether() / ip4(src="10.1.2.3", dst="10.3.2.1", options=[b"\x01" * 40]) / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 74, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 1, "dport": 2,
            "ipv4_src": "10.1.2.3", "ipv4_dst": "10.3.2.1", "flow_label": 0,
        },
        note="ihl 15: thoff = nhoff + 60",
    ),
    FullCase(
        name="ipv4_df_not_fragment",
        frame=bytes(ether() / ip4(flags="DF") / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DF alone is not a fragment: is_frag 0, ports read",
    ),
    FullCase(
        name="ipv4_first_frag",
        frame=bytes(ether() / ip4(flags="MF", frag=0) / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="MF, offset 0: is_frag and is_first_frag, stop before the ports (BPF_OK)",
    ),
    FullCase(
        name="ipv4_first_frag_parse",
        frame=bytes(ether() / ip4(flags="MF", frag=0) / TCP(sport=1234, dport=80)),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D9: MF, offset 0 with PARSE_1ST_FRAG: frag bits set, no ports (the kernel reads none)",
    ),
    FullCase(
        name="ipv4_first_frag_df_mf_parse_udp",
        frame=bytes(ether() / ip4(flags="MF+DF", frag=0) / UDP(sport=4000, dport=4001)),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D9: MF with DF, offset 0, PARSE_1ST_FRAG: first fragment, no ports",
    ),
    FullCase(
        name="ipv4_later_frag",
        frame=bytes(ether() / ip4(flags="MF", frag=185, proto=6) / Raw(bytes(range(24)))),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="offset != 0: is_frag only, BPF_OK, nothing after the IP header read",
    ),
    FullCase(
        name="ipv4_later_frag_parse",
        frame=bytes(ether() / ip4(flags="MF", frag=185, proto=6) / Raw(bytes(range(24)))),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="offset != 0 stops even with PARSE_1ST_FRAG",
    ),
    FullCase(
        name="ipv4_last_frag_parse",
        frame=bytes(ether() / ip4(frag=370, proto=17) / Raw(bytes(range(24)))),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="last fragment (offset != 0, no MF): is_frag only, stops",
    ),
    FullCase(
        name="ipv4_flags_no_effect",
        frame=bytes(ether() / ip4() / TCP(sport=1234, dport=80)),
        flags=STOP_AT_FLOW_LABEL | STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="flow-label and encap flags change nothing for plain IPv4 TCP",
    ),
    FullCase(
        name="ipv4_continue_saddr",
        frame=bytes(ether() / ip4(src="127.0.0.127") / TCP(sport=99, dport=9090)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 99, "dport": 9090,
            "ipv4_src": "127.0.0.127", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D6: no selftest hook; 127.0.0.127 is dissected like any address (the reference returns CONTINUE)",
    ),
    FullCase(
        name="ipv4_continue_saddr_ihl6",
        frame=bytes(ether() / ip4(src="127.0.0.127", options=[b"\x01\x01\x01\x00"]) / TCP(sport=99, dport=9090)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 99, "dport": 9090,
            "ipv4_src": "127.0.0.127", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="entry hook needs ihl == 5: with options 127.0.0.127 is dissected normally",
    ),
    FullCase(
        name="ipv4_continue_daddr_only",
        frame=bytes(ether() / ip4(dst="127.0.0.127") / TCP(sport=99, dport=9090)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 99, "dport": 9090,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "127.0.0.127", "flow_label": 0,
        },
        note="entry hook looks at saddr only: 127.0.0.127 as destination is dissected normally",
    ),
    # --- transport (TCP, UDP)
    FullCase(
        name="l4_tcp_doff_4",
        frame=bytes(ether() / ip4() / TCP(sport=1234, dport=80, dataofs=4)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D8: TCP doff < 5: the kernel reads only the 4 port bytes, BPF_OK with ports",
    ),
    FullCase(
        name="l4_tcp_doff_0",
        frame=bytes(ether() / ip4() / TCP(sport=1234, dport=80, dataofs=0)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D8: TCP doff 0: ports read anyway, BPF_OK",
    ),
    FullCase(
        name="l4_tcp_doff_8_options",
        frame=bytes(ether() / ip4() / TCP(sport=2222, dport=22, options=[("MSS", 1460), ("WScale", 7), ("NOP", None), ("SAckOK", b"")])),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 2222, "dport": 22,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="TCP doff 8 with its options present: ports read",
    ),
    FullCase(
        name="l4_tcp_doff_15",
        frame=bytes(ether() / ip4() / TCP(sport=2222, dport=22, dataofs=15) / Raw(b"\x01" * 40)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 2222, "dport": 22,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="TCP doff 15, all 60 header bytes present: ports read",
    ),
    FullCase(
        name="l4_tcp_doff_15_short",
        frame=bytes(ether() / ip4() / TCP(sport=2222, dport=22, dataofs=15) / Raw(b"\x01" * 39)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 2222, "dport": 22,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D8: TCP doff 15 with options cut short: ports read, BPF_OK",
    ),
    FullCase(
        name="l4_udp_ports_extreme",
        frame=bytes(ether() / ip4() / UDP(sport=65535, dport=1)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 65535, "dport": 1,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="UDP ports in host order: 65535 and 1",
    ),
    FullCase(
        name="l4_udp_zero_ports",
        frame=bytes(ether() / ip4() / UDP(sport=0, dport=0)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="UDP ports 0 are copied as 0, BPF_OK",
    ),
    FullCase(
        name="l4_ipv6_tcp_doff_4",
        frame=bytes(ether() / ip6() / TCP(sport=1234, dport=80, dataofs=4)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D8: TCP doff < 5 over IPv6: ports read, BPF_OK",
    ),
    # --- IPv6: extension headers, fragments, flow label
    FullCase(
        name="ipv6_tcp",
        frame=bytes(ether() / ip6() / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="IPv6: addresses, ip_proto = nexthdr, thoff = nhoff + 40, ports",
    ),
    FullCase(
        name="ipv6_udp",
        frame=bytes(ether() / ip6() / UDP(sport=5353, dport=53)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 5353, "dport": 53,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="IPv6 UDP ports",
    ),
    FullCase(
        name="ipv6_icmpv6",
        frame=bytes(ether() / ip6() / ICMPv6EchoRequest(id=1, seq=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 58, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D2: ICMPv6 handled like ICMP (BPF_OK, ports 0); bpf_flow.c drops it",
    ),
    FullCase(
        name="ipv6_no_next_header",
        frame=bytes(ether() / ip6(nh=59) / Raw(bytes(range(8)))),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 59, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D7: no next header (59): a good dissection without ports, as in the kernel",
    ),
    FullCase(
        name="ipv6_flow_label",
        frame=bytes(ether() / ip6(fl=0xBEEEF) / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0xbeeef,
        },
        note="flow label copied into keys.flow_label; without the flag the ports are read",
    ),
    FullCase(
        name="ipv6_flow_label_masked",
        frame=bytes(ether() / ip6(tc=0xFF, fl=0xFFFFF) / UDP(sport=1000, dport=2000)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 1000, "dport": 2000,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0xfffff,
        },
        note="flow_label is the low 20 bits only; traffic class bits not copied",
    ),
    FullCase(
        name="ipv6_flow_label_stop",
        frame=bytes(ether() / ip6(fl=0xBEEEF) / TCP(sport=80, dport=8080)),
        flags=STOP_AT_FLOW_LABEL,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0xbeeef,
        },
        note="STOP_AT_FLOW_LABEL, non-zero label: BPF_OK after the IPv6 header, ip_proto = nexthdr, ports 0",
    ),
    FullCase(
        name="ipv6_zero_label_stop_continues",
        frame=bytes(ether() / ip6(fl=0) / TCP(sport=80, dport=8080)),
        flags=STOP_AT_FLOW_LABEL,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="STOP_AT_FLOW_LABEL with label 0 keeps going: ports read",
    ),
    FullCase(
        name="ipv6_flow_label_stop_before_hbh",
        frame=bytes(ether() / ip6(fl=0x12345) / IPv6ExtHdrHopByHop() / TCP(sport=1, dport=2)),
        flags=STOP_AT_FLOW_LABEL,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0x12345,
        },
        note="stop at the label before any extension header: ip_proto 0 (hop-by-hop), thoff = nhoff + 40",
    ),
    FullCase(
        name="ipv6_flow_label_stop_before_frag",
        frame=bytes(ether() / ip6(fl=0x1) / IPv6ExtHdrFragment(nh=6, offset=0, m=1, id=9) / TCP(sport=1, dport=2)),
        flags=PARSE_1ST_FRAG | STOP_AT_FLOW_LABEL,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 44, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0x00001,
        },
        note="label stop comes before the fragment header: is_frag 0, ip_proto 44",
    ),
    FullCase(
        name="ipv6_hbh_tcp",
        frame=bytes(ether() / ip6() / IPv6ExtHdrHopByHop() / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 62, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="hop-by-hop (hdrlen 0) skipped by 8 bytes; ip_proto from its nexthdr",
    ),
    FullCase(
        name="ipv6_dstopts_udp",
        frame=bytes(ether() / ip6() / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 12)]) / UDP(sport=53, dport=5353)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 70, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 53, "dport": 5353,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="destination options hdrlen 1 skipped by (1+1)*8 = 16 bytes",
    ),
    FullCase(
        name="ipv6_routing_tcp",
        frame=bytes(ether() / ip6() / IPv6ExtHdrRouting(addresses=["2001:db8::9"]) / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 78, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D1: routing header (hdrlen 2) skipped by 24 bytes; bpf_flow.c drops it as unknown",
    ),
    FullCase(
        name="ipv6_hbh_dst_tcp",
        frame=bytes(ether() / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 70, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="chain of two: hop-by-hop then destination options",
    ),
    FullCase(
        name="ipv6_hbh_dst_dst_udp",
        frame=bytes(
            ether() / ip6() / IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\x00" * 12)]) / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / UDP(sport=9, dport=10)
        ),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 86, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 9, "dport": 10,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="chain of three: 16 + 8 + 8 bytes skipped",
    ),
    FullCase(
        name="ipv6_hbh_routing_dst_udp",
        frame=bytes(
            ether() / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(addresses=["2001:db8::9", "2001:db8::a"]) / IPv6ExtHdrDestOpt() / UDP(sport=9, dport=10)
        ),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 110, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 9, "dport": 10,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D1: chain of three with a routing header (hdrlen 4, 40 bytes)",
    ),
    FullCase(
        name="ipv6_frag_first",
        frame=bytes(ether() / ip6() / IPv6ExtHdrFragment(nh=6, offset=0, m=1, id=7) / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 62, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="fragment header offset 0, M: is_frag, is_first_frag, thoff past it, stop (ports 0)",
    ),
    FullCase(
        name="ipv6_frag_first_parse",
        frame=bytes(ether() / ip6() / IPv6ExtHdrFragment(nh=6, offset=0, m=1, id=7) / TCP(sport=80, dport=8080)),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 62, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D9: first fragment with PARSE_1ST_FRAG: no ports",
    ),
    FullCase(
        name="ipv6_frag_later",
        frame=bytes(ether() / ip6() / IPv6ExtHdrFragment(nh=6, offset=100, m=1, id=7) / Raw(bytes(range(24)))),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 62, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="later fragment: is_frag only, ip_proto = fragment nexthdr, stop",
    ),
    FullCase(
        name="ipv6_frag_later_parse",
        frame=bytes(ether() / ip6() / IPv6ExtHdrFragment(nh=17, offset=100, m=0, id=7) / Raw(bytes(range(24)))),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 62, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="later (last) fragment stops even with PARSE_1ST_FRAG",
    ),
    FullCase(
        name="ipv6_frag_atomic",
        frame=bytes(ether() / ip6() / IPv6ExtHdrFragment(nh=17, offset=0, m=0, id=7) / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 62, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="atomic fragment (offset 0, no M) counts as a first fragment, as in the reference",
    ),
    FullCase(
        name="ipv6_hbh_frag_udp_parse",
        frame=bytes(ether() / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=7) / UDP(sport=5000, dport=5001)),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 70, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D9: hop-by-hop then first fragment with PARSE_1ST_FRAG: UDP reached, no ports",
    ),
    FullCase(
        name="ipv6_frag_dst_tcp_parse",
        frame=bytes(ether() / ip6() / IPv6ExtHdrFragment(nh=60, offset=0, m=1, id=7) / IPv6ExtHdrDestOpt(nh=6) / TCP(sport=5000, dport=5001)),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 70, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D9: first fragment then destination options with PARSE_1ST_FRAG: no ports",
    ),
    FullCase(
        name="ipv6_hbh_frag_stop",
        frame=bytes(ether() / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrFragment(nh=6, offset=0, m=1, id=7) / TCP(sport=5000, dport=5001)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 70, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="hop-by-hop then first fragment, no flag: stop after the fragment header",
    ),
    # --- VLAN (test runs always enter with the tag: n_proto 0x8100/0x88a8, nhoff 14 at the TCI)
    FullCase(
        name="vlan_ipv4_tcp",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x0800) / ip4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 18, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="802.1Q: nhoff and thoff +4, n_proto = encapsulated type, then IPv4",
    ),
    FullCase(
        name="vlan_ipv6_udp",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x86DD) / ip6() / UDP(sport=53, dport=5353)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 18, "thoff": 58, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 53, "dport": 5353,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="802.1Q carrying IPv6",
    ),
    FullCase(
        name="vlan_ipv6_label_stop",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x86DD) / ip6(fl=0xABCDE) / TCP(sport=1, dport=2)),
        flags=STOP_AT_FLOW_LABEL,
        retval=BPF_OK,
        keys={
            "nhoff": 18, "thoff": 58, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0xabcde,
        },
        note="802.1Q + IPv6 with STOP_AT_FLOW_LABEL: stop after the IPv6 header",
    ),
    FullCase(
        name="vlan_ad_q_ipv4",
        frame=bytes(ether(0x88A8) / Dot1AD(vlan=100, type=0x8100) / Dot1Q(vlan=5, type=0x0800) / ip4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 22, "thoff": 42, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="802.1AD outer + 802.1Q inner: nhoff +8, n_proto = inner type",
    ),
    FullCase(
        name="vlan_ad_q_ipv6",
        frame=bytes(ether(0x88A8) / Dot1AD(vlan=100, type=0x8100) / Dot1Q(vlan=5, type=0x86DD) / ip6() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 22, "thoff": 62, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="802.1AD + 802.1Q carrying IPv6 (the selftest's 802.1ad-ipv6)",
    ),
    FullCase(
        name="vlan_q_q",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=100, type=0x8100) / Dot1Q(vlan=5, type=0x0800) / ip4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 22, "thoff": 42, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D10: 802.1Q in 802.1Q: both tags skipped (the kernel takes any sequence), IPv4 TCP",
    ),
    FullCase(
        name="vlan_ad_only",
        frame=bytes(ether(0x88A8) / Dot1AD(vlan=100, type=0x0800) / ip4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 18, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D10: 802.1AD carrying IPv4 directly: skipped like any tag",
    ),
    FullCase(
        name="vlan_ad_ad",
        frame=bytes(ether(0x88A8) / Dot1AD(vlan=100, type=0x88A8) / Dot1AD(vlan=5, type=0x0800) / ip4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 22, "thoff": 42, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D10: 802.1AD in 802.1AD: both tags skipped",
    ),
    FullCase(
        name="vlan_triple",
        frame=bytes(
            ether(0x88A8) / Dot1AD(vlan=100, type=0x8100) / Dot1Q(vlan=5, type=0x8100) / Dot1Q(vlan=6, type=0x0800) / ip4() / TCP(sport=80, dport=8080)
        ),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 26, "thoff": 46, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D10: three tags: all skipped, n_proto 0x0800, IPv4 TCP",
    ),
    FullCase(
        name="vlan_arp",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x0806) / ARP(op=1, hwsrc=SRC_MAC, psrc="10.0.0.1", hwdst="00:00:00:00:00:00", pdst="10.0.0.2")),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 18, "thoff": 18, "addr_proto": 0, "n_proto": 0x0806,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="DIFF D12: 802.1Q carrying ARP: n_proto 0x0806, BPF_OK (the kernel reads no ARP for the hash)",
    ),
    FullCase(
        name="vlan_mpls",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x8847) / MPLS(label=100, s=1, ttl=64) / ip4() / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 18, "thoff": 22, "addr_proto": 0, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="DIFF D11: 802.1Q carrying MPLS: one label stepped over (thoff 22), BPF_OK",
    ),
    FullCase(
        name="vlan_continue_saddr_not_checked",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x0800) / ip4(src="127.0.0.127") / TCP(sport=99, dport=9090)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 18, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 99, "dport": 9090,
            "ipv4_src": "127.0.0.127", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="CONTINUE hook only runs at entry with n_proto IPv4: behind a tag 127.0.0.127 is dissected",
    ),
    FullCase(
        name="vlan_ipv4_first_frag_parse",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x0800) / ip4(flags="MF") / UDP(sport=6000, dport=6001)),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 18, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D9: 802.1Q + IPv4 first fragment with PARSE_1ST_FRAG: no ports",
    ),
    # --- MPLS
    FullCase(
        name="mpls_uc",
        frame=bytes(ether(0x8847) / MPLS(label=100, s=1, ttl=64) / ip4() / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 18, "addr_proto": 0, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="DIFF D11: MPLS unicast: thoff steps over one label, BPF_OK, nothing read",
    ),
    FullCase(
        name="mpls_mc",
        frame=bytes(ether(0x8848) / MPLS(label=200, s=1, ttl=64) / ip4() / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 18, "addr_proto": 0, "n_proto": 0x8848,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="DIFF D11: MPLS multicast 0x8848: same as unicast",
    ),
    FullCase(
        name="mpls_stack",
        frame=bytes(ether(0x8847) / MPLS(label=100, s=0, ttl=64) / MPLS(label=200, s=1, ttl=64) / ip6() / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 18, "addr_proto": 0, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="DIFF D11: label stack: one label stepped over; nothing below is dissected",
    ),
    FullCase(
        name="mpls_label_only",
        frame=bytes(ether(0x8847) / MPLS(label=100, s=1, ttl=64)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 18, "addr_proto": 0, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="DIFF D11: exactly one label and nothing else: thoff 18, BPF_OK",
    ),
    # --- unsupported ethertypes
    FullCase(
        name="ethertype_arp",
        frame=bytes(ether(0x0806) / ARP(op=1, hwsrc=SRC_MAC, psrc="10.0.0.1", hwdst="00:00:00:00:00:00", pdst="10.0.0.2")),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0, "n_proto": 0x0806,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="DIFF D12: ARP: BPF_OK with the entry keys (the kernel's hash reads no ARP)",
    ),
    FullCase(
        name="ethertype_lldp",
        frame=bytes(ether(0x88CC) / Raw(bytes.fromhex("0207040200000000010403020001060200780000"))),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x88cc,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="LLDP 0x88cc -> BPF_DROP",
    ),
    FullCase(
        name="ethertype_unknown_ip_inside",
        frame=bytes(ether(0x9000) / ip4() / TCP(sport=1234, dport=80)),
        flags=PARSE_1ST_FRAG | STOP_AT_FLOW_LABEL | STOP_AT_ENCAP,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x9000,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="unknown ethertype is not sniffed for IP, whatever the flags -> BPF_DROP",
    ),
    # --- IP in IP (4, 41)
    FullCase(
        name="encap_ipip_tcp",
        frame=bytes(ether() / ip4() / inner4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 34, "thoff": 54, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: IPv4-in-IPv4: is_encap, inner addresses and ports; nhoff = inner header (34)",
    ),
    FullCase(
        name="encap_ipip_stop",
        frame=bytes(ether() / ip4() / inner4() / TCP(sport=80, dport=8080)),
        flags=STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 34, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: STOP_AT_ENCAP: is_encap, ip_proto 4, nhoff/thoff at the inner header, outer addresses",
    ),
    FullCase(
        name="encap_ipip_all_flags",
        frame=bytes(ether() / ip4() / inner4() / TCP(sport=80, dport=8080)),
        flags=PARSE_1ST_FRAG | STOP_AT_FLOW_LABEL | STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 34, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: all three flags: STOP_AT_ENCAP decides; nhoff at the inner header",
    ),
    FullCase(
        name="encap_sit_6in4_udp",
        frame=bytes(ether() / ip4() / inner6(fl=0x11111) / UDP(sport=500, dport=4500)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 34, "thoff": 74, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 17, "sport": 500, "dport": 4500,
            "ipv6_src": "2001:db8:1::1", "ipv6_dst": "2001:db8:1::2", "flow_label": 0x11111,
        },
        note="DIFF D3: IPv6-in-IPv4 (41): n_proto 0x86dd and nhoff 34 with the inner IPv6 keys and label",
    ),
    FullCase(
        name="encap_sit_6in4_stop",
        frame=bytes(ether() / ip4() / inner6(fl=0x11111) / UDP(sport=500, dport=4500)),
        flags=STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 34, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 41, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: STOP_AT_ENCAP on protocol 41: n_proto 0x86dd and nhoff 34, outer IPv4 keys",
    ),
    FullCase(
        name="encap_sit_6in4_inner_label_stop",
        frame=bytes(ether() / ip4() / inner6(fl=0x22222) / UDP(sport=500, dport=4500)),
        flags=STOP_AT_FLOW_LABEL,
        retval=BPF_OK,
        keys={
            "nhoff": 34, "thoff": 74, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8:1::1", "ipv6_dst": "2001:db8:1::2", "flow_label": 0x22222,
        },
        note="DIFF D3: STOP_AT_FLOW_LABEL applies to the inner IPv6 header: stop after it, ports 0",
    ),
    FullCase(
        name="encap_4in6_tcp",
        frame=bytes(ether() / ip6(fl=0x33333) / inner4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 54, "thoff": 74, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0x33333,
        },
        note="DIFF D3: IPv4-in-IPv6 (nexthdr 4): n_proto 0x0800, nhoff 54; outer flow label stays",
    ),
    FullCase(
        name="encap_4in6_stop",
        frame=bytes(ether() / ip6(fl=0) / inner4() / TCP(sport=80, dport=8080)),
        flags=STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 54, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D3: STOP_AT_ENCAP after IPv6: n_proto 0x0800, nhoff = thoff = 54, outer IPv6 keys",
    ),
    FullCase(
        name="encap_4in6_outer_label_stop",
        frame=bytes(ether() / ip6(fl=0x33333) / inner4() / TCP(sport=80, dport=8080)),
        flags=STOP_AT_FLOW_LABEL | STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0x33333,
        },
        note="outer non-zero label with STOP_AT_FLOW_LABEL stops before the encapsulation: is_encap 0",
    ),
    FullCase(
        name="encap_6in6_udp",
        frame=bytes(ether() / ip6(fl=0x44444) / inner6(fl=0x55555) / UDP(sport=1000, dport=2000)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 54, "thoff": 94, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 17, "sport": 1000, "dport": 2000,
            "ipv6_src": "2001:db8:1::1", "ipv6_dst": "2001:db8:1::2", "flow_label": 0x55555,
        },
        note="DIFF D3: IPv6-in-IPv6: inner addresses and inner flow label, nhoff 54",
    ),
    FullCase(
        name="encap_6in6_stop",
        frame=bytes(ether() / ip6() / inner6() / UDP(sport=1000, dport=2000)),
        flags=STOP_AT_FLOW_LABEL | STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 54, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 41, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D3: zero outer label, STOP_AT_ENCAP on nexthdr 41: nhoff = thoff = 54",
    ),
    FullCase(
        name="encap_ipip_inner_first_frag",
        frame=bytes(ether() / ip4() / inner4(flags="MF") / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 34, "thoff": 54, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 1, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: inner first fragment: is_encap + is_frag + is_first_frag, ports 0",
    ),
    FullCase(
        name="encap_ipip_outer_first_frag",
        frame=bytes(ether() / ip4(flags="MF") / inner4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="outer first fragment without the flag stops before the encapsulation: is_encap 0",
    ),
    FullCase(
        name="encap_ipip_outer_first_frag_parse_stop",
        frame=bytes(ether() / ip4(flags="MF") / inner4() / TCP(sport=80, dport=8080)),
        flags=PARSE_1ST_FRAG | STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 34, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 1, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: outer first fragment, PARSE_1ST_FRAG then STOP_AT_ENCAP: nhoff 34",
    ),
    FullCase(
        name="encap_ipip_inner_continue_saddr",
        frame=bytes(ether() / ip4() / inner4(src="127.0.0.127") / TCP(sport=99, dport=9090)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 34, "thoff": 54, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 99, "dport": 9090,
            "ipv4_src": "127.0.0.127", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: CONTINUE hook is for the outermost header only: inner 127.0.0.127 dissected",
    ),
    FullCase(
        name="encap_vlan_ipip",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x0800) / ip4() / inner4() / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 38, "thoff": 58, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 17, "sport": 1, "dport": 2,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: 802.1Q then IPIP: nhoff = 18 + 20 = 38 (bpf_flow.c leaves 18)",
    ),
    # --- GRE
    FullCase(
        name="gre_ipv4_tcp",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800) / inner4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 38, "thoff": 58, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE v0 without options: thoff +4, is_encap, inner IPv4 at nhoff 38",
    ),
    FullCase(
        name="gre_ipv4_stop",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800) / inner4() / TCP(sport=80, dport=8080)),
        flags=STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 38, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE with STOP_AT_ENCAP: nhoff = thoff past GRE, ip_proto 47, outer addresses",
    ),
    FullCase(
        name="gre_csum_ipv4_udp",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800, chksum_present=1) / inner4() / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 42, "thoff": 62, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 17, "sport": 1, "dport": 2,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE C bit: checksum+reserved skipped (4 bytes)",
    ),
    FullCase(
        name="gre_key_ipv6_tcp",
        frame=bytes(ether() / ip4() / GRE(proto=0x86DD, key_present=1, key=0x01020304) / inner6() / TCP(sport=3, dport=4)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 42, "thoff": 82, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 3, "dport": 4,
            "ipv6_src": "2001:db8:1::1", "ipv6_dst": "2001:db8:1::2", "flow_label": 0,
        },
        note="DIFF D3: GRE K bit: key skipped; inner IPv6",
    ),
    FullCase(
        name="gre_seq_ipv4_udp",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800, seqnum_present=1, sequence_number=77) / inner4() / UDP(sport=5, dport=6)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 42, "thoff": 62, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 17, "sport": 5, "dport": 6,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE S bit: sequence number skipped",
    ),
    FullCase(
        name="gre_key_seq_ipv4_tcp",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800, key_present=1, key=9, seqnum_present=1, sequence_number=1) / inner4() / TCP(sport=7, dport=8)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 46, "thoff": 66, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 7, "dport": 8,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE K and S: 8 bytes of options",
    ),
    FullCase(
        name="gre_csum_key_seq_ipv6_udp",
        frame=bytes(
            ether() / ip4()
            / GRE(proto=0x86DD, chksum_present=1, key_present=1, key=9, seqnum_present=1, sequence_number=1) / inner6(fl=0x7) / UDP(sport=9, dport=10)
        ),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 50, "thoff": 90, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 17, "sport": 9, "dport": 10,
            "ipv6_src": "2001:db8:1::1", "ipv6_dst": "2001:db8:1::2", "flow_label": 0x00007,
        },
        note="DIFF D3: GRE C, K and S: 12 bytes of options, inner IPv6 with its label",
    ),
    FullCase(
        name="gre_csum_key_seq_stop",
        frame=bytes(
            ether() / ip4() / GRE(proto=0x0800, chksum_present=1, key_present=1, key=9, seqnum_present=1, sequence_number=1) / inner4() / TCP(sport=7, dport=8)
        ),
        flags=STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 50, "thoff": 50, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: STOP_AT_ENCAP after a 16-byte GRE header: nhoff = thoff = 34 + 16",
    ),
    FullCase(
        name="gre_teb_ipv4_tcp",
        frame=bytes(ether() / ip4() / GRE(proto=0x6558) / ether() / inner4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 52, "thoff": 72, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE TEB 0x6558: inner Ethernet skipped, nhoff = 52 at the inner IPv4",
    ),
    FullCase(
        name="gre_teb_key_ipv6_udp",
        frame=bytes(ether() / ip4() / GRE(proto=0x6558, key_present=1, key=42) / ether() / inner6() / UDP(sport=11, dport=12)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 56, "thoff": 96, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 17, "sport": 11, "dport": 12,
            "ipv6_src": "2001:db8:1::1", "ipv6_dst": "2001:db8:1::2", "flow_label": 0,
        },
        note="DIFF D3: GRE TEB with key carrying IPv6",
    ),
    FullCase(
        name="gre_teb_stop",
        frame=bytes(ether() / ip4() / GRE(proto=0x6558) / ether() / inner4() / TCP(sport=80, dport=8080)),
        flags=STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 52, "thoff": 52, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: STOP_AT_ENCAP with TEB: past the inner Ethernet header too, as in the kernel",
    ),
    FullCase(
        name="gre_teb_vlan_ipv4",
        frame=bytes(ether() / ip4() / GRE(proto=0x6558) / ether(0x8100) / Dot1Q(vlan=7, type=0x0800) / inner4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 56, "thoff": 76, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3/D4: 802.1Q inside TEB handled as at entry: nhoff 56 (bpf_flow.c moves the outer nhoff to 18)",
    ),
    FullCase(
        name="gre_teb_ad_q_ipv4",
        frame=bytes(
            ether() / ip4() / GRE(proto=0x6558) / ether(0x88A8)
            / Dot1AD(vlan=100, type=0x8100) / Dot1Q(vlan=7, type=0x0800) / inner4() / TCP(sport=80, dport=8080)
        ),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 60, "thoff": 80, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D4: 802.1AD+802.1Q inside TEB accepted as at entry; bpf_flow.c tests the stale outer n_proto and drops",
    ),
    FullCase(
        name="gre_teb_arp",
        frame=bytes(
            ether() / ip4() / GRE(proto=0x6558) / ether(0x0806) / ARP(op=1, hwsrc=SRC_MAC, psrc="10.0.0.1", hwdst="00:00:00:00:00:00", pdst="10.0.0.2")
        ),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 52, "thoff": 52, "addr_proto": 0x0800, "n_proto": 0x0806,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D12: TEB carrying ARP: n_proto 0x0806, nhoff at the ARP header, BPF_OK",
    ),
    FullCase(
        name="gre_mpls",
        frame=bytes(ether() / ip4() / GRE(proto=0x8847) / MPLS(label=100, s=1, ttl=64) / inner4() / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 38, "thoff": 42, "addr_proto": 0x0800, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D11: GRE carrying MPLS: one label stepped over, BPF_OK, outer addresses, n_proto 0x8847",
    ),
    FullCase(
        name="gre_unknown_proto",
        frame=bytes(ether() / ip4() / GRE(proto=0x880B) / Raw(bytes(range(20)))),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 38, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x880b,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE v0 carrying PPP 0x880b: is_encap then BPF_DROP (unsupported ethertype)",
    ),
    FullCase(
        name="gre_version1_pptp",
        frame=bytes(ether() / ip4() / GRE(version=1, key_present=1, key=0x00100001, proto=0x880B) / Raw(bytes(range(20)))),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 46, "thoff": 46, "addr_proto": 0x0800, "n_proto": 0x880b,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D13: PPTP: PPP protocol 0x0203 is not IP, n_proto 0x880b stays, next pass drops",
    ),
    FullCase(
        name="gre_version1_stop",
        frame=bytes(ether() / ip4() / GRE(version=1, key_present=1, key=0x00100001, proto=0x880B) / Raw(bytes(range(20)))),
        flags=STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 46, "thoff": 46, "addr_proto": 0x0800, "n_proto": 0x880b,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D13: PPTP with STOP_AT_ENCAP: past GRE and PPP, is_encap, n_proto 0x880b",
    ),
    FullCase(
        name="gre_over_ipv6",
        frame=bytes(ether() / ip6(fl=0x99) / GRE(proto=0x0800) / inner4() / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 58, "thoff": 78, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 17, "sport": 1, "dport": 2,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0x00099,
        },
        note="DIFF D3: GRE over IPv6 carrying IPv4: nhoff 58; outer flow label stays",
    ),
    FullCase(
        name="gre_nested_ipip",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800) / inner4() / ip4(src="10.2.0.1", dst="10.2.0.2") / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 58, "thoff": 78, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv4_src": "10.2.0.1", "ipv4_dst": "10.2.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE then IPIP: innermost addresses, nhoff 58 at the innermost header",
    ),
    FullCase(
        name="gre_nested_ipip_first_frag",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800) / inner4(flags="MF") / ip4(src="10.2.0.1", dst="10.2.0.2") / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 38, "thoff": 58, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 1, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE then an inner first fragment: stops at the inner IPv4 (frag bits, is_encap)",
    ),
    # --- truncation: a frame cut inside each layer
    FullCase(
        name="trunc_eth_ipv4_empty",
        frame=bytes(ether(0x0800)),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="14-byte frame, IPv4 ethertype: header missing -> BPF_DROP, entry keys",
    ),
    FullCase(
        name="trunc_eth_ipv6_empty",
        frame=bytes(ether(0x86DD)),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="14-byte frame, IPv6 ethertype -> BPF_DROP, entry keys",
    ),
    FullCase(
        name="trunc_vlan_tci",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x0800) / ip4() / TCP())[:16],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x8100,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="802.1Q tag cut (2 of 4 bytes) -> BPF_DROP, nhoff 14, n_proto 0x8100",
    ),
    FullCase(
        name="trunc_vlan_ad_inner_tag",
        frame=bytes(ether(0x88A8) / Dot1AD(vlan=100, type=0x8100) / Dot1Q(vlan=5, type=0x0800) / ip4() / TCP())[:20],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 18, "thoff": 18, "addr_proto": 0, "n_proto": 0x8100,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="DIFF D10: 802.1AD tag read, inner 802.1Q cut -> BPF_DROP, nhoff 18, n_proto 0x8100 (the inner tag's)",
    ),
    FullCase(
        name="trunc_vlan_ipv4",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x0800) / ip4() / TCP(sport=1, dport=2))[:30],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 18, "thoff": 18, "addr_proto": 0x0000, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="802.1Q read, IPv4 header cut -> BPF_DROP with nhoff 18, n_proto 0x0800",
    ),
    FullCase(
        name="trunc_mpls",
        frame=bytes(ether(0x8847) / MPLS(label=100, s=1, ttl=64))[:17],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 17, "addr_proto": 0, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="DIFF D11: MPLS label cut (3 of 4 bytes): stepped over anyway, thoff 18 clamped to 17",
    ),
    FullCase(
        name="trunc_ipv4_header",
        frame=bytes(ether() / ip4() / TCP(sport=1, dport=2))[:33],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="IPv4 header cut at 19 bytes -> BPF_DROP, nothing written",
    ),
    FullCase(
        name="trunc_ipv4_options",
        frame=bytes(ether() / ip4(options=[b"\x01" * 40]) / UDP(sport=1, dport=2))[:60],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 60, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D14: ihl 15 with options cut: addresses written, thoff 74 clamped to 60, BPF_OK",
    ),
    FullCase(
        name="trunc_ipv4_tcp_missing",
        frame=bytes(ether() / ip4() / TCP(sport=1, dport=2))[:34],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D8: IPv4 complete, no TCP byte: no ports, BPF_OK, thoff 34",
    ),
    FullCase(
        name="trunc_ipv4_tcp_19",
        frame=bytes(ether() / ip4() / TCP(sport=1, dport=2))[:53],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1, "dport": 2,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D8: TCP header cut at 19 bytes: the ports are there, BPF_OK",
    ),
    FullCase(
        name="trunc_ipv4_tcp_options",
        frame=bytes(ether() / ip4() / TCP(sport=2222, dport=22, options=[("MSS", 1460), ("WScale", 7), ("NOP", None), ("SAckOK", b"")]))[:60],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 2222, "dport": 22,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D8: TCP doff 8 with options cut: ports read, BPF_OK",
    ),
    FullCase(
        name="trunc_ipv4_udp_7",
        frame=bytes(ether() / ip4() / UDP(sport=1, dport=2))[:41],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 1, "dport": 2,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D8: UDP header cut at 7 bytes: ports read, BPF_OK",
    ),
    FullCase(
        name="trunc_ipv4_icmp_7",
        frame=bytes(ether() / ip4() / ICMP())[:41],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 1, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D7: ICMP header cut at 7 bytes: BPF_OK (the kernel reads none of it)",
    ),
    FullCase(
        name="trunc_ipv4_first_frag_parse_tcp",
        frame=bytes(ether() / ip4(flags="MF") / TCP(sport=1, dport=2))[:42],
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D9: first fragment, PARSE_1ST_FRAG, TCP cut: no ports, BPF_OK",
    ),
    FullCase(
        name="trunc_ipv6_header",
        frame=bytes(ether() / ip6() / TCP(sport=1, dport=2))[:53],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="IPv6 header cut at 39 bytes -> BPF_DROP, nothing written",
    ),
    FullCase(
        name="trunc_ipv6_tcp",
        frame=bytes(ether() / ip6(fl=0xCAFE) / TCP(sport=1, dport=2))[:60],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 1, "dport": 2,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 51966,
        },
        note="DIFF D8: IPv6 complete, TCP cut after the ports: ports read, BPF_OK",
    ),
    FullCase(
        name="trunc_ipv6_udp_7",
        frame=bytes(ether() / ip6() / UDP(sport=1, dport=2))[:61],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 1, "dport": 2,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D8: UDP over IPv6 cut at 7 bytes: ports read, BPF_OK",
    ),
    FullCase(
        name="trunc_ipv6_icmpv6",
        frame=bytes(ether() / ip6() / ICMPv6EchoRequest())[:58],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 58, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D7: ICMPv6 header cut at 4 bytes: BPF_OK",
    ),
    FullCase(
        name="trunc_ipv6_ext_before_len",
        frame=bytes(ether() / ip6() / IPv6ExtHdrHopByHop() / TCP(sport=1, dport=2))[:55],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="hop-by-hop cut before its length byte -> BPF_DROP, ip_proto 0, thoff 54",
    ),
    FullCase(
        name="trunc_ipv6_ext_body",
        frame=bytes(ether() / ip6() / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 12)]) / TCP(sport=1, dport=2))[:64],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 64, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D15: destination options (16 bytes) cut at 10: skipped by length, thoff 70 clamped to 64, BPF_OK",
    ),
    FullCase(
        name="trunc_ipv6_frag_header",
        frame=bytes(ether() / ip6() / IPv6ExtHdrFragment(nh=6, offset=0, m=1) / TCP(sport=1, dport=2))[:59],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 44, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="fragment header cut at 5 bytes -> BPF_DROP, is_frag 0, ip_proto 44",
    ),
    FullCase(
        name="trunc_ipv6_frag_first_parse_udp",
        frame=bytes(ether() / ip6() / IPv6ExtHdrFragment(nh=17, offset=0, m=1) / UDP(sport=1, dport=2))[:66],
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 62, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="DIFF D9: first fragment with PARSE_1ST_FRAG, UDP cut: BPF_OK, no ports",
    ),
    FullCase(
        name="trunc_ipip_inner",
        frame=bytes(ether() / ip4() / inner4() / TCP(sport=1, dport=2))[:44],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 34, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: IPIP with the inner header cut: is_encap, outer addresses, nhoff = thoff = 34, BPF_DROP",
    ),
    FullCase(
        name="trunc_6in4_inner",
        frame=bytes(ether() / ip4() / inner6() / UDP(sport=1, dport=2))[:60],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 34, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 41, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: IPv6-in-IPv4 with the inner header cut: n_proto 0x86dd, outer IPv4 addresses, BPF_DROP",
    ),
    FullCase(
        name="trunc_gre_base",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800) / inner4())[:36],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="GRE base header cut at 2 bytes -> BPF_DROP, is_encap 0, thoff 34",
    ),
    FullCase(
        name="trunc_gre_key",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800, key_present=1, key=5) / inner4())[:40],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D13: GRE key cut: BPF_DROP at the GRE header (thoff 34, no is_encap), as in the kernel",
    ),
    FullCase(
        name="trunc_gre_key_stop",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800, key_present=1, key=5) / inner4())[:40],
        flags=STOP_AT_ENCAP,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D13: GRE key cut with STOP_AT_ENCAP: BPF_DROP (bpf_flow.c returns BPF_OK)",
    ),
    FullCase(
        name="trunc_gre_end",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800) / inner4())[:38],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 38, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: frame ends right after GRE: inner IPv4 missing -> BPF_DROP, nhoff = thoff = 38",
    ),
    FullCase(
        name="trunc_gre_end_stop",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800) / inner4())[:38],
        flags=STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 38, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: frame ends right after GRE, STOP_AT_ENCAP: BPF_OK, nhoff = thoff = 38",
    ),
    FullCase(
        name="trunc_gre_teb_eth",
        frame=bytes(ether() / ip4() / GRE(proto=0x6558) / ether() / inner4())[:50],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x6558,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D13: TEB inner Ethernet cut: BPF_DROP at GRE with n_proto 0x6558, no is_encap",
    ),
    FullCase(
        name="trunc_gre_inner_tcp",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800) / inner4() / TCP(sport=1, dport=2))[:70],
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 38, "thoff": 58, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 1, "dport": 2,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D8: GRE + inner IPv4, TCP cut after the ports: ports read, BPF_OK",
    ),
)
