"""Machine IR: BPF instructions over virtual registers, grouped in blocks.

An `MInsn` is a BPF instruction whose register fields may still name virtual
registers (strings). Its definitions and uses are derived from the opcode, so
liveness and register allocation need no per-instruction tables. After
allocation every register is a physical number and `to_isa` builds the
instruction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Union

from pyfd.isa import AluOp, Class, Instruction, JmpOp, Label, Mode, Source

# A register operand: a virtual register name, or a physical register number.
MReg = Union[str, int]

FP = 10  # r10, the read-only frame pointer


@dataclass(frozen=True)
class MInsn:
    """One BPF instruction with possibly virtual registers and a label target."""

    opcode: int
    dst: MReg = 0
    src: MReg = 0
    off: int = 0
    imm: int = 0
    target: str | None = None
    span: object | None = field(default=None, compare=False)
    # Set by instruction selection on a definition that computes the same value
    # wherever its result is live (a constant, a read of the read-only packet,
    # a read of flow-keys bytes the program never writes): the allocator may
    # repeat it at a use instead of spilling its result to the stack.
    remat: bool = field(default=False, compare=False)

    @property
    def cls(self) -> int:
        return self.opcode & 0x07

    @property
    def is_ld_imm64(self) -> bool:
        return self.opcode == (Class.LD | Mode.IMM | 0x18)

    def defs(self) -> list[MReg]:
        """Registers this instruction writes."""
        cls, op = self.cls, self.opcode & 0xF0
        if cls in (Class.ALU, Class.ALU64) or cls == Class.LDX or self.is_ld_imm64:
            return [self.dst]
        if cls == Class.JMP and op == JmpOp.CALL:
            return [0, 1, 2, 3, 4, 5]
        return []

    def uses(self) -> list[MReg]:
        """Registers this instruction reads."""
        cls, op, x = self.cls, self.opcode & 0xF0, self.opcode & Source.X
        if cls in (Class.ALU, Class.ALU64):
            if op == AluOp.MOV:
                return [self.src] if x else []
            if op in (AluOp.NEG, AluOp.END):
                return [self.dst]
            return [self.dst, self.src] if x else [self.dst]
        if cls == Class.LDX:
            return [self.src]
        if cls == Class.STX:
            return [self.dst, self.src]
        if cls == Class.ST:
            return [self.dst]
        if cls in (Class.JMP, Class.JMP32):
            if op == JmpOp.EXIT:
                return [0]
            if op in (JmpOp.JA, JmpOp.CALL):
                return []
            return [self.dst, self.src] if x else [self.dst]
        return []

    def rename(self, mapping: dict[MReg, MReg]) -> "MInsn":
        """The instruction with registers replaced through `mapping`."""
        return replace(self, dst=mapping.get(self.dst, self.dst), src=mapping.get(self.src, self.src))

    def is_copy(self) -> bool:
        """`mov64 dst, src` between registers."""
        return self.opcode == (Class.ALU64 | AluOp.MOV | Source.X)

    def to_isa(self) -> Instruction:
        """The final instruction; every register must be physical by now."""
        if not isinstance(self.dst, int) or not isinstance(self.src, int):
            raise ValueError(f"unallocated register in {self}")
        target = Label(self.target) if self.target is not None else None
        return Instruction(self.opcode, self.dst, self.src, self.off, self.imm, self.span, target=target)


@dataclass
class MBlock:
    """A label and its machine instructions; successors are explicit."""

    label: str
    insns: list[MInsn]
    succs: list[str]


@dataclass
class MFunction:
    """Blocks in layout order; the first is the entry."""

    name: str
    blocks: list[MBlock]
    stack_size: int = 0
