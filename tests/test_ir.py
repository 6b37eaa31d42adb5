"""The IR as text: round trips, parse errors, the checker, and every pass as text in, text out."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from dissectors import backend, semantics
from pyfd.compiler.backends import BACKENDS
from pyfd.compiler.diagnostics import CompileError, PacketAccessError
from pyfd.compiler.ir.checker import IRCheckError, check_function
from pyfd.compiler.ir.analysis import dominator_chain, dominators, reverse_postorder
from pyfd.compiler.ir.nodes import Block, Branch, Cmp, Copy, Function, Imm, Jump, Reg, Return, StoreKeys, Terminator
from pyfd.compiler.ir.parser import parse_function, parse_functions
from pyfd.compiler.ir.text import print_function
from pyfd.compiler.passes.base import PassContractError
from pyfd.compiler.passes import (
    ConstantFold,
    DeadCode,
    LikelyFirst,
    MergeChecks,
    Pass,
    PassManager,
    Peephole,
    RedundantLoads,
    SimplifyCFG,
    ThreadJumps,
    pipeline,
)

from pyfd import Dissector
from pyfd.cli import find_dissectors

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _every() -> list[Dissector]:
    found: list[Dissector] = []
    for path in sorted(SAMPLES.glob("*.py")):
        found.extend(find_dissectors(path).values())
    return [*found, *semantics.ALL, *backend.ALL]


EVERY = _every()
SAMPLE_DISSECTOR = find_dissectors(SAMPLES / "ipv4_tcp.py")["ipv4_tcp"]


def func(body: str) -> str:
    """A function `f` of file t.py around the blocks in `body`."""
    return 'func f "t.py" {\n' + body.strip("\n") + "\n}\n"


def text(fn: Function) -> str:
    return print_function(fn, spans=False)


# -- round trips -------------------------------------------------------------------


def _functions(dissector: Dissector) -> dict[str, Function]:
    return {"lowered": dissector.lower().function, "optimised": dissector.compile().compilation.ir}


@pytest.mark.parametrize("spans", [True, False], ids=["spans", "no-spans"])
@pytest.mark.parametrize("stage", ["lowered", "optimised"])
@pytest.mark.parametrize("dissector", EVERY, ids=lambda d: d.name)
def test_print_parse_print_is_identical(dissector: Dissector, stage: str, spans: bool) -> None:
    printed = print_function(_functions(dissector)[stage], spans=spans)
    parsed = parse_function(printed)
    assert print_function(parsed, spans=spans) == printed
    check_function(parsed)  # what the frontend and the passes produce is checked IR


@pytest.mark.parametrize("dissector", EVERY, ids=lambda d: d.name)
def test_parsed_spans_are_the_python_spans(dissector: Dissector) -> None:
    fn = dissector.lower().function
    parsed = parse_function(print_function(fn))
    assert parsed.span == fn.span
    for original, back in zip(fn.blocks, parsed.blocks, strict=True):
        assert [i.span for i in back.insns] == [i.span for i in original.insns]
        assert back.term.span == original.term.span


def test_several_functions_parse_in_order() -> None:
    two = func("entry:\n    ret 0") + 'func g "u.py" {\nentry:\n    ret 2\n}\n'
    assert [(f.name, f.file) for f in parse_functions(two)] == [("f", "t.py"), ("g", "u.py")]


def test_numbers() -> None:
    fn = parse_function(func("entry:\n    %a = copy 08\n    %b = copy -0x10\n    %c = copy 0xffffffffffffffff\n    ret 0"))
    assert text(fn) == func("entry:\n    %a = copy 8\n    %b = copy -16\n    %c = copy -1\n    ret 0")


# -- parse errors: CompileErrors located in the IR text --------------------------------

PARSE_ERRORS = [
    # (name, text, line, column (1-based), part of the message)
    ("missing-operand", func("entry:\n    %a = copy\n    ret 0"), 4, 5, "Unexpected token"),
    ("missing-terminator", func("entry:\n    %a = copy 1"), 4, 1, "Unexpected token"),
    ("unknown-operation", func("entry:\n    %a = frob %b, 1\n    ret 0"), 3, 10, "frob"),
    ("bad-access-size", func("entry:\n    %a = packet.load u3 [14 + 0]\n    ret 0"), 3, 22, "u3"),
    ("bad-extension-width", func("entry:\n    %a = zext12 %b\n    ret 0"), 3, 10, "zext12"),
    ("bad-comparison", func("entry:\n    br lt %a, 1, x, y"), 3, 8, "lt"),
    ("stray-character", func("entry:\n    %a = copy 1 $\n    ret 0"), 3, 17, "$"),
    ("second-terminator", func("entry:\n    ret 0\n    ret 2"), 4, 9, "Unexpected token"),
    ("empty", "", 1, 1, "Unexpected token"),
]


@pytest.mark.parametrize(("text_in", "line", "column", "fragment"), [c[1:] for c in PARSE_ERRORS], ids=[c[0] for c in PARSE_ERRORS])
def test_parse_errors_name_a_place_in_the_text(text_in: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(CompileError) as info:
        parse_function(text_in, source_name="t.ir")
    error = info.value
    assert error.span is not None
    assert (error.span.file, error.span.line, error.span.col + 1) == ("t.ir", line, column)
    assert fragment in error.message
    assert str(error).startswith(f"t.ir:{line}:{column}: invalid IR")


def test_one_function_expected() -> None:
    two = func("entry:\n    ret 0") + 'func g "u.py" {\nentry:\n    ret 2\n}\n'
    with pytest.raises(CompileError, match="expected one function, found 2") as info:
        parse_function(two, source_name="t.ir")
    assert info.value.span is not None and (info.value.span.line, info.value.span.col) == (5, 0)


# -- the checker -------------------------------------------------------------------------

CHECKED = func("""
entry:
    %n = keys.load u16 +0
    %b = copy %n
    check.packet [%b + 20], ok, fail
