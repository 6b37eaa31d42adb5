"""The IR checker: structure, definitions, and the packet-access proof.

Run after the frontend and after every pass. A packet load is accepted only if
a `CheckPacket` on the same base and window, covering the loaded bytes,
dominates it through its `ok` edge; the base must be a register with one
definition (or an immediate), so no redefinition can slip between check and
load. A window is opened by one check only: its stack copy is filled there,
so a load through it reads bytes that check either found in the linear part
or copied.
"""

from __future__ import annotations

from pyfd.abi import FLOW_KEYS_SIZE as KEYS_SIZE
from pyfd.abi import RETURN_CODES

from .analysis import definition_counts, dominators, reverse_postorder
from .nodes import (
    ACCESS_SIZES, Block, CheckPacket, Function, Imm, Instruction, LoadKeys, LoadPacket, Operand,
    Reg, Return, StoreKeys, Terminator, defined, used_regs,
)
from ..diagnostics import InternalCompilerError, PacketAccessError


class IRCheckError(InternalCompilerError):
    """The IR breaks an invariant: a bug in the frontend or in a pass."""


def check_function(fn: Function) -> None:
    """Raise if `fn` is malformed or reads the packet without a dominating check."""
    _check_structure(fn)
    _check_definitions(fn)
    _check_packet_reads(fn)


def _check_structure(fn: Function) -> None:
    labels = [b.label for b in fn.blocks]
    if not labels:
        raise IRCheckError(f"function {fn.name} has no blocks", fn.span)
    if len(set(labels)) != len(labels):
        raise IRCheckError(f"function {fn.name} has duplicate block labels", fn.span)
    known = set(labels)
    for block in fn.blocks:
        for target in block.successors():
            if target not in known:
                raise IRCheckError(f"block {block.label} jumps to unknown block {target}", block.term.span)
        for insn in block.insns:
            _check_access(insn)
        if isinstance(block.term, Return) and block.term.value not in RETURN_CODES:
            raise IRCheckError(f"return value {block.term.value} is not a flow dissector return code", block.term.span)
        if isinstance(block.term, CheckPacket) and block.term.size < 0:  # size 0: `pkt.has(end)`, a length test
            raise IRCheckError(f"packet check of {block.term.size} bytes", block.term.span)
    opened: set[int] = set()
    for block in fn.blocks:
        window = block.term.window if isinstance(block.term, CheckPacket) else None
        if window is not None:
            if window in opened:
                raise IRCheckError(f"packet window {window} is opened by more than one check", block.term.span)
            opened.add(window)


def _check_access(insn: Instruction) -> None:
    match insn:
        case LoadKeys(offset=off, size=size) | StoreKeys(offset=off, size=size):
            if size not in ACCESS_SIZES or off < 0 or off + size > KEYS_SIZE or off % size:
                raise IRCheckError(f"flow keys access of {size} bytes at offset {off}", insn.span)
        case LoadPacket(size=size, disp=disp, window=window):
            if size not in ACCESS_SIZES or disp < 0:
                raise IRCheckError(f"packet load of {size} bytes at displacement {disp}", insn.span)
            if window is not None and disp % size:
                # The window may be a stack copy, and the verifier checks the
                # alignment of every stack access (check_ptr_alignment).
                raise IRCheckError(f"packet load of {size} bytes at displacement {disp} through window {window} is not aligned", insn.span)


