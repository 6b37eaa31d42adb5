"""The import graph of pyfd: leaves at the bottom, no cycles, a runtime that never needs the compiler.

Every `import` and `from ... import` statement of every module counts, wherever
it stands: at the top, inside a function (a deferred import), or under
`if TYPE_CHECKING:`. The modules are found from pyproject.toml's package
folders, so a new module is checked without being listed here.

The sizes of the compiler's classes and functions are measured here too: the
same module walk, and the same reason (a shape that stays readable).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The leaves and the other leaves each may import. Nothing else of pyfd.
LEAVES: dict[str, frozenset[str]] = {
    "pyfd.abi": frozenset(),
    "pyfd.isa": frozenset({"pyfd.abi"}),
    "pyfd.objfile": frozenset({"pyfd.abi", "pyfd.isa"}),
}
# What the runtime may import besides itself: the leaves only.
RUNTIME_MAY_IMPORT = frozenset(LEAVES)
# The interpreter: its engine (every module of pyfd.vm but the package's
# front) is a leaf above the other leaves; the front, pyfd/vm/__init__.py,
# also takes the run contract it shares with the kernel run, when a program
# is loaded (so `import pyfd.vm` loads no runtime).
VM_ENGINE_MAY_IMPORT = frozenset(LEAVES)
VM_FRONT_MAY_IMPORT = VM_ENGINE_MAY_IMPORT | {"pyfd.runtime.flowkeys", "pyfd.runtime.program"}
# The language's own modules, which the compiler reads dissectors with and
# which never import the compiler, the runtime or the layer above them.
LANGUAGE = frozenset({"pyfd.types", "pyfd.layout", "pyfd.headers", "pyfd.constants", "pyfd.packet", "pyfd.keys", "pyfd.lib", "pyfd.function", "pyfd.maps"})


def _config() -> tuple[dict[str, Path], list[str]]:
    """pyproject.toml's package folders (package -> folder) and its list of packages."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: ROOT / folder for name, folder in config["package-dir"].items()}, list(config["packages"])


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of pyfd: dotted name -> (file, is a package)."""
    folders, _ = _config()
    found: dict[str, tuple[Path, bool]] = {}
    for package, folder in folders.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            # A folder inside another package's folder that is mapped on its own
            # (none today) would be found twice; the mapped name wins.
            if any((folder / Path(*parts[:i])).resolve() in {f.resolve() for f in folders.values()} for i in range(1, len(parts))):
                continue
            is_package = parts[-1] == "__init__"
            name = ".".join([package, *(parts[:-1] if is_package else parts)])
            found[name] = (path, is_package)
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The pyfd module that `name` (a module, or a name inside one) is in; None outside pyfd."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> dict[str, int]:
    """The pyfd modules `module` imports anywhere in its text, with the first line of each."""
    path, is_package = MODULES[module]
    here = module.split(".") if is_package else module.split(".")[:-1]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from package import submodule` imports the submodule; `from module import name` the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            owner = _owner(target)
            if owner is not None and owner != module:
                found.setdefault(owner, node.lineno)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _edges(modules: list[str]) -> str:
    """The import edges inside one cycle, as `a -> b (line N)` lines."""
    inside = set(modules)
    return "\n".join(
        f"  {a} -> {b} ({MODULES[a][0].relative_to(ROOT)}:{line})" for a in modules for b, line in sorted(GRAPH[a].items()) if b in inside
    )


def test_the_modules_are_found() -> None:
    # The walk finds the packages pyproject.toml lists, and each of them is one.
    _, packages = _config()
    found = {name for name, (_, is_package) in MODULES.items() if is_package}
    assert found == set(packages), "pyproject.toml's packages and the package folders differ"
    assert {"pyfd.cli", "pyfd.runtime.bpf", "pyfd.compiler.driver"} <= set(MODULES)


def test_imports_are_read_wherever_they_stand() -> None:
    # The reader itself: a top-level, a deferred and a TYPE_CHECKING import all count.
    assert "pyfd.runtime" in GRAPH["pyfd.cli"]  # inside functions only
    assert "pyfd.compiler.driver" in GRAPH["pyfd.program"]  # under TYPE_CHECKING


def test_no_import_cycles() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles among pyfd modules:\n" + "\n".join(_edges(c) for c in cycles)


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_import_nothing_of_pyfd_but_other_leaves(leaf: str) -> None:
    assert any(_in(m, leaf) for m in MODULES), f"{leaf} is missing"
    allowed = LEAVES[leaf] | {leaf}
    wrong = {
        f"{module} -> {target} (line {line})"
        for module in MODULES
        if _in(module, leaf)
        for target, line in GRAPH[module].items()
        if not any(_in(target, ok) for ok in allowed)
    }
    assert not wrong, f"{leaf} is a leaf, but imports:\n" + "\n".join(sorted(wrong))


def test_the_runtime_imports_only_itself_and_the_leaves() -> None:
    wrong = {
        f"{module} -> {target} (line {line})"
        for module in MODULES
        if _in(module, "pyfd.runtime")
        for target, line in GRAPH[module].items()
        if not _in(target, "pyfd.runtime") and not any(_in(target, leaf) for leaf in RUNTIME_MAY_IMPORT)
    }
    assert not wrong, "the runtime takes bytes; it imports:\n" + "\n".join(sorted(wrong))


def test_the_interpreter_imports_only_the_leaves_and_the_run_contract() -> None:
    assert {"pyfd.vm", "pyfd.vm.machine", "pyfd.vm.translate", "pyfd.vm.maps", "pyfd.vm.memory"} <= set(MODULES)
    wrong = set()
    for module in MODULES:
        if not _in(module, "pyfd.vm"):
            continue
        allowed = VM_FRONT_MAY_IMPORT if module == "pyfd.vm" else VM_ENGINE_MAY_IMPORT
        for target, line in GRAPH[module].items():
            if not _in(target, "pyfd.vm") and not any(_in(target, ok) or target == ok for ok in allowed):
                wrong.add(f"{module} -> {target} (line {line})")
    assert not wrong, "the interpreter runs bytes; it imports:\n" + "\n".join(sorted(wrong))


def test_the_compiler_imports_neither_the_runtime_nor_the_user_api() -> None:
    allowed = ("pyfd.compiler", *LEAVES, *LANGUAGE)
    wrong = {
        f"{module} -> {target} (line {line})"
        for module in MODULES
        if _in(module, "pyfd.compiler")
        for target, line in GRAPH[module].items()
        if not any(_in(target, ok) for ok in allowed)
    }
    assert not wrong, "the compiler imports:\n" + "\n".join(sorted(wrong))


def test_the_language_imports_neither_the_compiler_nor_the_runtime() -> None:
    allowed = ("pyfd.abi", *LANGUAGE)
    wrong = {
        f"{module} -> {target} (line {line})"
        for module in LANGUAGE
        for target, line in GRAPH[module].items()
        if not any(_in(target, ok) for ok in allowed)
    }
    assert not wrong, "the language's modules import:\n" + "\n".join(sorted(wrong))


def _loaded_by(statement: str) -> list[str]:
    """The pyfd modules a fresh interpreter has loaded after `statement`, from `python -X importtime`."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr
    # importtime lines: "import time: self [us] | cumulative | imported package", nested by indentation.
    names = [line.rpartition("|")[2].strip() for line in run.stderr.splitlines() if line.startswith("import time:")]
    return [name for name in names if name == "pyfd" or name.startswith("pyfd.")]


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("import pyfd.abi", ("pyfd.abi",)),
        ("import pyfd.isa", ("pyfd.isa", "pyfd.abi")),
        ("import pyfd.objfile.elf, pyfd.objfile.btf", ("pyfd.objfile", "pyfd.isa", "pyfd.abi")),
        ("import pyfd.objfile.reader", ("pyfd.objfile", "pyfd.isa", "pyfd.abi")),
        ("import pyfd.runtime", ("pyfd.runtime", *LEAVES)),
        ("import pyfd.keys, pyfd.headers, pyfd.packet", ("pyfd.abi", *LANGUAGE)),
        ("import pyfd", ()),
        ("import pyfd.vm.machine", ("pyfd.vm", *LEAVES)),
        ("import pyfd.vm", ("pyfd.vm", *LEAVES)),
        ("import pyfd.testing, pyfd.pytest_plugin", ("pyfd.testing", "pyfd.pytest_plugin")),
    ],
)
def test_importing_a_layer_loads_nothing_above_it(statement: str, allowed: tuple[str, ...]) -> None:
    # The `pyfd` package itself always loads first; it must import nothing on its own.
    loaded = [name for name in _loaded_by(statement) if name != "pyfd"]
    above = [name for name in loaded if not any(_in(name, ok) for ok in allowed)]
    assert not above, f"`{statement}` also loads {above}"