ok:
    %x = packet.load u32 [%b + 16]
    keys.store u32 +16, %x
    %f = keys.load u32 +48
    br eq %f, 0, more, done
more:
    check.packet [14 + 2], ok2, fail
ok2:
    %y = packet.load u16 [14 + 0]
    keys.store u16 +12, %y
    jump done
done:
    ret 0
fail:
    ret 2
""")

REFUSED = [
    # (name, IR, error class, part of the message, line of the offending node)
    ("load-without-check", func("""
entry:
    %n = keys.load u16 +0
    %x = packet.load u8 [%n + 0]
    ret 0
"""), PacketAccessError, "not dominated by a bounds check", 4),
    ("load-beyond-checked-size", func("""
entry:
    check.packet [14 + 20], ok, fail
ok:
    %x = packet.load u32 [14 + 17]
    ret 0
fail:
    ret 2
"""), PacketAccessError, "4 bytes at [14 + 17]", 5),
    ("load-on-another-base", func("""
entry:
    check.packet [14 + 20], ok, fail
ok:
    %x = packet.load u8 [15 + 0]
    ret 0
fail:
    ret 2
"""), PacketAccessError, "not dominated", 5),
    ("load-in-fail-branch", func("""
entry:
    check.packet [14 + 20], ok, fail
ok:
    ret 0
fail:
    %x = packet.load u8 [14 + 0]
    ret 2
"""), PacketAccessError, "not dominated", 7),
    ("load-after-merge-with-unchecked-path", func("""
entry:
    %f = keys.load u32 +48
    br eq %f, 0, checked, join
checked:
    check.packet [14 + 20], ok, fail
ok:
    jump join
join:
    %x = packet.load u8 [14 + 0]
    ret 0
fail:
    ret 2
"""), PacketAccessError, "not dominated", 10),
    ("ok-and-fail-the-same-block", func("""
entry:
    check.packet [14 + 20], ok, ok
ok:
    %x = packet.load u8 [14 + 0]
    ret 0
"""), PacketAccessError, "not dominated", 5),
    ("base-written-twice", func("""
entry:
    %b = keys.load u16 +0
    %b = add %b, 1
    check.packet [%b + 4], ok, fail
ok:
    %x = packet.load u8 [%b + 0]
    ret 0
fail:
    ret 2
"""), IRCheckError, "packet base %b must be written exactly once, not 2 times", 7),
    ("base-rewritten-after-check", func("""
entry:
    %b = keys.load u16 +0
    check.packet [%b + 4], ok, fail
ok:
    %b = copy 14
    %x = packet.load u8 [%b + 0]
    ret 0
fail:
    ret 2
"""), IRCheckError, "written exactly once", 7),
    ("undefined-register", func("""
entry:
    %x = add %y, 1
    ret 0
"""), IRCheckError, "register %y may be read before it is written", 3),
    ("defined-on-one-path-only", func("""
entry:
    %f = keys.load u32 +48
    br eq %f, 0, a, join
a:
    %y = copy 1
    jump join
join:
    keys.store u8 +6, %y
    ret 0
"""), IRCheckError, "register %y may be read before it is written", 9),
    ("read-by-terminator", func("""
entry:
    br eq %z, 0, a, a
a:
    ret 0
"""), IRCheckError, "register %z", 3),
    ("unknown-label", func("""
entry:
    jump nowhere
"""), IRCheckError, "block entry jumps to unknown block nowhere", 3),
    ("unknown-fail-label", func("""
entry:
    check.packet [14 + 1], ok, nowhere
ok:
    ret 0
"""), IRCheckError, "unknown block nowhere", 3),
    ("duplicate-label", func("""
entry:
    jump a
a:
    ret 0
a:
    ret 2
"""), IRCheckError, "duplicate block labels", 1),
    ("direct-read-under-a-window", func("""
entry:
    check.packet [14 + 20] window 1, ok, fail
ok:
    %x = packet.load u32 [14 + 16]
    ret 0
fail:
    ret 2
"""), PacketAccessError, "not dominated", 5),  # the bytes may be in the stack copy, not at data + 14
    ("read-through-another-window", func("""
entry:
    check.packet [14 + 20] window 1, ok, fail
ok:
    %x = packet.load u32 [14 + 16] window 2
    ret 0
fail:
    ret 2
