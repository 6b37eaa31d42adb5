"""DropExtensions: no zero-extension of a value that already fits, in a local written more than once too.

A `u16` local is truncated after every arithmetic assignment (`offset +=
hdr.seq * 4` in `lib.gre`: add, then zext16). Peephole drops a truncation
of a single-assignment register it can bound; a local assigned on several
paths it cannot. Here each register's width is followed along the CFG (a
forward analysis, the width at a join the larger of its predecessors'),
from the width rules of facts.WIDTH_RULES; a width that keeps growing at a
block (a loop counter) goes to 64 bits, so the analysis ends quickly. Only
the rules the verifier follows too (`verifier=True`) count: it walks each
path with the values that path computes, so an extension dropped here
never takes a bound away from it.
"""

from __future__ import annotations

from ..ir.analysis import reverse_postorder
from ..ir.nodes import Binary, BinaryOp, Copy, Extend, Function, Imm, Instruction, Operand, Reg, defined
from .facts import width_rule

State = dict[Reg, int]

# Increases of one register's width at one block before it is taken as unbounded.
_WIDENINGS = 3


def _extension(insn: Instruction) -> tuple[int, Reg] | None:
    """(k, x) if `insn` keeps the low k bits of register x (`zext`, or `x & (2**k - 1)`)."""
    if isinstance(insn, Extend) and not insn.signed and isinstance(insn.src, Reg):
        return insn.bits, insn.src
    if isinstance(insn, Binary) and insn.op is BinaryOp.AND and isinstance(insn.lhs, Reg) and isinstance(insn.rhs, Imm):
        m = insn.rhs.value
        if m and m & (m + 1) == 0:
            return m.bit_length(), insn.lhs
    return None


def _step(insn: Instruction, state: State) -> None:
    d = defined(insn)
    if d is None:
        return

    def bits(op: Operand) -> int:
        return max(op.value.bit_length(), 1) if isinstance(op, Imm) else state.get(op, 64)

    rule = width_rule(insn)
    state[d] = rule.bits(insn, bits) if rule is not None and rule.verifier else 64
    found = _extension(insn)
    if found is not None:  # the low k bits of a narrower value are all of it (the Extend rule says k)
        state[d] = min(state[d], bits(found[1]))


class DropExtensions:
    """Turn a zero-extension (or an `and` with a low mask) of a value that fits into a copy."""

    name = "drop-extensions"

    def run(self, fn: Function) -> bool:
        if not any(_extension(i) for i in fn.instructions()):
            return False
        blocks = fn.block_map()
        preds = fn.predecessors()
        order = reverse_postorder(fn)
        entry: dict[str, State] = {}
        out: dict[str, State] = {}
        grown: dict[tuple[str, Reg], int] = {}
        changed_any = True
        while changed_any:
            changed_any = False
            for label in order:
                # A predecessor not reached yet adds nothing; a register one
                # reached predecessor does not write is unknown there (64).
                reached = [out[p] for p in preds[label] if p in out]
                merged: State = {}
                for pred in reached:
                    for reg, w in pred.items():
                        if merged.get(reg, 0) < w:
                            merged[reg] = w
                for reg in merged:
                    if any(reg not in pred for pred in reached):
                        merged[reg] = 64
                old = entry.get(label, {})
                for reg, w in merged.items():
                    if old.get(reg, 0) < w and reg in old:
                        grown[label, reg] = grown.get((label, reg), 0) + 1
                        if grown[label, reg] > _WIDENINGS:
                            merged[reg] = 64
                entry[label] = merged
                state = dict(merged)
                for insn in blocks[label].insns:
                    _step(insn, state)
                if out.get(label) != state:
                    out[label] = state
                    changed_any = True
        changed = False
        for label in order:
            state = dict(entry[label])
            block = blocks[label]
            new_insns: list[Instruction] = []
            for insn in block.insns:
                found = _extension(insn)
                d = defined(insn)
                if found is not None and d is not None and state.get(found[1], 64) <= found[0]:
                    insn = Copy(d, found[1], insn.span)
                    changed = True
                _step(insn, state)
                new_insns.append(insn)
            block.insns = new_insns
        return changed
