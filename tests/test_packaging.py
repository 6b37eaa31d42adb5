"""compiler/ and runtime/ install as pyfd.compiler and pyfd.runtime, never top level."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pyfd.compiler
import pyfd.runtime

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
