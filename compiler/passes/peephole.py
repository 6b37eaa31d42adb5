"""Peephole: algebraic identities, byte-swap cancellation, strength reduction.

The frontend converts every network-order field to host order on read and back
on write, so `keys.sport = ports.sport` starts as load, swap, swap, store; and
`keys.n_proto != ETH_P_IP` as load, swap, compare. These rewrites leave the raw
load and store, and the compare against a swapped constant, as clang emits.
"""

from __future__ import annotations

from ..ir.nodes import (
    Binary, BinaryOp, Branch, ByteSwap, Cmp, Copy, Extend, Function, Imm, Instruction, Operand,
    Reg, SetCond, StoreKeys, evaluate_bswap,
)
from .base import rounds_to_fixed_point
from .facts import Facts


class Peephole:
    """Local rewrites on single-assignment values."""

    name = "peephole"

    def run(self, fn: Function) -> bool:
        # To a fixed point: one rewrite exposes the next (a cancelled swap
        # becomes a zero-extension that a store then drops), and a pass run
        # on its own output must find nothing left to do.
        return rounds_to_fixed_point(self._round, fn)

    def _round(self, fn: Function) -> bool:
        facts = Facts(fn)
        changed = False
        for block in fn.blocks:
            new_insns = []
            for insn in block.insns:
                new = self._insn(insn, facts)
                changed |= new != insn
                new_insns.append(new)
            block.insns = new_insns
            term = block.term
            if isinstance(term, Branch):
                new_term = self._compare(term, facts)
                changed |= new_term != term
                block.term = new_term
        return changed

    @staticmethod
    def _stable(op: Operand, facts: Facts) -> bool:
        """True if `op` holds the same value wherever it is read: a rewrite may move a read of it.

        Reading the operand of another instruction's definition at this point
        is right only if nothing wrote it in between; a local written more
        than once (`x = ...; k = swap(x); x = ...; swap(k)`) may have changed.
        """
        return isinstance(op, Imm) or op in facts.defs

    def _fits(self, op: Operand, bits: int, facts: Facts) -> bool:
        return facts.bits(op) <= bits

    def _insn(self, insn: Instruction, facts: Facts) -> Instruction:
        match insn:
            case ByteSwap(bits, dst, src, span):
                inner = facts.single(src)
                if isinstance(inner, ByteSwap) and inner.bits == bits and self._stable(inner.src, facts):
                    x = inner.src
                    return Copy(dst, x, span) if self._fits(x, bits, facts) else Extend(False, bits, dst, x, span)
            case Extend(False, bits, dst, src, span) if self._fits(src, bits, facts):
                return Copy(dst, src, span)
            case Binary(BinaryOp.MUL, dst, a, Imm(value=v), span) if v and v & (v - 1) == 0:
                return Binary(BinaryOp.SHL, dst, a, Imm(v.bit_length() - 1), span)
            case Binary(BinaryOp.MUL, dst, Imm(value=v), b, span) if v and v & (v - 1) == 0:
                return Binary(BinaryOp.SHL, dst, b, Imm(v.bit_length() - 1), span)
            case Binary(BinaryOp.AND, dst, a, Imm(value=m), span) if (
                m == (1 << 64) - 1 or self._fits(a, m.bit_length(), facts) and m == (1 << m.bit_length()) - 1
            ):
                return Copy(dst, a, span)
            case Binary(BinaryOp.ADD | BinaryOp.SUB | BinaryOp.OR | BinaryOp.XOR | BinaryOp.SHL | BinaryOp.LSHR | BinaryOp.ASHR, dst, a, Imm(value=0), span):
                return Copy(dst, a, span)
            case StoreKeys(offset, size, src, span):
                inner = facts.single(src)
                if isinstance(inner, Extend) and not inner.signed and inner.bits >= size * 8 and self._stable(inner.src, facts):
                    return StoreKeys(offset, size, inner.src, span)
            case SetCond(cmp, dst, lhs, rhs, span):
                new = self._compare_operands(cmp, lhs, rhs, facts)
                if new is not None:
                    return SetCond(new[0], dst, new[1], new[2], span)
        return insn

    def _compare_operands(self, cmp: Cmp, lhs: Operand, rhs: Operand, facts: Facts) -> tuple[Cmp, Operand, Operand] | None:
        if cmp not in (Cmp.EQ, Cmp.NE) or not isinstance(rhs, Imm):
            return None
        inner = facts.single(lhs)
        # Only when this compare is the swap's one reader: then the swap dies.
        # Otherwise both the raw and the swapped value stay live, which costs
        # a register (and, under pressure, spills) to save nothing.
        if (
            isinstance(inner, ByteSwap)
            and isinstance(lhs, Reg)
            and facts.uses[lhs] == 1
            and self._stable(inner.src, facts)
            and self._fits(inner.src, inner.bits, facts)
            and rhs.value < (1 << inner.bits)
        ):
            return cmp, inner.src, Imm(evaluate_bswap(rhs.value, inner.bits))
        return None

    def _compare(self, term: Branch, facts: Facts) -> Branch:
        lhs, rhs, cmp = term.lhs, term.rhs, term.cmp
        if isinstance(lhs, Imm) and not isinstance(rhs, Imm):
            lhs, rhs, cmp = rhs, lhs, cmp.swapped()
        new = self._compare_operands(cmp, lhs, rhs, facts)
        if new is not None:
            cmp, lhs, rhs = new
        if (cmp, lhs, rhs) == (term.cmp, term.lhs, term.rhs):
            return term
        return Branch(cmp, lhs, rhs, term.then, term.otherwise, term.span)
