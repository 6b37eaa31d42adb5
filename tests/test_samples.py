"""The samples, compiled and run in the kernel and in pyfd's interpreter, agree with their Python run.

For every frame: the return code and all 56 bytes of keys from
BPF_PROG_TEST_RUN, and from the interpreter (pyfd.vm), equal those of the
same function run as CPython, on every backend (native and llvm), and the
main frames are also checked against keys written out here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from engines import COMPILED, load, load_on_every_backend
from frames import ipv4_frames
from kernel import bpftool, in_ci, needs_kernel

import pyfd
from pyfd import BPF_DROP, BPF_FLOW_DISSECTOR_CONTINUE, BPF_OK, Dissector
from pyfd.compiler.driver import BACKENDS
from pyfd.runtime import LoadedProgram

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _sample(name: str) -> Dissector:
    spec = importlib.util.spec_from_file_location(f"sample_{name}", SAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = [v for v in vars(module).values() if isinstance(v, Dissector)]
    assert len(found) == 1
    return found[0]


SAMPLE_NAMES = sorted(p.stem for p in SAMPLES.glob("*.py"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_compiles(name: str, backend: str) -> None:
    program = _sample(name).compile(backend=backend)
    assert program.insn_count > 0
    assert "exit" in program.asm()


Loaded = dict[str, LoadedProgram]  # backend -> the program it compiled, loaded


@contextlib.contextmanager
def _load_on_every_backend(dissector: Dissector, engine: str = "kernel") -> Iterator[Loaded]:
    with load_on_every_backend(dissector, engine) as loaded:
        yield loaded


@pytest.fixture(scope="module", params=COMPILED)
def ipv4_tcp(request: pytest.FixtureRequest) -> Iterator[tuple[Dissector, Loaded]]:
    """samples/ipv4_tcp.py on every backend, in the kernel or in the interpreter."""
    dissector = _sample("ipv4_tcp")
    with _load_on_every_backend(dissector, request.param) as loaded:
        yield dissector, loaded


def _agree(dissector: Dissector, loaded: Loaded, frame: bytes, flags: int = 0) -> pyfd.runtime.RunResult:
    """Every backend's program (kernel or interpreter) and CPython give the same return code and keys; the common result."""
    python = dissector.run_python(frame, flags=flags)
    for backend, program in loaded.items():
        kernel = program.run(frame, flags=flags)
        assert kernel.retval == python.retval, f"{backend}: return code: compiled {kernel.retval}, python {python.retval}"
        assert kernel.keys.raw == python.keys.raw, f"{backend}: {kernel.keys.diff(python.keys)}"
    return kernel


FRAMES = ipv4_frames()

