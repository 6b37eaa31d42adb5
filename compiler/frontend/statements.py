"""The statement walk: control flow and assignment, one `visit_<AstClass>` each.

`if` and `for` lower to blocks and branches; the paths that leave a block for
a join not placed yet carry a builder `JumpHandle` and the facts that held on
them (`scope.Exit`), merged where they land. Assignment narrows a value into
a typed local, binds a header name, or stores into a keys field.
"""

from __future__ import annotations

import ast

from pyfd.headers import Header
from pyfd.types import FixedInt

from ..diagnostics import CompileNameError, CompileTypeError, Span, UnsupportedError
from ..ir.nodes import Binary, BinaryOp, Branch, Cmp, Copy, Imm, Jump, Reg
from ..typesys import BOOL, FROM_PYFD, I64, U64, IntTy
from . import access, semantics
from .expressions import ExpressionLowering
from .scope import Conflict, Env, Exit, Loop, merge, stored_names
from .semantics import BytesView, HeaderView, Meaning, Param, TupleValue, Value, article

# The most iterations a `for` loop may run: the verifier walks every one of
# them through the whole body, and its budget is one million instructions.
MAX_ITERATIONS = 64

_LOOP_HINT = "write `for _ in range(N)` with a constant N"


def as_load(target: ast.expr) -> ast.expr:
    """A copy of an assignment target that reads it (for `t op= v` as `t = t op v`, here and in the Python run)."""
    if isinstance(target, ast.Name):
        return ast.copy_location(ast.Name(id=target.id, ctx=ast.Load()), target)
    if isinstance(target, ast.Attribute):
        return ast.copy_location(ast.Attribute(value=target.value, attr=target.attr, ctx=ast.Load()), target)
    return target


