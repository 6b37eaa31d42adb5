"""Register allocation: graph coloring over r0-r9, coalescing copies, spilling to the stack.

Liveness is solved over the machine CFG and walked backwards through each
block, so two registers interfere only where one is written while the other
is live (exact live ranges with holes, not one interval over the layout:
`data_end` or a loop counter live across the whole loop no longer collides
with every temporary of a header it passes). Copies are coalesced where that
provably cannot make the graph harder to color (Briggs's and George's tests),
then the graph is colored Chaitin-Briggs style, optimistically, preferring a
copy partner's register. A value live across a FETCH prefers r6-r9, which
the slow path of a window need not save around its helper call.

When a node finds no color, the virtual registers merged into it are
spilled: each run of instructions using one reloads it from an 8-byte stack
slot and each run defining it stores it back, and allocation runs again on
the rewritten code (the fresh temporaries live only across such a run and
are never spilled themselves). Spill costs count those loads and stores,
weighted by loop depth. A register whose only definition is marked
rematerializable (a constant, a packet read, a read of keys bytes that are
never written) is not given a slot: its definition is repeated before each
use instead, one instruction where a spill costs a store and a load. Once
every register has one, spill slots whose values are never live at the same
time share a stack offset (`_pack_slots`): the 512 bytes of BPF stack hold
64 values at once, not 64 spilled registers in all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypeVar

from pyfd.abi import MAX_BPF_STACK as MAX_STACK
from pyfd.isa import Class, Mode, Size, mem_opcode

from .mir import FETCH, FP, MBlock, MFunction, MInsn, MReg, ldx_mem, stx_mem

ALLOCATABLE = tuple(range(10))  # r0-r9; r10 is the frame pointer
_T = TypeVar("_T")


class AllocationError(Exception):
    """Register allocation failed (a bug in pyfd, unless it is a StackLimitError)."""


class StackLimitError(AllocationError):
    """The program needs more stack than BPF allows; `span` is where too many values are live at once."""

    def __init__(self, message: str, span: object | None = None) -> None:
        super().__init__(message)
        self.span = span


def _solve_live_in(blocks: list[MBlock], use: dict[str, set[_T]], defs: dict[str, set[_T]]) -> dict[str, set[_T]]:
    """What is live on entry to each block, given what each block reads before writing (`use`) and writes (`defs`)."""
    live_in: dict[str, set[_T]] = {b.label: set() for b in blocks}
    changed = True
    while changed:
        changed = False
        for b in reversed(blocks):
            out: set[_T] = set().union(*(live_in[s] for s in b.succs)) if b.succs else set()
            new = use[b.label] | (out - defs[b.label])
            if new != live_in[b.label]:
                live_in[b.label] = new
                changed = True
    return live_in


def liveness(fn: MFunction) -> dict[str, set[MReg]]:
    """Registers live on entry to each block."""
    use: dict[str, set[MReg]] = {}
    defs: dict[str, set[MReg]] = {}
    for b in fn.blocks:
        u: set[MReg] = set()
        d: set[MReg] = set()
        for insn in b.insns:
            u.update(r for r in insn.uses() if r not in d)
            d.update(insn.defs())
        use[b.label], defs[b.label] = u, d
    return _solve_live_in(fn.blocks, use, defs)


def _loop_depths(fn: MFunction) -> dict[str, int]:
    """How many loops each block is in: an edge to a block at or before its source in layout order closes one.

    Layout is reverse postorder (native._layout), where only a back edge
    goes backwards; the loop is its target and every block that reaches
    the source without passing through the target.
    """
    index = {b.label: i for i, b in enumerate(fn.blocks)}
    preds: dict[str, list[str]] = {b.label: [] for b in fn.blocks}
    for b in fn.blocks:
        for s in b.succs:
            preds[s].append(b.label)
    depth = dict.fromkeys(index, 0)
    for b in fn.blocks:
        for head in b.succs:
            if index[head] > index[b.label]:
                continue
            body, stack = {head}, [b.label]
            while stack:
                label = stack.pop()
                if label not in body:
                    body.add(label)
                    stack.extend(preds[label])
            for label in body:
                depth[label] += 1
    return depth


def _frequencies(fn: MFunction) -> dict[str, float]:
    """A static estimate of how often each block runs per entry: branches split evenly, a loop runs ten times.

    Without a profile, each conditional jump is taken half the time, except
    into a window's slow block (`.copy`, the copy out of page fragments),
    taken rarely. So a value used only down one chain of header tests costs
    little to spill next to one the entry block or every path touches: the
    spill code of the first runs on few packets, the second's on all.
    """
    index = {b.label: i for i, b in enumerate(fn.blocks)}
    depths = _loop_depths(fn)
    freq = dict.fromkeys(index, 0.0)
    freq[fn.blocks[0].label] = 1.0
    for b in fn.blocks:
        forward = [s for s in b.succs if index[s] > index[b.label]]
        if not forward:
            continue
        shares = [1.0 / 64 if s.endswith(".copy") else 1.0 for s in forward]
        total = sum(shares)
        for s, share in zip(forward, shares, strict=True):
            freq[s] += freq[b.label] * share / total
    return {label: f * 10.0 ** min(depths[label], 4) for label, f in freq.items()}


@dataclass
class Graph:
    """The interference graph of one function: virtual and physical registers, the copies between them, spill costs."""

    adj: dict[MReg, set[MReg]] = field(default_factory=dict)
    copies: list[tuple[float, MReg, MReg]] = field(default_factory=list)  # (how often it runs, dst, src)
    cost: dict[str, float] = field(default_factory=dict)  # the loads and stores spilling it would add, by loop depth
    across_fetch: set[str] = field(default_factory=set)  # live across a FETCH: its slow path saves r0-r5
    prefer: dict[MReg, int] = field(default_factory=dict)  # a register that saves a move where it is used

    def node(self, reg: MReg) -> set[MReg]:
        return self.adj.setdefault(reg, set())

    def edge(self, a: MReg, b: MReg) -> None:
        if a != b:
            self.node(a).add(b)
            self.node(b).add(a)


def build_graph(fn: MFunction, freq: dict[str, float] | None = None) -> Graph:
    """Interference from exact liveness: a register written where another is live may not share its register.

    The source of a copy does not interfere with its destination there
    (they hold the same value), which is what lets the copy be coalesced.
    `freq` is `_frequencies(fn)`, given by a caller that has it.
    """
    live_in = liveness(fn)
    if freq is None:
        freq = _frequencies(fn)
    g = Graph()
    adj, cost = g.adj, g.cost  # the loops below are the allocator's hottest: Graph.edge written out
    for b in fn.blocks:
        weight = freq[b.label]
        live: set[MReg] = set().union(*(live_in[s] for s in b.succs)) if b.succs else set()
        live.discard(FP)
        for insn in reversed(b.insns):
            defs = [r for r in insn.defs() if r != FP]
            uses = [r for r in insn.uses() if r != FP]
            copy = insn.is_copy() and insn.src != FP and insn.dst != FP
            if copy:
                g.copies.append((weight, insn.dst, insn.src))
            if insn.opcode == FETCH:
                g.across_fetch.update(r for r in live if isinstance(r, str) and r not in defs)
                if insn.fetch is not None and insn.fetch.base is None:
                    g.prefer.setdefault(insn.src, 2)  # the helper's offset argument (fetch._expand)
            for d in defs:
                neighbours = adj.setdefault(d, set())
                for other in live:
                    if other != d and not (copy and other == insn.src):
                        neighbours.add(other)
                        adj.setdefault(other, set()).add(d)
            live.difference_update(defs)
            live.update(uses)
            for reg in {*defs, *uses}:
                adj.setdefault(reg, set())
                if isinstance(reg, str):
                    cost[reg] = cost.get(reg, 0.0) + weight
        for reg in live_in[b.label]:
            adj.setdefault(reg, set())
    return g


def color(
    graph: Graph, unspillable: frozenset[str] = frozenset(), remat: frozenset[str] = frozenset(), *, george: bool = True
) -> tuple[dict[str, int], set[str]]:
    """Coalesce copies, then color the graph (Chaitin-Briggs, optimistic); return the assignment and the registers to spill.

    Copies are coalesced conservatively (Briggs between virtual registers,
    George into a physical one, and between virtual ones too with
    `george`), hottest first, so a merge never turns a colorable graph into
    one that spills. Every register of a merged node gets the same color,
    and the node spills as a whole.
    """
    c = _Coloring(graph, unspillable, remat)
    c.coalesce(george=george)
    spilled = c.select(c.simplify())
    c.recolor_copies()
    return c.assignment(), spilled


class _Coloring:
    """The state of one coloring: the graph as coalesced, merged nodes, spill costs, colors."""

    def __init__(self, graph: Graph, unspillable: frozenset[str], remat: frozenset[str]) -> None:
        self.k = len(ALLOCATABLE)
        self.g = Graph({r: set(n) for r, n in graph.adj.items()}, graph.copies, graph.cost, graph.across_fetch, graph.prefer)
        self.alias: dict[MReg, MReg] = {}
        self.members: dict[MReg, list[str]] = {r: [r] for r in self.g.adj if isinstance(r, str)}
        self.cost = dict(graph.cost)
        for r in remat:
            if r in self.cost:
                self.cost[r] /= 2  # each use repeats one instruction, and there is no store
        self.pinned = set(unspillable)
        self.colors: dict[MReg, int] = {r: r for r in self.g.adj if isinstance(r, int)}
        self.partners: dict[MReg, list[MReg]] = {}

    def find(self, r: MReg) -> MReg:
        """The node `r` was merged into (itself if none)."""
        while r in self.alias:
            r = self.alias[r]
        return r

    def coalesce(self, *, george: bool) -> None:
        """Merge the two sides of each copy where the conservative tests allow it, hottest copy first."""
        g, k = self.g, self.k
        for _, dst, src in sorted(g.copies, key=lambda c: -c[0]):
            a, b = self.find(dst), self.find(src)
            if a == b or (isinstance(a, int) and isinstance(b, int)) or b in g.adj[a]:
                continue
            if isinstance(a, int):
                a, b = b, a  # a virtual, b maybe physical
            assert isinstance(a, str)
            if (a in self.pinned) != (isinstance(b, str) and b in self.pinned):
                continue  # a spill temporary stays apart from what may still spill
            # George: every neighbour of `a` is of low degree or already a neighbour of `b`.
            safe = (george or isinstance(b, int)) and all(
                (isinstance(t, int) and isinstance(b, int)) or (isinstance(t, str) and len(g.adj[t]) < k) or b in g.adj[t] for t in g.adj[a]
            )
            if isinstance(b, int):
                if not safe:
                    continue
            elif not safe and sum(1 for t in g.adj[a] | g.adj[b] if isinstance(t, int) or len(g.adj[t]) >= k) >= k:
                continue  # Briggs: the merged node would have k neighbours of significant degree
            self.merge(a, b)
        for _, dst, src in g.copies:
            a, b = self.find(dst), self.find(src)
            if a != b:
                self.partners.setdefault(a, []).append(b)
                self.partners.setdefault(b, []).append(a)

    def merge(self, a: str, b: MReg) -> None:
        """Merge node `a` into `b`."""
        g = self.g
        for t in g.adj.pop(a):
            g.adj[t].discard(a)
            g.edge(b, t)
        self.alias[a] = b
        if isinstance(b, str):
            self.members[b].extend(self.members.pop(a))
            self.cost[b] = self.cost.get(b, 0.0) + self.cost.get(a, 0.0)
            if a in self.pinned:
                self.pinned.add(b)
        else:
            self.members.setdefault(b, []).extend(self.members.pop(a))

    def simplify(self) -> list[str]:
        """The virtual nodes in the order to color them, last first (a stack)."""
        g, k = self.g, self.k
        # Sets of strings iterate in a per-process order: everything here goes
        # by name, so a program compiles to the same instructions every time.
        nodes = sorted(r for r in g.adj if isinstance(r, str))
        degree = {r: len(g.adj[r]) for r in nodes}
        stack: list[str] = []
        remaining = set(nodes)
        low = [r for r in reversed(nodes) if degree[r] < k]
        while remaining:
            if low:
                r = low.pop()
                if r not in remaining:
                    continue
            else:
                # Stuck: the cheapest per interference goes on optimistically.
                r = min(remaining, key=lambda n: (n in self.pinned, self.cost.get(n, 0.0) / (degree[n] + 1), n))
            remaining.discard(r)
            stack.append(r)
            for t in sorted(t for t in g.adj[r] if isinstance(t, str)):
                if t in remaining:
                    degree[t] -= 1
                    if degree[t] == k - 1:
                        low.append(t)
        return stack

    def select(self, stack: list[str]) -> set[str]:
        """Color the nodes off `stack`; return the registers of those that found no color."""
        spilled: set[str] = set()
        while stack:
            r = stack.pop()
            taken = {self.colors[t] for t in self.g.adj[r] if t in self.colors}
            free = [c for c in ALLOCATABLE if c not in taken] or _recolor_for(r, self.g, self.colors)
            if free:
                self.colors[r] = self.choose(r, free)
            else:
                spilled.update(self.members[r])
        return spilled

    def choose(self, r: MReg, free: list[int]) -> int:
        """The register of `free` for node `r`.

        A copy partner's register removes the copy; r2 for a FETCH's base
        saves moving it there. A value live across a FETCH takes r6-r9
        first: the slow path of a window saves r0-r5 around its call.
        Otherwise the lowest one a neighbour still to come does not prefer.
        """
        g, members = self.g, self.members
        preferred = [self.colors[p] for p in self.partners.get(r, []) if p in self.colors and self.colors[p] in free]
        preferred += [g.prefer[m] for m in members[r] if g.prefer.get(m) in free]
        waiting = [t for t in g.adj[r] if isinstance(t, str) and t not in self.colors]
        wanted = {g.prefer[m] for t in waiting for m in members[t] if m in g.prefer}
        wanted |= {p for t in waiting for p in self.partners.get(t, []) if isinstance(p, int)}
        rest = [c for c in free if c not in wanted] or free
        if any(m in g.across_fetch for m in members[r]):
            saved = [c for c in preferred if c >= 6] or [c for c in reversed(rest) if c >= 6]
            preferred = saved + preferred
        return (preferred or rest)[0]

    def recolor_copies(self) -> None:
        """Where a copy's two sides got different registers, move either to the other's if no neighbour holds it.

        A recoloring that cannot cause a spill; it catches merges the
        conservative tests refused.
        """
        colors = self.colors
        for _ in range(3):
            changed = False
            for _, dst, src in sorted(self.g.copies, key=lambda c: -c[0]):
                a, b = self.find(dst), self.find(src)
                if a not in colors or b not in colors or colors[a] == colors[b]:
                    continue
                for x, y in ((a, b), (b, a)):
                    if isinstance(x, str) and all(colors.get(t) != colors[y] for t in self.g.adj[x]):
                        colors[x] = colors[y]
                        changed = True
                        break
            if not changed:
                break

    def assignment(self) -> dict[str, int]:
        """Each virtual register's color, through the node it was merged into."""
        return {reg: self.colors[rep] for rep, regs in self.members.items() if rep in self.colors for reg in regs}


