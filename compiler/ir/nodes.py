"""The IR: small frozen node classes, one per operation, each with a source span.

Values are 64-bit integer registers (`Reg`, printed `%name`) or immediates
(`Imm`). Registers may be assigned more than once (locals), except those used
as packet bases, which the checker requires to have a single definition.
Packet access is explicit: a `CheckPacket` terminator guards the bytes
`[base, base + size)` and continues at `ok` only if they are inside the packet;
a `LoadPacket` is legal only where such a check dominates it.

Maps are explicit the same way: a `MapLookup` writes a pointer register that
may be null, and the value behind it is read or written (`LoadMapValue`,
`StoreMapValue`, `AtomicMapValue`) only where a `Branch` that found it
non-null dominates. The maps and load-time constants a function uses are
declared on it (`Function.maps`, `Function.configs`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import assert_never

from ..diagnostics import Span


class BinaryOp(Enum):
    """Two-operand 64-bit arithmetic (BPF ALU64 semantics, incl. division by zero)."""

    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    UDIV = "udiv"  # x / 0 == 0
    UMOD = "umod"  # x % 0 == x
    AND = "and"
    OR = "or"
    XOR = "xor"
    SHL = "shl"  # shift count masked to 63
    LSHR = "lshr"
    ASHR = "ashr"


class UnaryOp(Enum):
    """One-operand 64-bit arithmetic."""

    NEG = "neg"
    NOT = "not"  # bitwise complement


class Cmp(Enum):
    """Comparisons on 64-bit values; `set` is true when `lhs & rhs` is non-zero."""

    EQ = "eq"
    NE = "ne"
    UGT = "ugt"
    UGE = "uge"
    ULT = "ult"
    ULE = "ule"
    SGT = "sgt"
    SGE = "sge"
    SLT = "slt"
    SLE = "sle"
    SET = "set"

    def inverted(self) -> Cmp:
        """The comparison true exactly when this one is false (not defined for `set`)."""
        return _INVERT[self]

    def swapped(self) -> Cmp:
        """The comparison with its operands exchanged: `a < b` is `b > a`."""
        return _SWAP[self]

    @property
    def signed(self) -> bool:
        """True for the signed orderings."""
        return self in (Cmp.SGT, Cmp.SGE, Cmp.SLT, Cmp.SLE)


_INVERT = {
    Cmp.EQ: Cmp.NE, Cmp.NE: Cmp.EQ, Cmp.UGT: Cmp.ULE, Cmp.ULE: Cmp.UGT, Cmp.UGE: Cmp.ULT,
    Cmp.ULT: Cmp.UGE, Cmp.SGT: Cmp.SLE, Cmp.SLE: Cmp.SGT, Cmp.SGE: Cmp.SLT, Cmp.SLT: Cmp.SGE,
}
_SWAP = {
    Cmp.EQ: Cmp.EQ, Cmp.NE: Cmp.NE, Cmp.UGT: Cmp.ULT, Cmp.ULT: Cmp.UGT, Cmp.UGE: Cmp.ULE,
    Cmp.ULE: Cmp.UGE, Cmp.SGT: Cmp.SLT, Cmp.SLT: Cmp.SGT, Cmp.SGE: Cmp.SLE, Cmp.SLE: Cmp.SGE,
    Cmp.SET: Cmp.SET,
}

MASK64 = (1 << 64) - 1


def to_u64(value: int) -> int:
    """The 64-bit two's complement pattern of `value`."""
    return value & MASK64


def to_s64(value: int) -> int:
    """`value` read as a signed 64-bit integer."""
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


def compare_exact(cmp: Cmp, a: int, b: int) -> bool:
    """`a cmp b` on the integers as given (`set` tests `a & b`); orderings ignore signedness."""
    match cmp:
        case Cmp.EQ:
            return a == b
        case Cmp.NE:
            return a != b
        case Cmp.UGT | Cmp.SGT:
            return a > b
        case Cmp.UGE | Cmp.SGE:
            return a >= b
        case Cmp.ULT | Cmp.SLT:
            return a < b
        case Cmp.ULE | Cmp.SLE:
            return a <= b
        case Cmp.SET:
            return (a & b) != 0
    raise ValueError(cmp)


