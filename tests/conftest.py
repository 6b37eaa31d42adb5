"""Test-wide fixtures: the kernel guard (fails in CI, skips elsewhere), a sample to work on, the full dissector built."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel import enforce_kernel, requires_kernel, skip_unless_kernel  # noqa: F401 - fixture, found by pytest through this import
from pyfd.compiler.driver import BACKENDS
from pyfd.runtime import LoadedProgram, NamespaceNotFoundError, NotAttachedError, detach
from pyfd.runtime.attach import PIN_ROOT

# Every compile in the tests (and in the CLI processes they start) checks each
# pass's changed flag against a fingerprint of the IR (compiler/passes/base.py).
os.environ.setdefault("PYFD_CHECK_PASSES", "1")


def console_script() -> str | None:
    """The `pyfd` command installed with the pyfd these tests import, not whichever `pyfd` PATH finds first."""
    script = Path(sysconfig.get_path("scripts")) / "pyfd"
    if script.is_file():
        return str(script)
    return shutil.which("pyfd")


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


@pytest.fixture
def netns(requires_kernel: None) -> Iterator[str]:
    """A fresh named network namespace (never the root one), removed afterwards with anything attached and its pins."""
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
    if ip is None:
        enforce_kernel("the `ip` tool (iproute2) is not installed")
        raise AssertionError("unreachable")
    name = f"pyfd-test-{uuid.uuid4().hex[:10]}"
    subprocess.run([ip, "netns", "add", name], check=True, capture_output=True)
    ino = os.stat(f"/run/netns/{name}").st_ino
    try:
        yield name
    finally:
        try:
            detach(name)
        except (NotAttachedError, NamespaceNotFoundError):
            pass
        finally:
            subprocess.run([ip, "netns", "del", name], check=False, capture_output=True)
            shutil.rmtree(f"{PIN_ROOT}/netns-{ino}", ignore_errors=True)
