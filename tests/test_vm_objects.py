"""pyfd.vm on objects: clang's maps of every kind, constants, tail calls, the kernel's reference dissector, line info.

Each behaviour is written out for the interpreter (no kernel needed), and
where the kernel can run the same object the interpreter must give exactly
what it gives: return codes, keys, and the maps afterwards.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest
from clang_maps import COUNTING, build, reference_object
from frames import ether
from full_frames import CASES
from kernel import needs_kernel
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from test_full import _expected_mismatches

import pyfd
import pyfd.vm
from pyfd import BPF_DROP, BPF_OK, Packet, BpfFlowKeys, dissector
from pyfd.headers import Ports
from pyfd.isa import Class, Instruction, JmpOp, Source, decode, encode_program, ja
from pyfd.objfile.reader import read_object
from pyfd.vm import VmAccessError
from pyfd.vm.machine import Machine


def udp(dport: int, sport: int = 5000) -> bytes:
    return bytes(ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=sport, dport=dport))


def tcp(dport: int = 80) -> bytes:
    return bytes(ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=dport))


SIX = bytes(ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2))
# The frames counting.c counts: two to port 53, TCP, the drop port, IPv6 (dropped), then two more ports (the hash is full at 4).
COUNTED = [udp(53), udp(53), tcp(80), udp(4789), SIX, udp(1000), udp(1001)]


@pytest.fixture(scope="module")
def counting_o(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("counting"), COUNTING)


@pytest.fixture(scope="module")
def bpf_flow_o(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reference_object(tmp_path_factory.mktemp("reference"))


def _maps(program: pyfd.vm.VmProgram | pyfd.LoadedProgram) -> dict[str, object]:
    """Every map's contents; a per-CPU value summed over the CPUs (the interpreter has one, the kernel several)."""
    out: dict[str, object] = {}
    for name in program.maps:
        the_map = program.maps[name]
        if the_map.type_name == "prog_array":
            out[name] = sorted(the_map)
            continue
        out[name] = {k: (sum(v) if isinstance(v, list) else v) for k, v in the_map.items()}
    return out


def test_counting_in_the_interpreter(counting_o: Path) -> None:
    vm = pyfd.vm.load(counting_o)
    assert vm.name == "counting"
    results = [vm.run(frame) for frame in COUNTED]
    assert [r.retval for r in results] == [BPF_OK, BPF_OK, BPF_OK, BPF_DROP, BPF_DROP, BPF_OK, BPF_OK]
    # UDP tail-calls udp_tail (slot 1 of `jumps`, from the object's __array values), which sets is_encap.
    assert [r.keys.is_encap for r in results] == [1, 1, 0, 0, 0, 1, 1]
    assert results[0].keys.dport == 53 and results[2].keys.ip_proto == 6
    maps = vm.maps
    assert [maps["verdicts"][i] for i in range(4)] == [5, 2, 0, 0]
    assert dict(maps["dports"].items()) == {53: 2, 80: 1, 4789: 1, 1000: 1}  # full: 1001 was refused
    assert maps["cpu_frames"][0] == [7]  # per-CPU: one value, the interpreter's one CPU
    assert dict(maps["cpu_protos"].items()) == {17: [5], 6: [1]}
    assert maps[".bss"][0] == struct.pack("<Q", 7) and struct.unpack("<II", maps[".data"][0]) == (0x11223344, 7 + 7)
    assert list(maps["jumps"]) == [1]
    with pytest.raises(OSError, match="E2BIG"):
        maps["dports"][9] = 1
    del maps["dports"][80]
    maps["dports"][9] = 1
    assert 9 in maps["dports"] and 80 not in maps["dports"]


