"""Frames built with scapy for behaviour tests: always with explicit MAC addresses.

A scapy `Ether()` without a destination resolves it, which can send ARP on the
host's network; every frame here names both MACs.
"""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet as ScapyPacket, Raw

SRC_MAC = "02:00:00:00:00:01"
DST_MAC = "02:00:00:00:00:02"


def ether(ethertype: int | None = None) -> ScapyPacket:
    """An Ethernet header with fixed, locally administered MACs."""
    if ethertype is None:
        return Ether(src=SRC_MAC, dst=DST_MAC)
    return Ether(src=SRC_MAC, dst=DST_MAC, type=ethertype)


def ipv4_frames() -> dict[str, bytes]:
    """Named IPv4 frames covering TCP, UDP, ICMP, options and other ethertypes."""
    ip = IP(src="10.0.0.1", dst="10.0.0.2")
    return {
        "tcp": bytes(ether() / ip / TCP(sport=1234, dport=80)),
        "udp": bytes(ether() / ip / UDP(sport=5353, dport=53) / Raw(b"x" * 10)),
        "icmp": bytes(ether() / ip / ICMP()),
        "options_tcp": bytes(ether() / IP(src="192.0.2.1", dst="198.51.100.7", options=[b"\x01\x01\x01\x00"]) / TCP(sport=40000, dport=443)),
        "max_options_udp": bytes(ether() / IP(src="10.1.2.3", dst="10.3.2.1", options=[b"\x01" * 40]) / UDP(sport=1, dport=2)),
        "gre_proto": bytes(ether() / IP(src="10.0.0.1", dst="10.0.0.2", proto=47) / Raw(b"\0" * 8)),
        "ipv6_tcp": bytes(ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2)),
        "arp": bytes(ether() / ARP(psrc="10.0.0.1", pdst="10.0.0.2", hwsrc=SRC_MAC)),
        "vlan_ipv4": bytes(ether() / Dot1Q(vlan=5) / ip / TCP()),
        "ihl_4": bytes(ether() / IP(src="10.0.0.1", dst="10.0.0.2", ihl=4) / TCP()),
        "short_14": bytes(ether(0x0800)),
    }
