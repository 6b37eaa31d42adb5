"""pyfd's objects with maps in other loaders' hands: bpftool, libbpf, and a libbpf skeleton.

The object of tests/dissectors/maps.py (three kinds of map, two Configs) must
be what clang would write for the same C: `bpftool prog loadall` creates its
maps from the BTF-defined `.maps` and `.rodata` (frozen), applies its
relocations and loads it; `bpftool map dump` prints keys and values through
the BTF; the maps count what `bpftool prog run` feeds the program; libbpf
loads it without a word on stderr; and `bpftool gen skeleton` writes a
header a C program compiles against, sets a Config through and loads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dissectors import maps as dissectors
from interop import build_c_loader, missing, run_loader
from kernel import bpftool, needs_kernel, skip_unless_kernel
from pyfd.compiler.driver import BACKENDS
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

MACS: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def udp_frame(sport: int, dport: int, ttl: int = 64) -> bytes:
    """An IPv4/UDP frame with explicit MAC addresses."""
    return bytes(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2", ttl=ttl) / UDP(sport=sport, dport=dport) / b"x")


@pytest.fixture(scope="module", params=list(BACKENDS))
def mapped_object(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/dissectors/maps.py's `mapped`, compiled by one backend, as an object file."""
    return dissectors.mapped.compile(backend=request.param).write(tmp_path_factory.mktemp(f"mapped_{request.param}") / "mapped.o")


