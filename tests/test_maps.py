"""Objects with maps: read from clang's ELF, created and filled in the kernel, read and written from Python.

tests/clang_maps/counting.c uses every map kind pyfd creates and every
global-data section; the kernel's reference dissector bpf_flow.o (built from
../shared/reference) runs with its prog array filled as the kernel selftest
fills it. Malformed map sections must give ObjectFileError, never a traceback.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from clang_maps import COUNTING, build, reference_object
from frames import ether
from full_frames import CASES
from kernel import needs_kernel, requires_kernel, skip_unless_kernel  # noqa: F401  (pytest fixture)
from pyfd.runtime import (
    BpfError,
    ConfigError,
    LoadedProgram,
    Map,
    MapKeyError,
    UnknownMapError,
    possible_cpus,
)
from pyfd.runtime.maps import relocate
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from test_cli import run
from test_full import _expected_mismatches

import pyfd
from pyfd.cli import EXIT_ERROR, EXIT_OK
from pyfd.abi import BPF_F_RDONLY_PROG, BPF_NOEXIST, MapType
from pyfd.objfile.reader import ObjectFileError, map_references, read_object

BPF_OK, BPF_DROP = 0, 2
IP4 = {"src": "10.0.0.1", "dst": "10.0.0.2"}


def tcp(dport: int = 80, sport: int = 1000) -> bytes:
    return bytes(ether() / IP(**IP4) / TCP(sport=sport, dport=dport))


def udp(dport: int = 53, sport: int = 1000) -> bytes:
    return bytes(ether() / IP(**IP4) / UDP(sport=sport, dport=dport))


@pytest.fixture(scope="module")
def counting_o(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("counting"), COUNTING)


@pytest.fixture(scope="module")
def bpf_flow_o(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reference_object(tmp_path_factory.mktemp("reference"))


@pytest.fixture
def counting(requires_kernel: None, counting_o: Path) -> Iterator[LoadedProgram]:
    with pyfd.load(counting_o) as loaded:
        yield loaded


# --- reading map definitions (no kernel) -----------------------------------------------------


def test_counting_object_maps_as_libbpf_reads_them(counting_o: Path) -> None:
    obj = read_object(counting_o)
    maps = {m.name: m for m in obj.maps}
    # .maps in DATASEC order, then the global-data sections in section order.
    assert list(maps)[-3:] == [".rodata", ".data", ".bss"]
    shapes = {name: (m.type, m.key_size, m.value_size, m.max_entries) for name, m in maps.items()}
    assert shapes == {
        "verdicts": (MapType.ARRAY, 4, 8, 4),
        "dports": (MapType.HASH, 2, 4, 4),
        "cpu_frames": (MapType.PERCPU_ARRAY, 4, 8, 1),
        "cpu_protos": (MapType.PERCPU_HASH, 1, 4, 16),
        "jumps": (MapType.PROG_ARRAY, 4, 4, 2),
        ".rodata": (MapType.ARRAY, 4, 8, 1),
        ".data": (MapType.ARRAY, 4, 8, 1),
        ".bss": (MapType.ARRAY, 4, 8, 1),
    }
    assert maps["jumps"].slots == ((1, "udp_tail"),)  # from `.values = { [1] = &udp_tail }` in .rel.maps
    assert maps["dports"].btf_key_type_id and maps["dports"].btf_value_type_id  # __type(): typed for bpftool
    assert maps["jumps"].btf_key_type_id == 0  # __uint(key_size, ...): a size only
    assert maps[".rodata"].map_flags == BPF_F_RDONLY_PROG and maps[".rodata"].read_only
    assert maps[".data"].map_flags == 0 and maps[".bss"].initial is None
    assert maps[".rodata"].initial == struct.pack("<Hxxi", 4789, -1)
    rodata = {v.name: (v.offset, v.int_size, v.signed) for v in maps[".rodata"].variables}
    assert rodata == {"drop_port": (0, 2, False), "ports_bias": (4, 4, True)}
    assert [(v.name, v.offset) for v in maps[".data"].variables] == [("data_marker", 0), ("data_hits", 4)]


def test_map_references_and_relocation(counting_o: Path) -> None:
    obj = read_object(counting_o)
    prog = obj.program("counting")
    references = map_references(obj, prog)
    assert {r.map for r in references} == {"verdicts", "dports", "cpu_frames", "cpu_protos", "jumps", ".rodata", ".data", ".bss"}
    # Global data is reached through an offset into the value: data_hits is 4 bytes into .data.
    assert {r.value_offset for r in references if r.map == ".data"} == {0, 4}
    assert all(r.value_offset is None for r in references if not r.map.startswith("."))
    fds = {name: 100 + i for i, name in enumerate(m.name for m in obj.maps)}
    code = relocate(prog.code, references, fds)
    for reference in references:
        at = reference.insn * 8
        regs, imm = code[at + 1], struct.unpack_from("<i", code, at + 4)[0]
        assert imm == fds[reference.map]
        assert regs >> 4 == (1 if reference.value_offset is None else 2)  # BPF_PSEUDO_MAP_FD / _VALUE
        if reference.value_offset is not None:
            assert struct.unpack_from("<i", code, at + 12)[0] == reference.value_offset
    untouched = set(range(len(code) // 8)) - {r.insn for r in references} - {r.insn + 1 for r in references}
    assert all(code[i * 8 : i * 8 + 8] == prog.code[i * 8 : i * 8 + 8] for i in untouched)


def test_reference_object_maps(bpf_flow_o: Path) -> None:
    obj = read_object(bpf_flow_o)
    assert [(m.name, m.type, m.key_size, m.value_size, m.max_entries) for m in obj.maps] == [
        ("jmp_table", MapType.PROG_ARRAY, 4, 4, 6),
        ("last_dissection", MapType.HASH, 4, 56, 1024),
    ]


C_HEAD = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
C_USE = """
SEC("flow_dissector") int prog(struct __sk_buff *skb)
{
    __u32 key = 0;
    return bpf_map_lookup_elem(&bad, &key) ? BPF_OK : BPF_DROP;
}
char _license[] SEC("license") = "GPL";
"""
MALFORMED = {
    "unknown-member": (
        "struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(colour, 3); __type(key, __u32); __type(value, __u32); __uint(max_entries, 1); } bad SEC(\".maps\");",
        "map 'bad' in .maps: unknown member `colour` (libbpf refuses it too)",
    ),
    "no-type": (
        "struct { __uint(max_entries, 4); __type(key, __u32); __type(value, __u32); } bad SEC(\".maps\");",
        "map 'bad' in .maps: no map type: add `__uint(type, BPF_MAP_TYPE_...)`",
    ),
    "sizes-conflict": (
        "struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(key_size, 8); __type(key, __u32); __type(value, __u32); __uint(max_entries, 1); } bad SEC(\".maps\");",
        "map 'bad' in .maps: conflicting key sizes 8 and 4",
    ),
    "not-uint": (
        "struct { int type; __uint(max_entries, 1); } bad SEC(\".maps\");",
        "map 'bad' in .maps: `type` should be `__uint(type, N)`, a pointer to an array; it is a INT",
    ),
    "values-on-a-hash": (
        (
            "int prog(struct __sk_buff *skb);\n"
            "struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1); __type(key, __u32); __array(values, int (void *)); } bad SEC(\".maps\");"
        ),
        "map 'bad' in .maps: `__array(values, ...)` initial values are supported for prog arrays only, not for this map type (type 1)",
    ),
    "static-map": (
        "static struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u32); } bad SEC(\".maps\") __attribute__((used));",
        "map 'bad' in .maps is static; a map must be a global variable (libbpf refuses static maps too)",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_map_definition_is_an_object_file_error(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    definition, expected = MALFORMED[case]
    obj = build(tmp_path, C_HEAD + definition + C_USE, case)
    with pytest.raises(ObjectFileError) as info:
        pyfd.load(obj)  # refused before the kernel is asked
    assert str(info.value) == f"{obj}: {expected}"
    status, out, err = run(capsys, "run", obj)
    assert (status, out, err) == (EXIT_ERROR, "", f"pyfd: error: {obj}: {expected}\n")
    status, out, _ = run(capsys, "disasm", obj)  # a listing needs no maps: it still works
    assert status == EXIT_OK and "prog:" in out


def test_maps_without_btf(tmp_path: Path) -> None:
    source = C_HEAD + 'struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u32); } bad SEC(".maps");' + C_USE
    obj = build(tmp_path, source, "nobtf", debug=False)
    with pytest.raises(ObjectFileError, match=r"section \.maps defines maps, but the object has no \.BTF to describe them \(compile with -g"):
        pyfd.load(obj)


def _section_header(data: bytes, name: str) -> int:
    """The file offset of section `name`'s header in an ELF64 object."""
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    (strtab,) = struct.unpack_from("<Q", data, shoff + shstrndx * 64 + 24)
    for index in range(shnum):
        header = shoff + index * 64
        (name_off,) = struct.unpack_from("<I", data, header)
        end = data.index(b"\0", strtab + name_off)
        if data[strtab + name_off : end].decode() == name:
            return header
    raise AssertionError(f"no section {name}")


