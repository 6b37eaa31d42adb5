"""Verifier refusals mapped back to the source line, with the reason and what it means.

Each record is a deliberately broken instruction sequence built with the isa
module, every instruction carrying a Span into a small real .py file; the
kernel refuses it, and the VerifierError must name the exact file:line:col,
show that line with a caret, keep the verifier's own reason and the whole log,
and explain the family of refusal in plain words. No compiler bug is needed to
produce them.
"""

from __future__ import annotations

import errno
import itertools
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from kernel import needs_kernel, requires_kernel  # noqa: F401  (pytest fixture)
from pyfd.compiler.backends.result import CompiledCode
from pyfd.objfile.btf import build_program_btf
from pyfd.compiler.diagnostics import Span
from pyfd.isa import assemble

from pyfd import BPF_OK, BpfFlowKeys, Packet, dissector
from pyfd.runtime import VerifierError, load_program
from pyfd.program import CompiledProgram
from pyfd.runtime.errors import (
    SourceLocation,
    explain_verifier_log,
    slot_source_map,
    summarize_verifier_log,
)

# The Python file the spans point into; its text only has to exist.
FLOW_PY = """\
def dissect(pkt, keys):
    nhoff = keys.nhoff
    version = pkt[nhoff + 16]
    mark = ctx.mark
    pkt[0] = 1
    first = pkt[0]
    ctx.data = 0
    while True: pass
    return undefined
    return BPF_OK
"""
NHOFF, VERSION, MARK, PKT_WRITE, FIRST, CTX_WRITE, LOOP, UNDEFINED, RETURN = range(2, 11)


@dataclass(frozen=True)
class Refusal:
    """One broken program: its instructions (asm, Python line) and what the error must say."""

    name: str
    program: list[tuple[str, int]]
    line: int  # the Python line the error must point at
    family: str
    reason: str  # the start of the verifier's own one-line reason
    explanation: str  # a phrase of the plain-language explanation (the runtime's, in BPF terms)
    insn_index: int
    advice: str | None = None  # a phrase of what pyfd adds for a program compiled from its Python


