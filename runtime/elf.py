"""Read BPF ELF objects: pyfd's own and clang's.

A program is a STT_FUNC symbol in an executable section, as libbpf sees it
(`bpf_object__add_programs`): st_value is its offset in the section and st_size
its length. Relocations against program sections are listed, never applied.
This module never imports the compiler.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import Section, SymbolTableSection

__all__ = [
    "ObjectFile",
    "ObjectFileError",
    "ObjectProgram",
    "Relocation",
    "read_object",
]

BPF_INSN_SIZE = 8  # every instruction slot is 8 bytes (LD_IMM64 takes two)
ELF_MAGIC = b"\x7fELF"
ELF64_EHDR_SIZE = 64
ELF64_SHDR_SIZE = 64
SHF_EXECINSTR = 0x4
SHT_NOBITS = 8
SHN_LORESERVE = 0xFF00  # section indices from here up are special (ABS, COMMON, XINDEX)

# e_machine values worth naming in an error message.
_MACHINES = {
    0: "none",
    3: "x86 (i386)",
    40: "ARM",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
    247: "BPF",
}
EM_BPF = 247


class ObjectFileError(ValueError):
    """The file is not a BPF object pyfd can read; the message names the file."""


class Relocation(NamedTuple):
    """A relocation inside a program: byte offset from the program start, symbol."""

    offset: int
    symbol: str


@dataclass(frozen=True)
class ObjectProgram:
    """One function symbol in an executable section."""

    name: str
    section: str
    code: bytes
    relocations: list[Relocation] = field(default_factory=list)
    offset: int = 0  # bytes from the start of its section (where .BTF.ext insn_off counts from)

    @property
    def insn_count(self) -> int:
        """Number of 8-byte instruction slots (LD_IMM64 counts as two)."""
        return len(self.code) // BPF_INSN_SIZE


@dataclass(frozen=True)
class ObjectFile:
    """The programs, license and raw sections of a BPF object."""

    path: str
    programs: list[ObjectProgram]
    license: str
    sections: dict[str, bytes]
    section_sizes: dict[str, int] = field(default_factory=dict)  # sh_size, also of SHT_NOBITS
    symbols: dict[str, int] = field(default_factory=dict)  # data (STT_OBJECT) symbol -> st_value

    def program(self, name: str | None = None) -> ObjectProgram:
        """Return the program called `name`, or the only program if `name` is None."""
        names = ", ".join(p.name for p in self.programs)
        if name is None:
            if len(self.programs) != 1:
                raise ObjectFileError(
                    f"{self.path}: {len(self.programs)} programs ({names}); name the one to use"
                )
            return self.programs[0]
        for program in self.programs:
            if program.name == name:
                return program
        raise ObjectFileError(f"{self.path}: no program {name!r}; available: {names}")


def _check_bounds(data: bytes, where: str) -> None:
    """Refuse a file cut short before pyelftools reads past its end."""
    if len(data) < ELF64_EHDR_SIZE:
        raise ObjectFileError(
            f"{where}: truncated ELF file: {len(data)} bytes, "
            f"shorter than the {ELF64_EHDR_SIZE}-byte ELF64 header"
        )
    (e_shoff,) = struct.unpack_from("<Q", data, 0x28)
    e_shnum, e_shstrndx = struct.unpack_from("<HH", data, 0x3C)
    table_end = e_shoff + e_shnum * ELF64_SHDR_SIZE
    if table_end > len(data):
        raise ObjectFileError(
            f"{where}: truncated ELF file: the section header table ends at byte "
            f"{table_end} but the file has {len(data)} bytes"
        )
    if e_shnum == 0:
        raise ObjectFileError(f"{where}: ELF file has no sections")
    if e_shstrndx >= e_shnum:
        raise ObjectFileError(
            f"{where}: bad ELF file: section name table index {e_shstrndx} "
            f"is past the {e_shnum} sections"
        )
    for index in range(e_shnum):
        header = e_shoff + index * ELF64_SHDR_SIZE
        (sh_type,) = struct.unpack_from("<I", data, header + 4)
        sh_offset, sh_size = struct.unpack_from("<QQ", data, header + 24)
        if sh_type != SHT_NOBITS and sh_offset + sh_size > len(data):
            raise ObjectFileError(
                f"{where}: truncated ELF file: section {index} ends at byte "
                f"{sh_offset + sh_size} but the file has {len(data)} bytes"
            )


def _check_header(data: bytes, where: str) -> None:
    if not data.startswith(ELF_MAGIC):
        raise ObjectFileError(
            f"{where}: not an ELF file (starts with {data[:4]!r}, expected {ELF_MAGIC!r})"
        )
    if len(data) < 6:
        raise ObjectFileError(f"{where}: truncated ELF file: {len(data)} bytes")
    if data[4] != 2:
        raise ObjectFileError(f"{where}: not a 64-bit ELF file; BPF objects are ELF64")
    if data[5] != 1:
        raise ObjectFileError(
            f"{where}: big-endian ELF file (bpfeb); pyfd reads little-endian BPF objects only"
        )
    _check_bounds(data, where)
    e_type, e_machine = struct.unpack_from("<HH", data, 0x10)
    if e_machine != EM_BPF:
        machine = _MACHINES.get(e_machine, "unknown")
        raise ObjectFileError(
            f"{where}: not a BPF object: e_machine is {e_machine} ({machine}), "
            f"expected {EM_BPF} (EM_BPF)"
        )
    if e_type != 1:
        raise ObjectFileError(
            f"{where}: not a relocatable object: e_type is {e_type}, expected 1 (ET_REL)"
        )


def _symbol_name(elf: ELFFile, symbol: Any) -> str:
    """A symbol's name; a section symbol (empty name) is named after its section."""
    if symbol.name:
        return str(symbol.name)
    shndx = symbol["st_shndx"]
    if isinstance(shndx, int) and 0 < shndx < elf.num_sections():
        return str(elf.get_section(shndx).name)
    return ""