def test_counting_constants_and_prog_array_from_python(counting_o: Path) -> None:
    vm = pyfd.vm.load(counting_o, config={"drop_port": 4790})
    assert vm.run(udp(4789)).retval == BPF_OK and vm.run(udp(4790)).retval == BPF_DROP
    with pytest.raises(pyfd.vm.VmError, match="no load-time constant 'nope'; its constants: drop_port, ports_bias"):
        pyfd.vm.load(counting_o, config={"nope": 1})
    with pytest.raises(pyfd.vm.VmError, match="holds 0..65535; 70000 does not fit"):
        pyfd.vm.load(counting_o, config={"drop_port": 70000})
    del vm.maps["jumps"][1]
    assert vm.run(udp(53)).keys.is_encap == 0  # an empty slot: the tail call falls through
    vm.maps["jumps"][1] = pyfd.vm.load(counting_o, "udp_tail")
    assert vm.run(udp(53)).keys.is_encap == 1


@needs_kernel
def test_counting_agrees_with_the_kernel(counting_o: Path) -> None:
    vm = pyfd.vm.load(counting_o)
    with pyfd.load(counting_o) as kernel:
        for frame in COUNTED:
            got, want = vm.run(frame), kernel.run(frame)
            assert (got.retval, got.keys) == (want.retval, want.keys), got.keys.diff(want.keys)
        assert _maps(vm) == _maps(kernel)


TAIL_LOOP = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int loop(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} again SEC(".maps") = { .values = { [0] = (void *)&loop } };

SEC("flow_dissector")
int loop(struct __sk_buff *skb)
{
	skb->flow_keys->flow_label += 1;
	bpf_tail_call(skb, &again, 0);
	return BPF_OK;
}

char _license[] SEC("license") = "GPL";
"""


def test_tail_calls_stop_at_33(tmp_path: Path) -> None:
    # kernel/bpf/core.c: MAX_TAIL_CALL_CNT (33) tail calls, then bpf_tail_call falls through.
    obj = build(tmp_path, TAIL_LOOP, "tail_loop")
    vm = pyfd.vm.load(obj)
    result = vm.run(udp(53))
    assert struct.unpack_from("<I", result.keys.raw, 52) == (34,)
    assert result.retval == BPF_OK
    # Each of the 34 runs executes up to its bpf_tail_call; the last one also the rest.
    insns = decode(read_object(obj).program("loop").code)
    upto_call = next(i for i, insn in enumerate(insns) if insn.opcode == Class.JMP | JmpOp.CALL) + 1
    assert vm.insns_executed == 34 * upto_call + len(insns) - upto_call
    if pyfd.runtime.check_bpf_available() is None:
        with pyfd.load(obj) as kernel:
            assert kernel.run(udp(53)).keys == result.keys


REFERENCE_AGREES = [c for c in CASES if "DIFF" not in c.note]


def test_reference_object_in_the_interpreter(bpf_flow_o: Path) -> None:
    # The table's results where samples/full.py and bpf_flow.c agree, from bpf_flow.o's seven programs and tail calls.
    vm = pyfd.vm.load(bpf_flow_o)
    assert vm.name == "_dissect" and list(vm.maps["jmp_table"]) == list(range(6))
    wrong = []
    for case in REFERENCE_AGREES:
        result = vm.run(case.frame, flags=case.flags)
        problems = _expected_mismatches(result.keys, case)
        if result.retval != case.retval or problems:
            wrong.append(f"{case.name}: retval {result.retval} (want {case.retval}) {problems}")
    assert not wrong, "\n".join(wrong)
    assert len(REFERENCE_AGREES) == 56  # the cases where full.py (following the kernel) and bpf_flow.c agree
    key = struct.unpack("<I", struct.pack("<HH", 0x5000, 0xE803))[0]  # export_flow_keys: be16 80, 1000
    vm.run(tcp(80))
    assert pyfd.FlowKeys.from_bytes(vm.maps["last_dissection"][key]).ip_proto == 6


@needs_kernel
@pytest.mark.parametrize("variant", ["bpf_flow.o", "bpf_flow_noexport.o"])
def test_reference_object_agrees_with_the_kernel(bpf_flow_o: Path, variant: str) -> None:
    path = bpf_flow_o.parent / variant
    vm = pyfd.vm.load(path)
    frames = [(c.frame[:end], c.flags) for c in CASES for end in sorted({len(c.frame), 14, 34, 54, len(c.frame) - 1}) if 14 <= end <= len(c.frame)]
    with pyfd.load(path) as kernel:
        for frame, flags in frames:
            got, want = vm.run(frame, flags=flags), kernel.run(frame, flags=flags)
            assert (got.retval, got.keys.raw) == (want.retval, want.keys.raw), f"{frame.hex()}: {got.keys.diff(want.keys)}"
        assert _maps(vm) == _maps(kernel)
    assert len(frames) > 500


OOB_C = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("flow_dissector")
int oob(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct bpf_flow_keys *keys = skb->flow_keys;

	keys->sport = *(__u16 *)(data + 100); /* no check against data_end */
	return BPF_OK;
}

char _license[] SEC("license") = "GPL";
"""


