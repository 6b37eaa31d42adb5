"""Benchmark: samples/full.py against the kernel's reference dissector on issue 17's three axes, in one run.

Run it from the repository: `python tests/bench_perf.py` (`--help` for the
options; `--quick` for a short run). Not a test: it prints one table per
axis with the issue's target beside it, each marked met or not met, and
exits 0 (with `--check`, 1 when a target is missed or could not be
measured). tests/test_bench_perf.py runs it small to show that it works.

The reference is bpf_flow.c (../shared/reference), built with clang-19 by
its build.sh into a temporary folder, or taken from `--reference DIR` (a
folder build.sh wrote). Which of its builds is compared, and why:

- Instructions executed: bpf_flow_nohook.o, without its debug map export
  and without `_dissect()`'s selftest hook (IPv4 from 127.0.0.127 returns
  BPF_FLOW_DISSECTOR_CONTINUE). The issue compares against "the reference
  without its hook": both are selftest scaffolding full.py does not carry,
  and the hook's compare and the export's helper call would count against
  the reference work pyfd does not do.
- Kernel ns: bpf_flow_noexport.o, the build the issue measured (the
  export's bpf_map_update_elem per packet is compiled out, the hook's one
  compare at entry stays; its cost is within the noise). bpf_flow_nohook.o
  is timed too and printed beside it.

1. Instructions executed per frame kind, counted by pyfd.vm (tail calls and
   BPF-to-BPF calls included; the reference's `_dissect` tail-calls into
   its per-protocol programs through jmp_table), for both backends and the
   reference, with the ratio to the reference. Then, of those, how many are
   the context's store at entry (native keeps ctx on the stack for the copy
   path of headers in page fragments, which alone reads it back), other
   r10-relative loads and stores (on the linear frames here, spill code:
   no header is copied to the stack), register moves and byte swaps,
   executed and in the code. The executed ones are counted by padding: the
   program is run again with a `goto +0` before every instruction of the
   category (jumps retargeted to the padding), and the extra count is how
   many of them ran. Needs no privileges.
2. Kernel ns per frame under BPF_PROG_TEST_RUN with `--repeat` runs: an
   empty program (`r0 = BPF_OK; exit`, the floor: the test run's own cost),
   native, llvm, bpf_flow_noexport.o and bpf_flow_nohook.o, loaded once and
   run round robin over `--rounds` rounds (each round runs every frame on
   every program, the programs' order rotated from round to round), so the
   machine's noise hits all of them alike. Per round, a program's ns above
   the floor is its time minus the empty program's on the same frame in the
   same round; the table gives the medians. The kernel reports whole ns per
   run (the total divided by the repeat count, truncated), so a plain median
   moves in steps of 1 ns on values of 5-20 ns: the medians are interpolated
   within those steps (statistics.median_grouped), which the rounds' own
   spread of a few ns makes meaningful. Needs root.
3. Compile time as whole processes, what a user waits for: `pyfd compile
   samples/full.py -o X.o` (native), the same with `--backend llvm`, and
   `clang-19 -O2 -g -target bpf -mcpu=v3 -c bpf_flow.c` with the include
   flags build.sh uses, run alternating (`--compile-runs` rounds, the order
   rotated, one unmeasured warm-up each for the page cache and .pyc files).
   It gives the median wall time of each, and the median of the per-round
   ratios to clang (paired: both runs of a ratio saw the same load). User
   plus system CPU time is printed beside it.

Frame kinds (tests/full_frames.py): ipv4-tcp (ipv4_tcp, the selftest's
st/ipv4), ipv4-udp, ipv6-tcp (st/ipv6), ipv6-udp, vlan (vlan_ipv4_tcp,
802.1Q), gre (gre_ipv4_tcp, st/ip-gre) and ipip (encap_ipip_tcp, IPv4 in
IPv4), and their geometric mean. Every program must return BPF_OK with the
table's ports on each of them (checked before measuring: a program that
stopped early would look fast).

Targets (issue 17, "Done when"): native executes at most 0.8x the
reference's instructions on every kind, and no r10-relative load or store
on the IPv4 and IPv6 TCP/UDP frames ("no spills"); kernel ns above the
floor at most 0.6x the reference's (geometric mean, native and llvm);
`pyfd compile` no slower than clang (native, 1.0x) and within 1.5x (llvm).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from full_frames import CASES  # noqa: E402

from pyfd.abi import BPF_OK  # noqa: E402
from pyfd.isa import MODE_MASK, OP_MASK, SOURCE_MASK, AluOp, Class, Instruction, Mode, Reg, Source  # noqa: E402

if TYPE_CHECKING:
    from pyfd import Dissector
    from pyfd.objfile.reader import ObjectFile
    from pyfd.runtime.program import RunResult

# label -> tests/full_frames.py case
KINDS: dict[str, str] = {
    "ipv4-tcp": "ipv4_tcp",
    "ipv4-udp": "ipv4_udp",
    "ipv6-tcp": "ipv6_tcp",
    "ipv6-udp": "ipv6_udp",
    "vlan": "vlan_ipv4_tcp",
    "gre": "gre_ipv4_tcp",
    "ipip": "encap_ipip_tcp",
}
BACKENDS = ("native", "llvm")
INSNS_REFERENCE = "bpf_flow_nohook.o"
KERNEL_REFERENCE = "bpf_flow_noexport.o"
REFERENCE_OBJECTS = (INSNS_REFERENCE, KERNEL_REFERENCE)

# Issue 17's targets: the highest ratio to the reference that meets each.
TARGET_INSNS = 0.8
TARGET_KERNEL = 0.6
TARGET_COMPILE = {"native": 1.0, "llvm": 1.5}

# Default sizes, and those of --quick.
ROUNDS, QUICK_ROUNDS = 41, 7
REPEAT, QUICK_REPEAT = 100_000, 20_000
COMPILE_RUNS, QUICK_COMPILE_RUNS = 21, 5

AXES = ("insns", "kernel", "compile")


class Skip(Exception):
    """A part of the benchmark cannot run here; the message says why."""


def progress(message: str) -> None:
    """A progress line on stderr (overwritten in place on a terminal)."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{message}")
        sys.stderr.flush()
    else:
        print(message, file=sys.stderr)