def _recolor_for(r: MReg, g: Graph, colors: dict[MReg, int]) -> list[int]:
    """Free a register for `r` by moving the one neighbour holding it to a register none of its neighbours hold; [] if none can."""
    for c in ALLOCATABLE:
        holders = [t for t in g.adj[r] if colors.get(t) == c]
        if len(holders) != 1 or not isinstance(holders[0], str):
            continue
        n = holders[0]
        taken = {colors[t] for t in g.adj[n] if t in colors}
        other = next((x for x in ALLOCATABLE if x != c and x not in taken), None)
        if other is not None:
            colors[n] = other
            return [c]
    return []


def _rematerializable(fn: MFunction, regs: set[str]) -> dict[str, MInsn]:
    """The registers of `regs` whose one definition can be repeated at each use."""
    defs: dict[MReg, list[MInsn]] = {}
    for b in fn.blocks:
        for insn in b.insns:
            for reg in insn.defs():
                defs.setdefault(reg, []).append(insn)
    out: dict[str, MInsn] = {}
    for reg in regs:
        found = defs.get(reg, [])
        if len(found) != 1 or not found[0].remat or found[0].is_ld_imm64:  # LD_IMM64 is two slots: a spill is as cheap
            continue
        # The operands it reads must hold the same value at every use too.
        if all(isinstance(r, str) and (len(defs.get(r, [])) == 1 or r in fn.stable) for r in found[0].uses()):
            out[reg] = found[0]
    return out


