"""Packet windows: where their stack copies live, and dropping them.

A `CheckPacket` with a window copies the bytes it guards into a stack buffer
when they are not in the linear part of the packet (see `CheckPacket`). The
buffers of windows that are never needed at the same time share stack
bytes: a window is live from its check to the last load through it, solved
over the CFG like a register, and a check's copy overwrites its buffer on
both edges (`bpf_skb_load_bytes` clears the buffer when it fails,
net/core/filter.c, bpf_flow_dissector_load_bytes), so it interferes with
every window live after the check on either edge.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .nodes import CheckPacket, Function, LoadPacket, Reg, used_regs

# Buffers start 8-byte aligned: the verifier checks the alignment of every
# stack access (kernel/bpf/verifier.c, check_ptr_alignment: strict for the
# stack), so a load through a window must be aligned to its size relative to
# the header, and the buffer must not break that.
ALIGN = 8


@dataclass(frozen=True)
class WindowLayout:
    """The stack buffer of every window: its offset from the start of the buffer area, and the area's size."""

    offsets: dict[int, int]
    sizes: dict[int, int]
    size: int


def linear_only(fn: Function) -> Function:
    """`fn` with every window dropped: checks test the linear part only (in place, returned)."""
    for block in fn.blocks:
        block.insns = [replace(i, window=None) if isinstance(i, LoadPacket) and i.window is not None else i for i in block.insns]
        if isinstance(block.term, CheckPacket) and block.term.window is not None:
            block.term = replace(block.term, window=None)
    return fn


def has_windows(fn: Function) -> bool:
    """True if some check can copy packet bytes to the stack."""
    return any(isinstance(b.term, CheckPacket) and b.term.window is not None for b in fn.blocks)


def _buffer_size(check: CheckPacket) -> int:
    # A size-0 check probes one byte.
    return max(check.size, 1)


def _interference(fn: Function) -> tuple[dict[int, int], dict[int, set[int]]]:
    """Each window's buffer size, and the windows each one may not share bytes with."""
    blocks = fn.block_map()
    sizes: dict[int, int] = {}
    # A value read through a window may be read again where it is used
    # instead of kept (the native allocator rematerializes packet reads), so
    # a use of it counts as a use of its window.
    loaded: dict[Reg, set[int]] = {}
    for insn in fn.instructions():
        if isinstance(insn, LoadPacket) and insn.window is not None:
            loaded.setdefault(insn.dst, set()).add(insn.window)
    uses: dict[str, set[int]] = {}
    for b in fn.blocks:
        if isinstance(b.term, CheckPacket) and b.term.window is not None:
            sizes[b.term.window] = _buffer_size(b.term)
        used: set[int] = set()
        for node in [*b.insns, b.term]:
            if isinstance(node, LoadPacket) and node.window is not None:
                used.add(node.window)
            for reg in used_regs(node):
                used |= loaded.get(reg, set())
        uses[b.label] = used
    live_in: dict[str, set[int]] = {b.label: set() for b in fn.blocks}

    def live_out(label: str) -> set[int]:
        return set().union(*(live_in[s] for s in blocks[label].successors()))

    changed = True
    while changed:
        changed = False
        for b in reversed(fn.blocks):
            live = live_out(b.label)
            if isinstance(b.term, CheckPacket) and b.term.window is not None:
                live.discard(b.term.window)
            live |= uses[b.label]
            if live != live_in[b.label]:
                live_in[b.label] = live
                changed = True
    conflicts: dict[int, set[int]] = {w: set() for w in sizes}
    for b in fn.blocks:
        term = b.term
        if isinstance(term, CheckPacket) and term.window is not None:
            for other in live_out(b.label) - {term.window}:
                conflicts[term.window].add(other)
                conflicts[other].add(term.window)
    return sizes, conflicts


def window_layout(fn: Function) -> WindowLayout:
    """Offsets for the windows' buffers: first fit, largest first, never overlapping an interfering one."""
    sizes, conflicts = _interference(fn)
    offsets: dict[int, int] = {}
    for window in sorted(sizes, key=lambda w: (-sizes[w], w)):
        size = -(-sizes[window] // ALIGN) * ALIGN
        taken = sorted((offsets[o], offsets[o] + -(-sizes[o] // ALIGN) * ALIGN) for o in conflicts[window] if o in offsets)
        at = 0
        for start, end in taken:
            if at + size <= start:
                break
            at = max(at, end)
        offsets[window] = at
    area = max((offsets[w] + -(-sizes[w] // ALIGN) * ALIGN for w in offsets), default=0)
    return WindowLayout(offsets, sizes, area)
