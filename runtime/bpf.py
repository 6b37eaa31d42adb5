"""bpf(2) through ctypes: one thin wrapper per command.

Each wrapper fills a zeroed ctypes mirror of its member of the kernel's
``union bpf_attr`` (include/uapi/linux/bpf.h), passes that structure's own
size (the kernel zero-extends a shorter attr and refuses a longer one whose
tail is not zero), and turns a failure into a BpfError whose message says
what was being done. Options are keyword-only; every option a wrapper accepts
is passed to the kernel.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeVar

from ..abi import INSN_SIZE
from .caps import FLOW_DISSECTOR_CAPABILITIES, Capability, missing_capabilities
from .errors import BpfError, BtfError, MissingPrivilegeError, VerifierError

c_u8 = ctypes.c_uint8
c_u16 = ctypes.c_uint16
c_u32 = ctypes.c_uint32
c_s32 = ctypes.c_int32
c_u64 = ctypes.c_uint64


class Cmd(IntEnum):
    """bpf(2) command numbers: enum bpf_cmd in include/uapi/linux/bpf.h."""

    BPF_MAP_CREATE = 0
    BPF_MAP_LOOKUP_ELEM = 1
    BPF_MAP_UPDATE_ELEM = 2
    BPF_MAP_DELETE_ELEM = 3
    BPF_MAP_GET_NEXT_KEY = 4
    BPF_PROG_LOAD = 5
    BPF_OBJ_PIN = 6
    BPF_OBJ_GET = 7
    BPF_PROG_ATTACH = 8
    BPF_PROG_DETACH = 9
    BPF_PROG_TEST_RUN = 10
    BPF_PROG_GET_NEXT_ID = 11
    BPF_MAP_GET_NEXT_ID = 12
    BPF_PROG_GET_FD_BY_ID = 13
    BPF_MAP_GET_FD_BY_ID = 14
    BPF_OBJ_GET_INFO_BY_FD = 15
    BPF_PROG_QUERY = 16
    BPF_RAW_TRACEPOINT_OPEN = 17
    BPF_BTF_LOAD = 18
    BPF_BTF_GET_FD_BY_ID = 19
    BPF_TASK_FD_QUERY = 20
    BPF_MAP_LOOKUP_AND_DELETE_ELEM = 21
    BPF_MAP_FREEZE = 22
    BPF_BTF_GET_NEXT_ID = 23
    BPF_MAP_LOOKUP_BATCH = 24
    BPF_MAP_LOOKUP_AND_DELETE_BATCH = 25
    BPF_MAP_UPDATE_BATCH = 26
    BPF_MAP_DELETE_BATCH = 27
    BPF_LINK_CREATE = 28
    BPF_LINK_UPDATE = 29
    BPF_LINK_GET_FD_BY_ID = 30
    BPF_LINK_GET_NEXT_ID = 31
    BPF_ENABLE_STATS = 32
    BPF_ITER_CREATE = 33
    BPF_LINK_DETACH = 34
    BPF_PROG_BIND_MAP = 35
    BPF_TOKEN_CREATE = 36


class ProgType(IntEnum):
    """Program types used here: enum bpf_prog_type."""

    UNSPEC = 0
    SOCKET_FILTER = 1
    SCHED_CLS = 3
    XDP = 6
    FLOW_DISSECTOR = 22


class AttachType(IntEnum):
    """Attach types used here: enum bpf_attach_type."""

    BPF_FLOW_DISSECTOR = 17


class LinkType(IntEnum):
    """Link types: enum bpf_link_type (the ones a flow dissector meets)."""

    UNSPEC = 0
    RAW_TRACEPOINT = 1
    TRACING = 2
    CGROUP = 3
    ITER = 4
    NETNS = 5
    XDP = 6


class StatsType(IntEnum):
    """Statistics that BPF_ENABLE_STATS can turn on: enum bpf_stats_type."""

    BPF_STATS_RUN_TIME = 0


# Flags of BPF_PROG_ATTACH / BPF_LINK_UPDATE.
BPF_F_REPLACE: Final = 1 << 2
# Flags of BPF_OBJ_GET (file_flags).
BPF_F_RDONLY: Final = 1 << 3
BPF_F_WRONLY: Final = 1 << 4

# include/linux/errno.h: kernel-internal, but bpf(2) returns it (e.g. a
# program type without test-run support).
ENOTSUPP: Final = 524

BPF_OBJ_NAME_LEN: Final = 16
BPF_TAG_SIZE: Final = 8
# kernel/bpf/verifier.c: bpf_vlog_init() refuses a log buffer under 128
# bytes or over UINT_MAX >> 2.
LOG_SIZE_MIN: Final = 128
LOG_SIZE_MAX: Final = 0xFFFFFFFF >> 2

# arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h.
SYSCALL_NUMBERS: Final[Mapping[str, int]] = {
    "x86_64": 321,
    "amd64": 321,
    "aarch64": 280,
    "arm64": 280,
}


# --- attr layouts: members of union bpf_attr --------------------------------


class ProgLoadAttr(ctypes.Structure):
    """union bpf_attr, BPF_PROG_LOAD member (up to fd_array_cnt)."""

    _fields_ = [
        ("prog_type", c_u32),
        ("insn_cnt", c_u32),
        ("insns", c_u64),
        ("license", c_u64),
        ("log_level", c_u32),
        ("log_size", c_u32),
        ("log_buf", c_u64),
        ("kern_version", c_u32),
        ("prog_flags", c_u32),
        ("prog_name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("prog_ifindex", c_u32),
        ("expected_attach_type", c_u32),
        ("prog_btf_fd", c_u32),
        ("func_info_rec_size", c_u32),
        ("func_info", c_u64),
        ("func_info_cnt", c_u32),
        ("line_info_rec_size", c_u32),
        ("line_info", c_u64),
        ("line_info_cnt", c_u32),
        ("attach_btf_id", c_u32),
        ("attach_prog_fd", c_u32),
        ("core_relo_cnt", c_u32),
        ("fd_array", c_u64),
        ("core_relos", c_u64),
        ("core_relo_rec_size", c_u32),
        ("log_true_size", c_u32),
        ("prog_token_fd", c_s32),
        ("fd_array_cnt", c_u32),
    ]


class MapCreateAttr(ctypes.Structure):
    """union bpf_attr, BPF_MAP_CREATE member (up to map_token_fd)."""

    _fields_ = [
        ("map_type", c_u32),
        ("key_size", c_u32),
        ("value_size", c_u32),
        ("max_entries", c_u32),
        ("map_flags", c_u32),
        ("inner_map_fd", c_u32),
        ("numa_node", c_u32),
        ("map_name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("map_ifindex", c_u32),
        ("btf_fd", c_u32),
        ("btf_key_type_id", c_u32),
        ("btf_value_type_id", c_u32),
        ("btf_vmlinux_value_type_id", c_u32),
        ("map_extra", c_u64),
        ("value_type_btf_obj_fd", c_s32),
        ("map_token_fd", c_s32),
    ]


class MapElemAttr(ctypes.Structure):
    """union bpf_attr, BPF_MAP_*_ELEM / BPF_MAP_GET_NEXT_KEY / BPF_MAP_FREEZE member."""

    _fields_ = [
        ("map_fd", c_u32),
        ("_pad", c_u32),  # key is an __aligned_u64
        ("key", c_u64),
        ("value", c_u64),  # also next_key
        ("flags", c_u64),
    ]


class ObjAttr(ctypes.Structure):
    """union bpf_attr, BPF_OBJ_PIN / BPF_OBJ_GET member."""

    _fields_ = [
        ("pathname", c_u64),
        ("bpf_fd", c_u32),
        ("file_flags", c_u32),
        ("path_fd", c_s32),
    ]


class ProgAttachAttr(ctypes.Structure):
    """union bpf_attr, BPF_PROG_ATTACH / BPF_PROG_DETACH member."""

    _fields_ = [
        ("target_fd", c_u32),
        ("attach_bpf_fd", c_u32),
        ("attach_type", c_u32),
        ("attach_flags", c_u32),
        ("replace_bpf_fd", c_u32),
        ("relative_fd", c_u32),
        ("expected_revision", c_u64),
    ]


class TestRunAttr(ctypes.Structure):
    """union bpf_attr, BPF_PROG_TEST_RUN member ("test")."""

    __test__ = False  # not a pytest test class, despite its name

    _fields_ = [
        ("prog_fd", c_u32),
        ("retval", c_u32),
        ("data_size_in", c_u32),
        ("data_size_out", c_u32),
        ("data_in", c_u64),
        ("data_out", c_u64),
        ("repeat", c_u32),
        ("duration", c_u32),
        ("ctx_size_in", c_u32),
        ("ctx_size_out", c_u32),
        ("ctx_in", c_u64),
        ("ctx_out", c_u64),
        ("flags", c_u32),
        ("cpu", c_u32),
        ("batch_size", c_u32),
    ]


class GetIdAttr(ctypes.Structure):
    """union bpf_attr, BPF_*_GET_NEXT_ID / BPF_*_GET_FD_BY_ID member."""

    _fields_ = [
        ("start_id", c_u32),  # also prog_id, map_id, btf_id, link_id
        ("next_id", c_u32),
        ("open_flags", c_u32),
    ]


class InfoAttr(ctypes.Structure):
    """union bpf_attr, BPF_OBJ_GET_INFO_BY_FD member ("info")."""

    _fields_ = [
        ("bpf_fd", c_u32),
        ("info_len", c_u32),
        ("info", c_u64),
    ]


class QueryAttr(ctypes.Structure):
    """union bpf_attr, BPF_PROG_QUERY member ("query")."""

    _fields_ = [
        ("target_fd", c_u32),
        ("attach_type", c_u32),
        ("query_flags", c_u32),
        ("attach_flags", c_u32),
        ("prog_ids", c_u64),
        ("prog_cnt", c_u32),
        ("_pad", c_u32),
        ("prog_attach_flags", c_u64),
        ("link_ids", c_u64),
        ("link_attach_flags", c_u64),
        ("revision", c_u64),
    ]


class BtfLoadAttr(ctypes.Structure):
    """union bpf_attr, BPF_BTF_LOAD member."""

    _fields_ = [
        ("btf", c_u64),
        ("btf_log_buf", c_u64),
        ("btf_size", c_u32),
        ("btf_log_size", c_u32),
        ("btf_log_level", c_u32),
        ("btf_log_true_size", c_u32),
        ("btf_flags", c_u32),
        ("btf_token_fd", c_s32),
    ]


class LinkCreateAttr(ctypes.Structure):
    """union bpf_attr, BPF_LINK_CREATE member, up to the per-type tail (zero for a netns link)."""

    _fields_ = [
        ("prog_fd", c_u32),
        ("target_fd", c_u32),
        ("attach_type", c_u32),
        ("flags", c_u32),
    ]


class LinkUpdateAttr(ctypes.Structure):
    """union bpf_attr, BPF_LINK_UPDATE member."""

    _fields_ = [
        ("link_fd", c_u32),
        ("new_prog_fd", c_u32),
        ("flags", c_u32),
        ("old_prog_fd", c_u32),
    ]


class LinkDetachAttr(ctypes.Structure):
    """union bpf_attr, BPF_LINK_DETACH member."""

    _fields_ = [("link_fd", c_u32)]


class EnableStatsAttr(ctypes.Structure):
    """union bpf_attr, BPF_ENABLE_STATS member."""

    _fields_ = [("type", c_u32)]


class bpf_prog_info(ctypes.Structure):
    """struct bpf_prog_info (include/uapi/linux/bpf.h), as filled by BPF_OBJ_GET_INFO_BY_FD."""

    _fields_ = [
        ("type", c_u32),
        ("id", c_u32),
        ("tag", c_u8 * BPF_TAG_SIZE),
        ("jited_prog_len", c_u32),
        ("xlated_prog_len", c_u32),
        ("jited_prog_insns", c_u64),
        ("xlated_prog_insns", c_u64),
        ("load_time", c_u64),
        ("created_by_uid", c_u32),
        ("nr_map_ids", c_u32),
        ("map_ids", c_u64),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", c_u32),
        ("gpl_compatible", c_u32),  # bit 0; the other 31 bits are padding
        ("netns_dev", c_u64),
        ("netns_ino", c_u64),
        ("nr_jited_ksyms", c_u32),
        ("nr_jited_func_lens", c_u32),
        ("jited_ksyms", c_u64),
        ("jited_func_lens", c_u64),
        ("btf_id", c_u32),
        ("func_info_rec_size", c_u32),
        ("func_info", c_u64),
        ("nr_func_info", c_u32),
        ("nr_line_info", c_u32),
        ("line_info", c_u64),
        ("jited_line_info", c_u64),
        ("nr_jited_line_info", c_u32),
        ("line_info_rec_size", c_u32),
        ("jited_line_info_rec_size", c_u32),
        ("nr_prog_tags", c_u32),
        ("prog_tags", c_u64),
        ("run_time_ns", c_u64),
        ("run_cnt", c_u64),
        ("recursion_misses", c_u64),
        ("verified_insns", c_u32),
        ("attach_btf_obj_id", c_u32),
        ("attach_btf_id", c_u32),
        ("_pad", c_u32),
    ]


class bpf_map_info(ctypes.Structure):
    """struct bpf_map_info (include/uapi/linux/bpf.h), up to map_extra."""

    _fields_ = [
        ("type", c_u32),
        ("id", c_u32),
        ("key_size", c_u32),
        ("value_size", c_u32),
        ("max_entries", c_u32),
        ("map_flags", c_u32),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", c_u32),
        ("btf_vmlinux_value_type_id", c_u32),
        ("netns_dev", c_u64),
        ("netns_ino", c_u64),
        ("btf_id", c_u32),
        ("btf_key_type_id", c_u32),
        ("btf_value_type_id", c_u32),
        ("btf_vmlinux_id", c_u32),
        ("map_extra", c_u64),
    ]


class bpf_btf_info(ctypes.Structure):
    """struct bpf_btf_info: where BPF_OBJ_GET_INFO_BY_FD copies a loaded BTF's bytes and name."""

    _fields_ = [
        ("btf", c_u64),
        ("btf_size", c_u32),
        ("id", c_u32),
        ("name", c_u64),
        ("name_len", c_u32),
        ("kernel_btf", c_u32),
    ]


