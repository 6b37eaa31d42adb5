"""The pytest plugin and pyfd.testing: a user's test file that uses only the plugin, as root and as user nobody.

The user's file runs in a pytest of its own (pytester): with the kernel it
passes on all five engines; without it (here, when this suite runs
unprivileged; and as user nobody, when it runs as root) the kernel tests
are skipped under one summary line, and under CI=true they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from frames import ether
from hypothesis import given, settings
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

import pyfd
from pyfd.testing import ALL_ENGINES, Engines, frames, kernel_unavailable_reason

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

USER_TESTS = '''
import pytest
from hypothesis import given, settings

from pyfd import BPF_DROP, BPF_FLOW_DISSECTOR_CONTINUE, BPF_OK, ETH_P_IP, BpfFlowKeys, Packet, dissector
from pyfd.headers import IPv4, Ports
from pyfd.testing import frames


@dissector
def ports(pkt: Packet, keys: BpfFlowKeys) -> int:
    if keys.n_proto != ETH_P_IP:
        return BPF_FLOW_DISSECTOR_CONTINUE
    ip = pkt.header(IPv4, keys.nhoff)
    if ip.ihl < 5:
        return BPF_DROP
    keys.ip_proto = ip.protocol
    keys.thoff = keys.nhoff + ip.ihl * 4
    p = pkt.header(Ports, keys.thoff)
    keys.sport = p.sport
    keys.dport = p.dport
    return BPF_OK


# Ethernet (explicit MACs) / IPv4 / TCP 1000 -> 80
TCP = bytes.fromhex("020000000002020000000001080045000028000100004006f97c0a0000010a00000203e800500000000000000000500220000000000000")


def test_every_engine(pyfd_run):
    result = pyfd_run(ports, TCP)
    assert result.retval == BPF_OK and (result.keys.sport, result.keys.dport) == (1000, 80)


def test_engines_agree(pyfd_assert_agree):
    results = pyfd_assert_agree(ports, [TCP, TCP[:30], TCP[:36]])
    assert [r["python"].retval for r in results] == [BPF_OK, BPF_DROP, BPF_DROP]


@settings(max_examples=40, deadline=None)
@given(frame=frames())
def test_random_frames(pyfd_engines, frame):
    pyfd_engines.assert_agree(ports, frame)


@pytest.mark.kernel
def test_in_the_kernel(pyfd_engines):
    assert pyfd_engines.run(ports, "kernel-llvm", TCP).keys.dport == 80
'''


def _outcome(result: pytest.RunResult) -> dict[str, int]:
    return {k: v for k, v in result.parseoutcomes().items() if k in ("passed", "skipped", "failed", "errors")}


def test_a_users_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-ra", "-p", "no:cacheprovider")
    reason = kernel_unavailable_reason()
    if reason is None:
        assert _outcome(result) == {"passed": 8}, result.stdout.str()
        return
    assert _outcome(result) == {"passed": 5, "skipped": 3}, result.stdout.str()
    _check_one_skip_line(result.stdout.lines, 3)


def _check_one_skip_line(lines: list[str], count: int) -> None:
    skips = [line for line in lines if line.startswith("SKIPPED")]
    assert len(skips) == 1 and skips[0].startswith(f"SKIPPED [{count}] ") and "needs the kernel: " in skips[0], lines
    summary = [line for line in lines if line.startswith("pyfd: ")]
    assert len(summary) == 1 and summary[0].startswith(f"pyfd: {count} kernel tests skipped: "), lines
    assert "CI=true makes them fail" in summary[0]


@pytest.fixture(scope="module")
def nobody_venv() -> Iterator[tuple[Path, Path]]:
    """pyfd with its test extra installed for user nobody (a venv of /usr/bin/python3), and a directory it can write."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run pytest as user nobody with setpriv (this suite runs unprivileged: see test_a_users_test_file)")
    if shutil.which("setpriv") is None or not os.access("/usr/bin/python3", os.X_OK):
        pytest.fail("setpriv (util-linux) and /usr/bin/python3 are needed to test the plugin as user nobody", pytrace=False)
    home = Path(tempfile.mkdtemp(prefix="pyfd-plugin-nobody-"))
    try:
        venv = home / "venv"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, capture_output=True)
        install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{ROOT}[test]"], capture_output=True, text=True, timeout=900, check=False)
        assert install.returncode == 0, install.stderr
        (home / "test_user.py").write_text(USER_TESTS)
        subprocess.run(["chmod", "-R", "a+rwX", str(home)], check=True)
        yield venv, home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _as_nobody(venv: Path, home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(venv / "bin" / "pytest"), "-ra", "-p", "no:cacheprovider", "test_user.py"]
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **env}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=home, env=environ, check=False)


