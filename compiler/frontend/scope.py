"""What names mean where the frontend is: one `FunctionScope` per function being lowered.

The dissector's scope is at the bottom of the stack; inlining a helper pushes
a scope of its own (parameters, locals, path facts, loops, what `return`
does) and leaving the helper pops it, so nothing of the caller needs saving
and restoring by hand. Path facts (`Env`: which locals are assigned, which
names hold which header, which constants a local may hold) follow control
flow: a copy per branch, merged where paths join.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..diagnostics import CompileNameError, Span
from ..ir.builder import JumpHandle
from ..ir.nodes import Reg
from ..source import FunctionSource
from ..typesys import IntTy
from .semantics import HeaderView, Param, Value, constants, fail


@dataclass(frozen=True)
class Conflict:
    """A header name bound to different packet positions on different paths."""

    span: Span
    partial: bool = False  # some path reaching the merge did not bind the name at all


@dataclass
class Env:
    """What is known on the current path: assigned locals and header bindings."""

    assigned: set[str]
    headers: dict[str, HeaderView | Conflict]
    choices: dict[str, frozenset[int]] = field(default_factory=dict)  # locals known to hold one of these constants

    def copy(self) -> Env:
        """An independent copy, for one branch."""
        return Env(set(self.assigned), dict(self.headers), dict(self.choices))


def merge(envs: list[Env], span: Span) -> Env:
    """What holds where the paths of `envs` join at `span`: what holds on all of them."""
    assigned = set.intersection(*(e.assigned for e in envs))
    choices = {
        name: frozenset().union(*(e.choices[name] for e in envs))
        for name in set.intersection(*(set(e.choices) for e in envs))
    }
    headers: dict[str, HeaderView | Conflict] = {}
    for name in set().union(*(e.headers for e in envs)):
        seen = [e.headers.get(name) for e in envs]
        first = seen[0]
        if first is not None and all(s == first for s in seen):
            headers[name] = first
        else:
            headers[name] = Conflict(span, partial=None in seen)
    return Env(assigned, headers, choices)


# A path that left its block for a join not placed yet, and what held on it.
Exit = tuple[JumpHandle, Env]


def with_choices(held: set[int] | None, value: Value) -> set[int] | None:
    """The constants a helper may return, after one more `return value`; None once any is unknown."""
    codes = constants(value)
    return None if held is None or not codes else held | set(codes)


@dataclass
class Frame:
    """What `return` does in the function being lowered: the dissector's, or an inlined helper's."""

    name: str
    ret_ty: IntTy | None = None  # a helper's result type; None for the dissector or a `-> None` helper
    helper: bool = False
    result: Reg | None = None  # where a helper's result goes
    join: str | None = None  # a helper's: numbered when the call starts (its returns land at a block made after the body)
    returns: list[Exit] = field(default_factory=list)
    choices: set[int] | None = field(default_factory=set)  # constants returned; None once any other value is
    # `-> tuple[u8, u16]`: the element types, result registers and constants of each element.
    tuple_tys: tuple[IntTy, ...] | None = None
    tuple_results: tuple[Reg, ...] = ()
    tuple_choices: list[set[int] | None] = field(default_factory=list)
    tail: Frame | None = None  # `return helper(...)`: the helper's returns are the caller's


@dataclass
class Loop:
    """A `for` loop being lowered: where its `break`s and `continue`s leave from."""

    breaks: list[Exit] = field(default_factory=list)
    continues: list[Exit] = field(default_factory=list)


def stored_names(node: ast.AST) -> frozenset[str]:
    """Names assigned anywhere in `node`: local everywhere in a function, as Python scopes them."""
    return frozenset(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))


@dataclass
class FunctionScope:
    """One function being lowered: its parameters, locals, path facts and loops."""

    source: FunctionSource
    frame: Frame
    prefix: str = ""  # register name prefix of an inlined helper's locals
    stored: frozenset[str] = frozenset()  # names assigned anywhere in the function
    params: dict[str, Param] = field(default_factory=dict)
    local_types: dict[str, IntTy] = field(default_factory=dict)
    local_regs: dict[str, Reg] = field(default_factory=dict)
    env: Env = field(default_factory=lambda: Env(set(), {}))
    loops: list[Loop] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int]:
        """The function's identity for recursion checks: its file and line."""
        return (self.source.file, self.source.node.lineno)


