"""A dissector with maps of the wider and the signed types: u64 keys, i64 and i32 values, every atomic operator.

In a module of its own, so that its maps are not in the object of
tests/dissectors/maps.py's `mapped` (an object holds every map its module
declares, as clang's holds every map of its file).
"""

from pyfd import (
    BPF_DROP,
    BPF_FLOW_DISSECTOR_CONTINUE,
    BPF_OK,
    ETH_P_IP,
    Array,
    BpfFlowKeys,
    Config,
    HashMap,
    Packet,
    dissector,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
)
from pyfd.headers import IPv4

wide_keys = HashMap(u64, i64, max_entries=8)  # both addresses -> minus the TTLs seen
bits = Array(u32, max_entries=4)  # |=, ^=, &= of header fields
by_ttl = HashMap(i32, i32, max_entries=4)  # TTL + BIAS -> frames
SHIFT = Config(u8, 3)
BIAS = Config(i32, -5)


@dissector
def widths(pkt: Packet, keys: BpfFlowKeys) -> int:
    if keys.n_proto != ETH_P_IP:
        return BPF_FLOW_DISSECTOR_CONTINUE
    ip = pkt.header(IPv4, keys.nhoff)
    keys.thoff = keys.nhoff + ip.ihl * 4
    both: u64 = u64(ip.saddr) << 32 | ip.daddr
    wide_keys[both] -= ip.ttl
    bits[ip.ttl & 3] |= u32(1) << (ip.protocol & 31)
    bits[(ip.ttl >> 2) & 3] ^= ip.id
    bits[ip.tos % 4] &= ~u32(ip.ttl)
    k: i32 = i32(ip.ttl) + BIAS
    by_ttl[k] += 1
    keys.sport = u16(bits.get(i64(ip.ttl) - 200, 9))  # a negative index: the default
    keys.dport = u16(by_ttl.get(k, -1))
    if (ip.ttl >> SHIFT) in bits:
        keys.is_encap = 1
    if wide_keys.get(both, 0) < -300:
        del wide_keys[both]
        return BPF_DROP
    return BPF_OK


ALL = [widths]
