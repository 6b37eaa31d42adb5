"""The kernel's flow hash of a frame, with its built-in dissector or with a BPF one, in a throwaway namespace.

A BPF flow dissector replaces the kernel's C dissector (`__skb_flow_dissect`
in net/core/flow_dissector.c) for a whole network namespace, and what the
kernel mostly does with the result is hash it: `skb_get_hash()` (RPS/RFS, fq,
ECMP, bonding, tc) runs whichever dissector the skb's namespace has and
hashes its keys (`__flow_hash_from_keys`). A tc program that returns
`bpf_get_hash_recalc(skb)`, test-run from a thread inside a namespace, shows
that hash: BPF_PROG_TEST_RUN builds the skb on that namespace's loopback
device (net/bpf/test_run.c, bpf_prog_test_run_skb), so the hash comes from
the built-in dissector when nothing is attached there and from the attached
one otherwise. Same frame, both ways: equal hashes mean the kernel treats the
frame alike with the dissector as without it.

The namespace is made for the purpose with unshare(CLONE_NEWNET) in a helper
thread and held only by a file descriptor: it has no name, nothing else runs
in it, and it disappears (with anything attached to it) when closed.

The hash does not cover the transport offset or whether the dissection
succeeded; `skb_get_poff()` does: 0 when the dissector fails, else its
thoff plus the transport header's length by ip_proto (none for a later
fragment). A classic BPF socket filter reads it (SKF_AD_PAY_OFFSET) on the
receive path of the namespace's loopback device, where the kernel calls
whichever dissector the namespace has, with no input flags;
`KernelHasher.payload_offsets` sends each frame there and reads it back.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Final, TypeVar

from ..isa import call, encode_program, exit_insn
from . import bpf
from .attach import AlreadyAttachedError
from .caps import Capability, missing_capabilities
from .errors import BpfError, MissingPrivilegeError
from .program import LoadedProgram, load_program

# include/uapi/linux/bpf.h: u32 bpf_get_hash_recalc(struct sk_buff *skb), helper 34.
BPF_FUNC_GET_HASH_RECALC: Final = 34
# r1 (the skb) goes straight to the helper; its result is the return value.
HASH_PROGRAM: Final = encode_program([call(BPF_FUNC_GET_HASH_RECALC), exit_insn()])

# net/bpf/test_run.c: a tc test run takes data from the Ethernet header
# (ETH_HLEN at least), at most a page less the skb's headroom (NET_SKB_PAD
# + NET_IP_ALIGN: 64 on x86-64) and tailroom (the aligned skb_shared_info:
# 320 bytes); it also wants the whole IPv4 or IPv6 header in the linear data
# when the Ethernet type says IP, since it reads the addresses into its socket.
ETH_HLEN: Final = 14
SKB_RUN_MAX_LEN: Final = mmap.PAGESIZE - 64 - 320
_IP_HEADER_MIN: Final = {0x0800: 20, 0x86DD: 40}

# include/uapi/linux/sched.h
CLONE_NEWNET: Final = 0x40000000
CURRENT_NETNS: Final = "/proc/thread-self/ns/net"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int

# Payload offsets through a classic BPF socket filter (include/uapi/linux/filter.h,
# bpf_common.h): A = skb_get_poff(skb) (the ancillary load SKF_AD_OFF +
# SKF_AD_PAY_OFFSET), then A = A / BASE**i % BASE + 1, returned as the snap
# length. Frames are at least ETH_HLEN bytes, so each of POFF_DIGITS sockets
# receives exactly one base-13 digit of the offset (plus one: a snap length of
# 0 would drop the frame) as the length of what it reads.
SKF_AD_OFF: Final = -0x1000
SKF_AD_PAY_OFFSET: Final = 52
CBPF_LD_W_ABS: Final = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
CBPF_DIV_K: Final = 0x04 | 0x30 | 0x00  # BPF_ALU | BPF_DIV | BPF_K
CBPF_MOD_K: Final = 0x04 | 0x90 | 0x00  # BPF_ALU | BPF_MOD | BPF_K
CBPF_ADD_K: Final = 0x04 | 0x00 | 0x00  # BPF_ALU | BPF_ADD | BPF_K
CBPF_RET_A: Final = 0x06 | 0x10  # BPF_RET | BPF_A
POFF_BASE: Final = ETH_HLEN - 1
POFF_DIGITS: Final = 4  # 13**4 > the largest offset: a frame of 3,712 bytes plus a 60-byte TCP header
SO_ATTACH_FILTER: Final = 26  # include/uapi/asm-generic/socket.h
SOL_PACKET: Final = 263
PACKET_IGNORE_OUTGOING: Final = 23  # include/uapi/linux/if_packet.h: only the received copy
ETH_P_ALL: Final = 0x0003
SIOCGIFFLAGS: Final = 0x8913  # include/uapi/linux/sockios.h
SIOCSIFFLAGS: Final = 0x8914
IFF_UP: Final = 0x1
_IFREQ_FLAGS: Final = struct.Struct("16sH22x")  # struct ifreq: name, then ifr_flags
# Loopback delivery runs in the sending call's softirq; a frame not there by
# then was dropped on the way (a VLAN tag cut short: skb_vlan_untag frees it).
RECEIVE_TIMEOUT_S: Final = 0.2

_T = TypeVar("_T")


def _poff_filter(digit: int) -> bytes:
    """The classic BPF program (struct sock_filter records) that returns one digit of the payload offset, plus one."""
    ops = [(CBPF_LD_W_ABS, SKF_AD_OFF + SKF_AD_PAY_OFFSET)]
    if digit:
        ops.append((CBPF_DIV_K, POFF_BASE**digit))
    ops += [(CBPF_MOD_K, POFF_BASE), (CBPF_ADD_K, 1), (CBPF_RET_A, 0)]
    return b"".join(struct.pack("=HBBI", code, 0, 0, k & 0xFFFFFFFF) for code, k in ops)


def _loopback_up() -> None:
    """Bring the calling thread's namespace's `lo` up (a new namespace has it down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
        _, flags = _IFREQ_FLAGS.unpack(fcntl.ioctl(ctl, SIOCGIFFLAGS, _IFREQ_FLAGS.pack(b"lo", 0)))
        if not flags & IFF_UP:
            fcntl.ioctl(ctl, SIOCSIFFLAGS, _IFREQ_FLAGS.pack(b"lo", flags | IFF_UP))


def _receive_payload_offsets(frames: Sequence[bytes]) -> list[int | None]:
    """Send each frame on `lo` and read its skb_get_poff() back through the digit sockets (None: not delivered)."""
    _loopback_up()
    sockets: list[socket.socket] = []
    filters: list[ctypes.Array[ctypes.c_char]] = []  # the kernel copies them, but only during setsockopt
    try:
        for digit in range(POFF_DIGITS):
            rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sockets.append(rx)
            code = _poff_filter(digit)
            buf = ctypes.create_string_buffer(code, len(code))
            filters.append(buf)
            rx.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HP", len(code) // 8, ctypes.addressof(buf)))
            rx.bind(("lo", 0))
            rx.setblocking(False)
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        sockets.append(tx)
        tx.bind(("lo", 0))
        out: list[int | None] = []
        for frame in frames:
            for rx in sockets[:POFF_DIGITS]:  # nothing else should arrive; drop it if it does
                while select.select([rx], [], [], 0)[0]:
                    rx.recv(1)
            tx.send(frame)
            value: int | None = 0
            for digit, rx in enumerate(sockets[:POFF_DIGITS]):
                if not select.select([rx], [], [], RECEIVE_TIMEOUT_S)[0]:
                    value = None  # dropped before the packet sockets (all of them, then)
                    break
                got = rx.recv(ETH_HLEN)
                if got[:12] != frame[: min(12, len(got))]:
                    raise OSError(errno.EPROTO, "the kernel-hash namespace's loopback received a frame pyfd did not send")
                assert value is not None
                value += (len(got) - 1) * POFF_BASE**digit
            out.append(value)
        return out
    finally:
        for sock in sockets:
            sock.close()


def skb_run_problem(frame: bytes) -> str | None:
    """Why a tc test run (and so this hash) cannot take the frame; None when it can."""
    if len(frame) < ETH_HLEN:
        return f"a tc test run takes at least {ETH_HLEN} bytes (an Ethernet header), this frame has {len(frame)}"
    if len(frame) > SKB_RUN_MAX_LEN:
        return f"a tc test run takes at most {SKB_RUN_MAX_LEN} bytes, this frame has {len(frame)}"
    ethertype = int.from_bytes(frame[12:14], "big")
    need = _IP_HEADER_MIN.get(ethertype)
    if need is not None and len(frame) - ETH_HLEN < need:
        return (
            f"a tc test run wants the whole {need}-byte IP header after an Ethernet type {ethertype:#06x}, "
            f"this frame has {len(frame) - ETH_HLEN} bytes after the Ethernet header"
        )
    return None


def _in_thread(body: Callable[[], _T]) -> _T:
    """Run body in a fresh thread (whose namespace changes die with it) and return or raise what it did."""
    outcome: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            outcome.append((True, body()))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="pyfd-kernel-hash")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


