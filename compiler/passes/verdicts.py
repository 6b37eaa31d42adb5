"""ThreadVerdicts: send a constant result straight to where the tests it meets take it.

An inlined helper's `return BPF_OK` sets its result register and jumps to
the join after the call, where the caller tests it; samples/full.py's
`one_pass` result then meets the loop's `if verdict != NEXT_PROTO: if
verdict != NEXT_IP_PROTO: return verdict`, three or four tests in a row,
each a block of copies and a branch. ThreadJumps takes one such step at a
time and only where the copies die at its landing; here the verdict is read
by every test along the way, so it takes none. This pass follows the whole
chain from a block that ends in `jump J`: through blocks holding only
copies, taking each branch whose operands the constants known so far decide,
and each jump, it retargets the jump to the first block where it cannot go
on, if none of the chain's copies is read from there on (then the chain's
copies are not needed on this path). A `return BPF_OK` becomes `ret 0`.
"""

from __future__ import annotations

from ..ir.nodes import Branch, CheckPacket, Copy, Function, Imm, Jump, Reg, evaluate_cmp
from .dce import liveness
from .thread import constants_at_end, packet_bases

# Blocks a chain may pass through (the loop has no copy-only cycle, but a bound keeps the walk finite anyway).
MAX_STEPS = 16


class ThreadVerdicts:
    """Retarget `jump J` along J's chain of copy-and-branch blocks to where the known constants lead."""

    name = "thread-verdicts"

    def run(self, fn: Function) -> bool:
        blocks = fn.block_map()
        bases = packet_bases(fn)
        # The `ok` edge of a check proves the loads after it (the IR checker): never land there from elsewhere.
        guarded = {b.term.ok for b in fn.blocks if isinstance(b.term, CheckPacket)}
        live: dict[str, set[Reg]] | None = None
        changed = False
        for block in fn.blocks:
            term = block.term
            if not isinstance(term, Jump):
                continue
            known = constants_at_end(block)
            label, written, decided = term.target, set[Reg](), 0
            for _ in range(MAX_STEPS):
                step = blocks[label]
                if step is fn.entry or not all(isinstance(i, Copy) and i.dst not in bases for i in step.insns):
                    break
                after = dict(known)
                for insn in step.insns:
                    assert isinstance(insn, Copy)
                    value = insn.src.value if isinstance(insn.src, Imm) else after.get(insn.src)
                    if value is None:
                        after.pop(insn.dst, None)
                    else:
                        after[insn.dst] = value
                nxt = step.term
                if isinstance(nxt, Jump):
                    target = nxt.target
                elif isinstance(nxt, Branch):
                    lhs = nxt.lhs.value if isinstance(nxt.lhs, Imm) else after.get(nxt.lhs)
                    rhs = nxt.rhs.value if isinstance(nxt.rhs, Imm) else after.get(nxt.rhs)
                    if lhs is None or rhs is None:
                        break
                    target = nxt.then if evaluate_cmp(nxt.cmp, lhs, rhs) else nxt.otherwise
                    decided += 1
                else:
                    break
                known = after
                written.update(i.dst for i in step.insns if isinstance(i, Copy))
                label = target
            if decided < 2 or label == term.target or label in guarded:
                continue  # ThreadJumps takes single steps; a check's `ok` block keeps its one way in
            if live is None:
                live, _ = liveness(fn)
            if written & live[label]:
                continue  # the chain's copies are read past its end: this path would need them
            # Liveness computed before this edge moved can only be larger than
            # after (the path reads no more than it did): conservative, so kept.
            block.term = Jump(label, term.span)
            changed = True
        return changed
