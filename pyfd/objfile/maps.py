"""BTF-defined maps and `.rodata` variables, laid out as clang lays them out for libbpf.

A map is a 32-byte, zero-filled struct in section `.maps`, with a global
STT_OBJECT symbol of its name, described in .BTF by a VAR of that name whose
type is an anonymous struct of four pointer members (libbpf.c,
parse_btf_map_def; bpf_helpers.h's `__uint` and `__type`):

    type         int (*)[BPF_MAP_TYPE_...]     the number is the array's length
    key          KEY *                          the pointee is the key's type
    value        VALUE *
    max_entries  int (*)[N]

and the VARs are listed by a DATASEC `.maps`. A load-time constant is a
`const volatile` global in `.rodata` (its initial bytes the default), with a
symbol and a VAR in DATASEC `.rodata`; libbpf makes one array map of the
section, sets it BPF_F_RDONLY_PROG and freezes it before the program loads.
Integer types are the C typedefs clang names (`__u16` of `unsigned short`),
so `bpftool gen skeleton` can write them and `bpftool map dump` prints them.

An instruction refers to a map through BPF_LD_IMM64: pyfd's code has
src BPF_PSEUDO_MAP_FD with the map's index in its object, or
BPF_PSEUDO_MAP_VALUE with the .rodata map's index and an offset;
`relocatable_code` turns them into what clang emits, `r1 = 0 ll` and an
R_BPF_64_64 relocation against the map's or the variable's symbol (libbpf,
bpf_program__record_reloc: RELO_LD64 for .maps, RELO_DATA for .rodata,
which adds the symbol's value to the offset).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..abi import MAP_DEF_SIZE, MAPS_SECTION, RODATA_SECTION
from ..isa import (
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
    SLOT_SIZE,
    Instruction,
    encode_program,
)
from .btf import (
    ArrayType,
    BtfBuilder,
    CompositeType,
    DatasecType,
    IntEncoding,
    IntType,
    Kind,
    Member,
    ModifierType,
    PtrType,
    VarLinkage,
    VarSecInfo,
    VarType,
)

__all__ = [
    "C_TYPES",
    "MapDefinition",
    "RodataVariable",
    "add_globals_btf",
    "maps_section",
    "relocatable_code",
    "rodata_alignment",
    "rodata_section",
    "rodata_size",
]

# pyfd's integer types as clang's BTF names them: (typedef, underlying C type, bytes, signed).
C_TYPES: dict[str, tuple[str, str, int, bool]] = {
    "u8": ("__u8", "unsigned char", 1, False),
    "u16": ("__u16", "unsigned short", 2, False),
    "u32": ("__u32", "unsigned int", 4, False),
    "u64": ("__u64", "unsigned long long", 8, False),
    "i32": ("__s32", "int", 4, True),
    "i64": ("__s64", "long long", 8, True),
}


@dataclass(frozen=True)
class MapDefinition:
    """One map of an object: name, BPF_MAP_TYPE_*, key and value types (C_TYPES names), max_entries."""

    name: str
    map_type: int
    key: str
    value: str
    max_entries: int


@dataclass(frozen=True)
class RodataVariable:
    """One `const volatile` variable of `.rodata`: name, type (a C_TYPES name), offset, initial value."""

    name: str
    type: str
    offset: int
    value: int

    @property
    def size(self) -> int:
        """Bytes of the variable."""
        return C_TYPES[self.type][2]


class _Types:
    """The integer types and typedefs added to a builder, each once."""

    def __init__(self, builder: BtfBuilder, int_type: int) -> None:
        self.builder = builder
        self.int_type = int_type  # `int`, the element of the type/max_entries arrays and their index
        self.typedefs: dict[str, int] = {}
        self.bases: dict[str, int] = {"int": int_type}

    def typedef(self, name: str) -> int:
        typedef, base, size, signed = C_TYPES[name]
        if typedef not in self.typedefs:
            if base not in self.bases:
                self.bases[base] = self.builder.add(IntType(base, size, size * 8, IntEncoding.SIGNED if signed else IntEncoding.NONE))
            self.typedefs[typedef] = self.builder.add(ModifierType(Kind.TYPEDEF, self.bases[base], typedef))
        return self.typedefs[typedef]

    def number(self, value: int) -> int:
        """`int (*)[value]`: how a map definition writes a number."""
        array = self.builder.add(ArrayType(self.int_type, self.int_type, value))
        return self.builder.add(PtrType(array))


def add_globals_btf(builder: BtfBuilder, maps: Sequence[MapDefinition], variables: Sequence[RodataVariable], int_type: int) -> None:
    """The VARs and DATASECs of the maps and of `.rodata` (none for what is empty); `int_type` is a 4-byte signed INT."""
    types = _Types(builder, int_type)
    _add_maps(builder, types, maps)
    _add_rodata(builder, types, variables)


def _add_maps(builder: BtfBuilder, types: _Types, maps: Sequence[MapDefinition]) -> None:
    """The VARs of the maps and DATASEC `.maps`."""
    if not maps:
        return
    infos = []
    for index, m in enumerate(maps):
        members = (
            Member("type", types.number(m.map_type), 0),
            Member("key", builder.add(PtrType(types.typedef(m.key))), 64),
            Member("value", builder.add(PtrType(types.typedef(m.value))), 128),
            Member("max_entries", types.number(m.max_entries), 192),
        )
        struct_id = builder.add(CompositeType("", MAP_DEF_SIZE, members))
        var = builder.add(VarType(m.name, struct_id, VarLinkage.GLOBAL_ALLOCATED))
        infos.append(VarSecInfo(var, index * MAP_DEF_SIZE, MAP_DEF_SIZE))
    # The real size, not clang's 0 for the loader to fix: the kernel refuses a DATASEC of size 0.
    builder.add(DatasecType(MAPS_SECTION, len(maps) * MAP_DEF_SIZE, tuple(infos)))


def _add_rodata(builder: BtfBuilder, types: _Types, variables: Sequence[RodataVariable]) -> None:
    """The `const volatile` VARs of `.rodata` and its DATASEC."""
    if not variables:
        return
    infos = []
    for v in variables:
        volatile = builder.add(ModifierType(Kind.VOLATILE, types.typedef(v.type)))
        const = builder.add(ModifierType(Kind.CONST, volatile))
        var = builder.add(VarType(v.name, const, VarLinkage.GLOBAL_ALLOCATED))
        infos.append(VarSecInfo(var, v.offset, v.size))
    builder.add(DatasecType(RODATA_SECTION, rodata_size(variables), tuple(infos)))


def maps_section(maps: Sequence[MapDefinition]) -> bytes:
    """The bytes of `.maps`: one zeroed definition per map (the BTF says everything)."""
    return bytes(MAP_DEF_SIZE * len(maps))


def rodata_size(variables: Sequence[RodataVariable]) -> int:
    """The bytes `.rodata` spans."""
    return max((v.offset + v.size for v in variables), default=0)


def rodata_section(variables: Sequence[RodataVariable]) -> bytes:
    """The bytes of `.rodata`: each variable's initial value, little endian."""
    data = bytearray(rodata_size(variables))
    for v in variables:
        struct.pack_into("<" + {1: "B", 2: "H", 4: "I", 8: "Q"}[v.size], data, v.offset, v.value & ((1 << (8 * v.size)) - 1))
    return bytes(data)


