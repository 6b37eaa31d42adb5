"""What every backend returns: instructions, each with the Python span it came from."""

from __future__ import annotations

from dataclasses import dataclass

from pyfd.isa import Instruction, encode_program

from ..diagnostics import Span


@dataclass(frozen=True)
class CompiledCode:
    """A compiled program: instructions in order, source spans alongside, and what else the backend made."""

    name: str
    backend: str
    insns: tuple[Instruction, ...]  # each with the Span of the IR node it came from (the source map)
    # The llvm backend's modules: after LLVM's optimisation pipeline, as
    # compiled to the object (`--emit llvm`), and as pyfd generated it.
    llvm_ir: str | None = None
    unoptimised_ir: str | None = None

    @property
    def code(self) -> bytes:
        """The encoded instructions."""
        return encode_program(self.insns)

    @property
    def slot_count(self) -> int:
        """Number of 8-byte instruction slots (LD_IMM64 takes two)."""
        return len(self.code) // 8

    def spans_by_slot(self) -> list[Span | None]:
        """The Python span of each 8-byte slot (the second half of LD_IMM64 repeats the first)."""
        out: list[Span | None] = []
        for insn in self.insns:
            span = insn.span if isinstance(insn.span, Span) else None
            out.extend([span] * insn.slots)
        return out
