"""The IR checker: structure, definitions, the packet-access proof, and the map-access proof.

Run after the frontend and after every pass. A packet load is accepted only if
a `CheckPacket` on the same base and window, covering the loaded bytes,
dominates it through its `ok` edge; the base must be a register with one
definition (or an immediate), so no redefinition can slip between check and
load. A window is opened by one check only: its stack copy is filled there,
so a load through it reads bytes that check either found in the linear part
or copied.

A map value is read or written only through the pointer a `MapLookup`
wrote (once), where the edge of a `Branch` that found the pointer non-null
dominates (the verifier's PTR_TO_MAP_VALUE_OR_NULL becomes PTR_TO_MAP_VALUE
only there, kernel/bpf/verifier.c mark_ptr_or_null_reg); the pointer is used
for nothing else. Every map and load-time constant an operation names is
declared on the function, with the sizes it is accessed with, and an array
index that is a constant is inside the array.
"""

from __future__ import annotations

from pyfd.abi import FLOW_KEYS_SIZE as KEYS_SIZE
from pyfd.abi import RETURN_CODES

from .analysis import definition_counts, dominators
from .nodes import (
    ACCESS_SIZES, INT_TYPE_SIZES, AtomicMapValue, Block, Branch, CheckPacket, Cmp, Function, Imm, Instruction,
    LoadConfig, LoadKeys, LoadMapValue, LoadPacket, MapDef, MapDelete, MapLookup, MapUpdate, Operand, Reg, Return,
    StoreKeys, StoreMapValue, Terminator, defined, used, used_regs,
)
from ..diagnostics import InternalCompilerError, PacketAccessError


class IRCheckError(InternalCompilerError):
    """The IR breaks an invariant: a bug in the frontend or in a pass."""


def check_function(fn: Function) -> None:
    """Raise if `fn` is malformed or reads the packet without a dominating check."""
    _check_structure(fn)
    cfg = _Cfg(fn)
    _check_definitions(fn, cfg)
    _check_packet_reads(fn, cfg)
    _check_maps(fn, cfg)


class _Cfg:
    """What the checks share of a well-formed function: blocks, predecessors, dominators, definition counts."""

    def __init__(self, fn: Function) -> None:
        self.blocks = fn.block_map()
        self.preds = fn.predecessors()
        self.idom = dominators(fn, self.preds)  # reachable blocks only, in reverse postorder
        self.counts = definition_counts(fn)
        # Each reachable block's interval in a depth-first walk of the
        # dominator tree: a block dominates another iff its interval holds the other's.
        children: dict[str, list[str]] = {}
        for label, up in self.idom.items():
            if up is not None:
                children.setdefault(up, []).append(label)
        self.enter: dict[str, int] = {}
        self.leave: dict[str, int] = {}
        clock = 0
        stack: list[tuple[str, bool]] = [(fn.entry.label, True)]
        while stack:
            label, entering = stack.pop()
            clock += 1
            if entering:
                self.enter[label] = clock
                stack.append((label, False))
                stack.extend((child, True) for child in children.get(label, ()))
            else:
                self.leave[label] = clock

    def dominates(self, a: str, b: str) -> bool:
        """True if block `a` dominates block `b` (both reachable; a block dominates itself)."""
        return a in self.enter and self.enter[a] <= self.enter[b] and self.leave[b] <= self.leave[a]


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


def _check_definitions(fn: Function, cfg: _Cfg) -> None:
    """Every register read is written on every path from the entry before it.

    A register written once is, where its definition's block dominates the
    read (or precedes it in the same block): a test per read. For the
    others (locals, written on several paths) the sets of registers written
    on every path are solved over the CFG as bit sets (a Python int, one bit
    per such register): a set per block would take blocks x registers of
    memory, and bits for every register would make each operation as wide
    as the program.
    """
    blocks, preds, order = cfg.blocks, cfg.preds, list(cfg.idom)
    single: dict[Reg, tuple[str, int]] = {}  # a register written once -> (block, index) of the write
    bit: dict[Reg, int] = {}
    for block in fn.blocks:
        for index, insn in enumerate(block.insns):
            if (d := defined(insn)) is not None:
                if cfg.counts[d] == 1:
                    single[d] = (block.label, index)
                elif d not in bit:
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
    def require(node: Instruction | Terminator, label: str, index: int, now: int) -> None:
        for reg in used_regs(node):
            if reg in single:
                at, where = single[reg]
                ok = where < index if at == label else cfg.dominates(at, label)
            else:
                ok = bool(now & bit.get(reg, 0))
            if not ok:
                raise IRCheckError(f"register {reg} may be read before it is written", node.span)

    for label in order:
        now = defined_in(label)
        insns = blocks[label].insns
        for index, insn in enumerate(insns):
            require(insn, label, index, now)
            if (d := defined(insn)) is not None and d in bit:
                now |= bit[d]
        require(blocks[label].term, label, len(insns), now)