def test_truncated_maps_section(counting_o: Path) -> None:
    data = bytearray(counting_o.read_bytes())
    header = _section_header(data, ".maps")
    struct.pack_into("<Q", data, header + 32, 16)  # sh_size: the first map's definition is 40 bytes
    with pytest.raises(ObjectFileError, match=r"<bytes>: map 'jumps' in \.maps: its definition at bytes 0\.\.40 runs past the 16-byte section"):
        map_references(obj := read_object(bytes(data)), obj.program("counting"))


def test_relocation_to_where_no_map_starts(counting_o: Path) -> None:
    """.BTF puts `dports` at byte 120 of .maps, the symbol table at 104: its relocations name no map."""
    from pyfd.objfile.btf import DatasecType, VarType, decode_btf

    data = bytearray(counting_o.read_bytes())
    start, size = struct.unpack_from("<QQ", data, _section_header(data, ".BTF") + 24)
    btf = decode_btf(bytes(data[start : start + size]))
    var_id = next(i + 1 for i, t in enumerate(btf.types) if isinstance(t, VarType) and t.name == "dports")
    maps = next(t for t in btf.types if isinstance(t, DatasecType) and t.name == ".maps")
    (info,) = [v for v in maps.vars if v.type == var_id]
    # LLVM leaves the offsets 0 for the loader to fill in from the symbols (libbpf's btf_fixup_datasec).
    secinfo = struct.pack("<III", var_id, info.offset, info.size)
    at = data.index(secinfo, start, start + size)
    struct.pack_into("<I", data, at + 4, 120)
    moved = read_object(bytes(data))
    assert moved.map("dports").offset == 120
    with pytest.raises(ObjectFileError, match=r"relocation against 'dports' at offset 104 of \.maps, where no map definition starts"):
        map_references(moved, moved.program("counting"))


