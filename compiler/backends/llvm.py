"""The llvm backend: checked IR to LLVM IR, optimised and compiled by LLVM through llvmlite.

`compile_llvm` writes the IR function as an LLVM module for the `bpfel`
target (`i32 @NAME(ptr %ctx)` in section `flow_dissector`, with debug
locations carrying the Python line and column of every IR node), runs LLVM's
pass pipeline for the optimisation level, emits an object with llvmlite's
target machine, and reads the program's code and its .BTF.ext line info back
out of that object. Each decoded instruction gets the Span of the IR node its
line info names, so listings show Python lines for this backend too. Nothing
here runs clang, llc or opt.

LLVM does not know the verifier. What the verifier needs, and how it is kept
through LLVM's optimisations, is written down where the IR is generated
(`_Lowering.prologue`, `.check`, `.divide`); the rules are those of
kernel/bpf/verifier.c (check_ctx_access, check_packet_access, find_good_pkt_pointers):

- the context is read only as `data` (u32 at 76), `data_end` (u32 at 80) and
  `flow_keys` (u64 at 144): volatile loads;
- a packet read goes through the very pointer (`data + base`) whose
  `ptr + size > data_end` check, an unsigned 64-bit pointer compare, proved
  the range; a variable base is first clamped to `0xffff - size`, on a value
  LLVM cannot see through (an empty inline asm), so that it can neither drop
  the clamp nor compare one copy of the base and add another;
- x / 0 == 0, x % 0 == x and shift counts masked with 63 are BPF's semantics
  and undefined behaviour in LLVM, so they are written out (a select on a
  zero divisor, an `and` of the count).

The object must hold nothing but the function and its references to the
maps and load-time constants (llvm_maps.py): any other relocation (a constant
pool, a lookup table) is an internal error, since pyfd's object file has
nothing for it to point at.
"""

from __future__ import annotations

import functools
import re
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, assert_never

from pyfd.abi import FLOW_DISSECTOR_SECTION as SECTION
from pyfd.abi import BPF_FUNC_SKB_LOAD_BYTES, MAX_BPF_STACK, MAX_PACKET_OFF, SKB_DATA, SKB_DATA_END, SKB_FLOW_KEYS
from pyfd.isa import SLOT_SIZE, Class, decode
from pyfd.isa import Instruction as BpfInstruction
from pyfd.objfile.btf import parse_btf_ext
from pyfd.objfile.elf import SHF, STT, ElfFormatError, read_elf

from ..diagnostics import BackendError, CompileError, InternalCompilerError, Span
from ..ir.analysis import reverse_postorder
from ..ir.windows import has_windows, window_layout
from ..ir.nodes import (
    AtomicMapValue,
    Binary,
    BinaryOp,
    Block,
    Branch,
    ByteSwap,
    CheckPacket,
    Cmp,
    Copy,
    Extend,
    Function,
    Imm,
    Instruction,
    Jump,
    LoadConfig,
    LoadKeys,
    LoadMapValue,
    LoadPacket,
    MapDelete,
    MapLookup,
    MapUpdate,
    Operand,
    Reg,
    Return,
    SetCond,
    StoreKeys,
    StoreMapValue,
    Terminator,
    Unary,
    UnaryOp,
    to_s64,
)
from .isolate import EX_SOFTWARE, ChildFailed, frame, run_isolated
from .llvm_maps import MapEmitter, resolve_relocations
from .result import CompiledCode

if TYPE_CHECKING:
    from llvmlite.binding import TargetMachine  # llvmlite is imported where it runs: the CLI starts without it

TRIPLE = "bpfel"
# The BPF data layout LLVM uses for bpfel (llvm/lib/Target/BPF/BPFTargetMachine.cpp).
DATA_LAYOUT = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
# cpu v4 with every v4 extension switched off but one: the code of cpu v3
# (32-bit jumps and ALU32) plus `gotol`, the jump with a 32-bit offset
# (BPF_JMP32 | BPF_JA, kernel 6.6+). Without it a branch over more than
# 32767 instructions is an LLVM fatal error ("Branch target out of insn
# range"); with it the BPF backend relaxes exactly those branches
# (BPFMIPreEmitPeephole). Named here so LLVM's default cannot change under us.
CPU = "v4"
_V4_OFF = ("ldsx", "movsx", "bswap", "sdiv-smod", "storeimm", "load-acq-store-rel", "gotox")
R10 = 10  # the read-only frame pointer

_ICMP = {
    Cmp.EQ: "eq", Cmp.NE: "ne", Cmp.UGT: "ugt", Cmp.UGE: "uge", Cmp.ULT: "ult", Cmp.ULE: "ule",
    Cmp.SGT: "sgt", Cmp.SGE: "sge", Cmp.SLT: "slt", Cmp.SLE: "sle",
}
_ARITH = {
    BinaryOp.ADD: "add", BinaryOp.SUB: "sub", BinaryOp.MUL: "mul", BinaryOp.AND: "and", BinaryOp.OR: "or",
    BinaryOp.XOR: "xor", BinaryOp.SHL: "shl", BinaryOp.LSHR: "lshr", BinaryOp.ASHR: "ashr",
}
_LLVM_IDENT = re.compile(r"[-a-zA-Z$._][-a-zA-Z$._0-9]*")
_VALUE = re.compile(r"%v\d+\b")


# --- SSA construction ------------------------------------------------------------------
#
# IR registers may be assigned more than once; LLVM values are assigned once.
# Values are built with the algorithm of Braun et al., "Simple and Efficient
# Construction of Static Single Assignment Form" (CC 2013): a read looks for
# the register's last definition in its block, then in its predecessors,
# placing a phi where paths join; trivial phis (all operands the same value)
# are removed at the end. No alloca is generated, so even -O0 code keeps IR
# registers in BPF registers rather than on the stack.
#
# The paper's read recurses into predecessors, once per block on the way back
# to a definition: 400 `if`s in a row are thousands of frames, past Python's
# recursion limit. Here a read walks single-predecessor chains in a loop and
# leaves the operands of each phi it places to a worklist, emptied before the
# read returns; a phi's name is known before its operands, so nothing waits.