def _spill(fn: MFunction, regs: set[str], slots: dict[str, int], counter: list[int], temps: set[str]) -> None:
    """Rewrite every access to `regs` through their stack slots, or by repeating their definition."""
    remat = _rematerializable(fn, regs)
    if remat:
        for b in fn.blocks:
            b.insns = _repeat_definitions(b.insns, remat, counter, temps)
        regs = regs - set(remat)
    for reg in sorted(regs):
        if reg not in slots:  # a slot of its own for now; _pack_slots shares them out
            fn.stack_size += 8
            slots[reg] = -fn.stack_size
    for b in fn.blocks:
        b.insns = _through_slots(b.insns, regs, slots, counter, temps)


def _repeat_definitions(insns: list[MInsn], remat: dict[str, MInsn], counter: list[int], temps: set[str]) -> list[MInsn]:
    """`insns` with each use of a rematerializable register given a fresh copy of its definition just before it."""
    out: list[MInsn] = []
    for insn in insns:
        if any(insn is d for d in remat.values()):
            continue  # repeated before each use instead
        repeated: dict[MReg, MReg] = {}
        for reg in insn.uses():
            if isinstance(reg, str) and reg in remat and reg not in repeated:
                counter[0] += 1
                repeated[reg] = tmp = f"{reg}.m{counter[0]}"
                temps.add(tmp)
                out.append(replace(remat[reg], dst=tmp, span=insn.span))
        out.append(insn.rename(repeated) if repeated else insn)
    return out


