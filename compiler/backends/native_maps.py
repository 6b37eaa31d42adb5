"""Instruction selection for map operations and load-time constants (the native backend).

A map helper takes its key (and value) by pointer to the stack, the map in
r1 as a BPF_LD_IMM64 the loader relocates (BPF_PSEUDO_MAP_FD; pyfd writes
the map's index in its object until then), and returns in r0; r1-r5 are
clobbered (the calling convention of kernel/bpf/core.c). The key and value
go in two 8-byte slots below the spill slots, whose size is known only after
register allocation: the address is formed as `r = r10; r += -OFFSET` with
the offset fixed then (`fix_frame_addresses`). They are written through that
register, not r10, so the allocator's spill-slot packing never mistakes them
for spill slots.

A load-time constant is a load through a BPF_LD_IMM64 of the `.rodata` map's
value (BPF_PSEUDO_MAP_VALUE, map index after the maps, the offset in the
high half): the verifier reads a frozen BPF_F_RDONLY_PROG map's value itself
(kernel/bpf/verifier.c, bpf_map_direct_read) and knows it as a constant.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, assert_never

from pyfd.abi import (
    MAX_BPF_STACK,
    BPF_FUNC_map_delete_elem,
    BPF_FUNC_map_lookup_elem,
    BPF_FUNC_map_update_elem,
)
from pyfd.isa import AluOp, Size

from ..diagnostics import CompileError, InternalCompilerError, Span
from ..ir.nodes import (
    AtomicMapValue,
    AtomicOp,
    Function,
    Imm,
    LoadConfig,
    LoadMapValue,
    MapDelete,
    MapLookup,
    MapUpdate,
    Operand,
    Reg,
    StoreMapValue,
    to_s64,
)
from .mir import (
    FP,
    MFunction,
    MInsn,
    MReg,
    atomic_op,
    call_helper,
    frame_address,
    ld_map_fd,
    ld_map_value,
    ldx_mem,
    mov64_imm,
    mov64_reg,
    st_mem,
    stx_mem,
)

_SIZE = {1: Size.B, 2: Size.H, 4: Size.W, 8: Size.DW}
_ATOMIC = {AtomicOp.ADD: AluOp.ADD, AtomicOp.OR: AluOp.OR, AtomicOp.AND: AluOp.AND, AtomicOp.XOR: AluOp.XOR}

KEY_SLOT = 8  # bytes below the spill slots: the key a helper reads
VALUE_SLOT = 16  # the value bpf_map_update_elem reads
CALL_AREA = 16  # both

MapInstruction = MapLookup | MapUpdate | MapDelete | LoadMapValue | StoreMapValue | AtomicMapValue | LoadConfig


def _fits_s32(value: int) -> bool:
    return -(1 << 31) <= to_s64(value) < (1 << 31)


class MapSelection:
    """Selects map operations; mixed into the native backend's `_Selector`, whose emitters it uses."""

    fn: Function

    if TYPE_CHECKING:  # the selector's emitters

        def emit(self, insn: MInsn) -> None: ...
        def temp(self) -> str: ...
        def reg(self, reg: Reg) -> str: ...
        def operand(self, op: Operand, span: object) -> str: ...

    def map_index(self, name: str) -> int:
        """The map's place in the object's list of maps (libbpf's order: the maps, then .rodata)."""
        for index, m in enumerate(self.fn.maps):
            if m.name == name:
                return index
        raise InternalCompilerError(f"map {name} is not declared", None)

    @property
    def rodata_index(self) -> int:
        """The index of the `.rodata` map: after the declared maps."""
        return len(self.fn.maps)

    def select_map(self, insn: MapInstruction) -> None:
        """Emit the instructions of one map operation."""
        span = insn.span
        match insn:
            case MapLookup(dst, name, key):
                key_ptr = self._stack_copy(KEY_SLOT, key, self._key_size(name), span)
                self._call(BPF_FUNC_map_lookup_elem, name, [key_ptr], span)
                self.emit(mov64_reg(self.reg(dst), 0, span=span))
            case MapUpdate(name, key, value, flags):
                m = self.fn.map_named(name)
                assert m is not None
                key_ptr = self._stack_copy(KEY_SLOT, key, m.key_size, span)
                value_ptr = self._stack_copy(VALUE_SLOT, value, m.value_size, span)
                self._call(BPF_FUNC_map_update_elem, name, [key_ptr, value_ptr, flags], span)
            case MapDelete(name, key):
                key_ptr = self._stack_copy(KEY_SLOT, key, self._key_size(name), span)
                self._call(BPF_FUNC_map_delete_elem, name, [key_ptr], span)
            case LoadMapValue(dst, ptr, size):
                self.emit(ldx_mem(_SIZE[size], self.reg(dst), self.reg(ptr), 0, span=span))
            case StoreMapValue(ptr, size, src):
                self._store(self.reg(ptr), size, src, span)
            case AtomicMapValue(op, ptr, size, src):
                self.emit(atomic_op(_SIZE[size], _ATOMIC[op], self.reg(ptr), self.operand(src, span), 0, span=span))
            case LoadConfig(dst, offset, size):
                address = self.temp()
                self.emit(ld_map_value(address, self.rodata_index, offset, span=span))
                self.emit(ldx_mem(_SIZE[size], self.reg(dst), address, 0, span=span))
            case _:
                assert_never(insn)

    def _key_size(self, name: str) -> int:
        m = self.fn.map_named(name)
        if m is None:
            raise InternalCompilerError(f"map {name} is not declared", None)
        return m.key_size

    def _store(self, base: MReg, size: int, src: Operand, span: object) -> None:
        """*(size *)(base + 0) = src."""
        if isinstance(src, Imm) and (size < 8 or _fits_s32(src.value)):
            value = src.value & ((1 << (8 * size)) - 1)
            imm = to_s64(value) if size == 8 else (value - (1 << 32) if value >> 31 else value)
            self.emit(st_mem(_SIZE[size], base, 0, imm, span=span))
        else:
            self.emit(stx_mem(_SIZE[size], base, self.operand(src, span), 0, span=span))

    def _stack_copy(self, slot: int, value: Operand, size: int, span: object) -> str:
        """`value`'s low `size` bytes in a stack slot below the spill slots; a register pointing at them."""
        ptr = self.temp()
        self.emit(mov64_reg(ptr, FP, span=span))
        self.emit(frame_address(ptr, slot, span=span))
        self._store(ptr, size, value, span)
        return ptr

    def _call(self, helper: int, name: str, args: list[str | int], span: object) -> None:
        """r1 = the map, r2.. = `args` (registers, or an immediate), call `helper`.

        Everything else is computed before r1 is written, so from there to
        the call the argument registers hold nothing but the arguments.
        """
        self.emit(ld_map_fd(1, self.map_index(name), span=span))
        for number, arg in enumerate(args, start=2):
            if isinstance(arg, int):
                self.emit(mov64_imm(number, arg, span=span))
            else:
                self.emit(mov64_reg(number, arg, span=span))
        self.emit(call_helper(helper, 1 + len(args), span=span))


def fix_frame_addresses(mfn: MFunction, span: Span) -> None:
    """Give each key and value slot its offset below the spill slots, now that they are allocated."""
    if not any(i.frame_offset is not None for b in mfn.blocks for i in b.insns):
        return
    if mfn.stack_size + CALL_AREA > MAX_BPF_STACK:
        raise CompileError(
            f"too many values are live at once: with the {CALL_AREA} bytes a map helper's key and value take, "
            f"the stack needs {mfn.stack_size + CALL_AREA} bytes; BPF allows {MAX_BPF_STACK}",
            span,
            hint="compute values closer to where they are used, so fewer are kept at once (the llvm backend may fit it)",
        )
    for b in mfn.blocks:
        b.insns = [replace(i, imm=-(mfn.stack_size + i.frame_offset), frame_offset=None) if i.frame_offset is not None else i for i in b.insns]
    mfn.stack_size += CALL_AREA
