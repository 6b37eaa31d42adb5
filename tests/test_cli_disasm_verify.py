"""`pyfd disasm` and `pyfd compile --verify [-v]`: listings, mapped verifier errors, exit status.

Same conventions as test_cli.py: `pyfd.cli.main` in-process, output read
with capsys; tests that load into the kernel use the kernel guard.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest
from kernel import needs_kernel, requires_kernel  # noqa: F401  (pytest fixture)
from pyfd.objfile.elf import ProgramSection, write_object
from pyfd.isa import assemble, decode
from pyfd.runtime import VerifierError
from pyfd.objfile.reader import read_object
from pyfd.runtime.errors import SourceLocation

from test_cli import run

from pyfd.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from pyfd.program import CompiledProgram

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
RETURN_0 = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit
RETURN_2 = bytes.fromhex("b700000002000000" "9500000000000000")  # r0 = 2; exit

# A dissector pyfd compiles but the verifier refuses: each iteration's branch
# leaves a different constant offset, so the paths double 24 times (the
# README's example).
PATH_EXPLOSION = """\
from pyfd import BPF_OK, BpfFlowKeys, Header, Packet, dissector, u8, u32


class Option(Header):
    kind: u8


@dissector
def options(pkt: Packet, keys: BpfFlowKeys) -> int:
    off: u32 = 54
    for _ in range(24):
        opt = pkt.header(Option, off)
        if opt.kind == 1:
            off = off + 1
        else:
            off = off + 2
    keys.thoff = off
    return BPF_OK
