"""The full flow dissector: what the kernel's reference BPF dissector does, in pyfd.

It starts from what the kernel hands over, `keys.n_proto` and `keys.nhoff`
(`keys.thoff` equals `keys.nhoff` at entry; the receive path calls with 0,
test runs with 14), and takes one network header per pass: VLAN tags, MPLS,
IPv4 and IPv6 with their extension headers, and the encapsulations (IP in IP
either way, GRE carrying IP or Ethernet) that lead to another pass. The
parsers in `pyfd.lib` fill the keys and say whether another header follows.

Bounds: at most `lib.MAX_HEADERS` network headers per packet (the reference
is bounded by the kernel's tail-call limit instead) and `lib.MAX_IPV6_EXT`
IPv6 extension headers; deeper packets are dropped. Every call is inlined and
the loop unrolled, so the verifier sees straight-line code.

Differences from tools/testing/selftests/bpf/progs/bpf_flow.c, each argued
in the parser that makes it:
- STOP_AT_FLOW_LABEL stops only at a non-zero label (`lib.ipv6`);
- IPv6 routing headers are skipped, not dropped (`lib.ipv6_ext`);
- no test hook: the reference sends IPv4 from 127.0.0.127 to the kernel's
  dissector (BPF_FLOW_DISSECTOR_CONTINUE) for its own selftests;
- no map of the last dissection (the reference's `last_dissection`, also a
  selftest aid).
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
