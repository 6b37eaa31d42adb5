"""ELF objects: pyfd's writer, the runtime's reader, pyelftools and the real loader."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_SH_TYPE_BASE
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import Section, SymbolTableSection
from hypothesis import given, settings
from hypothesis import strategies as st
from pyfd.objfile.elf import (
    SHF,
    SHT,
    STB,
    STT,
    ElfFormatError,
    ElfObjectError,
    ProgramSection,
    RawSection,
    read_elf,
    write_object,
)
from pyfd.objfile.reader import ObjectFileError, Relocation, read_object

RETURN_0 = bytes.fromhex(
    "b700000000000000"  # r0 = 0
    "9500000000000000"  # exit
)
RETURN_2 = bytes.fromhex(
    "b700000002000000"  # r0 = 2
    "9500000000000000"  # exit
)

# A minimal valid .BTF section: header, one type `int` (BTF_KIND_INT, 4 bytes,
# signed, 32 bits), string table "\0int\0" (include/uapi/linux/btf.h). The
# kernel refuses a BTF blob without types ("No type found").
_BTF_TYPES = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)
_BTF_STRINGS = b"\0int\0"
MINIMAL_BTF = (
    struct.pack(
        "<HBBIIIII",
        0xEB9F,
        1,
        0,
        24,
        0,
        len(_BTF_TYPES),
        len(_BTF_TYPES),
        len(_BTF_STRINGS),
    )
    + _BTF_TYPES
    + _BTF_STRINGS
)

FLOW_DISSECTOR_KEYS_SIZE = 56  # struct bpf_flow_keys


def section(elf: ELFFile, name: str) -> Section:
    found = elf.get_section_by_name(name)
    if found is None:
        pytest.fail(f"no section {name!r}")
    return found


def symbol_table(elf: ELFFile) -> SymbolTableSection:
    found = section(elf, ".symtab")
    if not isinstance(found, SymbolTableSection):
        pytest.fail(".symtab is not a symbol table")
    return found


def one_program(name: str = "ipv4_tcp", code: bytes = RETURN_0) -> bytes:
    return write_object([ProgramSection(name, "flow_dissector", code)])


# --- round trip through the runtime reader ---------------------------------


def test_round_trip_one_program() -> None:
    obj = read_object(one_program())
    assert obj.license == "GPL"
    assert [(p.name, p.section, p.code, p.insn_count) for p in obj.programs] == [
        ("ipv4_tcp", "flow_dissector", RETURN_0, 2)
    ]
    assert obj.programs[0].relocations == []
    assert obj.program().name == "ipv4_tcp"
    assert obj.program("ipv4_tcp").code == RETURN_0


def test_round_trip_two_programs_in_one_section() -> None:
    data = write_object(
        [
            ProgramSection("accept", "flow_dissector", RETURN_0),
            ProgramSection("drop", "flow_dissector", RETURN_2),
        ],
        license="Dual BSD/GPL",
    )
    obj = read_object(data)
    assert obj.license == "Dual BSD/GPL"
    assert [(p.name, p.section, p.code) for p in obj.programs] == [
        ("accept", "flow_dissector", RETURN_0),
        ("drop", "flow_dissector", RETURN_2),
    ]
    assert obj.sections["flow_dissector"] == RETURN_0 + RETURN_2
    assert obj.sections["license"] == b"Dual BSD/GPL\0"


def test_round_trip_programs_in_several_sections() -> None:
    obj = read_object(
        write_object(
            [
                ProgramSection("a", "flow_dissector", RETURN_0),
                ProgramSection("b", "flow_dissector/second", RETURN_2),
                ProgramSection("c", "flow_dissector", RETURN_2 + RETURN_0),
            ]
        )
    )
    assert [(p.name, p.section, p.code) for p in obj.programs] == [
        ("a", "flow_dissector", RETURN_0),
        ("c", "flow_dissector", RETURN_2 + RETURN_0),
        ("b", "flow_dissector/second", RETURN_2),
    ]


def test_round_trip_extra_section() -> None:
    data = write_object(
        [ProgramSection("ipv4_tcp", "flow_dissector", RETURN_0)],
        extra_sections=[
            RawSection(".BTF", SHT.PROGBITS, MINIMAL_BTF),
            RawSection(".pyfd.note", SHT.PROGBITS, b"xyz", align=1),
        ],
    )
    obj = read_object(data)
    assert obj.sections[".BTF"] == MINIMAL_BTF
    assert obj.sections[".pyfd.note"] == b"xyz"
    assert obj.program().code == RETURN_0


def test_output_is_deterministic() -> None:
    programs = [
        ProgramSection("accept", "flow_dissector", RETURN_0),
        ProgramSection("drop", "flow_dissector", RETURN_2),
    ]
    extra = [RawSection(".BTF", SHT.PROGBITS, MINIMAL_BTF)]
    assert write_object(programs, extra_sections=extra) == write_object(
        list(programs), extra_sections=list(extra)
    )


_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.", min_size=1, max_size=20
).filter(lambda name: name != "_license")
_code = st.integers(min_value=1, max_value=16).flatmap(
    lambda n: st.binary(min_size=8 * n, max_size=8 * n)
)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(_names, st.sampled_from(["flow_dissector", "fd2", ".text"]), _code),
        min_size=1,
        max_size=5,
        unique_by=lambda t: t[0],
    )
)
def test_round_trip_property(entries: list[tuple[str, str, bytes]]) -> None:
    programs = [ProgramSection(name, section, code) for name, section, code in entries]
    obj = read_object(write_object(programs))
    assert sorted((p.name, p.section, p.code) for p in obj.programs) == sorted(entries)


# --- the same object through pyelftools ------------------------------------


def test_pyelftools_view() -> None:
    data = write_object(
        [
            ProgramSection("accept", "flow_dissector", RETURN_0),
            ProgramSection("drop", "flow_dissector", RETURN_2),
        ],
        extra_sections=[RawSection(".BTF", SHT.PROGBITS, MINIMAL_BTF)],
    )
    elf = ELFFile(io.BytesIO(data))
    assert elf.elfclass == 64
    assert elf.little_endian
    assert elf["e_type"] == "ET_REL"
    assert elf["e_machine"] == "EM_BPF"
    assert elf["e_ident"]["EI_OSABI"] == "ELFOSABI_SYSV"
    assert elf["e_shoff"] % 8 == 0

    names = [s.name for s in elf.iter_sections()]
    assert names == [
        "",
        "flow_dissector",
        "license",
        ".BTF",
        ".symtab",
        ".strtab",
        ".shstrtab",
    ]

    code = section(elf, "flow_dissector")
    assert code["sh_type"] == "SHT_PROGBITS"
    assert code["sh_flags"] == SHF.ALLOC | SHF.EXECINSTR
    assert code["sh_addralign"] == 8
    assert code["sh_offset"] % 8 == 0
    assert code.data() == RETURN_0 + RETURN_2

    license = section(elf, "license")
    assert license["sh_type"] == "SHT_PROGBITS"
    assert license["sh_flags"] == SHF.ALLOC | SHF.WRITE
    assert license.data() == b"GPL\0"

    btf = section(elf, ".BTF")
    assert btf["sh_flags"] == 0
    assert btf["sh_addralign"] == 4
    assert btf["sh_offset"] % 4 == 0
    assert btf.data() == MINIMAL_BTF

    symtab = symbol_table(elf)
    assert symtab["sh_type"] == "SHT_SYMTAB"
    assert symtab["sh_entsize"] == 24
    assert elf.get_section(symtab["sh_link"]).name == ".strtab"
    symbols = list(symtab.iter_symbols())
    first_global = symtab["sh_info"]
    assert all(s["st_info"]["bind"] == "STB_LOCAL" for s in symbols[:first_global])
    assert all(s["st_info"]["bind"] == "STB_GLOBAL" for s in symbols[first_global:])
    assert symbols[0]["st_info"]["type"] == "STT_NOTYPE" and symbols[0].name == ""

    by_name = {s.name: s for s in symbols}
    code_index = names.index("flow_dissector")
    for name, value in [("accept", 0), ("drop", 16)]:
        symbol = by_name[name]
        assert symbol["st_info"]["bind"] == "STB_GLOBAL"
        assert symbol["st_info"]["type"] == "STT_FUNC"
        assert symbol["st_shndx"] == code_index
        assert symbol["st_value"] == value
        assert symbol["st_size"] == 16
    lic = by_name["_license"]
    assert lic["st_info"]["bind"] == "STB_GLOBAL"
    assert lic["st_info"]["type"] == "STT_OBJECT"
    assert lic["st_shndx"] == names.index("license")
    assert lic["st_size"] == 4


# --- reading objects that clang's backend produced -------------------------

# LLVM's BPF backend (through llvmlite, a project dependency) emits the same
# objects as `clang -target bpf -c`: a static subprogram in .text, two programs
# sharing a section, one in another section, and relocations for a call and for
# a global (the ld_imm64 libbpf would patch with a map fd).
_LLVM_IR = r"""
target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
target triple = "bpfel"
@counter = global i64 0, section ".data", align 8
@_license = global [4 x i8] c"GPL\00", section "license", align 1
define internal i32 @helper(i32 %x) noinline nounwind {
  %y = add i32 %x, 1
  ret i32 %y
}
define i32 @first(ptr %ctx) nounwind section "flow_dissector" {
  %r = call i32 @helper(i32 0)
  ret i32 %r
}
define i32 @second(ptr %ctx) nounwind section "flow_dissector" {
  ret i32 2
}
define i32 @other(ptr %ctx) nounwind section "xdp" {
  %v = load i64, ptr @counter
  %t = trunc i64 %v to i32
  ret i32 %t
}
"""


@pytest.fixture(scope="module")
def llvm_object() -> bytes:
    llvm = pytest.importorskip("llvmlite.binding")
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    module = llvm.parse_assembly(_LLVM_IR)
    module.verify()
    machine = llvm.Target.from_triple("bpfel").create_target_machine(
        opt=2, reloc="static"
    )
    data: bytes = machine.emit_object(module)
    return data


def test_read_llvm_object(llvm_object: bytes) -> None:
    obj = read_object(llvm_object)
    assert obj.license == "GPL"
    assert [(p.name, p.section) for p in obj.programs] == [
        ("helper", ".text"),
        ("first", "flow_dissector"),
        ("second", "flow_dissector"),
        ("other", "xdp"),
    ]
    assert obj.program("second").code == bytes.fromhex(
        "b400000002000000"  # w0 = 2
        "9500000000000000"  # exit
    )
    assert obj.program("helper").insn_count == 3
    first = obj.program("first")
    assert first.insn_count == 3
    # `call helper` is the second instruction; its target is a .text offset.
    assert first.relocations == [Relocation(8, ".text", ".text")]
    assert first.code[8] == 0x85  # BPF_JMP | BPF_CALL
    other = obj.program("other")
    assert other.relocations == [Relocation(offset=0, symbol="counter", section=".data")]
    assert other.code[0] == 0x18  # BPF_LD | BPF_IMM | BPF_DW: two slots
    assert obj.program("second").relocations == []
    assert {".text", "flow_dissector", ".relflow_dissector", "xdp", ".data"} <= set(
        obj.sections
    )


def test_program_lookup_errors(llvm_object: bytes) -> None:
    obj = read_object(llvm_object)
    with pytest.raises(
        ObjectFileError, match=r"4 programs \(helper, first, second, other\)"
    ):
        obj.program()
    with pytest.raises(
        ObjectFileError, match=r"no program 'nope'; available: helper, first"
    ):
        obj.program("nope")


_Sections = list[tuple[str, int, int, bytes, int, int]]  # name, type, flags, contents, link, info
_Symbols = list[tuple[str, str, str, int | str, int]]  # name, binding, type, section index, value


def _pyelftools_view(data: bytes) -> tuple[_Sections, _Symbols, dict[int, list[tuple[int, str]]]]:
    """Sections, symbols and relocations (by relocated section) as pyelftools reads them."""
    elf = ELFFile(io.BytesIO(data))
    sections = [
        (s.name, s["sh_type"] if isinstance(s["sh_type"], int) else ENUM_SH_TYPE_BASE[s["sh_type"]],
         s["sh_flags"], b"" if s["sh_type"] == "SHT_NOBITS" else s.data(), s["sh_link"], s["sh_info"])
        for s in elf.iter_sections()
    ]
    symtab = next(s for s in elf.iter_sections() if isinstance(s, SymbolTableSection))

    def name(sym: object) -> str:
        shndx = sym["st_shndx"]  # type: ignore[index]
        if sym.name or not isinstance(shndx, int) or not 0 < shndx < elf.num_sections():  # type: ignore[attr-defined]
            return str(sym.name)  # type: ignore[attr-defined]
        return str(elf.get_section(shndx).name)

    symbols = [
        (name(sym), sym.entry["st_info"]["bind"], sym.entry["st_info"]["type"], sym["st_shndx"], sym["st_value"])
        for sym in symtab.iter_symbols()
    ]
    relocations: dict[int, list[tuple[int, str]]] = {}
    for section in elf.iter_sections():
        if isinstance(section, RelocationSection):
            for r in section.iter_relocations():
                relocations.setdefault(section["sh_info"], []).append((r["r_offset"], name(symtab.get_symbol(r["r_info_sym"]))))
    return sections, symbols, relocations


def test_read_elf_agrees_with_pyelftools(llvm_object: bytes) -> None:
    # The llvm backend reads LLVM's objects with read_elf (no pyelftools in a compile).
    for data in (llvm_object, one_program()):
        sections, symbols, relocations = _pyelftools_view(data)
        read = read_elf(data)
        assert [(s.name, s.sh_type, s.flags, s.data, s.link, s.info) for s in read.sections] == sections
        # pyelftools names a special section index (SHN_ABS, ...) instead of giving its number.
        mine = [(s.name, f"STB_{STB(s.binding).name}", f"STT_{STT(s.type).name}", s.shndx, s.value) for s in read.symbols]
        assert mine == [(*s[:3], s[3] if isinstance(s[3], int) else mine[i][3], s[4]) for i, s in enumerate(symbols)]
        for number in range(len(read.sections)):
            assert read.relocations(number) == sorted(relocations.get(number, []))
    llvm_read = read_elf(llvm_object)
    index = llvm_read.index("flow_dissector")
    assert index is not None
    assert llvm_read.relocations(index) == [(8, ".text")]  # `call helper` in `first`
    assert [s.name for s in llvm_read.symbols if s.type == STT.FUNC] == ["helper", "first", "second", "other"]


@pytest.mark.parametrize("cut", [0, 3, 63, -1])
def test_read_elf_refuses_what_is_no_elf64_object(cut: int) -> None:
    data = one_program()
    bad = data[:cut] if cut >= 0 else data[: len(data) - 8]  # -1: the last section header cut short
    with pytest.raises(ElfFormatError):
        read_elf(bad)
    with pytest.raises(ElfFormatError, match="not a little-endian ELF64"):
        read_elf(b"\x7fELF\x01\x01" + data[6:])  # ELFCLASS32


# --- reader errors ----------------------------------------------------------


def test_garbage_is_not_elf(tmp_path: Path) -> None:
    path = tmp_path / "garbage.o"
    path.write_bytes(b"this is not an object file at all")
    with pytest.raises(ObjectFileError, match=r"garbage\.o: not an ELF file"):
        read_object(path)
    with pytest.raises(ObjectFileError, match=r"<bytes>: not an ELF file"):
        read_object(b"")


@pytest.mark.parametrize("keep", [10, 40, 100, -1])
def test_truncated_object(tmp_path: Path, keep: int) -> None:
    data = one_program()
    path = tmp_path / "cut.o"
    path.write_bytes(data[:keep])
    with pytest.raises(ObjectFileError, match=r"cut\.o: truncated ELF file"):
        read_object(str(path))


def test_truncated_section_contents() -> None:
    # The header table is intact but a section claims more bytes than the file has.
    data = bytearray(one_program())
    elf = ELFFile(io.BytesIO(bytes(data)))
    index = [s.name for s in elf.iter_sections()].index("flow_dissector")
    sh_size_at = elf["e_shoff"] + index * 64 + 32
    struct.pack_into("<Q", data, sh_size_at, 1 << 20)
    with pytest.raises(
        ObjectFileError, match=r"truncated ELF file: section 1 ends at byte"
    ):
        read_object(bytes(data))


def test_x86_elf_is_not_bpf() -> None:
    true = shutil.which("true") or "/bin/true"
    if not os.path.exists(true):
        pytest.skip("no /bin/true to read")
    with pytest.raises(
        ObjectFileError, match=r"true: not a BPF object: e_machine is \d+"
    ):
        read_object(true)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ObjectFileError, match=r"missing\.o: cannot read"):
        read_object(tmp_path / "missing.o")


def test_object_without_program() -> None:
    data = bytearray(one_program())
    # Turn the program symbol into a data object: no STT_FUNC is left.
    elf = ELFFile(io.BytesIO(bytes(data)))
    symtab = symbol_table(elf)
    st_info_at = symtab["sh_offset"] + 1 * 24 + 4
    data[st_info_at] = (1 << 4) | 1  # STB_GLOBAL, STT_OBJECT
    with pytest.raises(ObjectFileError, match=r"<bytes>: no program"):
        read_object(bytes(data))


def test_object_file_error_is_value_error() -> None:
    assert issubclass(ObjectFileError, ValueError)


# --- writer errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("programs", "kwargs", "message"),
    [
        ([], {}, "at least one program"),
        ([ProgramSection("bad-name", "flow_dissector", RETURN_0)], {}, "only letters"),
        ([ProgramSection("p", "flow_dissector", RETURN_0[:12])], {}, "12 bytes"),
        ([ProgramSection("p", "flow_dissector", b"")], {}, "0 bytes"),
        (
            [ProgramSection("p", "s", RETURN_0), ProgramSection("p", "s", RETURN_2)],
            {},
            "used twice",
        ),
        ([ProgramSection("p", "license", RETURN_0)], {}, "reserved"),
        ([ProgramSection("p", "", RETURN_0)], {}, "bad section name"),
        ([ProgramSection("p", "s", RETURN_0)], {"license": "G\0PL"}, "NUL"),
        (
            [ProgramSection("p", "s", RETURN_0)],
            {"extra_sections": [RawSection("s", SHT.PROGBITS, b"")]},
            "clashes",
        ),
        (
            [ProgramSection("p", "s", RETURN_0)],
            {"extra_sections": [RawSection(".x", SHT.PROGBITS, b"", align=3)]},
            "power of two",
        ),
    ],
)
def test_writer_refuses(
    programs: list[ProgramSection], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ElfObjectError, match=message):
        write_object(programs, **kwargs)  # type: ignore[arg-type]


# --- the real loader: bpftool and libbpf ---------------------------------------

BPFFS = Path("/sys/fs/bpf")
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
CAP_BPF = 39


def _unavailable(reason: str) -> NoReturn:
    """Skip locally, fail in CI: CI must run the loader tests."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _effective_capabilities() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


