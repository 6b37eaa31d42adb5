"""Loading object files and running frames: what pyfd refuses up front, and what it accepts.

clang-19 objects are built here from small C programs. In CI (CI=true) a
missing clang fails these tests instead of skipping them: .ci/run installs it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_cli import run
from kernel import (  # requires_kernel, a fixture, comes from conftest.py
    in_ci,
    needs_kernel,
)
from pyfd.objfile.elf import ProgramSection, write_object
from pyfd.runtime import query
from pyfd.objfile.reader import ObjectFileError, check_loadable, read_object
from pyfd.runtime.program import check_flags

import pyfd
from pyfd.cli import EXIT_ERROR, EXIT_OK, find_dissectors

if TYPE_CHECKING:
    from scapy.packet import Packet as ScapyPacket

ROOT = Path(__file__).resolve().parent.parent
IPV4_TCP = find_dissectors(ROOT / "samples" / "ipv4_tcp.py")["ipv4_tcp"]
RETURN_0 = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit
MACS: dict[str, Any] = {"dst": "02:00:00:00:00:02", "src": "02:00:00:00:00:01"}


def scapy_tcp() -> ScapyPacket:
    """An Ethernet/IPv4/TCP scapy packet 10.0.0.1:1000 -> 10.0.0.2:80."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    return Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=80)


# -- frames and flags: one check for the kernel run and the Python run ------------------------

WHAT_BYTES_TAKES = [
    pytest.param(lambda f: f, id="bytes"),
    pytest.param(bytearray, id="bytearray"),
    pytest.param(memoryview, id="memoryview"),
    pytest.param(list, id="list-of-ints"),
]
NOT_FRAMES = [5, True, "0123456789abcdef", None, 3.5, object()]


@pytest.mark.parametrize("convert", WHAT_BYTES_TAKES)
def test_run_python_takes_what_bytes_takes(convert) -> None:  # type: ignore[no-untyped-def]
    frame = bytes(scapy_tcp())
    assert IPV4_TCP.run_python(convert(frame)) == IPV4_TCP.run_python(frame)


def test_run_python_takes_a_scapy_packet() -> None:
    packet = scapy_tcp()
    result = IPV4_TCP.run_python(packet)
    assert result == IPV4_TCP.run_python(bytes(packet))
    assert (result.retval, result.keys.sport, result.keys.dport) == (0, 1000, 80)


