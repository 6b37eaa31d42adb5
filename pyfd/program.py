"""Compiled programs, and loading programs from object files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .runtime import LoadedProgram, load_program
from .runtime.elf import read_object

if TYPE_CHECKING:
    from .compiler.driver import Compilation


class CompiledProgram:
    """A dissector compiled to BPF: instructions, listings, an object file, a loader."""

    def __init__(self, compilation: "Compilation") -> None:
        self.compilation = compilation
        self.name = compilation.name
        self.backend = compilation.options.backend

    def __repr__(self) -> str:
        return f"<CompiledProgram {self.name} ({self.backend}, {self.insn_count} instructions)>"

    @property
    def code(self) -> bytes:
        """The encoded BPF instructions."""
        return self.compilation.code.code

    @property
    def insn_count(self) -> int:
        """Number of 8-byte instruction slots."""
        return self.compilation.code.slot_count

    def asm(self) -> str:
        """BPF assembly interleaved with the Python lines it came from."""
        return self.compilation.asm_text()

    def ir(self) -> str:
        """The optimised IR in text form."""
        return self.compilation.ir_text()

    def object_bytes(self) -> bytes:
        """An ELF object (section `flow_dissector`, license GPL) for bpftool and libbpf."""
        return self.compilation.object_bytes()

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the ELF object to `path`."""
        out = Path(path)
        out.write_bytes(self.object_bytes())
        return out

    def load(self) -> LoadedProgram:
        """Load into the kernel (verifier included); raises VerifierError on refusal."""
        return load_program(self.code, name=self.name)


def load(path: str | os.PathLike[str], function: str | None = None) -> LoadedProgram:
    """Load a flow dissector from a compiled object file (pyfd's or clang's)."""
    obj = read_object(os.fspath(path))
    prog = obj.program(function)
    return load_program(prog.code, name=prog.name, license=obj.license or "GPL")
