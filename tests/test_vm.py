"""pyfd.vm, instruction by instruction: each row runs in the interpreter and, where it can, in the kernel.

The rows are hand-built programs (pyfd.isa) whose result lands in the flow
keys; each `engine` runs them in the interpreter and in the kernel
(BPF_PROG_TEST_RUN), and both must give the value written in the row, so
the kernel checks the table and the table checks the interpreter. Where the
kernel can answer for any operands (ALU and jump semantics), hypothesis
compares the two on random ones.
"""

from __future__ import annotations

import struct
from typing import Protocol, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel import needs_kernel, skip_unless_kernel

import pyfd.vm
from pyfd.isa import (
    AluOp,
    Class,
    Instruction,
    JmpOp,
    Mode,
    Size,
    Source,
    alu32_imm,
    alu32_reg,
    alu64_imm,
    alu64_reg,
    call,
    call_rel,
    encode_program,
    endian,
    exit_insn,
    gotol,
    ja,
    jmp32_imm,
    jmp32_reg,
    jmp_imm,
    jmp_reg,
    ld_imm64,
    ldx_mem,
    ldx_memsx,
    mov64_imm,
    mov64_reg,
    neg32,
    neg64,
    st_mem,
    stx_mem,
)
from pyfd.runtime import RunResult, VerifierError, load_program
from pyfd.vm import VmAccessError, VmError

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
# Ethernet (explicit MACs) / IPv4 10.0.0.1 -> 10.0.0.2 / UDP 5353 -> 53, 60 bytes.
FRAME = bytes.fromhex(
    "020000000002" "020000000001" "0800"
    "4500002e00010000401166bc0a0000010a000002"
    "14e90035001a0000" + "78" * 18
)
KEYS = [ldx_mem(Size.DW, 6, 1, 144)]  # r6 = skb->flow_keys
DONE = [mov64_imm(0, 0), exit_insn()]


def result_of(*body: Instruction) -> bytes:
    """A dissector: r6 = the keys, then `body` (which stores into the keys), then return BPF_OK."""
    return encode_program([*KEYS, *body, *DONE])


def u64_at(raw: bytes, offset: int = 16) -> int:
    return int.from_bytes(raw[offset : offset + 8], "little")


class Runner(Protocol):
    """Runs instructions on a frame (a fixture's engine)."""

    def __call__(self, code: bytes, frame: bytes = ..., flags: int = ...) -> RunResult: ...


@pytest.fixture(params=["vm", pytest.param("kernel", marks=pytest.mark.kernel)])
def engine(request: pytest.FixtureRequest) -> Runner:
    """Runs instructions on a frame in the interpreter, or in the kernel."""
    if request.param == "kernel":
        skip_unless_kernel()

        def kernel(code: bytes, frame: bytes = FRAME, flags: int = 0) -> RunResult:
            with load_program(code, name="vm_row") as loaded:
                return loaded.run(frame, flags=flags)

        return kernel

    def vm(code: bytes, frame: bytes = FRAME, flags: int = 0) -> RunResult:
        return pyfd.vm.load(code).run(frame, flags=flags)

    return vm


def _op(cls: Class, op: AluOp, dst: int, src: int | None, imm: int = 0, off: int = 0) -> Instruction:
    """Any ALU instruction, sdiv/smod/movsx included (their flag is in off)."""
    source = Source.X if src is not None else Source.K
    return Instruction(cls | op | source, dst, src or 0, off, imm)


def _alu_row(a: int, b: int, insn: Instruction) -> bytes:
    return result_of(ld_imm64(1, a), ld_imm64(2, b), insn, stx_mem(Size.DW, 6, 1, 16))


