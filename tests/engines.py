"""The compiled engines a behaviour test compares with the Python run: pyfd's interpreter and the kernel.

A test parametrized over COMPILED runs once in the interpreter (pyfd.vm,
everywhere) and once in the kernel (BPF_PROG_TEST_RUN; marked `kernel`, so
without privileges it is skipped, all such skips folding into one summary
line, and under CI=true it fails). Each is compared with the Python run, so
where both run the three legs agree.

    @pytest.mark.parametrize("engine", COMPILED)
    def test_x(engine: str) -> None:
        with load(dissector.compile(), engine) as program:
            program.run(frame)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
from kernel import skip_unless_kernel

import pyfd
import pyfd.vm
from pyfd import CompiledProgram, Dissector
from pyfd.compiler.driver import BACKENDS

COMPILED = [pytest.param("vm", id="vm"), pytest.param("kernel", id="kernel", marks=pytest.mark.kernel)]


def load(program: CompiledProgram | str | os.PathLike[str], engine: str) -> contextlib.AbstractContextManager[Any]:
    """A compiled program (or an object file) loaded on `engine`, as a context manager; `.run(frame, flags=...)`."""
    if engine == "kernel":
        skip_unless_kernel()
        if isinstance(program, CompiledProgram):
            return program.load()
        return pyfd.load(program)
    if engine != "vm":
        raise ValueError(f"no compiled engine {engine!r} (vm or kernel)")
    return pyfd.vm.load(program)


_COMPILED: dict[tuple[int, str, tuple[tuple[str, Any], ...]], tuple[Dissector, CompiledProgram]] = {}


def compiled(dissector: Dissector, backend: str, **options: Any) -> CompiledProgram:
    """The dissector compiled by `backend` with `options`, once per session: the kernel and interpreter legs share it."""
    key = (id(dissector), backend, tuple(sorted(options.items())))
    found = _COMPILED.get(key)
    if found is None or found[0] is not dissector:
        found = _COMPILED[key] = (dissector, dissector.compile(backend=backend, **options))
    return found[1]


@contextlib.contextmanager
def load_on_every_backend(dissector: Dissector, engine: str, **options: Any) -> Iterator[dict[str, Any]]:
    """The dissector compiled by every backend (with `options`, such as opt_level), each loaded on `engine`."""
    with contextlib.ExitStack() as stack:
        yield {b: stack.enter_context(load(compiled(dissector, b, **options), engine)) for b in BACKENDS}
