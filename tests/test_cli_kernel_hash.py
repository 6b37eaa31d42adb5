"""`pyfd run FILE --kernel-hash`: does the kernel hash the user's frames alike with the dissector as without it?

In-process through test_cli.run, on pcap files built with scapy; the
unprivileged case runs the installed command as user nobody.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kernel import needs_kernel
from test_cli import run
from test_cli_run import MACS, as_nobody, nobody_pyfd, record, write_pcap  # noqa: F401  (nobody_pyfd: a fixture)

from pyfd.cli import EXIT_ERROR, EXIT_NO_KERNEL, EXIT_OK, EXIT_USAGE

ROOT = Path(__file__).resolve().parent.parent


def _frames() -> list[bytes]:
    """IPv4 TCP, UDP, SCTP and ESP, and IPv6 UDP: ports (or an SPI) the kernel hashes."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.ipsec import ESP
    from scapy.layers.l2 import Ether
    from scapy.layers.sctp import SCTP

    ip = IP(src="10.0.0.1", dst="10.0.0.2")
    return [
        bytes(Ether(**MACS) / ip / TCP(sport=1000, dport=80)),
        bytes(Ether(**MACS) / ip / UDP(sport=53, dport=5353)),
        bytes(Ether(**MACS) / ip / SCTP(sport=2905, dport=2905)),
        bytes(Ether(**MACS) / ip / ESP(spi=0x1234, seq=1)),
        bytes(Ether(**MACS) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2)),
    ]


@pytest.fixture
def pcap(tmp_path: Path) -> Path:
    return write_pcap(tmp_path / "mixed.pcap", b"".join(record(f) for f in _frames()))


@needs_kernel
def test_full_hashes_every_frame_like_the_kernel(capsys: pytest.CaptureFixture[str], pcap: Path) -> None:
    status, out, err = run(capsys, "run", ROOT / "samples" / "full.py", "--pcap", pcap, "--kernel-hash")
    assert status == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].startswith("full: the kernel's flow hash of 5 frames (from ")
    assert sum(line.startswith("  frame ") and ": same hash 0x" in line for line in lines) == 5, out
    assert lines[-1] == "the kernel hashes 5 of 5 frames alike with full attached as with its built-in dissector"


@needs_kernel
def test_a_dissector_that_departs_is_shown_where(capsys: pytest.CaptureFixture[str], pcap: Path) -> None:
    """samples/ipv4_tcp.py reads no ports for SCTP or ESP (the kernel does) and hands IPv6 back: 3 alike, 2 not."""
    status, out, err = run(capsys, "run", ROOT / "samples" / "ipv4_tcp.py", "--pcap", pcap, "--kernel-hash")
    assert status == EXIT_ERROR, err
    different = [line for line in out.splitlines() if ": DIFFERENT: built-in 0x" in line]
    assert len(different) == 2 and different[0].startswith("  frame 3") and different[1].startswith("  frame 4"), out
    assert "    ipv4_tcp leaves FlowKeys(nhoff=14, thoff=34, n_proto=0x0800, ip_proto=132," in out
    assert out.splitlines()[-1] == (
        "the kernel hashes 3 of 5 frames alike with ipv4_tcp attached as with its built-in dissector; 2 differently"
    )


@needs_kernel
def test_json_records(capsys: pytest.CaptureFixture[str], pcap: Path) -> None:
    status, out, err = run(capsys, "run", ROOT / "samples" / "ipv4_tcp.py", "--pcap", pcap, "--kernel-hash", "--json")
    assert status == EXIT_ERROR
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["same"] for r in records] == [True, True, False, False, True]
    assert all(isinstance(r["builtin_hash"], int) and isinstance(r["hash"], int) for r in records)
    assert (records[0]["builtin_hash"] == records[0]["hash"]) and records[2]["builtin_hash"] != records[2]["hash"]
    assert records[2]["keys"]["ip_proto"] == 132 and records[2]["retval"] == 0
    assert "; 2 differently" in err  # the summary goes to stderr with --json


@needs_kernel
def test_object_file(capsys: pytest.CaptureFixture[str], pcap: Path, tmp_path: Path) -> None:
    obj = tmp_path / "full.o"
    assert run(capsys, "compile", ROOT / "samples" / "full.py", "-o", obj)[0] == EXIT_OK
    status, out, err = run(capsys, "run", obj, "--pcap", pcap, "--kernel-hash")
    assert status == EXIT_OK, err
    assert out.splitlines()[-1].startswith("the kernel hashes 5 of 5 frames alike with full attached")


@needs_kernel
def test_frames_a_test_run_refuses_are_skipped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    frames = _frames()
    pcap = write_pcap(tmp_path / "cut.pcap", record(frames[0][:30]) + record(frames[1]))
    status, out, err = run(capsys, "run", ROOT / "samples" / "full.py", "--pcap", pcap, "--kernel-hash")
    assert status == EXIT_OK, err
    assert "  frame 1 (30 bytes): skipped: a tc test run wants the whole 20-byte IP header" in out, out
    assert out.splitlines()[-1].endswith("; 1 skipped (1 not taken by a tc test run)")
    only_cut = write_pcap(tmp_path / "only.pcap", record(frames[0][:30]))
    status, out, err = run(capsys, "run", ROOT / "samples" / "full.py", "--pcap", only_cut, "--kernel-hash")
    assert status == EXIT_ERROR and err.startswith("pyfd: error: no frame could be hashed: 1 frame; 1 skipped")


def test_flags_do_not_apply(capsys: pytest.CaptureFixture[str], pcap: Path) -> None:
    status, _, err = run(capsys, "run", ROOT / "samples" / "full.py", "--pcap", pcap, "--kernel-hash", "--flags", "1")
    assert status == EXIT_USAGE
    assert "--flags does not apply to --kernel-hash" in err


def test_help_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "run", "--help")
    assert status == EXIT_OK
    words = " ".join(out.split())  # argparse wraps the help
    assert "--kernel-hash" in words and "throwaway network namespace" in words and "Needs root" in words


def test_unprivileged_exits_3(nobody_pyfd: tuple[Path, Path]) -> None:  # noqa: F811
    pyfd, home = nobody_pyfd
    child = as_nobody(pyfd, home, "run", str(home / "ipv4_tcp.py"), "--kernel-hash")
    assert child.returncode == EXIT_NO_KERNEL, child.stderr
    assert child.stderr.startswith("pyfd: error: ") and "CAP_SYS_ADMIN" in child.stderr and "lacks" in child.stderr
    assert child.stdout == ""