A64, A32 = Class.ALU64, Class.ALU
INT64_MIN = 1 << 63
# (name, a, b, instruction on r1 (and r2), expected r1): edge cases of
# instruction-set.rst, each checked by the kernel too.
ALU_ROWS: list[tuple[str, int, int, Instruction, int]] = [
    ("add64 wraps", M64, 2, alu64_reg(AluOp.ADD, 1, 2), 1),
    ("add32 zero-extends", 0xFFFFFFFF_FFFFFFFF, 1, alu32_reg(AluOp.ADD, 1, 2), 0),
    ("sub64 borrows", 0, 1, alu64_reg(AluOp.SUB, 1, 2), M64),
    ("sub32 imm", 5, 0, alu32_imm(AluOp.SUB, 1, 7), 0xFFFFFFFE),
    ("mul64 keeps the low bits", 1 << 40, 1 << 30, alu64_reg(AluOp.MUL, 1, 2), (1 << 70) & M64),
    ("mul32", 0x10001, 0x10001, alu32_reg(AluOp.MUL, 1, 2), 0x20001),
    ("div64 by zero gives 0", 77, 0, alu64_reg(AluOp.DIV, 1, 2), 0),
    ("div64 unsigned", M64, 2, alu64_reg(AluOp.DIV, 1, 2), M64 // 2),
    ("div32 of the low halves", 0xAB_00000064, 0xCD_00000007, alu32_reg(AluOp.DIV, 1, 2), 14),
    ("mod64 by zero keeps the dividend", 77, 0, alu64_reg(AluOp.MOD, 1, 2), 77),
    ("mod32 by zero zero-extends the dividend", 0xFF_00000005, 0, alu32_reg(AluOp.MOD, 1, 2), 5),
    ("mod64 imm", 100, 0, alu64_imm(AluOp.MOD, 1, 7), 2),
    ("sdiv64 truncates toward zero", (-7) & M64, 2, _op(A64, AluOp.DIV, 1, 2, off=1), (-3) & M64),
    ("sdiv64 INT64_MIN / -1", INT64_MIN, M64, _op(A64, AluOp.DIV, 1, 2, off=1), INT64_MIN),
    ("sdiv64 by zero gives 0", (-7) & M64, 0, _op(A64, AluOp.DIV, 1, 2, off=1), 0),
    ("sdiv64 imm -3", 10, 0, _op(A64, AluOp.DIV, 1, None, imm=-3, off=1), (-3) & M64),
    ("sdiv32", 0xFFFFFFF9, 2, _op(A32, AluOp.DIV, 1, 2, off=1), 0xFFFFFFFD),
    ("smod64 takes the dividend's sign", (-7) & M64, 2, _op(A64, AluOp.MOD, 1, 2, off=1), M64),
    ("smod64 by a negative divisor", 7, (-2) & M64, _op(A64, AluOp.MOD, 1, 2, off=1), 1),
    ("smod64 by zero keeps the dividend", (-7) & M64, 0, _op(A64, AluOp.MOD, 1, 2, off=1), (-7) & M64),
    ("smod32 by zero zero-extends", 0xFF_FFFFFFF9, 0, _op(A32, AluOp.MOD, 1, 2, off=1), 0xFFFFFFF9),
    ("or64", 0xF0, 0x0F, alu64_reg(AluOp.OR, 1, 2), 0xFF),
    ("and32 imm clears the upper half", M64, 0, alu32_imm(AluOp.AND, 1, -1), M32),
    ("xor64 imm sign-extends", 0, 0, alu64_imm(AluOp.XOR, 1, -1), M64),
    ("lsh64 masks the shift to 6 bits", 1, 65, alu64_reg(AluOp.LSH, 1, 2), 2),
    ("lsh32 masks the shift to 5 bits", 1, 33, alu32_reg(AluOp.LSH, 1, 2), 2),
    ("rsh64 is logical", INT64_MIN, 63, alu64_reg(AluOp.RSH, 1, 2), 1),
    ("rsh32 reads the low half", 0x1_80000000, 31, alu32_reg(AluOp.RSH, 1, 2), 1),
    ("arsh64 fills with the sign", INT64_MIN, 0, alu64_imm(AluOp.ARSH, 1, 60), 0xFFFFFFFF_FFFFFFF8),
    ("arsh32 fills with bit 31", 0x80000000, 0, alu32_imm(AluOp.ARSH, 1, 4), 0xF8000000),
    ("neg64", 1, 0, neg64(1), M64),
    ("neg32", 1, 0, neg32(1), M32),
    ("mov64 imm sign-extends", 5, 0, Instruction(A64 | AluOp.MOV | Source.K, 1, 0, 0, -2), (-2) & M64),
    ("mov32 imm does not", 5, 0, Instruction(A32 | AluOp.MOV | Source.K, 1, 0, 0, -2), 0xFFFFFFFE),
    ("mov32 reg zero-extends", 0, M64, alu32_reg(AluOp.MOV, 1, 2), M32),
    ("movsx64 from 8 bits", 0, 0x180, _op(A64, AluOp.MOV, 1, 2, off=8), (-128) & M64),
    ("movsx64 from 16 bits", 0, 0x7FFF, _op(A64, AluOp.MOV, 1, 2, off=16), 0x7FFF),
    ("movsx64 from 32 bits", 0, 0x80000000, _op(A64, AluOp.MOV, 1, 2, off=32), 0xFFFFFFFF_80000000),
    ("movsx32 from 16 bits", 0, 0x8000, _op(A32, AluOp.MOV, 1, 2, off=16), 0xFFFF8000),
    ("be16 swaps and truncates", 0x1122334455667788, 0, endian(1, 16, True), 0x8877),
    ("be32", 0x1122334455667788, 0, endian(1, 32, True), 0x88776655),
    ("be64", 0x1122334455667788, 0, endian(1, 64, True), 0x8877665544332211),
    ("le16 truncates", 0x1122334455667788, 0, endian(1, 16, False), 0x7788),
    ("le32 truncates", 0x1122334455667788, 0, endian(1, 32, False), 0x55667788),
    ("le64 keeps", 0x1122334455667788, 0, endian(1, 64, False), 0x1122334455667788),
    ("bswap16 (ALU64 END)", 0x1122334455667788, 0, Instruction(A64 | AluOp.END, 1, 0, 0, 16), 0x8877),
    ("bswap32", 0x1122334455667788, 0, Instruction(A64 | AluOp.END, 1, 0, 0, 32), 0x88776655),
    ("bswap64", 0x1122334455667788, 0, Instruction(A64 | AluOp.END, 1, 0, 0, 64), 0x8877665544332211),
]


@pytest.mark.parametrize(("a", "b", "insn", "want"), [pytest.param(*row[1:], id=row[0]) for row in ALU_ROWS])
def test_alu(engine: Runner, a: int, b: int, insn: Instruction, want: int) -> None:
    assert u64_at(engine(_alu_row(a, b, insn)).keys.raw) == want


_JUMPS = [op for op in JmpOp if op not in (JmpOp.JA, JmpOp.CALL, JmpOp.EXIT)]


def _jump_row(a: int, b: int, insn: Instruction) -> bytes:
    # r3 = 1 if the jump is taken, 0 otherwise
    return result_of(ld_imm64(1, a), ld_imm64(2, b), mov64_imm(3, 1), insn, mov64_imm(3, 0), stx_mem(Size.DW, 6, 3, 16))


# (name, a, b, jump over one instruction, taken?)
JUMP_ROWS: list[tuple[str, int, int, Instruction, bool]] = [
    ("jgt is unsigned", M64, 1, jmp_reg(JmpOp.JGT, 1, 2, 1), True),
    ("jsgt is signed", M64, 1, jmp_reg(JmpOp.JSGT, 1, 2, 1), False),
    ("jslt -1 < 1", M64, 1, jmp_reg(JmpOp.JSLT, 1, 2, 1), True),
    ("jsge equal", 5, 5, jmp_reg(JmpOp.JSGE, 1, 2, 1), True),
    ("jsle INT64_MIN", INT64_MIN, 0, jmp_reg(JmpOp.JSLE, 1, 2, 1), True),
    ("jeq imm sign-extends", M64, 0, jmp_imm(JmpOp.JEQ, 1, -1, 1), True),
    ("jne", 3, 3, jmp_reg(JmpOp.JNE, 1, 2, 1), False),
    ("jset", 0b1010, 0b0100, jmp_reg(JmpOp.JSET, 1, 2, 1), False),
    ("jset imm", 0b1010, 0, jmp_imm(JmpOp.JSET, 1, 2, 1), True),
    ("jge", 2, 3, jmp_reg(JmpOp.JGE, 1, 2, 1), False),
    ("jlt", 2, 3, jmp_reg(JmpOp.JLT, 1, 2, 1), True),
    ("jle imm", 4, 0, jmp_imm(JmpOp.JLE, 1, 3, 1), False),
    ("jeq32 ignores the upper half", 0xAA_00000005, 0xBB_00000005, jmp32_reg(JmpOp.JEQ, 1, 2, 1), True),
    ("jgt32 unsigned on the low half", 0x1_00000000, 0xFFFFFFFF, jmp32_reg(JmpOp.JGT, 1, 2, 1), False),
    ("jsgt32 signed on the low half", 0x00000000_7FFFFFFF, 0x80000000, jmp32_reg(JmpOp.JSGT, 1, 2, 1), True),
    ("jslt32 imm", 0xFFFFFFFF, 0, jmp32_imm(JmpOp.JSLT, 1, 0, 1), True),
    ("jset32 ignores the upper half", 0x1_00000000, 0x1_00000000, jmp32_reg(JmpOp.JSET, 1, 2, 1), False),
]


@pytest.mark.parametrize(("a", "b", "insn", "taken"), [pytest.param(*row[1:], id=row[0]) for row in JUMP_ROWS])
def test_jump(engine: Runner, a: int, b: int, insn: Instruction, taken: bool) -> None:
    assert u64_at(engine(_jump_row(a, b, insn)).keys.raw) == int(taken)


# --- random operands against the kernel ----------------------------------------------------------

_ALU_OPS = [AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.DIV, AluOp.OR, AluOp.AND, AluOp.LSH, AluOp.RSH, AluOp.MOD, AluOp.XOR, AluOp.MOV, AluOp.ARSH]
_VALUES = st.one_of(
    st.integers(0, M64),
    st.sampled_from([0, 1, 2, 7, 31, 32, 63, 64, 0x7FFFFFFF, 0x80000000, M32, INT64_MIN, M64, M64 - 1]),
)


@st.composite
def alu_instructions(draw: st.DrawFn) -> Instruction:
    """Any ALU/ALU64 instruction on r1 with r2 or an immediate (sdiv, smod and movsx included)."""
    cls = draw(st.sampled_from([Class.ALU, Class.ALU64]))
    choice = draw(st.sampled_from([*_ALU_OPS, "sdiv", "smod", "movsx", AluOp.NEG, AluOp.END, "bswap"]))
    if choice == AluOp.NEG:
        return Instruction(cls | AluOp.NEG, 1, 0, 0, 0)
    if choice == AluOp.END:
        return Instruction(Class.ALU | AluOp.END | draw(st.sampled_from([Source.TO_LE, Source.TO_BE])), 1, 0, 0, draw(st.sampled_from([16, 32, 64])))
    if choice == "bswap":
        return Instruction(Class.ALU64 | AluOp.END, 1, 0, 0, draw(st.sampled_from([16, 32, 64])))
    if choice == "movsx":
        bits = draw(st.sampled_from([8, 16, 32] if cls == Class.ALU64 else [8, 16]))
        return _op(cls, AluOp.MOV, 1, 2, off=bits)
    op, off = (AluOp.DIV, 1) if choice == "sdiv" else (AluOp.MOD, 1) if choice == "smod" else (cast(AluOp, choice), 0)
    if draw(st.booleans()):
        return _op(cls, op, 1, 2, off=off)
    imm = draw(st.integers(-(2**31), 2**31 - 1))
    if op in (AluOp.LSH, AluOp.RSH, AluOp.ARSH):
        imm = draw(st.integers(0, 63 if cls == Class.ALU64 else 31))  # the verifier refuses larger immediate shifts
    if op in (AluOp.DIV, AluOp.MOD) and imm == 0:
        imm = 3  # and division by an immediate zero
    return _op(cls, op, 1, None, imm=imm, off=off)


@needs_kernel
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=_VALUES, b=_VALUES, insn=alu_instructions())
def test_random_alu_agrees_with_the_kernel(a: int, b: int, insn: Instruction) -> None:
    code = _alu_row(a, b, insn)
    with load_program(code, name="vm_alu") as loaded:
        kernel = loaded.run(FRAME)
    assert pyfd.vm.load(code).run(FRAME).keys.raw == kernel.keys.raw, f"{insn}: a={a:#x} b={b:#x}"


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(a=_VALUES, b=_VALUES, op=st.sampled_from(_JUMPS), wide=st.booleans(), by_register=st.booleans(), imm=st.integers(-(2**31), 2**31 - 1))
def test_random_jumps_agree_with_the_kernel(a: int, b: int, op: JmpOp, wide: bool, by_register: bool, imm: int) -> None:
    if by_register:
        insn = (jmp_reg if wide else jmp32_reg)(op, 1, 2, 1)
    else:
        insn = (jmp_imm if wide else jmp32_imm)(op, 1, imm, 1)
    code = _jump_row(a, b, insn)
    with load_program(code, name="vm_jmp") as loaded:
        kernel = loaded.run(FRAME)
    assert pyfd.vm.load(code).run(FRAME).keys.raw == kernel.keys.raw, f"{insn}: a={a:#x} b={b:#x}"