@dataclass
class _Phi:
    name: str
    type: str
    block: str
    incoming: list[tuple[str, str]] = field(default_factory=list)  # (value, predecessor)


# A variable: an IR register (an i64), or the packet pointer `data + base` of a
# checked base register (a ptr).
# ("reg", register) is an i64; ("ptr", base) the packet pointer a check
# proved for a base; ("window", number) a window's bytes, packet or stack copy;
# ("ctx", name) data, data_end or the keys pointer (see `load_context`).
_Var = tuple[str, Operand | int | str]
_POINTERS = ("ptr", "window", "ctx")


class _Ssa:
    """Definitions per LLVM block, phis, and the value each removed phi stands for."""

    def __init__(self, new_name: Callable[[], str]) -> None:
        self.new_name = new_name
        self.preds: dict[str, list[str]] = {}
        self.defs: dict[str, dict[_Var, str]] = {}
        self.sealed: set[str] = set()
        self.incomplete: dict[str, dict[_Var, _Phi]] = {}
        self.phis: dict[str, _Phi] = {}
        self.alias: dict[str, str] = {}
        self.unfilled: list[tuple[_Phi, _Var]] = []  # phis placed whose operands are still to be read

    def write(self, var: _Var, block: str, value: str) -> None:
        self.defs.setdefault(block, {})[var] = value

    def read(self, var: _Var, block: str) -> str:
        """The value of `var` at the end of `block` (so far), placing the phis it needs."""
        value = self._lookup(var, block)
        self._fill_placed()
        return value

    def _lookup(self, var: _Var, block: str) -> str:
        """The value of `var` in `block`; phis placed on the way join `unfilled`."""
        chain: list[str] = []  # blocks passed through, each with one predecessor
        while True:
            found = self.defs.get(block, {}).get(var)
            if found is not None:
                value = found
                break
            preds = self.preds[block] if block in self.sealed else None
            if preds is not None and len(preds) == 1:
                chain.append(block)
                block = preds[0]
                continue
            if preds is None:  # not sealed: a predecessor is still to be lowered
                phi = self._phi(var, block)
                self.incomplete.setdefault(block, {})[var] = phi
                value = phi.name
            elif not preds:
                if var[0] in _POINTERS:
                    raise InternalCompilerError(f"packet load from {var[1]} without a check", None)
                # No definition on this path (say, a loop's entry edge for a
                # register its body defines): the checker proved no read sees it.
                value = "0"
            else:
                phi = self._phi(var, block)
                self.unfilled.append((phi, var))
                value = phi.name
            self.write(var, block, value)  # before any operand is read: breaks cycles through loops
            break
        for passed in chain:
            self.write(var, passed, value)
        return value

    def _fill_placed(self) -> None:
        while self.unfilled:
            phi, var = self.unfilled.pop()
            phi.incoming = [(self._lookup(var, pred), pred) for pred in self.preds[phi.block]]

    def seal(self, block: str) -> None:
        self.unfilled.extend((phi, var) for var, phi in self.incomplete.pop(block, {}).items())
        self.sealed.add(block)
        self._fill_placed()

    def _phi(self, var: _Var, block: str) -> _Phi:
        phi = _Phi(self.new_name(), "ptr" if var[0] in _POINTERS else "i64", block)
        self.phis[phi.name] = phi
        return phi

    def resolve(self, value: str) -> str:
        seen = []
        while value in self.alias:
            seen.append(value)
            value = self.alias[value]
        for name in seen:
            self.alias[name] = value
        return value

    def remove_trivial_phis(self) -> None:
        """Replace every phi whose operands are one value (or itself) by that value."""
        changed = True
        while changed:
            changed = False
            for name, phi in self.phis.items():
                if name in self.alias:
                    continue
                values = {self.resolve(v) for v, _ in phi.incoming} - {name}
                if len(values) == 1:
                    self.alias[name] = values.pop()
                    changed = True


# --- IR to LLVM IR -------------------------------------------------------------------


@dataclass
class _LlvmBlock:
    label: str
    lines: list[str] = field(default_factory=list)
    succs: list[str] = field(default_factory=list)


def _label(name: str) -> str:
    return name if _LLVM_IDENT.fullmatch(name) else '"' + name.replace('"', "_") + '"'


def _i64(value: int) -> str:
    return str(to_s64(value))