"""), PacketAccessError, "through window 2 is not dominated", 5),
    ("window-read-beyond-its-check", func("""
entry:
    check.packet [14 + 20] window 1, ok, fail
ok:
    %x = packet.load u32 [14 + 20] window 1
    ret 0
fail:
    ret 2
"""), PacketAccessError, "4 bytes at [14 + 20] through window 1", 5),
    ("window-read-unaligned", func("""
entry:
    check.packet [14 + 20] window 1, ok, fail
ok:
    %x = packet.load u32 [14 + 2] window 1
    ret 0
fail:
    ret 2
"""), IRCheckError, "not aligned", 5),  # a stack access must be aligned (check_ptr_alignment)
    ("window-opened-twice", func("""
entry:
    check.packet [14 + 20] window 1, ok, fail
ok:
    check.packet [34 + 20] window 1, ok2, fail
ok2:
    ret 0
fail:
    ret 2
"""), IRCheckError, "window 1 is opened by more than one check", 5),
    ("return-7", func("entry:\n    ret 7"), IRCheckError, "return value 7 is not a flow dissector return code", 3),
    ("return-1", func("entry:\n    ret 1"), IRCheckError, "return value 1", 3),
    ("keys-beyond-56-bytes", func("entry:\n    keys.store u32 +56, 0\n    ret 0"), IRCheckError, "flow keys access of 4 bytes at offset 56", 3),
    ("keys-unaligned", func("entry:\n    %a = keys.load u32 +18\n    ret 0"), IRCheckError, "flow keys access", 3),
]


def test_checker_accepts_a_correct_program() -> None:
    check_function(parse_function(CHECKED))


@pytest.mark.parametrize(("ir", "error", "fragment", "line"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_checker_refuses(ir: str, error: type[CompileError], fragment: str, line: int) -> None:
    with pytest.raises(error) as info:
        check_function(parse_function(ir, source_name="t.ir"))
    assert fragment in info.value.message
    assert info.value.span is not None and info.value.span.line == line


def test_unreachable_blocks_are_not_checked() -> None:
    # Never executed, and dropped by the backend: an unchecked load there is harmless.
    check_function(parse_function(func("entry:\n    ret 0\nlost:\n    %x = packet.load u8 [14 + 0]\n    ret 0")))


# -- passes: text in, text out -----------------------------------------------------------------

PASS_CASES = [
    (
        "simplify-cfg: fold, thread, merge, prune",
        SimplifyCFG(),
        """
entry:
    %f = keys.load u32 +48
    br eq %f, 0, a, a
a:
    jump b
b:
    jump c
c:
    keys.store u8 +6, %f
    br ne %f, 1, d, e
d:
    jump done
e:
    jump done
done:
    ret 0
dead:
    ret 2
""",
        """
entry:
    %f = keys.load u32 +48
    keys.store u8 +6, %f
    ret 0
""",
    ),
    (
        "simplify-cfg: a check keeps its ok block, its fail edge is threaded",
        SimplifyCFG(),
        """
entry:
    check.packet [14 + 4], ok, hop
ok:
    jump after
after:
    %x = packet.load u16 [14 + 2]
    keys.store u16 +12, %x
    jump hop2
hop:
    jump drop
hop2:
    jump fin
fin:
    ret 0
drop:
    ret 2
""",
        """
entry:
    check.packet [14 + 4], ok, drop
ok:
    %x = packet.load u16 [14 + 2]
    keys.store u16 +12, %x
    ret 0
drop:
    ret 2
""",
    ),
    (
        "constant-fold: operations, copies, stores, branches",
        ConstantFold(),
        """
entry:
    %a = copy 6
    %b = copy %a
    %c = mul %b, 7
    %d = neg %c
    %e = not 0
    %s = sext8 200
    %z = zext16 74565
    %w = bswap16 4660
    %q = setcond ult %c, 100
    %x = keys.load u16 +12
    %y = add %x, %b
    keys.store u32 +16, %d
    keys.store u8 +6, %s
    keys.store u16 +12, %z
    keys.store u16 +14, %w
    keys.store u8 +7, %q
    keys.store u32 +20, %e
    keys.store u32 +48, %y
    br ugt %c, 41, yes, no
yes:
    ret 0
no:
    ret 2
""",
        """
entry:
    %a = copy 6
    %b = copy 6
    %c = copy 42
    %d = copy -42
    %e = copy -1
    %s = copy -56
    %z = copy 9029
    %w = copy 13330
    %q = copy 1
    %x = keys.load u16 +12
    %y = add %x, 6
    keys.store u32 +16, -42
    keys.store u8 +6, -56
    keys.store u16 +12, 9029
    keys.store u16 +14, 13330
    keys.store u8 +7, 1
    keys.store u32 +20, -1
    keys.store u32 +48, %y
    jump yes
yes:
    ret 0
no:
    ret 2
""",
    ),
    (
        "constant-fold: a local written twice is not propagated; a constant base beyond 0xffff fails",
        ConstantFold(),
        """
entry:
    %v = copy 1
    %f = keys.load u32 +48
    br eq %f, 0, set, join
set:
    %v = copy 2
    jump join