class bpf_link_info(ctypes.Structure):
    """struct bpf_link_info: the common head and the netns member of its union."""

    _fields_ = [
        ("type", c_u32),
        ("id", c_u32),
        ("prog_id", c_u32),
        ("_pad", c_u32),
        # The union starts at 16 (it holds __aligned_u64 members); for a netns
        # link it is { __u32 netns_ino; __u32 attach_type; }. 32 bytes cover
        # the largest member a flow dissector link can meet.
        ("netns_ino", c_u32),
        ("attach_type", c_u32),
        ("_union_rest", c_u8 * 24),
    ]


# --- results ----------------------------------------------------------------


@dataclass(frozen=True)
class TestRunResult:
    """What BPF_PROG_TEST_RUN reports: return value, time per run, output buffers."""

    __test__ = False  # not a pytest test class, despite its name

    retval: int
    duration_ns: int
    data_out: bytes
    ctx_out: bytes = b""


@dataclass(frozen=True)
class ProgInfo:
    """A decoded struct bpf_prog_info."""

    type: int
    id: int
    tag: str
    name: str
    jited_prog_len: int
    xlated_prog_len: int
    load_time: int  # ns since boot
    created_by_uid: int
    gpl_compatible: bool
    netns_dev: int
    netns_ino: int
    btf_id: int
    nr_func_info: int
    nr_line_info: int
    run_time_ns: int
    run_cnt: int
    recursion_misses: int
    verified_insns: int


