"""`pyfd disasm`: list the instructions of a BPF object, with source lines from .BTF.ext.

Works on any flow dissector ELF object: pyfd's (Python lines), clang's (C
lines, when built with -g), or a hand-made one without BTF (instructions only).
The listing has the style of `pyfd compile --emit asm`: each run of
instructions is preceded by `; FILE:LINE: source text`.
"""

from __future__ import annotations

import os

from .isa import (
    DecodeError,
    DisassembleError,
    Instruction,
    decode,
    disassemble,
)
from .objfile.btf import BtfFormatError, LineInfoRecord, parse_btf_ext
from .objfile.reader import ObjectFile, ObjectFileError, ObjectProgram, printable, read_object

__all__ = ["disassemble_object", "program_listing"]


def _line_info(obj: ObjectFile) -> dict[str, tuple[LineInfoRecord, ...]]:
    """Line info records per section name; empty without .BTF and .BTF.ext."""
    btf, btf_ext = obj.sections.get(".BTF"), obj.sections.get(".BTF.ext")
    if not btf or not btf_ext:
        return {}
    try:
        return {name: info.line_info for name, info in parse_btf_ext(btf_ext, btf).items()}
    except BtfFormatError as exc:
        raise ObjectFileError(f"{obj.path}: malformed .BTF or .BTF.ext: {exc}") from None


def _text(insn: Instruction, slot: int) -> str:
    """One listing line, as isa.listing prints it; raw fields for what has no text form."""
    try:
        text = f"{slot:>4}: {disassemble(insn)}"
    except DisassembleError:
        return (
            f"{slot:>4}: .insn opcode={insn.opcode:#04x} dst=r{insn.dst} src=r{insn.src} "
            f"off={insn.off} imm={insn.imm}  # no text form in pyfd's assembler"
        )
    if insn.target is None and (insn.is_jump or insn.is_pseudo_call):
        relative = insn.jump_offset
        text += f"  # -> {slot + 1 + relative}"
    return text


def program_listing(prog: ObjectProgram, lines: tuple[LineInfoRecord, ...] = ()) -> str:
    """The annotated listing of one program; `lines` are its section's line info records."""
    try:
        insns = decode(prog.code)
    except DecodeError as exc:
        raise ObjectFileError(f"program {prog.name!r}: cannot decode its instructions: {exc}") from None
    # Line info and relocations count bytes from the start of the section.
    by_slot = {
        (record.insn_off - prog.offset) // 8: record
        for record in lines
        if prog.offset <= record.insn_off < prog.offset + len(prog.code)
    }
    relocations: dict[int, list[str]] = {}
    for relocation in prog.relocations:
        relocations.setdefault(relocation.offset // 8, []).append(printable(relocation.symbol))
    out: list[str] = []
    last: tuple[str, int] | None = None
    slot = 0
    for insn in insns:
        record = by_slot.get(slot)
        if record is not None and (record.file_name, record.line) != last:
            last = (record.file_name, record.line)
            where = printable(record.file_name.rsplit("/", 1)[-1]) or "?"
            # Names and source text come from the object: a control byte in
            # them would reach the terminal, so each is escaped (\xNN).
            out.append(f"; {where}:{record.line}: {printable(record.line_text.strip().expandtabs())}")
        text = _text(insn, slot)
        if slot in relocations:
            text += f"  # relocation: {', '.join(relocations[slot])}"
        out.append(text)
        slot += insn.slots
    return "\n".join(out) + "\n"


def disassemble_object(path: str | os.PathLike[str], function: str | None = None) -> str:
    """The listing of every program in an object (or of `function`), with source lines if it has them."""
    obj = read_object(os.fspath(path))
    programs = [obj.program(function)] if function is not None else obj.programs
    lines = _line_info(obj)
    parts: list[str] = []
    for prog in programs:
        records = tuple(
            r for r in lines.get(prog.section, ()) if prog.offset <= r.insn_off < prog.offset + len(prog.code)
        )
        source = "source lines from .BTF.ext" if records else "no line info"
        # A comment, so the listing still reads back as assembly.
        header = f"; {printable(prog.name)}: section {printable(prog.section)}, {prog.insn_count} instructions, {source}"
        parts.append(f"{header}\n{program_listing(prog, records)}")
    return "\n".join(parts)
