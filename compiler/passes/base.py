"""The pass interface and the driver that runs passes to a fixed point."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol

from ..diagnostics import InternalCompilerError
from ..ir.checker import IRCheckError, check_function
from ..ir.nodes import Function
from ..ir.text import print_function

CHECK_PASSES_ENV = "PYFD_CHECK_PASSES"
"""Set to 1 to check the IR and the changed flag after every pass (the test suite does)."""


class Pass(Protocol):
    """A transformation of one function; `run` says whether it changed anything."""

    name: str

    def run(self, fn: Function) -> bool: ...


def rounds_to_fixed_point(one_round: Callable[[Function], bool], fn: Function) -> bool:
    """Run `one_round` until it changes nothing; whether any round changed something (a pass run on its own output finds nothing)."""
    changed = False
    while one_round(fn):
        changed = True
    return changed


class PassContractError(InternalCompilerError):
    """A pass's changed flag is wrong: the fixed-point loop relies on it."""


def check_passes_default() -> bool:
    """Whether the checks after every pass are on unless asked otherwise ($PYFD_CHECK_PASSES)."""
    return os.environ.get(CHECK_PASSES_ENV, "") not in ("", "0")


def fingerprint(fn: Function) -> Hashable:
    """A snapshot that compares unequal after any edit of `fn`.

    IR nodes are frozen, so holding the node objects (not printing them)
    is enough: a pass can only change a block by replacing nodes or lists.
    """
    return (fn.name, fn.span, tuple((b.label, tuple(b.insns), b.term) for b in fn.blocks))


@dataclass
class PassManager:
    """Runs passes in order, repeatedly, until none changes the function."""

    passes: Sequence[Pass]
    max_rounds: int = 16
    # Run the IR checker after every pass that changed something: a broken
    # invariant is reported with the pass that broke it. A compile checks
    # the IR before and after the passes anyway (driver.compile_lowered), so
    # this is a debug aid, on where `check_changes` is.
    verify: bool = field(default_factory=check_passes_default)
    # Compare a fingerprint around every pass. A pass that returns False but
    # changed the function can stop the loop before the fixed point; one that
    # returns True but changed nothing makes it run rounds for nothing (and,
    # always True, all max_rounds of them). Both are bugs in the pass.
    check_changes: bool = field(default_factory=check_passes_default)
    dump_after: set[str] = field(default_factory=set)
    dump: Callable[[str], None] = print

    def run(self, fn: Function) -> None:
        """Optimise `fn` in place.

        Round after round until a whole round changes nothing, but it stops
        as soon as every pass has run once since the last change: the ones
        a full round would run next would see the function they saw last
        time and find nothing again.
        """
        quiet = 0  # passes run in a row that changed nothing
        for _ in range(self.max_rounds):
            changed = False
            for p in self.passes:
                if quiet == len(self.passes):
                    return
                before = fingerprint(fn) if self.check_changes else None
                said = bool(p.run(fn))
                if self.check_changes and said != (fingerprint(fn) != before):
                    did = "did not change" if said else "changed"
                    raise PassContractError(f"pass {p.name} returned {said} but {did} the function", fn.span)
                quiet = 0 if said else quiet + 1
                if said:
                    changed = True
                    if self.verify:
                        self._check(fn, p)
                    if p.name in self.dump_after or "all" in self.dump_after:
                        self.dump(f"; after {p.name}\n{print_function(fn)}")
            if not changed:
                return

    @staticmethod
    def _check(fn: Function, p: Pass) -> None:
        try:
            check_function(fn)
        except IRCheckError as exc:
            raise IRCheckError(f"IR check failed after pass {p.name}: {exc.message}", exc.span) from exc
