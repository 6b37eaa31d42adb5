"""Translate BPF instructions into Python source, one Python function per BPF function.

Interpreting one instruction at a time costs a dispatch per instruction; this
module instead decodes a section once into Python code that the interpreter
compiles with `compile()`. Registers are local variables (r6-r9 stay the
callee's own, as the BPF calling convention wants), every value is an
unsigned 64-bit int, and control flow is rebuilt from basic blocks:

- a block with a single predecessor is emitted inside that predecessor, so a
  tree of blocks (an extended basic block) is straight Python `if`s;
- a block more than one edge reaches (a join, a loop header) is an *entry*:
  a `while True` loop dispatches to it on `blk` through a binary tree of `if
  blk < N` tests, so a jump costs a handful of comparisons.

Each path of a tree ends in `return` or a jump to an entry, so the number of
instructions it executed is a constant of the path, added once at its end
(`n`). A memory access is one list index by region and one bounds check done
by `struct` or by indexing (see memory.py; the address's BIAS is folded
into the constant offset, and the slow path gets the unbiased address);
its `except` branch calls the slow path, which performs context loads and raises VmAccessError for
everything else. Accesses through r10 at a constant offset go straight to the
frame's bytearray. Semantics follow Documentation/bpf/standardization/
instruction-set.rst and the kernel's interpreter (kernel/bpf/core.c,
___bpf_prog_run): shifts masked to the operand width, division by zero
giving 0 and modulo by zero leaving the dividend, signed division and
modulo truncating toward zero.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ..abi import INSN_SIZE, SKB_DATA, SKB_DATA_END, SKB_FLOW_KEYS
from ..isa import AluOp, Class, JmpOp, Mode, Size
from ..isa.opcodes import BPF_LD_IMM64, BPF_PSEUDO_CALL, CLASS_MASK, MODE_MASK, OP_MASK, SIZE_MASK, SOURCE_MASK
from .memory import BIAS, CTX_ADDRESS, KEYS_ADDRESS, MAX_CALL_FRAMES, OFFSET_MASK, PACKET_ADDRESS, SHIFT

M64: Final = (1 << 64) - 1
M32: Final = (1 << 32) - 1
S64: Final = 1 << 63
S32: Final = 1 << 31
STACK_SIZE: Final = 512
RUNAWAY_LIMIT: Final = 10_000_000
"""Instructions one function call may run before the interpreter calls it a runaway loop (the verifier would refuse it)."""

# BPF_ATOMIC operations in imm (include/uapi/linux/bpf.h).
BPF_FETCH: Final = 0x01
BPF_XCHG: Final = 0xE0 | BPF_FETCH
BPF_CMPXCHG: Final = 0xF0 | BPF_FETCH
BPF_LOAD_ACQ: Final = 0x100
BPF_STORE_REL: Final = 0x110
ATOMIC_OPS: Final = frozenset({AluOp.ADD, AluOp.OR, AluOp.AND, AluOp.XOR})
BPF_HELPER_TAIL_CALL: Final = 12
# Python's tokenizer allows 100 levels of indentation; trees deeper than this become entries.
MAX_NESTING: Final = 60

_SLOT = struct.Struct("<BBhi")
_BYTES = {Size.B: 1, Size.H: 2, Size.W: 4, Size.DW: 8}
_UNPACK = {1: "", 2: "U16", 4: "U32", 8: "U64"}
_UNPACK_SIGNED = {1: "", 2: "S16", 4: "S32"}
_PACK = {2: "P16", 4: "P32", 8: "P64"}
_MASK = {1: 0xFF, 2: 0xFFFF, 4: M32, 8: M64}
# Context fields a flow dissector may load, as the kernel rewrites them
# (net/core/filter.c, flow_dissector_is_valid_access and
# flow_dissector_convert_ctx_access): offset -> (size, the value's expression).
_CTX_FIELDS: Final = {
    SKB_DATA: (4, str(PACKET_ADDRESS)),
    SKB_DATA_END: (4, "DE[0]"),
    SKB_FLOW_KEYS: (8, str(KEYS_ADDRESS)),
}


class TranslateError(Exception):
    """An instruction the interpreter cannot run; `slot` is its index in the section."""

    def __init__(self, slot: int, reason: str) -> None:
        super().__init__(reason)
        self.slot = slot
        self.reason = reason


@dataclass(frozen=True)
class Insn:
    """One decoded instruction: its slot in the section and struct bpf_insn's fields (imm of LD_IMM64 is 64 bits)."""

    slot: int
    opcode: int
    dst: int
    src: int
    off: int
    imm: int

    @property
    def size(self) -> int:
        """Slots it takes."""
        return 2 if self.opcode == BPF_LD_IMM64 else 1

    @property
    def cls(self) -> int:
        return self.opcode & CLASS_MASK