def _through_slots(insns: list[MInsn], regs: set[str], slots: dict[str, int], counter: list[int], temps: set[str]) -> list[MInsn]:
    """One block's `insns` with the spilled `regs` loaded from and stored to their slots around each run using them.

    A spilled register's value stays in its temporary while the very next
    instruction uses it too (`mov t, a; add t, b` of two-address code): one
    reload before the run and one store after it, not a store and a reload
    between each pair. Nothing crosses a jump or the block's end without
    being stored.
    """
    out: list[MInsn] = []
    held: dict[str, str] = {}  # spilled register -> temporary holding its value
    dirty: set[str] = set()  # held values not yet stored
    for i, insn in enumerate(insns):
        mapping: dict[MReg, MReg] = {}
        direct = _spill_copy(insn, regs, slots, held, insns[i + 1] if i + 1 < len(insns) else None)
        if direct is not None:  # a copy to or from a slot is the store or the load itself
            out.append(direct)
            continue
        for reg in insn.uses():
            if isinstance(reg, str) and reg in regs and reg not in mapping:
                if reg not in held:
                    counter[0] += 1
                    held[reg] = f"{reg}.r{counter[0]}"
                    temps.add(held[reg])
                    out.append(ldx_mem(Size.DW, held[reg], FP, slots[reg], span=insn.span))
                mapping[reg] = held[reg]
        for reg in insn.defs():
            if isinstance(reg, str) and reg in regs:
                if reg not in mapping:
                    if reg not in held:
                        counter[0] += 1
                        held[reg] = f"{reg}.w{counter[0]}"
                        temps.add(held[reg])
                    mapping[reg] = held[reg]
                dirty.add(reg)
        out.append(insn.rename(mapping) if mapping else insn)
        nxt = insns[i + 1] if i + 1 < len(insns) else None
        for reg in list(held):
            keep = nxt is not None and reg in (*nxt.uses(), *nxt.defs())
            if reg in dirty and (not keep or nxt is None or nxt.cls in (Class.JMP, Class.JMP32) or reg not in nxt.uses()):
                out.append(stx_mem(Size.DW, FP, held[reg], slots[reg], span=insn.span))
                dirty.discard(reg)
            if not keep:
                del held[reg]
    return out


