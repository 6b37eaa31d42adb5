"""Test-wide fixtures: the kernel guard (fails in CI, skips elsewhere) and a sample to work on."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from kernel import requires_kernel  # noqa: F401 - fixture, found by pytest through this import

# Every compile in the tests (and in the CLI processes they start) checks each
# pass's changed flag against a fingerprint of the IR (compiler/passes/base.py).
os.environ.setdefault("PYFD_CHECK_PASSES", "1")


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of samples/ipv4_tcp.py in a fresh directory."""
    path = tmp_path / "ipv4_tcp.py"
    shutil.copy(Path(__file__).resolve().parent.parent / "samples" / "ipv4_tcp.py", path)
    return path
