"""Peepholes over allocated machine code: jump threading, and bit tests as `jset`.

Jump threading: a jump whose later tests are already decided goes straight to their outcome.

A value returned from an inlined function reaches its caller as a register
set to a constant on each `return` and a chain of tests on it after the
join (`r1 = 0; goto join; join: if r1 == 1 goto ...; if r1 == 3 goto ...;
if r1 != 0 goto ...; r0 = 0; exit`). Where the constant is known, the tests
are decided: the jump goes to the block they lead to, and the constants the
skipped blocks would have set are set before it. A jump to a short exit block
becomes a copy of that block, and the constants nothing reads afterwards are
deleted. This runs after register allocation and FETCH expansion, on the
final registers, and changes no value any path computes.

Bit tests: `r = x; r >>= k; r &= m; if r == 0` (a header's flag bit, or
`keys.flags & F`) computes a value only the test reads; where `r` is dead
after the test, `if x & (m << k)` is one `jset` (and a `goto` for `== 0`,
as BPF has no jump-if-clear).
"""

from __future__ import annotations

from pyfd.isa import AluOp, Class, JmpOp, Source, alu_opcode, bpf_class, bpf_op, bpf_src, jmp_opcode

from .mir import FP, MBlock, MFunction, MInsn, MReg, ja, jmp_imm, mov64_imm
from .regalloc import liveness

_MASK = (1 << 64) - 1
_COPIED_TEST = 2  # a clear side of at most this many instructions, ending in a test, is copied after its jset
_SHORT_EXIT = 3  # a block of at most this many instructions ending in `exit` is copied rather than jumped to


def _signed(value: int) -> int:
    value &= _MASK
    return value - (1 << 64) if value >> 63 else value


def _decide(op: int, lhs: int, rhs: int) -> bool | None:
    """The outcome of a 64-bit `if lhs op rhs`, or None for an operation not decided here."""
    ul, ur, sl, sr = lhs & _MASK, rhs & _MASK, _signed(lhs), _signed(rhs)
    outcomes = {
        JmpOp.JEQ: ul == ur, JmpOp.JNE: ul != ur, JmpOp.JGT: ul > ur, JmpOp.JGE: ul >= ur, JmpOp.JLT: ul < ur,
        JmpOp.JLE: ul <= ur, JmpOp.JSGT: sl > sr, JmpOp.JSGE: sl >= sr, JmpOp.JSLT: sl < sr, JmpOp.JSLE: sl <= sr,
        JmpOp.JSET: bool(ul & ur),
    }
    outcome: bool | None = outcomes.get(op)  # type: ignore[call-overload]
    return outcome


def _constant(insn: MInsn, known: dict[int, int]) -> tuple[int, int] | None:
    """(register, value) if `insn` sets a register to a known 64-bit constant."""
    if insn.opcode == mov64_imm(0, 0).opcode and isinstance(insn.dst, int):
        return insn.dst, insn.imm & _MASK
    if insn.is_copy() and isinstance(insn.dst, int) and isinstance(insn.src, int) and insn.src in known:
        return insn.dst, known[insn.src]
    return None


def _follow(start: str, known: dict[int, int], blocks: dict[str, MBlock], after: dict[str, str | None]) -> tuple[str, dict[int, int]]:
    """Where control goes from `start` with `known` registers, passing only blocks of constants and decided tests."""
    label, known = start, dict(known)
    seen: set[str] = set()
    while label not in seen:
        seen.add(label)
        block = blocks[label]
        trial = dict(known)
        nxt: str | None = None
        decided = True
        for insn in block.insns:
            set_ = _constant(insn, trial)
            if set_ is not None:
                trial[set_[0]] = set_[1]
                continue
            if insn.is_ja:
                nxt = insn.target
                break
            if (
                bpf_class(insn.opcode) == Class.JMP
                and bpf_src(insn.opcode) == Source.K
                and isinstance(insn.dst, int)
                and insn.dst in trial
                and insn.target is not None
            ):
                outcome = _decide(bpf_op(insn.opcode), trial[insn.dst], insn.imm)
                if outcome is None:
                    decided = False
                    break
                if outcome:
                    nxt = insn.target
                    break
                continue
            decided = False
            break
        else:
            nxt = after[label]
        if not decided or nxt is None:
            return label, known
        label, known = nxt, trial
    return label, known


