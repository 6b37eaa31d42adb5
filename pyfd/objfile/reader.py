"""Read BPF ELF objects: pyfd's own and clang's.

A program is a STT_FUNC symbol in an executable section, as libbpf sees it
(`bpf_object__add_programs`): st_value is its offset in the section and st_size
its length. Relocations against program sections are listed, never applied:
check_loadable refuses a program that needs them (maps, global data, calls).
Reading needs pyelftools, so this module is imported only when an object is
read; the format's numbers are elf.py's.
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

from ..abi import INSN_SIZE as BPF_INSN_SIZE
from ..abi import LICENSE_SECTION
from ..isa import Class, JmpOp
from .elf import (
    ELF64_EHDR_SIZE,
    ELF64_SHDR_SIZE,
    ELF_MAGIC,
    ELFCLASS64,
    ELFDATA2LSB,
    EM_BPF,
    ET_REL,
    SHF,
    SHN_LORESERVE,
    SHT,
)

__all__ = [
    "AmbiguousProgramError",
    "ObjectFile",
    "ObjectFileError",
    "ObjectProgram",
    "Relocation",
    "check_loadable",
    "printable",
    "read_object",
]

SHF_EXECINSTR = SHF.EXECINSTR
SHT_NOBITS = SHT.NOBITS

# The opcode of a call a relocation can sit on: a helper, or a function
# elsewhere once libbpf links it (BPF_JMP | BPF_CALL, 0x85).
BPF_CALL = Class.JMP | JmpOp.CALL
# Sections libbpf turns into maps (libbpf.c, bpf_object__init_maps and
# bpf_object__init_global_data_maps): BTF-defined maps, legacy struct
# bpf_map_def maps, and global variables.
MAP_SECTIONS = (".maps", "maps")
GLOBAL_DATA_SECTIONS = (".data", ".bss", ".rodata", ".kconfig")

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


class ObjectFileError(ValueError):
    """The file is not a BPF object pyfd can read; the message names the file."""


class Relocation(NamedTuple):
    """A relocation inside a program: byte offset from the program start, symbol, the symbol's section."""

    offset: int
    symbol: str
    section: str = ""  # where the symbol is defined ("" when undefined or special)


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
                raise AmbiguousProgramError(self.path, [p.name for p in self.programs])
            return self.programs[0]
        for program in self.programs:
            if program.name == name:
                return program
        raise ObjectFileError(f"{self.path}: no program {name!r}; available: {names}")


class AmbiguousProgramError(ObjectFileError):
    """The object holds several programs and none was named; `names` lists them."""

    def __init__(self, path: str, names: list[str]) -> None:
        super().__init__(f"{path}: {len(names)} programs ({', '.join(names)}); name the one to use")
        self.path = path
        self.names = names


def _names(names: list[str]) -> str:
    """Distinct names in first-seen order, comma-separated."""
    return ", ".join(dict.fromkeys(names))


def printable(text: str) -> str:
    """`text` with control and other unprintable characters escaped (\\xNN), for messages and listings."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def check_loadable(obj: ObjectFile, prog: ObjectProgram) -> None:
    """Refuse, with ObjectFileError, a program pyfd cannot hand to the kernel as it stands.

    pyfd lists relocations but never applies them: it creates no maps
    (`.maps`, legacy `maps`), no global-data maps (`.data`, `.bss`,
    `.rodata`) and links no functions from other sections. The kernel would
    get such instructions unpatched (`r1 = 0 ll` where a map should be) and
    refuse them with a verifier error that points at correct C, so they are
    refused here with the reason.
    """
    license = obj.sections.get(LICENSE_SECTION, b"").split(b"\0", 1)[0]
    if not license.isascii() or not license.decode("ascii").isprintable():
        raise ObjectFileError(
            f"{obj.path}: the license section holds {license!r}, not printable ASCII text; the "
            'kernel takes the license as a C string such as "GPL"'
        )
    maps: list[str] = []
    data: list[str] = []
    calls: list[str] = []
    other: list[str] = []
    for relocation in prog.relocations:
        opcode = prog.code[relocation.offset] if 0 <= relocation.offset < len(prog.code) else None
        # A section symbol (a call into .text, a static variable) is named after its section.
        same = relocation.section in ("", relocation.symbol)
        named = printable(relocation.symbol) if same else f"{printable(relocation.symbol)} in {relocation.section}"
        if relocation.section in MAP_SECTIONS:
            maps.append(named)
        elif relocation.section.startswith(GLOBAL_DATA_SECTIONS):
            data.append(named)
        elif opcode == BPF_CALL:
            calls.append(named)
        else:
            other.append(f"{named} at instruction {relocation.offset // BPF_INSN_SIZE}")
    if not (maps or data or calls or other):
        return
    uses = []
    if maps:
        uses.append(f"BPF maps ({_names(maps)})")
    if data:
        uses.append(f"global variables, which libbpf turns into maps ({_names(data)})")
    if calls:
        uses.append(f"functions from other sections, which libbpf links in ({_names(calls)})")
    if other:
        uses.append(f"symbols through relocations ({_names(other)})")
    first = prog.relocations[0].offset // BPF_INSN_SIZE
    raise ObjectFileError(
        f"{obj.path}: program {prog.name!r} uses {'; and '.join(uses)}; pyfd does not create maps "
        f"or apply relocations yet, so the kernel would get {len(prog.relocations)} unpatched "
        f"instruction{'s' if len(prog.relocations) != 1 else ''} (the first at {first}) and refuse "
        "the program; load this object with libbpf (e.g. `bpftool prog loadall OBJECT DIR type flow_dissector`)"
    )


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
    if data[4] != ELFCLASS64:
        raise ObjectFileError(f"{where}: not a 64-bit ELF file; BPF objects are ELF64")
    if data[5] != ELFDATA2LSB:
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
    if e_type != ET_REL:
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

    license_data = sections.get(LICENSE_SECTION, b"")
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
                Relocation(offset - start, name, where)
                for offset, name, where in relocations.get(shndx, [])
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


def _symbol_section(elf: ELFFile, symbol: Any) -> str:
    """The name of the section a symbol is defined in; "" when undefined or special."""
    shndx = symbol["st_shndx"]
    if isinstance(shndx, int) and 0 < shndx < min(elf.num_sections(), SHN_LORESERVE):
        return str(elf.get_section(shndx).name)
    return ""


def _relocations_by_section(
    elf: ELFFile, symtab: SymbolTableSection
) -> dict[int, list[tuple[int, str, str]]]:
    """Relocations per target section index, as (section offset, symbol name, symbol's section)."""
    found: dict[int, list[tuple[int, str, str]]] = {}
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
                (relocation["r_offset"], _symbol_name(elf, symbol), _symbol_section(elf, symbol))
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