def test_mutated_map_sections_never_raise_anything_but_object_file_error(counting_o: Path) -> None:
    """Every 13th byte of .maps, .rel.maps and .BTF set to 0xff in turn: read and resolve, or ObjectFileError."""
    original = counting_o.read_bytes()
    outcomes = {"read": 0, "refused": 0}
    for section in (".maps", ".rel.maps", ".BTF"):
        header = _section_header(original, section)
        start, size = struct.unpack_from("<QQ", original, header + 24)
        for position in range(start, start + size, 13):
            data = bytearray(original)
            data[position] ^= 0xFF
            try:
                obj = read_object(bytes(data))
                for prog in obj.programs:
                    map_references(obj, prog)
                outcomes["read"] += 1
            except ObjectFileError:
                outcomes["refused"] += 1
    assert outcomes["read"] and outcomes["refused"], outcomes


# --- loading: every map kind from Python -----------------------------------------------------------


@needs_kernel
def test_counting_runs_and_counts_in_every_map(counting: LoadedProgram) -> None:
    maps = counting.maps
    assert set(maps) == {"verdicts", "dports", "cpu_frames", "cpu_protos", "jumps", ".rodata", ".data", ".bss"}
    frames = [tcp(80), tcp(80), udp(53), tcp(4789)]  # 4789 is drop_port
    results = [counting.run(frame) for frame in frames]
    assert [r.retval for r in results] == [BPF_OK, BPF_OK, BPF_OK, BPF_DROP]
    assert [r.keys.is_encap for r in results] == [0, 0, 1, 0]  # the UDP frame went through the tail call
    assert dict(maps["verdicts"].items()) == {0: 3, 1: 1, 2: 0, 3: 0}
    assert dict(maps["dports"]) == {80: 2, 53: 1, 4789: 1}
    assert sum(maps["cpu_frames"][0]) == 4 and len(maps["cpu_frames"][0]) == possible_cpus()
    assert {proto: sum(per_cpu) for proto, per_cpu in maps["cpu_protos"].items()} == {6: 3, 17: 1}
    (tail,) = counting.tail_calls
    assert tail.name == "udp_tail" and dict(maps["jumps"].items()) == {1: tail.id}
    assert int.from_bytes(maps[".bss"][0], "little") == 4  # frames_seen
    # data_hits (at offset 4 of .data) went up once per frame, data_marker (offset 0) stayed.
    assert struct.unpack("<II", maps[".data"][0]) == (0x11223344, 7 + 4)


