"""`pyfd run`: flags, what was run and skipped, pcap records, object files, --json, and no privileges.

Most tests call `pyfd.cli.main` in-process; the unprivileged ones run the
installed command as user nobody (setpriv) from a venv of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import run
from kernel import in_ci, needs_kernel, requires_kernel  # noqa: F401  (pytest fixture)
from pyfd.runtime.flowkeys import FLOW_KEYS_LAYOUT

from pyfd.cli import EXIT_ERROR, EXIT_NO_KERNEL, EXIT_OK, EXIT_USAGE, parse_flags
from pyfd.demo import read_frames

ROOT = Path(__file__).resolve().parent.parent
MACS: dict[str, Any] = {"dst": "02:00:00:00:00:02", "src": "02:00:00:00:00:01"}


def tcp_frame(payload: bytes = b"") -> bytes:
    """An Ethernet/IPv4/TCP frame 10.0.0.1:1000 -> 10.0.0.2:80."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    return bytes(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=80) / payload)


def record(data: bytes, *, incl: int | None = None, orig: int | None = None) -> bytes:
    """One classic pcap record (little-endian) holding `data`."""
    return struct.pack("<IIII", 0, 0, len(data) if incl is None else incl, len(data) if orig is None else orig) + data


PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # Ethernet


def write_pcap(path: Path, body: bytes) -> Path:
    path.write_bytes(PCAP_HEADER + body)
    return path


