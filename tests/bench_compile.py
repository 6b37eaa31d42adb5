"""Benchmark: how long compiling takes, in process by phase and as a whole `pyfd compile`, against clang (issue 17).

    python tests/bench_compile.py [--rounds N] [--sizes 1,10,100] [--against TREE] [--skip-process]

Not a test (timings vary with the machine and its load). It prints:

- imports: the time to import what `pyfd compile` imports, in a fresh
  interpreter, and whether lark, pyelftools or the runtime came with it;
- phases: one compile of samples/full.py and of the programs of 10x and 100x
  its size (tests/test_compile_scaling.py's `scaled_source`), split into
  lowering, the IR checker, each pass (summed over the rounds of the fixed
  point), the windows, each backend; the cyclic GC paused as the driver
  pauses it, and the whole compile once more with it running;
  (`PYTHONPATH=DIR python tests/bench_compile.py --skip-process`, DIR made
  by `--overlay TREE DIR`, times another tree's phases the same way);
- process: `pyfd compile samples/full.py -o X.o` for each backend against
  `clang-19 -O2 -g -target bpf -c bpf_flow.c` (../shared/reference), in
  alternating rounds, as medians and as ratios to clang. With --against TREE
  (a checkout of another pyfd, e.g. main), its `pyfd compile` runs in the
  same rounds, so the ratio before/after comes from one run.

Whole processes run as an installed pyfd runs: with its modules' bytecode
cached (pip writes the .pyc files when it installs). This environment sets
PYTHONDONTWRITEBYTECODE, which makes every process compile every module it
imports from source; the children here get a cache of their own in a
temporary folder instead (PYTHONPYCACHEPREFIX), filled by a first, untimed
run.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
REFERENCE = ROOT.parent.parent / "shared" / "reference"  # /work/shared/reference from a worktree in /work/wt/NAME
if not REFERENCE.is_dir():
    REFERENCE = Path("/work/shared/reference")
CLANG = os.environ.get("CLANG", "clang-19")

# What `pyfd compile FILE` imports before it compiles anything (pyfd/cli.py's
# command, the driver, both backends' modules).
COMPILE_IMPORTS = "import pyfd.cli, pyfd.compiler.driver, pyfd.compiler.backends.native, pyfd.compiler.backends.llvm"


def _median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.1f}"


def _child_env(cache: Path, tree: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYFD_CHECK_PASSES")}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def _overlay(tree: Path, into: Path) -> Path:
    """A folder where `import pyfd` finds the pyfd of source tree `tree` (its compiler/ and runtime/ as pyfd's subpackages)."""
    package = into / "pyfd"
    shutil.copytree(tree / "pyfd", package, ignore=shutil.ignore_patterns("__pycache__"))
    for sub in ("compiler", "runtime"):
        shutil.copytree(tree / sub, package / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return into


# -- imports ---------------------------------------------------------------------------


def imports(rounds: int, cache: Path) -> None:
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        f"{COMPILE_IMPORTS}\n"
        "took = time.perf_counter() - t\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('lark', 'elftools', 'llvmlite')}"
        " | {'pyfd.runtime' for m in sys.modules if m.startswith('pyfd.runtime')})\n"
        "print(took, ','.join(heavy))\n"
    )
    cached = _child_env(cache)
    uncached = {**cached, "PYTHONDONTWRITEBYTECODE": "1"}
    uncached.pop("PYTHONPYCACHEPREFIX")
    subprocess.run([sys.executable, "-c", code], env=cached, cwd=cache.parent, check=True, capture_output=True)  # fill the cache
    for label, env in (("bytecode cached", cached), ("no bytecode cache", uncached)):
        took, heavy = [], ""
        for _ in range(rounds):
            out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cache.parent, check=True, capture_output=True, text=True).stdout.split()
            took.append(float(out[0]))
            heavy = out[1] if len(out) > 1 else ""
        print(f"imports ({label}): {_median_ms(took)} ms   also loaded: {heavy or 'none of lark, pyelftools, llvmlite, the runtime'}")


