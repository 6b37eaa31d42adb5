"""samples/full.py against the oracle table (tests/full_frames.py).

Every case runs in the kernel (BPF_PROG_TEST_RUN) and in pyfd's interpreter
(pyfd.vm) on each backend, and as CPython; the return code and the 56 bytes
of keys must agree between all of them, and the compiled program's result
must match the keys written in the table.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engines import COMPILED, load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from full_frames import CASES, FullCase
from test_samples import _sample

from pyfd.compiler.driver import BACKENDS
from pyfd.runtime import FlowKeys, LoadedProgram
import pyfd.vm
from pyfd.testing import frames
from pyfd.vm import VmProgram

FULL = _sample("full")


def _expected_mismatches(keys: FlowKeys, case: FullCase) -> list[str]:
    out = []
    for name, want in case.keys.items():
        got: object = getattr(keys, name)
        if isinstance(want, str):
            got = str(got)
        if got != want:
            out.append(f"{name}: got {got}, want {want}")
    return out


@pytest.fixture(scope="module", params=[pytest.param((b, *e.values), id=f"{b}-{e.id}", marks=e.marks) for b in BACKENDS for e in COMPILED])
def loaded(request: pytest.FixtureRequest) -> Iterator[LoadedProgram | VmProgram]:
    """samples/full.py compiled by one backend, in the kernel or in the interpreter."""
    backend, engine = request.param
    with load(FULL.compile(backend=backend), engine) as program:
        yield program


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_case_in_python(case: FullCase) -> None:
    result = FULL.run_python(case.frame, flags=case.flags)
    assert result.retval == case.retval, case.note
    assert not _expected_mismatches(result.keys, case), case.note


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_case_compiled(loaded: LoadedProgram | VmProgram, case: FullCase) -> None:
    kernel = loaded.run(case.frame, flags=case.flags)
    python = FULL.run_python(case.frame, flags=case.flags)
    assert kernel.retval == python.retval, f"{case.note}: kernel {kernel.retval}, python {python.retval}"
    assert kernel.keys.raw == python.keys.raw, kernel.keys.diff(python.keys)
    assert kernel.retval == case.retval, case.note
    assert not _expected_mismatches(kernel.keys, case), case.note


def test_every_truncation_agrees(loaded: LoadedProgram | VmProgram) -> None:
    """Each table frame cut at every length from 14 bytes: the compiled program and Python agree."""
    checked = 0
    for case in CASES[::3]:
        for end in range(14, len(case.frame)):
            frame = case.frame[:end]
            kernel = loaded.run(frame, flags=case.flags)
            python = FULL.run_python(frame, flags=case.flags)
            assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), f"{case.name}[:{end}]: {kernel.keys.diff(python.keys)}"
            checked += 1
    assert checked > 1000


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(), flags=st.integers(0, 7))
def test_random_frames_agree(loaded: LoadedProgram | VmProgram, frame: bytes, flags: int) -> None:
    """Frames of every protocol from pyfd.testing.frames(), cut anywhere: the compiled program and Python agree."""
    compiled = loaded.run(frame, flags=flags)
    python = FULL.run_python(frame, flags=flags)
    assert (compiled.retval, compiled.keys.raw) == (python.retval, python.keys.raw), f"{frame.hex()}: {compiled.keys.diff(python.keys)}"


def test_receive_path_entry_nhoff_zero() -> None:
    """On the receive path the kernel calls with nhoff 0 and data at the network header."""
    from pyfd.keys import BpfFlowKeys
    from pyfd.packet import Packet

    case = next(c for c in CASES if c.name == "ipv4_tcp")
    keys = BpfFlowKeys(n_proto=0x0800)
    assert FULL(Packet(case.frame[14:]), keys) == 0
    assert (keys.nhoff, keys.thoff, keys.sport, keys.dport) == (0, 20, case.keys["sport"], case.keys["dport"])


@pytest.mark.kernel
@pytest.mark.parametrize("backend", BACKENDS)
def test_verifier_has_room(backend: str) -> None:
    """The verifier walks the whole program well inside its 1M-instruction budget."""
    with load(FULL.compile(backend=backend), "kernel") as loaded:
        assert 0 < loaded.verified_insns < 100_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_instructions_executed_per_frame_kind(backend: str) -> None:
    """A deterministic cost: the interpreter's count of executed instructions, bounded per kind of frame."""
    vm = pyfd.vm.load(FULL.compile(backend=backend))
    table = {c.name: c for c in CASES}
    counts = {}
    for name in ("ipv4_tcp", "ipv6_udp", "vlan_ipv4_tcp", "gre_ipv4_tcp", "encap_ipip_tcp"):
        vm.run(table[name].frame, flags=table[name].flags)
        counts[name] = vm.insns_executed
    assert all(0 < n < 300 for n in counts.values()), counts
    assert counts["ipv4_tcp"] < counts["vlan_ipv4_tcp"] < counts["gre_ipv4_tcp"], counts  # a header more costs more
    vm.run(table["ipv4_tcp"].frame)
    assert vm.insns_executed == counts["ipv4_tcp"]  # the same frame, the same count
