"""The same dissector, run by the kernel, by pyfd's interpreter and by CPython, gives the same result.

The dissectors in `dissectors/semantics.py` compute with every operator,
width and cast of the language and leave their results in the flow keys (a
dissector's only output) and in the return code. Hypothesis generates frames
(random bytes, and words built from edge values such as 0x80000000 and
2**63) and input flags; for each one the kernel's return value and 56 bytes of
keys must equal CPython's, on every backend (native and llvm), and so must
the interpreter's (tests/engines.py: the kernel legs skip without
privileges, the interpreter's run everywhere). Each program is compiled and
loaded once per module, at -O0 and at -O2, by each backend.
Tests with a fixed frame pin the exact values of cases that once disagreed.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dissectors import semantics
from engines import COMPILED
from engines import load_on_every_backend as _load_on
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel import requires_kernel  # noqa: F401  (pytest fixture)
from pyfd.runtime import LoadedProgram
from pyfd.vm import VmProgram
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from pyfd import BPF_DROP, BPF_OK, Dissector
from pyfd.types import wrap

# A generated `~(a < b)` must run in Python on the integer the kernel sees:
# `~` of a bool is deprecated from 3.12, and here an error.
pytestmark = pytest.mark.filterwarnings("error:Bitwise inversion:DeprecationWarning")

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


def assert_agree(dissector: Dissector, program: LoadedProgram | VmProgram, frame: bytes, flags: int) -> None:
    """The compiled program (kernel or interpreter) and CPython return the same code and leave the same 56 bytes of keys."""
    kernel = program.run(frame, flags=flags)
    python = dissector.run_python(frame, flags=flags)
    where = "vm" if isinstance(program, VmProgram) else "kernel"
    assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), (
        f"{dissector.name} disagrees on frame {frame.hex()} flags={flags}: "
        f"retval {where}={kernel.retval} python={python.retval}; keys {where} != python: {kernel.keys.diff(python.keys)}"
    )


Programs = dict[str, LoadedProgram]  # backend -> the program it compiled, loaded (in the kernel or the interpreter)


@contextlib.contextmanager
def load_on_every_backend(dissector: Dissector, level: int, engine: str = "kernel") -> Iterator[Programs]:
    """The dissector compiled at `level` by every backend, each loaded on `engine` (kernel or vm)."""
    with _load_on(dissector, engine, opt_level=level) as programs:
        yield programs


def assert_all_agree(dissector: Dissector, programs: Programs, frame: bytes, flags: int, *, label: str = "") -> None:
    """Every backend's program and CPython return the same code and leave the same 56 bytes of keys."""
    python = dissector.run_python(frame, flags=flags)
    for backend, program in programs.items():
        kernel = program.run(frame, flags=flags)
        where = "vm" if isinstance(program, VmProgram) else "kernel"
        assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), (
            f"{dissector.name} ({where}, {backend}{label}) disagrees on frame {frame.hex()} flags={flags}: "
            f"retval {where}={kernel.retval} python={python.retval}; keys {where} != python: {kernel.keys.diff(python.keys)}"
        )


@pytest.fixture(
    scope="module",
    params=[pytest.param((d, level, *e.values), id=f"{d.name}-O{level}-{e.id}", marks=e.marks) for d in semantics.ALL for level in (0, 2) for e in COMPILED],
)
def loaded(request: pytest.FixtureRequest) -> Iterator[tuple[Dissector, Programs]]:
    """Each dissector compiled at one level by every backend and loaded once for the module, in the kernel or the interpreter."""
    dissector, level, engine = request.param
    with load_on_every_backend(dissector, level, engine) as programs:
        yield dissector, programs


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=FRAMES, flags=FLAGS)
def test_compiled_agrees_with_python(loaded: tuple[Dissector, Programs], frame: bytes, flags: int) -> None:
    dissector, programs = loaded
    assert_all_agree(dissector, programs, frame, flags)


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


@pytest.mark.parametrize("engine", COMPILED)
@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("case", sorted(FIXED))
def test_fixed_frames_agree(case: str, level: int, engine: str) -> None:
    dissector, frame = FIXED[case]
    with load_on_every_backend(dissector, level, engine) as programs:
        assert_all_agree(dissector, programs, frame, 0)


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


# -- random programs ---------------------------------------------------------------
#
# Beyond the hand-written dissectors: programs generated at random from the
# whole language (expressions of every operator over packet fields, keys and
# locals; typed, inferred and augmented assignments; casts; `if`/`else`;
# conditions with `and`/`or`/`not`), each written to a file, compiled at -O0
# and -O2 by every backend, loaded, and run on random frames against CPython
# (each backend's return code and keys must equal CPython's). A seed names each
# program, so a failure is reproduced by its id.

