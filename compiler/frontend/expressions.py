"""The syntax walk's base: dispatch, the whitelist, expressions and conditions.

An expression is lowered by `expr` to what it means (`semantics.Meaning`): an
integer `Value`, a header, a parameter, a global. A condition is lowered by
`cond` as control flow, so `and`, `or` and `not` short-circuit as in Python.
Operators are found in one table each, keyed by the `ast` operator class; what
they mean is `semantics`'.
"""

from __future__ import annotations

import ast
import builtins
import types
from typing import Any, NoReturn

from pyfd.headers import Header
from pyfd.types import FixedInt

from ..diagnostics import (
    CompileError, CompileNameError, CompileTypeError, InternalCompilerError, Span, UnsupportedError,
)
from ..ir.builder import IRBuilder
from ..ir.nodes import Branch, CheckPacket, Cmp, Copy, Imm, Jump
from ..source import FunctionSource
from ..typesys import BOOL, FROM_PYFD
from . import access, semantics
from .inlining import helper_target, resolve
from .lowered import TypeRecord
from .scope import Scope
from .semantics import BytesView, Global, HeaderView, Meaning, Param, Sites, TupleValue, Value, article

# Names of constructs for "X is not supported" messages.
_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.While: "`while` loops",
    ast.For: "`for` loops",
    ast.AsyncFor: "`async for` loops",
    ast.Try: "`try` statements",
    ast.TryStar: "`try` statements",
    ast.With: "`with` statements",
    ast.AsyncWith: "`async with` statements",
    ast.Raise: "`raise`",
    ast.Assert: "`assert`",
    ast.Delete: "`del`",
    ast.Import: "`import`",
    ast.ImportFrom: "`import`",
    ast.Global: "`global`",
    ast.Nonlocal: "`nonlocal`",
    ast.FunctionDef: "nested functions",
    ast.AsyncFunctionDef: "nested functions",
    ast.ClassDef: "class definitions",
    ast.Match: "`match` statements",
    ast.Lambda: "`lambda`",
    ast.ListComp: "list comprehensions",
    ast.SetComp: "set comprehensions",
    ast.DictComp: "dict comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.List: "list literals",
    ast.Tuple: "tuples",
    ast.Dict: "dict literals",
    ast.Set: "set literals",
    ast.JoinedStr: "f-strings",
    ast.Subscript: "subscripts (`x[i]`)",
    ast.Starred: "`*args`",
    ast.Await: "`await`",
    ast.Yield: "`yield`",
    ast.YieldFrom: "`yield from`",
    ast.NamedExpr: "assignment expressions (`:=`)",
    ast.IfExp: "conditional expressions (`a if c else b`)",
    ast.Slice: "slices",
}
_LOOP_HINT = "use `for _ in range(N)` with a constant N: a loop the verifier can walk to its end"
_HINTS: dict[type[ast.AST], str] = {
    ast.While: _LOOP_HINT,
    ast.AsyncFor: _LOOP_HINT,
    ast.IfExp: "use an `if` statement that assigns a local in both branches",
    ast.Try: "a failed packet read already ends the dissector with BPF_DROP",
}

