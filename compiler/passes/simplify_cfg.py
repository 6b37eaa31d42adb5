"""SimplifyCFG: drop unreachable blocks, thread empty jumps, merge straight lines.

The `ok` edge of a packet check is never retargeted: the block it enters is
what proves the loads after it in bounds (see the IR checker).
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from ..ir.analysis import reverse_postorder
from ..ir.nodes import Branch, CheckPacket, Function, Instruction, Jump, Return, Terminator


def _retarget(term: Terminator, old: str, new: str) -> Terminator:
    match term:
        case Jump(target=t, span=s) if t == old:
            return Jump(new, s)
        case Branch(cmp, lhs, rhs, then, otherwise, span):
            return Branch(cmp, lhs, rhs, new if then == old else then, new if otherwise == old else otherwise, span)
        case CheckPacket(fail=fail) if fail == old:
            return replace(term, fail=new)
        case Jump() | CheckPacket() | Return():
            return term  # no edge to `old`, or a check's `ok` edge, which stays (see above)
        case _:
            assert_never(term)


class SimplifyCFG:
    """Remove unreachable blocks, jumps to jumps, and single-edge block boundaries."""

    name = "simplify-cfg"

    def run(self, fn: Function) -> bool:
        # To a fixed point: one step enables another (threading makes both
        # edges of a branch equal, pruning leaves a block a single
        # predecessor to merge with), and a pass run on its own output must
        # find nothing left to do.
        changed = False
        while True:
            step = self._prune(fn)
            edges = self._fold_branches(fn)
            edges |= self._thread(fn)
            if edges:  # only a moved edge can leave a block unreachable since the prune above
                self._prune(fn)
            step |= edges
            step |= self._merge(fn)
            if not step:
                return changed
            changed = True

    @staticmethod
    def _prune(fn: Function) -> bool:
        live = set(reverse_postorder(fn))
        kept = [b for b in fn.blocks if b.label in live]
        changed = len(kept) != len(fn.blocks)
        fn.blocks[:] = kept
        return changed

    @staticmethod
    def _fold_branches(fn: Function) -> bool:
        changed = False
        for b in fn.blocks:
            if isinstance(b.term, Branch) and b.term.then == b.term.otherwise:
                b.term = Jump(b.term.then, b.term.span)
                changed = True
        return changed

    @staticmethod
    def _thread(fn: Function) -> bool:
        """Point edges at an empty `jump T` block straight at T (not check `ok` edges)."""
        forward = {b.label: b.term.target for b in fn.blocks if not b.insns and isinstance(b.term, Jump) and b.term.target != b.label}
        changed = False
        for b in fn.blocks:
            for succ in b.successors():
                target = succ
                seen = {target}
                while target in forward and forward[target] not in seen:
                    target = forward[target]
                    seen.add(target)
                if target != succ:
                    new = _retarget(b.term, succ, target)
                    if new != b.term:
                        b.term = new
                        changed = True
        # An empty block ending in a return can be copied into a jump to it.
        returns = {b.label: b.term for b in fn.blocks if not b.insns and isinstance(b.term, Return)}
        for b in fn.blocks:
            if isinstance(b.term, Jump) and b.term.target in returns:
                b.term = returns[b.term.target]
                changed = True
        return changed

    @staticmethod
    def _merge(fn: Function) -> bool:
        """Append to a block ending in `jump T` the block T when it is T's only predecessor (not the entry).

        Each block, in order, takes the whole chain it heads at once, and the
        predecessor lists are updated as blocks are taken, so the cost is one
        pass over the function (merges commute: the chains come out the same
        whichever is taken first).
        """
        preds = fn.predecessors()
        blocks = fn.block_map()
        entry = fn.entry.label
        taken: set[str] = set()
        for b in fn.blocks:
            if b.label in taken:
                continue
            insns: list[Instruction] | None = None
            while isinstance(b.term, Jump):
                t = b.term.target
                if t == b.label or t == entry or preds[t] != [b.label]:
                    break
                succ = blocks[t]
                if insns is None:
                    insns = list(b.insns)
                insns.extend(succ.insns)
                b.term = succ.term
                taken.add(t)
                for s in succ.successors():  # T's edges now leave b
                    preds[s] = [b.label if p == t else p for p in preds[s]]
            if insns is not None:
                b.insns = insns
        if taken:
            fn.blocks[:] = [x for x in fn.blocks if x.label not in taken]
        return bool(taken)
