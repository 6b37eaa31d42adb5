"""The `pyfd` command: options, outputs, exit status, and no traceback for any input.

Most tests call `pyfd.cli.main` in-process and read its output with capsys;
one runs the installed console script. `compile --verify` and `run` load into
the kernel and use the kernel guard.
"""

from __future__ import annotations

import os
import re
import subprocess
import sysconfig
from itertools import count
from pathlib import Path
from typing import NoReturn

import pytest
from conftest import console_script
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel import needs_kernel, requires_kernel  # noqa: F401  (pytest fixture)
from pyfd.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from pyfd.compiler import frontend
from pyfd.compiler.driver import BACKENDS
from pyfd.compiler.ir.parser import parse_function
from pyfd.objfile.reader import read_object

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

TWO_DISSECTORS = """\
from pyfd import BPF_DROP, BPF_OK, BpfFlowKeys, Packet, dissector


@dissector
def first(pkt: Packet, keys: BpfFlowKeys) -> int:
    return BPF_OK


@dissector
def second(pkt: Packet, keys: BpfFlowKeys) -> int:
    return BPF_DROP
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """`pyfd ARGV...` in-process: exit status, stdout, stderr."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse: --help, --version, usage errors
        status = EXIT_OK if exit_.code is None else exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
    out, err = capsys.readouterr()
    return status, out, err


# -- help and usage -------------------------------------------------------------


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == EXIT_OK
    for word in ("usage: pyfd", "compile", "run", "--version"):
        assert word in out


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("compile", ["FILE.py", "--function", "--backend", "-O", "--output", "--emit", "--dump-after", "--verify"]),
        ("run", ["FILE.py", "--function", "--backend", "-O", "--pcap", "--flags"]),
    ],
)
def test_subcommand_help(command: str, options: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, command, "--help")
    assert status == EXIT_OK
    assert out.startswith(f"usage: pyfd {command}")
    for option in options:
        assert option in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--version")
    assert status == EXIT_OK
    assert re.fullmatch(r"pyfd \d+\.\d+\.\d+\n", out)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["compile"],
        ["compile", "{sample}", "--emit", "elf"],
        ["compile", "{sample}", "-O", "3"],
        ["compile", "{sample}", "--backend", "gcc"],
        ["compile", "{sample}", "--no-such-option"],
        ["run", "{sample}", "--flags", "many"],
    ],
    ids=lambda argv: " ".join(argv) or "no-arguments",
)
def test_usage_errors_exit_2(argv: list[str], sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, *(a.format(sample=sample) for a in argv))
    assert status == EXIT_USAGE
    assert "usage: pyfd" in err and "error:" in err
    assert "Traceback" not in err and out == ""


# -- compile ----------------------------------------------------------------------


def test_compile_writes_object_next_to_source(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "compile", sample)
    assert status == EXIT_OK, err
    obj = sample.with_suffix(".o")
    assert err.startswith(f"{obj}: ipv4_tcp, ") and out == ""
    program = read_object(str(obj)).program()
    assert (program.name, program.section) == ("ipv4_tcp", "flow_dissector")
    assert program.insn_count > 0