def _successors(block: MBlock, fall: str | None) -> list[str]:
    targets = [i.target for i in block.insns if i.target is not None and bpf_class(i.opcode) in (Class.JMP, Class.JMP32)]
    last = block.insns[-1] if block.insns else None
    ends = last is not None and (last.is_ja or (bpf_class(last.opcode) == Class.JMP and bpf_op(last.opcode) == JmpOp.EXIT))
    succs = [t for t in targets if t is not None]
    if not ends and fall is not None:
        succs.append(fall)
    return list(dict.fromkeys(succs))


def thread_jumps(fn: MFunction) -> None:
    """Thread the jumps of `fn` whose tests are decided by constants, copy short exits, drop dead constants (in place)."""
    blocks = {b.label: b for b in fn.blocks}
    after: dict[str, str | None] = {b.label: (fn.blocks[i + 1].label if i + 1 < len(fn.blocks) else None) for i, b in enumerate(fn.blocks)}
    changed = False
    for b in fn.blocks:
        if not b.insns:
            continue
        last = b.insns[-1]
        if last.is_ja:
            body, target = b.insns[:-1], last.target
        elif last.target is None and not (bpf_class(last.opcode) == Class.JMP and bpf_op(last.opcode) == JmpOp.EXIT):
            body, target = list(b.insns), after[b.label]
        else:
            continue
        if target is None:
            continue
        known: dict[int, int] = {}
        for insn in body:
            set_ = _constant(insn, known)
            if set_ is not None:
                known[set_[0]] = set_[1]
            else:
                for reg in insn.defs():
                    if isinstance(reg, int):
                        known.pop(reg, None)
        if not known:
            continue
        final, values = _follow(target, known, blocks, after)
        if final == target:
            continue
        span = last.span
        sets = [mov64_imm(reg, _signed(value), span=span) for reg, value in sorted(values.items()) if known.get(reg) != value]
        b.insns = [*body, *sets, ja(final, span=span)]
        changed = True
    for b in fn.blocks:
        if b.insns and b.insns[-1].is_ja:
            dest = blocks[b.insns[-1].target or ""]
            tail = dest.insns
            exits = bool(tail) and bpf_class(tail[-1].opcode) == Class.JMP and bpf_op(tail[-1].opcode) == JmpOp.EXIT
            if exits and len(tail) <= _SHORT_EXIT and all(i.target is None for i in tail):
                b.insns = [*b.insns[:-1], *tail]
                changed = True
    if not changed:
        return
    for b in fn.blocks:
        b.succs = _successors(b, after[b.label])
    _drop_unreachable(fn)
    _drop_dead_constants(fn)


def _drop_unreachable(fn: MFunction) -> None:
    blocks = {b.label: b for b in fn.blocks}
    reached = {fn.blocks[0].label}
    stack = [fn.blocks[0].label]
    while stack:
        for s in blocks[stack.pop()].succs:
            if s not in reached:
                reached.add(s)
                stack.append(s)
    kept = [b for b in fn.blocks if b.label in reached]
    # A block falling through into a dropped one keeps that edge explicit (there is none: a
    # dropped block has no predecessor, so nothing falls into it).
    fn.blocks[:] = kept