class _DebugInfo:
    """The module's debug metadata: its files, the function's subprogram, a DILocation per Python place."""

    def __init__(self, fn: Function) -> None:
        self.fn = fn
        self.metadata: list[str] = []  # !N = ... in order, N = index
        self.files: dict[str, int] = {}
        self.file_scopes: dict[str, int] = {}
        self.locations: dict[tuple[str, int, int], int] = {}
        self.spans: dict[tuple[str, int, int], Span] = {}  # what a line info maps back to
        self._cold: int | None = None
        self.subprogram = self.debug_header()

    def meta(self, text: str) -> int:
        self.metadata.append(text)
        return len(self.metadata) - 1

    def cold_weights(self) -> int:
        """Branch weights for `br i1 %c, label %rare, label %usual`, made once."""
        if self._cold is None:
            self._cold = self.meta('!{!"branch_weights", i32 1, i32 1048575}')
        return self._cold

    def file(self, path: str) -> int:
        # An empty directory makes the BTF file name the path itself
        # (llvm/lib/Target/BPF/BTFDebug.cpp, populateFileContent).
        if path not in self.files:
            self.files[path] = self.meta(f'!DIFile(filename: "{_escape(path)}", directory: "")')
        return self.files[path]

    def debug_header(self) -> int:
        fn = self.fn
        file = self.file(fn.file)
        cu = self.meta(
            f'distinct !DICompileUnit(language: DW_LANG_Python, file: !{file}, producer: "pyfd", '
            "isOptimized: true, runtimeVersion: 0, emissionKind: FullDebug)"
        )
        self.compile_unit = cu
        int_type = self.meta('!DIBasicType(name: "int", size: 32, encoding: DW_ATE_signed)')
        skb = self.meta(f'!DICompositeType(tag: DW_TAG_structure_type, name: "__sk_buff", file: !{file}, flags: DIFlagFwdDecl)')
        ctx_ptr = self.meta(f"!DIDerivedType(tag: DW_TAG_pointer_type, baseType: !{skb}, size: 64)")
        types = self.meta(f"!{{!{int_type}, !{ctx_ptr}}}")
        sub_type = self.meta(f"!DISubroutineType(types: !{types})")
        line = fn.span.line
        subprogram = len(self.metadata)
        retained = subprogram + 1
        self.meta(
            f'distinct !DISubprogram(name: "{_escape(fn.name)}", scope: !{file}, file: !{file}, line: {line}, '
            f"type: !{sub_type}, scopeLine: {line}, flags: DIFlagPrototyped, "
            f"spFlags: DISPFlagDefinition | DISPFlagOptimized, unit: !{cu}, retainedNodes: !{retained})"
        )
        # The kernel accepts a BTF FUNC only if its argument has a name
        # (kernel/bpf/btf.c, btf_func_check): LLVM takes it from this variable.
        self.meta(f"!{{!{retained + 1}}}")
        self.meta(f'!DILocalVariable(name: "ctx", arg: 1, scope: !{subprogram}, file: !{file}, line: {line}, type: !{ctx_ptr})')
        return subprogram

    def dbg(self, span: Span) -> str:
        """`, !dbg !N` for the Python span: line and 1-based column (0 would mean none)."""
        col = min(span.col + 1, 1023)  # BTF keeps 10 bits of column (uapi bpf.h, BPF_LINE_INFO_LINE_COL)
        key = (span.file, span.line, col)
        self.spans.setdefault(key, span)
        loc = self.locations.get(key)
        if loc is None:
            loc = self.locations[key] = self.meta(f"!DILocation(line: {span.line}, column: {col}, scope: !{self.scope(span.file)})")
        return f", !dbg !{loc}"

    def scope(self, path: str) -> int:
        """The debug scope of code from `path`: the function, or a block of it in another file.

        Helpers (pyfd.lib, the user's own) are inlined into the dissector, so
        their spans name another file; a location takes its file from its
        scope, and the BTF line info then names the right one.
        """
        if path == self.fn.file:
            return self.subprogram
        if path not in self.file_scopes:
            self.file_scopes[path] = self.meta(
                f"!DILexicalBlockFile(scope: !{self.subprogram}, file: !{self.file(path)}, discriminator: 0)"
            )
        return self.file_scopes[path]

    def module_lines(self) -> list[str]:
        """The named metadata and the numbered nodes, last in the module."""
        out = [f"!llvm.dbg.cu = !{{!{self.compile_unit}}}"]
        flags = self.meta('!{i32 2, !"Debug Info Version", i32 3}')
        dwarf = self.meta('!{i32 7, !"Dwarf Version", i32 5}')
        out.append(f"!llvm.module.flags = !{{!{flags}, !{dwarf}}}")
        out.extend(f"!{i} = {text}" for i, text in enumerate(self.metadata))
        return out


