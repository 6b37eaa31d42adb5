"""BPF maps: creating an object's maps, patching programs to use them, and reading and writing them.

A `Map` owns one map fd and reads like a dict: `m[k]`, `m[k] = v`, `del m[k]`,
`k in m`, `m.get(k, default)`, iteration over keys and items. Keys and values
of an integer type (as the map's BTF says, or a size of 1, 2, 4 or 8 bytes
without BTF) are Python ints, encoded little-endian (the host's order, which
is what the kernel stores); any other type is `bytes` of exactly its size. A
per-CPU map's value is a list with one value per possible CPU
(/sys/devices/system/cpu/possible); the kernel copies each CPU's value
rounded up to 8 bytes (kernel/bpf/syscall.c, bpf_map_value_size()).

Maps are created from an object's `MapDefinition`s as libbpf creates them
(libbpf.c, bpf_object__create_map and bpf_object__populate_internal_map):
with the object's BTF, so that `bpftool map dump` prints typed keys and
values, the global-data maps filled with their section's bytes, and
`.rodata` frozen (BPF_MAP_FREEZE) so that the verifier may take its contents
as constants (it does for a BPF_F_RDONLY_PROG map that user space can no
longer change: kernel/bpf/verifier.c, bpf_map_is_rdonly()).

Messages speak of maps, keys and values; the CLI adds its own advice.
"""

from __future__ import annotations

import errno
import functools
import os
import struct
import warnings
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from ..abi import (
    BPF_ANY,
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
    INSN_SIZE,
    PERCPU_MAP_TYPES,
    MapType,
)
from ..objfile import btf as btf_format
from . import bpf
from .errors import BpfError

if TYPE_CHECKING:  # the reader needs pyelftools: only loading an object imports it
    from ..objfile.reader import MapDefinition, MapReference

__all__ = [
    "Codec",
    "Map",
    "MapCollection",
    "MapKeyError",
    "UnknownMapError",
    "create_map",
    "possible_cpus",
    "relocate",
    "render",
]

POSSIBLE_CPUS: Final = "/sys/devices/system/cpu/possible"
# kernel/bpf/syscall.c, bpf_map_value_size(): per-CPU values are copied in
# 8-byte aligned slots, one per possible CPU.
PERCPU_VALUE_ALIGN: Final = 8

# Map types whose values are fds going in and ids coming out (kernel/bpf/arraymap.c,
# fd array maps): a slot can be empty, so these arrays do not have every index.
FD_ARRAY_TYPES: Final = frozenset({MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY, MapType.ARRAY_OF_MAPS})
ARRAY_TYPES: Final = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY}) | FD_ARRAY_TYPES
# Map types the kernel creates without key/value BTF (libbpf clears it for
# them, bpf_object__create_map).
_NO_BTF_TYPES: Final = frozenset(
    {
        MapType.PERF_EVENT_ARRAY,
        MapType.CGROUP_ARRAY,
        MapType.STACK_TRACE,
        MapType.ARRAY_OF_MAPS,
        MapType.HASH_OF_MAPS,
        MapType.DEVMAP,
        MapType.DEVMAP_HASH,
        MapType.CPUMAP,
        MapType.XSKMAP,
        MapType.SOCKMAP,
        MapType.SOCKHASH,
        MapType.QUEUE,
        MapType.STACK,
        MapType.ARENA,
    }
)


@functools.cache
def possible_cpus(path: str = POSSIBLE_CPUS) -> int:
    """The number of possible CPUs: how many values a per-CPU map holds per key."""
    with open(path, encoding="ascii") as file:
        text = file.read().strip()
    count = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def type_name(map_type: int) -> str:
    """A map type as bpftool names it (`hash`, `percpu_array`)."""
    try:
        return MapType(map_type).name.lower()
    except ValueError:
        return f"type {map_type}"


