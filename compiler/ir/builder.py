"""Building IR one block at a time: an insertion point, and forward jumps by handle.

The builder has one insertion point, the open block. `position(label)` opens a
block, `emit` appends to it and `terminate` closes it; blocks are laid out in
the order they are opened, the entry first. A jump to a block that does not
exist yet (the end of an `if`, the block after an inlined helper) is made with
`jump_forward`, which closes the open block and returns a `JumpHandle`;
`land(handles, label)` points every such jump at `label` and opens it there.
`finish` refuses a function with a jump still pending, so a forgotten edge is
an error, not a block that jumps nowhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..diagnostics import InternalCompilerError, Span
from .nodes import Block, Function, Instruction, Jump, Reg, Terminator

# What a pending jump targets until it lands: no block has this label, so the
# IR checker refuses any block still holding it.
_UNPLACED = "<unplaced>"


@dataclass(eq=False)
class JumpHandle:
    """A jump at the end of `block` whose target is not placed yet."""

    block: Block
    span: Span
    landed: bool = False


class IRBuilder:
    """Appends instructions at one insertion point and closes blocks with one terminator each."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._label: str | None = None
        self._insns: list[Instruction] = []
        self._counter = 0  # one counter for registers and labels, so every name is unique
        self._pending: list[JumpHandle] = []

    # -- names ------------------------------------------------------------

    def fresh(self, hint: str = "t") -> Reg:
        """A new register named after `hint`."""
        self._counter += 1
        return Reg(f"{hint}{self._counter}")

    def fresh_window(self) -> int:
        """A new packet window number (see `CheckPacket`)."""
        self._counter += 1
        return self._counter

    def new_block(self, hint: str) -> str:
        """The label of a new block, to be opened later with `position`."""
        self._counter += 1
        return f"{hint}{self._counter}"

    # -- the insertion point ----------------------------------------------

    @property
    def label(self) -> str | None:
        """The label of the open block, or None where code cannot be reached."""
        return self._label

    @property
    def reachable(self) -> bool:
        """True while a block is open: code emitted now can run."""
        return self._label is not None

    def position(self, label: str) -> None:
        """Open the block `label` as the insertion point (the open block, if any, is abandoned)."""
        self._label, self._insns = label, []

    def emit(self, insn: Instruction) -> None:
        """Append `insn` to the open block."""
        self._insns.append(insn)

    def terminate(self, term: Terminator) -> Block:
        """Close the open block with `term`; no block is open afterwards."""
        if self._label is None:
            raise InternalCompilerError(f"terminator {type(term).__name__} emitted where no block is open", term.span)
        block = Block(self._label, self._insns, term)
        self.blocks.append(block)
        self._label, self._insns = None, []
        return block

    # -- forward jumps ----------------------------------------------------

    def jump_forward(self, span: Span) -> JumpHandle:
        """Close the open block with a jump to a block placed later by `land`."""
        handle = JumpHandle(self.terminate(Jump(_UNPLACED, span)), span)
        self._pending.append(handle)
        return handle

    def land(self, handles: Iterable[JumpHandle], label: str) -> None:
        """Point every jump in `handles` at `label` and open that block."""
        for handle in handles:
            if handle.landed:
                raise InternalCompilerError(f"a jump from {handle.block.label} landed twice", handle.span)
            handle.block.term = Jump(label, handle.span)
            handle.landed = True
        self._pending = [h for h in self._pending if not h.landed]
        self.position(label)

    # -- the result -------------------------------------------------------

    def finish(self, name: str, file: str, span: Span) -> Function:
        """The function built so far; every forward jump must have landed."""
        if self._pending:
            first = self._pending[0]
            raise InternalCompilerError(f"the jump at the end of {first.block.label} never got a target", first.span)
        return Function(name, file, self.blocks, span)