# -- --flags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("5", 5),
        ("0x4", 4),
        ("STOP_AT_ENCAP", 4),
        ("stop_at_encap", 4),
        ("STOP_AT_ENCAP,PARSE_1ST_FRAG", 5),
        ("BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL|0x1", 3),
        ("BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG, BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL, STOP_AT_ENCAP", 7),
        ("0xffffffff", 0xFFFFFFFF),
    ],
)
def test_flags_by_number_and_name(text: str, value: int) -> None:
    assert parse_flags(text) == value


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("-1", "must fit in 32 bits (0 to 0xffffffff), got -1"),
        ("99999999999", "must fit in 32 bits (0 to 0xffffffff), got 99999999999"),
        ("0x100000000", "got 4294967296"),
        ("STOP_AT_NOTHING", "'STOP_AT_NOTHING' is not a flag: give a number (decimal or 0x hex) or names from PARSE_1ST_FRAG"),
        ("STOP_AT_ENCAP,", "'' is not a flag"),
    ],
)
def test_bad_flags_are_a_usage_error(flags: str, message: str, sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused by the argument parser, before anything is compiled or loaded: exit 2, not an internal error."""
    status, out, err = run(capsys, "run", sample, "--flags", flags)
    assert status == EXIT_USAGE, err
    assert "usage: pyfd run" in err and "pyfd run: error: argument --flags: " in err
    assert message in err, err
    assert "internal error" not in err and "Traceback" not in err and out == ""


@needs_kernel
def test_named_flags_reach_both_sides(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "run", sample, "--flags", "STOP_AT_ENCAP,BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG", "--json")
    assert status == EXIT_OK, err
    assert "flags=0x5 (PARSE_1ST_FRAG|STOP_AT_ENCAP)" in err
    records = [json.loads(line) for line in out.splitlines()]
    assert records and all(r["kernel"]["keys"]["flags"] == 5 == r["python"]["keys"]["flags"] for r in records)


# -- what was run, what was skipped ------------------------------------------------------


def test_read_frames_reports_a_truncated_record(tmp_path: Path) -> None:
    frame = tcp_frame()
    pcap = write_pcap(tmp_path / "cut.pcap", record(frame) + record(frame[:30], orig=len(frame)) + record(frame)[:40])
    whole, snapped, cut = read_frames(pcap)
    assert whole == (f"frame 1 ({len(frame)} bytes)", frame, None)
    assert snapped == (f"frame 2 (30 of {len(frame)} bytes captured)", frame[:30], None)
    assert cut.label == "frame 3" and cut.data == frame[:24]
    assert cut.problem == f"truncated pcap record: its header says {len(frame)} bytes, the file ends after 24"


def test_read_frames_reports_a_truncated_record_header(tmp_path: Path) -> None:
    frame = tcp_frame()
    pcap = write_pcap(tmp_path / "cut.pcap", record(frame) + record(frame)[:10])
    frames = read_frames(pcap)
    assert [f.problem for f in frames] == [None, "truncated pcap record: the file ends 10 bytes into its 16-byte record header"]


@needs_kernel
def test_skipped_frames_are_not_counted_as_agreeing(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = tcp_frame()
    body = record(frame) + record(tcp_frame(b"x" * 5000)) + record(frame) + record(frame[:10]) + record(frame)[:40]
    pcap = write_pcap(tmp_path / "mixed.pcap", body)
    status, out, err = run(capsys, "run", sample, "--pcap", pcap)
    assert status == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].endswith(f"; 5 frames (from {pcap}), flags=0")
    assert "  frame 2 (5054 bytes): skipped: a test run takes 14 to 4096 bytes, this frame has 5054" in lines
    assert "  frame 4 (10 bytes): skipped: a test run takes 14 to 4096 bytes, this frame has 10" in lines
    assert f"  frame 5: skipped: truncated pcap record: its header says {len(frame)} bytes, the file ends after 24" in lines
    assert lines[-1] == (
        "kernel and Python agree on 2 of 2 frames run; "
        "3 skipped (2 outside 14 to 4096 bytes, 1 truncated in the pcap file)"
    )


@needs_kernel
def test_one_frame_is_singular(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcap = write_pcap(tmp_path / "one.pcap", record(tcp_frame()))
    status, out, err = run(capsys, "run", sample, "--pcap", pcap)
    assert status == EXIT_OK, err
    assert out.splitlines()[0].endswith(f"; 1 frame (from {pcap}), flags=0")
    assert out.splitlines()[-1] == "kernel and Python agree on 1 of 1 frame run"


@needs_kernel
def test_nothing_run_is_an_error(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcap = write_pcap(tmp_path / "short.pcap", record(b"\x02" * 10) + record(b"\x02" * 12))
    status, _, err = run(capsys, "run", sample, "--pcap", pcap)
    assert status == EXIT_ERROR
    assert err == "pyfd: error: no frame could be run: 2 frames; 2 skipped (2 outside 14 to 4096 bytes)\n"


@needs_kernel
def test_truncated_record_warns_once_with_json(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = tcp_frame()
    pcap = write_pcap(tmp_path / "cut.pcap", record(frame) + record(frame)[:40])
    status, out, err = run(capsys, "run", sample, "--pcap", pcap, "--json")
    assert status == EXIT_OK, err
    assert err.count("truncated pcap record") == 1 and f"pyfd: warning: {pcap}: frame 2: truncated pcap record" in err
    second = json.loads(out.splitlines()[1])
    assert second["skipped"].startswith("truncated pcap record") and second["kernel"] is None and second["python"] is None


# -- --json ---------------------------------------------------------------------------------


@needs_kernel
@pytest.mark.parametrize("backend", ["native", "llvm"])
def test_json_one_object_per_frame(backend: str, sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "run", sample, "--json", "--backend", backend)
    assert status == EXIT_OK, err
    records = [json.loads(line) for line in out.splitlines()]  # stdout holds nothing but the records
    assert [r["frame"] for r in records] == list(range(1, 8))
    for r in records:
        assert r["skipped"] is None and r["agree"] is True and r["length"] >= 14
        for side in ("kernel", "python"):
            result = r[side]
            assert set(result["keys"]) == {name for name, _, _ in FLOW_KEYS_LAYOUT} | {"raw"}
            assert len(bytes.fromhex(result["keys"]["raw"])) == 56
        assert r["kernel"] == r["python"]
    tcp = records[0]
    assert tcp["kernel"]["retval"] == 0 and tcp["kernel"]["return"] == "BPF_OK"
    keys = tcp["kernel"]["keys"]
    assert (keys["ipv4_src"], keys["ipv4_dst"], keys["sport"], keys["dport"], keys["ip_proto"]) == ("10.0.0.1", "10.0.0.2", 40000, 80, 6)
    assert records[4]["kernel"]["return"] == "BPF_DROP"  # cut inside the IPv4 header
    assert err.splitlines()[-1] == "kernel and Python agree on 7 of 7 frames run"


# -- object files -----------------------------------------------------------------------


@needs_kernel
def test_run_an_object_file(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = tmp_path / "ipv4_tcp.o"
    assert run(capsys, "compile", sample, "-o", obj)[0] == EXIT_OK
    status, out, err = run(capsys, "run", obj)
    assert status == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].startswith(f"ipv4_tcp from {obj} (object file: kernel only, there is no Python source to compare with); 7 frames")
    assert "    BPF_OK FlowKeys(nhoff=14, thoff=34, n_proto=0x0800, ip_proto=6, addr_proto=0x0800, src=10.0.0.1:40000, dst=10.0.0.2:80, flags=0)" in lines
    assert lines[-1] == "ran 7 frames in the kernel only"
    status, out, err = run(capsys, "run", obj, "--json")
    assert status == EXIT_OK, err
    first = json.loads(out.splitlines()[0])
    assert first["python"] is None and first["agree"] is None and first["kernel"]["keys"]["dport"] == 80


def test_compile_options_with_an_object_are_a_usage_error(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = tmp_path / "ipv4_tcp.o"
    assert run(capsys, "compile", sample, "-o", obj)[0] == EXIT_OK
    status, _, err = run(capsys, "run", obj, "-O", "1")
    assert status == EXIT_USAGE
    assert err == f"pyfd: error: {obj} is an object file, already compiled: --backend and -O apply to Python files only\n"


def test_run_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "run", tmp_path)
    assert status == EXIT_ERROR and err == f"pyfd: error: {tmp_path}: is a directory, not a file\n"


# -- without privileges (user nobody) ------------------------------------------------------------


@pytest.fixture(scope="module")
def nobody_pyfd() -> Iterator[tuple[Path, Path]]:
    """The pyfd command installed for user nobody (a venv of /usr/bin/python3), and a directory it can read."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run commands as user nobody with setpriv")
    tools = [shutil.which("setpriv"), "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else None]
    if None in tools:
        message = "setpriv (util-linux) and /usr/bin/python3 are needed to test pyfd as user nobody"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    # pytest's tmp_path sits under a 0700 directory that nobody cannot enter.
    home = Path(tempfile.mkdtemp(prefix="pyfd-nobody-"))
    try:
        venv = home / "venv"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, capture_output=True)
        install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], capture_output=True, text=True, timeout=600, check=False)
        assert install.returncode == 0, install.stderr
        shutil.copy(ROOT / "samples" / "ipv4_tcp.py", home / "ipv4_tcp.py")
        subprocess.run([str(venv / "bin" / "pyfd"), "compile", str(home / "ipv4_tcp.py"), "-o", str(home / "ipv4_tcp.o")], check=True, capture_output=True)
        subprocess.run(["chmod", "-R", "a+rX", str(home)], check=True)
        yield venv / "bin" / "pyfd", home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def as_nobody(pyfd: Path, home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(pyfd), *argv]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=home, env=env, check=False)