@dataclass(frozen=True)
class MapInfo:
    """A decoded struct bpf_map_info."""

    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    name: str
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    map_extra: int


@dataclass(frozen=True)
class LinkInfo:
    """A decoded struct bpf_link_info; netns fields are None for other link types."""

    type: int
    id: int
    prog_id: int
    netns_ino: int | None
    attach_type: int | None


@dataclass(frozen=True)
class ProgQueryResult:
    """What BPF_PROG_QUERY reports for one attach point."""

    prog_ids: tuple[int, ...]
    attach_flags: int
    revision: int


# --- the system call ----------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_ulong]

# Commands the kernel may interrupt before doing anything (libbpf retries
# BPF_PROG_LOAD on EAGAIN the same way).
_RETRIES_ON_EAGAIN: Final = 5

_Attr = TypeVar("_Attr", bound=ctypes.Structure)


def bpf_syscall_number(machine: str | None = None) -> int:
    """Return the bpf(2) system call number for this machine (or a named one)."""
    if machine is None:
        machine = platform.machine()
        if ctypes.sizeof(ctypes.c_void_p) != 8:
            machine += " (32-bit process)"
    number = SYSCALL_NUMBERS.get(machine)
    if number is None:
        raise BpfError(
            errno.ENOSYS,
            f"pyfd knows the bpf(2) system call number only for x86_64 (321) and "
            f"aarch64 (280), in a 64-bit process; this machine is {machine!r}",
            command="bpf",
        )
    return number


def _call(cmd: Cmd, attr: ctypes.Structure) -> int:
    """Run one bpf(2) command; return its result or minus errno."""
    number = bpf_syscall_number()
    attempts = _RETRIES_ON_EAGAIN
    while True:
        ret = int(_syscall(number, int(cmd), ctypes.byref(attr), ctypes.sizeof(attr)))
        if ret >= 0:
            return ret
        code = ctypes.get_errno()
        if code == errno.EINTR or (code == errno.EAGAIN and attempts > 0):
            attempts -= 1
            continue
        return -code


def _fail(
    cmd: Cmd,
    code: int,
    doing: str,
    explain: Mapping[int, str] | None = None,
    *,
    needs: tuple[Capability, ...] = FLOW_DISSECTOR_CAPABILITIES,
) -> BpfError:
    """Build the error for a failed command: what was being done and what the errno means here."""
    explain = explain or {}
    if code == errno.EPERM:
        missing = missing_capabilities(needs)
        # Some commands also use EPERM for "not allowed with these arguments"
        # (BPF_LINK_UPDATE with the wrong old program, BPF_OBJ_PIN outside
        # bpffs): with every capability present, that reading wins.
        if missing or missing is None or code not in explain:
            return MissingPrivilegeError(
                code,
                command=cmd.name,
                missing=missing,
                needs=[cap.name for cap in needs],
                action=doing,
            )
    reason = explain.get(code, os.strerror(code))
    return BpfError(code, f"{doing} failed: {reason}", command=cmd.name)


def _run(
    cmd: Cmd,
    attr: ctypes.Structure,
    doing: str,
    explain: Mapping[int, str] | None = None,
    *,
    needs: tuple[Capability, ...] = FLOW_DISSECTOR_CAPABILITIES,
) -> int:
    """Run one bpf(2) command and raise a BpfError describing `doing` if it fails."""
    ret = _call(cmd, attr)
    if ret < 0:
        raise _fail(cmd, -ret, doing, explain, needs=needs)
    return ret


def _buffer(data: bytes) -> ctypes.Array[ctypes.c_char]:
    """Copy bytes into a ctypes buffer the kernel can read (kept alive by the caller)."""
    return ctypes.create_string_buffer(data, len(data))


def _addr(buf: ctypes.Array[ctypes.c_char] | ctypes.Array[c_u32] | None) -> int:
    """Return a buffer's address as the u64 the kernel expects (0 for none)."""
    return 0 if buf is None else ctypes.addressof(buf)


