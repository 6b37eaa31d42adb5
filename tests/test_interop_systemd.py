"""samples/pyfd-dissector@.service: systemd accepts it, and its commands attach and detach.

No systemd is booted: `systemd-analyze verify` checks the unit file offline,
and the test runs the unit's ExecStart= and ExecStop= lines itself, expanded
as systemd would for an instance named after a namespace the test creates,
with the one substitution that the unit's /usr/local/bin/pyfd is this
checkout's pyfd (and OBJECT points at a freshly compiled object, as a drop-in
would set it).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from interop import IPV4_TCP, missing, readme_blocks
from kernel import needs_kernel
from pyfd.runtime import query

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "samples" / "pyfd-dissector@.service"
UNIT_PYFD = "/usr/local/bin/pyfd"  # where the unit expects `pip install .` to have put pyfd
PYFD = Path(sys.executable).parent / "pyfd"  # this checkout's


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections: each a list of (key, value), comments and blank lines dropped."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None and "=" in line, f"{UNIT.name}:{number}: not a key=value line in a section"
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def expand_specifiers(value: str, instance: str) -> str:
    """systemd's %i (the instance name) and %%; any other specifier fails the test (this one knows no more)."""

    def one(match: re.Match[str]) -> str:
        spec = match.group(1)
        assert spec in "i%", f"specifier %{spec} in {value!r}: teach the test what it means"
        return instance if spec == "i" else "%"

    return re.sub(r"%(.)", one, value)


def command(value: str, instance: str, environment: dict[str, str]) -> list[str]:
    """An Exec*= line as systemd runs it: specifiers, words, then ${NAME} as one word each."""
    words = shlex.split(expand_specifiers(value, instance))
    assert words and words[0][0] not in "-@:+!", f"{value!r}: exec prefixes are not expected in this unit"
    return [re.sub(r"\$\{(\w+)\}", lambda m: environment[m.group(1)], word) for word in words]


def service(instance: str, drop_in: dict[str, str] | None = None) -> tuple[dict[str, str], list[str], list[str]]:
    """The unit's [Service] for `instance`: its Environment= (then a drop-in's), ExecStart= and ExecStop= commands."""
    entries = parse_unit(UNIT.read_text())["Service"]
    environment: dict[str, str] = {}
    for key, value in entries:
        if key == "Environment":
            for assignment in shlex.split(expand_specifiers(value, instance)):
                name, _, setting = assignment.partition("=")
                environment[name] = setting
    environment.update(drop_in or {})
    (start,) = [v for k, v in entries if k == "ExecStart"]
    (stop,) = [v for k, v in entries if k == "ExecStop"]
    return environment, command(start, instance, environment), command(stop, instance, environment)


def test_unit_is_a_oneshot_that_stays_active() -> None:
    sections = parse_unit(UNIT.read_text())
    assert ("Type", "oneshot") in sections["Service"] and ("RemainAfterExit", "yes") in sections["Service"]
    assert ("WantedBy", "multi-user.target") in sections["Install"]  # started at every boot once enabled
    environment, start, stop = service("blue")
    assert start == [UNIT_PYFD, "attach", "/etc/pyfd/blue.o", "--netns", "blue"]
    assert stop == [UNIT_PYFD, "detach", "--netns", "blue"]
    assert environment == {"OBJECT": "/etc/pyfd/blue.o"}


def test_readme_shows_the_shipped_unit() -> None:
    (shown,) = readme_blocks("ini")
    text = UNIT.read_text()
    assert shown == text[text.index("\n[Unit]\n") + 1 :]


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        missing("systemd-analyze", "systemd")
    return tool


def _verify(unit_text: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    path = workdir / UNIT.name
    path.write_text(unit_text)
    instance = workdir / UNIT.name.replace("@.", "@verify.")  # verify resolves the instance to the template beside it
    return subprocess.run([_systemd_analyze(), "verify", str(instance)], capture_output=True, text=True, timeout=60, check=False)


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert text.count(UNIT_PYFD + " ") == 2  # ExecStart and ExecStop, and only they, name the executable
    verified = _verify(text.replace(UNIT_PYFD, str(PYFD)), tmp_path)
    assert verified.returncode == 0 and verified.stderr == "" and verified.stdout == "", verified.stderr


def test_systemd_analyze_refuses_a_broken_unit(tmp_path: Path) -> None:
    # The check above can fail: a command that is not there is an error.
    verified = _verify(UNIT.read_text().replace(UNIT_PYFD, str(tmp_path / "no-pyfd")), tmp_path)
    assert verified.returncode != 0 and "is not executable" in verified.stderr


def _run_as_systemd(argv: list[str]) -> subprocess.CompletedProcess[str]:
    assert argv[0] == UNIT_PYFD
    return subprocess.run([str(PYFD), *argv[1:]], capture_output=True, text=True, timeout=120, check=False)


@needs_kernel
def test_unit_commands_attach_and_detach(netns: str, tmp_path: Path) -> None:
    (assertion,) = [v for k, v in parse_unit(UNIT.read_text())["Unit"] if k == "AssertPathExists"]
    assert os.path.exists(expand_specifiers(assertion, netns))  # the unit's precondition: the namespace exists
    obj = IPV4_TCP.compile().write(tmp_path / f"{netns}.o")
    _, start, stop = service(netns, {"OBJECT": str(obj)})  # as a drop-in's Environment=OBJECT=... would

    started = _run_as_systemd(start)
    assert started.returncode == 0, started.stderr
    (attached,) = query(netns)
    assert attached.prog_name == "ipv4_tcp" and attached.link_id is not None
    assert attached.pin_path is not None and os.path.exists(attached.pin_path)  # survives pyfd's exit

    again = _run_as_systemd(start)  # a second start without a stop is refused, not stacked
    assert again.returncode != 0 and "already has a flow dissector" in again.stderr

    stopped = _run_as_systemd(stop)
    assert stopped.returncode == 0, stopped.stderr
    assert query(netns) == [] and not os.path.exists(attached.pin_path)