def evaluate_cmp(cmp: Cmp, lhs: int, rhs: int) -> bool:
    """The result of `cmp` on two 64-bit values, as the BPF jump would decide."""
    a, b = to_u64(lhs), to_u64(rhs)
    if cmp.signed:
        a, b = to_s64(a), to_s64(b)
    return compare_exact(cmp, a, b)


def evaluate_binary(op: BinaryOp, lhs: int, rhs: int) -> int:
    """The 64-bit result of `op`, as BPF ALU64 computes it."""
    a, b = to_u64(lhs), to_u64(rhs)
    match op:
        case BinaryOp.ADD:
            return to_u64(a + b)
        case BinaryOp.SUB:
            return to_u64(a - b)
        case BinaryOp.MUL:
            return to_u64(a * b)
        case BinaryOp.UDIV:
            return a // b if b else 0
        case BinaryOp.UMOD:
            return a % b if b else a
        case BinaryOp.AND:
            return a & b
        case BinaryOp.OR:
            return a | b
        case BinaryOp.XOR:
            return a ^ b
        case BinaryOp.SHL:
            return to_u64(a << (b & 63))
        case BinaryOp.LSHR:
            return a >> (b & 63)
        case BinaryOp.ASHR:
            return to_u64(to_s64(a) >> (b & 63))
    raise ValueError(op)


