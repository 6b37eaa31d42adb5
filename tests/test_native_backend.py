"""The native backend: its code passes the real verifier and computes what Python computes.

Register pressure (spills and rematerialisation), bounds checks on every
packet read (every truncation of a valid frame), immediates of every shape,
and the two optimisation levels, which must both load, agree with each other
and with CPython, and where -O2 is never larger than -O0. Every test that
runs programs runs the llvm backend's too, on the same frames: both must
agree with CPython, in the kernel and in pyfd's interpreter (tests/engines.py).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dissectors import backend, semantics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from engines import COMPILED, compiled, load
from kernel import requires_kernel  # noqa: F401  (pytest fixture)
from pyfd.compiler.driver import BACKENDS
from pyfd.isa import Class, decode
from pyfd.runtime import LoadedProgram
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from pyfd import Dissector
from pyfd.cli import find_dissectors

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SRC_MAC, DST_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


def _samples() -> list[Dissector]:
    found: list[Dissector] = []
    for path in sorted(SAMPLES.glob("*.py")):
        found.extend(find_dissectors(path).values())
    return found


SAMPLE_DISSECTORS = _samples()
IPV4_TCP = next(d for d in SAMPLE_DISSECTORS if d.name == "ipv4_tcp")
EVERY = [*SAMPLE_DISSECTORS, *semantics.ALL, *backend.ALL]


def ether(payload: object = b"", ethertype: int | None = None) -> bytes:
    """An Ethernet frame with explicit MACs (scapy then resolves nothing)."""
    eth = Ether(src=SRC_MAC, dst=DST_MAC) if ethertype is None else Ether(src=SRC_MAC, dst=DST_MAC, type=ethertype)
    return bytes(eth / payload)


def assert_agree(dissector: Dissector, program: LoadedProgram, frame: bytes, flags: int = 0, *, label: str = "") -> None:
    """The kernel and CPython return the same code and leave the same 56 bytes of keys."""
    kernel = program.run(frame, flags=flags)
    python = dissector.run_python(frame, flags=flags)
    assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), (
        f"{dissector.name}{label} disagrees on {len(frame)}-byte frame {frame.hex()} flags={flags}: "
        f"retval kernel={kernel.retval} python={python.retval}; {kernel.keys.diff(python.keys)}"
    )


class Programs:
    """Compiled and loaded programs (in the kernel or in the interpreter), each once per module, closed at the end."""

    def __init__(self, engine: str = "kernel") -> None:
        self.engine = engine
        self._loaded: dict[tuple[str, int, str], Any] = {}  # a LoadedProgram or an interpreter program

    def get(self, dissector: Dissector, level: int, backend: str = "native") -> LoadedProgram:
        key = (dissector.name, level, backend)
        if key not in self._loaded:
            self._loaded[key] = load(compiled(dissector, backend, opt_level=level), self.engine)
        loaded: LoadedProgram = self._loaded[key]
        return loaded

    def each_backend(self, dissector: Dissector, level: int) -> dict[str, LoadedProgram]:
        """The dissector at `level`, compiled by every backend and loaded."""
        return {backend: self.get(dissector, level, backend) for backend in BACKENDS}

    def close(self) -> None:
        for program in self._loaded.values():
            program.close()


@pytest.fixture(scope="module", params=COMPILED)
def programs(request: pytest.FixtureRequest) -> Iterator[Programs]:
    """The programs of one engine: the kernel's (a `kernel` test) or the interpreter's."""
    cache = Programs(request.param)
    try:
        yield cache
    finally:
        cache.close()


# -- register pressure ----------------------------------------------------------


def _stack_accesses(asm: str) -> int:
    """Loads and stores through r10, except those of the context slot.

    A program that can copy headers out of page fragments stores its
    context pointer at entry and reloads it for each bpf_skb_load_bytes
    call; that slot is not a spill.
    """
    lines = asm.splitlines()
    first = next((line for line in lines if line.strip().startswith("0:")), "")
    ctx_slot = first.split("= r1")[0].split(": ", 1)[1].strip() if first.rstrip().endswith("= r1") and "(r10 -" in first else None
    count = asm.count("(r10 -")
    if ctx_slot is not None:
        count -= sum(1 for line in lines if ctx_slot in line)
    return count


@pytest.mark.parametrize("level", [0, 2])
def test_fourteen_live_values_spill(level: int) -> None:
    asm = backend.pressure.compile(opt_level=level).asm()
    assert _stack_accesses(asm) > 0, asm


def test_values_read_from_the_packet_are_read_again_not_spilled() -> None:
    # A constant-offset packet read gives the same value wherever it is
    # repeated, so the allocator re-reads it instead of using the stack.
    asm = backend.packet_pressure.compile(opt_level=2).asm()
    assert _stack_accesses(asm) <= 4, asm
    assert _stack_accesses(backend.packet_pressure.compile(opt_level=0).asm()) > _stack_accesses(asm)
    linear = backend.packet_pressure.compile(opt_level=2, paged=False).asm()
    assert "call 26" in asm and "call 26" not in linear
    assert _stack_accesses(linear) == _stack_accesses(asm), linear  # the page-fragment path costs no spill


@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("dissector", [backend.conditions, semantics.compares], ids=lambda d: d.name)
def test_conditions_as_values_do_not_stretch_live_ranges(dissector: Dissector, level: int) -> None:
    # Each `a < b` used as a value becomes a diamond; laid out depth first,
    # its second arm landed after everything else and every value lived to
    # the end of the program: 250 stack accesses for a dozen live values.
    asm = dissector.compile(opt_level=level).asm()
    assert _stack_accesses(asm) <= 10, asm


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(min_size=0, max_size=64), flags=st.integers(0, 7), level=st.sampled_from([0, 2]))
def test_spilled_programs_agree(programs: Programs, payload: bytes, flags: int, level: int) -> None:
    frame = ether(Raw(load=payload), ethertype=0x88B5)
    for dissector in backend.ALL:
        for name, program in programs.each_backend(dissector, level).items():
            assert_agree(dissector, program, frame, flags, label=f" ({name} -O{level})")


# -- every packet read is bounds-checked ------------------------------------------


@pytest.mark.parametrize("level", [0, 2])
def test_offsets_the_verifier_cannot_bound_are_clamped(programs: Programs, level: int) -> None:
    # `w.a // (w.b | 1)` is at most 255, but the verifier learns no bound from
    # a division, a modulo or a byte swap: without the clamp, `data + offset`
    # is refused ("math between pkt pointer and register with unbounded min value").
    frame = ether(Raw(load=bytes([40, 0, 0, 0, 0, 0, 0, 7]) + bytes(range(1, 100))), ethertype=0x0800)
    for name, program in programs.each_backend(backend.computed_offsets, level).items():
        assert program.run(frame).retval == 0, name
        assert_agree(backend.computed_offsets, program, frame, label=f" ({name})")



def _ipv4_frames() -> dict[str, bytes]:
    ip: dict[str, Any] = {"src": "192.0.2.1", "dst": "198.51.100.7"}
    return {
        "tcp": ether(IP(**ip) / TCP(sport=40000, dport=443, flags="S") / Raw(load=b"hello")),
        "udp": ether(IP(**ip) / UDP(sport=5353, dport=53) / Raw(load=b"\x00" * 12)),
        "tcp-options": ether(IP(**ip, options=b"\x01\x01\x01\x00" * 2) / TCP(sport=1, dport=2)),
        "icmp": ether(IP(**ip) / ICMP()),
        "fragment": ether(IP(**ip, flags="MF", frag=0) / UDP(sport=7, dport=9)),
        "ipv6": ether(IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=3, dport=4)),
    }


def _full_frame(seed: int) -> bytes:
    rng = random.Random(seed)
    # First byte 0x0f: `control` reads a second header 15 bytes further on.
    return ether(Raw(load=b"\x0f" + rng.randbytes(47)), ethertype=0x0800)


TRUNCATION_CASES = [
    *[(IPV4_TCP, name, frame) for name, frame in _ipv4_frames().items()],
    *[(d, "random", _full_frame(i)) for i, d in enumerate([*semantics.ALL, *backend.ALL])],
]


@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize(
    ("dissector", "frame"),
    [(d, f) for d, _, f in TRUNCATION_CASES],
    ids=[f"{d.name}-{name}" for d, name, _ in TRUNCATION_CASES],
)
def test_every_truncation_agrees(programs: Programs, dissector: Dissector, frame: bytes, level: int) -> None:
    for name, program in programs.each_backend(dissector, level).items():
        for length in range(14, len(frame) + 1):
            for flags in (0, 1):
                assert_agree(dissector, program, frame[:length], flags, label=f" ({name} -O{level})")


# -- immediates ---------------------------------------------------------------------


def _insns(dissector: Dissector, level: int) -> list:  # type: ignore[type-arg]
    return decode(dissector.compile(opt_level=level).code)


@pytest.mark.parametrize("level", [0, 2])
def test_wide_constants_use_ld_imm64(level: int) -> None:
    insns = _insns(semantics.constants, level)
    wide = {i.imm for i in insns if i.opcode == 0x18}  # BPF_LD | BPF_IMM | BPF_DW
    assert {0xFFFFFFFF00000000, 0x8000000000000000} <= wide


@pytest.mark.parametrize("level", [0, 2])
def test_32_bit_constants_with_the_top_bit_use_mov32(level: int) -> None:
    # 0x80000000..0xffffffff: `mov32` zero-extends; a 64-bit `mov` would
    # sign-extend the immediate to 0xffffffff8000_0000.
    insns = _insns(semantics.constants, level)
    mov32 = {i.imm & 0xFFFFFFFF for i in insns if i.opcode == 0xB4}  # BPF_ALU | BPF_MOV | BPF_K
    assert {0x80000000, 0xFFFFFFFF} <= mov32


@pytest.mark.parametrize("level", [0, 2])
def test_negative_immediates_in_signed_compares(level: int) -> None:
    asm = semantics.constants.compile(opt_level=level).asm()
    assert re.search(r"if r\d+ s[<>]=? -1 goto", asm), asm
    assert re.search(r"if r\d+ s[<>]=? -2147483648 goto", asm), asm
    assert re.search(r"if r\d+ s[<>]=? -1000 goto", asm), asm


def test_shift_counts_are_immediates_below_64() -> None:
    for level in (0, 2):
        for insn in _insns(semantics.shifts, level):
            if insn.cls in (Class.ALU, Class.ALU64) and insn.opcode & 0xF0 in (0x60, 0x70, 0xC0) and not insn.opcode & 0x08:
                assert 0 <= insn.imm < 64, insn


EDGE_FRAMES = {
    f"d={d:#x},e={e:#x}": ether(Raw(load=bytes(4) + d.to_bytes(4, "big") + e.to_bytes(8, "big") + bytes(16)), ethertype=0x0800)
    for d in (0, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFC18, 0xFFFFFFFF)
    for e in (0, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000001, 0xFFFFFFFF7FFFFFFF, (1 << 64) - 1)
}


@pytest.mark.parametrize("level", [0, 2])
def test_immediates_agree_at_their_edges(programs: Programs, level: int) -> None:
    for name, program in programs.each_backend(semantics.constants, level).items():
        for label, frame in EDGE_FRAMES.items():
            assert_agree(semantics.constants, program, frame, label=f" ({name} -O{level}) {label}")


# -- listings ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize("dissector", EVERY, ids=lambda d: d.name)
def test_listing_jump_targets_are_absolute(dissector: Dissector, backend_name: str) -> None:
    asm = dissector.compile(backend=backend_name).asm()
    slots = {int(m.group(1)) for m in re.finditer(r"^\s*(\d+):", asm, re.MULTILINE)}
    jumps = re.findall(r"^\s*(\d+): .*goto ([+-]\d+)\s+# -> (\d+)$", asm, re.MULTILINE)
    assert len(jumps) == asm.count("goto")
    for slot, offset, target in jumps:
        assert int(target) == int(slot) + 1 + int(offset)
        assert int(target) in slots


# -- -O0 and -O2 ---------------------------------------------------------------------------


@pytest.mark.parametrize("dissector", EVERY, ids=lambda d: d.name)
def test_o2_is_not_larger_than_o0(dissector: Dissector) -> None:
    o0, o2 = dissector.compile(opt_level=0), dissector.compile(opt_level=2)
    assert o2.insn_count <= o0.insn_count, f"-O0 {o0.insn_count} < -O2 {o2.insn_count}\n{o2.asm()}"


O_FRAMES = st.one_of(
    st.builds(lambda t, p: ether(Raw(load=p), ethertype=t), st.sampled_from([0x0800, 0x86DD, 0x88B5]), st.binary(max_size=64)),
    st.sampled_from(list(_ipv4_frames().values())),
)


@pytest.mark.parametrize("dissector", EVERY, ids=lambda d: d.name)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(frame=O_FRAMES, flags=st.integers(0, 7))
def test_o0_and_o2_agree(programs: Programs, dissector: Dissector, frame: bytes, flags: int) -> None:
    o0 = programs.get(dissector, 0).run(frame, flags=flags)
    for name in BACKENDS:
        for level in (0, 2):
            other = programs.get(dissector, level, name).run(frame, flags=flags)
            assert (o0.retval, o0.keys.raw) == (other.retval, other.keys.raw), f"native -O0 and {name} -O{level}: {o0.keys.diff(other.keys)}"
    assert_agree(dissector, programs.get(dissector, 2), frame, flags)


# -- exhaustive instruction selection ----------------------------------------------


def test_an_ir_node_instruction_selection_does_not_know_is_an_error() -> None:
    """A new IR node must not silently compile to nothing (the match ends in assert_never)."""
    from dataclasses import dataclass

    from pyfd.compiler.backends.native import _Selector
    from pyfd.compiler.ir.nodes import Reg
    from pyfd.compiler.ir.parser import parse_function

    @dataclass(frozen=True)
    class Popcount:
        dst: Reg
        src: Reg
        span: object

    fn = parse_function('func f "t.py" {\nentry:\n    %a = keys.load u16 +0\n    ret 0\n}\n')
    selector = _Selector(fn)
    with pytest.raises(AssertionError, match="Popcount"):
        selector.insn(Popcount(Reg("b"), Reg("a"), fn.span))  # type: ignore[arg-type]
    assert selector.out == []


def test_machine_ir_builders_are_the_instruction_sets() -> None:
    """Each builder over virtual registers makes, once allocated, what pyfd.isa's builder of that name makes."""
    from pyfd.compiler.backends import mir

    from pyfd import isa
    from pyfd.isa import AluOp, JmpOp, Label, Size

    pairs = [
        (mir.alu64_imm(AluOp.ADD, 1, 22), isa.alu64_imm(AluOp.ADD, 1, 22)),
        (mir.alu64_reg(AluOp.XOR, 2, 3), isa.alu64_reg(AluOp.XOR, 2, 3)),
        (mir.mov64_imm(0, -1), isa.mov64_imm(0, -1)),
        (mir.mov64_reg(6, 1), isa.mov64_reg(6, 1)),
        (mir.mov32_imm(4, 0x7FFFFFFF), isa.mov32_imm(4, 0x7FFFFFFF)),
        (mir.mov32_reg(4, 5), isa.mov32_reg(4, 5)),
        (mir.neg64(7), isa.neg64(7)),
        (mir.endian_be(3, 16), isa.endian(3, 16, to_be=True)),
        (mir.ld_imm64(2, 1 << 40), isa.ld_imm64(2, 1 << 40)),
        (mir.ldx_mem(Size.H, 1, 2, 12), isa.ldx_mem(Size.H, 1, 2, 12)),
        (mir.stx_mem(Size.DW, 10, 3, -8), isa.stx_mem(Size.DW, 10, 3, -8)),
        (mir.st_mem(Size.W, 1, 4, 7), isa.st_mem(Size.W, 1, 4, 7)),
        (mir.jmp_imm(JmpOp.JGT, 1, 0xFFF0, "out"), isa.jmp_imm(JmpOp.JGT, 1, 0xFFF0, Label("out"))),
        (mir.jmp_reg(JmpOp.JGT, 1, 2, "out"), isa.jmp_reg(JmpOp.JGT, 1, 2, Label("out"))),
        (mir.ja("out"), isa.ja(Label("out"))),
        (mir.exit_insn(), isa.exit_insn()),
    ]
    for ours, theirs in pairs:
        assert ours.to_isa() == theirs, (ours, theirs)
    assert mir.ja("x").is_ja and not mir.exit_insn().is_ja
    assert mir.mov64_reg(1, 2).is_copy() and not mir.mov32_reg(1, 2).is_copy()