def _spill_copy(insn: MInsn, regs: set[str], slots: dict[str, int], held: dict[str, str], nxt: MInsn | None) -> MInsn | None:
    """`spilled = r` as one store, `r = spilled` as one load (no temporary in between), else None.

    Not for a copy whose destination the next instruction works on (`mov t, a;
    add t, b`): there the value is better kept in a temporary for both.
    """
    if not insn.is_copy():
        return None
    dst, src = insn.dst, insn.src
    dst_slot = slots[dst] if isinstance(dst, str) and dst in regs else None
    src_slot = slots[src] if isinstance(src, str) and src in regs else None
    next_touches = nxt is not None and dst in (*nxt.uses(), *nxt.defs())
    if dst_slot is not None and src_slot is None and dst not in held and not next_touches:
        return stx_mem(Size.DW, FP, src, dst_slot, span=insn.span)
    if src_slot is not None and dst_slot is None and src not in held:
        return ldx_mem(Size.DW, dst, FP, src_slot, span=insn.span)
    return None


def allocate(fn: MFunction) -> None:
    """Replace every virtual register with a physical one, in place."""
    slots: dict[str, int] = {}
    counter = [0]
    temps: set[str] = set()
    freq = _frequencies(fn)  # spilling rewrites instructions, never the blocks: one estimate serves every round
    for _ in range(64):
        graph = build_graph(fn, freq)
        remat = frozenset(_rematerializable(fn, {r for r in graph.adj if isinstance(r, str)}))
        # Coalescing George's way too removes the most copies but can push a
        # crowded graph into spilling; Briggs's test alone then.
        assignment, spilled = color(graph, frozenset(temps), remat)
        if spilled:
            assignment, spilled = color(graph, frozenset(temps), remat, george=False)
        if spilled & temps:
            raise AllocationError("a spill temporary found no register")
        if not spilled:
            physical: dict[MReg, MReg] = {reg: phys for reg, phys in assignment.items()}
            for b in fn.blocks:
                b.insns = [i.rename(physical) for i in b.insns]
                b.insns = [i for i in b.insns if not (i.is_copy() and i.dst == i.src)]
            _drop_dead_spill_stores(fn)
            _pack_slots(fn)
            return
        _spill(fn, spilled, slots, counter, temps)
    raise AllocationError("register allocation did not converge")