def test_unprivileged_run_runs_the_interpreter_and_the_python_side(nobody_pyfd: tuple[Path, Path]) -> None:
    pyfd, home = nobody_pyfd
    child = as_nobody(pyfd, home, "run", str(home / "ipv4_tcp.py"))
    assert child.returncode == EXIT_OK, child.stderr
    assert child.stderr.count("kernel side was skipped") == 1, child.stderr
    assert child.stderr.startswith("pyfd: warning: the kernel side was skipped, running the interpreter (pyfd.vm) and the Python side instead: ")
    assert "lacks CAP_BPF and CAP_NET_ADMIN" in child.stderr
    lines = child.stdout.splitlines()
    keys = "nhoff=14, thoff=34, n_proto=0x0800, ip_proto=6, addr_proto=0x0800, src=10.0.0.1:40000, dst=10.0.0.2:80, flags=0"
    assert f"    vm: BPF_OK FlowKeys({keys})" in lines
    assert lines[-1] == "vm and Python agree on 7 of 7 frames run"


def test_unprivileged_run_json(nobody_pyfd: tuple[Path, Path]) -> None:
    pyfd, home = nobody_pyfd
    child = as_nobody(pyfd, home, "run", str(home / "ipv4_tcp.py"), "--json")
    assert child.returncode == EXIT_OK, child.stderr
    records = [json.loads(line) for line in child.stdout.splitlines()]
    assert len(records) == 7 and all(r["kernel"] is None and r["agree"] is True and r["vm"] == r["python"] for r in records)
    assert child.stderr.count("kernel side was skipped") == 1


