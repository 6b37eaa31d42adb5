"""The IR builder: an insertion point, blocks in the order they are opened, forward jumps by handle."""

from __future__ import annotations

import pytest
from pyfd.compiler.backends.native import _split_setcond
from pyfd.compiler.diagnostics import InternalCompilerError, Span
from pyfd.compiler.ir.builder import IRBuilder
from pyfd.compiler.ir.checker import check_function
from pyfd.compiler.ir.nodes import Branch, Cmp, Copy, Imm, Return
from pyfd.compiler.ir.parser import parse_function
from pyfd.compiler.ir.text import print_function

AT = Span("t.py", 1, 0, 1, 1)


def text(b: IRBuilder) -> str:
    fn = b.finish("f", "t.py", AT)
    check_function(fn)
    return print_function(fn, spans=False)


def test_fresh_names_share_one_counter() -> None:
    b = IRBuilder()
    assert [b.fresh().name, b.new_block("then"), b.fresh("hdr").name, b.new_block("else")] == ["t1", "then2", "hdr3", "else4"]


def test_an_if_without_else_joins_by_handles() -> None:
    """Two paths leave for a block placed later; landing it patches both jumps and opens it."""
    b = IRBuilder()
    x = b.fresh("x")
    b.position("entry")
    b.emit(Copy(x, Imm(7), AT))
    then, other = b.new_block("then"), b.new_block("else")
    b.terminate(Branch(Cmp.EQ, x, Imm(7), then, other, AT))
    ends = []
    for label, value in ((then, 1), (other, 2)):
        b.position(label)
        b.emit(Copy(x, Imm(value), AT))
        ends.append(b.jump_forward(AT))
    assert not b.reachable
    b.land(ends, b.new_block("endif"))
    assert b.reachable and b.label == "endif4"
    b.terminate(Return(0, AT))
    assert text(b) == (
        'func f "t.py" {\n'
        "entry:\n    %x1 = copy 7\n    br eq %x1, 7, then2, else3\n"
        "then2:\n    %x1 = copy 1\n    jump endif4\n"
        "else3:\n    %x1 = copy 2\n    jump endif4\n"
        "endif4:\n    ret 0\n"
        "}\n"
    )


def test_a_jump_that_never_lands_is_refused() -> None:
    b = IRBuilder()
    b.position("entry")
    b.jump_forward(AT)
    with pytest.raises(InternalCompilerError, match="the jump at the end of entry never got a target"):
        b.finish("f", "t.py", AT)


def test_a_jump_lands_once() -> None:
    b = IRBuilder()
    b.position("entry")
    handle = b.jump_forward(AT)
    b.land([handle], "next")
    b.terminate(Return(0, AT))
    with pytest.raises(InternalCompilerError, match="landed twice"):
        b.land([handle], "again")


def test_a_terminator_needs_an_open_block() -> None:
    b = IRBuilder()
    b.position("entry")
    b.terminate(Return(0, AT))
    with pytest.raises(InternalCompilerError, match="no block is open"):
        b.terminate(Return(2, AT))


def test_native_setcond_split_builds_a_diamond_per_setcond() -> None:
    """The native backend lowers SetCond with the builder: one branch and two copies each, in place."""
    fn = parse_function(
        'func f "t.py" {\n'
        "entry:\n    %a = copy 1\n    %b = setcond ult %a, 5\n    %c = setcond eq %b, 0\n    ret 0\n"
        "}\n"
    )
    split = _split_setcond(fn)
    check_function(split)
    assert print_function(split, spans=False) == (
        'func f "t.py" {\n'
        "entry:\n    %a = copy 1\n    br ult %a, 5, entry.set1, entry.clear1\n"
        "entry.set1:\n    %b = copy 1\n    jump entry.cont1\n"
        "entry.clear1:\n    %b = copy 0\n    jump entry.cont1\n"
        "entry.cont1:\n    br eq %b, 0, entry.set2, entry.clear2\n"
        "entry.set2:\n    %c = copy 1\n    jump entry.cont2\n"
        "entry.clear2:\n    %c = copy 0\n    jump entry.cont2\n"
        "entry.cont2:\n    ret 0\n"
        "}\n"
    )
