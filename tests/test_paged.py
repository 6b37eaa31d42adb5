"""Issue 12: on the real receive path a dissector sees only the linear part; paged writes must hash like linear ones.

tests/paged.py writes 21 frames to a NAPI-frags tap with GRO off, each once
linear and five times split (105 paged writes), and compares the hash tc
ingress gets for each paged write with its linear twin's. BPF_PROG_TEST_RUN
cannot show any of this: it always hands the program the whole frame linear.

`receive_path.measure(program)` attaches any dissector for one run (a
CompiledProgram, a loaded program, a program fd or an object path), and the
`backend` fixture runs a test on each backend. The control for pyfd's
fallback is the same dissector compiled with `paged=False`.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop import FULL, IPV4_TCP
from kernel import enforce_kernel, needs_kernel
from paged import (
    CALLERS,
    ETH_HLEN,
    SPLITS,
    CallRecorder,
    ReceivePath,
    cuts,
    frames,
    linear_only_dissector,
    load_flow_dissector,
    pieces,
)
from pyfd.compiler.driver import BACKENDS

TOTAL = len(frames()) * len(SPLITS)  # 105 paged writes
IPV4_HLEN = 20
PORTS = 4  # the first four bytes of TCP and UDP: what the hash needs of them


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """Each of pyfd's backends in turn."""
    return str(request.param)


@pytest.fixture
def receive_path(netns: str) -> Iterator[ReceivePath]:
    """The tap and tc recorder in a fresh namespace (conftest's netns), nothing attached to it yet."""
    if not os.path.exists("/dev/net/tun"):
        enforce_kernel("there is no /dev/net/tun (modprobe tun)")
    with ReceivePath(netns) as path:
        yield path


def test_the_writes_are_the_issues_105() -> None:
    assert len(frames()) == 21 and len(SPLITS) == 5 and TOTAL == 105
    assert len({f.data[12:] for f in frames()}) == 21  # 21 different frames (MACs aside)
    for frame in frames():
        for split in SPLITS:
            parts = pieces(frame.data, cuts(frame, split))
            assert b"".join(parts) == frame.data and len(parts) == (3 if split == "three_pieces" else 2)
            # Every split leaves at least the ports outside the first iovec, the linear part.
            assert len(parts[0]) < frame.l4 + PORTS


@needs_kernel
def test_each_call_path_is_handed_only_the_linear_part(receive_path: ReceivePath) -> None:
    by_name = {f.name: f for f in frames()}
    writes = receive_path.call_paths()
    assert len(writes) == TOTAL + len(frames())  # the paged writes and each frame's linear twin
    for write in writes:
        frame = by_name[write.frame]
        first = write.iovecs[0]
        calls = {c.caller: c for c in write.calls}
        # Three calls per write, one from each caller (net/core/flow_dissector.c callers, via drivers/net/tun.c).
        assert sorted(c.caller for c in write.calls) == sorted(CALLERS.values()), write
        probe, headlen, at_tc = (calls[name] for name in CALLERS.values())
        vlan = frame.name.startswith("vlan")
        network = frame.data[ETH_HLEN : ETH_HLEN + 4]  # what follows the Ethernet header (a VLAN tag's TCI)
        # tun_get_user -> skb_probe_transport_header: after eth_type_trans, data is the network header.
        # bpf_skb_load_bytes reads there from skb->data too, past the linear part as well.
        assert (probe.nhoff, probe.linear, probe.load_bytes, probe.loaded) == (0, first - ETH_HLEN, 0, network), write
        # tun_get_user -> eth_get_headlen (NAPI frags): the linear part from the MAC header, and no skb,
        # so bpf_skb_load_bytes fails there (-EFAULT, a zeroed buffer) whatever the offset.
        assert (headlen.nhoff, headlen.linear) == (ETH_HLEN, first), write
        assert (headlen.load_bytes, headlen.loaded) == (-errno.EFAULT, bytes(4)), write
        # bpf_get_hash_recalc at tc ingress: the MAC header on; skb_vlan_untag pulled the tag and the
        # two bytes after it into the linear part, then took the tag out of the frame.
        tc_linear = max(first, ETH_HLEN + 6) - 4 if vlan else first
        tc_network = frame.data[frame.l3 : frame.l3 + 4]
        assert (at_tc.nhoff, at_tc.linear, at_tc.load_bytes, at_tc.loaded) == (ETH_HLEN, tc_linear, 0, tc_network), write
        if write.split == "linear":
            assert first == len(frame.data)
        else:
            # The innermost ports are never wholly linear: a dissector reading only data..data_end cannot get them.
            assert first < frame.l4 + PORTS, write