_WORDS_FIELDS = ["a", "b", "c", "d", "e", "f", "g", "h", "s1", "s2"]
_PACKED_FIELDS = ["top", "mid", "hi", "md", "lo", "flag", "rest", "p", "q"]
_CASTS = ["u8", "u16", "u32", "u64", "i32", "i64"]
_KEY_STORES = [
    "sport", "dport", "ipv4_src", "ipv4_dst", "flow_label", "thoff", "nhoff", "addr_proto", "is_frag",
    "is_first_frag", "is_encap", "ip_proto", "n_proto", "flags",
]
_KEY_READS = ["flags", "nhoff", "n_proto", "sport", "thoff", "ipv4_src", "ip_proto"]
_LITERALS = [
    0, 1, 2, 3, 5, 7, 8, 13, 31, 32, 63, 64, 100, 255, 256, 0x7FFF, 0x8000, 0xFFFF,
    0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, (1 << 63) - 1, 1 << 63, (1 << 64) - 1,
]
_NEGATIVE = [-1, -2, -7, -128, -0x8000, -0x80000000, -(1 << 63)]


class _Expr:
    """Generated expression text, whether it is signed, and its value if it is a literal."""

    def __init__(self, text: str, signed: bool, value: int | None = None) -> None:
        self.text, self.signed, self.value = text, signed, value

    @property
    def literal(self) -> bool:
        return self.value is not None


