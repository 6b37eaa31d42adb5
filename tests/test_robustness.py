"""What fuzzing found: programs that broke the compiler, each compiled on both backends in this process.

Every case is a program that once ended in a traceback, an internal error,
an LLVM fatal error that killed the process, or a silent wrap. Now it either
compiles (and, with the kernel at hand, loads and agrees with the CPython
run on a few frames) or is refused with a located CompileError, on the
native and the llvm backend alike. LLVM runs in a child process: the tests
that make LLVM fail on purpose check that this process lives on.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from engines import COMPILED, load
from kernel import requires_kernel  # noqa: F401  (pytest fixture)
from test_compile_errors import dissector_file, only_dissector
from pyfd.compiler.backends import isolate
from pyfd.compiler.backends import llvm as llvm_backend
from pyfd.compiler.diagnostics import (
    BackendError,
    CompileError,
    CompileNameError,
    CompileTypeError,
    InternalCompilerError,
    UnsupportedError,
)
from pyfd.isa import (
    BPF_JA,
    BPF_JEQ,
    BPF_JNE,
    BPF_JSET,
    Instruction,
    Label,
    exit_insn,
    gotol,
    ja,
    jmp32_imm,
    jmp_imm,
    mov64_imm,
    relax_jumps,
    resolve,
)
from pyfd.isa.opcodes import Class, JmpOp
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from pyfd import Dissector
from pyfd.program import CompiledProgram

BACKENDS = ("native", "llvm")
SRC_MAC, DST_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"

PRELUDE = """\
from pyfd import BPF_DROP, BPF_OK, BpfFlowKeys, Header, Packet, dissector, i32, u8, u16, u32, u64
from pyfd.headers import IPv4, IPv6, Ports


class Word(Header):
    c: u16
    e: u64

"""
PRELUDE_LINES = PRELUDE.count("\n")


def write(tmp_path: Path, source: str, name: str = "found.py") -> Path:
    """This module's PRELUDE and `source` in a file (test_compile_errors' writer)."""
    return dissector_file(tmp_path, source, name, prelude=PRELUDE)


def udp_frame(sport: int, dport: int, payload: bytes = b"") -> bytes:
    """An IPv4/UDP frame with explicit MACs (scapy resolves no address)."""
    return bytes(Ether(src=SRC_MAC, dst=DST_MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=sport, dport=dport) / payload)


# -- programs that must compile ---------------------------------------------------------


def _ifs(n: int) -> str:
    """n `if`s in a row on a keys field: LLVM's code for 600 has branches over more than 32767 instructions."""
    tests = "".join(f"    if keys.sport == {i}:\n        keys.dport = {i}\n" for i in range(n))
    return f"@dissector\ndef f(pkt: Packet, keys: BpfFlowKeys) -> int:\n{tests}    return BPF_OK\n"


def _ifs_with_live_local(n: int) -> str:
    """A local live across n `if`s: Braun's recursive SSA read overflowed Python's stack."""
    tests = "".join(f"    if p.dport == {i}:\n        keys.nhoff = {i}\n" for i in range(n))
    return (
        "@dissector\ndef f(pkt: Packet, keys: BpfFlowKeys) -> int:\n    p = pkt.header(Ports, keys.nhoff + 20)\n"
        f"    x: u16 = p.sport\n{tests}    keys.sport = x\n    return BPF_OK\n"
    )


def _sum(n: int) -> str:
    """An n-term sum: the frontend recursed four frames per term."""
    terms = " + ".join(["p.sport"] * n)
    return (
        "@dissector\ndef f(pkt: Packet, keys: BpfFlowKeys) -> int:\n"
        f"    p = pkt.header(Ports, keys.nhoff + 20)\n    keys.dport = {terms}\n    return BPF_OK\n"
    )


def _elifs(n: int) -> str:
    tests = "".join(f"    elif p.sport == {i}:\n        keys.dport = {i}\n" for i in range(1, n))
    return (
        "@dissector\ndef f(pkt: Packet, keys: BpfFlowKeys) -> int:\n    p = pkt.header(Ports, keys.nhoff + 20)\n"
        f"    if p.sport == 0:\n        keys.dport = 0\n{tests}    return BPF_OK\n"
    )