# -- phases ----------------------------------------------------------------------------


class _Timed:
    """A pass that adds its run time to a table (the pass manager's view of it is unchanged)."""

    def __init__(self, inner: Any, table: dict[str, float]) -> None:
        self.inner, self.table, self.name = inner, table, inner.name

    def run(self, fn: Any) -> bool:
        t = time.perf_counter()
        try:
            return bool(self.inner.run(fn))
        finally:
            self.table[self.name] = self.table.get(self.name, 0.0) + time.perf_counter() - t


def _timed(table: dict[str, float], name: str, step: Callable[[], Any]) -> Any:
    t = time.perf_counter()
    try:
        return step()
    finally:
        table[name] = table.get(name, 0.0) + time.perf_counter() - t


def compile_phases(dissector: Any, backend: str) -> dict[str, float]:
    """Seconds per phase of one compile, the steps of compiler/driver.py's compile_lowered taken one by one."""
    from pyfd.compiler.backends import BACKENDS
    from pyfd.compiler.frontend import lower_function
    from pyfd.compiler.ir.checker import check_function
    from pyfd.compiler.ir.windows import fit_windows
    from pyfd.compiler.passes import PassManager, pipeline

    try:
        from pyfd.compiler.collector import collector_paused
    except ImportError:  # a tree from before issue 17 (PYTHONPATH=an overlay of it): no pause, a deep copy
        collector_paused = contextlib.nullcontext  # type: ignore[assignment]
    table: dict[str, float] = {}
    chosen = BACKENDS[backend]
    with collector_paused():
        lowered = _timed(table, "lowering", lambda: lower_function(dissector.fn))
        fn = _timed(table, "copy", lambda: lowered.function.copy() if hasattr(lowered.function, "copy") else copy.deepcopy(lowered.function))
        _timed(table, "checker", lambda: check_function(fn))
        passes = [_Timed(p, table) for p in pipeline(2, thread_jumps=chosen.thread_jumps)]
        PassManager(passes, verify=False, check_changes=False).run(fn)
        _timed(table, "windows", lambda: fit_windows(fn))
        _timed(table, "checker", lambda: check_function(fn))
        _timed(table, f"backend {backend}", lambda: chosen.compile(fn, opt_level=2))
    return table


def whole_compile(dissector: Any, backend: str, *, collect: bool) -> float:
    """Seconds of lowering plus compile_lowered; with `collect`, the cyclic GC left running (the driver's pause undone)."""
    from pyfd.compiler.driver import Options, compile_lowered
    from pyfd.compiler.frontend import lower_function

    with mock.patch("gc.disable") if collect else contextlib.nullcontext():
        t = time.perf_counter()
        compile_lowered(lower_function(dissector.fn), Options(backend=backend))
        return time.perf_counter() - t


def phases(sizes: list[int], rounds: int, folder: Path) -> None:
    from pyfd.compiler.backends import BACKENDS
    from test_compile_scaling import ir_size, scaled_dissector
    from test_samples import _sample

    programs: dict[str, Any] = {"full.py": _sample("full")}
    for copies in sizes:
        if copies != 1:
            programs[f"{copies}x"] = scaled_dissector(copies, folder)
    for label, dissector in programs.items():
        size = ir_size(dissector.lower().function)
        for backend in BACKENDS:
            n = rounds if size < 5000 else 1
            runs = [compile_phases(dissector, backend) for _ in range(n)]
            names = list(runs[0])
            medians = {name: statistics.median(r.get(name, 0.0) for r in runs) for name in names}
            total = sum(medians.values())
            pairs = [(whole_compile(dissector, backend, collect=i % 2 == 0), whole_compile(dissector, backend, collect=i % 2 == 1)) for i in range(n)]
            with_gc = statistics.median(a if i % 2 == 0 else b for i, (a, b) in enumerate(pairs))
            paused = statistics.median(b if i % 2 == 0 else a for i, (a, b) in enumerate(pairs))
            detail = "  ".join(f"{name} {medians[name] * 1000:.1f}" for name in names)
            print(f"{label:>8} {backend:<6} IR {size:>6}  total {total * 1000:8.1f} ms  ({detail})")
            print(f"{'':>8} {'':<6} whole compile: GC paused {paused * 1000:8.1f} ms, GC running {with_gc * 1000:8.1f} ms "
                  f"({with_gc / paused:.2f}x)")
            gc.collect()


