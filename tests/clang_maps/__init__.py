"""C flow dissectors with maps, built by clang in the tests, and the kernel's reference object.

`counting.c` uses every map kind pyfd creates (array, hash, per-CPU array and
hash, a prog array the object fills itself) and every global-data section
(.rodata constants, .data, .bss). `build` compiles it, or a C snippet, with
clang-19 for `-target bpf`; `reference_object` builds the kernel's
bpf_flow.c with ../shared/reference/build.sh. A missing clang or reference
fails the test in CI (CI=true) and skips it elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest
from kernel import in_ci

HERE = Path(__file__).resolve().parent
COUNTING = HERE / "counting.c"
ROOT = HERE.parent.parent


def _reference_dir() -> Path:
    """../shared/reference from the project's root (from a worktree, the nearest one above it)."""
    for parent in ROOT.parents:
        if (parent / "shared" / "reference" / "build.sh").exists():
            return parent / "shared" / "reference"
    return ROOT.parent / "shared" / "reference"


REFERENCE = _reference_dir()


def missing(what: str) -> NoReturn:
    """Fail the test in CI, skip it elsewhere."""
    if in_ci():
        pytest.fail(f"cannot run in CI (CI=true): {what}", pytrace=False)
    pytest.skip(what)


def clang() -> str:
    """The clang that builds BPF objects."""
    found = shutil.which("clang-19") or shutil.which("clang")
    if found is None:
        missing("clang-19 is not installed (.ci/run installs it)")
    return found


def _arch_include() -> str:
    """Where Debian keeps <asm/types.h> for this machine (linux/bpf.h needs it under -target bpf)."""
    machine = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True, check=False).stdout.strip()
    return f"/usr/include/{machine or 'x86_64-linux-gnu'}"


def build(workdir: Path, source: Path | str, name: str = "prog", *, debug: bool = True, flags: tuple[str, ...] = ()) -> Path:
    """Compile a C file (or C source text) with clang -O2 -target bpf; return the object's path."""
    if isinstance(source, str):
        path = workdir / f"{name}.c"
        path.write_text(source)
        source = path
    out = workdir / f"{source.stem if name == 'prog' else name}.o"
    command = [clang(), "-O2", "-target", "bpf", "-mcpu=v3", "-idirafter", _arch_include(), *flags, "-c", str(source), "-o", str(out)]
    if debug:
        command.insert(2, "-g")
    built = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if built.returncode != 0:
        if "bpf/bpf_helpers.h" in built.stderr:
            missing("libbpf's headers are not installed (apt-get install libbpf-dev)")
        pytest.fail(f"clang could not build {source.name}:\n{built.stderr}", pytrace=False)
    return out


def reference_object(workdir: Path) -> Path:
    """bpf_flow.o, the kernel's reference dissector, built by ../shared/reference/build.sh."""
    script = REFERENCE / "build.sh"
    if not script.exists():
        missing(f"the reference dissector is not there ({script})")
    clang()
    done = subprocess.run(
        ["sh", str(script)], env={**os.environ, "OUT": str(workdir)}, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{script} failed:\n{done.stderr}", pytrace=False)
    return workdir / "bpf_flow.o"
