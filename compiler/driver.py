"""The compiler driver: frontend, checker, passes, backend, object file."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyfd.abi import FLOW_DISSECTOR_SECTION as SECTION
from pyfd.abi import LICENSE
from pyfd.isa import listing
from pyfd.objfile.btf import ProgramBtf, build_program_btf
from pyfd.objfile.elf import SHT, ProgramSection, RawSection, write_object

from .backends import BACKENDS
from .backends.result import CompiledCode
from .diagnostics import CompileError, Span
from .frontend import Lowered, lower_function
from .ir.checker import check_function
from .ir.windows import fit_windows, linear_only
from .ir.nodes import Function
from .ir.text import print_function
from .passes import PassManager, pipeline
from .passes.base import check_passes_default

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
    # Check every pass's changed flag against a fingerprint of the IR (a debug
    # aid; on in the tests and with $PYFD_CHECK_PASSES=1).
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

    def btf(self) -> ProgramBtf:
        """The program's BTF: FUNC `int NAME(struct __sk_buff *ctx)` and Python line info."""
        return build_program_btf(self.code.name, SECTION, self.code.spans_by_slot(), LICENSE)

    def object_bytes(self) -> bytes:
        """A relocatable BPF ELF object (with .BTF and .BTF.ext) that bpftool and libbpf load."""
        btf = self.btf()
        extra = [RawSection(".BTF", SHT.PROGBITS, btf.btf), RawSection(".BTF.ext", SHT.PROGBITS, btf.btf_ext)]
        return write_object([ProgramSection(self.name, SECTION, self.code.code)], license=LICENSE, extra_sections=extra)

    def ir_text(self) -> str:
        """The optimised IR in its text form."""
        return print_function(self.ir)

    def asm_text(self) -> str:
        """BPF assembly with the Python source lines the instructions came from."""
        return annotated_listing(self.code)


def annotated_listing(code: CompiledCode) -> str:
    """A listing where each run of instructions is preceded by its Python line."""
    out: list[str] = []
    last: tuple[str, int] | None = None
    # One listing of the whole program, so a jump's `# -> N` names its absolute
    # target slot (listing each instruction alone would count from 0).
    lines = listing(code.insns).splitlines()
    for insn, line in zip(code.insns, lines, strict=True):
        span = insn.span  # a Span from the backends, or None
        if isinstance(span, Span) and (span.file, span.line) != last:
            last = (span.file, span.line)
            out.append(f"; {span.file.rsplit('/', 1)[-1]}:{span.line}: {span.source_line().strip()}")
        out.append(line)
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
    ir = copy.deepcopy(lowered.function)
    if not options.paged:
        linear_only(ir)
    check_function(ir)
    manager = PassManager(
        pipeline(options.opt_level, thread_jumps=backend.thread_jumps),
        check_changes=options.check_passes,
        dump_after=set(options.dump_after),
        dump=options.dump,
    )
    manager.run(ir)
    fit_windows(ir)
    check_function(ir)
    return Compilation(lowered, ir, backend.compile(ir, opt_level=options.opt_level), options)