"""




# -- help -------------------------------------------------------------------------------


def test_help_lists_disasm(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == EXIT_OK and "disasm" in out


def test_disasm_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "disasm", "--help")
    assert status == EXIT_OK and out.startswith("usage: pyfd disasm")
    flat = " ".join(out.split())  # argparse wraps the description
    for words in ("OBJECT.o", "--function", ".BTF.ext line info", "`pyfd compile --emit asm`", "clang's or hand-made"):
        assert words in flat


def test_compile_help_mentions_verify_and_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "compile", "--help")
    assert status == EXIT_OK
    assert "--verify" in out and "-v, --verbose" in out and "full log" in out


def test_verbose_needs_verify(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "compile", sample, "-v")
    assert status == EXIT_USAGE and out == ""
    assert err == "pyfd: error: -v/--verbose prints the verifier log: use it with --verify\n"
    assert not sample.with_suffix(".o").exists()  # refused before compiling


# -- disasm -------------------------------------------------------------------------------


def test_disasm_shows_the_python_lines_as_emit_asm_does(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "compile", sample)[0] == EXIT_OK
    status, asm, _ = run(capsys, "compile", sample, "--emit", "asm")
    assert status == EXIT_OK
    status, out, err = run(capsys, "disasm", sample.with_suffix(".o"))
    assert status == EXIT_OK and err == ""
    header, _, listing = out.partition("\n")
    count = read_object(sample.with_suffix(".o")).program().insn_count
    assert header == f"; ipv4_tcp: section flow_dissector, {count} instructions, source lines from .BTF.ext"
    assert listing == asm  # line info read back from the object gives the same listing
    assert "; ipv4_tcp.py:15: if keys.n_proto != ETH_P_IP:" in listing


def test_disasm_reads_back_as_assembly(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "compile", sample)
    _, out, _ = run(capsys, "disasm", sample.with_suffix(".o"))
    assert assemble(out) == decode(read_object(sample.with_suffix(".o")).program().code)


def test_disasm_object_without_btf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = tmp_path / "hand.o"
    obj.write_bytes(write_object([ProgramSection("accept", "flow_dissector", RETURN_0), ProgramSection("drop", "flow_dissector", RETURN_2)]))
    status, out, err = run(capsys, "disasm", obj)
    assert status == EXIT_OK and err == ""
    assert out == (
        "; accept: section flow_dissector, 2 instructions, no line info\n   0: r0 = 0\n   1: exit\n\n"
        "; drop: section flow_dissector, 2 instructions, no line info\n   0: r0 = 2\n   1: exit\n"
    )
    status, out, _ = run(capsys, "disasm", obj, "--function", "drop")
    assert status == EXIT_OK and out.startswith("; drop:") and "accept" not in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "{path}: no such file"),
        (b"", "{path}: not an ELF file (starts with b'', expected b'\\x7fELF')"),
        (b"\x7fELF\x02\x01\x01", "{path}: truncated ELF file: 7 bytes, shorter than the 64-byte ELF64 header"),
    ],
    ids=["missing", "empty", "truncated"],
)
def test_disasm_bad_files(content: bytes | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.o"
    if content is not None:
        path.write_bytes(content)
    status, out, err = run(capsys, "disasm", path)
    assert status == EXIT_ERROR and out == ""
    assert err == f"pyfd: error: {message.format(path=path)}\n"


def test_disasm_unknown_function(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = tmp_path / "hand.o"
    obj.write_bytes(write_object([ProgramSection("accept", "flow_dissector", RETURN_0)]))
    status, _, err = run(capsys, "disasm", obj, "-f", "nope")
    assert status == EXIT_ERROR
    assert err == f"pyfd: error: {obj}: no program 'nope'; available: accept\n"


def test_disasm_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "disasm", tmp_path)
    assert status == EXIT_ERROR and err == f"pyfd: error: {tmp_path}: is a directory, not a file\n"


# -- compile --verify ------------------------------------------------------------------------


@needs_kernel
def test_verify_verbose_prints_the_log_with_python_lines(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "compile", sample, "--verify", "-v")
    assert status == EXIT_OK, err
    assert "; if keys.n_proto != ETH_P_IP: @ ipv4_tcp.py:15" in err  # the kernel's own log, with line info
    assert re.search(r"^processed \d+ insns", err, re.MULTILINE)
    assert re.search(r"^ipv4_tcp: accepted by the kernel verifier \(\d+ instructions processed\)$", err, re.MULTILINE)


@needs_kernel
def test_verify_refusal_points_at_the_python_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "options.py"
    source.write_text(PATH_EXPLOSION)
    status, out, err = run(capsys, "compile", source, "--verify")
    assert status == EXIT_ERROR and out == ""
    first, line, caret, *rest = err.splitlines()[1:]  # after "options.o: options, N instructions"
    # Where the walk hits the limit depends on the code generated; it is in the loop.
    found = re.fullmatch(
        rf"{re.escape(str(source))}:(\d+):(\d+): the kernel verifier rejected program 'options': "
        r"BPF program is too large\. Processed 1000001 insn",
        first,
    )
    assert found, first
    number, column = int(found.group(1)), int(found.group(2))
    assert 11 <= number <= 16
    text = PATH_EXPLOSION.splitlines()[number - 1]
    assert line == f"    {text}"
    assert caret.startswith(" " * (4 + column - 1) + "^") and set(caret.strip()) == {"^"}
    assert rest[0].startswith("  at instruction ")
    assert rest[1].startswith("  why: the verifier walks every path")
    assert rest[-1] == "  (BPF_PROG_LOAD failed with E2BIG)"
    # The log note names the command-line way to see the log, not the Python attribute.
    assert re.fullmatch(r"  \(verifier log: \d+ lines, `pyfd compile --verify -v` prints it\)", rest[-2]), rest[-2]
    assert "Traceback" not in err and "pyfd: error" not in err


def test_verify_verbose_refusal_prints_the_log_first(sample: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    log = (
        "0: R1=ctx() R10=fp0\n; keys.ip_proto = ip.protocol @ ipv4_tcp.py:21\n"
        "0: (61) r0 = *(u32 *)(r1 +8)\ninvalid bpf_context access off=8 size=4\nprocessed 1 insns\n"
    )
    where = SourceLocation(str(sample), 21, 4, 31)

    def refuse(self: CompiledProgram, *, log_level: int = 0) -> None:
        raise VerifierError(errno.EACCES, log=log, name=self.name, source_map=lambda index: where)

    monkeypatch.setattr(CompiledProgram, "load", refuse)
    monkeypatch.setattr("pyfd.runtime.check_bpf_available", lambda: None)
    status, _, err = run(capsys, "compile", sample, "--verify", "-v")
    assert status == EXIT_ERROR
    body = err.split("\n", 1)[1]  # after the "wrote" line
    assert body.startswith(log + "\n" + f"{sample}:21:5: the kernel verifier rejected program 'ipv4_tcp': invalid bpf_context access off=8 size=4\n")
    assert "\n        keys.ip_proto = ip.protocol\n        ^^^^^^^^^^^^^^^^^^^^^^^^^^^\n" in body
    assert "\n  why: a flow dissector may read only three fields of its context" in body
    assert "(verifier log: 5 lines, printed above)" in body


# -- compile --verify --set --------------------------------------------------------------------


@needs_kernel
def test_verify_loads_with_the_constants_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The verifier sees a frozen .rodata: a --set value changes the walk (HAND_OVER prunes other branches)."""
    processed = {}
    for value in ("0", "1"):
        status, _, err = run(capsys, "compile", SAMPLES / "counting.py", "-o", tmp_path / "c.o", "--verify", "--set", f"HAND_OVER={value}")
        assert status == EXIT_OK, err
        found = re.search(r"^counting: accepted by the kernel verifier \((\d+) instructions processed\)$", err, re.MULTILINE)
        assert found, err
        processed[value] = int(found.group(1))
    assert processed["0"] != processed["1"]


@needs_kernel
def test_verify_set_unknown_constant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "compile", SAMPLES / "counting.py", "-o", tmp_path / "c.o", "--verify", "--set", "NOPE=1")
    assert status == EXIT_USAGE
    assert err.endswith("pyfd: error: --set: dissector 'counting' has no load-time constant 'NOPE'; its constants: HAND_OVER (u8)\n"), err


def test_set_needs_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "compile", SAMPLES / "counting.py", "-o", tmp_path / "c.o", "--set", "HAND_OVER=1")
    assert status == EXIT_USAGE and out == ""
    assert err.startswith("pyfd: error: --set sets a load-time constant for the --verify load"), err
    assert not (tmp_path / "c.o").exists()
