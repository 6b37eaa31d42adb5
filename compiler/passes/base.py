"""The pass interface and the driver that runs passes to a fixed point."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from ..ir.checker import check_function
from ..ir.nodes import Function
from ..ir.text import print_function


class Pass(Protocol):
    """A transformation of one function; `run` says whether it changed anything."""

    name: str

    def run(self, fn: Function) -> bool: ...


@dataclass
class PassManager:
    """Runs passes in order, repeatedly, until none changes the function."""

    passes: Sequence[Pass]
    max_rounds: int = 16
    verify: bool = True  # run the IR checker after every pass that changed something
    dump_after: set[str] = field(default_factory=set)
    dump: Callable[[str], None] = print

    def run(self, fn: Function) -> None:
        """Optimise `fn` in place."""
        for _ in range(self.max_rounds):
            changed = False
            for p in self.passes:
                if p.run(fn):
                    changed = True
                    if self.verify:
                        check_function(fn)
                    if p.name in self.dump_after or "all" in self.dump_after:
                        self.dump(f"; after {p.name}\n{print_function(fn)}")
            if not changed:
                return