REFUSALS = [
    Refusal(
        "packet read without a bounds check",
        [("r2 = *(u32 *)(r1 + 76)", FIRST), ("r0 = *(u8 *)(r2 + 0)", FIRST), ("r0 = 0", RETURN), ("exit", RETURN)],
        FIRST,
        "packet-access",
        "invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)",
        "every path to it must have checked `data + off + N <= data_end`",
        1,
        "pkt.header(...) adds the check",
    ),
    Refusal(
        "variable offset checked without a clamp: r=0",
        [
            ("r6 = *(u64 *)(r1 + 144)", NHOFF),
            ("r2 = *(u32 *)(r1 + 76)", VERSION),
            ("r3 = *(u32 *)(r1 + 80)", VERSION),
            ("r4 = *(u16 *)(r6 + 0)", NHOFF),
            ("r2 += r4", VERSION),
            ("r5 = r2", VERSION),
            ("r5 += 20", VERSION),
            ("if r5 > r3 goto +1", VERSION),
            ("r0 = *(u32 *)(r2 + 16)", VERSION),
            ("r0 = 0", RETURN),
            ("exit", RETURN),
        ],
        VERSION,
        "packet-access",
        "invalid access to packet, off=16 size=4, R2(id=1,off=16,r=0)",
        "Clamp the offset first (fail unless off <= 0xffff - N), then compare with data_end",
        8,
        "clamping a variable offset first (`if off > 0xffff - N: fail`)",
    ),
    Refusal(
        "context field a dissector may not read",
        [("r0 = *(u32 *)(r1 + 8)", MARK), ("r0 = 0", RETURN), ("exit", RETURN)],
        MARK,
        "context-access",
        "invalid bpf_context access off=8 size=4",
        "data (offset 76), data_end (offset 80) and flow_keys (offset 144)",
        0,
        "results are written as `keys.FIELD = ...`",
    ),
    Refusal(
        "write into the context",
        [("r0 = 0", RETURN), ("*(u32 *)(r1 + 76) = 0", CTX_WRITE), ("exit", RETURN)],
        CTX_WRITE,
        "context-access",
        "invalid bpf_context access off=76 size=4",
        "and may write none",
        1,
        "results are written as `keys.FIELD = ...`",
    ),
    Refusal(
        "write into the packet",
        [
            ("r2 = *(u32 *)(r1 + 76)", PKT_WRITE),
            ("r3 = *(u32 *)(r1 + 80)", PKT_WRITE),
            ("r4 = r2", PKT_WRITE),
            ("r4 += 1", PKT_WRITE),
            ("if r4 > r3 goto +1", PKT_WRITE),
            ("*(u8 *)(r2 + 0) = 1", PKT_WRITE),
            ("r0 = 0", RETURN),
            ("exit", RETURN),
        ],
        PKT_WRITE,
        "packet-write",
        "cannot write into packet",
        "may only read the packet",
        5,
        "that is `keys.FIELD = ...`",
    ),
    Refusal(
        "a loop that never ends",
        [("r0 = 0", LOOP), ("if r0 == 0 goto -1", LOOP), ("exit", RETURN)],
        LOOP,
        "loop",
        "infinite loop detected at insn 1",
        "this loop can run forever",
        1,
        "`for _ in range(N)` with a constant N",
    ),
    Refusal(
        "too many branches waiting to be walked",
        [("r0 = 0", NHOFF), ("r1 = *(u32 *)(r1 + 76)", NHOFF)]
        + [(f"if r1 > {i} goto +0", LOOP) for i in range(8200)]
        + [("exit", RETURN)],
        LOOP,
        "too-complex",
        "The sequence of 8193 jumps is too complex.",
        "gives up past 1,000,000 processed instructions",
        8194,
    ),
    Refusal(
        "a path that returns without a value",
        [("r2 = *(u32 *)(r1 + 76)", RETURN), ("exit", UNDEFINED)],
        UNDEFINED,
        "return-value",
        "R0 !read_ok",
        "r0, the return value, was never set",
        1,
        "every path ends in `return BPF_OK`, `return BPF_DROP` or `return BPF_FLOW_DISSECTOR_CONTINUE`",
    ),
    Refusal(
        "a register read before it is written",
        [("r0 = r3", UNDEFINED), ("exit", RETURN)],
        UNDEFINED,
        "uninitialized-register",
        "R3 !read_ok",
        "reads r3 before anything was written to it",
        0,
    ),
    Refusal(
        "dead code, found before the walk",
        [("r0 = 0", RETURN), ("exit", RETURN), ("r0 = 2", UNDEFINED), ("exit", UNDEFINED)],
        UNDEFINED,
        "unreachable",
        "unreachable insn 2",
        "code no path reaches",
        2,
    ),
]


@pytest.fixture
def flow_py(tmp_path: Path) -> Path:
    path = tmp_path / "flow.py"
    path.write_text(FLOW_PY)
    return path


def _span(path: Path, line: int) -> Span:
    """The span of a whole line of flow.py, from its first non-blank character."""
    text = FLOW_PY.splitlines()[line - 1]
    col = len(text) - len(text.lstrip())
    return Span(str(path), line, col, line, len(text))


def _compile(path: Path, program: list[tuple[str, int]]) -> CompiledCode:
    insns = assemble("\n".join(text for text, _ in program))
    return CompiledCode("broken", "test", tuple(replace(insn, span=_span(path, line)) for insn, (_, line) in zip(insns, program, strict=True)))


def _refuse(path: Path, program: list[tuple[str, int]], *, with_btf: bool = True) -> VerifierError:
    """The runtime's refusal of `program` (loaded with load_program: no source language known)."""
    code = _compile(path, program)
    spans = code.spans_by_slot()
    btf = build_program_btf(code.name, "flow_dissector", spans)
    options = {"btf": btf.btf, "func_info": btf.func_info, "line_info": btf.line_info} if with_btf else {}
    with pytest.raises(VerifierError) as info:
        load_program(code.code, name="broken", source_map=slot_source_map(spans), **options).close()  # type: ignore[arg-type]
    return info.value


@dissector
def broken(pkt: Packet, keys: BpfFlowKeys) -> int:
    return BPF_OK


