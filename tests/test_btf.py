"""BTF and BTF.ext: pyfd's encoder and decoder, and what the kernel, libbpf and bpftool make of them.

Unit tests round-trip types and line info. Kernel tests load pyfd's BTF with
BPF_BTF_LOAD, load programs with their func and line info, and read the
Python lines back through `bpftool prog dump xlated ... linum`; objects must
load with bpftool without a libbpf warning. An object made by LLVM (through
llvmlite, as clang -g would) checks the decoder and the loader against BTF
that pyfd did not write.
"""

from __future__ import annotations

import inspect
import linecache
import os
import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel import enforce_kernel, needs_kernel, requires_kernel, skip_unless_kernel  # noqa: F401  (pytest fixture)
from pyfd.objfile.btf import (
    ArrayType,
    Btf,
    BtfBuilder,
    BtfExtInfo,
    BtfFormatError,
    CompositeType,
    DatasecType,
    DeclTagType,
    Enum64Type,
    EnumType,
    FloatType,
    FuncInfoRecord,
    FuncLinkage,
    FuncProtoType,
    FuncType,
    FwdType,
    IntEncoding,
    IntType,
    Kind,
    LineInfoRecord,
    Member,
    ModifierType,
    Param,
    PtrType,
    VarLinkage,
    VarSecInfo,
    VarType,
    build_program_btf,
    decode_btf,
    encode_btf_ext,
    fixup_datasecs,
    kernel_func_info,
    parse_btf_ext,
)
from pyfd.objfile.elf import SHT, ProgramSection, RawSection, write_object
from pyfd.runtime import BtfError
from pyfd.runtime import bpf, load_program
from pyfd.objfile.reader import read_object

import pyfd
from pyfd import BPF_DROP, BPF_OK, ETH_P_IP, BpfFlowKeys, Packet, dissector


@dissector
def btf_probe(pkt: Packet, keys: BpfFlowKeys) -> int:
    if keys.n_proto != ETH_P_IP:
        return BPF_DROP
    keys.ip_proto = 6
    return BPF_OK


_PROBE_SOURCE = inspect.getsourcefile(btf_probe.fn)
assert _PROBE_SOURCE is not None
PROBE_FILE: str = _PROBE_SOURCE
PROBE_LINES = {
    text.strip(): number
    for number, text in enumerate(linecache.getlines(PROBE_FILE), start=1)
    if text.strip() in ("if keys.n_proto != ETH_P_IP:", "return BPF_DROP", "keys.ip_proto = 6", "return BPF_OK")
}
EXIT_0 = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit


# === types ===========================================================================

EVERY_KIND: list[object] = [
    IntType("int", 4, 32, IntEncoding.SIGNED),  # 1
    IntType("unsigned char", 1, 8, IntEncoding.CHAR),  # 2
    PtrType(1),  # 3
    ArrayType(2, 1, 16),  # 4
    CompositeType("pair", 8, (Member("a", 1, 0), Member("b", 1, 32))),  # 5
    CompositeType("either", 4, (Member("i", 1, 0), Member("c", 2, 0)), union=True),  # 6
    CompositeType("bits", 4, (Member("low", 1, 3 << 24 | 0),), kind_flag=True),  # 7
    EnumType("color", 4, (("RED", 0), ("BLUE", -1)), signed=True),  # 8
    Enum64Type("big", 8, (("HUGE", 2**40), ("ZERO", 0))),  # 9
    FwdType("__sk_buff"),  # 10
    FwdType("u", union=True),  # 11
    ModifierType(Kind.TYPEDEF, 1, "s32"),  # 12
    ModifierType(Kind.CONST, 12),  # 13
    ModifierType(Kind.VOLATILE, 13),  # 14
    ModifierType(Kind.RESTRICT, 3),  # 15
    ModifierType(Kind.TYPE_TAG, 3, "user"),  # 16
    FuncProtoType(1, (Param("ctx", 3), Param("n", 1))),  # 17
    FuncType("dissect", 17, FuncLinkage.GLOBAL),  # 18
    FuncType("helper", 17, FuncLinkage.STATIC),  # 19
    VarType("counter", 1, VarLinkage.GLOBAL_ALLOCATED),  # 20
    DatasecType(".bss", 4, (VarSecInfo(20, 0, 4),)),  # 21
    FloatType("double", 8),  # 22
    DeclTagType("tag", 18, -1),  # 23
    DeclTagType("arg_tag", 18, 0),  # 24
]


