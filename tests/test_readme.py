"""The README: its opening commands work as written, its tables are the code's, its claims are measured.

`python tests/test_readme.py` prints the header table the README must hold.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from checkout import fresh_checkout
from kernel import needs_kernel, skip_unless_kernel

import pyfd
from pyfd import headers
from pyfd.keys import KEY_FIELDS
from pyfd.layout import resolve_annotations

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# root's PATH on a stock Debian or Ubuntu: the README's `python3` is the system's.
STOCK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# -- the opening commands ------------------------------------------------------------


def _readme_commands(text: str | None = None) -> list[str]:
    """The commands of the README's first sh block; a line ending in `&&` goes on on the next."""
    block = re.search(r"```sh\n(.*?)```", README.read_text() if text is None else text, re.S)
    assert block, "the README opens with a sh block of commands"
    commands: list[str] = []
    pending = ""
    for line in block.group(1).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pending = f"{pending} {line.strip()}" if pending else line.strip()
        if not pending.endswith("&&"):
            commands.append(pending)
            pending = ""
    assert not pending, f"the last command ends in &&: {pending!r}"
    return commands


def _steps(command: str) -> list[str]:
    return [step.strip() for step in command.split("&&")]


def _setup_steps(command: str) -> list[str]:
    """The steps after the apt-get ones: what runs without changing the system."""
    steps = _steps(command)
    return [step for step in steps if not step.startswith("apt-get ")]


def _apt_packages(command: str) -> list[str]:
    return [word for step in _steps(command) if step.startswith("apt-get install") for word in shlex.split(step)[2:] if not word.startswith("-")]


def test_readme_opens_with_two_commands() -> None:
    main, tests = _readme_commands()
    assert _steps(main)[-1] == "pyfd run samples/ipv4_tcp.py"
    assert "pip install ." in _steps(main)
    assert "pip install -e '.[test]'" in _steps(tests) and _steps(tests)[-1] == "pytest"
    assert "bpftool" in _apt_packages(tests)
    for command in (main, tests):
        assert subprocess.run(["sh", "-n", "-c", command], check=False).returncode == 0, command


@pytest.mark.parametrize("which", ["main", "tests"])
def test_readme_commands_install_into_a_venv(which: str) -> None:
    # A system Python that is externally managed (PEP 668: Debian 12, Ubuntu)
    # refuses `pip install` outside a venv, even as root.
    command = dict(zip(("main", "tests"), _readme_commands(), strict=True))[which]
    steps = _steps(command)
    assert steps[0] == "apt-get update" and "python3-venv" in _apt_packages(command), "python3 -m venv needs python3-venv on Debian"
    made, activated = steps.index("python3 -m venv .venv"), steps.index(". .venv/bin/activate")
    assert made < activated
    for number, step in enumerate(steps):
        program = shlex.split(step)[0]
        if program in ("pip", "pip3", "pyfd", "pytest", "python"):
            assert number > activated, f"{step!r} runs before the venv is active"
        assert program != "sudo", "the README runs as root; the text says how sudo finds the venv"


def test_readme_says_how_sudo_finds_the_venv() -> None:
    text = README.read_text()
    assert "sudo .venv/bin/pyfd run samples/ipv4_tcp.py" in text
    assert 'sudo env "PATH=$PATH" pyfd' in text


def test_ci_runs_the_readmes_test_command() -> None:
    _, tests = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    tail = " && ".join(_setup_steps(tests))  # after the apt-get steps, which .ci/run runs quietly
    assert tail in ci, f"{tail!r} is not in .ci/run"
    assert "apt-get update" in ci
    for package in _apt_packages(tests):
        assert re.search(rf"apt-get install .*\b{re.escape(package)}\b", ci), f".ci/run does not install {package}"


def test_ci_lints_before_it_tests() -> None:
    # ruff and mypy (through .ci/mypy, which knows the package-dir mapping)
    # run on the code before the suite, each failing the run (set -e).
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "set -euo pipefail" in commands
    ruff = commands.index(".venv/bin/ruff check .")
    mypy = commands.index(".venv/bin/python .ci/mypy")
    tests = next(i for i, line in enumerate(commands) if line.endswith("&& pytest"))
    assert ruff < tests and mypy < tests
    assert os.access(ROOT / ".ci" / "mypy", os.X_OK)


def test_sample_in_readme_is_the_sample_file() -> None:
    readme = README.read_text()
    sample = (ROOT / "samples" / "ipv4_tcp.py").read_text()
    body = sample[sample.index("@dissector") :].strip()
    assert body.split("# bounds")[0] in readme


# -- the first command, run as written in a fresh checkout with the system Python ----


def _stock_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_BREAK_SYSTEM_PACKAGES")}
    env["PATH"] = STOCK_PATH
    return env


class Installed:
    """The README's first command, run in a fresh checkout: where, and what it printed."""

    def __init__(self, checkout: Path, run: subprocess.CompletedProcess[str], python3: str) -> None:
        self.checkout = checkout
        self.run = run
        self.python3 = python3


