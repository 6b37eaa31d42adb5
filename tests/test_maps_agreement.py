"""The kernel and the Python run agree on sequences of frames: return codes, keys, and the maps after.

Each dissector of tests/dissectors/maps.py and widths.py is compiled by each backend and
loaded with its Configs at their defaults and at other values; the Python
run is reset to the same Configs. Both take the same frames one after the
other (the maps carry what one frame left to the next), and after the last
every map must hold the same keys and values in both. The test process is
pinned to one CPU meanwhile, so a per-CPU array's values are all on that
CPU's copy, which must equal the Python run's one copy, every other CPU's
staying 0.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from dissectors import maps as dissectors
from dissectors import widths as wide
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel import needs_kernel, skip_unless_kernel
from pyfd.compiler.driver import BACKENDS
from pyfd.runtime import LoadedProgram
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from pyfd.dissector import Dissector
from pyfd.program import CompiledProgram

MACS: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
CONFIGS = [{}, {"DROP_PORT": 80, "FORGET_PORT": 53, "SHIFT": 7, "BIAS": -200}]


Compiled = tuple[Dissector, CompiledProgram, dict[str, int]]
_CACHE: dict[tuple[str, str, int], Compiled] = {}


def _compiled(dissector: Dissector, backend: str, config: int) -> Compiled:
    """The dissector compiled by `backend`, with the Configs of CONFIGS[config] it has (compiled once)."""
    key = (dissector.name, backend, config)
    if key not in _CACHE:
        mine = {name: value for name, value in CONFIGS[config].items() if name in dissector.config}
        _CACHE[key] = (dissector, dissector.compile(backend=backend), mine)
    return _CACHE[key]


@pytest.fixture(
    params=[(d, backend, config) for d in [*dissectors.ALL, *wide.ALL] for backend in BACKENDS for config in range(len(CONFIGS))],
    ids=lambda p: f"{p[0].name}-{p[1]}-config{p[2]}",
)
def compiled(request: pytest.FixtureRequest) -> Compiled:
    return _compiled(*request.param)


@pytest.fixture(params=[(backend, config) for backend in BACKENDS for config in range(len(CONFIGS))], ids=lambda p: f"{p[0]}-config{p[1]}")
def mapped(request: pytest.FixtureRequest) -> Compiled:
    return _compiled(dissectors.mapped, *request.param)


@pytest.fixture(params=[(backend, config) for backend in BACKENDS for config in range(len(CONFIGS))], ids=lambda p: f"{p[0]}-config{p[1]}")
def widths(request: pytest.FixtureRequest) -> Compiled:
    return _compiled(wide.widths, *request.param)


@contextmanager
def one_cpu() -> Iterator[int]:
    """Run on one CPU (the first this process may use) until the block ends; yields its number."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def kernel_maps(loaded: LoadedProgram, names: list[str], cpu: int) -> dict[str, dict[int, int]]:
    """Every map's contents in the kernel; a per-CPU map's as `cpu`'s copy (the other copies must be 0)."""
    out: dict[str, dict[int, int]] = {}
    for name in names:
        m = loaded.maps[name]
        contents = {}
        for key, value in m.items():
            if m.percpu:
                assert all(v == 0 for i, v in enumerate(value) if i != cpu), (name, key, value)
                value = value[cpu]
            contents[key] = value
        out[name] = contents
    return out


def python_maps(dissector: Dissector) -> dict[str, dict[int, int]]:
    """Every map's contents in the Python run."""
    return {name: dict(state.items()) for name, state in dissector.maps.items()}


def run_both(compiled: Compiled, frames: list[bytes]) -> dict[str, dict[int, int]]:
    """Run the frames in a fresh load and a fresh Python run; assert they agree frame by frame and on the maps; the maps."""
    dissector, program, config = compiled
    dissector.reset(config=config)
    with one_cpu() as cpu, program.load(config=config) as loaded:
        for i, frame in enumerate(frames):
            kernel, python = loaded.run(frame), dissector.run_python(frame)
            assert (kernel.retval, kernel.keys) == (python.retval, python.keys), f"frame {i} of {len(frames)}: {frame.hex()}"
        contents = kernel_maps(loaded, list(dissector.maps), cpu)
    assert contents == python_maps(dissector)
    return contents


def ip_frame(proto: str, sport: int, dport: int, ttl: int = 64) -> bytes:
    """IPv4 with TCP, UDP or ICMP, explicit MAC addresses."""
    ip = IP(src="10.0.0.1", dst="10.0.0.2", ttl=ttl)
    layer = {"udp": UDP(sport=sport, dport=dport), "tcp": TCP(sport=sport, dport=dport), "icmp": ICMP()}[proto]
    return bytes(Ether(**MACS) / ip / layer / b"data")


