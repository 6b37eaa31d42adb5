"""Benchmark: time per packet of each sample in the kernel, against an empty program.

Run as root: `python tests/bench_samples.py`. Not a test (timings vary with
the machine); it prints ns per run from BPF_PROG_TEST_RUN with repeat, and the
ratio to `r0 = 0; exit` measured in the same process, plus instruction counts.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from pyfd import Dissector
from pyfd.compiler.driver import BACKENDS
from pyfd.runtime import load_program

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import ipv4_frames  # noqa: E402

EMPTY = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit
REPEAT = 200_000


def _samples() -> list[Dissector]:
    out: list[Dissector] = []
    for path in sorted((ROOT / "samples").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out.extend(v for v in vars(module).values() if isinstance(v, Dissector))
    return out


def _frames() -> dict[str, bytes]:
    """IPv4 TCP, and deeper frames from the full dissector's table."""
    from full_frames import CASES

    table = {c.name: c.frame for c in CASES}
    chosen = {"ipv4-tcp": ipv4_frames()["tcp"]}
    for name in ("ipv6_hbh_dst_tcp", "gre_teb_ipv4_tcp", "encap_sit_6in4_udp", "vlan_ipv6_udp"):
        if name in table:
            chosen[name.replace("_", "-")] = table[name]
    return chosen


def main() -> None:
    frames = _frames()
    print(f"{'program':<10} {'backend':<7} {'frame':<20} {'insns':>5} {'verified':>8} {'ns/run':>7} {'x empty':>8}")
    for label, frame in frames.items():
        with load_program(EMPTY, name="empty") as empty:
            base = min(empty.bench(frame, repeat=REPEAT) for _ in range(3))
        print(f"{'empty':<10} {'-':<7} {label:<20} {2:>5} {2:>8} {base:>7} {1.0:>8.2f}")
        for dissector in _samples():
            if dissector.name != "full" and label != "ipv4-tcp":
                continue  # the small samples drop anything but IPv4
            for backend in BACKENDS:
                program = dissector.compile(backend=backend)
                with program.load() as loaded:
                    ns = min(loaded.bench(frame, repeat=REPEAT) for _ in range(3))
                    print(
                        f"{dissector.name:<10} {backend:<7} {label:<20} {program.insn_count:>5} "
                        f"{loaded.verified_insns:>8} {ns:>7} {ns / max(base, 1):>8.2f}"
                    )


if __name__ == "__main__":
    main()