class ProgramGenerator:
    """Writes one random, well-typed dissector from a seed."""

    def __init__(self, seed: int) -> None:
        import random

        self.rng = random.Random(seed)
        self.local_signed: dict[str, bool] = {}  # every local ever defined, and its signedness
        self.lines: list[str] = []
        self.counter = 0
        self.views = ["w", "v"]  # header views bound so far (all at the top level)

    def literal(self, *, allow_negative: bool = True, signed_range: bool = False) -> _Expr:
        pool = _LITERALS + (_NEGATIVE if allow_negative else [])
        if signed_range:  # a signed comparison takes literals of -2**63 .. 2**63 - 1
            pool = [v for v in pool if v < 1 << 63]
        value = self.rng.choice(pool)
        return _Expr(str(value) if value < 256 else hex(value) if value >= 0 else f"-{hex(-value)}", value < 0, value)

    def leaf(self, assigned: set[str]) -> _Expr:
        r = self.rng.random()
        if r < 0.07:
            return _Expr(f"p.{self.rng.choice(_PACKED_FIELDS)}", False)
        if r < 0.45:
            view = self.rng.choice(["w", *self.views])
            return _Expr(f"{view}.{self.rng.choice(_WORDS_FIELDS)}", False)
        if r < 0.6:
            return _Expr(f"keys.{self.rng.choice(_KEY_READS)}", False)
        if r < 0.85 and assigned:
            name = self.rng.choice(sorted(assigned))
            return _Expr(name, self.local_signed[name])
        return self.literal()

    def value(self, assigned: set[str], depth: int) -> _Expr:
        """Any integer expression that is not a literal."""
        for _ in range(20):
            e = self.expr(assigned, depth)
            if not e.literal:
                return e
        return _Expr(f"w.{self.rng.choice(_WORDS_FIELDS)}", False)

    def expr(self, assigned: set[str], depth: int) -> _Expr:
        if depth <= 0 or self.rng.random() < 0.25:
            return self.leaf(assigned)
        kind = self.rng.random()
        if kind < 0.55:
            return self.binary(assigned, depth)
        if kind < 0.7:
            inner = self.expr(assigned, depth - 1)
            cast = self.rng.choice(_CASTS)
            bits, signed = int(cast[1:]), cast.startswith("i")
            value = None if inner.value is None else wrap(inner.value, bits, signed)
            return _Expr(f"{cast}({inner.text})", signed, value)
        if kind < 0.8:
            inner = self.value(assigned, depth - 1)
            return _Expr(f"{self.rng.choice(['-', '~'])}({inner.text})", inner.signed)
        if kind < 0.9:
            return _Expr(f"({self.condition(assigned, depth - 1)})", False)
        return self.leaf(assigned)

    def binary(self, assigned: set[str], depth: int) -> _Expr:
        op = self.rng.choice(["+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>"])
        lhs = self.value(assigned, depth - 1)
        if op in ("//", "%"):
            # BPF divides unsigned; a signed `//` is refused, so make one side unsigned.
            rhs = self.expr(assigned, depth - 1)
            while rhs.value is not None and rhs.value <= 0:
                # A literal divisor is positive: the division is unsigned, and
                # a constant zero divisor is refused (x // 0 is 0 by definition).
                rhs = self.literal(allow_negative=False)
            left = f"u64({lhs.text})"
            return _Expr(f"({left} {op} {rhs.text})", False)
        if op in ("<<", ">>"):
            if self.rng.random() < 0.4:
                count = self.rng.randrange(64)
                rhs = _Expr(str(count), False, count)
            else:
                rhs = self.value(assigned, depth - 1)
            return _Expr(f"({lhs.text} {op} {rhs.text})", lhs.signed and (rhs.signed or rhs.literal))
        rhs = self.expr(assigned, depth - 1)
        signed = lhs.signed and (rhs.signed or rhs.literal)
        return _Expr(f"({lhs.text} {op} {rhs.text})", signed)

    def comparison(self, assigned: set[str], depth: int) -> str:
        op = self.rng.choice(["==", "!=", "<", "<=", ">", ">="])
        domain = self.rng.choice(["u64", "i64", "i32", "u32", "u16"])
        lhs = self.value(assigned, depth)
        if self.rng.random() < 0.4:
            rhs = self.literal(allow_negative=domain.startswith("i"), signed_range=domain.startswith("i")).text
        else:
            rhs = f"{domain}({self.value(assigned, depth).text})"
        return f"{domain}({lhs.text}) {op} {rhs}"

    def condition(self, assigned: set[str], depth: int) -> str:
        r = self.rng.random()
        if depth > 0 and r < 0.2:
            joiner = self.rng.choice([" and ", " or "])
            return joiner.join(f"({self.condition(assigned, depth - 1)})" for _ in range(self.rng.randint(2, 3)))
        if depth > 0 and r < 0.3:
            return f"not ({self.condition(assigned, depth - 1)})"
        if r < 0.4:
            return self.value(assigned, depth).text  # truthiness
        return self.comparison(assigned, depth)

    def fresh(self) -> str:
        self.counter += 1
        return f"x{self.counter}"

    def statements(self, assigned: set[str], indent: int, count: int, depth: int) -> set[str]:
        """Emit `count` statements; return the locals assigned on every path through them."""
        pad = "    " * indent
        for _ in range(count):
            r = self.rng.random()
            if indent == 1 and r < 0.05:  # another header, at an offset computed at run time
                self.counter += 1
                name = f"h{self.counter}"
                offset = self.rng.choice([
                    "keys.thoff",  # whatever the program stored there: the clamp and the drop
                    f"keys.nhoff + ({self.value(assigned, 2).text} & 31)",
                    f"u16({self.value(assigned, 2).text})",
                    self.value(assigned, 2).text,
                ])
                self.lines.append(f"{pad}{name} = pkt.header(Words, {offset})")
                self.views.append(name)
            elif r < 0.2:  # a new local, typed or inferred
                name = self.fresh()
                value = self.expr(assigned, 3)
                if self.rng.random() < 0.5:
                    cast = self.rng.choice(_CASTS)
                    bits, signed = int(cast[1:]), cast.startswith("i")
                    if value.value is not None and wrap(value.value, bits, signed) != value.value:
                        # A literal must fit the local it narrows into; a cast wraps it on purpose.
                        value = _Expr(f"{cast}({value.text})", signed, wrap(value.value, bits, signed))
                    self.lines.append(f"{pad}{name}: {cast} = {value.text}")
                    self.local_signed[name] = cast.startswith("i")
                else:
                    if value.literal:
                        value = _Expr(f"({value.text} + w.a)", False)
                    self.lines.append(f"{pad}{name} = {value.text}")
                    self.local_signed[name] = value.signed
                assigned = assigned | {name}
            elif r < 0.27 and assigned:  # a local written again: its old value may still be live
                name = self.rng.choice(sorted(assigned))
                self.lines.append(f"{pad}{name} = {self.value(assigned, 3).text}")
            elif r < 0.35 and assigned:  # augmented assignment of a local
                name = self.rng.choice(sorted(assigned))
                op = self.rng.choice(["+=", "-=", "*=", "&=", "|=", "^=", "<<=", ">>=", "//=", "%="])
                rhs = self.value(assigned, 2)
                if op in ("//=", "%=") and self.local_signed[name]:
                    rhs = _Expr(f"u64({rhs.text})", False)  # keep the division unsigned
                self.lines.append(f"{pad}{name} {op} {rhs.text}")
            elif r < 0.55:  # a keys field
                field = self.rng.choice(_KEY_STORES)
                self.lines.append(f"{pad}keys.{field} = {self.value(assigned, 3).text}")
            elif r < 0.62:
                field = self.rng.choice(_KEY_STORES)
                op = self.rng.choice(["+=", "-=", "^=", "|=", "*="])
                self.lines.append(f"{pad}keys.{field} {op} {self.value(assigned, 2).text}")
            elif r < 0.8 and indent < 3:  # if / else
                self.lines.append(f"{pad}if {self.condition(assigned, 2)}:")
                then: set[str] | None = self.statements(assigned, indent + 1, self.rng.randint(1, 3), depth)
                if self.rng.random() < 0.15:
                    self.lines.append(f"{pad}    return {self.rng.choice(['BPF_OK', 'BPF_DROP', 'BPF_FLOW_DISSECTOR_CONTINUE'])}")
                    then = None
                if self.rng.random() < 0.6:
                    self.lines.append(f"{pad}else:")
                    other = self.statements(assigned, indent + 1, self.rng.randint(1, 3), depth)
                else:
                    other = assigned
                assigned = other if then is None else then & other
            else:  # an inferred local: signed exactly when its value is
                name = self.fresh()
                value = self.value(assigned, 3)
                self.lines.append(f"{pad}{name} = {value.text}")
                self.local_signed[name] = value.signed
                assigned = assigned | {name}
        return assigned

    def source(self, name: str) -> str:
        self.lines = [
            "    w = pkt.header(Words, keys.nhoff)",
            "    v = pkt.header(Words, keys.nhoff + (w.a & 15))",
            "    p = pkt.header(Packed, keys.nhoff + 3)",
        ]
        assigned = self.statements(set(), 1, self.rng.randint(6, 14), 3)
        self.lines.append(f"    if {self.condition(assigned, 2)}:")
        self.lines.append("        return BPF_OK")
        self.lines.append(f"    if {self.condition(assigned, 2)}:")
        self.lines.append("        return BPF_FLOW_DISSECTOR_CONTINUE")
        self.lines.append("    return BPF_DROP")
        head = (
            "from pyfd import BPF_DROP, BPF_FLOW_DISSECTOR_CONTINUE, BPF_OK, BpfFlowKeys, Packet, dissector, i32, i64, u8, u16, u32, u64\n"
            "from dissectors.semantics import Packed, Words\n\n\n"
            "@dissector\n"
            f"def {name}(pkt: Packet, keys: BpfFlowKeys) -> int:\n"
        )
        return head + "\n".join(self.lines) + "\n"