def _check_definitions(fn: Function) -> None:
    """Every register read is written on every path from the entry before it.

    The sets of registers written on every path are bit sets (a Python int,
    one bit per register): a set per block of every register would take
    blocks x registers of memory, gigabytes for a few thousand `elif`s.
    """
    blocks = fn.block_map()
    order = reverse_postorder(fn)
    preds = fn.predecessors()
    bit: dict[Reg, int] = {}
    for insn in fn.instructions():
        if (d := defined(insn)) is not None and d not in bit:
            bit[d] = 1 << len(bit)
    everything = (1 << len(bit)) - 1
    written = {label: _bits(blocks[label].insns, bit) for label in order}
    defined_out: dict[str, int] = {label: everything for label in order}

    def defined_in(label: str) -> int:
        live_preds = [p for p in preds[label] if p in defined_out]
        if not live_preds or label == order[0]:
            return 0
        now = everything
        for p in live_preds:
            now &= defined_out[p]
        return now

    changed = True
    while changed:
        changed = False
        for label in order:
            now = defined_in(label) | written[label]
            if now != defined_out[label]:
                defined_out[label] = now
                changed = True
    for label in order:
        now = defined_in(label)
        for insn in blocks[label].insns:
            _require_defined(insn, now, bit)
            if (d := defined(insn)) is not None:
                now |= bit[d]
        _require_defined(blocks[label].term, now, bit)


def _bits(insns: list[Instruction], bit: dict[Reg, int]) -> int:
    out = 0
    for insn in insns:
        if (d := defined(insn)) is not None:
            out |= bit[d]
    return out


def _require_defined(node: Instruction | Terminator, now: int, bit: dict[Reg, int]) -> None:
    for reg in used_regs(node):
        if not now & bit.get(reg, 0):
            raise IRCheckError(f"register {reg} may be read before it is written", node.span)


def _guarding_check(block: Block, preds: dict[str, list[str]], blocks: dict[str, Block]) -> CheckPacket | None:
    """The check whose `ok` edge is the only way into `block`, if there is one."""
    if len(preds[block.label]) != 1:
        return None
    term = blocks[preds[block.label][0]].term
    if isinstance(term, CheckPacket) and term.ok == block.label and term.fail != block.label:
        return term
    return None


def _check_packet_reads(fn: Function) -> None:
    counts = definition_counts(fn)
    blocks = fn.block_map()
    preds = fn.predecessors()
    idom = dominators(fn)
    covered: dict[tuple[str, Operand, int | None], int] = {}
    for block in fn.blocks:
        if block.label not in idom:
            continue  # unreachable: never executed, and the backend drops it
        for insn in block.insns:
            if isinstance(insn, LoadPacket):
                _prove_load(insn, block.label, idom, preds, blocks, counts, covered)
    for block in fn.blocks:
        if isinstance(block.term, CheckPacket):
            _single_definition(block.term.base, block.term, counts)


def _single_definition(base: Operand, node: LoadPacket | CheckPacket, counts: dict[Reg, int]) -> None:
    if isinstance(base, Reg) and counts.get(base, 0) != 1:
        raise IRCheckError(f"packet base {base} must be written exactly once, not {counts.get(base, 0)} times", node.span)


def _prove_load(
    load: LoadPacket,
    label: str,
    idom: dict[str, str | None],
    preds: dict[str, list[str]],
    blocks: dict[str, Block],
    counts: dict[Reg, int],
    covered: dict[tuple[str, Operand, int | None], int],
) -> None:
    _single_definition(load.base, load, counts)
    need = load.disp + load.size
    # The most bytes any check on the dominator chain guards for this base
    # and window. Remembered per (block, base, window), so a load deep in a
    # chain of `elif`s walks only the part of the chain no earlier load walked.
    base, window = load.base, load.window
    chain: list[str] = []
    node: str | None = label
    while node is not None and (node, base, window) not in covered:
        chain.append(node)
        node = idom[node]
    best = covered[(node, base, window)] if node is not None else -1
    for dom in reversed(chain):
        check = _guarding_check(blocks[dom], preds, blocks)
        if check is not None and check.window == window and _same_base(check.base, base):
            best = max(best, check.size)
        covered[(dom, base, window)] = best
    if best >= need:
        return
    through = "" if window is None else f" through window {window}"
    raise PacketAccessError(
        f"packet read of {load.size} bytes at [{load.base} + {load.disp}]{through} is not dominated by a bounds check covering it",
        load.span,
    )


def _same_base(a: Operand, b: Operand) -> bool:
    if isinstance(a, Imm) and isinstance(b, Imm):
        return a.value == b.value
    return a == b
