"""The function behind `@dissector`: what the compiler needs to know of a decorated function."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .keys import BpfFlowKeys
from .packet import Packet


class DissectorFunction:
    """A Python function marked as a flow dissector: the function and its name.

    `pyfd.Dissector` (pyfd/dissector.py) adds compiling and running it. The
    compiler knows decorated functions by this class (a dissector called from
    another is inlined as a helper) and so never imports the layer above it.
    """

    def __init__(self, fn: Callable[[Packet, BpfFlowKeys], int]) -> None:
        self.fn = fn
        self.name: str = fn.__name__

    def __repr__(self) -> str:
        return f"<dissector {self.name} from {Path(self.fn.__code__.co_filename).name}>"
