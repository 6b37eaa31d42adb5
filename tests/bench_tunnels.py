"""Benchmark: what samples/tunnels.py does for the kernel's hash of tunnelled flows, and what it costs against samples/full.py.

Run as root: `python tests/bench_tunnels.py [FLOWS] [ROUNDS]`. Not a test
(timings vary with the machine; tests/test_tunnels.py asserts the hash
counts for 32 flows).

1. For FLOWS inner flows inside one tunnel between two hosts (outer
   addresses and ports fixed: GTP-U 2152 -> 2152, VXLAN and the others from
   one source port), the number of distinct skb hashes the kernel gives
   (runtime.kernelhash.KernelHasher, in a throwaway namespace) with its
   built-in dissector, with samples/full.py attached, and with
   samples/tunnels.py attached, on each backend.
2. Per backend: instructions, the verifier's processed-instruction count,
   and ns per frame under BPF_PROG_TEST_RUN for both samples, timed
   alternating in one process above an empty program's time (medians).
"""

from __future__ import annotations

import runpy
import statistics
import sys
from pathlib import Path

from pyfd.runtime import load_program
from pyfd.runtime.kernelhash import KernelHasher

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_samples import EMPTY, _frames  # noqa: E402
from frames import ipv4_frames  # noqa: E402
from tunnel_frames import TUNNELS, flows  # noqa: E402

REPEAT = 100_000
KINDS = {
    "gtpu": "GTP-U, 2152 -> 2152, one TEID",
    "vxlan": "VXLAN, one source port",
    "geneve": "Geneve (Ethernet), one source port",
    "vxlan_gpe": "VXLAN-GPE (IPv4), one source port",
    "gue": "GUE variant 0 (IPv4), one source port",
    "mpls_udp": "MPLS in UDP, two labels",
    "mpls_eth": "MPLS over Ethernet, two labels",
}
TIMED_TUNNELS = ("vxlan_ipv4", "geneve_ipv6_options", "gtpu_pdu_session", "gtpu_three_ext", "mpls_eth_two_ipv6")


def _sample(name: str):  # type: ignore[no-untyped-def]
    return runpy.run_path(str(ROOT / "samples" / f"{name}.py"))[name]


def hash_table(n: int) -> None:
    """Distinct kernel hashes of n inner flows per tunnel kind: built in, full.py, tunnels.py per backend."""
    full, tunnels = _sample("full"), _sample("tunnels")
    backends = ("native", "llvm")
    print(f"distinct kernel skb hashes of {n} inner flows inside one tunnel (outer addresses and ports fixed)")
    header = f"{'tunnel':<40} {'built-in':>8} {'full.py':>8} " + " ".join(f"{'tunnels.py ' + b:>18}" for b in backends)
    print(header)
    with KernelHasher() as hasher, full.compile().load() as f:
        programs = {b: tunnels.compile(backend=b).load() for b in backends}
        try:
            for kind, label in KINDS.items():
                frames = flows(kind, n)
                builtin = len(set(hasher.hashes(frames)))
                with hasher.attached(f.fd):
                    with_full = len(set(hasher.hashes(frames)))
                ours = []
                for program in programs.values():
                    with hasher.attached(program.fd):
                        ours.append(len(set(hasher.hashes(frames))))
                print(f"{label:<40} {builtin:>8} {with_full:>8} " + " ".join(f"{x:>18}" for x in ours))
        finally:
            for program in programs.values():
                program.close()


def cost_table(rounds: int) -> None:
    """Instructions, verifier count and ns per frame of tunnels.py against full.py, alternating in one process."""
    full, tunnels = _sample("full"), _sample("tunnels")
    frames = _frames()
    frames["ipv4-udp"] = ipv4_frames()["udp"]  # to port 53: a tunnel_ports lookup, then the load-time ports
    by_name = {t.name: t.frame for t in TUNNELS}
    frames.update({name.replace("_", "-"): by_name[name] for name in TIMED_TUNNELS})
    print(f"\n{rounds} alternating rounds of {REPEAT} runs; ns per run above an empty program, medians")
    for backend in ("native", "llvm"):
        a, b = full.compile(backend=backend), tunnels.compile(backend=backend)
        with load_program(EMPTY, name="empty") as empty, a.load() as p, b.load() as q:
            print(f"{backend}: full.py {a.insn_count} instructions, {p.verified_insns} verified; "
                  f"tunnels.py {b.insn_count} instructions, {q.verified_insns} verified")
            print(f"  {'frame':<22} {'full.py':>8} {'tunnels.py':>10} {'ratio':>6}")
            for label, frame in frames.items():
                ns_full: list[int] = []
                ns_tunnels: list[int] = []
                for _ in range(rounds):
                    floor = empty.bench(frame, repeat=REPEAT)
                    ns_full.append(p.bench(frame, repeat=REPEAT) - floor)
                    ns_tunnels.append(q.bench(frame, repeat=REPEAT) - floor)
                x, y = statistics.median(ns_full), statistics.median(ns_tunnels)
                print(f"  {label:<22} {x:>8.1f} {y:>10.1f} {y / max(x, 1):>6.2f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 11
    hash_table(n)
    cost_table(rounds)


if __name__ == "__main__":
    main()
