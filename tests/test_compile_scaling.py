"""Compile cost grows linearly with the program, and a compile loads nothing it does not use (issue 17).

The programs are samples/full.py's header pass written out `copies` times in
a row (`scaled_source`): 1, 10 and 100 copies make IR of about 1x, 10x and
100x full.py's. No wall clock here (timed unit tests are forbidden: they
measure the machine): the cost of a compile is counted as the Python lines
it executes (`sys.settrace`), a count that depends only on the program and
the compiler. Work that is quadratic in the program shows as a ratio near
100 between 10 copies and 1, where linear work gives about 10. Only work in
C below the Python lines (a `list.index`, a set copy) goes uncounted; the
timings are in tests/bench_compile.py.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from pyfd import Dissector
from pyfd.compiler.driver import BACKENDS, Options, compile_lowered
from pyfd.compiler.ir.checker import check_function
from pyfd.compiler.ir.nodes import Function
from pyfd.compiler.passes import Pass, PassManager, pipeline

ROOT = Path(__file__).resolve().parent.parent


def scaled_source(copies: int) -> str:
    """A dissector that runs samples/full.py's header pass `copies` times, unrolled, then gives up as full.py does."""
    one = (
        "    verdict = lib.one_pass(pkt, keys, step)\n"
        "    if verdict != lib.NEXT_PROTO:\n"
        "        if verdict != lib.NEXT_IP_PROTO:\n"
        "            return verdict\n"
        "    step = verdict\n"
    )
    return (
        f'"""samples/full.py\'s header pass {copies} times in a row (tests/test_compile_scaling.py)."""\n\n'
        "from pyfd import BpfFlowKeys, Packet, dissector, lib, u8\n\n\n"
        "@dissector\n"
        f"def scaled{copies}(pkt: Packet, keys: BpfFlowKeys) -> int:\n"
        "    step: u8 = lib.NEXT_PROTO\n" + one * copies + "    return lib.out_of_headers(pkt, keys, step)\n"
    )


def scaled_dissector(copies: int, folder: Path) -> Dissector:
    """`scaled_source(copies)` written to `folder` and imported (the compiler reads the source from the file)."""
    path = folder / f"scaled{copies}.py"
    path.write_text(scaled_source(copies))
    spec = importlib.util.spec_from_file_location(f"scaled{copies}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = getattr(module, f"scaled{copies}")
    assert isinstance(found, Dissector)
    return found


def ir_size(fn: Function) -> int:
    """Instructions and terminators of an IR function."""
    return sum(len(b.insns) + 1 for b in fn.blocks)


def lines_executed(step: Callable[[], Any]) -> int:
    """The Python lines (and calls) `step()` executes: a deterministic measure of its work."""
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> Callable[..., Any]:
        nonlocal count
        count += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        step()
    finally:
        sys.settrace(previous)
    return count


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Dissector]:
    folder = tmp_path_factory.mktemp("scaled")
    return {copies: scaled_dissector(copies, folder) for copies in (1, 10, 100)}


def test_the_scaled_programs_grow_with_their_copies(programs: dict[int, Dissector]) -> None:
    # The premise of the ratios below: each step is 10x the IR of the one
    # before, and one copy is the size of samples/full.py (its loop body,
    # compiled once).
    from test_samples import _sample

    full = ir_size(_sample("full").lower().function)
    one, ten, hundred = (ir_size(programs[c].lower().function) for c in (1, 10, 100))
    assert 0.9 < one / full < 1.1
    assert 8.5 < ten / one < 10.5 and 9.5 < hundred / ten < 10.5


class _Counted:
    """A pass whose runs' lines are added to `work` under its name."""

    def __init__(self, inner: Pass, work: dict[str, int]) -> None:
        self.inner, self.work, self.name = inner, work, inner.name

    def run(self, fn: Function) -> bool:
        changed: list[bool] = []
        lines = lines_executed(lambda: changed.append(self.inner.run(fn)))
        self.work[self.name] = self.work.get(self.name, 0) + lines
        return changed[0]


def _pipeline_work(fn: Function) -> dict[str, int]:
    """Lines executed by the IR pipeline on `fn` (a copy), per stage: the checker (before and after), each pass to the fixed point."""
    work: dict[str, int] = {"checker": lines_executed(lambda: check_function(fn))}
    PassManager([_Counted(p, work) for p in pipeline(2)], verify=False, check_changes=False).run(fn)
    work["checker"] += lines_executed(lambda: check_function(fn))
    return work


def test_the_ir_pipeline_is_linear_in_the_program(programs: dict[int, Dissector]) -> None:
    # 10 to 100 copies: the work grows at most 15% faster than the IR, where
    # quadratic work grows 10x faster. Before issue 17's work on the passes
    # it grew 25% faster in lines (and 2.4x faster in time, some of it in C:
    # the checker's proofs walked each load's dominator chain, SimplifyCFG
    # rebuilt the predecessor lists after each merge).
    sizes = {copies: ir_size(programs[copies].lower().function) for copies in (10, 100)}
    work = {copies: _pipeline_work(programs[copies].lower().function.copy()) for copies in (10, 100)}
    growth = sum(work[100].values()) / sum(work[10].values()) / (sizes[100] / sizes[10])
    stages = ", ".join(f"{name} {work[100][name] / work[10][name]:.1f}x" for name in work[10])
    assert growth < 1.15, f"100 copies cost {growth:.2f}x the work of 10 per IR node (per stage, 100 against 10 copies: {stages})"


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_each_backend_is_linear_in_the_program(programs: dict[int, Dissector], backend: str) -> None:
    # The backends' Python side on the optimised IR, 1 to 10 copies (the llvm
    # backend's LLVM runs in C++, in a child, and is not counted).
    chosen = BACKENDS[backend]
    work: dict[int, int] = {}
    for copies in (1, 10):
        optimised = compile_lowered(programs[copies].lower(), Options(backend=backend)).ir
        work[copies] = lines_executed(functools.partial(chosen.compile, optimised, opt_level=2))
    ratio = work[10] / work[1]
    assert ratio < 12, f"{backend}: 10 copies cost {ratio:.1f}x the work of 1 ({work[1]} lines, {work[10]})"


def test_the_work_count_sees_quadratic_work() -> None:
    # The measure itself: a loop over a list inside a loop over it counts
    # about n^2 lines, so a quadratic pass cannot pass the test above.
    def quadratic(n: int) -> None:
        items = list(range(n))
        for a in items:
            for b in items:
                if a == b:
                    break

    small, large = lines_executed(lambda: quadratic(100)), lines_executed(lambda: quadratic(1000))
    assert large / small > 50


def test_a_compile_loads_neither_lark_nor_pyelftools_nor_the_runtime() -> None:
    # `pyfd compile FILE` (the object file, the IR, the listing) needs the
    # frontend, the passes, a backend and the object writer: not the IR text
    # parser (lark), the object reader (pyelftools) or the kernel runtime.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pyfd.cli import pick\n"
        "for backend in ('native', 'llvm'):\n"
        "    program = pick(Path('samples/full.py'), None).compile(backend=backend)\n"
        "    program.object_bytes(), program.ir(), program.asm()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lark', 'elftools') or m.startswith('pyfd.runtime')))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
