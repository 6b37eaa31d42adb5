"""samples/full.py against the oracle table (tests/full_frames.py).

Every case runs in the kernel (BPF_PROG_TEST_RUN) on each backend and as
CPython; the return code and the 56 bytes of keys must agree between all of
them, and the kernel's result must match the keys written in the table.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from full_frames import CASES, FullCase
from kernel import skip_unless_kernel
from test_samples import _sample

from pyfd.compiler.driver import BACKENDS
from pyfd.runtime import FlowKeys, LoadedProgram

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


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest) -> Iterator[LoadedProgram]:
    skip_unless_kernel()
    with FULL.compile(backend=request.param).load() as program:
        yield program


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_case_in_python(case: FullCase) -> None:
    result = FULL.run_python(case.frame, flags=case.flags)
    assert result.retval == case.retval, case.note
    assert not _expected_mismatches(result.keys, case), case.note


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_case_in_kernel(loaded: LoadedProgram, case: FullCase) -> None:
    kernel = loaded.run(case.frame, flags=case.flags)
    python = FULL.run_python(case.frame, flags=case.flags)
    assert kernel.retval == python.retval, f"{case.note}: kernel {kernel.retval}, python {python.retval}"
    assert kernel.keys.raw == python.keys.raw, kernel.keys.diff(python.keys)
    assert kernel.retval == case.retval, case.note
    assert not _expected_mismatches(kernel.keys, case), case.note


def test_every_truncation_agrees(loaded: LoadedProgram) -> None:
    """Each table frame cut at every length from 14 bytes: kernel and Python agree."""
    checked = 0
    for case in CASES[::3]:
        for end in range(14, len(case.frame)):
            frame = case.frame[:end]
            kernel = loaded.run(frame, flags=case.flags)
            python = FULL.run_python(frame, flags=case.flags)
            assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), f"{case.name}[:{end}]: {kernel.keys.diff(python.keys)}"
            checked += 1
    assert checked > 1000


def test_receive_path_entry_nhoff_zero() -> None:
    """On the receive path the kernel calls with nhoff 0 and data at the network header."""
    from pyfd.keys import BpfFlowKeys
    from pyfd.packet import Packet

    case = next(c for c in CASES if c.name == "ipv4_tcp")
    keys = BpfFlowKeys(n_proto=0x0800)
    assert FULL(Packet(case.frame[14:]), keys) == 0
    assert (keys.nhoff, keys.thoff, keys.sport, keys.dport) == (0, 20, case.keys["sport"], case.keys["dport"])


def test_verifier_has_room(loaded: LoadedProgram) -> None:
    """The verifier walks the whole program well inside its 1M-instruction budget."""
    assert 0 < loaded.verified_insns < 100_000