@needs_kernel
def test_builtin_dissector_hashes_every_paged_write_like_its_linear_twin(receive_path: ReceivePath) -> None:
    measured = receive_path.measure()
    assert len(measured.writes) == TOTAL
    assert measured.disagreeing() == []
    for write in measured.writes:
        # What tc saw: the paged write still paged (GRO off), the twin whole and linear, the same length.
        assert write.paged.linear < write.paged.length == write.linear.length == write.linear.linear, write
        assert write.paged.linear == write.iovecs[0] or write.frame.startswith("vlan"), write
    # The hash tells the 21 flows apart: agreement is not a constant hash agreeing with itself.
    assert len({w.linear.hash for w in measured.writes}) == len(frames())


@needs_kernel
def test_a_dissector_reading_only_the_linear_part_mishashes_exactly_the_paged_headers(receive_path: ReceivePath) -> None:
    # A control built without pyfd's compiler: IPv4 read directly, BPF_DROP past data_end, CONTINUE otherwise.
    with load_flow_dissector(linear_only_dissector(), "linear_only") as program:
        measured = receive_path.measure(program)
    ipv4_header_linear = [
        w.frame.startswith("ipv6") or w.paged.linear >= ETH_HLEN + IPV4_HLEN for w in measured.writes
    ]
    assert [w.agrees for w in measured.writes] == ipv4_header_linear
    assert 0 < measured.agreeing < TOTAL  # both outcomes occur: the harness sees the difference


@needs_kernel
def test_full_sample_hashes_every_paged_write_like_its_linear_twin(receive_path: ReceivePath, backend: str) -> None:
    measured = receive_path.measure(FULL.compile(backend=backend))
    assert measured.disagreeing() == [], f"{measured.agreeing}/{TOTAL} agree; by split: {measured.by_split()}"


@needs_kernel
def test_full_sample_without_the_fallback_mishashes_every_paged_write(receive_path: ReceivePath, backend: str) -> None:
    # The control: the same dissector with its checks linear only.
    measured = receive_path.measure(FULL.compile(backend=backend, paged=False))
    assert measured.agreeing == 0, f"{measured.agreeing}/{TOTAL} agree; by split: {measured.by_split()}"


@needs_kernel
def test_a_test_run_hands_the_whole_frame_linear_and_no_skb() -> None:
    # Why BPF_PROG_TEST_RUN cannot show any of the above (net/bpf/test_run.c,
    # bpf_prog_test_run_flow_dissector): data..data_end is the whole frame and
    # the call has no skb, so bpf_skb_load_bytes fails there as in eth_get_headlen.
    with CallRecorder() as recorder:
        for frame in frames():
            start = recorder.count()
            recorder.program.run(frame.data)
            (call,) = recorder.calls(start)
            assert (call.nhoff, call.flags, call.linear) == (ETH_HLEN, 0, len(frame.data)), frame.name
            assert (call.load_bytes, call.loaded) == (-errno.EFAULT, bytes(4)), frame.name


@needs_kernel
def test_the_tap_makes_the_first_iovec_linear_and_each_other_a_page_fragment(receive_path: ReceivePath) -> None:
    # drivers/net/tun.c, tun_get_user and tun_napi_alloc_frags, as measured at tc ingress.
    data = frames()[0].data
    assert receive_path.write(data, (1,)).linear == ETH_HLEN  # pskb_may_pull(skb, ETH_HLEN) pulls the rest in
    assert receive_path.write(data, (20,)).linear == 20
    many = tuple(range(ETH_HLEN, ETH_HLEN + 18))  # 18 cuts: 18 one-byte fragments and the rest, 19 iovecs
    assert receive_path.write(data, many[:-1]).linear == ETH_HLEN  # 17 fragments (MAX_SKB_FRAGS) fit
    with pytest.raises(OSError) as too_many:
        receive_path.write(data, many)
    assert too_many.value.errno == errno.EMSGSIZE
    big = data + bytes(mmap.PAGESIZE)
    with pytest.raises(OSError) as too_big:
        receive_path.write(big, (ETH_HLEN,))  # a fragment larger than a page
    assert too_big.value.errno == errno.EINVAL
    assert receive_path.write(big, (ETH_HLEN, ETH_HLEN + mmap.PAGESIZE)).length == len(big)


@needs_kernel
def test_measure_attaches_a_program_given_as_fd_object_file_or_compiled(receive_path: ReceivePath, tmp_path: Path) -> None:
    with load_flow_dissector(linear_only_dissector(), "linear_only") as program:
        by_program = [w.agrees for w in receive_path.measure(program).writes]
        assert [w.agrees for w in receive_path.measure(program.fd).writes] == by_program
        assert not program.closed  # measure() closes only what it loaded
    compiled = IPV4_TCP.compile()
    by_compiled = [w.agrees for w in receive_path.measure(compiled).writes]
    path = compiled.write(tmp_path / "ipv4_tcp.o")
    assert [w.agrees for w in receive_path.measure(str(path)).writes] == by_compiled
    assert receive_path.measure().agreeing == TOTAL  # each program was detached after its run
