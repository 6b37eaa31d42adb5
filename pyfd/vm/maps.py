"""The interpreter's maps: arrays, hashes (LRU too), per-CPU maps as one CPU, and prog arrays, in memory.

Each map is made from the object's MapDefinition and behaves as the kernel's
map of that type does for a program (kernel/bpf/arraymap.c, hashtab.c):
`lookup_elem` gives the address of the value (0 for none), and values live
in regions of the interpreter's address space, one per element, so a
program's pointer into a value is bounds-checked against that value alone.
`update_elem` and `delete_elem` return 0 or the kernel's negative errno.
From Python a map reads like pyfd.runtime's Map (a dict: `m[k]`, `m[k] = v`,
`del m[k]`, `k in m`, iteration): integer keys and values (an integer BTF
type, or a size of 1, 2, 4 or 8 bytes without BTF) are ints, others bytes;
a per-CPU value is a list with one value, the interpreter's one CPU.
"""

from __future__ import annotations

import errno
from collections import OrderedDict
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..abi import BPF_ANY, BPF_EXIST, BPF_F_RDONLY_PROG, BPF_NOEXIST, PERCPU_MAP_TYPES, MapType
from ..objfile import btf as btf_format
from .memory import AddressSpace, Region

if TYPE_CHECKING:
    from ..objfile.reader import MapDefinition

__all__ = ["ArrayMap", "HashMap", "ProgArray", "UnsupportedMap", "VmMap", "VmMapCollection", "make_map"]

M64: Final = (1 << 64) - 1
# BPF_F_LOCK is the only update flag beside the three modes (include/uapi/linux/bpf.h).
BPF_F_LOCK: Final = 4


def _neg(code: int) -> int:
    """A negative errno as the helper's 64-bit return value."""
    return -code & M64


@dataclass(frozen=True)
class Codec:
    """A key or value as Python sees it: an integer of its size, or bytes."""

    size: int
    signed: bool = False
    integer: bool = False

    def encode(self, value: object, what: str) -> bytes:
        """The bytes of `value`; TypeError or ValueError naming `what` when it does not fit."""
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
            if len(data) != self.size:
                raise ValueError(f"{what} is {self.size} bytes; {len(data)} were given")
            return data
        if not self.integer or isinstance(value, bool) or not isinstance(value, int):
            kind = "an integer or bytes" if self.integer else "bytes"
            raise TypeError(f"{what} is {kind} of {self.size} bytes, not {type(value).__name__}")
        bits = self.size * 8
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed else (0, (1 << bits) - 1)
        if not low <= value <= high:
            raise ValueError(f"{what} is {'i' if self.signed else 'u'}{bits} ({low}..{high}); {value} does not fit")
        return value.to_bytes(self.size, "little", signed=self.signed)

    def decode(self, data: bytes) -> int | bytes:
        """The Python value of the bytes."""
        return int.from_bytes(data, "little", signed=self.signed) if self.integer else bytes(data)


def codec_for(btf: btf_format.Btf | None, type_id: int, size: int) -> Codec:
    """How a key or value of `size` bytes with BTF type `type_id` (0: none) reads in Python."""
    if btf is None or not type_id:
        return Codec(size, integer=size in (1, 2, 4, 8))
    found: object = None
    try:
        for _ in range(len(btf.types) + 1):
            found = btf.type_by_id(type_id)
            if not isinstance(found, btf_format.ModifierType):
                break
            type_id = found.type
    except btf_format.BtfFormatError:
        return Codec(size)
    if isinstance(found, btf_format.IntType) and found.size == size and found.offset == 0 and found.bits == size * 8:
        return Codec(size, bool(found.encoding & btf_format.IntEncoding.SIGNED), True)
    if isinstance(found, (btf_format.EnumType, btf_format.Enum64Type)) and found.size == size:
        return Codec(size, found.signed, True)
    return Codec(size)


