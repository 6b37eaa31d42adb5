"""Read BPF ELF objects: pyfd's own and clang's.

A program is a STT_FUNC symbol in an executable section, as libbpf sees it
(`bpf_object__add_programs`): st_value is its offset in the section and st_size
its length. Maps are read as libbpf reads them (libbpf.c,
bpf_object__init_user_btf_maps, bpf_object__init_global_data_maps): each
variable of `.maps` is a struct whose members BTF alone describes
(`__uint(type, BPF_MAP_TYPE_HASH)` is `int (*type)[1]`), each legacy `maps`
symbol a `struct bpf_map_def`, and each non-empty `.data*`, `.rodata*` and
`.bss*` section a single-entry ARRAY map. Relocations against program sections
are resolved here into `MapReference`s (which instruction needs which map),
never applied: the runtime patches the fds in; check_loadable refuses what is
left (calls into other sections, symbols that are no map). Reading needs
pyelftools, so this module is imported only when an object is read; the
format's numbers are elf.py's.
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

from ..abi import (
    BPF_F_RDONLY_PROG,
    BSS_SECTION,
    DATA_SECTION,
    LEGACY_MAPS_SECTION,
    LIBBPF_PIN_BY_NAME,
    LIBBPF_PIN_NONE,
    LICENSE_SECTION,
    MAPS_SECTION,
    RODATA_SECTION,
    MapType,
)
from ..abi import INSN_SIZE as BPF_INSN_SIZE
from ..isa import Class, JmpOp, Mode, Size
from . import btf as btf_format
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
    "DataVariable",
    "MapDefinition",
    "MapReference",
    "ObjectFile",
    "ObjectFileError",
    "ObjectProgram",
    "Relocation",
    "check_loadable",
    "map_references",
    "printable",
    "read_object",
]

SHF_EXECINSTR = SHF.EXECINSTR
SHT_NOBITS = SHT.NOBITS

# The opcode of a call a relocation can sit on: a helper, or a function
# elsewhere once libbpf links it (BPF_JMP | BPF_CALL, 0x85).
BPF_CALL = Class.JMP | JmpOp.CALL
# The first slot of an ld_imm64 (BPF_LD | BPF_IMM | BPF_DW, 0x18): the only
# instruction a map relocation may sit on (libbpf: is_ldimm64_insn).
BPF_LD_IMM64 = Class.LD | Mode.IMM | Size.DW
# Sections libbpf turns into maps (libbpf.c, bpf_object__init_maps and
# bpf_object__init_global_data_maps): BTF-defined maps, legacy struct
# bpf_map_def maps, and global variables.
MAP_SECTIONS = (MAPS_SECTION, LEGACY_MAPS_SECTION)
GLOBAL_DATA_SECTIONS = (DATA_SECTION, BSS_SECTION, RODATA_SECTION, ".kconfig")
# struct bpf_map_def of a legacy `maps` section: type, key_size, value_size,
# max_entries, map_flags (u32 each); later fields (inner_map_idx, numa_node) are optional.
_LEGACY_MAP_DEF = struct.Struct("<IIIII")
# A BPF pointer, as a `values` slot of a prog array is (libbpf: bpf_ptr_sz).
_BPF_PTR_SIZE = 8

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
    value: int = 0  # the symbol's st_value: its offset in that section


@dataclass(frozen=True)
class DataVariable:
    """A global variable of a data section, from its BTF VAR: name, place, and integer type if it is one."""

    name: str
    offset: int  # bytes from the start of the section
    size: int
    type_id: int  # the VAR's type (modifiers and typedefs included)
    int_size: int | None = None  # bytes of the integer (or enum) under the modifiers; None: not an integer
    signed: bool = False
    static: bool = False  # BTF_VAR_STATIC: not visible to a skeleton


@dataclass(frozen=True)
class MapDefinition:
    """A map an object declares: what BPF_MAP_CREATE needs, and where its symbol is.

    `name` is the map's name in the object: the variable's name for a map of
    `.maps` or `maps`, the section's name (`.rodata`) for global data.
    """

    name: str
    type: int  # MapType
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int = 0
    numa_node: int = 0
    map_extra: int = 0
    pinning: int = LIBBPF_PIN_NONE
    btf_key_type_id: int = 0  # 0: no BTF type (key_size only)
    btf_value_type_id: int = 0
    section: str = MAPS_SECTION
    offset: int = 0  # of the map's symbol in its section (global data: 0)
    size: int = 0  # bytes the definition takes in its section
    slots: tuple[tuple[int, str], ...] = ()  # prog array: (index, program) from `__array(values, ...)`
    initial: bytes | None = None  # global data: the section's bytes (None: zeros, as .bss)
    variables: tuple[DataVariable, ...] = ()  # global data: the section's variables from BTF

    @property
    def global_data(self) -> bool:
        """True for the map of a `.data`, `.rodata` or `.bss` section."""
        return self.section not in MAP_SECTIONS

    @property
    def read_only(self) -> bool:
        """True for `.rodata`: created BPF_F_RDONLY_PROG, then frozen after its bytes are written."""
        return _is_section(self.section, RODATA_SECTION)

    @property
    def type_name(self) -> str:
        """The map type's name (`hash`, `prog_array`), as bpftool prints it."""
        try:
            return MapType(self.type).name.lower()
        except ValueError:
            return f"type {self.type}"


