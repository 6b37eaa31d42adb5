"""`@dissector`: one function, compiled for the kernel or run as plain Python."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .constants import ETH_HLEN
from .function import DissectorFunction
from .keys import BpfFlowKeys
from .maps import MapState, PythonState
from .packet import DissectorExit, Packet

if TYPE_CHECKING:
    from .compiler.frontend import Lowered
    from .program import CompiledProgram
    from .runtime import RunResult
    from .runtime.program import Frame


class Dissector(DissectorFunction):
    """A flow dissector written in restricted Python.

    Call it like the function (`d(pkt, keys)`), run it on a frame as CPython
    with the kernel's integer widths (`run_python`), or compile it for the
    kernel (`compile`).
    """

    def __init__(self, fn: Callable[[Packet, BpfFlowKeys], int]) -> None:
        super().__init__(fn)
        functools.update_wrapper(self, fn)
        self._lowered: Lowered | None = None
        self._python: Callable[[Packet, BpfFlowKeys], int] | None = None
        self._state: PythonState | None = None

    def lower(self) -> Lowered:
        """The frontend's result (IR and types); raises CompileError. Cached."""
        if self._lowered is None:
            from .compiler.frontend import lower_function

            self._lowered = lower_function(self.fn)
        return self._lowered

    def compile(self, *, backend: str = "native", opt_level: int = 2, paged: bool = True) -> CompiledProgram:
        """Compile for the kernel; raises CompileError with the Python location of any problem.

        `backend` is "native" (pyfd's own instruction selection and register
        allocation) or "llvm" (the same IR through LLVM's BPF target, via
        llvmlite); `opt_level` 0 only cleans up the control flow, 1 and 2 optimise.
        With `paged` (the default) a header past the linear part of the packet
        (in the skb's page fragments, on the real receive path) is copied with
        bpf_skb_load_bytes; without it, its check fails there as it does past
        the end of the packet.
        """
        from .compiler.driver import Options, compile_lowered
        from .program import CompiledProgram

        options = Options(backend=backend, opt_level=opt_level, paged=paged)
        return CompiledProgram(compile_lowered(self.lower(), options))

    def python_function(self) -> Callable[[Packet, BpfFlowKeys], int]:
        """The function as CPython runs it, with BPF's integer widths, on this dissector's maps."""
        if self._python is None:
            from .compiler.pyinstrument import instrument

            self._python = instrument(self.lower(), self.state)
        return self._python

    @property
    def state(self) -> PythonState:
        """The maps and Configs of the Python run (made at first use; kept across runs until `reset`)."""
        if self._state is None:
            lowered = self.lower()
            self._state = PythonState(lowered.maps, lowered.configs)
        return self._state

    @property
    def maps(self) -> dict[str, MapState]:
        """The Python run's maps by name, with the kernel's rules (pyfd.maps.MapState); they keep what runs left in them."""
        return self.state.maps

    @property
    def config(self) -> dict[str, int]:
        """The values the Python run's Configs have: their defaults, or what `reset(config=...)` set."""
        return dict(self.state.config)

    def reset(self, *, config: Mapping[str, int] | None = None) -> None:
        """Empty the Python run's maps and set its Configs, as a fresh `load(config=...)` starts them.

        `config` maps Config names to values; one it does not name keeps its
        default. An unknown name raises KeyError, a value its type cannot
        hold ValueError.
        """
        self.state.reset(config)

    def __call__(self, pkt: Packet, keys: BpfFlowKeys) -> int:
        """Run as CPython on `pkt`, filling `keys`; a failed bounds check returns BPF_DROP."""
        try:
            return int(self.python_function()(pkt, keys))
        except DissectorExit as exit_:
            return exit_.retval

    def run_python(self, frame: Frame, *, flags: int = 0) -> RunResult:
        """Run on a frame as BPF_PROG_TEST_RUN would run the compiled program, in CPython.

        Takes the frames and flags `LoadedProgram.run` takes, and refuses the
        ones it refuses (a scapy packet is fine; an int, or flags outside 32
        unsigned bits, are not). The maps keep what each run writes, as the
        kernel's do between runs (`maps`, `reset`).
        """
        from .runtime import FlowKeys, RunResult
        from .runtime.program import check_flags, check_frame

        data = check_frame(frame)  # the same limits BPF_PROG_TEST_RUN has
        keys = BpfFlowKeys.at_entry(data, flags=check_flags(flags))
        retval = self(Packet(data), keys)
        # What the kernel does with the keys after any return (net/core/flow_dissector.c).
        keys.clamp_offsets(ETH_HLEN, len(data))
        return RunResult(retval & 0xFFFFFFFF, FlowKeys.from_bytes(keys.raw), 0)


def dissector(fn: Callable[[Packet, BpfFlowKeys], int]) -> Dissector:
    """Mark a function `(pkt: Packet, keys: BpfFlowKeys) -> int` as a flow dissector."""
    if isinstance(fn, Dissector):
        raise TypeError(f"@dissector is applied twice to {fn.name}")
    if not callable(fn) or not hasattr(fn, "__code__"):
        raise TypeError(f"@dissector applies to a function, not {type(fn).__name__}")
    return Dissector(fn)
