"""The frontend's shape: meaning apart from syntax, and the user's tree left as it was."""

from __future__ import annotations

import ast
from pathlib import Path
from types import ModuleType

import pytest
from dissectors import semantics
from pyfd.compiler import frontend
from pyfd.compiler.frontend import access, lower_function
from pyfd.compiler.frontend import maps as map_meaning
from pyfd.compiler.frontend import semantics as meaning

from pyfd.cli import find_dissectors

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.mark.parametrize("module", [meaning, access, map_meaning], ids=lambda m: m.__name__)
def test_meaning_is_apart_from_syntax(module: ModuleType) -> None:
    """semantics and access see spans and values, never the syntax tree."""
    tree = ast.parse(Path(str(module.__file__)).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "ast" not in imported


@pytest.mark.parametrize(
    "fn",
    [semantics.augmented.fn, find_dissectors(SAMPLES / "full.py")["full"].fn],
    ids=["augmented", "full-with-helpers"],
)
def test_lowering_adds_nothing_to_the_users_tree(fn: object) -> None:
    """No attribute of pyfd's own on any node of the dissector or of a helper it inlined."""
    lowered = lower_function(fn)  # type: ignore[arg-type]
    sources = [lowered.source, *lowered.helpers.values()]
    for source in sources:
        for node in ast.walk(source.node):
            extra = set(vars(node)) - set(node._fields) - set(node._attributes)
            assert not extra, f"{type(node).__name__} at line {getattr(node, 'lineno', '?')} carries {sorted(extra)}"


def test_augmented_assignment_type_is_recorded_under_the_statement() -> None:
    """What the CPython run needs to desugar `t op= v` itself: the operation's type, by statement."""
    lowered = lower_function(semantics.augmented.fn)
    augs = [n for n in ast.walk(lowered.source.node) if isinstance(n, ast.AugAssign)]
    assert len(augs) == 20
    assert all(aug in lowered.types.results for aug in augs)
    assert {str(lowered.types.results[aug]) for aug in augs} == {"u64", "i64"}


def test_the_visitor_keeps_its_name() -> None:
    """Tests patch `frontend._Lowering` to simulate a bug; it is the class lower_function runs."""
    assert frontend._Lowering is frontend.syntax.Lowering
