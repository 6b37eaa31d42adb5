"""Maps and Configs in the language: what the frontend accepts, the IR it makes, and what it refuses where.

The refusals are records in the style of test_compile_errors: one bad
program, the error class, a part of its message, and the place it points at
(`line`/`col` counted from the first line of the record's source, 1-based).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pyfd.compiler.diagnostics import (
    CompileError,
    CompileNameError,
    CompileTypeError,
    MapAccessError,
    UnsupportedError,
)
from pyfd.compiler.ir.checker import IRCheckError, check_function
from pyfd.compiler.ir.nodes import (
    AtomicMapValue,
    LoadConfig,
    MapDelete,
    MapKind,
    MapLookup,
    MapUpdate,
    StoreMapValue,
)
from pyfd.compiler.ir.parser import parse_function
from pyfd.compiler.ir.text import print_function
from test_compile_errors import Reject, dissector_file, only_dissector

import pyfd
from pyfd import Array, Config, HashMap, PerCPUArray, u16

PRELUDE = """\
from pyfd import BPF_DROP, BPF_OK, Array, BpfFlowKeys, Config, HashMap, Packet, PerCPUArray, dissector, i32, i64, u8, u16, u32, u64
from pyfd.headers import IPv4

tunnel_ports = HashMap(u16, u8, max_entries=64)
counters = PerCPUArray(u64, max_entries=8)
flags_seen = Array(u32, max_entries=4)
wide = HashMap(u32, u64, max_entries=16)
VXLAN_PORT = Config(u16, 4789)

