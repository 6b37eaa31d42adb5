"""CAP_PERFMON: without it a process with CAP_BPF and CAP_NET_ADMIN loads programs, but not pyfd's dissectors.

The kernel test runs the runtime as user nobody with exactly the capabilities
named, from a copy of pyfd without its compiler (the runtime takes bytes), on
/usr/bin/python3 (root's interpreter may be unreadable to nobody).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel import needs_kernel, requires_kernel  # noqa: F401  (pytest fixture)
from pyfd.runtime import MissingPrivilegeError
from pyfd.runtime.errors import explain_verifier_log

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"

CHILD = """
import json, sys
from pyfd.runtime import VerifierError, load_program
code = open(sys.argv[1], "rb").read()
try:
    load_program(code, name="perfmon").close()
    print(json.dumps({"loaded": True}))
except VerifierError as err:
    print(json.dumps({"loaded": False, "reason": err.reason, "family": err.family, "explanation": err.explanation}))
"""


def test_missing_privilege_advice_names_cap_perfmon() -> None:
    err = MissingPrivilegeError(errno.EPERM, command="BPF_PROG_LOAD", missing=["CAP_BPF"])
    assert "grant CAP_PERFMON too" in str(err) and "variable offset to a packet pointer" in str(err)
    other = MissingPrivilegeError(errno.EPERM, command="setns", missing=["CAP_SYS_ADMIN"], needs=["CAP_SYS_ADMIN"], action="entering a network namespace")
    assert "CAP_PERFMON" not in str(other) and "`setcap cap_sys_admin+ep`" in str(other)


def test_the_refusal_without_cap_perfmon_is_explained() -> None:
    family, explanation = explain_verifier_log("R5 has pointer with unsupported alu operation, pointer arithmetic with it prohibited for !root", "r5 += r0")
    assert family == "privilege"
    assert explanation is not None and "lacks CAP_PERFMON" in explanation


def _runtime_copy(dest: Path) -> Path:
    """pyfd without its compiler, readable by anyone: the package, its leaves and the runtime."""
    package = dest / "pyfd"
    shutil.copytree(ROOT / "pyfd", package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "runtime", package / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _load_as_nobody(tmp_path: Path, caps: str) -> dict[str, object]:
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    run = subprocess.run(
        [
            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            f"--inh-caps={caps}", f"--ambient-caps={caps}",
            SYSTEM_PYTHON, str(child), str(tmp_path / "ipv4_tcp.bin"),
        ],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "src")},
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result: dict[str, object] = json.loads(run.stdout)
    return result


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A fresh directory that user nobody can read (pytest's tmp_path sits under a root-only one)."""
    path = Path(tempfile.mkdtemp(prefix="pyfd-perfmon-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@needs_kernel
def test_pyfd_dissectors_need_cap_perfmon_besides_cap_bpf_and_cap_net_admin(shared_tmp: Path) -> None:
    tmp_path = shared_tmp
    if os.geteuid() != 0:
        pytest.skip("running the runtime as another user with chosen capabilities needs root")
    if shutil.which("setpriv") is None or not Path(SYSTEM_PYTHON).is_file():
        pytest.skip("needs setpriv and /usr/bin/python3")
    import importlib.util

    spec = importlib.util.spec_from_file_location("perfmon_ipv4_tcp", ROOT / "samples" / "ipv4_tcp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "ipv4_tcp.bin").write_bytes(module.ipv4_tcp.compile().code)
    tmp_path.chmod(0o755)
    _runtime_copy(tmp_path / "src")

    refused = _load_as_nobody(tmp_path, "+bpf,+net_admin")
    assert refused["loaded"] is False, refused
    assert "prohibited for !root" in str(refused["reason"]) and refused["family"] == "privilege", refused
    assert "lacks CAP_PERFMON" in str(refused["explanation"])
    assert _load_as_nobody(tmp_path, "+bpf,+net_admin,+perfmon") == {"loaded": True}