# More with PYFD_RANDOM_PROGRAMS=5000 (seeds 0..4999 all agree).
RANDOM_PROGRAMS = int(os.environ.get("PYFD_RANDOM_PROGRAMS", "120"))
RANDOM_FRAMES = 40


def _random_frames(seed: int) -> list[tuple[bytes, int]]:
    import random

    rng = random.Random(seed)
    frames = []
    for i in range(RANDOM_FRAMES):
        if i % 4 == 0:
            payload = rng.randbytes(rng.randrange(0, 64))  # any length, short ones drop
        else:
            fields = [rng.choice([rng.getrandbits(8 * n), rng.choice(EDGES) & ((1 << 8 * n) - 1)]).to_bytes(n, "big") for n in (1, 1, 2, 4, 8, 8, 4, 2, 1, 1)]
            payload = b"".join(fields) + rng.randbytes(rng.randrange(0, 32))
        frames.append((make_frame(rng.getrandbits(16), payload), rng.randrange(8)))
    return frames


@pytest.fixture(scope="module")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated")


@functools.cache
def generated_dissector(directory: Path, seed: int) -> Dissector:
    """The random program of `seed`, written to a file and imported (once: every leg compiles the same one)."""
    from pyfd.cli import find_dissectors

    name = f"random_{seed}"
    path = directory / f"{name}.py"
    path.write_text(ProgramGenerator(seed).source(name))
    return find_dissectors(path)[name]


@pytest.mark.parametrize("seed", range(RANDOM_PROGRAMS))
def test_random_program_runs_in_python(generated_dir: Path, seed: int) -> None:
    dissector = generated_dissector(generated_dir, seed)
    for level in (0, 2):
        dissector.compile(opt_level=level)  # well-typed by construction: compiles
    for frame, flags in _random_frames(seed):
        assert dissector.run_python(frame, flags=flags).retval in (0, 2, 129)


@pytest.mark.parametrize("engine", COMPILED)
@pytest.mark.parametrize("seed", range(RANDOM_PROGRAMS))
def test_random_program_agrees(generated_dir: Path, seed: int, engine: str) -> None:
    dissector = generated_dissector(generated_dir, seed)
    source = (generated_dir / f"random_{seed}.py").read_text()
    for level in (0, 2):
        with load_on_every_backend(dissector, level, engine) as programs:
            for frame, flags in _random_frames(seed):
                try:
                    assert_all_agree(dissector, programs, frame, flags, label=f" -O{level}")
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{source}") from None
