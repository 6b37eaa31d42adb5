"""Map operations and load-time constants in the llvm backend: the LLVM IR clang writes for them.

A map is an external global named after it (`@tunnel_ports`), a helper a
call through its number (`call ptr inttoptr (i64 1 to ptr)(...)`, as
bpf_helper_defs.h declares them), a key or value an alloca of the entry
block the helper reads through its pointer, and a `+=` an `atomicrmw` whose
result is unused (BPF_ATOMIC without BPF_FETCH). A load-time constant is a
volatile load of an external global, so LLVM can neither fold it nor drop
it. The BPF target then writes `r1 = 0 ll` with an R_BPF_64_64 relocation
against the global's name for each of them; `resolve_relocations` turns
those back into pyfd's own form of the reference (BPF_PSEUDO_MAP_FD with
the map's index, BPF_PSEUDO_MAP_VALUE with .rodata's index and the offset),
the form the native backend writes, so the object is written the same way
for both.

A lookup's result is kept as an i64, as every IR register is: the null test
is the IR's own `Branch`, and a value access converts it back to a pointer
(inttoptr is no instruction in BPF, so the verifier sees the very register
it checked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, assert_never

from pyfd.abi import (
    BPF_FUNC_map_delete_elem,
    BPF_FUNC_map_lookup_elem,
    BPF_FUNC_map_update_elem,
)
from pyfd.isa import BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE, SLOT_SIZE
from pyfd.isa import Instruction as BpfInstruction

from ..diagnostics import InternalCompilerError, Span
from ..ir.nodes import (
    AtomicMapValue,
    AtomicOp,
    Function,
    LoadConfig,
    LoadMapValue,
    MapDelete,
    MapLookup,
    MapUpdate,
    Operand,
    Reg,
    StoreMapValue,
)

MapInstruction = MapLookup | MapUpdate | MapDelete | LoadMapValue | StoreMapValue | AtomicMapValue | LoadConfig
_ATOMIC = {AtomicOp.ADD: "add", AtomicOp.OR: "or", AtomicOp.AND: "and", AtomicOp.XOR: "xor"}
KEY, VALUE = "%map.key", "%map.value"  # the entry block's allocas a helper reads its key and value from


def uses_maps(fn: Function) -> bool:
    """True if the function calls a map helper (and so needs the key and value allocas)."""
    return any(isinstance(i, (MapLookup, MapUpdate, MapDelete)) for i in fn.instructions())


class MapEmitter:
    """Writes map operations as LLVM IR; mixed into the llvm backend's `_Lowering`, whose emitters it uses."""

    fn: Function

    if TYPE_CHECKING:  # the lowering's emitters

        def emit(self, text: str, span: Span) -> None: ...
        def value(self, text: str, span: Span) -> str: ...
        def read(self, op: Operand) -> str: ...
        def write(self, reg: Reg, value: str) -> None: ...
        def intrinsic(self, declaration: str) -> None: ...

    def map_prologue(self, span: Span) -> None:
        """The key and value slots, in the entry block: an alloca anywhere else would be a dynamic one, which BPF cannot have."""
        if uses_maps(self.fn):
            self.emit(f"{KEY} = alloca i64, align 8", span)
            self.emit(f"{VALUE} = alloca i64, align 8", span)

    def _global(self, name: str, type_: str) -> str:
        """The external global `name` (a map, or a constant of .rodata), declared once."""
        self.intrinsic(f'@"{name}" = external global {type_}')
        return f'@"{name}"'

    def _map(self, name: str) -> str:
        if self.fn.map_named(name) is None:
            raise InternalCompilerError(f"map {name} is not declared", None)
        return self._global(name, "[32 x i8]")

    def _slot(self, slot: str, value: Operand, size: int, span: Span) -> None:
        """Store the low `size` bytes of `value` in a helper's key or value slot."""
        bits = 8 * size
        v = self.read(value)
        if bits < 64:
            v = self.value(f"trunc i64 {v} to i{bits}", span)
        self.emit(f"store i{bits} {v}, ptr {slot}, align {size}", span)

    def _helper(self, number: int, result: str, args: str, span: Span) -> str:
        return self.value(f"call {result} inttoptr (i64 {number} to ptr)({args})", span)

    def map_insn(self, insn: MapInstruction) -> None:
        """One map operation or constant load."""
        span = insn.span
        match insn:
            case MapLookup(dst, name, key):
                m = self.fn.map_named(name)
                assert m is not None
                self._slot(KEY, key, m.key_size, span)
                found = self._helper(BPF_FUNC_map_lookup_elem, "ptr", f"ptr {self._map(name)}, ptr {KEY}", span)
                self.write(dst, self.value(f"ptrtoint ptr {found} to i64", span))
            case MapUpdate(name, key, value, flags):
                m = self.fn.map_named(name)
                assert m is not None
                self._slot(KEY, key, m.key_size, span)
                self._slot(VALUE, value, m.value_size, span)
                self._helper(BPF_FUNC_map_update_elem, "i64", f"ptr {self._map(name)}, ptr {KEY}, ptr {VALUE}, i64 {flags}", span)
            case MapDelete(name, key):
                m = self.fn.map_named(name)
                assert m is not None
                self._slot(KEY, key, m.key_size, span)
                self._helper(BPF_FUNC_map_delete_elem, "i64", f"ptr {self._map(name)}, ptr {KEY}", span)
            case LoadMapValue(dst, ptr, size):
                address = self.value(f"inttoptr i64 {self.read(ptr)} to ptr", span)
                loaded = self.value(f"load i{8 * size}, ptr {address}, align {size}", span)
                self.write(dst, loaded if size == 8 else self.value(f"zext i{8 * size} {loaded} to i64", span))
            case StoreMapValue(ptr, size, src):
                address = self.value(f"inttoptr i64 {self.read(ptr)} to ptr", span)
                v = self.read(src)
                if size < 8:
                    v = self.value(f"trunc i64 {v} to i{8 * size}", span)
                self.emit(f"store i{8 * size} {v}, ptr {address}, align {size}", span)
            case AtomicMapValue(op, ptr, size, src):
                address = self.value(f"inttoptr i64 {self.read(ptr)} to ptr", span)
                v = self.read(src)
                if size < 8:
                    v = self.value(f"trunc i64 {v} to i{8 * size}", span)
                # Unused and `monotonic` (relaxed, as BPF_ATOMIC without BPF_FETCH is): the
                # BPF target emits `lock *(u64 *)(r + 0) += r` only then; LLVM 20 on makes a
                # seq_cst one a fetch-add (BPFInstrInfo.td, the memory-ordering patterns).
                self.value(f"atomicrmw {_ATOMIC[op]} ptr {address}, i{8 * size} {v} monotonic, align {size}", span)
            case LoadConfig(dst, offset, size):
                variable = next((c for c in self.fn.configs if c.offset == offset and c.size == size), None)
                if variable is None:
                    raise InternalCompilerError(f"no load-time constant at +{offset}", span)
                loaded = self.value(f"load volatile i{8 * size}, ptr {self._global(variable.name, f'i{8 * size}')}, align {size}", span)
                self.write(dst, loaded if size == 8 else self.value(f"zext i{8 * size} {loaded} to i64", span))
            case _:
                assert_never(insn)


