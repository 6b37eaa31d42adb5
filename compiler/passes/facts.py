"""Facts passes share: single definitions and how many bits a value can use."""

from __future__ import annotations

from collections import Counter

from ..ir.analysis import definition_counts
from ..ir.nodes import (
    Binary, BinaryOp, ByteSwap, Copy, Extend, Function, Imm, Instruction, LoadKeys, LoadPacket,
    Operand, Reg, SetCond, defined, used_regs,
)


class Facts:
    """Per-function: the unique definition of single-assignment registers, reads, value widths."""

    def __init__(self, fn: Function) -> None:
        counts = definition_counts(fn)
        self.defs: dict[Reg, Instruction] = {}
        for insn in fn.instructions():
            d = defined(insn)
            if d is not None and counts[d] == 1:
                self.defs[d] = insn
        # How many instructions and terminators read each register.
        self.uses: Counter[Reg] = Counter(r for b in fn.blocks for node in [*b.insns, b.term] for r in used_regs(node))
        self._bits: dict[Reg, int] = {}

    def single(self, op: Operand) -> Instruction | None:
        """The only instruction writing `op`, if it is a single-assignment register."""
        return self.defs.get(op) if isinstance(op, Reg) else None

    def bits(self, op: Operand, depth: int = 0) -> int:
        """An upper bound on the number of significant bits of `op` (64 if unknown)."""
        if isinstance(op, Imm):
            return max(op.value.bit_length(), 1)
        if op in self._bits:
            return self._bits[op]
        insn = self.defs.get(op)
        result = 64
        if insn is not None and depth < 32:
            match insn:
                case LoadKeys(size=size) | LoadPacket(size=size):
                    result = size * 8
                case ByteSwap(bits=bits) | Extend(signed=False, bits=bits):
                    result = bits
                case SetCond():
                    result = 1
                case Copy(src=src):
                    result = self.bits(src, depth + 1)
                case Binary(op=BinaryOp.AND, lhs=a, rhs=b):
                    result = min(self.bits(a, depth + 1), self.bits(b, depth + 1))
                case Binary(op=BinaryOp.OR | BinaryOp.XOR, lhs=a, rhs=b):
                    result = max(self.bits(a, depth + 1), self.bits(b, depth + 1))
                case Binary(op=BinaryOp.LSHR, lhs=a, rhs=Imm(value=k)):
                    result = max(self.bits(a, depth + 1) - (k & 63), 1)  # the count is masked with 63
                case Binary(op=BinaryOp.SHL, lhs=a, rhs=Imm(value=k)):
                    result = min(self.bits(a, depth + 1) + (k & 63), 64)
                case Binary(op=BinaryOp.ADD, lhs=a, rhs=b):
                    result = min(max(self.bits(a, depth + 1), self.bits(b, depth + 1)) + 1, 64)
                case Binary(op=BinaryOp.MUL, lhs=a, rhs=b):
                    result = min(self.bits(a, depth + 1) + self.bits(b, depth + 1), 64)
                case Binary(op=BinaryOp.UDIV | BinaryOp.UMOD, lhs=a):
                    result = self.bits(a, depth + 1)
        self._bits[op] = result
        return result
