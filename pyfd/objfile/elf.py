"""The ELF64 format of BPF objects, and writing programs into one that libbpf loads.

The layout follows what clang emits for `-target bpf` (System V gABI, ELF-64
object file format; libbpf `bpf_object__elf_collect`):

    [0] null section
    [1..] one SHT_PROGBITS, SHF_ALLOC|SHF_EXECINSTR section per program section
    .rel<section>     its relocations, for a program section that has any
    data sections     e.g. `.rodata` and `.maps`, each with symbols of its own
    license           "GPL\\0", symbol `_license`
    extra sections    written exactly as given (e.g. `.BTF`, `.BTF.ext`)
    .symtab           null symbol, then one global symbol per program, per data symbol, `_license`
    .strtab           symbol names
    .shstrtab         section names

libbpf finds a program through a global STT_FUNC symbol in an executable
section: st_value is its offset in the section and st_size its length in bytes.
Everything is written in a fixed order so that the same input gives the same
bytes.
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ..abi import INSN_SIZE as BPF_INSN_SIZE
from ..abi import LICENSE, LICENSE_SECTION, LICENSE_SYMBOL, R_BPF_64_64

__all__ = [
    "LICENSE_SECTION",
    "LICENSE_SYMBOL",
    "SHF",
    "SHT",
    "STB",
    "STT",
    "ElfContents",
    "ElfFormatError",
    "ElfObjectError",
    "ElfSection",
    "ElfSymbol",
    "ProgramSection",
    "DataSection",
    "RawSection",
    "read_elf",
    "write_object",
]

EM_BPF = 247  # e_machine of a BPF object (include/uapi/linux/elf-em.h)
ELF64_REL_SIZE = 16  # sizeof(Elf64_Rel): r_offset, r_info
ET_REL = 1  # relocatable object: what clang -c emits and libbpf requires
EV_CURRENT = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1  # little-endian, the byte order of bpfel and of x86/arm64 hosts
ELFOSABI_NONE = 0
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00  # section indices from here up are special (ABS, COMMON, XINDEX)
ELF_MAGIC = b"\x7fELF"
ELF64_EHDR_SIZE = 64  # sizeof(Elf64_Ehdr)
ELF64_SHDR_SIZE = 64  # sizeof(Elf64_Shdr)

# The license string lives in section LICENSE_SECTION (libbpf reads it there,
# bpf_object__init_license in libbpf.c), and libbpf's static linker wants a
# global object symbol LICENSE_SYMBOL there with BTF (a VAR in a DATASEC of
# the same name); both names are in pyfd.abi.


class SHT(enum.IntEnum):
    """Section header types (sh_type) used by BPF objects."""

    NULL = 0  # unused header entry
    PROGBITS = 1  # program-defined contents: code, license, .BTF, .BTF.ext
    SYMTAB = 2  # symbol table
    STRTAB = 3  # string table
    RELA = 4  # relocations with addends
    NOBITS = 8  # occupies no file space (.bss)
    REL = 9  # relocations without addends (what BPF uses)


class SHF(enum.IntFlag):
    """Section header flags (sh_flags)."""

    NONE = 0
    WRITE = 0x1  # writable at run time
    ALLOC = 0x2  # occupies memory at run time
    EXECINSTR = 0x4  # contains instructions: libbpf looks for programs here
    INFO_LINK = 0x40  # sh_info holds a section index


class STB(enum.IntEnum):
    """Symbol binding (high nibble of st_info)."""

    LOCAL = 0  # not visible outside the object; must precede all globals
    GLOBAL = 1  # visible everywhere; libbpf refuses static programs


class STT(enum.IntEnum):
    """Symbol type (low nibble of st_info)."""

    NOTYPE = 0
    OBJECT = 1  # data object, e.g. `_license`
    FUNC = 2  # function: a BPF program
    SECTION = 3
    FILE = 4


class ElfObjectError(ValueError):
    """The programs or sections given cannot be written as a BPF object."""


# Kernel program names: letters, digits, '_' and '.' (bpf_obj_name_cpy in
# kernel/bpf/syscall.c; a '-' gives EINVAL).
_PROGRAM_NAME = re.compile(r"[A-Za-z0-9_.]+")

# Section names this module writes itself; a program or extra section must not
# take one of them.
_RESERVED_SECTIONS = frozenset({LICENSE_SECTION, ".symtab", ".strtab", ".shstrtab"})


@dataclass(frozen=True)
class ProgramSection:
    """One BPF program: its function name, its ELF section, its code, and its relocations.

    A relocation is (byte offset in the code, symbol): an R_BPF_64_64 on the
    BPF_LD_IMM64 there, against a data symbol of the object (a map, a variable).
    """

    name: str
    section: str
    code: bytes
    relocations: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class DataSection:
    """A data section with global object symbols in it, e.g. `.maps` or `.rodata`: (name, offset, size) each."""

    name: str
    data: bytes
    flags: int
    align: int
    symbols: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True)
class RawSection:
    """A section written as given, e.g. `.BTF` or `.BTF.ext`."""

    name: str
    sh_type: int
    data: bytes
    flags: int = 0
    align: int = 4
    entsize: int = 0


@dataclass(frozen=True)
class ElfHeader:
    """Elf64_Ehdr."""

    FORMAT: ClassVar[str] = "<16sHHIQQQIHHHHHH"
    SIZE: ClassVar[int] = struct.calcsize(FORMAT)

    e_shoff: int
    e_shnum: int
    e_shstrndx: int
    e_type: int = ET_REL
    e_machine: int = EM_BPF
    e_version: int = EV_CURRENT
    e_entry: int = 0
    e_phoff: int = 0
    e_flags: int = 0
    e_phentsize: int = 0
    e_phnum: int = 0

    def pack(self) -> bytes:
        """Encode the header as its 64 bytes."""
        ident = ELF_MAGIC + bytes([ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE])
        return struct.pack(
            self.FORMAT,
            ident.ljust(16, b"\0"),
            self.e_type,
            self.e_machine,
            self.e_version,
            self.e_entry,
            self.e_phoff,
            self.e_shoff,
            self.e_flags,
            self.SIZE,
            self.e_phentsize,
            self.e_phnum,
            SectionHeader.SIZE,
            self.e_shnum,
            self.e_shstrndx,
        )


@dataclass(frozen=True)
class SectionHeader:
    """Elf64_Shdr."""

    FORMAT: ClassVar[str] = "<IIQQQQIIQQ"
    SIZE: ClassVar[int] = struct.calcsize(FORMAT)

    sh_name: int
    sh_type: int
    sh_flags: int
    sh_offset: int
    sh_size: int
    sh_link: int = 0
    sh_info: int = 0
    sh_addralign: int = 1
    sh_entsize: int = 0
    sh_addr: int = 0

    def pack(self) -> bytes:
        """Encode the header as its 64 bytes."""
        return struct.pack(
            self.FORMAT,
            self.sh_name,
            self.sh_type,
            self.sh_flags,
            self.sh_addr,
            self.sh_offset,
            self.sh_size,
            self.sh_link,
            self.sh_info,
            self.sh_addralign,
            self.sh_entsize,
        )


@dataclass(frozen=True)
class Symbol:
    """Elf64_Sym."""

    FORMAT: ClassVar[str] = "<IBBHQQ"
    SIZE: ClassVar[int] = struct.calcsize(FORMAT)

    st_name: int
    binding: STB
    type: STT
    st_shndx: int
    st_value: int = 0
    st_size: int = 0
    st_other: int = 0  # STV_DEFAULT

    def pack(self) -> bytes:
        """Encode the symbol as its 24 bytes."""
        st_info = (self.binding << 4) | self.type
        return struct.pack(
            self.FORMAT,
            self.st_name,
            st_info,
            self.st_other,
            self.st_shndx,
            self.st_value,
            self.st_size,
        )


@dataclass
class StringTable:
    """An ELF string table: starts with an empty string, each name added once."""

    data: bytearray = field(default_factory=lambda: bytearray(b"\0"))
    offsets: dict[str, int] = field(default_factory=lambda: {"": 0})

    def add(self, name: str) -> int:
        """Return the offset of `name`, appending it on first use."""
        if name in self.offsets:
            return self.offsets[name]
        encoded = name.encode()
        if b"\0" in encoded:
            raise ElfObjectError(f"name {name!r} contains a NUL byte")
        offset = len(self.data)
        self.data += encoded + b"\0"
        self.offsets[name] = offset
        return offset


@dataclass(frozen=True)
class _Section:
    """A section before layout: its header fields except offset and name offset."""

    name: str
    sh_type: int
    data: bytes
    flags: int = 0
    align: int = 1
    link: int = 0
    info: int = 0
    entsize: int = 0


def _align(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment if alignment > 1 else offset


def _validate(
    programs: Sequence[ProgramSection],
    license: str,
    extra_sections: Sequence[RawSection],
    data_sections: Sequence[DataSection] = (),
) -> None:
    if not programs:
        raise ElfObjectError("an object needs at least one program")
    seen_programs: set[str] = set()
    for program in programs:
        if not _PROGRAM_NAME.fullmatch(program.name):
            raise ElfObjectError(
                f"program name {program.name!r}: the kernel accepts only letters, "
                "digits, '_' and '.'"
            )
        if program.name == LICENSE_SYMBOL:
            raise ElfObjectError("program name '_license' is the license symbol's")
        if program.name in seen_programs:
            raise ElfObjectError(f"program name {program.name!r} is used twice")
        seen_programs.add(program.name)
        if not program.section or "\0" in program.section:
            raise ElfObjectError(
                f"program {program.name!r}: bad section name {program.section!r}"
            )
        if program.section in _RESERVED_SECTIONS:
            raise ElfObjectError(
                f"program {program.name!r}: section name {program.section!r} is reserved"
            )
        if not program.code or len(program.code) % BPF_INSN_SIZE:
            raise ElfObjectError(
                f"program {program.name!r}: code is {len(program.code)} bytes, "
                f"expected a non-zero multiple of {BPF_INSN_SIZE}"
            )
    if "\0" in license:
        raise ElfObjectError(f"license {license!r} contains a NUL byte")
    symbols: set[str] = set(seen_programs)
    data_names: set[str] = set()
    for section in data_sections:
        if not section.name or "\0" in section.name or section.name in _RESERVED_SECTIONS or section.name in data_names:
            raise ElfObjectError(f"bad or repeated data section name {section.name!r}")
        data_names.add(section.name)
        if section.align < 1 or section.align & (section.align - 1):
            raise ElfObjectError(f"data section {section.name!r}: alignment {section.align} is not a power of two")
        for name, offset, size in section.symbols:
            if name in symbols or name == LICENSE_SYMBOL:
                raise ElfObjectError(f"symbol {name!r} is defined twice")
            if offset < 0 or size < 0 or offset + size > len(section.data):
                raise ElfObjectError(f"symbol {name!r} ({size} bytes at {offset}) is outside section {section.name!r}")
            symbols.add(name)
    for program in programs:
        for offset, name in program.relocations:
            if name not in symbols - seen_programs:
                raise ElfObjectError(f"program {program.name!r}: relocation against {name!r}, which no data section defines")
            if offset % BPF_INSN_SIZE or not 0 <= offset < len(program.code):
                raise ElfObjectError(f"program {program.name!r}: relocation at byte {offset} is not on an instruction")
    program_sections = {program.section for program in programs} | data_names
    program_sections |= {f".rel{program.section}" for program in programs if program.relocations}
    seen_extra: set[str] = set()
    for extra in extra_sections:
        if not extra.name or "\0" in extra.name:
            raise ElfObjectError(f"bad extra section name {extra.name!r}")
        if extra.name in _RESERVED_SECTIONS or extra.name in program_sections:
            raise ElfObjectError(
                f"extra section {extra.name!r} clashes with a section pyfd writes"
            )
        if extra.name in seen_extra:
            raise ElfObjectError(f"extra section {extra.name!r} is given twice")
        seen_extra.add(extra.name)
        if extra.align < 1 or extra.align & (extra.align - 1):
            raise ElfObjectError(
                f"extra section {extra.name!r}: alignment {extra.align} is not a power of two"
            )
        if not 0 <= extra.sh_type < 2**32 or not 0 <= extra.flags < 2**64:
            raise ElfObjectError(
                f"extra section {extra.name!r}: sh_type or flags out of range"
            )


def write_object(
    programs: Sequence[ProgramSection],
    *,
    license: str = LICENSE,
    extra_sections: Sequence[RawSection] = (),
    data_sections: Sequence[DataSection] = (),
) -> bytes:
    """Return an ELF64 EM_BPF relocatable object holding `programs` (and their data and relocations)."""
    _validate(programs, license, extra_sections, data_sections)

    # Program sections in order of first appearance; programs sharing a section
    # name sit at consecutive offsets in it.
    code_by_section: dict[str, bytearray] = {}
    placed: list[tuple[ProgramSection, int]] = []
    for program in programs:
        code = code_by_section.setdefault(program.section, bytearray())
        placed.append((program, len(code)))
        code += program.code

    sections: list[_Section] = [_Section("", SHT.NULL, b"")]
    section_index: dict[str, int] = {}
    for name, code in code_by_section.items():
        section_index[name] = len(sections)
        sections.append(
            _Section(
                name,
                SHT.PROGBITS,
                bytes(code),
                SHF.ALLOC | SHF.EXECINSTR,
                BPF_INSN_SIZE,
            )
        )
    # The relocation sections, filled in once the symbols are numbered.
    relocated = [name for name in code_by_section if any(p.relocations for p in programs if p.section == name)]
    rel_index: dict[str, int] = {}
    for name in relocated:
        rel_index[name] = len(sections)
        sections.append(_Section(f".rel{name}", SHT.REL, b""))
    data_index: dict[str, int] = {}
    for data in data_sections:
        data_index[data.name] = len(sections)
        sections.append(_Section(data.name, SHT.PROGBITS, data.data, data.flags, data.align))
    license_index = len(sections)
    license_data = license.encode() + b"\0"
    sections.append(
        _Section(LICENSE_SECTION, SHT.PROGBITS, license_data, SHF.ALLOC | SHF.WRITE, 1)
    )
    for extra in extra_sections:
        sections.append(
            _Section(
                extra.name,
                extra.sh_type,
                extra.data,
                extra.flags,
                extra.align,
                entsize=extra.entsize,
            )
        )

    # Symbols: the null symbol is the only local one, so sh_info (index of the
    # first non-local symbol) is 1.
    strtab = StringTable()
    symbols = [Symbol(0, STB.LOCAL, STT.NOTYPE, SHN_UNDEF)]
    for program, offset in placed:
        symbols.append(
            Symbol(
                strtab.add(program.name),
                STB.GLOBAL,
                STT.FUNC,
                section_index[program.section],
                offset,
                len(program.code),
            )
        )
    symbol_index: dict[str, int] = {}
    for data in data_sections:
        for name, offset, size in data.symbols:
            symbol_index[name] = len(symbols)
            symbols.append(Symbol(strtab.add(name), STB.GLOBAL, STT.OBJECT, data_index[data.name], offset, size))
    symbols.append(
        Symbol(
            strtab.add(LICENSE_SYMBOL),
            STB.GLOBAL,
            STT.OBJECT,
            license_index,
            0,
            len(license_data),
        )
    )
    first_global = 1

    symtab_index = len(sections)
    strtab_index = symtab_index + 1
    shstrtab_index = symtab_index + 2
    for name in relocated:
        entries = b"".join(
            struct.pack("<QQ", offset + start, symbol_index[symbol] << 32 | R_BPF_64_64)
            for program, start in placed
            if program.section == name
            for offset, symbol in program.relocations
        )
        # sh_link: the symbol table; sh_info: the section relocated (as clang writes .rel sections).
        sections[rel_index[name]] = _Section(
            f".rel{name}", SHT.REL, entries, SHF.INFO_LINK, 8, link=symtab_index, info=section_index[name], entsize=ELF64_REL_SIZE
        )
    sections.append(
        _Section(
            ".symtab",
            SHT.SYMTAB,
            b"".join(s.pack() for s in symbols),
            align=8,
            link=strtab_index,
            info=first_global,
            entsize=Symbol.SIZE,
        )
    )
    sections.append(_Section(".strtab", SHT.STRTAB, bytes(strtab.data)))
    shstrtab = StringTable()
    name_offsets = [shstrtab.add(section.name) for section in sections]
    name_offsets.append(shstrtab.add(".shstrtab"))
    sections.append(_Section(".shstrtab", SHT.STRTAB, bytes(shstrtab.data)))

    # Layout: ELF header, section contents (each at its alignment), then the
    # section header table at an 8-byte boundary.
    body = bytearray()
    headers: list[SectionHeader] = []
    offset = ElfHeader.SIZE
    for section, name_offset in zip(sections, name_offsets, strict=True):
        if section.sh_type == SHT.NULL:
            headers.append(SectionHeader(0, SHT.NULL, 0, 0, 0, sh_addralign=0))
            continue
        start = _align(offset, section.align)
        # SHT_NOBITS takes its size from the data given but no file space.
        contents = b"" if section.sh_type == SHT.NOBITS else section.data
        body += bytes(start - offset) + contents
        offset = start + len(contents)
        headers.append(
            SectionHeader(
                name_offset,
                section.sh_type,
                int(section.flags),
                start,
                len(section.data),
                section.link,
                section.info,
                section.align,
                section.entsize,
            )
        )
    shoff = _align(offset, 8)
    body += bytes(shoff - offset)

    header = ElfHeader(e_shoff=shoff, e_shnum=len(headers), e_shstrndx=shstrtab_index)
    return header.pack() + bytes(body) + b"".join(h.pack() for h in headers)


# -- reading ------------------------------------------------------------------------
#
# What a compile needs of an object it did not write: the llvm backend reads
# the program, its relocations and .BTF/.BTF.ext back out of the object LLVM
# emitted. pyfd.objfile.reader reads any object as libbpf would, with
# pyelftools; this reads a well-formed little-endian ELF64 object and nothing
# more, without it.


class ElfFormatError(ValueError):
    """The bytes are not a little-endian ELF64 object, or a header points outside them."""


@dataclass(frozen=True)
class ElfSection:
    """A section as read: its name, header fields and contents (b"" for SHT_NOBITS)."""

    name: str
    sh_type: int
    flags: int
    data: bytes
    link: int
    info: int


@dataclass(frozen=True)
class ElfSymbol:
    """A symbol as read; a section symbol (no name of its own) is named after its section."""

    name: str
    binding: int
    type: int
    shndx: int
    value: int
    size: int


@dataclass(frozen=True)
class ElfContents:
    """The sections of an object, in header order, and its first symbol table."""

    sections: tuple[ElfSection, ...]
    symbols: tuple[ElfSymbol, ...]

    def index(self, name: str) -> int | None:
        """The index of the first section called `name`."""
        return next((i for i, s in enumerate(self.sections) if s.name == name), None)

    def relocations(self, target: int) -> list[tuple[int, str]]:
        """The relocations of section `target` (SHT_REL), as (offset in the section, symbol name), in offset order."""
        found: list[tuple[int, str]] = []
        for section in self.sections:
            if section.sh_type != SHT.REL or section.info != target:
                continue
            for at in range(0, len(section.data) - ELF64_REL_SIZE + 1, ELF64_REL_SIZE):
                offset, info = struct.unpack_from("<QQ", section.data, at)
                if info >> 32 >= len(self.symbols):
                    raise ElfFormatError(f"relocation at {offset} names symbol {info >> 32} of {len(self.symbols)}")
                found.append((offset, self.symbols[info >> 32].name))
        return sorted(found)


def _string(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    if offset >= len(table) or end < 0:
        raise ElfFormatError(f"string at {offset} is outside its table ({len(table)} bytes)")
    return table[offset:end].decode("utf-8", "replace")


def read_elf(data: bytes) -> ElfContents:
    """The sections and symbols of a little-endian ELF64 object; ElfFormatError if it is not one."""
    if len(data) < ELF64_EHDR_SIZE or not data.startswith(ELF_MAGIC) or data[4] != ELFCLASS64 or data[5] != ELFDATA2LSB:
        raise ElfFormatError("not a little-endian ELF64 file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    if shoff + shnum * ELF64_SHDR_SIZE > len(data) or shstrndx >= shnum:
        raise ElfFormatError(f"section headers ({shnum} at {shoff}) are outside the file ({len(data)} bytes)")
    raw: list[tuple[int, int, int, bytes, int, int]] = []
    for index in range(shnum):
        name, sh_type, flags, _, offset, size, link, info, _, _ = struct.unpack_from(SectionHeader.FORMAT, data, shoff + index * ELF64_SHDR_SIZE)
        if sh_type != SHT.NOBITS and offset + size > len(data):
            raise ElfFormatError(f"section {index} ends at byte {offset + size}, past the file ({len(data)} bytes)")
        raw.append((name, sh_type, flags, b"" if sh_type == SHT.NOBITS else data[offset : offset + size], link, info))
    names = raw[shstrndx][3]
    sections = tuple(ElfSection(_string(names, n), t, f, d, link, info) for n, t, f, d, link, info in raw)
    symtab = next((s for s in sections if s.sh_type == SHT.SYMTAB), None)
    symbols: list[ElfSymbol] = []
    if symtab is not None:
        if symtab.link >= len(sections):
            raise ElfFormatError(f"the symbol table's string table {symtab.link} is past the {len(sections)} sections")
        strings = sections[symtab.link].data
        for at in range(0, len(symtab.data) - Symbol.SIZE + 1, Symbol.SIZE):
            name, st_info, _, shndx, value, size = struct.unpack_from(Symbol.FORMAT, symtab.data, at)
            text = _string(strings, name)
            if not text and 0 < shndx < len(sections):  # a section symbol, as pyfd.objfile.reader names it
                text = sections[shndx].name
            symbols.append(ElfSymbol(text, st_info >> 4, st_info & 0xF, shndx, value, size))
    return ElfContents(sections, tuple(symbols))