class MapReference(NamedTuple):
    """One ld_imm64 of a program that needs a map: `r = map` (value_offset None) or `r = &map[0] + value_offset`."""

    insn: int  # slot index from the program's start
    map: str  # MapDefinition.name
    value_offset: int | None = None  # BPF_PSEUDO_MAP_VALUE offset; None: BPF_PSEUDO_MAP_FD


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
    maps: tuple[MapDefinition, ...] = ()  # BTF-defined and legacy maps, then global data, in libbpf's order
    btf: bytes | None = None  # .BTF as the kernel takes it (DATASEC sizes and offsets filled in); None without
    # Why the maps could not be read ("" when they could): such an object can
    # still be listed (`pyfd disasm`), but not loaded; check_loadable raises it.
    map_error: str = ""

    def map(self, name: str) -> MapDefinition:
        """The map called `name` (a variable of `.maps`, or a section such as `.rodata`)."""
        if self.map_error:
            raise ObjectFileError(self.map_error)
        for definition in self.maps:
            if definition.name == name:
                return definition
        names = ", ".join(m.name for m in self.maps) or "none"
        raise ObjectFileError(f"{self.path}: no map {name!r}; the object's maps: {names}")

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


def _is_section(name: str, base: str) -> bool:
    """Whether section `name` is `base` or one of its custom variants (`.rodata.config`), as libbpf groups them."""
    return name == base or name.startswith(base + ".")


def map_references(obj: ObjectFile, prog: ObjectProgram) -> list[MapReference]:
    """Resolve the relocations of `prog` against the object's maps, as libbpf does (bpf_program__record_reloc).

    A relocation against a symbol of `.maps` (or legacy `maps`) names the map
    whose definition starts at the symbol's offset: the loader writes the map's
    fd into the ld_imm64 (BPF_PSEUDO_MAP_FD). One against a global-data section
    names that section's map and an offset into its value: the symbol's offset
    plus the addend the compiler left in the instruction's imm (a static
    variable is reached through the section symbol and the addend alone), and
    the loader writes BPF_PSEUDO_MAP_VALUE. Relocations that are not map
    references (calls, externs) are left out: check_loadable refuses them.
    Raises ObjectFileError for a map relocation that cannot be resolved, or
    for maps that could not be read (ObjectFile.map_error).
    """
    if obj.map_error:
        raise ObjectFileError(obj.map_error)
    found: list[MapReference] = []
    for relocation in prog.relocations:
        section = relocation.section
        is_maps = section in MAP_SECTIONS
        is_data = not is_maps and any(m.global_data and m.section == section for m in obj.maps)
        if not (is_maps or is_data):
            continue
        where = f"{obj.path}: program {prog.name!r}, instruction {relocation.offset // BPF_INSN_SIZE}"
        if relocation.offset % BPF_INSN_SIZE or relocation.offset + 2 * BPF_INSN_SIZE > len(prog.code):
            raise ObjectFileError(f"{where}: a relocation against {printable(relocation.symbol)!r} is not on a whole ld_imm64 instruction")
        opcode = prog.code[relocation.offset]
        if opcode != BPF_LD_IMM64:
            raise ObjectFileError(
                f"{where}: a relocation against map {printable(relocation.symbol)!r} sits on opcode {opcode:#04x}, "
                f"not on an ld_imm64 ({BPF_LD_IMM64:#04x}): only `r = map` instructions can take a map"
            )
        insn = relocation.offset // BPF_INSN_SIZE
        if is_maps:
            target = next((m for m in obj.maps if m.section == section and m.offset == relocation.value), None)
            if target is None:
                raise ObjectFileError(
                    f"{where}: relocation against {printable(relocation.symbol)!r} at offset {relocation.value} of "
                    f"{section}, where no map definition starts"
                )
            found.append(MapReference(insn, target.name))
            continue
        data_map = next(m for m in obj.maps if m.global_data and m.section == section)
        (addend,) = struct.unpack_from("<i", prog.code, relocation.offset + 4)
        offset = addend + relocation.value
        if not 0 <= offset < max(data_map.value_size, 1):
            raise ObjectFileError(
                f"{where}: relocation against {printable(relocation.symbol)!r} points at byte {offset} of "
                f"{section}, which has {data_map.value_size} bytes"
            )
        found.append(MapReference(insn, data_map.name, offset))
    return found


