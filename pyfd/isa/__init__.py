"""The eBPF instruction set: opcode fields, instructions, builders, labels, text.

Modelled on the kernel's include/uapi/linux/bpf_common.h, bpf.h and
include/linux/filter.h. A leaf: it imports nothing of pyfd but the ABI numbers
(pyfd.abi), so the compiler, the runtime, the object formats and `pyfd
disasm` all use it.
"""

from typing import TYPE_CHECKING, Any

from . import opcodes
from .builders import (
    Target,
    alu32_imm,
    alu32_reg,
    alu64_imm,
    alu64_reg,
    atomic_op,
    call,
    call_rel,
    endian,
    exit_insn,
    gotol,
    ja,
    jmp32_imm,
    jmp32_reg,
    jmp_imm,
    jmp_reg,
    ld_abs,
    ld_imm64,
    ld_ind,
    ld_map_fd,
    ld_map_value,
    ldx_mem,
    ldx_memsx,
    mov32_imm,
    mov32_reg,
    mov64_imm,
    mov64_reg,
    neg32,
    neg64,
    st_mem,
    stx_mem,
)
from .errors import (
    AssembleError,
    DecodeError,
    DisassembleError,
    EncodeError,
    IsaError,
    LabelError,
)
from .insn import SLOT_SIZE, Instruction, Label, decode, encode, encode_program
from .opcodes import *  # noqa: F403 - the enums and the kernel-named constants, listed in opcodes.__all__
from .resolve import label_slots, relax_jumps, resolve

# The text form (assembler, disassembler, listings) loads on first use (PEP
# 562): compiling to an object file needs none of it, and its instruction
# patterns cost a few milliseconds of every `pyfd compile` to build.
if TYPE_CHECKING:
    from .asm import SourceLine, assemble, assemble_items, disassemble, listing
_TEXT = frozenset({"SourceLine", "assemble", "assemble_items", "disassemble", "listing"})

__all__ = [
    "SLOT_SIZE",
    "AssembleError",
    "DecodeError",
    "DisassembleError",
    "EncodeError",
    "Instruction",
    "IsaError",
    "Label",
    "LabelError",
    "SourceLine",
    "Target",
    "alu32_imm",
    "alu32_reg",
    "alu64_imm",
    "alu64_reg",
    "assemble",
    "atomic_op",
    "assemble_items",
    "call",
    "call_rel",
    "decode",
    "disassemble",
    "encode",
    "encode_program",
    "endian",
    "exit_insn",
    "gotol",
    "ja",
    "jmp32_imm",
    "jmp32_reg",
    "jmp_imm",
    "jmp_reg",
    "label_slots",
    "ld_abs",
    "ld_imm64",
    "ld_ind",
    "ld_map_fd",
    "ld_map_value",
    "ldx_mem",
    "ldx_memsx",
    "listing",
    "mov32_imm",
    "mov32_reg",
    "mov64_imm",
    "mov64_reg",
    "neg32",
    "neg64",
    "relax_jumps",
    "resolve",
    "st_mem",
    "stx_mem",
]
__all__ += opcodes.__all__


def __getattr__(name: str) -> Any:
    """Import a name of the text form from pyfd.isa.asm on first use, and keep it."""
    if name not in _TEXT:
        raise AttributeError(f"module 'pyfd.isa' has no attribute {name!r}")
    from . import asm

    value = getattr(asm, name)
    globals()[name] = value
    return value