OTHER = [
    bytes(Ether(**MACS) / ARP()),
    bytes(Ether(**MACS) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2)),
    bytes(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2", proto=47) / (b"\0" * 8)),
]
PORTS = st.sampled_from([1, 2, 3, 4, 5, 7, 53, 80, 4789])
FRAMES = st.one_of(
    st.builds(ip_frame, st.sampled_from(["udp", "tcp"]), PORTS, PORTS, st.integers(1, 255)),
    st.builds(ip_frame, st.just("icmp"), st.just(0), st.just(0), st.integers(1, 255)),
    st.sampled_from(OTHER),
    # cut anywhere from inside the IP header to inside the ports
    st.builds(lambda f, n: f[:n], st.builds(ip_frame, st.just("udp"), PORTS, PORTS), st.integers(14, 37)),
)


@needs_kernel
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(frames=st.lists(FRAMES, min_size=1, max_size=16))
def test_kernel_and_python_agree_on_sequences(compiled: Compiled, frames: list[bytes]) -> None:
    skip_unless_kernel()
    run_both(compiled, frames)


@needs_kernel
def test_a_sequence_that_fills_denies_and_forgets(mapped: Compiled) -> None:
    compiled = mapped
    _, _, config = compiled
    drop, forget = config.get("DROP_PORT", 4789), config.get("FORGET_PORT", 7)
    frames = [
        ip_frame("udp", 1, 10, ttl=5), ip_frame("tcp", 2, 11), ip_frame("udp", 3, 12), ip_frame("udp", 4, 13),
        ip_frame("udp", 5, 14),  # a fifth destination port: `ports` holds 4, the key is refused
        ip_frame("udp", 1, 10),
        ip_frame("udp", 6, drop),  # dropped; source port 6 denied
        ip_frame("udp", 6, 10),  # denied
        ip_frame("udp", 8, forget),  # a frame to the forget port forgets port 8 (never denied: no error)
        ip_frame("icmp", 0, 0, ttl=200),
        OTHER[0], OTHER[1],
        ip_frame("udp", 1, 10)[:30],  # cut: dropped by the failed header read
    ]
    contents = run_both(compiled, frames)
    assert contents["verdicts"] == {0: 8, 1: 3, 2: 2}  # the cut frame counts as dropped
    assert contents["ports"] == {10: 2, 11: 1, 12: 1, 13: 1}  # full: 14 and the drop port never got in
    assert contents["denied"] == {6: 1}
    assert (contents["protocols"][17], contents["protocols"][6], contents["protocols"][1]) == (8, 1, 1)
    assert contents["last"] == {0: -200, 1: 1}


@needs_kernel
def test_wide_and_signed_values_atomics_and_negative_indices(widths: Compiled) -> None:
    _, _, config = widths
    bias = config.get("BIAS", -5)
    frames = [ip_frame("udp", 1, 2, ttl=ttl) for ttl in (1, 5, 200, 255, 200)] + [ip_frame("tcp", 1, 2, ttl=100), OTHER[1]]
    contents = run_both(widths, frames)
    assert contents["by_ttl"] == {ttl + bias: n for ttl, n in ((1, 1), (5, 1), (200, 2), (255, 1))}  # full at 4: TTL 100 refused
    # One key (all frames have the same addresses): minus the TTLs, deleted (the frame dropped) once below -300
    # at TTL 255, then 200 and 100 more.
    assert contents["wide_keys"] == {(0x0A000001 << 32) | 0x0A000002: -300}
    assert any(contents["bits"].values())


SHARED = """\
from pyfd import Array, BpfFlowKeys, Config, u8, u64

hits = Array(u64, max_entries=2)
STEP = Config(u8, 3)


def bump(keys: BpfFlowKeys) -> None:
    hits[1] += STEP
"""

USES_SHARED = """\
from pyfd import BPF_OK, BpfFlowKeys, Packet, dissector
import {module} as shared
from {module} import hits as counted


@dissector
def uses_shared(pkt: Packet, keys: BpfFlowKeys) -> int:
    shared.bump(keys)
    counted[0] += shared.STEP
    return BPF_OK
"""


@needs_kernel
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_helpers_maps_and_configs_from_another_module(backend: str, tmp_path: Path) -> None:
    import uuid

    from pyfd.cli import find_dissectors

    module = f"shared_{uuid.uuid4().hex[:8]}"  # a module name no other test imported
    (tmp_path / f"{module}.py").write_text(SHARED)
    (tmp_path / "main.py").write_text(USES_SHARED.format(module=module))
    dissector = find_dissectors(tmp_path / "main.py")["uses_shared"]
    fn = dissector.lower().function
    assert [m.name for m in fn.maps] == ["hits"] and [c.name for c in fn.configs] == ["STEP"]  # one map, one constant: the same objects
    contents = run_both((dissector, dissector.compile(backend=backend), {"STEP": 5}), [bytes(60), bytes(60)])
    assert contents == {"hits": {0: 10, 1: 10}}