def _check_u32(name: str, value: int) -> int:
    """Refuse a value that does not fit the kernel's u32 field."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} must fit in 32 bits (0..4294967295), got {value}")
    return value


def _check_fd(name: str, fd: int) -> int:
    """Refuse a negative or oversized file descriptor before the kernel sees it."""
    if not 0 <= fd <= 0x7FFFFFFF:
        raise ValueError(f"{name} must be a file descriptor (a non-negative int), got {fd}")
    return fd


def _decode_log(buf: ctypes.Array[ctypes.c_char] | None) -> str:
    """Return the NUL-terminated text the kernel wrote into a log buffer."""
    return "" if buf is None else buf.value.decode("utf-8", "replace")


def _check_log(log_level: int, log_size: int) -> None:
    """Refuse log settings the kernel would refuse with a bare EINVAL."""
    _check_u32("log_level", log_level)
    if log_size == 0 and log_level == 0:
        return
    if log_level == 0 or not LOG_SIZE_MIN <= log_size <= LOG_SIZE_MAX:
        raise ValueError(
            f"a verifier log needs log_level > 0 and {LOG_SIZE_MIN} <= log_size <= "
            f"{LOG_SIZE_MAX}, got log_level={log_level}, log_size={log_size}"
        )


def check_object_name(name: str) -> bytes:
    """Return name encoded for the kernel, refusing what bpf_obj_name_cpy() refuses."""
    bad = sorted({ch for ch in name if not (ch.isascii() and (ch.isalnum() or ch in "_."))})
    if bad:
        raise ValueError(
            f"BPF object name {name!r} may hold only ASCII letters, digits, '_' and '.'; "
            f"it has {', '.join(repr(ch) for ch in bad)}"
        )
    if len(name) >= BPF_OBJ_NAME_LEN:
        raise ValueError(
            f"BPF object name {name!r} is {len(name)} characters; the kernel allows at most "
            f"{BPF_OBJ_NAME_LEN - 1}"
        )
    return name.encode("ascii")


# --- BPF_PROG_LOAD --------------------------------------------------------------

_PROG_LOAD_EXPLAIN: Final[Mapping[int, str]] = {
    errno.EINVAL: (
        "the kernel refused the program's attributes before verifying it (check the "
        "program type, expected attach type, license, name and instruction count)"
    ),
    errno.E2BIG: "the program has more instructions than the kernel accepts",
    errno.EACCES: "the verifier refused the program; load it with a log to see why",
    errno.ENOMEM: "the kernel ran out of memory (or the locked-memory limit was hit)",
}


def prog_load(
    *,
    prog_type: int,
    insns: bytes,
    license: str,
    name: str = "",
    log_level: int = 0,
    log_size: int = 0,
    prog_flags: int = 0,
    expected_attach_type: int = 0,
    prog_btf_fd: int = 0,
    func_info: bytes = b"",
    func_info_rec_size: int = 0,
    line_info: bytes = b"",
    line_info_rec_size: int = 0,
) -> tuple[int, str]:
    """Load a program (BPF_PROG_LOAD); return its fd and the verifier log text."""
    if not insns or len(insns) % INSN_SIZE:
        raise ValueError(
            f"a program is a non-empty sequence of 8-byte instructions; got {len(insns)} bytes"
        )
    _check_log(log_level, log_size)
    for what, blob, rec_size in (
        ("func_info", func_info, func_info_rec_size),
        ("line_info", line_info, line_info_rec_size),
    ):
        if blob and (rec_size <= 0 or len(blob) % rec_size):
            raise ValueError(
                f"{what} is {len(blob)} bytes, not a whole number of {rec_size}-byte records"
            )
        if rec_size and not blob:
            raise ValueError(f"{what}_rec_size={rec_size} was given without any {what}")
    if (func_info or line_info) and prog_btf_fd <= 0:
        raise ValueError("func_info and line_info need prog_btf_fd, the fd of loaded BTF")

    insns_buf = _buffer(insns)
    license_buf = ctypes.create_string_buffer(license.encode("ascii"))
    log_buf = ctypes.create_string_buffer(log_size) if log_size else None
    func_buf = _buffer(func_info) if func_info else None
    line_buf = _buffer(line_info) if line_info else None

    attr = ProgLoadAttr()
    attr.prog_type = _check_u32("prog_type", prog_type)
    attr.insn_cnt = len(insns) // INSN_SIZE
    attr.insns = _addr(insns_buf)
    attr.license = _addr(license_buf)
    attr.log_level = log_level
    attr.log_size = log_size
    attr.log_buf = _addr(log_buf)
    attr.prog_flags = _check_u32("prog_flags", prog_flags)
    attr.prog_name = check_object_name(name)
    attr.expected_attach_type = _check_u32("expected_attach_type", expected_attach_type)
    attr.prog_btf_fd = _check_fd("prog_btf_fd", prog_btf_fd)
    attr.func_info_rec_size = func_info_rec_size
    attr.func_info = _addr(func_buf)
    attr.func_info_cnt = len(func_info) // func_info_rec_size if func_info else 0
    attr.line_info_rec_size = line_info_rec_size
    attr.line_info = _addr(line_buf)
    attr.line_info_cnt = len(line_info) // line_info_rec_size if line_info else 0

    ret = _call(Cmd.BPF_PROG_LOAD, attr)
    log = _decode_log(log_buf)
    if ret >= 0:
        return ret, log
    code = -ret
    doing = f"loading program {name!r}" if name else "loading a program"
    if code == errno.EPERM or code == errno.EACCES and not log:
        missing = missing_capabilities()
        if code == errno.EPERM or missing:
            raise MissingPrivilegeError(code, command=Cmd.BPF_PROG_LOAD.name, missing=missing)
    if log:
        raise VerifierError(
            code,
            log=log,
            name=name,
            truncated=code == errno.ENOSPC,
            log_true_size=int(attr.log_true_size),
        )
    explain = dict(_PROG_LOAD_EXPLAIN)
    if log_level == 0:
        explain[code] = explain.get(code, os.strerror(code)) + (
            "; load it with a log (log_level=1) to see the verifier's reason, if it has one"
        )
    raise _fail(Cmd.BPF_PROG_LOAD, code, doing, explain)


# --- BPF_PROG_TEST_RUN ------------------------------------------------------------


def prog_test_run(
    *,
    prog_fd: int,
    data_in: bytes,
    data_out_size: int,
    ctx_in: bytes | None = None,
    ctx_out_size: int = 0,
    repeat: int = 1,
) -> TestRunResult:
    """Run a loaded program on data_in (BPF_PROG_TEST_RUN); repeat > 1 averages the time."""
    _check_fd("prog_fd", prog_fd)
    _check_u32("repeat", repeat)
    _check_u32("data_out_size", data_out_size)
    _check_u32("ctx_out_size", ctx_out_size)
    data_buf = _buffer(data_in)
    out_buf = ctypes.create_string_buffer(data_out_size) if data_out_size else None
    ctx_buf = _buffer(ctx_in) if ctx_in is not None else None
    ctx_out_buf = ctypes.create_string_buffer(ctx_out_size) if ctx_out_size else None

    attr = TestRunAttr()
    attr.prog_fd = prog_fd
    attr.data_size_in = len(data_in)
    attr.data_in = _addr(data_buf)
    attr.data_size_out = data_out_size
    attr.data_out = _addr(out_buf)
    attr.repeat = repeat
    attr.ctx_size_in = 0 if ctx_in is None else len(ctx_in)
    attr.ctx_in = _addr(ctx_buf)
    attr.ctx_size_out = ctx_out_size
    attr.ctx_out = _addr(ctx_out_buf)

    ret = _call(Cmd.BPF_PROG_TEST_RUN, attr)
    if ret < 0:
        code = -ret
        explain = {
            errno.EINVAL: (
                f"the kernel refused the input: {len(data_in)} bytes of data"
                + ("" if ctx_in is None else f" and a {len(ctx_in)}-byte context")
                + " (for a flow dissector: data 14..4096 bytes from the Ethernet header; "
                "a context is a 56-byte struct bpf_flow_keys with only `flags` set)"
            ),
            errno.ENOSPC: (
                f"an output buffer is too small: data_out has {data_out_size} bytes for "
                f"{attr.data_size_out} bytes of output"
                + (
                    f", ctx_out has {ctx_out_size} bytes for {attr.ctx_size_out}"
                    if ctx_out_size
                    else ""
                )
            ),
            ENOTSUPP: "this program type cannot be test-run",
        }
        raise _fail(Cmd.BPF_PROG_TEST_RUN, code, f"test-running program fd {prog_fd}", explain)
    out_len = min(int(attr.data_size_out), data_out_size)
    ctx_len = min(int(attr.ctx_size_out), ctx_out_size)
    return TestRunResult(
        retval=int(attr.retval),
        duration_ns=int(attr.duration),
        data_out=out_buf.raw[:out_len] if out_buf is not None else b"",
        ctx_out=ctx_out_buf.raw[:ctx_len] if ctx_out_buf is not None else b"",
    )


# --- maps ---------------------------------------------------------------------------

# What creating and using maps needs (kernel/bpf/syscall.c, map_create():
# bpf_token_capable(CAP_BPF) unless unprivileged BPF is allowed).
MAP_CAPABILITIES: Final = (Capability.CAP_BPF,)

_MAP_CREATE_EXPLAIN: Final[Mapping[int, str]] = {
    errno.EINVAL: (
        "the kernel refused the definition (map type, key or value size, max_entries, flags, or BTF "
        "types that do not match the sizes)"
    ),
    errno.E2BIG: "the key, value or max_entries is larger than this map type allows",
    errno.ENOMEM: "the kernel ran out of memory for the map (or the locked-memory limit was hit)",
    errno.EOPNOTSUPP: "this kernel does not support the map type or a flag",
}


def map_create(
    *,
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    name: str = "",
    map_flags: int = 0,
    numa_node: int = 0,
    map_extra: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    inner_map_fd: int = 0,
) -> int:
    """Create a map (BPF_MAP_CREATE); return its fd."""
    attr = MapCreateAttr()
    attr.map_type = _check_u32("map_type", map_type)
    attr.key_size = _check_u32("key_size", key_size)
    attr.value_size = _check_u32("value_size", value_size)
    attr.max_entries = _check_u32("max_entries", max_entries)
    attr.map_flags = _check_u32("map_flags", map_flags)
    attr.numa_node = _check_u32("numa_node", numa_node)
    if not 0 <= map_extra <= 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"map_extra must fit in 64 bits, got {map_extra}")
    attr.map_extra = map_extra
    attr.map_name = check_object_name(name)
    attr.btf_fd = _check_fd("btf_fd", btf_fd)
    attr.btf_key_type_id = _check_u32("btf_key_type_id", btf_key_type_id)
    attr.btf_value_type_id = _check_u32("btf_value_type_id", btf_value_type_id)
    attr.inner_map_fd = _check_fd("inner_map_fd", inner_map_fd)
    return _run(
        Cmd.BPF_MAP_CREATE,
        attr,
        f"creating map {name!r}" if name else "creating a map",
        _MAP_CREATE_EXPLAIN,
        needs=MAP_CAPABILITIES,
    )


def _elem_attr(map_fd: int, key: ctypes.Array[ctypes.c_char] | None, value: ctypes.Array[ctypes.c_char] | None, flags: int = 0) -> MapElemAttr:
    attr = MapElemAttr()
    attr.map_fd = _check_fd("map_fd", map_fd)
    attr.key = _addr(key)
    attr.value = _addr(value)
    if not 0 <= flags <= 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"flags must fit in 64 bits, got {flags}")
    attr.flags = flags
    return attr


# Errors that mean "no such key": ENOENT, and for a prog array slot read from
# user space, the slot being empty (kernel/bpf/arraymap.c, bpf_fd_array_map_lookup_elem).
_MAP_ELEM_EXPLAIN: Final[Mapping[int, str]] = {
    errno.EBADF: "the fd is not open",
    errno.EINVAL: "the fd is not a map, or the key or flags are not what this map takes",
    errno.E2BIG: "the map is full: it holds max_entries elements and refuses a new key",
    errno.EEXIST: "the key exists already (BPF_NOEXIST)",
    errno.ENOENT: "no element has that key",
    errno.EPERM: "the map is read-only from user space: frozen (BPF_MAP_FREEZE) or opened read-only",
    ENOTSUPP: "this map type does not support that operation from user space",
    errno.EOPNOTSUPP: "this map type does not support that operation from user space",
}


def map_lookup_elem(map_fd: int, key: bytes, value_size: int, *, flags: int = 0) -> bytes | None:
    """Read the value at `key` (BPF_MAP_LOOKUP_ELEM); None when there is none (ENOENT).

    `value_size` is what the kernel copies out: for a per-CPU map, the value
    rounded up to 8 bytes times the number of possible CPUs.
    """
    key_buf = _buffer(key)
    value_buf = ctypes.create_string_buffer(max(value_size, 1))
    attr = _elem_attr(map_fd, key_buf, value_buf, flags)
    ret = _call(Cmd.BPF_MAP_LOOKUP_ELEM, attr)
    if ret < 0:
        if -ret == errno.ENOENT:
            return None
        raise _fail(Cmd.BPF_MAP_LOOKUP_ELEM, -ret, f"reading an element of map fd {map_fd}", _MAP_ELEM_EXPLAIN, needs=MAP_CAPABILITIES)
    return value_buf.raw[:value_size]


def map_update_elem(map_fd: int, key: bytes, value: bytes, *, flags: int = 0) -> None:
    """Write the value at `key` (BPF_MAP_UPDATE_ELEM; flags BPF_ANY, BPF_NOEXIST or BPF_EXIST)."""
    key_buf, value_buf = _buffer(key), _buffer(value)
    attr = _elem_attr(map_fd, key_buf, value_buf, flags)
    _run(Cmd.BPF_MAP_UPDATE_ELEM, attr, f"writing an element of map fd {map_fd}", _MAP_ELEM_EXPLAIN, needs=MAP_CAPABILITIES)


def map_delete_elem(map_fd: int, key: bytes) -> bool:
    """Delete the element at `key` (BPF_MAP_DELETE_ELEM); False when there was none (ENOENT)."""
    key_buf = _buffer(key)
    attr = _elem_attr(map_fd, key_buf, None)
    ret = _call(Cmd.BPF_MAP_DELETE_ELEM, attr)
    if ret < 0:
        if -ret == errno.ENOENT:
            return False
        raise _fail(Cmd.BPF_MAP_DELETE_ELEM, -ret, f"deleting an element of map fd {map_fd}", _MAP_ELEM_EXPLAIN, needs=MAP_CAPABILITIES)
    return True


def map_get_next_key(map_fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """The key after `key` (None: the first key) in the map's order (BPF_MAP_GET_NEXT_KEY); None at the end.

    A key that is not in the map gives the first key (kernel/bpf/hashtab.c),
    so iterating while deleting starts over rather than failing.
    """
    key_buf = _buffer(key) if key is not None else None
    next_buf = ctypes.create_string_buffer(max(key_size, 1))
    attr = _elem_attr(map_fd, key_buf, next_buf)
    ret = _call(Cmd.BPF_MAP_GET_NEXT_KEY, attr)
    if ret < 0:
        if -ret == errno.ENOENT:
            return None
        raise _fail(Cmd.BPF_MAP_GET_NEXT_KEY, -ret, f"listing the keys of map fd {map_fd}", _MAP_ELEM_EXPLAIN, needs=MAP_CAPABILITIES)
    return next_buf.raw[:key_size]


def map_freeze(map_fd: int) -> None:
    """Make a map read-only from user space for good (BPF_MAP_FREEZE); programs' access is unchanged."""
    attr = _elem_attr(map_fd, None, None)
    _run(
        Cmd.BPF_MAP_FREEZE,
        attr,
        f"freezing map fd {map_fd}",
        {
            errno.EBUSY: "the map is frozen already, or is mmap()ed writable",
            errno.EPERM: "the map was opened read-only or without write access",
            ENOTSUPP: "this map type cannot be frozen",
        },
        needs=MAP_CAPABILITIES,
    )


