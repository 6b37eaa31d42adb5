"""The Instruction record and its binary encoding.

The layout is struct bpf_insn from include/uapi/linux/bpf.h, little endian:

    byte 0     opcode
    byte 1     dst_reg (low nibble), src_reg (high nibble)
    bytes 2-3  off, signed 16 bits
    bytes 4-7  imm, signed 32 bits

BPF_LD_IMM64 takes two such slots; the second has opcode 0 and carries the
high 32 bits of the immediate in its imm (instruction-set.rst, "64-bit
immediate instructions").
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..abi import INSN_SIZE
from .errors import DecodeError, EncodeError
from .opcodes import (
    BPF_LD_IMM64,
    BPF_PSEUDO_CALL,
    CLASS_MASK,
    OP_MASK,
    Class,
    JmpOp,
)

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
UINT32_MAX = 2**32 - 1
INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1
MAX_REG = 10
"""Highest register number; MAX_BPF_REG in bpf.h counts r0-r10."""
SLOT_SIZE = INSN_SIZE
"""Bytes per instruction slot, sizeof(struct bpf_insn)."""

_SLOT = struct.Struct("<BBhi")
_LABEL_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")


@dataclass(frozen=True)
class Label:
    """A named position in an instruction stream, the target of a jump or call."""

    name: str

    def __post_init__(self) -> None:
        # The name must survive a trip through the assembly text.
        if not isinstance(self.name, str) or not _LABEL_NAME.fullmatch(self.name):
            raise ValueError(f"invalid label name {self.name!r}")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Instruction:
    """One eBPF instruction (struct bpf_insn); LD_IMM64 holds its full 64-bit imm.

    Fields are checked when the instruction is built, so an Instruction that
    exists can always be encoded once its target is resolved. ``imm`` is kept
    in the form decode() returns: signed 32-bit, or unsigned 64-bit for
    LD_IMM64; an in-range value of the other sign (0xffffffff for a 32-bit
    imm, -1 for LD_IMM64) is accepted and converted, because it encodes to the
    same bits. ``span`` is an opaque source location for error messages and
    source maps: never encoded and not part of equality. ``target`` is a jump
    or BPF-to-BPF call destination still to be resolved by resolve(); while it
    is set the offset field is a placeholder and encoding refuses.
    """

    opcode: int
    dst: int
    src: int
    off: int
    imm: int
    span: object | None = field(default=None, compare=False)
    target: Label | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        for name in ("opcode", "dst", "src", "off", "imm"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            # Drop IntEnum-ness so reprs and hashes are of plain ints.
            object.__setattr__(self, name, int(value))
        self._check_range("opcode", self.opcode, 0, 0xFF)
        self._check_range("dst", self.dst, 0, MAX_REG)
        self._check_range("src", self.src, 0, MAX_REG)
        self._check_range("off", self.off, INT16_MIN, INT16_MAX)
        if self.is_ld_imm64:
            self._check_range("imm", self.imm, INT64_MIN, UINT64_MAX)
            object.__setattr__(self, "imm", self.imm & UINT64_MAX)
        else:
            self._check_range("imm", self.imm, INT32_MIN, UINT32_MAX)
            if self.imm > INT32_MAX:
                object.__setattr__(self, "imm", self.imm - 2**32)
        if self.target is not None:
            if not isinstance(self.target, Label):
                raise TypeError(
                    f"target must be a Label, not {type(self.target).__name__}"
                )
            if not (self.is_jump or self.is_pseudo_call):
                raise EncodeError(
                    f"opcode {self.opcode:#04x} cannot take a label target{self._at()}"
                )

    def _at(self) -> str:
        return "" if self.span is None else f" (at {self.span})"

    def _check_range(self, name: str, value: int, low: int, high: int) -> None:
        if not low <= value <= high:
            raise EncodeError(
                f"{name} {value} out of range [{low}, {high}]{self._at()}"
            )

    @property
    def cls(self) -> Class:
        """The instruction class (BPF_CLASS of the opcode)."""
        return Class(self.opcode & CLASS_MASK)

    @property
    def is_ld_imm64(self) -> bool:
        """True for the two-slot 64-bit immediate load, opcode 0x18."""
        return self.opcode == BPF_LD_IMM64

    @property
    def slots(self) -> int:
        """Number of 8-byte slots the instruction occupies (2 for LD_IMM64)."""
        return 2 if self.is_ld_imm64 else 1

    @property
    def is_jump(self) -> bool:
        """True for a JMP/JMP32 instruction whose off is a branch offset."""
        return self.cls in (Class.JMP, Class.JMP32) and self.opcode & OP_MASK not in (
            JmpOp.CALL,
            JmpOp.EXIT,
        )

    @property
    def is_gotol(self) -> bool:
        """True for cpu v4's `gotol` (BPF_JMP32 | BPF_JA): a jump whose offset is the 32-bit imm."""
        return self.opcode == Class.JMP32 | JmpOp.JA

    @property
    def jump_offset(self) -> int:
        """The relative slot offset of a jump or BPF-to-BPF call: imm for calls and gotol, off otherwise."""
        return self.imm if self.is_pseudo_call or self.is_gotol else self.off

    @property
    def is_pseudo_call(self) -> bool:
        """True for a BPF-to-BPF call, whose imm is a relative slot offset."""
        return self.opcode == Class.JMP | JmpOp.CALL and self.src == BPF_PSEUDO_CALL


