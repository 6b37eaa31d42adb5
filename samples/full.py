"""The full flow dissector: what the kernel's reference BPF dissector does, in pyfd.

It starts from what the kernel hands over, `keys.n_proto` and `keys.nhoff`
(`keys.thoff` equals `keys.nhoff` at entry; the receive path calls with 0,
test runs with 14), and takes one network header per pass: VLAN tags, MPLS,
IPv4 and IPv6 with their extension headers, and the encapsulations (IP in IP
either way, GRE carrying IP or Ethernet) that lead to another pass. The
parsers in `pyfd.lib` fill the keys and say whether another header follows.

Bounds: at most `lib.MAX_HEADERS` network headers per packet (the reference
is bounded by the kernel's tail-call limit instead) and `lib.MAX_IPV6_EXT`
IPv6 extension headers; deeper packets are dropped. Every call is inlined;
each loop is compiled once and the verifier walks its iterations.

Differences from tools/testing/selftests/bpf/progs/bpf_flow.c, each argued
in the parser that makes it and tagged D1-D6 in tests/full_frames.py:
- D1: IPv6 routing headers are skipped, not dropped (`lib.ipv6_ext`);
- D2: ICMPv6 is read like ICMP instead of dropped (`lib.transport`);
- D3: after an encapsulation, `nhoff` and `n_proto` move to the inner
  network header, as the kernel's own dissector reports it
  (`lib.encapsulated`);
- D4: so VLAN tags inside GRE-carried Ethernet follow the entry rules;
- D5: GRE optional words that run past the packet are a drop (`lib.gre`);
- D6: no selftest hook: the reference sends IPv4 from 127.0.0.127 to the
  kernel's dissector (BPF_FLOW_DISSECTOR_CONTINUE); nor its map of the last
  dissection.
"""

from pyfd import BPF_DROP, BpfFlowKeys, Packet, dissector, lib, u16


@dissector
def full(pkt: Packet, keys: BpfFlowKeys) -> int:
    proto: u16 = keys.n_proto
    for _ in range(lib.MAX_HEADERS):
        verdict, proto = lib.network(pkt, keys, proto)
        if verdict != lib.NEXT:
            return verdict
    return BPF_DROP  # nested deeper than lib.MAX_HEADERS
