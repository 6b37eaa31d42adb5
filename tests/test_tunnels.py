"""samples/tunnels.py: the inner flow of each UDP tunnel and MPLS stack, in the kernel on both backends and in Python.

Every frame and every cut of it runs in the kernel (BPF_PROG_TEST_RUN) on
each backend and as CPython, and all must agree on the return code and the
56 bytes of keys; the keys are then checked against what the frame holds
(tests/tunnel_frames.py says where each header is). What is not followed (a
datagram to a tunnel port that carries nothing followed, a cut inside a
tunnel header, STOP_AT_ENCAP, any frame without these tunnels) must come
out exactly as samples/full.py, the kernel-equivalent dissector, leaves it.
The kernel's skb hash shows what it is for: N inner flows in one tunnel
hash N ways with the sample attached, one way without.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from full_frames import CASES
from kequiv import corpus
from kernel import enforce_kernel, skip_unless_kernel
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket
from test_samples import _sample
from tunnel_frames import NOT_FOLLOWED, PORTS, TUNNELS, NotFollowed, Tunnel, eth, flows, inner_eth, inner_v4, outer_udp, paged_frames

from pyfd import BPF_DROP, BPF_OK, lib
from pyfd.compiler.driver import BACKENDS
from pyfd.runtime import LoadedProgram, RunResult
from pyfd.runtime.kernelhash import KernelHasher

TUNNELS_SAMPLE = _sample("tunnels")
FULL = _sample("full")
STOP_AT_ENCAP = 4
MPLS_TYPES = (0x8847, 0x8848)

Loaded = dict[str, LoadedProgram]


@pytest.fixture(scope="module")
def loaded() -> Iterator[Loaded]:
    """samples/tunnels.py compiled by each backend and loaded."""
    skip_unless_kernel()
    compiled = {backend: TUNNELS_SAMPLE.compile(backend=backend) for backend in BACKENDS}
    opened: Loaded = {}
    try:
        for backend, program in compiled.items():
            opened[backend] = program.load()
        yield opened
    finally:
        for done in opened.values():
            done.close()


def agree(loaded: Loaded, frame: bytes, flags: int = 0, label: str = "") -> RunResult:
    """Each backend's program in the kernel and the sample as Python: the same return code and keys; that result."""
    python = TUNNELS_SAMPLE.run_python(frame, flags=flags)
    for backend, program in loaded.items():
        kernel = program.run(frame, flags=flags)
        assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), (
            f"{label} [{len(frame)} bytes, flags {flags}] {backend}: retval {kernel.retval} vs {python.retval}; "
            f"{kernel.keys.diff(python.keys)}"
        )
    return python


def as_full(frame: bytes, flags: int) -> tuple[int, bytes]:
    """samples/full.py's return code and keys for the frame (the kernel's own dissection)."""
    result = FULL.run_python(frame, flags=flags)
    return result.retval, result.keys.raw


def with_encap(raw: bytes) -> bytes:
    """Keys with is_encap (offset 8) set."""
    return raw[:8] + b"\x01" + raw[9:]


def inner_flow_mismatches(result: RunResult, t: Tunnel, *, ports: bool = True) -> list[str]:
    """Where the keys are not the inner flow of `t` (ports 0 when `ports` is false: they were cut off)."""
    k = result.keys
    want_ports = (t.sport, t.dport) if ports else (0, 0)
    src, dst = (k.ipv4_src, k.ipv4_dst) if t.n_proto == 0x0800 else (k.ipv6_src, k.ipv6_dst)
    checks = {
        "retval": (result.retval, BPF_OK),
        "nhoff": (k.nhoff, t.inner_l3),
        "thoff": (k.thoff, t.inner_l4),
        "n_proto": (k.n_proto, t.n_proto),
        "addr_proto": (k.addr_proto, t.n_proto),
        "ip_proto": (k.ip_proto, t.ip_proto),
        "src": (src, ipaddress.ip_address(t.src)),
        "dst": (dst, ipaddress.ip_address(t.dst)),
        "ports": ((k.sport, k.dport), want_ports),
        "is_encap": (k.is_encap, int(t.encap)),
        "is_frag": (k.is_frag, 0),
    }
    return [f"{name}: got {got}, want {want}" for name, (got, want) in checks.items() if got != want]


