"""Maps of an attached dissector: pinned beside its link by `pyfd attach`, read and written by `pyfd map`.

The attaching `pyfd` runs as its own process and exits; frames then go in
through a tap in the test's namespace (as tests/test_attach.py does), and
`pyfd map`, also a process of its own, reads what the dissector counted.
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest
from clang_maps import COUNTING, build, reference_object
from kernel import enforce_kernel, needs_kernel, requires_kernel  # noqa: F401  (pytest fixture)
from pyfd.runtime.attach import PIN_ROOT, open_netns, run_in_netns
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from test_attach import _make_tap, _pyfd
from test_cli import run

from pyfd.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE

SRC_MAC = "02:00:00:00:00:01"


@pytest.fixture(scope="module")
def counting_o(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("counting"), COUNTING)


@pytest.fixture(scope="module")
def bpf_flow_o(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reference_object(tmp_path_factory.mktemp("reference"))


def _maps_dir(netns: str) -> Path:
    return Path(PIN_ROOT) / f"netns-{os.stat(f'/run/netns/{netns}').st_ino}" / "maps"


def _inject(netns: str, frames: list[bytes]) -> None:
    """Write Ethernet frames into a fresh tap of the namespace: its receive path calls the dissector."""
    if not os.path.exists("/dev/net/tun"):
        enforce_kernel("no /dev/net/tun")
    ns_fd, _ = open_netns(netns)
    try:
        tap, mac = run_in_netns(ns_fd, lambda: _make_tap("pyfdmaps0"))
        try:
            for frame in frames:
                os.write(tap, bytes(Ether(dst=mac, src=SRC_MAC) / Ether(frame).payload))
            time.sleep(0.05)  # anything the stack does after write() returns
        finally:
            os.close(tap)
    finally:
        os.close(ns_fd)


def _map(netns: str, *argv: str) -> tuple[int, str, str]:
    done = _pyfd("map", "--netns", netns, *argv)
    return done.returncode, done.stdout, done.stderr


def _frame(layer: object) -> bytes:
    return bytes(Ether(dst="02:00:00:00:00:02", src=SRC_MAC) / IP(src="10.99.0.1", dst="10.99.0.2") / layer)  # type: ignore[operator]


@needs_kernel
def test_attached_maps_outlive_pyfd_and_pyfd_map_reads_and_writes_them(
    counting_o: Path, netns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    attached = _pyfd("attach", counting_o, "--netns", netns)
    assert attached.returncode == EXIT_OK, attached.stderr
    # bpffs refuses '.' in a name: .rodata is pinned as _rodata (as libbpf pins it).
    names = ["jumps", "cpu_frames", "cpu_protos", "dports", "verdicts", "_rodata", "_data", "_bss"]
    assert f"maps pinned under {_maps_dir(netns)}: {', '.join(sorted(names))}" in attached.stdout
    assert sorted(os.listdir(_maps_dir(netns))) == sorted(names)

    # pyfd has exited: the dissector still counts into its maps, and pyfd map reads them.
    _inject(netns, [_frame(TCP(sport=1000 + i, dport=80)) for i in range(5)] + [_frame(UDP(sport=9, dport=4789))] * 2)
    status, out, err = _map(netns, "dports", "dump")
    assert status == EXIT_OK, err
    counted = dict(line.split(": ") for line in out.splitlines())
    assert int(counted["80"]) >= 5 and int(counted["4789"]) >= 2, out  # each frame once at least (the receive path)
    assert err == f"{len(counted)} elements in hash map dports\n"
    status, out, _ = _map(netns, "verdicts", "get", "1")
    assert status == EXIT_OK and int(out) >= 2  # drop_port frames counted as BPF_DROP
    status, out, _ = _map(netns, "--json", "cpu_frames", "get", "0")
    assert status == EXIT_OK and sum(json.loads(out)) >= 7  # one count per CPU
    status, out, _ = _map(netns, ".rodata")  # dump is the default; global data prints by variable
    assert status == EXIT_OK and out == "0: {drop_port: 4789, ports_bias: -1}\n"
    assert _map(netns, "_rodata")[1] == out  # the pin's name works too

    # Writes from user space, seen by the next pyfd process and by the dissector.
    assert _map(netns, "dports", "set", "0x16", "9")[0] == EXIT_OK
    assert _map(netns, "dports", "get", "22")[1] == "9\n"
    assert _map(netns, "dports", "del", "22")[0] == EXIT_OK
    status, out, err = _map(netns, "dports", "get", "22")
    assert (status, out, err) == (EXIT_ERROR, "", "pyfd: error: map 'dports' has no key 22\n")
    status, out, err = _map(netns, "jumps")
    assert status == EXIT_OK and out.startswith("1: ")  # the tail-call program's id
    status, _, err = _map(netns, ".rodata", "set", "0", "00" * 8)
    assert status == EXIT_ERROR and "writing map '.rodata' failed: it is frozen (BPF_MAP_FREEZE)" in err

    status, out, err = run(capsys, "show", "--netns", netns)
    assert status == EXIT_OK, err
    for name in names:
        assert f"  map {name} (id " in out and f"pinned at {_maps_dir(netns)}/{name}" in out
    assert f"read them with `pyfd map --netns {netns} NAME dump`" in out
    status, out, _ = run(capsys, "show", "--netns", netns, "--json")
    (shown,) = json.loads(out)
    assert sorted(m["name"] for m in shown["maps"]) == sorted(names)
    assert {m["name"]: m["type"] for m in shown["maps"]}["cpu_protos"] == "percpu_hash"

    status, _, err = run(capsys, "detach", "--netns", netns)
    assert status == EXIT_OK, err
    assert not _maps_dir(netns).exists() and not _maps_dir(netns).parent.exists()
    status, _, err = _map(netns, "dports")
    assert status == EXIT_ERROR and f"no maps are pinned for network namespace '{netns}'" in err


@needs_kernel
def test_reference_dissector_keeps_its_tail_calls_after_pyfd_exits(bpf_flow_o: Path, netns: str) -> None:
    """bpf_flow.o's prog array is pinned: without a pin the kernel empties it when pyfd exits, and every packet is dropped."""
    attached = _pyfd("attach", bpf_flow_o, "--netns", netns)
    assert attached.returncode == EXIT_OK, attached.stderr
    # The last fd of an unpinned prog array closed with pyfd; the kernel then empties it from a
    # work item (kernel/bpf/arraymap.c, prog_array_map_clear_deferred): give that time to happen.
    time.sleep(1)
    _inject(netns, [_frame(TCP(sport=4321, dport=80))])
    status, out, err = _map(netns, "--json", "last_dissection", "dump")
    assert status == EXIT_OK, err
    dissected = [entry["value"] for entry in json.loads(out)]
    # The receive path starts at the network header (nhoff 0); ip_proto and thoff come from the
    # IPv4 program, which only a tail call through jmp_table reaches.
    key = struct.unpack("<I", struct.pack(">HH", 80, 4321))[0]  # (sport << 16 | dport), both still in network order
    assert {"key": key, "nhoff": 0, "thoff": 20, "ip_proto": 6} in [
        {"key": entry["key"], **{f: entry["value"][f] for f in ("nhoff", "thoff", "ip_proto")}} for entry in json.loads(out)
    ], dissected
    status, out, err = _map(netns, "jmp_table")
    assert status == EXIT_OK and len(out.splitlines()) == 6, (out, err)


