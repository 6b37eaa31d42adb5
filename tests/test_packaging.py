"""What users get: the public API of `pyfd`, and a wheel with pyfd.compiler, pyfd.runtime and py.typed."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
from checkout import fresh_checkout
from kernel import needs_kernel

import pyfd
import pyfd.compiler
import pyfd.runtime
from pyfd.isa import assemble, encode_program
from pyfd.runtime import load_program

ROOT = Path(__file__).resolve().parent.parent


def test_no_top_level_compiler_or_runtime_module() -> None:
    path = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    for name in ("compiler", "runtime"):
        assert importlib.machinery.PathFinder.find_spec(name, path) is None, f"a top-level `{name}` module is importable"


def test_subpackages_come_from_the_repository_folders() -> None:
    assert Path(pyfd.compiler.__file__).resolve().parent.name == "compiler"
    assert Path(pyfd.runtime.__file__).resolve().parent.name == "runtime"


def test_runtime_does_not_import_the_compiler() -> None:
    for module in Path(pyfd.runtime.__file__).parent.glob("*.py"):
        text = module.read_text()
        assert "from ..compiler" not in text and "pyfd.compiler" not in text, module


# -- the public API: everything a user needs imports from `pyfd` ----------------------


def test_every_name_in_all_imports() -> None:
    assert len(pyfd.__all__) == len(set(pyfd.__all__)), "a name is listed twice in pyfd.__all__"
    for name in pyfd.__all__:
        assert getattr(pyfd, name) is not None, name
    star: dict[str, object] = {}
    exec("from pyfd import *", star)  # noqa: S102 - what `from pyfd import *` gives a user
    assert set(pyfd.__all__) <= set(star)


def test_type_checkers_see_every_public_name_where_it_lives() -> None:
    # `__getattr__` is Any to mypy: a name missing from the TYPE_CHECKING
    # imports is Any in a user's code (a `Header` subclass went unchecked).
    tree = ast.parse((ROOT / "pyfd" / "__init__.py").read_text())
    [block] = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    seen: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom), ast.unparse(node)
        for alias in node.names:
            seen[alias.asname or alias.name] = "." * node.level + (node.module or "")
    assert set(seen) == set(pyfd.__all__)
    # From the module `__getattr__` imports it from (a submodule from the package itself).
    assert seen == {name: "." if name in pyfd._SUBMODULES else source for name, source in pyfd._SOURCES.items()}


def test_importing_pyfd_leaves_object_files_for_later() -> None:
    # `import pyfd` in a test or a CLI start stays cheap: pyelftools waits for pyfd.load().
    code = "import sys, pyfd; from pyfd import ObjectFileError, load; print('elftools' in sys.modules)"
    lazy = "import sys, pyfd; print('elftools' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", lazy], capture_output=True, text=True, check=True).stdout.strip() == "False"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "True"


def test_all_covers_the_constants_and_the_runtime_errors() -> None:
    import pyfd.constants

    constants = {name for name, value in vars(pyfd.constants).items() if name.isupper() and not name.startswith("_")}
    assert constants - set(pyfd.__all__) == set()
    runtime_errors = {
        name for name in pyfd.runtime.__all__ if isinstance(getattr(pyfd.runtime, name), type) and issubclass(getattr(pyfd.runtime, name), Exception)
    }
    assert runtime_errors - set(pyfd.__all__) == set()
    for name in runtime_errors:
        assert getattr(pyfd, name) is getattr(pyfd.runtime, name), name
    from pyfd.compiler.diagnostics import CompileError
    from pyfd.objfile.reader import ObjectFileError

    assert pyfd.CompileError is CompileError and pyfd.ObjectFileError is ObjectFileError


def test_the_readmes_imports_are_public() -> None:
    readme = (ROOT / "README.md").read_text()
    imported = set()
    for names in re.findall(r"^\s*from pyfd import ([^\n]+)$", readme, re.MULTILINE):
        imported |= {name.strip() for name in names.split(",")}
    assert {"dissector", "BPF_FLOW_DISSECTOR_CONTINUE", "lib"} <= imported  # the pattern finds them
    assert imported - set(pyfd.__all__) == set()


def test_a_bad_program_raises_pyfd_compile_error(tmp_path: Path) -> None:
    source = tmp_path / "bad_loop.py"
    source.write_text(
        "from pyfd import BPF_OK, BpfFlowKeys, Packet, dissector\n\n\n"
        "@dissector\n"
        "def bad_loop(pkt: Packet, keys: BpfFlowKeys) -> int:\n"
        "    while True:\n"
        "        pass\n"
        "    return BPF_OK\n"
    )
    spec = importlib.util.spec_from_file_location("bad_loop", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(pyfd.CompileError) as caught:
        module.bad_loop.compile()
    assert str(caught.value).startswith(f"{source}:6:5: `while` loops are not supported")


def test_a_file_that_is_no_object_raises_pyfd_object_file_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.o"
    text.write_text("not an ELF file\n")
    with pytest.raises(pyfd.ObjectFileError, match="notes.o"):
        pyfd.load(text)


@needs_kernel
def test_a_refused_program_raises_pyfd_verifier_error() -> None:
    # r0 = *(u32 *)(r1 + 8): a context field a flow dissector may not read.
    code = encode_program(assemble("r0 = *(u32 *)(r1 + 8)\nexit"))
    with pytest.raises(pyfd.VerifierError) as caught:
        load_program(code, name="refused")
    assert isinstance(caught.value, pyfd.BpfError) and "invalid bpf_context access" in caught.value.reason


@needs_kernel
def test_a_missing_namespace_raises_pyfd_namespace_not_found_error() -> None:
    missing = f"pyfd-missing-{uuid.uuid4().hex[:12]}"
    with _ipv4_tcp().compile().load() as loaded, pytest.raises(pyfd.NamespaceNotFoundError) as caught:
        with loaded.attached(netns=missing):
            pass
    assert isinstance(caught.value, pyfd.AttachError) and isinstance(caught.value, pyfd.BpfError)
    assert missing in str(caught.value)


def _ipv4_tcp() -> pyfd.Dissector:
    spec = importlib.util.spec_from_file_location("packaging_ipv4_tcp", ROOT / "samples" / "ipv4_tcp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sample: pyfd.Dissector = module.ipv4_tcp
    return sample


# -- the wheel: what a non-editable install gets -----------------------------------------


def test_the_wheel_ships_py_typed_and_the_grammar(tmp_path: Path) -> None:
    source = fresh_checkout(tmp_path / "src")
    wheels = tmp_path / "wheels"
    # Built as a user's `pip install .` builds it: setuptools from the index, in isolation.
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(source)]
    built = subprocess.run(build, capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("pyfd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pyfd/py.typed" in names, names
    assert "pyfd/compiler/ir/grammar.lark" in names
    assert not [name for name in names if name.startswith(("compiler/", "runtime/"))]

    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(site), str(wheel)]
    installed = subprocess.run(install, capture_output=True, text=True, timeout=300, check=False)
    assert installed.returncode == 0, installed.stderr
    assert (site / "pyfd" / "py.typed").is_file()
    # The installed copy is the one that imports (not this checkout), and it works.
    probe = "import pyfd, pyfd.compiler.frontend; print(pyfd.__file__)"
    env = {**os.environ, "PYTHONPATH": str(site)}
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path, env=env)
    assert Path(found.stdout.strip()) == site / "pyfd" / "__init__.py"