def decode_section(code: bytes) -> dict[int, Insn]:
    """Every instruction of a section by slot (the second slot of an LD_IMM64 has none)."""
    if len(code) % INSN_SIZE:
        raise TranslateError(len(code) // INSN_SIZE, f"{len(code)} bytes of code is not a whole number of {INSN_SIZE}-byte instructions")
    out: dict[int, Insn] = {}
    slots = len(code) // INSN_SIZE
    slot = 0
    while slot < slots:
        opcode, regs, off, imm = _SLOT.unpack_from(code, slot * INSN_SIZE)
        if opcode == BPF_LD_IMM64:
            if slot + 1 >= slots:
                raise TranslateError(slot, "an LD_IMM64 without its second slot")
            _, _, _, high = _SLOT.unpack_from(code, (slot + 1) * INSN_SIZE)
            imm = (high & M32) << 32 | (imm & M32)
        out[slot] = Insn(slot, opcode, regs & 0x0F, regs >> 4, off, imm)
        slot += 2 if opcode == BPF_LD_IMM64 else 1
    return out


@dataclass
class Block:
    """A basic block: its instructions, and where control goes after the last one."""

    start: int
    insns: list[Insn] = field(default_factory=list)
    taken: int | None = None  # a jump's target
    fall: int | None = None  # the next block when the last instruction falls through or does not jump
    cond: str | None = None  # the jump's condition; None for `goto` or fall-through
    exits: bool = False


@dataclass
class Function:
    """One BPF function of a section: its blocks and the functions it calls."""

    entry: int
    blocks: dict[int, Block]
    callees: set[int]


def _jump_target(insn: Insn) -> int:
    # gotol (BPF_JMP32 | BPF_JA) carries its offset in imm (cpu v4).
    offset = insn.imm if insn.cls == Class.JMP32 and insn.opcode & OP_MASK == JmpOp.JA else insn.off
    return insn.slot + 1 + offset


def _is_jump(insn: Insn) -> bool:
    return insn.cls in (Class.JMP, Class.JMP32) and insn.opcode & OP_MASK not in (JmpOp.CALL, JmpOp.EXIT)


def _is_exit(insn: Insn) -> bool:
    return insn.cls == Class.JMP and insn.opcode & OP_MASK == JmpOp.EXIT


def _is_pseudo_call(insn: Insn) -> bool:
    return insn.opcode == Class.JMP | JmpOp.CALL and insn.src == BPF_PSEUDO_CALL


def build_function(insns: Mapping[int, Insn], entry: int) -> Function:
    """The reachable blocks of the function starting at slot `entry`."""
    if entry not in insns:
        raise TranslateError(entry, f"no instruction starts at slot {entry}")
    leaders = {entry}
    seen: set[int] = set()
    work = [entry]
    callees: set[int] = set()

    def need(slot: int, source: Insn) -> None:
        if slot not in insns:
            raise TranslateError(source.slot, f"control goes to slot {slot}, where no instruction starts (out of the code or inside an LD_IMM64)")
        work.append(slot)

    while work:
        slot = work.pop()
        while slot not in seen:
            seen.add(slot)
            insn = insns[slot]
            nxt = slot + insn.size
            if _is_exit(insn):
                break
            if _is_pseudo_call(insn):
                target = slot + 1 + insn.imm
                if target not in insns:
                    raise TranslateError(slot, f"a call to slot {target}, where no instruction starts")
                callees.add(target)
            if _is_jump(insn):
                target = _jump_target(insn)
                leaders.add(target)
                need(target, insn)
                if insn.opcode & OP_MASK == JmpOp.JA:
                    break
                leaders.add(nxt)
            if nxt not in insns:
                raise TranslateError(slot, "control falls off the end of the code (no exit)")
            slot = nxt
    blocks: dict[int, Block] = {}
    for start in sorted(leaders & seen):
        block = Block(start)
        slot = start
        while True:
            insn = insns[slot]
            block.insns.append(insn)
            nxt = slot + insn.size
            if _is_exit(insn):
                block.exits = True
                break
            if _is_jump(insn):
                block.taken = _jump_target(insn)
                if insn.opcode & OP_MASK != JmpOp.JA:
                    block.fall = nxt
                break
            if nxt in leaders:
                block.fall = nxt
                break
            slot = nxt
        blocks[start] = block
    return Function(entry, blocks, callees)


# --- expressions -------------------------------------------------------------------------


def _lit(value: int) -> str:
    return hex(value) if value > 9 else str(value)


def _src64(insn: Insn) -> str:
    return f"r{insn.src}" if insn.opcode & SOURCE_MASK else _lit(insn.imm & M64)


def _src32(insn: Insn) -> str:
    return f"(r{insn.src} & {_lit(M32)})" if insn.opcode & SOURCE_MASK else _lit(insn.imm & M32)


def _bswap(expr: str, bits: int) -> str:
    if bits == 16:
        return f"((({expr}) & 0xff) << 8 | (({expr}) >> 8) & 0xff)"
    if bits == 32:
        return f"bswap32({expr})"
    return f"bswap64({expr})"


def _alu(insn: Insn) -> str:
    """`rD = ...` for an ALU or ALU64 instruction."""
    op = insn.opcode & OP_MASK
    d = f"r{insn.dst}"
    wide = insn.cls == Class.ALU64
    if op == AluOp.END:
        if insn.imm not in (16, 32, 64):
            raise TranslateError(insn.slot, f"a byte swap of {insn.imm} bits (16, 32 or 64)")
        mask = _lit(_MASK[insn.imm // 8])
        # BPF_ALU64 | BPF_END swaps unconditionally (cpu v4); BPF_ALU's BPF_TO_BE swaps on this little-endian
        # machine and BPF_TO_LE only truncates.
        if wide or insn.opcode & SOURCE_MASK:
            return f"{d} = {_bswap(f'{d} & {mask}', insn.imm)}" if insn.imm != 64 else f"{d} = bswap64({d})"
        return f"{d} = {d} & {mask}" if insn.imm != 64 else f"{d} = {d}"
    # One table for both widths: ALU64 works on the whole register, ALU on
    # its low 32 bits (`dd`) and zero-extends what it writes (`& m`; a bitwise
    # result of two 64-bit values needs no mask, `z`).
    s = _src64(insn) if wide else _src32(insn)
    m = _lit(M64 if wide else M32)
    dd = d if wide else f"({d} & {m})"
    z = "" if wide else f" & {m}"
    shift = 63 if wide else 31
    top = _lit(S64 if wide else S32)
    sdiv, smod = ("sdiv64", "smod64") if wide else ("sdiv32", "smod32")
    signed = insn.off == 1
    match op:
        case AluOp.ADD:
            return f"{d} = ({d} + {s}) & {m}"
        case AluOp.SUB:
            return f"{d} = ({d} - {s}) & {m}"
        case AluOp.MUL:
            return f"{d} = ({dd} * {s}) & {m}"
        case AluOp.DIV if signed:
            return f"{d} = {sdiv}({d}, {s})"
        case AluOp.DIV if insn.off == 0:
            return f"{d} = {dd} // {s} if {s} else 0" if insn.opcode & SOURCE_MASK else (f"{d} = {dd} // {s}" if insn.imm else f"{d} = 0")
        case AluOp.MOD if signed:
            return f"{d} = {smod}({d}, {s})"
        case AluOp.MOD if insn.off == 0:
            return f"{d} = {dd} % {s} if {s} else {dd}" if insn.opcode & SOURCE_MASK else (f"{d} = {dd} % {s}" if insn.imm else f"{d} = {dd}")
        case AluOp.OR:
            return f"{d} = ({d} | {s}){z}"
        case AluOp.AND:
            return f"{d} = {d} & {s}"
        case AluOp.XOR:
            return f"{d} = ({d} ^ {s}){z}"
        case AluOp.LSH:
            return f"{d} = ({d} << ({s} & {shift})) & {m}"
        case AluOp.RSH:
            return f"{d} = {dd} >> ({s} & {shift})"
        case AluOp.ARSH:
            return f"{d} = ((({dd} ^ {top}) - {top}) >> ({s} & {shift})) & {m}"
        case AluOp.NEG:
            return f"{d} = -{d} & {m}"
        case AluOp.MOV if insn.off == 0:
            return f"{d} = {s}"
        case AluOp.MOV if insn.off in ((8, 16, 32) if wide else (8, 16)) and insn.opcode & SOURCE_MASK:
            sign, low = 1 << (insn.off - 1), (1 << insn.off) - 1
            return f"{d} = ((({s} & {_lit(low)}) ^ {_lit(sign)}) - {_lit(sign)}) & {m}"
    raise TranslateError(insn.slot, f"no such {'ALU64' if wide else 'ALU'} instruction (opcode {insn.opcode:#04x}, off {insn.off})")


_COMPARE: Final = {
    JmpOp.JEQ: "==",
    JmpOp.JNE: "!=",
    JmpOp.JGT: ">",
    JmpOp.JGE: ">=",
    JmpOp.JLT: "<",
    JmpOp.JLE: "<=",
    JmpOp.JSGT: ">",
    JmpOp.JSGE: ">=",
    JmpOp.JSLT: "<",
    JmpOp.JSLE: "<=",
}
_SIGNED_JUMPS: Final = frozenset({JmpOp.JSGT, JmpOp.JSGE, JmpOp.JSLT, JmpOp.JSLE})


def _condition(insn: Insn) -> str:
    """The Python condition of a conditional jump."""
    op = insn.opcode & OP_MASK
    wide = insn.cls == Class.JMP
    by_register = bool(insn.opcode & SOURCE_MASK)
    if wide:
        a = f"r{insn.dst}"
        b = f"r{insn.src}" if by_register else None
        k = insn.imm & M64
        sign = S64
    else:
        a = f"(r{insn.dst} & {_lit(M32)})"
        b = f"(r{insn.src} & {_lit(M32)})" if by_register else None
        k = insn.imm & M32
        sign = S32
    if op == JmpOp.JSET:
        return f"{a} & {b if b is not None else _lit(k)}"
    symbol = _COMPARE.get(op)  # type: ignore[call-overload]
    if symbol is None:
        raise TranslateError(insn.slot, f"no such jump (opcode {insn.opcode:#04x})")
    if op in _SIGNED_JUMPS:
        # Flipping the sign bit maps two's-complement order onto unsigned order.
        right = f"({b} ^ {_lit(sign)})" if b is not None else _lit(k ^ sign)
        return f"({a} ^ {_lit(sign)}) {symbol} {right}"
    return f"{a} {symbol} {b if b is not None else _lit(k)}"


# --- the code generator ----------------------------------------------------------------


@dataclass(frozen=True)
class HelperSpec:
    """How a helper call is emitted: how many argument registers it takes."""

    args: int


class Translator:
    """Turns the functions of one section into Python source (see the module docstring).

    `ld_imm64` overrides the value of LD_IMM64 instructions by slot (map
    references, resolved by the loader to addresses); `helpers` says which
    helper ids exist and how many arguments each takes; `prefix` names the
    generated functions (`F<prefix>_<slot>`) so that several sections share
    one namespace. The instruction numbers the generated code hands the
    slow paths are `base` + the slot, so that one number names an
    instruction of any section.
    """

    def __init__(
        self,
        insns: Mapping[int, Insn],
        *,
        ld_imm64: Mapping[int, int],
        helpers: Mapping[int, HelperSpec],
        prefix: str,
        base: int = 0,
        pseudo_ld_imm64: Callable[[Insn], int] | None = None,
    ) -> None:
        self.insns = insns
        self.base = base
        self.ld_imm64 = ld_imm64
        self.helpers = helpers
        self.prefix = prefix
        self.pseudo_ld_imm64 = pseudo_ld_imm64
        self.functions: dict[int, Function] = {}

    def name(self, entry: int) -> str:
        """The Python name of the function at slot `entry`."""
        return f"F{self.prefix}_{entry}"

    def add(self, entry: int) -> None:
        """Translate the function at `entry` and every function it calls."""
        work = [entry]
        while work:
            slot = work.pop()
            if slot in self.functions:
                continue
            function = build_function(self.insns, slot)
            self.functions[slot] = function
            work.extend(function.callees)

    def source(self) -> str:
        """The Python source of every function added."""
        return "\n".join(_FunctionWriter(self, f).write() for _, f in sorted(self.functions.items()))


class _FunctionWriter:
    def __init__(self, translator: Translator, function: Function) -> None:
        self.t = translator
        self.f = function
        self.lines: list[str] = []
        preds: dict[int, int] = {}
        for block in function.blocks.values():
            for succ in (block.taken, block.fall):
                if succ is not None:
                    preds[succ] = preds.get(succ, 0) + 1
        self.preds = preds
        self.entries: dict[int, int] = {function.entry: 0}
        for start in sorted(function.blocks):
            if start != function.entry and preds.get(start, 0) > 1:
                self.entries[start] = len(self.entries)
        self.looping = len(self.entries) > 1 or preds.get(function.entry, 0) > 0

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def write(self) -> str:
        name = self.t.name(self.f.entry)
        self.emit(0, f"def {name}(r1, r2, r3, r4, r5, d):")
        self.emit(1, f"if d >= {MAX_CALL_FRAMES}: deep({self.t.base + self.f.entry})")
        self.emit(1, "S = STK[d]")
        self.emit(1, "S[:] = Z")
        self.emit(1, "r10 = FP[d]")
        self.emit(1, "r0 = r6 = r7 = r8 = r9 = a = 0")
        self.emit(1, "n = 0")
        if not self.looping:
            prologue = list(self.lines)
            self.tree(self.f.entry, 1, 0, 0)
            if not self.looping:
                return "\n".join(self.lines) + "\n"
            self.lines = prologue  # a tree grew too deep and made an entry: write it with the dispatch loop
        # Entries are discovered while the trees are written (a tree too deep
        # makes its subtree an entry), so the dispatch is written afterwards.
        bodies: dict[int, list[str]] = {}
        done: set[int] = set()
        while len(done) < len(self.entries):
            for start, number in list(self.entries.items()):
                if start in done:
                    continue
                done.add(start)
                saved, self.lines = self.lines, []
                self.tree(start, 0, 0, 0)
                bodies[number], self.lines = self.lines, saved
        self.emit(1, "blk = 0")
        self.emit(1, "while True:")
        self.dispatch(sorted(bodies), bodies, 2)
        return "\n".join(self.lines) + "\n"

    def dispatch(self, numbers: list[int], bodies: dict[int, list[str]], indent: int) -> None:
        if len(numbers) == 1:
            pad = "    " * indent
            self.lines.extend(pad + line for line in bodies[numbers[0]])
            return
        middle = len(numbers) // 2
        self.emit(indent, f"if blk < {numbers[middle]}:")
        self.dispatch(numbers[:middle], bodies, indent + 1)
        self.dispatch(numbers[middle:], bodies, indent)

    def goto(self, target: int, indent: int, count: int, source: int, depth: int) -> None:
        if target not in self.entries and self.preds.get(target, 0) == 1 and target != self.f.entry:
            if depth < MAX_NESTING:
                self.tree(target, indent, count, depth)
                return
            self.entries[target] = len(self.entries)
            self.looping = True
        self.emit(indent, f"n += {count}")
        if target <= source:  # a back edge: bound the loop
            self.emit(indent, f"if n > {RUNAWAY_LIMIT}: runaway({self.t.base + source})")
        self.emit(indent, f"blk = {self.entries[target]}")
        self.emit(indent, "continue")

    def tree(self, start: int, indent: int, count: int, depth: int) -> None:
        block = self.f.blocks[start]
        last = block.insns[-1]
        for insn in block.insns:
            count += 1
            if insn is last and (block.exits or block.taken is not None):
                break
            self.instruction(insn, indent, count)
        if block.exits:
            self.emit(indent, f"C[0] += n + {count}")
            self.emit(indent, "return r0")
            return
        if block.taken is not None and block.fall is None:  # goto
            self.goto(block.taken, indent, count, last.slot, depth)
            return
        if block.taken is not None:
            assert block.fall is not None
            self.emit(indent, f"if {_condition(last)}:")
            self.goto(block.taken, indent + 1, count, last.slot, depth + 1)
            self.goto(block.fall, indent, count, last.slot, depth)
            return
        assert block.fall is not None
        self.goto(block.fall, indent, count, last.slot, depth)

    # -- one instruction ------------------------------------------------------------

    def instruction(self, insn: Insn, indent: int, count: int) -> None:
        cls = insn.cls
        if cls in (Class.ALU, Class.ALU64):
            self.emit(indent, _alu(insn))
        elif cls == Class.LDX:
            self.load(insn, indent)
        elif cls in (Class.ST, Class.STX):
            self.store(insn, indent)
        elif cls == Class.LD:
            self.emit(indent, f"r{insn.dst} = {_lit(self.ld_imm(insn))}")
        elif cls == Class.JMP and insn.opcode & OP_MASK == JmpOp.CALL:
            self.call(insn, indent, count)
        else:
            raise TranslateError(insn.slot, f"no such instruction (opcode {insn.opcode:#04x})")

    def ld_imm(self, insn: Insn) -> int:
        if insn.opcode != BPF_LD_IMM64:
            raise TranslateError(insn.slot, f"legacy packet access (opcode {insn.opcode:#04x}, BPF_ABS/BPF_IND) is not for flow dissectors")
        if insn.slot in self.t.ld_imm64:
            return self.t.ld_imm64[insn.slot]
        if insn.src == 0:
            return insn.imm & M64
        if self.t.pseudo_ld_imm64 is None:
            raise TranslateError(insn.slot, f"an LD_IMM64 with src {insn.src} (a pseudo value) and no map to resolve it with")
        return self.t.pseudo_ld_imm64(insn)

    def call(self, insn: Insn, indent: int, count: int) -> None:
        if insn.src == BPF_PSEUDO_CALL:
            target = insn.slot + 1 + insn.imm
            self.emit(indent, f"r0 = {self.t.name(target)}(r1, r2, r3, r4, r5, d + 1)")
            return
        if insn.src != 0:
            raise TranslateError(insn.slot, "a call to a kernel function (kfunc); the interpreter has only helpers")
        if insn.imm == BPF_HELPER_TAIL_CALL:
            # A taken tail call does not return: the target's r0 is this function's result.
            self.emit(indent, f"t = TC({self.t.base + insn.slot}, r1, r2, r3, d)")
            self.emit(indent, "if t is not None:")
            self.emit(indent + 1, f"C[0] += n + {count}")
            self.emit(indent + 1, "return t")
            return
        spec = self.t.helpers.get(insn.imm)
        if spec is None:
            raise TranslateError(insn.slot, f"helper {insn.imm} is not one the interpreter has (a flow dissector may call few)")
        args = "".join(f", r{i}" for i in range(1, spec.args + 1))
        self.emit(indent, f"r0 = H{insn.imm}({self.t.base + insn.slot}{args})")

    def load(self, insn: Insn, indent: int) -> None:
        mode, size = insn.opcode & MODE_MASK, _BYTES[Size(insn.opcode & SIZE_MASK)]
        if mode not in (Mode.MEM, Mode.MEMSX) or (mode == Mode.MEMSX and size == 8):
            raise TranslateError(insn.slot, f"no such load (opcode {insn.opcode:#04x})")
        signed = mode == Mode.MEMSX
        d, base, off = f"r{insn.dst}", insn.src, insn.off
        if base == 10 and -STACK_SIZE <= off and off + size <= 0:
            self.emit(indent, f"{d} = {self._read('S', str(STACK_SIZE + off), size, signed)}")
            return
        field_ = _CTX_FIELDS.get(off)
        if field_ is not None and field_[0] == size and not signed:
            self.emit(indent, f"if r{base} == {_lit(CTX_ADDRESS)}: {d} = {field_[1]}")
            self.emit(indent, "else:")
            indent += 1
        address = f"(a := r{base} - {BIAS - off})"
        self.emit(indent, "try:")
        self.emit(indent + 1, f"{d} = {self._read(f'L[{address} >> {SHIFT}]', f'a & {_lit(OFFSET_MASK)}', size, signed)}")
        self.emit(indent, "except E:")
        self.emit(indent + 1, f"{d} = ldf({self.t.base + insn.slot}, a, {size}, {int(signed)})")

    @staticmethod
    def _read(buf: str, offset: str, size: int, signed: bool) -> str:
        if size == 1:
            return f"(({buf}[{offset}] ^ 0x80) - 0x80) & {_lit(M64)}" if signed else f"{buf}[{offset}]"
        if signed:
            return f"{_UNPACK_SIGNED[size]}({buf}, {offset})[0] & {_lit(M64)}"
        return f"{_UNPACK[size]}({buf}, {offset})[0]"

    def store(self, insn: Insn, indent: int) -> None:
        mode, size = insn.opcode & MODE_MASK, _BYTES[Size(insn.opcode & SIZE_MASK)]
        if mode == Mode.ATOMIC and insn.cls == Class.STX:
            self.atomic(insn, indent, size)
            return
        if mode != Mode.MEM:
            raise TranslateError(insn.slot, f"no such store (opcode {insn.opcode:#04x})")
        if insn.cls == Class.STX:
            value = f"r{insn.src}" if size == 8 else f"r{insn.src} & {_lit(_MASK[size])}"
        else:
            value = _lit(insn.imm & _MASK[size])
        base, off = insn.dst, insn.off
        if base == 10 and -STACK_SIZE <= off and off + size <= 0:
            self.emit(indent, self._write("S", str(STACK_SIZE + off), size, value))
            return
        address = f"(a := r{base} - {BIAS - off})"
        self.emit(indent, "try:")
        self.emit(indent + 1, self._write(f"W[{address} >> {SHIFT}]", f"a & {_lit(OFFSET_MASK)}", size, value))
        self.emit(indent, "except E:")
        self.emit(indent + 1, f"stf({self.t.base + insn.slot}, a, {size}, {value})")

    @staticmethod
    def _write(buf: str, offset: str, size: int, value: str) -> str:
        if size == 1:
            return f"{buf}[{offset}] = {value}"
        return f"{_PACK[size]}({buf}, {offset}, {value})"

    def atomic(self, insn: Insn, indent: int, size: int) -> None:
        op = insn.imm
        address = f"r{insn.dst} + {insn.off}"
        if op == BPF_LOAD_ACQ:  # cpu v4.1: an ordered load, rD = *(rS + off); one CPU needs no ordering
            self.emit(indent, f"r{insn.dst} = ldx({self.t.base + insn.slot}, r{insn.src} + {insn.off}, {size})")
            return
        if op == BPF_STORE_REL:
            self.emit(indent, f"stx({self.t.base + insn.slot}, {address}, {size}, r{insn.src} & {_lit(_MASK[size])})")
            return
        if size not in (4, 8):
            raise TranslateError(insn.slot, f"an atomic operation on {size} bytes (4 or 8)")
        if op == BPF_CMPXCHG:
            self.emit(indent, f"r0 = cmpxchg({self.t.base + insn.slot}, {address}, {size}, r0, r{insn.src})")
            return
        if op == BPF_XCHG or (op & ~BPF_FETCH) in ATOMIC_OPS:
            call = f"atomic({self.t.base + insn.slot}, {address}, {size}, {op}, r{insn.src})"
            self.emit(indent, f"r{insn.src} = {call}" if op & BPF_FETCH else call)
            return
        raise TranslateError(insn.slot, f"no such atomic operation (imm {op:#x})")
