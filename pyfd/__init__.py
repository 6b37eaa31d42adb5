"""pyfd: write Linux BPF flow dissectors in restricted, type-annotated Python.

    from pyfd import dissector, BpfFlowKeys, Packet, BPF_OK

    @dissector
    def minimal(pkt: Packet, keys: BpfFlowKeys) -> int:
        return BPF_OK

`minimal.compile()` gives a BPF program, `.load()` puts it in the kernel and
`.run(frame)` runs it there; `minimal.run_python(frame)` runs the same
function as CPython with the kernel's integer semantics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .constants import *  # noqa: F403 - the kernel's constants are the language's
from .dissector import Dissector, dissector
from .headers import Bits, Bytes, Header
from .keys import BpfFlowKeys
from .packet import Packet
from .types import i32, i64, u8, u16, u32, u64

if TYPE_CHECKING:
    from .program import CompiledProgram, load

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Loading needs the runtime (ctypes, pyelftools); import it on first use.
    if name in ("load", "CompiledProgram"):
        from . import program

        return getattr(program, name)
    raise AttributeError(f"module 'pyfd' has no attribute {name!r}")
