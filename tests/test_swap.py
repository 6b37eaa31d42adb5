"""The hot-path passes, IR text in and out, then samples/full.py compiled with them.

SwapCompares turns tests of byte-swapped fields into tests of the raw bits
against swapped constants; ThreadVerdicts sends a constant helper result
straight to the return its tests lead to; CommonValues reuses a result
computed on every path; FoldProbes makes `pkt.has(x + n)` and the n-byte
header at x one check. The compiled full dissector must
keep agreeing with its Python run, in the interpreter and the kernel, on
frames whose swapped fields (ethertype, fragment bits, flow label, IPv6
fragment offset, GRE flags) take every value the rewritten tests tell apart.
"""

from __future__ import annotations

import copy

import pytest
from engines import COMPILED, load
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import GRE, Dot1Q, Ether
from test_samples import _sample

from pyfd.compiler.backends import BACKENDS
from pyfd.compiler.ir.checker import check_function
from pyfd.compiler.ir.nodes import Binary, BinaryOp, Branch, ByteSwap, CheckPacket, Cmp, Function, Jump, Return, StoreKeys, evaluate_bswap
from pyfd.compiler.ir.parser import parse_function
from pyfd.compiler.ir.text import print_function
from pyfd.compiler.passes import CommonValues, DeadCode, FoldProbes, SwapCompares, ThreadVerdicts
from pyfd.compiler.passes.base import Pass

FULL = _sample("full")


def func(body: str) -> str:
    return 'func f "t.py" {\n' + body.strip("\n") + "\n}\n"


def text(fn: Function) -> str:
    return print_function(fn, spans=False)


