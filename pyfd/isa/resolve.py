"""The label resolver: turn Label targets into slot offsets.

A jump's offset counts slots from the instruction after the jump
(instruction-set.rst: "PC += offset", where PC already points past the jump),
and BPF_LD_IMM64 occupies two slots, so offsets are computed over slots, not
list positions. A BPF-to-BPF call (src = BPF_PSEUDO_CALL) is resolved the
same way, with the offset in imm instead of off, and so is cpu v4's `gotol`
(BPF_JMP32 | BPF_JA), whose 32-bit imm reaches any slot of a program.
`relax_jumps` rewrites the jumps an int16 offset cannot reach into gotol
before they are resolved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .builders import gotol
from .errors import EncodeError, LabelError
from .insn import INT16_MAX, INT16_MIN, INT32_MAX, INT32_MIN, Instruction, Label
from .opcodes import OP_MASK, Class, JmpOp


def label_slots(items: Iterable[Instruction | Label]) -> dict[Label, int]:
    """Map each Label in the stream to the slot of the instruction that follows it."""
    slots: dict[Label, int] = {}
    slot = 0
    for item in items:
        if isinstance(item, Label):
            if item in slots:
                raise LabelError(
                    f"label {item.name!r} placed twice (slots {slots[item]} and {slot})"
                )
            slots[item] = slot
        else:
            slot += item.slots
    return slots


def resolve(items: Iterable[Instruction | Label]) -> list[Instruction]:
    """Drop the Label markers and replace every Label target by its slot offset."""
    items = list(items)
    positions = label_slots(items)
    resolved: list[Instruction] = []
    slot = 0
    for item in items:
        if isinstance(item, Label):
            continue
        insn = item
        if insn.target is not None:
            insn = _resolve_one(insn, slot, positions)
        resolved.append(insn)
        slot += insn.slots
    return resolved


def _resolve_one(
    insn: Instruction, slot: int, positions: dict[Label, int]
) -> Instruction:
    label = insn.target
    if label is None:
        return insn
    where = f"slot {slot}" if insn.span is None else f"slot {slot}, {insn.span}"
    if label not in positions:
        raise LabelError(f"undefined label {label.name!r} (jump at {where})")
    delta = positions[label] - (slot + 1)
    if insn.is_pseudo_call or insn.is_gotol:
        if not INT32_MIN <= delta <= INT32_MAX:
            what = "call" if insn.is_pseudo_call else "jump"
            raise EncodeError(
                f"{what} to {label.name!r} at {where}: offset {delta} outside int32"
            )
        return replace(insn, imm=delta, target=None)
    if not INT16_MIN <= delta <= INT16_MAX:
        raise EncodeError(
            f"jump to {label.name!r} at {where}: offset {delta} outside int16"
        )
    return replace(insn, off=delta, target=None)


# The comparison that holds exactly when the key's does not: a far
# conditional jump becomes `if not cond goto +1; gotol target`.
_INVERSE: dict[JmpOp, JmpOp] = {
    JmpOp.JEQ: JmpOp.JNE, JmpOp.JNE: JmpOp.JEQ,
    JmpOp.JGT: JmpOp.JLE, JmpOp.JLE: JmpOp.JGT,
    JmpOp.JGE: JmpOp.JLT, JmpOp.JLT: JmpOp.JGE,
    JmpOp.JSGT: JmpOp.JSLE, JmpOp.JSLE: JmpOp.JSGT,
    JmpOp.JSGE: JmpOp.JSLT, JmpOp.JSLT: JmpOp.JSGE,
}


def relax_jumps(items: Iterable[Instruction | Label]) -> list[Instruction | Label]:
    """Rewrite each labelled jump whose offset does not fit int16 into one through `gotol`.

    `goto L` becomes `gotol L`; `if a op b goto L` becomes `if a !op b goto +1;
    gotol L`, and `if a & b goto L` (JSET has no inverse) becomes `if a & b
    goto +1; goto +1; gotol L`. The verifier follows gotol from cpu v4 on
    (kernel 6.6, kernel/bpf/verifier.c check_cfg). A rewrite only lengthens
    the program, so rewriting until every remaining jump fits terminates.
    """
    out = list(items)
    while True:
        positions = label_slots(out)
        relaxed: list[Instruction | Label] = []
        slot = 0  # the slot of each instruction in `out`, before this round's rewrites
        changed = False
        for item in out:
            if isinstance(item, Label):
                relaxed.append(item)
                continue
            label = item.target
            far = (
                label is not None
                and item.is_jump
                and not item.is_gotol
                and label in positions
                and not INT16_MIN <= positions[label] - (slot + 1) <= INT16_MAX
            )
            slot += item.slots
            if not far:
                relaxed.append(item)
                continue
            assert label is not None
            changed = True
            op = JmpOp(item.opcode & OP_MASK)
            far_jump = gotol(label, span=item.span)
            if op == JmpOp.JA:
                relaxed.append(far_jump)
            elif op in _INVERSE:
                inverse = item.opcode & ~OP_MASK | _INVERSE[op]
                relaxed += [replace(item, opcode=inverse, off=1, target=None), far_jump]
            else:
                relaxed += [
                    replace(item, off=1, target=None),
                    Instruction(Class.JMP | JmpOp.JA, 0, 0, 1, 0, item.span),
                    far_jump,
                ]
        out = relaxed
        if not changed:
            return out