def progress_done() -> None:
    """End an overwritten progress line."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def geomean(values: Sequence[float]) -> float:
    """Geometric mean of positive values (nan when one is not positive)."""
    if not values or min(values) <= 0:
        return math.nan
    return math.exp(sum(math.log(v) for v in values) / len(values))


def mark(ratio: float, target: float) -> str:
    """'met' or 'NOT MET' for a ratio against the highest ratio that meets the target."""
    return "met" if ratio <= target else "NOT MET"


# -- the programs ----------------------------------------------------------------------


def reference_source() -> Path:
    """The reference's folder (bpf_flow.c, build.sh): $PYFD_REFERENCE_DIR, else shared/reference above the checkout."""
    env = os.environ.get("PYFD_REFERENCE_DIR")
    if env:
        return Path(env)
    for parent in ROOT.parents:
        if (parent / "shared" / "reference" / "build.sh").is_file():
            return parent / "shared" / "reference"
    return ROOT.parent / "shared" / "reference"


def clang() -> str:
    """clang-19 ($CLANG to use another), or Skip with how to get it."""
    name = os.environ.get("CLANG", "clang-19")
    found = shutil.which(name)
    if found is None:
        raise Skip(f"{name} is not installed (apt-get install clang-19 libbpf-dev)")
    return found