def test_the_table_covers_every_tunnel() -> None:
    """Each tunnel type, with options and extension headers, over IPv4 and IPv6, and the cases not followed."""
    names = {t.name for t in TUNNELS}
    for prefix in ("vxlan_", "gpe_", "geneve_", "gtpu_", "gue0_", "gue1_", "mpls_udp_", "mpls_eth_", "mpls_gre", "mpls_in_ip"):
        assert any(n.startswith(prefix) for n in names), prefix
    assert {"geneve_ipv6_options", "gtpu_three_ext", "gue0_ipv6_extension_fields", "vxlan_over_ipv6"} <= names
    assert len({t.frame for t in TUNNELS}) == len(TUNNELS) and len(NOT_FOLLOWED) >= 20
    for t in TUNNELS:
        assert t.frame[6:12] == bytes.fromhex("020000000001") and t.followed <= t.inner_l3 + 4 < len(t.frame)


@pytest.mark.parametrize("t", TUNNELS, ids=lambda t: t.name)
def test_inner_flow(loaded: Loaded, t: Tunnel) -> None:
    """The whole frame: the inner flow, with the input flags the receive path and skb_get_hash() pass."""
    for flags in (0, 2):
        result = agree(loaded, t.frame, flags, t.name)
        assert not inner_flow_mismatches(result, t), inner_flow_mismatches(result, t)


@pytest.mark.parametrize("t", TUNNELS, ids=lambda t: t.name)
def test_stop_at_encap_is_the_outer_flow(loaded: Loaded, t: Tunnel) -> None:
    """STOP_AT_ENCAP: a UDP tunnel gives the outer flow exactly as full.py does, with is_encap; GRE stops as in the kernel; MPLS is no encapsulation."""
    for flags in (STOP_AT_ENCAP, 7):
        result = agree(loaded, t.frame, flags, t.name)
        retval, raw = as_full(t.frame, flags)
        if t.udp is not None:
            assert (result.retval, result.keys.raw) == (retval, with_encap(raw)), result.keys
            assert result.keys.ip_proto == 17 and result.keys.thoff == t.udp
        elif t.encap:  # MPLS inside GRE: GRE stops
            assert (result.retval, result.keys.raw) == (retval, raw)
        else:
            assert not inner_flow_mismatches(result, t)


@pytest.mark.parametrize("t", TUNNELS, ids=lambda t: t.name)
def test_cut_before_the_inner_packet_is_what_full_py_does(loaded: Loaded, t: Tunnel) -> None:
    """Cut before the tunnel is followed (inside the outer headers, the tunnel header, its options or extension headers): full.py's result."""
    assert t.udp is None or t.followed >= t.udp + 8
    for length in range(14, t.followed):
        for flags in (0, 2):
            result = agree(loaded, t.frame[:length], flags, t.name)
            assert (result.retval, result.keys.raw) == as_full(t.frame[:length], flags), (length, result.keys)


@pytest.mark.parametrize("t", [t for t in TUNNELS if not t.nested], ids=lambda t: t.name)
def test_cut_inside_the_inner_packet(loaded: Loaded, t: Tunnel) -> None:
    """Cut once the tunnel is followed: a label or inner header cut short fails (BPF_DROP); past the inner IP header, the inner flow."""
    for length in range(t.followed, len(t.frame)):
        result = agree(loaded, t.frame[:length], 0, t.name)
        k, where = result.keys, f"{t.name}[:{length}]"
        assert k.is_encap == int(t.encap), where
        if t.stack and length == t.inner_l3:
            # The bottom label is in, the payload's version nibble is not: done at the stack.
            assert (result.retval, k.n_proto, k.thoff) == (BPF_OK, MPLS_TYPES[0], t.inner_l3), where
        elif length < t.inner_l4:
            assert result.retval == BPF_DROP, where
            if length > t.inner_l3:
                assert (k.n_proto, k.nhoff) == (t.n_proto, t.inner_l3), where
        else:
            problems = inner_flow_mismatches(result, t, ports=length >= t.inner_l4 + 4)
            assert not problems, (where, problems)