@pytest.fixture(scope="module")
def readme_install() -> Iterator[Installed]:
    """Run the README's first command (after its apt-get steps) in a fresh copy under /tmp."""
    skip_unless_kernel()
    python3 = shutil.which("python3", path=STOCK_PATH)
    assert python3 is not None, "the README's commands need python3 on root's PATH"
    # Under /tmp, readable by all: a test below runs the venv as an unprivileged user.
    top = Path(tempfile.mkdtemp(prefix="pyfd-readme-", dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        checkout = fresh_checkout(top / "pyfd")
        main, _ = _readme_commands()
        command = " && ".join(_setup_steps(main))
        run = subprocess.run(["sh", "-c", command], cwd=checkout, env=_stock_env(), capture_output=True, text=True, timeout=900, check=False)
        yield Installed(checkout, run, python3)
    finally:
        shutil.rmtree(top, ignore_errors=True)


@needs_kernel
def test_first_command_works_in_a_fresh_checkout(readme_install: Installed) -> None:
    run = readme_install.run
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert re.search(r"^kernel and Python agree on (\d+) of \1 frames run$", run.stdout, re.MULTILINE), run.stdout
    assert re.search(r"^ +BPF_FLOW_DISSECTOR_CONTINUE .*n_proto=0x86dd", run.stdout, re.MULTILINE), run.stdout


@needs_kernel
def test_first_command_is_needed_where_python_is_externally_managed(readme_install: Installed) -> None:
    # The reason for the venv, where this machine shows it: the system Python
    # refuses a global install (--dry-run: even a pip that would not refuse installs nothing).
    stdlib = subprocess.run([readme_install.python3, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"], capture_output=True, text=True, check=True)
    managed = Path(stdlib.stdout.strip(), "EXTERNALLY-MANAGED").exists()
    has_pip = subprocess.run([readme_install.python3, "-m", "pip", "--version"], capture_output=True, check=False).returncode == 0
    if managed and has_pip:
        old = subprocess.run(
            [readme_install.python3, "-m", "pip", "install", "--dry-run", "--no-deps", "."],
            cwd=readme_install.checkout, env=_stock_env(), capture_output=True, text=True, timeout=300, check=False,
        )
        assert old.returncode != 0 and "externally-managed-environment" in old.stdout + old.stderr, old.stderr
    # Either way the venv's Python is the system one, and pyfd is installed in it, not linked to the checkout.
    venv_python = readme_install.checkout / ".venv" / "bin" / "python"
    probe = "import sys, pyfd; print(sys.base_prefix); print(pyfd.__file__)"
    found = subprocess.run([str(venv_python), "-c", probe], cwd="/", capture_output=True, text=True, check=True)
    base, module = found.stdout.split()
    assert base == sys_prefix_of(readme_install.python3)
    assert "/site-packages/pyfd/" in module and not module.startswith(str(readme_install.checkout / "pyfd"))
    assert (Path(module).parent / "py.typed").is_file()


def sys_prefix_of(python: str) -> str:
    """sys.base_prefix of another interpreter."""
    return subprocess.run([python, "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True, check=True).stdout.strip()


@needs_kernel
def test_without_privileges_the_install_says_so(readme_install: Installed) -> None:
    if os.geteuid() != 0:
        pytest.skip("dropping to an unprivileged user needs root")
    assert readme_install.run.returncode == 0
    for path in [readme_install.checkout, *readme_install.checkout.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode):
            path.chmod(mode | stat.S_IRGRP | stat.S_IROTH | (stat.S_IXGRP | stat.S_IXOTH if mode & stat.S_IXUSR else 0))
    out = readme_install.checkout / "nobody"
    out.mkdir()
    out.chmod(0o777)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    venv = readme_install.checkout / ".venv" / "bin"
    verify = subprocess.run(
        [*nobody, str(venv / "pyfd"), "compile", "samples/ipv4_tcp.py", "--verify", "-o", str(out / "ipv4_tcp.o")],
        cwd=readme_install.checkout, capture_output=True, text=True, timeout=120, check=False,
    )
    assert verify.returncode == 3, verify.stderr  # as the README says of --verify
    assert (out / "ipv4_tcp.o").is_file() and "CAP_BPF" in verify.stderr and "Traceback" not in verify.stderr
    code = textwrap.dedent(
        """
        import importlib.util, sys, pyfd
        spec = importlib.util.spec_from_file_location("s", sys.argv[1])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            module.ipv4_tcp.compile().load()
        except pyfd.MissingPrivilegeError as err:
            print(type(err).__name__, isinstance(err, pyfd.BpfError), isinstance(err, PermissionError))
        """
    )
    # Run from elsewhere: `python -c` in the checkout would import its pyfd/ folder, not the installed package.
    sample = str(readme_install.checkout / "samples" / "ipv4_tcp.py")
    caught = subprocess.run([*nobody, str(venv / "python"), "-c", code, sample], cwd=out, capture_output=True, text=True, timeout=120, check=False)
    assert caught.stdout.split() == ["MissingPrivilegeError", "True", "True"], caught.stderr


# -- the tables: generated from the code, so they cannot drift -------------------------


def header_classes() -> list[type[headers.Header]]:
    """Every header class pyfd.headers offers, in its __all__ order."""
    found = [getattr(headers, name) for name in headers.__all__]
    return [cls for cls in found if isinstance(cls, type) and issubclass(cls, headers.Header) and cls is not headers.Header]


def header_table() -> str:
    """The README's table of pyfd.headers: class, size, each field and its width."""
    rows = ["| class | bytes | fields |", "|---|---|---|"]
    for cls in header_classes():
        declared = resolve_annotations(cls)
        cells = []
        for name, field in cls.fields.items():
            size = getattr(declared[name], "size", None)  # Bytes[N]
            cells.append(f"`{name}` {size} bytes" if size is not None else f"`{name}` {field.width}")
        rows.append(f"| `{cls.__name__}` | {cls.size} | {', '.join(cells)} |")
    return "\n".join(rows) + "\n"


def _readme_header_table() -> str:
    text = README.read_text()
    match = re.search(r"<!-- headers table -->\n(.*?)<!-- end headers table -->", text, re.S)
    assert match, "the README marks its header table"
    return match.group(1)


def test_every_header_class_is_listed() -> None:
    defined = {
        value.__name__
        for value in vars(headers).values()
        if isinstance(value, type) and issubclass(value, headers.Header) and value.__module__ == headers.__name__ and value is not headers.Header
    }
    assert defined == {cls.__name__ for cls in header_classes()}
    assert len(defined) >= 12


def test_readme_header_table_is_the_code() -> None:
    expected = header_table()
    assert _readme_header_table() == expected, f"paste this between the markers in README.md:\n{expected}"


def test_readme_keys_table_is_the_code() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (\d+) \| (\d+) \|", README.read_text(), re.MULTILINE)
    assert rows == [(f.name, str(f.offset), str(f.width)) for f in KEY_FIELDS.values()]


# -- the return codes: what the kernel does with the keys, measured -------------------

# Runs inside a network namespace: a SCHED_CLS program `r0 = bpf_get_hash_recalc(skb)`
# test-run there hashes with that namespace's flow dissector, or with the kernel's
# own when none is attached (net/core/flow_dissector.c, skb_get_hash).
HASH_PROGRAM = """
import json, sys
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from pyfd.isa import call, encode_program, exit_insn
from pyfd.runtime import bpf

BPF_FUNC_get_hash_recalc = 34
fd, _ = bpf.prog_load(prog_type=bpf.ProgType.SCHED_CLS, insns=encode_program([call(BPF_FUNC_get_hash_recalc), exit_insn()]), license="GPL", name="hash")
mac = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
frames = {
    "ipv6_a": Ether(**mac) / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1000, dport=80),
    "ipv6_b": Ether(**mac) / IPv6(src="2001:db8::3", dst="2001:db8::4") / TCP(sport=2000, dport=443),
    "ipv4_a": Ether(**mac) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=80),
    "ipv4_b": Ether(**mac) / IP(src="10.0.0.3", dst="10.0.0.4") / TCP(sport=2000, dport=443),
}
print(json.dumps({name: bpf.prog_test_run(prog_fd=fd, data_in=bytes(frame), data_out_size=4096).retval for name, frame in frames.items()}))
"""


def _hashes(netns: str) -> dict[str, int]:
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", HASH_PROGRAM], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    hashes: dict[str, int] = json.loads(done.stdout)
    return hashes


def _dissector(path: Path) -> pyfd.Dissector:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"readme_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (found,) = [value for value in vars(module).values() if isinstance(value, pyfd.Dissector)]
    return found


@needs_kernel
def test_continue_keeps_ipv6_hashing_and_drop_breaks_it(netns: str, tmp_path: Path) -> None:
    sample = ROOT / "samples" / "ipv4_tcp.py"
    text = sample.read_text()
    assert text.count("return BPF_FLOW_DISSECTOR_CONTINUE") == 1
    dropping = tmp_path / "ipv4_tcp_drop.py"
    dropping.write_text(text.replace("return BPF_FLOW_DISSECTOR_CONTINUE", "return BPF_DROP"))

    builtin = _hashes(netns)
    assert builtin["ipv6_a"] != builtin["ipv6_b"] and builtin["ipv4_a"] != builtin["ipv4_b"]
    with _dissector(sample).compile().load() as loaded, loaded.attached(netns=netns):
        with_sample = _hashes(netns)
    with _dissector(dropping).compile().load() as loaded, loaded.attached(netns=netns):
        with_drop = _hashes(netns)

    # CONTINUE: the kernel's dissector hashes IPv6 exactly as with nothing attached.
    assert (with_sample["ipv6_a"], with_sample["ipv6_b"]) == (builtin["ipv6_a"], builtin["ipv6_b"])
    assert with_sample["ipv4_a"] != with_sample["ipv4_b"]  # the sample's own keys tell IPv4 flows apart
    # DROP: the keys hold only n_proto, and the kernel hashes them anyway: all IPv6 flows alike.
    assert with_drop["ipv6_a"] == with_drop["ipv6_b"]
    assert with_drop["ipv4_a"] == with_sample["ipv4_a"]  # the IPv4 path is the same program


if __name__ == "__main__":
    sys.stdout.write(header_table())
