"""pyfd's objects in Go: tests/interop/load_ebpf.go with cilium/ebpf (LoadCollectionSpec, NewCollection, Program.Run).

Built here offline against Debian's golang-github-cilium-ebpf-dev (GOPATH
mode, no module proxy). For every frame of the full sample's table it must
print the return value and keys pyfd's own load gives, on both backends, and
the same for an object `bpftool gen object` linked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from interop import (
    FRAMES,
    GO_LOADER,
    assert_excerpt,
    build_go_loader,
    go_environment,
    link,
    pyfd_results,
    readme_blocks,
    run_loader,
)
from kernel import needs_kernel
from pyfd.runtime import LoadedProgram


@pytest.fixture(scope="module")
def go_loader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """load_ebpf.go, compiled for this test run."""
    return build_go_loader(tmp_path_factory.mktemp("go_loader"))


@needs_kernel
def test_cilium_ebpf_loads_and_runs_pyfd_object(go_loader: Path, full_object: tuple[Path, LoadedProgram]) -> None:
    path, loaded = full_object
    run = run_loader(go_loader, path, FRAMES, "full")
    assert run.stderr == ""
    expected = pyfd_results(loaded, FRAMES)
    assert run.results == expected
    assert len(set(expected)) > 100  # the table's frames take different paths: a real comparison


@needs_kernel
def test_cilium_ebpf_loads_linked_object(go_loader: Path, full_object: tuple[Path, LoadedProgram], tmp_path: Path) -> None:
    path, loaded = full_object
    out = tmp_path / "linked.o"
    link(out, path)
    run = run_loader(go_loader, out, FRAMES)  # the only program: found without a name
    assert run.stderr == "" and run.results == pyfd_results(loaded, FRAMES)


def test_readme_go_snippet_is_the_tested_loader(tmp_path: Path) -> None:
    (snippet,) = readme_blocks("go")
    assert "ebpf.LoadCollectionSpec" in snippet and "ebpf.NewCollection" in snippet and "prog.Run" in snippet
    assert_excerpt(snippet, GO_LOADER)
    (build,) = [line for block in readme_blocks("sh") for line in block.splitlines() if "go build" in line]
    settings = dict(word.split("=", 1) for word in build.split() if "=" in word)
    environment = go_environment(tmp_path)
    assert settings == {key: environment[key] for key in ("GO111MODULE", "GOPATH")}  # what build_go_loader uses
    assert build.endswith(" go build -o load_ebpf tests/interop/load_ebpf.go")


@needs_kernel
def test_go_loader_names_a_missing_program(go_loader: Path, full_object: tuple[Path, LoadedProgram]) -> None:
    run = run_loader(go_loader, full_object[0], [], "nosuch", check=False)
    assert run.returncode == 2 and "no program nosuch" in run.stderr
