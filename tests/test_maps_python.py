"""The Python run's maps and Configs: kept on the dissector across runs, with the kernel's rules, resettable.

The kernel's rules (kernel/bpf/hashtab.c, arraymap.c) as `pyfd.maps.MapState`
follows them: a full hash map refuses a new key (the dissector's update then
has no effect), an array has every index and holds 0 until written, a
per-CPU array is one CPU's copy, an absent key's delete is no error. The
dissectors here are written to files, as users write them, and run with
`run_python`; the kernel agrees with them in test_maps_agreement.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from test_compile_errors import dissector_file, only_dissector

from pyfd import Array, HashMap, u16, u32
from pyfd.dissector import Dissector
from pyfd.maps import MapState

MACS: dict[str, Any] = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}

PRELUDE = """\
from pyfd import BPF_DROP, BPF_OK, Array, BpfFlowKeys, Config, HashMap, Packet, PerCPUArray, dissector, i32, u8, u16, u32, u64
from pyfd.headers import IPv4, Ports

"""

COUNTER = """
seen = HashMap(u16, u32, max_entries=2)
hits = Array(u64, max_entries=4)
mine = PerCPUArray(u32, max_entries=1)
PORT = Config(u16, 53)

@dissector
def f(pkt: Packet, keys: BpfFlowKeys) -> int:
    ip = pkt.header(IPv4, keys.nhoff)
    p = pkt.header(Ports, keys.nhoff + ip.ihl * 4)
    seen[p.dport] += 1
    hits[p.dport & 3] += 1
    mine[0] -= 1
    if p.dport == PORT:
        del seen[p.dport]
        return BPF_DROP
    return BPF_OK
"""


def frame(dport: int) -> bytes:
    return bytes(Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=9, dport=dport))


@pytest.fixture
def counter(tmp_path: Path) -> Dissector:
    return only_dissector(dissector_file(tmp_path, COUNTER, prelude=PRELUDE))


def test_maps_keep_their_contents_across_runs(counter: Dissector) -> None:
    for dport in (1, 2, 1):
        assert counter.run_python(frame(dport)).retval == 0
    assert counter.maps["seen"].items() == [(1, 2), (2, 1)]
    assert counter.maps["hits"].items() == [(0, 0), (1, 2), (2, 1), (3, 0)]  # every index, 0 until written
    assert counter.maps["mine"][0] == 2**32 - 3  # one CPU's copy, wrapped as a u32


def test_a_full_hash_map_refuses_a_new_key(counter: Dissector) -> None:
    for dport in (1, 2, 3, 3, 1):
        counter.run_python(frame(dport))
    assert counter.maps["seen"].items() == [(1, 2), (2, 1)]  # 3 never got in: the map holds 2
    assert counter.maps["hits"][3] == 2  # the rest of the dissector ran on


def test_an_absent_key_is_deleted_without_error(counter: Dissector) -> None:
    assert counter.run_python(frame(53)).retval == 2  # seen[53] was added, then deleted
    assert counter.run_python(frame(53)).retval == 2
    assert counter.maps["seen"].items() == []


def test_reset_empties_the_maps_and_sets_the_configs(counter: Dissector) -> None:
    counter.run_python(frame(1))
    counter.reset(config={"PORT": 1})
    assert counter.config == {"PORT": 1}
    assert counter.maps["seen"].items() == [] and counter.maps["hits"][1] == 0
    assert counter.run_python(frame(1)).retval == 2  # the Config takes the value given
    counter.reset()
    assert counter.config == {"PORT": 53} and counter.run_python(frame(1)).retval == 0


@pytest.mark.parametrize(("config", "error", "message"), [({"PORTS": 1}, KeyError, "no Config named 'PORTS'"), ({"PORT": 70000}, ValueError, "u16")])
def test_reset_refuses_what_a_load_would(counter: Dissector, config: dict[str, int], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        counter.reset(config=config)


def test_each_dissector_has_its_own_maps(counter: Dissector, tmp_path: Path) -> None:
    twin = only_dissector(dissector_file(tmp_path, COUNTER, "twin.py", prelude=PRELUDE))
    counter.run_python(frame(1))
    assert twin.maps["seen"].items() == [] and counter.maps["seen"].items() == [(1, 1)]


def test_a_plain_call_uses_the_same_maps(counter: Dissector) -> None:
    from pyfd import BpfFlowKeys, Packet

    data = frame(2)
    counter(Packet(data), BpfFlowKeys.at_entry(data))
    assert counter.maps["seen"][2] == 1


def test_map_state_is_a_mapping_with_the_kernels_limits() -> None:
    h = MapState("h", HashMap(u16, u32, max_entries=1))
    h[5] = -1
    assert h[5] == 2**32 - 1 and 5 in h and 6 not in h and len(h) == 1 and list(h) == [5]
    with pytest.raises(OverflowError, match="full"):
        h[6] = 1
    assert h.get(6, 7) == 7 and not h.update(6, 1)
    with pytest.raises(ValueError, match="u16 key 70000"):
        h[70000] = 1
    with pytest.raises(KeyError):
        h[6]
    del h[5]
    with pytest.raises(KeyError):
        del h[5]
    a = MapState("a", Array(u16, max_entries=2))
    a[1] = 70000
    assert a.items() == [(0, 0), (1, 70000 % 65536)]
    assert a.get(2, 9) == 9 and a.get(-1, 9) == 9 and 2 not in a and 1 in a
    with pytest.raises(IndexError):
        a[2] = 1
    with pytest.raises(TypeError, match="cannot be deleted"):
        del a[0]
    a.clear()
    assert a.items() == [(0, 0), (1, 0)]