def check_loadable(obj: ObjectFile, prog: ObjectProgram) -> None:
    """Refuse, with ObjectFileError, a program pyfd cannot hand to the kernel as it stands.

    Map and global-data relocations are resolved (map_references) and the
    runtime patches them. pyfd links no functions from other sections and
    knows no externs: the kernel would get those instructions unpatched (a
    call to nowhere, `r1 = 0 ll` for a kconfig value) and refuse them with a
    verifier error that points at correct C, so they are refused here with
    the reason. Legacy `maps` definitions of a program's maps are fine.
    """
    license = obj.sections.get(LICENSE_SECTION, b"").split(b"\0", 1)[0]
    if not license.isascii() or not license.decode("ascii").isprintable():
        raise ObjectFileError(
            f"{obj.path}: the license section holds {license!r}, not printable ASCII text; the "
            'kernel takes the license as a C string such as "GPL"'
        )
    resolved = {reference.insn for reference in map_references(obj, prog)}
    calls: list[str] = []
    data: list[str] = []
    other: list[str] = []
    unpatched: list[Relocation] = []
    for relocation in prog.relocations:
        if relocation.offset // BPF_INSN_SIZE in resolved and relocation.offset % BPF_INSN_SIZE == 0:
            continue
        unpatched.append(relocation)
        opcode = prog.code[relocation.offset] if 0 <= relocation.offset < len(prog.code) else None
        # A section symbol (a call into .text, a static variable) is named after its section.
        same = relocation.section in ("", relocation.symbol)
        named = printable(relocation.symbol) if same else f"{printable(relocation.symbol)} in {relocation.section}"
        if opcode == BPF_CALL:
            calls.append(named)
        elif relocation.section.startswith(GLOBAL_DATA_SECTIONS) or relocation.section == "":
            data.append(named)
        else:
            other.append(f"{named} at instruction {relocation.offset // BPF_INSN_SIZE}")
    if not unpatched:
        return
    uses = []
    if calls:
        uses.append(f"functions from other sections, which libbpf links in ({_names(calls)})")
    if data:
        uses.append(f"external or kernel-config symbols, which libbpf resolves ({_names(data)})")
    if other:
        uses.append(f"symbols through relocations ({_names(other)})")
    first = unpatched[0].offset // BPF_INSN_SIZE
    raise ObjectFileError(
        f"{obj.path}: program {prog.name!r} uses {'; and '.join(uses)}; pyfd creates maps and global "
        f"variables but links no functions and resolves no externs, so the kernel would get {len(unpatched)} "
        f"unpatched instruction{'s' if len(unpatched) != 1 else ''} (the first at {first}) and refuse "
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
    objects: list[_Symbol] = []  # named STT_OBJECT symbols: maps and variables
    for symbol in symtab.iter_symbols():
        shndx = symbol["st_shndx"]
        if symbol["st_info"]["type"] == "STT_OBJECT" and symbol.name:
            data_symbols.setdefault(str(symbol.name), symbol["st_value"])
            objects.append(_Symbol(str(symbol.name), _symbol_section(elf, symbol), symbol["st_value"], symbol["st_size"]))
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
                Relocation(offset - start, name, where, value)
                for offset, name, where, value in relocations.get(shndx, [])
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
    maps_index = next((i for i, sec in enumerate(elf.iter_sections()) if sec.name == MAPS_SECTION), None)
    maps_relocations = relocations.get(maps_index, []) if maps_index is not None else []
    map_error = ""
    btf: tuple[bytes, btf_format.Btf] | None = None
    maps: tuple[MapDefinition, ...] = ()
    try:
        btf = _object_btf(sections, section_sizes, data_symbols, where)
        maps = _read_maps(elf, where, sections, btf, objects, programs, maps_relocations)
    except ObjectFileError as exc:
        map_error = str(exc)
    except (btf_format.BtfError, struct.error, ValueError, IndexError, KeyError) as exc:
        map_error = f"{where}: malformed map definitions: {exc}"
    return ObjectFile(
        where,
        programs,
        license,
        sections,
        section_sizes,
        data_symbols,
        maps,
        None if btf is None else btf[0],
        map_error,
    )


def _symbol_section(elf: ELFFile, symbol: Any) -> str:
    """The name of the section a symbol is defined in; "" when undefined or special."""
    shndx = symbol["st_shndx"]
    if isinstance(shndx, int) and 0 < shndx < min(elf.num_sections(), SHN_LORESERVE):
        return str(elf.get_section(shndx).name)
    return ""


def _relocations_by_section(
    elf: ELFFile, symtab: SymbolTableSection
) -> dict[int, list[tuple[int, str, str, int]]]:
    """Relocations per target section index, as (section offset, symbol name, symbol's section, symbol value).

    Kept for executable sections and for `.maps`, whose relocations fill
    prog-array slots (`__array(values, ...)`), as libbpf keeps them.
    """
    found: dict[int, list[tuple[int, str, str, int]]] = {}
    for section in elf.iter_sections():
        if not isinstance(section, RelocationSection):
            continue
        target = section["sh_info"]
        if not 0 < target < elf.num_sections():
            continue
        target_section = elf.get_section(target)
        if not target_section["sh_flags"] & SHF_EXECINSTR and target_section.name != MAPS_SECTION:
            continue
        relocation_symtab: Section = elf.get_section(section["sh_link"])
        if not isinstance(relocation_symtab, SymbolTableSection):
            relocation_symtab = symtab
        for relocation in section.iter_relocations():
            symbol = relocation_symtab.get_symbol(relocation["r_info_sym"])
            found.setdefault(target, []).append(
                (relocation["r_offset"], _symbol_name(elf, symbol), _symbol_section(elf, symbol), symbol["st_value"])
            )
    for entries in found.values():
        entries.sort()
    return found


# --- maps ------------------------------------------------------------------------------


class _Symbol(NamedTuple):
    """A named data symbol: where it is and how big."""

    name: str
    section: str
    value: int
    size: int


def _object_btf(
    sections: dict[str, bytes], section_sizes: dict[str, int], symbols: dict[str, int], where: str
) -> tuple[bytes, btf_format.Btf] | None:
    """The object's .BTF with what LLVM leaves to the loader filled in, and its decoding; None without .BTF.

    Malformed BTF is an error only where maps need it: an object without maps
    keeps loading as plain instructions, as before (its BTF is checked when
    its line info is used).
    """
    raw = sections.get(".BTF")
    if not raw:
        return None
    try:
        fixed = btf_format.fixup_datasecs(raw, section_sizes, symbols)
        return fixed, btf_format.decode_btf(fixed)
    except btf_format.BtfError as exc:
        if MAPS_SECTION in sections:
            raise ObjectFileError(f"{where}: malformed .BTF, which describes the maps of {MAPS_SECTION}: {exc}") from None
        return None


def _skip_modifiers(btf: btf_format.Btf, type_id: int) -> tuple[int, btf_format.BtfType | None]:
    """Follow typedefs and modifiers (const, volatile, ...) to the type under them; (0, None) is void."""
    for _ in range(len(btf.types) + 1):  # a cycle of modifiers is malformed BTF
        if type_id == 0:
            return 0, None
        found = btf.type_by_id(type_id)
        if isinstance(found, btf_format.ModifierType):
            type_id = found.type
            continue
        return type_id, found
    raise btf_format.BtfError(f"BTF type {type_id}: a cycle of typedefs or modifiers")


def _type_size(btf: btf_format.Btf, type_id: int) -> int:
    """sizeof the BTF type `type_id` (libbpf's btf__resolve_size)."""
    size = 1
    for _ in range(len(btf.types) + 1):
        type_id, found = _skip_modifiers(btf, type_id)
        match found:
            case btf_format.IntType() | btf_format.CompositeType() | btf_format.EnumType() | btf_format.Enum64Type():
                return size * found.size
            case btf_format.FloatType() | btf_format.DatasecType():
                return size * found.size
            case btf_format.PtrType():
                return size * _BPF_PTR_SIZE
            case btf_format.ArrayType():
                size *= found.nelems
                type_id = found.type
                continue
            case btf_format.VarType():
                type_id = found.type
                continue
            case None:
                raise btf_format.BtfError("void has no size")
            case _:
                raise btf_format.BtfError(f"a {type(found).__name__} has no size")
    raise btf_format.BtfError(f"BTF type {type_id}: a cycle of arrays")


def _integer(btf: btf_format.Btf, type_id: int) -> tuple[int, bool] | None:
    """(bytes, signed) of an integer or enum type under its modifiers; None for anything else."""
    _, found = _skip_modifiers(btf, type_id)
    if isinstance(found, btf_format.IntType) and found.offset == 0 and found.bits == found.size * 8:
        return found.size, bool(found.encoding & btf_format.IntEncoding.SIGNED)
    if isinstance(found, (btf_format.EnumType, btf_format.Enum64Type)):
        return found.size, found.signed
    return None


def _kind(found: btf_format.BtfType | None) -> str:
    """A BTF type's kind as libbpf's messages name it."""
    if found is None:
        return "void"
    if isinstance(found, btf_format.ModifierType):
        return found.kind.name
    if isinstance(found, btf_format.CompositeType):
        return "UNION" if found.union else "STRUCT"
    names = {
        btf_format.IntType: "INT", btf_format.PtrType: "PTR", btf_format.ArrayType: "ARRAY",
        btf_format.EnumType: "ENUM", btf_format.Enum64Type: "ENUM64", btf_format.FwdType: "FWD",
        btf_format.FuncProtoType: "FUNC_PROTO", btf_format.FuncType: "FUNC", btf_format.VarType: "VAR",
        btf_format.DatasecType: "DATASEC", btf_format.FloatType: "FLOAT", btf_format.DeclTagType: "DECL_TAG",
    }
    return names.get(type(found), type(found).__name__)


class _MapDefError(Exception):
    """A malformed member of one BTF map definition (the caller adds the file and map)."""


def _member_int(btf: btf_format.Btf, member: btf_format.Member) -> int:
    """The value of `__uint(name, value)`, which BTF spells `int (*name)[value]` (libbpf: get_map_field_int)."""
    _, pointer = _skip_modifiers(btf, member.type)
    if not isinstance(pointer, btf_format.PtrType):
        raise _MapDefError(f"`{member.name}` should be `__uint({member.name}, N)`, a pointer to an array; it is a {_kind(pointer)}")
    array = btf.type_by_id(pointer.type) if pointer.type else None
    if not isinstance(array, btf_format.ArrayType):
        raise _MapDefError(f"`{member.name}` should be `__uint({member.name}, N)`, a pointer to an array; it points to a {_kind(array)}")
    return array.nelems


def _member_long(btf: btf_format.Btf, member: btf_format.Member) -> int:
    """The value of `__ulong(name, value)` (an enum of one value) or of `__uint` (libbpf: get_map_field_long)."""
    _, found = _skip_modifiers(btf, member.type)
    if isinstance(found, btf_format.PtrType):
        return _member_int(btf, member)
    if isinstance(found, (btf_format.EnumType, btf_format.Enum64Type)) and len(found.values) == 1:
        return found.values[0][1] & 0xFFFFFFFFFFFFFFFF
    raise _MapDefError(f"`{member.name}` should be `__ulong({member.name}, N)`, an enum of one value; it is a {_kind(found)}")


def _member_type(btf: btf_format.Btf, member: btf_format.Member) -> tuple[int, int]:
    """(type id, size) of `__type(name, T)`, which BTF spells `T *name`."""
    pointer = btf.type_by_id(member.type) if member.type else None
    if not isinstance(pointer, btf_format.PtrType):
        raise _MapDefError(f"`{member.name}` should be `__type({member.name}, T)`, a pointer; it is a {_kind(pointer)}")
    try:
        return pointer.type, _type_size(btf, pointer.type)
    except btf_format.BtfError as exc:
        raise _MapDefError(f"the size of the {member.name} type (BTF type {pointer.type}) is unknown: {exc}") from None


def _parse_btf_map(btf: btf_format.Btf, name: str, definition: btf_format.CompositeType) -> dict[str, Any]:
    """The fields of one BTF map definition, checked as libbpf's parse_btf_map_def checks them (strict mode)."""
    fields: dict[str, Any] = {"type": MapType.UNSPEC, "key_size": 0, "value_size": 0, "max_entries": 0}

    def size(which: str, value: int) -> None:
        if fields[which] and fields[which] != value:
            raise _MapDefError(f"conflicting {which.replace('_', ' ')}s {fields[which]} and {value}")
        fields[which] = value

    for index, member in enumerate(definition.members):
        match member.name:
            case "type":
                fields["type"] = _member_int(btf, member)
            case "max_entries" | "map_flags" | "numa_node":
                fields[member.name] = _member_int(btf, member)
            case "key_size" | "value_size":
                size(member.name, _member_int(btf, member))
            case "key" | "value":
                type_id, type_size = _member_type(btf, member)
                size(f"{member.name}_size", type_size)
                fields[f"btf_{member.name}_type_id"] = type_id
            case "pinning":
                pinning = _member_int(btf, member)
                if pinning not in (LIBBPF_PIN_NONE, LIBBPF_PIN_BY_NAME):
                    raise _MapDefError(f"pinning is {pinning}; libbpf knows 0 (none) and 1 (by name)")
                fields["pinning"] = pinning
            case "map_extra":
                fields["map_extra"] = _member_long(btf, member)
            case "values":
                if index != len(definition.members) - 1:
                    raise _MapDefError("`values` must be the last member")
                if fields["type"] != MapType.PROG_ARRAY:
                    kind = "map-in-map" if fields["type"] in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS) else "this map type"
                    raise _MapDefError(
                        f"`__array(values, ...)` initial values are supported for prog arrays only, not for {kind} "
                        f"(type {fields['type']})"
                    )
                size("value_size", 4)
                array = btf.type_by_id(member.type) if member.type else None
                if not isinstance(array, btf_format.ArrayType) or array.nelems:
                    raise _MapDefError("`values` should be `__array(values, int (void *))`, an array of no elements")
                _, element = _skip_modifiers(btf, array.type)
                target = _skip_modifiers(btf, element.type)[1] if isinstance(element, btf_format.PtrType) else None
                if not isinstance(target, btf_format.FuncProtoType):
                    raise _MapDefError("a prog array's `values` should be pointers to functions")
            case _:
                raise _MapDefError(f"unknown member `{member.name}` (libbpf refuses it too)")
    if fields["type"] == MapType.UNSPEC:
        raise _MapDefError("no map type: add `__uint(type, BPF_MAP_TYPE_...)`")
    return fields