# --- keys and values ---------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """How one key or value is written to the kernel and read back: an integer, or opaque bytes."""

    size: int
    signed: bool = False
    integer: bool = False
    name: str = ""  # the C type, when BTF names one

    def describe(self) -> str:
        """The type in messages: `u16`, `i32`, `struct bpf_flow_keys (56 bytes)`."""
        if self.integer:
            return f"{'i' if self.signed else 'u'}{self.size * 8}"
        return f"{self.name} ({self.size} bytes)" if self.name else f"{self.size} bytes"

    def bounds(self) -> tuple[int, int]:
        """The smallest and largest integer this type holds."""
        bits = self.size * 8
        return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed else (0, (1 << bits) - 1)

    def encode(self, value: object, what: str) -> bytes:
        """The kernel's bytes for `value`; TypeError or ValueError, naming `what`, for one that does not fit."""
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
            if len(data) != self.size:
                raise ValueError(f"{what} is {self.describe()}; {len(data)} bytes were given")
            return data
        if not self.integer:
            raise TypeError(f"{what} is {self.describe()}: give bytes of that size, not {type(value).__name__}")
        if not isinstance(value, int):
            raise TypeError(f"{what} is an integer ({self.describe()}), not {type(value).__name__}")
        low, high = self.bounds()
        if not low <= value <= high:
            raise ValueError(f"{what} is {self.describe()} ({low}..{high}); {value} does not fit")
        return int(value).to_bytes(self.size, "little", signed=self.signed)

    def decode(self, data: bytes) -> int | bytes:
        """The Python value of the kernel's bytes."""
        if self.integer:
            return int.from_bytes(data[: self.size], "little", signed=self.signed)
        return bytes(data[: self.size])


def _c_name(btf: btf_format.Btf, type_id: int) -> str:
    """The C spelling of a type, as far as messages need it."""
    try:
        found = btf.type_by_id(type_id)
    except btf_format.BtfError:
        return ""
    match found:
        case btf_format.CompositeType():
            return f"{'union' if found.union else 'struct'} {found.name}".rstrip()
        case btf_format.ModifierType() if found.kind == btf_format.Kind.TYPEDEF:
            return found.name
        case btf_format.ModifierType():
            return _c_name(btf, found.type)
        case btf_format.IntType() | btf_format.EnumType() | btf_format.Enum64Type():
            return found.name
        case btf_format.DatasecType():
            return f"section {found.name}"
        case btf_format.ArrayType():
            return f"{_c_name(btf, found.type)}[{found.nelems}]"
    return ""


def codec_for(btf: btf_format.Btf | None, type_id: int, size: int) -> Codec:
    """The codec of a key or value of `size` bytes whose BTF type is `type_id` (0: none)."""
    if btf is not None and type_id:
        found: btf_format.BtfType | None = None
        current = type_id
        try:
            for _ in range(len(btf.types) + 1):
                found = btf.type_by_id(current)
                if not isinstance(found, btf_format.ModifierType):
                    break
                current = found.type
        except btf_format.BtfError:
            found = None
        if isinstance(found, btf_format.IntType) and found.size == size and found.offset == 0 and found.bits == size * 8:
            return Codec(size, bool(found.encoding & btf_format.IntEncoding.SIGNED), True, found.name)
        if isinstance(found, (btf_format.EnumType, btf_format.Enum64Type)) and found.size == size:
            return Codec(size, found.signed, True, found.name)
        return Codec(size, name=_c_name(btf, type_id))
    return Codec(size, integer=size in (1, 2, 4, 8))


def render(btf: btf_format.Btf | None, type_id: int, data: bytes) -> object:
    """A key or value as BTF describes it, for printing (as `bpftool map dump` does): JSON-ready.

    Integers and enums become ints, structs, unions and DATASECs (global
    data) dicts of their members or variables, arrays lists (char arrays
    text), anything else (bitfields, no BTF) the bytes themselves.
    """
    if btf is None or not type_id:
        return bytes(data)
    try:
        return _render(btf, type_id, data, 0)
    except (btf_format.BtfError, IndexError, ValueError):
        return bytes(data)