@pytest.mark.parametrize("case", NOT_FOLLOWED, ids=lambda c: c.name)
def test_not_followed_is_what_full_py_does(loaded: Loaded, case: NotFollowed) -> None:
    """A datagram to a tunnel port that carries nothing followed, whole and cut anywhere: full.py's result, for every flag set."""
    whole = agree(loaded, case.frame, 0, case.name)
    assert whole.retval == BPF_OK and whole.keys.is_encap == 0, case.why
    for length in range(14, len(case.frame) + 1):
        for flags in (0, 2, 7):
            result = agree(loaded, case.frame[:length], flags, case.name)
            assert (result.retval, result.keys.raw) == as_full(case.frame[:length], flags), (case.name, length, flags, case.why)


def _is_tunnel(result: RunResult) -> bool:
    """Where full.py ends at MPLS or at UDP to a tunnel port: where the sample goes further."""
    k = result.keys
    return k.n_proto in MPLS_TYPES or (k.ip_proto == 17 and k.dport in PORTS.values())


def test_every_other_frame_is_what_full_py_does() -> None:
    """The kernel-equivalence corpus and full.py's table, in Python: identical to full.py wherever full.py ends at neither MPLS nor a tunnel port."""
    frames = [f.frame for f in corpus()] + [c.frame for c in CASES]
    compared = skipped = 0
    for frame in frames:
        for flags in (0, 2, 7):
            full = FULL.run_python(frame, flags=flags)
            if _is_tunnel(full):
                skipped += 1
                continue
            ours = TUNNELS_SAMPLE.run_python(frame, flags=flags)
            assert (ours.retval, ours.keys.raw) == (full.retval, full.keys.raw), ours.keys.diff(full.keys)
            compared += 1
    assert compared > 4000 and skipped > 100  # the corpus has MPLS frames: they are the ones that differ


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_and_python_agree_on_the_corpus(backend: str) -> None:
    """tunnels.py in the kernel and as Python on every frame of the kernel-equivalence corpus and full.py's table."""
    skip_unless_kernel()
    with TUNNELS_SAMPLE.compile(backend=backend).load() as program:
        for frame in [f.frame for f in corpus()] + [c.frame for c in CASES]:
            for flags in (0, 2, 7):
                kernel, python = program.run(frame, flags=flags), TUNNELS_SAMPLE.run_python(frame, flags=flags)
                assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), kernel.keys.diff(python.keys)


def test_an_outer_flow_label_ends_dissection_with_stop_at_flow_label(loaded: Loaded) -> None:
    """skb_get_hash() passes STOP_AT_FLOW_LABEL: a labelled outer IPv6 header is the flow, before any tunnel, as in full.py."""
    t = next(t for t in TUNNELS if t.name == "vxlan_over_ipv6")
    labelled = bytearray(t.frame)
    labelled[15:18] = bytes([labelled[15] & 0xF0 | 0x1, 0x23, 0x45])  # flow label 0x12345
    frame = bytes(labelled)
    stopped = agree(loaded, frame, 2, t.name)
    assert (stopped.retval, stopped.keys.raw) == as_full(frame, 2) and stopped.keys.is_encap == 0
    followed = agree(loaded, frame, 0, t.name)
    assert not inner_flow_mismatches(followed, t) and followed.keys.flow_label == 0x12345  # an IPv4 inner flow keeps it


def _vxlan_nest(depth: int) -> bytes:
    """`depth` VXLAN tunnels one inside the next, each level with its own IPv4 addresses; TCP innermost."""
    packet: ScapyPacket = eth()
    for level in range(depth):
        packet = packet / IP(src=f"10.{level}.0.1", dst=f"10.{level}.0.2") / UDP(sport=5000 + level, dport=PORTS["vxlan"]) / VXLAN(vni=level) / inner_eth()
    return bytes(packet / IP(src="172.31.0.1", dst="172.31.0.2") / TCP(sport=7, dport=8))