def test_every_kind_round_trips() -> None:
    builder = BtfBuilder()
    for t in EVERY_KIND:
        builder.add(t)  # type: ignore[arg-type]
    data = builder.encode()
    decoded = decode_btf(data)
    assert list(decoded.types) == EVERY_KIND
    assert decoded.type_by_id(18) == FuncType("dissect", 17, FuncLinkage.GLOBAL)


def test_header_and_string_section() -> None:
    builder = BtfBuilder()
    builder.add(IntType("int", 4, 32, IntEncoding.SIGNED))
    data = builder.encode()
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", data)
    assert (magic, version, flags, hdr_len) == (0xEB9F, 1, 0, 24)
    assert (type_off, type_len, str_off) == (0, 16, 16)
    assert data[24 + str_off :] == b"\0int\0" and str_len == 5


def test_strings_are_stored_once() -> None:
    builder = BtfBuilder()
    assert builder.string("flow.py") == builder.string("flow.py") == 1
    assert builder.string("") == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x9f\xeb\x01\x00", "shorter than its 24-byte header"),
        (struct.pack("<HBBIIIII", 0x9FEB, 1, 0, 24, 0, 0, 0, 1) + b"\0", "big-endian"),
        (struct.pack("<HBBIIIII", 0xEB9F, 2, 0, 24, 0, 0, 0, 1) + b"\0", "version 2"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 12, 1) + b"\0", "runs past the end"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 12, 1) + struct.pack("<III", 0, 31 << 24, 0) + b"\0", "unknown BTF kind 31"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 12, 1) + struct.pack("<III", 9, 1 << 24, 4) + b"\0", "ends inside a type"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, 2) + b"a\0", "start and end with a NUL"),
    ],
)
def test_malformed_btf_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(BtfFormatError, match=message):
        decode_btf(data)


