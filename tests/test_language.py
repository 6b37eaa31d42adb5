"""Helpers, loops, tuple results and opaque bytes: the kernel and pyfd's interpreter agree with Python.

Each dissector in tests/dissectors/language.py is compiled on every backend
at -O0 and -O2 and run on random payloads and on fixed frames with known
results.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dissectors import language
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from engines import COMPILED, compiled, load
from kernel import needs_kernel
from test_semantics import assert_agree, make_frame

from pyfd import BPF_DROP, BPF_FLOW_DISSECTOR_CONTINUE, BPF_OK, Dissector
from pyfd.compiler.driver import BACKENDS
from pyfd.runtime import LoadedProgram


@pytest.fixture(
    scope="module",
    params=[
        pytest.param((d, backend, level, *e.values), id=f"{d.name}-{backend}-O{level}-{e.id}", marks=e.marks)
        for d in language.ALL
        for backend in BACKENDS
        for level in (0, 2)
        for e in COMPILED
    ],
)
def loaded(request: pytest.FixtureRequest) -> Iterator[tuple[Dissector, LoadedProgram]]:
    """Each dissector compiled by one backend at one level, in the kernel or in the interpreter."""
    dissector, backend, level, engine = request.param
    with load(compiled(dissector, backend, opt_level=level), engine) as program:
        yield dissector, program


ITEMS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([0, 1, 2, 3, 255]), st.integers(0, 6)).map(lambda t: bytes([t[0], t[1]]) + bytes(t[1])),
        st.binary(min_size=1, max_size=6),
    ),
    max_size=8,
).map(b"".join)
PAYLOADS = st.one_of(ITEMS, st.binary(max_size=40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=PAYLOADS, flags=st.integers(0, 7))
def test_compiled_agrees_with_python(loaded: tuple[Dissector, LoadedProgram], payload: bytes, flags: int) -> None:
    dissector, program = loaded
    assert_agree(dissector, program, make_frame(0x88B5, payload), flags)


def _items(*pairs: tuple[int, int]) -> bytes:
    return b"".join(bytes([kind, length]) + bytes(length) for kind, length in pairs)


@pytest.mark.parametrize(
    ("payload", "retval", "count", "end"),
    [
        (_items((2, 3), (3, 0), (0, 0)), BPF_OK, 2, 14 + 5 + 2),  # two items, then the terminator
        (_items((1, 0), (2, 1), (0, 0)), BPF_OK, 1, 14 + 2 + 3),  # kind 1 is not counted (`continue`)
        (_items((2, 0), (255, 0)), BPF_DROP, 0, 14 + 2),  # an error item: (0, off) is returned
        (_items(*[(2, 0)] * 6), BPF_OK, 106, 14 + 12),  # no terminator within 6 items: the `else`
        (_items((2, 4)), BPF_DROP, 0, 14),  # runs off the packet: pkt.header drops
    ],
)
def test_items_exact(payload: bytes, retval: int, count: int, end: int) -> None:
    result = language.items.run_python(make_frame(0x88B5, payload))
    assert result.retval == retval
    if retval == BPF_OK:
        assert (result.keys.ip_proto, result.keys.thoff) == (count, end)


@pytest.mark.parametrize(("low_bits", "retval"), [(0, BPF_OK), (1, BPF_DROP), (2, BPF_FLOW_DISSECTOR_CONTINUE), (3, BPF_OK)])
def test_calls_exact(low_bits: int, retval: int) -> None:
    raw = bytes(range(1, 17))
    word = 0x12345670 | low_bits
    result = language.calls.run_python(make_frame(0x88B5, raw + word.to_bytes(4, "big")))
    assert result.retval == retval
    assert result.keys.raw[16:32] == raw  # the 16 opaque bytes, copied verbatim
    assert result.keys.flow_label == (word * 3 + (word & 0xFFFF) - 7) & 0xFFFFFFFF  # mix() narrows to u32
    assert result.keys.sport == ((word >> 16) ^ word) & 0xFFFF


@needs_kernel
@pytest.mark.parametrize("backend", BACKENDS)
def test_loops_are_not_unrolled(backend: str) -> None:
    """A loop is compiled once, with a back edge, not once per iteration."""
    one = language.nested_loops.compile(backend=backend)
    assert one.insn_count < 120, one.asm()
    with one.load() as program:
        assert program.verified_insns > one.insn_count  # the verifier walked the iterations
