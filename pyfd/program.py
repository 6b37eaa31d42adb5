"""Compiled programs, and loading programs from object files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from .abi import LICENSE, MAX_PACKET_OFF
from .objfile.reader import ObjectFile, ObjectFileError, ObjectProgram, check_loadable, read_object
from .runtime import LoadedProgram, VerifierError, load_program, valid_prog_name
from .runtime.errors import SourceLocation, SourceLocator, slot_source_map

if TYPE_CHECKING:
    from .compiler.driver import Compilation


# What to change in a pyfd dissector, per family of verifier refusal (the
# runtime's explanations, runtime/errors.py, speak of BPF only). pyfd's own
# code gets these refusals only from a bug, or from a kernel stricter than
# this one; they say what the Python construct that does it right is.
VERIFIER_ADVICE: Mapping[str, str] = MappingProxyType(
    {
        "packet-access": (
            "In pyfd's Python, pkt.header(...) adds the check, clamping a variable offset first "
            f"(`if off > {MAX_PACKET_OFF:#x} - N: fail`); read packet bytes only through it."
        ),
        "context-access": "In pyfd's Python, results are written as `keys.FIELD = ...`.",
        "packet-write": "In pyfd's Python, that is `keys.FIELD = ...`.",
        "loop": "In pyfd's Python, such a loop is `for _ in range(N)` with a constant N.",
        "return-value": "In pyfd's Python, every path ends in `return BPF_OK`, `return BPF_DROP` or `return BPF_FLOW_DISSECTOR_CONTINUE`.",
    }
)


def advise(err: VerifierError) -> None:
    """Add to `err` the advice for a dissector written in pyfd's Python (VERIFIER_ADVICE)."""
    err.advise(VERIFIER_ADVICE.get(err.family or ""))


class CompiledProgram:
    """A dissector compiled to BPF: instructions, listings, an object file, a loader."""

    def __init__(self, compilation: Compilation) -> None:
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

    def llvm_ir(self) -> str | None:
        """The LLVM IR the llvm backend compiled (after LLVM's optimisations); None for the native backend."""
        return self.compilation.llvm_ir

    def object_bytes(self) -> bytes:
        """An ELF object (section `flow_dissector`, license GPL) for bpftool and libbpf."""
        return self.compilation.object_bytes()

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the ELF object to `path`."""
        out = Path(path)
        out.write_bytes(self.object_bytes())
        return out

    def load(self, *, log_level: int = 0) -> LoadedProgram:
        """Load into the kernel with its BTF line info; VerifierError (at the Python line) on refusal.

        The kernel's verifier log and `bpftool prog dump xlated id N linum`
        show the Python lines; a BTF the kernel refuses raises BtfError. With
        `log_level` (1 or 2) the accepted program's verifier log is kept in `.log`.
        """
        btf = self.compilation.btf()
        try:
            return load_program(
                self.code,
                name=self.name,
                btf=btf.btf,
                func_info=btf.func_info,
                line_info=btf.line_info,
                source_map=slot_source_map(self.compilation.code.spans_by_slot()),
                log_level=log_level,
            )
        except VerifierError as err:
            advise(err)  # the program came from pyfd's Python: say what to write there
            raise


def object_program(path: str | os.PathLike[str], function: str | None = None) -> tuple[ObjectFile, ObjectProgram]:
    """Read an object and pick the program `load` would load, refusing what the kernel could not take.

    Raises ObjectFileError naming the file for a program that uses maps or
    global variables, a name the kernel refuses, or a license that is not
    ASCII; needs no kernel, so a caller can report these before asking for one.
    """
    obj = read_object(os.fspath(path))
    prog = obj.program(function)
    check_loadable(obj, prog)
    try:
        valid_prog_name(prog.name)  # the kernel's rule (bpf_obj_name_cpy), checked here to name the file
    except ValueError as exc:
        raise ObjectFileError(f"{obj.path}: program {prog.name!r} cannot be loaded under its own name: {exc}") from None
    return obj, prog


def load(path: str | os.PathLike[str], function: str | None = None) -> LoadedProgram:
    """Load a flow dissector from a compiled object file (pyfd's or clang's).

    With .BTF and .BTF.ext line info for the program, the kernel gets them
    too, and a verifier refusal names the source line; without them the
    program loads as plain instructions. An object the kernel could not take
    as it stands raises ObjectFileError before anything is loaded
    (`object_program`).
    """
    return load_object_program(*object_program(path, function))


def load_object_program(obj: ObjectFile, prog: ObjectProgram) -> LoadedProgram:
    """Load a program `object_program` read and checked (so a caller that checked first reads the file once)."""
    debug = _object_debug_info(obj, prog)
    if debug is None:
        return load_program(prog.code, name=prog.name, license=obj.license or LICENSE)
    btf, func_info, line_info, source_map = debug
    return load_program(
        prog.code,
        name=prog.name,
        license=obj.license or LICENSE,
        btf=btf,
        func_info=func_info,
        line_info=line_info,
        source_map=source_map,
    )


def _object_debug_info(obj: ObjectFile, prog: ObjectProgram) -> tuple[bytes, bytes, bytes, SourceLocator] | None:
    """The BTF, kernel func/line info and a source map for one program of an object, if it has them."""
    from .objfile.btf import BtfFormatError, fixup_datasecs, kernel_func_info, kernel_line_info, parse_btf_ext

    btf, btf_ext = obj.sections.get(".BTF"), obj.sections.get(".BTF.ext")
    if not btf or not btf_ext:
        return None
    try:
        info = parse_btf_ext(btf_ext, btf).get(prog.section)
        btf = fixup_datasecs(btf, obj.section_sizes, obj.symbols)
    except BtfFormatError as exc:
        raise ObjectFileError(f"{obj.path}: malformed .BTF or .BTF.ext: {exc}") from None
    if info is None:
        return None
    start, end = prog.offset, prog.offset + len(prog.code)
    funcs = [f for f in info.func_info if start <= f.insn_off < end]
    lines = [line for line in info.line_info if start <= line.insn_off < end]
    if not funcs and not lines:
        return None
    slots: list[SourceLocation | None] = [None] * (len(prog.code) // 8)
    for line in lines:
        col = max(line.col - 1, 0)  # BTF columns are 1-based
        slots[(line.insn_off - start) // 8] = SourceLocation(line.file_name, line.line, col, None, line.line_text)
    return btf, kernel_func_info(funcs, start), kernel_line_info(lines, start), slot_source_map(slots)