_LDX_DW = mem_opcode(Class.LDX, Mode.MEM, Size.DW)  # a fill
_STX_DW = mem_opcode(Class.STX, Mode.MEM, Size.DW)  # a spill


def _slot_access(insn: MInsn) -> tuple[int | None, int | None]:
    """The spill slot an instruction reads (an 8-byte load from r10) and the one it writes (a store)."""
    if insn.opcode == _LDX_DW and insn.src == FP:
        return insn.off, None
    if insn.opcode == _STX_DW and insn.dst == FP:
        return None, insn.off
    return None, None


def _slots_live_in(fn: MFunction) -> dict[str, set[int]]:
    """The spill slots live at the start of each block: a store defines a slot, a load uses it."""
    use: dict[str, set[int]] = {}
    defs: dict[str, set[int]] = {}
    for b in fn.blocks:
        u: set[int] = set()
        d: set[int] = set()
        for insn in b.insns:
            read, written = _slot_access(insn)
            if read is not None and read not in d:
                u.add(read)
            if written is not None:
                d.add(written)
        use[b.label], defs[b.label] = u, d
    return _solve_live_in(fn.blocks, use, defs)


def _drop_dead_spill_stores(fn: MFunction) -> None:
    """Delete stores to spill slots that no load reads afterwards (a spilled value defined again, or never used)."""
    live_in = _slots_live_in(fn)
    for b in fn.blocks:
        live: set[int] = set().union(*(live_in[s] for s in b.succs)) if b.succs else set()
        kept: list[MInsn] = []
        for insn in reversed(b.insns):
            read, written = _slot_access(insn)
            if written is not None:
                if written not in live:
                    continue
                live.discard(written)
            if read is not None:
                live.add(read)
            kept.append(insn)
        b.insns = kept[::-1]


