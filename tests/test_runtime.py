"""The runtime against the real kernel: bpf(2) wrappers, loading, test runs, flow keys.

Programs are hand-encoded bytes (one 8-byte instruction per line, its assembly
in the comment): the runtime takes bytes and must not depend on the compiler.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import ipaddress
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest
from kernel import (  # requires_kernel: the fixture behind needs_kernel
    enforce_kernel,
    in_ci,
    needs_kernel,
    requires_kernel,  # noqa: F401
    skip_unless_kernel,
)
from pyfd.runtime import (
    ETH_P_IP,
    ETH_P_IPV6,
    FLOW_KEYS_SIZE,
    MAX_FRAME_LEN,
    MIN_FRAME_LEN,
    BpfError,
    BpfRetCode,
    BtfError,
    FlowDissectorFlags,
    FlowKeys,
    LoadedProgram,
    MissingPrivilegeError,
    ProgType,
    VerifierError,
    bpf,
    bpf_flow_keys,
    check_bpf_available,
    load_program,
    valid_prog_name,
)
from pyfd.runtime.errors import summarize_verifier_log
from pyfd.runtime.program import LOG_SIZE_LIMIT, LOG_SIZE_START
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

H = bytes.fromhex

# --- hand-encoded programs ------------------------------------------------------

EXIT_0 = H(
    "b700000000000000"  # r0 = 0
    "9500000000000000"  # exit
)
LOAD_KEYS = H("7911900000000000")  # r1 = *(u64 *)(r1 + 144)   (flow_keys)
READ_CTX_0 = H(
    "6110000000000000"  # r0 = *(u32 *)(r1 + 0)      refused: not data/data_end/flow_keys
    "9500000000000000"  # exit
)
FLAGS_TO_SPORT = (
    LOAD_KEYS
    + H(
        "6112300000000000"  # r2 = *(u32 *)(r1 + 48)     keys->flags
        "6b210c0000000000"  # *(u16 *)(r1 + 12) = r2     keys->sport
    )
    + EXIT_0
)


def ret(value: int) -> bytes:
    """r0 = value (sign-extended 32-bit immediate); exit."""
    return H("b7000000") + value.to_bytes(4, "little", signed=True) + H("9500000000000000")


def store_u16(offset: int, value: int) -> bytes:
    """*(u16 *)(r1 + offset) = value, with r1 = flow_keys."""
    return bytes([0x6A, 0x01, offset, 0]) + value.to_bytes(4, "little")


def write_keys(*stores: bytes) -> bytes:
    """r1 = flow_keys; the stores; r0 = 0; exit."""
    return LOAD_KEYS + b"".join(stores) + EXIT_0


# --- frames -----------------------------------------------------------------------

# Explicit MACs on every Ether(): scapy would otherwise resolve the destination.
SRC_MAC = "02:00:00:00:00:01"
DST_MAC = "02:00:00:00:00:02"


def eth() -> Ether:
    """An Ethernet header with both MAC addresses set."""
    return Ether(src=SRC_MAC, dst=DST_MAC)


def pad60(frame: bytes) -> bytes:
    """Pad a frame to the Ethernet minimum of 60 bytes (without FCS)."""
    return frame.ljust(60, b"\0")


IPV4_TCP = pad60(bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80)))
IPV6_TCP = bytes(eth() / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2))
VLAN_IPV4 = pad60(bytes(eth() / Dot1Q(vlan=5) / IP(src="10.0.0.1", dst="10.0.0.2")))
ARP_FRAME = pad60(bytes(eth() / ARP(hwsrc=SRC_MAC, psrc="10.0.0.1", pdst="10.0.0.2")))


def open_fds() -> set[str]:
    """The fds this process has open now."""
    return set(os.listdir("/proc/self/fd"))


# --- fixtures ---------------------------------------------------------------------


@pytest.fixture
def exit0() -> Iterator[LoadedProgram]:
    """The trivial dissector, loaded for one test."""
    skip_unless_kernel()
    with load_program(EXIT_0, name="pyfd_exit0") as prog:
        yield prog


@pytest.fixture
def netns() -> Iterator[int]:
    """An fd for a fresh network namespace this test owns (never the root one)."""
    skip_unless_kernel()
    unshare = shutil.which("unshare")
    if unshare is None:
        enforce_kernel("the `unshare` tool (util-linux) is not installed")
        raise AssertionError("unreachable")
    holder = subprocess.Popen([unshare, "--net", "sleep", "600"])
    try:
        ns_path = f"/proc/{holder.pid}/ns/net"
        own = os.stat("/proc/self/ns/net").st_ino
        deadline = time.monotonic() + 5
        while os.stat(ns_path).st_ino == own:  # unshare has not switched yet
            if time.monotonic() > deadline:
                raise RuntimeError("unshare --net did not create a namespace")
            time.sleep(0.01)
        fd = os.open(ns_path, os.O_RDONLY)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        holder.kill()
        holder.wait()


def run_python(code: str, *prefix: str) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a child process (optionally under a wrapper like unshare)."""
    return subprocess.run(
        [*prefix, sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# === struct bpf_flow_keys =============================================================

# struct bpf_flow_keys as include/uapi/linux/bpf.h lays it out: (field, offset, size).
CONTRACT_LAYOUT = [
    ("nhoff", 0, 2),
    ("thoff", 2, 2),
    ("addr_proto", 4, 2),
    ("is_frag", 6, 1),
    ("is_first_frag", 7, 1),
    ("is_encap", 8, 1),
    ("ip_proto", 9, 1),
    ("n_proto", 10, 2),
    ("sport", 12, 2),
    ("dport", 14, 2),
    ("ipv4_src", 16, 4),
    ("ipv4_dst", 20, 4),
    ("ipv6_src", 16, 16),
    ("ipv6_dst", 32, 16),
    ("flags", 48, 4),
    ("flow_label", 52, 4),
]


def test_flow_keys_struct_size() -> None:
    assert ctypes.sizeof(bpf_flow_keys) == FLOW_KEYS_SIZE == 56


@pytest.mark.parametrize(("field", "offset", "size"), CONTRACT_LAYOUT)
def test_flow_keys_struct_field(field: str, offset: int, size: int) -> None:
    descriptor = getattr(bpf_flow_keys, field)
    assert (descriptor.offset, descriptor.size) == (offset, size)


def sample_raw() -> bytes:
    """IPv4 TCP keys encoded by hand, byte order as the kernel stores them."""
    return (
        struct.pack("=HHHBBBB", 14, 34, ETH_P_IP, 1, 1, 0, 6)
        + struct.pack("!HHH", ETH_P_IP, 1234, 80)
        + ipaddress.IPv4Address("10.0.0.1").packed
        + ipaddress.IPv4Address("10.0.0.2").packed
        + bytes(24)
        + struct.pack("=I", 7)
        + struct.pack("!I", 0x12345)
    )


def test_flow_keys_decode_host_order() -> None:
    keys = FlowKeys.from_bytes(sample_raw())
    assert (keys.nhoff, keys.thoff, keys.addr_proto) == (14, 34, ETH_P_IP)
    assert (keys.is_frag, keys.is_first_frag, keys.is_encap, keys.ip_proto) == (1, 1, 0, 6)
    assert (keys.n_proto, keys.sport, keys.dport) == (0x0800, 1234, 80)
    assert keys.ipv4_src == ipaddress.IPv4Address("10.0.0.1")
    assert keys.ipv4_dst == ipaddress.IPv4Address("10.0.0.2")
    assert (keys.src, keys.dst) == (keys.ipv4_src, keys.ipv4_dst)
    assert (keys.flags, keys.flow_label) == (7, 0x12345)
    assert keys.raw == sample_raw()


def test_flow_keys_union_decodes_both_ways() -> None:
    keys = FlowKeys.from_bytes(sample_raw())
    assert keys.ipv6_src == ipaddress.IPv6Address("0a00:0001:0a00:0002::")
    assert keys.ipv6_dst == ipaddress.IPv6Address("::")
    v6 = FlowKeys.build(addr_proto=ETH_P_IPV6, src="2001:db8::1", dst="2001:db8::2")
    assert (v6.src, v6.dst) == (v6.ipv6_src, v6.ipv6_dst)
    assert v6.ipv4_src == ipaddress.IPv4Address("32.1.13.184")  # first 4 bytes of 2001:db8::


def test_flow_keys_src_dst_none_for_other_protocols() -> None:
    keys = FlowKeys.build(addr_proto=0x0806)
    assert keys.src is None and keys.dst is None


def test_flow_keys_ctypes_round_trip() -> None:
    keys = FlowKeys.from_bytes(sample_raw())
    mirror = keys.to_struct()
    assert mirror.nhoff == 14 and mirror.ip_proto == 6
    assert mirror.sport == struct.unpack("=H", struct.pack("!H", 1234))[0]  # network order
    assert FlowKeys.from_struct(mirror) == keys


def test_flow_keys_build_matches_hand_encoding() -> None:
    built = FlowKeys.build(
        nhoff=14, thoff=34, addr_proto=ETH_P_IP, is_frag=1, is_first_frag=1, ip_proto=6,
        n_proto=ETH_P_IP, sport=1234, dport=80, src="10.0.0.1", dst="10.0.0.2",
        flags=7, flow_label=0x12345,
    )  # fmt: skip
    assert built.raw == sample_raw()


def test_flow_keys_build_refuses_addresses_without_addr_proto() -> None:
    with pytest.raises(ValueError, match="addr_proto"):
        FlowKeys.build(src="10.0.0.1")


@pytest.mark.parametrize("length", [0, 55, 57])
def test_flow_keys_refuses_wrong_length(length: int) -> None:
    with pytest.raises(ValueError, match="56 bytes"):
        FlowKeys.from_bytes(bytes(length))


def test_flow_keys_repr_ipv4() -> None:
    keys = FlowKeys.build(
        nhoff=14, thoff=34, n_proto=ETH_P_IP, ip_proto=6, addr_proto=ETH_P_IP,
        src="10.0.0.1", dst="10.0.0.2", sport=1234, dport=80,
    )  # fmt: skip
    assert repr(keys) == (
        "FlowKeys(nhoff=14, thoff=34, n_proto=0x0800, ip_proto=6, addr_proto=0x0800, "
        "src=10.0.0.1:1234, dst=10.0.0.2:80, flags=0)"
    )


def test_flow_keys_repr_ipv6_and_optional_fields() -> None:
    keys = FlowKeys.build(
        nhoff=14, thoff=54, n_proto=ETH_P_IPV6, ip_proto=17, addr_proto=ETH_P_IPV6,
        src="2001:db8::1", dst="2001:db8::2", sport=53, dport=5353,
        is_frag=1, is_encap=1, flow_label=0xABCDE, flags=1,
    )  # fmt: skip
    assert repr(keys) == (
        "FlowKeys(nhoff=14, thoff=54, n_proto=0x86dd, ip_proto=17, addr_proto=0x86dd, "
        "src=[2001:db8::1]:53, dst=[2001:db8::2]:5353, is_frag=1, is_encap=1, "
        "flow_label=0xabcde, flags=1)"
    )


def test_flow_keys_repr_hides_meaningless_fields() -> None:
    keys = FlowKeys.build(nhoff=14, thoff=14, n_proto=0x0806)
    assert repr(keys) == (
        "FlowKeys(nhoff=14, thoff=14, n_proto=0x0806, ip_proto=0, addr_proto=0x0000, flags=0)"
    )


def test_flow_keys_equality_and_hash_are_on_raw_bytes() -> None:
    a = FlowKeys.from_bytes(sample_raw())
    b = FlowKeys.from_bytes(bytearray(sample_raw()))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    c = FlowKeys.from_bytes(sample_raw()[:-1] + b"\x46")
    assert a != c


def test_flow_keys_diff_names_fields() -> None:
    a = FlowKeys.build(nhoff=14, thoff=34, addr_proto=ETH_P_IP, src="10.0.0.1", sport=1)
    b = FlowKeys.build(nhoff=14, thoff=54, addr_proto=ETH_P_IP, src="10.0.0.9", sport=1)
    assert a.diff(b) == ["thoff: 34 != 54", "ipv4_src: 10.0.0.1 != 10.0.0.9"]
    assert a.diff(a) == []


def test_flow_keys_diff_covers_every_byte() -> None:
    base = FlowKeys.build()
    for index in range(FLOW_KEYS_SIZE):
        raw = bytearray(base.raw)
        raw[index] = 0xFF
        assert base.diff(FlowKeys.from_bytes(raw)), f"byte {index} differs but diff is empty"


def test_flow_keys_constants() -> None:
    assert [int(f) for f in FlowDissectorFlags] == [1, 2, 4]
    assert (BpfRetCode.BPF_OK, BpfRetCode.BPF_DROP, BpfRetCode.BPF_FLOW_DISSECTOR_CONTINUE) == (
        0,
        2,
        129,
    )


# === attr layouts (offsets from include/uapi/linux/bpf.h) =============================

ATTR_LAYOUT = [
    (bpf.ProgLoadAttr, "insns", 8),
    (bpf.ProgLoadAttr, "log_buf", 32),
    (bpf.ProgLoadAttr, "prog_name", 48),
    (bpf.ProgLoadAttr, "expected_attach_type", 68),
    (bpf.ProgLoadAttr, "prog_btf_fd", 72),
    (bpf.ProgLoadAttr, "func_info", 80),
    (bpf.ProgLoadAttr, "line_info", 96),
    (bpf.ProgLoadAttr, "line_info_cnt", 104),
    (bpf.ProgLoadAttr, "fd_array", 120),
    (bpf.ProgLoadAttr, "core_relo_rec_size", 136),
    (bpf.ProgLoadAttr, "log_true_size", 140),
    (bpf.ProgLoadAttr, "prog_token_fd", 144),
    (bpf.ProgLoadAttr, "fd_array_cnt", 148),
    (bpf.TestRunAttr, "data_in", 16),
    (bpf.TestRunAttr, "repeat", 32),
    (bpf.TestRunAttr, "ctx_in", 48),
    (bpf.TestRunAttr, "flags", 64),
    (bpf.TestRunAttr, "batch_size", 72),
    (bpf.ObjAttr, "path_fd", 16),
    (bpf.ProgAttachAttr, "replace_bpf_fd", 16),
    (bpf.ProgAttachAttr, "expected_revision", 24),
    (bpf.QueryAttr, "prog_ids", 16),
    (bpf.QueryAttr, "prog_cnt", 24),
    (bpf.QueryAttr, "prog_attach_flags", 32),
    (bpf.QueryAttr, "revision", 56),
    (bpf.BtfLoadAttr, "btf_size", 16),
    (bpf.BtfLoadAttr, "btf_log_level", 24),
    (bpf.BtfLoadAttr, "btf_token_fd", 36),
    (bpf.LinkUpdateAttr, "old_prog_fd", 12),
    (bpf.bpf_prog_info, "load_time", 40),
    (bpf.bpf_prog_info, "name", 64),
    (bpf.bpf_prog_info, "netns_dev", 88),
    (bpf.bpf_prog_info, "run_time_ns", 192),
    (bpf.bpf_prog_info, "verified_insns", 216),
    (bpf.bpf_prog_info, "attach_btf_id", 224),
    (bpf.bpf_link_info, "netns_ino", 16),
    (bpf.bpf_link_info, "attach_type", 20),
]


@pytest.mark.parametrize(("struct_type", "field", "offset"), ATTR_LAYOUT)
def test_attr_field_offset(struct_type: type[ctypes.Structure], field: str, offset: int) -> None:
    assert getattr(struct_type, field).offset == offset


def test_attr_sizes() -> None:
    assert ctypes.sizeof(bpf.ProgLoadAttr) == 152
    assert ctypes.sizeof(bpf.TestRunAttr) == 80
    assert ctypes.sizeof(bpf.QueryAttr) == 64
    assert ctypes.sizeof(bpf.bpf_prog_info) == 232


def test_command_numbers() -> None:
    expected = {
        "BPF_MAP_CREATE": 0, "BPF_PROG_LOAD": 5, "BPF_OBJ_PIN": 6, "BPF_OBJ_GET": 7,
        "BPF_PROG_ATTACH": 8, "BPF_PROG_DETACH": 9, "BPF_PROG_TEST_RUN": 10,
        "BPF_PROG_GET_NEXT_ID": 11, "BPF_PROG_GET_FD_BY_ID": 13, "BPF_OBJ_GET_INFO_BY_FD": 15,
        "BPF_PROG_QUERY": 16, "BPF_BTF_LOAD": 18, "BPF_LINK_CREATE": 28, "BPF_LINK_UPDATE": 29,
        "BPF_LINK_GET_FD_BY_ID": 30, "BPF_LINK_GET_NEXT_ID": 31, "BPF_ENABLE_STATS": 32,
        "BPF_LINK_DETACH": 34,
    }  # fmt: skip
    assert {name: bpf.Cmd[name].value for name in expected} == expected
    assert list(bpf.Cmd) == sorted(bpf.Cmd)  # dense, in kernel order
    assert [c.value for c in bpf.Cmd] == list(range(len(bpf.Cmd)))
    assert bpf.ProgType.FLOW_DISSECTOR.value == 22
    assert bpf.AttachType.BPF_FLOW_DISSECTOR.value == 17


@pytest.mark.parametrize(("machine", "number"), [("x86_64", 321), ("aarch64", 280), ("arm64", 280)])
def test_syscall_number_per_architecture(machine: str, number: int) -> None:
    assert bpf.bpf_syscall_number(machine) == number


def test_syscall_number_unknown_architecture() -> None:
    with pytest.raises(BpfError, match="riscv64") as info:
        bpf.bpf_syscall_number("riscv64")
    assert info.value.errno == errno.ENOSYS


# === errors ===========================================================================

SAMPLE_LOG = """\
func#0 @0
0: R1=ctx() R10=fp0
0: (b7) r2 = 0                        ; R2_w=0
1: (61) r0 = *(u32 *)(r1 +8)
invalid bpf_context access off=8 size=4
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""


def test_summarize_verifier_log() -> None:
    summary, index, text = summarize_verifier_log(SAMPLE_LOG)
    assert summary == "invalid bpf_context access off=8 size=4"
    assert (index, text) == (1, "r0 = *(u32 *)(r1 +8)")


def test_summarize_verifier_log_without_instructions() -> None:
    assert summarize_verifier_log("last insn is not an exit or jmp\nprocessed 0 insns\n") == (
        "last insn is not an exit or jmp",
        None,
        None,
    )
    assert summarize_verifier_log("") == ("", None, None)


def test_verifier_error_message_and_source_map() -> None:
    err = VerifierError(errno.EACCES, log=SAMPLE_LOG, name="dissect")
    assert err.errno == errno.EACCES and err.log == SAMPLE_LOG
    assert err.source_map is None and err.location is None
    assert "rejected program 'dissect': invalid bpf_context access off=8 size=4" in str(err)
    assert "at instruction 1: r0 = *(u32 *)(r1 +8)" in str(err)
    err.attach_source_map(lambda index: f"flow.py:{index + 10}:4")
    assert err.location == "flow.py:11:4"
    assert "from flow.py:11:4" in str(err)


def test_verifier_error_pickles_with_its_log() -> None:
    err = VerifierError(errno.EACCES, log=SAMPLE_LOG, name="dissect")
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is VerifierError
    assert (copy.errno, copy.log, copy.summary, str(copy)) == (
        err.errno,
        err.log,
        err.summary,
        str(err),
    )


def test_missing_privilege_error_message() -> None:
    err = MissingPrivilegeError(errno.EPERM, command="BPF_PROG_LOAD", missing=["CAP_NET_ADMIN"])
    assert err.errno == errno.EPERM and err.missing == ("CAP_NET_ADMIN",)
    assert isinstance(err, PermissionError) and isinstance(err, BpfError)
    text = str(err)
    assert (
        "loading a flow dissector needs CAP_BPF and CAP_NET_ADMIN (or root); run as root or "
        "grant them (and grant CAP_PERFMON too: without it the verifier refuses to add a variable offset "
        "to a packet pointer), e.g. with `sudo` / `setcap cap_bpf,cap_net_admin,cap_perfmon+ep`"
    ) in text
    assert "this process lacks CAP_NET_ADMIN" in text
    assert text.startswith("BPF_PROG_LOAD: ") and "[EPERM" in text


def test_bpf_error_names_command_and_errno() -> None:
    err = BpfError(errno.ENOENT, "opening x failed", command="BPF_OBJ_GET")
    assert isinstance(err, OSError) and err.errno == errno.ENOENT
    assert str(err) == "BPF_OBJ_GET: opening x failed [ENOENT: No such file or directory]"


# === program names ====================================================================


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dissect", "dissect"),
        ("a_b.c9", "a_b.c9"),
        ("", ""),
        ("x" * 15, "x" * 15),
        ("a_very_long_dissector_name", "a_very_long_dis"),
    ],
)
def test_valid_prog_name(name: str, expected: str) -> None:
    assert valid_prog_name(name) == expected


@pytest.mark.parametrize("name", ["my-prog", "flow dissector", "café", "a/b"])
def test_invalid_prog_name(name: str) -> None:
    with pytest.raises(ValueError, match="letters, digits, '_' and '.'"):
        valid_prog_name(name)


# === the kernel-test helper ===========================================================


def test_enforce_kernel_passes_when_available() -> None:
    enforce_kernel(None, {"CI": "true"})


def test_enforce_kernel_skips_outside_ci() -> None:
    with pytest.raises(pytest.skip.Exception, match="no bpf here"):
        enforce_kernel("no bpf here", {})


def test_enforce_kernel_fails_in_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="no bpf here"):
        enforce_kernel("no bpf here", {"CI": "true"})
    assert in_ci({"CI": "TRUE"}) and not in_ci({"CI": "false"}) and not in_ci({})


# === kernel: availability and privileges ==============================================


@needs_kernel
def test_check_bpf_available() -> None:
    assert check_bpf_available() is None


# Drop capabilities from this process's effective set, then report what the
# runtime says. CAP_SYS_ADMIN goes too: the kernel accepts it for either.
DROP_CAPS = """
    import ctypes, json, sys
    libc = ctypes.CDLL(None, use_errno=True)
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        sys.exit("capget failed")
    for cap in {caps}:
        data[cap // 32].effective &= ~(1 << (cap % 32))
    if libc.capset(ctypes.byref(header), data) != 0:
        sys.exit("capset failed")
    from pyfd.runtime import check_bpf_available, load_program, MissingPrivilegeError
    report = {{"reason": check_bpf_available()}}
    try:
        load_program(bytes.fromhex("b7000000000000009500000000000000"), name="x").close()
    except MissingPrivilegeError as err:
        report.update(errno=err.errno, missing=err.missing, message=str(err),
                      permission=isinstance(err, PermissionError))
    print(json.dumps(report))
"""


@pytest.mark.parametrize(
    ("dropped", "missing"),
    [
        ((12, 21), ["CAP_NET_ADMIN"]),  # CAP_BPF alone is not enough
        ((39, 21), ["CAP_BPF"]),
        ((12, 21, 39), ["CAP_BPF", "CAP_NET_ADMIN"]),
    ],
)
@needs_kernel
def test_missing_capability_is_named(dropped: tuple[int, ...], missing: list[str]) -> None:
    child = run_python(DROP_CAPS.format(caps=dropped))
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["errno"] == errno.EPERM and report["permission"] is True
    assert report["missing"] == missing
    assert f"this process lacks {' and '.join(missing)}" in report["reason"]
    assert "setcap cap_bpf,cap_net_admin,cap_perfmon+ep" in report["message"]


# === kernel: loading ==================================================================


@needs_kernel
def test_prog_info_after_load(exit0: LoadedProgram) -> None:
    info = exit0.info()
    assert info.name == "pyfd_exit0" and exit0.name == "pyfd_exit0"
    assert info.type == ProgType.FLOW_DISSECTOR.value == 22
    assert info.id == exit0.id > 0
    assert info.verified_insns == exit0.verified_insns == 2
    assert info.xlated_prog_len == len(EXIT_0)
    assert len(info.tag) == 16 and info.gpl_compatible
    assert info.load_time > 0


@needs_kernel
def test_long_name_is_truncated_in_the_kernel() -> None:
    with load_program(EXIT_0, name="a_very_long_dissector_name") as prog:
        assert prog.info().name == "a_very_long_dis"


@needs_kernel
def test_invalid_name_is_refused_before_loading() -> None:
    before = open_fds()
    with pytest.raises(ValueError, match="'-'"):
        load_program(EXIT_0, name="my-prog")
    assert open_fds() == before


@needs_kernel
def test_non_gpl_license_loads() -> None:
    with load_program(EXIT_0, name="pyfd_prop", license="Proprietary") as prog:
        assert prog.info().gpl_compatible is False


@pytest.mark.parametrize("code", [b"", EXIT_0[:-1]])
@needs_kernel
def test_code_must_be_whole_instructions(code: bytes) -> None:
    with pytest.raises(ValueError, match="8-byte instructions"):
        load_program(code, name="x")


@needs_kernel
def test_verifier_error_keeps_log() -> None:
    with pytest.raises(VerifierError) as info:
        load_program(READ_CTX_0, name="pyfd_bad")
    err = info.value
    assert err.errno == errno.EACCES and err.command == "BPF_PROG_LOAD"
    assert "invalid bpf_context access" in err.log
    assert err.summary == "invalid bpf_context access off=0 size=4"
    assert (err.insn_index, err.insn_text) == (0, "r0 = *(u32 *)(r1 +0)")
    assert not err.truncated
    assert "program 'pyfd_bad'" in str(err)


@needs_kernel
def test_verifier_error_uses_source_map() -> None:
    with pytest.raises(VerifierError) as info:
        load_program(READ_CTX_0, name="pyfd_bad", source_map=lambda i: f"flow.py:{i + 3}:8")
    assert info.value.location == "flow.py:3:8"
    assert "from flow.py:3:8" in str(info.value)


@needs_kernel
def test_verifier_log_buffer_grows() -> None:
    # 3000 moves, then the refused read: the log outgrows the first buffer.
    code = H("b700000000000000") * 3000 + READ_CTX_0
    with pytest.raises(VerifierError) as info:
        load_program(code, name="pyfd_big")
    err = info.value
    assert len(err.log) > LOG_SIZE_START and not err.truncated
    assert err.log.startswith("func#0") or err.log.startswith("0:")
    assert err.insn_index == 3000 and err.errno == errno.EACCES


@needs_kernel
def test_verifier_log_truncated_at_limit() -> None:
    # 420000 moves log about 18 MiB, past the 16 MiB limit: the end is kept.
    code = H("b700000000000000") * 420_000 + READ_CTX_0
    with pytest.raises(VerifierError) as info:
        load_program(code, name="pyfd_huge")
    err = info.value
    assert err.truncated and err.log_true_size > LOG_SIZE_LIMIT >= len(err.log)
    assert err.errno == errno.EACCES and err.insn_index == 420_000
    assert err.log.startswith(tuple("0123456789"))  # the cut first line is gone
    assert "truncated" in str(err)


@needs_kernel
def test_missing_exit_is_a_verifier_error() -> None:
    with pytest.raises(VerifierError, match="last insn is not an exit or jmp") as info:
        load_program(H("b700000000000000"), name="pyfd_noexit")
    assert info.value.errno == errno.EINVAL


@needs_kernel
def test_bad_attributes_are_a_bpf_error_without_log() -> None:
    with pytest.raises(BpfError, match="program type") as info:
        load_program(EXIT_0, name="x", prog_type=999)
    assert info.value.errno == errno.EINVAL
    assert not isinstance(info.value, VerifierError)
    assert "log_level=1" not in str(info.value)  # the loader already tried a log


@needs_kernel
def test_prog_load_wrapper_returns_log() -> None:
    fd, log = bpf.prog_load(
        prog_type=bpf.ProgType.FLOW_DISSECTOR,
        insns=EXIT_0,
        license="GPL",
        name="pyfd_log",
        log_level=4,  # BPF_LOG_STATS
        log_size=4096,
    )
    os.close(fd)
    assert "processed 2 insns" in log


def test_prog_load_wrapper_refuses_half_log_settings() -> None:
    with pytest.raises(ValueError, match="log_level"):
        bpf.prog_load(prog_type=22, insns=EXIT_0, license="GPL", log_level=1)
    with pytest.raises(ValueError, match="log_size"):
        bpf.prog_load(prog_type=22, insns=EXIT_0, license="GPL", log_size=4096)


@needs_kernel
def test_no_fd_leaks() -> None:
    before = open_fds()
    with pytest.raises(VerifierError):
        load_program(READ_CTX_0, name="pyfd_bad")
    assert open_fds() == before
    with pytest.raises(VerifierError):
        load_program(H("b700000000000000") * 3000 + READ_CTX_0, name="pyfd_big")
    assert open_fds() == before
    with pytest.raises(BpfError):
        load_program(EXIT_0, name="x", prog_type=999)
    assert open_fds() == before
    prog = load_program(EXIT_0, name="pyfd_ok")
    assert len(open_fds() - before) == 1
    prog.close()
    assert open_fds() == before


@needs_kernel
def test_close_is_idempotent_and_final() -> None:
    prog = load_program(EXIT_0, name="pyfd_close")
    prog.close()
    prog.close()
    assert prog.closed and "closed" in repr(prog)
    with pytest.raises(ValueError, match="closed"):
        _ = prog.fd
    with pytest.raises(ValueError, match="closed"):
        prog.run(IPV4_TCP)


@needs_kernel
def test_context_manager_closes() -> None:
    with load_program(EXIT_0, name="pyfd_ctx") as prog:
        fd = prog.fd
        assert bpf.fd_kind(fd) == "bpf-prog"
    assert prog.closed
    with pytest.raises(OSError) as info:
        os.fstat(fd)  # nothing else opened an fd since, so the number is free
    assert info.value.errno == errno.EBADF


@needs_kernel
def test_del_closes_and_warns() -> None:
    before = open_fds()
    prog = load_program(EXIT_0, name="pyfd_leak")
    with pytest.warns(ResourceWarning, match="pyfd_leak"):
        del prog
        gc.collect()
    assert open_fds() == before


# === kernel: test runs ================================================================


@pytest.mark.parametrize(
    ("frame", "n_proto"),
    [(IPV4_TCP, 0x0800), (IPV6_TCP, 0x86DD), (VLAN_IPV4, 0x8100), (ARP_FRAME, 0x0806)],
    ids=["ipv4", "ipv6", "vlan", "arp"],
)
@needs_kernel
def test_keys_at_entry(exit0: LoadedProgram, frame: bytes, n_proto: int) -> None:
    result = exit0.run(frame)
    expected = FlowKeys.build(nhoff=14, thoff=14, n_proto=n_proto)
    assert result.keys == expected, result.keys.diff(expected)
    assert result.retval == 0 and result.duration_ns >= 0


@pytest.mark.parametrize("flags", [0, 1, 2, 4, 7])
@needs_kernel
def test_flags_reach_the_program(flags: int) -> None:
    with load_program(FLAGS_TO_SPORT, name="pyfd_flags") as prog:
        keys = prog.run(IPV4_TCP, flags=flags).keys
    # The program stored the low 16 bits of flags as they are (host order) in
    # the be16 sport: the raw mirror shows them unconverted.
    assert keys.flags == flags and keys.to_struct().sport == flags


@pytest.mark.parametrize("value", [0, 2, 129, 7])
@needs_kernel
def test_retval_comes_back_verbatim(value: int) -> None:
    with load_program(ret(value), name="pyfd_ret") as prog:
        assert prog.run(IPV4_TCP).retval == value


@needs_kernel
def test_negative_retval_is_reported_as_u32() -> None:
    with load_program(ret(-1), name="pyfd_ret") as prog:
        assert prog.run(IPV4_TCP).retval == 0xFFFFFFFF


@needs_kernel
def test_program_writes_keys() -> None:
    code = write_keys(store_u16(2, 34), store_u16(12, 0xD204))  # thoff = 34, sport = htons(1234)
    with load_program(code, name="pyfd_write") as prog:
        keys = prog.run(IPV4_TCP).keys
    assert (keys.nhoff, keys.thoff, keys.sport) == (14, 34, 1234)


@needs_kernel
def test_keys_come_back_on_drop() -> None:
    code = LOAD_KEYS + store_u16(2, 40) + ret(BpfRetCode.BPF_DROP)
    with load_program(code, name="pyfd_drop") as prog:
        result = prog.run(IPV4_TCP)
    assert result.retval == 2 and result.keys.thoff == 40


# What the kernel does after the program returns (60-byte frame, starting
# offset 14): nhoff clamped into [14, 60], thoff into [nhoff, 60].
CLAMPS = [
    ("nhoff", 0, 14, 14),
    ("nhoff", 5, 14, 14),
    ("nhoff", 30, 30, 30),
    ("nhoff", 60, 60, 60),
    ("nhoff", 61, 60, 60),
    ("nhoff", 0x1234, 60, 60),
    ("nhoff", 0xFFFF, 60, 60),
    ("thoff", 0, 14, 14),
    ("thoff", 5, 14, 14),
    ("thoff", 30, 14, 30),
    ("thoff", 60, 14, 60),
    ("thoff", 61, 14, 60),
    ("thoff", 0x1234, 14, 60),
    ("thoff", 0xFFFF, 14, 60),
]


@pytest.mark.parametrize(("field", "written", "nhoff", "thoff"), CLAMPS)
@needs_kernel
def test_offsets_clamped_after_return(field: str, written: int, nhoff: int, thoff: int) -> None:
    assert len(IPV4_TCP) == 60
    offset = {"nhoff": 0, "thoff": 2}[field]
    with load_program(write_keys(store_u16(offset, written)), name="pyfd_clamp") as prog:
        keys = prog.run(IPV4_TCP).keys
    assert (keys.nhoff, keys.thoff) == (nhoff, thoff)


@needs_kernel
def test_thoff_clamped_below_nhoff() -> None:
    code = write_keys(store_u16(0, 30), store_u16(2, 20))
    with load_program(code, name="pyfd_clamp") as prog:
        keys = prog.run(IPV4_TCP).keys
    assert (keys.nhoff, keys.thoff) == (30, 30)


@pytest.mark.parametrize("length", [MIN_FRAME_LEN - 1, MAX_FRAME_LEN + 1, 0])
@needs_kernel
def test_frame_length_refused_before_the_kernel(exit0: LoadedProgram, length: int) -> None:
    with pytest.raises(ValueError, match=f"{MIN_FRAME_LEN} to {MAX_FRAME_LEN} bytes"):
        exit0.run(bytes(length))


@pytest.mark.parametrize("length", [MIN_FRAME_LEN, MAX_FRAME_LEN])
@needs_kernel
def test_frame_length_limits_work(exit0: LoadedProgram, length: int) -> None:
    frame = IPV4_TCP[:14] + bytes(length - 14)
    assert exit0.run(frame).keys.n_proto == 0x0800


@needs_kernel
def test_frame_limits_match_this_kernel(exit0: LoadedProgram) -> None:
    assert (MIN_FRAME_LEN, MAX_FRAME_LEN) == (14, 4096)
    for length in (13, 4097):
        with pytest.raises(BpfError) as info:
            bpf.prog_test_run(prog_fd=exit0.fd, data_in=bytes(length), data_out_size=56)
        assert info.value.errno == errno.EINVAL


@needs_kernel
def test_ctx_in_optional(exit0: LoadedProgram) -> None:
    without = bpf.prog_test_run(prog_fd=exit0.fd, data_in=IPV4_TCP, data_out_size=56)
    zeros = bpf.prog_test_run(
        prog_fd=exit0.fd, data_in=IPV4_TCP, data_out_size=56, ctx_in=bytes(56)
    )
    assert (
        without.data_out == zeros.data_out == FlowKeys.build(nhoff=14, thoff=14, n_proto=0x800).raw
    )
    assert without.retval == zeros.retval == 0


@needs_kernel
def test_ctx_in_only_flags_may_be_set(exit0: LoadedProgram) -> None:
    with pytest.raises(BpfError, match="only `flags` set") as info:
        bpf.prog_test_run(
            prog_fd=exit0.fd,
            data_in=IPV4_TCP,
            data_out_size=56,
            ctx_in=FlowKeys.build(nhoff=14).raw,
        )
    assert info.value.errno == errno.EINVAL


@needs_kernel
def test_ctx_in_longer_than_keys_needs_zero_tail(exit0: LoadedProgram) -> None:
    ok = bpf.prog_test_run(prog_fd=exit0.fd, data_in=IPV4_TCP, data_out_size=56, ctx_in=bytes(57))
    assert ok.retval == 0
    with pytest.raises(BpfError) as info:
        bpf.prog_test_run(
            prog_fd=exit0.fd, data_in=IPV4_TCP, data_out_size=56, ctx_in=bytes(56) + b"\x01"
        )
    assert info.value.errno == errno.E2BIG


@needs_kernel
def test_small_data_out_is_enospc(exit0: LoadedProgram) -> None:
    with pytest.raises(BpfError, match="8 bytes for 56 bytes") as info:
        bpf.prog_test_run(prog_fd=exit0.fd, data_in=IPV4_TCP, data_out_size=8)
    assert info.value.errno == errno.ENOSPC


@needs_kernel
def test_ctx_out_is_not_the_result(exit0: LoadedProgram) -> None:
    result = bpf.prog_test_run(
        prog_fd=exit0.fd, data_in=IPV4_TCP, data_out_size=56, ctx_out_size=56
    )
    assert result.data_out[:2] == b"\x0e\x00" and result.ctx_out == bytes(56)


@needs_kernel
def test_bench(exit0: LoadedProgram) -> None:
    assert 0 < exit0.bench(IPV4_TCP, repeat=1000) < 1_000_000
    with pytest.raises(ValueError, match="repeat"):
        exit0.bench(IPV4_TCP, repeat=0)


@needs_kernel
def test_flags_must_fit_u32(exit0: LoadedProgram) -> None:
    with pytest.raises(ValueError, match="32 bits"):
        exit0.run(IPV4_TCP, flags=1 << 32)


# === kernel: ids, stats, pinning ======================================================


@needs_kernel
def test_ids_and_fd_by_id(exit0: LoadedProgram) -> None:
    assert exit0.id in set(bpf.prog_ids())
    fd = bpf.prog_get_fd_by_id(exit0.id)
    try:
        assert bpf.obj_get_info_by_fd(fd).name == "pyfd_exit0"
    finally:
        os.close(fd)
    with pytest.raises(BpfError) as info:
        bpf.prog_get_fd_by_id(0x7FFFFFFF)
    assert info.value.errno == errno.ENOENT


@needs_kernel
def test_run_statistics(exit0: LoadedProgram) -> None:
    stats = bpf.enable_stats()
    try:
        before = exit0.info().run_cnt
        exit0.bench(IPV4_TCP, repeat=50)
        info = exit0.info()
        assert info.run_cnt == before + 50 and info.run_time_ns > 0
    finally:
        os.close(stats)


@needs_kernel
def test_pin_and_get(exit0: LoadedProgram) -> None:
    if bpf.fd_kind(exit0.fd) is None or not os.path.isdir("/sys/fs/bpf"):
        pytest.skip("no bpffs at /sys/fs/bpf")
    path = f"/sys/fs/bpf/pyfd_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    exit0.pin(path)
    try:
        fd = bpf.obj_get(path)
        try:
            assert bpf.obj_get_info_by_fd(fd).id == exit0.id
        finally:
            os.close(fd)
    finally:
        os.unlink(path)
    with pytest.raises(BpfError) as info:
        bpf.obj_get(path)
    assert info.value.errno == errno.ENOENT


@needs_kernel
def test_pin_outside_bpffs(exit0: LoadedProgram, tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(BpfError, match="bpffs") as info:
        bpf.obj_pin(fd=exit0.fd, path=os.path.join(tmp_path, "prog"))
    assert not isinstance(info.value, MissingPrivilegeError)


# === kernel: BTF ======================================================================


def btf_blob(types: bytes, strings: bytes) -> bytes:
    """A BTF blob: header (magic, version 1, hdr_len 24), then types, then strings."""
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def btf_int(bits: int) -> bytes:
    """One BTF_KIND_INT named by string offset 1, 4 bytes wide, `bits` bits."""
    return struct.pack("<IIII", 1, 1 << 24, 4, bits)


@needs_kernel
def test_btf_load() -> None:
    fd, log = bpf.btf_load(data=btf_blob(btf_int(32), b"\0int\0"), log_level=1, log_size=4096)
    os.close(fd)
    assert "INT int size=4" in log


@needs_kernel
def test_btf_load_error_keeps_log() -> None:
    with pytest.raises(BtfError, match="nr_bits exceeds type_size") as info:
        bpf.btf_load(data=btf_blob(btf_int(64), b"\0int\0"), log_level=1, log_size=4096)
    assert info.value.errno == errno.EINVAL and "magic: 0xeb9f" in info.value.log


# === kernel: attaching in a namespace this test creates ===============================


FLOW_DISSECTOR = bpf.AttachType.BPF_FLOW_DISSECTOR


@needs_kernel
def test_link_in_namespace(netns: int) -> None:
    with (
        load_program(EXIT_0, name="pyfd_link1") as first,
        load_program(EXIT_0, name="pyfd_link2") as second,
    ):
        assert bpf.prog_query(target_fd=netns, attach_type=FLOW_DISSECTOR).prog_ids == ()
        link = bpf.link_create(prog_fd=first.fd, target_fd=netns, attach_type=FLOW_DISSECTOR)
        try:
            info = bpf.link_get_info(link)
            assert info.type == bpf.LinkType.NETNS and info.prog_id == first.id
            assert info.attach_type == FLOW_DISSECTOR
            assert info.netns_ino == os.fstat(netns).st_ino
            query = bpf.prog_query(target_fd=netns, attach_type=FLOW_DISSECTOR)
            assert query.prog_ids == (first.id,)

            with pytest.raises(BpfError) as second_link:
                bpf.link_create(prog_fd=second.fd, target_fd=netns, attach_type=FLOW_DISSECTOR)
            assert second_link.value.errno == errno.E2BIG

            bpf.link_update(link_fd=link, new_prog_fd=second.fd)
            assert bpf.link_get_info(link).prog_id == second.id
            with pytest.raises(BpfError) as wrong_old:
                bpf.link_update(
                    link_fd=link,
                    new_prog_fd=first.fd,
                    old_prog_fd=first.fd,
                    flags=bpf.BPF_F_REPLACE,
                )
            assert wrong_old.value.errno == errno.EPERM
            assert not isinstance(wrong_old.value, MissingPrivilegeError)

            assert info.id in set(bpf.link_ids())
            by_id = bpf.link_get_fd_by_id(info.id)
            try:
                assert bpf.link_get_info(by_id).id == info.id
            finally:
                os.close(by_id)
            with pytest.raises(ValueError, match="link_get_info"):
                bpf.obj_get_info_by_fd(link)

            bpf.link_detach(link)
            assert bpf.prog_query(target_fd=netns, attach_type=FLOW_DISSECTOR).prog_ids == ()
        finally:
            os.close(link)


@needs_kernel
def test_closing_link_detaches(netns: int) -> None:
    with load_program(EXIT_0, name="pyfd_link") as prog:
        link = bpf.link_create(prog_fd=prog.fd, target_fd=netns, attach_type=FLOW_DISSECTOR)
        os.close(link)
        assert bpf.prog_query(target_fd=netns, attach_type=FLOW_DISSECTOR).prog_ids == ()


@needs_kernel
def test_legacy_attach_refuses_namespace_fd(netns: int) -> None:
    with load_program(EXIT_0, name="pyfd_legacy") as prog:
        with pytest.raises(BpfError) as info:
            bpf.prog_attach(target_fd=netns, attach_bpf_fd=prog.fd, attach_type=FLOW_DISSECTOR)
    assert info.value.errno == errno.EINVAL


LEGACY_ATTACH = """
    import errno, json, os
    from pyfd.runtime import BpfError, load_program
    from pyfd.runtime import bpf
    FD = bpf.AttachType.BPF_FLOW_DISSECTOR
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    report = {}
    with load_program(bytes.fromhex("b7000000000000009500000000000000"), name="legacy") as prog:
        bpf.prog_attach(target_fd=0, attach_bpf_fd=prog.fd, attach_type=FD)
        report["attached"] = list(bpf.prog_query(target_fd=own, attach_type=FD).prog_ids)
        report["id"] = prog.id
        try:
            os.close(bpf.link_create(prog_fd=prog.fd, target_fd=own, attach_type=FD))
        except BpfError as err:
            report["link_errno"] = err.errno
        bpf.prog_detach(target_fd=0, attach_type=FD, attach_bpf_fd=prog.fd)
        report["detached"] = list(bpf.prog_query(target_fd=own, attach_type=FD).prog_ids)
    print(json.dumps(report))
"""


@needs_kernel
def test_legacy_attach_in_own_namespace() -> None:
    unshare = shutil.which("unshare")
    if unshare is None:
        enforce_kernel("the `unshare` tool (util-linux) is not installed")
        return
    # The child runs in a new network namespace: the legacy attach binds to it.
    child = run_python(LEGACY_ATTACH, unshare, "--net")
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["attached"] == [report["id"]]
    assert report["link_errno"] == errno.EEXIST
    assert report["detached"] == []