class VmMap(MutableMapping[Any, Any]):
    """One map of the interpreter (see the module docstring); subclasses per map type."""

    def __init__(self, definition: MapDefinition, space: AddressSpace, btf: btf_format.Btf | None = None) -> None:
        self.definition = definition
        self.name = definition.name
        self.type = definition.type
        self.key_size = definition.key_size
        self.value_size = definition.value_size
        self.max_entries = definition.max_entries
        self.map_flags = definition.map_flags
        self.space = space
        self.key_codec = codec_for(btf, definition.btf_key_type_id, definition.key_size)
        self.value_codec = codec_for(btf, definition.btf_value_type_id, definition.value_size)
        self.percpu = definition.type in PERCPU_MAP_TYPES
        # Programs may not write a BPF_F_RDONLY_PROG map (.rodata): its values are read-only regions.
        self.program_writable = not (definition.map_flags & BPF_F_RDONLY_PROG or definition.read_only)
        # The map itself, as `r1 = map ll` gives it: an address no load or store may use.
        self.address = space.add(Region(f"map {self.name!r} (the map itself, not a value)", b"", False, "map"))

    @property
    def type_name(self) -> str:
        """The map type's name (`hash`, `prog_array`), as bpftool prints it."""
        try:
            return MapType(self.type).name.lower()
        except ValueError:
            return f"type {self.type}"

    def __repr__(self) -> str:
        return f"<VmMap {self.name!r} {self.type_name}, {self.max_entries} entries>"

    # -- the program's side: raw bytes in, addresses and errnos out --------------

    def lookup_elem(self, key: bytes) -> int:
        """bpf_map_lookup_elem: the value's address, or 0."""
        raise NotImplementedError

    def update_elem(self, key: bytes, value: bytes, flags: int) -> int:
        """bpf_map_update_elem: 0, or a negative errno (as a 64-bit value)."""
        raise NotImplementedError

    def delete_elem(self, key: bytes) -> int:
        """bpf_map_delete_elem: 0, or a negative errno (as a 64-bit value)."""
        raise NotImplementedError

    def raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) bytes of every element."""
        raise NotImplementedError

    def value_bytes(self, key: bytes) -> bytes | None:
        """The value's bytes at `key`, or None."""
        address = self.lookup_elem(key)
        return None if not address else self.space.read(address, self.value_size)

    # -- Python's side --------------------------------------------------------------

    def _key(self, key: object) -> bytes:
        return self.key_codec.encode(key, f"a key of map {self.name!r}")

    def _decode_value(self, data: bytes) -> Any:
        value = self.value_codec.decode(data)
        return [value] if self.percpu else value

    def _encode_value(self, value: object) -> bytes:
        what = f"a value of map {self.name!r}"
        if self.percpu and isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise ValueError(f"{what} is per-CPU and the interpreter has one CPU: give one value, not {len(value)}")
            value = value[0]
        return self.value_codec.encode(value, what)

    def __getitem__(self, key: object) -> Any:
        try:
            raw = self._key(key)
        except ValueError:
            raise KeyError(key) from None
        data = self.value_bytes(raw)
        if data is None:
            raise KeyError(key)
        return self._decode_value(data)

    def set(self, key: object, value: object, *, flags: int = BPF_ANY) -> None:
        """Write `value` at `key` with BPF_MAP_UPDATE_ELEM flags; OSError with the kernel's errno on refusal."""
        code = self.update_elem(self._key(key), self._encode_value(value), flags)
        if code:
            number = -(code - (1 << 64))
            raise OSError(number, f"writing map {self.name!r} failed: {errno.errorcode.get(number, number)}")

    def __setitem__(self, key: object, value: object) -> None:
        self.set(key, value)

    def __delitem__(self, key: object) -> None:
        code = self.delete_elem(self._key(key))
        if code == _neg(errno.ENOENT):
            raise KeyError(key)
        if code:
            raise TypeError(f"map {self.name!r} is {self.type_name} map: its elements cannot be deleted")

    def __iter__(self) -> Iterator[Any]:
        for key, _ in self.raw_items():
            yield self.key_codec.decode(key)

    def __len__(self) -> int:
        return sum(1 for _ in self.raw_items())

    def items(self) -> Iterator[tuple[Any, Any]]:  # type: ignore[override]
        """(key, value) pairs."""
        for key, value in self.raw_items():
            yield self.key_codec.decode(key), self._decode_value(value)

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        """The values, in the order of keys."""
        return (value for _, value in self.items())


def _check_update_flags(flags: int) -> int:
    """-EINVAL for flags the kernel refuses (anything but BPF_ANY, BPF_NOEXIST, BPF_EXIST and BPF_F_LOCK)."""
    return _neg(errno.EINVAL) if flags & ~BPF_F_LOCK > BPF_EXIST else 0