def resolve_relocations(insns: Sequence[BpfInstruction], relocations: Sequence[tuple[int, str]], fn: Function) -> list[BpfInstruction]:
    """LLVM's `r = 0 ll` with a relocation against a map or a constant, as pyfd writes the reference itself.

    Any other relocation (a constant pool, a lookup table, a call) is an
    internal error: the object has nothing else for it to point at.
    """
    maps = {m.name: index for index, m in enumerate(fn.maps)}
    configs = {c.name: c for c in fn.configs}
    by_slot = {offset // SLOT_SIZE: symbol for offset, symbol in relocations}
    out: list[BpfInstruction] = []
    slot = 0
    for insn in insns:
        symbol = by_slot.pop(slot, None)
        if symbol is not None:
            addend = insn.imm & 0xFFFFFFFF
            if not insn.is_ld_imm64 or insn.src != 0:
                raise InternalCompilerError(f"LLVM's code for {fn.name!r} has a relocation against {symbol!r} on an instruction that is no BPF_LD_IMM64", None)
            if symbol in maps and addend == 0:
                insn = replace(insn, src=BPF_PSEUDO_MAP_FD, imm=maps[symbol])
            elif symbol in configs:
                insn = replace(insn, src=BPF_PSEUDO_MAP_VALUE, imm=(configs[symbol].offset + addend) << 32 | len(fn.maps))
            else:
                raise InternalCompilerError(f"LLVM's code for {fn.name!r} refers to a global, {symbol!r}, which pyfd's object does not have", None)
        out.append(insn)
        slot += insn.slots
    if by_slot:
        raise InternalCompilerError(f"LLVM's code for {fn.name!r} has a relocation inside an instruction", None)
    return out
