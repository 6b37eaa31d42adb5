"""The IR's text form: a printer and a lark parser that reads it back."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import assert_never

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from ..diagnostics import CompileError, Span
from .nodes import (
    AtomicMapValue, AtomicOp, Binary, BinaryOp, Block, Branch, ByteSwap, CheckPacket, Cmp, ConfigDef, Copy,
    Extend, Function, Imm, Instruction, Jump, LoadConfig, LoadKeys, LoadMapValue, LoadPacket, MapDef,
    MapDelete, MapKind, MapLookup, MapUpdate, Operand, Reg, Return, SetCond, StoreKeys, StoreMapValue,
    Terminator, Unary, UnaryOp,
)

_SIZE_NAME = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}
_NAME_SIZE = {v: k for k, v in _SIZE_NAME.items()}


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
        case LoadPacket(dst, base, disp, size):
            return f"{dst} = packet.load {_SIZE_NAME[size]} [{base} + {disp}]"
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
        case CheckPacket(base, size, ok, fail):
            return f"check.packet [{base} + {size}], {ok}, {fail}"
        case Return(value):
            return f"ret {value}"
        case _:
            assert_never(node)


def format_map(m: MapDef) -> str:
    """A map declaration: `map NAME KIND KEY VALUE MAX_ENTRIES`."""
    return f"map {m.name} {m.kind.value} {m.key} {m.value} {m.max_entries}"


def format_config(c: ConfigDef) -> str:
    """A load-time constant's declaration: `config NAME TYPE +OFFSET = DEFAULT`."""
    return f"config {c.name} {c.type} +{c.offset} = {c.default}"


def print_function(fn: Function, *, spans: bool = True) -> str:
    """The text form of a function; `parse_functions` reads it back."""
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


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


