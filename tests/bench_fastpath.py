"""Benchmark: what reading headers from page fragments costs frames that are linear.

Run as root: `python tests/bench_fastpath.py [ROUNDS]`. Not a test (timings
vary with the machine). samples/full.py is compiled twice per backend, with
the bpf_skb_load_bytes fallback (the default) and without it
(`paged=False`, the code before the fallback existed), and the two are timed
alternating in one process under BPF_PROG_TEST_RUN, where every frame is
linear, so the fallback is never taken. It prints the median ns per run above
an empty program's, and the ratio with/without.
"""

from __future__ import annotations

import runpy
import statistics
import sys
from pathlib import Path

from pyfd.runtime import load_program

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_samples import EMPTY, _frames  # noqa: E402

REPEAT = 100_000


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    full = runpy.run_path(str(ROOT / "samples" / "full.py"))["full"]
    frames = _frames()
    print(f"{rounds} alternating rounds of {REPEAT} runs; ns per run above an empty program, medians")
    print(f"{'backend':<7} {'frame':<20} {'insns':>11} {'linear only':>11} {'fallback':>9} {'ratio':>6}")
    for backend in ("native", "llvm"):
        paged, linear = full.compile(backend=backend), full.compile(backend=backend, paged=False)
        with load_program(EMPTY, name="empty") as empty, paged.load() as p, linear.load() as q:
            for label, frame in frames.items():
                with_fallback: list[int] = []
                without: list[int] = []
                for _ in range(rounds):
                    floor = empty.bench(frame, repeat=REPEAT)
                    with_fallback.append(p.bench(frame, repeat=REPEAT) - floor)
                    without.append(q.bench(frame, repeat=REPEAT) - floor)
                a, b = statistics.median(without), statistics.median(with_fallback)
                sizes = f"{linear.insn_count}/{paged.insn_count}"
                print(f"{backend:<7} {label:<20} {sizes:>11} {a:>11.1f} {b:>9.1f} {b / max(a, 1):>6.2f}")


if __name__ == "__main__":
    main()
