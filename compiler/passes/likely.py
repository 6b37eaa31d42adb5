"""LikelyFirst: test the transport protocols most frames carry before a long chain of other tests.

A dissector dispatches on `keys.ip_proto` with a chain of `if` tests, one
protocol after another (and on `keys.n_proto` in between); TCP and UDP, the
protocols of most frames, often come last, after every tunnel and extension
header. The pass follows the chain from the block that loads `ip_proto`, with
the register assumed to hold the protocol: a test on it is decided; a test on
anything else must lead, on both sides, to the same block with the same
effects; a block passed on the way may only read keys (whatever it reads is
dead where the walk ends) and set locals to constants. Where that walk passes
at least `_MIN_TESTS` tests, one test for the protocol goes first, to a block
that sets those locals and continues where the walk ended. No other path
changes but for that one test each (at most two: TCP, then UDP).
"""

from __future__ import annotations

from ..ir.nodes import Block, Branch, Cmp, Copy, Function, Imm, Instruction, Jump, LoadKeys, Reg
from .dce import liveness
from .facts import Facts

_IP_PROTO = 9  # offset of bpf_flow_keys.ip_proto
_LIKELY = (6, 17)  # IPPROTO_TCP, IPPROTO_UDP, in the order tested
_MIN_TESTS = 3  # a walk passing fewer tests gains less than the new test costs other paths
_BUDGET = 64  # blocks one walk may visit: the pass stays linear in the program

Walk = tuple[str, tuple[Copy, ...], int, frozenset[Reg]]  # where it ends, the locals set, tests passed, registers skipped


class LikelyFirst:
    """Hoist a test for TCP and UDP to the head of a chain of tests on `keys.ip_proto`."""

    name = "likely-first"

    def run(self, fn: Function) -> bool:
        facts = Facts(fn)
        blocks = fn.block_map()
        heads = [
            b for b in fn.blocks
            if isinstance(b.term, Branch) and isinstance(b.term.lhs, Reg) and isinstance(b.term.rhs, Imm)
            and b.term.cmp in (Cmp.EQ, Cmp.NE) and _is_ip_proto(facts.single(b.term.lhs)) and facts.single(b.term.lhs) in b.insns
            and b.term.rhs.value not in _LIKELY  # already first (here, or in the source)
        ]
        if not heads:
            return False
        live_in = liveness(fn)[0]
        changed = False
        for head in heads:
            term = head.term
            assert isinstance(term, Branch) and isinstance(term.lhs, Reg)
            reg = term.lhs
            hoisted: list[tuple[int, str, tuple[Copy, ...]]] = []
            for value in _LIKELY:
                walk = _Walker(blocks, reg, value, facts).term(head.term)
                if walk is None:
                    continue
                dest, copies, tests, skipped = walk
                if tests < _MIN_TESTS or skipped & live_in[dest] or any(c.dst in facts.defs for c in copies):
                    continue
                hoisted.append((value, dest, copies))
            if not hoisted:
                continue
            new: list[Block] = []
            tail = Block(f"{head.label}.likely", [], term)
            new.append(tail)
            rest = tail.label
            arms: dict[tuple[str, tuple[Copy, ...]], str] = {}  # protocols that continue alike share one block
            for value, dest, copies in hoisted:
                if (dest, copies) not in arms:
                    arms[dest, copies] = f"{head.label}.likely{value}"
                    new.append(Block(arms[dest, copies], list(copies), Jump(dest, term.span)))
            for value, dest, copies in reversed(hoisted):
                test = Block(f"{head.label}.test{value}", [], Branch(Cmp.EQ, reg, Imm(value), arms[dest, copies], rest, term.span))
                new.append(test)
                rest = test.label
            first = new.pop()  # the first test goes into the head itself
            assert isinstance(first.term, Branch)
            head.term = first.term
            at = fn.blocks.index(head) + 1
            fn.blocks[at:at] = new[::-1]
            changed = True
        return changed


def _is_ip_proto(insn: Instruction | None) -> bool:
    return isinstance(insn, LoadKeys) and insn.offset == _IP_PROTO and insn.size == 1


class _Walker:
    """Where control goes from a terminator when `reg == value`, passing only blocks of key reads and constant copies."""

    def __init__(self, blocks: dict[str, Block], reg: Reg, value: int, facts: Facts) -> None:
        self.blocks, self.reg, self.value, self.facts = blocks, reg, value, facts
        self.memo: dict[str, Walk | None] = {}
        self.budget = _BUDGET

    def enter(self, label: str) -> Walk:
        """The walk entering `label`: through it if it can be passed, else ending there."""
        if label in self.memo:
            return self.memo[label] or (label, (), 0, frozenset())
        self.memo[label] = None  # a cycle ends the walk here
        self.budget -= 1
        block = self.blocks[label]
        copies: list[Copy] = []
        skipped: set[Reg] = set()
        passable = self.budget > 0
        for insn in block.insns if passable else ():
            if isinstance(insn, Copy) and isinstance(insn.src, Imm):
                copies.append(insn)
            elif isinstance(insn, LoadKeys):
                skipped.add(insn.dst)
            else:
                passable = False
                break
        after = self.term(block.term) if passable else None
        walk: Walk = (label, (), 0, frozenset())
        if after is not None:
            dest, more, tests, also = after
            walk = (dest, (*copies, *more), tests, frozenset(skipped | also))
        self.memo[label] = walk
        return walk

    def term(self, term: object) -> Walk | None:
        """The walk on from a terminator, or None where it cannot go on."""
        if isinstance(term, Jump):
            return self.enter(term.target)
        if not isinstance(term, Branch):
            return None
        if term.lhs == self.reg and isinstance(term.rhs, Imm) and term.cmp in (Cmp.EQ, Cmp.NE):
            taken = (self.value == term.rhs.value) == (term.cmp is Cmp.EQ)
            dest, copies, tests, skipped = self.enter(term.then if taken else term.otherwise)
            return dest, copies, tests + 1, skipped
        then, otherwise = self.enter(term.then), self.enter(term.otherwise)
        if then[0] != otherwise[0] or then[1] != otherwise[1] or then[0] in (term.then, term.otherwise):
            return None
        return then[0], then[1], max(then[2], otherwise[2]) + 1, then[3] | otherwise[3]
