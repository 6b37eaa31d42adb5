"""Machine IR: BPF instructions over virtual registers, grouped in blocks.

An `MInsn` is a BPF instruction whose register fields may still name virtual
registers (strings). Its definitions and uses are derived from the opcode, so
liveness and register allocation need no per-instruction tables. After
allocation every register is a physical number and `to_isa` builds the
instruction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pyfd.isa import (
    BPF_LD_IMM64,
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
    AluOp,
    Class,
    Instruction,
    JmpOp,
    Label,
    Mode,
    Size,
    Source,
    alu_opcode,
    bpf_class,
    bpf_op,
    bpf_src,
    jmp_opcode,
    mem_opcode,
)

# A register operand: a virtual register name, or a physical register number.
MReg = str | int

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
    # The operands of a pseudo-instruction (FETCH), expanded after allocation.
    fetch: Fetch | None = None
    # A helper call: how many argument registers (r1 ..) it reads.
    args: int = field(default=0, compare=False)
    # A stack address fixed after allocation (`add rX, -(spill area + frame_offset)`):
    # the key and value a helper call reads are stored below the spill slots.
    frame_offset: int | None = field(default=None, compare=False)

    @property
    def cls(self) -> Class:
        """The instruction class (BPF_CLASS)."""
        return bpf_class(self.opcode)

    @property
    def is_ld_imm64(self) -> bool:
        """The two-slot 64-bit immediate load."""
        return self.opcode == BPF_LD_IMM64

    @property
    def is_ja(self) -> bool:
        """An unconditional `goto`."""
        return self.opcode == _JA

    def defs(self) -> list[MReg]:
        """Registers this instruction writes (the same list on every call: do not change it)."""
        cached: list[MReg] | None = self.__dict__.get("_defs")
        if cached is None:
            cached = self.__dict__["_defs"] = self._defs()
        return cached

    def uses(self) -> list[MReg]:
        """Registers this instruction reads (the same list on every call: do not change it)."""
        cached: list[MReg] | None = self.__dict__.get("_uses")
        if cached is None:
            cached = self.__dict__["_uses"] = self._uses()
        return cached

    # The allocator asks each instruction for its registers many times (every
    # liveness and interference pass); an instruction is frozen, so they are
    # derived once and kept in its __dict__ (not a field: not compared).

    def _defs(self) -> list[MReg]:
        if self.opcode == FETCH:
            return [self.dst]
        cls, op = self.cls, bpf_op(self.opcode)
        if cls in (Class.ALU, Class.ALU64) or cls == Class.LDX or self.is_ld_imm64:
            return [self.dst]
        if cls == Class.JMP and op == JmpOp.CALL:
            return [0, 1, 2, 3, 4, 5]
        return []

    def _uses(self) -> list[MReg]:
        if self.opcode == FETCH:
            assert self.fetch is not None
            return [self.src] if self.fetch.base is None else []
        cls, op, x = self.cls, bpf_op(self.opcode), bpf_src(self.opcode) == Source.X
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
            if op == JmpOp.CALL:
                return list(range(1, 1 + self.args))
            if op == JmpOp.JA:
                return []
            return [self.dst, self.src] if x else [self.dst]
        return []

    def rename(self, mapping: dict[MReg, MReg]) -> MInsn:
        """The instruction with registers replaced through `mapping`."""
        return replace(self, dst=mapping.get(self.dst, self.dst), src=mapping.get(self.src, self.src))

    def is_copy(self) -> bool:
        """`mov64 dst, src` between registers."""
        return self.opcode == _MOV64_X

    def to_isa(self) -> Instruction:
        """The final instruction; every register must be physical by now."""
        if self.opcode == FETCH:
            raise ValueError("FETCH reached encoding without being expanded")
        if not isinstance(self.dst, int) or not isinstance(self.src, int):
            raise ValueError(f"unallocated register in {self}")
        target = Label(self.target) if self.target is not None else None
        return Instruction(self.opcode, self.dst, self.src, self.off, self.imm, self.span, target=target)


# A pseudo-instruction: a jump opcode BPF leaves unused (operation 0xe0).
FETCH = jmp_opcode(Class.JMP, 0xE0, Source.K)  # type: ignore[arg-type]
# The opcodes MInsn's tests compare with, built once: the allocator asks each
# instruction whether it is a copy in every round.
_MOV64_X = alu_opcode(Class.ALU64, AluOp.MOV, Source.X)
_JA = jmp_opcode(Class.JMP, JmpOp.JA, Source.K)


@dataclass(frozen=True)
class Fetch:
    """FETCH's operands: copy `size` packet bytes at `base` (None: the `src` register) to the window's buffer.

    `dst = FETCH src` reads like `dst = copy of the packet bytes at src`:
    after it `dst` points at the buffer; if the packet does not hold the
    bytes it jumps to the instruction's target. It clobbers no register the
    allocator gave out: the expansion (`fetch.expand`) saves and restores
    r0-r5 around the helper call, so the fast path around it is allocated
    as if the slow path were not there.
    """

    window: int
    size: int
    base: int | None = None


def fetch(dst: MReg, window: int, size: int, fail: str, *, reg: MReg | None = None, imm: int | None = None, span: object = None) -> MInsn:
    """FETCH: `dst` = the window's buffer filled with the packet bytes at `reg` (or offset `imm`), or goto `fail`."""
    if reg is None:
        assert imm is not None
        return MInsn(FETCH, dst, 0, target=fail, span=span, fetch=Fetch(window, size, imm))
    return MInsn(FETCH, dst, reg, target=fail, span=span, fetch=Fetch(window, size))


