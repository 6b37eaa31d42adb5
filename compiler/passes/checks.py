"""MergeChecks: drop a packet check that an earlier, larger check on the same base implies."""

from __future__ import annotations

from dataclasses import replace

from ..ir.analysis import dominator_chain, dominators
from ..ir.nodes import CheckPacket, Function, Jump, LoadPacket


class MergeChecks:
    """A check dominated by the `ok` edge of a check of as many bytes from the same base cannot fail.

    Windows: a check of the linear part implies any later check of the same
    bytes, and loads through the dropped check's window then read the linear
    part directly; a check with a window implies only another one with a
    window (its bytes may be in the stack copy, not the linear part), whose
    loads then read through the earlier window.
    """

    name = "merge-checks"

    def run(self, fn: Function) -> bool:
        idom = dominators(fn)
        preds = fn.predecessors()
        blocks = fn.block_map()
        moved: dict[int, int | None] = {}  # window of a dropped check -> the window its loads read now
        changed = False
        for block in fn.blocks:
            term = block.term
            if not isinstance(term, CheckPacket) or block.label not in idom:
                continue
            for dom in dominator_chain(idom, block.label):
                if len(preds[dom]) != 1:
                    continue
                guard = blocks[preds[dom][0]].term
                if (
                    isinstance(guard, CheckPacket)
                    and guard is not term
                    and guard.ok == dom
                    and guard.base == term.base
                    and guard.size >= term.size
                    and (guard.window is None or term.window is not None)
                ):
                    block.term = Jump(term.ok, term.span)
                    if term.window is not None:
                        moved[term.window] = guard.window
                    changed = True
                    break
        if moved:
            _move_loads(fn, moved)
        return changed


def _move_loads(fn: Function, moved: dict[int, int | None]) -> None:
    """Point loads through the windows of dropped checks at the windows that replaced them."""

    def final(window: int | None) -> int | None:
        while window is not None and window in moved:  # a guard dropped in turn
            window = moved[window]
        return window

    for block in fn.blocks:
        block.insns = [
            replace(insn, window=final(insn.window)) if isinstance(insn, LoadPacket) and insn.window in moved else insn
            for insn in block.insns
        ]