def _data_variables(btf: btf_format.Btf | None, datasec: btf_format.DatasecType | None) -> tuple[DataVariable, ...]:
    """The variables a DATASEC lists, with their integer types resolved."""
    if btf is None or datasec is None:
        return ()
    found = []
    for info in datasec.vars:
        var = btf.type_by_id(info.type) if 1 <= info.type <= len(btf.types) else None
        if not isinstance(var, btf_format.VarType):
            continue
        integer = _integer(btf, var.type) if 1 <= var.type <= len(btf.types) else None
        found.append(
            DataVariable(
                var.name,
                info.offset,
                info.size,
                var.type,
                None if integer is None or integer[0] != info.size else integer[0],
                False if integer is None else integer[1],
                var.linkage == btf_format.VarLinkage.STATIC,
            )
        )
    return tuple(found)


def _read_maps(
    elf: ELFFile,
    where: str,
    sections: dict[str, bytes],
    btf: tuple[bytes, btf_format.Btf] | None,
    objects: list[_Symbol],
    programs: list[ObjectProgram],
    maps_relocations: list[tuple[int, str, str, int]],
) -> tuple[MapDefinition, ...]:
    """Every map of the object, in libbpf's order: `.maps`, legacy `maps`, then global data by section index."""
    decoded = None if btf is None else btf[1]
    datasecs = {} if decoded is None else {t.name: (i + 1, t) for i, t in enumerate(decoded.types) if isinstance(t, btf_format.DatasecType)}
    maps: list[MapDefinition] = []
    if MAPS_SECTION in sections:
        maps += _read_btf_maps(where, sections[MAPS_SECTION], decoded, datasecs, programs, maps_relocations)
    if LEGACY_MAPS_SECTION in sections:
        maps += _read_legacy_maps(where, sections[LEGACY_MAPS_SECTION], objects)
    for section in elf.iter_sections():
        name = str(section.name)
        nobits = section["sh_type"] == "SHT_NOBITS"
        if section["sh_flags"] & SHF_EXECINSTR or not section["sh_size"]:
            continue
        is_data = section["sh_type"] == "SHT_PROGBITS" and (_is_section(name, DATA_SECTION) or _is_section(name, RODATA_SECTION))
        if not (is_data or nobits and _is_section(name, BSS_SECTION)):
            continue
        type_id, datasec = datasecs.get(name, (0, None))
        maps.append(
            MapDefinition(
                name,
                MapType.ARRAY,
                key_size=4,
                value_size=section["sh_size"],
                max_entries=1,
                map_flags=BPF_F_RDONLY_PROG if _is_section(name, RODATA_SECTION) else 0,
                btf_value_type_id=type_id,
                section=name,
                size=section["sh_size"],
                initial=None if nobits else sections.get(name, b""),
                variables=_data_variables(decoded, datasec),
            )
        )
    names = [m.name for m in maps]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ObjectFileError(f"{where}: more than one map is called {', '.join(map(repr, twice))}")
    return tuple(maps)