def test_compile_writes_object_to_output(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "build" / "dissector.bpf.o"
    out_path.parent.mkdir()
    status, _, err = run(capsys, "compile", sample, "-o", out_path)
    assert status == EXIT_OK, err
    assert read_object(str(out_path)).program("ipv4_tcp").section == "flow_dissector"
    assert not sample.with_suffix(".o").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_emit_asm(sample: Path, capsys: pytest.CaptureFixture[str], backend: str) -> None:
    status, out, err = run(capsys, "compile", sample, "--emit", "asm", "--backend", backend)
    assert status == EXIT_OK, err
    source = sample.read_text().splitlines()
    comments = [line for line in out.splitlines() if line.startswith(";")]
    assert comments, out
    for comment in comments:
        match = re.fullmatch(r"; ipv4_tcp\.py:(\d+): (.*)", comment)
        assert match, comment
        assert match[2] == source[int(match[1]) - 1].strip()
    assert "; ipv4_tcp.py:15: if keys.n_proto != ETH_P_IP:" in comments
    # The context's `data` pointer (struct bpf_flow_dissector at r1) and numbered instructions.
    assert re.search(r"^\s+\d+: r\d+ = \*\(u64 \*\)\(r1 \+ 144\)$", out, re.MULTILINE), out
    assert re.search(r"^\s+\d+: exit$", out, re.MULTILINE)
    assert not sample.with_suffix(".o").exists()


def test_emit_llvm(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "compile", sample, "--backend", "llvm", "--emit", "llvm")
    assert status == EXIT_OK, err
    assert 'target triple = "bpfel"' in out
    assert re.search(r'^define .*i32 @"?ipv4_tcp"?\(ptr %ctx\).* section "flow_dissector"', out, re.MULTILINE), out
    assert re.search(r"!DILocation\(line: 15, column: \d+", out), out  # Python lines ride along as debug locations
    assert not sample.with_suffix(".o").exists()


def test_emit_llvm_needs_the_llvm_backend(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "compile", sample, "--emit", "llvm")
    assert status == EXIT_USAGE and out == ""
    assert_one_paragraph(err, r"pyfd: error: --emit llvm .*--backend llvm$")


def test_emit_ir_parses_back(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "compile", sample, "--emit", "ir")
    assert status == EXIT_OK, err
    fn = parse_function(out)
    assert fn.name == "ipv4_tcp"
    assert fn.blocks


def test_emit_to_output_file(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = tmp_path / "ipv4_tcp.s"
    status, out, err = run(capsys, "compile", sample, "--emit", "asm", "-o", listing)
    assert status == EXIT_OK, err
    assert out == ""
    assert "; ipv4_tcp.py:15: if keys.n_proto != ETH_P_IP:" in listing.read_text()


def test_dump_after(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "compile", sample, "--emit", "ir", "--dump-after", "all")
    assert status == EXIT_OK, err
    assert "func ipv4_tcp" in err and "Traceback" not in err
    parse_function(out)


def test_function_picks_one_of_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.py"
    path.write_text(TWO_DISSECTORS)
    for name in ("first", "second"):
        status, out, err = run(capsys, "compile", path, "--function", name, "--emit", "ir")
        assert status == EXIT_OK, err
        assert parse_function(out).name == name


def test_two_dissectors_without_function(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.py"
    path.write_text(TWO_DISSECTORS)
    status, out, err = run(capsys, "compile", path)
    assert status == EXIT_ERROR
    assert err.startswith("pyfd: error: ") and "Traceback" not in err and out == ""
    assert "first" in err and "second" in err and "--function" in err
    assert not path.with_suffix(".o").exists()


def test_function_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.py"
    path.write_text(TWO_DISSECTORS)
    status, _, err = run(capsys, "compile", path, "--function", "third")
    assert status == EXIT_ERROR
    assert err.startswith("pyfd: error: ") and "'third'" in err and "first, second" in err


# -- inputs that are wrong: exit 1, one paragraph, no traceback ----------------------


def assert_one_paragraph(err: str, first_line: str) -> None:
    """stderr is one report: starts with `first_line` (a regex), no blank line, no traceback."""
    assert re.match(first_line, err, re.MULTILINE), err
    assert "Traceback" not in err and 'File "' not in err, err
    assert "\n\n" not in err.strip(), err


COMPILE_ERROR = """\
from pyfd import BPF_OK, BpfFlowKeys, Packet, dissector


@dissector
def bad(pkt: Packet, keys: BpfFlowKeys) -> int:
    keys.ip_proto = 300
    return BPF_OK
"""


@pytest.mark.parametrize(
    ("source", "first_line"),
    [
        pytest.param("X = 1\n", r"pyfd: error: {path}: no @dissector function in this file$", id="no-dissector"),
        pytest.param("from pyfd import dissector\nx = (1 +\n", r"{path}:2:5: syntax error: '\(' was never closed$", id="syntax-error"),
        pytest.param("if True:\nx = 1\n", r"{path}:2:1: syntax error: expected an indented block", id="indentation-error"),
        pytest.param(
            "value = {}\nkey = value['missing']\n", r"{path}:2:7: importing the file failed: KeyError: 'missing'$", id="raises-on-import"
        ),
        pytest.param(
            "from pyfd import dissector, bogus\n", r"{path}:1:1: importing the file failed: ImportError: cannot import name 'bogus'", id="bad-import"
        ),
        pytest.param(COMPILE_ERROR, r"{path}:6:21: 300 does not fit in keys.ip_proto: u8 holds 0..255$", id="compile-error"),
    ],
)
def test_wrong_input_exits_1(source: str, first_line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wrong.py"
    path.write_text(source)
    status, out, err = run(capsys, "compile", path)
    assert status == EXIT_ERROR
    assert out == ""
    assert_one_paragraph(err, first_line.format(path=re.escape(str(path))))
    assert not path.with_suffix(".o").exists()


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "missing.py"
    status, _, err = run(capsys, "compile", path)
    assert status == EXIT_ERROR
    assert_one_paragraph(err, rf"pyfd: error: {re.escape(str(path))}: no such file$")


def test_import_error_shows_the_raising_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "raises.py"
    path.write_text("from pyfd import dissector\n\nraise RuntimeError('not today')\n")
    status, _, err = run(capsys, "compile", path)
    assert status == EXIT_ERROR
    assert err.splitlines() == [
        f"{path}:3:1: importing the file failed: RuntimeError: not today",
        "    raise RuntimeError('not today')",
        "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    ]


def test_internal_error_is_reported_at_the_users_line(sample: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the frontend reaches the user as one located report, not a traceback."""

    def bug(*args: object) -> NoReturn:
        raise KeyError("simulated bug in pyfd")

    monkeypatch.setattr(frontend._Lowering, "_binop", bug)
    status, _, err = run(capsys, "compile", sample)
    assert status == EXIT_ERROR
    line = next(i for i, text in enumerate(sample.read_text().splitlines(), 1) if "ip.ihl * 4" in text)
    assert_one_paragraph(err, rf"{re.escape(str(sample))}:{line}:\d+: internal compiler error while compiling this expression: KeyError")


@pytest.mark.parametrize("emit", ["obj", "asm", "ir"])
def test_unwritable_output(emit: str, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "no-such-directory" / "out"
    status, _, err = run(capsys, "compile", sample, "--emit", emit, "-o", out_path)
    assert status == EXIT_ERROR
    assert_one_paragraph(err, rf"pyfd: error: {re.escape(str(out_path))}: cannot write: ")


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read"), (b"not a pcap", "not a pcap file")])
def test_run_with_bad_pcap(content: bytes | None, message: str, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The frames are read before the kernel is needed, so this runs anywhere."""
    pcap = tmp_path / "frames.pcap"
    if content is not None:
        pcap.write_bytes(content)
    status, _, err = run(capsys, "run", sample, "--pcap", pcap)
    assert status == EXIT_ERROR
    assert_one_paragraph(err, rf"pyfd: error: {re.escape(str(pcap))}: {message}")


# -- the installed command ----------------------------------------------------------


def test_the_console_script_tested_is_the_one_installed_with_this_pyfd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another pyfd first on PATH (a pyenv shim, another checkout) must not be the one the tests run.
    decoy = tmp_path / "pyfd"
    decoy.write_text("#!/bin/sh\nexit 99\n")
    decoy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ.get('PATH', '')}")
    found = console_script()
    assert found is not None and found != str(decoy)
    assert Path(found).parent == Path(sysconfig.get_path("scripts"))


def test_console_script(sample: Path, tmp_path: Path) -> None:
    pyfd = console_script()
    if pyfd is None:
        pytest.skip("the pyfd console script is not on PATH")
    help_ = subprocess.run([pyfd, "compile", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert help_.returncode == EXIT_OK and "--emit" in help_.stdout
    asm = subprocess.run([pyfd, "compile", str(sample), "--emit", "asm"], capture_output=True, text=True, timeout=60, check=False)
    assert asm.returncode == EXIT_OK, asm.stderr
    assert "; ipv4_tcp.py:15: if keys.n_proto != ETH_P_IP:" in asm.stdout
    missing = subprocess.run([pyfd, "compile", str(tmp_path / "missing.py")], capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == EXIT_ERROR
    assert_one_paragraph(missing.stderr, r"pyfd: error: .*missing\.py: no such file$")
    usage = subprocess.run([pyfd], capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == EXIT_USAGE and "usage: pyfd" in usage.stderr


# -- the kernel ----------------------------------------------------------------------


@needs_kernel
@pytest.mark.parametrize("backend", BACKENDS)
def test_compile_verify(sample: Path, capsys: pytest.CaptureFixture[str], backend: str) -> None:
    status, _, err = run(capsys, "compile", sample, "--verify", "--backend", backend)
    assert status == EXIT_OK, err
    assert "ipv4_tcp, " in err and f"instructions ({backend})" in err  # compile also wrote the object
    assert re.search(r"^ipv4_tcp: accepted by the kernel verifier \(\d+ instructions processed\)$", err, re.MULTILINE), err


@needs_kernel
@pytest.mark.parametrize("backend", BACKENDS)
def test_run_demo_frames(sample: Path, capsys: pytest.CaptureFixture[str], backend: str) -> None:
    status, out, err = run(capsys, "run", sample, "--backend", backend)
    assert status == EXIT_OK, err
    assert f"instructions ({backend});" in out, out
    assert re.search(r"^kernel and Python agree on (\d+) of \1 frames run$", out, re.MULTILINE), out
    assert "PYTHON DISAGREES" not in out


# -- no input, however wrong, gives a traceback ---------------------------------------

# Things a confused or careless author might write anywhere a token goes.
POOL = [
    "while", "for", "if", "else", "return", "def", "lambda: 0", "not", "and", "is", "in", "pass",
    "7", "-1", "0", "300", "65536", "1 << 70", "1 << 64", "2 ** 3", "1.5", '"s"', "b'x'", "None", "True", "[1]", "(1, 2)", "{}",
    "x", "ip", "pkt", "keys", "ip.ttl", "ip.bogus", "keys.bogus", "keys.nhoff", "keys.ipv6_src", "ports.sport",
    "IPv4", "Ports", "u8", "i64(x)", "u16(keys.nhoff)", "BPF_OK", "BPF_DROP", "print", "len(pkt)",
    "pkt.header(IPv4, 70000)", "pkt.header(u8, 0)", "pkt.header(IPv4, x)", "ipv4_tcp(pkt, keys)", "custom(pkt, keys)",
    "+", "-", "*", "/", "//", "%", "<<", ">>", "&", "|", "^", "~", "==", "!=", "<", ">=", "=", "+=", ":", ",", "(", ")", ".",
]
TOKEN = re.compile(r"[A-Za-z_]\w*|\d+|==|!=|<=|>=|<<|>>|//|\*\*|\+=|[-+*/%&|^~<>=().,:@\[\]]")
MUTATION = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
    st.tuples(st.just("duplicate"), st.integers(0, 10_000)),
    st.tuples(st.just("indent"), st.integers(0, 10_000), st.sampled_from([-4, -1, 1, 4])),
    st.tuples(st.just("replace"), st.integers(0, 10_000), st.sampled_from(POOL)),
)


def mutate(source: str, mutations: list[tuple]) -> str:  # type: ignore[type-arg]
    """Apply line deletions, duplications, re-indentations and token replacements in order."""
    for kind, where, *arg in mutations:
        lines = source.splitlines(keepends=True)
        if kind == "replace":
            tokens = list(TOKEN.finditer(source))
            if tokens:
                token = tokens[where % len(tokens)]
                source = source[: token.start()] + arg[0] + source[token.end() :]
            continue
        if not lines:
            continue
        i = where % len(lines)
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif arg[0] > 0:
            lines[i] = " " * arg[0] + lines[i]
        else:
            stripped = lines[i].lstrip(" ")
            lines[i] = " " * max(0, len(lines[i]) - len(stripped) + arg[0]) + stripped
        source = "".join(lines)
    return source


_example = count()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sample_name=st.sampled_from(["ipv4_tcp", "custom"]),
    mutations=st.lists(MUTATION, min_size=1, max_size=3),
)
def test_no_input_gives_a_traceback(sample_name: str, mutations: list[tuple], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[type-arg]
    # A fresh file name per example: the import machinery and linecache key on the path.
    n = next(_example)
    path = tmp_path / f"mutant{n}.py"
    path.write_text(mutate((SAMPLES / f"{sample_name}.py").read_text(), mutations))
    capsys.readouterr()
    status, _, err = run(capsys, "compile", path, "-o", tmp_path / f"mutant{n}.o")
    report = f"{path.read_text()}\n--- stderr ---\n{err}"
    assert status in (EXIT_OK, EXIT_ERROR), report
    assert "Traceback" not in err, report
    if status == EXIT_ERROR:
        assert err.startswith((f"{path}:", "pyfd: error:")), report


def test_an_internal_error_is_reported_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import pyfd.compiler.backends.native as native

    def broken(fn: object) -> object:
        raise RuntimeError("simulated backend bug")

    monkeypatch.setattr(native, "compile_native", broken)  # the registry's NativeBackend calls it through the module
    monkeypatch.delenv("PYFD_TRACEBACK", raising=False)
    src = tmp_path / "ok.py"
    src.write_text("from pyfd import *\n\n@dissector\ndef ok(pkt: Packet, keys: BpfFlowKeys) -> int:\n    return BPF_OK\n")
    assert main(["compile", str(src)]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: simulated backend bug" in err and "Traceback" not in err


def test_dump_after_an_unknown_pass_is_a_usage_error(capsys: pytest.CaptureFixture[str], sample: Path) -> None:
    status, _, err = run(capsys, "compile", sample, "--dump-after", "nosuch")
    assert status == EXIT_USAGE
    assert "no pass named 'nosuch'" in err and "thread-jumps" in err