def _render(btf: btf_format.Btf, type_id: int, data: bytes, depth: int) -> object:
    if depth > 32:
        return bytes(data)
    found = btf.type_by_id(type_id)
    match found:
        case btf_format.ModifierType():
            return _render(btf, found.type, data, depth + 1)
        case btf_format.VarType():
            return _render(btf, found.type, data, depth + 1)
        case btf_format.IntType() if found.offset == 0 and found.bits == found.size * 8 and found.size <= 16:
            if found.encoding & btf_format.IntEncoding.BOOL:
                return bool(int.from_bytes(data[: found.size], "little"))
            return int.from_bytes(data[: found.size], "little", signed=bool(found.encoding & btf_format.IntEncoding.SIGNED))
        case btf_format.EnumType() | btf_format.Enum64Type():
            value = int.from_bytes(data[: found.size], "little", signed=found.signed)
            return next((name for name, v in found.values if v == value), value)
        case btf_format.CompositeType():
            # A union shows each member read from the same bytes; an unnamed
            # member's fields (the address union of struct bpf_flow_keys) are
            # listed in place, as C names them.
            out: dict[str, object] = {}
            for member in found.members:
                bit = member.offset & 0xFFFFFF if found.kind_flag else member.offset
                if bit % 8 or (found.kind_flag and member.offset >> 24):
                    return bytes(data[: found.size])  # bitfields: the bytes as they are
                start = bit // 8
                size = _size_of(btf, member.type)
                shown = _render(btf, member.type, data[start : start + size], depth + 1)
                if not member.name and isinstance(shown, dict):
                    out.update(shown)
                else:
                    out[member.name or f"@{start}"] = shown
            return out
        case btf_format.DatasecType():
            out = {}
            for info in found.vars:
                var = btf.type_by_id(info.type)
                name = var.name if isinstance(var, btf_format.VarType) else f"@{info.offset}"
                out[name] = _render(btf, info.type, data[info.offset : info.offset + info.size], depth + 1)
            return out
        case btf_format.ArrayType():
            size = _size_of(btf, found.type)
            element = btf.type_by_id(found.type) if found.type else None
            while isinstance(element, btf_format.ModifierType):
                element = btf.type_by_id(element.type)
            if isinstance(element, btf_format.IntType) and element.size == 1 and element.encoding & btf_format.IntEncoding.CHAR:
                return data[: found.nelems].split(b"\0", 1)[0].decode("utf-8", "replace")
            return [_render(btf, found.type, data[i * size : (i + 1) * size], depth + 1) for i in range(found.nelems)]
        case btf_format.PtrType():
            return int.from_bytes(data[:8], "little")
    return bytes(data)


def _size_of(btf: btf_format.Btf, type_id: int) -> int:
    """sizeof a BTF type (what its bytes take in a value)."""
    found = btf.type_by_id(type_id)
    match found:
        case btf_format.ModifierType() | btf_format.VarType():
            return _size_of(btf, found.type)
        case btf_format.ArrayType():
            return found.nelems * _size_of(btf, found.type)
        case btf_format.PtrType():
            return 8
        case btf_format.IntType() | btf_format.CompositeType() | btf_format.EnumType() | btf_format.Enum64Type() | btf_format.DatasecType() | btf_format.FloatType():
            return found.size
    raise btf_format.BtfError(f"no size for {found!r}")


# --- maps ----------------------------------------------------------------------------


