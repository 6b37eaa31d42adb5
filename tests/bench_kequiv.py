"""Report: per category, how many corpus frames the kernel hashes alike with each dissector attached as without.

Run as root: `python tests/bench_kequiv.py [--list] [--no-reference]`. For
samples/full.py on each backend, and the kernel's reference bpf_flow.c
(built from ../shared/reference with clang-19 and loaded with bpftool, when
both are there), it prints `same/in-keys` per category of tests/kequiv.py's
corpus, and `(+same/out-of-keys)` for frames whose hashed fields do not fit
in struct bpf_flow_keys. A second table compares skb_get_poff() (0 when the
dissection fails, else thoff plus the transport header: the return code and
thoff as the kernel uses them) on every frame the loopback delivers.
`--list` names every frame that differs. Also prints instruction counts and
the verifier's processed instructions of full.py. Not a test:
tests/test_kernel_equivalence.py asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from kequiv import MISSING, corpus, tally  # noqa: E402
from pyfd.compiler.driver import BACKENDS  # noqa: E402
from pyfd.runtime import bpf  # noqa: E402
from pyfd.runtime.kernelhash import KernelHasher  # noqa: E402
from test_samples import _sample  # noqa: E402

# The reference's folder: $PYFD_REFERENCE_DIR, else shared/reference beside the checkout (or beside
# the folder of worktrees it sits in).
REFERENCE = next(
    (
        p
        for p in (Path(os.environ.get("PYFD_REFERENCE_DIR", "/nonexistent")), ROOT.parent / "shared" / "reference", ROOT.parent.parent / "shared" / "reference")
        if (p / "build.sh").is_file()
    ),
    ROOT.parent / "shared" / "reference",
)
REFERENCE_PROGRAMS = 6  # flow_dissector_0..5, the tail-call targets in jmp_table


@contextmanager
def reference_fd() -> Iterator[int]:
    """bpf_flow.c built by the reference's build.sh and loaded by bpftool (tail calls filled in); yields its entry's fd."""
    tool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["sh", str(REFERENCE / "build.sh")], env={**os.environ, "OUT": out}, check=True, capture_output=True)
        pins = f"/sys/fs/bpf/pyfd-kequiv-{uuid.uuid4().hex[:10]}"
        maps = pins + "-maps"
        try:
            subprocess.run([tool, "prog", "loadall", f"{out}/bpf_flow.o", pins, "type", "flow_dissector", "pinmaps", maps], check=True, capture_output=True)
            for i in range(REFERENCE_PROGRAMS):
                subprocess.run(
                    [tool, "map", "update", "pinned", f"{maps}/jmp_table", "key", str(i), "0", "0", "0", "value", "pinned", f"{pins}/flow_dissector_{i}"],
                    check=True,
                    capture_output=True,
                )
            fd = bpf.obj_get(f"{pins}/_dissect")
            try:
                yield fd
            finally:
                os.close(fd)
        finally:
            shutil.rmtree(pins, ignore_errors=True)
            shutil.rmtree(maps, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="name every in-keys frame that hashes differently")
    parser.add_argument("--no-reference", action="store_true", help="leave out bpf_flow.c")
    args = parser.parse_args()

    frames = corpus()
    data = [f.frame for f in frames]
    full = _sample("full")
    results: dict[str, list[bool | None]] = {}
    payloads: dict[str, list[bool | None]] = {}
    sizes: list[str] = []
    with KernelHasher() as hasher:

        def measure(name: str, fd: int) -> None:
            compared = hasher.compare(fd, data, payload=True)
            results[name] = [c.same for c in compared]
            payloads[name] = [c.same_payload for c in compared]

        for backend in BACKENDS:
            program = full.compile(backend=backend)
            with program.load() as loaded:
                sizes.append(f"full.py {backend}: {program.insn_count} instructions, {loaded.verified_insns} processed by the verifier")
                measure(f"full.py {backend}", loaded.fd)
        if not args.no_reference and shutil.which("clang-19") and REFERENCE.is_dir():
            with reference_fd() as fd:
                measure("bpf_flow.c", fd)

    tallies = {name: tally(frames, same) for name, same in results.items()}
    categories = sorted({f.category for f in frames}) + ["all"]
    width = max(len(c) for c in categories) + 2
    cols = list(results)
    print(f"{'category':<{width}}" + "".join(f"{c:>24}" for c in cols) + f"{'not run':>9}")
    for category in categories:
        first = tallies[cols[0]][category]
        print(f"{category:<{width}}" + "".join(f"{tallies[c][category].cell():>24}" for c in cols) + f"{first.not_run:>9}")
    print("\ncells: same/in-keys frames (+same/out-of-keys frames, whose hashed fields struct bpf_flow_keys lacks)")
    out_keys = sorted({m for f in frames for m in f.missing})
    for name in out_keys:
        count = sum(name in f.missing for f in frames)
        print(f"  out of keys, {name} ({count} frames): {MISSING[name]}")
    print("\npayload offset (skb_get_poff: return code and thoff), same/delivered frames")
    print(f"{'category':<{width}}" + "".join(f"{c:>24}" for c in cols))
    for category in categories:
        cells = []
        for col in cols:
            pairs = [same for f, same in zip(frames, payloads[col], strict=True) if category in (f.category, "all") and same is not None]
            cells.append(f"{sum(pairs)}/{len(pairs)}")
        print(f"{category:<{width}}" + "".join(f"{cell:>24}" for cell in cells))
    print()
    for line in sizes:
        print(line)
    if args.list:
        for col in cols:
            differ = tallies[col]["all"].differ
            print(f"\n{col}: {len(differ)} in-keys frames hash differently")
            for name in differ:
                print(f"  {name}")
            off = [f.name for f, same in zip(frames, payloads[col], strict=True) if same is False]
            print(f"{col}: {len(off)} frames have a different payload offset")
            for name in off:
                print(f"  {name}")


if __name__ == "__main__":
    main()