"""
PRELUDE_LINES = PRELUDE.count("\n")


def _write(tmp_path: Path, source: str) -> Path:
    return dissector_file(tmp_path, source, prelude=PRELUDE)


REJECTS = [
    Reject(
        "map-as-integer",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.sport = counters + 1
            return BPF_OK
        """,
        CompileTypeError, "`counters` is a map, not an integer", 3, 18, hint="m.get(key, 0)",
    ),
    Reject(
        "map-assigned-to-a-local",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            m = tunnel_ports
            return BPF_OK
        """,
        CompileTypeError, "`tunnel_ports` is a map, not an integer", 3, 9,
    ),
    Reject(
        "map-as-condition",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if flags_seen:
                return BPF_DROP
            return BPF_OK
        """,
        CompileTypeError, "`flags_seen` is a map, not an integer", 3, 8,
    ),
    Reject(
        "wrong-key-type-wider",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.ip_proto = tunnel_ports.get(keys.dport + 1, 0)
            return BPF_OK
        """,
        CompileTypeError, "the key of `tunnel_ports` is u16; this is u64", 3, 38, hint="u16(...)",
    ),
    Reject(
        "wrong-key-type-signed",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if i32(keys.thoff) in wide:
                return BPF_DROP
            return BPF_OK
        """,
        CompileTypeError, "the key of `wide` is u32; this is i32", 3, 8,
    ),
    Reject(
        "key-literal-too-wide",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            tunnel_ports[70000] = 1
            return BPF_OK
        """,
        CompileTypeError, "70000 does not fit in a key of `tunnel_ports`", 3, 18,
    ),
    Reject(
        "index-not-boundable",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            flags_seen[keys.dport] += 1
            return BPF_OK
        """,
        MapAccessError, "`flags_seen` has 4 entries, and the index `keys.dport` may be up to 65535", 3, 16, hint="flags_seen.get(keys.dport, 0)",
    ),
    Reject(
        "index-may-be-negative",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            n: i64 = keys.thoff
            keys.thoff = counters[n]
            return BPF_OK
        """,
        MapAccessError, "the index `n` may be negative", 4, 27,
    ),
    Reject(
        "constant-index-outside",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            counters[8] += 1
            return BPF_OK
        """,
        MapAccessError, "index 8 is outside `counters` (0..7)", 3, 14,
    ),
    Reject(
        "del-on-array",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            del counters[1]
            return BPF_OK
        """,
        MapAccessError, "the elements of `counters` cannot be deleted", 3, 9, hint="assign 0",
    ),
    Reject(
        "hash-map-read-by-subscript",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.ip_proto = tunnel_ports[keys.dport]
            return BPF_OK
        """,
        MapAccessError, "reads a hash map, whose key may be absent", 3, 21, hint="tunnel_ports.get(key, default)",
    ),
    Reject(
        "atomic-on-a-narrow-value",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            tunnel_ports[keys.dport] += 1
            return BPF_OK
        """,
        MapAccessError, "BPF's atomic operations work on 32- and 64-bit values; `tunnel_ports` holds u8", 3, 5, hint="u32 or u64",
    ),
    Reject(
        "multiply-an-element",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            counters[1] *= 2
            return BPF_OK
        """,
        UnsupportedError, "this operator cannot update a map element", 3, 5, hint="`+=`, `-=`",
    ),
    Reject(
        "get-needs-a-default",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.ip_proto = tunnel_ports.get(keys.dport)
            return BPF_OK
        """,
        CompileTypeError, "takes two arguments: the key and the value to give when it is absent", 3, 21,
    ),
    Reject(
        "no-such-map-method",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            tunnel_ports.pop(keys.dport)
            return BPF_OK
        """,
        UnsupportedError, "maps have no method `pop` in a dissector", 3, 5,
    ),
    Reject(
        "value-literal-too-wide",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            flags_seen[0] = -1
            return BPF_OK
        """,
        CompileTypeError, "-1 does not fit in a value of `flags_seen`", 3, 21, hint="u32(-1)",
    ),
    Reject(
        "default-literal-too-wide",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.ip_proto = tunnel_ports.get(keys.dport, 256)
            return BPF_OK
        """,
        CompileTypeError, "256 does not fit in a value of `tunnel_ports`", 3, 50,
    ),
    Reject(
        "map-passed-to-a-helper",
        """
        def bump(n: u64) -> u64:
            return n + 1

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = bump(counters)
            return BPF_OK
        """,
        CompileTypeError, "`counters` is a map, not an integer", 6, 23,
    ),
    Reject(
        "config-of-a-string",
        """
        NAME = Config(str, "x")

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
        """,
        CompileTypeError, "Config `NAME` must have an integer type (u8, u16, u32, u64, i32, i64), not `str`", 1, 8,
    ),
    Reject(
        "config-of-a-header",
        """
        HDR = Config(IPv4)

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
        """,
        CompileTypeError, "not `IPv4`", 1, 7,
    ),
    Reject(
        "config-default-too-wide",
        """
        LIMIT = Config(u8, 300)

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
        """,
        CompileTypeError, "the default 300 of Config `LIMIT` does not fit in u8 (0..255)", 1, 9,
    ),
    Reject(
        "map-of-headers",
        """
        seen = HashMap(u16, IPv4, max_entries=4)

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
        """,
        CompileTypeError, "the value type of HashMap `seen` must be an integer type", 1, 8,
    ),
    Reject(
        "no-entries",
        """
        empty = Array(u64, max_entries=0)

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
        """,
        CompileTypeError, "max_entries of Array `empty` must be an integer from 1 to 4294967295, not 0", 1, 9,
    ),
    Reject(
        "c-keyword-map-name",
        """
        signed = HashMap(i32, i32, max_entries=2)

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
        """,
        CompileNameError, "the name `signed` of a map or Config is a C keyword", 1, 10,
    ),
    Reject(
        "non-ascii-map-name",
        """
        zähler = Array(u64, max_entries=2)

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
        """,
        CompileNameError, "must be ASCII letters, digits and `_`", 1, 11,  # a byte column: `ä` is two
    ),
]


@pytest.mark.parametrize("case", [pytest.param(r, id=r.name) for r in REJECTS])
def test_rejected(case: Reject, tmp_path: Path) -> None:
    path = _write(tmp_path, case.source)
    d = only_dissector(path)
    with pytest.raises(CompileError) as info:
        d.compile()
    err = info.value
    assert type(err) is case.error, err.render()
    assert case.message in err.message, err.render()
    if case.hint is not None:
        assert err.hint is not None and case.hint in err.hint, err.render()
    assert err.span is not None
    assert (err.span.file, err.span.line, err.span.col + 1) == (str(path), PRELUDE_LINES + case.line, case.col), err.render()
    assert "^" in err.render()