# -- whole processes -------------------------------------------------------------------


def processes(rounds: int, cache: Path, out: Path, against: Path | None) -> None:
    pyfd = [sys.executable, "-c", "import sys; from pyfd.cli import main; sys.exit(main())"]
    include = [f"-idirafter/usr/include/{_machine()}", f"-idirafter{REFERENCE / 'stub-include'}"]
    clang = [CLANG, "-O2", "-g", "-target", "bpf", *include, "-Wno-compare-distinct-pointer-types",
             "-c", str(REFERENCE / "bpf_flow.c"), "-o", str(out / "bpf_flow.o")]
    commands: dict[str, tuple[list[str], dict[str, str]]] = {"clang-19 bpf_flow.c": (clang, dict(os.environ))}
    trees: list[tuple[str, dict[str, str]]] = [("", _child_env(cache))]
    if against is not None:
        trees.append((f" [{against.name}]", _child_env(cache / "against", _overlay(against, out / "against"))))
    for suffix, env in trees:
        for backend in ("native", "llvm"):
            target = out / f"full-{backend}{suffix.strip(' []')}.o"
            commands[f"pyfd {backend}{suffix}"] = ([*pyfd, "compile", str(ROOT / "samples" / "full.py"), "--backend", backend, "-o", str(target)], env)
    # From a folder of their own: `python -c` puts the working directory
    # first on sys.path, and this tree's pyfd/ there would shadow --against's.
    for command, env in commands.values():  # untimed: fills the bytecode caches
        subprocess.run(command, env=env, cwd=out, check=True, capture_output=True)
    took: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(rounds):
        order = list(commands.items())
        if i % 2:
            order.reverse()  # alternate, so a drift in the machine's load falls on all alike
        for name, (command, env) in order:
            t = time.perf_counter()
            subprocess.run(command, env=env, cwd=out, check=True, capture_output=True)
            took[name].append(time.perf_counter() - t)
    clang_median = statistics.median(took["clang-19 bpf_flow.c"])
    print(f"whole process, median of {rounds} alternating rounds:")
    for name, samples in took.items():
        print(f"  {name:<32} {_median_ms(samples)} ms   {statistics.median(samples) / clang_median:5.2f}x clang")


def _machine() -> str:
    try:
        return subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "x86_64-linux-gnu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--sizes", default="1,10,100", help="program sizes for the phases, in copies of full.py's pass")
    parser.add_argument("--against", type=Path, help="another pyfd source tree to run `pyfd compile` of in the same rounds")
    parser.add_argument("--skip-phases", action="store_true")
    parser.add_argument("--overlay", nargs=2, type=Path, metavar=("TREE", "DIR"), help="make DIR importable as TREE's pyfd, and stop")
    parser.add_argument("--skip-process", action="store_true")
    args = parser.parse_args()
    if args.overlay:
        _overlay(*args.overlay)
        return
    with tempfile.TemporaryDirectory(prefix="bench-compile-") as tmp:
        folder = Path(tmp)
        cache = folder / "pycache"
        imports(args.rounds, cache)
        if not args.skip_phases:
            phases([int(s) for s in args.sizes.split(",")], args.rounds, folder)
        if not args.skip_process:
            processes(args.rounds, cache, folder, args.against)


if __name__ == "__main__":
    main()
