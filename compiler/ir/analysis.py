"""CFG analyses over IR functions: reachability, dominators, definitions."""

from __future__ import annotations

from collections import Counter

from .nodes import Function, Reg, defined


def reverse_postorder(fn: Function) -> list[str]:
    """Labels reachable from the entry, in reverse postorder."""
    blocks = fn.block_map()
    seen: set[str] = set()
    order: list[str] = []
    stack: list[tuple[str, int]] = [(fn.entry.label, 0)]
    seen.add(fn.entry.label)
    while stack:
        label, i = stack.pop()
        succs = blocks[label].successors()
        if i < len(succs):
            stack.append((label, i + 1))
            nxt = succs[i]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, 0))
        else:
            order.append(label)
    order.reverse()
    return order


def dominators(fn: Function) -> dict[str, str | None]:
    """Immediate dominator of every reachable block (None for the entry).

    Cooper, Harvey and Kennedy, "A Simple, Fast Dominance Algorithm".
    """
    order = reverse_postorder(fn)
    index = {label: i for i, label in enumerate(order)}
    preds = fn.predecessors()
    idom: dict[str, str] = {order[0]: order[0]}  # the entry is its own until the end

    def intersect(a: str, b: str) -> str:
        while a != b:
            while index[a] > index[b]:
                a = idom[a]
            while index[b] > index[a]:
                b = idom[b]
        return a

    changed = True
    while changed:
        changed = False
        for label in order[1:]:
            done = [p for p in preds[label] if p in idom]
            new = done[0]
            for p in done[1:]:
                new = intersect(p, new)
            if idom.get(label) != new:
                idom[label] = new
                changed = True
    return {**idom, order[0]: None}


def dominator_chain(idom: dict[str, str | None], label: str) -> list[str]:
    """`label` and every block dominating it, nearest first."""
    chain = [label]
    while (up := idom[chain[-1]]) is not None:
        chain.append(up)
    return chain


def definition_counts(fn: Function) -> Counter[Reg]:
    """How many instructions write each register."""
    return Counter(d for insn in fn.instructions() if (d := defined(insn)) is not None)