def test_record_names_are_unique() -> None:
    assert len({r.name for r in REJECTS}) == len(REJECTS)


EVERYTHING = """
@dissector
def f(pkt: Packet, keys: BpfFlowKeys) -> int:
    kind: u8 = tunnel_ports.get(keys.dport, 0)
    if keys.dport in tunnel_ports:
        counters[2] += 1
    if keys.sport not in tunnel_ports:
        tunnel_ports[keys.sport] = kind + 1
    flags_seen[3] += 1
    flags_seen[1] = flags_seen[0]
    wide[keys.thoff] -= 2
    del tunnel_ports[keys.dport]
    keys.thoff = flags_seen.get(keys.nhoff, 7) + (keys.sport in flags_seen)
    if keys.dport == VXLAN_PORT:
        return BPF_DROP
    return BPF_OK
"""


def test_every_operation_lowers_to_checked_ir(tmp_path: Path) -> None:
    lowered = only_dissector(_write(tmp_path, EVERYTHING)).lower()
    fn = lowered.function
    assert [(m.name, m.kind, m.key, m.value, m.max_entries) for m in fn.maps] == [
        ("tunnel_ports", MapKind.HASH, "u16", "u8", 64),
        ("counters", MapKind.PERCPU_ARRAY, "u32", "u64", 8),
        ("flags_seen", MapKind.ARRAY, "u32", "u32", 4),
        ("wide", MapKind.HASH, "u32", "u64", 16),
    ]
    assert [(c.name, c.type, c.offset, c.default) for c in fn.configs] == [("VXLAN_PORT", "u16", 0, 4789)]
    assert list(lowered.maps) == ["tunnel_ports", "counters", "flags_seen", "wide"] and list(lowered.configs) == ["VXLAN_PORT"]
    check_function(fn)
    kinds = [type(i) for i in fn.instructions()]
    for op in (MapLookup, MapUpdate, MapDelete, StoreMapValue, AtomicMapValue, LoadConfig):
        assert op in kinds, op
    # The per-CPU counter is a plain read-modify-write; the shared ones are atomic.
    atomics = [i for i in fn.instructions() if isinstance(i, AtomicMapValue)]
    assert {i.size for i in atomics} == {4, 8}
    # The text form reads back, declarations included.
    assert print_function(parse_function(print_function(fn))) == print_function(fn)


def test_the_python_run_reads_the_dissectors_state(tmp_path: Path) -> None:
    lowered = only_dissector(_write(tmp_path, EVERYTHING)).lower()
    refs = {(type(node).__name__, ref) for node, ref in lowered.types.state_refs.items()}
    assert ("Name", ("config", "VXLAN_PORT")) in refs and ("Name", ("maps", "counters")) in refs
    stmts = sorted(lowered.types.map_stmts.values())
    assert stmts == ["augment", "augment", "augment", "delete", "store", "store"]
    assert all(isinstance(s, (ast.Assign, ast.AugAssign, ast.Delete)) for s in lowered.types.map_stmts)


def test_maps_of_the_module_are_in_the_object_used_or_not(tmp_path: Path) -> None:
    source = """
    @dissector
    def f(pkt: Packet, keys: BpfFlowKeys) -> int:
        return BPF_OK
    """
    fn = only_dissector(_write(tmp_path, source)).lower().function
    assert [m.name for m in fn.maps] == ["tunnel_ports", "counters", "flags_seen", "wide"]


IR_WITH_MAP = """
func f "x.py" {{
    map counters array u32 u64 8
entry:
    %p = map.lookup counters, {key}
    br {cmp} %p, 0, {first}, {second}
yes:
    map.atomic add u64 [%p], 1
    ret 0
no:
    ret 0
}}
"""


