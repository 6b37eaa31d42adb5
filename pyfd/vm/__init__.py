"""pyfd.vm: run a compiled flow dissector without the kernel, with every memory access checked.

    import pyfd.vm
    vm = pyfd.vm.load(full.compile())        # or an object file, pyfd's or clang's
    result = vm.run(frame, flags=0)          # a RunResult, as LoadedProgram.run gives
    vm.insns_executed                        # instructions the last run executed
    vm.maps["counters"][0]                   # maps, as a loaded program's

It runs the instructions the compiler emitted (every instruction class of
the v4 ISA, BPF-to-BPF calls, tail calls through prog arrays, the helpers a
flow dissector calls), under the presets of BPF_PROG_TEST_RUN, so its
results are the kernel's. It is not a verifier: the kernel decides what
loads. But an access outside the region its pointer points into (the
packet, the stack, the keys, a map value, the context) stops the run with a
VmAccessError that names the instruction and, with line info, the Python
line: a sanitizer for miscompiles, on the frames that reach it. Needs
neither root nor the bpf syscall.

The interpreter's own modules (machine, translate, maps, memory, errors)
import only the leaves (pyfd.abi, pyfd.isa, pyfd.objfile); this front adds
the run contract it shares with the kernel run: RunResult, FlowKeys and the
frame and flag checks of pyfd.runtime.program.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Any

from ..abi import FLOW_DISSECTOR_SECTION, LICENSE
from ..isa import Instruction, encode_program
from ..objfile.elf import ELF_MAGIC
from typing import TYPE_CHECKING

from ..objfile.reader import ObjectFile, ObjectProgram, read_object
from .errors import VmAccessError, VmError, VmLocation
from .machine import HELPERS, Entry, Machine
from .maps import VmMap, VmMapCollection

if TYPE_CHECKING:
    from ..runtime.program import RunResult

__all__ = ["HELPERS", "VmAccessError", "VmError", "VmLocation", "VmMap", "VmMapCollection", "VmProgram", "load"]


class VmProgram:
    """A flow dissector in the interpreter: `.run(frame, flags=...)` as a loaded program's, `.maps`, `.insns_executed`."""

    def __init__(self, machine: Machine) -> None:
        # The run contract is the kernel run's (pyfd.runtime.program), imported
        # here so that `import pyfd.vm` alone loads no runtime.
        from ..runtime.flowkeys import FlowKeys
        from ..runtime.program import RunResult, check_flags, check_frame

        self._result, self._keys, self._check_frame, self._check_flags = RunResult, FlowKeys, check_frame, check_flags
        self.machine = machine
        self.name = machine.name
        self.maps: VmMapCollection = machine.maps

    def __repr__(self) -> str:
        return f"<VmProgram {self.name!r} ({len(self.maps)} maps)>"

    @property
    def entry(self) -> Entry:
        """The program as a prog array slot takes it (`other.maps["jmp"][0] = vm`)."""
        return self.machine.entry

    @property
    def insns_executed(self) -> int:
        """Instructions the last run executed (tail-called programs and BPF-to-BPF calls included)."""
        return self.machine.insns_executed

    def run(self, frame: bytes, *, flags: int = 0) -> RunResult:
        """Run once on a frame (from its Ethernet header) as BPF_PROG_TEST_RUN would; VmAccessError on a bad access.

        Takes and refuses the frames and flags LoadedProgram.run does
        (check_frame, check_flags). `duration_ns` is the interpreter's time.
        """
        data = self._check_frame(frame)
        flags = self._check_flags(flags)
        start = time.perf_counter_ns()
        retval, keys = self.machine.execute(data, flags)
        return self._result(retval, self._keys(keys), time.perf_counter_ns() - start)

    def execute(
        self,
        frame: bytes,
        *,
        flags: int = 0,
        nhoff: int = 14,
        n_proto: int | None = None,
        linear: int | None = None,
        skb: bool = False,
    ) -> RunResult:
        """Run with other entry values than a test run's: see Machine.execute (receive-path calls, paged packets)."""
        data = bytes(frame)
        start = time.perf_counter_ns()
        retval, keys = self.machine.execute(data, self._check_flags(flags), nhoff=nhoff, n_proto=n_proto, linear=linear, skb=skb)
        return self._result(retval, self._keys(keys), time.perf_counter_ns() - start)

    def bench(self, frame: bytes, *, flags: int = 0, repeat: int = 10_000) -> int:
        """Run `repeat` times and return the average nanoseconds per run."""
        if repeat < 1:
            raise ValueError(f"repeat must be at least 1, got {repeat}")
        data = self._check_frame(frame)
        flags = self._check_flags(flags)
        execute = self.machine.execute
        start = time.perf_counter_ns()
        for _ in range(repeat):
            execute(data, flags)
        return (time.perf_counter_ns() - start) // repeat

    # LoadedProgram is a context manager that closes its fd; the interpreter holds nothing to close.
    def close(self) -> None:
        """Nothing to release (parity with LoadedProgram)."""

    def __enter__(self) -> VmProgram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def code_object(code: bytes, name: str) -> ObjectFile:
    """An object holding one program of raw instructions, as pyfd.vm.load takes bytes without ELF."""
    return ObjectFile(f"<instructions of {name!r}>", [ObjectProgram(name, FLOW_DISSECTOR_SECTION, code)], LICENSE, {FLOW_DISSECTOR_SECTION: code})


def load(
    source: Any,
    function: str | None = None,
    *,
    tail_calls: Mapping[str, Mapping[int, str]] | None = None,
    config: Mapping[str, int | bytes] | None = None,
    seed: int = 0,
) -> VmProgram:
    """Load a dissector into the interpreter: a CompiledProgram, a @dissector (compiled here), an object file's path or bytes.

    Bytes that are no ELF object, or a list of pyfd.isa Instructions, are
    one program's instructions (without maps), named `function` or "prog".

    As `pyfd.load` does: every map of the object is made (global data
    filled, `.rodata` with the constants of `config`), prog arrays filled
    (the object's `__array(values, ...)`, `tail_calls` as {array: {index:
    program}}, or bpf_flow.o's `flow_dissector_<N>` naming), and with
    several programs `function` names the entry unless the prog arrays hold
    all others. `seed` seeds bpf_get_prandom_u32. ObjectFileError for a
    file that is no BPF object, VmError for code the interpreter cannot run.
    """
    spans = None
    if callable(getattr(source, "compile", None)) and not hasattr(source, "object_bytes"):
        source = source.compile()  # a Dissector: its default compilation
    if hasattr(source, "object_bytes") and hasattr(source, "compilation"):
        obj = dataclasses.replace(read_object(source.object_bytes()), path=f"dissector {source.name!r}")
        spans = source.compilation.code.spans_by_slot()
    elif isinstance(source, ObjectFile):
        obj = source
    elif isinstance(source, (bytes, bytearray, memoryview)) and not bytes(source[:4]) == ELF_MAGIC:
        obj = code_object(bytes(source), function or "prog")
    elif isinstance(source, list) and all(isinstance(insn, Instruction) for insn in source):
        obj = code_object(encode_program(source), function or "prog")
    elif isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike)):
        obj = read_object(source)
    else:
        raise TypeError(
            "pyfd.vm.load takes a CompiledProgram, a dissector, an object file's path or bytes, or instructions, "
            f"not {type(source).__name__}"
        )
    return VmProgram(Machine(obj, function, tail_calls=tail_calls, config=config, spans=spans, seed=seed))