# --- objects in bpffs -------------------------------------------------------------


def obj_pin(*, fd: int, path: str) -> None:
    """Pin a program, map or link at a path in a bpffs mount (BPF_OBJ_PIN)."""
    path_buf = ctypes.create_string_buffer(os.fsencode(path))
    attr = ObjAttr()
    attr.pathname = _addr(path_buf)
    attr.bpf_fd = _check_fd("fd", fd)
    _run(
        Cmd.BPF_OBJ_PIN,
        attr,
        f"pinning fd {fd} at {path!r}",
        {
            errno.EPERM: "the path is not inside a bpffs mount (e.g. /sys/fs/bpf)",
            errno.EEXIST: "something is already pinned at that path",
            errno.ENOENT: "the directory does not exist",
        },
    )


def obj_get(path: str, *, file_flags: int = 0) -> int:
    """Open the object pinned at path in bpffs (BPF_OBJ_GET); return a new fd."""
    path_buf = ctypes.create_string_buffer(os.fsencode(path))
    attr = ObjAttr()
    attr.pathname = _addr(path_buf)
    attr.file_flags = _check_u32("file_flags", file_flags)
    return _run(
        Cmd.BPF_OBJ_GET,
        attr,
        f"opening the BPF object pinned at {path!r}",
        {errno.ENOENT: "nothing is pinned at that path"},
    )