# --- memory ------------------------------------------------------------------------------------


def test_loads_and_stores_of_every_size(engine: Runner) -> None:
    # Stack and keys, through r10 and through another register, ST and STX, MEM and MEMSX.
    value = 0x8182838485868788
    code = result_of(
        ld_imm64(1, value),
        stx_mem(Size.DW, 10, 1, -8),
        mov64_reg(2, 10),
        alu64_imm(AluOp.ADD, 2, -8),
        ldx_mem(Size.W, 3, 2, 4),  # 0x81828384
        stx_mem(Size.W, 6, 3, 16),
        ldx_memsx(Size.H, 3, 10, -8),  # 0x8788 sign-extended
        stx_mem(Size.DW, 6, 3, 24),
        ldx_memsx(Size.B, 3, 2, 1),  # 0x87
        stx_mem(Size.H, 6, 3, 32),
        ldx_memsx(Size.W, 3, 2, 0),  # 0x85868788
        stx_mem(Size.DW, 6, 3, 40),
        st_mem(Size.B, 6, 34, -1),
        st_mem(Size.H, 6, 36, 0x1234),
        ldx_mem(Size.B, 3, 2, 7),  # 0x81
        stx_mem(Size.B, 6, 3, 20),
        ldx_mem(Size.H, 3, 6, 32),  # read back from the keys
        stx_mem(Size.H, 6, 3, 38),
    )
    raw = engine(code).keys.raw
    assert raw[16:21] == bytes.fromhex("8483828181")
    assert u64_at(raw, 24) == 0xFFFFFFFFFFFF8788
    assert raw[32:40] == bytes.fromhex("87ff" "ff00" "3412" "87ff")
    assert u64_at(raw, 40) == 0xFFFFFFFF85868788


