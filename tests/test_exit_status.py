"""Exit status: documented in `pyfd --help` and the README, and decided by the action, not by the reader.

A reader that goes away early (`pyfd run ... | head -1`) makes writes fail
with EPIPE; pyfd must neither report that as an internal error nor let it
change the exit status (tests/test_attach.py does the same for `attach`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from kernel import needs_kernel, requires_kernel  # noqa: F401  (pytest fixture)
from pyfd.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NO_KERNEL, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "ipv4_tcp.py"
# `-m` puts the working directory first on sys.path: run from one without a `pyfd` package.
PYFD = [sys.executable, "-m", "pyfd.cli"]
STATUSES = {EXIT_OK: "success", EXIT_ERROR: "error", EXIT_USAGE: "usage", EXIT_NO_KERNEL: "capabilities", EXIT_INTERRUPTED: "interrupted"}


def test_help_lists_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    epilog = out[out.index("exit status:") :]
    for status, word in STATUSES.items():
        assert re.search(rf"\b{status}\s[^;]*{word}", epilog, re.DOTALL), (status, word, epilog)


def test_readme_lists_the_exit_statuses() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"^## Exit status\n(.*?)(?=^## )", readme, re.DOTALL | re.MULTILINE)
    assert found, "the README has an Exit status section"
    for status, word in STATUSES.items():
        assert re.search(rf"`{status}`[^\n]*{word}", found.group(1)), (status, word)


def _run_into_closed_pipe(argv: list[str], *, unbuffered: str, read_first_line: bool) -> tuple[int, str, str]:
    """Run pyfd with stdout a pipe whose reader leaves (at once, or after one line, as `head -1`)."""
    env = dict(os.environ, PYTHONUNBUFFERED=unbuffered)
    proc = subprocess.Popen([*PYFD, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd="/")
    assert proc.stdout is not None and proc.stderr is not None
    with proc.stderr:
        first = proc.stdout.readline().decode() if read_first_line else ""
        proc.stdout.close()
        err = proc.stderr.read().decode()
    return proc.wait(timeout=180), first, err


@needs_kernel
@pytest.mark.parametrize(("unbuffered", "read_first_line"), [("1", True), ("1", False), ("", False)])
def test_run_into_a_closed_pipe_keeps_its_status(unbuffered: str, read_first_line: bool) -> None:
    status, first, err = _run_into_closed_pipe(["run", str(SAMPLE)], unbuffered=unbuffered, read_first_line=read_first_line)
    assert status == EXIT_OK, err  # kernel and Python agree on every frame
    assert err == "", err  # no "internal error", no "Exception ignored ... BrokenPipeError"
    if read_first_line:
        assert first.startswith("ipv4_tcp: ") and "frames" in first

