"""ThreadJumps: skip a branch whose outcome the jumping block already decides.

A helper's `return BPF_DROP, 0` sets the caller's result registers to
constants and jumps to the block after the call, which tests them
(`if verdict != NEXT: return verdict`). When a block ends in `jump J`, J holds
only a few copies and a branch, and the constants the block leaves make the
branch's outcome known, the block takes J's copies and jumps straight to that
outcome. Repeated, a constant return travels to its `return` without the
tests; DeadCode then removes the copies nothing reads any more.

Only when they die: a join whose copies are still read where the threaded
jump lands (a verdict counted after it is known, samples/counting.py) is
left alone, since each predecessor would keep its own copy of them (there,
threading made the native code 99 instructions longer; samples/full.py,
whose verdicts are returned, loses 8 instructions of its gain).
"""

from __future__ import annotations

from ..ir.nodes import (
    Block,
    Branch,
    CheckPacket,
    Copy,
    Function,
    Imm,
    Jump,
    LoadPacket,
    Reg,
    defined,
    evaluate_cmp,
)
from .dce import liveness

# The most copies a join block may hold to be duplicated into its predecessors.
MAX_COPIES = 4


class ThreadJumps:
    """Retarget `jump J` past J's branch when the jumping block decides it."""

    name = "thread-jumps"

    def run(self, fn: Function) -> bool:
        live, _ = liveness(fn)
        bases = packet_bases(fn)
        blocks = fn.block_map()
        changed = False
        for block in fn.blocks:
            if not isinstance(block.term, Jump) or block.term.target == block.label:
                continue
            join = blocks[block.term.target]
            term = join.term
            if not isinstance(term, Branch) or len(join.insns) > MAX_COPIES or join is fn.entry:
                continue
            if not all(isinstance(i, Copy) and i.dst not in bases for i in join.insns):
                continue  # a packet base must keep its single definition (the IR checker's proof)
            known = constants_at_end(block)
            for insn in join.insns:
                assert isinstance(insn, Copy)
                src = insn.src
                value = src.value if isinstance(src, Imm) else known.get(src)
                if value is None:
                    known.pop(insn.dst, None)
                else:
                    known[insn.dst] = value
            lhs = term.lhs.value if isinstance(term.lhs, Imm) else known.get(term.lhs)
            rhs = term.rhs.value if isinstance(term.rhs, Imm) else known.get(term.rhs)
            if lhs is None or rhs is None:
                continue
            target = term.then if evaluate_cmp(term.cmp, lhs, rhs) else term.otherwise
            if any(insn.dst in live[target] for insn in join.insns if isinstance(insn, Copy)):
                continue  # the copies would live on, one set per predecessor
            block.insns = [*block.insns, *join.insns]
            block.term = Jump(target, block.term.span)
            changed = True
        return changed


def packet_bases(fn: Function) -> set[Reg]:
    """The registers packet checks and loads take as their base (a copy into one must stay where it is)."""
    return {node.base for b in fn.blocks for node in [*b.insns, b.term] if isinstance(node, (LoadPacket, CheckPacket)) and isinstance(node.base, Reg)}


def constants_at_end(block: Block) -> dict[Reg, int]:
    """Registers the block leaves holding a constant it wrote itself."""
    known: dict[Reg, int] = {}
    for insn in block.insns:
        d = defined(insn)
        if d is None:
            continue
        if isinstance(insn, Copy) and isinstance(insn.src, Imm):
            known[d] = insn.src.value
        elif isinstance(insn, Copy) and insn.src in known:
            known[d] = known[insn.src]
        else:
            known.pop(d, None)
    return known