@needs_kernel
def test_unknown_map_name_lists_the_maps(counting: LoadedProgram) -> None:
    with pytest.raises(UnknownMapError) as info:
        counting.maps["verdict"]
    assert str(info.value) == (
        "program 'counting' has no map 'verdict'; its maps: jumps, cpu_frames, cpu_protos, dports, verdicts, .rodata, .data, .bss"
    )
    assert isinstance(info.value, KeyError)


@needs_kernel
def test_array_round_trip(counting: LoadedProgram) -> None:
    verdicts = counting.maps["verdicts"]
    assert len(verdicts) == 4 and list(verdicts) == [0, 1, 2, 3]  # an array has every index
    verdicts[2] = 2**64 - 1
    assert verdicts[2] == 2**64 - 1 and verdicts.get(2) == 2**64 - 1 and 2 in verdicts
    assert 4 not in verdicts and verdicts.get(4, "none") == "none"
    with pytest.raises(KeyError):
        verdicts[4]
    with pytest.raises(MapKeyError, match=r"index 4 is outside array map 'verdicts' \(0\.\.3\)"):
        verdicts[4] = 1
    with pytest.raises(ValueError, match=r"a value of map 'verdicts' is u64 \(0\.\.18446744073709551615\); 18446744073709551616 does not fit"):
        verdicts[0] = 2**64
    with pytest.raises(TypeError, match="a key of map 'verdicts' is an integer"):
        verdicts["0"] = 1
    with pytest.raises(TypeError, match="none can be deleted"):
        del verdicts[1]
    verdicts[1] = struct.pack("<Q", 9)  # the kernel's bytes are taken as they are
    assert verdicts[1] == 9
    verdicts.clear()  # an array's elements become zero
    assert dict(verdicts.items()) == {0: 0, 1: 0, 2: 0, 3: 0}