class ArrayMap(VmMap):
    """ARRAY and PERCPU_ARRAY (and the one-element maps of `.data`, `.rodata`, `.bss`): every index exists."""

    def __init__(self, definition: MapDefinition, space: AddressSpace, btf: btf_format.Btf | None = None) -> None:
        super().__init__(definition, space, btf)
        self.storage = bytearray(self.value_size * self.max_entries)
        if definition.initial:
            self.storage[: len(definition.initial)] = definition.initial
        self._view = memoryview(self.storage)
        self._addresses: dict[int, int] = {}

    def element_address(self, index: int) -> int:
        """The address of element `index` (a region of its own, made on first use)."""
        address = self._addresses.get(index)
        if address is None:
            size = self.value_size
            label = f"map {self.name!r} value" if self.max_entries == 1 else f"map {self.name!r} value [{index}]"
            region = Region(label, self._view[index * size : (index + 1) * size], self.program_writable, "map value")
            address = self._addresses[index] = self.space.add(region)
        return address

    def _index(self, key: bytes) -> int:
        return int.from_bytes(key[:4], "little")

    def lookup_elem(self, key: bytes) -> int:
        index = self._index(key)
        return self.element_address(index) if index < self.max_entries else 0

    def update_elem(self, key: bytes, value: bytes, flags: int) -> int:
        # kernel/bpf/arraymap.c, array_map_update_elem: flags, then the index, then NOEXIST.
        if _check_update_flags(flags):
            return _neg(errno.EINVAL)
        index = self._index(key)
        if index >= self.max_entries:
            return _neg(errno.E2BIG)
        if flags & BPF_NOEXIST:
            return _neg(errno.EEXIST)
        start = index * self.value_size
        self.storage[start : start + self.value_size] = value[: self.value_size]
        return 0

    def delete_elem(self, key: bytes) -> int:
        return _neg(errno.EINVAL)  # array_map_delete_elem

    def raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        size = self.value_size
        for index in range(self.max_entries):
            yield index.to_bytes(self.key_size, "little"), bytes(self.storage[index * size : (index + 1) * size])

    def __getitem__(self, key: object) -> Any:
        if isinstance(key, int) and not isinstance(key, bool) and not 0 <= key < self.max_entries:
            raise KeyError(key)
        return super().__getitem__(key)

    def __len__(self) -> int:
        return self.max_entries


class HashMap(VmMap):
    """HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH: a full map refuses a new key (LRU: evicts the oldest)."""

    def __init__(self, definition: MapDefinition, space: AddressSpace, btf: btf_format.Btf | None = None) -> None:
        super().__init__(definition, space, btf)
        self.lru = definition.type in (MapType.LRU_HASH, MapType.LRU_PERCPU_HASH)
        self._elements: OrderedDict[bytes, tuple[int, bytearray]] = OrderedDict()
        # Region numbers of deleted elements, reused by the next insert (the
        # kernel's preallocated elements are recycled the same way).
        self._free: list[tuple[int, bytearray]] = []

    def lookup_elem(self, key: bytes) -> int:
        found = self._elements.get(key)
        if found is None:
            return 0
        if self.lru:
            self._elements.move_to_end(key)
        return found[0]

    def _new_element(self) -> tuple[int, bytearray]:
        if self._free:
            return self._free.pop()
        buf = bytearray(self.value_size)
        address = self.space.add(Region(f"a value of map {self.name!r}", buf, self.program_writable, "map value"))
        return address, buf

    def update_elem(self, key: bytes, value: bytes, flags: int) -> int:
        # kernel/bpf/hashtab.c, htab_map_update_elem and check_flags.
        if _check_update_flags(flags):
            return _neg(errno.EINVAL)
        found = self._elements.get(key)
        if found is not None and flags & BPF_NOEXIST:
            return _neg(errno.EEXIST)
        if found is None and flags & BPF_EXIST:
            return _neg(errno.ENOENT)
        if found is None:
            if len(self._elements) >= self.max_entries:
                if not self.lru:
                    return _neg(errno.E2BIG)
                _, evicted = self._elements.popitem(last=False)
                self._free.append(evicted)
            found = self._new_element()
            self._elements[key] = found
        elif self.lru:
            self._elements.move_to_end(key)
        found[1][:] = value[: self.value_size].ljust(self.value_size, b"\0")
        return 0

    def delete_elem(self, key: bytes) -> int:
        found = self._elements.pop(key, None)
        if found is None:
            return _neg(errno.ENOENT)
        self._free.append(found)
        return 0

    def raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        for key, (_, buf) in list(self._elements.items()):
            yield key, bytes(buf)

    def __len__(self) -> int:
        return len(self._elements)