def _staggered_locals(n: int, live: int) -> str:
    """n locals, each live across the next `live`: more spilled than fit at once without sharing slots."""
    lines = ["@dissector", "def f(pkt: Packet, keys: BpfFlowKeys) -> int:", "    ip = pkt.header(IPv4, keys.nhoff)", "    acc: u32 = 0"]
    for i in range(n):
        lines.append(f"    x{i}: u32 = ip.saddr * {i + 3}")
        if i >= live:
            lines.append(f"    acc = acc ^ x{i - live}")
    lines += [f"    acc = acc ^ x{i}" for i in range(n - live, n)]
    lines += ["    keys.ipv4_src = acc", "    return BPF_OK"]
    return "\n".join(lines) + "\n"


def _far_native_branch(n: int) -> str:
    """An `if` around n statements of five slots each: the native branch over them needs gotol."""
    body = "".join(f"        x = i32(x * {hex(0x100000001 + 2 * i)})\n" for i in range(n))
    return (
        "@dissector\ndef f(pkt: Packet, keys: BpfFlowKeys) -> int:\n    p = pkt.header(Ports, keys.nhoff + 20)\n"
        f"    x: i32 = i32(p.sport)\n    if p.dport == 7:\n{body}    keys.thoff = x\n    return BPF_OK\n"
    )


QUOTIENT_COMPARE = """
@dissector
def f(pkt: Packet, keys: BpfFlowKeys) -> int:
    w = pkt.header(Word, keys.nhoff + 20)
    v1: u64 = 1
    if (v1 << w.c) <= (0xFFFFFFFFFFFFFFFF // w.c):
        return BPF_OK
    return BPF_DROP
"""

CASTS_WRAP = """
def h(x: u8) -> u8:
    return x

@dissector
def f(pkt: Packet, keys: BpfFlowKeys) -> int:
    x: u8 = u8(300)
    keys.ip_proto = h(u8(300)) + x
    keys.sport = u16(70000)
    return BPF_OK
"""

EMPTY_RANGE = """
@dissector
def f(pkt: Packet, keys: BpfFlowKeys) -> int:
    for i in range(0):
        keys.thoff = i
    else:
        keys.nhoff = 3
    return BPF_OK
"""

INVERT_A_CONDITION = """
@dissector
def f(pkt: Packet, keys: BpfFlowKeys) -> int:
    p = pkt.header(Ports, keys.nhoff + 20)
    keys.ip_proto = ~(p.sport > 3)
    x = ~(not (p.dport == 7))
    keys.dport = ~(1 < 2) + x
    return BPF_OK
"""

NON_ASCII_INSIDE = """
# Prüfsumme: a comment, a helper and a local with non-ASCII names
def prüfe(keys: BpfFlowKeys) -> u16:
    return keys.nhoff + 1  # größer

@dissector
def f(pkt: Packet, keys: BpfFlowKeys) -> int:
    größe: u16 = prüfe(keys)
    keys.thoff = größe
    return BPF_OK
"""


def _live_ipv6_headers(n: int) -> str:
    """`n` IPv6 headers all read at the end: their stack copies cannot all fit."""
    views = "".join(f"    h{i} = pkt.header(IPv6, {40 * i})\n" for i in range(n))
    total = " + ".join(f"h{i}.payload_len" for i in range(n))
    return f"@dissector\ndef f(pkt: Packet, keys: BpfFlowKeys) -> int:\n{views}    keys.sport = {total}\n    return BPF_OK\n"


@dataclass(frozen=True)
class Accept:
    """A program that must compile on both backends; `far` names a backend whose code must use gotol."""

    name: str
    source: str
    frames: tuple[bytes, ...] = ()
    far: tuple[str, ...] = ()


FRAMES = (udp_frame(0, 0), udp_frame(5, 7), udp_frame(599, 300), udp_frame(600, 7), udp_frame(0xFFFF, 0xFFFF, b"\x00\x02" + bytes(8)))

