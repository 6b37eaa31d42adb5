"""Benchmark: pyfd.vm's speed on samples/full.py, and the instructions it executes per frame kind.

Run it from the repository (no privileges needed): `python tests/bench_vm.py`.
Not a test (timings vary with the machine and its load). It prints frames
per second through `VmProgram.run` (the public call: frame and flag checks,
a RunResult) over the 141 frames of tests/full_frames.py, for each backend,
best of a few rounds; then instructions executed per frame kind for
samples/full.py on both backends and, with `--reference DIR` (a folder
../shared/reference/build.sh wrote), for the kernel's bpf_flow.o. With
`--kernel` (as root) it also counts how many frames all three legs, kernel,
interpreter and Python, agree on. Exit status 1 when the interpreter is
below `--min` frames per second (default 20,000).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from full_frames import CASES  # noqa: E402
from test_samples import _sample  # noqa: E402

import pyfd.vm  # noqa: E402

KINDS = {
    "ipv4-tcp": "ipv4_tcp",
    "ipv6-udp": "ipv6_udp",
    "vlan": "vlan_ipv4_tcp",
    "gre": "gre_ipv4_tcp",
    "ip-in-ip": "encap_ipip_tcp",
}


def frames_per_second(vm: pyfd.vm.VmProgram, rounds: int, seconds: float) -> float:
    """Frames per second through vm.run over every table frame, best of `rounds` rounds of about `seconds` each."""
    frames = [(c.frame, c.flags) for c in CASES]
    best = 0.0
    for _ in range(rounds):
        done = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for frame, flags in frames:
                vm.run(frame, flags=flags)
            done += len(frames)
        best = max(best, done / (time.perf_counter() - start))
    return best


def instructions(vm: pyfd.vm.VmProgram) -> dict[str, int]:
    """Instructions executed per frame kind."""
    table = {c.name: c for c in CASES}
    out = {}
    for kind, name in KINDS.items():
        vm.run(table[name].frame, flags=table[name].flags)
        out[kind] = vm.insns_executed
    return out


def agreement(full: pyfd.Dissector, backend: str) -> tuple[int, int]:
    """(frames where kernel, interpreter and Python agree on retval and keys, frames run): the table and its truncations."""
    program = full.compile(backend=backend)
    vm = pyfd.vm.load(program)
    frames = [(c.frame[:end], c.flags) for c in CASES for end in range(14, len(c.frame) + 1)]
    agree = 0
    with program.load() as kernel:
        for frame, flags in frames:
            k, v, p = kernel.run(frame, flags=flags), vm.run(frame, flags=flags), full.run_python(frame, flags=flags)
            agree += (k.retval, k.keys) == (v.retval, v.keys) == (p.retval, p.keys)
    return agree, len(frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--min", type=float, default=20_000, help="frames per second below which the exit status is 1")
    parser.add_argument("--reference", type=Path, help="a folder with bpf_flow.o (from ../shared/reference/build.sh)")
    parser.add_argument("--kernel", action="store_true", help="also count three-leg agreement (needs root)")
    args = parser.parse_args()

    full = _sample("full")
    programs = {backend: pyfd.vm.load(full.compile(backend=backend)) for backend in ("native", "llvm")}
    if args.reference is not None:
        for name in ("bpf_flow.o", "bpf_flow_noexport.o"):
            programs[name] = pyfd.vm.load(args.reference / name)
    print(f"{'program':<20} {'frames/s':>9}  instructions executed: " + " ".join(f"{k:>8}" for k in KINDS))
    slowest = float("inf")
    for label, vm in programs.items():
        rate = frames_per_second(vm, args.rounds, args.seconds)
        if label in ("native", "llvm"):
            slowest = min(slowest, rate)
        counts = instructions(vm)
        print(f"{label:<20} {rate:>9,.0f}  {'':>23}" + " ".join(f"{counts[k]:>8}" for k in KINDS))
    if args.kernel:
        for backend in ("native", "llvm"):
            agree, total = agreement(full, backend)
            print(f"three legs ({backend}): kernel, vm and Python agree on {agree} of {total} frames")
    print(f"slowest samples/full.py backend: {slowest:,.0f} frames/s (minimum {args.min:,.0f})")
    return 0 if slowest >= args.min else 1


if __name__ == "__main__":
    sys.exit(main())