join:
    keys.store u8 +6, %v
    %b = copy 65530
    check.packet [%b + 8], ok, fail
ok:
    %x = packet.load u8 [%b + 0]
    ret 0
fail:
    ret 2
""",
        """
entry:
    %v = copy 1
    %f = keys.load u32 +48
    br eq %f, 0, set, join
set:
    %v = copy 2
    jump join
join:
    keys.store u8 +6, %v
    %b = copy 65530
    jump fail
ok:
    %x = packet.load u8 [65530 + 0]
    ret 0
fail:
    ret 2
""",
    ),
    (
        "constant-fold: shifts fold with the count masked to 63",
        ConstantFold(),
        """
entry:
    %n = copy 70
    %x = shl 1, %n
    %y = lshr -1, %n
    %z = ashr -128, %n
    keys.store u32 +16, %x
    keys.store u32 +20, %y
    keys.store u32 +48, %z
    ret 0
""",
        """
entry:
    %n = copy 70
    %x = copy 64
    %y = copy 288230376151711743
    %z = copy -2
    keys.store u32 +16, 64
    keys.store u32 +20, 288230376151711743
    keys.store u32 +48, -2
    ret 0
""",
    ),
    (
        "redundant-loads: packet and keys values reused, stores respected",
        RedundantLoads(),
        """
entry:
    %n = keys.load u16 +0
    %b = copy %n
    check.packet [%b + 8], ok, fail
ok:
    %p1 = packet.load u16 [%b + 2]
    %p2 = packet.load u16 [%b + 2]
    %p3 = packet.load u8 [%b + 2]
    %n2 = keys.load u16 +0
    keys.store u16 +12, %p1
    %s1 = keys.load u16 +12
    keys.store u8 +13, 7
    %s2 = keys.load u16 +12
    %w = keys.load u32 +48
    %wide = add %w, %p2
    keys.store u16 +2, %wide
    %t = keys.load u16 +2
    %sum = add %p3, %n2
    %sum2 = add %s1, %s2
    %sum3 = add %sum, %sum2
    keys.store u32 +16, %sum3
    keys.store u16 +14, %t
    br eq %w, 0, left, right
left:
    %l = keys.load u32 +48
    keys.store u8 +6, %l
    jump join
right:
    keys.store u32 +48, 5
    jump join
join:
    %j = keys.load u32 +48
    %k = keys.load u16 +0
    keys.store u8 +7, %j
    keys.store u8 +8, %k
    ret 0
fail:
    ret 2
""",
        """
entry:
    %n = keys.load u16 +0
    %b = copy %n
    check.packet [%b + 8], ok, fail
ok:
    %p1 = packet.load u16 [%b + 2]
    %p2 = copy %p1
    %p3 = packet.load u8 [%b + 2]
    %n2 = copy %n
    keys.store u16 +12, %p1
    %s1 = copy %p1
    keys.store u8 +13, 7
    %s2 = keys.load u16 +12
    %w = keys.load u32 +48
    %wide = add %w, %p2
    keys.store u16 +2, %wide
    %t = zext16 %wide
    %sum = add %p3, %n2
    %sum2 = add %s1, %s2
    %sum3 = add %sum, %sum2
    keys.store u32 +16, %sum3
    keys.store u16 +14, %t
    br eq %w, 0, left, right
left:
    %l = copy %w
    keys.store u8 +6, %l
    jump join
right:
    keys.store u32 +48, 5
    jump join
join:
    %j = keys.load u32 +48
    %k = copy %n
    keys.store u8 +7, %j
    keys.store u8 +8, %k
    ret 0
fail:
    ret 2
""",
    ),
    (
        "peephole: swaps cancel, masks and extensions vanish, powers of two shift",
        Peephole(),
        """
entry:
    %raw = keys.load u16 +12
    %h = bswap16 %raw
    %back = bswap16 %h
    keys.store u16 +14, %back
    %wide = keys.load u32 +48
    %h2 = bswap16 %wide
    %back2 = bswap16 %h2
    keys.store u16 +12, %back2
    %b = keys.load u8 +9
    %z = zext16 %b
    %m = mul %b, 8
    %m2 = mul 16, %b
    %k = and %raw, 65535
    %k2 = and %raw, 255
    %a0 = add %m, 0
    %x = add %m2, %k
    %y = add %x, %a0
    %y2 = add %y, %z
    %y3 = add %y2, %k2
    %e = zext32 %y3
    keys.store u16 +2, %e
    ret 0
""",
        """
entry:
    %raw = keys.load u16 +12
    %h = bswap16 %raw
    %back = copy %raw
    keys.store u16 +14, %back
    %wide = keys.load u32 +48
    %h2 = bswap16 %wide
    %back2 = zext16 %wide
    keys.store u16 +12, %wide
    %b = keys.load u8 +9
    %z = copy %b
    %m = shl %b, 3
    %m2 = shl %b, 4
    %k = copy %raw
    %k2 = and %raw, 255
    %a0 = copy %m
    %x = add %m2, %k
    %y = add %x, %a0
    %y2 = add %y, %z
    %y3 = add %y2, %k2
    %e = copy %y3
    keys.store u16 +2, %y3
    ret 0