def _namespace_error(call_name: str, code: int) -> BaseException:
    if code == errno.EPERM:
        return MissingPrivilegeError(
            code,
            command=call_name,
            missing=missing_capabilities((Capability.CAP_SYS_ADMIN,)),
            needs=("CAP_SYS_ADMIN",),
            action="making and entering a network namespace",
        )
    return OSError(code, f"{call_name} of a network namespace: {os.strerror(code)}")


def new_netns() -> int:
    """Create a network namespace that only the returned fd holds (unshare in a helper thread)."""

    def body() -> int:
        if _libc.unshare(CLONE_NEWNET) != 0:
            raise _namespace_error("unshare", ctypes.get_errno())
        return os.open(CURRENT_NETNS, os.O_RDONLY | os.O_CLOEXEC)

    return _in_thread(body)


@dataclass(frozen=True)
class HashComparison:
    """One frame's hash by the built-in dissector and with the BPF dissector attached (None: not run, see problem).

    With `payload=True`, also skb_get_poff() both ways (None: the frame did
    not reach the loopback's packet sockets).
    """

    builtin: int | None
    bpf: int | None
    problem: str | None = None
    builtin_payload: int | None = None
    bpf_payload: int | None = None

    @property
    def same_payload(self) -> bool | None:
        """True if both payload offsets are equal, False if not, None if one is unknown."""
        if self.builtin_payload is None or self.bpf_payload is None:
            return None
        return self.builtin_payload == self.bpf_payload

    @property
    def same(self) -> bool | None:
        """True if both hashes are equal, False if not, None if the frame could not be hashed."""
        if self.builtin is None or self.bpf is None:
            return None
        return self.builtin == self.bpf