def _read(elf: ELFFile, where: str) -> ObjectFile:
    sections: dict[str, bytes] = {}
    section_sizes: dict[str, int] = {}
    for section in elf.iter_sections():
        if section.name and section.name not in sections:
            sections[section.name] = (
                b"" if section["sh_type"] == "SHT_NOBITS" else section.data()
            )
            section_sizes[section.name] = section["sh_size"]

    license_data = sections.get("license", b"")
    license = license_data.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    symtab = elf.get_section_by_name(".symtab")
    if not isinstance(symtab, SymbolTableSection):
        symtabs = [s for s in elf.iter_sections() if isinstance(s, SymbolTableSection)]
        if not symtabs:
            raise ObjectFileError(
                f"{where}: no symbol table, so no program (stripped object?)"
            )
        symtab = symtabs[0]

    # Function symbols per executable section, in offset order.
    functions: dict[int, list[Any]] = {}
    data_symbols: dict[str, int] = {}
    for symbol in symtab.iter_symbols():
        shndx = symbol["st_shndx"]
        if symbol["st_info"]["type"] == "STT_OBJECT" and symbol.name:
            data_symbols.setdefault(str(symbol.name), symbol["st_value"])
        if symbol["st_info"]["type"] != "STT_FUNC" or not isinstance(shndx, int):
            continue
        if not 0 < shndx < min(elf.num_sections(), SHN_LORESERVE):
            continue
        if not elf.get_section(shndx)["sh_flags"] & SHF_EXECINSTR:
            continue
        functions.setdefault(shndx, []).append(symbol)

    relocations = _relocations_by_section(elf, symtab)
    programs: list[ObjectProgram] = []
    for shndx in sorted(functions):
        section = elf.get_section(shndx)
        data = section.data()
        symbols = sorted(functions[shndx], key=lambda s: (s["st_value"], s.name))
        for position, symbol in enumerate(symbols):
            start = symbol["st_value"]
            size = symbol["st_size"]
            if size == 0:  # hand-written assembly: runs to the next function or the end
                later = [
                    s["st_value"]
                    for s in symbols[position + 1 :]
                    if s["st_value"] > start
                ]
                size = (min(later) if later else len(data)) - start
            end = start + size
            if end > len(data):
                raise ObjectFileError(
                    f"{where}: program {symbol.name!r} at bytes {start}..{end} "
                    f"runs past the end of section {section.name!r} ({len(data)} bytes)"
                )
            if start % BPF_INSN_SIZE or size % BPF_INSN_SIZE:
                raise ObjectFileError(
                    f"{where}: program {symbol.name!r} in {section.name!r} is at offset "
                    f"{start} with {size} bytes, not whole {BPF_INSN_SIZE}-byte instructions"
                )
            program_relocations = [
                Relocation(offset - start, name)
                for offset, name in relocations.get(shndx, [])
                if start <= offset < end
            ]
            programs.append(
                ObjectProgram(
                    str(symbol.name),
                    str(section.name),
                    data[start:end],
                    program_relocations,
                    start,
                )
            )

    if not programs:
        raise ObjectFileError(
            f"{where}: no program: no STT_FUNC symbol in an executable section"
        )
    return ObjectFile(where, programs, license, sections, section_sizes, data_symbols)


def _relocations_by_section(
    elf: ELFFile, symtab: SymbolTableSection
) -> dict[int, list[tuple[int, str]]]:
    """Relocations per target section index, as (section offset, symbol name)."""
    found: dict[int, list[tuple[int, str]]] = {}
    for section in elf.iter_sections():
        if not isinstance(section, RelocationSection):
            continue
        target = section["sh_info"]
        if not 0 < target < elf.num_sections():
            continue
        if not elf.get_section(target)["sh_flags"] & SHF_EXECINSTR:
            continue
        relocation_symtab: Section = elf.get_section(section["sh_link"])
        if not isinstance(relocation_symtab, SymbolTableSection):
            relocation_symtab = symtab
        for relocation in section.iter_relocations():
            symbol = relocation_symtab.get_symbol(relocation["r_info_sym"])
            found.setdefault(target, []).append(
                (relocation["r_offset"], _symbol_name(elf, symbol))
            )
    for entries in found.values():
        entries.sort()
    return found


def read_object(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
) -> ObjectFile:
    """Read a BPF ELF object from a path or from its bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        where = "<bytes>"
    else:
        where = os.fspath(source)
        try:
            with open(where, "rb") as file:
                data = file.read()
        except OSError as error:
            raise ObjectFileError(
                f"{where}: cannot read: {error.strerror or error}"
            ) from error
    _check_header(data, where)
    try:
        return _read(ELFFile(io.BytesIO(data)), where)
    except ObjectFileError:
        raise
    except (
        ELFError,
        struct.error,
        UnicodeDecodeError,
        ValueError,
        IndexError,
        KeyError,
    ) as error:
        # pyelftools raises a mix of its own and construct/stdlib errors for
        # malformed input; the checks above catch the common cases first.
        raise ObjectFileError(f"{where}: malformed ELF file: {error}") from error
