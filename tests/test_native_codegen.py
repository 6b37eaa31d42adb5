"""The native backend's code on the hot paths of samples/full.py: what each frame kind executes.

A small tracer here runs the compiled instructions one at a time and keeps
the path (pyfd.vm compiles a program to Python and only counts); it must
agree with pyfd.vm on the count, the return code and the keys, so the path
it reports is the one the interpreter ran. On the IPv4 and IPv6 TCP/UDP
frames the path touches the stack only to store the context at entry (for a
window's slow path, bpf_skb_load_bytes): `data`, `data_end`, the keys
pointer and the loop's counter stay in registers across every check; and no
test it executes is decided by a constant set on the same path (the verdict
of an inlined function goes straight to its outcome).
"""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from full_frames import CASES, FullCase
from pyfd.isa import AluOp, Class, Instruction, JmpOp, Mode, Size, Source, decode
from pyfd.isa.opcodes import bpf_class, bpf_op, bpf_src

import pyfd.vm
from pyfd import Dissector

ROOT = Path(__file__).resolve().parent.parent
HOT = ["ipv4_tcp", "ipv4_udp", "ipv6_tcp", "ipv6_udp"]
TRACED = [*HOT, "vlan_ipv4_tcp", "gre_ipv4_tcp", "encap_ipip_tcp"]
BY_NAME = {c.name: c for c in CASES}

M64 = (1 << 64) - 1
CTX, PACKET, KEYS, STACK_TOP = 0x1000, 0x10000, 0x20000, 0x30000
SKB_DATA, SKB_DATA_END, SKB_FLOW_KEYS = 76, 80, 144
_BYTES = {Size.B: 1, Size.H: 2, Size.W: 4, Size.DW: 8}


