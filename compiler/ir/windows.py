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

# The most stack the copies may take: half of BPF's 512 bytes, leaving the
# rest for spilled values, the saved registers and the context slot. Windows
# past it (a dissector keeping a dozen IPv6 headers live at once) are read
# from the linear part only, as without the fallback (`fit_windows`).
BUDGET = 256


@dataclass(frozen=True)
class WindowLayout:
    """The stack buffer of every window: its offset from the start of the buffer area, and the area's size."""

    offsets: dict[int, int]
    sizes: dict[int, int]
    size: int
    dropped: frozenset[int] = frozenset()  # windows that did not fit in the budget


def linear_only(fn: Function, windows: frozenset[int] | None = None) -> Function:
    """`fn` with its windows (or those in `windows`) dropped: those checks test the linear part only (in place, returned)."""

    def drop(window: int | None) -> bool:
        return window is not None and (windows is None or window in windows)

    for block in fn.blocks:
        block.insns = [replace(i, window=None) if isinstance(i, LoadPacket) and drop(i.window) else i for i in block.insns]
        if isinstance(block.term, CheckPacket) and drop(block.term.window):
            block.term = replace(block.term, window=None)
    return fn


def fit_windows(fn: Function, budget: int = BUDGET) -> frozenset[int]:
    """Drop the windows whose copies do not fit in `budget` bytes (in place); return them.

    Windows are placed in program order, so the outer headers, which every
    inner one depends on, keep their fallback.
    """
    dropped = window_layout(fn, budget).dropped
    if dropped:
        linear_only(fn, dropped)
    return dropped


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


def _rounded(size: int) -> int:
    return -(-size // ALIGN) * ALIGN


def window_layout(fn: Function, budget: int | None = None) -> WindowLayout:
    """Offsets for the windows' buffers: first fit in program order, never overlapping an interfering one.

    With a `budget`, a window that would end past it gets no buffer and is
    listed in `dropped`.
    """
    sizes, conflicts = _interference(fn)
    offsets: dict[int, int] = {}
    dropped: set[int] = set()
    for window in sorted(sizes):
        size = _rounded(sizes[window])
        taken = sorted((offsets[o], offsets[o] + _rounded(sizes[o])) for o in conflicts[window] if o in offsets)
        at = 0
        for start, end in taken:
            if at + size <= start:
                break
            at = max(at, end)
        if budget is not None and at + size > budget:
            dropped.add(window)
            continue
        offsets[window] = at
    area = max((offsets[w] + _rounded(sizes[w]) for w in offsets), default=0)
    return WindowLayout(offsets, {w: sizes[w] for w in offsets}, area, frozenset(dropped))
