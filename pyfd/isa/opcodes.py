"""Opcode fields of an eBPF instruction, one enum per field.

Names and values follow include/uapi/linux/bpf_common.h and bpf.h; the
meanings follow Documentation/bpf/standardization/instruction-set.rst.
The opcode byte is split three ways depending on the class:

    arithmetic and jumps:  | op (4 bits) | source (1 bit) | class (3 bits) |
    loads and stores:      | mode (3 bits) | size (2 bits) | class (3 bits) |
"""

from __future__ import annotations

from enum import IntEnum

CLASS_MASK = 0x07
"""Bits of the opcode that hold the class (BPF_CLASS in bpf_common.h)."""
SIZE_MASK = 0x18
"""Bits of a load/store opcode that hold the size (BPF_SIZE)."""
MODE_MASK = 0xE0
"""Bits of a load/store opcode that hold the mode (BPF_MODE)."""
OP_MASK = 0xF0
"""Bits of an ALU/jump opcode that hold the operation (BPF_OP)."""
SOURCE_MASK = 0x08
"""Bit of an ALU/jump opcode that selects the source operand (BPF_SRC)."""


class Class(IntEnum):
    """Instruction class, the low three bits of the opcode (BPF_CLASS)."""

    LD = 0x00  #: BPF_LD: non-standard loads (LD_IMM64, legacy packet access)
    LDX = 0x01  #: BPF_LDX: load from memory into a register
    ST = 0x02  #: BPF_ST: store an immediate to memory
    STX = 0x03  #: BPF_STX: store a register to memory (and atomics)
    ALU = 0x04  #: BPF_ALU: 32-bit arithmetic
    JMP = 0x05  #: BPF_JMP: 64-bit jumps, call and exit
    JMP32 = 0x06  #: BPF_JMP32: jumps comparing the low 32 bits
    ALU64 = 0x07  #: BPF_ALU64: 64-bit arithmetic


class Size(IntEnum):
    """Width of a memory access, bits 3-4 of a load/store opcode (BPF_SIZE)."""

    W = 0x00  #: BPF_W: word, 4 bytes
    H = 0x08  #: BPF_H: half word, 2 bytes
    B = 0x10  #: BPF_B: byte
    DW = 0x18  #: BPF_DW: double word, 8 bytes

    @property
    def nbytes(self) -> int:
        """Number of bytes the access reads or writes."""
        return {Size.W: 4, Size.H: 2, Size.B: 1, Size.DW: 8}[self]


class Mode(IntEnum):
    """Addressing mode, bits 5-7 of a load/store opcode (BPF_MODE)."""

    IMM = 0x00  #: BPF_IMM: 64-bit immediate (LD_IMM64)
    ABS = 0x20  #: BPF_ABS: legacy packet load at an absolute offset
    IND = 0x40  #: BPF_IND: legacy packet load at register + offset
    MEM = 0x60  #: BPF_MEM: regular load or store at register + offset
    MEMSX = 0x80  #: BPF_MEMSX: sign-extending load
    ATOMIC = 0xC0  #: BPF_ATOMIC: atomic read-modify-write


class Source(IntEnum):
    """Source operand, bit 3 of an ALU/jump opcode (BPF_SRC).

    For BPF_END the same bit picks the byte order instead: BPF_TO_LE (0x00)
    and BPF_TO_BE (0x08), aliases of K and X.
    """

    K = 0x00  #: BPF_K: the source is the 32-bit immediate
    X = 0x08  #: BPF_X: the source is the src register
    TO_LE = 0x00  #: BPF_TO_LE: BPF_END converts to little endian
    TO_BE = 0x08  #: BPF_TO_BE: BPF_END converts to big endian


class AluOp(IntEnum):
    """Arithmetic operation, bits 4-7 of a BPF_ALU/BPF_ALU64 opcode (BPF_OP)."""

    ADD = 0x00  #: BPF_ADD: dst += src
    SUB = 0x10  #: BPF_SUB: dst -= src
    MUL = 0x20  #: BPF_MUL: dst *= src
    DIV = 0x30  #: BPF_DIV: dst /= src, unsigned; division by zero gives 0
    OR = 0x40  #: BPF_OR: dst |= src
    AND = 0x50  #: BPF_AND: dst &= src
    LSH = 0x60  #: BPF_LSH: dst <<= src, shift masked to the operand width
    RSH = 0x70  #: BPF_RSH: dst >>= src, logical
    NEG = 0x80  #: BPF_NEG: dst = -dst
    MOD = 0x90  #: BPF_MOD: dst %= src, unsigned; modulo zero leaves dst
    XOR = 0xA0  #: BPF_XOR: dst ^= src
    MOV = 0xB0  #: BPF_MOV: dst = src
    ARSH = 0xC0  #: BPF_ARSH: dst >>= src, arithmetic (sign-filling)
    END = 0xD0  #: BPF_END: byte swap of the low imm (16/32/64) bits


