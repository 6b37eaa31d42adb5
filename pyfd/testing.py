"""Testing dissectors: run one on every engine and backend, check that they agree, generate frames.

The engines are the Python run (`Dissector.run_python`), pyfd's interpreter
(`pyfd.vm`, one per backend) and the kernel (BPF_PROG_TEST_RUN, one per
backend, where this process can load BPF programs). The pytest plugin
(pyfd.pytest_plugin, installed with pyfd) gives them as fixtures; this
module works without pytest too:

    from pyfd.testing import Engines, frames
    with Engines() as engines:
        engines.assert_agree(my_dissector, [frame1, frame2])   # every available engine, or AssertionError

    @given(frames())                                           # hypothesis: Ethernet frames of every protocol
    def test_agree(frame): ...

Nothing here imports the compiler, the interpreter or the kernel runtime
until an engine is used, nor hypothesis until `frames()` is called.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from .dissector import Dissector
    from .runtime import RunResult

__all__ = [
    "ALL_ENGINES",
    "BACKENDS",
    "Engine",
    "Engines",
    "frames",
    "in_ci",
    "kernel_unavailable_reason",
    "require",
]

BACKENDS = ("native", "llvm")
"""The compiler's backends (pyfd.compiler.backends.BACKENDS), each an engine of the interpreter and of the kernel."""


@dataclass(frozen=True)
class Engine:
    """Where a dissector runs: `python`, or `vm`/`kernel` with a backend; `name` is `vm-native` and the like."""

    kind: str  # "python", "vm" or "kernel"
    backend: str | None = None

    @property
    def name(self) -> str:
        return self.kind if self.backend is None else f"{self.kind}-{self.backend}"

    def __str__(self) -> str:
        return self.name


