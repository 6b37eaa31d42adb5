"""DeadCode: delete instructions whose result is never read afterwards.

A backward liveness analysis over the CFG: an instruction other than a keys
store is dead when the register it writes is not live after it. Unlike a
count of readers, this also removes the writes of a register that is read on
other paths only (a helper's result set on a path that then returns).
"""

from __future__ import annotations

from ..ir.nodes import Function, Reg, StoreKeys, defined, used_regs


def live_out(fn: Function) -> dict[str, set[Reg]]:
    """Registers live at the end of each block."""
    blocks = fn.block_map()
    live_in: dict[str, set[Reg]] = {b.label: set() for b in fn.blocks}
    out: dict[str, set[Reg]] = {b.label: set() for b in fn.blocks}
    changed = True
    while changed:
        changed = False
        for b in reversed(fn.blocks):
            o: set[Reg] = set().union(*(live_in[s] for s in b.successors())) if b.successors() else set()
            live = set(o) | set(used_regs(b.term))
            for insn in reversed(blocks[b.label].insns):
                d = defined(insn)
                if d is not None:
                    live.discard(d)
                live.update(used_regs(insn))
            if live != live_in[b.label] or o != out[b.label]:
                live_in[b.label], out[b.label] = live, o
                changed = True
    return out


class DeadCode:
    """Remove side-effect-free instructions whose result is dead (all but keys stores)."""

    name = "dead-code"

    def run(self, fn: Function) -> bool:
        changed = False
        while True:
            out = live_out(fn)
            removed = False
            for block in fn.blocks:
                live = set(out[block.label]) | set(used_regs(block.term))
                kept = []
                for insn in reversed(block.insns):
                    d = defined(insn)
                    if not isinstance(insn, StoreKeys) and d is not None and d not in live:
                        removed = True
                        continue
                    if d is not None:
                        live.discard(d)
                    live.update(used_regs(insn))
                    kept.append(insn)
                block.insns = kept[::-1]
            if not removed:
                return changed
            changed = True