# Builders over virtual registers, named and shaped like pyfd.isa's (the
# kernel's include/linux/filter.h macros); `remat` is MInsn's.


def alu64_imm(op: AluOp, dst: MReg, imm: int, *, span: object = None) -> MInsn:
    """BPF_ALU64_IMM: dst op= imm."""
    return MInsn(alu_opcode(Class.ALU64, op, Source.K), dst, 0, 0, imm, span=span)


def alu64_reg(op: AluOp, dst: MReg, src: MReg, *, span: object = None) -> MInsn:
    """BPF_ALU64_REG: dst op= src."""
    return MInsn(alu_opcode(Class.ALU64, op, Source.X), dst, src, span=span)


def mov64_imm(dst: MReg, imm: int, *, span: object = None, remat: bool = False) -> MInsn:
    """BPF_MOV64_IMM: dst = imm, sign-extended."""
    return MInsn(alu_opcode(Class.ALU64, AluOp.MOV, Source.K), dst, 0, 0, imm, span=span, remat=remat)


def mov64_reg(dst: MReg, src: MReg, *, span: object = None) -> MInsn:
    """BPF_MOV64_REG: dst = src."""
    return alu64_reg(AluOp.MOV, dst, src, span=span)


def mov32_imm(dst: MReg, imm: int, *, span: object = None, remat: bool = False) -> MInsn:
    """BPF_MOV32_IMM: dst = (u32) imm."""
    return MInsn(alu_opcode(Class.ALU, AluOp.MOV, Source.K), dst, 0, 0, imm, span=span, remat=remat)


def mov32_reg(dst: MReg, src: MReg, *, span: object = None) -> MInsn:
    """BPF_MOV32_REG: dst = (u32) src, zero-extending."""
    return MInsn(alu_opcode(Class.ALU, AluOp.MOV, Source.X), dst, src, span=span)


def neg64(dst: MReg, *, span: object = None) -> MInsn:
    """BPF_ALU64_IMM(BPF_NEG, dst, 0): dst = -dst."""
    return MInsn(alu_opcode(Class.ALU64, AluOp.NEG, Source.K), dst, span=span)


def endian_be(dst: MReg, bits: int, *, span: object = None) -> MInsn:
    """BPF_ENDIAN(BPF_TO_BE, dst, bits): the low `bits` of dst to big endian."""
    return MInsn(alu_opcode(Class.ALU, AluOp.END, Source.TO_BE), dst, 0, 0, bits, span=span)


def ld_imm64(dst: MReg, imm: int, *, span: object = None) -> MInsn:
    """BPF_LD_IMM64: dst = a 64-bit immediate, in two slots."""
    return MInsn(BPF_LD_IMM64, dst, 0, 0, imm, span=span)


