"""Facts passes share: single definitions and how many bits a value can use.

The width rules are one table, `WIDTH_RULES`: per IR operation, how the
result's bits follow from its operands' bits, and whether the kernel's
verifier learns the same bound from the native backend's code for it. The
optimiser uses every rule (`Facts.bits`); the native backend's packet-offset
clamp uses only the verifier's (`Facts.bits(op, verifier=True)`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, TypeVar

from ..ir.analysis import definition_counts
from ..ir.nodes import (
    Binary, BinaryOp, ByteSwap, Copy, Extend, Function, Imm, Instruction, LoadConfig, LoadKeys, LoadMapValue,
    LoadPacket, Operand, Reg, SetCond, defined, used_regs,
)

Bits = Callable[[Operand], int]
"""The bits of an operand, as far as the rules know (64: unknown)."""

_Insn = TypeVar("_Insn", bound=Instruction)


@dataclass(frozen=True)
class WidthRule(Generic[_Insn]):
    """How many bits an operation's result uses, given its operands' bits."""

    bits: Callable[[_Insn, Bits], int]
    # Whether the verifier's range tracking (kernel/bpf/verifier.c,
    # adjust_scalar_min_max_vals) proves the bound too, from the instructions
    # the native backend selects for the operation.
    verifier: bool


def _shift_count(insn: Binary) -> int | None:
    return insn.rhs.value & 63 if isinstance(insn.rhs, Imm) else None  # the count is masked with 63


def _lshr(insn: Binary, bits: Bits) -> int:
    k = _shift_count(insn)
    return 64 if k is None else max(bits(insn.lhs) - k, 1)


def _shl(insn: Binary, bits: Bits) -> int:
    k = _shift_count(insn)
    return 64 if k is None else min(bits(insn.lhs) + k, 64)


_LOAD = WidthRule[LoadKeys | LoadPacket](lambda i, bits: i.size * 8, verifier=True)  # a narrow load zero-extends
_BINARY: dict[BinaryOp, WidthRule[Binary]] = {
    BinaryOp.AND: WidthRule(lambda i, bits: min(bits(i.lhs), bits(i.rhs)), verifier=True),
    BinaryOp.OR: WidthRule(lambda i, bits: max(bits(i.lhs), bits(i.rhs)), verifier=True),
    BinaryOp.XOR: WidthRule(lambda i, bits: max(bits(i.lhs), bits(i.rhs)), verifier=True),
    BinaryOp.ADD: WidthRule(lambda i, bits: min(max(bits(i.lhs), bits(i.rhs)) + 1, 64), verifier=True),
    BinaryOp.LSHR: WidthRule(_lshr, verifier=True),
    BinaryOp.SHL: WidthRule(_shl, verifier=True),
    # The verifier learns nothing from a multiplication, division or modulo
    # whose operands are not constants: their results are unbounded to it.
    BinaryOp.MUL: WidthRule(lambda i, bits: min(bits(i.lhs) + bits(i.rhs), 64), verifier=False),
    BinaryOp.UDIV: WidthRule(lambda i, bits: bits(i.lhs), verifier=False),
    BinaryOp.UMOD: WidthRule(lambda i, bits: bits(i.lhs), verifier=False),
}
# Each rule takes the instructions of its key (so the values' types differ: Any).
WIDTH_RULES: dict[type, WidthRule[Any]] = {
    LoadKeys: _LOAD,
    LoadPacket: _LOAD,
    LoadMapValue: _LOAD,
    LoadConfig: _LOAD,
    Copy: WidthRule[Copy](lambda i, bits: bits(i.src), verifier=True),
    # An unsigned extension is an `and` with a mask, or a zero-extending mov32.
    Extend: WidthRule[Extend](lambda i, bits: i.bits if not i.signed else 64, verifier=True),
    # Nothing from a byte swap (the verifier marks the result unknown).
    ByteSwap: WidthRule[ByteSwap](lambda i, bits: i.bits, verifier=False),
    # SetCond becomes two branches before selection: no single definition.
    SetCond: WidthRule[SetCond](lambda i, bits: 1, verifier=False),
}
"""Per IR operation but Binary, whose rules are per BinaryOp (`width_rule` picks); an operation absent has unknown width."""


def width_rule(insn: Instruction) -> WidthRule[Any] | None:
    """The rule for `insn`'s result width, None if nothing is known of it."""
    if isinstance(insn, Binary):
        return _BINARY.get(insn.op)
    return WIDTH_RULES.get(type(insn))


class Facts:
    """Per-function: the unique definition of single-assignment registers, reads, value widths."""

    def __init__(self, fn: Function) -> None:
        counts = definition_counts(fn)
        self.defs: dict[Reg, Instruction] = {}
        for insn in fn.instructions():
            d = defined(insn)
            if d is not None and counts[d] == 1:
                self.defs[d] = insn
        self._fn = fn
        self._bits: tuple[dict[Reg, int], dict[Reg, int]] = ({}, {})

    @cached_property
    def uses(self) -> Counter[Reg]:
        """How many instructions and terminators read each register (counted at first use: most passes never ask)."""
        return Counter(r for b in self._fn.blocks for node in [*b.insns, b.term] for r in used_regs(node))

    def single(self, op: Operand) -> Instruction | None:
        """The only instruction writing `op`, if it is a single-assignment register."""
        return self.defs.get(op) if isinstance(op, Reg) else None

    def bits(self, op: Operand, depth: int = 0, *, verifier: bool = False) -> int:
        """An upper bound on the number of significant bits of `op` (64 if unknown).

        With `verifier`, a bound the verifier proves too, from the native
        backend's code: only rules marked `verifier` in WIDTH_RULES apply.
        """
        if isinstance(op, Imm):
            return max(op.value.bit_length(), 1)
        cache = self._bits[verifier]
        if op in cache:
            return cache[op]
        insn = self.defs.get(op)
        result = 64
        if insn is not None and depth < 32:
            rule = width_rule(insn)
            if rule is not None and (rule.verifier or not verifier):
                result = rule.bits(insn, lambda o: self.bits(o, depth + 1, verifier=verifier))
        cache[op] = result
        return result
