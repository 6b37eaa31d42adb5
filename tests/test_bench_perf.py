"""tests/bench_perf.py works: its counts are the interpreter's, its tables hold every frame kind, what it cannot run it names.

No timing is asserted (timings belong to the benchmark's report): the kernel
and compile parts run with one round of a few runs, to show they complete
and print every row.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import bench_perf
import pytest
from clang_maps import reference_object
from kernel import needs_kernel

import pyfd.vm
from pyfd.isa import Instruction

HERE = Path(__file__).resolve().parent
BENCH = HERE / "bench_perf.py"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the reference's three builds (bpf_flow.o, _noexport.o, _nohook.o)."""
    return reference_object(tmp_path_factory.mktemp("reference")).parent


def _bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600, check=False, env={**os.environ, **(env or {})}
    )


def _rows(section: str) -> dict[str, list[str]]:
    """The rows of the first table printed in a section, down to its geomean row: first column -> the other columns."""
    rows = {}
    for line in section.splitlines():
        cells = line.split()
        if cells and (cells[0] in bench_perf.KINDS or cells[0] == "geomean"):
            rows[cells[0]] = cells[1:]
            if cells[0] == "geomean":
                break
    return rows


def _sections(out: str) -> dict[str, str]:
    """The output cut at its numbered table headings ("1.", "2.", "3.") and "Targets"."""
    parts = re.split(r"^(\d\.|Targets)", out, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_instruction_counts_are_the_interpreters(reference: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = bench_perf.full_dissector()
    table = bench_perf.measure_instructions(full, reference)
    assert list(table.counts) == ["native", "llvm", "bpf_flow_nohook.o"] and table.reference == "bpf_flow_nohook.o"
    frames = bench_perf.frames()
    for label, source in [("native", full.compile()), ("llvm", full.compile(backend="llvm")), ("bpf_flow_nohook.o", reference / "bpf_flow_nohook.o")]:
        assert list(table.counts[label]) == list(bench_perf.KINDS)
        vm = pyfd.vm.load(source)
        for kind, (frame, flags) in frames.items():
            assert vm.run(frame, flags=flags).retval == pyfd.BPF_OK
            assert table.counts[label][kind] == vm.insns_executed > 0, (label, kind)
    # The counts tell builds apart: the selftest hook that nohook leaves out costs the IPv4 entry instructions.
    hooked = bench_perf.instructions(reference / "bpf_flow_noexport.o")
    assert hooked["ipv4-tcp"] > table.counts["bpf_flow_nohook.o"]["ipv4-tcp"]
    assert all(hooked[k] >= table.counts["bpf_flow_nohook.o"][k] for k in bench_perf.KINDS)

    # Per category, counted through padding: a goto +0 before every instruction executes exactly as many more.
    padding: list[tuple[str, bytes | Path]] = [("native", full.compile().code), ("bpf_flow_nohook.o", reference / "bpf_flow_nohook.o")]
    for label, source in padding:
        def every(insn: Instruction, slot: int) -> bool:
            return True

        everything = bench_perf.padded(source, every)[0] if isinstance(source, bytes) else bench_perf.padded_object(source, every)
        assert bench_perf.instructions(everything) == {k: 2 * n for k, n in table.counts[label].items()}
        for kind in bench_perf.KINDS:
            assert sum(table.categories[label][kind].values()) <= table.counts[label][kind]
    assert table.static["native"]["slots"] == full.compile().insn_count
    # The context's slot is stored once at entry and counted apart from spill code.
    assert all(table.categories["native"][k]["context"] == 1 for k in bench_perf.KINDS)
    assert table.static["native"]["context"] == 1

    targets = bench_perf.print_instructions(table)
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == [*bench_perf.KINDS, "geomean"]
    ratios = [table.counts["native"][k] / table.counts["bpf_flow_nohook.o"][k] for k in bench_perf.KINDS]
    for kind, ratio in zip(bench_perf.KINDS, ratios, strict=True):
        assert rows[kind][:4] == [str(table.counts[c][kind]) for c in table.counts] + [f"{ratio:.2f}"]
    ratio_target, spill_target = targets
    assert ratio_target.ratio == max(ratios) and ratio_target.limit == bench_perf.TARGET_INSNS
    assert spill_target.ratio == max(table.categories["native"][k]["stack"] for k in bench_perf.SPILL_FREE)


@needs_kernel
def test_whole_run_prints_every_table_and_target(reference: Path) -> None:
    done = _bench("--reference", str(reference), "--rounds", "1", "--repeat", "10", "--compile-runs", "1", "--check")
    assert "Traceback" not in done.stderr, done.stderr
    sections = _sections(done.stdout)
    assert list(sections) == ["1.", "2.", "3.", "Targets"], done.stdout
    for number in ("1.", "2."):
        assert list(_rows(sections[number])) == [*bench_perf.KINDS, "geomean"], sections[number]
    kernel = _rows(sections["2."])
    assert all(float(cells[0]) > 0 for cells in kernel.values())  # the floor: the empty program's ns per run
    compile_rows = [line.split() for line in sections["3."].splitlines() if line.startswith("  pyfd ") or line.startswith("  clang-19 ")]
    assert [" ".join(row[:2]) if row[0] == "pyfd" else row[0] for row in compile_rows] == ["pyfd native", "pyfd llvm", "clang-19"]
    verdicts = [line.split()[0] for line in sections["Targets"].splitlines()[1:] if line.strip()]
    assert len(verdicts) == 6 and set(verdicts) <= {"met", "NOT"}, sections["Targets"]
    assert "skipped" not in done.stdout
    # --check: exit status 1 exactly when a target is not met.
    assert done.returncode == (0 if set(verdicts) == {"met"} else 1), done.stdout


def test_missing_clang_and_reference_are_named_not_a_traceback(tmp_path: Path) -> None:
    done = _bench("--only", "compile", "--only", "insns", "--reference", str(tmp_path), env={"CLANG": "no-such-clang-19"})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "skipped: compile time: no-such-clang-19 is not installed (apt-get install clang-19 libbpf-dev)" in done.stdout
    assert f"skipped: the reference: {tmp_path} has no bpf_flow_nohook.o, bpf_flow_noexport.o" in done.stdout
    # What needs neither still runs: pyfd's own instruction counts.
    rows = _rows(_sections(done.stdout)["1."])
    assert list(rows) == [*bench_perf.KINDS, "geomean"] and all(len(cells) == 2 for cells in rows.values())
    assert _bench("--only", "compile", "--check", env={"CLANG": "no-such-clang-19"}).returncode == 1  # a target not measured is not met
