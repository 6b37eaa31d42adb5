"""The full dissector with UDP tunnels and MPLS label stacks: the inner flow of VXLAN, Geneve, GTP-U and friends.

samples/full.py dissects as the kernel does, and the kernel stops at a UDP
header: every flow inside a tunnel between two hosts then hashes as the one
outer flow (RPS/RFS, fq, ECMP and bonding keep it on one CPU, queue or path),
spread only by whatever source port the encapsulator chose; GTP-U uses port
2152 on both sides, so a mobile core's user traffic between two nodes is one
flow. This dissector is full.py with `lib.tunnel_pass` in place of
`lib.one_pass`: where a UDP destination port names a tunnel it goes on into
the packet inside, and it follows MPLS label stacks (where the kernel steps
over one label) to the IPv4 or IPv6 packet under them.

| tunnel | UDP port (default) | followed | not followed (the outer UDP flow) |
|---|---|---|---|
| VXLAN (RFC 7348) | 4789 | the I flag set: the Ethernet frame | the I flag clear |
| VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe) | 4790 | version 0, I and P set: IPv4, IPv6, Ethernet | NSH, other next protocols, OAM |
| Geneve (RFC 8926) | 6081 | version 0, options skipped: Ethernet, IPv4, IPv6, MPLS | control packets (O), other protocols |
| GTP-U (3GPP TS 29.281) | 2152 | version 1 G-PDU, optional word, up to 8 extension headers: IPv4, IPv6 | other messages, GTP', non-IP PDUs |
| GUE (draft-ietf-intarea-gue) | 6080 | variant 0 (extension fields skipped): IPv4, IPv6, MPLS; variant 1: IPv4, IPv6 | control messages, other protocols |
| MPLS in UDP (RFC 7510) | 6635 | the label stack | - |
| MPLS (over Ethernet, GRE, IP, UDP) | - | each label to the bottom of the stack, then IPv4 or IPv6 by the version nibble | other payloads |

An inner flow is reported as the kernel reports the inner packet of IP in
IP or GRE: `is_encap` set, `n_proto` and `nhoff` at the inner network
header, then the inner addresses, protocol and ports; with
BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP, the outer flow with `is_encap` set.
A datagram whose tunnel header is cut short or carries nothing followed is
an ordinary UDP datagram, dissected as full.py does. Every frame without
these tunnels and without MPLS is dissected exactly as full.py dissects it;
tests/test_tunnels.py checks both, in the kernel on both backends and in
Python. Each tunnel counts as one pass of the kernel's loop, each MPLS
label as one more, so `lib.MAX_HEADERS` bounds the nesting.

The ports are `pyfd.lib`'s, set without recompiling: at load time a
`Config` per tunnel type (`--set VXLAN_PORT=8472`, 0 turns a type off), and
while it runs the `tunnel_ports` array, indexed by UDP destination port
(`pyfd map --netns T tunnel_ports set 4790 1`: VXLAN on 4790 too; 255, no
tunnel there; 0, back to the `Config`s).

    pyfd attach samples/tunnels.py --netns T --set GTPU_PORT=2152
    pyfd map --netns T tunnel_ports set 8472 1
"""

from pyfd import BpfFlowKeys, Packet, dissector, lib, u8


@dissector
def tunnels(pkt: Packet, keys: BpfFlowKeys) -> int:
    step: u8 = lib.NEXT_PROTO
    for _ in range(lib.MAX_HEADERS + 1):
        verdict = lib.tunnel_pass(pkt, keys, step)
        if verdict != lib.NEXT_PROTO:
            if verdict != lib.NEXT_IP_PROTO:
                return verdict
        step = verdict
    return lib.out_of_headers(pkt, keys, step)  # as the kernel, after MAX_HEADERS more passes
