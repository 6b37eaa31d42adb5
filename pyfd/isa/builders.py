"""Instruction builders, one per macro in the kernel's include/linux/filter.h.

``alu64_imm(BPF_ADD, R1, 22)`` is BPF_ALU64_IMM(BPF_ADD, BPF_REG_1, 22).
Jumps take a target that is either a slot offset or a Label for resolve().
"""

from __future__ import annotations

from .insn import Instruction, Label
from .opcodes import (
    BPF_LD_IMM64,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
    AluOp,
    Class,
    JmpOp,
    Mode,
    Size,
    Source,
)

Target = int | Label
"""A jump destination: an offset in slots from the next instruction, or a Label."""


def _alu(
    cls: Class, op: AluOp, source: Source, dst: int, src: int, imm: int, span: object
) -> Instruction:
    if op in (AluOp.NEG, AluOp.END):
        raise ValueError(f"{op.name} has its own builder (neg64/neg32/endian)")
    return Instruction(cls | op | source, dst, src, 0, imm, span)


def alu64_imm(
    op: AluOp, dst: int, imm: int, *, span: object | None = None
) -> Instruction:
    """BPF_ALU64_IMM: dst op= imm, 64-bit."""
    return _alu(Class.ALU64, op, Source.K, dst, 0, imm, span)


def alu64_reg(
    op: AluOp, dst: int, src: int, *, span: object | None = None
) -> Instruction:
    """BPF_ALU64_REG: dst op= src, 64-bit."""
    return _alu(Class.ALU64, op, Source.X, dst, src, 0, span)


def alu32_imm(
    op: AluOp, dst: int, imm: int, *, span: object | None = None
) -> Instruction:
    """BPF_ALU32_IMM: dst op= imm on the low 32 bits, upper half zeroed."""
    return _alu(Class.ALU, op, Source.K, dst, 0, imm, span)


def alu32_reg(
    op: AluOp, dst: int, src: int, *, span: object | None = None
) -> Instruction:
    """BPF_ALU32_REG: dst op= src on the low 32 bits, upper half zeroed."""
    return _alu(Class.ALU, op, Source.X, dst, src, 0, span)


def mov64_imm(dst: int, imm: int, *, span: object | None = None) -> Instruction:
    """BPF_MOV64_IMM: dst = imm, sign-extended to 64 bits."""
    return alu64_imm(AluOp.MOV, dst, imm, span=span)


def mov64_reg(dst: int, src: int, *, span: object | None = None) -> Instruction:
    """BPF_MOV64_REG: dst = src."""
    return alu64_reg(AluOp.MOV, dst, src, span=span)


def mov32_imm(dst: int, imm: int, *, span: object | None = None) -> Instruction:
    """BPF_MOV32_IMM: dst = (u32) imm."""
    return alu32_imm(AluOp.MOV, dst, imm, span=span)


def mov32_reg(dst: int, src: int, *, span: object | None = None) -> Instruction:
    """BPF_MOV32_REG: dst = (u32) src."""
    return alu32_reg(AluOp.MOV, dst, src, span=span)


def neg64(dst: int, *, span: object | None = None) -> Instruction:
    """BPF_ALU64_IMM(BPF_NEG, dst, 0): dst = -dst."""
    return Instruction(Class.ALU64 | AluOp.NEG | Source.K, dst, 0, 0, 0, span)


def neg32(dst: int, *, span: object | None = None) -> Instruction:
    """BPF_ALU32_IMM(BPF_NEG, dst, 0): dst = (u32) -dst."""
    return Instruction(Class.ALU | AluOp.NEG | Source.K, dst, 0, 0, 0, span)


def endian(
    dst: int, bits: int, to_be: bool = True, *, span: object | None = None
) -> Instruction:
    """BPF_ENDIAN: convert the low ``bits`` (16, 32, 64) of dst to big or little endian."""
    if bits not in (16, 32, 64):
        raise ValueError(f"endian width must be 16, 32 or 64, not {bits}")
    order = Source.TO_BE if to_be else Source.TO_LE
    return Instruction(Class.ALU | AluOp.END | order, dst, 0, 0, bits, span)


def ldx_mem(
    size: Size, dst: int, src: int, off: int, *, span: object | None = None
) -> Instruction:
    """BPF_LDX_MEM: dst = *(size *)(src + off), zero-extended."""
    return Instruction(Class.LDX | Mode.MEM | size, dst, src, off, 0, span)


def ldx_memsx(
    size: Size, dst: int, src: int, off: int, *, span: object | None = None
) -> Instruction:
    """BPF_LDX_MEMSX: dst = *(signed size *)(src + off), sign-extended (cpu v4)."""
    if size == Size.DW:
        raise ValueError("BPF_MEMSX has no 64-bit form")
    return Instruction(Class.LDX | Mode.MEMSX | size, dst, src, off, 0, span)


def stx_mem(
    size: Size, dst: int, src: int, off: int, *, span: object | None = None
) -> Instruction:
    """BPF_STX_MEM: *(size *)(dst + off) = src."""
    return Instruction(Class.STX | Mode.MEM | size, dst, src, off, 0, span)


def st_mem(
    size: Size, dst: int, off: int, imm: int, *, span: object | None = None
) -> Instruction:
    """BPF_ST_MEM: *(size *)(dst + off) = imm."""
    return Instruction(Class.ST | Mode.MEM | size, dst, 0, off, imm, span)


def ld_imm64(dst: int, imm: int, *, span: object | None = None) -> Instruction:
    """BPF_LD_IMM64: dst = imm, a full 64-bit immediate in two slots."""
    return Instruction(BPF_LD_IMM64, dst, 0, 0, imm, span)


