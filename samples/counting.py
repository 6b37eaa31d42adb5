"""The full dissector, counting what it sees: frames per verdict and per IP protocol.

It dissects as samples/full.py does (the parsers of `pyfd.lib`) and counts
in two per-CPU arrays, which need no atomic instructions (each CPU adds to
its own copy; user space sums the copies):

- `verdicts`: frames by the verdict returned, 0 for BPF_OK, 1 for BPF_DROP,
  2 for BPF_FLOW_DISSECTOR_CONTINUE;
- `protocols`: frames dissected (BPF_OK) by IP protocol, `keys.ip_proto`
  (0 where there is none: an MPLS label stack, say).

A header the packet does not hold ends the dissector with BPF_DROP right
where it is read, so each frame is counted as dropped first and moved to its
verdict once that is known: the frames cut short stay counted as dropped.

`HAND_OVER` is a load-time constant: at 1, frames of an Ethernet type the
dissector does not know (LLDP, say, 0x88cc) go to the kernel's own
dissector instead of being dropped. The verifier knows its value (`.rodata` is frozen before
the program loads) and skips the branch it rules out.

    pyfd attach samples/counting.py --netns T --set HAND_OVER=1
    pyfd map --netns T verdicts        # 0: [12, 3]  (one count per CPU)
    pyfd map --netns T protocols get 6
"""

from pyfd import (
    BPF_DROP,
    BPF_FLOW_DISSECTOR_CONTINUE,
    BPF_OK,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_RARP,
    BpfFlowKeys,
    Config,
    Packet,
    PerCPUArray,
    dissector,
    lib,
    u8,
    u16,
    u64,
)

verdicts = PerCPUArray(u64, max_entries=3)
protocols = PerCPUArray(u64, max_entries=256)
HAND_OVER = Config(u8, 0)


def parsed(proto: u16) -> u8:
    """1 for the Ethernet types `lib.network` dissects or knows, else 0 (it drops the others, as the kernel does)."""
    return (
        proto == ETH_P_IP or proto == ETH_P_IPV6 or proto == ETH_P_8021Q or proto == ETH_P_8021AD
        or proto == ETH_P_MPLS_UC or proto == ETH_P_MPLS_MC or proto == ETH_P_ARP or proto == ETH_P_RARP
    )


def dissect(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """samples/full.py's dissector: one header per pass, as the kernel's."""
    if HAND_OVER != 0 and not parsed(keys.n_proto):
        return BPF_FLOW_DISSECTOR_CONTINUE
    step: u8 = lib.NEXT_PROTO
    for _ in range(lib.MAX_HEADERS + 1):
        verdict = lib.one_pass(pkt, keys, step)
        if verdict != lib.NEXT_PROTO:
            if verdict != lib.NEXT_IP_PROTO:
                return verdict
        step = verdict
    return lib.out_of_headers(pkt, keys, step)


def slot(verdict: u8) -> u8:
    """A verdict's index in `verdicts`."""
    if verdict == BPF_OK:
        return 0
    if verdict == BPF_DROP:
        return 1
    return 2


@dissector
def counting(pkt: Packet, keys: BpfFlowKeys) -> int:
    verdicts[1] += 1  # dropped, until the verdict is known
    verdict = dissect(pkt, keys)
    verdicts[1] -= 1
    verdicts[slot(verdict)] += 1
    if verdict == BPF_OK:
        protocols[keys.ip_proto] += 1
    return verdict