def _drop_dead_constants(fn: MFunction) -> None:
    """Delete `mov rX, imm` and `mov rX, rY` whose register nothing reads afterwards."""
    live_in = liveness(fn)
    mov_imm = mov64_imm(0, 0).opcode
    for b in fn.blocks:
        live = set().union(*(live_in[s] for s in b.succs)) if b.succs else set()
        kept: list[MInsn] = []
        for insn in reversed(b.insns):
            if (insn.opcode == mov_imm or insn.is_copy()) and insn.dst not in live and insn.dst != FP:
                continue
            live = (live - set(insn.defs())) | set(insn.uses())
            kept.append(insn)
        b.insns = kept[::-1]


def _live_out_at(fn: MFunction) -> dict[str, list[set[MReg]]]:
    """For each block, the registers live after each of its instructions."""
    live_in = liveness(fn)
    out: dict[str, list[set[MReg]]] = {}
    for b in fn.blocks:
        live: set[MReg] = set().union(*(live_in[s] for s in b.succs)) if b.succs else set()
        after: list[set[MReg]] = []
        for insn in reversed(b.insns):
            if insn.target is not None and bpf_class(insn.opcode) in (Class.JMP, Class.JMP32):
                live = live | live_in[insn.target]
            after.append(set(live))
            live = (live - set(insn.defs())) | set(insn.uses())
        out[b.label] = after[::-1]
    return out


_AND64 = alu_opcode(Class.ALU64, AluOp.AND, Source.K)
_AND32 = alu_opcode(Class.ALU, AluOp.AND, Source.K)
_RSH64 = alu_opcode(Class.ALU64, AluOp.RSH, Source.K)
_JEQ = jmp_opcode(Class.JMP, JmpOp.JEQ, Source.K)
_JNE = jmp_opcode(Class.JMP, JmpOp.JNE, Source.K)


def bit_tests(fn: MFunction) -> None:
    """Replace `[r = x;] [r >>= k;] r &= m; if r ==/!= 0 goto L` by `if x & (m << k) goto` where `r` is dead after (in place)."""
    live_after = _live_out_at(fn)
    after = {b.label: (fn.blocks[i + 1].label if i + 1 < len(fn.blocks) else None) for i, b in enumerate(fn.blocks)}
    for b in fn.blocks:
        insns = list(b.insns)
        changed = False
        j = len(insns) - 1
        while j >= 1:
            rewrite = _bit_test(insns, j, live_after[b.label][j], after[b.label])
            if rewrite is None:
                j -= 1
                continue
            start, end, new = rewrite
            insns[start:end] = new
            changed = True
            j = start - 1
        if changed:
            b.insns = insns
            b.succs = _successors(b, after[b.label])


def _bit_test(insns: list[MInsn], j: int, live: set[MReg], fall: str | None) -> tuple[int, int, list[MInsn]] | None:
    """The test at `insns[j]` as a jset: (first replaced index, one past the last, the new instructions), or None."""
    test = insns[j]
    r = test.dst
    if test.opcode not in (_JEQ, _JNE) or test.imm != 0 or test.target is None or not isinstance(r, int) or r in live:
        return None  # not a test against zero, or the masked value is read after it
    mask = insns[j - 1]
    if mask.dst != r or mask.imm == 0 or not (mask.opcode == _AND64 or (mask.opcode == _AND32 and mask.imm > 0)):
        return None  # `w &= m` zero-extends: only a positive mask reads the same as the 64-bit jset's
    bits, start = mask.imm, j - 1
    if start >= 1 and insns[start - 1].opcode == _RSH64 and insns[start - 1].dst == r:
        shift = insns[start - 1].imm
        if bits < 0 or not 0 <= shift < 64 or bits << shift >= 1 << 31:
            return None
        bits, start = bits << shift, start - 1
    tested: MReg = r
    if start >= 1 and insns[start - 1].is_copy() and insns[start - 1].dst == r and insns[start - 1].src not in (r, FP):
        tested, start = insns[start - 1].src, start - 1
    span = test.span
    if test.opcode == _JNE:
        return start, j + 1, [jmp_imm(JmpOp.JSET, tested, bits, test.target, span=span)]
    # `== 0` jumps when every bit is clear: jset to where it fell through, then goto the target.
    nxt = insns[j + 1] if j + 1 < len(insns) else None
    if nxt is not None and nxt.is_ja and nxt.target is not None:
        return start, j + 2, [jmp_imm(JmpOp.JSET, tested, bits, nxt.target, span=span), ja(test.target, span=span)]
    if nxt is None and fall is not None:
        return start, j + 1, [jmp_imm(JmpOp.JSET, tested, bits, fall, span=span), ja(test.target, span=span)]
    return None


