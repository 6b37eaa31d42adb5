"""samples/full.py hashes like the kernel's own dissector (tests/kequiv.py's corpus, both backends).

With the dissector attached to a throwaway namespace, the kernel's skb hash
of every corpus frame whose hashed fields fit in struct bpf_flow_keys must
equal the hash the built-in C dissector gives; every frame that needs a field
the keys lack (kequiv.MISSING) must hash differently, so that the list of
known differences stays honest. And on every frame the loopback delivers, in
keys or not, the payload offset (skb_get_poff(): 0 when the dissection
fails, else thoff plus the transport header) must be the same: the return
code and thoff as the kernel uses them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kequiv import MISSING, CorpusFrame, corpus, tally
from kernel import skip_unless_kernel
from pyfd.compiler.driver import BACKENDS
from pyfd.runtime.kernelhash import HashComparison, KernelHasher, skb_run_problem
from test_samples import _sample

from pyfd import BPF_DROP, BpfFlowKeys, Packet, dissector

pytestmark = pytest.mark.kernel

FULL = _sample("full")
FRAMES = corpus()


@pytest.fixture(scope="module")
def hasher() -> Iterator[KernelHasher]:
    skip_unless_kernel()
    with KernelHasher() as made:
        yield made


@pytest.fixture(scope="module", params=list(BACKENDS))
def compared(request: pytest.FixtureRequest, hasher: KernelHasher) -> list[HashComparison]:
    """Every corpus frame hashed (and its payload offset taken) by the kernel without, then with, full.py attached."""
    with FULL.compile(backend=request.param).load() as loaded:
        return hasher.compare(loaded.fd, [f.frame for f in FRAMES], payload=True)


def test_corpus_is_broad() -> None:
    """Every category the issue names is there, with in-keys and out-of-keys frames, and names are unique."""
    categories = {f.category for f in FRAMES}
    assert {"sctp", "dccp", "udplite", "esp", "ah", "tcp_doff", "gre", "pptp", "nesting", "trunc", "random"} <= categories
    assert sum(f.in_keys for f in FRAMES) > 1000
    assert {m for f in FRAMES for m in f.missing} == set(MISSING)
    assert any(f.name == "nest_ipip_20" for f in FRAMES)  # deeper than MAX_FLOW_DISSECT_HDRS


def test_every_in_keys_frame_hashes_like_the_kernel(compared: list[HashComparison]) -> None:
    table = tally(FRAMES, [c.same for c in compared])
    differ = table["all"].differ
    assert table["all"].in_keys > 1000
    assert not differ, f"{len(differ)} in-keys frames hash differently: {differ[:20]}"


def test_out_of_keys_frames_hash_differently(compared: list[HashComparison]) -> None:
    """A frame listed as needing a field the keys lack really hashes differently (else the list is wrong)."""
    listed: list[CorpusFrame] = [f for f in FRAMES if not f.in_keys]
    assert len(listed) > 100
    same = [f.name for f, c in zip(FRAMES, compared, strict=True) if not f.in_keys and c.same is not False]
    assert not same, f"listed as out of keys but hashed alike (or not run): {same[:20]}"


def test_every_frame_has_the_kernels_payload_offset(compared: list[HashComparison]) -> None:
    """skb_get_poff() with full.py attached equals the built-in dissector's: same verdict, same thoff."""
    delivered = [(f, c) for f, c in zip(FRAMES, compared, strict=True) if c.same_payload is not None]
    assert len(delivered) > 1500
    differ = [f"{f.name}: {c.builtin_payload} vs {c.bpf_payload}" for f, c in delivered if not c.same_payload]
    assert not differ, f"{len(differ)} frames have another payload offset: {differ[:20]}"
    # Only frames whose VLAN tag is cut short are lost on the way (skb_vlan_untag frees them).
    lost = [f for f, c in zip(FRAMES, compared, strict=True) if c.same_payload is None]
    assert all(f.frame[12:14] in (b"\x81\x00", b"\x88\xa8") for f in lost), [f.name for f in lost]


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_kernel_and_python_agree_on_the_corpus(backend: str) -> None:
    """full.py in the kernel and as Python: the same return code and keys on every corpus frame, for each flag set used."""
    skip_unless_kernel()
    with FULL.compile(backend=backend).load() as loaded:
        for frame in FRAMES:
            for flags in (0, 2, 7):  # receive path, skb_get_hash(), all three flags
                kernel, python = loaded.run(frame.frame, flags=flags), FULL.run_python(frame.frame, flags=flags)
                assert (kernel.retval, kernel.keys.raw) == (python.retval, python.keys.raw), (frame.name, flags, kernel.keys.diff(python.keys))


def test_frames_not_run_are_the_test_runs_limits(compared: list[HashComparison]) -> None:
    """Only frames a tc test run refuses are left out, and the report says why."""
    for frame, comparison in zip(FRAMES, compared, strict=True):
        assert (comparison.same is None) == (skb_run_problem(frame.frame) is not None), frame.name
        if comparison.same is None:
            assert comparison.problem


@dissector
def drop_all(pkt: Packet, keys: BpfFlowKeys) -> int:
    return BPF_DROP


def test_a_different_dissector_is_caught(hasher: KernelHasher) -> None:
    """The comparison can fail: a dissector that drops everything hashes every in-keys SCTP frame differently."""
    sctp = [f for f in FRAMES if f.category == "sctp" and f.in_keys]
    with drop_all.compile().load() as loaded:
        result = hasher.compare(loaded.fd, [f.frame for f in sctp])
    assert sum(c.same is False for c in result) == len(sctp)
