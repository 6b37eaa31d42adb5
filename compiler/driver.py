"""The compiler driver: frontend, checker, passes, backend, object file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyfd.abi import FLOW_DISSECTOR_SECTION as SECTION
from pyfd.abi import LICENSE
from pyfd.isa import BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE
from pyfd.abi import MAP_DEF_SIZE, MAPS_SECTION, RODATA_SECTION, MapType
from pyfd.objfile.btf import ProgramBtf, build_program_btf
from pyfd.objfile.elf import SHF, SHT, DataSection, ProgramSection, RawSection, write_object
from pyfd.objfile.maps import (
    MapDefinition, RodataVariable, add_globals_btf, maps_section, relocatable_code, rodata_alignment, rodata_section,
)

from .backends import BACKENDS
from .backends.result import CompiledCode
from .collector import collector_paused
from .diagnostics import CompileError, Span
from .frontend import Lowered, lower_function
from .ir.checker import check_function
from .ir.nodes import Function, MapKind
from .ir.windows import fit_windows, linear_only
from .ir.text import print_function
from .passes import PassManager, pipeline
from .passes.base import check_passes_default

# The kernel's number of each kind of map (enum bpf_map_type).
_MAP_TYPES = {MapKind.HASH: int(MapType.HASH), MapKind.ARRAY: int(MapType.ARRAY), MapKind.PERCPU_ARRAY: int(MapType.PERCPU_ARRAY)}

__all__ = ["BACKENDS", "Compilation", "Options", "annotated_listing", "compile_function", "compile_lowered"]


@dataclass(frozen=True)
class Options:
    """How to compile: backend, optimisation level, IR dumps."""

    backend: str = "native"
    opt_level: int = 2
    # Read headers that lie past the linear part of the packet (in the skb's
    # page fragments) through bpf_skb_load_bytes. Off, a header outside the
    # linear part fails its check as under BPF_PROG_TEST_RUN (the control in
    # the real-path tests).
    paged: bool = True
    dump_after: frozenset[str] = field(default_factory=frozenset)
    dump: Callable[[str], None] = print
    # After every pass, run the IR checker and check the pass's changed flag
    # against a fingerprint of the IR (a debug aid; on in the tests and with
    # $PYFD_CHECK_PASSES=1). Off, the checker runs before and after the passes.
    check_passes: bool = field(default_factory=check_passes_default)


@dataclass(frozen=True)
class Compilation:
    """Everything one compile produced."""

    lowered: Lowered
    ir: Function  # the optimised, checked IR the backend compiled
    code: CompiledCode
    options: Options

    @property
    def name(self) -> str:
        """The dissector's name."""
        return self.ir.name

    @property
    def llvm_ir(self) -> str | None:
        """The optimised LLVM module the llvm backend compiled; None from a backend without one."""
        return self.code.llvm_ir

    @property
    def map_definitions(self) -> tuple[MapDefinition, ...]:
        """The maps of the object, in order (the index an instruction's BPF_PSEUDO_MAP_FD names)."""
        return tuple(MapDefinition(m.name, _MAP_TYPES[m.kind], m.key, m.value, m.max_entries) for m in self.ir.maps)

    @property
    def rodata_variables(self) -> tuple[RodataVariable, ...]:
        """The load-time constants in `.rodata`, with their defaults."""
        return tuple(RodataVariable(c.name, c.type, c.offset, c.default) for c in self.ir.configs)

    def btf(self) -> ProgramBtf:
        """The program's BTF: FUNC `int NAME(struct __sk_buff *ctx)`, Python line info, the maps and .rodata."""
        maps, variables = self.map_definitions, self.rodata_variables
        add = (lambda builder, int_id: add_globals_btf(builder, maps, variables, int_id)) if maps or variables else None
        return build_program_btf(self.code.name, SECTION, self.code.spans_by_slot(), LICENSE, add_types=add)

    def object_bytes(self) -> bytes:
        """A relocatable BPF ELF object (with .BTF and .BTF.ext, .maps and .rodata) that bpftool and libbpf load."""
        btf = self.btf()
        extra = [RawSection(".BTF", SHT.PROGBITS, btf.btf), RawSection(".BTF.ext", SHT.PROGBITS, btf.btf_ext)]
        maps, variables = self.map_definitions, self.rodata_variables
        code, relocations = relocatable_code(self.code.insns, maps, variables)
        data = []
        if variables:  # as clang: read-only data, aligned to its widest variable
            data.append(DataSection(RODATA_SECTION, rodata_section(variables), SHF.ALLOC, rodata_alignment(variables),
                                    tuple((v.name, v.offset, v.size) for v in variables)))
        if maps:
            data.append(DataSection(MAPS_SECTION, maps_section(maps), SHF.ALLOC | SHF.WRITE, 8,
                                    tuple((m.name, i * MAP_DEF_SIZE, MAP_DEF_SIZE) for i, m in enumerate(maps))))
        program = ProgramSection(self.name, SECTION, code, relocations)
        return write_object([program], license=LICENSE, extra_sections=extra, data_sections=data)

    def ir_text(self) -> str:
        """The optimised IR in its text form."""
        return print_function(self.ir)

    def asm_text(self) -> str:
        """BPF assembly with the Python source lines the instructions came from (and the maps' names)."""
        return annotated_listing(self.code, _reference_names(self.ir))


