"""DeadCode: delete instructions whose result nothing reads."""

from __future__ import annotations

from collections import Counter

from ..ir.nodes import Function, StoreKeys, defined, used_regs


class DeadCode:
    """Remove side-effect-free instructions with unused results (all but keys stores)."""

    name = "dead-code"

    def run(self, fn: Function) -> bool:
        changed = False
        while True:
            uses: Counter[object] = Counter()
            for block in fn.blocks:
                for node in [*block.insns, block.term]:
                    uses.update(used_regs(node))
            removed = False
            for block in fn.blocks:
                kept = [i for i in block.insns if isinstance(i, StoreKeys) or uses[defined(i)] > 0]
                if len(kept) != len(block.insns):
                    block.insns = kept
                    removed = True
            if not removed:
                return changed
            changed = True