def test_a_users_test_file_as_nobody(nobody_venv: tuple[Path, Path]) -> None:
    venv, home = nobody_venv
    child = _as_nobody(venv, home, {})
    assert child.returncode == 0, child.stdout
    lines = child.stdout.splitlines()
    assert "5 passed, 3 skipped" in lines[-1], child.stdout
    _check_one_skip_line(lines, 3)
    ci = _as_nobody(venv, home, {"CI": "true"})
    assert ci.returncode == 1 and "5 passed, 3 errors" in ci.stdout.splitlines()[-1], ci.stdout  # failed in setup
    assert "kernel test cannot run in CI (CI=true)" in ci.stdout


# --- pyfd.testing ---------------------------------------------------------------------------------


def test_engines_are_named_and_listed() -> None:
    assert [e.name for e in ALL_ENGINES] == ["python", "vm-native", "vm-llvm", "kernel-native", "kernel-llvm"]
    with Engines() as engines:
        names = [e.name for e in engines.available()]
    assert names[:3] == ["python", "vm-native", "vm-llvm"]
    assert ("kernel-native" in names) == (kernel_unavailable_reason() is None)


def test_a_disagreement_is_a_readable_table() -> None:
    from test_samples import _sample

    sample = _sample("ipv4_tcp")
    frame = bytes(ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2))
    with Engines() as engines:
        real = engines.runner(sample, "vm-native")

        def wrong(data: bytes, flags: int) -> pyfd.RunResult:
            result = real(data, flags)
            raw = bytearray(result.keys.raw)
            raw[14:16] = (99).to_bytes(2, "big")  # dport
            return pyfd.RunResult(2, pyfd.FlowKeys(bytes(raw)), 0)

        engines._runners[(id(sample), "vm-native")] = wrong
        with pytest.raises(AssertionError) as caught:
            engines.assert_agree(sample, [frame, frame], engines=["python", "vm-native"])
    text = str(caught.value)
    assert text.startswith("ipv4_tcp: engines disagree on 2 of 2 frames (flags=0x0; python, vm-native):\nframe 1 (54 bytes): 0200")
    lines = text.splitlines()
    assert lines[2].split() == ["field", "python", "vm-native"]
    assert lines[3].split() == ["retval", "BPF_OK", "(0)", "BPF_DROP", "(2)"]
    assert lines[4].split() == ["dport", "2", "99"]
    assert len(lines) == 5 + 1 + 4  # and the second frame's table


def test_agreeing_engines_give_their_results() -> None:
    from test_samples import _sample

    sample = _sample("ipv4_tcp")
    frame = bytes(ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=6))
    with Engines() as engines:
        (results,) = engines.assert_agree(sample, frame, engines=["python", "vm-llvm"])
    assert results["python"].keys.dport == results["vm-llvm"].keys.dport == 6


def _kinds(frame: bytes) -> set[str]:
    parsed = Ether(frame)
    found = set()
    for layer, name in ((IP, "ipv4"), (IPv6, "ipv6"), (Dot1Q, "vlan"), (TCP, "tcp"), (UDP, "udp")):
        if parsed.haslayer(layer):
            found.add(name)
    if parsed.haslayer(IP) and parsed[IP].proto == 47:
        found.add("gre")
    return found


def test_the_frames_strategy_covers_the_protocols() -> None:
    seen: set[str] = set()
    lengths: list[int] = []

    @settings(max_examples=500, deadline=None, database=None, derandomize=True)  # the same frames every run
    @given(frame=frames())
    def collect(frame: bytes) -> None:
        assert 14 <= len(frame) <= 4096
        assert frame[0] & 0x03 == 0x02 and frame[6] & 0x03 == 0x02  # explicit, unicast, locally administered MACs
        seen.update(_kinds(frame))
        lengths.append(len(frame))

    collect()
    assert {"ipv4", "ipv6", "vlan", "tcp", "udp", "gre"} <= seen, seen
    assert min(lengths) < 34 < max(lengths)