CASES: list[tuple[str, Pass, str, str | None]] = [
    (
        # keys.n_proto tested against several types: every test takes the raw field.
        "ethertype-chain",
        SwapCompares(),
        """
entry:
    %a = keys.load u16 +10
    %b = bswap16 %a
    br eq %b, 2048, ip, next
next:
    br ne %b, 34525, other, ip
ip:
    ret 0
other:
    ret 2
""",
        """
entry:
    %a = keys.load u16 +10
    %b = copy %a
    br eq %b, 8, ip, next
next:
    br ne %b, 56710, other, ip
ip:
    ret 0
other:
    ret 2
""",
    ),
    (
        # ip.frag_off & (IP_MF | IP_OFFSET): the mask moves to the raw bytes.
        "masked",
        SwapCompares(),
        """
entry:
    %a = keys.load u16 +6
    %b = bswap16 %a
    %c = and %b, 16383
    br ne %c, 0, frag, whole
frag:
    ret 0
whole:
    ret 2
""",
        """
entry:
    %a = keys.load u16 +6
    %b = copy %a
    %c = and %a, 65343
    br set %a, 65343, frag, whole
frag:
    ret 0
whole:
    ret 2
""",
    ),
    (
        # The flow label: swapped, masked, swapped back to store. One mask on
        # the raw word, sign-extended from 32 bits to be an immediate.
        "swapped-back",
        SwapCompares(),
        """
entry:
    %a = keys.load u32 +52
    %b = bswap32 %a
    %c = and %b, 1048575
    %d = bswap32 %c
    keys.store u32 +52, %d
    ret 0
""",
        """
entry:
    %a = keys.load u32 +52
    %b = copy %a
    %c = and %a, -61696
    %d = and %a, -61696
    keys.store u32 +52, %d
    ret 0
""",
    ),
    (
        # A bit field read as (x >> k) & 1 and tested: one mask, no shift.
        "flag-bit",
        SwapCompares(),
        """
entry:
    %a = keys.load u8 +9
    %b = lshr %a, 6
    %c = and %b, 1
    br ne %c, 0, yes, no
yes:
    ret 0
no:
    ret 2
""",
        """
entry:
    %a = keys.load u8 +9
    %b = and %a, -64
    %c = and %a, 64
    br set %a, 64, yes, no
yes:
    ret 0
no:
    ret 2
""",
    ),
    (
        # The IPv6 fragment offset: (swap(x) >> 3) == 0 is a mask of the raw bytes.
        "shifted-swap",
        SwapCompares(),
        """
entry:
    %a = keys.load u16 +2
    %b = bswap16 %a
    %c = lshr %b, 3
    br eq %c, 0, first, later
first:
    ret 0
later:
    ret 2
""",
        """
entry:
    %a = keys.load u16 +2
    %b = copy %a
    %c = and %a, 63743
    br set %a, 63743, later, first
first:
    ret 0
later:
    ret 2
""",
    ),
    (
        # A mask read only by its test against 0 is one JSET; a mask read elsewhere too stays.
        "bit-test",
        SwapCompares(),
        """
entry:
    %a = keys.load u32 +48
    %b = and %a, 4
    br eq %b, 0, go, stop
go:
    %c = and %a, 1
    keys.store u32 +52, %c
    br ne %c, 0, stop, stop
stop:
    ret 0
""",
        """
entry:
    %a = keys.load u32 +48
    %b = and %a, 4
    br set %a, 4, stop, go
go:
    %c = and %a, 1
    keys.store u32 +52, %c
    br ne %c, 0, stop, stop
stop:
    ret 0
""",
    ),
    (
        # One mask that several tests read (CommonValues shares `flags & 1`
        # between two conditions): every test is a JSET, and the mask dies.
        "bit-tests-sharing-a-mask",
        SwapCompares(),
        """
entry:
    %a = keys.load u32 +48
    %b = and %a, 1
    br ne %b, 0, one, two
one:
    br eq %b, 0, stop, two
two:
    ret 2
stop:
    ret 0
""",
        """
entry:
    %a = keys.load u32 +48
    %b = and %a, 1
    br set %a, 1, one, two
one:
    br set %a, 1, two, stop
two:
    ret 2
stop:
    ret 0
""",
    ),
    (
        # An ordered compare needs the host-order value: nothing changes.
        "ordered-compare-kept",
        SwapCompares(),
        """
entry:
    %a = keys.load u16 +10
    %b = bswap16 %a
    br eq %b, 2048, ip, next
next:
    br ult %b, 1536, ip, other
ip:
    ret 0
other:
    ret 2
""",
        None,
    ),
    (
        # A swapped value used as a packet offset stays swapped (and the clamp
        # stays, the verifier knowing nothing of it): no half rewrite.
        "offset-kept",
        SwapCompares(),
        """
entry:
    %a = keys.load u16 +10
    %b = bswap16 %a
    br eq %b, 2048, read, out
read:
    check.packet [%b + 1], ok, out
ok:
    %c = packet.load u8 [%b + 0]
    keys.store u8 +9, %c
    ret 0
out:
    ret 2
""",
        None,
    ),
    (
        # A constant the swapped field cannot hold: left for what folds it.
        "out-of-range-kept",
        SwapCompares(),
        """
entry:
    %a = keys.load u16 +10
    %b = bswap16 %a
    br eq %b, 65536, yes, no
yes:
    ret 0
no:
    ret 2
""",
        None,
    ),
    (
        # A helper's `return BPF_OK` through the caller's tests, to the return.
        "verdict-to-return",
        ThreadVerdicts(),
        """
entry:
    %r = copy 0
    jump join
join:
    %v = copy %r
    br ne %v, 1, notnext, loop
notnext:
    br ne %v, 3, done, loop
done:
    br eq %v, 0, ok, drop
ok:
    ret 0
drop:
    ret 2
loop:
    %v = copy 1
    ret 129
""",
        """
entry:
    %r = copy 0
    jump ok
join:
    %v = copy %r
    br ne %v, 1, notnext, loop
notnext:
    br ne %v, 3, done, loop
done:
    br eq %v, 0, ok, drop
ok:
    ret 0
drop:
    ret 2
loop:
    %v = copy 1
    ret 129
""",
    ),
    (
        # Where the chain's copies are still read, the path would need its own: not threaded.
        "verdict-still-read",
        ThreadVerdicts(),
        """
entry:
    %r = copy 0
    jump join
join:
    %v = copy %r
    br ne %v, 1, notnext, out
notnext:
    br ne %v, 3, out, out
out:
    keys.store u8 +9, %v
    ret 0
""",
        None,
    ),
    (
        # One decided test is ThreadJumps' step, which also takes the copies along: left to it.
        "verdict-one-step",
        ThreadVerdicts(),
        """
entry:
    %r = copy 0
    jump join
join:
    %v = copy %r
    br eq %v, 0, ok, drop
ok:
    ret 0
drop:
    ret 2
""",
        None,
    ),
    (
        # `ip.ihl` masked for the test and again for the offset: the second is the first's result.
        "common-mask",
        CommonValues(),
        """
entry:
    %a = keys.load u8 +9
    %b = and %a, 15
    br ult %b, 5, small, big
small:
    ret 2
big:
    %c = and %a, 15
    %d = shl %c, 2
    keys.store u16 +2, %d
    ret 0
""",
        """
entry:
    %a = keys.load u8 +9
    %b = and %a, 15
    br ult %b, 5, small, big
small:
    ret 2
big:
    %c = copy %b
    %d = shl %c, 2
    keys.store u16 +2, %d
    ret 0
""",
    ),
    (
        # A local operand written in between: the sum is another value.
        "common-after-a-write-kept",
        CommonValues(),
        """
entry:
    %o = copy 0
    %a = keys.load u16 +2
    %b = add %a, %o
    keys.store u16 +2, %b
    %o = copy 4
    %c = add %a, %o
    keys.store u16 +0, %c
    ret 0
""",
        None,
    ),
    (
        # pkt.has(thoff + off + 4), then the 4-byte header at thoff + off: one check, taking the probe's failure.
        "probe-and-header",
        FoldProbes(),
        """
entry:
    %o = copy 0
    %t = keys.load u16 +2
    br eq %t, 0, four, sum
four:
    %o = copy 4
    jump sum
sum:
    %a = add %t, %o
    %e = add %a, 4
    check.packet [%e + 0] window 1, probed, short
probed:
    %h = copy %a
    check.packet [%h + 4] window 2, inside, drop
inside:
    %p = packet.load u16 [%h + 0] window 2
    keys.store u16 +12, %p
    ret 0
short:
    ret 0
drop:
    ret 2
""",
        """
entry:
    %o = copy 0
    %t = keys.load u16 +2
    br eq %t, 0, four, sum
four:
    %o = copy 4
    jump sum
sum:
    %a = add %t, %o
    %e = add %a, 4
    jump probed
probed:
    %h = copy %a
    check.packet [%h + 4] window 2, inside, short
inside:
    %p = packet.load u16 [%h + 0] window 2
    keys.store u16 +12, %p
    ret 0
short:
    ret 0
drop:
    ret 2
""",
    ),
    (
        # The header ends past the probe: its check can fail after the probe passed.
        "probe-short-of-header-kept",
        FoldProbes(),
        """
entry:
    %t = keys.load u16 +2
    %e = add %t, 4
    check.packet [%e + 0] window 1, probed, short
probed:
    check.packet [%t + 8] window 2, inside, drop
inside:
    %p = packet.load u16 [%t + 0] window 2
    keys.store u16 +12, %p
    ret 0
short:
    ret 0
drop:
    ret 2
""",
        None,
    ),
    (
        # A base of unknown width could wrap around 64 bits: `t + 4` small, `t` past the clamp.
        "probe-of-unbounded-base-kept",
        FoldProbes(),
        """
entry:
    %t = keys.load u64 +16
    %e = add %t, 4
    check.packet [%e + 0] window 1, probed, short
probed:
    check.packet [%t + 4] window 2, inside, drop
inside:
    %p = packet.load u16 [%t + 0] window 2
    keys.store u16 +12, %p
    ret 0
short:
    ret 0
drop:
    ret 2
""",
        None,
    ),
]


