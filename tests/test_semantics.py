"""The same dissector, run by the kernel and by CPython, gives the same result.

The dissectors in `dissectors/semantics.py` compute with every operator,
width and cast of the language and leave their results in the flow keys (a
dissector's only output) and in the return code. Hypothesis generates frames
(random bytes, and words built from edge values such as 0x80000000 and
2**63) and input flags; for each one the kernel's return value and 56 bytes of
keys must equal CPython's. Each program is compiled and loaded once per
module, at -O0 and at -O2. Tests with a fixed frame pin the exact values of
cases that once disagreed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from dissectors import semantics
from kernel import needs_kernel, requires_kernel, skip_unless_kernel  # noqa: F401  (pytest fixture)
from pyfd import BPF_DROP, BPF_OK, Dissector
from pyfd.runtime import LoadedProgram

SRC_MAC, DST_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
EXAMPLES = 300

# 64-bit values at the edges of every width and signedness.
EDGES = [
    0, 1, 2, 3, 7, 63, 64, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
    0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0x8000000000000001, 0xFFFFFFFFFFFFFFFE,
    0xFFFFFFFFFFFFFFFF,
]


def make_frame(ethertype: int, payload: bytes) -> bytes:
    """An Ethernet frame (explicit MACs: scapy resolves no address) carrying `payload`."""
    return bytes(Ether(src=SRC_MAC, dst=DST_MAC, type=ethertype) / Raw(load=payload))


def _uint(size: int) -> st.SearchStrategy[bytes]:
    """`size` bytes holding an integer: any value, or one at an edge of some width."""
    top = (1 << (8 * size)) - 1
    value = st.one_of(st.integers(0, top), st.sampled_from([v & top for v in EDGES]), st.integers(top - 70, top))
    return value.map(lambda v: v.to_bytes(size, "big"))


def _words() -> st.SearchStrategy[bytes]:
    return st.lists(_uint(8), min_size=4, max_size=6).map(b"".join)


# The fields of `semantics.Words` (u8 u8 u16 u32 u64 u64 u32 u16 u8 u8), each
# drawn on its own so that edge values and shift counts of 48..70 are common.
_FIELDS = st.tuples(*(_uint(n) for n in (1, 1, 2, 4, 8, 8, 4, 2, 1, 1))).map(b"".join)

# Payloads: random bytes of any length (short ones end in BPF_DROP), header
# fields with trailing bytes, and edge-value words shifted to straddle fields.
PAYLOADS = st.one_of(
    st.binary(max_size=48),
    st.tuples(_FIELDS, st.binary(max_size=16)).map(b"".join),
    st.tuples(_words(), st.integers(0, 7)).map(lambda t: t[0][t[1]:]),
)
FRAMES = st.builds(make_frame, st.integers(0, 0xFFFF), PAYLOADS)
FLAGS = st.integers(0, 7)


def assert_agree(dissector: Dissector, program: LoadedProgram, frame: bytes, flags: int) -> None:
    """The kernel and CPython return the same code and leave the same 56 bytes of keys."""
    kernel = program.run(frame, flags=flags)
    python = dissector.run_python(frame, flags=flags)
    assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), (
        f"{dissector.name} disagrees on frame {frame.hex()} flags={flags}: "
        f"retval kernel={kernel.retval} python={python.retval}; keys kernel != python: {kernel.keys.diff(python.keys)}"
    )


@pytest.fixture(
    scope="module",
    params=[(d, level) for d in semantics.ALL for level in (0, 2)],
    ids=lambda p: f"{p[0].name}-O{p[1]}",
)
def loaded(request: pytest.FixtureRequest) -> Iterator[tuple[Dissector, LoadedProgram]]:
    """Each dissector compiled at one level and loaded once for the module."""
    skip_unless_kernel()
    dissector, level = request.param
    with dissector.compile(opt_level=level).load() as program:
        yield dissector, program


@needs_kernel
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=FRAMES, flags=FLAGS)
def test_kernel_agrees_with_python(loaded: tuple[Dissector, LoadedProgram], frame: bytes, flags: int) -> None:
    dissector, program = loaded
    assert_agree(dissector, program, frame, flags)


# -- fixed frames: exact values -----------------------------------------------


def words_frame(*, a: int = 0, b: int = 0, c: int = 0, d: int = 0, e: int = 0, f: int = 0, g: int = 0, h: int = 0, s1: int = 0, s2: int = 0) -> bytes:
    """A frame whose payload is one `Words` header with these field values."""
    payload = (
        a.to_bytes(1, "big") + b.to_bytes(1, "big") + c.to_bytes(2, "big") + d.to_bytes(4, "big") + e.to_bytes(8, "big")
        + f.to_bytes(8, "big") + g.to_bytes(4, "big") + h.to_bytes(2, "big") + s1.to_bytes(1, "big") + s2.to_bytes(1, "big")
    )
    return make_frame(0x88B5, payload)


# Frames whose exact results the tests below check in CPython; the kernel must agree on each.
FIXED: dict[str, tuple[Dissector, bytes]] = {
    "signed-value-unsigned-shift": (semantics.shifts, words_frame(e=0xF000000000000001, d=0x80000000, s1=60, s2=7)),
    "constant-local-shift-count": (semantics.shifts, words_frame(e=0x0123456789ABCDEF)),
    "literal-comparisons": (semantics.literals, make_frame(0x0800, bytes(46))),
    "division-by-zero": (semantics.divide, words_frame(a=0, b=0, c=1234, e=0x1122334455667788)),
    "typed-locals-wrap": (semantics.augmented, words_frame(a=200, b=3, c=0xFFF0, d=0x80000001, e=(1 << 64) - 1, g=1, h=0x20, s1=33, s2=5)),
}


@needs_kernel
@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("case", sorted(FIXED))
def test_fixed_frames_agree(case: str, level: int) -> None:
    dissector, frame = FIXED[case]
    with dissector.compile(opt_level=level).load() as program:
        assert_agree(dissector, program, frame, 0)


def test_unsigned_shift_of_a_signed_value_is_logical() -> None:
    # `i64(e) >> n` with n unsigned is a u64 shift (RSH): the sign bit is not
    # copied. CPython once shifted the negative int arithmetically.
    frame = FIXED["signed-value-unsigned-shift"][1]
    python = semantics.shifts.run_python(frame)
    assert python.keys.n_proto == 0xF  # (0xF000000000000001 >> 60) & 0xFFFF
    assert python.keys.flags == 0xFFFFFFFF & (0xF000000000000001 - (1 << 64) >> 60 >> 16)  # i64 >> i64: arithmetic
    assert python.keys.ip_proto == 0xFF & ((0x80000000 - (1 << 32)) >> 7)  # i32 >> i32: arithmetic


def test_shift_count_from_a_constant_local_is_masked() -> None:
    # `seventy = 70; e >> seventy`: constant propagation makes the count an
    # immediate, which the verifier refuses above 63 ("invalid shift 70");
    # BPF and the IR mask it to 70 & 63 = 6.
    e = 0x0123456789ABCDEF
    frame = FIXED["constant-local-shift-count"][1]
    python = semantics.shifts.run_python(frame)
    assert python.keys.sport == (e >> 6) & 0xFFFF
    assert python.keys.dport == ((e << 6) & ((1 << 64) - 1)) >> 48


def test_literal_comparisons_are_exact() -> None:
    # Literals have Python's unbounded semantics; the compiler once compared
    # them as 64-bit patterns, so `0xFFFFFFFFFFFFFFFF > -1` was false.
    frame = FIXED["literal-comparisons"][1]
    python = semantics.literals.run_python(frame)
    assert (python.keys.is_frag, python.keys.is_encap, python.keys.ip_proto, python.keys.is_first_frag) == (1, 1, 1, 1)
    assert python.retval == BPF_OK


def test_division_by_zero_from_the_packet() -> None:
    # BPF: x / 0 == 0 and x % 0 == x; the divisor comes from the packet, so
    # neither the compiler nor the verifier sees it.
    e = 0x1122334455667788
    frame = FIXED["division-by-zero"][1]
    python = semantics.divide.run_python(frame)
    keys = python.keys
    assert int(keys.ipv4_src) == 0  # e // 0
    assert int(keys.ipv4_dst) == e & 0xFFFFFFFF  # e % 0, stored into 32 bits
    assert int(keys.flags) == e & 0xFFFFFFFF  # e % b with b == 0
    assert (keys.sport, keys.dport) == (0, 1234)  # c // a, c % a with a == 0
    assert (keys.is_frag, keys.ip_proto) == (0, 0)  # b // 0, b % 0 with b == 0
    assert python.retval == BPF_OK  # e // b == 0


def test_typed_locals_wrap() -> None:
    frame = FIXED["typed-locals-wrap"][1]
    python = semantics.augmented.run_python(frame)
    x = (0xFFF0 + 0x20 * 7) & 0xFFFF
    x = (x * 3) & 0xFFFF
    x = (x - 60000) & 0xFFFF
    x ^= 200
    assert python.keys.sport == x
    z = (200 * 13) & 0xFF
    z = (z // 3) % 5 | 0x80
    assert python.keys.ip_proto == z


@pytest.mark.parametrize("dissector", semantics.ALL, ids=lambda d: d.name)
def test_short_frame_drops(dissector: Dissector) -> None:
    result = dissector.run_python(make_frame(0x0800, b""))
    expected = BPF_OK if dissector is semantics.literals else BPF_DROP  # literals reads no header
    assert result.retval == expected
