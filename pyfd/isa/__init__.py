"""The eBPF instruction set: opcode fields, instructions, builders, labels, text.

Modelled on the kernel's include/uapi/linux/bpf_common.h, bpf.h and
include/linux/filter.h. A leaf: it imports nothing of pyfd but the ABI numbers
(pyfd.abi), so the compiler, the runtime, the object formats and `pyfd
disasm` all use it.
"""

from . import opcodes
from .asm import SourceLine, assemble, assemble_items, disassemble, listing
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
