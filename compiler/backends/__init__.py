"""The backends behind one protocol, and the registry the driver and the CLI choose from.

Both take the same checked, optimised IR and return the same frozen
`CompiledCode`. Each backend's module is imported at its first compile, so
naming the backends (the CLI's `--backend` choices) loads neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..ir.nodes import Function
    from .result import CompiledCode


class Backend(Protocol):
    """A code generator: checked IR in, BPF instructions with their Python spans out."""

    name: str
    description: str  # one line, for `--backend` help
    thread_jumps: bool  # whether the IR passes thread jumps for it (passes.pipeline)
    emits_llvm_ir: bool  # whether its CompiledCode carries LLVM IR (`--emit llvm`)

    def compile(self, fn: Function, *, opt_level: int) -> CompiledCode:
        """Compile a checked IR function; raises CompileError for what it cannot compile."""
        ...


class NativeBackend:
    """pyfd's own instruction selection and register allocation (no native dependency)."""

    name = "native"
    description = "pyfd's own"
    thread_jumps = True
    emits_llvm_ir = False

    def compile(self, fn: Function, *, opt_level: int) -> CompiledCode:
        """Compile with native.compile_native (the IR passes did the optimising)."""
        from . import native

        return native.compile_native(fn)


class LlvmBackend:
    """The IR as an LLVM module, through LLVM's BPF target in a child process (llvmlite)."""

    name = "llvm"
    description = "LLVM through llvmlite"
    # LLVM threads jumps itself, and the join copies ThreadJumps duplicates
    # cost LLVM more than they save (samples/full.py: 411 instructions
    # without, 467 with).
    thread_jumps = False
    emits_llvm_ir = True

    def compile(self, fn: Function, *, opt_level: int) -> CompiledCode:
        """Compile with llvm.compile_llvm, LLVM's pipeline at `opt_level`."""
        from . import llvm

        return llvm.compile_llvm(fn, opt_level)


BACKENDS: Mapping[str, Backend] = MappingProxyType({b.name: b for b in (NativeBackend(), LlvmBackend())})
"""Every backend by name, the default (native) first."""

__all__ = ["BACKENDS", "Backend", "LlvmBackend", "NativeBackend"]