def rodata_alignment(variables: Sequence[RodataVariable]) -> int:
    """`.rodata`'s alignment: its widest variable's, as clang aligns it."""
    return max((v.size for v in variables), default=1)


def relocatable_code(
    insns: Sequence[Instruction], maps: Sequence[MapDefinition], variables: Sequence[RodataVariable]
) -> tuple[bytes, tuple[tuple[int, str], ...]]:
    """The code as an object carries it, and its relocations: (byte offset, symbol) per map reference.

    A BPF_PSEUDO_MAP_FD load of map i becomes `r = 0 ll` against the map's
    symbol; a BPF_PSEUDO_MAP_VALUE load of `.rodata` (the map after the
    others) at offset o becomes `r = 0 ll` against the variable at o.
    """
    by_offset = {v.offset: v.name for v in variables}
    out: list[Instruction] = []
    relocations: list[tuple[int, str]] = []
    slot = 0
    for insn in insns:
        if insn.is_ld_imm64 and insn.src in (BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE):
            index, offset = insn.imm & 0xFFFFFFFF, insn.imm >> 32
            if insn.src == BPF_PSEUDO_MAP_FD and index < len(maps) and offset == 0:
                symbol = maps[index].name
            elif insn.src == BPF_PSEUDO_MAP_VALUE and index == len(maps) and offset in by_offset:
                symbol = by_offset[offset]
            else:
                raise ValueError(f"slot {slot}: a map reference to map {index} at +{offset}, which the object does not have")
            relocations.append((slot * SLOT_SIZE, symbol))
            insn = replace(insn, src=0, imm=0)
        out.append(insn)
        slot += insn.slots
    return encode_program(out), tuple(relocations)
