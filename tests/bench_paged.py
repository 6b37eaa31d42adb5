"""Measurement: how dissectors hash paged frames on the real receive path (issue 12).

Run as root: `python tests/bench_paged.py [--bpf-flow bpf_flow.o]`. Not a test:
it prints what tests/paged.py measures in a namespace it creates (and removes),
for the kernel's built-in dissector, samples/full.py on each backend, a
linear-only control, and optionally the kernel's reference bpf_flow.c (an
object built with clang, loaded through bpftool: it needs maps and tail
calls). First the linear length each flow dissector call was handed, per call
path and split; then, per dissector, how many of the 105 paged writes hashed
like the same frame written linear.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from pyfd import Dissector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paged import (
    CALLERS,
    SPLITS,
    ProgramSpec,
    ReceivePath,
    frames,
    linear_only_dissector,
    load_flow_dissector,
    load_tail_call_object,
)
from pyfd.compiler.driver import BACKENDS
from test_samples import _sample


def _lengths(path: ReceivePath) -> None:
    writes = path.call_paths()
    print("linear bytes each flow dissector call was handed (data_end - data), min-max over the 21 frames")
    print(f"{'split':<13} {'first iovec':>11}  " + "  ".join(f"{c:>26}" for c in CALLERS.values()))
    for split in ("linear", *SPLITS):
        rows = [w for w in writes if w.split == split]
        first = sorted(w.iovecs[0] for w in rows)
        cells = []
        for caller in CALLERS.values():
            seen = sorted(c.linear for w in rows for c in w.calls if c.caller == caller)
            skb = {c.load_bytes == 0 for w in rows for c in w.calls if c.caller == caller}
            helper = "load_bytes ok" if skb == {True} else "load_bytes -EFAULT" if skb == {False} else "mixed"
            cells.append(f"{seen[0]:>3}-{seen[-1]:<3} ({helper})")
        print(f"{split:<13} {first[0]:>5}-{first[-1]:<5}  " + "  ".join(f"{c:>26}" for c in cells))
    calls = sorted({len(w.calls) for w in writes})
    print(f"dissector calls per write: {calls}  (nhoff/flags per caller: {list(CALLERS)})\n")


def _compiled(dissector: Dissector, backend: str) -> AbstractContextManager[ProgramSpec]:
    return nullcontext(dissector.compile(backend=backend))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bpf-flow", metavar="OBJECT", help="the reference bpf_flow.o, built with clang")
    args = parser.parse_args()

    full = _sample("full")
    candidates: list[tuple[str, Callable[[], AbstractContextManager[ProgramSpec]]]] = [
        ("built-in (none attached)", lambda: nullcontext(None)),
    ]
    for backend in BACKENDS:
        candidates.append((f"samples/full.py {backend}", functools.partial(_compiled, full, backend)))
    candidates.append(("linear-only control", lambda: load_flow_dissector(linear_only_dissector(), "linear_only")))
    if args.bpf_flow:
        candidates.append(("bpf_flow.c", lambda: load_tail_call_object(args.bpf_flow)))

    netns = f"pyfd-bench-{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        with ReceivePath(netns) as path:
            _lengths(path)
            total = len(frames()) * len(SPLITS)
            print(f"{'dissector':<26} {'agree':>7}  " + "  ".join(f"{s:>12}" for s in SPLITS) + f"  {'ms':>5}")
            for label, make in candidates:
                with make() as program:
                    start = time.perf_counter()
                    measured = path.measure(program)
                    ms = (time.perf_counter() - start) * 1000
                by_split = measured.by_split()
                cells = "  ".join(f"{by_split[s][0]:>6}/{by_split[s][1]:<5}" for s in SPLITS)
                print(f"{label:<26} {measured.agreeing:>3}/{total:<3}  {cells}  {ms:>5.0f}")
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


if __name__ == "__main__":
    main()