def _full(name: str = "full") -> Dissector:
    spec = importlib.util.spec_from_file_location(f"sample_{name}_codegen", ROOT / "samples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return next(v for v in vars(module).values() if isinstance(v, Dissector))


FULL = _full()


@dataclass
class Step:
    """One executed instruction: its slot and the instruction."""

    slot: int
    insn: Instruction


class _Memory:
    """The context, the linear packet, the flow keys and the stack, at made-up addresses."""

    def __init__(self, frame: bytes, flags: int) -> None:
        ctx = bytearray(192)
        struct.pack_into("<I", ctx, SKB_DATA, PACKET)
        struct.pack_into("<I", ctx, SKB_DATA_END, PACKET + len(frame))
        struct.pack_into("<Q", ctx, SKB_FLOW_KEYS, KEYS)
        keys = bytearray(56)
        struct.pack_into("<HH", keys, 0, 14, 14)  # nhoff = thoff = 14, as a test run enters
        keys[10:12] = frame[12:14]
        struct.pack_into("<I", keys, 48, flags)
        self.regions = {CTX: ctx, PACKET: bytearray(frame), KEYS: keys, STACK_TOP - 512: bytearray(512)}

    def _find(self, address: int, size: int) -> tuple[bytearray, int]:
        for base, data in self.regions.items():
            if base <= address and address + size <= base + len(data):
                return data, address - base
        raise AssertionError(f"access of {size} bytes at {address:#x} outside every region")

    def load(self, address: int, size: int) -> int:
        data, off = self._find(address, size)
        return int.from_bytes(data[off : off + size], "little")

    def store(self, address: int, size: int, value: int) -> None:
        data, off = self._find(address, size)
        data[off : off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def _signed(value: int, bits: int = 64) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _alu(op: int, a: int, b: int, bits: int) -> int:
    mask = (1 << bits) - 1
    a, b = a & mask, b & mask
    shift = b & (bits - 1)
    results = {
        AluOp.ADD: lambda: a + b, AluOp.SUB: lambda: a - b, AluOp.MUL: lambda: a * b,
        AluOp.DIV: lambda: a // b if b else 0, AluOp.MOD: lambda: a % b if b else a,
        AluOp.OR: lambda: a | b, AluOp.AND: lambda: a & b, AluOp.XOR: lambda: a ^ b,
        AluOp.LSH: lambda: a << shift, AluOp.RSH: lambda: a >> shift, AluOp.ARSH: lambda: _signed(a, bits) >> shift,
        AluOp.MOV: lambda: b, AluOp.NEG: lambda: -a,
    }  # fmt: skip
    if op in results:
        return results[AluOp(op)]()
    raise AssertionError(f"ALU operation {op:#x} not traced")


def _jump(op: int, a: int, b: int, bits: int) -> bool:
    sa, sb = _signed(a, bits), _signed(b, bits)
    outcomes = {
        JmpOp.JEQ: a == b, JmpOp.JNE: a != b, JmpOp.JGT: a > b, JmpOp.JGE: a >= b, JmpOp.JLT: a < b, JmpOp.JLE: a <= b,
        JmpOp.JSGT: sa > sb, JmpOp.JSGE: sa >= sb, JmpOp.JSLT: sa < sb, JmpOp.JSLE: sa <= sb, JmpOp.JSET: bool(a & b),
    }
    return outcomes[JmpOp(op)]


def trace(code: bytes, frame: bytes, flags: int = 0) -> tuple[list[Step], int, bytes]:
    """Run `code` on a linear `frame`: (the path, r0, the 56 bytes of keys)."""
    insns = decode(code)
    by_slot: dict[int, Instruction] = {}
    slot = 0
    for insn in insns:
        by_slot[slot] = insn
        slot += 2 if insn.opcode == 0x18 else 1
    mem = _Memory(frame, flags)
    regs = [0] * 11
    regs[1], regs[10] = CTX, STACK_TOP
    path: list[Step] = []
    pc = 0
    while True:
        insn = by_slot[pc]
        path.append(Step(pc, insn))
        assert len(path) < 100_000, "runaway"
        cls, nxt = bpf_class(insn.opcode), pc + 1
        if insn.opcode == 0x18:  # LD_IMM64
            regs[insn.dst], nxt = insn.imm & M64, pc + 2
        elif cls in (Class.ALU, Class.ALU64):
            bits = 64 if cls == Class.ALU64 else 32
            op = bpf_op(insn.opcode)
            if op == AluOp.END:
                size = insn.imm // 8
                regs[insn.dst] = int.from_bytes((regs[insn.dst] & ((1 << insn.imm) - 1)).to_bytes(size, "little"), "big")
            else:
                b = regs[insn.src] if bpf_src(insn.opcode) == Source.X else insn.imm & M64
                regs[insn.dst] = _alu(op, regs[insn.dst], b, bits) & ((1 << bits) - 1)
        elif cls == Class.LDX:
            regs[insn.dst] = mem.load((regs[insn.src] + insn.off) & M64, _BYTES[Size(insn.opcode & 0x18)])
        elif cls in (Class.ST, Class.STX):
            assert insn.opcode & 0xE0 == Mode.MEM, "atomics are not traced"
            value = regs[insn.src] if cls == Class.STX else insn.imm
            mem.store((regs[insn.dst] + insn.off) & M64, _BYTES[Size(insn.opcode & 0x18)], value)
        elif cls in (Class.JMP, Class.JMP32):
            op = bpf_op(insn.opcode)
            if op == JmpOp.EXIT:
                return path, regs[0], bytes(mem.regions[KEYS])
            assert op != JmpOp.CALL, "a linear frame needs no helper call"
            if op == JmpOp.JA:
                nxt = pc + 1 + insn.off
            else:
                bits = 64 if cls == Class.JMP else 32
                a = regs[insn.dst] & ((1 << bits) - 1)
                b = (regs[insn.src] if bpf_src(insn.opcode) == Source.X else insn.imm & M64) & ((1 << bits) - 1)
                if _jump(op, a, b, bits):
                    nxt = pc + 1 + insn.off
        else:
            raise AssertionError(f"instruction class {cls} not traced")
        pc = nxt


def _stack_access(insn: Instruction) -> bool:
    cls = bpf_class(insn.opcode)
    return (cls == Class.LDX and insn.src == 10) or (cls in (Class.ST, Class.STX) and insn.dst == 10)


@pytest.fixture(scope="module")
def native() -> bytes:
    return FULL.compile(backend="native").code


@pytest.fixture(scope="module")
def vm() -> Iterator[pyfd.vm.VmProgram]:
    program = pyfd.vm.load(FULL.compile(backend="native"))
    yield program
    program.close()


def _case(name: str) -> FullCase:
    return BY_NAME[name]


@pytest.mark.parametrize("kind", TRACED)
def test_the_tracer_runs_the_path_the_interpreter_runs(native: bytes, vm: pyfd.vm.VmProgram, kind: str) -> None:
    case = _case(kind)
    path, r0, keys = trace(native, case.frame, case.flags)
    result = vm.run(case.frame, flags=case.flags)
    assert len(path) == vm.insns_executed
    assert r0 & 0xFFFFFFFF == result.retval
    # The interpreter reports keys after the kernel's clamp of nhoff/thoff; these frames need none.
    assert keys == result.keys.raw


@pytest.mark.parametrize("kind", HOT)
def test_hot_paths_touch_the_stack_only_to_keep_the_context(native: bytes, kind: str) -> None:
    case = _case(kind)
    path, _, _ = trace(native, case.frame, case.flags)
    stack = [step for step in path if _stack_access(step.insn)]
    entry = path[0].insn
    # The one store: the context for a window's slow path (fetch.py), before anything else.
    assert bpf_class(entry.opcode) == Class.STX and entry.dst == 10 and entry.src == 1
    assert stack == [path[0]], [f"{s.slot}: {s.insn}" for s in stack]


@pytest.mark.parametrize("kind", HOT)
def test_hot_paths_run_no_test_a_constant_decides(native: bytes, kind: str) -> None:
    case = _case(kind)
    path, _, _ = trace(native, case.frame, case.flags)
    constant: dict[int, int] = {}  # register -> the value a `mov rX, imm` on this path left in it
    decided = []
    for step in path:
        insn, cls = step.insn, bpf_class(step.insn.opcode)
        if cls == Class.JMP and bpf_op(insn.opcode) not in (JmpOp.JA, JmpOp.EXIT, JmpOp.CALL) and insn.dst in constant:
            if bpf_src(insn.opcode) == Source.K or insn.src in constant:
                decided.append(step.slot)
        if cls in (Class.ALU, Class.ALU64, Class.LDX) or insn.opcode == 0x18:
            constant.pop(insn.dst, None)
            if cls == Class.ALU64 and bpf_op(insn.opcode) == AluOp.MOV and bpf_src(insn.opcode) == Source.K:
                constant[insn.dst] = insn.imm
    assert not decided, f"tests on constants at slots {decided}"


def test_native_code_is_the_same_under_any_hash_seed() -> None:
    # The allocator keeps sets of register names: their iteration order
    # changes with PYTHONHASHSEED, the code it produces must not.
    script = "import sys; sys.path.insert(0, 'tests'); from test_native_codegen import FULL; sys.stdout.write(FULL.compile(backend='native').asm())"
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1


def _avoidable_jset_gotos(code: bytes) -> list[int]:
    """Slots of `if x & M goto +1; goto L` where nothing falls into L (so L's blocks could have been laid out next)."""
    insns = decode(code)
    slots, slot = [], 0
    for insn in insns:
        slots.append(slot)
        slot += 2 if insn.opcode == 0x18 else 1
    index = {s: k for k, s in enumerate(slots)}
    ja, exit_ = 0x05, 0x95
    found = []
    for k, (test, goto) in enumerate(zip(insns, insns[1:], strict=False)):
        jset = bpf_class(test.opcode) in (Class.JMP, Class.JMP32) and bpf_op(test.opcode) == JmpOp.JSET
        if jset and test.off == 1 and goto.opcode == ja:
            target = index[slots[k + 1] + 1 + goto.off]
            if insns[target - 1].opcode in (ja, exit_):
                found.append(slots[k])
    return found


@pytest.mark.parametrize("sample", ["full", "tunnels", "counting"])
def test_the_clear_side_of_a_jset_falls_through_where_it_can(sample: str) -> None:
    # BPF has no jump-if-clear: `jset` then `goto` costs a jump wherever the
    # clear side could have been placed next (nothing else falls into it).
    code = FULL.compile().code if sample == "full" else _full(sample).compile().code
    assert _avoidable_jset_gotos(code) == []


@pytest.mark.parametrize("kind", HOT)
def test_hot_paths_run_no_goto_right_after_a_jset(native: bytes, kind: str) -> None:
    # The clear side of a fragment-bits or flow-label jset continues at the
    # transport dispatch, which another path falls into: its first test is
    # copied after the jset instead of a `goto` to it.
    case = _case(kind)
    path, _, _ = trace(native, case.frame, case.flags)
    after = [
        b.slot for a, b in zip(path, path[1:], strict=False)
        if bpf_class(a.insn.opcode) == Class.JMP and bpf_op(a.insn.opcode) == JmpOp.JSET and b.insn.opcode == 0x05
    ]
    assert after == [], f"gotos right after a jset at slots {after}"
