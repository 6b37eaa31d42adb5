"""The frontend: a dissector's Python `ast` to IR.

Only a whitelisted subset is lowered; anything else is refused with a
`CompileError` naming the construct at its span. While lowering, the frontend
records the type it gave every arithmetic node and typed assignment
(`TypeRecord`), which `pyinstrument` uses to run the same function in CPython
with exactly the kernel's integer widths.

The modules, each importing only those before it:

- `semantics`: values and what operators, narrowing and casts mean (no `ast`);
- `access`: reads and writes of the packet and the keys (no `ast`);
- `maps`: the maps and load-time constants a dissector has, and operations on them (no `ast`);
- `lowered`: the result, `Lowered` and `TypeRecord`;
- `scope`: parameters, locals, path facts, loops and frames, one scope per function;
- `inlining`: which calls name a helper, its signature, binding the arguments;
- `expressions`, `statements`, `mapsyntax`, `syntax`: the walk over the tree, one
  visitor per construct, each class extending the one before.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from ..diagnostics import CompileError, InternalCompilerError, UnsupportedError
from ..ir.nodes import evaluate_binary
from ..recursion import recursion_room
from ..source import function_source
from .lowered import Lowered, TypeRecord
from .syntax import MAX_INLINE_DEPTH, MAX_ITERATIONS, Lowering

# The visitor under the name pyfd's tests patch to simulate a bug in it.
_Lowering = Lowering


def lower_function(fn: Callable[..., Any]) -> Lowered:
    """Lower a dissector function to IR, or raise a CompileError."""
    trees: dict[tuple[str, str], ast.Module] = {}  # each file parsed once, for the dissector and its helpers
    source = function_source(fn, trees=trees)
    lowering = Lowering(source, trees)
    try:
        with recursion_room():
            return lowering.run()
    except CompileError:
        raise
    except RecursionError:  # deeper than even recursion_room allows: report where it gave up
        node, src = lowering.deepest
        raise UnsupportedError(
            "this is nested too deeply for pyfd to compile",
            src.span(node),
            hint="split the expression or the chain of `elif`s with intermediate locals",
        ) from None
    except Exception as exc:  # a bug outside any statement (the signature, the end of the body)
        raise InternalCompilerError(
            f"internal compiler error while compiling `{source.node.name}`: {type(exc).__name__}: {exc}", source.span(source.node)
        ) from exc


__all__ = ["MAX_INLINE_DEPTH", "MAX_ITERATIONS", "Lowered", "TypeRecord", "evaluate_binary", "lower_function"]