ACCEPTS = [
    Accept("ifs-600-llvm-far-branch", _ifs(600), FRAMES, far=("llvm",)),
    Accept("ifs-400-live-local", _ifs_with_live_local(400), FRAMES),
    Accept("quotient-compare-no-i128", QUOTIENT_COMPARE, FRAMES),
    Accept("sum-250-terms", _sum(250), FRAMES),
    Accept("sum-2500-terms", _sum(2500), FRAMES),
    Accept("elif-1000", _elifs(1000), FRAMES),
    Accept("staggered-locals-share-stack", _staggered_locals(160, 30), FRAMES),
    Accept("native-far-branch", _far_native_branch(6600), FRAMES, far=("native",)),
    Accept("casts-wrap", CASTS_WRAP, FRAMES),
    Accept("empty-range-body", EMPTY_RANGE, FRAMES),
    Accept("non-ascii-inside", NON_ASCII_INSIDE, FRAMES),
    Accept("invert-a-condition", INVERT_A_CONDITION, FRAMES),
    # 12 x 40 bytes of header copies live at once: the first six keep the
    # page-fragment fallback, the rest are read from the linear part only.
    Accept("twelve-live-ipv6-headers", _live_ipv6_headers(12), (*FRAMES, bytes(range(256)) * 2)),
]


@pytest.fixture(scope="module")
def accepted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Accept], Dissector]:
    """Each accepted program's dissector, written and imported once."""
    made: dict[str, Dissector] = {}

    def get(case: Accept) -> Dissector:
        if case.name not in made:
            made[case.name] = only_dissector(write(tmp_path_factory.mktemp(case.name), case.source))
        return made[case.name]

    return get


@pytest.fixture(scope="module")
def compiled(accepted: Callable[[Accept], Dissector]) -> Callable[[Accept, str], CompiledProgram]:
    """Each accepted program compiled once per backend."""
    made: dict[tuple[str, str], CompiledProgram] = {}

    def get(case: Accept, backend: str) -> CompiledProgram:
        if (case.name, backend) not in made:
            made[case.name, backend] = accepted(case).compile(backend=backend)
        return made[case.name, backend]

    return get


ACCEPT_PARAMS = [pytest.param(c, b, id=f"{c.name}-{b}") for c in ACCEPTS for b in BACKENDS]


@pytest.mark.parametrize(("case", "backend"), ACCEPT_PARAMS)
def test_found_program_compiles(
    case: Accept, backend: str, compiled: Callable[[Accept, str], CompiledProgram], accepted: Callable[[Accept], Dissector]
) -> None:
    prog = compiled(case, backend)
    assert prog.insn_count > 0
    if backend in case.far:  # still the program that needs a long jump
        assert "gotol" in prog.asm()
    for frame in case.frames:
        assert accepted(case).run_python(frame).retval in (0, 2, 129)


@pytest.mark.parametrize("engine", COMPILED)
@pytest.mark.parametrize(("case", "backend"), ACCEPT_PARAMS)
def test_found_program_agrees_compiled(
    case: Accept, backend: str, engine: str, compiled: Callable[[Accept, str], CompiledProgram], accepted: Callable[[Accept], Dissector]
) -> None:
    """In the kernel and in pyfd's interpreter, each program once found wrong gives Python's result."""
    dissector = accepted(case)
    with load(compiled(case, backend), engine) as loaded:
        for frame in case.frames:
            python, kernel = dissector.run_python(frame), loaded.run(frame)
            assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), kernel.keys.diff(python.keys)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_llvm_is_never_asked_for_128_bit_arithmetic(level: int, accepted: Callable[[Accept], Dissector]) -> None:
    """`x <= -1 // y` once became umul.with.overflow, a 128-bit multiply (__multi3) and exit(1)."""
    [case] = [c for c in ACCEPTS if c.name == "quotient-compare-no-i128"]
    optimised = accepted(case).compile(backend="llvm", opt_level=level).llvm_ir()
    assert optimised is not None
    body = optimised.split("define", 1)[1].split("\n}\n", 1)[0]  # the function, not its metadata
    assert "with.overflow" not in body and not re.search(r"\bi(?:6[5-9]|[7-9]\d|\d{3,})\b", body)


