"""CFG analyses over IR functions: reachability, dominators, definitions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from .nodes import Function, Instruction, Reg, defined

K = TypeVar("K")
V = TypeVar("V")


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


def dominators(fn: Function, preds: dict[str, list[str]] | None = None) -> dict[str, str | None]:
    """Immediate dominator of every reachable block (None for the entry), in reverse postorder.

    Lengauer and Tarjan, "A Fast Algorithm for Finding Dominators in a
    Flowgraph" (1979), the simple version: semidominators over a depth-first
    spanning tree, evaluated with path compression, O(E log V). The
    iterative algorithm of Cooper, Harvey and Kennedy walks the tree from
    each predecessor of a join up to the join's dominator; on a long chain
    of headers that is the depth of the chain per join, quadratic in all.
    `preds` (Function.predecessors) may be given when the caller has it.
    """
    if preds is None:
        preds = fn.predecessors()
    vertex, number, parent = _depth_first(fn)
    n = len(vertex)
    semi = list(range(n))
    best = list(range(n))  # the vertex of least semidominator on the compressed path (Lengauer-Tarjan's `label`)
    ancestor = [-1] * n
    idom = [0] * n
    bucket: list[list[int]] = [[] for _ in range(n)]

    def evaluate(v: int) -> int:
        if ancestor[v] < 0:
            return v
        path = []  # compress the path from v up to the root of its tree in the forest
        while ancestor[ancestor[v]] >= 0:
            path.append(v)
            v = ancestor[v]
        for u in reversed(path):
            a = ancestor[u]
            if semi[best[a]] < semi[best[u]]:
                best[u] = best[a]
            ancestor[u] = ancestor[a]
        return best[path[0]] if path else best[v]

    for w in range(n - 1, 0, -1):
        for p in preds[vertex[w]]:
            v = number.get(p)
            if v is None:
                continue  # an unreachable predecessor
            u = evaluate(v)
            if semi[u] < semi[w]:
                semi[w] = semi[u]
        bucket[semi[w]].append(w)
        ancestor[w] = parent[w]
        for v in bucket[parent[w]]:
            u = evaluate(v)
            idom[v] = u if semi[u] < semi[v] else parent[w]
        bucket[parent[w]].clear()
    for w in range(1, n):
        if idom[w] != semi[w]:
            idom[w] = idom[idom[w]]
    found = {vertex[w]: vertex[idom[w]] for w in range(1, n)}
    order = reverse_postorder(fn)
    return {label: found.get(label) for label in order}


def _depth_first(fn: Function) -> tuple[list[str], dict[str, int], list[int]]:
    """The reachable blocks in a depth-first preorder, each one's number in it, and each one's parent in the search tree (-1: the entry)."""
    blocks = fn.block_map()
    number: dict[str, int] = {}
    vertex: list[str] = []
    parent: list[int] = []
    stack: list[tuple[str, int]] = [(fn.entry.label, -1)]
    while stack:
        label, up = stack.pop()
        if label in number:
            continue
        number[label] = len(vertex)
        vertex.append(label)
        parent.append(up)
        here = number[label]
        stack.extend((succ, here) for succ in reversed(blocks[label].successors()) if succ not in number)
    return vertex, number, parent


def dominator_chain(idom: dict[str, str | None], label: str) -> list[str]:
    """`label` and every block dominating it, nearest first."""
    chain = [label]
    while (up := idom[chain[-1]]) is not None:
        chain.append(up)
    return chain


def definition_counts(fn: Function) -> Counter[Reg]:
    """How many instructions write each register."""
    return Counter(d for insn in fn.instructions() if (d := defined(insn)) is not None)


def available_on_entry(fn: Function, transfer: Callable[[Instruction, dict[K, V]], None]) -> dict[str, dict[K, V]]:
    """A forward "available" analysis: for each reachable block, the facts that hold on entry on every path to it.

    A state maps a fact's key to its value; `transfer` updates a state in
    place for one instruction. The meet keeps what every predecessor agrees
    on. From the optimistic start (a predecessor not computed yet holds
    everything), blocks are recomputed in reverse postorder, only those whose
    predecessors' states changed (a block computes the same from the same
    input), until nothing changes.
    """
    blocks = fn.block_map()
    preds = fn.predecessors()
    order = reverse_postorder(fn)
    out: dict[str, dict[K, V] | None] = {label: None for label in order}  # None: not computed yet (top)

    def entry(label: str) -> dict[K, V]:
        if label == order[0]:
            return {}
        states = [s for p in preds[label] if (s := out.get(p)) is not None]
        if not states:
            return {}
        first, rest = states[0], states[1:]
        return {k: v for k, v in first.items() if all(s.get(k) == v for s in rest)}

    stale = set(order)
    while stale:
        for label in order:
            if label not in stale:
                continue
            stale.discard(label)
            state = entry(label)
            for insn in blocks[label].insns:
                transfer(insn, state)
            if out[label] != state:
                out[label] = state
                stale.update(blocks[label].successors())
    return {label: entry(label) for label in order}
