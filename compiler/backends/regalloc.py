"""Register allocation: linear scan over r0-r9, spilling to the stack.

Liveness is solved over the machine CFG; each virtual register gets one
conservative interval over the layout order. Intervals are allocated in order
of their start; a copy's destination prefers its source's register, so most
two-address moves become `mov rX, rX` and disappear. When registers run out,
the interval that ends last is spilled: every use reloads it from an 8-byte
stack slot and every definition stores it back, and allocation runs again on
the rewritten code (the fresh temporaries live only across one instruction).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..isa import Class, Mode, Size
from .mir import FP, MBlock, MFunction, MInsn, MReg

ALLOCATABLE = tuple(range(10))  # r0-r9; r10 is the frame pointer
MAX_STACK = 512  # bytes of BPF stack (MAX_BPF_STACK)


class AllocationError(Exception):
    """The program needs more stack than BPF allows."""


@dataclass
class Interval:
    """Where a virtual register is live, as [start, end] in layout positions."""

    reg: str
    start: int
    end: int
    hint: MReg | None = None


def liveness(fn: MFunction) -> dict[str, set[MReg]]:
    """Registers live on entry to each block."""
    blocks = {b.label: b for b in fn.blocks}
    use: dict[str, set[MReg]] = {}
    defs: dict[str, set[MReg]] = {}
    for b in fn.blocks:
        u: set[MReg] = set()
        d: set[MReg] = set()
        for insn in b.insns:
            u.update(r for r in insn.uses() if r not in d)
            d.update(insn.defs())
        use[b.label], defs[b.label] = u, d
    live_in: dict[str, set[MReg]] = {b.label: set() for b in fn.blocks}
    changed = True
    while changed:
        changed = False
        for b in reversed(fn.blocks):
            out: set[MReg] = set().union(*(live_in[s] for s in b.succs)) if b.succs else set()
            new = use[b.label] | (out - defs[b.label])
            if new != live_in[b.label]:
                live_in[b.label] = new
                changed = True
    del blocks
    return live_in


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
        for insn in b.insns:
            for reg in insn.uses():
                touch(reg, pos)
                if isinstance(reg, int) and reg != FP:
                    fixed.setdefault(reg, []).append((last_def.get(reg, 0), pos))
            for reg in insn.defs():
                touch(reg, pos + 1)
                if isinstance(reg, int):
                    last_def[reg] = pos + 1
            if insn.is_copy() and isinstance(insn.dst, str):
                intervals[insn.dst].hint = intervals[insn.dst].hint or insn.src
            elif insn.is_copy() and isinstance(insn.src, str) and isinstance(insn.dst, int):
                intervals[insn.src].hint = intervals[insn.src].hint or insn.dst
            pos += 2
        out = set().union(*(live_in[s] for s in b.succs)) if b.succs else set()
        for reg in out:
            touch(reg, pos - 1)
    return intervals, fixed


def _overlaps(ranges: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(a < end and start < b for a, b in ranges)


def linear_scan(intervals: dict[str, Interval], fixed: dict[int, list[tuple[int, int]]]) -> tuple[dict[str, int], set[str]]:
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
        # No register: spill whichever of the candidates lives longest.
        candidates = [iv for iv in active if not _overlaps(fixed.get(assignment[iv.reg], []), cur.start, cur.end)]
        victim = max(candidates, key=lambda iv: iv.end, default=None)
        if victim is not None and victim.end > cur.end:
            assignment[cur.reg] = assignment.pop(victim.reg)
            spilled.add(victim.reg)
            active.remove(victim)
            active.append(cur)
        else:
            spilled.add(cur.reg)
    return assignment, spilled


def _spill(fn: MFunction, regs: set[str], slots: dict[str, int], counter: list[int]) -> None:
    """Rewrite every access to `regs` through their stack slots."""
    for reg in sorted(regs):
        if reg not in slots:
            fn.stack_size += 8
            if fn.stack_size > MAX_STACK:
                raise AllocationError(f"the program needs more than {MAX_STACK} bytes of stack for spilled values")
            slots[reg] = -fn.stack_size
    for b in fn.blocks:
        out: list[MInsn] = []
        for insn in b.insns:
            mapping: dict[MReg, MReg] = {}
            before: list[MInsn] = []
            after: list[MInsn] = []
            for reg in insn.uses():
                if isinstance(reg, str) and reg in regs and reg not in mapping:
                    counter[0] += 1
                    tmp = f"{reg}.r{counter[0]}"
                    mapping[reg] = tmp
                    before.append(MInsn(Class.LDX | Mode.MEM | Size.DW, tmp, FP, slots[reg], span=insn.span))
            for reg in insn.defs():
                if isinstance(reg, str) and reg in regs:
                    if reg not in mapping:
                        counter[0] += 1
                        mapping[reg] = f"{reg}.w{counter[0]}"
                    after.append(MInsn(Class.STX | Mode.MEM | Size.DW, FP, mapping[reg], slots[reg], span=insn.span))
            out.extend(before)
            out.append(insn.rename(mapping) if mapping else insn)
            out.extend(after)
        b.insns = out


def allocate(fn: MFunction) -> None:
    """Replace every virtual register with a physical one, in place."""
    slots: dict[str, int] = {}
    counter = [0]
    for _ in range(64):
        intervals, fixed = build_intervals(fn)
        assignment, spilled = linear_scan(intervals, fixed)
        if not spilled:
            for b in fn.blocks:
                b.insns = [i.rename(assignment) for i in b.insns]  # type: ignore[arg-type]
                b.insns = [i for i in b.insns if not (i.is_copy() and i.dst == i.src)]
            return
        _spill(fn, spilled, slots, counter)
    raise AllocationError("register allocation did not converge")


def blocks_used_registers(blocks: list[MBlock]) -> set[int]:
    """Physical registers written anywhere (for listings and tests)."""
    return {r for b in blocks for i in b.insns for r in i.defs() if isinstance(r, int)}