def test_nesting_is_bounded(loaded: Loaded) -> None:
    """Each tunnel and each label is one pass of the kernel's loop: MAX_HEADERS more after the first, then done (BPF_OK)."""
    deepest = lib.MAX_HEADERS  # that many tunnels: MAX_HEADERS + 1 IPv4 headers, each its own pass
    inner = agree(loaded, _vxlan_nest(deepest)).keys
    assert (inner.ipv4_src, inner.sport, inner.dport) == (ipaddress.ip_address("172.31.0.1"), 7, 8)
    cut = agree(loaded, _vxlan_nest(deepest + 1))
    level = lib.MAX_HEADERS  # the last IPv4 header read; the next is left waiting
    assert cut.retval == BPF_OK
    assert (cut.keys.ipv4_src, cut.keys.sport, cut.keys.n_proto, cut.keys.is_encap) == (ipaddress.ip_address(f"10.{level}.0.1"), 0, 0x0800, 1)

    def stack(labels: int) -> bytes:
        packet: ScapyPacket = eth(MPLS_TYPES[0])
        for i in range(labels):
            packet = packet / MPLS(label=16 + i, s=int(i == labels - 1))
        return bytes(packet / IP(src="172.31.0.1", dst="172.31.0.2") / TCP(sport=7, dport=8))

    ok = agree(loaded, stack(lib.MAX_HEADERS)).keys  # 15 labels, then IPv4 and TCP in the 16th pass
    assert (ok.n_proto, ok.ipv4_src, ok.dport) == (0x0800, ipaddress.ip_address("172.31.0.1"), 8)
    deep = agree(loaded, stack(lib.MAX_HEADERS + 1))  # the 16th pass reads the bottom label; IPv4 is left waiting
    assert (deep.retval, deep.keys.n_proto, deep.keys.addr_proto, deep.keys.thoff) == (BPF_OK, 0x0800, 0, 14 + 4 * (lib.MAX_HEADERS + 1))


def test_verifier_has_room(loaded: Loaded) -> None:
    """The verifier walks the sample well inside its 1M-instruction budget on both backends."""
    for backend, program in loaded.items():
        assert 0 < program.verified_insns < 300_000, (backend, program.verified_insns)


# -- the kernel's hash: N inner flows in one tunnel ---------------------------------


@pytest.fixture(scope="module")
def hasher() -> Iterator[KernelHasher]:
    skip_unless_kernel()
    with KernelHasher() as made:
        yield made


FLOWS = 32


@pytest.mark.parametrize("kind", ["gtpu", "vxlan", "geneve", "vxlan_gpe", "gue", "mpls_udp", "mpls_eth"])
def test_inner_flows_hash_apart(hasher: KernelHasher, loaded: Loaded, kind: str) -> None:
    """N inner flows inside one tunnel (fixed outer addresses and ports): one kernel hash built in (and with full.py), N with tunnels.py."""
    frames = flows(kind, FLOWS)
    builtin = set(hasher.hashes(frames))
    assert len(builtin) == 1 and None not in builtin
    with FULL.compile().load() as full:
        with hasher.attached(full.fd):
            assert len(set(hasher.hashes(frames))) == 1
    for backend, program in loaded.items():
        with hasher.attached(program.fd):
            assert len(set(hasher.hashes(frames))) == FLOWS, backend


# -- the real receive path: tunnel headers in page fragments ------------------------


def test_paged_tunnel_frames_hash_like_linear_ones(netns: str, loaded: Loaded) -> None:
    """Tunnel frames written to a NAPI-frags tap, split in five ways: each hashes like its linear twin, and the inner flows hash apart."""
    from paged import SPLITS, ReceivePath

    if not os.path.exists("/dev/net/tun"):
        enforce_kernel("there is no /dev/net/tun (modprobe tun)")
    frames = paged_frames()
    with ReceivePath(netns) as path:
        for backend, program in loaded.items():
            measured = path.measure(program, frames_=frames)
            assert len(measured.writes) == len(frames) * len(SPLITS)
            assert not measured.disagreeing(), (backend, measured.disagreeing())
            linear = {w.frame: w.linear.hash for w in measured.writes}
            assert len(set(linear.values())) == len(frames), backend  # every inner flow its own hash