@needs_kernel
def test_loaded_run_takes_what_bytes_takes() -> None:
    packet = scapy_tcp()
    frame = bytes(packet)
    with IPV4_TCP.compile().load() as loaded:
        want = loaded.run(frame)
        assert want.retval == 0 and want.keys.dport == 80
        for other in (bytearray(frame), memoryview(frame), list(frame), packet):
            got = loaded.run(other)
            assert (got.retval, got.keys) == (want.retval, want.keys), type(other)
        for bad in NOT_FRAMES:
            with pytest.raises(TypeError, match=rf"^a frame is bytes \(or a bytearray, memoryview or scapy packet\), got {type(bad).__name__}"):
                loaded.run(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", NOT_FRAMES, ids=lambda v: type(v).__name__)
def test_run_python_refuses_what_is_not_a_frame(bad: object) -> None:
    # bytes(5) would be five zero bytes: an int is refused, not converted.
    with pytest.raises(TypeError, match=rf"^a frame is bytes \(or a bytearray, memoryview or scapy packet\), got {type(bad).__name__}"):
        IPV4_TCP.run_python(bad)  # type: ignore[arg-type]


def test_frame_of_out_of_range_values() -> None:
    with pytest.raises(ValueError, match=r"^a frame made from a list must hold byte values"):
        IPV4_TCP.run_python([300] * 20)


@pytest.mark.parametrize("flags", [-1, 2**32, 99999999999])
def test_run_python_refuses_flags_the_kernel_run_refuses(flags: int) -> None:
    """run_python used to wrap -1 to 0xffffffff; it now refuses what loaded.run refuses, with one message."""
    with pytest.raises(ValueError) as info:
        IPV4_TCP.run_python(bytes(scapy_tcp()), flags=flags)
    with pytest.raises(ValueError) as direct:
        check_flags(flags)
    assert str(info.value) == str(direct.value) == f"flow dissector flags must fit in 32 bits (0 to 0xffffffff), got {flags}"


@needs_kernel
@pytest.mark.parametrize("flags", [-1, 2**32])
def test_loaded_run_refuses_the_same_flags(flags: int) -> None:
    frame = bytes(scapy_tcp())
    with IPV4_TCP.compile().load() as loaded:
        with pytest.raises(ValueError) as kernel:
            loaded.run(frame, flags=flags)
        assert loaded.run(frame, flags=0xFFFFFFFF).keys.flags == 0xFFFFFFFF == IPV4_TCP.run_python(frame, flags=0xFFFFFFFF).keys.flags
    with pytest.raises(ValueError) as python:
        IPV4_TCP.run_python(frame, flags=flags)
    assert str(kernel.value) == str(python.value)


@pytest.mark.parametrize("flags", ["1", 1.0, True, None])
def test_flags_that_are_not_ints(flags: object) -> None:
    with pytest.raises(TypeError, match=r"^flow dissector flags are an int"):
        IPV4_TCP.run_python(bytes(scapy_tcp()), flags=flags)  # type: ignore[arg-type]


# -- objects with names and licenses the kernel cannot take -------------------------------------


def patched_object(tmp_path: Path, name: str, replacements: dict[bytes, bytes], **kwargs: object) -> Path:
    """An object from write_object with some bytes replaced (write_object refuses such names itself)."""
    data = write_object(**kwargs)  # type: ignore[arg-type]
    for old, new in replacements.items():
        assert old in data
        data = data.replace(old, new)
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def control_name(tmp_path: Path) -> Path:
    """A program named 'bad\\x01name' in section 'flow_dissector\\x1b'."""
    return patched_object(
        tmp_path,
        "ctl.o",
        {b"badxname\0": b"bad\x01name\0", b"flow_dissectorx\0": b"flow_dissector\x1b\0"},
        programs=[ProgramSection("badxname", "flow_dissectorx", RETURN_0)],
    )


@pytest.fixture
def latin1_license(tmp_path: Path) -> Path:
    return patched_object(tmp_path, "lic.o", {b"GPLx\0": b"GPL\xe9\0"}, programs=[ProgramSection("p", "flow_dissector", RETURN_0)], license="GPLx")


def test_load_refuses_a_control_byte_in_a_program_name(control_name: Path) -> None:
    with pytest.raises(ObjectFileError) as info:
        pyfd.load(control_name)
    message = str(info.value)
    assert message.startswith(f"{control_name}: program 'bad\\x01name' cannot be loaded under its own name: ")
    assert "ASCII letters, digits, '_' and '.'" in message and "\x01" not in message


def test_load_refuses_a_license_that_is_not_ascii(latin1_license: Path) -> None:
    with pytest.raises(ObjectFileError) as info:
        pyfd.load(latin1_license)
    assert str(info.value) == (
        f"{latin1_license}: the license section holds b'GPL\\xe9', not printable ASCII text; "
        'the kernel takes the license as a C string such as "GPL"'
    )


def test_disasm_escapes_control_bytes(control_name: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "disasm", control_name)
    assert status == EXIT_OK, err
    assert out.splitlines()[0] == "; bad\\x01name: section flow_dissector\\x1b, 2 instructions, no line info"
    assert all(ch == "\n" or ch.isprintable() for ch in out)


@needs_kernel
@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("control_name", "program 'bad\\x01name' cannot be loaded under its own name: "),
        ("latin1_license", "the license section holds b'GPL\\xe9', not printable ASCII text"),
    ],
)
def test_attach_names_the_file_not_an_internal_error(
    fixture: str, message: str, netns: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    path: Path = request.getfixturevalue(fixture)
    status, out, err = run(capsys, "attach", path, "--netns", netns)
    assert status == EXIT_ERROR
    assert err.startswith(f"pyfd: error: {path}: {message}"), err
    assert "internal error" not in err and out == ""


# -- several programs: name the option ------------------------------------------------------------


@pytest.fixture
def two_programs(tmp_path: Path) -> Path:
    path = tmp_path / "two.o"
    path.write_bytes(write_object([ProgramSection("first", "flow_dissector", RETURN_0), ProgramSection("second", "flow_dissector", RETURN_0)]))
    return path


def test_run_two_programs_names_function(two_programs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "run", two_programs)
    assert status == EXIT_ERROR
    assert err == f"pyfd: error: {two_programs}: 2 programs (first, second); pick one with --function NAME\n"


def test_run_two_programs_in_the_interpreter_names_function(two_programs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "run", two_programs, "--engine", "vm")
    assert status == EXIT_ERROR
    assert err == f"pyfd: error: {two_programs}: 2 programs (first, second); pick one with --function NAME\n"
    status, out, err = run(capsys, "run", two_programs, "--engine", "vm", "--function", "second")
    assert status == EXIT_OK, err
    assert out.startswith(f"second from {two_programs} (object file: vm only")


@needs_kernel
def test_attach_two_programs_names_function(two_programs: Path, netns: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "attach", two_programs, "--netns", netns)
    assert status == EXIT_ERROR
    assert err == f"pyfd: error: {two_programs}: 2 programs (first, second); pick one with --function NAME\n"


# -- Python source under any name --------------------------------------------------------------------

ONE_DISSECTOR = """\
from pyfd import BPF_OK, BpfFlowKeys, Packet, dissector


@dissector
def accept(pkt: Packet, keys: BpfFlowKeys) -> int:
    return BPF_OK
"""


@pytest.mark.parametrize("name", ["dissector.txt", "dissector", "dissector.py.bak"])
def test_python_source_under_any_name(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_text(ONE_DISSECTOR)
    status, out, err = run(capsys, "compile", path, "--emit", "asm")
    assert status == EXIT_OK, err
    assert out.startswith(f"; {name}:6: return BPF_OK\n")
    assert not (tmp_path / "__pycache__").exists()  # x.txt would share x.py's cache file name


def test_compile_an_object_file_says_what_it_is(two_programs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "compile", two_programs)
    assert status == EXIT_ERROR
    assert err.startswith(f"pyfd: error: {two_programs}: is a BPF object file (ELF), not Python source; ")


def test_compile_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "compile", tmp_path)
    assert status == EXIT_ERROR and err == f"pyfd: error: {tmp_path}: is a directory, not a file\n"


# -- clang objects pyfd cannot link: refused before the kernel sees them -----------------------------------
# (objects with maps and global variables load: tests/test_maps.py)

C_PRELUDE = """\
#define SEC(name) __attribute__((section(name), used))
struct __sk_buff;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
char _license[] SEC("license") = "GPL";
"""

C_PROGRAMS = {
    "call-into-text": (
        """
static __attribute__((noinline)) int low_bit(long value) { return value & 1; }
SEC("flow_dissector") int call_out(struct __sk_buff *skb)
{
    return low_bit((long)skb) ? 0 : 2;
}
""",
        "uses functions from other sections, which libbpf links in (.text)",
    ),
    "extern-variable": (
        """
extern unsigned int elsewhere;
SEC("flow_dissector") int reads_extern(struct __sk_buff *skb)
{
    return elsewhere ? 0 : 2;
}
""",
        "uses external or kernel-config symbols, which libbpf resolves (elsewhere)",
    ),
}
# pyfd lists low_bit, the .text subprogram, as a program too: name the entry point.
ENTRY = {"call-into-text": "call_out"}

BTF_MAP = """
struct {
    int (*type)[1];            /* BPF_MAP_TYPE_HASH */
    int (*max_entries)[16];
    unsigned int *key;
    unsigned int *value;
} seen SEC(".maps");
SEC("flow_dissector") int count_frames(struct __sk_buff *skb)
{
    unsigned int key = 0;
    unsigned int *value = bpf_map_lookup_elem(&seen, &key);
    if (value)
        *value += 1;
    return value ? 0 : 2;
}
"""


def clang() -> str:
    """The clang that builds BPF objects; a missing one fails the test in CI and skips it elsewhere."""
    found = shutil.which("clang-19") or shutil.which("clang")
    if found is None:
        message = "clang-19 is not installed (.ci/run installs it)"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def build(tmp_path: Path, name: str, body: str) -> Path:
    source = tmp_path / f"{name}.c"
    source.write_text(C_PRELUDE + body)
    obj = tmp_path / f"{name}.o"
    command = [clang(), "-O2", "-g", "-target", "bpf", "-c", str(source), "-o", str(obj)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    return obj


@pytest.mark.parametrize("case", C_PROGRAMS)
def test_clang_object_pyfd_cannot_link_is_refused_up_front(case: str, tmp_path: Path) -> None:
    """Refused whatever the privileges: the kernel would get an unpatched call or `r1 = 0 ll` and refuse the user's correct C."""
    body, uses = C_PROGRAMS[case]
    obj = build(tmp_path, case, body)
    with pytest.raises(ObjectFileError) as info:
        pyfd.load(obj, ENTRY.get(case))
    message = str(info.value)
    assert message.startswith(f"{obj}: program "), message
    assert uses in message, message
    assert "pyfd creates maps and global variables but links no functions and resolves no externs" in message
    assert "load this object with libbpf (e.g. `bpftool prog loadall OBJECT DIR type flow_dissector`)" in message


def test_clang_object_pyfd_cannot_link_in_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = build(tmp_path, "calls", C_PROGRAMS["call-into-text"][0])
    status, _, err = run(capsys, "run", obj, "--function", "call_out")
    assert status == EXIT_ERROR
    assert err.startswith(f"pyfd: error: {obj}: program 'call_out' uses functions from other sections") and err.count("\n") == 1
    assert "the kernel would get 1 unpatched instruction (the first at 0)" in err


@needs_kernel
def test_clang_map_object_in_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An object with a map runs (it used to be refused: pyfd created no maps); a listing still shows the relocation."""
    obj = build(tmp_path, "maps", BTF_MAP)
    status, out, err = run(capsys, "run", obj)
    assert status == EXIT_OK, err
    assert "count_frames from" in out and "BPF_DROP" in out  # key 0 is absent from a fresh hash map
    status, out, err = run(capsys, "disasm", obj)  # a listing needs no maps
    assert status == EXIT_OK, err
    assert "r1 = 0 ll  # relocation: seen" in out


def test_check_loadable_accepts_a_program_without_relocations(tmp_path: Path) -> None:
    obj = build(tmp_path, "plain", 'SEC("flow_dissector") int accept(struct __sk_buff *skb) { return 0; }\n')
    parsed = read_object(obj)
    check_loadable(parsed, parsed.program())  # no exception


@needs_kernel
def test_clang_object_without_maps_loads_and_runs(tmp_path: Path) -> None:
    obj = build(tmp_path, "plain", 'SEC("flow_dissector") int accept(struct __sk_buff *skb) { return 2; }\n')
    with pyfd.load(obj) as loaded:
        assert loaded.run(scapy_tcp()).retval == 2


@needs_kernel
def test_clang_object_pyfd_cannot_link_attach_is_refused(tmp_path: Path, netns: str, capsys: pytest.CaptureFixture[str]) -> None:
    obj = build(tmp_path, "calls", C_PROGRAMS["call-into-text"][0])
    status, out, err = run(capsys, "attach", obj, "--function", "call_out", "--netns", netns)
    assert status == EXIT_ERROR
    assert err.startswith(f"pyfd: error: {obj}: program 'call_out' uses functions from other sections"), err
    assert out == "" and query(netns) == []  # nothing was attached