class MapKeyError(KeyError):
    """A key a map cannot have (an index past an array's end); the message says why."""

    def __init__(self, key: object, message: str) -> None:
        super().__init__(key)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Map(MutableMapping[Any, Any]):
    """A BPF map this process holds an fd of; a dict of its keys and values (see the module docstring)."""

    def __init__(
        self,
        fd: int,
        *,
        name: str,
        map_type: int,
        key_size: int,
        value_size: int,
        max_entries: int,
        map_flags: int = 0,
        btf: btf_format.Btf | None = None,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
    ) -> None:
        self._fd: int | None = fd
        self.name = name
        self.type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.map_flags = map_flags
        self.btf = btf
        self.btf_key_type_id = btf_key_type_id
        self.btf_value_type_id = btf_value_type_id
        self.key_codec = codec_for(btf, btf_key_type_id, key_size)
        self.value_codec = codec_for(btf, btf_value_type_id, value_size)
        try:
            self.id = bpf.map_get_info(fd).id
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------

    @classmethod
    def from_fd(cls, fd: int, *, name: str | None = None) -> Map:
        """A Map owning `fd`, described by what the kernel reports, its BTF included when it has some."""
        try:
            info = bpf.map_get_info(fd)
            btf = _kernel_btf(info.btf_id) if info.btf_id else None
        except BaseException:
            os.close(fd)
            raise
        return cls(
            fd,
            name=name if name is not None else info.name,
            map_type=info.type,
            key_size=info.key_size,
            value_size=info.value_size,
            max_entries=info.max_entries,
            map_flags=info.map_flags,
            btf=btf,
            btf_key_type_id=info.btf_key_type_id,
            btf_value_type_id=info.btf_value_type_id,
        )

    @classmethod
    def open_pinned(cls, path: str, *, name: str | None = None) -> Map:
        """Open the map pinned at `path` in bpffs (named after the pin unless `name` is given)."""
        fd = bpf.obj_get(path)
        if bpf.fd_kind(fd) not in (None, "bpf-map"):
            kind = bpf.fd_kind(fd)
            os.close(fd)
            raise BpfError(errno.EINVAL, f"{path} is a {kind}, not a map", command=bpf.Cmd.BPF_OBJ_GET.name)
        return cls.from_fd(fd, name=os.path.basename(path) if name is None else name)

    # -- what it is ------------------------------------------------------------

    @property
    def fd(self) -> int:
        """The map's file descriptor (ValueError once closed)."""
        if self._fd is None:
            raise ValueError(f"map {self.name!r} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._fd is None

    @property
    def type_name(self) -> str:
        """The map type as bpftool names it (`hash`, `prog_array`)."""
        return type_name(self.type)

    @property
    def percpu(self) -> bool:
        """True for a per-CPU map: each value is a list with one value per possible CPU."""
        return self.type in PERCPU_MAP_TYPES

    @property
    def is_array(self) -> bool:
        """True for array maps, whose keys are the indices 0..max_entries-1."""
        return self.type in ARRAY_TYPES

    @property
    def frozen(self) -> bool:
        """True once BPF_MAP_FREEZE made the map read-only from user space (as /proc/self/fdinfo says)."""
        try:
            with open(f"/proc/self/fdinfo/{self.fd}", encoding="ascii") as fdinfo:
                return any(line.split() == ["frozen:", "1"] for line in fdinfo)
        except OSError:
            return False

    def info(self) -> bpf.MapInfo:
        """What the kernel reports about the map now."""
        return bpf.map_get_info(self.fd)

    # -- keys and values -------------------------------------------------------

    def _key(self, key: object) -> bytes:
        if self.is_array and isinstance(key, int) and not 0 <= key < self.max_entries:
            raise KeyError(key)
        return self.key_codec.encode(key, f"a key of map {self.name!r}")

    def _value_buffer_size(self) -> int:
        if self.percpu:
            return -(-self.value_size // PERCPU_VALUE_ALIGN) * PERCPU_VALUE_ALIGN * possible_cpus()
        return self.value_size

    def _decode_value(self, data: bytes) -> Any:
        if not self.percpu:
            return self.value_codec.decode(data)
        stride = -(-self.value_size // PERCPU_VALUE_ALIGN) * PERCPU_VALUE_ALIGN
        return [self.value_codec.decode(data[i : i + stride]) for i in range(0, len(data), stride)]

    def _encode_value(self, value: object) -> bytes:
        what = f"a value of map {self.name!r}"
        if self.type in FD_ARRAY_TYPES and hasattr(value, "fd"):
            value = value.fd  # a LoadedProgram (or a Map, for a map of maps): the kernel takes its fd
        if not self.percpu:
            return self.value_codec.encode(value, what)
        stride = -(-self.value_size // PERCPU_VALUE_ALIGN) * PERCPU_VALUE_ALIGN
        cpus = possible_cpus()
        if isinstance(value, (list, tuple)):
            if len(value) != cpus:
                raise ValueError(f"{what} is per-CPU: give one value per possible CPU ({cpus}), not {len(value)}")
            parts = [self.value_codec.encode(v, f"{what} (CPU {i})") for i, v in enumerate(value)]
        else:
            parts = [self.value_codec.encode(value, what)] * cpus  # one value for every CPU
        return b"".join(part.ljust(stride, b"\0") for part in parts)

    def lookup_raw(self, key: object) -> bytes | None:
        """The kernel's bytes of the value at `key` (per-CPU: every CPU's, each padded to 8 bytes), or None."""
        try:
            raw_key = self._key(key)
        except KeyError:
            return None
        return bpf.map_lookup_elem(self.fd, raw_key, self._value_buffer_size())

    def lookup(self, key: object) -> Any:
        """The value at `key`, or None when there is none."""
        data = self.lookup_raw(key)
        return None if data is None else self._decode_value(data)

    def __getitem__(self, key: object) -> Any:
        value = self.lookup(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: object, default: Any = None) -> Any:
        """The value at `key`, or `default` when there is none."""
        value = self.lookup(key)
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return self.lookup(key) is not None

    def set(self, key: object, value: object, *, flags: int = BPF_ANY) -> None:
        """Write `value` at `key` with BPF_MAP_UPDATE_ELEM flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST).

        A prog array's value is a program (a LoadedProgram or its fd); it reads
        back as the program's id. A per-CPU value is a list with one value per
        possible CPU, or one value for all of them.
        """
        if self.is_array and isinstance(key, int) and not 0 <= key < self.max_entries:
            raise MapKeyError(key, f"index {key} is outside array map {self.name!r} (0..{self.max_entries - 1})")
        raw_key = self.key_codec.encode(key, f"a key of map {self.name!r}")
        raw_value = self._encode_value(value)
        try:
            bpf.map_update_elem(self.fd, raw_key, raw_value, flags=flags)
        except BpfError as exc:
            raise self._explain(exc, "writing") from None

    def __setitem__(self, key: object, value: object) -> None:
        self.set(key, value)

    def __delitem__(self, key: object) -> None:
        if self.type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            raise TypeError(
                f"map {self.name!r} is an {self.type_name} map: it has every index 0..{self.max_entries - 1} "
                "and none can be deleted (write 0 instead)"
            )
        try:
            raw_key = self._key(key)
        except KeyError:
            raise KeyError(key) from None
        try:
            deleted = bpf.map_delete_elem(self.fd, raw_key)
        except BpfError as exc:
            raise self._explain(exc, "deleting in") from None
        if not deleted:
            raise KeyError(key)

    def _explain(self, exc: BpfError, doing: str) -> BpfError:
        """The kernel's refusal, said of this map (full, frozen, ...)."""
        code = exc.errno or 0
        if code == errno.E2BIG:
            reason = f"it is full: it holds max_entries ({self.max_entries}) elements and refuses a new key"
        elif code == errno.EPERM and self.frozen:
            reason = "it is frozen (BPF_MAP_FREEZE): read-only from user space, for good (a program's constants)"
        else:
            return exc
        return BpfError(code, f"{doing} map {self.name!r} failed: {reason}", command=exc.command)

    def _raw_keys(self) -> Iterator[bytes]:
        key: bytes | None = None
        seen = 0
        while True:
            key = bpf.map_get_next_key(self.fd, key, self.key_size)
            if key is None:
                return
            yield key
            seen += 1
            if seen > self.max_entries:  # a hash changing under the walk restarts it: do not loop forever
                return

    def __iter__(self) -> Iterator[Any]:
        for raw in self._raw_keys():
            if self.type in FD_ARRAY_TYPES and bpf.map_lookup_elem(self.fd, raw, self._value_buffer_size()) is None:
                continue  # an empty slot
            yield self.key_codec.decode(raw)

    def items(self) -> Iterator[tuple[Any, Any]]:  # type: ignore[override]
        """(key, value) pairs in the kernel's order; elements deleted during the walk are skipped."""
        for raw in self._raw_keys():
            data = bpf.map_lookup_elem(self.fd, raw, self._value_buffer_size())
            if data is not None:
                yield self.key_codec.decode(raw), self._decode_value(data)

    def raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) as the kernel's bytes (a per-CPU value: every CPU's, each padded to 8 bytes)."""
        for raw in self._raw_keys():
            data = bpf.map_lookup_elem(self.fd, raw, self._value_buffer_size())
            if data is not None:
                yield raw, data

    def render_key(self, raw: bytes) -> object:
        """A key's bytes as its BTF type describes them (see `render`)."""
        if self.key_codec.integer:
            return self.key_codec.decode(raw)
        return render(self.btf, self.btf_key_type_id, raw)

    def render_value(self, raw: bytes) -> object:
        """A value's bytes as its BTF type describes them (see `render`); a per-CPU value as a list."""
        if self.percpu:
            stride = -(-self.value_size // PERCPU_VALUE_ALIGN) * PERCPU_VALUE_ALIGN
            return [self._render_one(raw[i : i + stride]) for i in range(0, len(raw), stride)]
        return self._render_one(raw)

    def _render_one(self, raw: bytes) -> object:
        if self.value_codec.integer:
            return self.value_codec.decode(raw)
        return render(self.btf, self.btf_value_type_id, raw[: self.value_size])

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        """The values, in the kernel's order of keys."""
        return (value for _, value in self.items())

    def __len__(self) -> int:
        """Arrays: max_entries (every index exists); others: the elements counted by walking the keys."""
        if self.type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            return self.max_entries
        return sum(1 for _ in self)

    def clear(self) -> None:
        """Remove every element; an array's elements are set to zero instead."""
        if self.type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            zero = bytes(self._value_buffer_size())
            for index in range(self.max_entries):
                bpf.map_update_elem(self.fd, self.key_codec.encode(index, "an index"), zero)
            return
        for raw in list(self._raw_keys()):
            bpf.map_delete_elem(self.fd, raw)

    def freeze(self) -> None:
        """Make the map read-only from user space for good (BPF_MAP_FREEZE); programs' access is unchanged."""
        bpf.map_freeze(self.fd)

    # -- life ------------------------------------------------------------------

    def pin(self, path: str) -> None:
        """Pin the map in bpffs so that it outlives this process."""
        bpf.obj_pin(fd=self.fd, path=path)

    def close(self) -> None:
        """Release the fd; the kernel frees the map when nothing else (a program, a pin) holds it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> Map:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            warnings.warn(f"map {self.name!r} (fd {self._fd}) was never closed", ResourceWarning, stacklevel=2)
            try:
                self.close()
            except OSError:
                pass

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else f"fd={self._fd}"
        return (
            f"Map(name={self.name!r}, type={self.type_name}, key={self.key_codec.describe()}, "
            f"value={self.value_codec.describe()}, max_entries={self.max_entries}, {state})"
        )

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__


def _kernel_btf(btf_id: int) -> btf_format.Btf | None:
    """The BTF the kernel holds under `btf_id`, decoded; None where it cannot be read (it only makes printing nicer)."""
    try:
        fd = bpf.btf_get_fd_by_id(btf_id)
    except BpfError:
        return None
    try:
        return btf_format.decode_btf(bpf.btf_get_data(fd))
    except (BpfError, btf_format.BtfError, ValueError):
        return None
    finally:
        os.close(fd)


class UnknownMapError(KeyError):
    """No map of that name; the message lists the maps there are."""

    def __init__(self, name: str, names: Sequence[str], where: str = "the program") -> None:
        super().__init__(name)
        self.name = name
        self.names = tuple(names)
        listed = ", ".join(self.names) if self.names else "none"
        self.message = f"{where} has no map {name!r}; its maps: {listed}"

    def __str__(self) -> str:
        return self.message


class MapCollection(Mapping[str, Map]):
    """A loaded program's maps by their names in the object (`tunnel_ports`, `.rodata`)."""

    def __init__(self, maps: Sequence[Map] = (), *, owner: str = "the program") -> None:
        self._maps = {m.name: m for m in maps}
        self._owner = owner

    def __getitem__(self, name: str) -> Map:
        try:
            return self._maps[name]
        except KeyError:
            raise UnknownMapError(name, list(self._maps), self._owner) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._maps)

    def __len__(self) -> int:
        return len(self._maps)

    def close(self) -> None:
        """Close every map's fd."""
        for each in self._maps.values():
            each.close()

    def __repr__(self) -> str:
        return f"MapCollection({', '.join(self._maps)})"


# --- creating an object's maps ------------------------------------------------------------


def kernel_map_name(definition: MapDefinition, object_name: str) -> str:
    """The name BPF_MAP_CREATE gets, as libbpf chooses it.

    A map of `.maps` keeps its variable's name (the kernel keeps 15
    characters). A global-data map is named after the object and the section,
    `objname.rodata`, with up to 8 characters of the object (more when the
    section's name is shorter than 7), or the section's name alone for a
    custom section such as `.rodata.config` (libbpf.c, internal_map_name).
    """
    limit = bpf.BPF_OBJ_NAME_LEN - 1
    if not definition.global_data:
        name = definition.name[:limit]
    else:
        real = definition.name
        suffix = min(max(7, len(real)), limit)
        prefix = 0 if "." in real[1:] else min(limit - suffix, len(object_name))
        name = (object_name[:prefix] + real[:suffix])[:limit]
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_.") else "_" for ch in name)


def create_map(
    definition: MapDefinition,
    *,
    object_name: str = "",
    btf_fd: int = 0,
    btf: btf_format.Btf | None = None,
) -> Map:
    """Create the map an object defines, with its BTF types when there are some, as libbpf does.

    A map whose BTF the kernel refuses is created again without it, as libbpf
    does (only printing loses its types). Global data is not filled here:
    see `fill_global_data`.
    """
    name = kernel_map_name(definition, object_name)
    key_type, value_type = definition.btf_key_type_id, definition.btf_value_type_id
    if definition.type in _NO_BTF_TYPES or not btf_fd:
        key_type = value_type = 0
    options: dict[str, Any] = {
        "map_type": definition.type,
        "key_size": definition.key_size,
        "value_size": definition.value_size,
        "max_entries": definition.max_entries,
        "name": name,
        "map_flags": definition.map_flags,
        "numa_node": definition.numa_node,
        "map_extra": definition.map_extra,
    }
    try:
        if key_type or value_type:
            try:
                fd = bpf.map_create(btf_fd=btf_fd, btf_key_type_id=key_type, btf_value_type_id=value_type, **options)
            except BpfError as exc:
                if exc.errno in (errno.EPERM, errno.ENOMEM):
                    raise
                key_type = value_type = 0
                fd = bpf.map_create(**options)
        else:
            fd = bpf.map_create(**options)
    except BpfError as exc:
        raise BpfError(
            exc.errno or errno.EINVAL,
            f"creating map {definition.name!r} ({type_name(definition.type)}, key {definition.key_size} bytes, "
            f"value {definition.value_size} bytes, max_entries {definition.max_entries}, flags "
            f"{definition.map_flags:#x}) failed: {exc.message.partition(' failed: ')[2] or exc.message}",
            command=exc.command,
        ) from None
    return Map(
        fd,
        name=definition.name,
        map_type=definition.type,
        key_size=definition.key_size,
        value_size=definition.value_size,
        max_entries=definition.max_entries,
        map_flags=definition.map_flags,
        btf=btf if key_type or value_type else None,
        btf_key_type_id=key_type,
        btf_value_type_id=value_type,
    )


def fill_global_data(target: Map, definition: MapDefinition, image: bytes | None = None) -> None:
    """Write a global-data map's one value (the section's bytes, or `image`), then freeze it if it is `.rodata`."""
    data = image if image is not None else definition.initial or bytes(definition.value_size)
    if len(data) != definition.value_size:
        raise ValueError(f"{definition.name}: {len(data)} bytes for a {definition.value_size}-byte section")
    bpf.map_update_elem(target.fd, bytes(4), data)
    if definition.read_only:
        # libbpf.c, bpf_object__populate_internal_map: frozen, so that a
        # BPF_F_RDONLY_PROG map's contents are constants to the verifier.
        target.freeze()


# --- relocating programs ---------------------------------------------------------------

_INSN = struct.Struct("<BBhi")  # code, dst_reg | src_reg << 4, off, imm


def relocate(code: bytes, references: Sequence[MapReference], fds: Mapping[str, int]) -> bytes:
    """The program with each map reference's ld_imm64 patched to use the map's fd (libbpf: bpf_object__relocate_data).

    `r = map` gets src_reg BPF_PSEUDO_MAP_FD and imm = fd; `r = &map[0] + off`
    gets BPF_PSEUDO_MAP_VALUE, imm = fd and off in the second slot's imm.
    """
    out = bytearray(code)
    for reference in references:
        at = reference.insn * INSN_SIZE
        opcode, regs, offset, _ = _INSN.unpack_from(out, at)
        fd = fds[reference.map]
        if reference.value_offset is None:
            src = BPF_PSEUDO_MAP_FD
        else:
            src = BPF_PSEUDO_MAP_VALUE
            next_code, next_regs, next_off, _ = _INSN.unpack_from(out, at + INSN_SIZE)
            _INSN.pack_into(out, at + INSN_SIZE, next_code, next_regs, next_off, reference.value_offset)
        _INSN.pack_into(out, at, opcode, (regs & 0x0F) | src << 4, offset, fd)
    return bytes(out)
