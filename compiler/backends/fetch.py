"""FETCH expansion: the slow path of a packet window, after register allocation.

A window's check reads a header in place when it is in the linear part of
the packet; otherwise its slow block copies the bytes with
`bpf_skb_load_bytes` into the window's stack buffer. The allocator sees that
block as one instruction, FETCH, that defines the window pointer and clobbers
nothing, so the values live across a check keep whatever registers suit the
fast path. Here FETCH becomes the call: the context pointer comes from the
slot the entry stored it in, and the registers the call clobbers (r0-r5) that
hold live values are saved around it in 8-byte slots, which the verifier
tracks like the registers themselves (pointers included).

The stack, from r10 down: the allocator's spill slots, the context slot, a
save slot for each of r0-r5, then the window buffers laid out by
`ir.windows.window_layout`.
"""

from __future__ import annotations

from pyfd.abi import BPF_FUNC_SKB_LOAD_BYTES, MAX_BPF_STACK
from pyfd.isa import AluOp, JmpOp, Size

from ..ir.windows import WindowLayout
from .mir import FETCH, FP, MFunction, MInsn, MReg, alu64_imm, call_helper, jmp_imm, ldx_mem, mov64_imm, mov64_reg, stx_mem
from .regalloc import StackLimitError, liveness

CLOBBERED = range(6)  # r0-r5: the helper's return value and its arguments


class _Frame:
    """Where the context, the saved registers and the window buffers are on the stack."""

    def __init__(self, spills: int, layout: WindowLayout) -> None:
        self.ctx = -(spills + 8)
        self.save = {r: self.ctx - 8 * (r + 1) for r in CLOBBERED}
        top = -self.save[CLOBBERED[-1]]
        self.size = top + layout.size
        if self.size > MAX_BPF_STACK:
            raise StackLimitError(
                f"the stack copies of the packet headers read at once need {layout.size} bytes, "
                f"and with {top} bytes of spilled values and saved registers that is more than BPF's {MAX_BPF_STACK}"
            )
        self.buffers = {w: -self.size + off for w, off in layout.offsets.items()}


def expand_fetches(fn: MFunction, layout: WindowLayout) -> None:
    """Replace every FETCH with its helper call, and store the context at entry (in place)."""
    frame = _Frame(fn.stack_size, layout)
    live_in = liveness(fn)
    for block in fn.blocks:
        out: list[MInsn] = []
        for i, insn in enumerate(block.insns):
            if insn.opcode != FETCH:
                out.append(insn)
                continue
            live = _live_after(insn, block.insns[i + 1 :], block.succs, live_in)
            out.extend(_expand(insn, live, frame))
        block.insns = out
    entry = fn.blocks[0]
    entry.insns.insert(0, stx_mem(Size.DW, FP, 1, frame.ctx, span=entry.insns[0].span if entry.insns else None))
    fn.stack_size = frame.size


def _live_after(insn: MInsn, rest: list[MInsn], succs: list[str], live_in: dict[str, set[MReg]]) -> set[MReg]:
    """Registers live right after `insn`: on its jump to the target, or on through the rest of its block."""
    live: set[MReg] = set().union(*(live_in[s] for s in succs))
    for later in reversed(rest):
        live = (live - set(later.defs())) | set(later.uses())
    assert insn.target is not None
    return live | live_in[insn.target]


def _expand(insn: MInsn, live: set[MReg], frame: _Frame) -> list[MInsn]:
    """`ptr = FETCH base` as `bpf_skb_load_bytes(ctx, base, buffer, size)` with r0-r5 kept."""
    fetch, span, ptr = insn.fetch, insn.span, insn.dst
    assert fetch is not None and isinstance(ptr, int) and insn.target is not None
    buffer = frame.buffers[fetch.window]
    saved = sorted(r for r in live if isinstance(r, int) and r in CLOBBERED and r != ptr)
    out = [stx_mem(Size.DW, FP, r, frame.save[r], span=span) for r in saved]
    # The offset first: the base may sit in r1, r3 or r4, which are set next.
    # A size-0 check (`pkt.has(end)`) probes the byte before `end`.
    if fetch.base is not None:
        out.append(mov64_imm(2, fetch.base - (0 if fetch.size else 1), span=span))
    else:
        if insn.src != 2:
            out.append(mov64_reg(2, insn.src, span=span))
        if not fetch.size:
            out.append(alu64_imm(AluOp.ADD, 2, -1, span=span))
    out += [
        ldx_mem(Size.DW, 1, FP, frame.ctx, span=span),
        mov64_reg(3, FP, span=span),
        alu64_imm(AluOp.ADD, 3, buffer, span=span),
        mov64_imm(4, max(fetch.size, 1), span=span),
        call_helper(BPF_FUNC_SKB_LOAD_BYTES, 4, span=span),
    ]
    if ptr != 0:
        out.append(mov64_reg(ptr, 0, span=span))
    out += [ldx_mem(Size.DW, r, FP, frame.save[r], span=span) for r in saved]
    out += [
        jmp_imm(JmpOp.JNE, ptr, 0, insn.target, span=span),
        mov64_reg(ptr, FP, span=span),
        alu64_imm(AluOp.ADD, ptr, buffer + fetch.size, span=span),  # past the bytes, as the fast path's pointer
    ]
    return out