@pytest.fixture
def bpftool() -> str:
    path = shutil.which("bpftool") or (
        "/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None
    )
    if path is None:
        _unavailable("bpftool is not installed")
    caps = _effective_capabilities()
    if not caps >> CAP_NET_ADMIN & 1 or not (
        caps >> CAP_BPF & 1 or caps >> CAP_SYS_ADMIN & 1
    ):
        _unavailable("loading a flow dissector needs CAP_BPF and CAP_NET_ADMIN")
    if not os.path.ismount(BPFFS):
        mounted = subprocess.run(
            ["mount", "-t", "bpf", "bpf", str(BPFFS)], capture_output=True, check=False
        )
        if mounted.returncode != 0:
            _unavailable(f"bpffs is not mounted at {BPFFS} and mounting it failed")
    return path


@pytest.fixture
def pin() -> Iterator[Path]:
    path = BPFFS / f"pyfd_test_elf_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        yield path
    finally:
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        elif path.exists():
            path.unlink()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=60, check=False
    )


def _load(bpftool: str, obj: Path, pin: Path, command: str = "load") -> None:
    loaded = _run(
        bpftool, "prog", command, str(obj), str(pin), "type", "flow_dissector"
    )
    assert loaded.returncode == 0, loaded.stderr
    # libbpf reports warnings and skipped sections on stderr; a clean object has none.
    assert loaded.stderr == "", loaded.stderr


