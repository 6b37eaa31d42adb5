"""BpfFlowKeys and header layouts: offsets, sizes, byte order, wrapping."""

from __future__ import annotations

import ctypes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfd import BpfFlowKeys, Bits, Header, i32, i64, u8, u16, u32, u64
from pyfd.headers import Ethernet, IPv4, Ports
from pyfd.keys import KEY_FIELDS
from pyfd.runtime import bpf_flow_keys


def test_keys_match_the_ctypes_mirror_of_the_uapi_struct() -> None:
    assert ctypes.sizeof(bpf_flow_keys) == BpfFlowKeys.SIZE == 56
    mirror = {name: getattr(bpf_flow_keys, name) for name, *_ in bpf_flow_keys._fields_ if not name.startswith("_")}
    for name, field in KEY_FIELDS.items():
        if name in mirror:
            assert mirror[name].offset == field.offset, name
            assert mirror[name].size == field.size, name
    # Fields of the address union live under it in the mirror.
    assert KEY_FIELDS["ipv4_src"].offset == 16 and KEY_FIELDS["ipv4_dst"].offset == 20
    assert KEY_FIELDS["ipv6_src"].offset == 16 and KEY_FIELDS["ipv6_dst"].offset == 32
    assert KEY_FIELDS["flags"].offset == 48 and KEY_FIELDS["flow_label"].offset == 52
    named = {"nhoff", "thoff", "addr_proto", "is_frag", "is_first_frag", "is_encap", "ip_proto", "n_proto", "sport", "dport", "flags", "flow_label"}
    assert {f.name for f in KEY_FIELDS.values()} >= named


def test_every_keys_field_has_its_attribute() -> None:
    # The class body names each field once (so type checkers see them); the layout is abi's.
    descriptors = [name for name, value in vars(BpfFlowKeys).items() if type(value).__name__ == "_KeyField"]
    assert descriptors == list(KEY_FIELDS)
    assert all(getattr(BpfFlowKeys, name).field is KEY_FIELDS[name] for name in descriptors)


def test_network_order_fields_are_host_order_in_python() -> None:
    keys = BpfFlowKeys()
    keys.n_proto = 0x0800
    keys.sport = 1234
    keys.ipv4_src = 0x0A000001
    keys.nhoff = 14
    raw = keys.raw
    assert raw[10:12] == b"\x08\x00"  # be16
    assert raw[12:14] == (1234).to_bytes(2, "big")
    assert raw[16:20] == bytes([10, 0, 0, 1])
    assert raw[0:2] == (14).to_bytes(2, "little")  # host order


def test_union_of_ipv4_and_ipv6_addresses() -> None:
    keys = BpfFlowKeys()
    keys.ipv6_src = (0x20010DB8 << 96) | 1
    assert keys.ipv4_src == 0x20010DB8
    keys.ipv4_src = 0x0A000001
    assert keys.ipv6_src >> 96 == 0x0A000001


@given(st.integers(min_value=-(1 << 70), max_value=1 << 70))
def test_stores_wrap_to_the_field_width(value: int) -> None:
    keys = BpfFlowKeys()
    keys.sport = value
    keys.ip_proto = value
    keys.flags = value
    assert keys.sport == value % (1 << 16)
    assert keys.ip_proto == value % (1 << 8)
    assert keys.flags == value % (1 << 32)


@given(st.integers(min_value=-(1 << 70), max_value=1 << 70))
def test_casts_wrap_like_bpf(value: int) -> None:
    assert u8(value) == value % 256
    assert u16(value) == value % 65536
    assert u32(value) == value % (1 << 32)
    assert u64(value) == value % (1 << 64)
    assert i32(value) == (value + (1 << 31)) % (1 << 32) - (1 << 31)
    assert i64(value) == (value + (1 << 63)) % (1 << 64) - (1 << 63)


def test_entry_state_is_what_test_run_gives() -> None:
    frame = bytes(12) + b"\x86\xdd" + bytes(40)
    keys = BpfFlowKeys.at_entry(frame, flags=4)
    assert (keys.nhoff, keys.thoff, keys.n_proto, keys.flags) == (14, 14, 0x86DD, 4)
    assert keys.raw[16:48] == bytes(32)


def test_builtin_header_layouts() -> None:
    assert (Ethernet.size, IPv4.size, Ports.size) == (14, 20, 4)
    assert IPv4.fields["version"].shift == 4 and IPv4.fields["ihl"].shift == 0
    assert IPv4.fields["saddr"].offset == 12 and IPv4.fields["daddr"].offset == 16
    ip = IPv4(bytes.fromhex("46000030000040004006000001020304050607080000000000"), 0)
    assert (ip.version, ip.ihl, ip.protocol, ip.saddr, ip.frag_off) == (4, 6, 6, 0x01020304, 0x4000)


def test_user_declared_header_with_bit_fields() -> None:
    class VXLAN(Header):
        flags: u8
        reserved: Bits[24]
        vni: Bits[24]
        reserved2: u8

    assert VXLAN.size == 8
    assert VXLAN.fields["vni"].offset == 4 and VXLAN.fields["vni"].size == 4 and VXLAN.fields["vni"].shift == 8
    h = VXLAN(bytes.fromhex("08000000" "12345600"), 0)
    assert (h.flags, h.vni, h.reserved2) == (8, 0x123456, 0x00)
    with pytest.raises(AttributeError):
        h.vni = 1


def test_bit_fields_must_fill_whole_units() -> None:
    with pytest.raises(TypeError, match="add up to 12 bits"):

        class Bad(Header):
            a: Bits[4]
            b: Bits[8]
            c: u16
