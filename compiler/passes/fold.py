"""ConstantFold: evaluate operations on constants and propagate constants and copies."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

from pyfd.abi import MAX_PACKET_OFF

from ..ir.nodes import (
    Binary, Branch, ByteSwap, CheckPacket, Copy, Extend, Function, Imm, Instruction, Jump,
    LoadPacket, Operand, Reg, SetCond, Terminator, Unary, UnaryOp, evaluate_binary, evaluate_bswap, evaluate_cmp, to_u64,
)
from .base import rounds_to_fixed_point
from .facts import Facts


_Node = TypeVar("_Node", Instruction, Terminator)


# The fields a copy's source may replace, of the node types that have them; a
# map pointer (`ptr`) is never a copy, and a packet base only a constant.
_OPERAND_NAMES = ("src", "lhs", "rhs", "key", "value")
_FIELDS: dict[type, tuple[str, ...]] = {}


def _operand_fields(kind: type) -> tuple[str, ...]:
    found = _FIELDS.get(kind)
    if found is None:
        found = _FIELDS[kind] = tuple(name for name in _OPERAND_NAMES if name in {f.name for f in fields(kind)})
    return found


def substitute(node: _Node, values: dict[Reg, Operand]) -> _Node:
    """`node` with every read of a register in `values` replaced (packet bases excepted)."""
    changes: dict[str, Any] = {}  # field name -> operand
    for name in _operand_fields(type(node)):
        op = getattr(node, name)
        if isinstance(op, Reg) and op in values:
            changes[name] = values[op]
    if isinstance(node, (LoadPacket, CheckPacket)) and isinstance(node.base, Reg) and node.base in values:
        new = values[node.base]
        if isinstance(new, Imm):  # a constant base stays a valid, single-valued base
            changes["base"] = new
    return replace(node, **changes) if changes else node


def _fold(insn: Instruction) -> Instruction:
    match insn:
        case Binary(op, dst, Imm(value=a), Imm(value=b), span):
            return Copy(dst, Imm(evaluate_binary(op, a, b)), span)
        case Unary(op, dst, Imm(value=a), span):
            return Copy(dst, Imm(-a if op is UnaryOp.NEG else ~a), span)
        case Extend(signed, bits, dst, Imm(value=a), span):
            v = a & ((1 << bits) - 1)
            if signed and v >> (bits - 1):
                v -= 1 << bits
            return Copy(dst, Imm(v), span)
        case ByteSwap(bits, dst, Imm(value=a), span):
            return Copy(dst, Imm(evaluate_bswap(a, bits)), span)
        case SetCond(cmp, dst, Imm(value=a), Imm(value=b), span):
            return Copy(dst, Imm(int(evaluate_cmp(cmp, a, b))), span)
    return insn


class ConstantFold:
    """Fold constant operations and branches; forward single-assignment copies."""

    name = "constant-fold"

    def run(self, fn: Function) -> bool:
        # To a fixed point: a folded instruction becomes a copy of a constant
        # that its readers can take in turn, and a pass run on its own output
        # must find nothing left to do.
        return rounds_to_fixed_point(self._round, fn)

    def _round(self, fn: Function) -> bool:
        facts = Facts(fn)
        values: dict[Reg, Operand] = {}
        for reg, insn in facts.defs.items():
            if isinstance(insn, Copy):
                src = insn.src
                # Only forward a register that is itself written once: a local
                # may change between the copy and the use.
                if isinstance(src, Imm) or src in facts.defs:
                    values[reg] = src
        # Resolve chains a -> b -> c.
        for reg in list(values):
            seen = {reg}
            value = values[reg]
            while isinstance(value, Reg) and value in values and value not in seen:
                seen.add(value)
                value = values[value]
            values[reg] = value
        changed = False
        for block in fn.blocks:
            new_insns = []
            for insn in block.insns:
                new = _fold(substitute(insn, values))
                changed |= new != insn
                new_insns.append(new)
            block.insns = new_insns
            term = substitute(block.term, values)
            if isinstance(term, Branch) and isinstance(term.lhs, Imm) and isinstance(term.rhs, Imm):
                term = Jump(term.then if evaluate_cmp(term.cmp, term.lhs.value, term.rhs.value) else term.otherwise, term.span)
            if isinstance(term, CheckPacket) and isinstance(term.base, Imm) and to_u64(term.base.value) > MAX_PACKET_OFF - term.size:
                term = Jump(term.fail, term.span)
            changed |= term != block.term
            block.term = term
        return changed
