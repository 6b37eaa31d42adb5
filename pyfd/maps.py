"""Maps and load-time constants: the state a dissector shares with user space.

    from pyfd import Array, Config, HashMap, PerCPUArray, u8, u16, u32, u64

    tunnel_ports = HashMap(u16, u8, max_entries=64)   # BPF_MAP_TYPE_HASH
    counters = PerCPUArray(u64, max_entries=8)         # BPF_MAP_TYPE_PERCPU_ARRAY
    flags_seen = Array(u32, max_entries=4)             # BPF_MAP_TYPE_ARRAY
    VXLAN_PORT = Config(u16, 4789)                     # a variable of the frozen .rodata map

Each is declared once, at module level; its name is the one its declaration
assigns it to (`hits = Array(...)`: "hits", wherever it is imported), and the compiler finds the declarations of a dissector's module (and
of any module whose maps its helpers use) when it compiles it. A declaration
holds no data: the kernel's copy is `loaded.maps[name]`, the Python run's is
`dissector.maps[name]` (`MapState`, below), which follows the kernel's rules.

A declaration is not checked when it is made (that happens at import, where
an error could not name the line of the dissector): the compiler checks it
and reports a wrong type, size or default at the declaration's own line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from .types import INT_TYPES, FixedInt, u32, wrap

# Most entries a map can have: max_entries is a __u32 (union bpf_attr).
MAX_ENTRIES_LIMIT = 0xFFFFFFFF


def _caller() -> tuple[str, int]:
    """The file and line of the statement that made a declaration (outside this module)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno


class MapDeclaration:
    """A BPF map a dissector uses: its kind, key and value types, and size."""

    kind: ClassVar[str] = ""  # "hash", "array" or "percpu_array" (the IR's names)

    def __init__(self, key: Any, value: Any, max_entries: Any) -> None:
        self.key = key
        self.value = value
        self.max_entries = max_entries
        self.declared_at = _caller()

    def __repr__(self) -> str:
        file, line = self.declared_at
        return f"<{type(self).__name__} declared at {file}:{line}>"

    # A declaration is not a container: say where the data is.
    def _no_data(self, *args: Any) -> Any:
        raise TypeError(
            f"a {type(self).__name__} declaration holds no data: read the kernel's map through "
            "`loaded.maps[name]` and the Python run's through `dissector.maps[name]`"
        )

    __getitem__ = __setitem__ = __delitem__ = __contains__ = __iter__ = __len__ = get = _no_data


class HashMap(MapDeclaration):
    """A hash map (BPF_MAP_TYPE_HASH): `max_entries` keys of type `key`, each with a `value`.

    In a dissector: `m.get(k, default)`, `k in m`, `m[k] = v`, `m[k] += v`
    (atomic; an absent key is added with 0 first when there is room), `del m[k]`.
    """

    kind = "hash"

    def __init__(self, key: type[FixedInt], value: type[FixedInt], *, max_entries: int) -> None:
        super().__init__(key, value, max_entries)


class Array(MapDeclaration):
    """An array (BPF_MAP_TYPE_ARRAY): indices 0 .. max_entries - 1, each holding a `value`, 0 at first.

    In a dissector: `a[i]` (an index the compiler proves in range), `a[i] = v`,
    `a[i] += v` (atomic), `a.get(i, default)` (any index), `i in a`.
    """

    kind = "array"

    def __init__(self, value: type[FixedInt], *, max_entries: int) -> None:
        super().__init__(u32, value, max_entries)


class PerCPUArray(MapDeclaration):
    """A per-CPU array (BPF_MAP_TYPE_PERCPU_ARRAY): an Array with one copy of every value per CPU.

    The program sees the copy of the CPU it runs on, so `a[i] += v` needs no
    atomic operation; user space reads one value per possible CPU.
    """

    kind = "percpu_array"

    def __init__(self, value: type[FixedInt], *, max_entries: int) -> None:
        super().__init__(u32, value, max_entries)


class Config:
    """A load-time constant: `default` unless the loader sets it (`load(config={"NAME": v})`).

    It lives in the object's `.rodata`, which the loader creates read-only for
    the program (BPF_F_RDONLY_PROG) and freezes before loading it, so the
    verifier knows its value and prunes the branches it decides.
    """

    def __init__(self, type: type[FixedInt], default: int = 0) -> None:
        self.type = type
        self.default = default
        self.declared_at = _caller()

    def __repr__(self) -> str:
        name = getattr(self.type, "__name__", repr(self.type))
        return f"<Config({name}, {self.default!r}) declared at {self.declared_at[0]}:{self.declared_at[1]}>"


def is_integer_type(obj: object) -> bool:
    """True for u8, u16, u32, u64, i32 and i64."""
    return isinstance(obj, type) and obj in INT_TYPES


# -- the Python run's maps ------------------------------------------------------