class JmpOp(IntEnum):
    """Jump operation, bits 4-7 of a BPF_JMP/BPF_JMP32 opcode (BPF_OP)."""

    JA = 0x00  #: BPF_JA: jump always
    JEQ = 0x10  #: BPF_JEQ: jump if dst == src
    JGT = 0x20  #: BPF_JGT: jump if dst > src, unsigned
    JGE = 0x30  #: BPF_JGE: jump if dst >= src, unsigned
    JSET = 0x40  #: BPF_JSET: jump if dst & src
    JNE = 0x50  #: BPF_JNE: jump if dst != src
    JSGT = 0x60  #: BPF_JSGT: jump if dst > src, signed
    JSGE = 0x70  #: BPF_JSGE: jump if dst >= src, signed
    CALL = 0x80  #: BPF_CALL: call a helper (imm) or a BPF function (src=1)
    EXIT = 0x90  #: BPF_EXIT: return r0 to the caller
    JLT = 0xA0  #: BPF_JLT: jump if dst < src, unsigned
    JLE = 0xB0  #: BPF_JLE: jump if dst <= src, unsigned
    JSLT = 0xC0  #: BPF_JSLT: jump if dst < src, signed
    JSLE = 0xD0  #: BPF_JSLE: jump if dst <= src, signed


class Reg(IntEnum):
    """The eleven eBPF registers (MAX_BPF_REG in bpf.h is 11)."""

    R0 = 0  #: return value of helpers and of the program
    R1 = 1  #: first argument; the context pointer on entry
    R2 = 2  #: second argument
    R3 = 3  #: third argument
    R4 = 4  #: fourth argument
    R5 = 5  #: fifth argument
    R6 = 6  #: callee-saved
    R7 = 7  #: callee-saved
    R8 = 8  #: callee-saved
    R9 = 9  #: callee-saved
    R10 = 10  #: read-only frame pointer


def alu_opcode(cls: Class, op: AluOp, source: Source) -> int:
    """The opcode byte of an arithmetic instruction: BPF_OP | BPF_SRC | BPF_CLASS."""
    if cls not in (Class.ALU, Class.ALU64):
        raise ValueError(f"{cls.name} is not an arithmetic class")
    return cls | op | source


def jmp_opcode(cls: Class, op: JmpOp, source: Source) -> int:
    """The opcode byte of a jump, call or exit: BPF_OP | BPF_SRC | BPF_CLASS."""
    if cls not in (Class.JMP, Class.JMP32):
        raise ValueError(f"{cls.name} is not a jump class")
    return cls | op | source


def mem_opcode(cls: Class, mode: Mode, size: Size) -> int:
    """The opcode byte of a load or store: BPF_MODE | BPF_SIZE | BPF_CLASS."""
    if cls not in (Class.LD, Class.LDX, Class.ST, Class.STX):
        raise ValueError(f"{cls.name} is not a load/store class")
    return cls | mode | size


# The members by value, for the field readers below: indexing a tuple is ten
# times cheaper than calling the Enum, and the compilers read these fields of
# every instruction many times (register allocation, decoding).
_CLASSES = tuple(Class(value) for value in range(CLASS_MASK + 1))
_SOURCES = (Source.K, Source.X)


def bpf_class(opcode: int) -> Class:
    """BPF_CLASS(code): the instruction class."""
    return _CLASSES[opcode & CLASS_MASK]


def bpf_op(opcode: int) -> int:
    """BPF_OP(code): the operation bits of an ALU/jump opcode (compare with AluOp or JmpOp)."""
    return opcode & OP_MASK


def bpf_src(opcode: int) -> Source:
    """BPF_SRC(code): whether an ALU/jump instruction reads the src register (X) or imm (K)."""
    return _SOURCES[(opcode & SOURCE_MASK) >> 3]


BPF_PSEUDO_CALL = 1
"""src of a BPF_CALL to a BPF function, imm is a relative slot offset (bpf.h)."""

BPF_PSEUDO_MAP_FD = 1
"""src of a BPF_LD_IMM64 whose imm is a map: the loader's fd (pyfd: the map's index in its object, until loaded)."""
BPF_PSEUDO_MAP_VALUE = 2
"""src of a BPF_LD_IMM64 that points into a map's value: imm low half the map, high half the offset."""