@needs_kernel
def test_replace_swaps_the_map_pins(counting_o: Path, bpf_flow_o: Path, netns: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "attach", counting_o, "--netns", netns)[0] == EXIT_OK
    assert "verdicts" in os.listdir(_maps_dir(netns))
    status, out, err = run(capsys, "attach", bpf_flow_o, "--netns", netns, "--replace")
    assert status == EXIT_OK, err
    assert sorted(os.listdir(_maps_dir(netns))) == ["jmp_table", "last_dissection"]
    assert "maps pinned under" in out
    assert run(capsys, "detach", "--netns", netns)[0] == EXIT_OK and not _maps_dir(netns).exists()


@needs_kernel
def test_pyfd_map_errors_and_exit_status(counting_o: Path, netns: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "map", "--netns", netns, "verdicts")
    assert status == EXIT_ERROR and out == ""
    assert f"no maps are pinned for network namespace '{netns}'" in err and f"`pyfd attach FILE --netns {netns}`" in err
    assert run(capsys, "attach", counting_o, "--netns", netns)[0] == EXIT_OK
    status, out, err = run(capsys, "map", "--netns", netns)  # no NAME: the maps pinned
    assert status == EXIT_OK and out.split() == sorted(os.listdir(_maps_dir(netns)))
    cases = [
        (("verdict",), EXIT_ERROR, "has no map 'verdict'; its maps: _bss, _data, _rodata, cpu_frames, cpu_protos, dports, jumps, verdicts; `pyfd map"),
        (("dports", "get", "7"), EXIT_ERROR, "map 'dports' has no key 7"),
        (("dports", "del", "7"), EXIT_ERROR, "map 'dports' has no key 7"),
        (("dports", "get", "seven"), EXIT_USAGE, "a key of map 'dports' is an integer (u16): 'seven' is not a number"),
        (("dports", "set", "70000", "1"), EXIT_USAGE, "a key of map 'dports' is u16 (0..65535); 70000 does not fit"),
        (("dports", "set", "7"), EXIT_USAGE, "`pyfd map NAME set` takes a key and a value, got 1: 7"),
        (("dports", "get"), EXIT_USAGE, "`pyfd map NAME get` takes a key, got 0"),
        (("dports", "fetch", "7"), EXIT_USAGE, "unknown map action 'fetch': use get K, set K V, del K or dump"),
        (("verdicts", "del", "1"), EXIT_ERROR, "it has every index 0..3 and none can be deleted"),
        (("verdicts", "get", "9"), EXIT_ERROR, "map 'verdicts' has no key 9"),
        (("verdicts", "set", "9", "1"), EXIT_ERROR, "index 9 is outside array map 'verdicts' (0..3)"),
        ((".rodata", "set", "0", "00"), EXIT_USAGE, "a value of map '.rodata' is section .rodata (8 bytes): '00' is 1 bytes"),
        (("jumps", "set", "0", "4000000000"), EXIT_ERROR, "no program with id 4000000000 to put into prog array 'jumps'"),
    ]
    for argv, expected, message in cases:
        status, out, err = run(capsys, "map", "--netns", netns, *argv)
        assert (status, out) == (expected, ""), (argv, status, out, err)
        assert err.startswith("pyfd: error: ") and message in err and err.count("\n") == 1, (argv, err)
    status, out, _ = run(capsys, "map", "--help")
    assert status == EXIT_OK and "get KEY | set KEY VALUE | del KEY | dump" in out and "--netns" in out


def test_map_help_without_a_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == EXIT_OK and "map" in out