def ld_map_fd(dst: int, map_index: int, *, span: object | None = None) -> Instruction:
    """BPF_LD_MAP_FD: dst = the map `map_index` (src BPF_PSEUDO_MAP_FD; the loader puts its fd in imm)."""
    return Instruction(BPF_LD_IMM64, dst, BPF_PSEUDO_MAP_FD, 0, map_index, span)


def ld_map_value(dst: int, map_index: int, offset: int, *, span: object | None = None) -> Instruction:
    """dst = the address `offset` bytes into the value of map `map_index` (src BPF_PSEUDO_MAP_VALUE)."""
    if not 0 <= map_index < 2**32 or not 0 <= offset < 2**32:
        raise ValueError(f"map {map_index} or offset {offset} does not fit in 32 bits")
    return Instruction(BPF_LD_IMM64, dst, BPF_PSEUDO_MAP_VALUE, 0, offset << 32 | map_index, span)


def atomic_op(size: Size, op: AluOp, dst: int, src: int, off: int, *, span: object | None = None) -> Instruction:
    """BPF_ATOMIC_OP: *(size *)(dst + off) op= src, atomically (op ADD, OR, AND or XOR; size W or DW)."""
    if size not in (Size.W, Size.DW) or op not in (AluOp.ADD, AluOp.OR, AluOp.AND, AluOp.XOR):
        raise ValueError(f"no atomic {op.name} on {size.name}")
    return Instruction(Class.STX | Mode.ATOMIC | size, dst, src, off, int(op), span)


def ld_abs(size: Size, imm: int, *, span: object | None = None) -> Instruction:
    """BPF_LD_ABS: r0 = packet[imm], legacy socket-filter access through r6."""
    return Instruction(Class.LD | Mode.ABS | size, 0, 0, 0, imm, span)


def ld_ind(
    size: Size, src: int, imm: int, *, span: object | None = None
) -> Instruction:
    """BPF_LD_IND: r0 = packet[src + imm], legacy socket-filter access through r6."""
    return Instruction(Class.LD | Mode.IND | size, 0, src, 0, imm, span)


def _jump(
    cls: Class,
    op: JmpOp,
    source: Source,
    dst: int,
    src: int,
    imm: int,
    target: Target,
    span: object,
) -> Instruction:
    if op in (JmpOp.JA, JmpOp.CALL, JmpOp.EXIT):
        raise ValueError(f"{op.name} is not a conditional jump; use ja/call/exit_insn")
    return _with_target(cls | op | source, dst, src, imm, target, span)


def _with_target(
    opcode: int, dst: int, src: int, imm: int, target: Target, span: object
) -> Instruction:
    if isinstance(target, Label):
        return Instruction(opcode, dst, src, 0, imm, span, target=target)
    return Instruction(opcode, dst, src, target, imm, span)


def jmp_imm(
    op: JmpOp, dst: int, imm: int, target: Target, *, span: object | None = None
) -> Instruction:
    """BPF_JMP_IMM: if dst op imm goto target, 64-bit compare."""
    return _jump(Class.JMP, op, Source.K, dst, 0, imm, target, span)


def jmp_reg(
    op: JmpOp, dst: int, src: int, target: Target, *, span: object | None = None
) -> Instruction:
    """BPF_JMP_REG: if dst op src goto target, 64-bit compare."""
    return _jump(Class.JMP, op, Source.X, dst, src, 0, target, span)


def jmp32_imm(
    op: JmpOp, dst: int, imm: int, target: Target, *, span: object | None = None
) -> Instruction:
    """BPF_JMP32_IMM: if (u32) dst op imm goto target."""
    return _jump(Class.JMP32, op, Source.K, dst, 0, imm, target, span)


def jmp32_reg(
    op: JmpOp, dst: int, src: int, target: Target, *, span: object | None = None
) -> Instruction:
    """BPF_JMP32_REG: if (u32) dst op (u32) src goto target."""
    return _jump(Class.JMP32, op, Source.X, dst, src, 0, target, span)


def ja(target: Target, *, span: object | None = None) -> Instruction:
    """BPF_JMP_A: goto target."""
    return _with_target(Class.JMP | JmpOp.JA, 0, 0, 0, target, span)


def gotol(target: Target, *, span: object | None = None) -> Instruction:
    """BPF_JMP32_A (cpu v4, kernel 6.6+): goto target, with a 32-bit offset in imm."""
    if isinstance(target, Label):
        return Instruction(Class.JMP32 | JmpOp.JA, 0, 0, 0, 0, span, target=target)
    return Instruction(Class.JMP32 | JmpOp.JA, 0, 0, 0, target, span)


def call(helper_id: int, *, span: object | None = None) -> Instruction:
    """BPF_EMIT_CALL: call the kernel helper numbered helper_id (enum bpf_func_id)."""
    return Instruction(Class.JMP | JmpOp.CALL, 0, 0, 0, helper_id, span)


def call_rel(target: Target, *, span: object | None = None) -> Instruction:
    """BPF_CALL_REL: call the BPF function at target (src = BPF_PSEUDO_CALL)."""
    opcode = Class.JMP | JmpOp.CALL
    if isinstance(target, Label):
        return Instruction(opcode, 0, BPF_PSEUDO_CALL, 0, 0, span, target=target)
    return Instruction(opcode, 0, BPF_PSEUDO_CALL, 0, target, span)


def exit_insn(*, span: object | None = None) -> Instruction:
    """BPF_EXIT_INSN: return r0."""
    return Instruction(Class.JMP | JmpOp.EXIT, 0, 0, 0, 0, span)
