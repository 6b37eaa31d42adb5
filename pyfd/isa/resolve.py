"""The label resolver: turn Label targets into slot offsets.

A jump's offset counts slots from the instruction after the jump
(instruction-set.rst: "PC += offset", where PC already points past the jump),
and BPF_LD_IMM64 occupies two slots, so offsets are computed over slots, not
list positions. A BPF-to-BPF call (src = BPF_PSEUDO_CALL) is resolved the
same way, with the offset in imm instead of off.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .errors import EncodeError, LabelError
from .insn import INT16_MAX, INT16_MIN, INT32_MAX, INT32_MIN, Instruction, Label


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
    if insn.is_pseudo_call:
        if not INT32_MIN <= delta <= INT32_MAX:
            raise EncodeError(
                f"call to {label.name!r} at {where}: offset {delta} outside int32"
            )
        return replace(insn, imm=delta, target=None)
    if not INT16_MIN <= delta <= INT16_MAX:
        raise EncodeError(
            f"jump to {label.name!r} at {where}: offset {delta} outside int16"
        )
    return replace(insn, off=delta, target=None)