class StatementLowering(ExpressionLowering):
    """Statements other than `return`: blocks, branches, loops and stores."""

    def lower_body(self, body: list[ast.stmt]) -> None:
        """Lower statements; one that no path reaches is refused."""
        for stmt in body:
            if not self.b.reachable:
                # Code no path reaches would be neither compiled nor checked,
                # yet the CPython run would still have to carry it.
                self.fail(
                    stmt,
                    "this code is never reached: every path before it has returned or left the loop",
                    hint="delete it, or move it before the `return`, `break` or `continue`",
                    kind=UnsupportedError,
                )
            self.visit(stmt)

    # -- control flow -----------------------------------------------------

    def _leave(self, span: Span) -> Exit:
        """End the current path with a jump to a block placed later (by `_join`)."""
        return (self.b.jump_forward(span), self.scope.env)

    def _join(self, ends: list[Exit], hint: str, span: Span, label: str | None = None) -> None:
        """Continue at one new block from every path in `ends`, knowing what held on all of them."""
        if not ends:
            return
        self.b.land([handle for handle, _ in ends], label or self.b.new_block(hint))
        self.scope.env = merge([env for _, env in ends], span)

    def visit_If(self, stmt: ast.If) -> None:
        """`if`/`elif`/`else`: a branch per arm, the arms joined where they fall through."""
        then_label, else_label = self.b.new_block("then"), self.b.new_block("else")
        self.cond(stmt.test, then_label, else_label)
        before = self.scope.env
        ends: list[Exit] = []
        for label, body, truth in ((then_label, stmt.body, True), (else_label, stmt.orelse, False)):
            self.b.position(label)
            self.scope.env = before.copy()
            self._refine(stmt.test, truth)
            self.lower_body(body)
            if self.b.reachable:
                ends.append(self._leave(self.span(stmt)))
        self._join(ends, "endif", self.span(stmt))

    def _refine(self, test: ast.expr, truth: bool) -> None:
        """Narrow what a local may hold on the branch where `test` is `truth` (`if status != NEXT`)."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            self._refine(test.operand, not truth)
            return
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq))):
            return
        left, right = test.left, test.comparators[0]
        if not isinstance(left, ast.Name):
            left, right = right, left
        if not isinstance(left, ast.Name) or left.id not in self.scope.env.choices:
            return
        constant = self._constant(right)
        if constant is not None:
            self.scope.refine(left.id, constant, equal=isinstance(test.ops[0], ast.Eq) == truth)

    def _constant(self, node: ast.expr) -> int | None:
        """The value of a literal or a module-level integer constant, without lowering anything."""
        fn = self.scope.fn
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return int(node.value)
        if isinstance(node, ast.Name) and node.id not in fn.stored and node.id not in fn.params:
            obj = self.src.globals.get(node.id)
            return int(obj) if isinstance(obj, int) else None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id not in fn.stored:
            obj = getattr(self.src.globals.get(node.value.id), node.attr, None)
            return int(obj) if isinstance(obj, int) else None
        return None

    def visit_For(self, stmt: ast.For) -> None:
        """`for name in range(...)` with constant bounds: a counted loop the verifier walks."""
        values = self._range(stmt)
        assert isinstance(stmt.target, ast.Name)
        if stmt.target.id in self.scope.fn.params:
            self.fail(stmt.target, f"cannot assign to the parameter `{stmt.target.id}`", kind=CompileNameError)
        # A loop the verifier walks iteration by iteration (it accepts bounded
        # loops): a hidden counter runs over the range, and the loop variable
        # takes its value at the top of each pass. An empty range jumps past
        # the loop, whose body is still lowered (checked) in blocks no path
        # reaches, which the passes remove.
        span = self.span(stmt)
        counter = Reg(f"{self.scope.fn.prefix}loop{self.b.new_block('')}")
        self.b.emit(Copy(counter, Imm(values.start), span))
        head, body, latch, done = (self.b.new_block(h) for h in ("loop", "body", "latch", "loopexit"))
        self.b.terminate(Jump(head if values else done, span))
        entry_env = self.scope.env = self._loop_entry_env(stmt)
        self.b.position(head)
        signed = min(values.start, values.stop) < 0
        cmp = (Cmp.SLT if signed else Cmp.ULT) if values.step > 0 else (Cmp.SGT if signed else Cmp.UGT)
        self.b.terminate(Branch(cmp, counter, Imm(values.stop), body, done, span))
        self.b.position(body)
        self.scope.env = entry_env.copy()
        self._assign_local(None, stmt.target, Value(counter, I64 if signed else U64), None, self.span(stmt.target))
        self.scope.fn.loops.append(Loop())
        self.lower_body(stmt.body)
        loop = self.scope.fn.loops.pop()
        ends = loop.continues + ([self._leave(span)] if self.b.reachable else [])
        if ends:
            self._join(ends, "latch", span, label=latch)
            self.b.emit(Binary(BinaryOp.ADD, counter, counter, Imm(values.step), span))
            self.b.terminate(Jump(head, span))
        self.b.position(done)
        self.scope.env = entry_env.copy()
        if stmt.orelse:
            self.lower_body(stmt.orelse)  # `for ... else`: runs when no `break` left the loop
        exits = loop.breaks + ([self._leave(span)] if self.b.reachable else [])
        self._join(exits, "endfor", span)

    def _range(self, stmt: ast.For) -> range:
        """The values a `for _ in range(...)` loop runs over, all known now."""
        if not isinstance(stmt.target, ast.Name):
            self.fail(stmt.target, "a `for` loop variable must be a single name", hint=_LOOP_HINT, kind=UnsupportedError)
        it = stmt.iter
        if not (
            isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
            and "range" not in self.src.globals and not it.keywords and 1 <= len(it.args) <= 3
        ):
            self.fail(it, "a `for` loop must iterate over `range(...)` with constant bounds", hint=_LOOP_HINT, kind=UnsupportedError)
        bounds: list[int] = []
        for arg in it.args:
            value = self.expr(arg)
            if not isinstance(value, Value) or value.const is None:
                self.fail(arg, "a loop needs a constant bound: the verifier must see every iteration", hint=_LOOP_HINT, kind=UnsupportedError)
            bounds.append(value.const)
        if len(bounds) == 3 and bounds[2] == 0:
            self.fail(it.args[2], "range() step must not be zero", kind=CompileTypeError)
        values = range(*bounds)
        if len(values) > MAX_ITERATIONS:
            self.fail(
                it,
                f"this loop runs {len(values)} times; a loop may run at most {MAX_ITERATIONS} times, each one walked by the verifier",
                kind=UnsupportedError,
            )
        return values

    def _loop_entry_env(self, stmt: ast.For) -> Env:
        """What holds at the top of every pass: what held before, less what the body may change."""
        env = self.scope.env.copy()
        for name in stored_names(stmt):
            env.choices.pop(name, None)
            if name in env.headers:
                env.headers[name] = Conflict(self.span(stmt), partial=True)
        return env

    def visit_Break(self, stmt: ast.Break) -> None:
        """`break`: leave the innermost loop (refused outside one)."""
        if not self.scope.fn.loops:
            self.generic_visit(stmt)
        self.scope.fn.loops[-1].breaks.append(self._leave(self.span(stmt)))

    def visit_Continue(self, stmt: ast.Continue) -> None:
        """`continue`: go on at the latch of the innermost loop (refused outside one)."""
        if not self.scope.fn.loops:
            self.generic_visit(stmt)
        self.scope.fn.loops[-1].continues.append(self._leave(self.span(stmt)))

    # -- statements with no value -----------------------------------------

    def visit_Expr(self, stmt: ast.Expr) -> None:
        """An expression statement: a helper call, `pkt.header(...)`, or a docstring-like string."""
        value = stmt.value
        if isinstance(value, ast.Call) and self._helper_target(value) is not None:
            self._call(value)  # a helper called for its effect on the keys; its result, if any, unused
            return
        if isinstance(value, ast.Call) and self._is_header_call(value):
            self.header(value)
            return
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return  # a string used as a comment
        if not isinstance(value, ast.Constant):
            self.expr(value)  # `print(x)`, `yield`, `(x := 1)`: name the construct, not "no effect"
        self.fail(stmt, "this expression has no effect", hint="only `pkt.header(...)` may stand alone, to require bytes", kind=UnsupportedError)

    def visit_Pass(self, stmt: ast.Pass) -> None:
        """`pass`."""
        return

    # -- assignment -------------------------------------------------------

    def visit_Assign(self, stmt: ast.Assign) -> None:
        """`target = value` with one target."""
        if len(stmt.targets) != 1:
            self.fail(stmt, "chained assignment (`a = b = ...`) is not supported", kind=UnsupportedError)
        self._assign(stmt, stmt.targets[0], stmt.value, None)

    def visit_AnnAssign(self, stmt: ast.AnnAssign) -> None:
        """`name: type = value`."""
        if stmt.value is None:
            self.fail(stmt, "a declaration needs a value: `x: u16 = 0`", kind=UnsupportedError)
        self._assign(stmt, stmt.target, stmt.value, stmt.annotation)

    def visit_AugAssign(self, stmt: ast.AugAssign) -> None:
        """`target op= value`, as `target = target op value`."""
        # `t op= v` is `t = t op v`. The operation is lowered as that BinOp, made
        # here and kept out of the user's tree; its type is recorded under the
        # statement, where the CPython run (pyinstrument) desugars it the same way.
        target = stmt.target
        binop = ast.copy_location(ast.BinOp(left=as_load(target), op=stmt.op, right=stmt.value), stmt)
        ast.fix_missing_locations(binop)
        env, fn = self.scope.env, self.scope.fn
        if isinstance(target, ast.Name) and not (target.id in env.assigned or target.id in fn.params or target.id in env.headers):
            self.fail(target, f"`{target.id}` is used before it is assigned", kind=CompileNameError)
        self._assign(stmt, target, binop, None)
        ty = self.types.results.pop(binop, None)
        if ty is not None:
            self.types.results[stmt] = ty

    def _assign(self, stmt: ast.stmt, target: ast.expr, value: ast.expr, annotation: ast.expr | None) -> None:
        """Store `value` into a keys field, a tuple of locals, or one local (header or integer)."""
        if isinstance(target, ast.Attribute):
            if annotation is not None:
                self.fail(target, "only local names can be annotated", kind=UnsupportedError)
            self._store_attribute(target, value, self.expr(value))
            return
        if isinstance(target, ast.Tuple) and annotation is None:
            self._unpack(stmt, target, value)
            return
        if not isinstance(target, ast.Name):
            self.unsupported(target)
        name = target.id
        if name in self.scope.fn.params:
            self.fail(target, f"cannot assign to the parameter `{name}`", kind=CompileNameError)
        declared = self._declared_type(annotation) if annotation is not None else None
        result = self.expr(value)
        if isinstance(result, HeaderView):
            self._bind_header(target, result, annotation, declared)
            return
        if isinstance(result, BytesView):
            self.fail(
                value,
                f"`{ast.unparse(value)}` is {result.size} opaque bytes, not an integer",
                hint="copy it straight into a keys field of the same size: `keys.ipv6_src = ip6.saddr`",
                kind=CompileTypeError,
            )
        if not isinstance(result, Value):
            self.fail(value, f"`{ast.unparse(value)}` is not an integer value", kind=CompileTypeError)
        if isinstance(declared, type):
            assert annotation is not None
            self.fail(annotation, f"`{name}` is declared as a header but assigned an integer", kind=CompileTypeError)
        self._assign_local(stmt, target, result, annotation if declared is not None else None, self.span(stmt), declared=declared, value_node=value)

    def _bind_header(self, target: ast.Name, view: HeaderView, annotation: ast.expr | None, declared: IntTy | type[Header] | None) -> None:
        """`name = pkt.header(...)`: the name refers to the header on this path."""
        name = target.id
        if declared is not None and declared is not view.kind:
            assert annotation is not None
            self.fail(annotation, f"`{name}` is declared `{ast.unparse(annotation)}` but holds {article(view.kind.__name__)} header", kind=CompileTypeError)
        if name in self.scope.fn.local_types:
            self.fail(target, f"`{name}` holds an integer; it cannot also hold {article(view.kind.__name__)} header", kind=CompileTypeError)
        self.scope.env.headers[name] = view

    def _unpack(self, stmt: ast.stmt, target: ast.Tuple, value: ast.expr) -> None:
        """`a, b = helper(...)` for a helper annotated `-> tuple[...]`."""
        result = self.expr(value) if isinstance(value, ast.Call) else None
        if not isinstance(result, TupleValue):
            self.fail(value, "only the result of a helper annotated `-> tuple[...]` can be unpacked", kind=UnsupportedError)
        if len(target.elts) != len(result.items):
            self.fail(target, f"`{ast.unparse(value)}` returns {len(result.items)} values, not {len(target.elts)}", kind=CompileTypeError)
        names: list[ast.Name] = []
        for elt in target.elts:
            if not isinstance(elt, ast.Name):
                self.fail(elt, "unpack into plain local names", kind=UnsupportedError)
            if elt.id in self.scope.fn.params:
                self.fail(elt, f"cannot assign to the parameter `{elt.id}`", kind=CompileNameError)
            names.append(elt)
        tys: list[IntTy] = []
        for elt, item in zip(names, result.items, strict=True):
            self._assign_local(None, elt, item, None, self.span(stmt), value_node=value)
            tys.append(self.scope.fn.local_types[elt.id])
        self.types.unpacks[stmt] = tuple(tys)

    def _assign_local(
        self, stmt: ast.stmt | None, target: ast.Name, result: Value, annotation: ast.expr | None, span: Span,
        *, declared: IntTy | None = None, value_node: ast.expr | None = None,
    ) -> None:
        """`name = result` for an integer local, narrowed to the local's type."""
        name = target.id
        if name in self.scope.env.headers:
            self.fail(target, f"`{name}` holds a header; it cannot also hold an integer", kind=CompileTypeError)
        ty = self.scope.fn.local_types.get(name)
        if declared is not None:
            if ty is not None and ty != declared:
                assert annotation is not None
                self.fail(annotation, f"`{name}` already has type `{ty}`", hint="a local keeps one type; use another name", kind=CompileTypeError)
            ty = declared
        if ty is None:
            ty = semantics.local_type(result, self.span(value_node or target))
        elif value_node is not None:
            semantics.check_literal(result, ty, self.span(value_node), f"`{name}`")
        reg = self.scope.local(name, ty)
        if stmt is not None:
            self.types.stores[stmt] = ty
        semantics.narrow_into(self.b, reg, result, ty, span)
        codes = semantics.constants(result)
        self.scope.assigned(name, semantics.wrapped(codes, ty) if codes else None)

    def _declared_type(self, annotation: ast.expr) -> IntTy | type[Header]:
        """The integer type or header class an annotation declares."""
        obj = self._resolve_annotation(annotation)
        if isinstance(obj, type) and issubclass(obj, FixedInt) and obj in FROM_PYFD:
            return FROM_PYFD[obj]
        if isinstance(obj, type) and issubclass(obj, Header) and obj is not Header:
            return obj
        if obj is int:
            return U64
        if obj is bool:
            return BOOL
        self.fail(annotation, f"unsupported type `{ast.unparse(annotation)}`", hint="use u8, u16, u32, u64, i32, i64 or a header class", kind=CompileTypeError)

    def _store_attribute(self, target: ast.Attribute, value: ast.expr, result: Meaning) -> None:
        """`keys.field = value`; anything else with a dot is refused."""
        base = self._name_binding(target.value) if isinstance(target.value, ast.Name) else None
        if isinstance(base, HeaderView):
            self.fail(target, "packet headers are read-only: a flow dissector cannot write the packet", kind=CompileTypeError)
        if not (isinstance(base, Param) and base.kind == "keys"):
            self.fail(target, f"cannot assign to `{ast.unparse(target)}`", hint="only fields of the keys parameter can be assigned", kind=CompileNameError)
        fld = access.key_field(target.attr, self.span(target))
        access.store_keys(self.b, fld, result, self.span(target), self.span(value))
