"""The syntax of maps and load-time constants: the visitors that find them in the tree.

A map or a `Config` is a module-level name (or a module's attribute), so
every use is found from the tree alone, before anything is lowered:
`m.get(k, d)`, `k in m`, `a[i]`, `m[k] = v`, `m[k] += v`, `del m[k]`, and a
`Config` read as a value. This class extends the statement walk with them
and hands the meaning to `maps`; anything else it leaves to the classes
below it. What it found is recorded in the `TypeRecord` for the Python run
(`state_refs`, `map_stmts`).
"""

from __future__ import annotations

import ast
import types
from typing import Any

from pyfd.maps import Config, MapDeclaration

from ..diagnostics import CompileTypeError, MapAccessError, Span, UnsupportedError
from ..ir.nodes import Copy, Imm, Jump, MapKind, Operand
from ..source import FunctionSource
from ..typesys import BOOL
from . import maps
from .maps import ConfigEntry, MapEntry, MapTable
from .semantics import Meaning, Value
from .statements import StatementLowering

# `m[k] op= v`: the operators BPF_ATOMIC has (see maps.AUGMENTED).
_AUGMENTED_OPS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^"}
_MAP_HINT = "read an element: `m.get(key, 0)`, `key in m`, or `m[index]` of an array"


class MapLowering(StatementLowering):
    """Statements and expressions on maps and Configs."""

    def __init__(self, source: FunctionSource, trees: dict[tuple[str, str], ast.Module] | None = None) -> None:
        super().__init__(source, trees)
        self.map_table = MapTable(self.trees)

    def discover_maps(self) -> None:
        """Take every map and Config the dissector's module declares (they are in its object, used or not)."""
        self.map_table.discover(self.root.globals)

    # -- finding them -------------------------------------------------------

    def _global_object(self, node: ast.AST) -> tuple[str, Any] | None:
        """The module-level object a Name (or a module's attribute) refers to, without lowering anything."""
        fn = self.scope.fn
        if isinstance(node, ast.Name):
            name = node.id
            if name in fn.params or name in fn.stored or name in fn.local_types or name in fn.env.headers or name not in self.src.globals:
                return None
            return name, self.src.globals[name]
        if isinstance(node, ast.Attribute):
            owner = self._global_object(node.value)
            if owner is not None and isinstance(owner[1], types.ModuleType) and hasattr(owner[1], node.attr):
                return node.attr, getattr(owner[1], node.attr)
        return None

    def _map_at(self, node: ast.AST) -> MapEntry | None:
        """The map `node` names, if it names one (recorded for the Python run)."""
        found = self._global_object(node)
        if found is None or not isinstance(found[1], MapDeclaration):
            return None
        entry = self.map_table.map(found[1], found[0], self.span(node))
        self.types.state_refs[node] = ("maps", entry.name)
        return entry

    def _config_at(self, node: ast.AST) -> ConfigEntry | None:
        """The Config `node` names, if it names one (recorded for the Python run)."""
        found = self._global_object(node)
        if found is None or not isinstance(found[1], Config):
            return None
        entry = self.map_table.config(found[1], found[0], self.span(node))
        self.types.state_refs[node] = ("config", entry.name)
        return entry

    def _refuse_map_value(self, node: ast.AST) -> None:
        """A map where an integer is wanted: refused by name."""
        found = self._global_object(node)
        if found is not None and isinstance(found[1], MapDeclaration):
            self.fail(node, f"`{ast.unparse(node)}` is a map, not an integer", hint=_MAP_HINT, kind=CompileTypeError)

    def _map_operand(self, node: ast.AST) -> MapEntry:
        """The map a subscript, a call or `in` operates on; anything else there is not supported."""
        entry = self._map_at(node)
        if entry is None:
            self.fail(
                node, f"`{ast.unparse(node)}` is not a map",
                hint="maps are module-level HashMap, Array or PerCPUArray declarations", kind=CompileTypeError,
            )
        return entry

    # -- Config reads -------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> Meaning:
        """A Config reads as a value of its type; anything else as before."""
        entry = self._config_at(node)
        if entry is not None:
            return maps.read_config(self.b, entry, self.span(node))
        return super().visit_Name(node)

    def visit_Attribute(self, node: ast.Attribute) -> Meaning:
        """A Config of another module (`settings.PORT`); a map's method outside a call is refused."""
        entry = self._config_at(node)
        if entry is not None:
            return maps.read_config(self.b, entry, self.span(node))
        if self._map_at(node.value) is not None:
            self.fail(
                node, f"`{ast.unparse(node)}` is not supported",
                hint="call `.get(key, default)` on a map, or use `key in m`, `m[k]`", kind=UnsupportedError,
            )
        return super().visit_Attribute(node)

    # -- where an integer is wanted -------------------------------------------

    def int_expr(self, node: ast.expr) -> Value:
        """An integer; a map named here is refused by name."""
        self._refuse_map_value(node)
        return super().int_expr(node)

    # -- keys and indices ---------------------------------------------------

    def _key(self, entry: MapEntry, node: ast.expr) -> Operand:
        """The key of a hash map, or an array index the compiler proves in range."""
        value = self.int_expr(node)
        if entry.kind is MapKind.HASH:
            return maps.hash_key(entry, value, self.span(node))
        return maps.bounded_index(entry, value, ast.unparse(node), self.span(node))

    # -- expressions --------------------------------------------------------

    def visit_Subscript(self, node: ast.Subscript) -> Value:
        """`a[i]`: an array element, `i` proven in range; reading a hash map this way is refused."""
        entry = self._map_at(node.value)
        if entry is None:
            self.unsupported(node)
        if entry.kind is MapKind.HASH:
            self.fail(
                node,
                f"`{ast.unparse(node)}` reads a hash map, whose key may be absent",
                hint=f"use `{ast.unparse(node.value)}.get(key, default)`, or test `key in {ast.unparse(node.value)}` first",
                kind=MapAccessError,
            )
        index = self._key(entry, node.slice)
        return maps.read(self.b, entry, index, self.span(node))

    def _call(self, node: ast.Call, *, tail: bool = False) -> Meaning | None:
        """`m.get(key, default)`; other calls as before."""
        func = node.func
        if isinstance(func, ast.Attribute):
            entry = self._map_at(func.value)
            if entry is not None:
                return self._map_method(node, func, entry)
        return super()._call(node, tail=tail)

    def _map_method(self, node: ast.Call, func: ast.Attribute, entry: MapEntry) -> Value:
        """A method call on a map: `.get(key, default)` is the only one."""
        if func.attr != "get":
            self.fail(
                func, f"maps have no method `{func.attr}` in a dissector",
                hint="use `.get(key, default)`, `key in m`, `m[k] = v`, `m[k] += v`, `del m[k]`", kind=UnsupportedError,
            )
        if node.keywords or len(node.args) != 2:
            self.fail(node, f"`{ast.unparse(func)}` takes two arguments: the key and the value to give when it is absent", kind=CompileTypeError)
        key_node, default_node = node.args
        key = self.int_expr(key_node)
        default = self.int_expr(default_node)
        maps.literal_fits(default, entry.value_ty, self.span(default_node), f"a value of `{entry.name}`")
        return maps.get(self.b, entry, key, default, self.span(key_node), self.span(node))

    # -- membership ---------------------------------------------------------

    def _membership(self, node: ast.AST) -> tuple[MapEntry, ast.expr, bool] | None:
        """For `k in m` / `k not in m` with a map on the right: the map, the key and whether it is `not in`."""
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn))):
            return None
        entry = self._map_at(node.comparators[0])
        if entry is None:
            return None  # refused below, as any `in`
        return entry, node.left, isinstance(node.ops[0], ast.NotIn)

    def cond(self, node: ast.expr, true: str, false: str) -> None:
        """`k in m` as control flow; other conditions as before."""
        found = self._membership(node)
        if found is None:
            super().cond(node, true, false)
            return
        entry, key_node, negated = found
        if negated:
            true, false = false, true
        key = self.int_expr(key_node)
        maps.contains(self.b, entry, key, self.span(key_node), self.span(node), true, false)

    def _materialize_bool(self, node: ast.expr) -> Value:
        """`k in m` used as a value: 1 or 0."""
        if self._membership(node) is None:
            return super()._materialize_bool(node)
        span = self.span(node)
        dst = self.b.fresh("b")
        yes, no, join = self.b.new_block("true"), self.b.new_block("false"), self.b.new_block("bool")
        self.cond(node, yes, no)
        for label, bit in ((yes, 1), (no, 0)):
            self.b.position(label)
            self.b.emit(Copy(dst, Imm(bit), span))
            self.b.terminate(Jump(join, span))
        self.b.position(join)
        return Value(dst, BOOL)

    # -- statements ---------------------------------------------------------

    def _assign(self, stmt: ast.stmt, target: ast.expr, value: ast.expr, annotation: ast.expr | None) -> None:
        """`m[k] = v`; a map assigned to a name is refused by name; other assignments as before."""
        if not isinstance(target, ast.Subscript):
            self._refuse_map_value(value)
            super()._assign(stmt, target, value, annotation)
            return
        entry = self._map_at(target.value)
        if entry is None:
            self.unsupported(target)
        if annotation is not None:
            self.fail(target, "only local names can be annotated", kind=UnsupportedError)
        # Python evaluates the value before the target's key: so does the program.
        result = self.int_expr(value)
        maps.literal_fits(result, entry.value_ty, self.span(value), f"a value of `{entry.name}`")
        key = self._key(entry, target.slice)
        maps.store(self.b, entry, key, result, self.span(stmt))
        self.types.map_stmts[stmt] = "store"

    def visit_AugAssign(self, stmt: ast.AugAssign) -> None:
        """`m[k] op= v` on a map element (atomic but on a per-CPU array); other targets as before."""
        target = stmt.target
        if not isinstance(target, ast.Subscript):
            super().visit_AugAssign(stmt)
            return
        entry = self._map_at(target.value)
        if entry is None:
            self.unsupported(target)
        symbol = _AUGMENTED_OPS.get(type(stmt.op))
        if symbol is None:
            self.fail(
                stmt, "this operator cannot update a map element",
                hint="map elements take `+=`, `-=`, `|=`, `&=` and `^=` (BPF's atomic operations)", kind=UnsupportedError,
            )
        key = self._key(entry, target.slice)
        operand = self.int_expr(stmt.value)
        maps.augment(self.b, entry, key, symbol, operand, self.span(stmt), self.span(stmt.value))
        self.types.map_stmts[stmt] = "augment"

    def visit_Delete(self, stmt: ast.Delete) -> None:
        """`del m[k]` of a hash map; arrays keep every element."""
        for target in stmt.targets:
            entry = self._map_at(target.value) if isinstance(target, ast.Subscript) else None
            if entry is None:
                self.unsupported(stmt)
            assert isinstance(target, ast.Subscript)
            if entry.kind is not MapKind.HASH:
                self.fail(
                    target,
                    f"the elements of `{entry.name}` cannot be deleted: an array has every index (the kernel refuses with EINVAL)",
                    hint="assign 0 instead",
                    kind=MapAccessError,
                )
            key = self._key(entry, target.slice)
            maps.delete(self.b, entry, key, self.span(target))
        self.types.map_stmts[stmt] = "delete"

    # -- the result ---------------------------------------------------------

    def map_definitions(self, program: str, span: Span) -> tuple[dict[str, Any], dict[str, Any]]:
        """The declarations found, by name (maps, then Configs), checked against the program's name."""
        self.map_table.check_symbols(program, span)
        return (
            {name: e.declaration for name, e in self.map_table.maps.items()},
            {name: e.declaration for name, e in self.map_table.configs.items()},
        )