def ldx_mem(size: Size, dst: MReg, src: MReg, off: int, *, span: object = None, remat: bool = False) -> MInsn:
    """BPF_LDX_MEM: dst = *(size *)(src + off), zero-extended."""
    return MInsn(mem_opcode(Class.LDX, Mode.MEM, size), dst, src, off, span=span, remat=remat)


def stx_mem(size: Size, dst: MReg, src: MReg, off: int, *, span: object = None) -> MInsn:
    """BPF_STX_MEM: *(size *)(dst + off) = src."""
    return MInsn(mem_opcode(Class.STX, Mode.MEM, size), dst, src, off, span=span)


def st_mem(size: Size, dst: MReg, off: int, imm: int, *, span: object = None) -> MInsn:
    """BPF_ST_MEM: *(size *)(dst + off) = imm."""
    return MInsn(mem_opcode(Class.ST, Mode.MEM, size), dst, 0, off, imm, span=span)


def jmp_imm(op: JmpOp, dst: MReg, imm: int, target: str, *, span: object = None) -> MInsn:
    """BPF_JMP_IMM: if dst op imm goto target, 64-bit compare."""
    return MInsn(jmp_opcode(Class.JMP, op, Source.K), dst, 0, 0, imm, target=target, span=span)


def jmp_reg(op: JmpOp, dst: MReg, src: MReg, target: str, *, span: object = None) -> MInsn:
    """BPF_JMP_REG: if dst op src goto target, 64-bit compare."""
    return MInsn(jmp_opcode(Class.JMP, op, Source.X), dst, src, target=target, span=span)


def ld_map_fd(dst: MReg, map_index: int, *, span: object = None) -> MInsn:
    """BPF_LD_MAP_FD: dst = the map `map_index` of the object (a relocation in the ELF)."""
    return MInsn(BPF_LD_IMM64, dst, BPF_PSEUDO_MAP_FD, 0, map_index, span=span)


def ld_map_value(dst: MReg, map_index: int, offset: int, *, span: object = None) -> MInsn:
    """dst = the address `offset` bytes into the value of map `map_index` (src BPF_PSEUDO_MAP_VALUE)."""
    return MInsn(BPF_LD_IMM64, dst, BPF_PSEUDO_MAP_VALUE, 0, offset << 32 | map_index, span=span)


def call_helper(helper: int, args: int, *, span: object = None) -> MInsn:
    """BPF_EMIT_CALL: call helper `helper` with its `args` arguments in r1 ..; r0 gets the result, r1-r5 are clobbered."""
    return MInsn(jmp_opcode(Class.JMP, JmpOp.CALL, Source.K), 0, 0, 0, helper, span=span, args=args)


def atomic_op(size: Size, op: AluOp, dst: MReg, src: MReg, off: int, *, span: object = None) -> MInsn:
    """BPF_ATOMIC_OP without BPF_FETCH: *(size *)(dst + off) op= src."""
    return MInsn(mem_opcode(Class.STX, Mode.ATOMIC, size), dst, src, off, int(op), span=span)


def frame_address(dst: MReg, frame_offset: int, *, span: object = None) -> MInsn:
    """dst += -(the spill area + frame_offset): fixed once the spill area's size is known (`MInsn.frame_offset`)."""
    return MInsn(alu_opcode(Class.ALU64, AluOp.ADD, Source.K), dst, 0, 0, 0, span=span, frame_offset=frame_offset)


def ja(target: str, *, span: object = None) -> MInsn:
    """BPF_JMP_A: goto target."""
    return MInsn(jmp_opcode(Class.JMP, JmpOp.JA, Source.K), target=target, span=span)


def exit_insn(*, span: object = None) -> MInsn:
    """BPF_EXIT_INSN: return r0."""
    return MInsn(jmp_opcode(Class.JMP, JmpOp.EXIT, Source.K), span=span)


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
    # Registers defined more than once that hold the same value wherever they
    # are live (a window pointer: the packet bytes or their stack copy), so a
    # read through one may be repeated like a read through a single definition.
    stable: frozenset[str] = frozenset()