class Scope:
    """The stack of functions being lowered, the dissector at the bottom."""

    def __init__(self, root: FunctionSource) -> None:
        self._stored: dict[ast.AST, frozenset[str]] = {}  # by function: a helper inlined twice is walked once
        self.stack = [FunctionScope(root, Frame(root.node.name), stored=self.stored_in(root))]
        self.inlined = 0  # helpers inlined so far: numbers each one's register prefix

    def stored_in(self, source: FunctionSource) -> frozenset[str]:
        """The names assigned anywhere in the function `source`."""
        stored = self._stored.get(source.node)
        if stored is None:
            stored = self._stored[source.node] = stored_names(source.node)
        return stored

    @property
    def fn(self) -> FunctionScope:
        """The innermost function being lowered."""
        return self.stack[-1]

    @property
    def env(self) -> Env:
        """The facts of the current path."""
        return self.fn.env

    @env.setter
    def env(self, env: Env) -> None:
        self.fn.env = env

    @property
    def depth(self) -> int:
        """How many helpers are being inlined inside one another here."""
        return len(self.stack) - 1

    def active(self, source: FunctionSource) -> bool:
        """True if `source` is being lowered already (calling it would recurse)."""
        return (source.file, source.node.lineno) in {f.key for f in self.stack}

    def next_prefix(self, name: str) -> str:
        """The register prefix of the next inlined helper `name`."""
        self.inlined += 1
        return f"{name}.{self.inlined}."

    @contextmanager
    def entered(self, scope: FunctionScope) -> Iterator[FunctionScope]:
        """Lower inside `scope` (an inlined helper) until the block ends."""
        self.stack.append(scope)
        try:
            yield scope
        finally:
            self.stack.pop()

    # -- locals -----------------------------------------------------------

    def local(self, name: str, ty: IntTy) -> Reg:
        """The register of the local `name`, which now has type `ty`."""
        fn = self.fn
        fn.local_types[name] = ty
        return fn.local_regs.setdefault(name, Reg(f"{fn.prefix}{name}"))

    def assigned(self, name: str, codes: frozenset[int] | None) -> None:
        """`name` holds a value from here on, one of `codes` if known."""
        env = self.env
        env.assigned.add(name)
        if codes:
            env.choices[name] = codes
        else:
            env.choices.pop(name, None)

    def refine(self, name: str, constant: int, equal: bool) -> None:
        """On this path the local `name` is (or is not) `constant`, if its constants are known."""
        held = self.env.choices.get(name)
        if held is not None:
            self.env.choices[name] = held & {constant} if equal else held - {constant}

    def lookup(self, name: str, span: Span) -> Value | HeaderView | Param | None:
        """What `name` means in the function, or None for a global (refused if used before assignment)."""
        fn = self.fn
        if name in fn.params:
            return fn.params[name]
        if name in fn.env.headers:
            return self._header(name, fn.env.headers[name], span)
        if name in fn.local_types:
            if name not in fn.env.assigned:
                fail(span, f"`{name}` may be used before it is assigned", hint="assign it on every path that reaches here", kind=CompileNameError)
            return Value(fn.local_regs[name], fn.local_types[name], None, fn.env.choices.get(name))
        if name in fn.stored:  # assigned later: Python raises UnboundLocalError here, even if a global has the name
            fail(
                span,
                f"`{name}` is used before it is assigned",
                hint=f"`{name}` is assigned later in the function, which makes it a local everywhere in it",
                kind=CompileNameError,
            )
        return None

    def _header(self, name: str, view: HeaderView | Conflict, span: Span) -> HeaderView:
        """The header `name` is bound to, refused where paths bound it differently."""
        if isinstance(view, Conflict) and view.partial:
            fail(
                span,
                f"`{name}` is not bound to a header on every path that reaches here (the paths merge at line {view.span.line})",
                hint="call pkt.header(...) on every path, or read the fields inside the branch that binds it",
                kind=CompileNameError,
            )
        if isinstance(view, Conflict):
            fail(
                span,
                f"`{name}` refers to different packet headers on the paths that reach here (they merge at line {view.span.line})",
                hint="read the fields you need inside each branch, or call pkt.header(...) again after it",
                kind=CompileNameError,
            )
        return view
