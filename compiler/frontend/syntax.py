"""The syntax walk: one `visit_<AstClass>` per construct the language accepts.

The walk is four classes, each extending the one before: `expressions`
(the dispatch, the whitelist, expressions and conditions), `statements`
(control flow and assignment), `mapsyntax` (maps and Configs), and `Lowering` here: the dissector's `def`,
`return`, and calls of helpers, whose bodies are lowered in a function scope
of their own. `visit` dispatches on the node's class and turns a stray
exception into an `InternalCompilerError` at the node; `generic_visit`
refuses every construct without a visitor, by name. The visitors take the
tree apart and hand the pieces on: meaning to `semantics` and `access`, names
to `scope`, helper signatures to `inlining`, IR to the builder.
"""

from __future__ import annotations

import ast
from typing import Any, NoReturn

from pyfd.constants import BPF_DROP
from pyfd.keys import BpfFlowKeys
from pyfd.packet import Packet

from ..diagnostics import CompileError, CompileNameError, CompileTypeError, ReturnValueError, Span, UnsupportedError
from ..ir.nodes import Copy, Reg, Return
from ..source import FunctionSource, function_source
from ..typesys import IntTy
from . import semantics
from .inlining import ResultType, bind_arguments, helper_signature
from .lowered import Lowered
from .scope import Frame, FunctionScope, with_choices
from .semantics import HeaderView, Meaning, Param, TupleValue, Value, article
from .mapsyntax import MapLowering
from .statements import MAX_ITERATIONS

# How deep helpers may call helpers.
MAX_INLINE_DEPTH = 16

_CODES_HINT = "return BPF_OK, BPF_DROP or BPF_FLOW_DISSECTOR_CONTINUE"


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    """`body` without its leading docstring."""
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        return body[1:]
    return body


