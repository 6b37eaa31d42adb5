"""Register allocation: linear scan over r0-r9, spilling to the stack.

Liveness is solved over the machine CFG; each virtual register gets one
conservative interval over the layout order. Intervals are allocated in order
of their start; a copy's destination prefers its source's register, so most
two-address moves become `mov rX, rX` and disappear. When registers run out,
the interval with the lowest spill weight (the loads and stores spilling it
would insert, per position it frees, as LLVM weighs them) is spilled: each run
of instructions using it reloads it from an 8-byte stack slot and each run
defining it stores it back, and allocation runs again on the rewritten code
(the fresh temporaries live only across such a run and are never spilled
themselves). A register whose only definition is
marked rematerializable (a constant, a packet read, a read of keys bytes that
are never written) is not given a slot: its definition is repeated before
each use instead, one instruction where a spill costs a store and a load.
Once every register has one, spill slots whose values are never live at the
same time share a stack offset (`_pack_slots`): the 512 bytes of BPF stack
hold 64 values at once, not 64 spilled registers in all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

from pyfd.abi import MAX_BPF_STACK as MAX_STACK
from pyfd.isa import Class, JmpOp, Mode, Size, bpf_op, mem_opcode

from .mir import FP, MBlock, MFunction, MInsn, MReg, ldx_mem, stx_mem

ALLOCATABLE = tuple(range(10))  # r0-r9; r10 is the frame pointer
_T = TypeVar("_T")


class AllocationError(Exception):
    """Register allocation failed (a bug in pyfd, unless it is a StackLimitError)."""


class StackLimitError(AllocationError):
    """The program needs more stack than BPF allows; `span` is where too many values are live at once."""

    def __init__(self, message: str, span: object | None = None) -> None:
        super().__init__(message)
        self.span = span


@dataclass
class Interval:
    """Where a virtual register is live, as [start, end] in layout positions."""

    reg: str
    start: int
    end: int
    hint: MReg | None = None
    cost: int = 0  # the loads and stores spilling it would insert (see _spill)

    @property
    def weight(self) -> float:
        """Spill weight: what spilling costs per position it frees."""
        return self.cost / (self.end - self.start + 1)


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


def build_intervals(fn: MFunction) -> tuple[dict[str, Interval], dict[int, list[tuple[int, int]]]]:
    """Intervals of virtual registers, and the ranges where physical registers are fixed."""
    live_in = liveness(fn)
    intervals: dict[str, Interval] = {}
    fixed: dict[int, list[tuple[int, int]]] = {}
    last_def: dict[int, int] = {}

    def touch(reg: MReg, pos: int) -> None:
        if isinstance(reg, str):
            iv = intervals.get(reg)
            if iv is None:
                intervals[reg] = Interval(reg, pos, pos)
            else:
                iv.start, iv.end = min(iv.start, pos), max(iv.end, pos)

    pos = 0
    for b in fn.blocks:
        block_start = pos
        for reg in live_in[b.label]:
            touch(reg, block_start)
            if isinstance(reg, int):
                last_def.setdefault(reg, block_start)
        previous: set[MReg] = set()
        for index, insn in enumerate(b.insns):
            for reg in insn.uses():
                touch(reg, pos)
                if isinstance(reg, int) and reg != FP:
                    fixed.setdefault(reg, []).append((last_def.get(reg, 0), pos))
            for reg in insn.defs():
                touch(reg, pos + 1)
                if isinstance(reg, int):
                    last_def[reg] = pos + 1
            _clobbers(insn, pos, fixed)
            # A run of consecutive instructions referring to a register costs
            # one reload (if the run reads it first) and one store (if the run
            # writes it) when spilled, as _spill rewrites it.
            for reg in {*insn.uses(), *insn.defs()}:
                if isinstance(reg, str) and reg not in previous:
                    intervals[reg].cost += 1 + any(reg in (*i.defs(),) for i in _run(b.insns, index, reg))
            previous = {*insn.uses(), *insn.defs()}
            if insn.is_copy() and isinstance(insn.dst, str):
                intervals[insn.dst].hint = intervals[insn.dst].hint or insn.src
            elif insn.is_copy() and isinstance(insn.src, str) and isinstance(insn.dst, int):
                intervals[insn.src].hint = intervals[insn.src].hint or insn.dst
            pos += 2
        out = set().union(*(live_in[s] for s in b.succs)) if b.succs else set()
        for reg in out:
            touch(reg, pos - 1)
    return intervals, fixed


def _clobbers(insn: MInsn, pos: int, fixed: dict[int, list[tuple[int, int]]]) -> None:
    """A helper call writes r0-r5 (the BPF calling convention): nothing live across it may be in them."""
    if insn.cls == Class.JMP and bpf_op(insn.opcode) == JmpOp.CALL:
        for reg in insn.defs():
            if isinstance(reg, int):
                fixed.setdefault(reg, []).append((pos, pos + 1))


def _run(insns: list[MInsn], start: int, reg: MReg) -> list[MInsn]:
    """The instructions from `start` on that refer to `reg` without a gap."""
    run = []
    for insn in insns[start:]:
        if reg not in (*insn.uses(), *insn.defs()):
            break
        run.append(insn)
    return run


def _overlaps(ranges: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(a < end and start < b for a, b in ranges)


def linear_scan(
    intervals: dict[str, Interval], fixed: dict[int, list[tuple[int, int]]], unspillable: frozenset[str] = frozenset()
) -> tuple[dict[str, int], set[str]]:
    """Assign physical registers; return the assignment and the registers to spill."""
    assignment: dict[str, int] = {}
    spilled: set[str] = set()
    active: list[Interval] = []
    for cur in sorted(intervals.values(), key=lambda iv: (iv.start, iv.end)):
        active = [iv for iv in active if iv.end > cur.start]
        busy = {assignment[iv.reg] for iv in active}
        free = [r for r in ALLOCATABLE if r not in busy and not _overlaps(fixed.get(r, []), cur.start, cur.end)]
        if free:
            hint = cur.hint if isinstance(cur.hint, int) else assignment.get(cur.hint) if isinstance(cur.hint, str) else None
            # Prefer the hinted register, then callee-clobbered ones low first.
            choice = hint if hint in free else free[0]
            assignment[cur.reg] = choice
            active.append(cur)
            continue
        # No register: spill the cheapest of the candidates (the lowest weight;
        # of equals, the one that lives longest). Spill temporaries stay put.
        candidates = [
            iv for iv in active if iv.reg not in unspillable and not _overlaps(fixed.get(assignment[iv.reg], []), cur.start, cur.end)
        ]
        victim = min(candidates, key=lambda iv: (iv.weight, -iv.end), default=None)
        if victim is not None and (cur.reg in unspillable or (victim.weight, -victim.end) < (cur.weight, -cur.end)):
            assignment[cur.reg] = assignment.pop(victim.reg)
            spilled.add(victim.reg)
            active.remove(victim)
            active.append(cur)
        else:
            spilled.add(cur.reg)
    return assignment, spilled


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
    for _ in range(64):
        intervals, fixed = build_intervals(fn)
        assignment, spilled = linear_scan(intervals, fixed, frozenset(temps))
        if spilled & temps:
            raise AllocationError("a spill temporary found no register")
        if not spilled:
            physical: dict[MReg, MReg] = {reg: phys for reg, phys in assignment.items()}
            for b in fn.blocks:
                b.insns = [i.rename(physical) for i in b.insns]
                b.insns = [i for i in b.insns if not (i.is_copy() and i.dst == i.src)]
            _pack_slots(fn)
            return
        _spill(fn, spilled, slots, counter, temps)
    raise AllocationError("register allocation did not converge")


def _slot_access(insn: MInsn) -> tuple[int | None, int | None]:
    """The spill slot an instruction reads (an 8-byte load from r10) and the one it writes (a store)."""
    if insn.opcode == mem_opcode(Class.LDX, Mode.MEM, Size.DW) and insn.src == FP:
        return insn.off, None
    if insn.opcode == mem_opcode(Class.STX, Mode.MEM, Size.DW) and insn.dst == FP:
        return None, insn.off
    return None, None


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
    live_in = _solve_live_in(fn.blocks, use, defs)
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


def blocks_used_registers(blocks: list[MBlock]) -> set[int]:
    """Physical registers written anywhere (for listings and tests)."""
    return {r for b in blocks for i in b.insns for r in i.defs() if isinstance(r, int)}
