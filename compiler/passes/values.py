"""CommonValues: reuse an arithmetic result already computed on every path.

The frontend lowers each read of a bit field or each `keys.thoff + offset`
where it is written, so `if ip.ihl < 5: ...; keys.thoff += ip.ihl * 4`
masks the same byte twice, and `pkt.has(keys.thoff + offset + 4)` then
`pkt.header(Ports, keys.thoff + offset)` adds twice. A forward "available
expressions" analysis over the CFG (as RedundantLoads does for loads): after
`x = a op b`, `a op b` is in x until a or b is written again; a later
`y = a op b` where it is available on every incoming path becomes `y = x`.
Only results in single-assignment registers are reused, so x cannot change
under us; the operands may be locals, whose writes end the availability.
"""

from __future__ import annotations

from typing import Any

from ..ir.analysis import available_on_entry
from ..ir.nodes import Binary, ByteSwap, Copy, Extend, Function, Instruction, Reg, Unary, defined
from .facts import Facts

Key = tuple[Any, ...]
State = dict[Key, Reg]


def _key(insn: Instruction) -> Key | None:
    match insn:
        case Binary(op, _, lhs, rhs):
            return ("binary", op, lhs, rhs)
        case Unary(op, _, src):
            return ("unary", op, src)
        case Extend(signed, bits, _, src):
            return ("extend", signed, bits, src)
        case ByteSwap(bits, _, src):
            return ("bswap", bits, src)
    return None


def _transfer(insn: Instruction, state: State, facts: Facts, twice: set[Key]) -> None:
    d = defined(insn)
    if d is not None and state:  # a register written: what was computed from it, or kept in it, is gone
        for k in [k for k, v in state.items() if v == d or d in k[2:]]:
            del state[k]
    key = _key(insn)
    if key is not None and key in twice and d is not None and d in facts.defs and d not in key[2:] and key not in state:
        state[key] = d


class CommonValues:
    """Replace a computation whose result is already in a register by a copy of it."""

    name = "common-values"

    def run(self, fn: Function) -> bool:
        # Only computations written more than once can be reused: the
        # analysis tracks those alone, which keeps its states small.
        seen: set[Key] = set()
        twice: set[Key] = set()
        for insn in fn.instructions():
            key = _key(insn)
            if key is not None:
                (twice if key in seen else seen).add(key)
        if not twice:
            return False
        facts = Facts(fn)
        entry: dict[str, State] = available_on_entry(fn, lambda insn, state: _transfer(insn, state, facts, twice))
        changed = False
        blocks = fn.block_map()
        for label, state in entry.items():
            block = blocks[label]
            new_insns: list[Instruction] = []
            for insn in block.insns:
                key = _key(insn)
                d = defined(insn)
                if key is not None and d is not None and key in state and state[key] != d:
                    insn = Copy(d, state[key], insn.span)
                    changed = True
                _transfer(insn, state, facts, twice)
                new_insns.append(insn)
            block.insns = new_insns
        return changed