# --- ids ------------------------------------------------------------------------


def _get_next_id(cmd: Cmd, start_id: int, what: str) -> int | None:
    """Return the next id after start_id, or None at the end of the list."""
    attr = GetIdAttr()
    attr.start_id = _check_u32("start_id", start_id)
    ret = _call(cmd, attr)
    if ret < 0:
        if -ret == errno.ENOENT:
            return None
        raise _fail(cmd, -ret, f"listing {what} ids after {start_id}")
    return int(attr.next_id)


def prog_get_next_id(start_id: int = 0) -> int | None:
    """Return the id of the next loaded program after start_id, or None (BPF_PROG_GET_NEXT_ID)."""
    return _get_next_id(Cmd.BPF_PROG_GET_NEXT_ID, start_id, "program")


def link_get_next_id(start_id: int = 0) -> int | None:
    """Return the id of the next link after start_id, or None (BPF_LINK_GET_NEXT_ID)."""
    return _get_next_id(Cmd.BPF_LINK_GET_NEXT_ID, start_id, "link")


def map_get_next_id(start_id: int = 0) -> int | None:
    """Return the id of the next map after start_id, or None (BPF_MAP_GET_NEXT_ID)."""
    return _get_next_id(Cmd.BPF_MAP_GET_NEXT_ID, start_id, "map")


def prog_ids() -> Iterator[int]:
    """Yield the ids of every program loaded in the kernel."""
    current = prog_get_next_id(0)
    while current is not None:
        yield current
        current = prog_get_next_id(current)


def link_ids() -> Iterator[int]:
    """Yield the ids of every link in the kernel."""
    current = link_get_next_id(0)
    while current is not None:
        yield current
        current = link_get_next_id(current)


def _get_fd_by_id(cmd: Cmd, name: str, object_id: int, what: str, gone: str, needs: tuple[Capability, ...] = FLOW_DISSECTOR_CAPABILITIES) -> int:
    """Open a kernel object by id (one of the BPF_*_GET_FD_BY_ID commands); return a new fd."""
    attr = GetIdAttr()
    attr.start_id = _check_u32(name, object_id)
    return _run(cmd, attr, f"opening {what} id {object_id}", {errno.ENOENT: f"no {what} has that id ({gone})"}, needs=needs)


def prog_get_fd_by_id(prog_id: int) -> int:
    """Open a loaded program by id (BPF_PROG_GET_FD_BY_ID); return a new fd."""
    return _get_fd_by_id(Cmd.BPF_PROG_GET_FD_BY_ID, "prog_id", prog_id, "program", "it may have been unloaded")


def map_get_fd_by_id(map_id: int) -> int:
    """Open a map by id (BPF_MAP_GET_FD_BY_ID); return a new fd."""
    return _get_fd_by_id(Cmd.BPF_MAP_GET_FD_BY_ID, "map_id", map_id, "map", "it may have been freed")


def btf_get_fd_by_id(btf_id: int) -> int:
    """Open loaded BTF by id (BPF_BTF_GET_FD_BY_ID); return a new fd."""
    return _get_fd_by_id(Cmd.BPF_BTF_GET_FD_BY_ID, "btf_id", btf_id, "BTF", "it may have been freed", (Capability.CAP_SYS_ADMIN,))