def test_atomics(engine: Runner) -> None:
    def atomic(size: Size, dst: int, src: int, off: int, op: int) -> Instruction:
        return Instruction(Class.STX | Mode.ATOMIC | size, dst, src, off, op)

    code = result_of(
        ld_imm64(1, 0x00000001_00000005),
        stx_mem(Size.DW, 10, 1, -8),
        mov64_imm(2, 3),
        atomic(Size.DW, 10, 2, -8, 0x00),  # add: ...08
        mov64_imm(2, 0x30),
        atomic(Size.W, 10, 2, -8, 0x41),  # fetch_or: r2 = 8, low word 0x38
        stx_mem(Size.DW, 6, 2, 16),
        mov64_imm(2, 0x0F),
        atomic(Size.DW, 10, 2, -8, 0x51),  # fetch_and: r2 = 0x100000038, now 8
        stx_mem(Size.DW, 6, 2, 24),
        mov64_imm(2, 0xFF),
        atomic(Size.W, 10, 2, -8, 0xA0),  # xor: 0xf7
        mov64_imm(2, 0x55),
        atomic(Size.DW, 10, 2, -8, 0xE1),  # xchg: r2 = 0xf7, now 0x55
        stx_mem(Size.W, 6, 2, 32),
        mov64_imm(0, 0x55),
        mov64_imm(2, 0x66),
        atomic(Size.DW, 10, 2, -8, 0xF1),  # cmpxchg succeeds: r0 = 0x55, now 0x66
        stx_mem(Size.W, 6, 0, 36),
        mov64_imm(0, 0x55),
        mov64_imm(2, 0x77),
        atomic(Size.DW, 10, 2, -8, 0xF1),  # fails: r0 = 0x66, stays 0x66
        stx_mem(Size.W, 6, 0, 40),
        ldx_mem(Size.DW, 1, 10, -8),
        stx_mem(Size.DW, 6, 1, 44),
    )
    raw = engine(code).keys.raw
    assert u64_at(raw, 16) == 8 and u64_at(raw, 24) == 0x1_00000038
    assert struct.unpack_from("<III", raw, 32) == (0xF7, 0x55, 0x66)
    assert u64_at(raw, 44) == 0x66