ALL_ENGINES: tuple[Engine, ...] = (
    Engine("python"),
    *(Engine("vm", backend) for backend in BACKENDS),
    *(Engine("kernel", backend) for backend in BACKENDS),
)


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True when the tests run in CI (CI=true, 1 or yes), where a kernel test that cannot run fails."""
    return environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@functools.cache
def kernel_unavailable_reason() -> str | None:
    """Why this process cannot load a flow dissector (None if it can), probed once."""
    from .runtime import check_bpf_available

    return check_bpf_available()


def require(reason: str | None, environ: Mapping[str, str] = os.environ) -> None:
    """Do nothing for None; otherwise skip the running test, or fail it in CI (CI=true).

    Every kernel skip goes through this one call, so pytest's summary (-ra)
    folds them into one line.
    """
    if reason is None:
        return
    import pytest

    if in_ci(environ):
        pytest.fail(f"kernel test cannot run in CI (CI=true): {reason}", pytrace=False)
    pytest.skip(f"needs the kernel: {reason}")


def _never(engine: Engine) -> NoReturn:
    raise ValueError(f"no engine {engine!r}; engines: {', '.join(e.name for e in ALL_ENGINES)}")


class Engines:
    """Runs dissectors on engines, compiling and loading each (dissector, engine) once; closes what it loaded.

    `available()` lists the engines this process can run (the kernel ones
    only with the privileges to load BPF programs); `run` runs one,
    `assert_agree` all of them (or those given) on frames.
    """

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._compiled: dict[tuple[int, str], Any] = {}
        self._runners: dict[tuple[int, str], Callable[[bytes, int], RunResult]] = {}
        self._keep: list[object] = []  # the dissectors keyed by id(): kept alive so ids stay unique

    def __enter__(self) -> Engines:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the programs loaded into the kernel."""
        self._stack.close()
        self._runners.clear()

    def available(self, *, kernel: bool | None = None) -> list[Engine]:
        """The engines this process can run; `kernel=False` leaves the kernel out, `True` insists on it (skip or fail)."""
        if kernel:
            require(kernel_unavailable_reason())
        with_kernel = kernel is not False and kernel_unavailable_reason() is None
        return [e for e in ALL_ENGINES if e.kind != "kernel" or with_kernel]

    def compiled(self, dissector: Dissector, backend: str) -> Any:
        """The dissector compiled by `backend` (once)."""
        key = (id(dissector), backend)
        if key not in self._compiled:
            self._keep.append(dissector)
            self._compiled[key] = dissector.compile(backend=backend)
        return self._compiled[key]

    def runner(self, dissector: Dissector, engine: Engine | str) -> Callable[[bytes, int], RunResult]:
        """`run(frame, flags)` of the dissector on one engine; a kernel engine skips (or in CI fails) without privileges."""
        if isinstance(engine, str):
            engine = next((e for e in ALL_ENGINES if e.name == engine), None) or _never(Engine(engine))
        key = (id(dissector), engine.name)
        found = self._runners.get(key)
        if found is not None:
            return found
        if engine.kind == "python":

            def python(frame: bytes, flags: int) -> RunResult:
                return dissector.run_python(frame, flags=flags)

            found = python
        elif engine.kind == "vm":
            from . import vm

            found = _runner(vm.load(self.compiled(dissector, engine.backend or "native")))
        elif engine.kind == "kernel":
            require(kernel_unavailable_reason())
            loaded = self.compiled(dissector, engine.backend or "native").load()
            self._stack.callback(loaded.close)
            found = _runner(loaded)
        else:
            _never(engine)
        self._keep.append(dissector)
        self._runners[key] = found
        return found

    def run(self, dissector: Dissector, engine: Engine | str, frame: object, *, flags: int = 0) -> RunResult:
        """One run of `dissector` on `engine`."""
        return self.runner(dissector, engine)(_as_bytes(frame), flags)

    def assert_agree(
        self,
        dissector: Dissector,
        frames: object,
        *,
        flags: int = 0,
        engines: Sequence[Engine | str] | None = None,
    ) -> list[dict[str, RunResult]]:
        """Run every engine (or those given) on a frame or a list of frames; AssertionError with a table of what differs.

        Agreement is on the return code and all 56 bytes of keys. Returns, per
        frame, the results by engine name.
        """
        chosen = [e if isinstance(e, Engine) else Engine(*e.split("-", 1)) for e in engines] if engines is not None else self.available()
        batch = [_as_bytes(f) for f in _frame_list(frames)]
        results: list[dict[str, RunResult]] = []
        wrong: list[str] = []
        for index, frame in enumerate(batch):
            by_engine = {engine.name: self.run(dissector, engine, frame, flags=flags) for engine in chosen}
            results.append(by_engine)
            if len({(r.retval, r.keys.raw) for r in by_engine.values()}) > 1:
                wrong.append(disagreement(by_engine, frame, index if len(batch) > 1 else None))
        if wrong:
            shown = "\n\n".join(wrong[:5]) + (f"\n\n... and {len(wrong) - 5} more" if len(wrong) > 5 else "")
            raise AssertionError(
                f"{dissector.name}: engines disagree on {len(wrong)} of {len(batch)} frame{'s' if len(batch) != 1 else ''} "
                f"(flags={flags:#x}; {', '.join(e.name for e in chosen)}):\n{shown}"
            )
        return results


def _runner(program: Any) -> Callable[[bytes, int], RunResult]:
    def run(frame: bytes, flags: int) -> RunResult:
        result: RunResult = program.run(frame, flags=flags)
        return result

    return run


def _as_bytes(frame: object) -> bytes:
    return frame if isinstance(frame, bytes) else bytes(frame)  # type: ignore[call-overload]


def _frame_list(frames: object) -> list[object]:
    if isinstance(frames, (bytes, bytearray, memoryview)) or not isinstance(frames, Iterable):
        return [frames]
    if hasattr(frames, "layers") and callable(frames.layers):  # one scapy packet
        return [frames]
    return list(frames)


def _retval_text(retval: int) -> str:
    names = {0: "BPF_OK", 2: "BPF_DROP", 129: "BPF_FLOW_DISSECTOR_CONTINUE"}
    return f"{names[retval]} ({retval})" if retval in names else str(retval)