def _test_run(bpftool: str, pinned: Path, tmp_path: Path) -> tuple[int, bytes]:
    frame = tmp_path / "frame.bin"
    keys = tmp_path / "keys.bin"
    # 14 bytes of Ethernet header and some payload: the test run refuses < 14.
    frame.write_bytes(bytes(range(64)))
    ran = _run(
        bpftool,
        "-j",
        "prog",
        "run",
        "pinned",
        str(pinned),
        "data_in",
        str(frame),
        "data_out",
        str(keys),
    )
    assert ran.returncode == 0, ran.stderr
    retval = json.loads(ran.stdout)["retval"]
    assert isinstance(retval, int)
    return retval, keys.read_bytes()


@pytest.mark.kernel
def test_bpftool_loads_and_runs(bpftool: str, pin: Path, tmp_path: Path) -> None:
    obj = tmp_path / "ipv4_tcp.o"
    obj.write_bytes(one_program())
    _load(bpftool, obj, pin)

    shown = _run(bpftool, "-j", "prog", "show", "pinned", str(pin))
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["type"] == "flow_dissector"
    assert info["name"] == "ipv4_tcp"
    assert info["gpl_compatible"] is True

    retval, keys = _test_run(bpftool, pin, tmp_path)
    assert retval == 0
    assert len(keys) == FLOW_DISSECTOR_KEYS_SIZE
    nhoff, thoff = struct.unpack_from("<HH", keys)
    assert (nhoff, thoff) == (14, 14)