@pytest.fixture
def pinned(mapped_object: Path) -> Iterator[Path]:
    """The object loaded by `bpftool prog loadall`, program and maps pinned in a fresh bpffs directory."""
    skip_unless_kernel()
    tool = bpftool()
    pin = Path(f"/sys/fs/bpf/pyfd-test-maps-{uuid.uuid4().hex[:10]}")
    try:
        done = subprocess.run(
            [tool, "prog", "loadall", str(mapped_object), str(pin), "type", "flow_dissector", "pinmaps", str(pin / "maps")],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, done.stderr
        yield pin
    finally:
        shutil.rmtree(pin, ignore_errors=True)


def dump(pin: Path, name: str) -> list[dict[str, object]]:
    """`bpftool map dump` of a pinned map, as JSON (keys and values formatted through the BTF)."""
    done = subprocess.run([bpftool(), "-j", "map", "dump", "pinned", str(pin / "maps" / name)], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def formatted(entries: list[dict[str, object]]) -> dict[object, object]:
    """The BTF-formatted key -> value of a dump (a per-CPU map's values summed over the CPUs)."""
    out: dict[object, object] = {}
    for entry in entries:
        formatted_entry = entry.get("formatted", entry)
        assert isinstance(formatted_entry, dict)
        value = formatted_entry.get("value", formatted_entry.get("values"))
        if isinstance(value, list):  # per CPU: [{"cpu": N, "value": V}, ...]
            value = sum(int(v["value"]) for v in value)
        out[formatted_entry["key"]] = value
    return out


def run(pin: Path, frame: bytes, tmp_path: Path) -> int:
    """`bpftool prog run` of the pinned program on one frame; its return value."""
    data = tmp_path / f"frame-{uuid.uuid4().hex[:6]}"
    data.write_bytes(frame)
    done = subprocess.run(
        [bpftool(), "-j", "prog", "run", "pinned", str(pin / "mapped"), "data_in", str(data), "data_out", str(tmp_path / "keys")],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return int(json.loads(done.stdout)["retval"])


@needs_kernel
def test_bpftool_creates_the_maps_from_the_btf(pinned: Path) -> None:
    assert sorted(p.name for p in (pinned / "maps").iterdir()) == ["denied", "last", "mapped_rodata", "ports", "protocols", "verdicts"]
    assert formatted(dump(pinned, "verdicts")) == {0: 0, 1: 0, 2: 0}  # an array has every index, formatted as __u32 keys
    assert formatted(dump(pinned, "last")) == {0: 0, 1: 0}
    assert formatted(dump(pinned, "ports")) == {}
    (rodata,) = dump(pinned, "mapped_rodata")
    assert rodata["formatted"]["value"] == {".rodata": [{"DROP_PORT": 4789}, {"FORGET_PORT": 7}]}  # type: ignore[index]
    show = subprocess.run([bpftool(), "-j", "map", "show", "pinned", str(pinned / "maps" / "mapped_rodata")], capture_output=True, text=True, check=True)
    info = json.loads(show.stdout)
    assert info["frozen"] == 1 and info["flags"] & 0x80  # BPF_F_RDONLY_PROG, then BPF_MAP_FREEZE


@needs_kernel
def test_the_maps_count_what_the_program_sees(pinned: Path, tmp_path: Path) -> None:
    assert run(pinned, udp_frame(1000, 53, ttl=9), tmp_path) == 0
    assert run(pinned, udp_frame(1001, 53), tmp_path) == 0
    assert run(pinned, udp_frame(1002, 4789), tmp_path) == 2  # DROP_PORT: dropped, its source port denied
    assert run(pinned, udp_frame(1002, 53), tmp_path) == 2  # denied
    assert run(pinned, bytes(Ether(**MACS, type=0x86DD) / (b"\0" * 40)), tmp_path) == 129
    assert run(pinned, udp_frame(1000, 53)[:20], tmp_path) == 2  # cut inside the IP header
    assert formatted(dump(pinned, "verdicts")) == {0: 2, 1: 3, 2: 1}
    assert formatted(dump(pinned, "ports")) == {53: 2, 4789: 1}
    assert formatted(dump(pinned, "denied")) == {1002: 1}
    assert formatted(dump(pinned, "protocols"))[17] == 4
    assert formatted(dump(pinned, "last")) == {0: -64, 1: 1}


@needs_kernel
def test_libbpf_loads_it_without_a_warning(mapped_object: Path, tmp_path: Path) -> None:
    skip_unless_kernel()
    loader = build_c_loader(tmp_path)
    result = run_loader(loader, mapped_object, [(udp_frame(1000, 53), 0), (udp_frame(1, 4789), 0)], program="mapped")
    assert result.stderr == ""
    assert [retval for retval, _ in result.results] == [0, 2]


SKELETON_USER = r"""
#include <stdio.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "mapped.skel.h"

int main(void)
{
    struct mapped *skel = mapped__open();
    __u32 slot = 0;
    __u64 count = 0;
    char frame[64] = {0};
    char keys[56];
    if (!skel)
        return 1;
    skel->rodata->DROP_PORT = 53;  /* set before the load: .rodata is frozen then */
    if (mapped__load(skel))
        return 2;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame),
            .data_out = keys, .data_size_out = sizeof(keys));
    if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.mapped), &opts))
        return 3;
    if (bpf_map__lookup_elem(skel->maps.verdicts, &slot, sizeof(slot), &count, sizeof(count), 0))
        return 4;
    printf("%u %llu %u\n", opts.retval, (unsigned long long)count, skel->rodata->DROP_PORT);
    mapped__destroy(skel);
    return 0;
}
"""


@needs_kernel
def test_a_libbpf_skeleton_sets_a_config_and_loads(mapped_object: Path, tmp_path: Path) -> None:
    skip_unless_kernel()
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        missing("gcc", "gcc libbpf-dev")
    header = subprocess.run([bpftool(), "gen", "skeleton", str(mapped_object), "name", "mapped"], capture_output=True, text=True, timeout=60, check=True)
    assert "DROP_PORT" in header.stdout and "struct bpf_map *verdicts;" in header.stdout
    (tmp_path / "mapped.skel.h").write_text(header.stdout)
    (tmp_path / "user.c").write_text(SKELETON_USER)
    built = subprocess.run([gcc, "-O2", "-Wall", "-Werror", "-o", str(tmp_path / "user"), str(tmp_path / "user.c"), "-lbpf"],
                           capture_output=True, text=True, cwd=tmp_path, check=False)
    if built.returncode and "bpf/libbpf.h" in built.stderr:
        missing("libbpf's headers", "libbpf-dev")
    assert built.returncode == 0, built.stderr
    done = subprocess.run([str(tmp_path / "user")], capture_output=True, text=True, timeout=60, check=False)
    # A zeroed frame is not IPv4: CONTINUE, counted in slot 2, none in slot 0.
    assert (done.returncode, done.stdout) == (0, "129 0 53\n"), done.stderr


PRUNED = """
from pyfd import BPF_OK, BpfFlowKeys, Config, Packet, dissector, u8, u16
from pyfd.headers import IPv4

THOROUGH = Config(u8, 0)

@dissector
def pruned(pkt: Packet, keys: BpfFlowKeys) -> int:
    if THOROUGH == 1:
        off: u16 = keys.nhoff
        for _ in range(32):
            ip = pkt.header(IPv4, off)
            if ip.ttl & 1:
                off = off + 4
            keys.thoff = off
    return BPF_OK
"""


@needs_kernel
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_the_verifier_knows_a_config_and_skips_what_it_rules_out(backend: str, tmp_path: Path) -> None:
    # .rodata is frozen before the program loads, and the program reads the
    # constant from it: the verifier takes the value as known and walks only
    # the branch it selects (kernel/bpf/verifier.c, bpf_map_direct_read).
    from test_compile_errors import dissector_file, only_dissector

    skip_unless_kernel()
    program = only_dissector(dissector_file(tmp_path, PRUNED, "pruned.py", prelude="")).compile(backend=backend)
    walked = {}
    for value in (0, 1):
        with program.load(config={"THOROUGH": value}) as loaded:
            walked[value] = loaded.verified_insns
    assert walked[0] < 20 < 300 < walked[1], walked
