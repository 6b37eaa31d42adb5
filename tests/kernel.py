"""Shared helper for tests that need the kernel (bpf(2) with CAP_BPF and CAP_NET_ADMIN).

Import the fixture (so pytest finds it) and mark kernel tests with needs_kernel,
which also applies the `kernel` marker (`pytest -m "not kernel"` deselects them):

    from kernel import needs_kernel, requires_kernel  # noqa: F401  (pytest fixture)

    @needs_kernel
    def test_load() -> None: ...

A whole module: ``pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("requires_kernel")]``.
A fixture that needs the kernel calls skip_unless_kernel() first. Where this
process cannot load a flow dissector, the test is skipped with the reason,
except in CI (environment CI=true), where it fails: CI must run every kernel test.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

import pytest
from pyfd import testing
from pyfd.runtime import check_bpf_available


@functools.cache
def kernel_unavailable_reason() -> str | None:
    """Return why this process cannot load a flow dissector (None if it can), probed once."""
    return check_bpf_available()


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Tell whether the tests run in CI, where missing kernel support is a failure."""
    return testing.in_ci(environ)


def enforce_kernel(reason: str | None, environ: Mapping[str, str] = os.environ) -> None:
    """Do nothing if reason is None; else fail the test in CI and skip it elsewhere.

    The skip itself is pyfd.testing.require's, the pytest plugin's too, so
    that pytest's summary folds every kernel skip of the suite into one line.
    """
    testing.require(reason, environ)


def skip_unless_kernel() -> None:
    """Skip (or, in CI, fail) the running test unless this process can load a flow dissector."""
    enforce_kernel(kernel_unavailable_reason())


@pytest.fixture
def requires_kernel() -> None:
    """Skip (or, in CI, fail) the test unless this process can load a flow dissector."""
    skip_unless_kernel()


_Test = TypeVar("_Test", bound=Callable[..., object])


def needs_kernel(test: _Test) -> _Test:
    """Mark a test `kernel` and make it use the requires_kernel fixture."""
    marked: _Test = pytest.mark.kernel(pytest.mark.usefixtures("requires_kernel")(test))
    return marked


def bpftool() -> str:
    """The bpftool binary, with bpffs mounted; skips (or, in CI, fails) the test without them."""
    import shutil
    import subprocess

    tool = shutil.which("bpftool") or ("/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None)
    if tool is None:
        enforce_kernel("bpftool is not installed (.ci/run installs it)")
        raise AssertionError("unreachable")
    if not os.path.ismount("/sys/fs/bpf"):
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=False)
    if not os.path.ismount("/sys/fs/bpf"):
        enforce_kernel("bpffs is not mounted at /sys/fs/bpf and cannot be mounted")
    return tool
