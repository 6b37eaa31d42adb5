"""The full flow dissector: the kernel's own dissector, pass for pass, in pyfd.

It starts from what the kernel hands over, `keys.n_proto` and `keys.nhoff`
(`keys.thoff` equals `keys.nhoff` at entry; the receive path calls with 0,
test runs with 14), and takes one header per pass as the kernel's
`__skb_flow_dissect` (net/core/flow_dissector.c) does: VLAN tags, MPLS,
IPv4 and IPv6, IPv6 extension headers, IP in IP either way, GRE (version 0,
and version 1 carrying PPTP's PPP) with IP, Ethernet or MPLS inside, and the
ports word of TCP, UDP, UDP-Lite, SCTP, DCCP, ESP and AH. The parsers in
`pyfd.lib` keep the kernel's loop state in the keys and say what comes next.
At most `lib.MAX_HEADERS` passes follow the first, as in the kernel. Every
call is inlined; the loop is compiled once and the verifier walks its passes.

The kernel hashes what a dissector leaves in the keys (`skb_get_hash()`:
RPS/RFS, fq, ECMP, bonding), so tests/test_kernel_equivalence.py attaches
this one in a namespace and checks that the kernel hashes every frame of
tests/kequiv.py's corpus alike with it as without it, wherever the fields it
hashes fit in struct bpf_flow_keys, and that the kernel's payload offset
(`skb_get_poff()`: the return code and thoff as the kernel uses them) is the
same on every frame. Where they do not, no BPF dissector can
hash alike: the C dissector also hashes the first VLAN tag (id, priority,
TPID, inner type) and the GRE key (for PPTP the call id), which the keys
have no field for.

How it departs from the kernel and from the reference BPF dissector
(tools/testing/selftests/bpf/progs/bpf_flow.c), each with the reason:

| what | kernel (C) | bpf_flow.c | full.py | why |
|---|---|---|---|---|
| first VLAN tag, GRE key, PPTP call id | hashed | not hashed | not hashed | struct bpf_flow_keys has no field for them |
| PPPoE, TIPC, FCoE, B.A.T.M.A.N., PTP, PRP/HSR, CFM | dissected | dropped | CONTINUE: the kernel dissects them |
  the kernel knows them; handing them back hashes them exactly as it does |
| n_proto after IP in IP or GRE | the inner type | the outer one | the inner type |
  follows the kernel; the reference pairs an IPv4 n_proto with 6in4's IPv6 addresses |
| ... also with STOP_AT_ENCAP | the inner type | the outer one | the inner type | follows the kernel |
| VLAN tags | any sequence | 802.1Q, or 802.1ad then 802.1Q | any sequence | follows the kernel |
| MPLS | steps over one label, good even if cut | reads the label | steps over one label | the hashing dissector has no MPLS key and reads nothing |
| MPLS in IP (137) | followed | dropped | followed | follows the kernel |
| SCTP, DCCP, ESP, AH | ports word (SPI for ESP, AH) | dropped | ports word | proto_ports_offset() in include/linux/in.h |
| ICMPv6, unknown IP protocols | good, no ports | dropped | good, no ports | follows the kernel |
| TCP/UDP cut after the ports, TCP data offset < 5 | ports hashed | dropped | ports hashed | the kernel reads only the 4 port bytes |
| IPv4 options past the packet's end | go on to the protocol | dropped | go on to the protocol | follows the kernel (6in4 then reports IPv6) |
| IPv6 routing header | skipped | dropped | skipped | follows the kernel |
| ports of a first fragment (PARSE_1ST_FRAG) | none | read | none | the kernel keeps all fragments of a datagram in one flow |
| a zero inner IPv6 flow label | keeps the outer one | overwrites it | keeps the outer one | follows the kernel |
| GRE with the routing bit | stops at GRE | ignores the bit | stops at GRE | follows the kernel |
| GRE version 1 (PPTP) | follows PPP to IP | stops | follows PPP to IP | follows the kernel |
| GRE checksum/sequence words past the end | not checked | not checked | not checked | as both |
| GRE key word past the end | a failed dissection | not checked | BPF_DROP | follows the kernel |
| nesting | 15 more passes, then good | 33 tail calls | 15 more passes, then good | MAX_FLOW_DISSECT_HDRS |
| IPv4 from 127.0.0.127 | dissected | CONTINUE (a selftest hook) | dissected | no production reason for the hook |
| the map of the last dissection | none | written | none | a selftest aid |
"""

from pyfd import BpfFlowKeys, Packet, dissector, lib, u8


@dissector
def full(pkt: Packet, keys: BpfFlowKeys) -> int:
    step: u8 = lib.NEXT_PROTO
    for _ in range(lib.MAX_HEADERS + 1):
        verdict = lib.one_pass(pkt, keys, step)
        if verdict != lib.NEXT_PROTO:
            if verdict != lib.NEXT_IP_PROTO:
                return verdict
        step = verdict
    return lib.out_of_headers(pkt, keys, step)  # the kernel stops after MAX_HEADERS more passes
