"""Finding a dissector's source: the file, its `ast`, and the function's node."""

from __future__ import annotations

import ast
import inspect
import linecache
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .diagnostics import CompileError, Span


@dataclass(frozen=True)
class FunctionSource:
    """A Python function's definition node, file name and global namespace."""

    node: ast.FunctionDef
    file: str
    globals: dict[str, Any]

    def span(self, node: ast.AST) -> Span:
        """The span of an AST node of this function's file."""
        line = getattr(node, "lineno", self.node.lineno)
        col = getattr(node, "col_offset", 0)
        return Span(self.file, line, col, getattr(node, "end_lineno", None) or line, getattr(node, "end_col_offset", None) or col + 1)


def function_source(fn: Callable[..., Any], *, trees: dict[tuple[str, str], ast.Module] | None = None) -> FunctionSource:
    """Parse the file `fn` was defined in and return its `FunctionDef`.

    `trees` keeps each file's parse, by name and text, for the next function
    from the same file (the helpers of one dissector mostly share a module).
    """
    code = getattr(fn, "__code__", None)
    if code is None:  # e.g. @dissector applied twice; not repr(fn), which may itself fail
        name = getattr(fn, "__name__", None) or type(fn).__name__
        raise CompileError(f"`{name}` is a {type(fn).__name__}, not a Python function; apply @dissector directly to a `def`", None)
    file = inspect.getsourcefile(fn) or code.co_filename
    lines = linecache.getlines(file)
    if not lines:
        raise CompileError(
            f"cannot find the source of {fn.__name__} (defined in {file}); pyfd compiles functions defined in files",
            None,
        )
    text = "".join(lines)
    tree = trees.get((file, text)) if trees is not None else None
    if tree is None:
        try:
            tree = ast.parse(text, filename=file)
        except SyntaxError as exc:  # the module imported, so this is only a changed file
            raise CompileError(f"syntax error: {exc.msg}", Span(file, exc.lineno or 1, (exc.offset or 1) - 1, exc.lineno or 1, exc.offset or 1)) from None
        if trees is not None:
            trees[(file, text)] = tree
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == fn.__name__:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if first == code.co_firstlineno or node.lineno == code.co_firstlineno:
                if isinstance(node, ast.AsyncFunctionDef):
                    raise CompileError("a dissector cannot be `async`", Span(file, node.lineno, node.col_offset, node.lineno, node.col_offset + 5))
                return FunctionSource(node, file, fn.__globals__)
    raise CompileError(f"cannot find the definition of {fn.__name__} in {file}", None)


def _module_tree(file: str, trees: dict[tuple[str, str], ast.Module]) -> ast.Module | None:
    """The parsed file (kept in `trees`), None if it cannot be read or parsed."""
    text = "".join(linecache.getlines(file))
    if not text:
        return None
    tree = trees.get((file, text))
    if tree is None:
        try:
            tree = ast.parse(text, filename=file)
        except SyntaxError:
            return None
        trees[(file, text)] = tree
    return tree


def declared_name(where: tuple[str, int], trees: dict[tuple[str, str], ast.Module]) -> str | None:
    """The name a module-level declaration is assigned to (`hits = Array(...)` -> "hits") at the line it recorded."""
    tree = _module_tree(where[0], trees)
    for node in tree.body if tree is not None else ():
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target: ast.expr = node.targets[0]
            value: ast.expr | None = node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and isinstance(value, ast.Call) and value.lineno == where[1]:
            return target.id
    return None


def declaration_span(where: tuple[str, int], trees: dict[tuple[str, str], ast.Module]) -> Span:
    """The span of the call that made a module-level declaration (`HashMap(...)`), from the file and line it recorded."""
    file, line = where
    source_line = linecache.getline(file, line).rstrip("\n")
    fallback = Span(file, line, 0, line, max(len(source_line.encode()), 1))
    tree = _module_tree(file, trees)
    if tree is None:
        return fallback
    for node in ast.walk(tree):  # breadth first: the outermost call on the line comes first
        if isinstance(node, ast.Call) and node.lineno == line:
            return Span(file, node.lineno, node.col_offset, node.end_lineno or line, node.end_col_offset or node.col_offset + 1)
    return fallback
