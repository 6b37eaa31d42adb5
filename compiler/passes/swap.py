"""SwapCompares: test network-order fields against pre-swapped constants instead of swapping the field.

The frontend converts every network-order field to host order on read, so
`keys.n_proto == ETH_P_IP` starts as load, swap, compare, and
`ip.frag_off & IP_OFFSET` as load, swap, mask, compare. A byte swap is a
permutation of bits, so it commutes with masks and (in)equality: `swap(x) ==
C` is `x == swap(C)`, `swap(x) & M` is `swap(x & swap(M))`. A right shift
whose result is only masked and compared is a permutation of the bits it
keeps too: `(x >> k) & 1` is non-zero exactly when `x & (1 << k)` is.

The pass takes a swap or a constant shift whose result is read only by such
operations (masks with a constant, further constant shifts, `==`/`!=` with a
constant, `set` tests, and a swap back), rewrites every one of them to work
on the unswapped bits with transformed constants, and lets the swap die. It
rewrites a tree only when every reader can follow, so it never leaves both
the raw and the swapped value live. The rewritten registers hold masks of the
raw load, which the verifier's range tracking follows (kernel/bpf/verifier.c:
it marks a swapped value unknown, see facts.WIDTH_RULES); no rewritten value
reaches a packet offset, whose bound the native backend's clamp relies on.

Then a mask read only by tests against 0 becomes those tests, `set` (BPF's
JSET): one jump where the mask took a move, an `and` and a jump.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..diagnostics import Span
from ..ir.nodes import (
    MASK64, Binary, BinaryOp, Block, Branch, ByteSwap, Cmp, Copy, Function, Imm, Instruction, Operand, Reg, SetCond,
    Terminator, evaluate_bswap, used_regs,
)
from .base import rounds_to_fixed_point
from .facts import Facts


@dataclass(frozen=True)
class _Image:
    """How a register of the tree maps to the rewritten one: rewritten = base & mask = bits(original).

    `bits` moves a constant of the original register's domain (values below
    `1 << width`) to the rewritten one: a bit permutation, so it commutes
    with `&` and keeps (in)equality. `swapped` is the swap width when `bits`
    is exactly that byte swap (then a swap back of the register is `base & mask`).
    """

    base: Operand
    mask: int | None
    bits: Callable[[int], int]
    width: int
    swapped: int | None

    def of(self, value: int) -> int | None:
        """`value` moved to the rewritten register, None where the original cannot hold it."""
        return self.bits(value) if value < (1 << self.width) else None

    def masked(self, mask: int) -> int:
        """The mask on `base` that `original & mask` becomes."""
        moved = self.bits(mask & ((1 << self.width) - 1))
        return moved if self.mask is None else moved & self.mask


class SwapCompares:
    """Rewrite trees of masks and compares on a byte-swapped (or shifted) value to work on the raw bits."""

    name = "swap-compares"

    def run(self, fn: Function) -> bool:
        # To a fixed point: a pass run on its own output must find nothing left to do.
        return rounds_to_fixed_point(self._round, fn)

    def _round(self, fn: Function) -> bool:
        facts = Facts(fn)
        readers: dict[Reg, list[Instruction | Terminator]] = {}
        for block in fn.blocks:
            for node in [*block.insns, block.term]:
                for reg in set(used_regs(node)):
                    readers.setdefault(reg, []).append(node)
        # Every tree at once; a tree that shares a register with one taken
        # already (one's base rewritten by the other) waits for the next round.
        plans: list[_Plan] = []
        rewritten: set[Reg] = set()
        read: set[Operand] = set()
        for block in fn.blocks:
            for insn in block.insns:
                root = self._root(insn, facts)
                if root is None:
                    continue
                assert isinstance(insn, (ByteSwap, Binary))  # what _root takes
                if insn.dst in rewritten:
                    continue
                plan = _Plan(facts, readers)
                if not plan.visit(insn.dst, root) or not plan.worth_it:
                    continue
                mine, bases = set(plan.images), {i.base for i in plan.images.values()}
                if mine & (rewritten | read) or bases & rewritten:
                    continue
                plans.append(plan)
                rewritten |= mine
                read |= bases
        if plans:
            insns = {k: v for plan in plans for k, v in plan.insns.items()}
            terms = {k: v for plan in plans for k, v in plan.terms.items()}
            for block in fn.blocks:
                block.insns = [insns.get(id(insn), insn) for insn in block.insns]
                block.term = terms.get(id(block.term), block.term)
            return True
        return self._bit_tests(fn, facts)

    @staticmethod
    def _bit_tests(fn: Function, facts: Facts) -> bool:
        """`(x & M) != 0` as the one jump BPF has for it (JSET), where nothing but such tests reads the mask."""
        tests: dict[Reg, list[Block]] = {}
        for block in fn.blocks:
            term = block.term
            if isinstance(term, Branch) and term.cmp in (Cmp.EQ, Cmp.NE) and term.rhs == Imm(0) and isinstance(term.lhs, Reg):
                tests.setdefault(term.lhs, []).append(block)
        changed = False
        for reg, blocks in tests.items():
            masked = facts.single(reg)
            # Every reader a test (CommonValues may have left one mask for
            # several), so each becomes a JSET and the mask dies.
            if not isinstance(masked, Binary) or masked.op is not BinaryOp.AND or facts.uses[reg] != len(blocks):
                continue
            value, mask = (masked.lhs, masked.rhs) if isinstance(masked.rhs, Imm) else (masked.rhs, masked.lhs)
            if not isinstance(mask, Imm) or isinstance(value, Imm) or not _stable(value, facts):
                continue
            for block in blocks:
                term = block.term
                assert isinstance(term, Branch)
                then, otherwise = (term.then, term.otherwise) if term.cmp is Cmp.NE else (term.otherwise, term.then)
                block.term = Branch(Cmp.SET, value, mask, then, otherwise, term.span)
            changed = True
        return changed

    @staticmethod
    def _root(insn: Instruction, facts: Facts) -> _Image | None:
        """The image of a swap, or of a constant right shift of an untransformed value."""
        match insn:
            case ByteSwap(bits, dst, src) if dst in facts.defs and _stable(src, facts) and bits < 64:
                mask = None if facts.bits(src) <= bits else (1 << bits) - 1
                return _Image(src, mask, _swapper(bits), bits, bits)
            case Binary(BinaryOp.LSHR, dst, src, Imm(value=k)) if dst in facts.defs and _stable(src, facts) and 0 < k < 64:
                width = facts.bits(src)
                return _Image(src, MASK64 & ~((1 << k) - 1), _shifter(k, _identity), max(width - k, 1), None)
        return None


def _identity(value: int) -> int:
    return value


def _swapper(bits: int) -> Callable[[int], int]:
    """The constant map of a `bits`-wide byte swap."""
    return lambda value: evaluate_bswap(value, bits)


def _shifter(k: int, outer: Callable[[int], int]) -> Callable[[int], int]:
    """The constant map of a right shift by `k` under `outer`: a value's bits move back up by `k`."""
    return lambda value: outer((value << k) & MASK64)