# name -> (return code, thoff, ip_proto, addr_proto, sport, dport, src, dst)
EXPECTED = {
    "tcp": (BPF_OK, 34, 6, 0x0800, 1234, 80, "10.0.0.1", "10.0.0.2"),
    "udp": (BPF_OK, 34, 17, 0x0800, 5353, 53, "10.0.0.1", "10.0.0.2"),
    "icmp": (BPF_OK, 34, 1, 0x0800, 0, 0, "10.0.0.1", "10.0.0.2"),
    "options_tcp": (BPF_OK, 38, 6, 0x0800, 40000, 443, "192.0.2.1", "198.51.100.7"),
    "max_options_udp": (BPF_OK, 74, 17, 0x0800, 1, 2, "10.1.2.3", "10.3.2.1"),
    "gre_proto": (BPF_OK, 34, 47, 0x0800, 0, 0, "10.0.0.1", "10.0.0.2"),
    "ipv6_tcp": (BPF_FLOW_DISSECTOR_CONTINUE, 14, 0, 0, 0, 0, "0.0.0.0", "0.0.0.0"),
    "arp": (BPF_FLOW_DISSECTOR_CONTINUE, 14, 0, 0, 0, 0, "0.0.0.0", "0.0.0.0"),
    "vlan_ipv4": (BPF_FLOW_DISSECTOR_CONTINUE, 14, 0, 0, 0, 0, "0.0.0.0", "0.0.0.0"),
    "ihl_4": (BPF_DROP, 14, 0, 0, 0, 0, "0.0.0.0", "0.0.0.0"),
    "short_14": (BPF_DROP, 14, 0, 0, 0, 0, "0.0.0.0", "0.0.0.0"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ipv4_tcp_keys(ipv4_tcp: tuple[Dissector, Loaded], name: str) -> None:
    result = _agree(*ipv4_tcp, FRAMES[name])
    retval, thoff, ip_proto, addr_proto, sport, dport, src, dst = EXPECTED[name]
    keys = result.keys
    assert result.retval == retval
    assert (keys.nhoff, keys.thoff, keys.ip_proto, keys.addr_proto) == (14, thoff, ip_proto, addr_proto)
    assert (keys.sport, keys.dport) == (sport, dport)
    assert keys.ipv4_src == ipaddress.IPv4Address(src) and keys.ipv4_dst == ipaddress.IPv4Address(dst)
    assert keys.n_proto == int.from_bytes(FRAMES[name][12:14], "big")


@pytest.mark.parametrize("name", ["tcp", "udp", "options_tcp", "max_options_udp", "icmp"])
def test_ipv4_tcp_every_truncation(ipv4_tcp: tuple[Dissector, Loaded], name: str) -> None:
    frame = FRAMES[name]
    ip_end = 14 + (frame[14] & 0xF) * 4
    for length in range(14, len(frame) + 1):
        result = _agree(*ipv4_tcp, frame[:length])
        if length < ip_end:
            assert result.retval == BPF_DROP, length
        elif frame[23] in (6, 17) and length < ip_end + 4:
            assert result.retval == BPF_DROP, length  # ports cut off
        else:
            assert result.retval == BPF_OK, length


@pytest.mark.parametrize("flags", [0, 1, 2, 4, 7])
def test_flags_pass_through(ipv4_tcp: tuple[Dissector, Loaded], flags: int) -> None:
    assert _agree(*ipv4_tcp, FRAMES["tcp"], flags).keys.flags == flags


@pytest.mark.parametrize("engine", COMPILED)
def test_custom_sample(engine: str) -> None:
    dissector = _sample("custom")
    with _load_on_every_backend(dissector, engine) as loaded:
        for frame in FRAMES.values():
            result = _agree(dissector, loaded, frame)
            assert result.retval == BPF_OK and result.keys.thoff == result.keys.nhoff == 14


@pytest.mark.parametrize("engine", COMPILED)
@pytest.mark.parametrize("backend", BACKENDS)
def test_object_file_round_trip_through_pyfd_load(tmp_path: Path, backend: str, engine: str) -> None:
    dissector = _sample("ipv4_tcp")
    path = dissector.compile(backend=backend).write(tmp_path / "ipv4_tcp.o")
    with load(path, engine) as loaded:
        assert loaded.name == "ipv4_tcp"
        for frame in FRAMES.values():
            _agree(dissector, {backend: loaded}, frame)


@needs_kernel
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_bpftool_loads_and_runs_the_object(tmp_path: Path, name: str, backend: str) -> None:
    tool = bpftool()
    if not os.path.ismount("/sys/fs/bpf"):
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=False)
    if not os.path.ismount("/sys/fs/bpf"):
        pytest.fail("bpffs is not mounted at /sys/fs/bpf and cannot be mounted") if in_ci() else pytest.skip("no bpffs")
    dissector = _sample(name)
    obj = dissector.compile(backend=backend).write(tmp_path / f"{name}.o")
    pin = f"/sys/fs/bpf/pyfd_test_{uuid.uuid4().hex[:12]}"
    frame_path, out_path = tmp_path / "frame", tmp_path / "keys"
    frame_path.write_bytes(FRAMES["tcp"])
    try:
        load = subprocess.run([tool, "prog", "load", str(obj), pin, "type", "flow_dissector"], capture_output=True, text=True)
        assert load.returncode == 0, load.stderr
        assert "libbpf" not in load.stderr, load.stderr  # no warnings either
        show = json.loads(subprocess.run([tool, "-j", "prog", "show", "pinned", pin], capture_output=True, text=True, check=True).stdout)
        assert show["type"] == "flow_dissector" and show["name"] == name
        run = subprocess.run([tool, "-j", "prog", "run", "pinned", pin, "data_in", str(frame_path), "data_out", str(out_path)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        python = dissector.run_python(FRAMES["tcp"])
        assert json.loads(run.stdout)["retval"] == python.retval
        assert out_path.read_bytes() == python.keys.raw
    finally:
        if os.path.exists(pin):
            os.unlink(pin)