def _read_btf_maps(
    where: str,
    data: bytes,
    btf: btf_format.Btf | None,
    datasecs: dict[str, tuple[int, btf_format.DatasecType]],
    programs: list[ObjectProgram],
    relocations: list[tuple[int, str, str, int]],
) -> list[MapDefinition]:
    """The BTF-defined maps of `.maps` (libbpf: bpf_object__init_user_btf_map), with prog-array slots from `.rel.maps`."""
    if btf is None:
        raise ObjectFileError(
            f"{where}: section {MAPS_SECTION} defines maps, but the object has no .BTF to describe them "
            "(compile with -g: clang writes BTF-defined maps' types there)"
        )
    if MAPS_SECTION not in datasecs:
        raise ObjectFileError(f"{where}: section {MAPS_SECTION} has no DATASEC {MAPS_SECTION!r} in .BTF describing its maps")
    found: list[MapDefinition] = []
    for index, info in enumerate(datasecs[MAPS_SECTION][1].vars):
        try:
            var = btf.type_by_id(info.type)
        except btf_format.BtfError as exc:
            raise ObjectFileError(f"{where}: map #{index} of {MAPS_SECTION}: {exc}") from None
        if not isinstance(var, btf_format.VarType):
            raise ObjectFileError(f"{where}: map #{index} of {MAPS_SECTION} is a {_kind(var)} in .BTF, not a VAR")
        name = printable(var.name)
        if not var.name:
            raise ObjectFileError(f"{where}: map #{index} of {MAPS_SECTION} has no name")
        prefix = f"{where}: map {name!r} in {MAPS_SECTION}"
        if info.offset + info.size > len(data):
            raise ObjectFileError(
                f"{prefix}: its definition at bytes {info.offset}..{info.offset + info.size} runs past the "
                f"{len(data)}-byte section"
            )
        if var.linkage != btf_format.VarLinkage.GLOBAL_ALLOCATED:
            raise ObjectFileError(f"{prefix} is {var.linkage.name.lower()}; a map must be a global variable (libbpf refuses static maps too)")
        try:
            _, definition = _skip_modifiers(btf, var.type)
            if not isinstance(definition, btf_format.CompositeType) or definition.union:
                raise _MapDefError(f"its type is a {_kind(definition)}, not a struct of `__uint`/`__type` members")
            if definition.size > info.size:
                raise _MapDefError(f"its struct is {definition.size} bytes but the variable takes {info.size}")
            fields = _parse_btf_map(btf, name, definition)
            slots = _prog_array_slots(definition, info, fields, programs, relocations)
        except (_MapDefError, btf_format.BtfError) as exc:
            raise ObjectFileError(f"{prefix}: {exc}") from None
        found.append(MapDefinition(var.name, section=MAPS_SECTION, offset=info.offset, size=info.size, slots=slots, **fields))
    return found