# -- the ports: a Config per tunnel type at load time, a map at run time -------------


def _kernel_and_python(program: LoadedProgram, frame: bytes, flags: int = 0) -> RunResult:
    """The loaded program and the sample's Python run (with its maps and Configs as they are now) agree; that result."""
    kernel, python = program.run(frame, flags=flags), TUNNELS_SAMPLE.run_python(frame, flags=flags)
    assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), kernel.keys.diff(python.keys)
    return python


def _vxlan_to(port: int, i: int = 0) -> bytes:
    """A VXLAN frame (inner flow i) sent to UDP port `port`."""
    return bytes(outer_udp(port) / VXLAN(vni=1) / inner_eth() / inner_v4(i))


VXLAN_CASE = next(t for t in TUNNELS if t.name == "vxlan_ipv4")
GTPU_CASE = next(t for t in TUNNELS if t.name == "gtpu_ipv4")
LINUX_VXLAN_PORT = 8472  # the port Linux's vxlan driver used before IANA assigned 4789


@pytest.mark.parametrize("backend", BACKENDS)
def test_ports_are_set_at_load_time(backend: str) -> None:
    """One compiled program, loaded with VXLAN on 8472 and GTP-U off: 8472 is followed, 4789 and 2152 are ordinary UDP."""
    skip_unless_kernel()
    compiled = TUNNELS_SAMPLE.compile(backend=backend)
    config = {"VXLAN_PORT": LINUX_VXLAN_PORT, "GTPU_PORT": 0}
    TUNNELS_SAMPLE.reset(config=config)
    try:
        with compiled.load(config=config) as program:
            moved = _kernel_and_python(program, _vxlan_to(LINUX_VXLAN_PORT))
            assert moved.keys.is_encap == 1 and str(moved.keys.ipv4_src) == VXLAN_CASE.src
            for frame in (VXLAN_CASE.frame, GTPU_CASE.frame):
                result = _kernel_and_python(program, frame)
                assert (result.retval, result.keys.raw) == as_full(frame, 0)
        with compiled.load() as program:  # the same object at its defaults
            TUNNELS_SAMPLE.reset()
            assert not inner_flow_mismatches(_kernel_and_python(program, VXLAN_CASE.frame), VXLAN_CASE)
            assert not inner_flow_mismatches(_kernel_and_python(program, GTPU_CASE.frame), GTPU_CASE)
            assert _kernel_and_python(program, _vxlan_to(LINUX_VXLAN_PORT)).keys.is_encap == 0
    finally:
        TUNNELS_SAMPLE.reset()


@pytest.mark.parametrize("backend", BACKENDS)
def test_ports_change_at_run_time(backend: str) -> None:
    """tunnel_ports, written while the program is loaded: a port set there is the tunnel its value names (or none), whatever the Configs say."""
    skip_unless_kernel()
    TUNNELS_SAMPLE.reset()
    ours = TUNNELS_SAMPLE.maps["tunnel_ports"]
    try:
        with TUNNELS_SAMPLE.compile(backend=backend).load() as program:
            theirs = program.maps["tunnel_ports"]
            frames = {port: _vxlan_to(port) for port in (PORTS["vxlan"], LINUX_VXLAN_PORT, 9999, PORTS["geneve"])}
            settings = {LINUX_VXLAN_PORT: lib.TUNNEL_VXLAN, PORTS["vxlan"]: lib.TUNNEL_OFF, 9999: 200, PORTS["geneve"]: lib.TUNNEL_VXLAN}
            for port, kind in settings.items():
                theirs[port] = kind
                ours[port] = kind
            for port, frame in frames.items():
                result = _kernel_and_python(program, frame)
                followed = settings[port] == lib.TUNNEL_VXLAN
                assert result.keys.is_encap == int(followed), port
                if not followed:  # TUNNEL_OFF, and a value that names no tunnel: ordinary UDP
                    assert (result.retval, result.keys.raw) == as_full(frame, 0), port
            for port in settings:  # unset again: the load-time ports decide
                theirs[port] = lib.TUNNEL_UNSET
                ours[port] = lib.TUNNEL_UNSET
            assert _kernel_and_python(program, frames[PORTS["vxlan"]]).keys.is_encap == 1
            assert _kernel_and_python(program, frames[LINUX_VXLAN_PORT]).keys.is_encap == 0
            # GTP-U's port set to GTP-U changes nothing; set to VXLAN, its frames are not VXLAN and are left alone.
            theirs[PORTS["gtpu"]] = ours[PORTS["gtpu"]] = lib.TUNNEL_GTPU
            assert not inner_flow_mismatches(_kernel_and_python(program, GTPU_CASE.frame), GTPU_CASE)
            theirs[PORTS["gtpu"]] = ours[PORTS["gtpu"]] = lib.TUNNEL_VXLAN
            assert _kernel_and_python(program, GTPU_CASE.frame).keys.is_encap == 0
    finally:
        TUNNELS_SAMPLE.reset()


