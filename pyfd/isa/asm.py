"""Assembly text in the kernel/LLVM syntax, printed and parsed back.

This is the syntax of ``llvm-objdump -d`` and of the verifier log:
``r1 = *(u32 *)(r1 + 76)``, ``w0 = 5``, ``if r2 > r3 goto +5``, ``exit``.
Immediates print in decimal (as LLVM does): signed 32-bit, and unsigned
64-bit for LD_IMM64 (``r1 = 4660 ll``), matching what decode() returns.
Two forms are the kernel's rather than LLVM 14's: ``call pc+3`` for a
BPF-to-BPF call (the verifier log's syntax; LLVM prints it as a helper call
and loses src) and ``skb[r1 + 4]`` for BPF_IND.

disassemble() refuses an instruction whose text would lose a field (an
unused field set, a cpu v4 variant such as sdiv or movsx, an atomic with
BPF_FETCH), so assemble(disassemble(x)) == [x] holds for everything it
prints. Atomics print as LLVM prints them (``lock *(u64 *)(r1 + 0) += r2``);
a map reference before the loader's relocation as ``r1 = map[0] ll`` (the
map's index in its object) and a pointer into a map's value as
``r1 = map_value[1] + 4 ll``, after the verifier log's ``map[id:N]``. cpu v4's
``gotol +N`` (BPF_JMP32 | BPF_JA, the offset in imm) prints as LLVM prints it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import assert_never

from . import builders as b
from .errors import AssembleError, DisassembleError
from .insn import Instruction, Label
from .opcodes import (
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
    MODE_MASK,
    OP_MASK,
    SIZE_MASK,
    SOURCE_MASK,
    AluOp,
    Class,
    JmpOp,
    Mode,
    Size,
    Source,
)
from .resolve import label_slots, resolve

# Operator of "dst op= src" for each BPF_OP; MOV is plain "=".
_ALU_SYMBOLS: dict[AluOp, str] = {
    AluOp.ADD: "+",
    AluOp.SUB: "-",
    AluOp.MUL: "*",
    AluOp.DIV: "/",
    AluOp.OR: "|",
    AluOp.AND: "&",
    AluOp.LSH: "<<",
    AluOp.RSH: ">>",
    AluOp.MOD: "%",
    AluOp.XOR: "^",
    AluOp.MOV: "",
    AluOp.ARSH: "s>>",
}

# Comparison of "if dst op src goto off" for each conditional BPF_OP.
_JMP_SYMBOLS: dict[JmpOp, str] = {
    JmpOp.JEQ: "==",
    JmpOp.JGT: ">",
    JmpOp.JGE: ">=",
    JmpOp.JSET: "&",
    JmpOp.JNE: "!=",
    JmpOp.JSGT: "s>",
    JmpOp.JSGE: "s>=",
    JmpOp.JLT: "<",
    JmpOp.JLE: "<=",
    JmpOp.JSLT: "s<",
    JmpOp.JSLE: "s<=",
}

_SIZE_BITS: dict[Size, int] = {Size.B: 8, Size.H: 16, Size.W: 32, Size.DW: 64}


# --------------------------------------------------------------------------
# Printing


def disassemble(insn: Instruction) -> str:
    """Return the assembly text of one instruction, e.g. ``r1 += 22``."""
    match insn.cls:
        case Class.ALU | Class.ALU64:
            text = _alu_text(insn)
        case Class.JMP | Class.JMP32:
            text = _jmp_text(insn)
        case Class.LDX:
            text = _ldx_text(insn)
        case Class.ST | Class.STX:
            text = _store_text(insn)
        case Class.LD:
            text = _ld_text(insn)
        case _:
            assert_never(insn.cls)
    if text is None:
        at = "" if insn.span is None else f" (at {insn.span})"
        raise DisassembleError(f"no text form for {_raw(insn)}{at}")
    return text


def listing(items: Iterable[Instruction | Label]) -> str:
    """Return a numbered listing, one ``slot: text`` line per instruction.

    Labels print as ``name:`` lines; a jump with a numeric offset gets its
    absolute target slot as a ``# -> N`` comment. assemble() reads it back.
    """
    lines: list[str] = []
    slot = 0
    for item in items:
        if isinstance(item, Label):
            lines.append(f"{item.name}:")
            continue
        text = f"{slot:>4}: {disassemble(item)}"
        if item.target is None and (item.is_jump or item.is_pseudo_call):
            text += f"  # -> {slot + 1 + item.jump_offset}"
        lines.append(text)
        slot += item.slots
    return "\n".join(lines)


def _raw(insn: Instruction) -> str:
    return (
        f"opcode={insn.opcode:#04x} dst={insn.dst} src={insn.src} "
        f"off={insn.off} imm={insn.imm}"
    )


def _reg(cls: Class, number: int) -> str:
    return f"{'w' if cls in (Class.ALU, Class.JMP32) else 'r'}{number}"


def _mem(type_name: str, base: int, off: int) -> str:
    sign = "-" if off < 0 else "+"
    return f"*({type_name} *)(r{base} {sign} {abs(off)})"


def _target(insn: Instruction) -> str:
    return insn.target.name if insn.target is not None else f"{insn.jump_offset:+d}"


def _alu_text(insn: Instruction) -> str | None:
    cls = insn.cls
    if insn.off != 0:  # cpu v4 sdiv/smod/movsx put a flag in off
        return None
    try:
        op = AluOp(insn.opcode & OP_MASK)
    except ValueError:
        return None
    dst = _reg(cls, insn.dst)
    by_register = insn.opcode & SOURCE_MASK == Source.X
    if op == AluOp.END:
        # BPF_ALU64 | BPF_END is the cpu v4 unconditional bswap.
        if cls != Class.ALU or insn.src != 0 or insn.imm not in (16, 32, 64):
            return None
        order = "be" if by_register else "le"
        return f"r{insn.dst} = {order}{insn.imm} r{insn.dst}"
    if op == AluOp.NEG:
        if by_register or insn.src != 0 or insn.imm != 0:
            return None
        return f"{dst} = -{dst}"
    if by_register:
        if insn.imm != 0:
            return None
        operand = _reg(cls, insn.src)
    else:
        if insn.src != 0:
            return None
        operand = str(insn.imm)
    return f"{dst} {_ALU_SYMBOLS[op]}= {operand}"


def _jmp_text(insn: Instruction) -> str | None:
    cls = insn.cls
    try:
        op = JmpOp(insn.opcode & OP_MASK)
    except ValueError:
        return None
    by_register = insn.opcode & SOURCE_MASK == Source.X
    if insn.is_gotol:  # cpu v4: the offset is in imm
        return f"gotol {_target(insn)}" if insn.src == 0 and insn.dst == 0 and insn.off == 0 else None
    if op in (JmpOp.JA, JmpOp.CALL, JmpOp.EXIT):
        # In JMP32, CALL and EXIT are undefined; with X, callx.
        if cls != Class.JMP or by_register or insn.dst != 0:
            return None
        if op == JmpOp.JA:
            return f"goto {_target(insn)}" if insn.src == 0 and insn.imm == 0 else None
        if op == JmpOp.EXIT:
            return "exit" if insn.src == 0 and insn.off == 0 and insn.imm == 0 else None
        if insn.off != 0:
            return None
        if insn.src == 0:
            return f"call {insn.imm}"
        if insn.src == BPF_PSEUDO_CALL:
            return (
                f"call {insn.target.name}" if insn.target else f"call pc{insn.imm:+d}"
            )
        return None
    if by_register:
        if insn.imm != 0:
            return None
        operand = _reg(cls, insn.src)
    else:
        if insn.src != 0:
            return None
        operand = str(insn.imm)
    return f"if {_reg(cls, insn.dst)} {_JMP_SYMBOLS[op]} {operand} goto {_target(insn)}"


def _ldx_text(insn: Instruction) -> str | None:
    size, mode = Size(insn.opcode & SIZE_MASK), insn.opcode & MODE_MASK
    if insn.imm != 0:
        return None
    if mode == Mode.MEM:
        type_name = f"u{_SIZE_BITS[size]}"
    elif mode == Mode.MEMSX and size != Size.DW:
        type_name = f"s{_SIZE_BITS[size]}"
    else:
        return None
    return f"r{insn.dst} = {_mem(type_name, insn.src, insn.off)}"


_ATOMIC_OPS = {AluOp.ADD: "+", AluOp.OR: "|", AluOp.AND: "&", AluOp.XOR: "^"}


def _atomic_text(insn: Instruction) -> str | None:
    size = Size(insn.opcode & SIZE_MASK)
    if insn.cls != Class.STX or size not in (Size.W, Size.DW):
        return None
    try:
        op = AluOp(insn.imm)  # without BPF_FETCH, which has no text form here
    except ValueError:
        return None
    if op not in _ATOMIC_OPS:
        return None
    src = f"r{insn.src}"  # LLVM names the register r, also for 32 bits
    return f"lock {_mem(f'u{_SIZE_BITS[size]}', insn.dst, insn.off)} {_ATOMIC_OPS[op]}= {src}"


def _store_text(insn: Instruction) -> str | None:
    size, mode = Size(insn.opcode & SIZE_MASK), insn.opcode & MODE_MASK
    if mode == Mode.ATOMIC:
        return _atomic_text(insn)
    if mode != Mode.MEM:
        return None
    place = _mem(f"u{_SIZE_BITS[size]}", insn.dst, insn.off)
    if insn.cls == Class.STX:
        return f"{place} = r{insn.src}" if insn.imm == 0 else None
    return f"{place} = {insn.imm}" if insn.src == 0 else None


def _ld_text(insn: Instruction) -> str | None:
    if insn.is_ld_imm64:
        if insn.off != 0:
            return None
        if insn.src == BPF_PSEUDO_MAP_FD:
            return f"r{insn.dst} = map[{insn.imm}] ll"
        if insn.src == BPF_PSEUDO_MAP_VALUE:
            return f"r{insn.dst} = map_value[{insn.imm & 0xFFFFFFFF}] + {insn.imm >> 32} ll"
        if insn.src != 0:  # another pseudo load (BTF id, function, ...)
            return None
        return f"r{insn.dst} = {insn.imm} ll"
    size, mode = Size(insn.opcode & SIZE_MASK), insn.opcode & MODE_MASK
    if size == Size.DW or insn.dst != 0 or insn.off != 0:
        return None
    type_name = f"u{_SIZE_BITS[size]}"
    if mode == Mode.ABS and insn.src == 0:
        return f"r0 = *({type_name} *)skb[{insn.imm}]"
    if mode == Mode.IND:
        sign = "-" if insn.imm < 0 else "+"
        return f"r0 = *({type_name} *)skb[r{insn.src} {sign} {abs(insn.imm)}]"
    return None


# --------------------------------------------------------------------------
# Parsing


@dataclass(frozen=True)
class SourceLine:
    """The span assemble() attaches to each instruction: a 1-based line number."""

    number: int
    text: str

    def __str__(self) -> str:
        return f"line {self.number}"


_REG_TOKEN = r"[rw]\d+"
_NUM = r"(?:0[xX][0-9a-fA-F]+|\d+)"
_IMM_TOKEN = rf"-?{_NUM}"
_NAME = r"[A-Za-z_.][A-Za-z0-9_.]*"

_REG = rf"({_REG_TOKEN})"
_IMM = rf"({_IMM_TOKEN})"
_OPERAND = rf"({_REG_TOKEN}|{_IMM_TOKEN})"
_TARGET = rf"([+-]?\d+|{_NAME})"
_MEM = rf"\*\(\s*([us])(8|16|32|64)\s*\*\s*\)\s*\(\s*{_REG}\s*([+-])\s*({_NUM})\s*\)"
_SKB = (
    rf"\*\(\s*u(8|16|32)\s*\*\s*\)\s*skb\[\s*(?:{_REG}\s*([+-])\s*)?({_IMM_TOKEN})\s*\]"
)
_JMP_ALT = "|".join(
    re.escape(s) for s in sorted(_JMP_SYMBOLS.values(), key=len, reverse=True)
)
_ALU_ALT = "|".join(
    re.escape(s) for s in sorted(_ALU_SYMBOLS.values(), key=len, reverse=True) if s
)

_COMMENT = re.compile(r"(;|#|//).*")
_SLOT_NUMBER = re.compile(r"^\s*\d+\s*:")
_LABEL = re.compile(rf"^\s*({_NAME})\s*:")

_Handler = Callable[[re.Match[str], object], Instruction]


class _Operands:
    """Parsed operands of one line, checking that registers share one width."""

    def __init__(self) -> None:
        self.width: str | None = None

    def reg(self, token: str, width: str | None = None) -> int:
        letter, number = token[0], int(token[1:])
        if number > 10:
            raise AssembleError(f"no register {token}")
        if width is not None and letter != width:
            raise AssembleError(f"{token}: expected a {width} register")
        if self.width is not None and letter != self.width:
            raise AssembleError(f"{token}: cannot mix r and w registers")
        self.width = letter
        return number


def _int(token: str) -> int:
    return int(token, 0)


def _target_of(token: str) -> int | Label:
    if token[0] in "+-" or token.isdigit():
        return int(token)
    return Label(token)


def _parse_exit(m: re.Match[str], span: object) -> Instruction:
    return b.exit_insn(span=span)


def _parse_call(m: re.Match[str], span: object) -> Instruction:
    return b.call(_int(m[1]), span=span)


def _parse_call_rel(m: re.Match[str], span: object) -> Instruction:
    return b.call_rel(_offset(m[1], m[2]), span=span)


def _parse_call_label(m: re.Match[str], span: object) -> Instruction:
    return b.call_rel(Label(m[1]), span=span)


def _parse_goto(m: re.Match[str], span: object) -> Instruction:
    return b.ja(_target_of(m[1]), span=span)


def _parse_gotol(m: re.Match[str], span: object) -> Instruction:
    return b.gotol(_target_of(m[1]), span=span)


def _parse_if(m: re.Match[str], span: object) -> Instruction:
    ops = _Operands()
    dst = ops.reg(m[1])
    op = next(op for op, sym in _JMP_SYMBOLS.items() if sym == m[2])
    target = _target_of(m[4])
    wide = ops.width == "r"
    if m[3][0] in "rw":
        src = ops.reg(m[3])
        return (b.jmp_reg if wide else b.jmp32_reg)(op, dst, src, target, span=span)
    return (b.jmp_imm if wide else b.jmp32_imm)(op, dst, _int(m[3]), target, span=span)


def _parse_endian(m: re.Match[str], span: object) -> Instruction:
    ops = _Operands()
    dst = ops.reg(m[1], "r")
    if ops.reg(m[4], "r") != dst:
        raise AssembleError("byte swap must name the same register twice")
    return b.endian(dst, int(m[3]), to_be=m[2] == "be", span=span)


def _parse_neg(m: re.Match[str], span: object) -> Instruction:
    ops = _Operands()
    dst = ops.reg(m[1])
    if ops.reg(m[2]) != dst:
        raise AssembleError("negation must name the same register twice")
    return (b.neg64 if ops.width == "r" else b.neg32)(dst, span=span)


def _size(bits: str) -> Size:
    return next(size for size, n in _SIZE_BITS.items() if n == int(bits))


def _offset(sign: str, number: str) -> int:
    return -_int(number) if sign == "-" else _int(number)


def _parse_load(m: re.Match[str], span: object) -> Instruction:
    ops = _Operands()
    dst, signed, size = ops.reg(m[1], "r"), m[2] == "s", _size(m[3])
    src, off = ops.reg(m[4], "r"), _offset(m[5], m[6])
    if signed:
        return b.ldx_memsx(size, dst, src, off, span=span)
    return b.ldx_mem(size, dst, src, off, span=span)


def _parse_store(m: re.Match[str], span: object) -> Instruction:
    ops = _Operands()
    if m[1] != "u":
        raise AssembleError("stores take an unsigned type")
    size, dst, off = _size(m[2]), ops.reg(m[3], "r"), _offset(m[4], m[5])
    if m[6][0] in "rw":
        return b.stx_mem(size, dst, ops.reg(m[6], "r"), off, span=span)
    return b.st_mem(size, dst, off, _int(m[6]), span=span)


def _parse_packet_load(m: re.Match[str], span: object) -> Instruction:
    ops = _Operands()
    if ops.reg(m[1], "r") != 0:
        raise AssembleError("legacy packet loads write r0")
    size = _size(m[2])
    if m[3] is None:
        return b.ld_abs(size, _int(m[5]), span=span)
    return b.ld_ind(size, ops.reg(m[3], "r"), _offset(m[4], m[5]), span=span)


def _parse_ld_imm64(m: re.Match[str], span: object) -> Instruction:
    return b.ld_imm64(_Operands().reg(m[1], "r"), _int(m[2]), span=span)


def _parse_ld_map(m: re.Match[str], span: object) -> Instruction:
    return b.ld_map_fd(_Operands().reg(m[1], "r"), _int(m[2]), span=span)


def _parse_ld_map_value(m: re.Match[str], span: object) -> Instruction:
    return b.ld_map_value(_Operands().reg(m[1], "r"), _int(m[2]), _int(m[3]), span=span)


def _parse_atomic(m: re.Match[str], span: object) -> Instruction:
    ops = _Operands()
    if m[1] != "u":
        raise AssembleError("atomics take an unsigned type")
    size, dst, off = _size(m[2]), ops.reg(m[3], "r"), _offset(m[4], m[5])
    op = next(op for op, sym in _ATOMIC_OPS.items() if sym == m[6])
    src = _Operands().reg(m[7])  # r, as LLVM prints it; w accepted for the 32-bit form
    return b.atomic_op(size, op, dst, src, off, span=span)


def _parse_alu(m: re.Match[str], span: object) -> Instruction:
    ops = _Operands()
    dst = ops.reg(m[1])
    op = next(op for op, sym in _ALU_SYMBOLS.items() if sym == (m[2] or ""))
    wide = ops.width == "r"
    if m[3][0] in "rw":
        src = ops.reg(m[3])
        return (b.alu64_reg if wide else b.alu32_reg)(op, dst, src, span=span)
    return (b.alu64_imm if wide else b.alu32_imm)(op, dst, _int(m[3]), span=span)


# One pattern per instruction shape, tried in order; the first full match wins.
_SYNTAX: list[tuple[re.Pattern[str], _Handler]] = [
    (re.compile(r"exit"), _parse_exit),
    (re.compile(rf"call\s+{_IMM}"), _parse_call),
    (re.compile(r"call\s+pc\s*([+-])\s*(\d+)"), _parse_call_rel),
    (re.compile(rf"call\s+({_NAME})"), _parse_call_label),
    (re.compile(rf"goto\s+{_TARGET}"), _parse_goto),
    (re.compile(rf"gotol\s+{_TARGET}"), _parse_gotol),
    (
        re.compile(rf"if\s+{_REG}\s*({_JMP_ALT})\s*{_OPERAND}\s+goto\s+{_TARGET}"),
        _parse_if,
    ),
    (re.compile(rf"{_REG}\s*=\s*(be|le)(16|32|64)\s+{_REG}"), _parse_endian),
    (re.compile(rf"{_REG}\s*=\s*-\s*{_REG}"), _parse_neg),
    (re.compile(rf"{_REG}\s*=\s*{_MEM}"), _parse_load),
    (re.compile(rf"{_MEM}\s*=\s*{_OPERAND}"), _parse_store),
    (re.compile(rf"{_REG}\s*=\s*{_SKB}"), _parse_packet_load),
    (re.compile(rf"{_REG}\s*=\s*{_IMM}\s+ll"), _parse_ld_imm64),
    (re.compile(rf"{_REG}\s*=\s*map\[\s*({_NUM})\s*\]\s+ll"), _parse_ld_map),
    (re.compile(rf"{_REG}\s*=\s*map_value\[\s*({_NUM})\s*\]\s*\+\s*({_NUM})\s+ll"), _parse_ld_map_value),
    (re.compile(rf"lock\s+{_MEM}\s*([+|&^])=\s*({_REG_TOKEN})"), _parse_atomic),
    (re.compile(rf"{_REG}\s*({_ALU_ALT})?=\s*{_OPERAND}"), _parse_alu),
]


def assemble(text: str) -> list[Instruction]:
    """Parse assembly text, one instruction per line, and resolve its labels.

    Accepts ``;``, ``#`` and ``//`` comments, blank lines, leading ``N:`` slot
    numbers (as listing() prints them) and ``name:`` labels, which jumps and
    BPF-to-BPF calls may name as their target. Each instruction's span is a
    SourceLine.
    """
    return resolve(assemble_items(text))


def assemble_items(text: str) -> list[Instruction | Label]:
    """Parse assembly text into instructions and Label markers, unresolved."""
    items: list[Instruction | Label] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw)
        line = _SLOT_NUMBER.sub("", line, count=1)
        label = _LABEL.match(line)
        if label:
            items.append(Label(label[1]))
            line = line[label.end() :]
        line = line.strip()
        if line:
            items.append(_parse_line(line, SourceLine(number, raw)))
    label_slots(items)  # report a duplicate label before any jump uses it
    return items


def _parse_line(line: str, span: SourceLine) -> Instruction:
    for pattern, handler in _SYNTAX:
        m = pattern.fullmatch(line)
        if m is None:
            continue
        try:
            return handler(m, span)
        except (ValueError, TypeError) as error:
            raise AssembleError(
                f"line {span.number}: {error}: {span.text.strip()!r}"
            ) from error
    raise AssembleError(f"line {span.number}: cannot parse {span.text.strip()!r}")
