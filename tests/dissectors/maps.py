"""Dissectors with maps and load-time constants: every kind of map, every operation, both Config uses.

`mapped` counts what it sees in all three kinds of map and decides with its
Configs; `ALL` is what the agreement tests run, in the kernel and in Python,
on sequences of frames, comparing the maps after each.
"""

from pyfd import (
    BPF_DROP,
    BPF_FLOW_DISSECTOR_CONTINUE,
    BPF_OK,
    ETH_P_IP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Array,
    BpfFlowKeys,
    Config,
    HashMap,
    Packet,
    PerCPUArray,
    dissector,
    i32,
    u8,
    u16,
    u32,
    u64,
)
from pyfd.headers import IPv4, Ports

ports = HashMap(u16, u32, max_entries=4)  # destination port -> frames; small, so that it fills
protocols = PerCPUArray(u64, max_entries=256)  # IP protocol -> frames
verdicts = Array(u64, max_entries=3)  # BPF_OK, BPF_DROP, BPF_FLOW_DISSECTOR_CONTINUE -> frames
last = Array(i32, max_entries=2)  # [0]: the last TTL seen, negated; [1]: 1 once a frame was denied
denied = HashMap(u16, u8, max_entries=8)  # source ports whose frames are dropped
DROP_PORT = Config(u16, 4789)  # frames to this port are dropped, and their source port denied
FORGET_PORT = Config(u16, 7)  # a frame to this port forgets its source port


def slot(verdict: u8) -> u8:
    """The index in `verdicts` of a return code: 0, 1 or 2 (constants, so the compiler bounds the index)."""
    if verdict == BPF_OK:
        return 0
    if verdict == BPF_DROP:
        return 1
    return 2


def dissect(pkt: Packet, keys: BpfFlowKeys) -> u8:
    """IPv4 with TCP or UDP ports; the maps decide what to drop."""
    if keys.n_proto != ETH_P_IP:
        return BPF_FLOW_DISSECTOR_CONTINUE
    ip = pkt.header(IPv4, keys.nhoff)
    if ip.ihl < 5:
        return BPF_DROP
    keys.addr_proto = ETH_P_IP
    keys.ip_proto = ip.protocol
    keys.ipv4_src = ip.saddr
    keys.ipv4_dst = ip.daddr
    keys.thoff = keys.nhoff + ip.ihl * 4
    protocols[ip.protocol] += 1
    last[0] = -i32(ip.ttl)
    if ip.protocol != IPPROTO_TCP and ip.protocol != IPPROTO_UDP:
        return BPF_OK
    p = pkt.header(Ports, keys.thoff)
    keys.sport = p.sport
    keys.dport = p.dport
    if p.sport in denied:
        return BPF_DROP
    ports[p.dport] += 1
    if p.dport == FORGET_PORT:
        del denied[p.sport]
    if p.dport == DROP_PORT:
        denied[p.sport] = denied.get(p.sport, 0) + 1
        last[1] = 1
        return BPF_DROP
    keys.flow_label = ports.get(p.dport, 0) + (p.sport in ports) + last.get(keys.ip_proto, 7)
    return BPF_OK


@dissector
def mapped(pkt: Packet, keys: BpfFlowKeys) -> int:
    # A failed header read ends the dissector with BPF_DROP at once, so a
    # frame counts as dropped until its verdict is known.
    verdicts[1] += 1
    verdict = dissect(pkt, keys)
    verdicts[1] -= 1
    verdicts[slot(verdict)] += 1
    return verdict


ALL = [mapped]