def encode(insn: Instruction) -> bytes:
    """Encode one instruction as 8 bytes (16 for LD_IMM64), little endian."""
    if insn.target is not None:
        raise EncodeError(f"jump to unresolved label {insn.target.name!r}{insn._at()}")
    regs = insn.src << 4 | insn.dst
    if not insn.is_ld_imm64:
        return _SLOT.pack(insn.opcode, regs, insn.off, insn.imm)
    low, high = insn.imm & UINT32_MAX, insn.imm >> 32
    return _SLOT.pack(insn.opcode, regs, insn.off, _signed32(low)) + _SLOT.pack(
        0, 0, 0, _signed32(high)
    )


def encode_program(insns: Iterable[Instruction]) -> bytes:
    """Encode a resolved instruction list as one byte string."""
    return b"".join(encode(insn) for insn in insns)


def decode(data: bytes | bytearray | memoryview) -> list[Instruction]:
    """Decode a byte string of whole slots into instructions."""
    data = bytes(data)
    if len(data) % SLOT_SIZE:
        raise DecodeError(f"{len(data)} bytes is not a multiple of {SLOT_SIZE}")
    insns: list[Instruction] = []
    slot, nslots = 0, len(data) // SLOT_SIZE
    while slot < nslots:
        opcode, regs, off, imm = _SLOT.unpack_from(data, slot * SLOT_SIZE)
        dst, src = regs & 0x0F, regs >> 4
        if opcode == BPF_LD_IMM64:
            if slot + 1 == nslots:
                raise DecodeError(f"slot {slot}: LD_IMM64 is missing its second slot")
            op2, regs2, off2, imm2 = _SLOT.unpack_from(data, (slot + 1) * SLOT_SIZE)
            # The kernel rejects a second slot with anything but imm set
            # (resolve_pseudo_ldimm64 in kernel/bpf/verifier.c).
            if op2 or regs2 or off2:
                raise DecodeError(
                    f"slot {slot + 1}: second slot of LD_IMM64 has reserved fields set"
                )
            imm = (imm2 & UINT32_MAX) << 32 | (imm & UINT32_MAX)
        if dst > MAX_REG or src > MAX_REG:
            raise DecodeError(f"slot {slot}: register number above r{MAX_REG}")
        insn = Instruction(opcode, dst, src, off, imm)
        insns.append(insn)
        slot += insn.slots
    return insns


def _signed32(value: int) -> int:
    return value - 2**32 if value > INT32_MAX else value