class _Lowering(MapEmitter):
    """Writes one IR function as an LLVM module in text form (map operations: llvm_maps.MapEmitter)."""

    def __init__(self, fn: Function) -> None:
        self.fn = fn
        self.counter = 0
        self.ssa = _Ssa(self.new_value)
        self.blocks: list[_LlvmBlock] = []
        self.current: _LlvmBlock | None = None
        self.declarations: set[str] = set()
        self.debug = _DebugInfo(fn)
        self.uses_keys = any(isinstance(i, (LoadKeys, StoreKeys)) for i in fn.instructions())
        self.uses_packet = any(isinstance(b.term, CheckPacket) for b in fn.blocks)
        self.windows = window_layout(fn) if has_windows(fn) else None

    def new_value(self) -> str:
        self.counter += 1
        return f"%v{self.counter}"

    # -- emitting -------------------------------------------------------------

    def start(self, label: str, preds: list[str]) -> _LlvmBlock:
        block = _LlvmBlock(label)
        self.blocks.append(block)
        self.ssa.preds[label] = preds
        self.current = block
        return block

    def emit(self, text: str, span: Span) -> None:
        assert self.current is not None
        self.current.lines.append(text + self.debug.dbg(span))

    def value(self, text: str, span: Span) -> str:
        """Emit `%vN = text`, return %vN."""
        name = self.new_value()
        self.emit(f"{name} = {text}", span)
        return name

    def read(self, op: Operand) -> str:
        if isinstance(op, Imm):
            return _i64(op.value)
        assert self.current is not None
        return self.ssa.read(("reg", op), self.current.label)

    def write(self, reg: Reg, value: str) -> None:
        assert self.current is not None
        self.ssa.write(("reg", reg), self.current.label, value)

    def intrinsic(self, declaration: str) -> None:
        self.declarations.add(declaration)

    # -- the function ---------------------------------------------------------

    def lower(self) -> str:
        fn = self.fn
        blocks = fn.block_map()
        order = [blocks[label] for label in reverse_postorder(fn)]  # unreachable blocks are left out
        # LLVM predecessors of every block: a variable-base check adds a
        # block `LABEL.clamped` between its block and the `ok` target.
        preds: dict[str, list[str]] = {"entry.ctx": [], **{b.label: [] for b in order}}
        preds[fn.entry.label].append("entry.ctx")
        for b in order:
            for label, succs in self.llvm_edges(b):
                preds.setdefault(label, [])
                for s in succs:
                    preds.setdefault(s, []).append(label)
        self.prologue()
        filled: set[str] = {"entry.ctx"}
        self.ssa.seal("entry.ctx")
        for b in order:
            self.lower_block(b, preds, filled)
        self.ssa.remove_trivial_phis()
        return _module_text(self)

    def llvm_edges(self, block: Block) -> list[tuple[str, list[str]]]:
        """The LLVM blocks an IR block becomes, and the successors of each."""
        term = block.term
        if isinstance(term, CheckPacket) and term.window is not None:
            # [clamp ->] fast test -> copy (bpf_skb_load_bytes) -> ok or fail
            copy = f"{block.label}.copy"
            if isinstance(term.base, Imm):
                return [(block.label, [copy, term.ok]), (copy, [term.fail, term.ok])]
            clamped = f"{block.label}.clamped"
            return [(block.label, [term.fail, clamped]), (clamped, [copy, term.ok]), (copy, [term.fail, term.ok])]
        if isinstance(term, CheckPacket) and isinstance(term.base, Reg):
            clamped = f"{block.label}.clamped"
            return [(block.label, [term.fail, clamped]), (clamped, [term.fail, term.ok])]
        return [(block.label, list(block.successors()))]

    def prologue(self) -> None:
        span = self.fn.span
        self.start("entry.ctx", [])
        self.map_prologue(span)
        # Volatile context loads: the verifier rewrites exactly a u32 load of
        # data (76) and data_end (80) and a u64 load of flow_keys (144)
        # (net/core/filter.c, flow_dissector_is_valid_access); any other size
        # or offset is "invalid bpf_context access". Volatile forbids LLVM to
        # widen, narrow, merge or repeat them.
        self.load_context(span)
        if self.windows is not None:
            # One area for every window's stack copy, laid out by ir.windows
            # (LLVM would give each alloca its own bytes).
            self.emit(f"%windows = alloca [{self.windows.size} x i8], align 8", span)
        self.terminate(f"br label %{_label(self.fn.entry.label)}", span, [self.fn.entry.label])

    def load_context(self, span: Span) -> None:
        """Read data, data_end and the keys pointer from the context, as SSA values of the current block.

        After a bpf_skb_load_bytes call they are read again rather than kept:
        a value live across a call must sit in r6-r9 or on the stack for the
        whole function (the verifier clears r1-r5 at a call), which would
        cost the linear fast path; re-read, only the context pointer is.
        """
        assert self.current is not None
        if self.uses_packet:
            data32 = self.ctx_load("i32", SKB_DATA, span)
            end32 = self.ctx_load("i32", SKB_DATA_END, span)
            # (void *)(long)skb->data, as clang writes it.
            for name, raw in (("data", data32), ("data_end", end32)):
                ptr = self.value(f"inttoptr i64 {self.value(f'zext i32 {raw} to i64', span)} to ptr", span)
                self.ssa.write(("ctx", name), self.current.label, ptr)
        if self.uses_keys:
            keys = self.value(f"load volatile ptr, ptr {self.ctx_address(SKB_FLOW_KEYS, span)}, align 8", span)
            self.ssa.write(("ctx", "keys"), self.current.label, keys)

    def context(self, name: str) -> str:
        """The current value of data, data_end or keys (see `load_context`)."""
        assert self.current is not None
        return self.ssa.read(("ctx", name), self.current.label)

    def ctx_address(self, offset: int, span: Span) -> str:
        return self.value(f"getelementptr i8, ptr %ctx, i64 {offset}", span)

    def ctx_load(self, type_: str, offset: int, span: Span) -> str:
        return self.value(f"load volatile {type_}, ptr {self.ctx_address(offset, span)}, align 4", span)

    def terminate(self, text: str, span: Span, succs: list[str]) -> None:
        assert self.current is not None
        self.emit(text, span)
        self.current.succs = succs

    def lower_block(self, block: Block, preds: dict[str, list[str]], filled: set[str]) -> None:
        self.start(block.label, preds[block.label])
        self.seal_ready(block.label, preds, filled)
        for insn in block.insns:
            self.insn(insn)
        self.terminator(block.term, preds, filled)
        self.finish(preds, filled)

    def finish(self, preds: dict[str, list[str]], filled: set[str]) -> None:
        """The current block is complete: seal the successors that waited for it (loop heads)."""
        assert self.current is not None
        filled.add(self.current.label)
        for label in self.current.succs:
            if label in self.ssa.preds:  # started already: a loop's head
                self.seal_ready(label, preds, filled)

    def seal_ready(self, label: str, preds: dict[str, list[str]], filled: set[str]) -> None:
        if label not in self.ssa.sealed and all(p in filled for p in preds.get(label, [])):
            self.ssa.preds.setdefault(label, preds.get(label, []))
            self.ssa.seal(label)

    # -- instructions ---------------------------------------------------------

    def insn(self, insn: Instruction) -> None:
        span = insn.span
        match insn:
            case Copy(dst, src):
                self.write(dst, self.read(src))
            case Binary(op, dst, lhs, rhs):
                self.write(dst, self.binary(op, self.read(lhs), rhs, span))
            case Unary(op, dst, src):
                a = self.read(src)
                text = f"sub i64 0, {a}" if op is UnaryOp.NEG else f"xor i64 {a}, -1"
                self.write(dst, self.value(text, span))
            case Extend(signed, bits, dst, src):
                a = self.read(src)
                if bits >= 64:
                    self.write(dst, a)
                else:
                    low = self.value(f"trunc i64 {a} to i{bits}", span)
                    self.write(dst, self.value(f"{'sext' if signed else 'zext'} i{bits} {low} to i64", span))
            case ByteSwap(bits, dst, src):
                self.write(dst, self.byteswap(bits, self.read(src), span))
            case SetCond(cmp, dst, lhs, rhs):
                cond = self.compare(cmp, self.read(lhs), self.read(rhs), span)
                self.write(dst, self.value(f"zext i1 {cond} to i64", span))
            case LoadKeys(dst, offset, size):
                # Keys offsets are multiples of the size (checked by the IR
                # checker), so the natural alignment is true.
                ptr = self.value(f"getelementptr i8, ptr {self.context('keys')}, i64 {offset}", span)
                loaded = self.value(f"load i{8 * size}, ptr {ptr}, align {size}", span)
                self.write(dst, loaded if size == 8 else self.value(f"zext i{8 * size} {loaded} to i64", span))
            case StoreKeys(offset, size, src):
                value = self.read(src)
                if size < 8:
                    value = self.value(f"trunc i64 {value} to i{8 * size}", span)
                ptr = self.value(f"getelementptr i8, ptr {self.context('keys')}, i64 {offset}", span)
                self.emit(f"store i{8 * size} {value}, ptr {ptr}, align {size}", span)
            case LoadPacket(dst, base, disp, size, window=window):
                ptr = self.packet_address(base, disp, span) if window is None else self.window_address(window, disp, span)
                # Natural alignment, as clang gives a header field: with align 1
                # the BPF backend splits the load into single bytes. The
                # verifier does not check packet alignment unless strict
                # alignment is asked for (check_pkt_ptr_alignment).
                loaded = self.value(f"load i{8 * size}, ptr {ptr}, align {size}", span)
                self.write(dst, loaded if size == 8 else self.value(f"zext i{8 * size} {loaded} to i64", span))
            case MapLookup() | MapUpdate() | MapDelete() | LoadMapValue() | StoreMapValue() | AtomicMapValue() | LoadConfig():
                self.map_insn(insn)
            case _:
                assert_never(insn)

    def binary(self, op: BinaryOp, a: str, rhs: Operand, span: Span) -> str:
        if op in (BinaryOp.UDIV, BinaryOp.UMOD):
            return self.divide(op, a, rhs, span)
        if op in (BinaryOp.SHL, BinaryOp.LSHR, BinaryOp.ASHR):
            # BPF masks the count with 63; in LLVM a count >= 64 gives poison.
            count = _i64(rhs.value & 63) if isinstance(rhs, Imm) else self.value(f"and i64 {self.read(rhs)}, 63", span)
            return self.value(f"{_ARITH[op]} i64 {a}, {count}", span)
        return self.value(f"{_ARITH[op]} i64 {a}, {self.read(rhs)}", span)

    def divide(self, op: BinaryOp, a: str, rhs: Operand, span: Span) -> str:
        """BPF division: x / 0 == 0 and x % 0 == x; in LLVM a zero divisor is undefined behaviour."""
        instr = "udiv" if op is BinaryOp.UDIV else "urem"
        if isinstance(rhs, Imm):
            if rhs.value == 0:  # the verifier also refuses an immediate zero divisor
                return "0" if op is BinaryOp.UDIV else a
            return self.value(f"{instr} i64 {a}, {_i64(rhs.value)}", span)
        # The divisor goes through the same barrier as a packet base. Knowing
        # it to be zero or a power of two, LLVM turns `x / y` into
        # `x >> cttz(y)`, and the BPF backend, without a count-trailing-zeros
        # instruction, expands cttz into a lookup in a de Bruijn table in
        # .rodata: a global the program cannot reach without a map.
        b = self.barrier(self.read(rhs), span)
        zero = self.value(f"icmp eq i64 {b}, 0", span)
        divisor = self.value(f"select i1 {zero}, i64 1, i64 {b}", span)
        # The quotient goes through a barrier too. Seeing `x <= -1 / y`,
        # InstCombine proves the guarding select away when it can (x a
        # non-zero constant shifted, say) and rewrites the compare as the
        # overflow bit of `umul.with.overflow(x, y)` (foldMultiplicationOverflowCheck),
        # which the BPF backend can only expand into a 128-bit multiply, a
        # call to `__multi3` that it then refuses ("A call to built-in
        # function '__multi3' is not supported") before exiting the process.
        result = self.barrier(self.value(f"{instr} i64 {a}, {divisor}", span), span)
        return self.value(f"select i1 {zero}, i64 {'0' if op is BinaryOp.UDIV else a}, i64 {result}", span)

    def byteswap(self, bits: int, a: str, span: Span) -> str:
        if bits == 8:
            return self.value(f"and i64 {a}, 255", span)
        if bits not in (16, 32, 64):
            raise InternalCompilerError(f"byte swap of {bits} bits", span)
        self.intrinsic(f"declare i{bits} @llvm.bswap.i{bits}(i{bits})")
        if bits == 64:
            return self.value(f"call i64 @llvm.bswap.i64(i64 {a})", span)
        low = self.value(f"trunc i64 {a} to i{bits}", span)
        swapped = self.value(f"call i{bits} @llvm.bswap.i{bits}(i{bits} {low})", span)
        return self.value(f"zext i{bits} {swapped} to i64", span)

    def barrier(self, value: str, span: Span) -> str:
        """`value` through an empty asm that LLVM must assume changes it (libbpf's barrier_var).

        The asm string is empty, so no instruction is emitted, and none is
        parsed: llvmlite's LLVM has no BPF asm parser, and a non-empty inline
        asm would abort the process.
        """
        return self.value(f'call i64 asm sideeffect "", "=r,0"(i64 {value})', span)

    def compare(self, cmp: Cmp, a: str, b: str, span: Span) -> str:
        if cmp is Cmp.SET:
            both = self.value(f"and i64 {a}, {b}", span)
            return self.value(f"icmp ne i64 {both}, 0", span)
        return self.value(f"icmp {_ICMP[cmp]} i64 {a}, {b}", span)

    def packet_address(self, base: Operand, disp: int, span: Span) -> str:
        if isinstance(base, Imm):
            return self.value(f"getelementptr i8, ptr {self.context('data')}, i64 {_i64(base.value + disp)}", span)
        # The pointer the check proved: a pointer recomputed as `data + base`
        # would be a new packet pointer to the verifier, with no range.
        assert self.current is not None
        ptr = self.ssa.read(("ptr", base), self.current.label)
        return ptr if disp == 0 else self.value(f"getelementptr i8, ptr {ptr}, i64 {disp}", span)

    def window_address(self, window: int, disp: int, span: Span) -> str:
        """Byte `disp` of a window: in the packet, or in its stack copy (a phi of the two)."""
        assert self.current is not None
        ptr = self.ssa.read(("window", window), self.current.label)
        return ptr if disp == 0 else self.value(f"getelementptr i8, ptr {ptr}, i64 {disp}", span)

    # -- terminators ----------------------------------------------------------

    def terminator(self, term: Terminator, preds: dict[str, list[str]], filled: set[str]) -> None:
        span = term.span
        match term:
            case Return(value):
                self.terminate(f"ret i32 {value}", span, [])
            case Jump(target):
                self.terminate(f"br label %{_label(target)}", span, [target])
            case Branch(cmp, lhs, rhs, then, otherwise):
                cond = self.compare(cmp, self.read(lhs), self.read(rhs), span)
                self.terminate(f"br i1 {cond}, label %{_label(then)}, label %{_label(otherwise)}", span, [then, otherwise])
            case CheckPacket(window=window) if window is not None:
                self.check_window(term, window, preds, filled)
            case CheckPacket():
                self.check(term, preds, filled)
            case _:
                assert_never(term)

    def check(self, term: CheckPacket, preds: dict[str, list[str]], filled: set[str]) -> None:
        """The bounds check in the shape the verifier follows (find_good_pkt_pointers)."""
        span = term.span
        ok, fail = _label(term.ok), _label(term.fail)
        if isinstance(term.base, Imm):
            end = self.value(f"getelementptr i8, ptr {self.context('data')}, i64 {_i64(term.base.value + term.size)}", span)
        else:
            assert self.current is not None
            # Without the clamp `data + base` teaches the verifier nothing and
            # the read fails with "invalid access to packet ... r=0": it
            # records a range only if the pointer's umax + size stays within
            # MAX_PACKET_OFF (find_good_pkt_pointers).
            #
            # The clamp must test the very register that is then added to
            # `data`. LLVM does not know that: given `zext16(x)` as the base,
            # it compared one copy (`w5 = w4; w5 &= 65535; if w5 > 65531`) and
            # added another (`r4 &= 65535; r2 += r4`), and the verifier,
            # having learnt the bound of r5 only, refused the read ("invalid
            # access to packet, off=0 size=2, R2(id=3,off=0,r=0)"). Given a
            # base it can bound itself (`x % 50`), it drops the clamp the
            # verifier still needs. An empty asm that LLVM must assume
            # rewrites the register (libbpf's barrier_var) hides the value:
            # LLVM can neither fold the clamp nor split the base in two.
            base = self.barrier(self.read(term.base), span)
            too_far = self.value(f"icmp ugt i64 {base}, {MAX_PACKET_OFF - term.size}", span)
            clamped = f"{self.current.label}.clamped"
            self.terminate(f"br i1 {too_far}, label %{fail}, label %{_label(clamped)}", span, [term.fail, clamped])
            self.finish(preds, filled)
            self.start(clamped, preds[clamped])
            self.seal_ready(clamped, preds, filled)
            ptr = self.value(f"getelementptr i8, ptr {self.context('data')}, i64 {base}", span)
            self.ssa.write(("ptr", term.base), clamped, ptr)
            end = self.value(f"getelementptr i8, ptr {ptr}, i64 {term.size}", span)
        # Unsigned 64-bit `ptr + size > data_end` on the pointers.
        outside = self.value(f"icmp ugt ptr {end}, {self.context('data_end')}", span)
        self.terminate(f"br i1 {outside}, label %{fail}, label %{ok}", span, [term.fail, term.ok])

    def check_window(self, term: CheckPacket, window: int, preds: dict[str, list[str]], filled: set[str]) -> None:
        """A check with a window: the linear test, else `bpf_skb_load_bytes` into the window's buffer."""
        assert self.current is not None and self.windows is not None
        span = term.span
        copy = f"{self.current.label}.copy"
        if isinstance(term.base, Imm):
            offset = _i64(term.base.value)
            ptr = self.value(f"getelementptr i8, ptr {self.context('data')}, i64 {offset}", span)
        else:
            offset = self.barrier(self.read(term.base), span)  # see `check`
            too_far = self.value(f"icmp ugt i64 {offset}, {MAX_PACKET_OFF - term.size}", span)
            clamped = f"{self.current.label}.clamped"
            self.terminate(f"br i1 {too_far}, label %{_label(term.fail)}, label %{_label(clamped)}", span, [term.fail, clamped])
            self.finish(preds, filled)
            self.start(clamped, preds[clamped])
            self.seal_ready(clamped, preds, filled)
            ptr = self.value(f"getelementptr i8, ptr {self.context('data')}, i64 {offset}", span)
        self.ssa.write(("window", window), self.current.label, ptr)
        end = self.value(f"getelementptr i8, ptr {ptr}, i64 {term.size}", span) if term.size else ptr
        outside = self.value(f"icmp ugt ptr {end}, {self.context('data_end')}", span)
        # The copy is the cold path: told so, LLVM places it out of line and
        # keeps the registers the call clobbers for the fast path, spilling
        # around the call instead of across the whole function.
        cold = self.debug.cold_weights()
        self.terminate(f"br i1 {outside}, label %{_label(copy)}, label %{_label(term.ok)}, !prof !{cold}", span, [copy, term.ok])
        self.finish(preds, filled)
        self.start(copy, preds[copy])
        self.seal_ready(copy, preds, filled)
        buffer = self.value(f"getelementptr i8, ptr %windows, i64 {self.windows.offsets[window]}", span)
        # A size-0 check (`pkt.has(end)`) probes the byte before `end`.
        at = offset if term.size else self.value(f"sub i64 {offset}, 1", span)
        at32 = self.value(f"trunc i64 {at} to i32", span)
        length = max(term.size, 1)
        result = self.value(
            f"call i64 inttoptr (i64 {BPF_FUNC_SKB_LOAD_BYTES} to ptr)(ptr %ctx, i32 {at32}, ptr {buffer}, i32 {length}) #1", span
        )
        failed = self.value(f"icmp ne i64 {result}, 0", span)
        self.load_context(span)
        self.ssa.write(("window", window), copy, buffer)
        self.terminate(f"br i1 {failed}, label %{_label(term.fail)}, label %{_label(term.ok)}", span, [term.fail, term.ok])

    # -- the module -----------------------------------------------------------



