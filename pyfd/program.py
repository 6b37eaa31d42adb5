"""Compiled programs, and loading programs from object files."""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from .abi import (
    BSS_SECTION,
    DATA_SECTION,
    LEGACY_MAPS_SECTION,
    MAPS_SECTION,
    MAX_PACKET_OFF,
    RODATA_SECTION,
)

# Compiling makes a CompiledProgram but needs neither the runtime nor the
# object reader (pyelftools): they are imported where a program is loaded
# or an object read, so `pyfd compile` starts without them.
if TYPE_CHECKING:
    from .compiler.driver import Compilation
    from .objfile.reader import ObjectFile, ObjectProgram
    from .runtime import LoadedProgram, VerifierError

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
        """The encoded BPF instructions; a map reference holds the map's index in the object (the loader relocates it)."""
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

    def load(self, *, log_level: int = 0, config: Mapping[str, int | bytes] | None = None) -> LoadedProgram:
        """Load into the kernel with its BTF line info; VerifierError (at the Python line) on refusal.

        The kernel's verifier log and `bpftool prog dump xlated id N linum`
        show the Python lines; a BTF the kernel refuses raises BtfError. With
        `log_level` (1 or 2) the accepted program's verifier log is kept in `.log`.
        A program with maps or constants is loaded from its object, as
        `pyfd.load` loads one, with `config` setting its constants
        ({"NAME": value}: pyfd.runtime.objects.ConfigError for an unknown name
        or a value that does not fit); `.maps` then holds its maps.
        """
        from .objfile.reader import read_object
        from .runtime import VerifierError, load_program
        from .runtime.errors import slot_source_map
        from .runtime.objects import load_object

        source_map = slot_source_map(self.compilation.code.spans_by_slot())
        data = self.object_bytes()
        try:
            if config or _has_map_sections(data):
                obj = dataclasses.replace(read_object(data), path=f"dissector {self.name!r}")
                return load_object(obj, self.name, config=config, log_level=log_level, source_map=source_map, name=self.name)
            btf = self.compilation.btf()
            return load_program(
                self.code,
                name=self.name,
                btf=btf.btf,
                func_info=btf.func_info,
                line_info=btf.line_info,
                source_map=source_map,
                log_level=log_level,
            )
        except VerifierError as err:
            advise(err)  # the program came from pyfd's Python: say what to write there
            raise


# Sections that make maps (pyfd.objfile.reader reads them as libbpf does).
_MAP_SECTION_PREFIXES = (MAPS_SECTION, LEGACY_MAPS_SECTION, DATA_SECTION, RODATA_SECTION, BSS_SECTION)


def _has_map_sections(data: bytes) -> bool:
    """Whether an ELF object of pyfd's has sections that become maps, read from its section headers alone.

    Cheaper than read_object (pyelftools), which a program without maps
    does not need: it loads as before, straight from the compilation.
    """
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    (names_at,) = struct.unpack_from("<Q", data, shoff + shstrndx * 64 + 24)
    for index in range(shnum):
        name_off, _, _, _, _, size = struct.unpack_from("<IIQQQQ", data, shoff + index * 64)
        start = names_at + name_off
        name = data[start : data.index(b"\0", start)].decode("ascii", "replace")
        if size and any(name == p or name.startswith(p + ".") for p in _MAP_SECTION_PREFIXES):
            return True
    return False


def object_program(
    path: str | os.PathLike[str],
    function: str | None = None,
    *,
    config: Mapping[str, int | bytes] | None = None,
    tail_calls: Mapping[str, Mapping[int, str]] | None = None,
) -> tuple[ObjectFile, ObjectProgram]:
    """Read an object and pick the program `load` would load, refusing what the kernel could not take.

    Raises ObjectFileError naming the file for a program that calls functions
    of other sections or uses externs, malformed maps, a name the kernel
    refuses, or a license that is not ASCII, and ConfigError for constants the
    object does not have; needs no kernel, so a caller can report these
    before asking for one.
    """
    from .objfile.reader import read_object
    from .runtime.objects import prepare

    obj = read_object(os.fspath(path))
    prog, _, _ = prepare(obj, function, config=config, tail_calls=tail_calls)
    return obj, prog


def load(
    path: str | os.PathLike[str],
    function: str | None = None,
    *,
    config: Mapping[str, int | bytes] | None = None,
    tail_calls: Mapping[str, Mapping[int, str]] | None = None,
    log_level: int = 0,
) -> LoadedProgram:
    """Load a flow dissector from a compiled object file (pyfd's or clang's), with its maps.

    Every map of the object is created (with its BTF, so bpftool prints
    typed keys and values), the global-data maps filled, `.rodata` with the
    load-time constants of `config` ({"NAME": value}) and then frozen; the
    program's map references are patched; prog arrays are filled (see
    pyfd.runtime.objects: the object's `__array(values, ...)`, `tail_calls`
    as {array: {index: program}}, or bpf_flow.o's `flow_dissector_<N>`
    naming). With several programs, `function` names the entry unless the
    prog arrays hold all others. With .BTF and .BTF.ext line info the kernel
    gets them too, and a verifier refusal names the source line. The result's
    `.maps` reads and writes the maps. An object the kernel could not take as
    it stands raises ObjectFileError before anything is loaded.
    """
    obj, prog = object_program(path, function, config=config, tail_calls=tail_calls)
    return load_object_program(obj, prog, config=config, tail_calls=tail_calls, log_level=log_level)


def load_object_program(
    obj: ObjectFile,
    prog: ObjectProgram,
    *,
    config: Mapping[str, int | bytes] | None = None,
    tail_calls: Mapping[str, Mapping[int, str]] | None = None,
    log_level: int = 0,
) -> LoadedProgram:
    """Load a program `object_program` read and checked (so a caller that checked first reads the file once)."""
    from .runtime.objects import load_object

    return load_object(obj, prog.name, config=config, tail_calls=tail_calls, log_level=log_level)
