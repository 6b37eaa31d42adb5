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
from pyfd.runtime import load_program

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import ipv4_frames  # noqa: E402

EMPTY = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit
REPEAT = 200_000


def _samples() -> list[Dissector]:
    out = []
    for path in sorted((ROOT / "samples").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out.extend(v for v in vars(module).values() if isinstance(v, Dissector))
    return out


def main() -> None:
    frames = ipv4_frames()
    frame = frames["tcp"]
    with load_program(EMPTY, name="empty") as empty:
        base = min(empty.bench(frame, repeat=REPEAT) for _ in range(3))
    print(f"{'program':<12} {'insns':>5} {'verified':>8} {'ns/run':>7} {'x empty':>8}")
    print(f"{'empty':<12} {2:>5} {2:>8} {base:>7} {1.0:>8.2f}")
    for dissector in _samples():
        program = dissector.compile()
        with program.load() as loaded:
            ns = min(loaded.bench(frame, repeat=REPEAT) for _ in range(3))
            print(f"{dissector.name:<12} {program.insn_count:>5} {loaded.verified_insns:>8} {ns:>7} {ns / max(base, 1):>8.2f}")


if __name__ == "__main__":
    main()