def disagreement(results: Mapping[str, RunResult], frame: bytes, index: int | None = None) -> str:
    """A table of the fields in which the engines' results differ, one column per engine."""
    from .abi import FLOW_KEYS_LAYOUT

    names = list(results)
    rows: list[list[str]] = [["field", *names]]
    retvals = [_retval_text(r.retval) for r in results.values()]
    if len(set(retvals)) > 1:
        rows.append(["retval", *retvals])
    for field, _, _ in FLOW_KEYS_LAYOUT:
        values = [str(getattr(r.keys, field)) for r in results.values()]
        if len(set(values)) > 1:
            rows.append([field, *values])
    raws = [r.keys.raw for r in results.values()]
    if len(rows) == 1 and len(set(raws)) > 1:  # only bytes no field shows differ (padding)
        rows.append(["raw", *(raw.hex() for raw in raws)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = "\n".join("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows)
    head = f"frame {index + 1}" if index is not None else "frame"
    shown = frame.hex() if len(frame) <= 64 else frame[:64].hex() + "..."
    return f"{head} ({len(frame)} bytes): {shown}\n{table}"


# --- frames for hypothesis ----------------------------------------------------------------

_ETH_IP, _ETH_IPV6, _ETH_VLAN, _ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
_ETH_MPLS, _ETH_TEB, _ETH_ARP = 0x8847, 0x6558, 0x0806
_TCP, _UDP, _ICMP, _GRE, _IPIP, _IPV6, _ICMPV6 = 6, 17, 1, 47, 4, 41, 58
_HOPOPTS, _ROUTING, _FRAGMENT, _DSTOPTS, _NONE = 0, 43, 44, 60, 59


def frames(*, max_payload: int = 32, truncate: bool = True, max_depth: int = 2) -> SearchStrategy[bytes]:
    """A hypothesis strategy for Ethernet frames a dissector should handle: 14 to 4096 bytes, explicit MACs.

    Frames carry VLAN tags (802.1Q, 802.1ad), MPLS, IPv4 (options,
    fragments), IPv6 (hop-by-hop, routing, destination-options and fragment
    headers, flow labels), IP-in-IP both ways, GRE (checksum, key and
    sequence fields; IP or Ethernet inside), TCP (any data offset), UDP,
    ICMP and ARP, random ethertypes and protocols, with random addresses,
    ports and payload; with `truncate`, some are cut short anywhere after
    the Ethernet header. Needs hypothesis (pyfd's test extra).
    """
    from hypothesis import strategies as st

    def mac(draw: st.DrawFn) -> bytes:
        first = draw(st.integers(0, 255)) & 0xFC | 0x02  # unicast, locally administered
        return bytes([first]) + draw(st.binary(min_size=5, max_size=5))

    def l4(draw: st.DrawFn, proto: int, depth: int) -> bytes:
        if proto == _TCP:
            doff = draw(st.integers(0, 15))
            header = struct.pack("!HHIIBBHHH", draw(st.integers(0, 65535)), draw(st.integers(0, 65535)), 0, 0, doff << 4, 0x02, 1024, 0, 0)
            return header + bytes(max(doff * 4 - 20, 0))
        if proto == _UDP:
            return struct.pack("!HHHH", draw(st.integers(0, 65535)), draw(st.integers(0, 65535)), 8, 0)
        if proto in (_ICMP, _ICMPV6):
            return struct.pack("!BBHI", draw(st.integers(0, 255)), 0, 0, 0)
        if proto == _GRE:
            return gre(draw, depth)
        if proto in (_IPIP, _IPV6) and depth < max_depth:
            return ipv4(draw, depth + 1) if proto == _IPIP else ipv6(draw, depth + 1)
        return b""

    def transport(draw: st.DrawFn) -> int:
        return draw(st.sampled_from([_TCP, _UDP, _ICMP, _GRE, _IPIP, _IPV6, _ICMPV6, _NONE, draw(st.integers(0, 255))]))

    def ipv4(draw: st.DrawFn, depth: int) -> bytes:
        ihl = draw(st.sampled_from([5, 5, 5, 6, 15, draw(st.integers(0, 15))]))
        frag = draw(st.sampled_from([0, 0x4000, 0x2000, 0x0001, 0x2001, draw(st.integers(0, 0xFFFF))]))
        proto = transport(draw)
        options = bytes([1]) * max(ihl * 4 - 20, 0)
        body = l4(draw, proto, depth)
        length = min(20 + len(options) + len(body), 0xFFFF)
        saddr, daddr = draw(st.binary(min_size=4, max_size=4)), draw(st.binary(min_size=4, max_size=4))
        header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 1, frag, 64, proto, 0, saddr, daddr)
        return header + options + body

    def ipv6(draw: st.DrawFn, depth: int) -> bytes:
        label = draw(st.sampled_from([0, 0, 1, 0xFFFFF, draw(st.integers(0, 0xFFFFF))]))
        chain = draw(st.lists(st.sampled_from([_HOPOPTS, _ROUTING, _FRAGMENT, _DSTOPTS]), max_size=3))
        last = transport(draw)
        nexts = [*chain[1:], last][: len(chain)]  # each extension header names the one after it
        extensions = b""
        for kind, nxt in zip(chain, nexts, strict=True):
            if kind == _FRAGMENT:
                extensions += struct.pack("!BBHI", nxt, 0, draw(st.sampled_from([0, 1, 8, 9])), 7)
            else:
                length = draw(st.integers(0, 2))
                extensions += struct.pack("!BB", nxt, length) + bytes(6 + 8 * length)
        first = chain[0] if chain else last
        body = extensions + l4(draw, last, depth)
        saddr, daddr = draw(st.binary(min_size=16, max_size=16)), draw(st.binary(min_size=16, max_size=16))
        header = struct.pack("!IHBB16s16s", 6 << 28 | label, min(len(body), 0xFFFF), first, 64, saddr, daddr)
        return header + body

    def gre(draw: st.DrawFn, depth: int) -> bytes:
        flags = draw(st.sampled_from([0, 0x8000, 0x2000, 0x1000, 0xB000, draw(st.integers(0, 0xFFFF))]))
        inner = draw(st.sampled_from([_ETH_IP, _ETH_IPV6, _ETH_TEB, _ETH_MPLS, draw(st.integers(0, 0xFFFF))]))
        optional = 4 * bin(flags & 0xB000).count("1")
        header = struct.pack("!HH", flags, inner) + bytes(optional)
        if depth >= max_depth:
            return header
        if inner == _ETH_IP:
            return header + ipv4(draw, depth + 1)
        if inner == _ETH_IPV6:
            return header + ipv6(draw, depth + 1)
        if inner == _ETH_TEB:
            return header + ethernet(draw, depth + 1)
        return header

    def network(draw: st.DrawFn, ethertype: int, depth: int) -> bytes:
        if ethertype == _ETH_IP:
            return ipv4(draw, depth)
        if ethertype == _ETH_IPV6:
            return ipv6(draw, depth)
        if ethertype == _ETH_MPLS:
            labels = draw(st.integers(1, 3))
            return b"".join(struct.pack("!I", draw(st.integers(0, 0xFFFFF)) << 12 | (i == labels - 1) << 8 | 64) for i in range(labels))
        if ethertype == _ETH_ARP:
            return bytes.fromhex("0001080006040001") + bytes(20)
        return b""

    def ethernet(draw: st.DrawFn, depth: int) -> bytes:
        tags = draw(st.sampled_from([[], [], [], [_ETH_VLAN], [_ETH_QINQ, _ETH_VLAN], [_ETH_VLAN, _ETH_VLAN]]))
        ethertype = draw(st.sampled_from([_ETH_IP, _ETH_IP, _ETH_IPV6, _ETH_IPV6, _ETH_MPLS, _ETH_ARP, draw(st.integers(0, 0xFFFF))]))
        types = [*tags, ethertype]
        head = mac(draw) + mac(draw) + struct.pack("!H", types[0])
        for nxt in types[1:]:
            head += struct.pack("!HH", draw(st.integers(0, 0xFFF)), nxt)
        return head + network(draw, ethertype, depth)

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        frame = ethernet(draw, 0) + draw(st.binary(max_size=max_payload))
        frame = frame[:4096]
        if truncate and draw(st.integers(0, 3)) == 0:
            frame = frame[: draw(st.integers(14, len(frame)))]
        return frame.ljust(14, b"\0")

    return build()