class ProgArray(VmMap):
    """PROG_ARRAY: slots holding programs for bpf_tail_call; a program cannot read it (the verifier refuses)."""

    def __init__(self, definition: MapDefinition, space: AddressSpace, btf: btf_format.Btf | None = None) -> None:
        super().__init__(definition, space, btf)
        self.slots: dict[int, Any] = {}  # index -> an entry with .call(r1, depth) (pyfd.vm.machine.Entry)
        self.key_codec = Codec(definition.key_size, integer=True)

    def lookup_elem(self, key: bytes) -> int:
        return 0

    def update_elem(self, key: bytes, value: bytes, flags: int) -> int:
        return _neg(errno.EINVAL)

    def delete_elem(self, key: bytes) -> int:
        return _neg(errno.EINVAL)

    def target(self, index: int) -> Any:
        """The program in slot `index`, or None."""
        return self.slots.get(index)

    def raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        for index in sorted(self.slots):
            yield index.to_bytes(self.key_size, "little"), b""

    def __getitem__(self, key: object) -> Any:
        if not isinstance(key, int) or key not in self.slots:
            raise KeyError(key)
        return self.slots[key]

    def set(self, key: object, value: object, *, flags: int = BPF_ANY) -> None:
        """Put a program (a program `pyfd.vm.load` gave, or a name the map's object defines) into slot `key`."""
        if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < self.max_entries:
            raise KeyError(f"slot {key!r} is outside prog array {self.name!r} (0..{self.max_entries - 1})")
        entry = getattr(value, "entry", value)
        if not callable(getattr(entry, "call", None)):
            raise TypeError(f"a slot of prog array {self.name!r} takes a program the interpreter loaded, not {type(value).__name__}")
        self.slots[key] = entry

    def __delitem__(self, key: object) -> None:
        if not isinstance(key, int) or key not in self.slots:
            raise KeyError(key)
        del self.slots[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(sorted(self.slots))

    def items(self) -> Iterator[tuple[Any, Any]]:  # type: ignore[override]
        """(slot, program) pairs."""
        for index in sorted(self.slots):
            yield index, self.slots[index]

    def __len__(self) -> int:
        return len(self.slots)


class UnsupportedMap(VmMap):
    """A map type the interpreter does not model (ring buffers, perf arrays, ...): a program may pass it around, not use it."""

    def lookup_elem(self, key: bytes) -> int:
        raise NotImplementedError(f"the interpreter does not model {self.type_name} maps (map {self.name!r})")

    update_elem = delete_elem = lookup_elem  # type: ignore[assignment]

    def raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(())


_KINDS: Final[dict[int, type[VmMap]]] = {
    MapType.ARRAY: ArrayMap,
    MapType.PERCPU_ARRAY: ArrayMap,
    MapType.HASH: HashMap,
    MapType.PERCPU_HASH: HashMap,
    MapType.LRU_HASH: HashMap,
    MapType.LRU_PERCPU_HASH: HashMap,
    MapType.PROG_ARRAY: ProgArray,
}


def make_map(definition: MapDefinition, space: AddressSpace, btf: btf_format.Btf | None = None) -> VmMap:
    """The interpreter's map for one MapDefinition of an object."""
    return _KINDS.get(definition.type, UnsupportedMap)(definition, space, btf)


class VmMapCollection(Mapping[str, VmMap]):
    """A program's maps by name, as `LoadedProgram.maps` holds the kernel's."""

    def __init__(self, maps: Sequence[VmMap] = (), *, owner: str = "the program") -> None:
        self._maps = {m.name: m for m in maps}
        self._owner = owner

    def __getitem__(self, name: str) -> VmMap:
        try:
            return self._maps[name]
        except KeyError:
            names = ", ".join(self._maps) or "none"
            raise KeyError(f"{self._owner} has no map {name!r}; its maps: {names}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._maps)

    def __len__(self) -> int:
        return len(self._maps)

    def __repr__(self) -> str:
        return f"<maps of {self._owner}: {', '.join(self._maps) or 'none'}>"