def test_unprivileged_run_of_an_object_runs_the_interpreter(nobody_pyfd: tuple[Path, Path]) -> None:
    pyfd, home = nobody_pyfd
    child = as_nobody(pyfd, home, "run", str(home / "ipv4_tcp.o"))
    assert child.returncode == EXIT_OK, child.stderr
    assert child.stderr.startswith("pyfd: warning: the kernel side was skipped, running the interpreter (pyfd.vm) instead: ")
    assert child.stdout.splitlines()[-1] == "ran 7 frames in the interpreter (vm) only"


def test_unprivileged_run_in_the_kernel_exits_3(nobody_pyfd: tuple[Path, Path]) -> None:
    pyfd, home = nobody_pyfd
    for target in ("ipv4_tcp.o", "ipv4_tcp.py"):
        child = as_nobody(pyfd, home, "run", str(home / target), "--engine", "kernel")
        assert child.returncode == EXIT_NO_KERNEL, child.stderr
        assert child.stderr.startswith("pyfd: error: cannot load BPF programs here: ") and "CAP_BPF" in child.stderr
        assert "kernel side was skipped" not in child.stderr


def test_unprivileged_run_of_an_unlinkable_object_says_what_is_wrong_with_it(nobody_pyfd: tuple[Path, Path]) -> None:
    """What is wrong with the file comes before "no privileges": root could not load it either."""
    from test_objects import C_PROGRAMS, build

    pyfd, home = nobody_pyfd
    obj = build(home, "calls", C_PROGRAMS["call-into-text"][0])
    obj.chmod(0o644)
    child = as_nobody(pyfd, home, "run", str(obj), "--function", "call_out")
    assert child.returncode == EXIT_ERROR, child.stderr
    assert child.stderr.startswith(f"pyfd: error: {obj}: program 'call_out' uses functions from other sections")


def test_unprivileged_run_of_a_map_object(nobody_pyfd: tuple[Path, Path]) -> None:
    """A map object is fine (root loads it): without privileges it runs in the interpreter, and the kernel engine exits 3."""
    from test_objects import BTF_MAP, build

    pyfd, home = nobody_pyfd
    obj = build(home, "maps", BTF_MAP)
    obj.chmod(0o644)
    child = as_nobody(pyfd, home, "run", str(obj))
    assert child.returncode == EXIT_OK, child.stderr
    assert "BPF_DROP" in child.stdout  # key 0 is absent from a fresh hash map
    child = as_nobody(pyfd, home, "run", str(obj), "--engine", "kernel")
    assert child.returncode == EXIT_NO_KERNEL, child.stderr
    assert child.stderr.startswith("pyfd: error: cannot load BPF programs here: ") and "CAP_BPF" in child.stderr


def test_unprivileged_pyfd_map_exits_3(nobody_pyfd: tuple[Path, Path], netns: str) -> None:
    """Root's map pins are files only root opens: another user is told which privileges it lacks."""
    from test_objects import BTF_MAP, build

    from pyfd.cli import main

    pyfd, home = nobody_pyfd
    obj = build(home, "maps", BTF_MAP)
    assert main(["attach", str(obj), "--netns", netns]) == EXIT_OK
    child = as_nobody(pyfd, home, "map", "--netns", netns, "seen")
    assert child.returncode == EXIT_NO_KERNEL, child.stderr
    assert child.stderr.startswith("pyfd: error: ") and "opening map 'seen' pinned at /sys/fs/bpf/pyfd/netns-" in child.stderr
    assert "this process lacks CAP_BPF and CAP_SYS_ADMIN" in child.stderr and child.stdout == ""


# -- engines ---------------------------------------------------------------------------------


def test_engine_vm_needs_no_kernel(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "run", sample, "--engine", "vm,python")
    assert status == EXIT_OK, err
    lines = out.splitlines()
    assert "    vm: BPF_OK FlowKeys(nhoff=14, thoff=34, n_proto=0x0800, ip_proto=6, addr_proto=0x0800, src=10.0.0.1:40000, dst=10.0.0.2:80, flags=0)" in lines
    assert lines[-1] == "vm and Python agree on 7 of 7 frames run" and err == ""
    status, out, err = run(capsys, "run", sample, "--engine", "python", "--engine", "vm", "--json")
    assert status == EXIT_OK, err
    records = [json.loads(line) for line in out.splitlines()]
    assert all(r["kernel"] is None and r["vm"] == r["python"] and r["agree"] is True for r in records)
    assert err.splitlines()[-1] == "Python and vm agree on 7 of 7 frames run"


