"""Kernel constants a flow dissector works with (values from the uapi headers)."""

from __future__ import annotations

# Return codes and input flags (include/uapi/linux/bpf.h) are the kernel ABI,
# defined once in pyfd.abi. The kernel does not check the return codes, so the
# compiler does: a dissector may return only these three.
from .abi import (
    BPF_DROP as BPF_DROP,
    BPF_FLOW_DISSECTOR_CONTINUE as BPF_FLOW_DISSECTOR_CONTINUE,
    BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG as BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG,
    BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP as BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP,
    BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL as BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL,
    BPF_OK as BPF_OK,
    RETURN_CODES as RETURN_CODES,
)

# Ethertypes (include/uapi/linux/if_ether.h), host order.
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100  # 802.1Q VLAN
ETH_P_8021AD = 0x88A8  # 802.1ad QinQ service VLAN
ETH_P_IPV6 = 0x86DD
ETH_P_MPLS_UC = 0x8847
ETH_P_MPLS_MC = 0x8848
ETH_P_TEB = 0x6558  # transparent Ethernet bridging (GRE carrying Ethernet)
ETH_P_RARP = 0x8035
ETH_P_PPP_SES = 0x8864  # PPPoE session
ETH_P_TIPC = 0x88CA
ETH_P_FCOE = 0x8906
ETH_P_BATMAN = 0x4305
ETH_P_1588 = 0x88F7  # PTP
ETH_P_PRP = 0x88FB
ETH_P_HSR = 0x892F
ETH_P_CFM = 0x8902  # 802.1ag connectivity fault management
ETH_P_802_3_MIN = 0x0600  # values below are 802.3 lengths, not Ethernet types

# IP protocol numbers (include/uapi/linux/in.h, in6.h).
IPPROTO_HOPOPTS = 0
IPPROTO_ICMP = 1
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_DCCP = 33
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_GRE = 47
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59
IPPROTO_DSTOPTS = 60
IPPROTO_SCTP = 132
IPPROTO_UDPLITE = 136
IPPROTO_MPLS = 137

# GRE (include/net/pptp.h, include/uapi/linux/ppp_defs.h): version 1 is
# PPTP, which carries PPP (RFC 2637) behind a 4-byte HDLC-like header.
GRE_PROTO_PPP = 0x880B
PPP_IP = 0x21
PPP_IPV6 = 0x57

# IPv4 fragment bits in frag_off (host order).
IP_MF = 0x2000
IP_OFFSET = 0x1FFF

# Header sizes in bytes.
ETH_HLEN = 14
VLAN_HLEN = 4
IPV4_MIN_HLEN = 20
IPV6_HLEN = 40
TCP_MIN_HLEN = 20
UDP_HLEN = 8
GRE_MIN_HLEN = 4
MPLS_HLEN = 4
PPP_HDRLEN = 4