def test_a_port_moved_at_run_time_spreads_its_flows(hasher: KernelHasher) -> None:
    """Attached, with no recompiling or reloading: VXLAN on 8472 hashes as one flow until the map names the port, then N ways."""
    frames = [_vxlan_to(LINUX_VXLAN_PORT, i) for i in range(FLOWS)]
    with TUNNELS_SAMPLE.compile().load() as program, hasher.attached(program.fd):
        assert len(set(hasher.hashes(frames))) == 1
        program.maps["tunnel_ports"][LINUX_VXLAN_PORT] = lib.TUNNEL_VXLAN
        assert len(set(hasher.hashes(frames))) == FLOWS
        program.maps["tunnel_ports"][LINUX_VXLAN_PORT] = lib.TUNNEL_UNSET
        assert len(set(hasher.hashes(frames))) == 1


def test_ports_from_the_command_line_on_the_receive_path(netns: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`pyfd attach --set VXLAN_PORT=8472`, then `pyfd map tunnel_ports set`: frames written to a tap in the namespace hash as the ports say."""
    from paged import TAP_MAC, Frame, ReceivePath
    from test_cli import run

    if not os.path.exists("/dev/net/tun"):
        enforce_kernel("there is no /dev/net/tun (modprobe tun)")
    sample = Path(__file__).resolve().parent.parent / "samples" / "tunnels.py"

    def frames(port: int) -> list[Frame]:
        out = []
        for i in range(8):
            data = bytes.fromhex(TAP_MAC.replace(":", "")) + _vxlan_to(port, i)[6:]
            out.append(Frame(f"vxlan_{port}_{i}", data, 14, 34, VXLAN_CASE.inner_l4))
        return out

    def distinct(path: ReceivePath, port: int) -> int:
        measured = path.measure(None, frames_=frames(port), splits=("before_l4",))
        assert not measured.disagreeing()  # the tunnel header in page fragments changes nothing
        return len({w.linear.hash for w in measured.writes})

    status, _, err = run(capsys, "attach", sample, "--netns", netns, "--set", f"VXLAN_PORT={LINUX_VXLAN_PORT}")
    assert status == 0, err
    with ReceivePath(netns) as path:
        assert distinct(path, LINUX_VXLAN_PORT) == 8
        assert distinct(path, PORTS["vxlan"]) == 1  # 4789 is no longer VXLAN
        assert run(capsys, "map", "--netns", netns, "tunnel_ports", "set", str(PORTS["vxlan"]), str(lib.TUNNEL_VXLAN))[0] == 0
        assert run(capsys, "map", "--netns", netns, "tunnel_ports", "set", str(LINUX_VXLAN_PORT), str(lib.TUNNEL_OFF))[0] == 0
        assert distinct(path, PORTS["vxlan"]) == 8
        assert distinct(path, LINUX_VXLAN_PORT) == 1