class MapState:
    """The contents of one map in the Python run, with the kernel's rules (kernel/bpf/hashtab.c, arraymap.c).

    A mapping from keys to values. Keys must fit the key type (ValueError
    otherwise); values narrow to the value type as the kernel stores their
    low bytes. Arrays have every index from 0 to max_entries - 1, holding 0
    until written, and refuse to delete one; a per-CPU array is one CPU's
    copy. A full hash map refuses a new key (the kernel's E2BIG): assigning
    one raises OverflowError here, and is ignored in the dissector, whose
    update fails without effect.
    """

    def __init__(self, name: str, declaration: MapDeclaration) -> None:
        self.name = name
        self.kind = declaration.kind
        self.key_type: type[FixedInt] = declaration.key
        self.value_type: type[FixedInt] = declaration.value
        self.max_entries: int = declaration.max_entries
        self._hash: dict[int, int] = {}
        self._array: list[int] = [0] * self.max_entries if self.kind != "hash" else []

    def __repr__(self) -> str:
        return f"<{self.kind} map {self.name}: {dict(self.items())!r}>"

    # -- the kernel's operations, as the dissector performs them ----------------

    def lookup(self, key: int) -> int | None:
        """The value at `key`, or None where the kernel's lookup returns NULL."""
        key = int(key)
        if self.kind == "hash":
            return self._hash.get(key)
        return self._array[key] if 0 <= key < self.max_entries else None

    def update(self, key: int, value: int) -> bool:
        """Store `value` (narrowed) at `key`; False where the kernel's update fails (a full hash map, an index past the end)."""
        key, value = int(key), wrap(int(value), self.value_type.bits, self.value_type.signed)
        if self.kind == "hash":
            if key not in self._hash and len(self._hash) >= self.max_entries:
                return False
            self._hash[key] = value
            return True
        if not 0 <= key < self.max_entries:
            return False
        self._array[key] = value
        return True

    def delete(self, key: int) -> bool:
        """Remove `key` from a hash map; False if it was absent (ENOENT)."""
        return self._hash.pop(int(key), None) is not None

    def augment(self, key: int, op: str, operand: int) -> None:
        """`m[key] op= operand` as the compiled program does it: a hash map's absent key starts at 0 if there is room."""
        old = self.lookup(key)
        if old is None:
            if self.kind != "hash" or not self.update(key, 0):
                return
            old = 0
        self.update(key, _AUGMENT[op](old, int(operand)))

    # -- a mapping for user code -------------------------------------------------

    def _key(self, key: object) -> int:
        if not isinstance(key, int) or isinstance(key, bool):
            raise TypeError(f"map {self.name}: a key is an int, not {type(key).__name__}")
        low, high = self.key_type.min(), self.key_type.max()
        if self.kind != "hash":
            high = min(high, self.max_entries - 1)
        if not low <= key <= high:
            what = "index" if self.kind != "hash" else f"{self.key_type.__name__} key"
            raise (IndexError if self.kind != "hash" else ValueError)(f"map {self.name}: {what} {key} is outside {low}..{high}")
        return key

    def __getitem__(self, key: int) -> int:
        value = self.lookup(self._key(key))
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: int, default: int = 0) -> int:
        """The value at `key`, or `default` (narrowed to the value type) where there is none."""
        value = self.lookup(int(key))
        return wrap(int(default), self.value_type.bits, self.value_type.signed) if value is None else value

    def __setitem__(self, key: int, value: int) -> None:
        if not self.update(self._key(key), value):
            raise OverflowError(f"map {self.name} is full ({self.max_entries} entries): the kernel refuses a new key (E2BIG)")

    def store(self, key: int, value: int) -> None:
        """`m[key] = value` as the dissector does it: a refused update is ignored."""
        self.update(key, value)

    def __delitem__(self, key: int) -> None:
        if self.kind != "hash":
            raise TypeError(f"map {self.name}: the elements of an array cannot be deleted (EINVAL); assign 0")
        if not self.delete(self._key(key)):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and self.lookup(key) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._hash) if self.kind == "hash" else range(self.max_entries))

    def __len__(self) -> int:
        return len(self._hash) if self.kind == "hash" else self.max_entries

    def items(self) -> list[tuple[int, int]]:
        """Every (key, value): a hash map's in insertion order, an array's by index."""
        return list(self._hash.items()) if self.kind == "hash" else list(enumerate(self._array))

    def clear(self) -> None:
        """Empty a hash map; zero an array."""
        self._hash.clear()
        self._array = [0] * len(self._array)


_AUGMENT = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "|": lambda a, b: a | b,
    "&": lambda a, b: a & b,
    "^": lambda a, b: a ^ b,
}
"""The operators `m[k] op= v` may use: those BPF_ATOMIC has (BPF_ADD, BPF_OR, BPF_AND, BPF_XOR; `-` adds the negation)."""


class PythonState:
    """A dissector's maps and load-time constants in the Python run: what `dissector.maps` and `.config` show.

    Made from the declarations the compiler found (by name, in the object's
    order); `reset` empties the maps and sets the constants, to their
    defaults or to the values given, as a fresh load does.
    """

    def __init__(self, maps: Mapping[str, MapDeclaration], configs: Mapping[str, Config]) -> None:
        self.declarations = dict(maps)
        self.configs = dict(configs)
        self.maps: dict[str, MapState] = {}
        self.config: dict[str, int] = {}
        self.reset()

    def reset(self, config: Mapping[str, int] | None = None) -> None:
        """Fresh maps (hash maps empty, arrays zero), and every Config at its default or the value in `config`."""
        values = dict(config or {})
        unknown = sorted(set(values) - set(self.configs))
        if unknown:
            known = ", ".join(self.configs) or "none"
            raise KeyError(f"no Config named {unknown[0]!r} (this dissector's: {known})")
        chosen: dict[str, int] = {}
        for name, declaration in self.configs.items():
            value = values.get(name, declaration.default)
            ty = declaration.type
            if not isinstance(value, int) or isinstance(value, bool) or not ty.min() <= value <= ty.max():
                raise ValueError(f"Config {name} is a {ty.__name__} ({ty.min()}..{ty.max()}); {value!r} does not fit")
            chosen[name] = int(value)
        self.config = chosen
        self.maps = {name: MapState(name, declaration) for name, declaration in self.declarations.items()}
