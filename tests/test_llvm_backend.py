"""The llvm backend: what LLVM must not change survives its optimiser, and every instruction has its Python line.

LLVM does not know the verifier, so these tests load what it makes into the
real one: variable packet offsets whose clamp LLVM could fold or split, the
divisions and shifts whose BPF semantics are undefined behaviour in LLVM, and
every optimisation level. The generic agreement tests (samples, semantics,
random programs, the native backend's tests) run the llvm backend as well;
here are the checks that only make sense for it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import llvmlite.binding as llvm
import pytest
from dissectors import backend, semantics
from dissectors.backend import Sixteen
from dissectors.semantics import Words
from frames import ipv4_frames
from engines import COMPILED, load
from kernel import bpftool, in_ci, needs_kernel, requires_kernel  # noqa: F401  (pytest fixture)
from pyfd.compiler.backends.llvm import _stack_size, compile_llvm, generate_llvm_ir
from pyfd.compiler.diagnostics import Span
from pyfd.isa import R10, Class, Size, decode, st_mem
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from pyfd import BPF_DROP, BPF_OK, BpfFlowKeys, Dissector, Packet, dissector, u64
from pyfd.cli import find_dissectors

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
IPV4_TCP = find_dissectors(SAMPLES / "ipv4_tcp.py")["ipv4_tcp"]
FULL = find_dissectors(SAMPLES / "full.py")["full"]
SRC_MAC, DST_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


def frame(payload: bytes, ethertype: int = 0x88B5) -> bytes:
    """An Ethernet frame with explicit MACs (scapy then resolves nothing)."""
    return bytes(Ether(src=SRC_MAC, dst=DST_MAC, type=ethertype) / Raw(load=payload))


def words(*, a: int = 0, b: int = 0, c: int = 0, d: int = 0, e: int = 0, f: int = 0, g: int = 0, h: int = 0, s1: int = 0, s2: int = 0) -> bytes:
    """The 32 bytes of one `Words` header, big endian, then 64 bytes of padding."""
    fields = [(a, 1), (b, 1), (c, 2), (d, 4), (e, 8), (f, 8), (g, 4), (h, 2), (s1, 1), (s2, 1)]
    return b"".join(v.to_bytes(n, "big") for v, n in fields) + bytes(range(64))


def assert_agree(d: Dissector, program, data: bytes, flags: int = 0, label: str = "") -> None:  # type: ignore[no-untyped-def]
    kernel = program.run(data, flags=flags)
    python = d.run_python(data, flags=flags)
    assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), (
        f"{d.name}{label} on {data.hex()}: retval kernel={kernel.retval} python={python.retval}; {kernel.keys.diff(python.keys)}"
    )


@dissector
def bounded_offsets(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Header offsets LLVM can bound (a modulo, a mask, a division) and the verifier cannot."""
    w = pkt.header(Words, keys.nhoff)
    a = pkt.header(Sixteen, w.d % 50)  # LLVM knows this is below 50: it would drop the clamp
    b = pkt.header(Sixteen, (w.c & 0x3F) + 14)  # and this below 78
    c = pkt.header(Sixteen, w.e // 0x0100000000000000)  # and this below 256
    keys.sport = a.b0 + b.b1 + c.b14
    keys.dport = a.b15 ^ b.b0 ^ c.b1
    return BPF_OK


@dissector
def power_of_two_divisor(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Divisors LLVM knows are zero or a power of two: it would divide by `cttz`, a table in .rodata."""
    w = pkt.header(Words, keys.nhoff)
    two = (w.a & 1) << 1  # 0 or 2
    keys.ipv4_src = w.e // two
    keys.ipv4_dst = w.e % two
    keys.flags = u64(w.s1) // (w.s2 & ((w.b < w.c) + (w.d < w.g)))  # 0, 1 or 2
    return BPF_OK


@dissector
def shift_counts(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Shift counts from the packet, 64 and above included: BPF masks them with 63."""
    w = pkt.header(Words, keys.nhoff)
    seventy = 70
    keys.ipv4_src = (w.e << w.s1) >> 32
    keys.ipv4_dst = w.e >> w.s2
    keys.flow_label = w.e >> seventy
    keys.flags = (w.f << seventy) >> 32
    keys.sport = (w.e >> w.a) & 0xFFFF
    keys.dport = ((0 - w.e) >> u64(w.h)) & 0xFFFF
    return BPF_OK


@dissector
def division_by_zero(pkt: Packet, keys: BpfFlowKeys) -> int:
    """x / 0 == 0 and x % 0 == x, with divisors from the packet."""
    w = pkt.header(Words, keys.nhoff)
    keys.ipv4_src = w.e // w.b
    keys.ipv4_dst = w.e % w.b
    keys.flags = w.d // (w.a - w.a)
    keys.flow_label = w.d % w.c
    if w.e // w.b == 0 and w.e % w.b == w.e:
        return BPF_OK  # reached exactly when w.b == 0 (or w.e is 0)
    return BPF_DROP


@dissector
def reassigned(pkt: Packet, keys: BpfFlowKeys) -> int:
    """A local assigned on both arms of an `if`: a phi in LLVM IR."""
    w = pkt.header(Words, keys.nhoff)
    x = w.a
    if w.b > 10:
        x = w.c
    else:
        x = x + 1
    keys.sport = x
    return BPF_OK


LLVM_ONLY = [bounded_offsets, power_of_two_divisor, shift_counts, division_by_zero, reassigned]


# -- the compiled code ----------------------------------------------------------------------


def test_compilation_keeps_the_optimised_llvm_ir() -> None:
    program = IPV4_TCP.compile(backend="llvm")
    assert program.backend == "llvm" and program.compilation.code.backend == "llvm"
    text = program.llvm_ir()
    assert text is not None
    module = llvm.parse_assembly(text)  # what `--emit llvm` prints is valid LLVM IR
    module.verify()
    assert IPV4_TCP.compile(backend="native").llvm_ir() is None


def test_emitted_llvm_ir_is_the_optimised_module() -> None:
    fn = IPV4_TCP.compile(backend="llvm").compilation.ir
    o2, o0 = compile_llvm(fn, 2), compile_llvm(fn, 0)
    assert o2.llvm_ir is not None and o0.llvm_ir is not None
    assert o2.llvm_ir != o2.unoptimised_ir
    assert len(o2.llvm_ir.splitlines()) < len(o0.llvm_ir.splitlines())
    assert "phi" in o2.llvm_ir or "select" in o2.llvm_ir or "common.ret" in o2.llvm_ir  # returns merged


def test_function_shape() -> None:
    text, _ = generate_llvm_ir(IPV4_TCP.compile(backend="llvm").compilation.ir)
    assert 'target triple = "bpfel"' in text
    assert re.search(r'^define i32 @"ipv4_tcp"\(ptr %ctx\) #0 section "flow_dissector" !dbg', text, re.MULTILINE)
    # The context is read only as data, data_end (u32) and flow_keys (u64):
    # once each at entry, and again after each bpf_skb_load_bytes (see
    # llvm.py, load_context); once each when headers are read linear only.
    loads = re.findall(r"load volatile (\w+), ptr %v\d+, align \d+", text)
    offsets = re.findall(r"getelementptr i8, ptr %ctx, i64 (\d+)", text)
    copies = text.count("call i64 inttoptr (i64 26 to ptr)")
    assert copies > 0
    assert sorted(zip(offsets, loads, strict=True)) == sorted([("144", "ptr"), ("76", "i32"), ("80", "i32")] * (1 + copies))
    linear, _ = generate_llvm_ir(IPV4_TCP.compile(backend="llvm", paged=False).compilation.ir)
    loads = re.findall(r"load volatile (\w+), ptr %v\d+, align \d+", linear)
    offsets = re.findall(r"getelementptr i8, ptr %ctx, i64 (\d+)", linear)
    assert sorted(zip(offsets, loads, strict=True)) == [("144", "ptr"), ("76", "i32"), ("80", "i32")]
    # The kernel names the BTF FUNC's argument only from a DILocalVariable (btf_func_check).
    assert re.search(r'!DILocalVariable\(name: "ctx", arg: 1', text)


@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("d", [IPV4_TCP, FULL], ids=lambda d: d.name)
def test_every_instruction_has_the_span_of_an_ir_node(d: Dissector, level: int) -> None:
    compilation = d.compile(backend="llvm", opt_level=level).compilation
    ir_spans = {i.span for b in compilation.ir.blocks for i in [*b.insns, b.term]} | {compilation.ir.span}
    insns = compilation.code.insns
    assert insns
    spans: list[Span] = []
    for insn in insns:
        assert isinstance(insn.span, Span), insn
        assert insn.span in ir_spans, insn.span
        spans.append(insn.span)
    if d is IPV4_TCP:
        assert {15, 17, 18, 24, 26, 27, 28} <= {span.line for span in spans}
    else:  # helpers from pyfd.lib are inlined: their lines name lib.py
        files = {Path(span.file).name for span in spans}
        assert files == {"full.py", "lib.py"}, files


def test_listing_shows_python_lines() -> None:
    asm = IPV4_TCP.compile(backend="llvm").asm()
    assert "; ipv4_tcp.py:17: ip = pkt.header(IPv4, keys.nhoff)" in asm
    assert re.search(r"^\s+\d+: r\d+ = \*\(u32 \*\)\(r1 \+ 76\)$", asm, re.MULTILINE), asm


@pytest.mark.parametrize("level", [0, 1, 2])
def test_no_cpu_v4_instructions_and_immediate_shift_counts_below_64(level: int) -> None:
    # cpu v3: the listing prints every instruction (it refuses v4's movsx,
    # ldsx, bswap, sdiv and gotol), and the verifier refuses an immediate
    # shift count of 64 or more ("invalid shift").
    for d in [shift_counts, semantics.shifts, semantics.unary_casts]:
        program = d.compile(backend="llvm", opt_level=level)
        program.asm()
        for insn in decode(program.code):
            if insn.cls in (Class.ALU, Class.ALU64) and insn.opcode & 0xF0 in (0x60, 0x70, 0xC0) and not insn.opcode & 0x08:
                assert 0 <= insn.imm < (64 if insn.cls == Class.ALU64 else 32), insn


def test_variable_base_is_clamped_on_the_register_added_to_data() -> None:
    # Every variable-base check compares the base against 0xffff - size and
    # adds that same register to the packet pointer.
    asm = bounded_offsets.compile(backend="llvm").asm()
    clamps = re.findall(r"if (r\d+) > 65519 goto", asm)  # 0xffff - 16 (Sixteen)
    assert len(clamps) == 3, asm
    for reg in clamps:
        assert re.search(rf"r\d+ \+= {reg}$", asm, re.MULTILINE), (reg, asm)


def test_divisors_are_guarded_against_zero() -> None:
    text, _ = generate_llvm_ir(division_by_zero.compile(backend="llvm").compilation.ir)
    assert text.count("udiv") + text.count("urem") >= 4
    for match in re.finditer(r"(%v\d+) = (?:udiv|urem) i64 %v\d+, (%v\d+)", text):
        divisor = match.group(2)
        assert re.search(rf"{divisor} = select i1 %v\d+, i64 1, i64 %v\d+", text), text


def test_stack_size_counts_bytes_below_r10() -> None:
    insns = [st_mem(Size.W, R10, -520, 1), st_mem(Size.DW, R10, -8, 1)]
    assert _stack_size(insns) == 520


def test_reassigned_local_becomes_a_phi() -> None:
    text, _ = generate_llvm_ir(reassigned.compile(backend="llvm", opt_level=0).compilation.ir)
    assert re.search(r"= phi i64 \[ %v\d+, %\S+ \], \[ %v\d+, %\S+ \]", text), text
    # Locals are SSA values; the one stack object is the page-fragment copies' area.
    assert re.findall(r"(%\w+) = alloca", text) == ["%windows"]
    linear, _ = generate_llvm_ir(reassigned.compile(backend="llvm", opt_level=0, paged=False).compilation.ir)
    assert "alloca" not in linear


# -- in the kernel and in the interpreter ------------------------------------------------------


@pytest.mark.parametrize("engine", COMPILED)
@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("d", [*LLVM_ONLY, backend.computed_offsets], ids=lambda d: d.name)
def test_llvm_code_loads_and_agrees(d: Dissector, level: int, engine: str) -> None:
    frames = [
        frame(words(a=3, b=0, c=0x1234, d=1234567, e=0x0123456789ABCDEF, f=0xFFFFFFFFFFFFFFFF, h=65, s1=64, s2=71)),
        frame(words(a=2, b=7, c=0xFFFF, d=49, e=0x0A00000000000000, f=1, g=5, h=127, s1=63, s2=255)),
        frame(words(a=255, b=255, c=1, d=0xFFFFFFFF, e=0, f=0x8000000000000000, g=0xFFFFFFFF, h=0, s1=0, s2=1)),
        frame(bytes([40, 0, 0, 0, 0, 0, 0, 7]) + bytes(range(1, 100))),
        frame(b"\x01" * 20),  # short: every check fails
    ]
    with load(d.compile(backend="llvm", opt_level=level), engine) as program:
        for data in frames:
            for length in (len(data), 60, 47, 14):
                assert_agree(d, program, data[:length], label=f" -O{level}")


@pytest.mark.parametrize("engine", COMPILED)
def test_division_by_zero_semantics(engine: str) -> None:
    with load(division_by_zero.compile(backend="llvm"), engine) as program:
        result = program.run(frame(words(b=0, c=0, e=0x1122334455667788, d=0xDEADBEEF)))
    keys = result.keys
    assert result.retval == BPF_OK
    assert int(keys.ipv4_src) == 0  # e // 0
    assert int(keys.ipv4_dst) == 0x55667788  # e % 0 == e, stored into 32 bits
    assert keys.flags == 0 and keys.flow_label == 0xDEADBEEF  # d // 0, d % 0


@pytest.mark.parametrize("engine", COMPILED)
@pytest.mark.parametrize("count", [0, 1, 63, 64, 65, 70, 127, 128, 255])
def test_shift_counts_of_64_and_more_are_masked(count: int, engine: str) -> None:
    e = 0xF123456789ABCDEF
    data = frame(words(a=count, e=e, f=e, h=count, s1=count, s2=count))
    with load(shift_counts.compile(backend="llvm"), engine) as program:
        assert_agree(shift_counts, program, data, label=f" count={count}")
        result = program.run(data)
    assert int(result.keys.ipv4_dst) == (e >> (count & 63)) & 0xFFFFFFFF
    assert result.keys.flow_label == (e >> 6) & 0xFFFFFFFF  # 70 & 63


# -- the object file -------------------------------------------------------------------------


def _bpftool_run(tool: str, pin: str, data: bytes, directory: Path) -> tuple[int, bytes]:
    data_in, data_out = directory / "frame", directory / "keys"
    data_in.write_bytes(data)
    run = subprocess.run(
        [tool, "-j", "prog", "run", "pinned", pin, "data_in", str(data_in), "data_out", str(data_out)],
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)["retval"], data_out.read_bytes()


@needs_kernel
def test_bpftool_runs_the_llvm_object_like_the_native_one(tmp_path: Path) -> None:
    tool = bpftool()
    pins = {}
    try:
        for name in ("native", "llvm"):
            obj = IPV4_TCP.compile(backend=name).write(tmp_path / f"ipv4_tcp.{name}.o")
            pins[name] = f"/sys/fs/bpf/pyfd_test_{name}_{uuid.uuid4().hex[:12]}"
            load = subprocess.run([tool, "prog", "load", str(obj), pins[name], "type", "flow_dissector"], capture_output=True, text=True, check=False)
            assert load.returncode == 0, load.stderr
            assert "libbpf" not in load.stderr, load.stderr  # no warnings either
        show = json.loads(subprocess.run([tool, "-j", "prog", "show", "pinned", pins["llvm"]], capture_output=True, text=True, check=True).stdout)
        assert show["type"] == "flow_dissector" and show["name"] == "ipv4_tcp"
        for label, data in ipv4_frames().items():
            native = _bpftool_run(tool, pins["native"], data, tmp_path)
            llvm_result = _bpftool_run(tool, pins["llvm"], data, tmp_path)
            python = IPV4_TCP.run_python(data)
            assert native == llvm_result == (python.retval, python.keys.raw), label
    finally:
        for pin in pins.values():
            if os.path.exists(pin):
                os.unlink(pin)