def test_gotol_and_ja(engine: Runner) -> None:
    code = result_of(
        mov64_imm(1, 1),
        gotol(2),  # -> r1 += 100
        alu64_imm(AluOp.ADD, 1, 10),
        ja(2),  # -> the store
        alu64_imm(AluOp.ADD, 1, 100),
        ja(-4),  # back to r1 += 10
        stx_mem(Size.DW, 6, 1, 16),
    )
    assert u64_at(engine(code).keys.raw) == 111


def test_bpf_to_bpf_calls_keep_callee_saved_registers_and_frames(engine: Runner) -> None:
    # main: r6 = keys, r7 = 7, a stack slot, call f(&slot); f doubles *slot, uses
    # its own stack and r6-r9, returns 40. After the call r6, r7 and main's stack are intact.
    after = [
        stx_mem(Size.DW, 6, 0, 16),
        stx_mem(Size.DW, 6, 7, 24),
        ldx_mem(Size.DW, 1, 10, -8),
        stx_mem(Size.DW, 6, 1, 32),
        *DONE,
    ]
    main = [
        *KEYS,
        mov64_imm(7, 7),
        mov64_imm(1, 21),
        stx_mem(Size.DW, 10, 1, -8),
        mov64_reg(1, 10),
        alu64_imm(AluOp.ADD, 1, -8),
        call_rel(len(after)),  # f starts right after main
        *after,
    ]
    f = [
        ldx_mem(Size.DW, 2, 1, 0),
        alu64_reg(AluOp.ADD, 2, 2),
        stx_mem(Size.DW, 1, 2, 0),
        mov64_imm(6, 99),
        mov64_imm(7, 99),
        st_mem(Size.DW, 10, -8, 1234),
        mov64_imm(0, 40),
        exit_insn(),
    ]
    raw = engine(encode_program(main + f)).keys.raw
    assert (u64_at(raw, 16), u64_at(raw, 24), u64_at(raw, 32)) == (40, 7, 42)