def test_encoder_refuses_impossible_types() -> None:
    builder = BtfBuilder()
    builder.add(IntType("int", 4, 64))
    with pytest.raises(BtfFormatError, match="do not fit"):
        builder.encode()
    builder = BtfBuilder()
    builder.add(FuncType("a\0b", 1))
    with pytest.raises(BtfFormatError, match="NUL"):
        builder.encode()


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_./ ", min_size=1, max_size=12)
_lines = st.lists(
    st.tuples(_names, st.text(max_size=40).filter(lambda s: "\0" not in s), st.integers(0, 2**22 - 1), st.integers(0, 1023)),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(sections=st.dictionaries(st.sampled_from(["flow_dissector", "xdp", ".text"]), _lines, min_size=1, max_size=3))
def test_btf_ext_round_trips(sections: dict[str, list[tuple[str, str, int, int]]]) -> None:
    builder = BtfBuilder()
    proto = builder.add(FuncProtoType(0))
    func = builder.add(FuncType("f", proto))
    infos = {
        name: BtfExtInfo(
            (FuncInfoRecord(0, func, "f"),),
            tuple(LineInfoRecord(8 * i, file, text, line, col) for i, (file, text, line, col) in enumerate(records)),
        )
        for name, records in sections.items()
    }
    ext = encode_btf_ext(builder, infos)
    parsed = parse_btf_ext(ext, builder.encode())
    assert parsed.keys() == infos.keys()
    for name, info in infos.items():
        assert parsed[name].func_info == info.func_info
        got = [(r.insn_off, r.file_name, r.line_text, r.line, r.col) for r in parsed[name].line_info]
        assert got == [(r.insn_off, r.file_name, r.line_text, r.line, r.col) for r in info.line_info]


def test_btf_ext_header() -> None:
    builder = BtfBuilder()
    ext = encode_btf_ext(builder, {"s": BtfExtInfo((FuncInfoRecord(0, 1),), (LineInfoRecord(0, "f.py", "x", 3, 5),))})
    magic, version, flags, hdr_len, func_off, func_len, line_off, line_len = struct.unpack_from("<HBBIIIII", ext)
    assert (magic, version, flags, hdr_len) == (0xEB9F, 1, 0, 32)
    # func_info: rec_size 8, one section header, one record; line_info: rec_size 16, header, one record.
    assert (func_off, func_len, line_off, line_len) == (0, 4 + 8 + 8, 20, 4 + 8 + 16)
    (line_col,) = struct.unpack_from("<I", ext, 32 + line_off + 4 + 8 + 12)
    assert line_col == 3 << 10 | 5


def test_btf_ext_errors() -> None:
    builder = BtfBuilder()
    ext = encode_btf_ext(builder, {"s": BtfExtInfo((FuncInfoRecord(0, 1),))})
    btf = builder.encode()
    with pytest.raises(BtfFormatError, match="magic"):
        parse_btf_ext(b"\0" * 32, btf)
    with pytest.raises(BtfFormatError, match="runs past the end"):
        parse_btf_ext(ext[:-4], btf)
    with pytest.raises(BtfFormatError, match="shorter than"):
        parse_btf_ext(ext[:10], btf)


# === a compiled program's BTF ==========================================================


def test_program_btf_describes_the_function() -> None:
    compilation = btf_probe.compile().compilation
    btf = decode_btf(compilation.btf().btf)
    funcs = [t for t in btf.types if isinstance(t, FuncType)]
    assert funcs == [FuncType("btf_probe", funcs[0].proto, FuncLinkage.GLOBAL)]
    proto = btf.type_by_id(funcs[0].proto)
    assert isinstance(proto, FuncProtoType)
    assert btf.type_by_id(proto.return_type) == IntType("int", 4, 32, IntEncoding.SIGNED)
    (param,) = proto.params
    assert param.name == "ctx"  # the kernel refuses a FUNC whose argument has no name
    pointer = btf.type_by_id(param.type)
    assert isinstance(pointer, PtrType)
    assert btf.type_by_id(pointer.type) == CompositeType("__sk_buff", 0)


def _license_types(btf: Btf) -> tuple[DatasecType, VarType, ArrayType, IntType]:
    (datasec,) = [t for t in btf.types if isinstance(t, DatasecType)]
    (secinfo,) = datasec.vars
    var = btf.type_by_id(secinfo.type)
    assert isinstance(var, VarType)
    array = btf.type_by_id(var.type)
    assert isinstance(array, ArrayType)
    char = btf.type_by_id(array.type)
    assert isinstance(char, IntType)
    assert isinstance(btf.type_by_id(array.index_type), IntType)
    assert (secinfo.offset, secinfo.size) == (0, datasec.size)
    return datasec, var, array, char


def test_program_btf_describes_the_license() -> None:
    # libbpf's static linker wants BTF for every global symbol, `_license` included.
    obj = read_object(btf_probe.compile().object_bytes())
    datasec, var, array, char = _license_types(decode_btf(obj.sections[".BTF"]))
    assert (datasec.name, datasec.size) == ("license", obj.section_sizes["license"]) == ("license", 4)
    assert (var.name, var.linkage) == ("_license", VarLinkage.GLOBAL_ALLOCATED)
    assert array.nelems == 4 and obj.license == "GPL"
    assert char == IntType("char", 1, 8, IntEncoding.SIGNED)
    assert obj.symbols["_license"] == 0  # the VAR's offset


def test_license_var_has_the_license_length() -> None:
    program = build_program_btf("bare", "flow_dissector", [None], license="Dual BSD/GPL")
    datasec, _, array, _ = _license_types(decode_btf(program.btf))
    assert datasec.size == array.nelems == len("Dual BSD/GPL") + 1


def test_line_info_follows_the_python_spans() -> None:
    compilation = btf_probe.compile().compilation
    parsed = parse_btf_ext(compilation.btf().btf_ext, compilation.btf().btf)
    assert list(parsed) == ["flow_dissector"]
    info = parsed["flow_dissector"]
    assert [(f.insn_off, f.name) for f in info.func_info] == [(0, "btf_probe")]
    records = info.line_info
    assert records[0].insn_off == 0
    spans = compilation.code.spans_by_slot()
    # One record wherever (file, line, col) changes, and nowhere else.
    places = [None if span is None else (span.file, span.line, span.col) for span in spans]
    changes = [slot for slot, place in enumerate(places) if place is not None and (slot == 0 or place != places[slot - 1])]
    assert [r.insn_off // 8 for r in records] == changes
    for record in records:
        span = spans[record.insn_off // 8]
        assert span is not None
        assert (record.file_name, record.line, record.col) == (span.file, span.line, span.col + 1)
        assert record.line_text == linecache.getline(span.file, span.line).rstrip()
    assert {r.line for r in records} >= set(PROBE_LINES.values())
    assert all(r.file_name == PROBE_FILE for r in records)


def test_object_has_btf_sections() -> None:
    obj = read_object(btf_probe.compile().object_bytes())
    assert {".BTF", ".BTF.ext"} <= obj.sections.keys()
    info = parse_btf_ext(obj.sections[".BTF.ext"], obj.sections[".BTF"])
    assert info["flow_dissector"].line_info[0].file_name == PROBE_FILE


def test_spanless_code_gets_only_func_info() -> None:
    program = build_program_btf("bare", "flow_dissector", [None, None])
    info = parse_btf_ext(program.btf_ext, program.btf)["flow_dissector"]
    assert info.line_info == () and [f.name for f in info.func_info] == ["bare"]
    assert program.line_info == b"" and len(program.func_info) == 8


def test_fixup_datasecs_patches_sizes_and_offsets() -> None:
    builder = BtfBuilder()
    int_id = builder.add(IntType("int", 4, 32, IntEncoding.SIGNED))
    a = builder.add(VarType("a", int_id))
    b = builder.add(VarType("b", int_id))
    builder.add(DatasecType(".data", 0, (VarSecInfo(a, 0, 4), VarSecInfo(b, 0, 4))))
    builder.add(DatasecType(".rodata", 0))
    fixed = decode_btf(fixup_datasecs(builder.encode(), {".data": 8}, {"a": 0, "b": 4}))
    assert fixed.types[3] == DatasecType(".data", 8, (VarSecInfo(a, 0, 4), VarSecInfo(b, 4, 4)))
    assert fixed.types[4] == DatasecType(".rodata", 0)  # no such section: left for the kernel to judge
    assert fixed.strings == decode_btf(builder.encode()).strings  # patched in place


# === an object LLVM wrote =================================================================

C_SOURCE = "struct __sk_buff;\n\nint cdiss(struct __sk_buff *ctx)\n{\n\treturn 0;\n}\nchar _license[] = \"GPL\";\nint counter;\n"

LLVM_IR = r"""
target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
target triple = "bpfel"

@_license = dso_local global [4 x i8] c"GPL\00", section "license", align 1, !dbg !20
@counter = dso_local global i32 0, section ".bss", align 4, !dbg !30

define dso_local i32 @cdiss(ptr nocapture readnone %ctx) section "flow_dissector" !dbg !10 {
entry:
  ret i32 0, !dbg !18
}

!llvm.dbg.cu = !{!0}
!llvm.module.flags = !{!3, !4}

!0 = distinct !DICompileUnit(language: DW_LANG_C99, file: !1, producer: "pyfd test", isOptimized: true, runtimeVersion: 0, emissionKind: FullDebug, globals: !2)
!1 = !DIFile(filename: "cdiss.c", directory: "DIRECTORY")
!2 = !{!20, !30}
!3 = !{i32 2, !"Debug Info Version", i32 3}
!4 = !{i32 7, !"Dwarf Version", i32 4}
!5 = !DIBasicType(name: "int", size: 32, encoding: DW_ATE_signed)
!6 = !DICompositeType(tag: DW_TAG_structure_type, name: "__sk_buff", file: !1, line: 1, flags: DIFlagFwdDecl)
!7 = !DIDerivedType(tag: DW_TAG_pointer_type, baseType: !6, size: 64)
!8 = !DISubroutineType(types: !9)
!9 = !{!5, !7}
!10 = distinct !DISubprogram(name: "cdiss", scope: !1, file: !1, line: 3, type: !8, scopeLine: 3, flags: DIFlagPrototyped,
                             spFlags: DISPFlagDefinition | DISPFlagOptimized, unit: !0, retainedNodes: !15)
!15 = !{!16}
!16 = !DILocalVariable(name: "ctx", arg: 1, scope: !10, file: !1, line: 3, type: !7)
!18 = !DILocation(line: 5, column: 2, scope: !10)
!20 = !DIGlobalVariableExpression(var: !21, expr: !DIExpression())
!21 = distinct !DIGlobalVariable(name: "_license", scope: !0, file: !1, line: 7, type: !22, isLocal: false, isDefinition: true)
!22 = !DICompositeType(tag: DW_TAG_array_type, baseType: !23, size: 32, elements: !24)
!23 = !DIBasicType(name: "char", size: 8, encoding: DW_ATE_signed_char)
!24 = !{!25}
!25 = !DISubrange(count: 4)
!30 = !DIGlobalVariableExpression(var: !31, expr: !DIExpression())
!31 = distinct !DIGlobalVariable(name: "counter", scope: !0, file: !1, line: 8, type: !5, isLocal: false, isDefinition: true)
"""


@pytest.fixture
def llvm_object(tmp_path: Path) -> Path:
    """An object LLVM compiled from IR with debug info, as `clang -g -target bpf` makes one."""
    llvm = pytest.importorskip("llvmlite.binding")
    (tmp_path / "cdiss.c").write_text(C_SOURCE)  # LLVM reads the line text from the source file
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    module = llvm.parse_assembly(LLVM_IR.replace("DIRECTORY", str(tmp_path)))
    module.verify()
    machine = llvm.Target.from_triple("bpfel").create_target_machine(opt=2, reloc="static", codemodel="small")
    path = tmp_path / "cdiss.o"
    path.write_bytes(machine.emit_object(module))
    return path


def test_llvm_line_info_is_read(llvm_object: Path) -> None:
    obj = read_object(llvm_object)
    info = parse_btf_ext(obj.sections[".BTF.ext"], obj.sections[".BTF"])["flow_dissector"]
    assert [(f.insn_off, f.name) for f in info.func_info] == [(0, "cdiss")]
    (line,) = info.line_info
    assert (line.insn_off, line.file_name, line.line_text, line.line, line.col) == (
        0,
        str(llvm_object.parent / "cdiss.c"),
        "\treturn 0;",
        5,
        2,
    )
    btf = decode_btf(obj.sections[".BTF"])
    assert any(isinstance(t, DatasecType) and t.size == 0 for t in btf.types)  # left for the loader


# === the kernel ===========================================================================

BPFFS = Path("/sys/fs/bpf")


def _bpftool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if not os.path.exists(path):
        enforce_kernel("bpftool is not installed (apt-get install bpftool)")  # fails in CI, skips elsewhere
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def pin() -> Iterator[Path]:
    skip_unless_kernel()
    path = BPFFS / f"pyfd_test_btf_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        yield path
    finally:
        if path.exists():
            path.unlink()


def _linum(*target: str) -> str:
    dumped = _bpftool("prog", "dump", "xlated", *target, "linum")
    assert dumped.returncode == 0, dumped.stderr
    return dumped.stdout


def _assert_python_lines(listing: str) -> None:
    assert "int btf_probe(struct __sk_buff * ctx):" in listing
    for text, line in PROBE_LINES.items():
        assert f"; {text} [file:{PROBE_FILE} line_num:{line} line_col:" in listing, listing


@needs_kernel
def test_kernel_accepts_pyfd_btf() -> None:
    fd, log = bpf.btf_load(data=btf_probe.compile().compilation.btf().btf, log_level=1, log_size=65536)
    os.close(fd)
    assert "FUNC btf_probe" in log and "FUNC_PROTO (anon) return=1 args=(3 ctx)" in log
    assert "DATASEC license size=4 vlen=1" in log and "VAR _license type_id=7 linkage=1" in log


@needs_kernel
def test_loaded_program_carries_python_line_info() -> None:
    program = btf_probe.compile()
    records = parse_btf_ext(program.compilation.btf().btf_ext, program.compilation.btf().btf)["flow_dissector"]
    with program.load() as loaded:
        info = loaded.info()
        assert info.btf_id != 0
        assert (info.nr_func_info, info.nr_line_info) == (1, len(records.line_info))
        _assert_python_lines(_linum("id", str(loaded.id)))


@needs_kernel
def test_verifier_log_shows_python_lines() -> None:
    with btf_probe.compile().load(log_level=2) as loaded:
        name = Path(PROBE_FILE).name
        assert f"; keys.ip_proto = 6 @ {name}:{PROBE_LINES['keys.ip_proto = 6']}" in loaded.log, loaded.log


@needs_kernel
def test_bpftool_loads_pyfd_object_without_warnings(pin: Path, tmp_path: Path) -> None:
    obj = btf_probe.compile().write(tmp_path / "probe.o")
    loaded = _bpftool("prog", "load", str(obj), str(pin), "type", "flow_dissector")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr == ""  # libbpf warns about BTF it cannot use; pyfd's has none
    _assert_python_lines(_linum("pinned", str(pin)))


@needs_kernel
def test_pyfd_load_passes_the_objects_btf(tmp_path: Path) -> None:
    obj = btf_probe.compile().write(tmp_path / "probe.o")
    with pyfd.load(obj) as loaded:
        assert loaded.info().btf_id != 0
        _assert_python_lines(_linum("id", str(loaded.id)))


@needs_kernel
def test_object_without_btf_still_loads(tmp_path: Path) -> None:
    obj = tmp_path / "plain.o"
    obj.write_bytes(write_object([ProgramSection("plain", "flow_dissector", EXIT_0)]))
    with pyfd.load(obj) as loaded:
        assert loaded.info().btf_id == 0 and loaded.run(bytes(64)).retval == 0


@needs_kernel
def test_llvm_object_loads_with_its_btf(llvm_object: Path) -> None:
    # The kernel refuses LLVM's DATASEC of size 0; pyfd fills it in as libbpf does.
    with pytest.raises(BtfError, match="size == 0"):
        bpf.btf_load(data=read_object(llvm_object).sections[".BTF"], log_level=1, log_size=65536)
    with pyfd.load(llvm_object) as loaded:
        assert loaded.info().btf_id != 0 and loaded.info().nr_line_info == 1
        assert f"; return 0; [file:{llvm_object.parent / 'cdiss.c'} line_num:5 line_col:2]" in _linum("id", str(loaded.id))


def _object_with_bad_func_name() -> bytes:
    builder = BtfBuilder()
    proto = builder.add(FuncProtoType(0))
    func = builder.add(FuncType("bad-name", proto))
    ext = encode_btf_ext(builder, {"flow_dissector": BtfExtInfo((FuncInfoRecord(0, func),))})
    return write_object(
        [ProgramSection("prog", "flow_dissector", EXIT_0)],
        extra_sections=[RawSection(".BTF", SHT.PROGBITS, builder.encode()), RawSection(".BTF.ext", SHT.PROGBITS, ext)],
    )


@needs_kernel
def test_refused_btf_is_an_error_not_a_silent_fallback(tmp_path: Path) -> None:
    obj = tmp_path / "bad.o"
    obj.write_bytes(_object_with_bad_func_name())
    with pytest.raises(BtfError) as info:
        pyfd.load(obj)
    err = info.value
    assert "the kernel refused the BTF data of program 'prog'" in str(err)
    assert err.reason == "[2] FUNC bad-name type_id=1 Invalid name"
    assert "magic: 0xeb9f" in err.log


@needs_kernel
def test_load_program_with_btf_closes_the_btf_fd() -> None:
    before = len(os.listdir("/proc/self/fd"))
    program = build_program_btf("bare", "flow_dissector", [None, None])
    with load_program(EXIT_0, name="bare", btf=program.btf, func_info=program.func_info) as loaded:
        assert loaded.info().nr_func_info == 1
    assert len(os.listdir("/proc/self/fd")) == before


def test_func_info_needs_btf() -> None:
    with pytest.raises(ValueError, match="need the BTF"):
        load_program(EXIT_0, name="x", func_info=kernel_func_info([FuncInfoRecord(0, 1)]))


def test_btf_type_is_a_frozen_record() -> None:
    btf = Btf((IntType("int", 4, 32),), b"\0int\0")
    assert btf.string_at(1) == "int"
    with pytest.raises(BtfFormatError, match="no BTF type id 2"):
        btf.type_by_id(2)