""",
    ),
    (
        "peephole: a compare on a swapped value compares the raw value, if it is the swap's only reader",
        Peephole(),
        """
entry:
    %np = keys.load u16 +10
    %nph = bswap16 %np
    %c = setcond eq %nph, 2048
    keys.store u8 +6, %c
    %two = bswap16 %np
    keys.store u16 +4, %two
    br ne %two, 34525, v6, other
v6:
    %one = bswap16 %np
    br eq 34525, %one, yes, other
yes:
    ret 0
other:
    ret 2
""",
        """
entry:
    %np = keys.load u16 +10
    %nph = bswap16 %np
    %c = setcond eq %np, 8
    keys.store u8 +6, %c
    %two = bswap16 %np
    keys.store u16 +4, %two
    br ne %two, 34525, v6, other
v6:
    %one = bswap16 %np
    br eq %np, 56710, yes, other
yes:
    ret 0
other:
    ret 2
""",
    ),
    (
        "peephole: nothing moves a read of a local written again in between",
        Peephole(),
        """
entry:
    %x = keys.load u32 +48
    %k = bswap32 %x
    keys.store u32 +16, %k
    %z = zext16 %x
    %x = add %x, 1
    %back = bswap32 %k
    keys.store u32 +20, %back
    keys.store u16 +12, %z
    %s = bswap16 %x
    %x = add %x, 1
    br eq %s, 8, yes, no
yes:
    ret 0
no:
    ret 2
""",
        None,
    ),
    (
        "merge-checks: a dominated check of no more bytes on the same base goes",
        MergeChecks(),
        """
entry:
    %n = keys.load u16 +0
    %b = copy %n
    check.packet [%b + 20], ok1, drop
ok1:
    %x = packet.load u8 [%b + 0]
    check.packet [%b + 4], ok2, drop
ok2:
    %y = packet.load u32 [%b + 0]
    check.packet [%b + 24], ok3, drop
ok3:
    %z = packet.load u32 [%b + 20]
    check.packet [14 + 4], ok4, drop
ok4:
    %w = packet.load u16 [14 + 2]
    keys.store u8 +9, %x
    keys.store u32 +16, %y
    keys.store u32 +20, %z
    keys.store u16 +12, %w
    ret 0
drop:
    ret 2
""",
        """
entry:
    %n = keys.load u16 +0
    %b = copy %n
    check.packet [%b + 20], ok1, drop
ok1:
    %x = packet.load u8 [%b + 0]
    jump ok2
ok2:
    %y = packet.load u32 [%b + 0]
    check.packet [%b + 24], ok3, drop
ok3:
    %z = packet.load u32 [%b + 20]
    check.packet [14 + 4], ok4, drop
ok4:
    %w = packet.load u16 [14 + 2]
    keys.store u8 +9, %x
    keys.store u32 +16, %y
    keys.store u32 +20, %z
    keys.store u16 +12, %w
    ret 0
drop:
    ret 2
""",
    ),
    (
        "merge-checks: windows: a linear check implies a windowed one (its loads read directly), a windowed one another windowed one",
        MergeChecks(),
        """
entry:
    check.packet [14 + 20], ok1, drop
ok1:
    check.packet [14 + 8] window 2, ok2, drop
ok2:
    %x = packet.load u32 [14 + 4] window 2
    check.packet [34 + 20] window 3, ok3, drop
ok3:
    check.packet [34 + 4] window 4, ok4, drop
ok4:
    %y = packet.load u32 [34 + 0] window 4
    check.packet [34 + 2], ok5, drop
ok5:
    %z = packet.load u16 [34 + 0]
    keys.store u32 +16, %x
    keys.store u32 +20, %y
    keys.store u16 +12, %z
    ret 0
drop:
    ret 2
""",
        """
entry:
    check.packet [14 + 20], ok1, drop
ok1:
    jump ok2
ok2:
    %x = packet.load u32 [14 + 4]
    check.packet [34 + 20] window 3, ok3, drop
ok3:
    jump ok4
ok4:
    %y = packet.load u32 [34 + 0] window 3
    check.packet [34 + 2], ok5, drop
ok5:
    %z = packet.load u16 [34 + 0]
    keys.store u32 +16, %x
    keys.store u32 +20, %y
    keys.store u16 +12, %z
    ret 0
drop:
    ret 2
""",
    ),
    (
        "merge-checks: a check on the fail path or on a merge is kept",
        MergeChecks(),
        """
entry:
    check.packet [14 + 20], ok, retry
ok:
    %f = keys.load u32 +48
    br eq %f, 0, join, join2
join2:
    jump join
retry:
    check.packet [14 + 4], join, drop
join:
    check.packet [14 + 4], ok2, drop
ok2:
    %x = packet.load u8 [14 + 0]
    keys.store u8 +9, %x
    ret 0
drop:
    ret 2
""",
        None,
    ),
    (
        "dead-code: a write read only on other paths goes (liveness, not a count of readers)",
        DeadCode(),
        """
entry:
    %r = copy 1
    %v = keys.load u16 +0
    br eq %v, 0, a, b