def link_get_fd_by_id(link_id: int) -> int:
    """Open a link by id (BPF_LINK_GET_FD_BY_ID); return a new fd."""
    return _get_fd_by_id(Cmd.BPF_LINK_GET_FD_BY_ID, "link_id", link_id, "link", "it may have been released")


# --- BPF_OBJ_GET_INFO_BY_FD -----------------------------------------------------


def fd_kind(fd: int) -> str | None:
    """Return what an fd is, as /proc names it (e.g. 'bpf-prog', 'bpf_link'), or None."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return target.removeprefix("anon_inode:")


def _get_info(fd: int, info: _Attr, what: str) -> _Attr:
    """Fill an info structure for fd with BPF_OBJ_GET_INFO_BY_FD."""
    attr = InfoAttr()
    attr.bpf_fd = _check_fd("fd", fd)
    attr.info_len = ctypes.sizeof(info)
    attr.info = ctypes.addressof(info)
    _run(
        Cmd.BPF_OBJ_GET_INFO_BY_FD,
        attr,
        f"reading {what} information for fd {fd}",
        {errno.EBADF: "the fd is not open", errno.EINVAL: "the fd is not a BPF object"},
    )
    return info


def _require_kind(fd: int, kind: str, use: str) -> None:
    """Refuse an fd that /proc says is not a `kind` object (info would be misread)."""
    actual = fd_kind(fd)
    # kernel/bpf/syscall.c names a new link's file "bpf_link" but a link
    # opened by id "bpf-link": compare with '-' and '_' alike.
    if actual is not None and actual.replace("_", "-") != kind:
        raise ValueError(f"fd {fd} is {actual!r}, not a {kind}; use {use}")


def obj_get_info_by_fd(fd: int) -> ProgInfo:
    """Return the information the kernel keeps about a loaded program (BPF_OBJ_GET_INFO_BY_FD)."""
    _require_kind(fd, "bpf-prog", "link_get_info() for a link")
    raw = _get_info(fd, bpf_prog_info(), "program")
    return ProgInfo(
        type=int(raw.type),
        id=int(raw.id),
        tag=bytes(raw.tag).hex(),
        name=raw.name.decode("ascii", "replace"),
        jited_prog_len=int(raw.jited_prog_len),
        xlated_prog_len=int(raw.xlated_prog_len),
        load_time=int(raw.load_time),
        created_by_uid=int(raw.created_by_uid),
        gpl_compatible=bool(raw.gpl_compatible & 1),
        netns_dev=int(raw.netns_dev),
        netns_ino=int(raw.netns_ino),
        btf_id=int(raw.btf_id),
        nr_func_info=int(raw.nr_func_info),
        nr_line_info=int(raw.nr_line_info),
        run_time_ns=int(raw.run_time_ns),
        run_cnt=int(raw.run_cnt),
        recursion_misses=int(raw.recursion_misses),
        verified_insns=int(raw.verified_insns),
    )


def map_get_info(fd: int) -> MapInfo:
    """Return what the kernel keeps about a map (BPF_OBJ_GET_INFO_BY_FD)."""
    _require_kind(fd, "bpf-map", "obj_get_info_by_fd() for a program")
    raw = _get_info(fd, bpf_map_info(), "map")
    return MapInfo(
        type=int(raw.type),
        id=int(raw.id),
        key_size=int(raw.key_size),
        value_size=int(raw.value_size),
        max_entries=int(raw.max_entries),
        map_flags=int(raw.map_flags),
        name=raw.name.decode("ascii", "replace"),
        btf_id=int(raw.btf_id),
        btf_key_type_id=int(raw.btf_key_type_id),
        btf_value_type_id=int(raw.btf_value_type_id),
        map_extra=int(raw.map_extra),
    )


def btf_get_data(fd: int) -> bytes:
    """Return the raw bytes of loaded BTF (BPF_OBJ_GET_INFO_BY_FD on a BTF fd), as BPF_BTF_LOAD took them."""
    _require_kind(fd, "btf", "map_get_info() for a map")
    size = _get_info(fd, bpf_btf_info(), "BTF").btf_size  # a first call without a buffer tells the size
    buf = ctypes.create_string_buffer(max(int(size), 1))
    info = bpf_btf_info()
    info.btf = ctypes.addressof(buf)
    info.btf_size = size
    _get_info(fd, info, "BTF")
    return buf.raw[: int(info.btf_size)]


def prog_map_ids(fd: int) -> tuple[int, ...]:
    """Return the ids of the maps a loaded program uses (bpf_prog_info.map_ids)."""
    _require_kind(fd, "bpf-prog", "a program fd")
    count = int(_get_info(fd, bpf_prog_info(), "program").nr_map_ids)
    while True:
        ids = (c_u32 * max(count, 1))()
        info = bpf_prog_info()
        info.nr_map_ids = count
        info.map_ids = ctypes.addressof(ids)
        _get_info(fd, info, "program")
        if int(info.nr_map_ids) <= count:  # a program's maps are fixed at load: this is the second round
            return tuple(int(ids[i]) for i in range(int(info.nr_map_ids)))
        count = int(info.nr_map_ids)


def link_get_info(fd: int) -> LinkInfo:
    """Return the information the kernel keeps about a link (BPF_OBJ_GET_INFO_BY_FD)."""
    _require_kind(fd, "bpf-link", "obj_get_info_by_fd() for a program")
    raw = _get_info(fd, bpf_link_info(), "link")
    netns = raw.type == LinkType.NETNS
    return LinkInfo(
        type=int(raw.type),
        id=int(raw.id),
        prog_id=int(raw.prog_id),
        netns_ino=int(raw.netns_ino) if netns else None,
        attach_type=int(raw.attach_type) if netns else None,
    )


# --- attaching ------------------------------------------------------------------

_ATTACH_EXPLAIN: Final[Mapping[int, str]] = {
    errno.EEXIST: (
        "a flow dissector is already attached there (or in the root network namespace, "
        "which takes precedence over all others)"
    ),
    errno.E2BIG: "a flow dissector link already exists in that network namespace",
    errno.EINVAL: (
        "the kernel refused the target or attach type (a legacy flow dissector attach "
        "takes target_fd 0 and binds to the caller's own network namespace)"
    ),
    errno.ENOENT: "nothing of that kind is attached there",
}


def prog_attach(
    *,
    target_fd: int,
    attach_bpf_fd: int,
    attach_type: int,
    attach_flags: int = 0,
    replace_bpf_fd: int = 0,
) -> None:
    """Attach a program the legacy way (BPF_PROG_ATTACH)."""
    attr = ProgAttachAttr()
    attr.target_fd = _check_fd("target_fd", target_fd)
    attr.attach_bpf_fd = _check_fd("attach_bpf_fd", attach_bpf_fd)
    attr.attach_type = _check_u32("attach_type", attach_type)
    attr.attach_flags = _check_u32("attach_flags", attach_flags)
    attr.replace_bpf_fd = _check_fd("replace_bpf_fd", replace_bpf_fd)
    _run(
        Cmd.BPF_PROG_ATTACH,
        attr,
        f"attaching program fd {attach_bpf_fd}",
        _ATTACH_EXPLAIN,
        needs=(Capability.CAP_NET_ADMIN,),
    )


def prog_detach(*, target_fd: int, attach_type: int, attach_bpf_fd: int = 0) -> None:
    """Detach a program attached the legacy way (BPF_PROG_DETACH)."""
    attr = ProgAttachAttr()
    attr.target_fd = _check_fd("target_fd", target_fd)
    attr.attach_bpf_fd = _check_fd("attach_bpf_fd", attach_bpf_fd)
    attr.attach_type = _check_u32("attach_type", attach_type)
    _run(
        Cmd.BPF_PROG_DETACH,
        attr,
        "detaching a program",
        _ATTACH_EXPLAIN,
        needs=(Capability.CAP_NET_ADMIN,),
    )


def prog_query(*, target_fd: int, attach_type: int, query_flags: int = 0) -> ProgQueryResult:
    """List the programs attached at an attach point (BPF_PROG_QUERY)."""
    _check_fd("target_fd", target_fd)
    _check_u32("attach_type", attach_type)
    _check_u32("query_flags", query_flags)
    capacity = 0
    while True:
        ids = (c_u32 * capacity)() if capacity else None
        attr = QueryAttr()
        attr.target_fd = target_fd
        attr.attach_type = attach_type
        attr.query_flags = query_flags
        attr.prog_ids = _addr(ids)
        attr.prog_cnt = capacity
        ret = _call(Cmd.BPF_PROG_QUERY, attr)
        count = int(attr.prog_cnt)
        if ret < 0 and -ret != errno.ENOSPC:
            raise _fail(
                Cmd.BPF_PROG_QUERY,
                -ret,
                "listing attached programs",
                _ATTACH_EXPLAIN,
                needs=(Capability.CAP_NET_ADMIN,),
            )
        # A first call without a buffer learns the count; a program attached
        # between the two calls gives ENOSPC and another round.
        if ret >= 0 and (count == 0 or ids is not None and count <= capacity):
            found = tuple(int(ids[i]) for i in range(count)) if ids is not None else ()
            return ProgQueryResult(
                prog_ids=found, attach_flags=int(attr.attach_flags), revision=int(attr.revision)
            )
        capacity = max(count, capacity + 1)


def link_create(*, prog_fd: int, target_fd: int, attach_type: int, flags: int = 0) -> int:
    """Attach a program through a link (BPF_LINK_CREATE); return the link fd."""
    attr = LinkCreateAttr()
    attr.prog_fd = _check_fd("prog_fd", prog_fd)
    attr.target_fd = _check_fd("target_fd", target_fd)
    attr.attach_type = _check_u32("attach_type", attach_type)
    attr.flags = _check_u32("flags", flags)
    return _run(
        Cmd.BPF_LINK_CREATE,
        attr,
        f"attaching program fd {prog_fd} through a link",
        _ATTACH_EXPLAIN,
        needs=(Capability.CAP_NET_ADMIN,),
    )


def link_update(*, link_fd: int, new_prog_fd: int, old_prog_fd: int = 0, flags: int = 0) -> None:
    """Swap the program behind a link in one step (BPF_LINK_UPDATE); with BPF_F_REPLACE, only if it runs old_prog_fd."""
    attr = LinkUpdateAttr()
    attr.link_fd = _check_fd("link_fd", link_fd)
    attr.new_prog_fd = _check_fd("new_prog_fd", new_prog_fd)
    attr.old_prog_fd = _check_fd("old_prog_fd", old_prog_fd)
    attr.flags = _check_u32("flags", flags)
    # kernel/bpf/syscall.c link_update() and, for a netns link,
    # kernel/bpf/net_namespace.c bpf_netns_link_update_prog().
    _run(
        Cmd.BPF_LINK_UPDATE,
        attr,
        f"replacing the program of link fd {link_fd} with program fd {new_prog_fd}",
        {
            errno.EPERM: "the link no longer runs the program old_prog_fd names (BPF_F_REPLACE): it was replaced meanwhile",
            errno.EINVAL: "the new program's type is not the link's, an fd is not a link or program, or old_prog_fd was given without BPF_F_REPLACE",
            errno.ENOLINK: "the link is detached (its network namespace is gone, or it was detached)",
            errno.EBADF: "a file descriptor is not open",
        },
        needs=(Capability.CAP_NET_ADMIN,),
    )


def link_detach(link_fd: int) -> None:
    """Detach a link from its hook while keeping the fd open (BPF_LINK_DETACH)."""
    attr = LinkDetachAttr()
    attr.link_fd = _check_fd("link_fd", link_fd)
    _run(
        Cmd.BPF_LINK_DETACH,
        attr,
        f"detaching link fd {link_fd}",
        needs=(Capability.CAP_NET_ADMIN,),
    )


# --- statistics and BTF ------------------------------------------------------------


def enable_stats(*, type: int = StatsType.BPF_STATS_RUN_TIME) -> int:
    """Turn on run-time statistics while the returned fd stays open (BPF_ENABLE_STATS)."""
    attr = EnableStatsAttr()
    attr.type = _check_u32("type", type)
    return _run(
        Cmd.BPF_ENABLE_STATS,
        attr,
        "enabling BPF run-time statistics",
        needs=(Capability.CAP_SYS_ADMIN,),
    )


def btf_load(*, data: bytes, log_level: int = 0, log_size: int = 0) -> tuple[int, str]:
    """Load BTF type information (BPF_BTF_LOAD); return its fd and the BTF log text."""
    if not data:
        raise ValueError("BTF data is empty")
    _check_log(log_level, log_size)
    data_buf = _buffer(data)
    log_buf = ctypes.create_string_buffer(log_size) if log_size else None
    attr = BtfLoadAttr()
    attr.btf = _addr(data_buf)
    attr.btf_size = len(data)
    attr.btf_log_buf = _addr(log_buf)
    attr.btf_log_size = log_size
    attr.btf_log_level = log_level
    ret = _call(Cmd.BPF_BTF_LOAD, attr)
    log = _decode_log(log_buf)
    if ret >= 0:
        return ret, log
    code = -ret
    if code == errno.EPERM:
        raise MissingPrivilegeError(
            code,
            command=Cmd.BPF_BTF_LOAD.name,
            missing=missing_capabilities((Capability.CAP_BPF,)),
            needs=["CAP_BPF"],
            action="loading BTF",
        )
    raise BtfError(code, log=log)


def close_fd(fd: int) -> None:
    """Close a BPF object's fd (programs, links and BTF are freed with their last reference)."""
    os.close(fd)
