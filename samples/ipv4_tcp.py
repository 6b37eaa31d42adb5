"""IPv4 with TCP or UDP ports: the shape of a pyfd dissector.

Start from `keys.n_proto` and `keys.nhoff` (never a fixed 14), read headers with
`pkt.header(...)` (bounds-checked: a short packet ends with BPF_DROP), fill the
keys with host-order values. Anything but IPv4 goes to the kernel's own dissector
(BPF_FLOW_DISSECTOR_CONTINUE): a DROP would make every IPv6 or ARP flow hash alike.
"""

from pyfd import BPF_DROP, BPF_FLOW_DISSECTOR_CONTINUE, BPF_OK, ETH_P_IP, IPPROTO_TCP, IPPROTO_UDP, BpfFlowKeys, Packet, dissector
from pyfd.headers import IPv4, Ports


@dissector
def ipv4_tcp(pkt: Packet, keys: BpfFlowKeys) -> int:
    if keys.n_proto != ETH_P_IP:
        return BPF_FLOW_DISSECTOR_CONTINUE  # not IPv4: the kernel's dissector takes it
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