def _prog_array_slots(
    definition: btf_format.CompositeType,
    info: btf_format.VarSecInfo,
    fields: dict[str, Any],
    programs: list[ObjectProgram],
    relocations: list[tuple[int, str, str, int]],
) -> tuple[tuple[int, str], ...]:
    """A prog array's initial slots: each `.rel.maps` relocation inside its `values` names a program (libbpf: bpf_object__collect_map_relos)."""
    inside = [r for r in relocations if info.offset <= r[0] and r[0] + _BPF_PTR_SIZE <= info.offset + info.size]
    if not inside:
        return ()
    last = definition.members[-1] if definition.members else None
    if last is None or last.name != "values":
        raise _MapDefError("a relocation in .rel.maps points inside it, but it has no `values` member")
    start = info.offset + (last.offset & 0xFFFFFF if definition.kind_flag else last.offset) // 8
    slots: dict[int, str] = {}
    for offset, symbol, section, value in inside:
        if offset < start or (offset - start) % _BPF_PTR_SIZE:
            raise _MapDefError(f"a relocation in .rel.maps at byte {offset} is not on a slot of `values`")
        slot = (offset - start) // _BPF_PTR_SIZE
        target = next((p for p in programs if p.name == symbol), None)
        if target is None or target.section != section or target.offset != value:
            raise _MapDefError(f"slot {slot} of `values` names {printable(symbol)!r}, which is not a program of the object")
        if slot >= fields["max_entries"]:
            raise _MapDefError(f"slot {slot} of `values` is past max_entries {fields['max_entries']}")
        slots[slot] = symbol
    return tuple(sorted(slots.items()))


