"""What mypy must accept and refuse in a dissector, with pyfd's plugin: `.ci/mypy` checks this file.

Nothing imports or runs it. A line mypy must accept is plain code, and
`assert_type` pins the type it infers; a line it must refuse ends in
`# type: ignore[CODE]`, which strict mypy (warn_unused_ignores) reports as
unused, an error, if the line is accepted after all.
"""

from __future__ import annotations

from typing import assert_type

from pyfd import BPF_DROP, BPF_OK, Bits, BpfFlowKeys, Bytes, Header, Packet, dissector, u8, u16
from pyfd.headers import IPv4, IPv6


class Tunnel(Header):
    version: Bits[4]
    flags: Bits[12]
    vni: Bits[24]
    reserved: u8
    mac: Bytes[6]


def parse(pkt: Packet, keys: BpfFlowKeys) -> tuple[u8, u16]:
    """A helper: typed results hold whatever int is returned (they narrow it)."""
    tunnel = pkt.header(Tunnel, keys.thoff)
    assert_type(tunnel, Tunnel)
    assert_type(tunnel.version, int)  # Bits[N] reads as an int
    assert_type(tunnel.mac, bytes)  # Bytes[N] as the bytes
    assert_type(tunnel.reserved, int)
    if tunnel.version != 0:
        return BPF_DROP, 0
    proto: u16 = keys.n_proto + tunnel.flags  # a typed local narrows any int
    keys.thoff = keys.thoff + 14
    return BPF_OK, proto


@dissector
def tunnels(pkt: Packet, keys: BpfFlowKeys) -> int:
    ip6 = pkt.header(IPv6, keys.nhoff)
    keys.ipv6_src = ip6.saddr  # opaque bytes go into the keys whole
    assert_type(keys.nhoff, int)
    ip = pkt.header(IPv4, keys.nhoff)
    keys.thoff = keys.nhoff + ip.ihl * 4
    verdict, proto = parse(pkt, keys)
    keys.n_proto = proto
    return verdict


def refused(pkt: Packet, keys: BpfFlowKeys) -> None:
    """Class bodies here would raise at import (pyfd checks widths too): never called."""

    class NoWidth(Header):
        a: Bits  # type: ignore[valid-type]
        b: Bits[0]  # type: ignore[valid-type]
        c: Bits[65]  # type: ignore[valid-type]
        d: Bytes[-1]  # type: ignore[valid-type]
        e: u16[2]  # type: ignore[valid-type]
        f: Bits[True]  # type: ignore[valid-type]

    keys.nhoff = "14"  # type: ignore[assignment]
    keys.no_such_field = 1  # type: ignore[attr-defined]
