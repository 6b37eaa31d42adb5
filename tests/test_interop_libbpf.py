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

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from frames import ipv4_frames
from interop import (
    C_LOADER,
    FRAMES,
    FULL,
    IPV4_TCP,
    assert_excerpt,
    build_c_loader,
    link,
    pyfd_results,
    readme_blocks,
    run_loader,
)
from kernel import needs_kernel
from pyfd.runtime import LoadedProgram
from test_btf import LLVM_IR, _object_with_bad_func_name

import pyfd
from pyfd.program import CompiledProgram


@pytest.fixture(scope="module")
def c_loader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """load_libbpf.c, compiled for this test run."""
    return build_c_loader(tmp_path_factory.mktemp("c_loader"))


@needs_kernel
def test_libbpf_loads_and_runs_pyfd_object(c_loader: Path, full_object: tuple[Path, LoadedProgram]) -> None:
    path, loaded = full_object
    run = run_loader(c_loader, path, FRAMES)
    assert run.stderr == ""  # no libbpf warning about the object
    expected = pyfd_results(loaded, FRAMES)
    assert run.results == expected
    assert len(set(expected)) > 100  # the table's frames take different paths: a real comparison


def test_readme_c_snippet_is_the_tested_loader() -> None:
    (snippet,) = readme_blocks("c")
    assert "bpf_object__open_file" in snippet and "bpf_prog_test_run_opts" in snippet
    assert_excerpt(snippet, C_LOADER)


@needs_kernel
def test_readme_c_example_prints_what_it_says(c_loader: Path, tmp_path: Path) -> None:
    (example,) = [block for block in readme_blocks("sh") if "load_libbpf" in block]
    build, frame, expected = re.search(r"\n(gcc .*)\necho (\w+) \\\n  \| \./load_libbpf samples/ipv4_tcp\.o ipv4_tcp\n# (.*)\n", example).groups()  # type: ignore[union-attr]
    assert build == "gcc -O2 -Wall -o load_libbpf tests/interop/load_libbpf.c -lbpf"  # what build_c_loader runs, but -Werror
    obj = IPV4_TCP.compile().write(tmp_path / "ipv4_tcp.o")
    done = subprocess.run([str(c_loader), str(obj), "ipv4_tcp"], input=frame + "\n", capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout == expected + "\n" and done.stderr == ""


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


@needs_kernel
def test_bpftool_links_pyfd_object_with_llvm_object(c_loader: Path, tmp_path: Path) -> None:
    # An object as `clang -g -target bpf -c` writes one (here from LLVM IR, through llvmlite), with a .bss
    # variable. clang marks BPF functions nounwind; without it LLVM writes an .eh_frame, whose relocation
    # against a section symbol libbpf 1.1's linker refuses.
    llvm = pytest.importorskip("llvmlite.binding")
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    ir = LLVM_IR.replace("DIRECTORY", str(tmp_path)).replace("%ctx) section", "%ctx) nounwind section")
    module = llvm.parse_assembly(ir)
    machine = llvm.Target.from_triple("bpfel").create_target_machine(opt=2, reloc="static", codemodel="small")
    (tmp_path / "cdiss.o").write_bytes(machine.emit_object(module))
    tcp = IPV4_TCP.compile(backend="llvm")
    out = tmp_path / "mixed.o"
    link(out, tcp.write(tmp_path / "tcp.o"), tmp_path / "cdiss.o")
    frames = [(frame, 0) for frame in ipv4_frames().values()]
    with tcp.load() as loaded:
        expected = pyfd_results(loaded, frames)
    run = run_loader(c_loader, out, frames, "ipv4_tcp")
    assert run.stderr == "" and run.results == expected
    cdiss = run_loader(c_loader, out, frames, "cdiss")  # returns 0, writes no key
    assert cdiss.stderr == "" and {retval for retval, _ in cdiss.results} == {0}


def results_differ(a: CompiledProgram, b: CompiledProgram, frames: Sequence[tuple[bytes, int]]) -> bool:
    """Two programs disagree on some frame (so running the wrong one from a linked object would show)."""
    with a.load() as one, b.load() as other:
        return pyfd_results(one, frames) != pyfd_results(other, frames)