def test_python_run_inverts_the_integer_of_a_condition(accepted: Callable[[Accept], Dissector]) -> None:
    """`~(a > b)` is ~1 or ~0, as in the kernel: never `~True` (deprecated from 3.12, an error from 3.16)."""
    import dis
    import warnings

    [case] = [c for c in ACCEPTS if c.name == "invert-a-condition"]
    dissector = accepted(case)
    assert not [i for i in dis.get_instructions(dissector.python_function()) if i.opname == "UNARY_INVERT"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keys = dissector.run_python(udp_frame(5, 7)).keys
    assert (keys.ip_proto, keys.dport) == (~1 & 0xFF, (~1 + ~0) & 0xFFFF)


# -- programs that must be refused, with a place --------------------------------------


@dataclass(frozen=True)
class Refuse:
    """A program refused on both backends: error class, message, line and column (1-based, from the source's first line)."""

    name: str
    source: str
    error: type[CompileError]
    message: str
    line: int
    col: int


VOID_HELPER = """
        def h(keys: BpfFlowKeys):
            keys.sport = 1
"""

REFUSES = [
    Refuse("void-helper-stored-in-keys", VOID_HELPER + """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.dport = h(keys)
            return BPF_OK
        """, CompileTypeError, "`h` returns nothing", 6, 18),
    Refuse("void-helper-in-a-local", VOID_HELPER + """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = h(keys)
            return BPF_OK
        """, CompileTypeError, "`h` returns nothing", 6, 9),
    Refuse("void-helper-in-arithmetic", VOID_HELPER + """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = h(keys) + 1
            return BPF_OK
        """, CompileTypeError, "`h` returns nothing", 6, 18),
    Refuse("deep-expression-after-return", """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
            keys.thoff = """ + " + ".join(["keys.nhoff"] * 250) + """
        """, UnsupportedError, "this code is never reached", 4, 5),
    Refuse("after-if-that-always-returns", """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if keys.nhoff == 14:
                return BPF_OK
            else:
                return BPF_DROP
            keys.thoff = 1
        """, UnsupportedError, "this code is never reached", 7, 5),
    Refuse("after-break", """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            for i in range(4):
                break
                keys.thoff = i
            return BPF_OK
        """, UnsupportedError, "this code is never reached", 5, 9),
    Refuse("error-in-empty-range-body", """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            for i in range(0):
                keys.thoff = undefined
            return BPF_OK
        """, CompileNameError, "name `undefined` is not defined", 4, 22),
    Refuse("non-ascii-dissector-name", """
        @dissector
        def dü(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
        """, CompileNameError, "the dissector's name `dü` has non-ASCII characters", 2, 5),
    Refuse("literal-too-big-for-typed-local", """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x: u8 = 300
            keys.ip_proto = x
            return BPF_OK
        """, CompileTypeError, "300 does not fit in `x`: u8 holds 0..255", 3, 13),
    Refuse("negative-literal-for-typed-local", """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x: u16 = -1
            keys.sport = x
            return BPF_OK
        """, CompileTypeError, "-1 does not fit in `x`: u16 holds 0..65535", 3, 14),
    Refuse("literal-reassigned-to-typed-local", """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x: u8 = 1
            x = 256
            keys.ip_proto = x
            return BPF_OK
        """, CompileTypeError, "256 does not fit in `x`: u8 holds 0..255", 4, 9),
    Refuse("literal-too-big-for-helper-parameter", """
        def h(keys: BpfFlowKeys, x: u8) -> None:
            keys.ip_proto = x

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            h(keys, 300)
            return BPF_OK
        """, CompileTypeError, "300 does not fit in parameter `x` of `h`: u8 holds 0..255", 6, 13),
    Refuse("literal-too-big-for-helper-result", """
        def h() -> u8:
            return 300

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.ip_proto = h()
            return BPF_OK
        """, CompileTypeError, "300 does not fit in the result of `h`: u8 holds 0..255", 2, 12),
    Refuse("literal-too-big-for-tuple-result", """
        def h() -> tuple[u8, u16]:
            return 1, 70000

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            a, b = h()
            keys.sport = b
            return BPF_OK
        """, CompileTypeError, "70000 does not fit in result 1 of `h`: u16 holds 0..65535", 2, 15),
    Refuse("literal-too-big-for-keys-field", """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.sport = 70000
            return BPF_OK
        """, CompileTypeError, "70000 does not fit in keys.sport: u16 holds 0..65535", 3, 18),
    Refuse("negative-literal-for-keys-field", """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.sport = -1
            return BPF_OK
        """, CompileTypeError, "-1 does not fit in keys.sport: u16 holds 0..65535", 3, 18),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in REFUSES])
