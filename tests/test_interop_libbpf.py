"""pyfd's objects in libbpf's hands: a C loader, and libbpf's static linker (`bpftool gen object`).

tests/interop/load_libbpf.c, built with gcc here, opens an object with
bpf_object__open_file, loads it and test-runs its program: for every frame of
the full sample's table (tests/full_frames.py, flags included) it must print
the return value and keys pyfd's own load gives, on both backends, and libbpf
must print nothing (it warns about anything in an object it cannot use). The
objects `bpftool gen object` links from pyfd's, alone or several together,
must load and give the same keys, through libbpf and through pyfd.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from frames import ipv4_frames
from interop import (
    FRAMES,
    FULL,
    IPV4_TCP,
    build_c_loader,
    full_sample,
    link,
    pyfd_results,
    run_loader,
)
from kernel import needs_kernel
from pyfd.compiler.driver import BACKENDS
from pyfd.runtime import LoadedProgram
from test_btf import _object_with_bad_func_name

import pyfd
from pyfd.program import CompiledProgram


@pytest.fixture(scope="module")
def c_loader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """load_libbpf.c, compiled for this test run."""
    return build_c_loader(tmp_path_factory.mktemp("c_loader"))


@pytest.fixture(scope="module", params=BACKENDS)
def full_object(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LoadedProgram]]:
    """samples/full.py compiled by one backend: its object file, and the same program loaded by pyfd."""
    with full_sample(request.param, tmp_path_factory.mktemp(f"full_{request.param}")) as compiled:
        yield compiled


@needs_kernel
def test_libbpf_loads_and_runs_pyfd_object(c_loader: Path, full_object: tuple[Path, LoadedProgram]) -> None:
    path, loaded = full_object
    run = run_loader(c_loader, path, FRAMES)
    assert run.stderr == ""  # no libbpf warning about the object
    expected = pyfd_results(loaded, FRAMES)
    assert run.results == expected
    assert len(set(expected)) > 100  # the table's frames take different paths: a real comparison


@needs_kernel
def test_libbpf_loader_shows_libbpf_warnings(c_loader: Path, tmp_path: Path) -> None:
    # The clean-stderr check above can fail: BTF the kernel refuses makes libbpf warn (and load without it).
    obj = tmp_path / "bad_btf.o"
    obj.write_bytes(_object_with_bad_func_name())
    run = run_loader(c_loader, obj, [(bytes(64), 0)])
    assert "libbpf: Error loading .BTF into kernel" in run.stderr, run.stderr
    assert run.results == [(0, run.results[0][1])]


@needs_kernel
def test_libbpf_loader_names_a_missing_program(c_loader: Path, full_object: tuple[Path, LoadedProgram]) -> None:
    run = run_loader(c_loader, full_object[0], [], "nosuch", check=False)
    assert run.returncode == 2 and "no program nosuch" in run.stderr


@needs_kernel
def test_bpftool_links_pyfd_object(c_loader: Path, full_object: tuple[Path, LoadedProgram], tmp_path: Path) -> None:
    path, loaded = full_object
    out = tmp_path / "linked.o"
    link(out, path)
    expected = pyfd_results(loaded, FRAMES)
    run = run_loader(c_loader, out, FRAMES)
    assert run.stderr == "" and run.results == expected
    with pyfd.load(out) as relinked:
        assert pyfd_results(relinked, FRAMES) == expected
        # The linker carried the BTF and every line info record across.
        assert (relinked.info().nr_func_info, relinked.info().nr_line_info) == (1, loaded.info().nr_line_info)


@needs_kernel
def test_bpftool_links_several_pyfd_objects(c_loader: Path, tmp_path: Path) -> None:
    # Two programs from two backends in one section, one deduplicated license.
    frames = [(frame, 0) for frame in ipv4_frames().values()] + FRAMES[:40]
    tcp = IPV4_TCP.compile(backend="native")
    full = FULL.compile(backend="llvm")
    out = tmp_path / "both.o"
    link(out, tcp.write(tmp_path / "tcp.o"), full.write(tmp_path / "full.o"))
    for name, program in (("ipv4_tcp", tcp), ("full", full)):
        with program.load() as loaded:
            expected = pyfd_results(loaded, frames)
        run = run_loader(c_loader, out, frames, name)
        assert run.stderr == "" and run.results == expected, name
        with pyfd.load(out, name) as relinked:
            assert pyfd_results(relinked, frames) == expected, name
    assert results_differ(tcp, full, frames)


def results_differ(a: CompiledProgram, b: CompiledProgram, frames: Sequence[tuple[bytes, int]]) -> bool:
    """Two programs disagree on some frame (so running the wrong one from a linked object would show)."""
    with a.load() as one, b.load() as other:
        return pyfd_results(one, frames) != pyfd_results(other, frames)