def test_load_bytes_fails_without_an_skb_and_clears_the_buffer(engine: Runner) -> None:
    # net/core/filter.c, bpf_flow_dissector_load_bytes under BPF_PROG_TEST_RUN: -EFAULT, zeroed buffer.
    code = result_of(
        ld_imm64(2, 0xAAAAAAAAAAAAAAAA),
        stx_mem(Size.DW, 10, 2, -8),
        mov64_imm(2, 0),
        mov64_reg(3, 10),
        alu64_imm(AluOp.ADD, 3, -8),
        mov64_imm(4, 6),
        call(26),
        stx_mem(Size.DW, 6, 0, 16),
        ldx_mem(Size.DW, 1, 10, -8),
        stx_mem(Size.DW, 6, 1, 24),
    )
    raw = engine(code).keys.raw
    assert u64_at(raw, 16) == (-14) & M64  # -EFAULT
    assert u64_at(raw, 24) == 0xAAAA_0000_0000_0000


def test_load_bytes_reads_past_the_linear_part_with_an_skb() -> None:
    # The receive path a test run cannot show: data_end ends the linear part, the helper reads the rest.
    code = result_of(
        mov64_imm(2, 36),
        mov64_reg(3, 10),
        alu64_imm(AluOp.ADD, 3, -8),
        mov64_imm(4, 4),
        call(26),
        stx_mem(Size.DW, 6, 0, 16),
        ldx_mem(Size.W, 1, 10, -8),
        stx_mem(Size.W, 6, 1, 24),
    )
    vm = pyfd.vm.load(code)
    paged = vm.execute(FRAME, linear=20, skb=True).keys.raw
    assert u64_at(paged, 16) == 0 and paged[24:28] == FRAME[36:40]
    assert u64_at(vm.execute(FRAME, linear=20).keys.raw, 16) == (-14) & M64


