"""IPv4 with TCP or UDP ports: the shape of a pyfd dissector.

Shows the basics: start from `keys.n_proto` and `keys.nhoff` (never a fixed
14), read headers with `pkt.header(...)` (the compiler adds the bounds check;
a short packet ends the dissector with BPF_DROP), read bit fields (`ihl`), and
fill the flow keys with host-order values (the compiler inserts byte swaps).
"""

from pyfd import BPF_DROP, BPF_OK, ETH_P_IP, IPPROTO_TCP, IPPROTO_UDP, BpfFlowKeys, Packet, dissector
from pyfd.headers import IPv4, Ports


@dissector
def ipv4_tcp(pkt: Packet, keys: BpfFlowKeys) -> int:
    if keys.n_proto != ETH_P_IP:
        return BPF_DROP
    ip = pkt.header(IPv4, keys.nhoff)  # bounds-checked; a short packet returns BPF_DROP
    if ip.ihl < 5:
        return BPF_DROP
    keys.addr_proto = ETH_P_IP
    keys.ip_proto = ip.protocol
    keys.ipv4_src = ip.saddr
    keys.ipv4_dst = ip.daddr
    keys.thoff = keys.nhoff + ip.ihl * 4
    if ip.protocol == IPPROTO_TCP or ip.protocol == IPPROTO_UDP:
        ports = pkt.header(Ports, keys.thoff)
        keys.sport = ports.sport
        keys.dport = ports.dport
    return BPF_OK
