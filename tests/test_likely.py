"""LikelyFirst: TCP and UDP tested before a chain of other tests on keys.ip_proto, IR text in and out.

The walk it hoists may pass tests decided by the protocol, tests on other
values that lead to the same place either way, reads of the keys that are
dead where it ends, and constants set in locals; anything else (a store, a
read still live, a test whose sides part) keeps the chain as it is.
"""

from __future__ import annotations

import pytest
from test_samples import _sample

from pyfd.compiler.ir.checker import check_function
from pyfd.compiler.ir.nodes import Branch, Cmp, Function, Imm, LoadKeys
from pyfd.compiler.ir.parser import parse_function
from pyfd.compiler.ir.text import print_function
from pyfd.compiler.passes import LikelyFirst

FULL = _sample("full")


def func(body: str) -> str:
    return 'func f "t.py" {\n' + body.strip("\n") + "\n}\n"


def text(fn: Function) -> str:
    return print_function(fn, spans=False)


CHAIN = """
entry:
    %p = keys.load u8 +9
    br eq %p, 47, gre, next1
next1:
    %n = keys.load u16 +10
    br eq %n, 56710, v6, next2
v6:
    br eq %p, 0, hop, next2
next2:
    br eq %p, 4, ipip, next3
next3:
    %off = copy 0
    br eq %p, 51, ah, other
ah:
    %off = copy 4
    jump ports
other:
    br eq %p, 6, ports, next4
next4:
    br eq %p, 17, ports, drop
ports:
    %t = keys.load u16 +2
    %u = add %t, %off
    keys.store u16 +12, %u
    ret 0
gre:
    ret 129
hop:
    ret 2
ipip:
    keys.store u8 +8, 1
    ret 0
drop:
    ret 2
"""

HOISTED = """
entry:
    %p = keys.load u8 +9
    br eq %p, 6, entry.likely6, entry.test17
entry.test17:
    br eq %p, 17, entry.likely6, entry.likely
entry.likely6:
    %off = copy 0
    jump ports
entry.likely:
    br eq %p, 47, gre, next1
"""

CASES = [
    ("hoisted", CHAIN, HOISTED + CHAIN.split("    br eq %p, 47, gre, next1\n", 1)[1]),
    # n_proto read where the walk ends: skipping its load would leave it unset.
    ("read-live-at-the-end", CHAIN.replace("keys.store u16 +12, %u", "keys.store u16 +12, %n"), None),
    # A store is an effect the hoisted path would skip: the walk ends before it, here after one test.
    ("store-on-the-way", CHAIN.replace("    %n = keys.load u16 +10\n", "    %n = keys.load u16 +10\n    keys.store u8 +6, 1\n"), None),
    # Fewer than three tests to pass: not worth a test on every other path.
    ("short-chain", """
entry:
    %p = keys.load u8 +9
    br eq %p, 47, gre, other
other:
    br eq %p, 6, ports, drop
ports:
    ret 0
gre:
    ret 129
drop:
    ret 2
""", None),
]


@pytest.mark.parametrize(("before", "after"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_likely_first(before: str, after: str | None) -> None:
    fn = parse_function(func(before))
    check_function(fn)
    changed = LikelyFirst().run(fn)
    assert text(fn) == (func(before) if after is None else func(after))
    assert changed is (after is not None)
    check_function(fn)
    assert LikelyFirst().run(fn) is False  # nothing left on its own output
    assert LikelyFirst().run(parse_function(text(fn))) is False


def test_full_tests_tcp_first_at_its_dispatch() -> None:
    # samples/full.py dispatches on ip_proto through GRE, IPv6 extension
    # headers, IP-in-IP, AH ... before TCP; compiled, TCP is tested first.
    fn = FULL.compile().compilation.ir
    loads = {i.dst for i in fn.instructions() if isinstance(i, LoadKeys) and i.offset == 9 and i.size == 1}
    firsts = [b.term for b in fn.blocks if any(isinstance(i, LoadKeys) and i.dst in loads for i in b.insns)]
    assert firsts and all(isinstance(t, Branch) and t.cmp is Cmp.EQ and t.rhs in (Imm(6), Imm(17)) for t in firsts)