def test_entry_presets_and_the_clamp_afterwards(engine: Runner) -> None:
    # bpf_flow_dissect: keys zeroed, nhoff = thoff = 14, n_proto from the Ethernet
    # header, flags from ctx_in; afterwards nhoff into [14, len], thoff into [nhoff, len].
    code = result_of(
        ldx_mem(Size.DW, 1, 6, 0),  # nhoff, thoff, addr_proto, is_frag... as they came in
        stx_mem(Size.DW, 6, 1, 16),
        ldx_mem(Size.W, 1, 6, 8),  # is_encap, ip_proto, n_proto
        stx_mem(Size.W, 6, 1, 24),
        ldx_mem(Size.W, 1, 6, 48),
        stx_mem(Size.W, 6, 1, 28),
        st_mem(Size.H, 6, 0, 2),  # nhoff below the start
        st_mem(Size.H, 6, 2, -1),  # thoff past the end
    )
    result = engine(code, FRAME, 5)
    raw = result.keys.raw
    assert raw[16:24] == struct.pack("<HHHBB", 14, 14, 0, 0, 0)
    assert raw[24:28] == b"\0\0\x08\x00" and struct.unpack_from("<I", raw, 28) == (5,)
    assert (result.keys.nhoff, result.keys.thoff) == (14, len(FRAME))
    assert result.retval == 0


def test_context_fields(engine: Runner) -> None:
    code = result_of(
        ldx_mem(Size.W, 2, 1, 76),
        ldx_mem(Size.W, 5, 1, 80),
        mov64_reg(3, 5),
        alu64_reg(AluOp.SUB, 3, 2),
        stx_mem(Size.DW, 6, 3, 16),  # data_end - data
        ldx_mem(Size.DW, 4, 1, 144),
        alu64_reg(AluOp.SUB, 4, 6),
        stx_mem(Size.DW, 6, 4, 24),  # the keys pointer, read again: the same
        mov64_reg(4, 2),
        alu64_imm(AluOp.ADD, 4, 14),
        jmp_reg(JmpOp.JGT, 4, 5, 2),
        ldx_mem(Size.H, 5, 2, 12),
        stx_mem(Size.H, 6, 5, 32),
    )
    raw = engine(code).keys.raw
    assert (u64_at(raw, 16), u64_at(raw, 24), raw[32:34]) == (len(FRAME), 0, b"\x08\x00")


def test_instructions_executed_are_counted() -> None:
    # 1 + 4 + 3 * (3 + 1 back edge) ... counted by hand: a loop of 3 iterations.
    code = encode_program(
        [
            *KEYS,  # 1
            mov64_imm(1, 0),  # 1
            mov64_imm(2, 3),  # 1
            alu64_imm(AluOp.ADD, 1, 5),  # loop: 3 times
            alu64_imm(AluOp.SUB, 2, 1),  # 3 times
            jmp_imm(JmpOp.JNE, 2, 0, -3),  # 3 times
            stx_mem(Size.DW, 6, 1, 16),  # 1
            *DONE,  # 2
        ]
    )
    vm = pyfd.vm.load(code)
    assert u64_at(vm.run(FRAME).keys.raw) == 15
    assert vm.insns_executed == 3 + 9 + 3


# --- the sanitizer ---------------------------------------------------------------------------------