a:
    %r = copy 2
    ret 0
b:
    keys.store u8 +9, %r
    ret 2
""",
        """
entry:
    %r = copy 1
    %v = keys.load u16 +0
    br eq %v, 0, a, b
a:
    ret 0
b:
    keys.store u8 +9, %r
    ret 2
""",
    ),
    (
        "thread-jumps: a constant verdict skips the test after the join",
        ThreadJumps(),
        """
entry:
    %v = keys.load u16 +0
    br eq %v, 0, drop, ok
drop:
    %res = copy 2
    jump join
ok:
    %res = copy 1
    jump join
join:
    %verdict = copy %res
    br ne %verdict, 1, out, more
out:
    ret 2
more:
    ret 0
""",
        """
entry:
    %v = keys.load u16 +0
    br eq %v, 0, drop, ok
drop:
    %res = copy 2
    %verdict = copy %res
    jump out
ok:
    %res = copy 1
    %verdict = copy %res
    jump more
join:
    %verdict = copy %res
    br ne %verdict, 1, out, more
out:
    ret 2
more:
    ret 0
""",
    ),
    (
        "thread-jumps: only where the join's copies die: the path that reads %verdict after the branch keeps its jump",
        ThreadJumps(),
        """
entry:
    %v = keys.load u16 +0
    br eq %v, 0, drop, ok
drop:
    %res = copy 2
    jump join
ok:
    %res = copy 1
    jump join
join:
    %verdict = copy %res
    br ne %verdict, 1, out, more
out:
    keys.store u8 +9, %verdict
    ret 2
more:
    ret 0
""",
        """
entry:
    %v = keys.load u16 +0
    br eq %v, 0, drop, ok
drop:
    %res = copy 2
    jump join
ok:
    %res = copy 1
    %verdict = copy %res
    jump more
join:
    %verdict = copy %res
    br ne %verdict, 1, out, more
out:
    keys.store u8 +9, %verdict
    ret 2
more:
    ret 0
""",
    ),
    (
        "thread-jumps: a packet base keeps its single definition",
        ThreadJumps(),
        """
entry:
    %v = keys.load u16 +0
    br eq %v, 0, a, b
a:
    %o = copy 14
    jump join
b:
    %o = copy 18
    jump join
join:
    %hdr = copy %o
    br eq %hdr, 14, x, y
x:
    check.packet [%hdr + 1], ok, y
ok:
    ret 0
y:
    ret 2
""",
        None,
    ),
    (
        "dead-code: unread results go, keys stores stay",
        DeadCode(),
        """
entry:
    %a = keys.load u16 +0
    %b = add %a, 1
    %c = mul %b, 2
    %d = keys.load u32 +48
    %e = copy %d
    keys.store u32 +16, %e
    check.packet [14 + 1], ok, drop
ok:
    %unused = packet.load u8 [14 + 0]
    br eq %d, 0, x, drop
x:
    %f = copy 5
    ret 0
drop:
    ret 2
""",
        """
entry:
    %d = keys.load u32 +48
    %e = copy %d
    keys.store u32 +16, %e
    check.packet [14 + 1], ok, drop
ok:
    br eq %d, 0, x, drop
x:
    ret 0
drop:
    ret 2
""",
    ),
]


@pytest.mark.parametrize(("pass_", "before", "after"), [c[1:] for c in PASS_CASES], ids=[c[0] for c in PASS_CASES])
def test_pass(pass_: Pass, before: str, after: str | None) -> None:
    fn = parse_function(func(before))
    check_function(fn)
    changed = pass_.run(fn)
    expected = func(before) if after is None else func(after)
    assert text(fn) == expected
    assert changed is (after is not None)
    check_function(fn)  # a pass keeps the IR checked
    # Idempotent: nothing left to do on its own output, parsed again or not.
    assert pass_.run(fn) is False
    assert pass_.run(parse_function(text(fn))) is False
    assert text(fn) == expected


ALL_PASSES: list[Callable[[], Pass]] = [SimplifyCFG, ConstantFold, RedundantLoads, Peephole, MergeChecks, LikelyFirst, DeadCode]


@pytest.mark.parametrize("dissector", EVERY, ids=lambda d: d.name)
def test_every_pass_is_idempotent_on_real_ir(dissector: Dissector) -> None:
    fn = copy.deepcopy(dissector.lower().function)
    for _ in range(3):  # the pipeline's rounds, each pass seeing the others' output
        for make in ALL_PASSES:
            pass_ = make()
            pass_.run(fn)
            check_function(fn)
            assert pass_.run(fn) is False, f"{pass_.name} changed its own output:\n{text(fn)}"


def test_pipelines() -> None:
    assert [p.name for p in pipeline(0)] == ["simplify-cfg"]
    assert [p.name for p in pipeline(2)] == [
        "simplify-cfg", "constant-fold", "thread-jumps", "thread-verdicts", "redundant-loads", "common-values", "swap-compares", "peephole",
        "merge-checks", "fold-probes", "likely-first", "dead-code",
    ]
    assert [p.name for p in pipeline(2, thread_jumps=False)] == [
        "simplify-cfg", "constant-fold", "thread-verdicts", "redundant-loads", "common-values", "swap-compares", "peephole", "merge-checks", "fold-probes",
        "likely-first", "dead-code",
    ]


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_the_backend_says_whether_jumps_are_threaded(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The driver asks the backend (Backend.thread_jumps), not its name: LLVM
    # threads jumps itself, and the copies ThreadJumps adds cost it more.
    ran: list[str] = []
    real_run = ThreadJumps.run

    def run(self: ThreadJumps, fn: Function) -> bool:
        ran.append(fn.name)
        return real_run(self, fn)

    monkeypatch.setattr(ThreadJumps, "run", run)
    SAMPLE_DISSECTOR.compile(backend=name)
    assert bool(ran) is BACKENDS[name].thread_jumps
    assert BACKENDS["native"].thread_jumps and not BACKENDS["llvm"].thread_jumps


# -- the pass manager's contract with its passes -------------------------------------

CONTRACT_IR = """
entry:
    %a = keys.load u16 +0
    keys.store u16 +2, %a
    ret 0