class _Build:
    """Turns the parse tree into IR nodes, walking it top down; nodes without `@loc` get their IR text position."""

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.file = source_name

    def _span(self, meta: object, loc: Span | None) -> Span:
        if loc is not None:
            return loc if loc.file else Span(self.file, loc.line, loc.col, loc.end_line, loc.end_col)
        line = getattr(meta, "line", 0)
        col = getattr(meta, "column", 1) - 1
        return Span(self.source_name, line, col, getattr(meta, "end_line", line), getattr(meta, "end_column", 1) - 1)

    @staticmethod
    def _operand(tok: Token | Reg) -> Operand:
        if isinstance(tok, Token) and tok.type == "REG":
            return Reg(str(tok)[1:])
        text = str(tok)
        # Base 10 unless `0x`: int(text, 0) would refuse a decimal with a
        # leading zero ("08") with a ValueError instead of reading it.
        return Imm(int(text, 16 if "0x" in text.lower() else 10))

    def loc(self, items: list[Token]) -> Span:
        """A `@loc` annotation's span."""
        file = str(items[0])[1:-1] if len(items) == 5 else ""  # a span in an inlined helper's file; "" the function's
        line, col, end_line, end_col = (int(t) for t in items[-4:])
        return Span(file, line, col, end_line, end_col)

    def _node(self, tree: Tree, loc: Span | None) -> Instruction | Terminator:  # type: ignore[type-arg]
        k, items, meta = tree.data, tree.children, tree.meta
        span = self._span(meta, loc)
        op = self._operand
        match k:
            case "copy":
                return Copy(Reg(items[0][1:]), op(items[1]), span)
            case "binary":
                return Binary(BinaryOp(str(items[1])), Reg(items[0][1:]), op(items[2]), op(items[3]), span)
            case "unary":
                return Unary(UnaryOp(str(items[1])), Reg(items[0][1:]), op(items[2]), span)
            case "extend":
                text = str(items[1])
                return Extend(text[0] == "s", int(text[4:]), Reg(items[0][1:]), op(items[2]), span)
            case "bswap":
                return ByteSwap(int(str(items[1])[5:]), Reg(items[0][1:]), op(items[2]), span)
            case "setcond":
                return SetCond(Cmp(str(items[1])), Reg(items[0][1:]), op(items[2]), op(items[3]), span)
            case "kload":
                return LoadKeys(Reg(items[0][1:]), int(items[2]), _NAME_SIZE[str(items[1])], span)
            case "kstore":
                return StoreKeys(int(items[1]), _NAME_SIZE[str(items[0])], op(items[2]), span)
            case "pload":
                return LoadPacket(Reg(items[0][1:]), op(items[2]), int(items[3]), _NAME_SIZE[str(items[1])], span)
            case "mlookup":
                return MapLookup(Reg(items[0][1:]), str(items[1]), op(items[2]), span)
            case "mupdate":
                return MapUpdate(str(items[0]), op(items[1]), op(items[2]), int(items[3]), span)
            case "mdelete":
                return MapDelete(str(items[0]), op(items[1]), span)
            case "mload":
                return LoadMapValue(Reg(items[0][1:]), Reg(items[2][1:]), _NAME_SIZE[str(items[1])], span)
            case "mstore":
                return StoreMapValue(Reg(items[1][1:]), _NAME_SIZE[str(items[0])], op(items[2]), span)
            case "matomic":
                return AtomicMapValue(AtomicOp(str(items[0])), Reg(items[2][1:]), _NAME_SIZE[str(items[1])], op(items[3]), span)
            case "cload":
                return LoadConfig(Reg(items[0][1:]), int(items[2]), _NAME_SIZE[str(items[1])], span)
            case "jump":
                return Jump(str(items[0]), span)
            case "branch":
                return Branch(Cmp(str(items[0])), op(items[1]), op(items[2]), str(items[3]), str(items[4]), span)
            case "check":
                return CheckPacket(op(items[0]), int(items[1]), str(items[2]), str(items[3]), span)
            case "ret":
                return Return(int(items[0]), span)
        raise TypeError(k)

    def build_function(self, tree: Tree) -> Function:  # type: ignore[type-arg]
        """A Function from a `function` subtree."""
        name, file_tok, *rest = tree.children
        self.file = str(file_tok)[1:-1]
        fn_loc = None
        if rest and isinstance(rest[0], Tree) and rest[0].data == "loc":
            fn_loc = self.loc(rest.pop(0).children)
        maps = [MapDef(str(d.children[0]), MapKind(str(d.children[1])), str(d.children[2]), str(d.children[3]), int(d.children[4]))
                for d in rest if d.data == "mapdecl"]
        configs = [ConfigDef(str(d.children[0]), str(d.children[1]), int(d.children[2]), int(str(d.children[3]), 0))
                   for d in rest if d.data == "configdecl"]
        blocks = [self.build_block(b) for b in rest if b.data == "block"]
        span = self._span(tree.meta, fn_loc)
        return Function(str(name), self.file, blocks, span, maps=tuple(maps), configs=tuple(configs))

    def build_block(self, tree: Tree) -> Block:  # type: ignore[type-arg]
        """A Block from a `block` subtree; the last node is the terminator."""
        label, *nodes = tree.children
        built: list[Instruction | Terminator] = []
        for node in nodes:
            loc = None
            if node.data in ("insn", "term"):
                node, *extra = node.children
                loc = self.loc(extra[0].children) if extra else None
            built.append(self._node(node, loc))
        *insns, term = built
        return Block(str(label), insns, term)  # type: ignore[arg-type]


def _parse_tree(text: str, source_name: str) -> Tree:  # type: ignore[type-arg]
    try:
        return _parser().parse(text)
    except LarkError as exc:
        line = getattr(exc, "line", 0) or 0
        col = max(0, (getattr(exc, "column", 1) or 1) - 1)
        first = str(exc).strip().splitlines()[0]
        raise CompileError(f"invalid IR: {first}", Span(source_name, line, col, line, col + 1)) from None


def parse_functions(text: str, *, source_name: str = "<ir>") -> list[Function]:
    """Parse the IR text form; errors are CompileErrors located in the text."""
    tree = _parse_tree(text, source_name)
    builder = _Build(source_name)
    return [builder.build_function(f) for f in tree.children]


def parse_function(text: str, *, source_name: str = "<ir>") -> Function:
    """Parse exactly one function."""
    tree = _parse_tree(text, source_name)
    if len(tree.children) != 1:
        extra = tree.children[1].meta
        where = Span(source_name, extra.line, extra.column - 1, extra.line, extra.column + 3)
        raise CompileError(f"expected one function, found {len(tree.children)}", where)
    return _Build(source_name).build_function(tree.children[0])
