"""A mypy plugin that reads pyfd's annotations as the values a dissector computes with.

Enable it in the mypy configuration of a project with dissectors:

    [tool.mypy]
    plugins = ["pyfd.mypy_plugin"]

Two things a dissector writes are not types to a checker on its own:

- `ihl: Bits[4]` and `dst: Bytes[6]` in a header class: a width, not a type,
  in the brackets. Reading such a field gives an int (`Bits[N]`) or the
  field's bytes (`Bytes[N]`), so that is what the plugin makes of them; a
  width outside 1..64 is an error here as it is at import.
- `VXLAN_PORT = Config(u16, 4789)`: a load-time constant, which a dissector
  reads as an integer of its type, so the plugin gives the call's result
  the type int.
- `x: u16 = keys.nhoff + 4` and `-> tuple[u8, u16]` returning `BPF_DROP, 0`:
  in a dissector a typed local, result or parameter narrows whatever int is
  stored into it (pyfd.types), so an int is what such an annotation holds.
  The classes themselves stay classes: `u16(x)` is a cast, `u16.max()` a
  method.

mypy imports this module by name; it imports nothing of pyfd, and needs mypy
only when mypy loads it.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.errorcodes import VALID_TYPE
from mypy.plugin import AnalyzeTypeContext, FunctionContext, Plugin
from mypy.types import RawExpressionType, Type

# The annotations that hold a plain int in a dissector (pyfd/types.py).
INT_ANNOTATIONS = frozenset(f"pyfd.types.{name}" for name in ("u8", "u16", "u32", "u64", "i32", "i64"))
# The width annotations of header fields (pyfd/layout.py) and the type a read gives.
WIDTH_ANNOTATIONS = {"pyfd.layout.Bits": "builtins.int", "pyfd.layout.Bytes": "builtins.bytes"}
# Declarations a dissector reads as an int (pyfd/maps.py).
INT_VALUED_CALLS = frozenset({"pyfd.maps.Config"})
MAX_WIDTH = 64  # Bits[N] and Bytes[N] take 1..64, as layout._BitsType and _BytesType check at import


def _as_int(ctx: AnalyzeTypeContext) -> Type:
    if ctx.type.args:
        ctx.api.fail(f'"{ctx.type.name}" takes no type arguments', ctx.context, code=VALID_TYPE)
    return ctx.api.named_type("builtins.int", [])


def _int_result(ctx: FunctionContext) -> Type:
    return ctx.api.named_generic_type("builtins.int", [])


def _width(result: str) -> Callable[[AnalyzeTypeContext], Type]:
    def analyze(ctx: AnalyzeTypeContext) -> Type:
        args = ctx.type.args
        name = ctx.type.name.rpartition(".")[2]
        width = args[0].literal_value if len(args) == 1 and isinstance(args[0], RawExpressionType) else None
        if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= MAX_WIDTH:
            ctx.api.fail(f'"{name}[N]" takes one integer from 1 to {MAX_WIDTH}, as in {name}[4]', ctx.context, code=VALID_TYPE)
        return ctx.api.named_type(result, [])

    return analyze


class PyfdPlugin(Plugin):
    """Integer annotations are ints; `Bits[N]` is an int and `Bytes[N]` bytes; a Config is an int."""

    def get_type_analyze_hook(self, fullname: str) -> Callable[[AnalyzeTypeContext], Type] | None:
        """The analysis of one of pyfd's annotations, or None for any other name."""
        if fullname in INT_ANNOTATIONS:
            return _as_int
        result = WIDTH_ANNOTATIONS.get(fullname)
        return _width(result) if result is not None else None

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        """`Config(...)` gives an int (what the dissector reads); None for any other call."""
        return _int_result if fullname in INT_VALUED_CALLS else None


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point: the plugin class, for any mypy version."""
    return PyfdPlugin