@needs_kernel
def test_hash_round_trip_and_full(counting: LoadedProgram) -> None:
    dports = counting.maps["dports"]
    assert len(dports) == 0 and dict(dports) == {}
    dports[443] = 5
    dports.update({22: 1, 53: 2})
    assert dports[443] == 5 and sorted(dports) == [22, 53, 443] and len(dports) == 3
    assert 80 not in dports and dports.get(80, 0) == 0
    del dports[22]
    with pytest.raises(KeyError):
        del dports[22]
    with pytest.raises(KeyError):
        dports[22]
    dports[1] = 1
    dports[2] = 2  # four keys: max_entries
    with pytest.raises(BpfError) as info:
        dports[3] = 3
    assert info.value.errno == errno.E2BIG
    assert "writing map 'dports' failed: it is full: it holds max_entries (4) elements and refuses a new key" in str(info.value)
    with pytest.raises(BpfError) as exists:
        dports.set(443, 6, flags=BPF_NOEXIST)
    assert exists.value.errno == errno.EEXIST
    with pytest.raises(ValueError, match=r"a key of map 'dports' is u16 \(0\.\.65535\); 70000 does not fit"):
        dports[70000] = 1
    dports.clear()
    assert dict(dports) == {}
    counting.run(tcp(80))  # the program sees what user space wrote, and the other way round
    assert dict(dports) == {80: 1}


@needs_kernel
def test_percpu_array_and_hash_round_trip(counting: LoadedProgram) -> None:
    cpus = possible_cpus()
    frames, protos = counting.maps["cpu_frames"], counting.maps["cpu_protos"]
    assert frames.percpu and frames[0] == [0] * cpus
    frames[0] = list(range(cpus))
    assert frames[0] == list(range(cpus))
    frames[0] = 7  # one value for every CPU
    assert frames[0] == [7] * cpus
    with pytest.raises(ValueError, match=rf"per-CPU: give one value per possible CPU \({cpus}\), not {cpus + 1}"):
        frames[0] = [0] * (cpus + 1)
    protos[17] = [1] * cpus
    assert dict(protos.items()) == {17: [1] * cpus}
    del protos[17]
    assert 17 not in protos and len(protos) == 0
    counting.run(udp())
    assert sum(protos[17]) == 1 and sum(frames[0]) == 7 * cpus + 1


@needs_kernel
def test_prog_array_round_trip(counting: LoadedProgram, counting_o: Path) -> None:
    jumps = counting.maps["jumps"]
    (tail,) = counting.tail_calls
    assert list(jumps) == [1] and jumps[1] == tail.id and 0 not in jumps
    assert counting.run(udp()).keys.is_encap == 1
    del jumps[1]  # an empty slot: the tail call falls through to BPF_OK without it
    assert list(jumps) == [] and counting.run(udp()).keys.is_encap == 0
    jumps[1] = tail  # a program goes in by its fd, and reads back as its id
    assert jumps[1] == tail.id and counting.run(udp()).keys.is_encap == 1
    with pyfd.load(counting_o, "udp_tail") as other:  # udp_tail alone, as the entry: no tail calls of its own
        assert other.tail_calls == () and other.name == "udp_tail"
        jumps[0] = other
        assert dict(jumps.items()) == {0: other.id, 1: tail.id}


@needs_kernel
def test_maps_close_with_the_program(counting_o: Path) -> None:
    loaded = pyfd.load(counting_o)
    verdicts = loaded.maps["verdicts"]
    loaded.close()
    assert verdicts.closed and all(program.closed for program in loaded.tail_calls)
    with pytest.raises(ValueError, match="map 'verdicts' is closed"):
        verdicts[0]


# --- load-time constants -----------------------------------------------------------------------------