"""


class _ZeroTheStore:
    """Rewrites `%a = keys.load` into `%a = copy 0` once, reporting `says`; then does and says nothing."""

    name = "zero-the-store"

    def __init__(self, says: bool) -> None:
        self.says = says
        self.done = False

    def run(self, fn: Function) -> bool:
        if self.done:
            return False
        self.done = True
        load = fn.entry.insns[0]
        fn.entry.insns[0] = Copy(Reg("a"), Imm(0), load.span)
        return self.says


class _SaysChanged:
    """Changes nothing and says it did."""

    name = "says-changed"

    def run(self, fn: Function) -> bool:
        return True


class _ReadsUndefined:
    """Makes the store read a register nothing writes, and says so."""

    name = "reads-undefined"

    def run(self, fn: Function) -> bool:
        store = fn.entry.insns[1]
        assert isinstance(store, StoreKeys)
        fn.entry.insns[1] = replace(store, src=Reg("ghost"))
        return True


def test_a_pass_that_hides_its_change_is_named() -> None:
    fn = parse_function(func(CONTRACT_IR))
    with pytest.raises(PassContractError, match="^[^\\n]*pass zero-the-store returned False but changed the function"):
        PassManager([_ZeroTheStore(says=False)], check_changes=True).run(fn)


def test_a_pass_that_claims_a_change_it_did_not_make_is_named() -> None:
    fn = parse_function(func(CONTRACT_IR))
    with pytest.raises(PassContractError, match="pass says-changed returned True but did not change the function"):
        PassManager([_SaysChanged()], check_changes=True).run(fn)


def test_an_honest_pass_passes_the_contract() -> None:
    fn = parse_function(func(CONTRACT_IR))
    PassManager([_ZeroTheStore(says=True), SimplifyCFG()], check_changes=True).run(fn)
    assert text(fn) == func(CONTRACT_IR.replace("keys.load u16 +0", "copy 0"))


def test_without_checking_a_hidden_change_goes_unnoticed() -> None:
    fn = parse_function(func(CONTRACT_IR))
    PassManager([_ZeroTheStore(says=False)], check_changes=False).run(fn)  # the check costs time: off by default
    assert text(fn) == func(CONTRACT_IR.replace("keys.load u16 +0", "copy 0"))


def test_the_tests_check_every_pass() -> None:
    # tests/conftest.py sets PYFD_CHECK_PASSES: the changed flags and the IR after every pass.
    assert PassManager([]).check_changes and PassManager([]).verify


def test_outside_the_tests_the_checker_runs_before_and_after_the_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    # A compile checks the frontend's IR and the passes' result; after each
    # pass only with PYFD_CHECK_PASSES (issue 17: the checks after each of a
    # dozen passes were a fifth of the compile).
    from pyfd.compiler import driver

    calls: list[int] = []
    monkeypatch.setattr(driver, "check_function", lambda fn: calls.append(len(fn.blocks)))
    monkeypatch.setattr("pyfd.compiler.passes.base.check_function", lambda fn: calls.append(len(fn.blocks)))
    lowered = semantics.control.lower()
    driver.compile_lowered(lowered, driver.Options(check_passes=False))
    assert len(calls) == 2
    driver.compile_lowered(lowered, driver.Options(check_passes=True))
    assert len(calls) > 4


def test_an_ir_check_failure_names_the_pass_before_it() -> None:
    fn = parse_function(func(CONTRACT_IR))
    with pytest.raises(IRCheckError, match="IR check failed after pass reads-undefined: .*ghost") as info:
        PassManager([_ReadsUndefined()], check_changes=False).run(fn)
    assert isinstance(info.value.__cause__, IRCheckError)  # the checker's own report, kept


# -- value widths: one rule table for the optimiser and the verifier model -------------

WIDTHS_IR = """
entry:
    %k = keys.load u16 +0
    %w = keys.load u32 +4
    %s = bswap16 %k
    %z = zext8 %w
    %x = sext8 %w
    %a = and %w, %k
    %o = or %k, %z
    %p = add %k, %k
    %m = mul %k, %z
    %d = udiv %k, %w
    %r = umod %w, %k
    %h = lshr %w, 20
    %l = shl %z, 4
    %c = copy %d
    %q = sub %k, 1
    %b = setcond eq %k, 0
    keys.store u16 +2, %s
    ret 0