def _stable(op: Operand, facts: Facts) -> bool:
    """True if `op` holds the same value wherever it is read (a rewrite moves reads of it)."""
    return isinstance(op, Imm) or op in facts.defs


class _Plan:
    """The rewrite of one tree: new definitions and readers, collected before anything changes."""

    def __init__(self, facts: Facts, readers: dict[Reg, list[Instruction | Terminator]]) -> None:
        self.facts = facts
        self.readers = readers
        self.images: dict[Reg, _Image] = {}
        self.insns: dict[int, Instruction] = {}  # id(old instruction) -> its replacement
        self.terms: dict[int, Terminator] = {}
        self.swaps = 0  # swaps the rewrite removes
        self.merged = 0  # shifts and masks merged into one mask

    @property
    def worth_it(self) -> bool:
        """A swap goes, or a shift merges with a mask; a shift alone turned into a mask gains nothing."""
        return self.swaps > 0 or self.merged > 0

    def visit(self, reg: Reg, image: _Image) -> bool:
        """Plan `reg`'s rewrite and its readers'; False if any reader cannot follow."""
        if reg not in self.facts.defs or reg in self.images:
            return False
        self.images[reg] = image
        definition = self.facts.defs[reg]
        if isinstance(definition, ByteSwap):
            self.swaps += 1
        self.insns[id(definition)] = self._define(reg, image, definition.span)
        for node in self.readers.get(reg, []):
            if not self._reader(reg, image, node):
                return False
        return True

    def _reader(self, reg: Reg, image: _Image, node: Instruction | Terminator) -> bool:
        match node:
            case Binary(BinaryOp.AND, dst, lhs, rhs):
                mask = rhs if lhs == reg else lhs
                if not isinstance(mask, Imm):
                    return False
                self.merged += 1
                return self.visit(dst, _Image(image.base, image.masked(mask.value), image.bits, image.width, image.swapped))
            case Binary(BinaryOp.LSHR, dst, lhs, Imm(value=k)) if lhs == reg and 0 < k < 64:
                if k >= image.width:
                    return False  # always 0: left to constant folding
                self.merged += 1
                kept = _Image(image.base, image.masked(MASK64 & ~((1 << k) - 1)), _shifter(k, image.bits), image.width - k, None)
                return self.visit(dst, kept)
            case ByteSwap(bits, dst, src) if src == reg and image.swapped == bits:
                self.swaps += 1
                if dst not in self.facts.defs:
                    return False
                self.insns[id(node)] = self._define(dst, image, node.span)
                return True
            case Branch(cmp, lhs, rhs) | SetCond(cmp, _, lhs, rhs):
                new = self._compare(cmp, lhs, rhs, reg, image)
                if new is None:
                    return False
                if isinstance(node, Branch):
                    self.terms[id(node)] = Branch(new[0], new[1], new[2], node.then, node.otherwise, node.span)
                else:
                    self.insns[id(node)] = SetCond(new[0], node.dst, new[1], new[2], node.span)
                return True
        return False

    def _compare(self, cmp: Cmp, lhs: Operand, rhs: Operand, reg: Reg, image: _Image) -> tuple[Cmp, Operand, Operand] | None:
        if isinstance(lhs, Imm):
            lhs, rhs, cmp = rhs, lhs, cmp.swapped()
        if lhs != reg or not isinstance(rhs, Imm) or cmp not in (Cmp.EQ, Cmp.NE, Cmp.SET):
            return None
        if cmp is Cmp.SET:  # `reg & M` non-zero: the rewritten bits under the moved mask
            return Cmp.SET, image.base, Imm(image.masked(rhs.value))
        moved = image.of(rhs.value)
        return None if moved is None else (cmp, reg, Imm(moved))

    def _define(self, dst: Reg, image: _Image, span: Span) -> Instruction:
        """`dst = base & mask`: a copy where the mask keeps every bit `base` can have."""
        mask, width = image.mask, self.facts.bits(image.base)
        if mask is None or mask | ((1 << width) - 1) == mask:
            return Copy(dst, image.base, span)
        if width <= 32 and mask < (1 << 32) and mask >> 31:
            # The same bits of a 32-bit value, as a mask a BPF immediate can
            # hold (sign-extended from 32 bits): no constant to materialize.
            mask |= MASK64 ^ ((1 << 32) - 1)
        return Binary(BinaryOp.AND, dst, image.base, Imm(mask), span)
