"""The IR's text form: the printer (`print_function`); compiler/ir/parser.py reads it back.

A compile prints IR only for `--emit ir` and `--dump-after`, and never parses
it, so the parser and its lark grammar live apart and load only where IR
text is read (the tests, tools).
"""

from __future__ import annotations

from typing import assert_never

from ..diagnostics import Span
from .nodes import (
    AtomicMapValue, Binary, Branch, ByteSwap, CheckPacket, ConfigDef, Copy, Extend, Function, Instruction, Jump,
    LoadConfig, LoadKeys, LoadMapValue, LoadPacket, MapDef, MapDelete, MapLookup, MapUpdate, Return, SetCond,
    StoreKeys, StoreMapValue, Terminator, Unary,
)

_SIZE_NAME = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}


def format_span(span: Span, file: str | None = None) -> str:
    """`@line:col-end_line:end_col`, prefixed by `"file":` when the span is in another file than `file`."""
    where = f'"{span.file}":' if file is not None and span.file != file else ""
    return f"@{where}{span.line}:{span.col}-{span.end_line}:{span.end_col}"


def format_insn(node: Instruction | Terminator) -> str:
    """One instruction or terminator, without its span."""
    match node:
        case Copy(dst, src):
            return f"{dst} = copy {src}"
        case Binary(op, dst, lhs, rhs):
            return f"{dst} = {op.value} {lhs}, {rhs}"
        case Unary(op, dst, src):
            return f"{dst} = {op.value} {src}"
        case Extend(signed, bits, dst, src):
            return f"{dst} = {'s' if signed else 'z'}ext{bits} {src}"
        case ByteSwap(bits, dst, src):
            return f"{dst} = bswap{bits} {src}"
        case SetCond(cmp, dst, lhs, rhs):
            return f"{dst} = setcond {cmp.value} {lhs}, {rhs}"
        case LoadKeys(dst, offset, size):
            return f"{dst} = keys.load {_SIZE_NAME[size]} +{offset}"
        case StoreKeys(offset, size, src):
            return f"keys.store {_SIZE_NAME[size]} +{offset}, {src}"
        case LoadPacket(dst, base, disp, size, window=window):
            return f"{dst} = packet.load {_SIZE_NAME[size]} [{base} + {disp}]{_window(window)}"
        case MapLookup(dst, name, key):
            return f"{dst} = map.lookup {name}, {key}"
        case MapUpdate(name, key, value, flags):
            return f"map.update {name}, {key}, {value}, {flags}"
        case MapDelete(name, key):
            return f"map.delete {name}, {key}"
        case LoadMapValue(dst, ptr, size):
            return f"{dst} = map.load {_SIZE_NAME[size]} [{ptr}]"
        case StoreMapValue(ptr, size, src):
            return f"map.store {_SIZE_NAME[size]} [{ptr}], {src}"
        case AtomicMapValue(op, ptr, size, src):
            return f"map.atomic {op.value} {_SIZE_NAME[size]} [{ptr}], {src}"
        case LoadConfig(dst, offset, size):
            return f"{dst} = config.load {_SIZE_NAME[size]} +{offset}"
        case Jump(target):
            return f"jump {target}"
        case Branch(cmp, lhs, rhs, then, otherwise):
            return f"br {cmp.value} {lhs}, {rhs}, {then}, {otherwise}"
        case CheckPacket(base, size, ok, fail, window=window):
            return f"check.packet [{base} + {size}]{_window(window)}, {ok}, {fail}"
        case Return(value):
            return f"ret {value}"
        case _:
            assert_never(node)


def _window(window: int | None) -> str:
    return "" if window is None else f" window {window}"


def format_map(m: MapDef) -> str:
    """A map declaration: `map NAME KIND KEY VALUE MAX_ENTRIES`."""
    return f"map {m.name} {m.kind.value} {m.key} {m.value} {m.max_entries}"


def format_config(c: ConfigDef) -> str:
    """A load-time constant's declaration: `config NAME TYPE +OFFSET = DEFAULT`."""
    return f"config {c.name} {c.type} +{c.offset} = {c.default}"


def print_function(fn: Function, *, spans: bool = True) -> str:
    """The text form of a function; `parser.parse_functions` reads it back."""
    head = f'func {fn.name} "{fn.file}"'
    lines = [head + (f" {format_span(fn.span)}" if spans else "") + " {"]
    lines.extend(f"    {format_map(m)}" for m in fn.maps)
    lines.extend(f"    {format_config(c)}" for c in fn.configs)
    for block in fn.blocks:
        lines.append(f"{block.label}:")
        for node in [*block.insns, block.term]:
            text = "    " + format_insn(node)
            if spans:
                text = f"{text:<52} {format_span(node.span, fn.file)}"
            lines.append(text)
    lines.append("}")
    return "\n".join(lines) + "\n"