def _reference_names(fn: Function) -> dict[tuple[int, int], str]:
    """What a map reference of the code names: (src, imm) of its BPF_LD_IMM64 -> the map's or the constant's name."""
    names = {(BPF_PSEUDO_MAP_FD, index): m.name for index, m in enumerate(fn.maps)}
    names.update({(BPF_PSEUDO_MAP_VALUE, c.offset << 32 | len(fn.maps)): c.name for c in fn.configs})
    return names


def annotated_listing(code: CompiledCode, names: dict[tuple[int, int], str] | None = None) -> str:
    """A listing where each run of instructions is preceded by its Python line; a map reference says which (`names`)."""
    out: list[str] = []
    last: tuple[str, int] | None = None
    # One listing of the whole program, so a jump's `# -> N` names its absolute
    # target slot (listing each instruction alone would count from 0).
    from pyfd.isa.asm import listing  # deferred: a compile to an object file prints no listing

    lines = listing(code.insns).splitlines()
    for insn, line in zip(code.insns, lines, strict=True):
        span = insn.span  # a Span from the backends, or None
        if isinstance(span, Span) and (span.file, span.line) != last:
            last = (span.file, span.line)
            out.append(f"; {span.file.rsplit('/', 1)[-1]}:{span.line}: {span.source_line().strip()}")
        name = (names or {}).get((insn.src, insn.imm)) if insn.is_ld_imm64 else None
        out.append(f"{line}  ; {name}" if name else line)
    return "\n".join(out) + "\n"


def compile_function(fn: Callable[..., Any], options: Options = Options()) -> Compilation:
    """Compile a dissector function; raises CompileError for anything wrong in it."""
    lowered = lower_function(fn)
    return compile_lowered(lowered, options)


def compile_lowered(lowered: Lowered, options: Options = Options()) -> Compilation:
    """Check, optimise and compile already-lowered IR."""
    backend = BACKENDS.get(options.backend)
    if backend is None:
        raise CompileError(f"unknown backend {options.backend!r}; choose one of: {', '.join(BACKENDS)}", None)
    # The checker runs on the frontend's IR and on what the passes made of
    # it; after every pass too only with `check_passes` (the tests), where a
    # failure names the pass that broke the IR.
    with collector_paused():
        ir = lowered.function.copy()
        if not options.paged:
            linear_only(ir)
        check_function(ir)
        manager = PassManager(
            pipeline(options.opt_level, thread_jumps=backend.thread_jumps),
            verify=options.check_passes,
            check_changes=options.check_passes,
            dump_after=set(options.dump_after),
            dump=options.dump,
        )
        manager.run(ir)
        fit_windows(ir)
        check_function(ir)
        code = backend.compile(ir, opt_level=options.opt_level)
    return Compilation(lowered, ir, code, options)
