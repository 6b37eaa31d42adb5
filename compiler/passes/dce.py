"""DeadCode: delete instructions whose result is never read afterwards.

A backward liveness analysis over the CFG: an instruction other than a keys
store is dead when the register it writes is not live after it. Unlike a
count of readers, this also removes the writes of a register that is read on
other paths only (a helper's result set on a path that then returns).
"""

from __future__ import annotations

from ..ir.nodes import Function, Reg, StoreKeys, defined, used_regs


def liveness(fn: Function) -> tuple[dict[str, set[Reg]], dict[str, set[Reg]]]:
    """Registers live at the start and at the end of each block.

    Each block's effect is summarised once (the registers it reads before
    writing them, and those it writes); a worklist then revisits only the
    predecessors of a block whose live-in set grew, so the cost follows the
    size of the function instead of a whole sweep per change.
    """
    gen: dict[str, set[Reg]] = {}
    kill: dict[str, set[Reg]] = {}
    preds: dict[str, list[str]] = {b.label: [] for b in fn.blocks}
    succs: dict[str, tuple[str, ...]] = {}
    for b in fn.blocks:
        reads = set(used_regs(b.term))
        writes: set[Reg] = set()
        for insn in reversed(b.insns):
            d = defined(insn)
            if d is not None:
                reads.discard(d)
                writes.add(d)
            reads.update(used_regs(insn))
        gen[b.label], kill[b.label] = reads, writes
        succs[b.label] = b.successors()
        for s in succs[b.label]:
            preds[s].append(b.label)
    live_in: dict[str, set[Reg]] = {b.label: set() for b in fn.blocks}
    out: dict[str, set[Reg]] = {b.label: set() for b in fn.blocks}
    # A stack popping the last block first: a backward problem converges
    # fastest visiting successors before their predecessors.
    work = [b.label for b in fn.blocks]
    queued = set(work)
    while work:
        label = work.pop()
        queued.discard(label)
        o: set[Reg] = set().union(*(live_in[s] for s in succs[label]))
        out[label] = o
        live = gen[label] | (o - kill[label])
        if live != live_in[label]:
            live_in[label] = live
            for p in preds[label]:
                if p not in queued:
                    queued.add(p)
                    work.append(p)
    return live_in, out


def live_out(fn: Function) -> dict[str, set[Reg]]:
    """Registers live at the end of each block."""
    return liveness(fn)[1]


class DeadCode:
    """Remove side-effect-free instructions whose result is dead (all but keys stores)."""

    name = "dead-code"

    def run(self, fn: Function) -> bool:
        changed = False
        while True:
            out = live_out(fn)
            removed = False
            # Only a removed instruction that read registers can leave
            # others dead in other blocks: without its reads liveness is
            # the same everywhere, and another sweep would find nothing.
            again = False
            for block in fn.blocks:
                live = set(out[block.label]) | set(used_regs(block.term))
                kept = []
                for insn in reversed(block.insns):
                    d = defined(insn)
                    if not isinstance(insn, StoreKeys) and d is not None and d not in live:
                        removed = True
                        again = again or bool(used_regs(insn))
                        continue
                    if d is not None:
                        live.discard(d)
                    live.update(used_regs(insn))
                    kept.append(insn)
                block.insns = kept[::-1]
            if not removed:
                return changed
            changed = True
            if not again:
                return changed