def _refuse_compiled(path: Path, program: list[tuple[str, int]]) -> VerifierError:
    """The refusal of `program` as pyfd's CompiledProgram.load reports it (a program from pyfd's Python)."""
    compilation = replace(broken.compile().compilation, code=_compile(path, program))
    with pytest.raises(VerifierError) as info:
        CompiledProgram(compilation).load().close()
    return info.value


# Words of pyfd's Python (and of its command line) that the runtime's own
# explanations must not use: they also explain programs clang compiled.
DSL_WORDS = ("pkt.", "keys.", "return BPF", "range(", "Packet", "--")


def _why(text: str) -> str:
    """The `why:` paragraph of an error's text, unwrapped."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  why: "))
    paragraph = [lines[start].removeprefix("  why: ")]
    paragraph += [line.strip() for line in itertools.takewhile(lambda line: line.startswith("       "), lines[start + 1 :])]
    return " ".join(paragraph)


@needs_kernel
@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.name for r in REFUSALS])
def test_refusal_is_mapped_to_its_python_line(refusal: Refusal, flow_py: Path) -> None:
    err = _refuse(flow_py, refusal.program)
    span = _span(flow_py, refusal.line)
    where = f"{flow_py}:{refusal.line}:{span.col + 1}"
    assert err.insn_index == refusal.insn_index
    assert err.location == where
    assert err.source == SourceLocation(str(flow_py), refusal.line, span.col, span.end_col, span.source_line())
    assert err.family == refusal.family
    assert err.reason.startswith(refusal.reason), err.reason
    assert err.explanation is not None and refusal.explanation in err.explanation
    assert not [word for word in DSL_WORDS if word in err.explanation], err.explanation
    assert err.advice is None  # the runtime alone does not know the source language
    text = str(err)
    # The report reads like a compile error: location first, then the line and a caret.
    assert text.startswith(f"{where}: the kernel verifier rejected program 'broken': {refusal.reason}")
    line_text = FLOW_PY.splitlines()[refusal.line - 1]
    assert f"\n    {line_text}\n    {' ' * span.col}{'^' * (span.end_col - span.col)}\n" in text
    assert "\n  why: " in text and _why(text) == " ".join(err.explanation.split())
    assert refusal.reason in err.log  # the whole log stays in .log


@needs_kernel
@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.name for r in REFUSALS])
def test_a_compiled_program_adds_advice_for_its_python(refusal: Refusal, flow_py: Path) -> None:
    # CompiledProgram.load knows the program came from pyfd's Python and
    # says what to write there, after the runtime's explanation.
    err = _refuse_compiled(flow_py, refusal.program)
    assert err.family == refusal.family and err.location == f"{flow_py}:{refusal.line}:{_span(flow_py, refusal.line).col + 1}"
    assert err.explanation is not None and refusal.explanation in err.explanation
    if refusal.advice is None:
        assert err.advice is None
        assert _why(str(err)) == " ".join(err.explanation.split())
    else:
        assert err.advice is not None and refusal.advice in err.advice
        assert _why(str(err)) == " ".join(f"{err.explanation} {err.advice}".split())


@needs_kernel
def test_kernel_log_names_the_python_lines(flow_py: Path) -> None:
    # With BTF line info the kernel's own log interleaves the source lines.
    err = _refuse(flow_py, REFUSALS[1].program)
    assert f"; version = pkt[nhoff + 16] @ flow.py:{VERSION}" in err.log, err.log


@needs_kernel
def test_source_map_works_without_btf(flow_py: Path) -> None:
    err = _refuse(flow_py, REFUSALS[2].program, with_btf=False)
    assert err.location == f"{flow_py}:{MARK}:5" and err.family == "context-access"
    assert "; mark = ctx.mark @" not in err.log  # the kernel had no line info this time


@needs_kernel
def test_too_large_program(flow_py: Path) -> None:
    # A bounded loop the verifier walks a million times: "BPF program is too large".
    program = [("r0 = 0", NHOFF), ("r0 += 1", LOOP), ("if r0 < 100000000 goto -2", LOOP), ("r0 = 0", RETURN), ("exit", RETURN)]
    err = _refuse(flow_py, program)
    assert err.errno == errno.E2BIG
    assert err.reason.startswith("BPF program is too large. Processed 1000001 insn")
    assert err.family == "too-complex" and err.location == f"{flow_py}:{LOOP}:5"


# === without the kernel ===================================================================


@pytest.mark.parametrize(
    ("summary", "insn", "family"),
    [
        ("invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0); R2 offset is outside of the packet", "r0 = *(u8 *)(r2 +0)", "packet-access"),
        ("invalid bpf_context access off=8 size=4", "r0 = *(u32 *)(r1 +8)", "context-access"),
        ("cannot write into packet", "*(u8 *)(r2 +0) = 1", "packet-write"),
        ("infinite loop detected at insn 1", "if r0 == 0x0 goto pc-1", "loop"),
        ("back-edge from insn 3 to 1", None, "too-complex"),
        ("BPF program is too large. Processed 1000001 insn", "r0 += 1", "too-complex"),
        ("The sequence of 8193 jumps is too complex.", "if r1 > 0x2000 goto pc+0", "too-complex"),
        ("R0 !read_ok", "exit", "return-value"),
        ("At program exit the register R0 has unknown scalar value should have been in [0, 1]", "exit", "return-value"),
        ("R0 !read_ok", "r1 = r0", "uninitialized-register"),
        ("R7 !read_ok", "exit", "uninitialized-register"),
        ("invalid func unknown#9999", "call unknown#9999", "helper"),
        ("unreachable insn 2", None, "unreachable"),
        ("R1 type=scalar expected=fp", "call 1", None),
    ],
)
def test_families(summary: str, insn: str | None, family: str | None) -> None:
    found, explanation = explain_verifier_log(summary, insn)
    assert found == family
    assert (explanation is None) == (family is None)


def test_index_from_a_refusal_before_the_walk() -> None:
    log = "jump out of range from insn 1 to 7\nprocessed 0 insns (limit 1000000) max_states_per_insn 0\n"
    assert summarize_verifier_log(log) == ("jump out of range from insn 1 to 7", 1, None)


def test_infinite_loop_summary_leaves_out_the_states() -> None:
    log = (
        "1: (15) if r0 == 0x0 goto pc-1        ; R0=0\n"
        "infinite loop detected at insn 1\n"
        "cur state: R0=0 R1=ctx() R10=fp0\n"
        "old state: R0=P0 R1=ctx() R10=fp0\n"
        "processed 9 insns (limit 1000000)\n"
    )
    assert summarize_verifier_log(log) == ("infinite loop detected at insn 1", 1, "if r0 == 0x0 goto pc-1")


def test_caret_under_the_span(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    path.write_text(FLOW_PY)
    location = SourceLocation.of(Span(str(path), MARK, 11, MARK, 19))
    assert location is not None and str(location) == f"{path}:{MARK}:12"
    assert location.caret() == "        mark = ctx.mark\n               ^^^^^^^^"
    # A location from line info alone: text from BTF, one caret, tabs widened.
    assert SourceLocation("gone.c", 5, 1, text="\treturn 0;").caret() == "            return 0;\n            ^"
    assert SourceLocation(str(tmp_path / "missing.py"), 3).caret() == ""


def test_error_with_a_span_map_pickles(flow_py: Path) -> None:
    log = "0: (61) r0 = *(u32 *)(r1 +8)\ninvalid bpf_context access off=8 size=4\nprocessed 1 insns\n"
    err = VerifierError(errno.EACCES, log=log, name="broken", source_map=slot_source_map([_span(flow_py, MARK)]))
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err) and copy.location == f"{flow_py}:{MARK}:5"
    assert copy.source_map is None and copy.source == err.source


def test_slot_without_a_span_takes_the_previous_one(flow_py: Path) -> None:
    locate = slot_source_map([_span(flow_py, NHOFF), None, _span(flow_py, MARK)])
    assert locate(1) == _span(flow_py, NHOFF) and locate(2) == _span(flow_py, MARK)
    assert locate(3) is None and locate(-1) is None
