"""RedundantLoads: reuse a value already loaded from the packet or the keys.

A forward "available values" analysis over the CFG: after `x = load A` (or
`store A, x` for the keys), A's value is in x until a store that overlaps A.
The packet is read-only, so packet loads stay available, and so are loads of
load-time constants (a frozen map). Map values are not: another CPU may
write them at any time. A later load of A
where the value is available on every incoming path becomes a copy. Only
single-assignment registers are reused, so the value cannot change under us.
"""

from __future__ import annotations

from typing import Any

from ..ir.analysis import available_on_entry
from ..ir.nodes import Copy, Extend, Function, Imm, Instruction, LoadConfig, LoadKeys, LoadPacket, Operand, Reg, StoreKeys
from .facts import Facts

Key = tuple[Any, ...]  # ("keys", offset, size), with "wide" when the value needs narrowing; ("packet", base, disp, size)
State = dict[Key, Operand]


def _key(insn: Instruction) -> Key | None:
    match insn:
        case LoadKeys(offset=off, size=size) | StoreKeys(offset=off, size=size):
            return ("keys", off, size)
        case LoadPacket(base=base, disp=disp, size=size, window=window):
            return ("packet", base, disp, size, window)
        case LoadConfig(offset=off, size=size):
            return ("config", off, size)  # .rodata is frozen: what a load gives, it gives everywhere
    return None


def _transfer(insn: Instruction, state: State, facts: Facts) -> None:
    match insn:
        case StoreKeys(offset=off, size=size, src=src):
            for k in [k for k in state if k[0] == "keys" and k[1] < off + size and off < k[1] + k[2]]:
                del state[k]
            if isinstance(src, Imm) or src in facts.defs:
                value = Imm(src.value & ((1 << (8 * size)) - 1)) if isinstance(src, Imm) else src
                state[("keys", off, size)] = value
                if isinstance(value, Reg) and facts.bits(value) > size * 8:
                    state[("keys", off, size, "wide")] = value  # needs narrowing to reuse
                    del state[("keys", off, size)]
        case LoadKeys() | LoadPacket() | LoadConfig():
            key = _key(insn)
            if key is not None and key not in state and insn.dst in facts.defs:
                state[key] = insn.dst
    d = getattr(insn, "dst", None)
    if d is not None and d not in facts.defs:  # a local overwritten: values it carried are gone
        for k in [k for k, v in state.items() if v == d]:
            del state[k]


class RedundantLoads:
    """Replace loads whose value is already in a register."""

    name = "redundant-loads"

    def run(self, fn: Function) -> bool:
        facts = Facts(fn)
        entry: dict[str, State] = available_on_entry(fn, lambda insn, state: _transfer(insn, state, facts))
        changed = False
        blocks = fn.block_map()
        for label, state in entry.items():
            block = blocks[label]
            new_insns: list[Instruction] = []
            for insn in block.insns:
                key = _key(insn)
                if isinstance(insn, (LoadKeys, LoadPacket, LoadConfig)) and key is not None:
                    if key in state and state[key] != insn.dst:
                        insn = Copy(insn.dst, state[key], insn.span)
                        changed = True
                    elif isinstance(insn, LoadKeys) and (*key, "wide") in state:
                        insn = Extend(False, insn.size * 8, insn.dst, state[(*key, "wide")], insn.span)
                        changed = True
                _transfer(insn, state, facts)
                new_insns.append(insn)
            block.insns = new_insns
        return changed
