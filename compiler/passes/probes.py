"""FoldProbes: `if pkt.has(x + n): h = pkt.header(H, x)` with n the size of H is one check, not two.

`pkt.has(end)` checks that the packet holds `end` bytes; `pkt.header(H, x)`
that it holds `[x, x + size)`. When the header's check is all the probe's
`ok` block does (after arithmetic) and both end at the same byte, the two
checks pass and fail together: the same packet length decides both, and the
clamp each includes (kernel/bpf/verifier.c, MAX_PACKET_OFF: `base <= 0xffff -
size`) is `end <= 0xffff` for both. So the header's check can take the
probe's `fail` edge (its own is never taken after the probe) and the probe
goes. samples/full.py's ports word (`lib.ports`) and the UDP tunnel headers
are read this way.

Both must read the same part of the packet: both with a window (a size-0
check with one probes the last byte, so the paged part counts for both) or
both without. The probe's window is one no load reads.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir.nodes import (
    Binary, BinaryOp, Block, ByteSwap, CheckPacket, Copy, Extend, Function, Imm, Jump, LoadConfig, LoadKeys, LoadPacket, Operand,
    Reg, SetCond, Unary, defined, used_regs,
)
from .dce import live_out
from .facts import Facts

# Instructions that may run before the check instead of after it: no memory they could fault on, no effect.
_PURE = (Copy, Binary, Unary, Extend, ByteSwap, SetCond, LoadKeys, LoadConfig)


def _affine(op: Operand, facts: Facts) -> tuple[Operand, int]:
    """`op` as a root plus a constant, through single-assignment copies and constant additions."""
    offset = 0
    for _ in range(16):
        insn = facts.single(op)
        match insn:
            case Copy(src=src):
                op = src
            case Binary(BinaryOp.ADD, _, lhs, Imm(value=k)) | Binary(BinaryOp.ADD, _, Imm(value=k), lhs):
                op, offset = lhs, offset + k
            case _:
                break
    if isinstance(op, Imm):
        return Imm(0), op.value + offset
    return op, offset


def _width(op: Operand, facts: Facts, constants: dict[Reg, int], depth: int = 0) -> int:
    """Bits of `op`, as Facts.bits, also through a local whose every write is a constant (`offset = 0` or `4`)."""
    if isinstance(op, Reg) and op in constants:
        return constants[op]
    insn = facts.single(op)
    if depth < 16 and isinstance(insn, Binary) and insn.op is BinaryOp.ADD:
        return min(max(_width(insn.lhs, facts, constants, depth + 1), _width(insn.rhs, facts, constants, depth + 1)) + 1, 64)
    if depth < 16 and isinstance(insn, Copy):
        return _width(insn.src, facts, constants, depth + 1)
    return facts.bits(op)


def _constant_locals(fn: Function, facts: Facts) -> dict[Reg, int]:
    """Registers written more than once, each time with a constant: the bits of the largest."""
    writes: dict[Reg, list[int | None]] = {}
    for insn in fn.instructions():
        d = defined(insn)
        if d is not None and d not in facts.defs:
            writes.setdefault(d, []).append(insn.src.value if isinstance(insn, Copy) and isinstance(insn.src, Imm) else None)
    return {r: max(max(v.bit_length(), 1) for v in vs if v is not None) for r, vs in writes.items() if None not in vs}


class FoldProbes:
    """Drop a size-0 probe whose `ok` block only checks a header ending where the probe does."""

    name = "fold-probes"

    def run(self, fn: Function) -> bool:
        blocks = fn.block_map()
        if not any(isinstance(b.term, CheckPacket) and b.term.size == 0 and isinstance(blocks[b.term.ok].term, CheckPacket) for b in fn.blocks):
            return False  # no probe with a check after it
        facts = Facts(fn)
        preds = fn.predecessors()
        read = {i.window for i in fn.instructions() if isinstance(i, LoadPacket)}
        constants = _constant_locals(fn, facts)
        live: dict[str, set[Reg]] | None = None
        changed = False
        for block in fn.blocks:
            probe = block.term
            if not isinstance(probe, CheckPacket) or probe.size != 0 or probe.window in read and probe.window is not None:
                continue
            after = blocks[probe.ok]
            header = after.term
            if (
                preds[probe.ok] != [block.label]
                or not isinstance(header, CheckPacket)
                or header.size == 0
                or (header.window is None) != (probe.window is None)
                or not all(isinstance(i, _PURE) for i in after.insns)
            ):
                continue
            root, end = _affine(probe.base, facts)
            other, start = _affine(header.base, facts)
            if root != other or end != start + header.size or _width(root, facts, constants) > 32 or not 0 <= start < (1 << 32):
                continue  # not the same end byte (or one that could wrap around 64 bits)
            if live is None:
                live = live_out(fn)
            written = {d for i in after.insns if (d := defined(i)) is not None}
            fail = blocks[probe.fail]
            if written & _live_in(fail, live):
                continue  # the probe's failure would see the header block's writes
            block.term = Jump(probe.ok, probe.span)
            after.term = replace(header, fail=probe.fail)
            # Liveness from before stays right for the other probes: only the
            # header block's own live-in grows, and no other probe fails into
            # it (its one way in was this probe).
            changed = True
        return changed


def _live_in(block: Block, out: dict[str, set[Reg]]) -> set[Reg]:
    live = set(out[block.label]) | set(used_regs(block.term))
    for insn in reversed(block.insns):
        d = defined(insn)
        if d is not None:
            live.discard(d)
        live.update(used_regs(insn))
    return live
