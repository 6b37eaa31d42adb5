"""The README's commands are the ones CI runs and the ones that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "the README opens with a sh block of commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_two_commands() -> None:
    main, tests = _readme_commands()
    assert "pyfd run samples/" in main
    assert tests.endswith("pytest")


def test_ci_runs_the_readmes_test_command() -> None:
    _, tests = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    tail = tests.split("&& ", 2)[-1]  # after the apt-get steps, which .ci/run runs quietly
    assert tail in ci, f"{tail!r} is not in .ci/run"
    assert "apt-get update" in ci and "bpftool" in ci


def test_sample_in_readme_is_the_sample_file() -> None:
    readme = (ROOT / "README.md").read_text()
    sample = (ROOT / "samples" / "ipv4_tcp.py").read_text()
    body = sample[sample.index("@dissector") :].strip()
    assert body.split("# bounds")[0] in readme