# The operator tables: the `ast` operator class to what it means.
BINARY_OPS: dict[type[ast.operator], semantics.ArithOp] = {
    ast.Add: semantics.ADD, ast.Sub: semantics.SUB, ast.Mult: semantics.MUL, ast.FloorDiv: semantics.FLOORDIV,
    ast.Mod: semantics.MOD, ast.BitAnd: semantics.BITAND, ast.BitOr: semantics.BITOR, ast.BitXor: semantics.BITXOR,
    ast.LShift: semantics.LSHIFT, ast.RShift: semantics.RSHIFT,
}
COMPARE_OPS: dict[type[ast.cmpop], semantics.CompareOp] = {
    ast.Eq: semantics.EQ, ast.NotEq: semantics.NE, ast.Gt: semantics.GT, ast.GtE: semantics.GE,
    ast.Lt: semantics.LT, ast.LtE: semantics.LE,
}
UNARY_OPS: dict[type[ast.unaryop], semantics.UnaryArith] = {ast.USub: semantics.NEG, ast.Invert: semantics.INVERT}
# Operators refused by name.
_REFUSED_BINARY = {ast.Div: "`/`", ast.Pow: "`**`", ast.MatMult: "`@`"}
_REFUSED_COMPARE = {ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_LITERAL_KINDS: dict[type, str] = {str: "string", float: "float", bytes: "bytes", type(None): "`None`", complex: "complex"}


class ExpressionLowering:
    """The state of one lowering, the dispatch, and the expression visitors."""

    def __init__(self, source: FunctionSource, trees: dict[tuple[str, str], ast.Module] | None = None) -> None:
        self.root = source
        self.trees = {} if trees is None else trees  # parsed files, by name and text
        self.b = IRBuilder()
        self.scope = Scope(source)
        self.types = TypeRecord()
        self.helpers: dict[Any, FunctionSource] = {}
        self.plain_helpers: set[ast.FunctionDef] = set()  # helpers checked to be no generator or coroutine
        self.drop_label: str | None = None  # the shared block a failed bounds check leaves for
        self.drop_span: Span | None = None
        self.deepest: tuple[ast.AST, FunctionSource] = (source.node, source)  # the node being lowered, for a RecursionError

    # -- plumbing ---------------------------------------------------------

    @property
    def src(self) -> FunctionSource:
        """The source of the function being lowered (an inlined helper's, inside one)."""
        return self.scope.fn.source

    def span(self, node: ast.AST) -> Span:
        """Where `node` is, in the function being lowered."""
        return self.src.span(node)

    def fail(self, node: ast.AST, message: str, *, hint: str | None = None, kind: type[CompileError] = CompileError) -> NoReturn:
        """Refuse the program at `node`."""
        raise kind(message, self.span(node), hint=hint)

    def drop(self, span: Span) -> str:
        """The block that returns BPF_DROP, made at the first check that needs it."""
        if self.drop_label is None:
            self.drop_label = self.b.new_block("drop")
            self.drop_span = span
        return self.drop_label

    def _resolve_annotation(self, node: ast.expr | None) -> Any:
        """The object an annotation names in the function's globals."""
        return resolve(node, self.src.globals)

    # -- dispatch ---------------------------------------------------------

    def visit(self, node: ast.AST) -> Any:
        """Lower `node` with its `visit_<AstClass>` method; a bug in pyfd is reported at the node."""
        method = getattr(self, f"visit_{type(node).__name__}", self.generic_visit)
        self.deepest = (node, self.src)
        try:
            return method(node)
        except (CompileError, RecursionError):  # a RecursionError is located by lower_function
            raise
        except Exception as exc:  # a bug in pyfd: report it at the user's line, never as a traceback
            what = "statement" if isinstance(node, ast.stmt) else "expression"
            raise InternalCompilerError(f"internal compiler error while compiling this {what}: {type(exc).__name__}: {exc}", self.span(node)) from exc

    def generic_visit(self, node: ast.AST) -> NoReturn:
        """Refuse a construct the language does not have."""
        self.unsupported(node)

    def unsupported(self, node: ast.AST) -> NoReturn:
        """Refuse `node`, naming its construct."""
        what = _CONSTRUCTS.get(type(node), f"`{type(node).__name__}`")
        plural = what.split(" (")[0].endswith("s")  # "subscripts (`x[i]`)" is plural
        self.fail(node, f"{what} {'are' if plural else 'is'} not supported in a dissector", hint=_HINTS.get(type(node)), kind=UnsupportedError)

    def _inline(self, node: ast.Call, fn: Any, *, tail: bool) -> Value | TupleValue | None:
        """Inline a helper call (the statement walk, `syntax.Lowering`, implements it)."""
        raise NotImplementedError  # the statement walk (`syntax.Lowering`) lowers helper bodies

    # -- expressions ------------------------------------------------------

    def expr(self, node: ast.expr) -> Meaning:
        """Lower an expression."""
        result: Meaning = self.visit(node)
        return result

    def int_expr(self, node: ast.expr) -> Value:
        """Lower an expression that must be an integer."""
        result = self.expr(node)
        if isinstance(result, Value):
            return result
        if isinstance(result, HeaderView):
            self.fail(node, f"{article(result.kind.__name__)} header is not an integer", hint="read one of its fields", kind=CompileTypeError)
        if isinstance(result, TupleValue):
            self.fail(node, f"`{ast.unparse(node)}` returns {len(result.items)} values", hint="unpack them: `a, b = helper(...)`", kind=CompileTypeError)
        if isinstance(result, BytesView):
            self.fail(
                node,
                f"{result.name} is {result.size} opaque bytes, not an integer",
                hint="copy it whole into a keys field of the same size, e.g. `keys.ipv6_src = ip6.saddr`",
                kind=CompileTypeError,
            )
        self.fail(node, f"`{ast.unparse(node)}` is not an integer value", kind=CompileTypeError)

    def visit_Constant(self, node: ast.Constant) -> Value:
        """An integer or bool literal; other literals are refused by kind."""
        if isinstance(node.value, (bool, int)):
            return semantics.literal(int(node.value))
        kind = _LITERAL_KINDS.get(type(node.value), type(node.value).__name__)
        self.fail(node, f"{kind} literals are not supported; a dissector computes with integers", kind=UnsupportedError)

    def _name_binding(self, node: ast.Name) -> Value | HeaderView | Param | None:
        """What a name means in the function, or None for a global."""
        return self.scope.lookup(node.id, self.span(node))

    def visit_Name(self, node: ast.Name) -> Meaning:
        """A parameter, local or header name, or a module-level integer or object."""
        bound = self._name_binding(node)
        if bound is not None:
            return bound
        name = node.id
        if name not in self.src.globals:
            if hasattr(builtins, name):
                self.fail(node, f"the builtin `{name}` is not supported in a dissector", kind=UnsupportedError)
            self.fail(node, f"name `{name}` is not defined", kind=CompileNameError)
        obj = self.src.globals[name]
        if isinstance(obj, (bool, int)):
            return semantics.literal(int(obj))
        return Global(obj)

    def visit_Attribute(self, node: ast.Attribute) -> Meaning:
        """A keys field, a header field, or an attribute of a module."""
        owner = self.expr(node.value)
        span, attr = self.span(node), node.attr
        if isinstance(owner, Param) and owner.kind == "keys":
            return access.read_keys(self.b, attr, span)
        if isinstance(owner, HeaderView):
            return access.read_header(self.b, owner, attr, span)
        if isinstance(owner, Param):
            self.fail(node, f"the packet has no attribute `{attr}`", hint="read headers with pkt.header(Header, offset)", kind=CompileNameError)
        if isinstance(owner, Global) and isinstance(owner.obj, types.ModuleType):  # `lib.ipv4`, `pyfd.BPF_OK`
            if not hasattr(owner.obj, attr):
                self.fail(node, f"module `{owner.obj.__name__}` has no attribute `{attr}`", kind=CompileNameError)
            obj = getattr(owner.obj, attr)
            if isinstance(obj, (bool, int)):
                return semantics.literal(int(obj))
            return Global(obj)
        self.fail(node, f"`{ast.unparse(node)}` is not supported", kind=UnsupportedError)

    def visit_BinOp(self, node: ast.BinOp) -> Value:
        """An arithmetic or bitwise operation."""
        return self._binop(node)

    def _binop(self, node: ast.BinOp) -> Value:
        """Find the operator in its table, lower both sides, and record the type the CPython run wraps in."""
        op = BINARY_OPS.get(type(node.op))
        if op is None:
            hint = "use `//` for integer division" if isinstance(node.op, ast.Div) else None
            name = _REFUSED_BINARY.get(type(node.op), type(node.op).__name__)
            self.fail(node, f"the {name} operator is not supported", hint=hint, kind=UnsupportedError)
        lhs, rhs = self.int_expr(node.left), self.int_expr(node.right)
        result = semantics.binary(self.b, op, lhs, rhs, self._sites(node, node.left, node.right))
        if result.const is None:  # a typed operation, which the CPython run wraps like the kernel
            self.types.results[node] = result.ty
        return result

    def _sites(self, whole: ast.AST, left: ast.AST, right: ast.AST) -> Sites:
        """The spans of an operation and its two operands."""
        return Sites(self.span(whole), self.span(left), self.span(right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Value:
        """`-x`, `~x`, `+x`, or `not x` as a value."""
        if isinstance(node.op, ast.Not):
            return self._materialize_bool(node)
        operand = self.int_expr(node.operand)
        op = UNARY_OPS.get(type(node.op))
        if op is None:  # `+x` is x
            return operand
        result = semantics.unary(self.b, op, operand, self.span(node))
        if result.const is None:
            self.types.results[node] = result.ty
        return result

    def visit_BoolOp(self, node: ast.BoolOp) -> Value:
        """`a and b`, `a or b` as a value: 1 or 0."""
        return self._materialize_bool(node)

    def visit_Compare(self, node: ast.Compare) -> Value:
        """A comparison as a value: 1 or 0."""
        return self._materialize_bool(node)

    def _materialize_bool(self, node: ast.expr) -> Value:
        """A condition used as a value: 1 or 0."""
        span = self.span(node)
        if isinstance(node, ast.Compare):
            cmp, lhs, rhs = self._compare(node)
            return semantics.set_cond(self.b, cmp, lhs, rhs, span)
        dst = self.b.fresh("b")
        yes, no, join = self.b.new_block("true"), self.b.new_block("false"), self.b.new_block("bool")
        self.cond(node, yes, no)
        for label, bit in ((yes, 1), (no, 0)):
            self.b.position(label)
            self.b.emit(Copy(dst, Imm(bit), span))
            self.b.terminate(Jump(join, span))
        self.b.position(join)
        return Value(dst, BOOL)

    # -- conditions -------------------------------------------------------

    def cond(self, node: ast.expr, true: str, false: str) -> None:
        """Lower a condition as control flow; continue at `true` or `false`."""
        span = self.span(node)
        match node:
            case ast.BoolOp(op=ast.And(), values=values):
                for v in values[:-1]:
                    nxt = self.b.new_block("and")
                    self.cond(v, nxt, false)
                    self.b.position(nxt)
                self.cond(values[-1], true, false)
            case ast.BoolOp(op=ast.Or(), values=values):
                for v in values[:-1]:
                    nxt = self.b.new_block("or")
                    self.cond(v, true, nxt)
                    self.b.position(nxt)
                self.cond(values[-1], true, false)
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                self.cond(operand, false, true)
            case ast.Call() if self._is_header_call(node, "has"):
                self.b.terminate(self._has(node, true, false))
            case ast.Compare():
                cmp, lhs, rhs = self._compare(node)
                if lhs.const is not None and rhs.const is not None:
                    self.b.terminate(Jump(true if semantics.static_cmp(cmp, lhs.const, rhs.const) else false, span))
                else:
                    self.b.terminate(Branch(cmp, lhs.op, rhs.op, true, false, span))
            case _:
                value = self.int_expr(node)
                if value.const is not None:
                    self.b.terminate(Jump(true if value.const else false, span))
                else:
                    self.b.terminate(Branch(Cmp.NE, value.op, Imm(0), true, false, span))

    def _compare(self, node: ast.Compare) -> tuple[Cmp, Value, Value]:
        """The IR comparison of a single-operator `Compare`, and its lowered sides."""
        if len(node.ops) != 1:
            self.fail(node, "chained comparisons are not supported", hint="write `a < b and b < c`", kind=UnsupportedError)
        op = COMPARE_OPS.get(type(node.ops[0]))
        if op is None:
            name = _REFUSED_COMPARE.get(type(node.ops[0]), type(node.ops[0]).__name__)
            self.fail(node, f"the `{name}` operator is not supported", hint="compare integers with ==, !=, <, <=, >, >=", kind=UnsupportedError)
        right = node.comparators[0]
        lhs, rhs = self.int_expr(node.left), self.int_expr(right)
        return semantics.comparison(op, lhs, rhs, self._sites(node, node.left, right)), lhs, rhs

    # -- calls ------------------------------------------------------------

    def _is_header_call(self, node: ast.Call, method: str = "header") -> bool:
        """True for `pkt.<method>(...)` on the packet parameter."""
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr == method and isinstance(func.value, ast.Name)):
            return False
        param = self.scope.fn.params.get(func.value.id)
        return isinstance(param, Param) and param.kind == "packet"

    def _helper_target(self, node: ast.Call) -> types.FunctionType | None:
        """The helper function a call names, if any."""
        return helper_target(node, self.scope.fn)

    def visit_Call(self, node: ast.Call) -> Meaning:
        """`pkt.header(...)`, `pkt.has(...)`, a cast, or a helper (inlined) used as a value."""
        result = self._call(node)
        if result is None:  # a helper without a result, used as a value
            name = ast.unparse(node.func)
            self.fail(
                node,
                f"`{name}` returns nothing (it has no result annotation), so this call has no value",
                hint=f"annotate its result (`def {name.rsplit('.', 1)[-1]}(...) -> u16:`), or call it as a statement of its own",
                kind=CompileTypeError,
            )
        return result

    def _call(self, node: ast.Call, *, tail: bool = False) -> Meaning | None:
        """A call; `tail` for `return helper(...)`, whose returns are the caller's."""
        if self._is_header_call(node):
            return self.header(node)
        if self._is_header_call(node, "has"):
            return self._materialize_bool(node)
        helper = self._helper_target(node)
        if helper is not None:
            return self._inline(node, helper, tail=tail)
        if node.keywords:
            self.fail(node, "keyword arguments are not supported here", kind=UnsupportedError)
        callee = self.expr(node.func) if isinstance(node.func, (ast.Name, ast.Attribute)) else None
        if isinstance(callee, Global) and isinstance(callee.obj, type) and issubclass(callee.obj, FixedInt) and callee.obj in FROM_PYFD:
            if len(node.args) != 1:
                self.fail(node, f"{callee.obj.__name__}(...) takes one argument", kind=CompileTypeError)
            return semantics.cast(self.b, FROM_PYFD[callee.obj], self.int_expr(node.args[0]), self.span(node))
        if isinstance(node.func, ast.Name) and node.func.id == self.src.node.name:
            self.fail(node, "recursion is not supported: BPF has no unbounded call stack", kind=UnsupportedError)
        self.fail(
            node,
            f"call to `{ast.unparse(node.func)}` is not supported",
            hint="a dissector may call pkt.header(...), the casts u8(...) .. i64(...), and module-level functions with annotated parameters",
            kind=UnsupportedError,
        )

    def _has(self, node: ast.Call, true: str, false: str) -> CheckPacket:
        """`pkt.has(end)`: true if the packet holds at least `end` bytes (a check that reads nothing)."""
        if node.keywords or len(node.args) != 1:
            self.fail(node, "pkt.has takes one argument: the packet length to require", kind=CompileTypeError)
        end = self.int_expr(node.args[0])
        return access.check_has(self.b, end, self.span(node.args[0]), self.span(node), true, false)

    def header(self, node: ast.Call) -> HeaderView:
        """`pkt.header(Kind, offset)`: a bounds check, then a view later reads share."""
        if node.keywords or len(node.args) != 2:
            self.fail(node, "pkt.header takes two arguments: a header class and an offset", kind=CompileTypeError)
        kind_node, offset_node = node.args
        kind = self.expr(kind_node)
        if not (isinstance(kind, Global) and isinstance(kind.obj, type) and issubclass(kind.obj, Header) and kind.obj is not Header):
            self.fail(kind_node, f"`{ast.unparse(kind_node)}` is not a header class", hint="declare one: class MyHeader(Header): ...", kind=CompileTypeError)
        offset = self.int_expr(offset_node)
        return access.check_header(self.b, kind.obj, offset, self.span(offset_node), self.span(node), self.drop)
