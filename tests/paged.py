"""The real receive path: frames whose headers sit in page fragments, hashed by the kernel at tc ingress.

Everything pyfd checks under BPF_PROG_TEST_RUN sees a whole, linear frame. On
the receive path a flow dissector's `data`..`data_end` is only the skb's linear
part (skb_headlen); the rest of the frame can sit in page fragments. This
module builds such skbs on demand and shows what the kernel makes of them:

- a tap opened IFF_TAP | IFF_NO_PI | IFF_NAPI | IFF_NAPI_FRAGS builds each
  written frame from the write's iovecs (drivers/net/tun.c,
  tun_napi_alloc_frags): the first iovec becomes the linear part, each further
  iovec one page fragment (at most MAX_SKB_FRAGS of them, 17 here, else
  EMSGSIZE; each 1 byte to a page, else EINVAL; a first iovec shorter than
  the Ethernet header is pulled up to 14 bytes). With GRO on, GRO would pull
  the headers it parses back into the linear part, so GRO is turned off on
  the tap (ETHTOOL_SGRO).
- a SCHED_CLS program on the tap's tc ingress (tcx link) records, per frame,
  `bpf_get_hash_recalc(skb)`, the linear length it saw (data_end - data, from
  the MAC header) and skb->len, then drops the frame (nothing else in the
  namespace sees it). The hash is skb_get_hash(), computed by whichever flow
  dissector the namespace has (the kernel's built-in one when none).
- a "call recorder" flow dissector records, per call, the offset, flags and
  linear length the kernel passed and whether bpf_skb_load_bytes() works
  there (it needs an skb), then returns BPF_FLOW_DISSECTOR_CONTINUE.

Each frame is written once linear (one iovec) and then split five ways; a
paged write agrees when it hashes like its linear twin. Frames are told apart
at tc by the last two bytes of their source MAC (the write's number): the
flow hash never covers MACs. Both helper programs are built with pyfd.isa and
use array maps created here (pyfd's runtime has no map support yet); the
maps are BPF_F_MMAPABLE, so results are read from memory.

Use, in a namespace the caller created:

    with ReceivePath(netns) as path:
        builtin = path.measure()               # nothing attached: the kernel's own dissector
        full = path.measure(compiled)          # attached for this run: compiled, loaded, an fd, a path
        calls = path.call_paths()              # what each dissector call was handed, per write
    full.agreeing, full.disagreeing(), full.by_split()
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import itertools
import mmap
import os
import socket
import struct
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self, Union

from pyfd.runtime import LoadedProgram, bpf
from pyfd.runtime.attach import AttachableProgram, attached, open_netns, run_in_netns
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import GRE
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from pyfd.isa import (
    BPF_LD_IMM64,
    Instruction,
    Label,
    alu64_imm,
    alu64_reg,
    call,
    encode_program,
    exit_insn,
    jmp_imm,
    jmp_reg,
    ldx_mem,
    mov64_imm,
    mov64_reg,
    resolve,
    st_mem,
    stx_mem,
)
from pyfd.isa.opcodes import AluOp, JmpOp, Size

if TYPE_CHECKING:
    from pyfd.program import CompiledProgram

ProgramSpec = Union["CompiledProgram", AttachableProgram, int, str, os.PathLike[str], None]
"""What ReceivePath.measure() attaches: see there."""

# --- the frames ----------------------------------------------------------------------

TAP_MAC: Final = "02:70:66:64:00:01"  # the tap's own address: frames are unicast to it
SRC_MAC: Final = "02:70:66:64:00:00"  # the last two bytes are replaced by each write's number
ETH_HLEN: Final = 14
PAYLOAD: Final = bytes(range(48))  # some data after the transport header, as on the wire


@dataclass(frozen=True)
class Frame:
    """A frame to write, and where its headers are: the first network header, its end, the innermost L4 header."""

    name: str
    data: bytes
    l3: int  # first network header (after the Ethernet header and any VLAN tag)
    l3_end: int  # end of that network header (IPv4 options or IPv6 fixed header included)
    l4: int  # innermost transport header


def _frame(name: str, packet: ScapyPacket, l4_layer: type[ScapyPacket]) -> Frame:
    data = bytes(packet)
    packet = Ether(data)  # parsed back: lengths and checksums filled in
    l3 = ETH_HLEN + (4 if packet.haslayer(Dot1Q) else 0)
    outer = packet[IP] if packet.haslayer(IP) else packet[IPv6]
    l3_end = l3 + (outer.ihl * 4 if isinstance(outer, IP) else 40)
    l4 = len(data) - len(bytes(packet[l4_layer]))
    return Frame(name, data, l3, l3_end, l4)


@functools.cache
def frames() -> tuple[Frame, ...]:
    """The 21 frames: seven protocol stacks, three flows each; no two frames carry the same flow."""
    out: list[Frame] = []
    for i in range(3):
        eth = Ether(src=SRC_MAC, dst=TAP_MAC)
        a4, b4 = f"10.{i}.0.1", f"10.{i}.1.2"
        a6, b6 = f"2001:db8:{i}::1", f"2001:db8:{i}::2"
        outer = IP(src=f"192.0.2.{1 + i}", dst="198.51.100.1")

        # Ports differ per stack too, so that an encapsulated flow is not the
        # plain one again (the kernel hashes the inner flow of GRE and IP-in-IP).
        def tcp(stack: int, i: int = i) -> ScapyPacket:
            return TCP(sport=1000 + 100 * stack + i, dport=80 + i, flags="S") / Raw(PAYLOAD)

        def udp(stack: int, i: int = i) -> ScapyPacket:
            return UDP(sport=1000 + 100 * stack + i, dport=5000 + i) / Raw(PAYLOAD)

        out += [
            _frame(f"ipv4_tcp_{i}", eth / IP(src=a4, dst=b4) / tcp(0), TCP),
            _frame(f"ipv4_udp_{i}", eth / IP(src=a4, dst=b4) / udp(1), UDP),
            _frame(f"ipv6_udp_{i}", eth / IPv6(src=a6, dst=b6) / udp(2), UDP),
            _frame(f"ipv6_hbh_tcp_{i}", eth / IPv6(src=a6, dst=b6) / IPv6ExtHdrHopByHop() / tcp(3), TCP),
            _frame(f"vlan_ipv4_udp_{i}", eth / Dot1Q(vlan=100 + i) / IP(src=a4, dst=b4) / udp(4), UDP),
            _frame(f"gre_ipv4_tcp_{i}", eth / outer / GRE() / IP(src=a4, dst=b4) / tcp(5), TCP),
            _frame(f"ipip_tcp_{i}", eth / outer / IP(src=a4, dst=b4) / tcp(6), TCP),
        ]
    return tuple(out)


# How a frame is cut into iovecs: the offsets where a new iovec starts. The
# first iovec is the skb's linear part (tun_napi_alloc_frags), so each split
# leaves a different header partly or wholly in page fragments.
SPLITS: Final[dict[str, str]] = {
    "after_eth": "the Ethernet header alone is linear",
    "in_ip": "the linear part ends inside the first IP header",
    "after_ip": "the linear part ends with the first IP header",
    "before_l4": "the linear part ends where the innermost transport header starts",
    "three_pieces": "linear part inside the IP header, then two fragments meeting inside the transport header",
}


def cuts(frame: Frame, split: str) -> tuple[int, ...]:
    """The offsets at which `split` starts a new iovec in `frame`."""
    match split:
        case "after_eth":
            return (ETH_HLEN,)
        case "in_ip":
            return (frame.l3 + 9,)
        case "after_ip":
            return (frame.l3_end,)
        case "before_l4":
            return (frame.l4,)
        case "three_pieces":
            return (frame.l3 + 4, frame.l4 + 2)
    raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")


def pieces(data: bytes, at: Sequence[int]) -> list[bytes]:
    """Cut data at the given offsets (each inside it, increasing)."""
    bounds = [0, *at, len(data)]
    if any(not 0 < b < len(data) for b in at) or bounds != sorted(set(bounds)):
        raise ValueError(f"cuts {list(at)} do not lie inside a {len(data)}-byte frame in increasing order")
    return [data[lo:hi] for lo, hi in itertools.pairwise(bounds)]


# --- maps (local: pyfd's runtime has none yet) ---------------------------------------

_BPF_MAP_CREATE: Final = 0
_BPF_MAP_TYPE_ARRAY: Final = 2
_BPF_MAP_TYPE_PROG_ARRAY: Final = 3
_BPF_MAP_UPDATE_ELEM: Final = 2
_BPF_F_MMAPABLE: Final = 1 << 10  # include/uapi/linux/bpf.h: the array's values can be mmap()ed
_BPF_PSEUDO_MAP_FD: Final = 1  # src of an LD_IMM64 whose imm is a map fd

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _MapCreateAttr(ctypes.Structure):
    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * 16),
    ]


class _MapElemAttr(ctypes.Structure):
    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


def _bpf(cmd: int, attr: ctypes.Structure, doing: str) -> int:
    ret = int(_libc.syscall(bpf.bpf_syscall_number(), cmd, ctypes.byref(attr), ctypes.sizeof(attr)))
    if ret < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{doing}: {os.strerror(code)}")
    return ret


def map_update(map_fd: int, key: int, value: int) -> None:
    """BPF_MAP_UPDATE_ELEM with a u32 key and u32 value (a prog array slot takes a program fd)."""
    k, v = ctypes.c_uint32(key), ctypes.c_uint32(value)
    attr = _MapElemAttr(map_fd=map_fd, key=ctypes.addressof(k), value=ctypes.addressof(v))
    _bpf(_BPF_MAP_UPDATE_ELEM, attr, f"setting slot {key} of map fd {map_fd}")


class ArrayMap:
    """A BPF array map of u32-keyed fixed-size values, mmap()ed so both sides read and write memory."""

    def __init__(self, name: str, *, value_size: int, entries: int) -> None:
        attr = _MapCreateAttr(
            map_type=_BPF_MAP_TYPE_ARRAY,
            key_size=4,
            value_size=value_size,
            max_entries=entries,
            map_flags=_BPF_F_MMAPABLE,
            map_name=name.encode(),
        )
        self.fd = _bpf(_BPF_MAP_CREATE, attr, f"creating array map {name!r}")
        self.value_size = value_size
        self.entries = entries
        # kernel/bpf/arraymap.c: an mmapable array's values sit one after the
        # other, each rounded up to 8 bytes, from the start of the mapping.
        self.stride = (value_size + 7) & ~7
        length = -(-self.stride * entries // mmap.PAGESIZE) * mmap.PAGESIZE
        try:
            self._mem = mmap.mmap(self.fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(self.fd)
            raise

    def read(self, index: int) -> bytes:
        """The value at index."""
        return self._mem[index * self.stride : index * self.stride + self.value_size]

    def clear(self) -> None:
        """Zero every value."""
        self._mem[:] = bytes(len(self._mem))

    def close(self) -> None:
        """Unmap and close the map."""
        self._mem.close()
        os.close(self.fd)


def _ld_map(dst: int, map_fd: int) -> Instruction:
    """LD_IMM64 dst = the map behind map_fd (the verifier swaps in its address)."""
    return Instruction(BPF_LD_IMM64, dst, _BPF_PSEUDO_MAP_FD, 0, map_fd)


# --- the two recording programs ------------------------------------------------------

# include/uapi/linux/bpf.h: helper numbers, struct __sk_buff and struct bpf_flow_keys offsets.
_FUNC_MAP_LOOKUP_ELEM: Final = 1
_FUNC_SKB_LOAD_BYTES: Final = 26
_FUNC_GET_HASH_RECALC: Final = 34
_SKB_LEN: Final = 0
_SKB_DATA: Final = 76
_SKB_DATA_END: Final = 80
_SKB_FLOW_KEYS: Final = 144
_KEYS_NHOFF: Final = 0
_KEYS_N_PROTO: Final = 10
_KEYS_FLAGS: Final = 48
_TC_ACT_SHOT: Final = 2
_BPF_FLOW_DISSECTOR_CONTINUE: Final = 129
_BPF_TCX_INGRESS: Final = 46  # enum bpf_attach_type

SLOTS: Final = 1024  # writes per measure() call (the tc record is indexed by the write's number)
RING: Final = 4096  # dissector calls per call_paths() call
CALL_RECORD: Final = "=HHIIi4s"  # what call_recorder() stores per call
_R0, _R1, _R2, _R3, _R4, _R5, _R6, _R7, _R8, _R9, _R10 = range(11)


def tc_recorder(map_fd: int) -> bytes:
    """SCHED_CLS: record (hash, linear length, skb->len, times seen) at slot = last two bytes of the source MAC; drop."""
    done = Label("done")
    items: list[Instruction | Label] = [
        mov64_reg(_R6, _R1),
        ldx_mem(Size.W, _R2, _R6, _SKB_DATA),
        ldx_mem(Size.W, _R3, _R6, _SKB_DATA_END),
        mov64_reg(_R4, _R2),
        alu64_imm(AluOp.ADD, _R4, 12),
        jmp_reg(JmpOp.JGT, _R4, _R3, done),  # the source MAC must be in the linear part (it always is)
        ldx_mem(Size.H, _R7, _R2, 10),  # bytes 10 and 11 of the frame, as a little-endian u16
        alu64_imm(AluOp.AND, _R7, SLOTS - 1),
        # The linear length: a packet pointer subtracted from the packet end,
        # which the verifier allows only with CAP_PERFMON (allow_ptr_leaks).
        mov64_reg(_R8, _R3),
        alu64_reg(AluOp.SUB, _R8, _R2),
        mov64_reg(_R1, _R6),
        call(_FUNC_GET_HASH_RECALC),
        mov64_reg(_R9, _R0),
        stx_mem(Size.W, _R10, _R7, -4),
        _ld_map(_R1, map_fd),
        mov64_reg(_R2, _R10),
        alu64_imm(AluOp.ADD, _R2, -4),
        call(_FUNC_MAP_LOOKUP_ELEM),
        jmp_imm(JmpOp.JEQ, _R0, 0, done),
        stx_mem(Size.W, _R0, _R9, 0),
        stx_mem(Size.W, _R0, _R8, 4),
        ldx_mem(Size.W, _R1, _R6, _SKB_LEN),
        stx_mem(Size.W, _R0, _R1, 8),
        ldx_mem(Size.W, _R1, _R0, 12),
        alu64_imm(AluOp.ADD, _R1, 1),
        stx_mem(Size.W, _R0, _R1, 12),
        done,
        mov64_imm(_R0, _TC_ACT_SHOT),  # nothing past tc sees the frame: no replies, no IP processing
        exit_insn(),
    ]
    return encode_program(resolve(items))


def call_recorder(map_fd: int) -> bytes:
    """FLOW_DISSECTOR: append what the call was handed to a ring (CALL_RECORD); return CONTINUE.

    The record: nhoff, n_proto, flags, data_end - data, the result of
    bpf_skb_load_bytes(ctx, nhoff, buf, 4) and those 4 bytes.
    """
    done = Label("done")
    items: list[Instruction | Label] = [
        mov64_reg(_R6, _R1),
        ldx_mem(Size.DW, _R7, _R6, _SKB_FLOW_KEYS),
        ldx_mem(Size.W, _R2, _R6, _SKB_DATA),
        ldx_mem(Size.W, _R3, _R6, _SKB_DATA_END),
        mov64_reg(_R8, _R3),
        alu64_reg(AluOp.SUB, _R8, _R2),  # linear length (needs CAP_PERFMON, as above)
        # Four bytes at nhoff through the helper: 0 where the call has an
        # skb (the offset counts from skb->data, where `data` points too),
        # -EFAULT and zeroes where it has none (net/core/filter.c,
        # bpf_flow_dissector_load_bytes).
        st_mem(Size.W, _R10, -8, 0),
        mov64_reg(_R1, _R6),
        ldx_mem(Size.H, _R2, _R7, _KEYS_NHOFF),
        mov64_reg(_R3, _R10),
        alu64_imm(AluOp.ADD, _R3, -8),
        mov64_imm(_R4, 4),
        call(_FUNC_SKB_LOAD_BYTES),
        mov64_reg(_R9, _R0),
        st_mem(Size.W, _R10, -12, 0),  # slot 0 holds the number of calls so far
        _ld_map(_R1, map_fd),
        mov64_reg(_R2, _R10),
        alu64_imm(AluOp.ADD, _R2, -12),
        call(_FUNC_MAP_LOOKUP_ELEM),
        jmp_imm(JmpOp.JEQ, _R0, 0, done),
        ldx_mem(Size.W, _R1, _R0, 0),
        mov64_reg(_R2, _R1),
        alu64_imm(AluOp.ADD, _R2, 1),
        stx_mem(Size.W, _R0, _R2, 0),
        alu64_imm(AluOp.AND, _R1, RING - 1),
        alu64_imm(AluOp.ADD, _R1, 1),
        stx_mem(Size.W, _R10, _R1, -16),
        _ld_map(_R1, map_fd),
        mov64_reg(_R2, _R10),
        alu64_imm(AluOp.ADD, _R2, -16),
        call(_FUNC_MAP_LOOKUP_ELEM),
        jmp_imm(JmpOp.JEQ, _R0, 0, done),
        ldx_mem(Size.H, _R1, _R7, _KEYS_NHOFF),
        stx_mem(Size.H, _R0, _R1, 0),
        ldx_mem(Size.H, _R1, _R7, _KEYS_N_PROTO),
        stx_mem(Size.H, _R0, _R1, 2),
        ldx_mem(Size.W, _R1, _R7, _KEYS_FLAGS),
        stx_mem(Size.W, _R0, _R1, 4),
        stx_mem(Size.W, _R0, _R8, 8),
        stx_mem(Size.W, _R0, _R9, 12),
        ldx_mem(Size.W, _R1, _R10, -8),
        stx_mem(Size.W, _R0, _R1, 16),
        done,
        mov64_imm(_R0, _BPF_FLOW_DISSECTOR_CONTINUE),  # the kernel's own dissector then does the work
        exit_insn(),
    ]
    return encode_program(resolve(items))


def linear_only_dissector() -> bytes:
    """FLOW_DISSECTOR with no fallback: the first IPv4 header read directly (BPF_DROP past data_end); anything else CONTINUE.

    A control for the harness, independent of pyfd's compiler: it parses
    correctly exactly when the IPv4 header is in the linear part, so its
    paged writes agree with their linear twins exactly then.
    """
    drop, other = Label("drop"), Label("other")
    items: list[Instruction | Label] = [
        ldx_mem(Size.DW, _R7, _R1, _SKB_FLOW_KEYS),
        ldx_mem(Size.W, _R2, _R1, _SKB_DATA),
        ldx_mem(Size.W, _R3, _R1, _SKB_DATA_END),
        ldx_mem(Size.H, _R4, _R7, _KEYS_N_PROTO),
        jmp_imm(JmpOp.JNE, _R4, socket.htons(0x0800), other),  # n_proto is big-endian
        ldx_mem(Size.H, _R4, _R7, _KEYS_NHOFF),
        jmp_imm(JmpOp.JGT, _R4, 1024, drop),  # a bound the verifier can carry into the packet offset
        alu64_reg(AluOp.ADD, _R2, _R4),
        mov64_reg(_R5, _R2),
        alu64_imm(AluOp.ADD, _R5, 20),
        jmp_reg(JmpOp.JGT, _R5, _R3, drop),
        st_mem(Size.H, _R7, 4, 0x0800),  # addr_proto = ETH_P_IP, host order
        ldx_mem(Size.B, _R1, _R2, 9),
        stx_mem(Size.B, _R7, _R1, 9),  # ip_proto
        ldx_mem(Size.W, _R1, _R2, 12),
        stx_mem(Size.W, _R7, _R1, 16),  # ipv4_src
        ldx_mem(Size.W, _R1, _R2, 16),
        stx_mem(Size.W, _R7, _R1, 20),  # ipv4_dst
        ldx_mem(Size.B, _R1, _R2, 0),
        alu64_imm(AluOp.AND, _R1, 0x0F),
        alu64_imm(AluOp.LSH, _R1, 2),
        alu64_reg(AluOp.ADD, _R1, _R4),
        stx_mem(Size.H, _R7, _R1, 2),  # thoff = nhoff + ihl * 4
        mov64_imm(_R0, 0),  # BPF_OK
        exit_insn(),
        drop,
        mov64_imm(_R0, 2),  # BPF_DROP
        exit_insn(),
        other,
        mov64_imm(_R0, _BPF_FLOW_DISSECTOR_CONTINUE),
        exit_insn(),
    ]
    return encode_program(resolve(items))


def load_flow_dissector(insns: bytes, name: str) -> LoadedProgram:
    """Load hand-built flow dissector instructions."""
    fd, _ = bpf.prog_load(prog_type=bpf.ProgType.FLOW_DISSECTOR, insns=insns, license="GPL", name=name)
    return LoadedProgram(fd, name=name, prog_type=bpf.ProgType.FLOW_DISSECTOR)


# --- the tap -------------------------------------------------------------------------

# include/uapi/linux/if_tun.h, linux/sockios.h, linux/ethtool.h, linux/if.h
_TUNSETIFF: Final = 0x400454CA
_IFF_TAP: Final = 0x0002
_IFF_NAPI: Final = 0x0010
_IFF_NAPI_FRAGS: Final = 0x0020
_IFF_NO_PI: Final = 0x1000
_SIOCGIFFLAGS: Final = 0x8913
_SIOCSIFFLAGS: Final = 0x8914
_SIOCSIFHWADDR: Final = 0x8924
_SIOCETHTOOL: Final = 0x8946
_ETHTOOL_GGRO: Final = 0x2B
_ETHTOOL_SGRO: Final = 0x2C
_IFF_UP: Final = 0x1
_ARPHRD_ETHER: Final = 1
_IFREQ: Final = 40  # sizeof(struct ifreq) on 64-bit


def _ifreq(name: str, tail: bytes = b"") -> bytearray:
    buf = bytearray(_IFREQ)
    buf[: len(name)] = name.encode()
    buf[16 : 16 + len(tail)] = tail
    return buf


def _ethtool_value(sock: socket.socket, name: str, cmd: int, value: int = 0) -> int:
    """SIOCETHTOOL with a struct ethtool_value {cmd, data}; returns data."""
    ev = ctypes.create_string_buffer(struct.pack("=II", cmd, value), 8)
    req = _ifreq(name, struct.pack("=Q", ctypes.addressof(ev)))
    fcntl.ioctl(sock, _SIOCETHTOOL, req)
    return int(struct.unpack("=II", ev.raw)[1])


@dataclass
class _Tap:
    fd: int
    name: str
    ifindex: int
    link_fd: int


def _open_tap(name: str, tc_prog_fd: int) -> _Tap:
    """In the current thread's namespace: the NAPI-frags tap, its MAC, GRO off, up, tc ingress program attached."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        flags = _IFF_TAP | _IFF_NO_PI | _IFF_NAPI | _IFF_NAPI_FRAGS
        fcntl.ioctl(fd, _TUNSETIFF, _ifreq(name, struct.pack("=H", flags)))
        # No IPv6 on the tap: once up it would send neighbour discovery, and
        # the tap's transmit path (its qdisc, tun_select_queue) runs the flow
        # dissector too, adding calls nobody wrote. /proc/sys/net is the
        # calling thread's namespace's (run_in_netns checked which).
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as knob:
            knob.write("1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # a socket of this namespace
            mac = bytes.fromhex(TAP_MAC.replace(":", ""))
            fcntl.ioctl(sock, _SIOCSIFHWADDR, _ifreq(name, struct.pack("=H", _ARPHRD_ETHER) + mac))
            # net/core/gro.c: with GRO on, dev_gro_receive() pulls every header
            # a GRO handler parses into the linear part (IPv4, IPv6, TCP, UDP,
            # GRE), so only frames GRO does not know would stay paged.
            _ethtool_value(sock, name, _ETHTOOL_SGRO, 0)
            if _ethtool_value(sock, name, _ETHTOOL_GGRO) != 0:
                raise OSError(errno.EOPNOTSUPP, f"GRO stays on for {name}")
            req = _ifreq(name)
            fcntl.ioctl(sock, _SIOCGIFFLAGS, req)
            (ifflags,) = struct.unpack_from("=H", req, 16)
            fcntl.ioctl(sock, _SIOCSIFFLAGS, _ifreq(name, struct.pack("=H", ifflags | _IFF_UP)))
        ifindex = socket.if_nametoindex(name)
        # A tcx link (BPF_LINK_CREATE, attach type BPF_TCX_INGRESS): the
        # target is an ifindex of the caller's namespace; closing the link
        # detaches.
        link_fd = bpf.link_create(prog_fd=tc_prog_fd, target_fd=ifindex, attach_type=_BPF_TCX_INGRESS)
        return _Tap(fd, name, ifindex, link_fd)
    except BaseException:
        os.close(fd)
        raise


# --- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What tc ingress saw of one write: the flow hash, the linear length (from the MAC header), skb->len."""

    hash: int
    linear: int
    length: int


@dataclass(frozen=True)
class PagedWrite:
    """One frame written split into pieces, with what tc saw of it and of the same frame written linear."""

    frame: str
    split: str
    iovecs: tuple[int, ...]  # the length of each piece written
    paged: Seen
    linear: Seen

    @property
    def agrees(self) -> bool:
        """The paged write hashed like its linear twin."""
        return self.paged.hash == self.linear.hash


@dataclass
class Measurement:
    """Every paged write of one measure() run."""

    writes: list[PagedWrite] = field(default_factory=list)

    @property
    def agreeing(self) -> int:
        """How many paged writes hashed like their linear twins."""
        return sum(w.agrees for w in self.writes)

    def disagreeing(self) -> list[str]:
        """The frame/split names of the writes that did not."""
        return [f"{w.frame}/{w.split}" for w in self.writes if not w.agrees]

    def by_split(self) -> dict[str, tuple[int, int]]:
        """Per split: (agreeing, writes)."""
        out: dict[str, tuple[int, int]] = {}
        for w in self.writes:
            good, total = out.get(w.split, (0, 0))
            out[w.split] = (good + w.agrees, total + 1)
        return out


# net/core/flow_dissector.c: who calls a flow dissector on this path, told
# apart by the offset and flags it is handed and whether it has an skb.
CALLERS: Final[dict[tuple[int, int, bool], str]] = {
    (0, 0, True): "skb_probe_transport_header",  # tun_get_user, data at the network header
    (14, 1, False): "eth_get_headlen",  # tun_get_user for NAPI frags, FLOW_DISSECTOR_F_PARSE_1ST_FRAG, no skb
    (14, 2, True): "skb_get_hash at tc",  # bpf_get_hash_recalc, FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL
}


@dataclass(frozen=True)
class Call:
    """One flow dissector call the kernel made: what it handed the program."""

    nhoff: int
    n_proto: int
    flags: int
    linear: int  # data_end - data
    load_bytes: int  # bpf_skb_load_bytes(ctx, nhoff, buf, 4): 0, or -EFAULT without an skb
    loaded: bytes  # those 4 bytes (zeroes when it failed)

    @property
    def caller(self) -> str:
        """The kernel function this call came from (by its offset, flags and skb), or a description."""
        key = (self.nhoff, self.flags, self.load_bytes == 0)
        return CALLERS.get(key, f"nhoff={self.nhoff} flags={self.flags} skb={self.load_bytes == 0}")


@dataclass(frozen=True)
class WriteCalls:
    """The dissector calls one write caused, with the write's shape."""

    frame: str
    split: str  # "linear" for the one-iovec twin
    iovecs: tuple[int, ...]
    calls: tuple[Call, ...]


class ReceivePath:
    """A NAPI-frags tap with GRO off and a tc ingress recorder, in a network namespace the caller made.

    A context manager: entering creates the tap (named pyfdpaged0) in the
    namespace and attaches the recorder; leaving detaches and removes it.
    Attach the dissector to measure with pyfd (`loaded.attached(netns=...)`)
    or anything else; measure() reports what the namespace's dissector does.
    """

    def __init__(self, netns: str, *, tap: str = "pyfdpaged0") -> None:
        self.netns = netns
        self.tap_name = tap
        self._tap: _Tap | None = None
        self._seen: ArrayMap | None = None
        self._tc: LoadedProgram | None = None
        self._write_no = 0

    def __enter__(self) -> Self:
        self._seen = ArrayMap("pyfd_seen", value_size=16, entries=SLOTS)
        try:
            fd, _ = bpf.prog_load(
                prog_type=bpf.ProgType.SCHED_CLS,
                insns=tc_recorder(self._seen.fd),
                license="GPL",
                name="pyfd_tc_seen",
                expected_attach_type=_BPF_TCX_INGRESS,
            )
            self._tc = LoadedProgram(fd, name="pyfd_tc_seen", prog_type=bpf.ProgType.SCHED_CLS)
            ns_fd, _ = open_netns(self.netns)
            try:
                tc_fd = self._tc.fd
                self._tap = run_in_netns(ns_fd, lambda: _open_tap(self.tap_name, tc_fd))
            finally:
                os.close(ns_fd)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Detach the recorder, remove the tap (closing its fd deletes it) and free the map."""
        if self._tap is not None:
            os.close(self._tap.link_fd)
            os.close(self._tap.fd)
            self._tap = None
        if self._tc is not None:
            self._tc.close()
            self._tc = None
        if self._seen is not None:
            self._seen.close()
            self._seen = None

    # -- writing -----------------------------------------------------------------

    def write(self, data: bytes, at: Sequence[int] = ()) -> Seen:
        """Write one frame as iovecs cut at `at` (OSError where the tap refuses them); return what tc saw of it."""
        if self._tap is None or self._seen is None:
            raise RuntimeError("ReceivePath writes only inside its `with` block")
        slot = self._write_no % SLOTS
        self._write_no += 1
        tagged = data[:10] + struct.pack("<H", slot) + data[12:]
        before = self._seen.read(slot)
        count_before = struct.unpack_from("=I", before, 12)[0]
        written = os.writev(self._tap.fd, pieces(tagged, at))
        if written != len(tagged):
            raise OSError(errno.EIO, f"the tap took {written} of {len(tagged)} bytes")
        # tun_get_user() runs napi_gro_frags() and then napi_complete(), which
        # hands the batch of GRO_NORMAL skbs to the stack (gro_normal_list):
        # tc has run before the write returns, and each write is counted once.
        hash_, linear, length, count = struct.unpack("=IIII", self._seen.read(slot))
        if count != count_before + 1:
            raise AssertionError(
                f"tc ingress saw write {slot} {count - count_before} times, not once before the write returned"
            )
        return Seen(hash_, linear, length)

    def measure(
        self, dissector: ProgramSpec = None, *, frames_: Sequence[Frame] | None = None, splits: Sequence[str] = tuple(SPLITS)
    ) -> Measurement:
        """Write each frame linear, then split each way; report what tc hashed.

        `dissector` is what the namespace runs meanwhile: None for whatever is
        attached now (the kernel's own dissector when nothing is), else a
        program attached for this measurement only: anything `.load()` turns
        into a loaded program (a CompiledProgram), a loaded program (fd, id,
        name: a LoadedProgram), a program fd, or the path of an object file
        `pyfd.load` takes. What this call loads it also closes.
        """
        if dissector is None:
            return self._measure(frames() if frames_ is None else frames_, splits)
        with contextlib.ExitStack() as stack:
            program: AttachableProgram
            if isinstance(dissector, int):
                program = stack.enter_context(
                    LoadedProgram(os.dup(dissector), name="fd", prog_type=bpf.ProgType.FLOW_DISSECTOR)
                )
            elif isinstance(dissector, (str, os.PathLike)):
                import pyfd

                program = stack.enter_context(pyfd.load(dissector))
            elif hasattr(dissector, "load"):
                program = stack.enter_context(dissector.load())
            else:
                program = dissector
            stack.enter_context(attached(program, self.netns))
            return self._measure(frames() if frames_ is None else frames_, splits)

    def _measure(self, frames_: Sequence[Frame], splits: Sequence[str]) -> Measurement:
        result = Measurement()
        for frame in frames_:
            linear = self.write(frame.data, ())
            # (A VLAN tag reaches tc already taken out of the frame, into
            # skb->vlan_tci: __netif_receive_skb_core, skb_vlan_untag.)
            if linear.linear != linear.length:
                raise AssertionError(f"{frame.name} written as one iovec was not linear at tc: {linear}")
            for split in splits:
                at = cuts(frame, split)
                paged = self.write(frame.data, at)
                sizes = tuple(len(p) for p in pieces(frame.data, at))
                result.writes.append(PagedWrite(frame.name, split, sizes, paged, linear))
        return result

    def call_paths(self, frames_: Sequence[Frame] | None = None, splits: Sequence[str] = tuple(SPLITS)) -> list[WriteCalls]:
        """Attach the call recorder to the namespace and report, per write (linear twin first), every dissector call it caused."""
        frames_ = frames() if frames_ is None else frames_
        out = []
        with CallRecorder() as recorder, recorder.program.attached(netns=self.netns):
            for frame in frames_:
                for split in ("linear", *splits):
                    at = () if split == "linear" else cuts(frame, split)
                    start = recorder.count()
                    self.write(frame.data, at)
                    sizes = tuple(len(p) for p in pieces(frame.data, at))
                    out.append(WriteCalls(frame.name, split, sizes, recorder.calls(start)))
        return out


class CallRecorder:
    """call_recorder() loaded with its ring: attach or test-run `.program`, then read what each call was handed."""

    def __init__(self) -> None:
        self._ring = ArrayMap("pyfd_calls", value_size=struct.calcsize(CALL_RECORD), entries=RING + 1)
        try:
            self.program = load_flow_dissector(call_recorder(self._ring.fd), "pyfd_calls")
        except BaseException:
            self._ring.close()
            raise

    def count(self) -> int:
        """How many calls were recorded so far."""
        return int(struct.unpack_from("=I", self._ring.read(0))[0])

    def calls(self, start: int) -> tuple[Call, ...]:
        """The calls recorded since count() returned start."""
        end = self.count()
        if end - start > RING:
            raise AssertionError(f"{end - start} calls overflow the ring of {RING}")
        return tuple(_call(self._ring.read(1 + n % RING)) for n in range(start, end))

    def close(self) -> None:
        """Unload the program and free the ring."""
        self.program.close()
        self._ring.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _call(raw: bytes) -> Call:
    nhoff, n_proto, flags, linear, load_bytes, loaded = struct.unpack(CALL_RECORD, raw)
    return Call(nhoff, socket.ntohs(n_proto), flags, linear, load_bytes, loaded)  # n_proto is big-endian in the keys


# --- the kernel's reference dissector (tools/testing/selftests/bpf/progs/bpf_flow.c) ----


@dataclass
class LoadedObject:
    """A flow dissector loaded from a clang object with maps: its entry program, and the fds that keep it whole."""

    entry: LoadedProgram
    keep: list[int]  # the prog array's fd: the kernel empties a prog array when its last user fd or pin goes

    def close(self) -> None:
        """Release the entry program and everything kept."""
        self.entry.close()
        for fd in self.keep:
            os.close(fd)
        self.keep.clear()

    def __enter__(self) -> LoadedProgram:
        return self.entry

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def load_tail_call_object(
    path: str, *, bpftool: str = "bpftool", entry: str = "_dissect", table: str = "jmp_table", prefix: str = "flow_dissector_"
) -> LoadedObject:
    """Load a flow dissector object built around a prog array, as the kernel selftest's loader does.

    bpftool loads and pins every program and map (pyfd cannot relocate map
    references yet); program `<prefix>N` goes into slot N of the prog array
    `table`; the pins are removed again, and the returned object holds the fds.
    """
    import shutil
    import uuid

    pins = f"/sys/fs/bpf/pyfd-paged-{uuid.uuid4().hex[:10]}"
    maps = pins + "-maps"
    keep: list[int] = []
    try:
        subprocess.run(
            [bpftool, "prog", "loadall", path, pins, "type", "flow_dissector", "pinmaps", maps],
            check=True, capture_output=True, text=True,
        )
        keep.append(bpf.obj_get(f"{maps}/{table}"))
        for name in sorted(os.listdir(pins)):
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                prog_fd = bpf.obj_get(f"{pins}/{name}")
                try:
                    map_update(keep[0], int(name[len(prefix):]), prog_fd)
                finally:
                    os.close(prog_fd)  # the prog array holds the program now
        loaded = LoadedProgram(bpf.obj_get(f"{pins}/{entry}"), name=entry, prog_type=bpf.ProgType.FLOW_DISSECTOR)
        return LoadedObject(loaded, keep)
    except BaseException:
        for fd in keep:
            os.close(fd)
        raise
    finally:
        shutil.rmtree(pins, ignore_errors=True)
        shutil.rmtree(maps, ignore_errors=True)


def linear_lengths(calls: Sequence[WriteCalls]) -> dict[str, Counter[tuple[int, int]]]:
    """Per caller: how often each (first iovec, linear length seen) pair occurred over the paged writes."""
    out: dict[str, Counter[tuple[int, int]]] = {}
    for write in calls:
        if write.split == "linear":
            continue
        for c in write.calls:
            out.setdefault(c.caller, Counter())[(write.iovecs[0], c.linear)] += 1
    return out


def iter_agreement(m: Measurement) -> Iterator[tuple[str, str, bool]]:
    """(frame, split, agrees) per paged write."""
    for w in m.writes:
        yield w.frame, w.split, w.agrees
