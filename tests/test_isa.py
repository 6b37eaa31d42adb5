"""Tests of pyfd.isa: encoding, decoding, labels and assembly text.

The expected bytes in TABLE were written by hand from the layout in
Documentation/bpf/standardization/instruction-set.rst (opcode; src<<4|dst;
off as le16; imm as le32), not produced by the encoder under test. Where
llvm-mc and llvm-objdump are installed they serve as an extra oracle.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyfd.isa as isa
from pyfd.isa import (
    BPF_ADD,
    BPF_AND,
    BPF_ARSH,
    BPF_B,
    BPF_CALL,
    BPF_DIV,
    BPF_DW,
    BPF_H,
    BPF_JA,
    BPF_JEQ,
    BPF_JGE,
    BPF_JGT,
    BPF_JLE,
    BPF_JLT,
    BPF_JNE,
    BPF_JSET,
    BPF_JSGE,
    BPF_JSGT,
    BPF_JSLE,
    BPF_JSLT,
    BPF_LSH,
    BPF_MOD,
    BPF_MUL,
    BPF_NEG,
    BPF_OR,
    BPF_RSH,
    BPF_SUB,
    BPF_W,
    BPF_XOR,
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
    AluOp,
    AssembleError,
    Class,
    DecodeError,
    DisassembleError,
    EncodeError,
    Instruction,
    JmpOp,
    Label,
    LabelError,
    Mode,
    Reg,
    Size,
    Source,
    SourceLine,
    alu32_imm,
    alu32_reg,
    alu64_imm,
    alu64_reg,
    assemble,
    assemble_items,
    call,
    call_rel,
    decode,
    disassemble,
    encode,
    encode_program,
    endian,
    exit_insn,
    ja,
    jmp32_imm,
    jmp32_reg,
    jmp_imm,
    jmp_reg,
    ld_abs,
    ld_imm64,
    ld_ind,
    ldx_mem,
    ldx_memsx,
    listing,
    mov32_imm,
    mov32_reg,
    mov64_imm,
    mov64_reg,
    neg32,
    neg64,
    resolve,
    st_mem,
    stx_mem,
)


class Row(NamedTuple):
    insn: Instruction
    hex: str
    asm: str


# fmt: off
TABLE: list[Row] = [
    # BPF_ALU64, immediate source
    Row(alu64_imm(BPF_ADD, R1, 22),          "07 01 00 00 16 00 00 00", "r1 += 22"),
    Row(alu64_imm(BPF_SUB, R2, 1),           "17 02 00 00 01 00 00 00", "r2 -= 1"),
    Row(alu64_imm(BPF_MUL, R1, 4),           "27 01 00 00 04 00 00 00", "r1 *= 4"),
    Row(alu64_imm(BPF_DIV, R1, 3),           "37 01 00 00 03 00 00 00", "r1 /= 3"),
    Row(alu64_imm(BPF_OR, R1, 1),            "47 01 00 00 01 00 00 00", "r1 |= 1"),
    Row(alu64_imm(BPF_AND, R1, 15),          "57 01 00 00 0f 00 00 00", "r1 &= 15"),
    Row(alu64_imm(BPF_LSH, R1, 2),           "67 01 00 00 02 00 00 00", "r1 <<= 2"),
    Row(alu64_imm(BPF_RSH, R1, 4),           "77 01 00 00 04 00 00 00", "r1 >>= 4"),
    Row(neg64(R1),                           "87 01 00 00 00 00 00 00", "r1 = -r1"),
    Row(alu64_imm(BPF_MOD, R3, 7),           "97 03 00 00 07 00 00 00", "r3 %= 7"),
    Row(alu64_imm(BPF_XOR, R1, -1),          "a7 01 00 00 ff ff ff ff", "r1 ^= -1"),
    Row(mov64_imm(R0, 0),                    "b7 00 00 00 00 00 00 00", "r0 = 0"),
    Row(mov64_imm(R9, -2147483648),          "b7 09 00 00 00 00 00 80", "r9 = -2147483648"),
    Row(alu64_imm(BPF_ARSH, R1, 4),          "c7 01 00 00 04 00 00 00", "r1 s>>= 4"),
    # BPF_ALU64, register source
    Row(alu64_reg(BPF_ADD, R1, R2),          "0f 21 00 00 00 00 00 00", "r1 += r2"),
    Row(alu64_reg(BPF_SUB, R1, R2),          "1f 21 00 00 00 00 00 00", "r1 -= r2"),
    Row(alu64_reg(BPF_MUL, R4, R5),          "2f 54 00 00 00 00 00 00", "r4 *= r5"),
    Row(alu64_reg(BPF_DIV, R1, R2),          "3f 21 00 00 00 00 00 00", "r1 /= r2"),
    Row(alu64_reg(BPF_OR, R6, R7),           "4f 76 00 00 00 00 00 00", "r6 |= r7"),
    Row(alu64_reg(BPF_AND, R1, R2),          "5f 21 00 00 00 00 00 00", "r1 &= r2"),
    Row(alu64_reg(BPF_LSH, R1, R2),          "6f 21 00 00 00 00 00 00", "r1 <<= r2"),
    Row(alu64_reg(BPF_RSH, R1, R2),          "7f 21 00 00 00 00 00 00", "r1 >>= r2"),
    Row(alu64_reg(BPF_MOD, R1, R2),          "9f 21 00 00 00 00 00 00", "r1 %= r2"),
    Row(alu64_reg(BPF_XOR, R1, R3),          "af 31 00 00 00 00 00 00", "r1 ^= r3"),
    Row(mov64_reg(R1, R2),                   "bf 21 00 00 00 00 00 00", "r1 = r2"),
    Row(mov64_reg(R6, R1),                   "bf 16 00 00 00 00 00 00", "r6 = r1"),
    Row(mov64_reg(R2, R10),                  "bf a2 00 00 00 00 00 00", "r2 = r10"),
    Row(alu64_reg(BPF_ARSH, R8, R9),         "cf 98 00 00 00 00 00 00", "r8 s>>= r9"),
    # BPF_ALU (32-bit), immediate source
    Row(alu32_imm(BPF_ADD, R1, 1),           "04 01 00 00 01 00 00 00", "w1 += 1"),
    Row(alu32_imm(BPF_SUB, R1, 2),           "14 01 00 00 02 00 00 00", "w1 -= 2"),
    Row(alu32_imm(BPF_MUL, R1, 3),           "24 01 00 00 03 00 00 00", "w1 *= 3"),
    Row(alu32_imm(BPF_DIV, R1, 10),          "34 01 00 00 0a 00 00 00", "w1 /= 10"),
    Row(alu32_imm(BPF_OR, R1, 256),          "44 01 00 00 00 01 00 00", "w1 |= 256"),
    Row(alu32_imm(BPF_AND, R1, 255),         "54 01 00 00 ff 00 00 00", "w1 &= 255"),
    Row(alu32_imm(BPF_LSH, R1, 8),           "64 01 00 00 08 00 00 00", "w1 <<= 8"),
    Row(alu32_imm(BPF_RSH, R1, 16),          "74 01 00 00 10 00 00 00", "w1 >>= 16"),
    Row(neg32(R1),                           "84 01 00 00 00 00 00 00", "w1 = -w1"),
    Row(alu32_imm(BPF_MOD, R1, 5),           "94 01 00 00 05 00 00 00", "w1 %= 5"),
    Row(alu32_imm(BPF_XOR, R1, 1),           "a4 01 00 00 01 00 00 00", "w1 ^= 1"),
    Row(mov32_imm(R0, 5),                    "b4 00 00 00 05 00 00 00", "w0 = 5"),
    Row(alu32_imm(BPF_ARSH, R1, 31),         "c4 01 00 00 1f 00 00 00", "w1 s>>= 31"),
    # BPF_ALU (32-bit), register source
    Row(alu32_reg(BPF_ADD, R1, R2),          "0c 21 00 00 00 00 00 00", "w1 += w2"),
    Row(alu32_reg(BPF_SUB, R1, R2),          "1c 21 00 00 00 00 00 00", "w1 -= w2"),
    Row(alu32_reg(BPF_MUL, R1, R2),          "2c 21 00 00 00 00 00 00", "w1 *= w2"),
    Row(alu32_reg(BPF_DIV, R1, R2),          "3c 21 00 00 00 00 00 00", "w1 /= w2"),
    Row(alu32_reg(BPF_OR, R1, R2),           "4c 21 00 00 00 00 00 00", "w1 |= w2"),
    Row(alu32_reg(BPF_AND, R1, R2),          "5c 21 00 00 00 00 00 00", "w1 &= w2"),
    Row(alu32_reg(BPF_LSH, R1, R2),          "6c 21 00 00 00 00 00 00", "w1 <<= w2"),
    Row(alu32_reg(BPF_RSH, R1, R2),          "7c 21 00 00 00 00 00 00", "w1 >>= w2"),
    Row(alu32_reg(BPF_MOD, R1, R2),          "9c 21 00 00 00 00 00 00", "w1 %= w2"),
    Row(alu32_reg(BPF_XOR, R1, R2),          "ac 21 00 00 00 00 00 00", "w1 ^= w2"),
    Row(mov32_reg(R1, R2),                   "bc 21 00 00 00 00 00 00", "w1 = w2"),
    Row(alu32_reg(BPF_ARSH, R1, R2),         "cc 21 00 00 00 00 00 00", "w1 s>>= w2"),
    # BPF_ALU | BPF_END
    Row(endian(R1, 16),                      "dc 01 00 00 10 00 00 00", "r1 = be16 r1"),
    Row(endian(R1, 32),                      "dc 01 00 00 20 00 00 00", "r1 = be32 r1"),
    Row(endian(R2, 64),                      "dc 02 00 00 40 00 00 00", "r2 = be64 r2"),
    Row(endian(R1, 16, to_be=False),         "d4 01 00 00 10 00 00 00", "r1 = le16 r1"),
    Row(endian(R1, 32, to_be=False),         "d4 01 00 00 20 00 00 00", "r1 = le32 r1"),
    Row(endian(R1, 64, to_be=False),         "d4 01 00 00 40 00 00 00", "r1 = le64 r1"),
    # BPF_LDX | BPF_MEM and BPF_MEMSX
    Row(ldx_mem(BPF_W, R1, R1, 76),          "61 11 4c 00 00 00 00 00", "r1 = *(u32 *)(r1 + 76)"),
    Row(ldx_mem(BPF_H, R2, R1, 12),          "69 12 0c 00 00 00 00 00", "r2 = *(u16 *)(r1 + 12)"),
    Row(ldx_mem(BPF_B, R2, R3, -1),          "71 32 ff ff 00 00 00 00", "r2 = *(u8 *)(r3 - 1)"),
    Row(ldx_mem(BPF_DW, R1, R1, 144),        "79 11 90 00 00 00 00 00", "r1 = *(u64 *)(r1 + 144)"),
    Row(ldx_mem(BPF_DW, R0, R10, -32768),    "79 a0 00 80 00 00 00 00", "r0 = *(u64 *)(r10 - 32768)"),
    Row(ldx_memsx(BPF_B, R1, R2, 0),         "91 21 00 00 00 00 00 00", "r1 = *(s8 *)(r2 + 0)"),
    Row(ldx_memsx(BPF_H, R1, R2, 2),         "89 21 02 00 00 00 00 00", "r1 = *(s16 *)(r2 + 2)"),
    Row(ldx_memsx(BPF_W, R1, R2, 32767),     "81 21 ff 7f 00 00 00 00", "r1 = *(s32 *)(r2 + 32767)"),
    # BPF_STX | BPF_MEM
    Row(stx_mem(BPF_H, R2, R3, 0),           "6b 32 00 00 00 00 00 00", "*(u16 *)(r2 + 0) = r3"),
    Row(stx_mem(BPF_W, R10, R1, -4),         "63 1a fc ff 00 00 00 00", "*(u32 *)(r10 - 4) = r1"),
    Row(stx_mem(BPF_B, R1, R2, 5),           "73 21 05 00 00 00 00 00", "*(u8 *)(r1 + 5) = r2"),
    Row(stx_mem(BPF_DW, R10, R6, -8),        "7b 6a f8 ff 00 00 00 00", "*(u64 *)(r10 - 8) = r6"),
    # BPF_ST | BPF_MEM
    Row(st_mem(BPF_W, R10, -8, 7),           "62 0a f8 ff 07 00 00 00", "*(u32 *)(r10 - 8) = 7"),
    Row(st_mem(BPF_H, R1, 2, 0x86DD),        "6a 01 02 00 dd 86 00 00", "*(u16 *)(r1 + 2) = 34525"),
    Row(st_mem(BPF_B, R1, 0, 6),             "72 01 00 00 06 00 00 00", "*(u8 *)(r1 + 0) = 6"),
    Row(st_mem(BPF_DW, R10, -16, -1),        "7a 0a f0 ff ff ff ff ff", "*(u64 *)(r10 - 16) = -1"),
    # BPF_LD | BPF_IMM | BPF_DW: two slots, high half in the second imm
    Row(ld_imm64(R1, 0x1234),                "18 01 00 00 34 12 00 00 00 00 00 00 00 00 00 00", "r1 = 4660 ll"),
    Row(ld_imm64(R2, 0x1122334455667788),    "18 02 00 00 88 77 66 55 00 00 00 00 44 33 22 11", "r2 = 1234605616436508552 ll"),
    Row(ld_imm64(R0, 2**64 - 1),             "18 00 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff", "r0 = 18446744073709551615 ll"),
    # ... with src BPF_PSEUDO_MAP_FD (imm: the map, its index until a loader puts its fd there)
    # and BPF_PSEUDO_MAP_VALUE (imm: the map, then the offset in its value, in the second slot)
    Row(isa.ld_map_fd(R1, 2),                "18 11 00 00 02 00 00 00 00 00 00 00 00 00 00 00", "r1 = map[2] ll"),
    Row(isa.ld_map_value(R1, 3, 4),          "18 21 00 00 03 00 00 00 00 00 00 00 04 00 00 00", "r1 = map_value[3] + 4 ll"),
    # BPF_STX | BPF_ATOMIC without BPF_FETCH, as clang writes __sync_fetch_and_add
    Row(isa.atomic_op(BPF_W, isa.AluOp.ADD, R0, R1, 0),   "c3 10 00 00 00 00 00 00", "lock *(u32 *)(r0 + 0) += r1"),
    Row(isa.atomic_op(BPF_DW, isa.AluOp.ADD, R1, R2, 8),  "db 21 08 00 00 00 00 00", "lock *(u64 *)(r1 + 8) += r2"),
    Row(isa.atomic_op(BPF_DW, isa.AluOp.OR, R1, R2, 0),   "db 21 00 00 40 00 00 00", "lock *(u64 *)(r1 + 0) |= r2"),
    Row(isa.atomic_op(BPF_W, isa.AluOp.AND, R3, R4, -4),  "c3 43 fc ff 50 00 00 00", "lock *(u32 *)(r3 - 4) &= r4"),
    Row(isa.atomic_op(BPF_DW, isa.AluOp.XOR, R3, R4, 0),  "db 43 00 00 a0 00 00 00", "lock *(u64 *)(r3 + 0) ^= r4"),
    # BPF_LD | BPF_ABS and BPF_IND (legacy packet access)
    Row(ld_abs(BPF_B, 23),                   "30 00 00 00 17 00 00 00", "r0 = *(u8 *)skb[23]"),
    Row(ld_abs(BPF_H, 12),                   "28 00 00 00 0c 00 00 00", "r0 = *(u16 *)skb[12]"),
    Row(ld_abs(BPF_W, 26),                   "20 00 00 00 1a 00 00 00", "r0 = *(u32 *)skb[26]"),
    Row(ld_ind(BPF_B, R1, 4),                "50 10 00 00 04 00 00 00", "r0 = *(u8 *)skb[r1 + 4]"),
    Row(ld_ind(BPF_H, R7, -2),               "48 70 00 00 fe ff ff ff", "r0 = *(u16 *)skb[r7 - 2]"),
    Row(ld_ind(BPF_W, R2, 0),                "40 20 00 00 00 00 00 00", "r0 = *(u32 *)skb[r2 + 0]"),
    # BPF_JMP, immediate source
    Row(jmp_imm(BPF_JEQ, R1, 0x800, -2),     "15 01 fe ff 00 08 00 00", "if r1 == 2048 goto -2"),
    Row(jmp_imm(BPF_JGT, R1, 5, 1),          "25 01 01 00 05 00 00 00", "if r1 > 5 goto +1"),
    Row(jmp_imm(BPF_JGE, R1, 5, 0),          "35 01 00 00 05 00 00 00", "if r1 >= 5 goto +0"),
    Row(jmp_imm(BPF_JSET, R1, 4, 1),         "45 01 01 00 04 00 00 00", "if r1 & 4 goto +1"),
    Row(jmp_imm(BPF_JNE, R1, 17, 3),         "55 01 03 00 11 00 00 00", "if r1 != 17 goto +3"),
    Row(jmp_imm(BPF_JSGT, R1, -1, 1),        "65 01 01 00 ff ff ff ff", "if r1 s> -1 goto +1"),
    Row(jmp_imm(BPF_JSGE, R1, 0, 32767),     "75 01 ff 7f 00 00 00 00", "if r1 s>= 0 goto +32767"),
    Row(jmp_imm(BPF_JLT, R2, 14, 6),         "a5 02 06 00 0e 00 00 00", "if r2 < 14 goto +6"),
    Row(jmp_imm(BPF_JLE, R2, 20, -32768),    "b5 02 00 80 14 00 00 00", "if r2 <= 20 goto -32768"),
    Row(jmp_imm(BPF_JSLT, R1, 0, 1),         "c5 01 01 00 00 00 00 00", "if r1 s< 0 goto +1"),
    Row(jmp_imm(BPF_JSLE, R1, 2, 1),         "d5 01 01 00 02 00 00 00", "if r1 s<= 2 goto +1"),
    # BPF_JMP, register source
    Row(jmp_reg(BPF_JEQ, R1, R2, 1),         "1d 21 01 00 00 00 00 00", "if r1 == r2 goto +1"),
    Row(jmp_reg(BPF_JGT, R2, R3, 5),         "2d 32 05 00 00 00 00 00", "if r2 > r3 goto +5"),
    Row(jmp_reg(BPF_JGE, R3, R2, 7),         "3d 23 07 00 00 00 00 00", "if r3 >= r2 goto +7"),
    Row(jmp_reg(BPF_JSET, R1, R2, 1),        "4d 21 01 00 00 00 00 00", "if r1 & r2 goto +1"),
    Row(jmp_reg(BPF_JNE, R1, R2, -1),        "5d 21 ff ff 00 00 00 00", "if r1 != r2 goto -1"),
    Row(jmp_reg(BPF_JSGT, R1, R2, 1),        "6d 21 01 00 00 00 00 00", "if r1 s> r2 goto +1"),
    Row(jmp_reg(BPF_JSGE, R1, R2, 1),        "7d 21 01 00 00 00 00 00", "if r1 s>= r2 goto +1"),
    Row(jmp_reg(BPF_JLT, R4, R5, 2),         "ad 54 02 00 00 00 00 00", "if r4 < r5 goto +2"),
    Row(jmp_reg(BPF_JLE, R1, R2, 1),         "bd 21 01 00 00 00 00 00", "if r1 <= r2 goto +1"),
    Row(jmp_reg(BPF_JSLT, R1, R2, 1),        "cd 21 01 00 00 00 00 00", "if r1 s< r2 goto +1"),
    Row(jmp_reg(BPF_JSLE, R1, R2, 1),        "dd 21 01 00 00 00 00 00", "if r1 s<= r2 goto +1"),
    # BPF_JMP32, immediate source
    Row(jmp32_imm(BPF_JEQ, R1, 0, 1),        "16 01 01 00 00 00 00 00", "if w1 == 0 goto +1"),
    Row(jmp32_imm(BPF_JGT, R1, 5, 1),        "26 01 01 00 05 00 00 00", "if w1 > 5 goto +1"),
    Row(jmp32_imm(BPF_JGE, R1, 5, 1),        "36 01 01 00 05 00 00 00", "if w1 >= 5 goto +1"),
    Row(jmp32_imm(BPF_JSET, R1, 1, 1),       "46 01 01 00 01 00 00 00", "if w1 & 1 goto +1"),
    Row(jmp32_imm(BPF_JNE, R1, 2, 1),        "56 01 01 00 02 00 00 00", "if w1 != 2 goto +1"),
    Row(jmp32_imm(BPF_JSGT, R1, -3, 0),      "66 01 00 00 fd ff ff ff", "if w1 s> -3 goto +0"),
    Row(jmp32_imm(BPF_JSGE, R1, 0, 1),       "76 01 01 00 00 00 00 00", "if w1 s>= 0 goto +1"),
    Row(jmp32_imm(BPF_JLT, R1, 6, 1),        "a6 01 01 00 06 00 00 00", "if w1 < 6 goto +1"),
    Row(jmp32_imm(BPF_JLE, R1, 6, 1),        "b6 01 01 00 06 00 00 00", "if w1 <= 6 goto +1"),
    Row(jmp32_imm(BPF_JSLT, R1, 0, 1),       "c6 01 01 00 00 00 00 00", "if w1 s< 0 goto +1"),
    Row(jmp32_imm(BPF_JSLE, R1, 0, 1),       "d6 01 01 00 00 00 00 00", "if w1 s<= 0 goto +1"),
    # BPF_JMP32, register source
    Row(jmp32_reg(BPF_JEQ, R1, R2, 1),       "1e 21 01 00 00 00 00 00", "if w1 == w2 goto +1"),
    Row(jmp32_reg(BPF_JGT, R1, R2, 1),       "2e 21 01 00 00 00 00 00", "if w1 > w2 goto +1"),
    Row(jmp32_reg(BPF_JGE, R1, R2, 1),       "3e 21 01 00 00 00 00 00", "if w1 >= w2 goto +1"),
    Row(jmp32_reg(BPF_JSET, R1, R2, 1),      "4e 21 01 00 00 00 00 00", "if w1 & w2 goto +1"),
    Row(jmp32_reg(BPF_JNE, R1, R2, 1),       "5e 21 01 00 00 00 00 00", "if w1 != w2 goto +1"),
    Row(jmp32_reg(BPF_JSGT, R1, R2, 1),      "6e 21 01 00 00 00 00 00", "if w1 s> w2 goto +1"),
    Row(jmp32_reg(BPF_JSGE, R1, R2, 1),      "7e 21 01 00 00 00 00 00", "if w1 s>= w2 goto +1"),
    Row(jmp32_reg(BPF_JLT, R1, R2, 1),       "ae 21 01 00 00 00 00 00", "if w1 < w2 goto +1"),
    Row(jmp32_reg(BPF_JLE, R1, R2, 1),       "be 21 01 00 00 00 00 00", "if w1 <= w2 goto +1"),
    Row(jmp32_reg(BPF_JSLT, R1, R2, 1),      "ce 21 01 00 00 00 00 00", "if w1 s< w2 goto +1"),
    Row(jmp32_reg(BPF_JSLE, R1, R2, 1),      "de 21 01 00 00 00 00 00", "if w1 s<= w2 goto +1"),
    # BPF_JA, BPF_CALL, BPF_EXIT
    Row(ja(3),                               "05 00 03 00 00 00 00 00", "goto +3"),
    Row(ja(-1),                              "05 00 ff ff 00 00 00 00", "goto -1"),
    Row(call(7),                             "85 00 00 00 07 00 00 00", "call 7"),
    Row(call(1),                             "85 00 00 00 01 00 00 00", "call 1"),
    Row(call_rel(3),                         "85 10 00 00 03 00 00 00", "call pc+3"),
    Row(exit_insn(),                         "95 00 00 00 00 00 00 00", "exit"),
]
# fmt: on

ROW_IDS = [row.asm for row in TABLE]


def test_table_covers_every_class_and_operation() -> None:
    opcodes = {row.insn.opcode for row in TABLE}
    assert {op & 0x07 for op in opcodes} == set(Class)
    for cls in (Class.ALU, Class.ALU64):
        for source in (Source.K, Source.X):
            for op in AluOp:
                if op in (AluOp.NEG, AluOp.END) and source == Source.X:
                    continue
                if op == AluOp.END and cls == Class.ALU64:
                    continue
                assert cls | op | source in opcodes, (cls.name, op.name, source.name)
    for cls in (Class.JMP, Class.JMP32):
        for jop in set(JmpOp) - {JmpOp.JA, JmpOp.CALL, JmpOp.EXIT}:
            for source in (Source.K, Source.X):
                assert cls | jop | source in opcodes, (cls.name, jop.name, source.name)
    for size in Size:
        assert Class.LDX | Mode.MEM | size in opcodes
        assert Class.STX | Mode.MEM | size in opcodes
        assert Class.ST | Mode.MEM | size in opcodes


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_encode(row: Row) -> None:
    assert encode(row.insn).hex(" ") == row.hex


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_decode(row: Row) -> None:
    assert decode(bytes.fromhex(row.hex)) == [row.insn]


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_disassemble(row: Row) -> None:
    assert disassemble(row.insn) == row.asm


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_assemble(row: Row) -> None:
    assert assemble(row.asm) == [row.insn]


def test_bytes_text_bytes_over_whole_table() -> None:
    data = bytes.fromhex(" ".join(row.hex for row in TABLE))
    text = listing(decode(data))
    assert encode_program(assemble(text)) == data


# --------------------------------------------------------------------------
# The kernel's names and values


# A list, not a dict: IntEnum members of equal value would collide as keys.
KERNEL_VALUES: list[tuple[IntEnum, int]] = [
    (Class.LD, 0x00), (Class.LDX, 0x01), (Class.ST, 0x02), (Class.STX, 0x03),
    (Class.ALU, 0x04), (Class.JMP, 0x05), (Class.JMP32, 0x06), (Class.ALU64, 0x07),
    (Size.W, 0x00), (Size.H, 0x08), (Size.B, 0x10), (Size.DW, 0x18),
    (Mode.IMM, 0x00), (Mode.ABS, 0x20), (Mode.IND, 0x40), (Mode.MEM, 0x60),
    (Mode.MEMSX, 0x80), (Mode.ATOMIC, 0xC0),
    (Source.K, 0x00), (Source.X, 0x08), (Source.TO_LE, 0x00), (Source.TO_BE, 0x08),
    (AluOp.ADD, 0x00), (AluOp.SUB, 0x10), (AluOp.MUL, 0x20), (AluOp.DIV, 0x30),
    (AluOp.OR, 0x40), (AluOp.AND, 0x50), (AluOp.LSH, 0x60), (AluOp.RSH, 0x70),
    (AluOp.NEG, 0x80), (AluOp.MOD, 0x90), (AluOp.XOR, 0xA0), (AluOp.MOV, 0xB0),
    (AluOp.ARSH, 0xC0), (AluOp.END, 0xD0),
    (JmpOp.JA, 0x00), (JmpOp.JEQ, 0x10), (JmpOp.JGT, 0x20), (JmpOp.JGE, 0x30),
    (JmpOp.JSET, 0x40), (JmpOp.JNE, 0x50), (JmpOp.JSGT, 0x60), (JmpOp.JSGE, 0x70),
    (JmpOp.CALL, 0x80), (JmpOp.EXIT, 0x90), (JmpOp.JLT, 0xA0), (JmpOp.JLE, 0xB0),
    (JmpOp.JSLT, 0xC0), (JmpOp.JSLE, 0xD0),
]  # fmt: skip


def test_enum_values_are_the_kernels() -> None:
    for member, value in KERNEL_VALUES:
        assert member == value, member
    assert [int(r) for r in Reg] == list(range(11))


def test_kernel_named_aliases() -> None:
    from pyfd import isa

    assert isa.BPF_ALU64 is Class.ALU64
    assert isa.BPF_JGT is JmpOp.JGT
    assert isa.BPF_LDX is Class.LDX
    assert isa.BPF_TO_BE is Source.X
    assert isa.BPF_LD_IMM64 == 0x18
    assert isa.BPF_PSEUDO_CALL == 1
    assert isa.R10 is Reg.R10
    assert set(isa.__all__) <= set(dir(isa))


# --------------------------------------------------------------------------
# Instruction fields


def test_ld_imm64_takes_two_slots() -> None:
    insn = ld_imm64(R1, 1)
    assert insn.is_ld_imm64 and insn.slots == 2 and len(encode(insn)) == 16
    assert mov64_imm(R1, 1).slots == 1


def test_instruction_helpers() -> None:
    assert ldx_mem(BPF_W, R1, R1, 0).cls is Class.LDX
    assert jmp_imm(BPF_JEQ, R1, 0, 1).is_jump
    assert ja(1).is_jump
    assert not call(1).is_jump and not exit_insn().is_jump
    assert call_rel(1).is_pseudo_call and not call(1).is_pseudo_call


def test_span_is_kept_but_not_compared() -> None:
    insn = mov64_imm(R1, 1, span="prog.py:3:4")
    assert insn.span == "prog.py:3:4"
    assert insn == mov64_imm(R1, 1)
    assert encode(insn) == encode(mov64_imm(R1, 1))


def test_every_builder_takes_a_span() -> None:
    label = Label("x")
    built = [
        alu64_imm(BPF_ADD, R1, 1, span=1), alu64_reg(BPF_ADD, R1, R2, span=1),
        alu32_imm(BPF_ADD, R1, 1, span=1), alu32_reg(BPF_ADD, R1, R2, span=1),
        mov64_imm(R1, 1, span=1), mov64_reg(R1, R2, span=1),
        mov32_imm(R1, 1, span=1), mov32_reg(R1, R2, span=1),
        neg64(R1, span=1), neg32(R1, span=1), endian(R1, 16, span=1),
        ldx_mem(BPF_W, R1, R2, 0, span=1), ldx_memsx(BPF_W, R1, R2, 0, span=1),
        stx_mem(BPF_W, R1, R2, 0, span=1), st_mem(BPF_W, R1, 0, 1, span=1),
        ld_imm64(R1, 1, span=1), ld_abs(BPF_B, 1, span=1), ld_ind(BPF_B, R1, 1, span=1),
        jmp_imm(BPF_JEQ, R1, 1, label, span=1), jmp_reg(BPF_JEQ, R1, R2, label, span=1),
        jmp32_imm(BPF_JEQ, R1, 1, label, span=1), jmp32_reg(BPF_JEQ, R1, R2, label, span=1),
        ja(label, span=1), call(1, span=1), call_rel(label, span=1), exit_insn(span=1),
    ]  # fmt: skip
    assert all(insn.span == 1 for insn in built)


def test_imm_of_the_other_sign_is_the_same_instruction() -> None:
    # 0xffffffff and -1 encode to the same bits; the kernel sign-extends it.
    assert mov64_imm(R1, 0xFFFFFFFF) == mov64_imm(R1, -1)
    assert mov64_imm(R1, 0xFFFFFFFF).imm == -1
    assert disassemble(mov64_imm(R1, 0xFFFFFFFF)) == "r1 = -1"
    assert ld_imm64(R1, -1) == ld_imm64(R1, 2**64 - 1)
    assert (
        encode(ld_imm64(R1, -(2**63))).hex(" ")
        == "18 01 00 00 00 00 00 00 00 00 00 00 00 00 00 80"
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"off": 0x8000},
        {"off": -0x8001},
        {"imm": 2**32},
        {"imm": -(2**31) - 1},
        {"dst": 11},
        {"src": 11},
        {"dst": -1},
        {"opcode": 0x100},
    ],
    ids=str,
)
def test_out_of_range_field_raises(fields: dict[str, int]) -> None:
    args: dict[str, Any] = {"opcode": 0xB7, "dst": 1, "src": 0, "off": 0, "imm": 0} | fields
    with pytest.raises(EncodeError):
        encode(Instruction(**args))


@pytest.mark.parametrize("imm", [2**64, -(2**63) - 1])
def test_ld_imm64_out_of_range_raises(imm: int) -> None:
    with pytest.raises(EncodeError):
        ld_imm64(R1, imm)


@pytest.mark.parametrize("imm", [2**32 - 1, -(2**31), 2**31 - 1])
def test_imm_range_edges_are_accepted(imm: int) -> None:
    assert len(encode(mov64_imm(R1, imm))) == 8


def test_builders_raise_on_out_of_range_fields() -> None:
    with pytest.raises(EncodeError):
        mov64_imm(Reg.R10 + 1, 0)
    with pytest.raises(EncodeError):
        ldx_mem(BPF_W, R1, R2, 0x8000)
    with pytest.raises(EncodeError):
        jmp_imm(BPF_JEQ, R1, 0, -0x8001)
    with pytest.raises(EncodeError):
        mov32_imm(R1, 2**32)


def test_out_of_range_error_names_the_span() -> None:
    with pytest.raises(EncodeError, match=r"off 32768 out of range.*at prog\.py:7:1"):
        ldx_mem(BPF_W, R1, R2, 0x8000, span="prog.py:7:1")


def test_builders_refuse_misuse() -> None:
    with pytest.raises(ValueError):
        endian(R1, 8)
    with pytest.raises(ValueError):
        alu64_imm(BPF_NEG, R1, 0)
    with pytest.raises(ValueError):
        alu32_reg(AluOp.END, R1, R2)
    with pytest.raises(ValueError):
        jmp_imm(BPF_CALL, R1, 0, 1)
    with pytest.raises(ValueError):
        jmp_reg(BPF_JA, R1, R2, 1)
    with pytest.raises(ValueError):
        ldx_memsx(BPF_DW, R1, R2, 0)
    with pytest.raises(EncodeError):
        Instruction(0xB7, 1, 0, 0, 0, target=Label("x"))
    with pytest.raises(TypeError):
        Instruction(0xB7, 1, 0, 0, "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Label("1abc")


# --------------------------------------------------------------------------
# Decoding


def test_decode_rejects_partial_slot() -> None:
    with pytest.raises(DecodeError):
        decode(bytes(7))


def test_decode_rejects_ld_imm64_without_second_slot() -> None:
    with pytest.raises(DecodeError):
        decode(bytes.fromhex("18 01 00 00 01 00 00 00"))


def test_decode_rejects_ld_imm64_with_reserved_fields() -> None:
    with pytest.raises(DecodeError):
        decode(bytes.fromhex("18 01 00 00 01 00 00 00 00 01 00 00 00 00 00 00"))


def test_decode_rejects_register_above_r10() -> None:
    with pytest.raises(DecodeError):
        decode(bytes.fromhex("bf 0b 00 00 00 00 00 00"))


def test_decode_imm_is_signed_and_ld_imm64_unsigned() -> None:
    assert decode(bytes.fromhex("b7 01 00 00 ff ff ff ff"))[0].imm == -1
    wide = decode(bytes.fromhex("18 01 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff"))
    assert wide[0].imm == 2**64 - 1


# --------------------------------------------------------------------------
# Labels


def test_label_resolution_counts_ld_imm64_as_two_slots() -> None:
    out = Label("out")
    program = resolve(
        [
            jmp_imm(BPF_JEQ, R1, 0, out),  # slot 0
            ld_imm64(R2, 1),  # slots 1-2
            mov64_imm(R0, 1),  # slot 3
            out,
            exit_insn(),  # slot 4
        ]
    )
    assert program[0] == jmp_imm(BPF_JEQ, R1, 0, 3)
    assert program[0].target is None


def test_backward_jump_over_ld_imm64() -> None:
    top = Label("top")
    program = resolve([top, ld_imm64(R2, 1), ja(top)])
    assert program[1] == ja(-3)


def test_label_at_the_end_of_the_stream() -> None:
    end = Label("end")
    assert resolve([ja(end), end]) == [ja(0)]


def test_resolve_keeps_spans() -> None:
    out = Label("out")
    program = resolve([ja(out, span="a.py:1:0"), out, exit_insn()])
    assert program[0].span == "a.py:1:0"


def test_resolve_pseudo_call() -> None:
    func = Label("func")
    program = resolve(
        [call_rel(func), exit_insn(), func, mov64_imm(R0, 0), exit_insn()]
    )
    assert program[0] == call_rel(1)
    assert encode(program[0]).hex(" ") == "85 10 00 00 01 00 00 00"


def test_undefined_label_raises() -> None:
    with pytest.raises(LabelError, match="undefined label 'nowhere'"):
        resolve([ja(Label("nowhere"), span="f.py:2:0"), exit_insn()])


def test_duplicate_label_raises() -> None:
    here = Label("here")
    with pytest.raises(LabelError, match="placed twice"):
        resolve([here, exit_insn(), here, exit_insn()])


def test_jump_offset_beyond_int16_raises() -> None:
    far = Label("far")
    filler = [ld_imm64(R0, 0)] * (2**14)  # 32768 slots
    with pytest.raises(EncodeError, match="outside int16"):
        resolve([ja(far), *filler, far, exit_insn()])
    # One slot less is the furthest a jump reaches.
    near = resolve([ja(far), *filler[:-1], mov64_imm(R0, 0), far, exit_insn()])
    assert near[0].off == 32767


def test_encode_refuses_unresolved_label() -> None:
    with pytest.raises(EncodeError, match="unresolved label"):
        encode(ja(Label("later")))


# --------------------------------------------------------------------------
# Text


def test_listing_format() -> None:
    out = Label("out")
    items: list[Instruction | Label] = [
        ldx_mem(BPF_W, R1, R1, 76),
        ld_imm64(R2, 0x1234),
        jmp_reg(BPF_JGT, R1, R2, out),
        mov64_imm(R0, 0),
        out,
        exit_insn(),
    ]
    assert listing(items).splitlines() == [
        "   0: r1 = *(u32 *)(r1 + 76)",
        "   1: r2 = 4660 ll",
        "   3: if r1 > r2 goto out",
        "   4: r0 = 0",
        "out:",
        "   5: exit",
    ]
    assert listing(resolve(items)).splitlines()[2] == "   3: if r1 > r2 goto +1  # -> 5"
    assert assemble(listing(items)) == resolve(items)
    assert assemble(listing(resolve(items))) == resolve(items)


def test_assemble_program_with_labels_comments_and_slot_numbers() -> None:
    text = """
        ; parse the EtherType
           0: r2 = *(u32 *)(r1 + 76)   # data
        r3 = *(u32 *)(r1 + 80)         // data_end
        r4 = r2
        r4 += 14
        if r4 > r3 goto drop
        r5 = *(u16 *)(r2 + 12)
        r5 = be16 r5
        if r5 == 0x800 goto pass
        r6 = 0x1122334455667788 ll
    drop:
        r0 = 2
        exit
    pass: r0 = 0
        exit
    """
    program = assemble(text)
    # ld_imm64 takes slots 8-9, so drop is slot 10 and pass slot 12.
    assert program[4] == jmp_reg(BPF_JGT, R4, R3, 5)  # slot 4 -> slot 10
    assert program[7] == jmp_imm(BPF_JEQ, R5, 0x800, 4)  # slot 7 -> slot 12
    assert program[8] == ld_imm64(R6, 0x1122334455667788)
    assert len(encode_program(program)) == 14 * 8


def test_assemble_attaches_line_spans() -> None:
    program = assemble("\nr0 = 0\n\n  exit\n")
    assert program[0].span == SourceLine(2, "r0 = 0")
    assert str(program[1].span) == "line 4"


def test_assemble_accepts_llvm_forms() -> None:
    assert assemble("r1 = -1 ll") == [ld_imm64(R1, 2**64 - 1)]
    assert assemble("if r1 == 0x800 goto -2") == [jmp_imm(BPF_JEQ, R1, 2048, -2)]
    assert assemble("goto 3") == [ja(3)]
    assert assemble("r1=r2") == [mov64_reg(R1, R2)]
    assert assemble("call pc-2") == [call_rel(-2)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("r1 = = 2", "cannot parse"),
        ("r11 = 1", "no register r11"),
        ("w1 += r2", "cannot mix"),
        ("if w1 > r2 goto +1", "cannot mix"),
        ("w1 = be16 w1", "expected a r register"),
        ("r1 = be16 r2", "same register"),
        ("r1 = -r2", "same register"),
        ("*(s8 *)(r1 + 0) = r2", "unsigned"),
        ("r1 = *(s64 *)(r2 + 0)", "no 64-bit"),
        ("r1 = 4294967296", "out of range"),
        ("r1 = *(u8 *)(r2 + 32768)", "out of range"),
        ("r1 = be8 r1", "cannot parse"),
        ("r1 = *(u8 *)skb[4]", "write r0"),
    ],
)
def test_assemble_errors(text: str, message: str) -> None:
    with pytest.raises(AssembleError, match=message):
        assemble(text)


def test_assemble_error_names_the_line() -> None:
    with pytest.raises(AssembleError, match=r"line 3: cannot parse 'r1 \?= 2'"):
        assemble("r0 = 0\n\nr1 ?= 2\nexit\n")


def test_assemble_undefined_label_raises() -> None:
    with pytest.raises(
        LabelError, match=r"undefined label 'missing' \(jump at slot 1, line 2\)"
    ):
        assemble("r0 = 0\ngoto missing\nexit\n")


def test_assemble_duplicate_label_raises() -> None:
    with pytest.raises(LabelError):
        assemble_items("a:\nexit\na:\nexit\n")


@pytest.mark.parametrize(
    "insn",
    [
        Instruction(0x3F, 1, 2, 1, 0),  # sdiv (cpu v4): off=1 on BPF_DIV
        Instruction(0xBF, 1, 2, 8, 0),  # movsx (cpu v4): off=8 on BPF_MOV
        Instruction(0xD7, 1, 0, 0, 16),  # bswap16 (cpu v4): BPF_ALU64 | BPF_END
        Instruction(0xDB, 1, 2, 0, 1),  # atomic fetch-add: BPF_FETCH also loads the old value into r2
        Instruction(0x06, 0, 0, 1, 5),  # gotol (cpu v4) with off set: its offset is imm
        Instruction(0x18, 1, 3, 0, 3),  # LD_IMM64 with BPF_PSEUDO_BTF_ID
        Instruction(0xE7, 1, 0, 0, 0),  # no BPF_OP 0xe0
        Instruction(0xB7, 1, 2, 0, 0),  # immediate move with src set
        Instruction(0x61, 1, 2, 0, 5),  # load with imm set
        Instruction(0x85, 0, 2, 0, 5),  # kfunc call (src=BPF_PSEUDO_KFUNC_CALL)
        Instruction(0x95, 0, 0, 1, 0),  # exit with off set
    ],
    ids=lambda insn: f"{insn.opcode:#04x}",
)
def test_disassemble_refuses_lossy_text(insn: Instruction) -> None:
    with pytest.raises(DisassembleError):
        disassemble(insn)


# --------------------------------------------------------------------------
# Properties


regs = st.integers(0, 10)
imm32 = st.integers(-(2**31), 2**31 - 1)
off16 = st.integers(-(2**15), 2**15 - 1)
sizes = st.sampled_from(list(Size))
narrow_sizes = st.sampled_from([Size.B, Size.H, Size.W])
alu_ops = st.sampled_from([op for op in AluOp if op not in (AluOp.NEG, AluOp.END)])
jmp_ops = st.sampled_from(
    [op for op in JmpOp if op not in (JmpOp.JA, JmpOp.CALL, JmpOp.EXIT)]
)

valid_instructions: st.SearchStrategy[Instruction] = st.one_of(
    st.builds(alu64_imm, alu_ops, regs, imm32),
    st.builds(alu64_reg, alu_ops, regs, regs),
    st.builds(alu32_imm, alu_ops, regs, imm32),
    st.builds(alu32_reg, alu_ops, regs, regs),
    st.builds(neg64, regs),
    st.builds(neg32, regs),
    st.builds(endian, regs, st.sampled_from([16, 32, 64]), st.booleans()),
    st.builds(ldx_mem, sizes, regs, regs, off16),
    st.builds(ldx_memsx, narrow_sizes, regs, regs, off16),
    st.builds(stx_mem, sizes, regs, regs, off16),
    st.builds(st_mem, sizes, regs, off16, imm32),
    st.builds(ld_imm64, regs, st.integers(0, 2**64 - 1)),
    st.builds(ld_abs, narrow_sizes, imm32),
    st.builds(ld_ind, narrow_sizes, regs, imm32),
    st.builds(jmp_imm, jmp_ops, regs, imm32, off16),
    st.builds(jmp_reg, jmp_ops, regs, regs, off16),
    st.builds(jmp32_imm, jmp_ops, regs, imm32, off16),
    st.builds(jmp32_reg, jmp_ops, regs, regs, off16),
    st.builds(ja, off16),
    st.builds(call, imm32),
    st.builds(call_rel, imm32),
    st.just(exit_insn()),
)


@given(valid_instructions)
def test_property_encode_decode(insn: Instruction) -> None:
    assert decode(encode(insn)) == [insn]


@given(valid_instructions)
def test_property_text_round_trip(insn: Instruction) -> None:
    assert assemble(disassemble(insn)) == [insn]


@given(st.lists(valid_instructions, max_size=20))
def test_property_program_bytes_text_bytes(program: list[Instruction]) -> None:
    data = encode_program(program)
    assert encode_program(assemble(listing(decode(data)))) == data


@given(st.integers(0, 0xFF), regs, regs, off16, st.integers(-(2**31), 2**32 - 1))
def test_property_any_fields_round_trip(
    opcode: int, dst: int, src: int, off: int, imm: int
) -> None:
    insn = Instruction(opcode, dst, src, off, imm)
    data = encode(insn)
    assert decode(data) == [insn]
    assert int.from_bytes(data[4:8], "little") == imm % 2**32


@given(st.binary(min_size=8, max_size=8))
def test_property_any_slot_bytes_round_trip(data: bytes) -> None:
    if data[0] == 0x18 or data[1] & 0x0F > 10 or data[1] >> 4 > 10:
        with pytest.raises(DecodeError):
            decode(data)
    else:
        assert encode_program(decode(data)) == data


# --------------------------------------------------------------------------
# LLVM as an oracle, where installed (Debian's llvm-14 lacks some forms:
# st with an immediate, JSET with an immediate, cpu v4, legacy skb[r + k]).


LLVM_MC = shutil.which("llvm-mc")
LLVM_OBJDUMP = shutil.which("llvm-objdump")


def _llvm_mc_encoding(asm: str) -> bytes | None:
    assert LLVM_MC is not None
    result = subprocess.run(
        [LLVM_MC, "-triple", "bpfel", "-show-encoding"],
        input=asm + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or "encoding: [" not in result.stdout:
        return None
    listed = result.stdout.split("encoding: [")[1].split("]")[0]
    return bytes(int(byte, 16) for byte in listed.split(","))


@pytest.mark.skipif(LLVM_MC is None, reason="llvm-mc not installed")
def test_llvm_mc_agrees_with_table() -> None:
    checked = 0
    for row in TABLE:
        if row.asm.startswith("call pc") or "skb[r" in row.asm:
            continue  # LLVM spells these differently (see asm.py)
        expected = _llvm_mc_encoding(row.asm)
        if expected is None:
            continue
        assert expected.hex(" ") == row.hex, row.asm
        checked += 1
    assert checked > len(TABLE) // 2


@pytest.mark.skipif(
    LLVM_MC is None or LLVM_OBJDUMP is None,
    reason="llvm-mc or llvm-objdump not installed",
)
def test_llvm_objdump_agrees_with_disassemble(tmp_path: Path) -> None:
    assert LLVM_MC is not None and LLVM_OBJDUMP is not None
    program = [row.insn for row in TABLE]
    (tmp_path / "prog.bin").write_bytes(encode_program(program))
    (tmp_path / "prog.s").write_text('.text\n.incbin "prog.bin"\n')
    subprocess.run(
        [LLVM_MC, "-triple", "bpfel", "-filetype=obj", "prog.s", "-o", "prog.o"],
        cwd=tmp_path,
        check=True,
    )
    dumped = subprocess.run(
        [LLVM_OBJDUMP, "-d", "--no-show-raw-insn", "prog.o"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    theirs: dict[int, str] = {}
    for line in dumped.splitlines():
        number, sep, text = line.partition(":\t")
        if sep and number.strip().isdigit():
            # Drop a symbolic jump target such as " <.text+0x28>".
            theirs[int(number)] = re.sub(r" <[^<>]*>$", "", text.strip())
    checked, slot = 0, 0
    for insn in program:
        ours, other = disassemble(insn), theirs.get(slot, "<unknown>")
        slot += insn.slots
        if other == "<unknown>" or ours.startswith("call pc") or "skb[r" in ours or "map" in ours:
            continue  # the kernel's syntax, not LLVM's (LLVM prints a map reference as a relocated `0 ll`)
        if insn.is_ld_imm64:  # LLVM prints the 64-bit immediate signed
            other_imm = int(other.split("= ")[1].removesuffix(" ll"))
            assert other_imm % 2**64 == insn.imm
            continue
        assert ours == other
        checked += 1
    assert checked > len(program) // 2


# -- opcode bytes from fields, fields from opcode bytes ---------------------------------

OPCODE_ROWS = [
    # composer call, the opcode byte (bpf_common.h: BPF_OP | BPF_SRC | BPF_CLASS, BPF_MODE | BPF_SIZE | BPF_CLASS)
    (lambda: isa.alu_opcode(Class.ALU64, AluOp.ADD, Source.K), 0x07),
    (lambda: isa.alu_opcode(Class.ALU64, AluOp.MOV, Source.X), 0xBF),
    (lambda: isa.alu_opcode(Class.ALU, AluOp.MOV, Source.K), 0xB4),
    (lambda: isa.alu_opcode(Class.ALU, AluOp.END, Source.TO_BE), 0xDC),
    (lambda: isa.jmp_opcode(Class.JMP, JmpOp.JGT, Source.K), 0x25),
    (lambda: isa.jmp_opcode(Class.JMP, JmpOp.JGT, Source.X), 0x2D),
    (lambda: isa.jmp_opcode(Class.JMP32, JmpOp.JA, Source.K), 0x06),
    (lambda: isa.jmp_opcode(Class.JMP, JmpOp.EXIT, Source.K), 0x95),
    (lambda: isa.mem_opcode(Class.LDX, Mode.MEM, Size.W), 0x61),
    (lambda: isa.mem_opcode(Class.STX, Mode.MEM, Size.DW), 0x7B),
    (lambda: isa.mem_opcode(Class.ST, Mode.MEM, Size.H), 0x6A),
    (lambda: isa.mem_opcode(Class.LD, Mode.IMM, Size.DW), 0x18),
]


@pytest.mark.parametrize(("compose", "opcode"), OPCODE_ROWS, ids=[f"{op:#04x}" for _, op in OPCODE_ROWS])
def test_opcode_composers(compose: Callable[[], int], opcode: int) -> None:
    assert compose() == opcode


def test_opcode_field_readers() -> None:
    assert isa.bpf_class(0x2D) is Class.JMP and isa.bpf_op(0x2D) == JmpOp.JGT and isa.bpf_src(0x2D) is Source.X
    assert isa.bpf_class(0x07) is Class.ALU64 and isa.bpf_op(0x07) == AluOp.ADD and isa.bpf_src(0x07) is Source.K
    assert isa.bpf_class(0x61) is Class.LDX


def test_opcode_composers_refuse_a_class_of_the_other_kind() -> None:
    with pytest.raises(ValueError, match="JMP is not an arithmetic class"):
        isa.alu_opcode(Class.JMP, AluOp.ADD, Source.K)
    with pytest.raises(ValueError, match="ALU64 is not a jump class"):
        isa.jmp_opcode(Class.ALU64, JmpOp.JEQ, Source.X)
    with pytest.raises(ValueError, match="JMP32 is not a load/store class"):
        isa.mem_opcode(Class.JMP32, Mode.MEM, Size.B)