@pytest.mark.parametrize(
    ("key", "cmp", "first", "second", "error"),
    [
        ("1", "ne", "yes", "no", None),
        ("1", "eq", "no", "yes", None),
        ("1", "eq", "yes", "no", "not dominated by a test that it is not null"),
        ("1", "ne", "no", "yes", "not dominated by a test that it is not null"),
        ("8", "ne", "yes", "no", "index 8 is outside array counters"),
    ],
)
def test_checker_proves_the_null_test(key: str, cmp: str, first: str, second: str, error: str | None) -> None:
    fn = parse_function(IR_WITH_MAP.format(key=key, cmp=cmp, first=first, second=second))
    if error is None:
        check_function(fn)
        return
    with pytest.raises(IRCheckError, match=error):
        check_function(fn)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("    %p = map.lookup nosuch, 1\n    ret 0", "map nosuch is not declared"),
        ("    %p = map.lookup counters, 1\n    %q = add %p, 8\n    ret 0", "used other than to reach its value"),
        ("    %p = map.lookup counters, 1\n    br ne %p, 0, a, b\na:\n    map.store u32 [%p], 1\n    ret 0\nb:\n    ret 0", "access of 4 bytes to counters"),
        ("    map.delete counters, 1\n    ret 0", "delete from array counters"),
        ("    %c = config.load u32 +0\n    ret 0", "no declared constant"),
        ("    %q = copy 0\n    map.store u64 [%q], 1\n    ret 0", "which no lookup wrote"),
    ],
)
def test_checker_refuses_malformed_map_access(body: str, error: str) -> None:
    fn = parse_function('func f "x.py" {\n    map counters array u32 u64 8\n    config C u16 +0 = 1\nentry:\n' + body + "\n}\n")
    with pytest.raises(IRCheckError, match=error):
        check_function(fn)


def test_public_names() -> None:
    assert {"HashMap", "Array", "PerCPUArray", "Config"} <= set(pyfd.__all__)
    assert pyfd.HashMap is HashMap and pyfd.Array is Array and pyfd.PerCPUArray is PerCPUArray and pyfd.Config is Config


def test_a_declaration_holds_no_data() -> None:
    m = HashMap(u16, u16, max_entries=4)
    with pytest.raises(TypeError, match="holds no data"):
        m[1] = 2
    assert "declared at" in repr(m) and repr(Config(u16, 7)).startswith("<Config(u16, 7)")


@pytest.mark.parametrize(
    ("index", "provable"),
    [
        ("keys.dport & 3", True),
        ("keys.dport % 4", True),
        ("keys.dport >> 14", True),
        ("(keys.dport & 1) + (keys.sport & 2)", True),
        ("u8(keys.dport) & 3", True),
        ("keys.dport % 5", False),
        ("keys.dport & 4 + 1", False),  # & binds looser than +: `keys.dport & 5`
        ("keys.dport >> 13", False),
    ],
)
def test_an_index_is_bounded_by_what_computes_it(index: str, provable: bool, tmp_path: Path) -> None:
    source = f"""
    @dissector
    def f(pkt: Packet, keys: BpfFlowKeys) -> int:
        flags_seen[{index}] += 1
        return BPF_OK
    """
    d = only_dissector(_write(tmp_path, source))
    if provable:
        check_function(d.lower().function)
        return
    with pytest.raises(MapAccessError, match="cannot prove it in range"):
        d.lower()


@pytest.mark.parametrize("backend", ["native", "llvm"])
def test_the_listing_names_each_map_reference(backend: str, tmp_path: Path) -> None:
    program = only_dissector(_write(tmp_path, EVERYTHING)).compile(backend=backend)
    named = [line.rsplit("; ", 1)[1] for line in program.asm().splitlines() if " ll  ; " in line]
    assert set(named) == {"tunnel_ports", "counters", "flags_seen", "wide", "VXLAN_PORT"}
    assert all("map[" in line or "map_value[" in line for line in program.asm().splitlines() if " ll  ; " in line)
