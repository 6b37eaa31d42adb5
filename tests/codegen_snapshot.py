"""What the compiler generates for every sample and test dissector, to compare across a change that must not alter it.

    python tests/codegen_snapshot.py write DIR     # before the change
    python tests/codegen_snapshot.py compare DIR   # after it: exit 1 and the differing files if any

For each dissector of samples/*.py and tests/dissectors/*.py, on both
backends, it keeps `pyfd compile --emit asm` (the listing with its Python
lines), the optimised IR text and the object file's bytes. Compile-speed work
(issue 17) is checked with it: a faster compiler that emits other code is a
different compiler. Not a test (a snapshot of one version's output is a
hard-coded result); the tests check what the code does.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pyfd import Dissector  # noqa: E402
from pyfd.compiler.backends import BACKENDS  # noqa: E402


def dissectors() -> dict[str, Dissector]:
    """Every dissector of the samples and of tests/dissectors, by `file.name`."""
    found: dict[str, Dissector] = {}
    modules = []
    for path in sorted((ROOT / "samples").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"snapshot_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append((f"samples.{path.stem}", module))
    for path in sorted((ROOT / "tests" / "dissectors").glob("*.py")):
        if path.stem != "__init__":
            modules.append((f"dissectors.{path.stem}", importlib.import_module(f"dissectors.{path.stem}")))
    for prefix, module in modules:
        for value in vars(module).values():
            if isinstance(value, Dissector) and value.fn.__module__ == module.__name__:
                found[f"{prefix}.{value.name}"] = value
    return found


def outputs() -> dict[str, bytes]:
    """File name -> contents: asm, IR and object of each dissector on each backend."""
    out: dict[str, bytes] = {}
    for name, dissector in dissectors().items():
        for backend in BACKENDS:
            program = dissector.compile(backend=backend)
            out[f"{name}.{backend}.s"] = program.asm().encode()
            out[f"{name}.{backend}.ir"] = program.ir().encode()
            out[f"{name}.{backend}.o"] = program.object_bytes()
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("write", "compare"):
        print(__doc__, file=sys.stderr)
        return 2
    where = Path(argv[1])
    now = outputs()
    if argv[0] == "write":
        where.mkdir(parents=True, exist_ok=True)
        for name, data in now.items():
            (where / name).write_bytes(data)
        print(f"{len(now)} files written to {where}")
        return 0
    before = {p.name: p.read_bytes() for p in where.iterdir()}
    differ = sorted(n for n in set(now) | set(before) if now.get(n) != before.get(n))
    for n in differ:
        print(f"differs: {n}" if n in now and n in before else f"only {'now' if n in now else 'before'}: {n}")
    print(f"{len(now) - len(differ)} of {len(set(now) | set(before))} files identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
