"""BTF type information (.BTF) and BPF function/line info (.BTF.ext), both ways.

Written from the kernel's Documentation/bpf/btf.rst and include/uapi/linux/btf.h.
All integers are little endian (pyfd writes and reads bpfel objects only).

.BTF is a header, a type section and a string section:

    struct btf_header { u16 magic = 0xeB9F; u8 version = 1; u8 flags = 0;
                        u32 hdr_len; u32 type_off, type_len, str_off, str_len; }

offsets counted from the end of the header. Each type is a 12-byte
`struct btf_type` {name_off, info, size|type} (info: vlen in bits 0-15, kind in
bits 24-28, kind_flag in bit 31) followed by kind-specific data. Type ids count
from 1 in order; id 0 is `void`. The string section starts with "\\0" and every
string ends with one.

.BTF.ext is a header then sub-sections (offsets again from the end of the
header); pyfd writes and reads func_info and line_info:

    struct btf_ext_header { u16 magic = 0xeB9F; u8 version = 1; u8 flags = 0;
                            u32 hdr_len; u32 func_info_off, func_info_len;
                            u32 line_info_off, line_info_len;
                            [u32 core_relo_off, core_relo_len;] }

A sub-section is a u32 record size, then per ELF section: u32 sec_name_off (a
string of .BTF), u32 num_info, and num_info records. In an ELF object insn_off
counts bytes from the start of the section; in BPF_PROG_LOAD it counts
instructions from the start of the program (libbpf converts; so does
`kernel_func_info` / `kernel_line_info` here). A line info's line_col is
line << 10 | column.

A leaf with elf.py: it imports nothing of pyfd but the ABI numbers, so the
compiler writes BTF with it, and the object loader (pyfd.program), the llvm
backend and `pyfd disasm` read it; the runtime only hands the bytes to the
kernel.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from ..abi import CTX_STRUCT, FUNC_INFO_REC_SIZE, INSN_SIZE, LICENSE, LICENSE_SECTION, LICENSE_SYMBOL, LINE_INFO_REC_SIZE
from .elf import ElfObjectError, StringTable

__all__ = [
    "BTF_MAGIC",
    "ArrayType",
    "Btf",
    "BtfBuilder",
    "BtfExtInfo",
    "BtfFormatError",
    "BtfType",
    "CompositeType",
    "DatasecType",
    "DeclTagType",
    "Enum64Type",
    "EnumType",
    "FloatType",
    "FuncInfoRecord",
    "FuncLinkage",
    "FuncProtoType",
    "FuncType",
    "FwdType",
    "IntEncoding",
    "IntType",
    "Kind",
    "LineInfoRecord",
    "Member",
    "ModifierType",
    "Param",
    "ProgramBtf",
    "PtrType",
    "VarLinkage",
    "VarSecInfo",
    "VarType",
    "add_license_var",
    "build_program_btf",
    "decode_btf",
    "encode_btf_ext",
    "fixup_datasecs",
    "kernel_func_info",
    "kernel_line_info",
    "line_info_from_spans",
    "parse_btf_ext",
]

BTF_MAGIC = 0xEB9F
BTF_VERSION = 1
BTF_MAX_TYPE = 0x000FFFFF  # largest type id
BTF_MAX_NAME_OFFSET = 0x00FFFFFF  # largest string offset
BTF_MAX_VLEN = 0xFFFF  # most members, enumerators or parameters

_HEADER = struct.Struct("<HBBIIIII")  # struct btf_header, 24 bytes
_EXT_HEADER = struct.Struct("<HBBIIIII")  # struct btf_ext_header up to line_info_len
_EXT_HEADER_CORE = struct.Struct("<II")  # core_relo_off, core_relo_len (hdr_len 32)
_TYPE = struct.Struct("<III")  # struct btf_type
_U32 = struct.Struct("<I")
_PAIR = struct.Struct("<II")  # btf_param, btf_enum (name, val), bpf_func_info, btf_ext_info_sec
_TRIPLE = struct.Struct("<III")  # btf_member, btf_array, btf_var_secinfo, btf_enum64
_LINE_INFO = struct.Struct("<IIII")  # bpf_line_info

# _PAIR as struct bpf_func_info is FUNC_INFO_REC_SIZE bytes, _LINE_INFO is
# struct bpf_line_info, LINE_INFO_REC_SIZE bytes (pyfd.abi).

# line_col = line << 10 | col (BPF_LINE_INFO_LINE_NUM / _LINE_COL in uapi bpf.h).
LINE_SHIFT = 10
COL_MASK = (1 << LINE_SHIFT) - 1
LINE_MAX = (1 << (32 - LINE_SHIFT)) - 1


class BtfFormatError(ValueError):
    """BTF or BTF.ext bytes that are not well formed, or types BTF cannot encode (pyfd's own check, before any kernel sees them)."""


class Kind(enum.IntEnum):
    """BTF_KIND_* (include/uapi/linux/btf.h)."""

    UNKN = 0  # void, only as type id 0
    INT = 1  # integer: size, then u32 encoding/offset/bits
    PTR = 2  # pointer to `type`
    ARRAY = 3  # followed by struct btf_array
    STRUCT = 4  # followed by vlen btf_member
    UNION = 5  # followed by vlen btf_member
    ENUM = 6  # followed by vlen btf_enum (32-bit values)
    FWD = 7  # forward declaration; kind_flag 1 = union
    TYPEDEF = 8  # alias of `type`
    VOLATILE = 9  # modifier
    CONST = 10  # modifier
    RESTRICT = 11  # modifier
    FUNC = 12  # a function: `type` is its FUNC_PROTO, vlen its linkage
    FUNC_PROTO = 13  # return `type`, followed by vlen btf_param
    VAR = 14  # a variable, followed by u32 linkage
    DATASEC = 15  # an ELF data section, followed by vlen btf_var_secinfo
    FLOAT = 16  # floating point of `size` bytes
    DECL_TAG = 17  # tag on a declaration, followed by s32 component_idx
    TYPE_TAG = 18  # tag on a type (modifier-like)
    ENUM64 = 19  # followed by vlen btf_enum64 (64-bit values)


class IntEncoding(enum.IntFlag):
    """BTF_INT_* encoding bits of an INT."""

    NONE = 0
    SIGNED = 1 << 0
    CHAR = 1 << 1
    BOOL = 1 << 2


class FuncLinkage(enum.IntEnum):
    """enum btf_func_linkage: the vlen of a FUNC."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


class VarLinkage(enum.IntEnum):
    """enum of a VAR's linkage (BTF_VAR_*)."""

    STATIC = 0
    GLOBAL_ALLOCATED = 1
    GLOBAL_EXTERN = 2


# --- types ---------------------------------------------------------------------
#
# One small frozen dataclass per kind. Types refer to each other by type id
# (0 = void); names are strings, placed in the string section by the encoder.


@dataclass(frozen=True)
class IntType:
    """BTF_KIND_INT: `size` bytes, of which `bits` bits from bit `offset` are used."""

    name: str
    size: int
    bits: int
    encoding: IntEncoding = IntEncoding.NONE
    offset: int = 0


@dataclass(frozen=True)
class PtrType:
    """BTF_KIND_PTR: a pointer to type id `type`."""

    type: int


@dataclass(frozen=True)
class ArrayType:
    """BTF_KIND_ARRAY: `nelems` of type id `type`, indexed by `index_type`."""

    type: int
    index_type: int
    nelems: int


@dataclass(frozen=True)
class Member:
    """One btf_member: a field's name, type id and offset in bits.

    With the struct's kind_flag set, `offset` holds bitfield_size << 24 | bit_offset.
    """

    name: str
    type: int
    offset: int


@dataclass(frozen=True)
class CompositeType:
    """BTF_KIND_STRUCT or BTF_KIND_UNION of `size` bytes."""

    name: str
    size: int
    members: tuple[Member, ...] = ()
    union: bool = False
    kind_flag: bool = False


@dataclass(frozen=True)
class EnumType:
    """BTF_KIND_ENUM: (name, value) enumerators of `size` bytes; kind_flag = signed."""

    name: str
    size: int
    values: tuple[tuple[str, int], ...] = ()
    signed: bool = False


@dataclass(frozen=True)
class Enum64Type:
    """BTF_KIND_ENUM64: 64-bit enumerators."""

    name: str
    size: int
    values: tuple[tuple[str, int], ...] = ()
    signed: bool = False


@dataclass(frozen=True)
class FwdType:
    """BTF_KIND_FWD: `struct name;` (or `union name;`)."""

    name: str
    union: bool = False


@dataclass(frozen=True)
class ModifierType:
    """TYPEDEF (named), VOLATILE, CONST, RESTRICT or TYPE_TAG (named) of type id `type`."""

    kind: Kind
    type: int
    name: str = ""


@dataclass(frozen=True)
class Param:
    """One btf_param of a FUNC_PROTO; the kernel wants it named for a FUNC's prototype."""

    name: str
    type: int


@dataclass(frozen=True)
class FuncProtoType:
    """BTF_KIND_FUNC_PROTO: return type id and parameters (unnamed type)."""

    return_type: int
    params: tuple[Param, ...] = ()


@dataclass(frozen=True)
class FuncType:
    """BTF_KIND_FUNC: a named function whose signature is FUNC_PROTO id `proto`."""

    name: str
    proto: int
    linkage: FuncLinkage = FuncLinkage.GLOBAL


@dataclass(frozen=True)
class VarType:
    """BTF_KIND_VAR: a named variable of type id `type`."""

    name: str
    type: int
    linkage: VarLinkage = VarLinkage.GLOBAL_ALLOCATED


@dataclass(frozen=True)
class VarSecInfo:
    """One btf_var_secinfo: a VAR's type id, offset and size in its section."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True)
class DatasecType:
    """BTF_KIND_DATASEC: an ELF data section and the variables in it."""

    name: str
    size: int
    vars: tuple[VarSecInfo, ...] = ()


@dataclass(frozen=True)
class FloatType:
    """BTF_KIND_FLOAT of `size` bytes."""

    name: str
    size: int


@dataclass(frozen=True)
class DeclTagType:
    """BTF_KIND_DECL_TAG: tag `name` on type id `type` (component -1 = the whole type)."""

    name: str
    type: int
    component_idx: int = -1


BtfType = (
    IntType
    | PtrType
    | ArrayType
    | CompositeType
    | EnumType
    | Enum64Type
    | FwdType
    | ModifierType
    | FuncProtoType
    | FuncType
    | VarType
    | DatasecType
    | FloatType
    | DeclTagType
)

_MODIFIER_KINDS = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})


def _info(kind: Kind, vlen: int = 0, kind_flag: bool = False) -> int:
    if not 0 <= vlen <= BTF_MAX_VLEN:
        raise BtfFormatError(f"{kind.name}: {vlen} entries, more than BTF allows ({BTF_MAX_VLEN})")
    return (int(kind_flag) << 31) | (int(kind) << 24) | vlen


def _u32(name: str, value: int) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise BtfFormatError(f"{name} {value} does not fit in 32 bits")
    return value


# --- strings -------------------------------------------------------------------


class _Strings(StringTable):
    """A BTF string section being built: the ELF string table's format, with BTF's size limit."""

    def add(self, text: str) -> int:
        if text not in self.offsets and len(self.data) > BTF_MAX_NAME_OFFSET:
            raise BtfFormatError("BTF string section is larger than the kernel allows (16 MiB)")
        try:
            return super().add(text)
        except ElfObjectError:
            raise BtfFormatError(f"BTF string {text!r} contains a NUL byte") from None


# --- encoding ------------------------------------------------------------------


class BtfBuilder:
    """Collect types and strings, then encode a .BTF blob.

    `add` returns each type's id; `string` returns a string's offset (for
    .BTF.ext records, which name strings of the .BTF they go with).
    """

    def __init__(self) -> None:
        self.types: list[BtfType] = []
        self._strings = _Strings()

    def add(self, btf_type: BtfType) -> int:
        """Append a type and return its id (the first is 1)."""
        if len(self.types) >= BTF_MAX_TYPE:
            raise BtfFormatError(f"more than {BTF_MAX_TYPE} BTF types")
        self.types.append(btf_type)
        return len(self.types)

    def string(self, text: str) -> int:
        """Return the offset of `text` in the string section, adding it on first use."""
        return self._strings.add(text)

    def encode(self) -> bytes:
        """The .BTF bytes: header, type section, string section."""
        body = b"".join(self._encode_type(t) for t in self.types)
        strings = bytes(self._strings.data)
        header = _HEADER.pack(
            BTF_MAGIC, BTF_VERSION, 0, _HEADER.size, 0, len(body), len(body), len(strings)
        )
        return header + body + strings

    def _encode_type(self, t: BtfType) -> bytes:
        s = self.string
        match t:
            case IntType():
                if t.bits > 128 or t.offset + t.bits > t.size * 8:
                    raise BtfFormatError(f"INT {t.name!r}: {t.bits} bits at {t.offset} do not fit in {t.size} bytes")
                extra = (int(t.encoding) << 24) | (t.offset << 16) | t.bits
                return _TYPE.pack(s(t.name), _info(Kind.INT), t.size) + _U32.pack(extra)
            case PtrType():
                return _TYPE.pack(0, _info(Kind.PTR), t.type)
            case ArrayType():
                return _TYPE.pack(0, _info(Kind.ARRAY), 0) + _TRIPLE.pack(t.type, t.index_type, t.nelems)
            case CompositeType():
                kind = Kind.UNION if t.union else Kind.STRUCT
                head = _TYPE.pack(s(t.name), _info(kind, len(t.members), t.kind_flag), t.size)
                return head + b"".join(_TRIPLE.pack(s(m.name), m.type, m.offset) for m in t.members)
            case EnumType():
                head = _TYPE.pack(s(t.name), _info(Kind.ENUM, len(t.values), t.signed), t.size)
                return head + b"".join(
                    _PAIR.pack(s(name), value & 0xFFFFFFFF) for name, value in t.values
                )
            case Enum64Type():
                head = _TYPE.pack(s(t.name), _info(Kind.ENUM64, len(t.values), t.signed), t.size)
                return head + b"".join(
                    _TRIPLE.pack(s(name), value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF)
                    for name, value in t.values
                )
            case FwdType():
                return _TYPE.pack(s(t.name), _info(Kind.FWD, 0, t.union), 0)
            case ModifierType():
                if t.kind not in _MODIFIER_KINDS:
                    raise BtfFormatError(f"{t.kind.name} is not a modifier kind")
                return _TYPE.pack(s(t.name), _info(t.kind), t.type)
            case FuncProtoType():
                head = _TYPE.pack(0, _info(Kind.FUNC_PROTO, len(t.params)), t.return_type)
                return head + b"".join(_PAIR.pack(s(p.name), p.type) for p in t.params)
            case FuncType():
                return _TYPE.pack(s(t.name), _info(Kind.FUNC, int(t.linkage)), t.proto)
            case VarType():
                return _TYPE.pack(s(t.name), _info(Kind.VAR), t.type) + _U32.pack(int(t.linkage))
            case DatasecType():
                head = _TYPE.pack(s(t.name), _info(Kind.DATASEC, len(t.vars)), t.size)
                return head + b"".join(_TRIPLE.pack(v.type, v.offset, v.size) for v in t.vars)
            case FloatType():
                return _TYPE.pack(s(t.name), _info(Kind.FLOAT), t.size)
            case DeclTagType():
                return _TYPE.pack(s(t.name), _info(Kind.DECL_TAG), t.type) + struct.pack("<i", t.component_idx)
        raise BtfFormatError(f"not a BTF type: {t!r}")


# --- decoding ------------------------------------------------------------------


@dataclass(frozen=True)
class Btf:
    """Decoded .BTF: the types in id order (types[0] is id 1) and the string section."""

    types: tuple[BtfType, ...]
    strings: bytes

    def string_at(self, offset: int) -> str:
        """The string at `offset` in the string section."""
        return _string_at(self.strings, offset)

    def type_by_id(self, type_id: int) -> BtfType:
        """The type with id `type_id` (1-based; 0 is void and has no entry)."""
        if not 1 <= type_id <= len(self.types):
            raise BtfFormatError(f"no BTF type id {type_id} (there are {len(self.types)})")
        return self.types[type_id - 1]


def _string_at(strings: bytes, offset: int) -> str:
    if not 0 <= offset < len(strings):
        raise BtfFormatError(f"string offset {offset} is outside the {len(strings)}-byte string section")
    end = strings.find(b"\0", offset)
    if end < 0:
        raise BtfFormatError(f"string at offset {offset} is not NUL-terminated")
    return strings[offset:end].decode("utf-8", errors="replace")


def _section(data: bytes, start: int, length: int, what: str) -> bytes:
    if start + length > len(data):
        raise BtfFormatError(f"{what} at bytes {start}..{start + length} runs past the end ({len(data)} bytes)")
    return data[start : start + length]


def decode_btf(data: bytes) -> Btf:
    """Decode a .BTF blob; raises BtfFormatError on anything malformed."""
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise BtfFormatError(f".BTF is {len(data)} bytes, shorter than its {_HEADER.size}-byte header")
    magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(data)
    if magic != BTF_MAGIC:
        raise BtfFormatError(f".BTF magic is {magic:#06x}, expected {BTF_MAGIC:#06x} (big-endian BTF is not supported)")
    if version != BTF_VERSION:
        raise BtfFormatError(f".BTF version {version}, expected {BTF_VERSION}")
    if hdr_len < _HEADER.size:
        raise BtfFormatError(f".BTF header length {hdr_len} is shorter than {_HEADER.size}")
    types_data = _section(data, hdr_len + type_off, type_len, ".BTF type section")
    strings = _section(data, hdr_len + str_off, str_len, ".BTF string section")
    if strings and (strings[0] != 0 or strings[-1] != 0):
        raise BtfFormatError(".BTF string section must start and end with a NUL byte")
    return Btf(tuple(_decode_types(types_data, strings)), strings)


def _decode_types(data: bytes, strings: bytes) -> Iterable[BtfType]:
    pos = 0

    def take(fmt: struct.Struct, count: int = 1) -> list[tuple[int, ...]]:
        nonlocal pos
        end = pos + fmt.size * count
        if end > len(data):
            raise BtfFormatError(f"BTF type section ends inside a type (at byte {pos})")
        out = [fmt.unpack_from(data, pos + i * fmt.size) for i in range(count)]
        pos = end
        return out

    def name(offset: int) -> str:
        return _string_at(strings, offset)

    while pos < len(data):
        name_off, info, size_or_type = take(_TYPE)[0]
        vlen = info & 0xFFFF
        kind_flag = bool(info >> 31)
        try:
            kind = Kind((info >> 24) & 0x1F)
        except ValueError:
            raise BtfFormatError(f"unknown BTF kind {(info >> 24) & 0x1F} at byte {pos - _TYPE.size}") from None
        match kind:
            case Kind.INT:
                (extra,) = take(_U32)[0]
                yield IntType(
                    name(name_off), size_or_type, extra & 0xFF, IntEncoding((extra >> 24) & 0x0F), (extra >> 16) & 0xFF
                )
            case Kind.PTR:
                yield PtrType(size_or_type)
            case Kind.ARRAY:
                elem, index, nelems = take(_TRIPLE)[0]
                yield ArrayType(elem, index, nelems)
            case Kind.STRUCT | Kind.UNION:
                members = tuple(Member(name(n), t, o) for n, t, o in take(_TRIPLE, vlen))
                yield CompositeType(name(name_off), size_or_type, members, kind == Kind.UNION, kind_flag)
            case Kind.ENUM:
                values = []
                for n, v in take(_PAIR, vlen):
                    values.append((name(n), v - (1 << 32) if kind_flag and v >> 31 else v))
                yield EnumType(name(name_off), size_or_type, tuple(values), kind_flag)
            case Kind.ENUM64:
                values = []
                for n, lo, hi in take(_TRIPLE, vlen):
                    v = hi << 32 | lo
                    values.append((name(n), v - (1 << 64) if kind_flag and v >> 63 else v))
                yield Enum64Type(name(name_off), size_or_type, tuple(values), kind_flag)
            case Kind.FWD:
                yield FwdType(name(name_off), kind_flag)
            case Kind.TYPEDEF | Kind.VOLATILE | Kind.CONST | Kind.RESTRICT | Kind.TYPE_TAG:
                yield ModifierType(kind, size_or_type, name(name_off))
            case Kind.FUNC_PROTO:
                params = tuple(Param(name(n), t) for n, t in take(_PAIR, vlen))
                yield FuncProtoType(size_or_type, params)
            case Kind.FUNC:
                try:
                    linkage = FuncLinkage(vlen)
                except ValueError:
                    raise BtfFormatError(f"FUNC {name(name_off)!r}: unknown linkage {vlen}") from None
                yield FuncType(name(name_off), size_or_type, linkage)
            case Kind.VAR:
                (linkage_value,) = take(_U32)[0]
                try:
                    var_linkage = VarLinkage(linkage_value)
                except ValueError:
                    raise BtfFormatError(f"VAR {name(name_off)!r}: unknown linkage {linkage_value}") from None
                yield VarType(name(name_off), size_or_type, var_linkage)
            case Kind.DATASEC:
                secinfo = tuple(VarSecInfo(t, o, s) for t, o, s in take(_TRIPLE, vlen))
                yield DatasecType(name(name_off), size_or_type, secinfo)
            case Kind.FLOAT:
                yield FloatType(name(name_off), size_or_type)
            case Kind.DECL_TAG:
                (component,) = take(struct.Struct("<i"))[0]
                yield DeclTagType(name(name_off), size_or_type, component)
            case Kind.UNKN:
                raise BtfFormatError(f"BTF type at byte {pos - _TYPE.size} has kind 0 (UNKN)")


def _type_size(kind: Kind, vlen: int) -> int:
    """Bytes a type of `kind` with `vlen` entries takes in the type section."""
    extra = {
        Kind.INT: 4,
        Kind.ARRAY: _TRIPLE.size,
        Kind.STRUCT: _TRIPLE.size * vlen,
        Kind.UNION: _TRIPLE.size * vlen,
        Kind.ENUM: _PAIR.size * vlen,
        Kind.ENUM64: _TRIPLE.size * vlen,
        Kind.FUNC_PROTO: _PAIR.size * vlen,
        Kind.VAR: 4,
        Kind.DATASEC: _TRIPLE.size * vlen,
        Kind.DECL_TAG: 4,
    }
    return _TYPE.size + extra.get(kind, 0)


def fixup_datasecs(
    btf: bytes,
    section_sizes: Mapping[str, int],
    symbol_values: Mapping[str, int],
) -> bytes:
    """Fill in what LLVM leaves to the loader, as libbpf does before loading an object's .BTF.

    LLVM writes each DATASEC with size 0 and may leave its variables' offsets
    0; the kernel refuses a DATASEC of size 0. libbpf (btf_fixup_datasec) sets
    the size to the ELF section's and each variable's offset to its symbol's
    value. Patched in place, so string offsets (and .BTF.ext records) stay valid.
    """
    decoded = decode_btf(btf)
    out = bytearray(btf)
    _, _, _, hdr_len, type_off, _, _, _ = _HEADER.unpack_from(out)
    pos = hdr_len + type_off
    for t in decoded.types:
        _, info, _ = _TYPE.unpack_from(out, pos)
        kind, vlen = Kind((info >> 24) & 0x1F), info & 0xFFFF
        if isinstance(t, DatasecType):
            size = section_sizes.get(t.name)
            if t.size == 0 and size:
                struct.pack_into("<I", out, pos + 8, size)
            for index, var in enumerate(t.vars):
                target = decoded.types[var.type - 1] if 1 <= var.type <= len(decoded.types) else None
                if isinstance(target, VarType) and var.offset == 0 and target.name in symbol_values:
                    struct.pack_into("<I", out, pos + _TYPE.size + index * _TRIPLE.size + 4, symbol_values[target.name])
        pos += _type_size(kind, vlen)
    return bytes(out)


# --- .BTF.ext ------------------------------------------------------------------


@dataclass(frozen=True)
class FuncInfoRecord:
    """One func_info: the function starting at byte `insn_off` of its ELF section."""

    insn_off: int  # bytes from the start of the ELF section
    type_id: int  # a FUNC of the .BTF
    name: str = ""  # that FUNC's name (filled in when decoding)


@dataclass(frozen=True)
class LineInfoRecord:
    """One line_info: the source line the instructions from byte `insn_off` on came from."""

    insn_off: int  # bytes from the start of the ELF section
    file_name: str
    line_text: str
    line: int  # 1-based; 0 = unknown
    col: int  # 1-based as LLVM writes it; 0 = unknown
    file_name_off: int = 0  # offsets into the .BTF string section, as stored
    line_off: int = 0


@dataclass(frozen=True)
class BtfExtInfo:
    """The func_info and line_info records of one ELF section."""

    func_info: tuple[FuncInfoRecord, ...] = ()
    line_info: tuple[LineInfoRecord, ...] = ()


def parse_btf_ext(btf_ext: bytes, btf: bytes | Btf) -> dict[str, BtfExtInfo]:
    """Decode .BTF.ext against its .BTF: func and line info records per ELF section name."""
    decoded = btf if isinstance(btf, Btf) else decode_btf(btf)
    data = bytes(btf_ext)
    if len(data) < _EXT_HEADER.size:
        raise BtfFormatError(f".BTF.ext is {len(data)} bytes, shorter than its {_EXT_HEADER.size}-byte header")
    magic, version, _flags, hdr_len, func_off, func_len, line_off, line_len = _EXT_HEADER.unpack_from(data)
    if magic != BTF_MAGIC:
        raise BtfFormatError(f".BTF.ext magic is {magic:#06x}, expected {BTF_MAGIC:#06x}")
    if version != BTF_VERSION:
        raise BtfFormatError(f".BTF.ext version {version}, expected {BTF_VERSION}")
    if hdr_len < _EXT_HEADER.size:
        raise BtfFormatError(f".BTF.ext header length {hdr_len} is shorter than {_EXT_HEADER.size}")

    funcs: dict[str, list[FuncInfoRecord]] = {}
    lines: dict[str, list[LineInfoRecord]] = {}

    def sections(start: int, length: int, what: str, min_rec: int) -> Iterable[tuple[str, list[bytes]]]:
        if length == 0:
            return
        blob = _section(data, hdr_len + start, length, f".BTF.ext {what}")
        if len(blob) < 4:
            raise BtfFormatError(f".BTF.ext {what} is too short for its record size")
        (rec_size,) = _U32.unpack_from(blob)
        if rec_size < min_rec or rec_size % 4:
            raise BtfFormatError(f".BTF.ext {what}: record size {rec_size} (expected at least {min_rec}, a multiple of 4)")
        pos = 4
        while pos < len(blob):
            if pos + _PAIR.size > len(blob):
                raise BtfFormatError(f".BTF.ext {what}: truncated section header at byte {pos}")
            name_off, count = _PAIR.unpack_from(blob, pos)
            pos += _PAIR.size
            end = pos + count * rec_size
            if end > len(blob):
                raise BtfFormatError(f".BTF.ext {what}: {count} records run past the end of the sub-section")
            yield decoded.string_at(name_off), [blob[p : p + rec_size] for p in range(pos, end, rec_size)]
            pos = end

    for sec_name, records in sections(func_off, func_len, "func_info", FUNC_INFO_REC_SIZE):
        func_entry = funcs.setdefault(sec_name, [])
        for record in records:
            insn_off, type_id = _PAIR.unpack_from(record)
            func_name = ""
            if 1 <= type_id <= len(decoded.types):
                found = decoded.types[type_id - 1]
                if isinstance(found, FuncType):
                    func_name = found.name
            func_entry.append(FuncInfoRecord(insn_off, type_id, func_name))
    for sec_name, records in sections(line_off, line_len, "line_info", LINE_INFO_REC_SIZE):
        line_entry = lines.setdefault(sec_name, [])
        for record in records:
            insn_off, file_off, text_off, line_col = _LINE_INFO.unpack_from(record)
            line_entry.append(
                LineInfoRecord(
                    insn_off,
                    decoded.string_at(file_off),
                    decoded.string_at(text_off),
                    line_col >> LINE_SHIFT,
                    line_col & COL_MASK,
                    file_off,
                    text_off,
                )
            )
    # Sections in the order they first appear: func_info's, then line_info's others.
    return {name: BtfExtInfo(tuple(funcs.get(name, ())), tuple(lines.get(name, ()))) for name in [*funcs, *(n for n in lines if n not in funcs)]}


def encode_btf_ext(builder: BtfBuilder, sections: Mapping[str, BtfExtInfo]) -> bytes:
    """The .BTF.ext bytes for `sections`; their strings are added to `builder`'s .BTF.

    Encode the .BTF (builder.encode()) after this, so it holds those strings.
    """
    func_blob = bytearray()
    line_blob = bytearray()
    for sec_name, info in sections.items():
        name_off = builder.string(sec_name)
        if info.func_info:
            func_blob += _PAIR.pack(name_off, len(info.func_info))
            for f in info.func_info:
                func_blob += _PAIR.pack(_u32("insn_off", f.insn_off), f.type_id)
        if info.line_info:
            line_blob += _PAIR.pack(name_off, len(info.line_info))
            for ln in info.line_info:
                if not 0 <= ln.line <= LINE_MAX:
                    raise BtfFormatError(f"line {ln.line} does not fit in a line_info ({LINE_MAX} at most)")
                line_col = ln.line << LINE_SHIFT | min(max(ln.col, 0), COL_MASK)
                line_blob += _LINE_INFO.pack(
                    _u32("insn_off", ln.insn_off), builder.string(ln.file_name), builder.string(ln.line_text), line_col
                )
    func_sub = _U32.pack(FUNC_INFO_REC_SIZE) + func_blob if func_blob else b""
    line_sub = _U32.pack(LINE_INFO_REC_SIZE) + line_blob if line_blob else b""
    # hdr_len 32 with empty CO-RE relocations, as LLVM writes it; libbpf and
    # the kernel accept any header at least up to line_info_len.
    hdr_len = _EXT_HEADER.size + _EXT_HEADER_CORE.size
    header = _EXT_HEADER.pack(
        BTF_MAGIC, BTF_VERSION, 0, hdr_len, 0, len(func_sub), len(func_sub), len(line_sub)
    ) + _EXT_HEADER_CORE.pack(len(func_sub) + len(line_sub), 0)
    return header + func_sub + line_sub


# --- for BPF_PROG_LOAD -----------------------------------------------------------


def kernel_func_info(records: Sequence[FuncInfoRecord], start: int = 0) -> bytes:
    """struct bpf_func_info records for BPF_PROG_LOAD of the program at byte `start` of its section."""
    return b"".join(_PAIR.pack((r.insn_off - start) // INSN_SIZE, r.type_id) for r in records)


def kernel_line_info(records: Sequence[LineInfoRecord], start: int = 0) -> bytes:
    """struct bpf_line_info records for BPF_PROG_LOAD, insn_off counted in instructions."""
    return b"".join(
        _LINE_INFO.pack(
            (r.insn_off - start) // INSN_SIZE,
            r.file_name_off,
            r.line_off,
            min(r.line, LINE_MAX) << LINE_SHIFT | min(r.col, COL_MASK),
        )
        for r in records
    )


# --- a compiled program's BTF ------------------------------------------------------


@dataclass(frozen=True)
class ProgramBtf:
    """A program's .BTF and .BTF.ext, and the same func/line info in BPF_PROG_LOAD form."""

    btf: bytes
    btf_ext: bytes
    func_info: bytes  # struct bpf_func_info records, insn_off in instructions
    line_info: bytes  # struct bpf_line_info records, insn_off in instructions


def line_info_from_spans(spans: Sequence[object | None]) -> list[LineInfoRecord]:
    """One line info at every slot where the (file, line, col) of the spans changes.

    `spans` has one entry per 8-byte slot (the second half of an LD_IMM64
    repeats the first, so no record lands there: the kernel refuses one). A
    slot without a span continues the previous line; the first record is at
    slot 0, taking the first span there is.
    """
    records: list[LineInfoRecord] = []
    first = next((s for s in spans if s is not None), None)
    if first is None:
        return records
    last: tuple[str, int, int] | None = None
    for slot, span in enumerate(spans):
        if span is None:
            if slot:
                continue
            span = first
        file, line, col = str(span.file), int(span.line), int(span.col)  # type: ignore[attr-defined]
        key = (file, line, col)
        if key == last:
            continue
        last = key
        source_line = getattr(span, "source_line", None)
        text = source_line() if callable(source_line) else ""
        records.append(
            LineInfoRecord(
                insn_off=slot * INSN_SIZE,
                file_name=file,
                line_text=text.rstrip(),  # indentation kept, as clang does: columns count from it
                line=min(max(line, 0), LINE_MAX),
                col=min(col + 1, COL_MASK),  # Span columns are 0-based, BTF's 1-based
            )
        )
    return records


# The context of a flow dissector is `struct __sk_buff *` (CTX_STRUCT;
# include/linux/bpf_types.h lists struct __sk_buff as the user context of
# BPF_PROG_TYPE_FLOW_DISSECTOR).
CTX_PARAM = "ctx"


def add_license_var(builder: BtfBuilder, license: str, index_type: int) -> int:
    """Describe the object's license string: VAR `_license` of type char[N] in DATASEC "license".

    Returns the DATASEC's id. `index_type` is an INT to index the array with.
    libbpf's static linker (`bpftool gen object`, bpf_linker__add_file)
    refuses any global ELF symbol without a non-static VAR or FUNC of its name
    ("failed to find BTF info for global/extern symbol '_license'",
    find_glob_sym_btf in linker.c), and then sets the VAR's offset from the
    STT_OBJECT symbol in the section the DATASEC names (linker_fixup_btf).
    """
    size = len(license.encode()) + 1  # the NUL the ELF writer appends
    char = builder.add(IntType("char", 1, 8, IntEncoding.SIGNED))  # C's char is signed on BPF
    array = builder.add(ArrayType(char, index_type, size))
    var = builder.add(VarType(LICENSE_SYMBOL, array, VarLinkage.GLOBAL_ALLOCATED))
    # The kernel refuses a DATASEC of size 0 (btf_datasec_check_meta), so it
    # gets the section's real size here rather than a fixup at load time.
    return builder.add(DatasecType(LICENSE_SECTION, size, (VarSecInfo(var, 0, size),)))


def build_program_btf(
    name: str,
    section: str,
    spans: Sequence[object | None],
    license: str = LICENSE,
    *,
    add_types: Callable[[BtfBuilder, int], None] | None = None,
) -> ProgramBtf:
    """BTF for one program: FUNC `int name(struct __sk_buff *ctx)`, its license VAR, line info from its spans.

    `spans` has one entry per instruction slot (CompiledCode.spans_by_slot());
    `license` is the string the object's license section holds; `add_types`,
    if given, adds more types (the maps, maps.add_globals_btf) given the
    builder and the id of `int`.
    """
    builder = BtfBuilder()
    int_id = builder.add(IntType("int", 4, 32, IntEncoding.SIGNED))
    # The kernel only needs the struct's name (it matches the context type by
    # name for global functions); an empty struct keeps the BTF small.
    ctx_struct = builder.add(CompositeType(CTX_STRUCT, 0))
    ctx_ptr = builder.add(PtrType(ctx_struct))
    # kernel/bpf/btf.c refuses a FUNC whose prototype has an unnamed argument.
    proto = builder.add(FuncProtoType(int_id, (Param(CTX_PARAM, ctx_ptr),)))
    func = builder.add(FuncType(name, proto, FuncLinkage.GLOBAL))
    add_license_var(builder, license, int_id)
    if add_types is not None:
        add_types(builder, int_id)
    lines = tuple(line_info_from_spans(spans))
    info = BtfExtInfo((FuncInfoRecord(0, func, name),), lines)
    btf_ext = encode_btf_ext(builder, {section: info})
    btf = builder.encode()
    # Decode what was written, so the string offsets the kernel records use are
    # exactly the ones in the .BTF.
    parsed = parse_btf_ext(btf_ext, btf)[section]
    return ProgramBtf(btf, btf_ext, kernel_func_info(parsed.func_info), kernel_line_info(parsed.line_info))