def test_found_program_is_refused_with_a_place(case: Refuse, backend: str, tmp_path: Path) -> None:
    path = write(tmp_path, case.source)
    dissector = only_dissector(path)
    with pytest.raises(CompileError) as info:
        dissector.compile(backend=backend)
    err = info.value
    assert type(err) is case.error, err.render()
    assert case.message in err.message, err.render()
    assert err.span is not None and (err.span.file, err.span.line) == (str(path), PRELUDE_LINES + case.line), err.render()
    report = err.render()
    assert report.startswith(f"{path}:{PRELUDE_LINES + case.line}:{case.col}: "), report
    assert report.splitlines()[1] == "    " + path.read_text().splitlines()[err.span.line - 1]
    with pytest.raises(type(err)):  # the CPython run refuses it the same way: it never runs unchecked code
        dissector.run_python(udp_frame(1, 2))


def test_record_names_are_unique() -> None:
    names = [c.name for c in ACCEPTS] + [c.name for c in REFUSES]
    assert len(names) == len(set(names))


def test_too_many_live_values_is_a_located_error_on_native(tmp_path: Path) -> None:
    """80 values live at once do not fit r0-r9 and 64 stack slots: an error at the line, not an internal one."""
    lines = ["@dissector", "def f(pkt: Packet, keys: BpfFlowKeys) -> int:", "    ip = pkt.header(IPv4, keys.nhoff)"]
    lines += [f"    x{i}: u32 = ip.saddr + {i}" for i in range(80)]
    lines += ["    keys.ipv4_src = " + " ^ ".join(f"x{i}" for i in range(80)), "    return BPF_OK"]
    path = write(tmp_path, "\n".join(lines) + "\n")
    dissector = only_dissector(path)
    with pytest.raises(CompileError) as info:
        dissector.compile(backend="native")
    err = info.value
    assert not isinstance(err, InternalCompilerError), err.render()
    assert "too many values are live at once here" in err.message
    assert err.span is not None and err.span.file == str(path)
    assert re.match(r"    x\d+: u32 = ip.saddr \+ \d+$", path.read_text().splitlines()[err.span.line - 1])
    assert dissector.compile(backend="llvm").insn_count > 0  # LLVM recomputes instead of keeping


# -- deeper than the recursion limit allows -----------------------------------------------


def test_recursion_deeper_than_the_room_is_a_located_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With only 300 frames of room, the 250-term sum is refused at the expression, not with a RecursionError."""
    from pyfd.compiler import frontend

    @contextlib.contextmanager
    def little_room() -> Iterator[None]:
        saved = sys.getrecursionlimit()
        sys.setrecursionlimit(len(inspect.stack(0)) + 300)
        try:
            yield
        finally:
            sys.setrecursionlimit(saved)

    monkeypatch.setattr(frontend, "recursion_room", little_room)
    path = write(tmp_path, _sum(250))
    with pytest.raises(UnsupportedError, match="nested too deeply") as info:
        only_dissector(path).lower()
    assert info.value.span is not None and info.value.span.line == PRELUDE_LINES + 4


def test_elif_chain_cpython_parses_runs_or_is_refused_at_the_def(tmp_path: Path) -> None:
    """2,000 elifs parse on every Python; CPython 3.12 compiles a syntax tree only ~1,500 deep."""
    path = write(tmp_path, _elifs(2000))
    dissector = only_dissector(path)
    if sys.version_info[:2] == (3, 12):
        with pytest.raises(UnsupportedError, match="nested too deeply for CPython") as info:
            dissector.run_python(udp_frame(1999, 1))
        assert info.value.span is not None and info.value.span.line == PRELUDE_LINES + 2
    else:
        assert dissector.run_python(udp_frame(1999, 1)).keys.dport == 1999


# -- LLVM in a child ------------------------------------------------------------------------


@pytest.fixture
def forking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make compile_llvm fork (as it does in a single-threaded process), so a patched step runs in the child."""
    monkeypatch.setattr(isolate, "_threads", lambda: 1)