def _bits(insns: list[Instruction], bit: dict[Reg, int]) -> int:
    out = 0
    for insn in insns:
        if (d := defined(insn)) is not None and d in bit:
            out |= bit[d]
    return out


def _guarding_check(block: Block, preds: dict[str, list[str]], blocks: dict[str, Block]) -> CheckPacket | None:
    """The check whose `ok` edge is the only way into `block`, if there is one."""
    if len(preds[block.label]) != 1:
        return None
    term = blocks[preds[block.label][0]].term
    if isinstance(term, CheckPacket) and term.ok == block.label and term.fail != block.label:
        return term
    return None


def _check_packet_reads(fn: Function, cfg: _Cfg) -> None:
    """Every packet load is covered by a check on the `ok` edge into a block dominating it.

    One walk of the dominator tree finds the loads no check covers, keeping
    for the path from the entry the most bytes a check guards per (base,
    window), so each load is one look-up: linear in the size of the
    function, where walking each load's dominator chain costs loads x depth
    on a long chain of headers. The errors are then raised in block order.
    """
    counts, idom = cfg.counts, cfg.idom
    uncovered = _uncovered_loads(fn, idom, cfg.preds, cfg.blocks)
    for block in fn.blocks:
        if block.label not in idom:
            continue  # unreachable: never executed, and the backend drops it
        for index, insn in enumerate(block.insns):
            if isinstance(insn, LoadPacket):
                _single_definition(insn.base, insn, counts)
                if (block.label, index) in uncovered:
                    through = "" if insn.window is None else f" through window {insn.window}"
                    raise PacketAccessError(
                        f"packet read of {insn.size} bytes at [{insn.base} + {insn.disp}]{through} "
                        "is not dominated by a bounds check covering it",
                        insn.span,
                    )
    for block in fn.blocks:
        if isinstance(block.term, CheckPacket):
            _single_definition(block.term.base, block.term, counts)


def _single_definition(base: Operand, node: LoadPacket | CheckPacket, counts: dict[Reg, int]) -> None:
    if isinstance(base, Reg) and counts.get(base, 0) != 1:
        raise IRCheckError(f"packet base {base} must be written exactly once, not {counts.get(base, 0)} times", node.span)


def _uncovered_loads(fn: Function, idom: dict[str, str | None], preds: dict[str, list[str]], blocks: dict[str, Block]) -> set[tuple[str, int]]:
    """The packet loads (block, index) of reachable blocks that no dominating check covers.

    `guarded` holds, for the dominator-tree path being walked, the most
    bytes checked per (base, window); entering a block that a check guards
    raises its entry, leaving the block puts the old value back.
    """
    children: dict[str, list[str]] = {}
    for label, up in idom.items():
        if up is not None:
            children.setdefault(up, []).append(label)
    guarded: dict[tuple[Operand, int | None], int] = {}
    undo: dict[str, tuple[tuple[Operand, int | None], int | None]] = {}
    uncovered: set[tuple[str, int]] = set()
    stack: list[tuple[str, bool]] = [(fn.entry.label, True)]
    while stack:
        label, entering = stack.pop()
        if not entering:
            key, old = undo.pop(label)
            if old is None:
                del guarded[key]
            else:
                guarded[key] = old
            continue
        check = _guarding_check(blocks[label], preds, blocks)
        if check is not None:
            key = (check.base, check.window)
            old = guarded.get(key)
            if old is None or old < check.size:
                undo[label] = (key, old)
                guarded[key] = check.size
                stack.append((label, False))
        for index, insn in enumerate(blocks[label].insns):
            if isinstance(insn, LoadPacket) and guarded.get((insn.base, insn.window), -1) < insn.disp + insn.size:
                uncovered.add((label, index))
        stack.extend((child, True) for child in children.get(label, ()))
    return uncovered


# -- maps ------------------------------------------------------------------------


