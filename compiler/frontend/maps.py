"""Maps and load-time constants: which ones a dissector has, and what operating on them means.

The kernel's rules live here, as the packet's live in `access`: a map value
is reached through `bpf_map_lookup_elem`, whose result the program must
test against NULL before using it (kernel/bpf/verifier.c: the result is
PTR_TO_MAP_VALUE_OR_NULL until then); an array's lookup is NULL past
max_entries (kernel/bpf/arraymap.c, array_map_lookup_elem); an `+=` on a
shared value is an atomic add (BPF_STX | BPF_ATOMIC, 32 or 64 bits only); a
load-time constant is a load from the frozen `.rodata` map. No `ast` here:
positions arrive as spans.

`MapTable` collects the declarations (pyfd.maps) a dissector uses: every one
its own module binds, then those its helpers' modules bind, as they are
referred to. A declaration is checked the first time it is met, and an
error in it is reported at the declaration's line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyfd.maps import MAX_ENTRIES_LIMIT, Config, MapDeclaration, is_integer_type
from pyfd.types import FixedInt

from ..diagnostics import CompileNameError, CompileTypeError, MapAccessError, Span
from ..ir.builder import IRBuilder
from ..ir.nodes import (
    BPF_ANY,
    BPF_NOEXIST,
    AtomicMapValue,
    AtomicOp,
    Binary,
    BinaryOp,
    Branch,
    Cmp,
    ConfigDef,
    Copy,
    Extend,
    Imm,
    Jump,
    LoadConfig,
    LoadMapValue,
    MapDef,
    MapDelete,
    MapKind,
    MapLookup,
    MapUpdate,
    Operand,
    Reg,
    StoreMapValue,
    Unary,
    UnaryOp,
)
from ..source import declaration_span, declared_name
from ..typesys import BOOL, FROM_PYFD, LITERAL, U8, IntTy
from .semantics import Value, constants, fail, narrowed, upper_bound

# -- the declarations ---------------------------------------------------------------


@dataclass(frozen=True)
class MapEntry:
    """A map the dissector uses: its declaration, its IR definition, its key and value types."""

    name: str
    declaration: MapDeclaration
    defn: MapDef
    key_ty: IntTy
    value_ty: IntTy

    @property
    def kind(self) -> MapKind:
        """Hash map, array or per-CPU array."""
        return self.defn.kind


@dataclass(frozen=True)
class ConfigEntry:
    """A load-time constant the dissector reads: its declaration, its place in .rodata, its type."""

    name: str
    declaration: Config
    defn: ConfigDef
    ty: IntTy


# C's keywords (C23's, with those of the GNU dialect clang and gcc take): `bpftool gen skeleton`
# writes each map and .rodata variable as a struct member of its name, which may be none of these.
C_KEYWORDS = frozenset(
    "alignas alignof asm auto bool break case char const constexpr continue default do double else enum extern "
    "false float for goto if inline int long nullptr register restrict return short signed sizeof static "
    "static_assert struct switch thread_local true typedef typeof typeof_unqual union unsigned void volatile "
    "while _Alignas _Alignof _Atomic _BitInt _Bool _Complex _Decimal128 _Decimal32 _Decimal64 _Generic "
    "_Imaginary _Noreturn _Static_assert _Thread_local".split()
)


def _type_name(obj: Any) -> str:
    return obj.__name__ if isinstance(obj, type) else repr(obj)


@dataclass
class MapTable:
    """The maps and load-time constants of one dissector, in the order its object lists them."""

    trees: dict[tuple[str, str], Any]  # the parsed files (source.py), to locate a declaration
    maps: dict[str, MapEntry] = field(default_factory=dict)
    configs: dict[str, ConfigEntry] = field(default_factory=dict)
    _by_object: dict[int, MapEntry | ConfigEntry] = field(default_factory=dict)
    _rodata_size: int = 0

    def discover(self, namespace: dict[str, Any]) -> None:
        """Take every declaration bound in a module's namespace, in the order of its assignments."""
        for name, obj in list(namespace.items()):
            if isinstance(obj, MapDeclaration):
                self.map(obj, name, None)
            elif isinstance(obj, Config):
                self.config(obj, name, None)

    def _span(self, obj: MapDeclaration | Config) -> Span:
        return declaration_span(obj.declared_at, self.trees)

    def _check_name(self, name: str, obj: MapDeclaration | Config, used_at: Span | None) -> None:
        """A name the ELF symbol, the BTF variable and the kernel's map name can all carry, and not taken."""
        if not (name.isascii() and name.isidentifier()):
            raise CompileNameError(f"the name `{name}` of a map or Config must be ASCII letters, digits and `_`", self._span(obj), hint="rename it")
        if name in C_KEYWORDS:
            raise CompileNameError(
                f"the name `{name}` of a map or Config is a C keyword: a libbpf skeleton (`bpftool gen skeleton`) could not name it",
                self._span(obj),
                hint="rename it",
            )
        if name in self.maps or name in self.configs:
            other: MapEntry | ConfigEntry = self.maps[name] if name in self.maps else self.configs[name]
            file, line = other.declaration.declared_at
            raise CompileNameError(
                f"two different maps or Configs are named `{name}` (the other is declared at {file}:{line}); an object has one symbol per name",
                used_at or self._span(obj),
                hint="rename one of them",
            )

    def _name(self, obj: MapDeclaration | Config, bound: str) -> str:
        """A declaration's name: the one its own module assigns it to, else the one it is bound to where it is used."""
        return declared_name(obj.declared_at, self.trees) or bound

    def map(self, obj: MapDeclaration, name: str, used_at: Span | None) -> MapEntry:
        """The map `obj` (bound to `name` where it is used), checked and added the first time."""
        known = self._by_object.get(id(obj))
        if known is not None:
            assert isinstance(known, MapEntry)
            return known
        name = self._name(obj, name)
        self._check_name(name, obj, used_at)
        span = self._span(obj)
        kind = MapKind(obj.kind)
        what = type(obj).__name__
        for role, ty in (("key", obj.key), ("value", obj.value)):
            if not is_integer_type(ty):
                raise CompileTypeError(
                    f"the {role} type of {what} `{name}` must be an integer type (u8, u16, u32, u64, i32, i64), not `{_type_name(ty)}`",
                    span,
                    hint="header values are not supported yet" if isinstance(ty, type) and role == "value" else None,
                )
        entries = obj.max_entries
        if not isinstance(entries, int) or isinstance(entries, bool) or not 1 <= entries <= MAX_ENTRIES_LIMIT:
            raise CompileTypeError(f"max_entries of {what} `{name}` must be an integer from 1 to {MAX_ENTRIES_LIMIT}, not {entries!r}", span)
        key_ty, value_ty = FROM_PYFD[obj.key], FROM_PYFD[obj.value]
        entry = MapEntry(name, obj, MapDef(name, kind, key_ty.name, value_ty.name, entries), key_ty, value_ty)
        self.maps[name] = entry
        self._by_object[id(obj)] = entry
        return entry

    def config(self, obj: Config, name: str, used_at: Span | None) -> ConfigEntry:
        """The load-time constant `obj`, checked and given its offset in .rodata the first time."""
        known = self._by_object.get(id(obj))
        if known is not None:
            assert isinstance(known, ConfigEntry)
            return known
        name = self._name(obj, name)
        self._check_name(name, obj, used_at)
        span = self._span(obj)
        if not is_integer_type(obj.type):
            raise CompileTypeError(f"Config `{name}` must have an integer type (u8, u16, u32, u64, i32, i64), not `{_type_name(obj.type)}`", span)
        ty: type[FixedInt] = obj.type
        default = obj.default
        if not isinstance(default, int) or isinstance(default, bool):
            raise CompileTypeError(f"the default of Config `{name}` must be an integer, not {default!r}", span)
        if not ty.min() <= default <= ty.max():
            raise CompileTypeError(f"the default {default} of Config `{name}` does not fit in {ty.__name__} ({ty.min()}..{ty.max()})", span)
        size = ty.bits // 8
        offset = -(-self._rodata_size // size) * size  # natural alignment, as a C compiler lays out .rodata
        self._rodata_size = offset + size
        entry = ConfigEntry(name, obj, ConfigDef(name, ty.__name__, offset, int(default)), FROM_PYFD[ty])
        self.configs[name] = entry
        self._by_object[id(obj)] = entry
        return entry

    def check_symbols(self, program: str, span: Span) -> None:
        """No map or Config may take the program's own symbol name."""
        entries: list[MapEntry | ConfigEntry] = [*self.maps.values(), *self.configs.values()]
        for entry in entries:
            if entry.name == program or entry.name == "_license":
                raise CompileNameError(
                    f"`{entry.name}` names both the dissector and a map or Config; an object has one symbol per name", span,
                    hint="rename one of them",
                )


# -- reading and writing -----------------------------------------------------------


def read_config(b: IRBuilder, entry: ConfigEntry, span: Span) -> Value:
    """A load-time constant as a value of its type (a load the verifier resolves: the map is frozen)."""
    raw = b.fresh("cfg")
    b.emit(LoadConfig(raw, entry.defn.offset, entry.defn.size, span))
    return _as_type(b, raw, entry.ty, span)


def _as_type(b: IRBuilder, raw: Reg, ty: IntTy, span: Span) -> Value:
    """A zero-extended load as a value of `ty` (sign-extended for a signed type)."""
    if ty.signed and ty.bits < 64:
        value = b.fresh()
        b.emit(Extend(True, ty.bits, value, raw, span))
        return Value(value, ty)
    return Value(raw, ty)


def hash_key(entry: MapEntry, key: Value, span: Span) -> Operand:
    """The key of a hash map: a value of its key type or one that widens to it; a literal must fit."""
    want = entry.key_ty
    if key.ty is LITERAL:
        assert key.const is not None
        if not want.contains(key.const):
            fail(
                span, f"{key.const} does not fit in a key of `{entry.name}`: {want} holds {want.min}..{want.max}",
                hint=f"write `{want}({key.const})` to wrap it on purpose",
            )
        return Imm(key.const)
    have = U8 if key.ty is BOOL else key.ty  # a condition's 0 or 1
    if have.signed != want.signed or have.bits > want.bits:
        fail(span, f"the key of `{entry.name}` is {want}; this is {key.ty}", hint=f"convert it on purpose: `{want}(...)`")
    return key.op


def index_bound(value: Value) -> int | None:
    """The largest value `value` can have, if it is known and it cannot be negative."""
    return upper_bound(value)


def bounded_index(entry: MapEntry, index: Value, text: str, span: Span) -> Operand:
    """An array index the compiler proves below max_entries, refused otherwise."""
    entries = entry.defn.max_entries
    if index.const is not None:
        if not 0 <= index.const < entries:
            raise MapAccessError(f"index {index.const} is outside `{entry.name}` (0..{entries - 1})", span)
        return Imm(index.const)
    bound = index_bound(index)
    if bound is None or bound >= entries:
        may = "may be negative" if bound is None and (index.ty.signed or constants(index)) else f"may be up to {bound if bound is not None else (1 << 64) - 1}"
        raise MapAccessError(
            f"`{entry.name}` has {entries} entries, and the index `{text}` {may}: the compiler cannot prove it in range",
            span,
            hint=f"use `{entry.name}.get({text}, 0)`, which checks, or an index it can bound: a constant, `i & {_mask(entries)}`, "
            f"`i % {entries}`, a local of a narrower type (a u8 for up to 256 entries), or a helper returning constants",
        )
    return index.op


def _mask(entries: int) -> int:
    """The largest all-ones mask below `entries` (what `i & mask` keeps in range)."""
    return (1 << (entries.bit_length() - 1)) - 1 if entries > 1 else 0


def _lookup(b: IRBuilder, entry: MapEntry, key: Operand, span: Span) -> tuple[Reg, str, str]:
    """bpf_map_lookup_elem and the NULL test the verifier insists on: the pointer and the blocks for found and absent."""
    ptr = b.fresh("val")
    b.emit(MapLookup(ptr, entry.name, key, span))
    found, absent = b.new_block("found"), b.new_block("absent")
    b.terminate(Branch(Cmp.NE, ptr, Imm(0), found, absent, span))
    return ptr, found, absent


def get(b: IRBuilder, entry: MapEntry, key: Value, default: Value, key_span: Span, span: Span) -> Value:
    """`m.get(key, default)`: the value at `key`, or `default` (narrowed to the value type) where there is none."""
    result = b.fresh("got")
    join, absent_path = b.new_block("got"), b.new_block("default")
    if entry.kind is MapKind.HASH:
        ptr, found, absent = _lookup(b, entry, hash_key(entry, key, key_span), span)
    else:
        operand = _checked_index(b, entry, key, absent_path, span)
        if operand is None:  # a constant outside the array
            b.terminate(Jump(absent_path, span))
            found = absent = ""
            ptr = None
        else:
            ptr, found, absent = _lookup(b, entry, operand, span)
    if ptr is not None:
        b.position(found)
        raw = b.fresh()
        b.emit(LoadMapValue(raw, ptr, entry.defn.value_size, span))
        b.emit(Copy(result, _as_type(b, raw, entry.value_ty, span).op, span))
        b.terminate(Jump(join, span))
        b.position(absent)
        b.terminate(Jump(absent_path, span))
    b.position(absent_path)
    b.emit(Copy(result, narrowed(b, default, entry.value_ty, span).op, span))
    b.terminate(Jump(join, span))
    b.position(join)
    return Value(result, entry.value_ty)


def _checked_index(b: IRBuilder, entry: MapEntry, index: Value, outside: str, span: Span) -> Operand | None:
    """An index of `.get` or `in`: itself if provably in range, else tested against max_entries first (None: a constant outside)."""
    entries = entry.defn.max_entries
    if index.const is not None:
        return Imm(index.const) if 0 <= index.const < entries else None
    bound = index_bound(index)
    if bound is not None and bound < entries:
        return index.op
    # Compared as 64 bits, so a wide or negative index cannot alias an entry
    # through the u32 key the lookup takes.
    inside = b.new_block("inside")
    b.terminate(Branch(Cmp.ULT, index.op, Imm(entries), inside, outside, span))
    b.position(inside)
    return index.op


def contains(b: IRBuilder, entry: MapEntry, key: Value, key_span: Span, span: Span, true: str, false: str) -> None:
    """`key in m` as control flow: a lookup for a hash map; for an array, whether the index is below max_entries."""
    if entry.kind is MapKind.HASH:
        ptr = b.fresh("val")
        b.emit(MapLookup(ptr, entry.name, hash_key(entry, key, key_span), span))
        b.terminate(Branch(Cmp.NE, ptr, Imm(0), true, false, span))
        return
    if key.const is not None:
        b.terminate(Jump(true if 0 <= key.const < entry.defn.max_entries else false, span))
        return
    b.terminate(Branch(Cmp.ULT, key.op, Imm(entry.defn.max_entries), true, false, span))


def read(b: IRBuilder, entry: MapEntry, index: Operand, span: Span) -> Value:
    """`a[i]` of an array, `i` proven in range (the NULL path the verifier wants reads 0)."""
    result = b.fresh("elem")
    join = b.new_block("elem")
    ptr, found, absent = _lookup(b, entry, index, span)
    b.position(found)
    raw = b.fresh()
    b.emit(LoadMapValue(raw, ptr, entry.defn.value_size, span))
    b.emit(Copy(result, _as_type(b, raw, entry.value_ty, span).op, span))
    b.terminate(Jump(join, span))
    b.position(absent)
    b.emit(Copy(result, Imm(0), span))
    b.terminate(Jump(join, span))
    b.position(join)
    return Value(result, entry.value_ty)


def store(b: IRBuilder, entry: MapEntry, key: Operand, value: Value, span: Span) -> None:
    """`m[k] = v`: bpf_map_update_elem for a hash map (a full map refuses a new key, silently); a store through the lookup for an array."""
    operand = narrowed(b, value, entry.value_ty, span).op
    if entry.kind is MapKind.HASH:
        b.emit(MapUpdate(entry.name, key, operand, BPF_ANY, span))
        return
    join = b.new_block("stored")
    ptr, found, absent = _lookup(b, entry, key, span)
    b.position(found)
    b.emit(StoreMapValue(ptr, entry.defn.value_size, operand, span))
    b.terminate(Jump(join, span))
    b.position(absent)
    b.terminate(Jump(join, span))
    b.position(join)


# The augmented assignments on a map element, and the BPF_ATOMIC operation of each
# (`-=` adds the negation: BPF_ATOMIC has no subtraction).
AUGMENTED: dict[str, AtomicOp] = {"+": AtomicOp.ADD, "-": AtomicOp.ADD, "|": AtomicOp.OR, "&": AtomicOp.AND, "^": AtomicOp.XOR}
_PLAIN = {AtomicOp.ADD: BinaryOp.ADD, AtomicOp.OR: BinaryOp.OR, AtomicOp.AND: BinaryOp.AND, AtomicOp.XOR: BinaryOp.XOR}


def augment(b: IRBuilder, entry: MapEntry, key: Operand, symbol: str, operand: Value, span: Span, operand_span: Span) -> None:
    """`m[k] op= v`: atomic on a hash map or an array, a plain read-modify-write of this CPU's copy on a per-CPU array.

    A hash map's absent key is first added with the value 0 (BPF_NOEXIST,
    so a key another CPU added meanwhile is kept) and looked up again; a full
    map leaves the statement without effect, as the kernel refuses the key.
    """
    op = AUGMENTED[symbol]
    if operand.const is not None and not -(1 << 63) <= operand.const < (1 << 64):
        fail(operand_span, f"the constant {operand.const} does not fit in 64 bits")
    src: Operand = operand.op
    if symbol == "-":
        if operand.const is not None:
            src = Imm(-operand.const)
        else:
            negated = b.fresh()
            b.emit(Unary(UnaryOp.NEG, negated, operand.op, span))
            src = negated
    size = entry.defn.value_size
    if entry.kind is not MapKind.PERCPU_ARRAY and size not in (4, 8):
        raise MapAccessError(
            f"`{symbol}=` on an element of `{entry.name}` is atomic, and BPF's atomic operations work on 32- and 64-bit values; "
            f"`{entry.name}` holds {entry.value_ty}",
            span,
            hint="declare its value as u32 or u64 (or a PerCPUArray, which needs no atomics)",
        )
    join = b.new_block("updated")
    ptr, found, absent = _lookup(b, entry, key, span)
    b.position(found)
    _apply(b, entry, op, ptr, src, size, span)
    b.terminate(Jump(join, span))
    b.position(absent)
    if entry.kind is MapKind.HASH:
        b.emit(MapUpdate(entry.name, key, Imm(0), BPF_NOEXIST, span))
        again, found_again, absent_again = _lookup(b, entry, key, span)
        b.position(found_again)
        _apply(b, entry, op, again, src, size, span)
        b.terminate(Jump(join, span))
        b.position(absent_again)
    b.terminate(Jump(join, span))
    b.position(join)


def _apply(b: IRBuilder, entry: MapEntry, op: AtomicOp, ptr: Reg, src: Operand, size: int, span: Span) -> None:
    """`*ptr op= src`: one atomic instruction, or (per-CPU) load, operate, store."""
    if entry.kind is not MapKind.PERCPU_ARRAY:
        b.emit(AtomicMapValue(op, ptr, size, src, span))
        return
    old, new = b.fresh(), b.fresh()
    b.emit(LoadMapValue(old, ptr, size, span))
    b.emit(Binary(_PLAIN[op], new, old, src, span))
    b.emit(StoreMapValue(ptr, size, new, span))


def delete(b: IRBuilder, entry: MapEntry, key: Operand, span: Span) -> None:
    """`del m[k]` of a hash map: bpf_map_delete_elem (an absent key is no error to the dissector)."""
    b.emit(MapDelete(entry.name, key, span))


def literal_fits(value: Value, ty: IntTy, span: Span, what: str) -> None:
    """A literal stored into a map value must fit it, as one stored into a keys field must."""
    if value.ty is LITERAL and value.const is not None and not ty.contains(value.const):
        fail(span, f"{value.const} does not fit in {what}: {ty} holds {ty.min}..{ty.max}", hint=f"write `{ty}({value.const})` to wrap it on purpose")


__all__ = [
    "AUGMENTED",
    "ConfigEntry",
    "MapEntry",
    "MapTable",
    "augment",
    "bounded_index",
    "contains",
    "delete",
    "get",
    "hash_key",
    "index_bound",
    "literal_fits",
    "read",
    "read_config",
    "store",
]