def _read_legacy_maps(where: str, data: bytes, objects: list[_Symbol]) -> list[MapDefinition]:
    """Legacy `struct bpf_map_def` maps: one per symbol of section `maps` (libbpf before 1.0)."""
    found: list[MapDefinition] = []
    for symbol in sorted((s for s in objects if s.section == LEGACY_MAPS_SECTION), key=lambda s: s.value):
        name = printable(symbol.name)
        size = symbol.size or _LEGACY_MAP_DEF.size
        if size < _LEGACY_MAP_DEF.size or symbol.value + size > len(data):
            raise ObjectFileError(
                f"{where}: map {name!r} in {LEGACY_MAPS_SECTION}: a struct bpf_map_def takes at least "
                f"{_LEGACY_MAP_DEF.size} bytes; the symbol has {size} at byte {symbol.value} of a {len(data)}-byte section"
            )
        map_type, key_size, value_size, max_entries, map_flags = _LEGACY_MAP_DEF.unpack_from(data, symbol.value)
        if map_type == MapType.UNSPEC:
            raise ObjectFileError(f"{where}: map {name!r} in {LEGACY_MAPS_SECTION} has map type 0 (unspecified)")
        found.append(
            MapDefinition(
                symbol.name,
                map_type,
                key_size,
                value_size,
                max_entries,
                map_flags,
                section=LEGACY_MAPS_SECTION,
                offset=symbol.value,
                size=size,
            )
        )
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