def test_an_access_error_names_the_c_line(tmp_path: Path) -> None:
    obj = build(tmp_path, OOB_C, "oob")
    with pytest.raises(VmAccessError) as caught:
        pyfd.vm.load(obj).run(udp(53))
    err = caught.value
    assert err.location is not None and err.location.file.endswith("oob.c") and err.location.line == 11
    assert "out-of-bounds read of 2 bytes at offset 100 of the packet (42 bytes)" in str(err)
    assert "keys->sport = *(__u16 *)(data + 100);" in str(err)
    assert err.program == "oob" and err.insn is not None


@dissector
def reads_ports(pkt: Packet, keys: BpfFlowKeys) -> int:
    ports = pkt.header(Ports, keys.nhoff + 20)
    keys.sport = ports.sport
    return BPF_OK


@pytest.mark.parametrize("backend", ["native", "llvm"])
def test_a_miscompiled_check_is_caught_at_the_python_line(backend: str) -> None:
    # Take the compiled program and make every pointer comparison (the bounds checks) pass: a
    # miscompile the verifier would refuse. The interpreter stops at the load, at the Python line.
    program = reads_ports.compile(backend=backend)
    insns = decode(program.code)

    def passes(insn: Instruction) -> Instruction:
        if insn.cls != Class.JMP or not insn.opcode & Source.X:
            return insn
        op = JmpOp(insn.opcode & 0xF0)
        # `if end < ptr`-style tests jump away on failure; `if ptr <= end` jumps to the read.
        return ja(insn.off) if op in (JmpOp.JLE, JmpOp.JGE) else ja(0) if op in (JmpOp.JGT, JmpOp.JLT) else insn

    patched = [passes(insn) for insn in insns]
    assert patched != insns
    code = encode_program(patched)
    obj = read_object(program.object_bytes())
    only = dataclasses.replace(obj.programs[0], code=code)
    obj = dataclasses.replace(obj, programs=[only], sections={**obj.sections, only.section: code})
    vm = pyfd.vm.VmProgram(Machine(obj, spans=program.compilation.code.spans_by_slot()))
    frame = udp(53)[:35]
    assert reads_ports.run_python(frame).retval == BPF_DROP
    with pytest.raises(VmAccessError) as caught:
        vm.run(frame)
    err = caught.value
    assert err.location is not None and err.location.file == __file__
    assert err.location.line in (reads_ports.fn.__code__.co_firstlineno + 2, reads_ports.fn.__code__.co_firstlineno + 3)
    assert "out-of-bounds read of 2 bytes at offset 34 of the packet (35 bytes)" in str(err)
    assert "ports = pkt.header(Ports, keys.nhoff + 20)" in str(err) or "keys.sport = ports.sport" in str(err)
    # Unpatched, the same frame is a clean BPF_DROP in the interpreter too.
    assert pyfd.vm.load(program).run(frame).retval == BPF_DROP