def test_llvm_fatal_error_is_a_backend_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forking: None) -> None:
    """Without gotol, LLVM aborts on a branch past 32767 instructions; the child dies, this process does not."""
    original = llvm_backend._codegen

    def without_gotol(text: str, level: int, name: str) -> bytes:  # runs in the child only
        import llvmlite.binding as llvm

        llvm.set_option("pyfd-test", "-disable-gotol")
        llvm_backend._target_machine.cache_clear()
        return original(text, level, name)

    dissector = only_dissector(write(tmp_path, _ifs(600)))
    monkeypatch.setattr(llvm_backend, "_codegen", without_gotol)
    with pytest.raises(BackendError) as info:
        dissector.compile(backend="llvm")
    err = info.value
    assert "killed by SIGABRT" in err.message and "Branch target out of insn range" in err.message, err.render()
    assert err.span is not None and err.span.line == PRELUDE_LINES + 2  # the def: LLVM names no line
    monkeypatch.setattr(llvm_backend, "_codegen", original)
    assert "gotol" in dissector.compile(backend="llvm").asm()  # the parent's LLVM is as it was


def test_llvm_exit_is_a_backend_error_at_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forking: None) -> None:
    """The division as it was lowered before its quotient had a barrier: LLVM exits over __multi3."""

    def unguarded(self: llvm_backend._Lowering, op: object, a: str, rhs: object, span: object) -> str:
        b = self.barrier(self.read(rhs), span)  # type: ignore[arg-type]
        zero = self.value(f"icmp eq i64 {b}, 0", span)  # type: ignore[arg-type]
        divisor = self.value(f"select i1 {zero}, i64 1, i64 {b}", span)  # type: ignore[arg-type]
        result = self.value(f"udiv i64 {a}, {divisor}", span)  # type: ignore[arg-type]
        return self.value(f"select i1 {zero}, i64 0, i64 {result}", span)  # type: ignore[arg-type]

    monkeypatch.setattr(llvm_backend._Lowering, "divide", unguarded)
    path = write(tmp_path, QUOTIENT_COMPARE)
    with pytest.raises(BackendError) as info:
        only_dissector(path).compile(backend="llvm")
    err = info.value
    assert "exited with status 1" in err.message and "__multi3" in err.message, err.render()
    assert err.span is not None and err.span.line == PRELUDE_LINES + 5  # the comparison


def test_a_spawned_child_compiles_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, accepted: Callable[[Accept], Dissector]) -> None:
    """In a process with threads compile_llvm starts a fresh interpreter instead of forking."""
    [case] = [c for c in ACCEPTS if c.name == "quotient-compare-no-i128"]
    dissector = accepted(case)
    monkeypatch.setattr(isolate, "_threads", lambda: 1)
    forked = dissector.compile(backend="llvm").object_bytes()
    monkeypatch.setattr(isolate, "_threads", lambda: 2)
    assert dissector.compile(backend="llvm").object_bytes() == forked


def _exit_1() -> bytes:
    os.write(2, b"error: something LLVM says\n")
    os._exit(1)


def _raise() -> bytes:
    raise ValueError("a bug in the step")


@pytest.mark.parametrize(
    ("step", "how", "stderr"),
    [
        (os.abort, "killed by SIGABRT", ""),
        (_exit_1, "exited with status 1", "error: something LLVM says"),
        (_raise, f"exited with status {isolate.EX_SOFTWARE}", "ValueError: a bug in the step"),
    ],
    ids=["abort", "exit-1", "exception"],
)
def test_a_forked_step_that_dies_is_a_child_failure(step: Callable[[], bytes], how: str, stderr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolate, "_threads", lambda: 1)
    with pytest.raises(isolate.ChildFailed) as info:
        isolate.run_isolated(step, ["false"], b"")
    assert info.value.how == how and stderr in info.value.stderr


