"""Loaders for pyfd's objects written against other BPF libraries, and how tests build and run them.

`load_libbpf.c` (C, libbpf) and `load_ebpf.go` (Go, cilium/ebpf) take an object
file and a program name, read frames on stdin (`HEX [FLAGS]` per line) and
print `RETVAL KEYS` per frame (KEYS: the 56 bytes of struct bpf_flow_keys in
hex). The README's deployment section shows them; the tests build them in a
temporary directory and compare their output with pyfd's own run.

A missing compiler or library fails the test in CI (CI=true) and skips it
elsewhere, as a missing kernel does (tests/kernel.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from full_frames import CASES
from kernel import bpftool, in_ci
from pyfd.runtime import LoadedProgram
from test_samples import _sample

HERE = Path(__file__).resolve().parent
README = HERE.parent.parent / "README.md"
C_LOADER = HERE / "load_libbpf.c"
GO_LOADER = HERE / "load_ebpf.go"

# Debian's golang-github-cilium-ebpf-dev installs the module's source here; Go
# builds against it in GOPATH mode, with no module proxy.
GOPATH = Path("/usr/share/gocode")
CILIUM_EBPF = GOPATH / "src" / "github.com" / "cilium" / "ebpf"

FULL = _sample("full")
IPV4_TCP = _sample("ipv4_tcp")
FRAMES = [(case.frame, case.flags) for case in CASES]  # the full sample's table, flags included


def missing(what: str, packages: str) -> NoReturn:
    """Fail the test in CI, skip it elsewhere: `what` is not installed (Debian `packages` provide it)."""
    message = f"{what} is not installed (apt-get install {packages})"
    if in_ci():
        pytest.fail(f"interop test cannot run in CI (CI=true): {message}", pytrace=False)
    pytest.skip(message)


def build_c_loader(workdir: Path) -> Path:
    """Compile load_libbpf.c with gcc against the system's libbpf; return the executable."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        missing("gcc", "gcc libbpf-dev")
    out = workdir / "load_libbpf"
    built = subprocess.run(
        [gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(C_LOADER), "-lbpf"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if built.returncode != 0:
        if "bpf/libbpf.h" in built.stderr or "-lbpf" in built.stderr:
            missing("libbpf's headers or library", "libbpf-dev")
        pytest.fail(f"gcc could not build {C_LOADER.name}:\n{built.stderr}", pytrace=False)
    return out


def go_environment(workdir: Path) -> dict[str, str]:
    """The environment that builds against Debian's Go packages offline: GOPATH mode, no proxy."""
    env = dict(os.environ)
    env.update(
        GO111MODULE="off",  # GOPATH mode: imports resolve under GOPATH/src, no go.mod, no download
        GOPATH=str(GOPATH),
        GOPROXY="off",
        GOFLAGS="",
        GOCACHE=str(workdir / "gocache"),
        CGO_ENABLED="0",  # cilium/ebpf is pure Go
    )
    return env


def build_go_loader(workdir: Path) -> Path:
    """Compile load_ebpf.go against Debian's cilium/ebpf; return the executable."""
    go = shutil.which("go") or next((p for p in ("/usr/lib/go/bin/go", "/usr/bin/go") if os.path.exists(p)), None)
    if go is None:
        missing("Go", "golang-go golang-github-cilium-ebpf-dev")
    if not (CILIUM_EBPF / "collection.go").exists():
        missing(f"cilium/ebpf (looked in {CILIUM_EBPF})", "golang-github-cilium-ebpf-dev")
    out = workdir / "load_ebpf"
    built = subprocess.run(
        [go, "build", "-o", str(out), str(GO_LOADER)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=go_environment(workdir),
        cwd=workdir,
    )
    if built.returncode != 0:
        pytest.fail(f"go could not build {GO_LOADER.name}:\n{built.stderr}", pytrace=False)
    return out


@dataclass(frozen=True)
class LoaderRun:
    """What a loader printed: one (return value, 56 key bytes) per frame, and its stderr."""

    results: list[tuple[int, bytes]]
    stderr: str
    returncode: int


def frame_lines(frames: Sequence[tuple[bytes, int]]) -> str:
    """The loaders' input: one `HEX FLAGS` line per (frame, flags)."""
    return "".join(f"{frame.hex()} {flags}\n" for frame, flags in frames)


def run_loader(
    loader: Path,
    obj: Path,
    frames: Sequence[tuple[bytes, int]],
    program: str | None = None,
    *,
    check: bool = True,
) -> LoaderRun:
    """Run a loader on `obj` (its `program`, or its only one) and the frames; with `check`, it must succeed."""
    args = [str(loader), str(obj)] + ([program] if program else [])
    done = subprocess.run(args, input=frame_lines(frames), capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert done.returncode == 0, f"{loader.name} {obj.name} exited {done.returncode}:\n{done.stderr}"
    results = []
    for line in done.stdout.splitlines():
        retval, keys = line.split(" ")
        results.append((int(retval), bytes.fromhex(keys)))
    if check:
        assert len(results) == len(frames), done.stdout
    return LoaderRun(results, done.stderr, done.returncode)


def pyfd_results(loaded: LoadedProgram, frames: Sequence[tuple[bytes, int]]) -> list[tuple[int, bytes]]:
    """pyfd's own BPF_PROG_TEST_RUN of each (frame, flags): return value and the 56 key bytes."""
    return [(r.retval, r.keys.raw) for r in (loaded.run(frame, flags=flags) for frame, flags in frames)]


def link(out: Path, *objects: Path) -> None:
    """`bpftool gen object OUT OBJECTS...` (libbpf's static linker), which must succeed without a word."""
    linked = subprocess.run([bpftool(), "gen", "object", str(out), *map(str, objects)], capture_output=True, text=True, timeout=60, check=False)
    assert linked.returncode == 0, linked.stderr
    assert linked.stderr == ""


def readme_deployment() -> str:
    """The README's deployment section."""
    text = README.read_text()
    start = text.index("\n## Deployment\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def readme_blocks(language: str) -> list[str]:
    """The deployment section's fenced code blocks in `language`, without their fences."""
    return re.findall(rf"```{language}\n(.*?)```", readme_deployment(), re.DOTALL)


def assert_excerpt(snippet: str, source: Path) -> None:
    """Every line of `snippet` but `...` is a line of `source`, in the same order (indentation aside)."""
    lines = [line.strip() for line in source.read_text().splitlines()]
    position = 0
    for wanted in (line.strip() for line in snippet.splitlines()):
        if wanted in ("", "..."):
            continue
        try:
            position = lines.index(wanted, position) + 1
        except ValueError:
            raise AssertionError(f"README line {wanted!r} is not in {source.name} (after line {position})") from None
