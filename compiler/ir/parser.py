"""The parser of the IR's text form (a lark grammar, grammar.lark): text in, `Function`s out.

Kept apart from the printer (text.py) so that compiling, which prints IR at
most and never reads it, does not load lark and its grammar.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from ..diagnostics import CompileError, Span
from .nodes import (
    AtomicMapValue, AtomicOp, Binary, BinaryOp, Block, Branch, ByteSwap, CheckPacket, Cmp, ConfigDef, Copy,
    Extend, Function, Imm, Instruction, Jump, LoadConfig, LoadKeys, LoadMapValue, LoadPacket, MapDef,
    MapDelete, MapKind, MapLookup, MapUpdate, Operand, Reg, Return, SetCond, StoreKeys, StoreMapValue,
    Terminator, Unary, UnaryOp,
)

_NAME_SIZE = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}  # the sizes as the printer names them (text.py)


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

    def _insn(self, tree: Tree[Token], loc: Span | None) -> Instruction:
        (items, window), span, op = _with_window(tree), self._span(tree.meta, loc), self._operand
        k = tree.data
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
                return LoadPacket(Reg(items[0][1:]), op(items[2]), int(items[3]), _NAME_SIZE[str(items[1])], span, window)
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
        raise TypeError(k)

    def _term(self, tree: Tree[Token], loc: Span | None) -> Terminator:
        (items, window), span, op = _with_window(tree), self._span(tree.meta, loc), self._operand
        k = tree.data
        match k:
            case "jump":
                return Jump(str(items[0]), span)
            case "branch":
                return Branch(Cmp(str(items[0])), op(items[1]), op(items[2]), str(items[3]), str(items[4]), span)
            case "check":
                return CheckPacket(op(items[0]), int(items[1]), str(items[2]), str(items[3]), span, window)
            case "ret":
                return Return(int(items[0]), span)
        raise TypeError(k)

    def build_function(self, tree: Tree[Token]) -> Function:
        """A Function from a `function` subtree."""
        (name, file_tok), rest = _parts(tree)
        self.file = str(file_tok)[1:-1]
        fn_loc = None
        if rest and rest[0].data == "loc":
            fn_loc = self.loc(_tokens(rest.pop(0)))
        maps = [_map_def(_tokens(d)) for d in rest if d.data == "mapdecl"]
        configs = [_config_def(_tokens(d)) for d in rest if d.data == "configdecl"]
        blocks = [self.build_block(b) for b in rest if b.data == "block"]
        span = self._span(tree.meta, fn_loc)
        return Function(str(name), self.file, blocks, span, maps=tuple(maps), configs=tuple(configs))

    def build_block(self, tree: Tree[Token]) -> Block:
        """A Block from a `block` subtree: instructions, then the terminator (the grammar's order)."""
        (label,), nodes = _parts(tree)
        located = [self._located(node) for node in nodes]
        insns = [self._insn(node, loc) for node, loc in located[:-1]]
        return Block(str(label), insns, self._term(*located[-1]))

    def _located(self, node: Tree[Token]) -> tuple[Tree[Token], Span | None]:
        """An instruction or terminator subtree and its `@loc` span, if it has one."""
        if node.data not in ("insn", "term"):  # no `loc`: the grammar inlined the rule
            return node, None
        _, (inner, *extra) = _parts(node)
        return inner, self.loc(_tokens(extra[0])) if extra else None


def _parts(tree: Tree[Token]) -> tuple[list[Token], list[Tree[Token]]]:
    """A subtree's tokens and its subtrees, each in order."""
    tokens: list[Token] = []
    trees: list[Tree[Token]] = []
    for child in tree.children:
        if isinstance(child, Token):
            tokens.append(child)
        else:
            trees.append(child)
    return tokens, trees


def _tokens(tree: Tree[Token]) -> list[Token]:
    """The children of a subtree the grammar builds of tokens alone (an instruction, a `loc`)."""
    tokens, trees = _parts(tree)
    if trees:
        raise TypeError(f"IR grammar: `{tree.data}` holds a subtree")
    return tokens


def _map_def(items: list[Token]) -> MapDef:
    """A `map NAME KIND KEY VALUE MAX_ENTRIES` declaration."""
    return MapDef(str(items[0]), MapKind(str(items[1])), str(items[2]), str(items[3]), int(items[4]))


def _config_def(items: list[Token]) -> ConfigDef:
    """A `config NAME TYPE +OFFSET = DEFAULT` declaration."""
    return ConfigDef(str(items[0]), str(items[1]), int(items[2]), int(str(items[3]), 0))


def _with_window(tree: Tree[Token]) -> tuple[list[Token], int | None]:
    """An instruction's tokens, and the number of its `window N` clause (None without one)."""
    tokens, trees = _parts(tree)
    if any(t.data != "window" for t in trees) or len(trees) > 1:
        raise TypeError(f"IR grammar: `{tree.data}` holds an unexpected subtree")
    return tokens, (int(_tokens(trees[0])[0]) if trees else None)


def _parse_tree(text: str, source_name: str) -> Tree[Token]:
    try:
        return _parser().parse(text)
    except LarkError as exc:
        line = getattr(exc, "line", 0) or 0
        col = max(0, (getattr(exc, "column", 1) or 1) - 1)
        first = str(exc).strip().splitlines()[0]
        raise CompileError(f"invalid IR: {first}", Span(source_name, line, col, line, col + 1)) from None


def parse_functions(text: str, *, source_name: str = "<ir>") -> list[Function]:
    """Parse the IR text form; errors are CompileErrors located in the text."""
    builder = _Build(source_name)
    return [builder.build_function(f) for f in _parts(_parse_tree(text, source_name))[1]]


def parse_function(text: str, *, source_name: str = "<ir>") -> Function:
    """Parse exactly one function."""
    functions = _parts(_parse_tree(text, source_name))[1]
    if len(functions) != 1:
        extra = functions[1].meta
        where = Span(source_name, extra.line, extra.column - 1, extra.line, extra.column + 3)
        raise CompileError(f"expected one function, found {len(functions)}", where)
    return _Build(source_name).build_function(functions[0])