BPF_FETCH = 0x01
"""Flag in the imm of a BPF_ATOMIC instruction: also load the old value into src."""

BPF_LD_IMM64 = Class.LD | Mode.IMM | Size.DW
"""Opcode 0x18 of the two-slot 64-bit immediate load (BPF_LD_IMM64 in filter.h)."""

# Module-level aliases with the kernel's names, for code transcribed from C.
BPF_LD, BPF_LDX, BPF_ST, BPF_STX = Class.LD, Class.LDX, Class.ST, Class.STX
BPF_ALU, BPF_JMP, BPF_JMP32, BPF_ALU64 = Class.ALU, Class.JMP, Class.JMP32, Class.ALU64
BPF_W, BPF_H, BPF_B, BPF_DW = Size.W, Size.H, Size.B, Size.DW
BPF_IMM, BPF_ABS, BPF_IND = Mode.IMM, Mode.ABS, Mode.IND
BPF_MEM, BPF_MEMSX, BPF_ATOMIC = Mode.MEM, Mode.MEMSX, Mode.ATOMIC
BPF_K, BPF_X, BPF_TO_LE, BPF_TO_BE = Source.K, Source.X, Source.TO_LE, Source.TO_BE
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV = AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.DIV
BPF_OR, BPF_AND, BPF_LSH, BPF_RSH = AluOp.OR, AluOp.AND, AluOp.LSH, AluOp.RSH
BPF_NEG, BPF_MOD, BPF_XOR, BPF_MOV = AluOp.NEG, AluOp.MOD, AluOp.XOR, AluOp.MOV
BPF_ARSH, BPF_END = AluOp.ARSH, AluOp.END
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE = JmpOp.JA, JmpOp.JEQ, JmpOp.JGT, JmpOp.JGE
BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE = JmpOp.JSET, JmpOp.JNE, JmpOp.JSGT, JmpOp.JSGE
BPF_CALL, BPF_EXIT = JmpOp.CALL, JmpOp.EXIT
BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE = JmpOp.JLT, JmpOp.JLE, JmpOp.JSLT, JmpOp.JSLE
R0, R1, R2, R3, R4, R5 = Reg.R0, Reg.R1, Reg.R2, Reg.R3, Reg.R4, Reg.R5
R6, R7, R8, R9, R10 = Reg.R6, Reg.R7, Reg.R8, Reg.R9, Reg.R10

__all__ = [
    "BPF_ABS",
    "BPF_ADD",
    "BPF_ALU",
    "BPF_ALU64",
    "BPF_AND",
    "BPF_ARSH",
    "BPF_ATOMIC",
    "BPF_B",
    "BPF_CALL",
    "BPF_DIV",
    "BPF_DW",
    "BPF_END",
    "BPF_EXIT",
    "BPF_H",
    "BPF_IMM",
    "BPF_IND",
    "BPF_JA",
    "BPF_JEQ",
    "BPF_JGE",
    "BPF_JGT",
    "BPF_JLE",
    "BPF_JLT",
    "BPF_JMP",
    "BPF_JMP32",
    "BPF_JNE",
    "BPF_JSET",
    "BPF_JSGE",
    "BPF_JSGT",
    "BPF_JSLE",
    "BPF_JSLT",
    "BPF_K",
    "BPF_LD",
    "BPF_LDX",
    "BPF_LD_IMM64",
    "BPF_LSH",
    "BPF_MEM",
    "BPF_MEMSX",
    "BPF_MOD",
    "BPF_MOV",
    "BPF_MUL",
    "BPF_NEG",
    "BPF_OR",
    "BPF_PSEUDO_CALL",
    "BPF_PSEUDO_MAP_FD",
    "BPF_PSEUDO_MAP_VALUE",
    "BPF_FETCH",
    "BPF_RSH",
    "BPF_ST",
    "BPF_STX",
    "BPF_SUB",
    "BPF_TO_BE",
    "BPF_TO_LE",
    "BPF_W",
    "BPF_X",
    "BPF_XOR",
    "CLASS_MASK",
    "MODE_MASK",
    "OP_MASK",
    "R0",
    "R1",
    "R2",
    "R3",
    "R4",
    "R5",
    "R6",
    "R7",
    "R8",
    "R9",
    "R10",
    "SIZE_MASK",
    "SOURCE_MASK",
    "AluOp",
    "Class",
    "JmpOp",
    "Mode",
    "Reg",
    "Size",
    "Source",
    "alu_opcode",
    "bpf_class",
    "bpf_op",
    "bpf_src",
    "jmp_opcode",
    "mem_opcode",
]