@pytest.mark.kernel
def test_bpftool_loads_two_programs_from_one_section(
    bpftool: str, pin: Path, tmp_path: Path
) -> None:
    obj = tmp_path / "two.o"
    obj.write_bytes(
        write_object(
            [
                ProgramSection("accept", "flow_dissector", RETURN_0),
                ProgramSection("drop", "flow_dissector", RETURN_2),
            ]
        )
    )
    pin.mkdir()
    _load(bpftool, obj, pin, command="loadall")
    assert sorted(p.name for p in pin.iterdir()) == ["accept", "drop"]
    assert _test_run(bpftool, pin / "accept", tmp_path)[0] == 0
    assert _test_run(bpftool, pin / "drop", tmp_path)[0] == 2


@pytest.mark.kernel
def test_bpftool_loads_object_with_btf(bpftool: str, pin: Path, tmp_path: Path) -> None:
    obj = tmp_path / "btf.o"
    obj.write_bytes(
        write_object(
            [ProgramSection("ipv4_tcp", "flow_dissector", RETURN_0)],
            extra_sections=[RawSection(".BTF", SHT.PROGBITS, MINIMAL_BTF)],
        )
    )
    # A malformed .BTF would show up as "libbpf: Error loading .BTF" on stderr.
    _load(bpftool, obj, pin)
    assert _test_run(bpftool, pin, tmp_path)[0] == 0
