"""MergeChecks: drop a packet check that an earlier, larger check on the same base implies."""

from __future__ import annotations

from ..ir.analysis import dominator_chain, dominators
from ..ir.nodes import CheckPacket, Function, Jump


class MergeChecks:
    """A check dominated by the `ok` edge of a check of as many bytes from the same base cannot fail."""

    name = "merge-checks"

    def run(self, fn: Function) -> bool:
        idom = dominators(fn)
        preds = fn.predecessors()
        blocks = fn.block_map()
        changed = False
        for block in fn.blocks:
            term = block.term
            if not isinstance(term, CheckPacket) or block.label not in idom:
                continue
            for dom in dominator_chain(idom, block.label):
                if len(preds[dom]) != 1:
                    continue
                guard = blocks[preds[dom][0]].term
                if isinstance(guard, CheckPacket) and guard is not term and guard.ok == dom and guard.base == term.base and guard.size >= term.size:
                    block.term = Jump(term.ok, term.span)
                    changed = True
                    break
        return changed