def _check_declarations(fn: Function) -> dict[str, MapDef]:
    """The declared maps by name; each well formed, and the constants laid out without overlap."""
    maps: dict[str, MapDef] = {}
    for m in fn.maps:
        if m.name in maps:
            raise IRCheckError(f"map {m.name} is declared twice", fn.span)
        if m.key not in INT_TYPE_SIZES or m.value not in INT_TYPE_SIZES or not 1 <= m.max_entries <= 0xFFFFFFFF:
            raise IRCheckError(f"map {m.name} has key {m.key}, value {m.value}, {m.max_entries} entries", fn.span)
        if m.kind.is_array and m.key != "u32":
            raise IRCheckError(f"array {m.name} has key {m.key}; an array's key is a u32", fn.span)
        maps[m.name] = m
    end = 0
    for c in sorted(fn.configs, key=lambda c: c.offset):
        if c.type not in INT_TYPE_SIZES or c.offset < end or c.offset % c.size:
            raise IRCheckError(f"config {c.name} ({c.type} at +{c.offset}) overlaps another or is misaligned", fn.span)
        end = c.offset + c.size
    return maps


def _map(maps: dict[str, MapDef], name: str, node: Instruction) -> MapDef:
    found = maps.get(name)
    if found is None:
        raise IRCheckError(f"map {name} is not declared", node.span)
    return found


def _check_maps(fn: Function, cfg: _Cfg) -> None:
    maps = _check_declarations(fn)
    configs = {(c.offset, c.size) for c in fn.configs}
    counts = cfg.counts
    pointers: dict[Reg, MapDef] = {}  # lookup results, and the map each points into
    for insn in fn.instructions():
        if isinstance(insn, MapLookup):
            m = _map(maps, insn.map, insn)
            if counts[insn.dst] != 1:
                raise IRCheckError(f"map pointer {insn.dst} must be written exactly once, not {counts[insn.dst]} times", insn.span)
            if m.kind.is_array and isinstance(insn.key, Imm) and insn.key.value >= m.max_entries:
                raise IRCheckError(f"index {insn.key} is outside array {m.name} ({m.max_entries} entries)", insn.span)
            pointers[insn.dst] = m
        elif isinstance(insn, (MapUpdate, MapDelete)):
            m = _map(maps, insn.map, insn)
            if isinstance(insn, MapDelete) and m.kind.is_array:
                raise IRCheckError(f"delete from array {m.name}: an array has every index", insn.span)
        elif isinstance(insn, LoadConfig) and (insn.offset, insn.size) not in configs:
            raise IRCheckError(f"config load of {insn.size} bytes at +{insn.offset} is no declared constant", insn.span)
    if not pointers and not any(isinstance(i, (LoadMapValue, StoreMapValue, AtomicMapValue)) for i in fn.instructions()):
        return
    blocks, preds, idom = cfg.blocks, cfg.preds, cfg.idom
    for block in fn.blocks:
        for node in [*block.insns, block.term]:
            if isinstance(node, (LoadMapValue, StoreMapValue, AtomicMapValue)):
                target = pointers.get(node.ptr)
                if target is None:
                    raise IRCheckError(f"map value access through {node.ptr}, which no lookup wrote", node.span)
                if node.size != target.value_size or isinstance(node, AtomicMapValue) and node.size not in (4, 8):
                    raise IRCheckError(f"map value access of {node.size} bytes to {target.name}, whose values are {target.value_size}", node.span)
                if block.label in idom and not _null_checked(node.ptr, block.label, idom, preds, blocks):
                    raise IRCheckError(f"map value access through {node.ptr} is not dominated by a test that it is not null", node.span)
            others = [op for op in used(node) if op in pointers and not _pointer_use(node, op)]
            if others:
                raise IRCheckError(f"map pointer {others[0]} is used other than to reach its value or to test it for null", node.span)


def _pointer_use(node: Instruction | Terminator, ptr: Operand) -> bool:
    """True where a lookup's pointer may appear: as the pointer of a value access, or tested against 0."""
    if isinstance(node, (LoadMapValue, StoreMapValue, AtomicMapValue)):
        return node.ptr == ptr and getattr(node, "src", None) != ptr
    if isinstance(node, Branch):
        return node.cmp in (Cmp.EQ, Cmp.NE) and {node.lhs, node.rhs} == {ptr, Imm(0)}
    return False


def _null_checked(ptr: Reg, label: str, idom: dict[str, str | None], preds: dict[str, list[str]], blocks: dict[str, Block]) -> bool:
    """True if a block dominating `label` is entered only by the edge of a Branch that found `ptr` non-null."""
    node: str | None = label
    while node is not None:
        if len(preds[node]) == 1:
            term = blocks[preds[node][0]].term
            if isinstance(term, Branch) and term.then != term.otherwise and {term.lhs, term.rhs} == {ptr, Imm(0)}:
                non_null = term.then if term.cmp is Cmp.NE else term.otherwise if term.cmp is Cmp.EQ else None
                if non_null == node:
                    return True
        node = idom[node]
    return False