def _module_text(lowering: _Lowering) -> str:
    """The module: its header, the function with its phis resolved, attributes and debug metadata."""
    fn = lowering.fn
    out = [
        f'source_filename = "{_escape(fn.file)}"',
        f'target datalayout = "{DATA_LAYOUT}"',
        f'target triple = "{TRIPLE}"',
        "",
        *sorted(lowering.declarations),
        "",
        f'define i32 @"{_escape(fn.name)}"(ptr %ctx) #0 section "{SECTION}" !dbg !{lowering.debug.subprogram} {{',
    ]
    resolve = lowering.ssa.resolve
    live_phis: dict[str, list[_Phi]] = {}
    for phi in lowering.ssa.phis.values():
        if phi.name not in lowering.ssa.alias:
            live_phis.setdefault(phi.block, []).append(phi)
    for i, block in enumerate(lowering.blocks):
        if i:
            out.append("")
        out.append(f"{_label(block.label)}:")
        for phi in live_phis.get(block.label, []):
            incoming = ", ".join(f"[ {resolve(v)}, %{_label(p)} ]" for v, p in phi.incoming)
            out.append(f"  {phi.name} = phi {phi.type} {incoming}")
        for line in block.lines:
            out.append("  " + _VALUE.sub(lambda m: resolve(m.group(0)), line))
    out.append("}")
    out.append("")
    # "no-jump-tables": SimplifyCFG may turn compare chains into a switch,
    # and a jump or lookup table would need a relocation (a .rodata map).
    out.append('attributes #0 = { nounwind "no-jump-tables"="true" "frame-pointer"="none" }')
    out.append("attributes #1 = { cold }")
    out.append("")
    out.extend(lowering.debug.module_lines())
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    """`text` for an LLVM string literal: its UTF-8 bytes, each unprintable one as `\\XX`."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\{b:02X}" for b in text.encode())


# --- LLVM: optimise, emit, read back ---------------------------------------------------------


_LLVM_STACK_LIMIT = 1 << 20


@functools.cache
def _target_machine() -> TargetMachine:
    """The bpfel target machine, cpu v3; its code generator always runs at LLVM's default level.

    At codegen -O0 (FastISel and the fast register allocator) every value
    that lives across blocks goes through the stack: `compares` in the tests
    then needed 520 bytes, and the verifier refused it ("invalid write to
    stack R10 off=-520 size=4"). The optimisation level chooses the IR
    pipeline only (compile_llvm).
    """
    import llvmlite.binding as llvm

    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    # The BPF backend reports a stack above 512 bytes as an error diagnostic,
    # and LLVM's default diagnostic handler then ends the process
    # (BPFRegisterInfo.cpp, WarnSize). Let LLVM produce the code: pyfd
    # measures the stack itself (_stack_size) and reports it as a compile error.
    llvm.set_option("pyfd", f"-bpf-stack-size={_LLVM_STACK_LIMIT}")
    for feature in _V4_OFF:
        llvm.set_option("pyfd", f"-disable-{feature}")
    target = llvm.Target.from_triple(TRIPLE)
    return target.create_target_machine(cpu=CPU, opt=2, reloc="static", codemodel="default")


def generate_llvm_ir(fn: Function) -> tuple[str, dict[tuple[str, int, int], Span]]:
    """The LLVM module (text) for a checked IR function, and the span of each debug location."""
    lowering = _Lowering(fn)
    text = lowering.lower()
    return text, lowering.debug.spans


def _codegen(text: str, level: int, name: str) -> bytes:
    """Parse, verify, optimise and emit one module: `O`, the optimised IR and the object; or `R` and why LLVM refused it.

    This is the step that may end its process (an LLVM fatal error), so it
    runs in a child (`compile_llvm`) and answers in bytes.
    """
    import llvmlite.binding as llvm

    try:
        module = llvm.parse_assembly(text)
        module.verify()
        module.name = name
    except RuntimeError as exc:
        return b"R" + str(exc).encode()
    tm = _target_machine()
    # The pipeline clang runs for -O<level> (O0: only what must run). The pass
    # builder gets the BPF target machine, so LLVM's BPF-specific IR passes
    # (BPFAdjustOpt and friends, which undo rewrites the verifier refuses)
    # run as they do under clang.
    tuning = llvm.PipelineTuningOptions(speed_level=level)
    # No unrolling: the verifier follows bounded loops itself, and an
    # unrolled copy of a loop that reads the packet repeats its page-fragment
    # path per iteration (tests/dissectors/language.py nested_loops: 161
    # instructions unrolled, 76 not; 90 and 49 without that path).
    tuning.loop_unrolling = False
    builder = llvm.create_pass_builder(tm, tuning)
    builder.getModulePassManager().run(module, builder)
    optimised = str(module).encode()
    obj: bytes = tm.emit_object(module)
    return b"O" + struct.pack("<Q", len(optimised)) + optimised + obj


def child_main() -> None:
    """A spawned child's entry (see isolate.py): a job on stdin, `frame(_codegen(...))` on stdout."""
    data = sys.stdin.buffer.read()
    level, size = struct.unpack_from("<BH", data)
    name = data[3 : 3 + size].decode()
    sys.stdout.buffer.write(frame(_codegen(data[3 + size :].decode(), level, name)))
    sys.stdout.buffer.flush()


# An LLVM diagnostic that names a place: "error: FILE:LINE:COL: in function f i32 (ptr): MESSAGE".
_LLVM_DIAGNOSTIC = re.compile(r"error: (?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?:in function \S+ [^:]*: )?(?P<message>.*)")


def _llvm_failure(exc: ChildFailed, fn: Function, spans: dict[tuple[str, int, int], Span]) -> CompileError:
    """The CompileError for a child that died compiling `fn`, at the Python line LLVM names if it names one."""
    lines = [line.strip() for line in exc.stderr.splitlines() if line.strip()]
    if exc.how == f"exited with status {EX_SOFTWARE}":  # a Python exception in the child: a bug in pyfd
        return InternalCompilerError(f"the llvm backend failed: {lines[-1] if lines else exc.how}", fn.span)
    span, message = fn.span, None
    for line in lines:
        m = _LLVM_DIAGNOSTIC.search(line)
        if m is not None:
            key = (m["file"], int(m["line"]), int(m["col"]))
            span = spans.get(key) or next((s for k, s in spans.items() if k[:2] == key[:2]), fn.span)
            message = m["message"]
            break
        if line.startswith("LLVM ERROR: "):
            message = line.removeprefix("LLVM ERROR: ")
            break
    if message is None:
        message = lines[-1] if lines else "no message"
    return BackendError(
        f"LLVM could not compile `{fn.name}` ({exc.how}): {message}",
        span,
        hint="the native backend compiles the same program (backend=\"native\", or --backend native)",
    )


def compile_llvm(fn: Function, opt_level: int = 2) -> CompiledCode:
    """Compile a checked IR function to BPF instructions through LLVM.

    LLVM runs in a child process (isolate.py): a fatal error there becomes a
    `BackendError` here instead of the end of the caller's process.
    """
    text, spans = generate_llvm_ir(fn)
    level = max(0, min(opt_level, 3))
    name = fn.name.encode()
    job = struct.pack("<BH", level, len(name)) + name + text.encode()
    spawn = [sys.executable, "-c", f"import {__name__} as m; m.child_main()"]
    try:
        answer = run_isolated(lambda: _codegen(text, level, fn.name), spawn, job)
    except ChildFailed as exc:
        raise _llvm_failure(exc, fn, spans) from None
    if answer[:1] == b"R":
        raise InternalCompilerError(f"LLVM refused the generated IR: {answer[1:].decode(errors='replace')}", fn.span)
    (size,) = struct.unpack_from("<Q", answer, 1)
    optimised = answer[9 : 9 + size].decode()
    obj = answer[9 + size :]
    code, lines, relocations = _read_program(obj, fn.name)
    insns = _attach_spans(resolve_relocations(decode(code), relocations, fn), lines, spans, fn.span)
    stack = _stack_size(insns)
    if stack > MAX_BPF_STACK:
        raise CompileError(
            f"LLVM's code for {fn.name} needs {stack} bytes of stack; BPF allows {MAX_BPF_STACK}",
            fn.span,
            hint="compile with -O2 (fewer values live at once) or with the native backend",
        )
    return CompiledCode(fn.name, "llvm", tuple(insns), llvm_ir=optimised, unoptimised_ir=text)


def _stack_size(insns: Iterable[BpfInstruction]) -> int:
    """The bytes of stack below r10 that the instructions touch."""
    deepest = 0
    for insn in insns:
        if insn.cls == Class.LDX and insn.src == R10 or insn.cls in (Class.ST, Class.STX) and insn.dst == R10:
            deepest = max(deepest, -insn.off)
    return deepest


def _read_program(obj: bytes, name: str) -> tuple[bytes, list[tuple[int, str, int, int]], list[tuple[int, str]]]:
    """The code of function `name` in the object, its line info (byte offset, file, line, column), its relocations."""
    try:
        parsed = read_elf(obj)
        index = parsed.index(SECTION)
        relocations = parsed.relocations(index) if index is not None else []
    except ElfFormatError as exc:
        raise InternalCompilerError(f"LLVM's object cannot be read: {exc}", None) from exc
    if index is None or not parsed.symbols:
        raise InternalCompilerError(f"LLVM's object has no {SECTION} section or no symbol table", None)
    functions = [
        s for s in parsed.symbols
        if s.name == name and s.type == STT.FUNC and 0 < s.shndx < len(parsed.sections) and parsed.sections[s.shndx].flags & SHF.EXECINSTR
    ]
    if len(functions) != 1 or functions[0].shndx != index:
        raise InternalCompilerError(f"LLVM's object has no function {name!r} in {SECTION}", None)
    function, data = functions[0], parsed.sections[index].data
    if function.value != 0 or function.size != len(data):
        raise InternalCompilerError(f"{SECTION} holds more than {name!r}: {len(data)} bytes, the function {function.size}", None)
    # A relocation is a global: a map or a load-time constant (llvm_maps.resolve_relocations),
    # or else something pyfd's object has nothing for (a constant pool, a lookup table, a call).
    sections = {s.name: s.data for s in reversed(parsed.sections)}  # the first of a name, as pyfd.objfile.reader keeps
    lines: list[tuple[int, str, int, int]] = []
    btf, btf_ext = sections.get(".BTF"), sections.get(".BTF.ext")
    if btf is not None and btf_ext is not None:
        info = parse_btf_ext(btf_ext, btf).get(SECTION)
        if info is not None:
            lines = sorted((r.insn_off, r.file_name, r.line, r.col) for r in info.line_info)
    return data, lines, relocations


def _attach_spans(
    insns: Iterable[BpfInstruction],
    lines: list[tuple[int, str, int, int]],
    spans: dict[tuple[str, int, int], Span],
    default: Span,
) -> list[BpfInstruction]:
    """Give every instruction the Span of the line info covering it (an entry holds until the next)."""
    by_line: dict[tuple[str, int], Span] = {}
    for (file, line, _col), span in spans.items():
        by_line.setdefault((file, line), span)
    out: list[BpfInstruction] = []
    offset, i, current = 0, 0, default
    for insn in insns:
        while i < len(lines) and lines[i][0] <= offset:
            _, file, line, col = lines[i]
            # Column 0 is the function's own entry (LLVM's first line info
            # names the subprogram's line, without a column).
            current = spans.get((file, line, col)) or by_line.get((file, line)) or default
            i += 1
        out.append(replace(insn, span=current))
        offset += insn.slots * SLOT_SIZE
    return out