def _pack_slots(fn: MFunction) -> None:
    """Map the spill slots onto as few stack offsets as their live ranges allow, in place.

    Slots whose intervals (`_slot_ranges`) do not overlap take the same
    offset (linear scan with as many offsets as needed). More than MAX_STACK
    bytes at once is an StackLimitError at the instruction where the value
    that does not fit is stored.
    """
    if not fn.stack_size:
        return
    ranges, first_store = _slot_ranges(fn)
    offset: dict[int, int] = {}
    free: list[int] = []  # offsets of slots whose ranges have ended
    active: list[tuple[int, int]] = []  # (end, offset)
    deepest = 0
    for slot, (start, end) in sorted(ranges.items(), key=lambda item: (item[1][0], item[1][1])):
        for done in [a for a in active if a[0] < start]:
            active.remove(done)
            free.append(done[1])
        if free:
            free.sort(reverse=True)  # the offset nearest r10 first
            chosen = free.pop()
        else:
            deepest += 8
            chosen = -deepest
            if deepest > MAX_STACK:
                raise StackLimitError(
                    f"too many values are live at once here: besides r0-r9 they need more than BPF's {MAX_STACK} bytes of stack",
                    first_store.get(slot),
                )
        offset[slot] = chosen
        active.append((end, chosen))
    for b in fn.blocks:
        b.insns = [replace(i, off=offset[i.off]) if _slot_access(i) != (None, None) else i for i in b.insns]
    fn.stack_size = deepest


def _slot_ranges(fn: MFunction) -> tuple[dict[int, list[int]], dict[int, object]]:
    """Each spill slot's [first, last] live position, and the span of its first store.

    A slot is live from a store to the loads that read it, solved over the
    CFG like a register (a store defines it, a load uses it) and widened to
    one interval over the layout order, as registers are.
    """
    live_in = _slots_live_in(fn)
    ranges: dict[int, list[int]] = {}  # slot -> [first, last] position
    first_store: dict[int, object] = {}  # slot -> span of its first store, for the error
    pos = 0

    def touch(slot: int, at: int) -> None:
        r = ranges.setdefault(slot, [at, at])
        r[0], r[1] = min(r[0], at), max(r[1], at)

    for b in fn.blocks:
        for slot in live_in[b.label]:
            touch(slot, pos)
        for insn in b.insns:
            read, written = _slot_access(insn)
            for accessed in (read, written):
                if accessed is not None:
                    touch(accessed, pos)
            if written is not None:
                first_store.setdefault(written, insn.span)
            pos += 1
        for slot in set().union(*(live_in[s] for s in b.succs)) if b.succs else set():
            touch(slot, pos - 1)
    return ranges, first_store
