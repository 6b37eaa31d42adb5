"""pyfd's pytest plugin (entry point `pytest11: pyfd`): fixtures that run a dissector on every engine, and a kernel marker.

Fixtures:
- `pyfd_engine`: parametrized over every engine and backend (`python`,
  `vm-native`, `vm-llvm`, `kernel-native`, `kernel-llvm`); the kernel ones
  carry the `kernel` marker.
- `pyfd_run`: `pyfd_run(dissector, frame, flags=0)` runs on `pyfd_engine`
  and returns a RunResult, so a test using it runs once per engine.
- `pyfd_engines`: the session's pyfd.testing.Engines (each dissector
  compiled and loaded once), with `.assert_agree(dissector, frames)`.
- `pyfd_assert_agree`: that method itself.

Marker `@pytest.mark.kernel`: the test needs the bpf syscall with CAP_BPF
and CAP_NET_ADMIN; without them it is skipped (one line in pytest's
summary, and one more line from this plugin saying why and how many),
and under CI=true it fails instead. Strategy: pyfd.testing.frames().
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .testing import ALL_ENGINES, Engine, Engines, in_ci, kernel_unavailable_reason, require

if TYPE_CHECKING:
    from .dissector import Dissector
    from .runtime import RunResult

KERNEL_MARKER = "kernel: needs the bpf syscall with CAP_BPF and CAP_NET_ADMIN (skipped without them, fails under CI=true)"
_skipped_for_kernel: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Register the `kernel` marker."""
    config.addinivalue_line("markers", KERNEL_MARKER)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (in CI: fail) a `kernel` test before its fixtures compile or load anything."""
    if item.get_closest_marker("kernel") is None:
        return
    reason = kernel_unavailable_reason()
    if reason is not None and not in_ci():
        _skipped_for_kernel.append(item.nodeid)
    require(reason)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line for every kernel test skipped, with the reason."""
    if not _skipped_for_kernel:
        return
    count = len(_skipped_for_kernel)
    terminalreporter.write_line(
        f"pyfd: {count} kernel test{'s' if count != 1 else ''} skipped: {kernel_unavailable_reason()} "
        "(run as root, or with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, to run them; CI=true makes them fail)"
    )
    _skipped_for_kernel.clear()


@pytest.fixture(scope="session")
def pyfd_engines() -> Iterator[Engines]:
    """The session's engines: each dissector is compiled and loaded once per engine, and closed at the end."""
    with Engines() as engines:
        yield engines


@pytest.fixture(params=[pytest.param(e, id=e.name, marks=[pytest.mark.kernel] if e.kind == "kernel" else []) for e in ALL_ENGINES])
def pyfd_engine(request: pytest.FixtureRequest) -> Engine:
    """Each engine and backend in turn: python, vm-native, vm-llvm, kernel-native, kernel-llvm."""
    engine: Engine = request.param
    return engine


@pytest.fixture
def pyfd_run(pyfd_engine: Engine, pyfd_engines: Engines) -> Callable[..., RunResult]:
    """`pyfd_run(dissector, frame, flags=0)`: one run on this test's engine."""

    def run(dissector: Dissector, frame: object, flags: int = 0) -> RunResult:
        return pyfd_engines.run(dissector, pyfd_engine, frame, flags=flags)

    return run


@pytest.fixture
def pyfd_assert_agree(pyfd_engines: Engines) -> Callable[..., list[dict[str, RunResult]]]:
    """`pyfd_assert_agree(dissector, frames, flags=0, engines=None)`: every available engine agrees, or a table of the difference."""
    return pyfd_engines.assert_agree
