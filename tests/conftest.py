"""Test-wide fixtures: the kernel guard (fails in CI, skips elsewhere), a sample to work on, the full dissector built."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel import requires_kernel, skip_unless_kernel  # noqa: F401 - fixture, found by pytest through this import
from pyfd.compiler.driver import BACKENDS
from pyfd.runtime import LoadedProgram

# Every compile in the tests (and in the CLI processes they start) checks each
# pass's changed flag against a fingerprint of the IR (compiler/passes/base.py).
os.environ.setdefault("PYFD_CHECK_PASSES", "1")


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of samples/ipv4_tcp.py in a fresh directory."""
    path = tmp_path / "ipv4_tcp.py"
    shutil.copy(Path(__file__).resolve().parent.parent / "samples" / "ipv4_tcp.py", path)
    return path


@pytest.fixture(scope="module", params=list(BACKENDS))
def full_object(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LoadedProgram]]:
    """samples/full.py compiled by one backend: its object file, and the same program loaded by pyfd."""
    from interop import FULL

    skip_unless_kernel()
    program = FULL.compile(backend=request.param)
    path = program.write(tmp_path_factory.mktemp(f"full_{request.param}") / "full.o")
    with program.load() as loaded:
        yield path, loaded
