"""Checks of the full-dissector oracle table itself (tests/full_frames.py).

No compiler and no kernel: these hold the table to its own rules (every field
written, frames a test run accepts, explicit MACs on every Ethernet layer,
every flag and return code used, keys the kernel's clamp can produce, values a
struct bpf_flow_keys can hold), so the table is sound before samples/full.py
exists.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections import Counter

import full_frames
import pytest
from frames import DST_MAC, SRC_MAC
from full_frames import (
    BPF_DROP,
    BPF_FLOW_DISSECTOR_CONTINUE,
    BPF_OK,
    CASES,
    DIFFERENCES,
    KEY_FIELDS,
    PARSE_1ST_FRAG,
    STOP_AT_ENCAP,
    STOP_AT_FLOW_LABEL,
    V4_FIELDS,
    V6_FIELDS,
    FullCase,
)
from pyfd.runtime.flowkeys import (
    ETH_P_IP,
    ETH_P_IPV6,
    BpfRetCode,
    FlowDissectorFlags,
    FlowKeys,
)
from scapy.layers.l2 import Ether

ETH_HLEN = 14
TEST_RUN_MAX = 4096
RETVALS = {BPF_OK, BPF_DROP, BPF_FLOW_DISSECTOR_CONTINUE}
ALL_FLAGS = PARSE_1ST_FRAG | STOP_AT_FLOW_LABEL | STOP_AT_ENCAP
# Name prefix -> category; every case belongs to one, with at least this many cases.
CATEGORIES = {
    "ipv4": 10,
    "l4": 4,
    "ipv6": 15,
    "vlan": 8,
    "mpls": 2,
    "ethertype": 2,
    "encap": 8,
    "gre": 10,
    "trunc": 15,
}
IPPROTO_GRE = 47
# include/linux/in.h, proto_ports_offset(): where the ports word sits.
PORTS_OFFSET = {6: 0, 17: 0, 33: 0, 50: 0, 132: 0, 136: 0, 51: 4}
DIFF_TAG = re.compile(r"DIFF (D\d+(?:/D\d+)*)")


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _packed(address: int | str) -> bytes:
    return ipaddress.ip_address(str(address)).packed


def _id(case: FullCase) -> str:
    return case.name


def _expected_fields(case: FullCase) -> set[str]:
    pair = V6_FIELDS if case.keys.get("addr_proto") == ETH_P_IPV6 else V4_FIELDS
    return set(KEY_FIELDS) | set(pair)


def _entry_keys(frame: bytes) -> dict[str, int | str]:
    """The keys as a test run hands them to the program (nothing written yet)."""
    keys: dict[str, int | str] = {field: 0 for field in KEY_FIELDS}
    keys.update(nhoff=ETH_HLEN, thoff=ETH_HLEN, n_proto=struct.unpack_from("!H", frame, 12)[0])
    keys.update(ipv4_src="0.0.0.0", ipv4_dst="0.0.0.0")
    return keys


def _flow_keys(case: FullCase) -> FlowKeys:
    keys = case.keys
    names = V6_FIELDS if keys["addr_proto"] == ETH_P_IPV6 else V4_FIELDS
    addr_proto = int(keys["addr_proto"])
    src = dst = None
    if addr_proto in (ETH_P_IP, ETH_P_IPV6):
        src, dst = str(keys[names[0]]), str(keys[names[1]])
    ints = {f: int(keys[f]) for f in KEY_FIELDS}
    return FlowKeys.build(**ints, src=src, dst=dst, flags=case.flags)


# --- the table as a whole ------------------------------------------------------------


def test_at_least_90_cases() -> None:
    assert len(CASES) >= 90, len(CASES)
    assert all(isinstance(case, FullCase) for case in CASES)


def test_names_unique_and_plain() -> None:
    names = [case.name for case in CASES]
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    assert not duplicates, duplicates
    bad = [name for name in names if not re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", name)]
    assert not bad, bad


def test_no_frame_and_flags_given_twice() -> None:
    # The same input twice could only agree or contradict; either way it is a mistake.
    seen: dict[tuple[bytes, int], str] = {}
    for case in CASES:
        key = (case.frame, case.flags)
        assert key not in seen, f"{case.name} repeats {seen[key]}"
        seen[key] = case.name


def test_every_case_in_a_category() -> None:
    counts = Counter(case.name.split("_")[0] for case in CASES)
    unknown = set(counts) - set(CATEGORIES)
    assert not unknown, f"cases outside the categories: {unknown}"
    short = {cat: counts[cat] for cat, least in CATEGORIES.items() if counts[cat] < least}
    assert not short, short


def test_every_flag_value_appears() -> None:
    used = {case.flags for case in CASES}
    for flag in (0, PARSE_1ST_FRAG, STOP_AT_FLOW_LABEL, STOP_AT_ENCAP, ALL_FLAGS):
        assert flag in used, f"no case with flags={flag}"
    for flag in (PARSE_1ST_FRAG, STOP_AT_FLOW_LABEL, STOP_AT_ENCAP):
        combined = {f for f in used if f & flag and f != flag}
        assert combined, f"flag {flag} never combined with another"


def test_both_verdicts_appear() -> None:
    # BPF_FLOW_DISSECTOR_CONTINUE is a valid code, but the full dissector never
    # hands a packet back to the kernel (see D6 in full_frames).
    assert {case.retval for case in CASES} == {BPF_OK, BPF_DROP}


def test_constants_match_the_runtime() -> None:
    assert BPF_OK == BpfRetCode.BPF_OK
    assert BPF_DROP == BpfRetCode.BPF_DROP
    assert BPF_FLOW_DISSECTOR_CONTINUE == BpfRetCode.BPF_FLOW_DISSECTOR_CONTINUE
    assert PARSE_1ST_FRAG == FlowDissectorFlags.PARSE_1ST_FRAG
    assert STOP_AT_FLOW_LABEL == FlowDissectorFlags.STOP_AT_FLOW_LABEL
    assert STOP_AT_ENCAP == FlowDissectorFlags.STOP_AT_ENCAP


def test_differences_documented_and_used() -> None:
    doc = full_frames.__doc__ or ""
    assert "Differences from bpf_flow.c" in doc
    used: set[str] = set()
    for case in CASES:
        for match in DIFF_TAG.finditer(case.note):
            used.update(match.group(1).split("/"))
    for tag in DIFFERENCES:
        assert f"- {tag}:" in doc, f"{tag} not explained in the module docstring"
    assert used == set(DIFFERENCES), (used, set(DIFFERENCES))


# --- each case -----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_case_shape(case: FullCase) -> None:
    assert isinstance(case.frame, bytes)
    assert ETH_HLEN <= len(case.frame) <= TEST_RUN_MAX, len(case.frame)
    assert 0 <= case.flags <= ALL_FLAGS
    assert case.retval in RETVALS
    assert case.note.strip() and len(case.note) <= 120
    for match in DIFF_TAG.finditer(case.note):
        for tag in match.group(1).split("/"):
            assert tag in DIFFERENCES, tag


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_every_key_field_written(case: FullCase) -> None:
    assert set(case.keys) == _expected_fields(case), sorted(set(case.keys) ^ _expected_fields(case))
    for field, value in case.keys.items():
        if field in V4_FIELDS:
            assert isinstance(value, str) and ipaddress.ip_address(value).version == 4, (field, value)
        elif field in V6_FIELDS:
            assert isinstance(value, str) and ipaddress.ip_address(value).version == 6, (field, value)
        else:
            assert isinstance(value, int) and not isinstance(value, bool), (field, value)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_key_values_in_range(case: FullCase) -> None:
    keys = case.keys
    for field in ("nhoff", "thoff", "n_proto", "sport", "dport"):
        assert 0 <= int(keys[field]) <= 0xFFFF, field
    assert 0 <= int(keys["ip_proto"]) <= 0xFF
    for field in ("is_frag", "is_first_frag", "is_encap"):
        assert keys[field] in (0, 1), field
    assert keys["addr_proto"] in (0, ETH_P_IP, ETH_P_IPV6)
    assert 0 <= int(keys["flow_label"]) <= 0xFFFFF
    if keys["is_first_frag"]:
        assert keys["is_frag"] == 1
    if keys["addr_proto"] == 0:
        assert keys["ipv4_src"] == keys["ipv4_dst"] == "0.0.0.0"
        assert keys["ip_proto"] == 0 and keys["sport"] == keys["dport"] == 0


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_keys_survive_the_kernel_clamp(case: FullCase) -> None:
    # After the program, the kernel clamps nhoff into [14, len] and thoff into [nhoff, len].
    nhoff, thoff = int(case.keys["nhoff"]), int(case.keys["thoff"])
    assert ETH_HLEN <= nhoff <= len(case.frame)
    assert nhoff <= thoff <= len(case.frame)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_n_proto_is_the_ethertype_while_nhoff_is_at_entry(case: FullCase) -> None:
    # n_proto only changes together with nhoff (a VLAN tag, or going into an
    # encapsulated packet), so at nhoff 14 it is still the frame's Ethernet type;
    # except at GRE, where the kernel takes the GRE protocol before it checks the
    # rest of the header (D13).
    if case.keys["nhoff"] == ETH_HLEN and case.keys["ip_proto"] != IPPROTO_GRE:
        assert case.keys["n_proto"] == struct.unpack_from("!H", case.frame, 12)[0]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_ports_are_the_bytes_at_thoff(case: FullCase) -> None:
    # Ports are only ever copied from the 4 bytes at thoff + proto_ports_offset
    # (include/linux/in.h: 0 for TCP, UDP, DCCP, ESP, SCTP, UDP-Lite; 4 for AH);
    # a case that reads them (BPF_OK, no fragment, not stopped at a flow label,
    # the 4 bytes there) must find them there, and ports left 0 must not have
    # been read.
    keys = case.keys
    offset = PORTS_OFFSET.get(int(keys["ip_proto"]))
    thoff = int(keys["thoff"])
    read = (
        case.retval == BPF_OK
        and offset is not None
        and not keys["is_frag"]
        and not (keys["flow_label"] and case.flags & STOP_AT_FLOW_LABEL and thoff == int(keys["nhoff"]) + 40)
        and not (keys["is_encap"] and case.flags & STOP_AT_ENCAP)
        and thoff + offset + 4 <= len(case.frame)
    )
    if read:
        assert offset is not None
        assert case.frame[thoff + offset : thoff + offset + 4] == struct.pack("!HH", keys["sport"], keys["dport"])
    else:
        assert keys["sport"] == keys["dport"] == 0


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_addresses_belong_to_the_header_at_nhoff(case: FullCase) -> None:
    # When a dissection succeeds with n_proto == addr_proto, nhoff points at
    # the IP header whose addresses the keys hold (after VLAN tags and, in this
    # table, after encapsulation too: difference D3).
    # Stopped at an encapsulation (STOP_AT_ENCAP), n_proto and nhoff already
    # name the inner header while the addresses are the outer one's, as in the
    # kernel.
    keys = case.keys
    if case.retval != BPF_OK or keys["n_proto"] != keys["addr_proto"]:
        return
    if keys["is_encap"] and case.flags & STOP_AT_ENCAP:
        return
    nhoff = int(keys["nhoff"])
    if keys["addr_proto"] == ETH_P_IP:
        src, dst = case.frame[nhoff + 12 : nhoff + 16], case.frame[nhoff + 16 : nhoff + 20]
        assert (src, dst) == (_packed(keys["ipv4_src"]), _packed(keys["ipv4_dst"]))
    elif keys["addr_proto"] == ETH_P_IPV6:
        src, dst = case.frame[nhoff + 8 : nhoff + 24], case.frame[nhoff + 24 : nhoff + 40]
        assert (src, dst) == (_packed(keys["ipv6_src"]), _packed(keys["ipv6_dst"]))


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_continue_leaves_entry_keys(case: FullCase) -> None:
    if case.retval == BPF_FLOW_DISSECTOR_CONTINUE:
        assert case.keys == _entry_keys(case.frame)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_keys_fit_struct_bpf_flow_keys(case: FullCase) -> None:
    # Each field is a FlowKeys property, and the value comes back unchanged
    # through the 56 bytes of struct bpf_flow_keys.
    flow = _flow_keys(case)
    for field, value in case.keys.items():
        got = getattr(flow, field)
        assert (str(got) if isinstance(value, str) else got) == value, field
    assert flow.flags == case.flags


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_explicit_macs_on_every_ethernet_layer(case: FullCase) -> None:
    assert case.frame[0:6] == _mac(DST_MAC), case.frame[0:6].hex(":")
    assert case.frame[6:12] == _mac(SRC_MAC), case.frame[6:12].hex(":")
    packet = Ether(case.frame)
    layers = 0
    while True:
        layer = packet.getlayer(Ether, nb=layers + 1)
        if layer is None:
            break
        layers += 1
        assert (layer.dst, layer.src) == (DST_MAC, SRC_MAC), f"Ethernet layer {layers}"
    assert layers >= 1


def test_inner_ethernet_macs_in_teb_frames() -> None:
    # GRE TEB frames carry a second Ethernet header: find it in the raw bytes too.
    teb = [c for c in CASES if "teb" in c.name and len(c.frame) >= 38 + 12]
    assert teb
    inner_macs = _mac(DST_MAC) + _mac(SRC_MAC)
    for case in teb:
        assert case.frame.count(inner_macs) >= 2, case.name