class Lowering(MapLowering):
    """Lowers one dissector, and the helpers it calls, to one IR function."""

    # -- entry ------------------------------------------------------------

    def run(self) -> Lowered:
        """Lower the whole dissector."""
        node = self.root.node
        self.discover_maps()
        self._check_signature(node)
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Yield, ast.YieldFrom)):  # makes the function a generator, even in dead code
                self.unsupported(inner)
        self.b.position("entry")
        self.lower_body(_without_docstring(list(node.body)))
        if self.b.reachable:
            raise ReturnValueError(
                f"missing return: the end of `{node.name}` is reachable",
                self.span(node.body[-1]),
                hint="end every path with `return BPF_OK`, `return BPF_DROP` or `return BPF_FLOW_DISSECTOR_CONTINUE`",
            )
        if self.drop_label is not None:
            assert self.drop_span is not None
            self.b.position(self.drop_label)
            self.b.terminate(Return(BPF_DROP, self.drop_span))
        fn = self.b.finish(node.name, self.root.file, self.span(node))
        maps, configs = self.map_definitions(node.name, self.span(node))
        fn.maps = tuple(e.defn for e in self.map_table.maps.values())
        fn.configs = tuple(e.defn for e in self.map_table.configs.values())
        return Lowered(fn, self.types, self.root, self.helpers, maps, configs)

    def _check_signature(self, node: ast.FunctionDef) -> None:
        """The dissector takes (pkt: Packet, keys: BpfFlowKeys) and returns int; its name is ASCII."""
        if not node.name.isascii():
            self._refuse_name(node)
        args = node.args
        for extra, what in ((args.vararg, "*args"), (args.kwarg, "**kwargs")):
            if extra is not None:
                self.fail(extra, f"a dissector takes no {what}", kind=UnsupportedError)
        if args.kwonlyargs or args.posonlyargs or args.defaults or len(args.args) != 2:
            surplus = [*args.posonlyargs, *args.args, *args.kwonlyargs][2:]
            self.fail(
                surplus[0] if surplus else node,
                f"`{node.name}` must take exactly two parameters: (pkt: Packet, keys: BpfFlowKeys)",
                kind=CompileTypeError,
            )
        for arg, want, kind in ((args.args[0], Packet, "packet"), (args.args[1], BpfFlowKeys, "keys")):
            if self._resolve_annotation(arg.annotation) is not want:
                got = "has no annotation" if arg.annotation is None else f"is annotated `{ast.unparse(arg.annotation)}`"
                self.fail(arg, f"parameter `{arg.arg}` {got}; it must be annotated `{want.__name__}`", kind=CompileTypeError)
            self.scope.fn.params[arg.arg] = Param(kind)
        if node.returns is not None and self._resolve_annotation(node.returns) is not int:
            self.fail(node.returns, f"a dissector returns `int`, not `{ast.unparse(node.returns)}`", kind=CompileTypeError)

    def _refuse_name(self, node: ast.FunctionDef) -> NoReturn:
        # The name becomes the BPF program's, the ELF symbol's and the BTF
        # FUNC's: the kernel takes letters, digits, `_` and `.` in a
        # program name (kernel/bpf/syscall.c, bpf_obj_name_cpy: isalnum is
        # ASCII there) and ASCII identifiers in BTF (btf_name_valid_identifier).
        line = self.src.span(node).source_line()
        at = line.find(node.name)  # after `def` and indentation: ASCII, so this is also its byte column
        col = len(line[:at].encode())
        span = Span(self.src.file, node.lineno, col, node.lineno, col + len(node.name.encode())) if at >= 0 else self.span(node)
        bad = ", ".join(repr(c) for c in dict.fromkeys(c for c in node.name if not c.isascii()))
        raise CompileNameError(
            f"the dissector's name `{node.name}` has non-ASCII characters ({bad}); a BPF program name is ASCII letters, digits and `_`",
            span,
            hint="rename the function",
        )

    # -- return -----------------------------------------------------------

    def visit_Return(self, stmt: ast.Return) -> None:
        """`return`: the dissector's return code, or an inlined helper's result."""
        self._return(stmt, stmt.value)

    def _return(self, stmt: ast.Return, value: ast.expr | None) -> None:
        """Return `value` (None for a bare `return`) from the function being lowered."""
        frame = self.scope.fn.frame
        if value is None:
            if frame.helper and frame.ret_ty is None and frame.tuple_tys is None:
                self._return_from_helper(frame, None, stmt)
                return
            what = "a dissector" if not frame.helper else f"`{frame.name}` (annotated with a result)"
            self.fail(stmt, f"{what} must return a value", hint=_CODES_HINT if not frame.helper else None, kind=ReturnValueError)
        if frame.tuple_tys is not None:
            self._return_tuple(frame, stmt, value)
            return
        if frame.helper and frame.ret_ty is None:
            self.fail(
                value,
                f"`{frame.name}` returns nothing (it has no result annotation, or `-> None`), but this returns a value",
                hint=f"annotate the result: `def {frame.name}(...) -> u16:`",
                kind=ReturnValueError,
            )
        result: Meaning | None
        if isinstance(value, ast.Call) and self._helper_target(value) is not None:
            # `return helper(...)`: the helper's own returns end this function too.
            result = self._call(value, tail=True)
            if result is None:
                return
        else:
            result = self.expr(value)
        if not isinstance(result, Value):
            if not frame.helper:
                self.fail(value, "a dissector must return a constant return code", hint=_CODES_HINT, kind=ReturnValueError)
            self.fail(value, f"`{ast.unparse(value)}` is not an integer value", kind=CompileTypeError)
        self._return_value(frame, result, value, stmt)

    def _return_value(self, frame: Frame, result: Value, value: ast.expr, stmt: ast.stmt) -> None:
        """Return `result` from `frame` (a helper's result, or the dissector's return code)."""
        if not frame.helper:
            semantics.return_code(self.b, result, ast.unparse(value), self.span(value), self.span(stmt))
            return
        assert frame.ret_ty is not None
        semantics.check_literal(result, frame.ret_ty, self.span(value), f"the result of `{frame.name}`")
        narrowed = semantics.narrowed(self.b, result, frame.ret_ty, self.span(value))
        if frame.tail is not None:
            self._return_value(frame.tail, narrowed, value, stmt)
        else:
            self._return_from_helper(frame, narrowed, stmt)

    def _return_tuple(self, frame: Frame, stmt: ast.Return, value: ast.expr) -> None:
        """`return a, b` from a helper annotated `-> tuple[...]`, or `return other(...)` returning the same."""
        assert frame.tuple_tys is not None
        n = len(frame.tuple_tys)
        if isinstance(value, ast.Call) and self._helper_target(value) is not None:
            # `return helper(...)`: the helper's returns deliver straight to this one's caller.
            self._call(value, tail=True)
            return
        if not (isinstance(value, ast.Tuple) and len(value.elts) == n):
            self.fail(value, f"`{frame.name}` returns a tuple of {n} integers: `return a, b`", kind=ReturnValueError)
        items = [self.int_expr(e) for e in value.elts]
        for i, (item, elt, ty) in enumerate(zip(items, value.elts, frame.tuple_tys, strict=True)):
            semantics.check_literal(item, ty, self.span(elt), f"result {i} of `{frame.name}`")
        self._deliver_tuple(frame, items, self.span(stmt))

    def _deliver_tuple(self, frame: Frame, items: list[Value], span: Span) -> None:
        """Narrow `items` to `frame`'s result types and leave to its caller (or its tail caller's)."""
        assert frame.tuple_tys is not None
        narrowed = [semantics.narrowed(self.b, item, ty, span) for item, ty in zip(items, frame.tuple_tys, strict=True)]
        if frame.tail is not None:
            self._deliver_tuple(frame.tail, narrowed, span)
            return
        for i, item in enumerate(narrowed):
            frame.tuple_choices[i] = with_choices(frame.tuple_choices[i], item)
            self.b.emit(Copy(frame.tuple_results[i], item.op, span))
        frame.returns.append(self._leave(span))

    def _return_from_helper(self, frame: Frame, result: Value | None, stmt: ast.stmt) -> None:
        """Deliver a helper's result to its register and leave for the block after the call."""
        assert frame.join is not None
        if result is not None:
            assert frame.result is not None
            frame.choices = with_choices(frame.choices, result)
            self.b.emit(Copy(frame.result, result.op, self.span(stmt)))
        frame.returns.append(self._leave(self.span(stmt)))

    # -- inlining ---------------------------------------------------------

    def _inline(self, node: ast.Call, fn: Any, *, tail: bool) -> Value | TupleValue | None:
        """Lower a call to a helper function by inlining its body here."""
        name = ast.unparse(node.func)
        src = self._helper_source(node, fn, name)
        sig = helper_signature(src)
        if tail and sig.result is None:
            self.fail(node, f"`{name}` returns nothing, so its result cannot be returned", kind=ReturnValueError)
        given = bind_arguments(node, name, [p for p, _ in sig.params], self.src)
        bound = [(pname, kind, self._argument(given[pname], pname, kind, name)) for pname, kind in sig.params]
        caller = self.scope.fn
        if tail:
            self._check_tail(node, name, sig.result, caller.frame)
        caller_env = caller.env
        prefix = self.scope.next_prefix(src.node.name)
        frame = self._helper_frame(src, prefix, sig.result, caller.frame if tail else None)
        callee = FunctionScope(src, frame, prefix, self.scope.stored_in(src))
        self.types.calls[node] = fn
        self.types.params[src.node] = [(p, k) for p, k, _ in bound if isinstance(k, IntTy)]
        if sig.result is not None:
            self.types.returns[src.node] = sig.result
        with self.scope.entered(callee):
            self._lower_helper(src, sig.result, bound)
        if tail:
            return None
        if not frame.returns:
            self.fail(node, f"`{name}` never returns here", kind=CompileError)
        self._join(frame.returns, "after", self.span(node))
        self.scope.env = caller_env.copy()
        return self._helper_result(frame, sig.result)

    def _helper_source(self, node: ast.Call, fn: Any, name: str) -> FunctionSource:
        """The helper's source, refused if it recurses or nests too deep."""
        try:
            src = self.helpers.get(fn) or function_source(fn, trees=self.trees)
        except CompileError as exc:
            self.fail(node, f"cannot inline `{name}`: {exc.message}", kind=UnsupportedError)
        self.helpers[fn] = src
        if self.scope.active(src):
            self.fail(
                node,
                f"recursion is not supported: `{name}` is already being called here",
                hint="BPF has no unbounded call stack; bound the nesting with a `for _ in range(N)` loop",
                kind=UnsupportedError,
            )
        if self.scope.depth >= MAX_INLINE_DEPTH:
            self.fail(node, f"helpers nest more than {MAX_INLINE_DEPTH} deep here", kind=UnsupportedError)
        return src

    def _argument(self, arg: ast.expr, pname: str, kind: Any, name: str) -> Meaning:
        """Lower one argument, in the caller, and check it against its parameter's annotation."""
        value = self.expr(arg)
        if kind is Packet or kind is BpfFlowKeys:
            want = "packet" if kind is Packet else "keys"
            if not (isinstance(value, Param) and value.kind == want):
                self.fail(arg, f"`{pname}` of `{name}` must be the dissector's {want} parameter", kind=CompileTypeError)
        elif isinstance(kind, type):  # a header class
            if not (isinstance(value, HeaderView) and value.kind is kind):
                self.fail(
                    arg,
                    f"`{pname}` of `{name}` must be {article(kind.__name__)} header",
                    hint="pass a name bound with pkt.header(...)",
                    kind=CompileTypeError,
                )
        elif not isinstance(value, Value):
            self.int_expr(arg)  # the error for a non-integer
        else:
            semantics.check_literal(value, kind, self.span(arg), f"parameter `{pname}` of `{name}`")
        return value

    def _check_tail(self, node: ast.Call, name: str, result: ResultType, caller: Frame) -> None:
        """`return helper(...)` must return what the caller returns."""
        if isinstance(result, tuple) and (caller.tuple_tys is None or len(caller.tuple_tys) != len(result)):
            what = "a dissector returns a return code" if not caller.helper else f"`{caller.name}` does not return {len(result)} values"
            self.fail(node, f"`{name}` returns a tuple of {len(result)}; {what}", kind=ReturnValueError)
        if not isinstance(result, tuple) and caller.tuple_tys is not None:
            self.fail(node, f"`{caller.name}` returns a tuple; `{name}` does not", kind=ReturnValueError)

    def _helper_frame(self, src: FunctionSource, prefix: str, result: ResultType, tail: Frame | None) -> Frame:
        """What `return` does in the helper: deliver its result to registers the caller reads."""
        frame = Frame(src.node.name, None, helper=True, join=self.b.new_block("return"), tail=tail)
        if isinstance(result, tuple):
            frame.tuple_tys = result
            frame.tuple_results = tuple(Reg(f"{prefix}result{i}") for i in range(len(result)))
            frame.tuple_choices = [set() for _ in result]
        elif result is not None:
            frame.ret_ty, frame.result = result, Reg(f"{prefix}result")
        return frame

    def _lower_helper(self, src: FunctionSource, result: ResultType, bound: list[tuple[str, Any, Meaning]]) -> None:
        """The helper's body, in its own scope, its parameters bound to the arguments."""
        if src.node not in self.plain_helpers:  # a helper inlined again was checked the first time
            for inner in ast.walk(src.node):
                if isinstance(inner, (ast.Yield, ast.YieldFrom, ast.Await)):
                    self.unsupported(inner)
            self.plain_helpers.add(src.node)
        span = src.span(src.node)
        for pname, kind, value in bound:
            if isinstance(value, Param) and (kind is Packet or kind is BpfFlowKeys):
                self.scope.fn.params[pname] = value
            elif isinstance(kind, IntTy):
                assert isinstance(value, Value)
                self._assign_local(None, ast.Name(id=pname), value, None, span, declared=kind)
            else:
                assert isinstance(value, HeaderView)
                self.scope.env.headers[pname] = value
        self.lower_body(_without_docstring(list(src.node.body)))
        if self.b.reachable:
            if result is not None:
                raise ReturnValueError(
                    f"missing return: the end of helper `{src.node.name}` is reachable",
                    self.span(src.node.body[-1]),
                    hint=f"end every path with `return` and a `{result}` value",
                )
            self._return_from_helper(self.scope.fn.frame, None, src.node.body[-1])

    def _helper_result(self, frame: Frame, result: ResultType) -> Value | TupleValue | None:
        """What the call evaluates to: the registers the helper's returns wrote (None: no value)."""
        if frame.tuple_tys is not None:
            return TupleValue(tuple(
                Value(reg, ty, None, frozenset(held) if held else None)
                for reg, ty, held in zip(frame.tuple_results, frame.tuple_tys, frame.tuple_choices, strict=True)
            ))
        if result is None:
            return None  # no value: a statement of its own, or refused where a value is needed (visit_Call)
        assert frame.result is not None and isinstance(result, IntTy)
        return Value(frame.result, result, None, frozenset(frame.choices) if frame.choices else None)


__all__ = ["MAX_INLINE_DEPTH", "MAX_ITERATIONS", "Lowering"]