def build_reference(source: Path, out: Path) -> Path:
    """Build the reference's objects with its build.sh into `out`; Skip with the reason when that fails."""
    script = source / "build.sh"
    if not script.is_file():
        raise Skip(f"the reference is not there ({script}); set PYFD_REFERENCE_DIR or give --reference DIR")
    compiler = clang()
    progress(f"building the reference with {compiler} ({script})")
    done = subprocess.run(["sh", str(script)], env={**os.environ, "OUT": str(out)}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or ["no output"]
        hint = " (apt-get install libbpf-dev)" if "bpf_helpers.h" in done.stderr else ""
        raise Skip(f"{script} failed{hint}: {reason[0]}")
    return out


def check_reference(folder: Path) -> Path:
    """A --reference folder holding the objects the benchmark compares, or Skip naming what is missing."""
    absent = [name for name in REFERENCE_OBJECTS if not (folder / name).is_file()]
    if absent:
        raise Skip(f"{folder} has no {', '.join(absent)} (a folder the reference's build.sh wrote: OUT=DIR build.sh)")
    return folder


def full_dissector() -> Dissector:
    """samples/full.py's dissector."""
    import importlib.util

    from pyfd import Dissector

    spec = importlib.util.spec_from_file_location("bench_perf_full", ROOT / "samples" / "full.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = [v for v in vars(module).values() if isinstance(v, Dissector)]
    if len(found) != 1:
        raise SystemExit(f"samples/full.py holds {len(found)} dissectors, expected one")
    return found[0]


def empty_code() -> bytes:
    """`r0 = BPF_OK; exit`: the floor, what BPF_PROG_TEST_RUN costs around any program."""
    from pyfd.isa import R0, encode_program, exit_insn, mov64_imm

    return encode_program([mov64_imm(R0, BPF_OK), exit_insn()])


def frames() -> dict[str, tuple[bytes, int]]:
    """Frame kind -> (frame, flags) from tests/full_frames.py."""
    table = {c.name: c for c in CASES}
    return {kind: (table[name].frame, table[name].flags) for kind, name in KINDS.items()}


def expected_ports(kind: str) -> tuple[int, int]:
    """The (sport, dport) tests/full_frames.py expects for a kind."""
    case = next(c for c in CASES if c.name == KINDS[kind])
    return int(case.keys["sport"]), int(case.keys["dport"])


class Runs(Protocol):
    """What a kernel program and an interpreted one have alike: run a frame, get retval and keys."""

    def run(self, frame: bytes, *, flags: int = 0) -> RunResult: ...


def wrong_results(label: str, program: Runs) -> list[str]:
    """What is wrong with a program's result on each frame kind (empty when all return BPF_OK with the table's ports)."""
    problems = []
    for kind, (frame, flags) in frames().items():
        result = program.run(frame, flags=flags)
        retval, keys = result.retval, result.keys
        got = (retval, keys.sport, keys.dport)
        want = (BPF_OK, *expected_ports(kind))
        if got != want:
            problems.append(f"{label} on {kind}: retval {retval}, ports {keys.sport}->{keys.dport}; expected BPF_OK, {want[1]}->{want[2]}")
    return problems


# -- 1. instructions executed ----------------------------------------------------------


def instructions(source: object, kinds: Sequence[str] = tuple(KINDS)) -> dict[str, int]:
    """Instructions pyfd.vm executes per frame kind for a program (a CompiledProgram or an object file's path)."""
    import pyfd.vm

    vm = pyfd.vm.load(source)
    problems = wrong_results(str(source), vm)
    if problems:
        raise SystemExit("the interpreter's results are not the table's:\n  " + "\n  ".join(problems))
    table = frames()
    counts = {}
    for kind in kinds:
        frame, flags = table[kind]
        vm.run(frame, flags=flags)
        counts[kind] = vm.insns_executed
    return counts


@dataclass
class InsnsTable:
    """Instructions executed: program label -> kind -> count, and -> kind -> category -> count; `reference` is the label ratios are taken to."""

    counts: dict[str, dict[str, int]]
    reference: str | None
    categories: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    static: dict[str, dict[str, int]] = field(default_factory=dict)  # label -> static_counts of its code


def measure_instructions(full: Dissector, reference: Path | None) -> InsnsTable:
    """Instructions executed per kind (in all, and per category) by both backends and, given its folder, the reference without its hook."""
    from pyfd.objfile.reader import read_object

    sources: dict[str, bytes | Path] = {backend: full.compile(backend=backend).code for backend in BACKENDS}
    if reference is not None:
        sources[INSNS_REFERENCE] = reference / INSNS_REFERENCE
    table = InsnsTable({}, INSNS_REFERENCE if reference is not None else None)
    for label, source in sources.items():
        progress(f"insns: counting {label}")
        table.counts[label] = instructions(source)
        table.categories[label] = executed(source)
        table.static[label] = static_counts(source if isinstance(source, bytes) else b"".join(p.code for p in read_object(source).programs))
    progress_done()
    return table


SPILL_FREE = ("ipv4-tcp", "ipv4-udp", "ipv6-tcp", "ipv6-udp")  # "no spills on the IPv4 and IPv6 TCP/UDP paths"


def print_instructions(table: InsnsTable) -> list[Target]:
    """Print the instruction tables; return their targets."""
    print("\n1. Instructions executed per frame (pyfd.vm, tail calls included)")
    ref = table.reference
    cols = list(table.counts)
    ratio_cols = [b for b in BACKENDS if ref is not None]
    header = f"  {'frame':<10}" + "".join(f"{c:>20}" for c in cols) + "".join(f"{b + '/ref':>12}" for b in ratio_cols)
    print(header)
    ratios: dict[str, list[float]] = {b: [] for b in ratio_cols}
    for kind in KINDS:
        row = f"  {kind:<10}" + "".join(f"{table.counts[c][kind]:>20}" for c in cols)
        for b in ratio_cols:
            assert ref is not None
            r = table.counts[b][kind] / table.counts[ref][kind]
            ratios[b].append(r)
            row += f"{r:>12.2f}"
        if ref is not None:
            row += f"   native {mark(ratios['native'][-1], TARGET_INSNS)}"
        print(row)
    row = f"  {'geomean':<10}" + "".join(f"{geomean([float(table.counts[c][k]) for k in KINDS]):>20.1f}" for c in cols)
    row += "".join(f"{geomean(ratios[b]):>12.2f}" for b in ratio_cols)
    print(row)

    print("\n   Of those: context store at entry / other r10-relative loads and stores (spill code, and stack data) / register moves / byte swaps")
    print(f"  {'frame':<10}" + "".join(f"{c:>20}" for c in cols))
    for kind in KINDS:
        print(f"  {kind:<10}" + "".join(f"{'/'.join(str(table.categories[c][kind][n]) for n in CATEGORIES):>20}" for c in cols))
    print(f"  {'in code':<10}" + "".join(f"{'/'.join(str(table.static[c][n]) for n in CATEGORIES):>20}" for c in cols))
    print(f"  {'slots':<10}" + "".join(f"{table.static[c]['slots']:>20}" for c in cols))

    spills = max(table.categories["native"][k]["stack"] for k in SPILL_FREE)
    what = f"native: no spill code (r10-relative loads or stores but the context's) executed on {', '.join(SPILL_FREE)}"
    targets = [Target("insns", what, spills, 0, unit="")]
    if ref is None:
        missing = Target("insns", f"native <= {TARGET_INSNS}x the reference's instructions on every kind", None, TARGET_INSNS, "no reference (skipped, below)")
        return [missing, *targets]
    worst = max(ratios["native"])
    worst_kind = list(KINDS)[ratios["native"].index(worst)]
    return [Target("insns", f"native <= {TARGET_INSNS}x {ref}'s instructions on every kind (worst: {worst_kind})", worst, TARGET_INSNS), *targets]


CATEGORIES = ("context", "stack", "moves", "swaps")


def category(insn: Instruction, slot: int | None = None) -> str | None:
    """The kind of an instruction at `slot` of its program, for the counts of table 1.

    'context' for a program's first instruction storing r1 (the context) on
    the stack: pyfd's native code keeps it there for the copy path of a
    header in page fragments, stored once at entry and read only on that
    path; 'stack' for any other r10-relative load or store (spill code, or
    data on the stack); 'moves' for a register move; 'swaps' for a byte swap.
    """
    memory = insn.opcode & MODE_MASK == Mode.MEM
    alu = insn.cls in (Class.ALU, Class.ALU64)
    if slot == 0 and memory and insn.cls == Class.STX and insn.dst == Reg.R10 and insn.src == Reg.R1:
        return "context"
    if memory and ((insn.cls == Class.LDX and insn.src == Reg.R10) or (insn.cls in (Class.ST, Class.STX) and insn.dst == Reg.R10)):
        return "stack"
    if alu and insn.opcode & OP_MASK == AluOp.MOV and insn.opcode & SOURCE_MASK == Source.X:
        return "moves"
    if alu and insn.opcode & OP_MASK == AluOp.END:
        return "swaps"
    return None


def static_counts(code: bytes) -> dict[str, int]:
    """Instruction slots, and the instructions of each category, in code."""
    from pyfd.isa import decode

    counts = {"slots": len(code) // 8, **{c: 0 for c in CATEGORIES}}
    slot = 0
    for insn in decode(code):
        kind = category(insn, slot)
        slot += insn.slots
        if kind is not None:
            counts[kind] += 1
    return counts


def padded(code: bytes, pick: Callable[[Instruction, int], bool]) -> tuple[bytes, dict[int, int]]:
    """The program with a `goto +0` before each instruction `pick` chooses (given it and its slot), jumps and calls retargeted to the padding.

    The interpreter counts the padding as it counts any instruction, and a
    run reaches each padding exactly when it reaches the instruction after
    it, so the padded program's count minus the original's is how many
    picked instructions a run executed. Also returns where each old slot's
    instruction went (for relocations).
    """
    from pyfd.isa import decode, encode_program, ja

    insns = decode(code)
    old_slots, slot = [], 0
    for insn in insns:
        old_slots.append(slot)
        slot += insn.slots
    new_slot, moved = {}, {}  # old slot -> the new slot jumps to it land on (its padding) / of the instruction itself
    at = 0
    for old, insn in zip(old_slots, insns, strict=True):
        new_slot[old] = at
        at += pick(insn, old)
        moved[old] = at
        at += insn.slots
    new_slot[slot] = at
    out = []
    for old, insn in zip(old_slots, insns, strict=True):
        here = moved[old]
        if insn.is_pseudo_call or insn.is_gotol:  # the offset is imm
            insn = dataclasses.replace(insn, imm=new_slot[old + 1 + insn.imm] - here - 1)
        elif insn.is_jump:
            insn = dataclasses.replace(insn, off=new_slot[old + 1 + insn.off] - here - 1)
        if here != new_slot[old]:
            out.append(ja(0))
        out.append(insn)
    return encode_program(out), moved


def padded_object(path: Path, pick: Callable[[Instruction, int], bool]) -> ObjectFile:
    """An object file's programs padded as `padded` does, their sections and relocations moved to match."""
    from pyfd.objfile.reader import read_object

    obj = read_object(path)
    sections = {name: data for name, data in obj.sections.items() if name != ".BTF.ext"}  # line info would point astray
    programs = []
    for section in {p.section for p in obj.programs}:
        image = b""
        for program in sorted((p for p in obj.programs if p.section == section), key=lambda p: p.offset):
            code, moved = padded(program.code, pick)
            relocations = [r._replace(offset=moved[r.offset // 8] * 8) for r in program.relocations]
            programs.append(dataclasses.replace(program, code=code, offset=len(image), relocations=relocations))
            image += code
        sections[section] = image
    return dataclasses.replace(obj, programs=programs, sections=sections)


def executed(source: bytes | Path, kinds: Sequence[str] = tuple(KINDS)) -> dict[str, dict[str, int]]:
    """Per frame kind, how many instructions of each category a run executes: of one program's code, or an object file's."""
    base = instructions(source, kinds)
    out: dict[str, dict[str, int]] = {kind: {} for kind in kinds}
    for name in CATEGORIES:

        def pick(insn: Instruction, slot: int, name: str = name) -> bool:
            return category(insn, slot) == name

        more = instructions(padded(source, pick)[0] if isinstance(source, bytes) else padded_object(source, pick), kinds)
        for kind in kinds:
            out[kind][name] = more[kind] - base[kind]
    return out


# -- 2. kernel ns per frame ------------------------------------------------------------


@dataclass
class KernelTable:
    """Kernel ns per run: program label -> kind -> one value per round; `floor` is the empty program's label."""

    ns: dict[str, dict[str, list[int]]]
    floor: str
    reference: str | None
    rounds: int
    repeat: int

    def median(self, label: str, kind: str) -> float:
        """Median ns per run of a program on a kind (the kernel truncates to whole ns: + 0.5)."""
        return statistics.median_grouped(self.ns[label][kind]) + 0.5

    def above(self, label: str, kind: str) -> float:
        """Median over rounds of a program's ns above the floor of the same round, interpolated within whole ns."""
        pairs = zip(self.ns[label][kind], self.ns[self.floor][kind], strict=True)
        return statistics.median_grouped([p - f for p, f in pairs])


def round_robin(programs: dict[str, Callable[[bytes, int], int]], rounds: int) -> dict[str, dict[str, list[int]]]:
    """Time every program on every frame kind once per round, the programs' order rotated each round."""
    labels = list(programs)
    ns: dict[str, dict[str, list[int]]] = {label: {kind: [] for kind in KINDS} for label in labels}
    table = frames()
    for r in range(rounds):
        progress(f"kernel: round {r + 1}/{rounds}")
        order = labels[r % len(labels):] + labels[: r % len(labels)]
        for kind, (frame, flags) in table.items():
            for label in order:
                ns[label][kind].append(programs[label](frame, flags))
    progress_done()
    return ns


def measure_kernel(full: Dissector, reference: Path | None, rounds: int, repeat: int) -> KernelTable:
    """Load the empty program, both backends and the reference builds; time them round robin."""
    import pyfd
    from pyfd.runtime import check_bpf_available, load_program

    reason = check_bpf_available()
    if reason is not None:
        raise Skip(f"this process cannot load BPF programs (run as root): {reason}")
    with ExitStack() as stack:
        progress("kernel: loading")
        loaded = {"empty": stack.enter_context(load_program(empty_code(), name="empty"))}
        for backend in BACKENDS:
            loaded[backend] = stack.enter_context(full.compile(backend=backend).load())
        if reference is not None:
            for name in (KERNEL_REFERENCE, INSNS_REFERENCE):
                loaded[name] = stack.enter_context(pyfd.load(reference / name))
        problems = [p for label, program in loaded.items() if label != "empty" for p in wrong_results(label, program)]
        if problems:
            raise SystemExit("the kernel's results are not the table's:\n  " + "\n  ".join(problems))

        def timer(label: str) -> Callable[[bytes, int], int]:
            program = loaded[label]
            return lambda frame, flags: program.bench(frame, flags=flags, repeat=repeat)

        ns = round_robin({label: timer(label) for label in loaded}, rounds)
    return KernelTable(ns, "empty", KERNEL_REFERENCE if reference is not None else None, rounds, repeat)


def print_kernel(table: KernelTable) -> list[Target]:
    """Print the kernel table; return its targets."""
    print(f"\n2. Kernel ns per frame (BPF_PROG_TEST_RUN, repeat {table.repeat:,}; {table.rounds} rounds round robin; medians)")
    print("   floor: the empty program's ns per run; the others: ns above the floor of the same round (medians within whole ns interpolated)")
    ref = table.reference
    above = [label for label in table.ns if label != table.floor]
    ratio_cols = list(BACKENDS) if ref is not None else []
    print(f"  {'frame':<10}{'floor':>7}" + "".join(f"{c:>20}" for c in above) + "".join(f"{b + '/ref':>12}" for b in ratio_cols))
    ratios: dict[str, list[float]] = {b: [] for b in ratio_cols}
    for kind in KINDS:
        row = f"  {kind:<10}{table.median(table.floor, kind):>7.1f}" + "".join(f"{table.above(c, kind):>20.1f}" for c in above)
        for b in ratio_cols:
            assert ref is not None
            base = table.above(ref, kind)
            r = table.above(b, kind) / base if base > 0 else math.nan
            ratios[b].append(r)
            row += f"{r:>12.2f}"
        print(row)
    floors = [table.median(table.floor, k) for k in KINDS]
    row = f"  {'geomean':<10}{geomean(floors):>7.1f}" + "".join(f"{geomean([table.above(c, k) for k in KINDS]):>20.1f}" for c in above)
    row += "".join(f"{geomean(ratios[b]):>12.2f}" for b in ratio_cols)
    print(row)
    if ref is None:
        return [Target("kernel", f"{b}: ns above the floor <= {TARGET_KERNEL}x the reference's (geomean)", None, TARGET_KERNEL, "no reference (skipped, below)")
                for b in BACKENDS]
    return [Target("kernel", f"{b}: ns above the floor <= {TARGET_KERNEL}x {ref}'s (geomean)", geomean(ratios[b]), TARGET_KERNEL) for b in BACKENDS]


# -- 3. compile time -------------------------------------------------------------------


def pyfd_command() -> list[str]:
    """The `pyfd` command of this Python: its console script, else the same entry point through -c."""
    script = Path(sys.executable).parent / "pyfd"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from pyfd.cli import main; sys.exit(main())"]


def clang_command(compiler: str, source: Path, out: Path) -> list[str]:
    """clang-19 on bpf_flow.c with build.sh's flags (-O2 -g -target bpf -mcpu=v3 and its include folders)."""
    machine = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True, check=False).stdout.strip()
    return [
        compiler, "-O2", "-g", "-target", "bpf", "-mcpu=v3",
        "-idirafter", f"/usr/include/{machine or 'x86_64-linux-gnu'}", "-idirafter", str(source / "stub-include"),
        "-Wno-compare-distinct-pointer-types", "-c", str(source / "bpf_flow.c"), "-o", str(out),
    ]  # fmt: skip


@dataclass(frozen=True)
class Timed:
    """One whole-process run: wall seconds, and user plus system CPU seconds of the child."""

    wall: float
    cpu: float


def run_timed(command: Sequence[str], env: dict[str, str] | None = None) -> Timed:
    """Run a command to completion, output discarded; its wall and CPU time (Skip if it cannot start, SystemExit with its stderr if it fails)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False, env=env)
    except OSError as exc:
        raise Skip(f"cannot run {command[0]}: {exc.strerror}") from None
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` failed (exit status {done.returncode}):\n{done.stderr}")
    return Timed(wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


@dataclass
class CompileTable:
    """Compile runs: label -> one Timed per round; `baseline` is clang's label."""

    runs: dict[str, list[Timed]] = field(default_factory=dict)
    baseline: str = "clang-19"

    def paired_ratio(self, label: str) -> float:
        """Median over rounds of wall(label) / wall(clang) in the same round."""
        return statistics.median(a.wall / b.wall for a, b in zip(self.runs[label], self.runs[self.baseline], strict=True))


def measure_compile(source: Path, runs: int) -> CompileTable:
    """Time `pyfd compile samples/full.py` on each backend and clang-19 on bpf_flow.c, alternating."""
    compiler = clang()
    if not (source / "bpf_flow.c").is_file():
        raise Skip(f"no bpf_flow.c in {source}; set PYFD_REFERENCE_DIR to the reference's folder")
    sample = ROOT / "samples" / "full.py"
    with tempfile.TemporaryDirectory(prefix="pyfd-bench-") as tmp:
        out = Path(tmp)
        # As an installed pyfd runs: its modules' bytecode cached (pip writes
        # the .pyc files). Where PYTHONDONTWRITEBYTECODE is set, every process
        # would compile every module from source; the children get a cache of
        # their own instead, filled by the warm-up run.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYFD_CHECK_PASSES")}
        env["PYTHONPYCACHEPREFIX"] = str(out / "pycache")
        commands = {
            "pyfd native": [*pyfd_command(), "compile", str(sample), "-o", str(out / "native.o")],
            "pyfd llvm": [*pyfd_command(), "compile", str(sample), "--backend", "llvm", "-o", str(out / "llvm.o")],
            "clang-19": clang_command(compiler, source, out / "bpf_flow.o"),
        }
        progress("compile: warming up")
        for command in commands.values():
            run_timed(command, env)
        table = CompileTable({label: [] for label in commands})
        labels = list(commands)
        for r in range(runs):
            progress(f"compile: round {r + 1}/{runs}")
            for label in labels[r % len(labels):] + labels[: r % len(labels)]:
                table.runs[label].append(run_timed(commands[label], env))
    progress_done()
    return table


def print_compile(table: CompileTable, source: Path) -> list[Target]:
    """Print the compile table; return its targets."""
    rounds = len(table.runs[table.baseline])
    print(f"\n3. Compile time, whole process ({rounds} rounds alternating; medians)")
    print("   pyfd compile samples/full.py -o X.o [--backend llvm]  against")
    print(f"   clang-19 -O2 -g -target bpf -mcpu=v3 -c {source / 'bpf_flow.c'} (build.sh's include flags)")
    print(f"  {'command':<14}{'wall s':>9}{'cpu s':>9}{'x clang':>9}{'target':>8}")
    targets = []
    for label, runs in table.runs.items():
        wall = statistics.median(t.wall for t in runs)
        cpu = statistics.median(t.cpu for t in runs)
        if label == table.baseline:
            print(f"  {label:<14}{wall:>9.3f}{cpu:>9.3f}{1.0:>9.2f}")
            continue
        backend = label.split()[-1]
        ratio = table.paired_ratio(label)
        print(f"  {label:<14}{wall:>9.3f}{cpu:>9.3f}{ratio:>9.2f}{TARGET_COMPILE[backend]:>8.1f}   {mark(ratio, TARGET_COMPILE[backend])}")
        targets.append(Target("compile", f"pyfd compile ({backend}) <= {TARGET_COMPILE[backend]}x clang-19 (wall, paired)", ratio, TARGET_COMPILE[backend]))
    return targets


# -- the run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: the measured ratio (None: not measured, `skipped` says why) and the highest that meets it."""

    axis: str
    what: str
    ratio: float | None
    limit: float
    skipped: str = ""
    unit: str = "x"

    @property
    def met(self) -> bool:
        """Measured and at most the limit."""
        return self.ratio is not None and self.ratio <= self.limit


def skipped_targets(axis: str, reason: str) -> list[Target]:
    """The targets of an axis that did not run."""
    whats = {
        "insns": [
            f"native <= {TARGET_INSNS}x the reference's instructions on every kind",
            f"native: no spill code (r10-relative loads or stores but the context's) executed on {', '.join(SPILL_FREE)}",
        ],
        "kernel": [f"{b}: ns above the floor <= {TARGET_KERNEL}x the reference's (geomean)" for b in BACKENDS],
        "compile": [f"pyfd compile ({b}) <= {TARGET_COMPILE[b]}x clang-19" for b in BACKENDS],
    }[axis]
    limits = {"insns": [TARGET_INSNS, 0.0], "kernel": [TARGET_KERNEL] * 2, "compile": [TARGET_COMPILE[b] for b in BACKENDS]}[axis]
    return [Target(axis, what, None, limit, reason) for what, limit in zip(whats, limits, strict=True)]


def print_targets(targets: Sequence[Target]) -> None:
    """The issue's targets, each with its measured ratio and met / NOT MET / skipped."""
    print("\nTargets (issue 17)")
    for t in targets:
        if t.ratio is None:
            print(f"  {'skipped':<8} {t.what}: {t.skipped}")
        else:
            value = f"{t.ratio:.2f}x" if t.unit == "x" else f"{t.ratio:g}"
            print(f"  {'met' if t.met else 'NOT MET':<8} {t.what}: {value} (target {t.limit:g}{t.unit})")


@contextmanager
def reference_folder(args: argparse.Namespace, skipped: list[str]) -> Iterator[Path | None]:
    """The folder of reference objects: --reference, else built into a temporary folder; None (and why, in `skipped`) without one."""
    if args.reference is not None:
        try:
            yield check_reference(args.reference)
        except Skip as why:
            skipped.append(f"the reference: {why}")
            yield None
        return
    with tempfile.TemporaryDirectory(prefix="pyfd-bench-ref-") as tmp:
        try:
            folder: Path | None = build_reference(args.source, Path(tmp))
        except Skip as why:
            skipped.append(f"the reference: {why}")
            folder = None
        progress_done()
        yield folder


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="tests/bench_perf.py",
        description=__doc__.split("\n\n")[0],
        epilog="Progress goes to stderr, the tables to stdout. The kernel part needs root; "
        "what cannot run here is skipped and named.",
    )
    parser.add_argument("--reference", type=Path, metavar="DIR",
                        help=f"a folder the reference's build.sh wrote ({', '.join(REFERENCE_OBJECTS)}); default: build one now with clang-19")
    parser.add_argument("--source", type=Path, default=reference_source(), metavar="DIR",
                        help="the reference's source folder: bpf_flow.c, build.sh (default: %(default)s, or $PYFD_REFERENCE_DIR)")
    parser.add_argument("--only", action="append", choices=AXES, help="measure only this axis (repeatable); default: all three")
    parser.add_argument("--quick", action="store_true",
                        help=f"a short run: {QUICK_ROUNDS} kernel rounds of {QUICK_REPEAT:,} runs, {QUICK_COMPILE_RUNS} compile rounds")
    parser.add_argument("--rounds", type=int, help=f"kernel rounds (default {ROUNDS})")
    parser.add_argument("--repeat", type=int, help=f"BPF_PROG_TEST_RUN repeat per measurement (default {REPEAT:,})")
    parser.add_argument("--compile-runs", type=int, help=f"compile rounds (default {COMPILE_RUNS})")
    parser.add_argument("--check", action="store_true", help="exit status 1 when a target is missed or could not be measured")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    args.repeat = args.repeat or (QUICK_REPEAT if args.quick else REPEAT)
    args.compile_runs = args.compile_runs or (QUICK_COMPILE_RUNS if args.quick else COMPILE_RUNS)
    for name in ("rounds", "repeat", "compile_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.only = args.only or list(AXES)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the axes asked for; print their tables and the targets; 0, or with --check 1 when a target is not met."""
    args = parse_args(argv)
    skipped: list[str] = []
    targets: list[Target] = []
    full = full_dissector()
    print(f"samples/full.py against bpf_flow.c; frame kinds: {', '.join(f'{k} ({n})' for k, n in KINDS.items())}")
    needs_reference = "insns" in args.only or "kernel" in args.only
    with ExitStack() as stack:
        reference = stack.enter_context(reference_folder(args, skipped)) if needs_reference else None
        if "insns" in args.only:
            targets += print_instructions(measure_instructions(full, reference))
        if "kernel" in args.only:
            try:
                targets += print_kernel(measure_kernel(full, reference, args.rounds, args.repeat))
            except Skip as why:
                progress_done()
                skipped.append(f"kernel ns: {why}")
                targets += skipped_targets("kernel", "not measured (skipped, below)")
    if "compile" in args.only:
        try:
            targets += print_compile(measure_compile(args.source, args.compile_runs), args.source)
        except Skip as why:
            progress_done()
            skipped.append(f"compile time: {why}")
            targets += skipped_targets("compile", "not measured (skipped, below)")
    print_targets(targets)
    for line in skipped:
        print(f"skipped: {line}")
    if args.check and not all(t.met for t in targets):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