def _ends(block: MBlock) -> bool:
    """True if control never falls out of `block` into the next one (`goto` or `exit` last)."""
    if not block.insns:
        return False
    last = block.insns[-1]
    return last.is_ja or (bpf_class(last.opcode) == Class.JMP and bpf_op(last.opcode) == JmpOp.EXIT)


def _is_jset(insn: MInsn) -> bool:
    return insn.target is not None and bpf_class(insn.opcode) in (Class.JMP, Class.JMP32) and bpf_op(insn.opcode) == JmpOp.JSET


def jset_fall_through(fn: MFunction) -> None:
    """Move a block chain so the not-set side of a `jset` falls through (in place).

    BPF has no jump-if-clear: a `jset` whose set side was laid out next is
    `if x & M goto next; goto clear`. Where nothing falls into `clear` (it
    starts a chain of blocks linked by fall-through, ending in `goto` or
    `exit`), that chain moves right after the test and the `goto` goes. The
    registers are final, so the order changes no value and no live range;
    every other edge is a jump by label, or a fall-through kept inside its chain.

    Where another block falls into `clear` and `clear` is one short test
    (at most `_COPIED_TEST` instructions, ending in a conditional jump),
    the `goto` becomes a copy of that test and a `goto` to where it falls
    through: the same count when its jump is not taken, one fewer when it is.
    """
    moved = True
    while moved:
        moved = False
        chains: list[list[MBlock]] = []
        for i, b in enumerate(fn.blocks):
            if i == 0 or _ends(fn.blocks[i - 1]):
                chains.append([])
            chains[-1].append(b)
        head = {chain[0].label: n for n, chain in enumerate(chains)}
        for n, chain in enumerate(chains[:-1]):
            insns = chain[-1].insns
            if len(insns) < 2 or not insns[-1].is_ja or not _is_jset(insns[-2]) or insns[-2].target != chains[n + 1][0].label:
                continue
            m = head.get(insns[-1].target or "")
            if m is None:
                _copy_short_test(fn, chain[-1])
                continue
            if m == n or m == 0 or not _ends(chains[m][-1]):
                continue  # the clear side is this chain, or the entry, or runs off the end
            chain[-1].insns = insns[:-1]
            order = [c for k, c in enumerate(chains) if k != m]
            order.insert(order.index(chain) + 1, chains[m])
            fn.blocks[:] = [b for c in order for b in c]
            moved = True
            break


def _copy_short_test(fn: MFunction, block: MBlock) -> None:
    """Replace `block`'s final `goto F` by a copy of F, a short test, and a `goto` to where F falls through."""
    index = {b.label: i for i, b in enumerate(fn.blocks)}
    at = index[block.insns[-1].target or ""]
    clear = fn.blocks[at]
    last = clear.insns[-1] if clear.insns else None
    if (
        last is None or len(clear.insns) > _COPIED_TEST or at + 1 >= len(fn.blocks) or last.target is None or last.is_ja
        or bpf_class(last.opcode) not in (Class.JMP, Class.JMP32) or any(i.target is not None for i in clear.insns[:-1])
    ):
        return
    fall = fn.blocks[at + 1].label
    block.insns = [*block.insns[:-1], *clear.insns, ja(fall, span=last.span)]
    block.succs = list(dict.fromkeys([*(i.target for i in block.insns if i.target is not None)]))