@needs_kernel
def test_rodata_config_and_freeze(counting_o: Path) -> None:
    with pyfd.load(counting_o) as default:
        assert default.run(tcp(4789)).retval == BPF_DROP and default.run(tcp(80)).retval == BPF_OK
    with pyfd.load(counting_o, config={"drop_port": 80, "ports_bias": -(2**31)}) as configured:
        assert configured.run(tcp(80)).retval == BPF_DROP and configured.run(tcp(4789)).retval == BPF_OK
        rodata = configured.maps[".rodata"]
        assert rodata[0] == struct.pack("<Hxxi", 80, -(2**31))
        assert rodata.frozen and not configured.maps[".data"].frozen
        with pytest.raises(BpfError) as info:  # frozen: no write from user space, ever
            rodata[0] = bytes(8)
        assert info.value.errno == errno.EPERM
        assert "writing map '.rodata' failed: it is frozen (BPF_MAP_FREEZE)" in str(info.value)
        assert configured.run(tcp(80)).retval == BPF_DROP


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"drop_prt": 1}, "has no load-time constant 'drop_prt'; its constants: drop_port (u16), ports_bias (i32)"),
        ({"drop_port": 70000}, "drop_port is a u16 (0..65535); 70000 does not fit"),
        ({"drop_port": -1}, "drop_port is a u16 (0..65535); -1 does not fit"),
        ({"ports_bias": 2**31}, "ports_bias is an i32 (-2147483648..2147483647); 2147483648 does not fit"),
        ({"drop_port": "80"}, "drop_port is an integer (u16); '80' is a str"),
        ({"data_hits": 1}, "'data_hits' is a variable of .data, not a load-time constant (only .rodata variables are)"),
    ],
)
def test_config_errors_before_the_kernel(counting_o: Path, config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        pyfd.load(counting_o, config=config)  # type: ignore[arg-type]
    assert message in str(info.value)


DEBUG_SWITCH = C_HEAD + """
const volatile int verbose = 0;
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 64); __type(key, __u32); __type(value, __u64); } seen SEC(".maps");
SEC("flow_dissector") int switch_(struct __sk_buff *skb)
{
    if (verbose) {
#pragma clang loop unroll(full)
        for (int i = 0; i < 64; i++) {
            __u32 key = i;
            __u64 *slot = bpf_map_lookup_elem(&seen, &key);
            if (slot)
                *slot += skb->flow_keys->nhoff;
        }
    }
    return BPF_OK;
}
char _license[] SEC("license") = "GPL";
"""


@needs_kernel
def test_frozen_constants_let_the_verifier_prune(tmp_path: Path) -> None:
    """A frozen BPF_F_RDONLY_PROG map is a constant to the verifier: the branch `verbose` rules out is never walked."""
    obj = build(tmp_path, DEBUG_SWITCH, "switch")
    with pyfd.load(obj) as quiet, pyfd.load(obj, config={"verbose": 1}) as loud:
        assert quiet.verified_insns * 10 < loud.verified_insns, (quiet.verified_insns, loud.verified_insns)
        assert quiet.run(tcp()).retval == loud.run(tcp()).retval == BPF_OK
        assert loud.maps["seen"][63] == 14 and quiet.maps["seen"][63] == 0


# --- the kernel's reference dissector -----------------------------------------------------------------


REFERENCE_AGREES = [c for c in CASES if "DIFF" not in c.note]


@needs_kernel
def test_reference_object_with_its_tail_calls(bpf_flow_o: Path) -> None:
    with pyfd.load(bpf_flow_o) as reference:  # the entry is the program no slot holds: _dissect
        assert reference.name == "_dissect"
        jmp_table = reference.maps["jmp_table"]
        assert dict(jmp_table.items()) == {i: program.id for i, program in enumerate(reference.tail_calls)}
        assert len(reference.tail_calls) == 6
        wrong = []
        for case in REFERENCE_AGREES:
            result = reference.run(case.frame, flags=case.flags)
            problems = _expected_mismatches(result.keys, case)
            if result.retval != case.retval or problems:
                wrong.append(f"{case.name}: retval {result.retval} (want {case.retval}) {problems}")
        assert not wrong, "\n".join(wrong)
        assert len(REFERENCE_AGREES) == 108
        # export_flow_keys: the last dissection of each port pair, keyed (sport << 16 | dport) in network order.
        last = reference.maps["last_dissection"]
        assert last.value_codec.describe() == "struct bpf_flow_keys (56 bytes)" and len(last) > 0
        reference.run(tcp(dport=80, sport=1000))
        key = struct.unpack("<I", struct.pack("<HH", 0x5000, 0xE803))[0]  # be16 80 and 1000 as the program reads them
        assert pyfd.FlowKeys.from_bytes(last[key]).ip_proto == 6


@needs_kernel
def test_reference_object_tail_calls_given(bpf_flow_o: Path) -> None:
    # Only the IPv4 program in its slot: IPv6 reaches an empty slot and _dissect returns BPF_DROP.
    with pyfd.load(bpf_flow_o, "_dissect", tail_calls={"jmp_table": {0: "flow_dissector_0"}}) as partial:
        assert list(partial.maps["jmp_table"]) == [0]
        assert partial.run(tcp()).retval == BPF_OK
        six = bytes(ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2))
        assert partial.run(six).retval == BPF_DROP
    with pytest.raises(ObjectFileError, match=r"no program 'nope' for slot 1 of 'jmp_table'"):
        pyfd.load(bpf_flow_o, "_dissect", tail_calls={"jmp_table": {1: "nope"}})
    with pytest.raises(ObjectFileError, match=r"slot 6 is outside prog array 'jmp_table' \(0\.\.5\)"):
        pyfd.load(bpf_flow_o, "_dissect", tail_calls={"jmp_table": {6: "flow_dissector_0"}})