def test_the_instruction_set_loads_no_runtime() -> None:
    # The check of issue 11, as written there: no line of -X importtime names the runtime.
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pyfd.isa"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr
    assert [line for line in run.stderr.splitlines() if "runtime" in line] == []
    assert [line for line in run.stderr.splitlines() if "ctypes" in line] == []


def test_lazy_names_are_the_objects_whoever_imports_first() -> None:
    # `pyfd.dissector` is a submodule and the decorator: importing the
    # submodule first (as pyfd.cli does) must not hide the decorator.
    code = (
        "import types, pyfd.dissector, pyfd.cli\n"
        "from pyfd import dissector, headers, Dissector, BPF_OK\n"
        "import pyfd\n"
        "assert callable(dissector) and not isinstance(dissector, types.ModuleType), dissector\n"
        "assert pyfd.dissector is dissector and isinstance(headers, types.ModuleType)\n"
        "assert Dissector is pyfd.dissector.__globals__['Dissector'] and BPF_OK == 0\n"
        "assert set(pyfd.__all__) <= set(dir(pyfd))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr


# --- sizes -------------------------------------------------------------------------
#
# Issue 11: no class in the compiler over 400 lines, no function over 60,
# tables aside. A long body is where a second meaning hides; split it by
# meaning. A table-like exception (a function that is one literal table)
# would be listed here with its reason; there is none today.

MAX_CLASS_LINES = 400
MAX_FUNCTION_LINES = 60
SIZE_EXCEPTIONS: dict[str, str] = {}  # "module:qualified.name" -> why it may be longer


def sizes(source: str, filename: str = "<source>") -> list[tuple[str, str, int]]:
    """Every class and function in `source`: (kind, qualified name, lines from `def`/`class` to its end)."""
    found: list[tuple[str, str, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                kind = "class" if isinstance(child, ast.ClassDef) else "function"
                assert child.end_lineno is not None
                found.append((kind, name, child.end_lineno - child.lineno + 1))
                walk(child, name + ".")
            else:
                walk(child, prefix)

    walk(ast.parse(source, filename), "")
    return found


def _too_long(source: str, filename: str = "<source>", allowed: frozenset[str] = frozenset()) -> list[str]:
    """The classes and functions of `source` over their limit, but for the qualified names `allowed`."""
    limits = {"class": MAX_CLASS_LINES, "function": MAX_FUNCTION_LINES}
    return [
        f"{kind} {name}: {lines} lines (at most {limits[kind]})"
        for kind, name, lines in sizes(source, filename)
        if lines > limits[kind] and name not in allowed
    ]


def test_the_size_check_measures_classes_and_nested_functions() -> None:
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    source = f"class A:\n    def long(self) -> None:\n{body}\n    def short(self) -> None:\n        pass\n"
    assert ("function", "A.long", MAX_FUNCTION_LINES + 1) in sizes(source)
    assert ("function", "A.short", 2) in sizes(source)
    assert _too_long(source) == [f"function A.long: {MAX_FUNCTION_LINES + 1} lines (at most {MAX_FUNCTION_LINES})"]
    assert _too_long(source, allowed=frozenset({"A.long"})) == []
    nested = "def outer() -> None:\n    def inner() -> None:\n" + body
    assert [(name, lines) for _, name, lines in sizes(nested)] == [("outer", MAX_FUNCTION_LINES + 2), ("outer.inner", MAX_FUNCTION_LINES + 1)]
    big_class = "class Big:\n" + "".join(f"    x{i} = {i}\n" for i in range(MAX_CLASS_LINES))
    assert _too_long(big_class) == [f"class Big: {MAX_CLASS_LINES + 1} lines (at most {MAX_CLASS_LINES})"]


def _compiler_modules() -> list[tuple[str, Path]]:
    return [(module, path) for module, (path, _) in sorted(MODULES.items()) if _in(module, "pyfd.compiler")]


def test_no_class_or_function_in_the_compiler_is_too_long() -> None:
    found: list[str] = []
    for module, path in _compiler_modules():
        allowed = frozenset(name.partition(":")[2] for name in SIZE_EXCEPTIONS if name.partition(":")[0] == module)
        found += [f"{module}: {line}" for line in _too_long(path.read_text(), str(path), allowed)]
    assert not found, "split these by meaning:\n" + "\n".join(found)


def test_size_exceptions_are_still_needed() -> None:
    # An exception that names nothing, or a body back under the limit, goes from the list.
    limits = {"class": MAX_CLASS_LINES, "function": MAX_FUNCTION_LINES}
    over = {f"{module}:{name}" for module, path in _compiler_modules() for kind, name, lines in sizes(path.read_text()) if lines > limits[kind]}
    stale = [name for name in SIZE_EXCEPTIONS if name not in over]
    assert not stale, f"size exceptions no longer needed: {stale}"


def test_each_error_name_is_one_class() -> None:
    # A traceback shows the class name only: two exceptions called the same
    # (a BtfError for bytes pyfd cannot decode and a BtfError for BTF the
    # kernel refused, until issue 11) read as one.
    defined: dict[str, list[str]] = {}
    for module, (path, _) in sorted(MODULES.items()):
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Exception", "Warning")):
                defined.setdefault(node.name, []).append(module)
    twice = {name: modules for name, modules in defined.items() if len(modules) > 1}
    assert not twice, f"error classes of the same name: {twice}"
    assert {"CompileError", "BtfError", "BtfFormatError"} <= set(defined)