def evaluate_bswap(value: int, bits: int) -> int:
    """The low `bits` of `value` in the other byte order, as BPF's byte swap computes it."""
    return int.from_bytes((value & ((1 << bits) - 1)).to_bytes(bits // 8, "big"), "little")


@dataclass(frozen=True, slots=True)
class Reg:
    """A virtual 64-bit register."""

    name: str

    def __str__(self) -> str:
        return f"%{self.name}"


@dataclass(frozen=True, slots=True)
class Imm:
    """An immediate 64-bit value (stored as its unsigned pattern)."""

    value: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", to_u64(self.value))

    def __str__(self) -> str:
        return str(to_s64(self.value)) if self.value >> 63 else str(self.value)


Operand = Reg | Imm


# -- maps and load-time constants ---------------------------------------------------


class MapKind(Enum):
    """The kinds of map a dissector declares (BPF_MAP_TYPE_HASH, _ARRAY, _PERCPU_ARRAY)."""

    HASH = "hash"
    ARRAY = "array"
    PERCPU_ARRAY = "percpu_array"

    @property
    def is_array(self) -> bool:
        """True for the arrays, whose keys are the indices 0 .. max_entries - 1 (a u32)."""
        return self is not MapKind.HASH


INT_TYPE_SIZES: dict[str, int] = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "i32": 4, "i64": 8}
"""The integer types a map key, a map value or a load-time constant may have, and their sizes in bytes."""


@dataclass(frozen=True, slots=True)
class MapDef:
    """A map the function uses: its name (the ELF symbol's), kind, key and value types, size."""

    name: str
    kind: MapKind
    key: str  # an INT_TYPE_SIZES name; u32 for the arrays
    value: str
    max_entries: int

    @property
    def key_size(self) -> int:
        """Bytes of a key."""
        return INT_TYPE_SIZES[self.key]

    @property
    def value_size(self) -> int:
        """Bytes of a value."""
        return INT_TYPE_SIZES[self.value]


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """A load-time constant: a variable at `offset` in the frozen `.rodata` map, `default` unless the loader sets it."""

    name: str
    type: str  # an INT_TYPE_SIZES name
    offset: int
    default: int

    @property
    def size(self) -> int:
        """Bytes of the variable."""
        return INT_TYPE_SIZES[self.type]


class AtomicOp(Enum):
    """The read-modify-write operations of BPF_ATOMIC without BPF_FETCH."""

    ADD = "add"
    OR = "or"
    AND = "and"
    XOR = "xor"


# bpf_map_update_elem flags (include/uapi/linux/bpf.h).
BPF_ANY = 0
"""Create the element or update it."""
BPF_NOEXIST = 1
"""Create the element only if it does not exist."""

# Sizes in bytes that BPF loads and stores handle.
ACCESS_SIZES = (1, 2, 4, 8)


@dataclass(frozen=True, slots=True)
class Copy:
    """`dst = src`."""

    dst: Reg
    src: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class Binary:
    """`dst = lhs op rhs` on 64 bits."""

    op: BinaryOp
    dst: Reg
    lhs: Operand
    rhs: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class Unary:
    """`dst = op src` on 64 bits."""

    op: UnaryOp
    dst: Reg
    src: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class Extend:
    """`dst` = the low `bits` of `src`, zero- or sign-extended to 64 bits."""

    signed: bool
    bits: int
    dst: Reg
    src: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class ByteSwap:
    """`dst` = the low `bits` of `src` in the other byte order, zero-extended."""

    bits: int
    dst: Reg
    src: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class SetCond:
    """`dst = 1 if lhs cmp rhs else 0`."""

    cmp: Cmp
    dst: Reg
    lhs: Operand
    rhs: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class LoadKeys:
    """`dst` = the `size`-byte little-endian value at `offset` in the flow keys."""

    dst: Reg
    offset: int
    size: int
    span: Span


@dataclass(frozen=True, slots=True)
class StoreKeys:
    """Store the low `size` bytes of `src` at `offset` in the flow keys."""

    offset: int
    size: int
    src: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class LoadPacket:
    """`dst` = the `size`-byte value at packet offset `base + disp`, as a BPF load reads it.

    With a `window`, the bytes are read through the window its check opened:
    in the linear part of the packet, or in the stack copy of them.
    """

    dst: Reg
    base: Operand
    disp: int
    size: int
    span: Span
    window: int | None = None


@dataclass(frozen=True, slots=True)
class MapLookup:
    """`dst` = a pointer to the value of `key` in map `map`, or 0 where there is none (bpf_map_lookup_elem)."""

    dst: Reg
    map: str
    key: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class MapUpdate:
    """Store `value` at `key` in map `map` with `flags` (BPF_ANY, BPF_NOEXIST); a refusal is ignored (bpf_map_update_elem)."""

    map: str
    key: Operand
    value: Operand
    flags: int
    span: Span


@dataclass(frozen=True, slots=True)
class MapDelete:
    """Remove `key` from hash map `map`; an absent key is ignored (bpf_map_delete_elem)."""

    map: str
    key: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class LoadMapValue:
    """`dst` = the `size`-byte value `ptr` (a checked MapLookup result) points at, zero-extended."""

    dst: Reg
    ptr: Reg
    size: int
    span: Span


@dataclass(frozen=True, slots=True)
class StoreMapValue:
    """Store the low `size` bytes of `src` into the value `ptr` points at."""

    ptr: Reg
    size: int
    src: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class AtomicMapValue:
    """`*ptr op= src` on `size` (4 or 8) bytes, atomically (BPF_STX | BPF_ATOMIC)."""

    op: AtomicOp
    ptr: Reg
    size: int
    src: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """`dst` = the `size`-byte load-time constant at `offset` in `.rodata`, zero-extended."""

    dst: Reg
    offset: int
    size: int
    span: Span


@dataclass(frozen=True, slots=True)
class Jump:
    """Continue at `target`."""

    target: str
    span: Span


@dataclass(frozen=True, slots=True)
class Branch:
    """Continue at `then` if `lhs cmp rhs`, else at `otherwise`."""

    cmp: Cmp
    lhs: Operand
    rhs: Operand
    then: str
    otherwise: str
    span: Span


@dataclass(frozen=True, slots=True)
class CheckPacket:
    """Continue at `ok` if packet bytes `[base, base + size)` exist, else at `fail`.

    The check includes the clamp the verifier needs for a variable base:
    `base <= 0xffff - size` (kernel/bpf/verifier.c, MAX_PACKET_OFF).

    Without a `window` the bytes must be in the linear part, `data` to
    `data_end`. With one, bytes past it (in the skb's page fragments, see
    the kernel contract) are copied into the window's stack buffer with
    `bpf_skb_load_bytes`; loads naming the window read wherever the bytes
    are. `fail` is taken only when the packet does not hold them. A size-0
    check (`pkt.has(end)`) with a window probes the byte before `end`.
    """

    base: Operand
    size: int
    ok: str
    fail: str
    span: Span
    window: int | None = None


@dataclass(frozen=True, slots=True)
class Return:
    """Leave the program with `value`."""

    value: int
    span: Span


Instruction = (
    Copy | Binary | Unary | Extend | ByteSwap | SetCond | LoadKeys | StoreKeys | LoadPacket
    | MapLookup | MapUpdate | MapDelete | LoadMapValue | StoreMapValue | AtomicMapValue | LoadConfig
)
MAP_EFFECTS = (MapUpdate, MapDelete, StoreMapValue, AtomicMapValue)
"""The map operations that write no register: kept whether or not anything reads after them."""
Terminator = Jump | Branch | CheckPacket | Return


@dataclass
class Block:
    """A label, straight-line instructions, and exactly one terminator."""

    label: str
    insns: list[Instruction]
    term: Terminator

    def successors(self) -> tuple[str, ...]:
        """Labels this block can continue at."""
        return successors(self.term)


@dataclass
class Function:
    """A dissector in IR: blocks, the first one the entry."""

    name: str
    file: str
    blocks: list[Block]
    span: Span
    maps: tuple[MapDef, ...] = ()  # the maps it uses, in the object's order
    configs: tuple[ConfigDef, ...] = ()  # its load-time constants, by offset in .rodata

    def copy(self) -> Function:
        """A copy whose blocks can be edited without touching this function's (the frozen nodes are shared)."""
        blocks = [Block(b.label, list(b.insns), b.term) for b in self.blocks]
        return Function(self.name, self.file, blocks, self.span, self.maps, self.configs)

    def map_named(self, name: str) -> MapDef | None:
        """The declared map `name`, if there is one."""
        return next((m for m in self.maps if m.name == name), None)

    @property
    def entry(self) -> Block:
        """The entry block."""
        return self.blocks[0]

    def block_map(self) -> dict[str, Block]:
        """Blocks by label."""
        return {b.label: b for b in self.blocks}

    def predecessors(self) -> dict[str, list[str]]:
        """For every label, the labels of the blocks that continue at it."""
        preds: dict[str, list[str]] = {b.label: [] for b in self.blocks}
        for b in self.blocks:
            for s in b.successors():
                preds[s].append(b.label)
        return preds

    def instructions(self) -> Iterator[Instruction]:
        """Every non-terminator instruction in block order."""
        for b in self.blocks:
            yield from b.insns


def successors(term: Terminator) -> tuple[str, ...]:
    """Labels a terminator can continue at."""
    match term:
        case Jump(target=t):
            return (t,)
        case Branch(then=a, otherwise=b):
            return (a, b)
        case CheckPacket(ok=a, fail=b):
            return (a, b)
        case Return():
            return ()
        case _:
            assert_never(term)


_NO_RESULT = (StoreKeys, *MAP_EFFECTS)


def defined(insn: Instruction) -> Reg | None:
    """The register an instruction writes, if any."""
    return None if isinstance(insn, _NO_RESULT) else insn.dst


def used(node: Instruction | Terminator) -> tuple[Operand, ...]:
    """The operands an instruction or terminator reads."""
    # The commonest nodes first: each case tests its classes in turn.
    match node:
        case Jump() | LoadKeys():
            return ()
        case Copy(src=s) | StoreKeys(src=s) | Extend(src=s) | ByteSwap(src=s) | Unary(src=s):
            return (s,)
        case Binary(lhs=a, rhs=b) | Branch(lhs=a, rhs=b) | SetCond(lhs=a, rhs=b):
            return (a, b)
        case LoadPacket(base=b) | CheckPacket(base=b):
            return (b,)
        case MapLookup(key=k) | MapDelete(key=k):
            return (k,)
        case MapUpdate(key=k, value=v):
            return (k, v)
        case LoadMapValue(ptr=p):
            return (p,)
        case StoreMapValue(ptr=p, src=s) | AtomicMapValue(ptr=p, src=s):
            return (p, s)
        case LoadConfig() | Return():
            return ()
        case _:
            assert_never(node)


def used_regs(node: Instruction | Terminator) -> list[Reg]:
    """The registers an instruction or terminator reads."""
    return [op for op in used(node) if isinstance(op, Reg)]
