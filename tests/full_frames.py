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

The reference is the kernel's tools/testing/selftests/bpf/progs/bpf_flow.c as
of Linux 6.x (with the 127.0.0.127 CONTINUE hook and the "stop at the flow
label only when it is non-zero" fix), read together with the kernel's test-run
entry state (nhoff = thoff = 14, n_proto = the frame's Ethernet type, so a
tagged frame enters with n_proto 0x8100/0x88a8 and nhoff at the TCI).

Rules of the reference that the table keeps (no difference):

- Headers are read at keys.thoff; a header not wholly in the frame is a
  BPF_DROP with the keys as written so far (test runs have no skb, so
  bpf_skb_load_bytes never rescues a short read).
- Unknown ethertype -> BPF_DROP. Unknown IP protocol (anything but ICMP, TCP,
  UDP, UDPLITE, IPIP, IPv6, GRE; and, here, ICMPv6) -> BPF_DROP after the
  L3 keys were written.
- IPv4: ihl < 5 -> DROP before any key is written; then addr_proto, addresses,
  ip_proto, thoff += ihl*4 (options must be in the frame, else DROP); MF or a
  non-zero offset sets is_frag; offset 0 also sets is_first_frag and stops
  (BPF_OK, ports 0) unless PARSE_1ST_FRAG; a non-zero offset always stops.
- IPv6: addresses, thoff += 40, ip_proto = nexthdr, flow_label = low 20 bits;
  STOP_AT_FLOW_LABEL stops (BPF_OK) only when the label is non-zero.
  Hop-by-hop/destination options are skipped by (hdrlen+1)*8, without checking
  that the whole extension header is present (the next read catches it). The
  fragment header sets is_frag, ip_proto = its nexthdr, thoff += 8; offset 0
  (M or not: an atomic fragment counts) sets is_first_frag and continues only
  with PARSE_1ST_FRAG.
- TCP: 20 bytes, doff >= 5 and doff*4 bytes present, else DROP. UDP/UDPLITE
  and ICMP: the 8-byte header must be present.
- VLAN: only 802.1Q, or 802.1AD followed by 802.1Q. Each tag adds 4 to nhoff
  and thoff; n_proto becomes the encapsulated type. 802.1Q followed by
  802.1Q/802.1AD, 802.1AD followed by anything but 802.1Q, and a third tag
  are BPF_DROP (the 802.1AD check happens before nhoff moves).
- MPLS (0x8847, 0x8848): one 4-byte label must be present, then BPF_OK with
  nothing changed (nhoff = thoff = the label's offset, no addresses).
- IPIP (4) and IPv6 (41): is_encap; STOP_AT_ENCAP -> BPF_OK with the outer
  keys (ip_proto 4/41, thoff past the outer header).
- GRE: version != 0 -> BPF_OK at once (is_encap 0, thoff at the GRE header).
  Version 0: thoff += 4, +4 for each of C, K, S; is_encap; STOP_AT_ENCAP ->
  BPF_OK with thoff past the GRE header (for TEB: before the inner Ethernet
  header). TEB (0x6558): the inner Ethernet header must be present, thoff += 14,
  dispatch on its type. The routing bit is ignored, as in the reference (not
  tested here).
- After encapsulation the inner headers overwrite addresses, ip_proto, ports,
  flow_label (an IPv6 label stays when the inner header is IPv4). For an IPv4
  header inside IPv6, bytes 24..48 of the keys keep what the outer IPv6 header
  wrote; the table does not specify them (only ipv4_src/ipv4_dst).

Differences from bpf_flow.c (cases with a difference say "DIFF Dn" in their note):

- D1: the IPv6 routing header (43) is skipped like hop-by-hop and destination
  options: bpf_flow.c leaves it out of parse_ipv6_proto and so drops every
  routed IPv6 packet as an unknown transport; the kernel's C dissector skips it.
- D2: ICMPv6 (58) is treated like ICMP (8-byte header, BPF_OK, ports 0):
  bpf_flow.c reads ICMP for IPv4 but has no ICMPv6 case, so every ICMPv6 packet
  (neighbour discovery included) is a BPF_DROP; no protocol reason for that.
- D3: when the dissector goes into an encapsulated packet (IPIP, IPv6 in IP,
  GRE), nhoff and n_proto follow it: nhoff = the inner network header's offset
  and n_proto = its protocol (the GRE protocol field; for TEB the inner
  Ethernet type, nhoff past the inner Ethernet header), set before the inner
  header is read, exactly as bpf_flow.c already does for VLAN tags. bpf_flow.c
  leaves the outer nhoff/n_proto only because parse_eth_proto passes the inner
  protocol as a tail-call argument instead of through the keys, which pairs an
  IPv4 n_proto with IPv6 addresses for 6in4 (the kernel's C dissector reports
  the inner n_proto). With STOP_AT_ENCAP nothing moves: keys describe the
  outer header. The selftest's "ipip-encap"/"ip-gre" cases expect nhoff 14;
  this table expects the inner offset.
- D4: VLAN tags inside GRE TEB are handled with the entry rules (follows from
  D3): bpf_flow.c's VLAN program tests keys->n_proto, which still holds the
  outer IP protocol, so an inner 802.1AD+802.1Q pair is dropped, and it adds
  the tag length to the outer nhoff (18 for a TEB frame over IPv4).
- D5: a GRE header whose checksum/key/sequence fields run past the frame is a
  BPF_DROP also with STOP_AT_ENCAP: bpf_flow.c never checks the optional
  fields and returns BPF_OK with thoff past the end (clamped by the kernel).
  The check comes after thoff and is_encap are updated and before nhoff
  moves (D3), so without the flag both drop with the same keys.
- D6: bpf_flow.c returns BPF_FLOW_DISSECTOR_CONTINUE at entry for an IPv4
  packet from 127.0.0.127 (ihl 5), a hook for its own selftests; a production
  dissector has no reason to hand one address to the kernel, so samples/full.py
  dissects it like any other.
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
    "D3": "nhoff and n_proto follow into an encapsulated packet",
    "D4": "VLAN tags inside GRE TEB use the entry rules",
    "D5": "GRE optional fields past the frame: BPF_DROP also with STOP_AT_ENCAP",
    "D6": "no selftest hook sending IPv4 from 127.0.0.127 to the kernel's dissector",
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
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 132, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="unknown IP protocol (SCTP 132): parse_ip_proto default -> BPF_DROP, L3 keys kept",
    ),
    FullCase(
        name="ipv4_other_esp",
        frame=bytes(ether() / ip4(proto=50) / Raw(bytes(range(16)))),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 50, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="unknown IP protocol (ESP 50) -> BPF_DROP with addresses and thoff set",
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
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 1234, "dport": 80,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="MF, offset 0 with PARSE_1ST_FRAG: frag bits set and ports read",
    ),
    FullCase(
        name="ipv4_first_frag_df_mf_parse_udp",
        frame=bytes(ether() / ip4(flags="MF+DF", frag=0) / UDP(sport=4000, dport=4001)),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 17, "sport": 4000, "dport": 4001,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="MF with DF, offset 0, PARSE_1ST_FRAG: first fragment, UDP ports read",
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
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="TCP doff < 5 -> BPF_DROP, ports not written",
    ),
    FullCase(
        name="l4_tcp_doff_0",
        frame=bytes(ether() / ip4() / TCP(sport=1234, dport=80, dataofs=0)),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="TCP doff 0 -> BPF_DROP",
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
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="TCP doff 15 but one option byte missing -> BPF_DROP (tcp + doff*4 > data_end)",
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
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="TCP doff < 5 over IPv6 -> BPF_DROP with IPv6 keys kept",
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
        note="DIFF D2: ICMPv6 handled like ICMP (8-byte header, BPF_OK, ports 0); bpf_flow.c drops it",
    ),
    FullCase(
        name="ipv6_no_next_header",
        frame=bytes(ether() / ip6(nh=59) / Raw(bytes(range(8)))),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 59, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="unknown next header (59) -> BPF_DROP with the IPv6 keys",
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
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 80, "dport": 8080,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="first fragment with PARSE_1ST_FRAG: ports read",
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
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 17, "sport": 5000, "dport": 5001,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="hop-by-hop then first fragment with PARSE_1ST_FRAG: ports read",
    ),
    FullCase(
        name="ipv6_frag_dst_tcp_parse",
        frame=bytes(ether() / ip6() / IPv6ExtHdrFragment(nh=60, offset=0, m=1, id=7) / IPv6ExtHdrDestOpt(nh=6) / TCP(sport=5000, dport=5001)),
        flags=PARSE_1ST_FRAG,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 70, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 5000, "dport": 5001,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="first fragment then destination options with PARSE_1ST_FRAG",
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
        name="vlan_q_q_dropped",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=100, type=0x8100) / Dot1Q(vlan=5, type=0x0800) / ip4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 18, "thoff": 18, "addr_proto": 0x0000, "n_proto": 0x8100,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="802.1Q in 802.1Q: only 802.1AD+802.1Q is allowed -> BPF_DROP after the first tag",
    ),
    FullCase(
        name="vlan_ad_only_dropped",
        frame=bytes(ether(0x88A8) / Dot1AD(vlan=100, type=0x0800) / ip4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x88a8,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="802.1AD must be followed by 802.1Q -> BPF_DROP before moving nhoff",
    ),
    FullCase(
        name="vlan_ad_ad_dropped",
        frame=bytes(ether(0x88A8) / Dot1AD(vlan=100, type=0x88A8) / Dot1AD(vlan=5, type=0x0800) / ip4() / TCP(sport=80, dport=8080)),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x88a8,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="802.1AD followed by 802.1AD -> BPF_DROP, nhoff unchanged",
    ),
    FullCase(
        name="vlan_triple_dropped",
        frame=bytes(
            ether(0x88A8) / Dot1AD(vlan=100, type=0x8100) / Dot1Q(vlan=5, type=0x8100) / Dot1Q(vlan=6, type=0x0800) / ip4() / TCP(sport=80, dport=8080)
        ),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 22, "thoff": 22, "addr_proto": 0x0000, "n_proto": 0x88a8,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="no triple tagging: BPF_DROP after two tags (nhoff +8), n_proto still 802.1AD",
    ),
    FullCase(
        name="vlan_arp",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x0806) / ARP(op=1, hwsrc=SRC_MAC, psrc="10.0.0.1", hwdst="00:00:00:00:00:00", pdst="10.0.0.2")),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 18, "thoff": 18, "addr_proto": 0x0000, "n_proto": 0x0806,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="802.1Q carrying ARP: n_proto set to 0x0806 then BPF_DROP (unsupported)",
    ),
    FullCase(
        name="vlan_mpls",
        frame=bytes(ether(0x8100) / Dot1Q(vlan=5, type=0x8847) / MPLS(label=100, s=1, ttl=64) / ip4() / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 18, "thoff": 18, "addr_proto": 0x0000, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="802.1Q carrying MPLS: one label read, BPF_OK, nhoff = thoff = 18",
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
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 17, "sport": 6000, "dport": 6001,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="802.1Q + IPv4 first fragment with PARSE_1ST_FRAG",
    ),
    # --- MPLS
    FullCase(
        name="mpls_uc",
        frame=bytes(ether(0x8847) / MPLS(label=100, s=1, ttl=64) / ip4() / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="MPLS unicast: one 4-byte label read, BPF_OK, no key changed",
    ),
    FullCase(
        name="mpls_mc",
        frame=bytes(ether(0x8848) / MPLS(label=200, s=1, ttl=64) / ip4() / TCP(sport=1234, dport=80)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x8848,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="MPLS multicast 0x8848: same as unicast",
    ),
    FullCase(
        name="mpls_stack",
        frame=bytes(ether(0x8847) / MPLS(label=100, s=0, ttl=64) / MPLS(label=200, s=1, ttl=64) / ip6() / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="label stack: still only the first label is read; nothing below is dissected",
    ),
    FullCase(
        name="mpls_label_only",
        frame=bytes(ether(0x8847) / MPLS(label=100, s=1, ttl=64)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="exactly one label and nothing else: BPF_OK",
    ),
    # --- unsupported ethertypes
    FullCase(
        name="ethertype_arp",
        frame=bytes(ether(0x0806) / ARP(op=1, hwsrc=SRC_MAC, psrc="10.0.0.1", hwdst="00:00:00:00:00:00", pdst="10.0.0.2")),
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x0806,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="ARP: parse_eth_proto default -> BPF_DROP, keys as at entry",
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
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="STOP_AT_ENCAP: is_encap, ip_proto 4, thoff past the outer header, outer keys, BPF_OK",
    ),
    FullCase(
        name="encap_ipip_all_flags",
        frame=bytes(ether() / ip4() / inner4() / TCP(sport=80, dport=8080)),
        flags=PARSE_1ST_FRAG | STOP_AT_FLOW_LABEL | STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="all three flags: STOP_AT_ENCAP decides",
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
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 41, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="STOP_AT_ENCAP on protocol 41: outer IPv4 keys, ip_proto 41, flow_label 0",
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
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="STOP_AT_ENCAP after IPv6: ip_proto 4, thoff 54, outer IPv6 keys",
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
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 41, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="zero outer label lets STOP_AT_ENCAP act on nexthdr 41: ip_proto 41, thoff 54",
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
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 1, "ip_proto": 4, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="outer first fragment, PARSE_1ST_FRAG then STOP_AT_ENCAP: frag bits and is_encap, thoff 34",
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
            "nhoff": 14, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="GRE with STOP_AT_ENCAP: thoff past the GRE header, ip_proto 47, outer keys, BPF_OK",
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
            "nhoff": 14, "thoff": 50, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="STOP_AT_ENCAP after a 16-byte GRE header: thoff = 34 + 16",
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
            "nhoff": 14, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="STOP_AT_ENCAP with TEB: thoff at the end of GRE, inner Ethernet not skipped",
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
        retval=BPF_DROP,
        keys={
            "nhoff": 52, "thoff": 52, "addr_proto": 0x0800, "n_proto": 0x0806,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: TEB carrying ARP: BPF_DROP with n_proto 0x0806 and nhoff at the ARP header",
    ),
    FullCase(
        name="gre_mpls",
        frame=bytes(ether() / ip4() / GRE(proto=0x8847) / MPLS(label=100, s=1, ttl=64) / inner4() / UDP(sport=1, dport=2)),
        flags=0,
        retval=BPF_OK,
        keys={
            "nhoff": 38, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE carrying MPLS: label read, BPF_OK, outer addresses, n_proto 0x8847",
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
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="GRE version != 0: BPF_OK at once, is_encap 0, thoff at the GRE header",
    ),
    FullCase(
        name="gre_version1_stop",
        frame=bytes(ether() / ip4() / GRE(version=1, key_present=1, key=0x00100001, proto=0x880B) / Raw(bytes(range(20)))),
        flags=STOP_AT_ENCAP,
        retval=BPF_OK,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="GRE version != 0 with STOP_AT_ENCAP: same, is_encap stays 0",
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
            "nhoff": 18, "thoff": 18, "addr_proto": 0x0000, "n_proto": 0x88a8,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="802.1AD tag read, inner 802.1Q cut -> BPF_DROP with nhoff 18, n_proto 0x88a8",
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
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 14, "addr_proto": 0x0000, "n_proto": 0x8847,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 0, "sport": 0, "dport": 0,
            "ipv4_src": "0.0.0.0", "ipv4_dst": "0.0.0.0", "flow_label": 0,
        },
        note="MPLS label cut (3 of 4 bytes) -> BPF_DROP",
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
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 60, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="ihl 15 with options cut: addresses written, thoff 74 clamped to 60, BPF_DROP",
    ),
    FullCase(
        name="trunc_ipv4_tcp_missing",
        frame=bytes(ether() / ip4() / TCP(sport=1, dport=2))[:34],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="IPv4 complete, no TCP byte -> BPF_DROP, thoff 34",
    ),
    FullCase(
        name="trunc_ipv4_tcp_19",
        frame=bytes(ether() / ip4() / TCP(sport=1, dport=2))[:53],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="TCP header cut at 19 bytes -> BPF_DROP, ports not written",
    ),
    FullCase(
        name="trunc_ipv4_tcp_options",
        frame=bytes(ether() / ip4() / TCP(sport=2222, dport=22, options=[("MSS", 1460), ("WScale", 7), ("NOP", None), ("SAckOK", b"")]))[:60],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="TCP doff 8 with options cut -> BPF_DROP",
    ),
    FullCase(
        name="trunc_ipv4_udp_7",
        frame=bytes(ether() / ip4() / UDP(sport=1, dport=2))[:41],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="UDP header cut at 7 bytes (ports present, length not) -> BPF_DROP",
    ),
    FullCase(
        name="trunc_ipv4_icmp_7",
        frame=bytes(ether() / ip4() / ICMP())[:41],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 1, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="ICMP header cut at 7 bytes -> BPF_DROP",
    ),
    FullCase(
        name="trunc_ipv4_first_frag_parse_tcp",
        frame=bytes(ether() / ip4(flags="MF") / TCP(sport=1, dport=2))[:42],
        flags=PARSE_1ST_FRAG,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 34, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="first fragment, PARSE_1ST_FRAG, TCP cut: BPF_DROP with the frag bits kept",
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
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0x0cafe,
        },
        note="IPv6 complete, TCP cut -> BPF_DROP with addresses, flow label, thoff 54",
    ),
    FullCase(
        name="trunc_ipv6_udp_7",
        frame=bytes(ether() / ip6() / UDP(sport=1, dport=2))[:61],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="UDP over IPv6 cut at 7 bytes -> BPF_DROP",
    ),
    FullCase(
        name="trunc_ipv6_icmpv6",
        frame=bytes(ether() / ip6() / ICMPv6EchoRequest())[:58],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 54, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 58, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="ICMPv6 header cut at 4 bytes -> BPF_DROP (also in bpf_flow.c, which drops all ICMPv6)",
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
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 64, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 0, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="destination options (16 bytes) cut at 10: skipped by length, thoff 70 clamped to 64, BPF_DROP",
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
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 62, "addr_proto": 0x86dd, "n_proto": 0x86dd,
            "is_frag": 1, "is_first_frag": 1, "is_encap": 0, "ip_proto": 17, "sport": 0, "dport": 0,
            "ipv6_src": "2001:db8::1", "ipv6_dst": "2001:db8::2", "flow_label": 0,
        },
        note="first fragment with PARSE_1ST_FRAG, UDP cut -> BPF_DROP with the frag bits kept",
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
            "nhoff": 14, "thoff": 40, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="GRE key cut: thoff 42 clamped to 40, is_encap set, BPF_DROP, nhoff stays 14",
    ),
    FullCase(
        name="trunc_gre_key_stop",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800, key_present=1, key=5) / inner4())[:40],
        flags=STOP_AT_ENCAP,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 40, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="DIFF D5: GRE key cut with STOP_AT_ENCAP -> BPF_DROP (bpf_flow.c returns BPF_OK)",
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
            "nhoff": 14, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="frame ends right after GRE with STOP_AT_ENCAP: header complete, BPF_OK",
    ),
    FullCase(
        name="trunc_gre_teb_eth",
        frame=bytes(ether() / ip4() / GRE(proto=0x6558) / ether() / inner4())[:50],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 14, "thoff": 38, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 47, "sport": 0, "dport": 0,
            "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "flow_label": 0,
        },
        note="TEB inner Ethernet cut -> BPF_DROP, is_encap, thoff 38, nhoff 14",
    ),
    FullCase(
        name="trunc_gre_inner_tcp",
        frame=bytes(ether() / ip4() / GRE(proto=0x0800) / inner4() / TCP(sport=1, dport=2))[:70],
        flags=0,
        retval=BPF_DROP,
        keys={
            "nhoff": 38, "thoff": 58, "addr_proto": 0x0800, "n_proto": 0x0800,
            "is_frag": 0, "is_first_frag": 0, "is_encap": 1, "ip_proto": 6, "sport": 0, "dport": 0,
            "ipv4_src": "10.1.0.1", "ipv4_dst": "10.1.0.2", "flow_label": 0,
        },
        note="DIFF D3: GRE + inner IPv4, TCP cut -> BPF_DROP with inner addresses, nhoff 38",
    ),
)