def test_a_spawned_step_that_dies_is_a_child_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolate, "_threads", lambda: 2)
    with pytest.raises(isolate.ChildFailed, match="killed by SIGABRT"):
        isolate.run_isolated(lambda: b"", [sys.executable, "-c", "import os; os.abort()"], b"")
    assert isolate.run_isolated(lambda: b"", [sys.executable, "-c", "import sys; sys.stdout.buffer.write(bytes(8))"], b"") == b""


def test_a_forked_step_returns_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolate, "_threads", lambda: 1)
    big = os.urandom(1 << 20)  # more than a pipe holds: the parent reads while the child writes
    assert isolate.run_isolated(lambda: big, ["false"], b"") == big


# -- long jumps -------------------------------------------------------------------------------


FILLER = [mov64_imm(0, 0)] * 40000


@pytest.mark.parametrize(
    ("far_jump", "expected"),
    [
        (lambda t: ja(t), [gotol(40000)]),
        (lambda t: jmp_imm(BPF_JEQ, 1, 3, t), [jmp_imm(BPF_JNE, 1, 3, 1), gotol(40000)]),
        (lambda t: jmp32_imm(BPF_JEQ, 1, 3, t), [jmp32_imm(BPF_JNE, 1, 3, 1), gotol(40000)]),
        (lambda t: jmp_imm(BPF_JSET, 1, 3, t), [jmp_imm(BPF_JSET, 1, 3, 1), ja(1), gotol(40000)]),
    ],
    ids=["goto", "jeq", "jeq32", "jset"],
)
def test_relax_jumps_reaches_past_int16(far_jump: Callable[[Label], Instruction], expected: list[Instruction]) -> None:
    far = Label("far")
    program = resolve(relax_jumps([far_jump(far), *FILLER, far, exit_insn()]))
    assert program[: len(expected)] == expected
    assert program[-1] == exit_insn()


def test_relax_jumps_leaves_near_jumps_and_relaxes_what_relaxing_pushes_out() -> None:
    """A jump just in range goes out of range when one it jumps over grows: relaxation repeats until all fit."""
    far, edge = Label("far"), Label("edge")
    just = jmp_imm(BPF_JEQ, 1, 1, edge)  # 32767 slots ahead, until the jump below it grows by one
    items: list[Instruction | Label] = [just, jmp_imm(BPF_JEQ, 2, 2, far), *[mov64_imm(0, 0)] * 32766, edge, *FILLER, far, exit_insn()]
    assert resolve([just, mov64_imm(0, 0), *[mov64_imm(0, 0)] * 32766, edge, exit_insn()])[0].off == 32767  # as far as int16 reaches
    program = resolve(relax_jumps(items))
    assert program[0] == jmp_imm(BPF_JNE, 1, 1, 1) and program[1].is_gotol
    assert program[2] == jmp_imm(BPF_JNE, 2, 2, 1) and program[3].is_gotol
    assert program[1].jump_offset == 32768  # `edge`, two slots further than it was
    near = Label("near")
    assert resolve(relax_jumps([ja(near), mov64_imm(0, 0), near, exit_insn()])) == [ja(1), mov64_imm(0, 0), exit_insn()]


def test_gotol_is_bpf_jmp32_ja_with_the_offset_in_imm() -> None:
    insn = resolve([gotol(Label("x")), *FILLER[:3], Label("x"), exit_insn()])[0]
    assert insn.opcode == Class.JMP32 | JmpOp.JA and insn.off == 0 and insn.imm == 3 and insn.jump_offset == 3
    assert BPF_JA == JmpOp.JA


def test_header_copies_that_do_not_fit_fall_back_to_the_linear_part(accepted: Callable[[Accept], Dissector]) -> None:
    case = next(c for c in ACCEPTS if c.name == "twelve-live-ipv6-headers")
    for backend in BACKENDS:
        ir = accepted(case).compile(backend=backend).ir()
        checks = [line for line in ir.splitlines() if "check.packet" in line]
        assert len(checks) == 12
        # In program order: the outer headers, which the inner ones depend on, keep the fallback.
        assert ["window" in line for line in checks] == [True] * 6 + [False] * 6, ir
