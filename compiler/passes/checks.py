"""MergeChecks: drop a packet check that an earlier, larger check on the same base implies."""

from __future__ import annotations

from dataclasses import replace

from ..ir.analysis import dominators
from ..ir.nodes import Block, CheckPacket, Function, Jump, LoadPacket, Operand


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
        candidates = _guards_by_base(fn, idom, preds, blocks)
        moved: dict[int, int | None] = {}  # window of a dropped check -> the window its loads read now
        changed = False
        for block in fn.blocks:
            term = block.term
            if not isinstance(term, CheckPacket) or block.label not in idom:
                continue
            # The dominators of the block entered by a check of this base,
            # nearest first; a check dropped earlier in this loop no longer counts.
            node = candidates.get(block.label)
            while node is not None:
                dom, node = node
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


# The blocks entered by a check of one base along a path of the dominator
# tree, nearest first, as a linked list: (block, the rest). Lists of
# neighbouring blocks share their tails, so all of them take linear space.
_Chain = tuple[str, "_Chain"] | None


def _guards_by_base(fn: Function, idom: dict[str, str | None], preds: dict[str, list[str]], blocks: dict[str, Block]) -> dict[str, _Chain]:
    """For each reachable block ending in a check: its dominators (itself included) entered only by a check of the same base.

    What walking the block's whole dominator chain would look at, without
    the blocks no check of that base enters: a dominator-tree walk keeps,
    per base, the chain for the path it is on.
    """
    children: dict[str, list[str]] = {}
    for label, up in idom.items():
        if up is not None:
            children.setdefault(up, []).append(label)
    chains: dict[Operand, _Chain] = {}
    found: dict[str, _Chain] = {}
    stack: list[tuple[str, Operand | None, _Chain]] = [(fn.entry.label, None, None)]
    while stack:
        label, restore, previous = stack.pop()
        if restore is not None:  # leaving `label`'s subtree: its base's chain as before it
            chains[restore] = previous
            continue
        entered = blocks[preds[label][0]].term if len(preds[label]) == 1 else None
        if isinstance(entered, CheckPacket) and entered.ok == label:
            base = entered.base
            stack.append((label, base, chains.get(base)))
            chains[base] = (label, chains.get(base))
        term = blocks[label].term
        if isinstance(term, CheckPacket):
            found[label] = chains.get(term.base)
        stack.extend((child, None, None) for child in children.get(label, ()))
    return found


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