# (name, program, the error's words, instruction): each is a program the kernel's verifier refuses.
BAD: list[tuple[str, list[Instruction], str, int]] = [
    (
        "packet read past data_end",
        [ldx_mem(Size.W, 2, 1, 76), ldx_mem(Size.H, 3, 2, 100), stx_mem(Size.H, 6, 3, 12)],
        "out-of-bounds read of 2 bytes at offset 100 of the packet (60 bytes)",
        2,
    ),
    (
        "packet read before data",
        [ldx_mem(Size.W, 2, 1, 76), ldx_mem(Size.B, 3, 2, -1)],
        "out-of-bounds read of 1 byte, 1 byte before the start of the packet (60 bytes)",
        2,
    ),
    ("packet write", [ldx_mem(Size.W, 2, 1, 76), st_mem(Size.B, 2, 0, 1)], "the packet is read-only", 2),
    ("keys past their 56 bytes", [ldx_mem(Size.W, 3, 6, 54)], "out-of-bounds read of 4 bytes at offset 54 of the flow keys", 1),
    ("stack below r10-512", [mov64_reg(2, 10), st_mem(Size.DW, 2, -520, 1)], "at r10-520, outside the 512-byte stack", 2),
    ("stack at r10", [ldx_mem(Size.B, 2, 10, 0)], "at r10+0, outside the 512-byte stack", 1),
    ("context write", [st_mem(Size.W, 1, 76, 0)], "the context is read-only", 1),
    ("context field no dissector has", [ldx_mem(Size.W, 2, 1, 0)], "invalid context access off=0 size=4", 1),
    ("data read as 8 bytes", [ldx_mem(Size.DW, 2, 1, 76)], "invalid context access off=76 size=8", 1),
    ("NULL pointer", [mov64_imm(2, 0), ldx_mem(Size.B, 3, 2, 4)], "a NULL pointer plus 4", 2),
    ("a scalar as a pointer", [ld_imm64(2, 0x1234_5678_9ABC_DEF0), ldx_mem(Size.B, 3, 2, 0)], "points into no region", 3),
]


@pytest.mark.parametrize(("body", "words", "index"), [pytest.param(*row[1:], id=row[0]) for row in BAD])
def test_an_access_outside_its_region_names_the_instruction(body: list[Instruction], words: str, index: int) -> None:
    with pytest.raises(VmAccessError) as caught:
        pyfd.vm.load(result_of(*body)).run(FRAME)
    assert words in str(caught.value)
    assert caught.value.insn == index
    assert f"at instruction {index} of 'prog'" in str(caught.value)


@needs_kernel
@pytest.mark.parametrize("body", [pytest.param(row[1], id=row[0]) for row in BAD])
def test_the_kernel_refuses_what_the_sanitizer_catches(body: list[Instruction]) -> None:
    with pytest.raises(VerifierError):
        load_program(result_of(*body), name="vm_bad").close()


def test_a_runaway_loop_stops() -> None:
    code = encode_program([*KEYS, ja(-1), *DONE])
    with pytest.raises(VmError, match="a loop ran more than 10,000,000 instructions") as caught:
        pyfd.vm.load(code).run(FRAME)
    assert caught.value.insn == 1


def test_what_the_interpreter_cannot_run_is_refused_at_load() -> None:
    with pytest.raises(VmError, match="helper 6 is not one the interpreter has") as caught:
        pyfd.vm.load(result_of(call(6)))
    assert caught.value.insn == 1
    with pytest.raises(VmError, match="falls off the end"):
        pyfd.vm.load(encode_program([mov64_imm(0, 0)]))
    with pytest.raises(VmError, match="legacy packet access"):
        pyfd.vm.load(encode_program([Instruction(Class.LD | Mode.ABS | Size.B, 0, 0, 0, 12), *DONE]))


def test_errors_pickle() -> None:
    import pickle

    with pytest.raises(VmAccessError) as caught:
        pyfd.vm.load(result_of(*BAD[0][1])).run(FRAME)
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is VmAccessError and str(again) == str(caught.value) and again.insn == 2


def test_frames_and_flags_are_checked_as_the_kernel_run_checks_them() -> None:
    vm = pyfd.vm.load(result_of())
    with pytest.raises(ValueError, match="14 to 4096 bytes"):
        vm.run(b"\0" * 13)
    with pytest.raises(ValueError, match="32 bits"):
        vm.run(FRAME, flags=1 << 32)
    with pytest.raises(TypeError):
        vm.run(5)  # type: ignore[arg-type]