@pytest.mark.parametrize(("pass_", "before", "after"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pass(pass_: Pass, before: str, after: str | None) -> None:
    fn = parse_function(func(before))
    check_function(fn)
    changed = pass_.run(fn)
    expected = func(before) if after is None else func(after)
    assert text(fn) == expected
    assert changed is (after is not None)
    check_function(fn)
    assert pass_.run(fn) is False  # nothing left on its own output
    assert pass_.run(parse_function(text(fn))) is False


def test_swapped_constants() -> None:
    assert [evaluate_bswap(v, 16) for v in (0x0800, 0x86DD, 0x3FFF)] == [0x0008, 0xDD86, 0xFF3F]
    assert evaluate_bswap(0x000FFFFF, 32) == 0xFFFF0F00


def _ir(backend: str) -> Function:
    return FULL.compile(backend=backend).compilation.ir


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_has_no_byte_swap_left(backend: str) -> None:
    """n_proto, frag_off, the flow label and the IPv6 fragment offset are all tested raw."""
    fn = _ir(backend)
    assert [i for i in fn.instructions() if isinstance(i, ByteSwap)] == []
    masks = {i.rhs.value for i in fn.instructions() if isinstance(i, Binary) and i.op is BinaryOp.AND and hasattr(i.rhs, "value")}
    masks |= {t.rhs.value for b in fn.blocks if isinstance(t := b.term, Branch) and t.cmp is Cmp.SET and hasattr(t.rhs, "value")}
    assert {0xFF3F, 0xFF1F, 0xF8FF, 0xFFFFFFFFFFFF0F00} <= masks
    compared = {t.rhs.value for b in fn.blocks if isinstance(t := b.term, Branch) and hasattr(t.rhs, "value")}
    assert {0x0008, 0xDD86, 0x0081, 0xA888} <= compared  # ETH_P_IP, ETH_P_IPV6, 802.1Q, 802.1ad, swapped


def test_full_returns_ok_without_testing_the_verdict() -> None:
    """After the ports, `return BPF_OK` is a return: no copy of the verdict and no test of it on the way."""
    for backend in BACKENDS:
        fn = _ir(backend)
        blocks = fn.block_map()
        ports_done = [b for b in fn.blocks if any(isinstance(i, StoreKeys) and i.offset == 14 for i in b.insns)]
        assert len(ports_done) == 2  # in a pass, and after the last pass
        for block in ports_done:
            while isinstance(block.term, Jump):
                block = blocks[block.term.target]
                assert not block.insns
            assert block.term == Return(0, block.term.span), backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_checks_the_ports_word_once(backend: str) -> None:
    """`pkt.has(thoff + offset + 4)` and the Ports header after it are one check of 4 bytes."""
    fn = _ir(backend)
    blocks = fn.block_map()
    checks = [b.term for b in fn.blocks if isinstance(b.term, CheckPacket)]
    assert [c for c in checks if c.span.source_line().strip() == "if pkt.has(keys.thoff + offset + 4):"] == []
    ports = [c for c in checks if "pkt.header(Ports" in c.span.source_line()]
    assert len(ports) == 2 and all(c.size == 4 for c in ports)  # in a pass, and after the last one
    for check in ports:  # failing, it is the probe that failed: no ports, BPF_OK (not the header's BPF_DROP)
        fail = blocks[check.fail]
        while isinstance(fail.term, Jump) and not fail.insns:
            fail = blocks[fail.term.target]
        assert fail.term == Return(0, fail.term.span)


def test_passes_are_idempotent_on_full() -> None:
    fn = copy.deepcopy(FULL.lower().function)
    for make in (CommonValues, SwapCompares, ThreadVerdicts, FoldProbes, DeadCode):
        p = make()
        p.run(fn)
        check_function(fn)
        assert p.run(fn) is False


def _frames() -> list[tuple[str, bytes, int]]:
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    out: list[tuple[str, bytes, int]] = []
    for flags, frag in [(0, 0), ("MF", 0), ("MF", 1), (0, 1), ("DF", 0), ("DF", 8191), ("MF+DF", 0), ("evil", 0)]:
        for parse in (0, 1):
            pkt = e / IP(src="10.0.0.1", dst="10.0.0.2", flags=flags, frag=frag) / UDP(sport=1, dport=2)
            out.append((f"ipv4-{flags}-{frag}-{parse}", bytes(pkt), parse))
    for label in (0, 1, 0x80000, 0xFFFFF):
        for stop in (0, 2):
            pkt = e / IPv6(src="fe80::1", dst="fe80::2", fl=label) / TCP(sport=3, dport=4)
            out.append((f"ipv6-label-{label:#x}-{stop}", bytes(pkt), stop))
    for offset in (0, 1, 8191):
        for m in (0, 1):
            pkt = e / IPv6(src="fe80::1", dst="fe80::2") / IPv6ExtHdrFragment(offset=offset, m=m) / UDP(sport=5, dport=6)
            out.append((f"ipv6-frag-{offset}-{m}", bytes(pkt), 1))
    gres = [GRE(), GRE(key_present=1, key=7), GRE(chksum_present=1), GRE(routing_present=1), GRE(seqnum_present=1, sequence_number=9)]
    for gre in gres:
        pkt = e / IP(src="10.0.0.1", dst="10.0.0.2") / gre / IP(src="10.1.0.1", dst="10.1.0.2") / TCP(sport=7, dport=8)
        out.append((f"gre-{gre.summary()}-{len(out)}", bytes(pkt), 0))
    for ethertype in (0x0800, 0x86DD, 0x8100, 0x88A8, 0x8847, 0x0806, 0x8863, 0x88F7, 0x1234, 0x0008):
        out.append((f"type-{ethertype:#06x}", bytes(e / Dot1Q(vlan=5, type=ethertype) / (b"\x45" + bytes(60))), 0))
    return out


FRAMES = _frames()


@pytest.mark.parametrize("engine", COMPILED)
@pytest.mark.parametrize("backend", BACKENDS)
def test_full_agrees_with_python_on_swapped_fields(backend: str, engine: str) -> None:
    """Every frame gives the Python run's return code and keys, compiled (the kernel verifies it first)."""
    with load(FULL.compile(backend=backend), engine) as program:
        for name, frame, flags in FRAMES:
            got = program.run(frame, flags=flags)
            want = FULL.run_python(frame, flags=flags)
            assert (got.retval, got.keys.raw) == (want.retval, want.keys.raw), f"{name}: {got.keys.diff(want.keys)}"