class KernelHasher:
    """A throwaway network namespace and a tc program returning bpf_get_hash_recalc(skb): the kernel's hash of frames there.

    `with KernelHasher() as hasher: hasher.compare(dissector, frames)`. Needs
    CAP_SYS_ADMIN (for the namespace) and CAP_BPF with CAP_NET_ADMIN (for the
    programs); refuses to compare while a flow dissector is attached in the
    root namespace, which would run in place of both (AlreadyAttachedError).
    """

    def __init__(self) -> None:
        self._program: LoadedProgram | None = load_program(
            HASH_PROGRAM, name="pyfd_khash", prog_type=bpf.ProgType.SCHED_CLS
        )
        try:
            self._netns: int | None = new_netns()
        except BaseException:
            self._program.close()
            raise

    @property
    def netns_fd(self) -> int:
        """The fd that holds the namespace (ValueError once closed)."""
        if self._netns is None:
            raise ValueError("the kernel-hash namespace is closed")
        return self._netns

    def _run(self, body: Callable[[], _T]) -> _T:
        """Run body in a helper thread inside the namespace."""
        netns = self.netns_fd
        expected = os.fstat(netns).st_ino

        def inside() -> _T:
            if _libc.setns(netns, CLONE_NEWNET) != 0:
                raise _namespace_error("setns", ctypes.get_errno())
            # Never hash in the wrong namespace: check where this thread is now.
            if os.stat(CURRENT_NETNS).st_ino != expected:
                raise OSError(errno.EIO, "setns left the thread outside the kernel-hash namespace")
            return body()

        return _in_thread(inside)

    def hashes(self, frames: Sequence[bytes]) -> list[int | None]:
        """The kernel's skb hash of each frame in the namespace as it is now (None where a test run cannot take it)."""
        if self._program is None:
            raise ValueError("the kernel-hash program is closed")
        fd = self._program.fd

        def body() -> list[int | None]:
            out: list[int | None] = []
            for frame in frames:
                if skb_run_problem(frame) is not None:
                    out.append(None)
                    continue
                out.append(bpf.prog_test_run(prog_fd=fd, data_in=frame, data_out_size=0).retval)
            return out

        return self._run(body)

    def payload_offsets(self, frames: Sequence[bytes]) -> list[int | None]:
        """skb_get_poff() of each frame as the namespace's loopback receives it (None where it was not delivered).

        Sent through an AF_PACKET socket on `lo` and read back by classic BPF
        filters (SKF_AD_PAY_OFFSET): the dissector runs as on any receive path,
        with the MAC header at offset 0, nhoff 14, no input flags, and VLAN
        tags already taken off by the receive path (skb_vlan_untag).
        """
        frames = list(frames)
        return self._run(lambda: _receive_payload_offsets(frames))

    @contextmanager
    def attached(self, dissector_fd: int) -> Iterator[None]:
        """Attach a flow dissector (a program fd) to the namespace for a block; closing the link detaches it."""
        try:
            link = bpf.link_create(prog_fd=dissector_fd, target_fd=self.netns_fd, attach_type=bpf.AttachType.BPF_FLOW_DISSECTOR)
        except BpfError as exc:
            if exc.errno == errno.EEXIST:
                raise AlreadyAttachedError(
                    errno.EEXIST,
                    "a flow dissector is attached in the root network namespace: it runs in every namespace in "
                    "place of the built-in one, so there is nothing to compare with; detach it first",
                    command=bpf.Cmd.BPF_LINK_CREATE.name,
                    in_root=True,
                ) from None
            raise
        try:
            yield
        finally:
            os.close(link)

    def compare(self, dissector_fd: int, frames: Sequence[bytes], *, payload: bool = False) -> list[HashComparison]:
        """Each frame's hash (and with `payload`, its payload offset) by the built-in dissector, then with the dissector attached."""
        builtin = self.hashes(frames)
        none: list[int | None] = [None] * len(frames)
        builtin_poff = self.payload_offsets(frames) if payload else none
        with self.attached(dissector_fd):
            with_bpf = self.hashes(frames)
            bpf_poff = self.payload_offsets(frames) if payload else none
        return [
            HashComparison(a, b, skb_run_problem(frame), pa, pb)
            for frame, a, b, pa, pb in zip(frames, builtin, with_bpf, builtin_poff, bpf_poff, strict=True)
        ]

    def close(self) -> None:
        """Close the namespace (the kernel frees it, and detaches anything left) and the hash program."""
        netns, self._netns = self._netns, None
        program, self._program = self._program, None
        try:
            if netns is not None:
                os.close(netns)
        finally:
            if program is not None:
                program.close()

    def __enter__(self) -> KernelHasher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
