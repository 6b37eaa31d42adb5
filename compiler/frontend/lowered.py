"""What the frontend hands on: the IR function, and the types it gave the source."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..ir.nodes import Function
from ..source import FunctionSource
from ..typesys import IntTy


@dataclass
class TypeRecord:
    """Types the frontend gave AST nodes, for the CPython run of the same function."""

    # BinOp/UnaryOp result types, and the type of the operation an AugAssign performs.
    results: dict[ast.AST, IntTy] = field(default_factory=dict)
    stores: dict[ast.AST, IntTy] = field(default_factory=dict)  # Assign/AnnAssign/AugAssign to a local
    calls: dict[ast.AST, Callable[..., Any]] = field(default_factory=dict)  # Call -> the helper it inlines
    params: dict[ast.AST, list[tuple[str, IntTy]]] = field(default_factory=dict)  # helper def -> its integer parameters
    returns: dict[ast.AST, IntTy | tuple[IntTy, ...]] = field(default_factory=dict)  # helper def -> its result type(s)
    unpacks: dict[ast.AST, tuple[IntTy, ...]] = field(default_factory=dict)  # `a, b = helper()` -> the locals' types
    # A Name or Attribute that names a map or a Config -> ("maps" | "config", its name): the
    # Python run reads the dissector's own state there instead of the module's declaration.
    state_refs: dict[ast.AST, tuple[str, str]] = field(default_factory=dict)
    # `m[k] = v`, `m[k] op= v`, `del m[k]` -> "store" | "augment" | "delete": the Python run
    # performs them as the kernel does (a refused update has no effect).
    map_stmts: dict[ast.AST, str] = field(default_factory=dict)


@dataclass
class Lowered:
    """The frontend's result: the IR function and the recorded types."""

    function: Function
    types: TypeRecord
    source: FunctionSource
    # The sources of the helper functions it inlined, by function (their AST
    # nodes are the keys of `types`).
    helpers: dict[Any, FunctionSource] = field(default_factory=dict)
    # The maps and load-time constants it has (pyfd.maps declarations), by name,
    # in the order of `function.maps` and `function.configs`.
    maps: dict[str, Any] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)