"""
# register: (what the optimiser knows, what the verifier learns from the native backend's code)
WIDTHS = {
    "k": (16, 16), "w": (32, 32), "s": (16, 64), "z": (8, 8), "x": (64, 64), "a": (16, 16), "o": (16, 16),
    "p": (17, 17), "m": (24, 64), "d": (16, 64), "r": (32, 64), "h": (12, 12), "l": (12, 12), "c": (16, 64),
    "q": (64, 64), "b": (1, 64),
}


def test_value_widths_for_the_optimiser_and_for_the_verifier() -> None:
    from pyfd.compiler.passes.facts import Facts

    fn = parse_function(func(WIDTHS_IR))
    check_function(fn)
    facts = Facts(fn)
    got = {name: (facts.bits(Reg(name)), facts.bits(Reg(name), verifier=True)) for name in WIDTHS}
    assert got == WIDTHS


# -- packet windows ------------------------------------------------------------------------


def test_window_buffers_are_shared_only_when_never_needed_together() -> None:
    from pyfd.compiler.ir.windows import window_layout

    fn = parse_function(func("""
entry:
    check.packet [14 + 20] window 1, ok1, drop
ok1:
    %p = packet.load u8 [14 + 9] window 1
    check.packet [34 + 20] window 2, ok2, drop
ok2:
    %q = packet.load u16 [34 + 2] window 2
    keys.store u8 +9, %p
    check.packet [54 + 8] window 3, ok3, drop
ok3:
    %r = packet.load u16 [54 + 0] window 3
    keys.store u16 +12, %q
    keys.store u16 +14, %r
    ret 0
drop:
    ret 2
"""))
    layout = window_layout(fn)
    # 1 is live (through %p) where 2 is filled; 2 (through %q) where 3 is;
    # 1 is dead by then, so 3 reuses its bytes.
    assert layout.offsets[1] != layout.offsets[2] and layout.offsets[2] != layout.offsets[3]
    assert layout.offsets[3] == layout.offsets[1]
    assert layout.size == 48


def test_a_failed_copy_clobbers_its_buffer_so_it_conflicts_with_windows_live_on_the_fail_edge() -> None:
    from pyfd.compiler.ir.windows import window_layout

    fn = parse_function(func("""
entry:
    check.packet [14 + 8] window 1, ok1, drop
ok1:
    check.packet [22 + 0] window 2, more, fallback
more:
    ret 0
fallback:
    %p = packet.load u8 [14 + 0] window 1
    keys.store u8 +9, %p
    ret 0
drop:
    ret 2
"""))
    layout = window_layout(fn)
    assert layout.offsets[1] != layout.offsets[2]


def test_linear_only_drops_every_window() -> None:
    from pyfd.compiler.ir.windows import has_windows, linear_only

    fn = parse_function(func("""
entry:
    check.packet [14 + 4] window 1, ok, drop
ok:
    %x = packet.load u16 [14 + 0] window 1
    keys.store u16 +12, %x
    ret 0
drop:
    ret 2
"""))
    assert has_windows(fn)
    linear_only(fn)
    assert not has_windows(fn) and "window" not in print_function(fn, spans=False)
    check_function(fn)


# -- dominators ------------------------------------------------------------------------


def _dominators_by_definition(fn: Function) -> dict[str, set[str]]:
    """Every reachable block's dominators, from the definition: d dominates b iff b is unreachable once d is taken away."""

    def reachable(without: str | None) -> set[str]:
        blocks = fn.block_map()
        seen: set[str] = set()
        todo = [fn.entry.label] if fn.entry.label != without else []
        while todo:
            label = todo.pop()
            if label not in seen:
                seen.add(label)
                todo.extend(s for s in blocks[label].successors() if s != without)
        return seen

    everything = reachable(None)
    return {b: {d for d in everything if d == b or b not in reachable(d)} for b in everything}


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=40))
def test_dominators_are_the_definition(shape: list[tuple[int, int, int]]) -> None:
    # Random CFGs (returns, jumps, two-way branches, loops, unreachable
    # blocks): Lengauer-Tarjan's immediate dominators give exactly the
    # dominator sets of the definition, in reverse postorder.
    n = len(shape)
    span = semantics.control.lower().function.span
    blocks = []
    for i, (kind, a, b) in enumerate(shape):
        term: Terminator = Return(0, span)
        if kind == 1:
            term = Jump(f"b{a % n}", span)
        elif kind >= 2:  # mostly branches: joins and loops
            term = Branch(Cmp.EQ, Imm(0), Imm(1), f"b{a % n}", f"b{b % n}", span)
        blocks.append(Block(f"b{i}", [], term))
    fn = Function("f", "t.py", blocks, span)
    idom = dominators(fn)
    assert list(idom) == reverse_postorder(fn)
    chains = {label: set(dominator_chain(idom, label)) for label in idom}
    assert chains == _dominators_by_definition(fn)