def test_engine_vm_runs_an_object_file(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = tmp_path / "ipv4_tcp.o"
    assert run(capsys, "compile", sample, "-o", obj)[0] == EXIT_OK
    status, out, err = run(capsys, "run", obj, "--engine", "vm")
    assert status == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].startswith(f"ipv4_tcp from {obj} (object file: vm only, there is no Python source to compare with); 7 frames")
    assert lines[-1] == "ran 7 frames in the interpreter (vm) only"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--engine", "gpu"], "argument --engine: 'gpu' is not an engine: give kernel (BPF_PROG_TEST_RUN), vm (pyfd's interpreter) or python"),
        (["--engine", "vm,"], "argument --engine: '' is not an engine"),
    ],
)
def test_bad_engines_are_a_usage_error(argv: list[str], message: str, sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "run", sample, *argv)
    assert status == EXIT_USAGE and message in err and out == ""


def test_python_engine_for_an_object_is_a_usage_error(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = tmp_path / "ipv4_tcp.o"
    assert run(capsys, "compile", sample, "-o", obj)[0] == EXIT_OK
    status, _, err = run(capsys, "run", obj, "--engine", "vm,python")
    assert status == EXIT_USAGE
    assert err == f"pyfd: error: {obj} is an object file: there is no Python source to run (use --engine kernel or vm)\n"


@needs_kernel
def test_three_engines_agree(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "run", sample, "--engine", "kernel,vm,python", "--json")
    assert status == EXIT_OK, err
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 7 and all(r["kernel"] == r["vm"] == r["python"] and r["agree"] for r in records)
    assert err.splitlines()[-1] == "kernel, vm and Python agree on 7 of 7 frames run"


def test_engines_disagreeing_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The interpreter's answer changed under it (as a miscompile would change the kernel's): exit 1, named.
    import pyfd.vm

    source = tmp_path / "accept.py"
    source.write_text(
        "from pyfd import dissector, BPF_OK, BpfFlowKeys, Packet\n\n"
        "@dissector\ndef accept(pkt: Packet, keys: BpfFlowKeys) -> int:\n    keys.sport = 7\n    return BPF_OK\n"
    )
    real = pyfd.vm.VmProgram.run

    def off_by_one(self: pyfd.vm.VmProgram, frame: bytes, *, flags: int = 0) -> object:
        result = real(self, frame, flags=flags)
        return type(result)(result.retval + 1, result.keys, 0)

    monkeypatch.setattr(pyfd.vm.VmProgram, "run", off_by_one)
    status, out, err = run(capsys, "run", source, "--engine", "python,vm")
    assert status == EXIT_ERROR, err
    assert "    VM DISAGREES: return 1 FlowKeys(" in out and "differs in return code" in out
    assert out.splitlines()[-1] == "Python and vm disagree on 7 of 7 frames run"


def test_an_access_the_interpreter_stops_is_an_error_at_the_source_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import textwrap

    source = tmp_path / "oob.c"
    source.write_text(
        textwrap.dedent(
            """\
            #include <linux/bpf.h>
            #include <bpf/bpf_helpers.h>
            SEC("flow_dissector") int oob(struct __sk_buff *skb)
            {
                skb->flow_keys->sport = *(__u16 *)((void *)(long)skb->data + 2000);
                return BPF_OK;
            }
            char _license[] SEC("license") = "GPL";
            """
        )
    )
    from clang_maps import build

    obj = build(tmp_path, source, "oob")
    status, out, err = run(capsys, "run", obj, "--engine", "vm")
    assert status == EXIT_ERROR
    assert err.startswith(f"pyfd: error: {source}:5:") or err.startswith(f"{source}:5:"), err
    assert "out-of-bounds read of 2 bytes at offset 2000 of the packet (54 bytes)" in err
    assert "(on IPv4 TCP 10.0.0.1:40000 -> 10.0.0.2:80, in the interpreter: the kernel's verifier would refuse this program)" in err
    assert "Traceback" not in err