def test_legacy_maps_section(tmp_path: Path) -> None:
    skip_unless_kernel()
    source = """
#define SEC(name) __attribute__((section(name), used))
struct __sk_buff;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
struct bpf_map_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct bpf_map_def SEC("maps") old_style = { 1, 4, 4, 16, 0 };
SEC("flow_dissector") int count_frames(struct __sk_buff *skb)
{
    unsigned int key = 0;
    unsigned int *value = bpf_map_lookup_elem(&old_style, &key);
    return value ? 0 : 2;
}
char _license[] SEC("license") = "GPL";
"""
    obj = build(tmp_path, source, "legacy")
    with pyfd.load(obj) as loaded:
        old_style = loaded.maps["old_style"]
        assert (old_style.type, old_style.key_size, old_style.value_size, old_style.max_entries) == (MapType.HASH, 4, 4, 16)
        assert loaded.run(tcp()).retval == BPF_DROP
        old_style[0] = 1
        assert loaded.run(tcp()).retval == BPF_OK


@needs_kernel
def test_map_from_fd_reads_the_kernels_btf(counting: LoadedProgram) -> None:
    import os

    from pyfd.runtime import bpf

    original = counting.maps["dports"]
    with Map.from_fd(bpf.map_get_fd_by_id(original.id)) as reopened:
        assert reopened.name == "dports" and reopened.key_codec.describe() == "u16"
        reopened[7] = 70
        assert original[7] == 70
    with Map.from_fd(os.dup(counting.maps[".rodata"].fd)) as rodata:
        assert rodata.name == "counting.rodata"  # the kernel's name: libbpf's object prefix and section
        assert rodata.render_value(rodata.lookup_raw(0)) == {"drop_port": 4789, "ports_bias": -1}


@needs_kernel
def test_bpftool_prints_the_maps_from_their_btf(counting: LoadedProgram) -> None:
    import json
    import subprocess

    from kernel import bpftool

    tool = bpftool()
    counting.run(tcp(80))

    def dump(name: str) -> list[object]:
        done = subprocess.run([tool, "-j", "map", "dump", "id", str(counting.maps[name].id)], capture_output=True, text=True, check=True)
        return [entry["formatted"] for entry in json.loads(done.stdout)]  # only a map with BTF has "formatted"

    assert dump("dports") == [{"key": 80, "value": 1}]
    assert dump(".rodata") == [{"value": {".rodata": [{"drop_port": 4789}, {"ports_bias": -1}]}}]
    shown = subprocess.run([tool, "-j", "map", "show", "id", str(counting.maps[".rodata"].id)], capture_output=True, text=True, check=True)
    info = json.loads(shown.stdout)
    assert info["name"] == "counting.rodata" and info["frozen"] == 1 and info["flags"] == BPF_F_RDONLY_PROG
