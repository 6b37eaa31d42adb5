"""The native backend: checked IR to BPF instructions, with no native dependency.

Instruction selection maps each IR node to two-address BPF over virtual
registers (`mir`), the allocator (`regalloc`) assigns r0-r9, and layout
orders blocks so most branches fall through. The packet check is lowered in
the one shape the verifier follows (kernel/bpf/verifier.c,
find_good_pkt_pointers): clamp a variable offset, form `data + off`, compare
`ptr + size` against `data_end` as 64-bit unsigned, and read through `ptr`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from pyfd.abi import MAX_PACKET_OFF, SKB_DATA, SKB_DATA_END, SKB_FLOW_KEYS
from pyfd.isa import AluOp, JmpOp, Label, Size, relax_jumps, resolve
from pyfd.isa import Instruction as BpfInstruction

from ..diagnostics import CompileError, InternalCompilerError, Span
from ..ir.builder import IRBuilder
from ..ir.nodes import (
    AtomicMapValue, Binary, BinaryOp, Block, Branch, ByteSwap, CheckPacket, Cmp, Copy, Extend, Function, Imm,
    Instruction, Jump, LoadConfig, LoadKeys, LoadMapValue, LoadPacket, MapDelete, MapLookup, MapUpdate, Operand, Reg,
    Return, SetCond, StoreKeys, StoreMapValue, Unary, UnaryOp, to_s64,
)
from ..ir.windows import window_layout
from ..passes.facts import Facts
from .fetch import expand_fetches
from .mir import (
    MBlock, MFunction, MInsn, MReg, alu64_imm, alu64_reg, endian_be, exit_insn, fetch, ja, jmp_imm, jmp_reg,
    ld_imm64, ldx_mem, mov32_imm, mov32_reg, mov64_imm, mov64_reg, neg64, st_mem, stx_mem,
)
from .native_maps import MapSelection, fix_frame_addresses
from .regalloc import AllocationError, StackLimitError, allocate
from .result import CompiledCode
from .peephole import bit_tests, jset_fall_through, thread_jumps


_SIZE = {1: Size.B, 2: Size.H, 4: Size.W, 8: Size.DW}
_ALU = {
    BinaryOp.ADD: AluOp.ADD, BinaryOp.SUB: AluOp.SUB, BinaryOp.MUL: AluOp.MUL, BinaryOp.UDIV: AluOp.DIV,
    BinaryOp.UMOD: AluOp.MOD, BinaryOp.AND: AluOp.AND, BinaryOp.OR: AluOp.OR, BinaryOp.XOR: AluOp.XOR,
    BinaryOp.SHL: AluOp.LSH, BinaryOp.LSHR: AluOp.RSH, BinaryOp.ASHR: AluOp.ARSH,
}
_COMMUTATIVE = {BinaryOp.ADD, BinaryOp.MUL, BinaryOp.AND, BinaryOp.OR, BinaryOp.XOR}
_SHIFTS = {BinaryOp.SHL, BinaryOp.LSHR, BinaryOp.ASHR}
_JMP = {
    Cmp.EQ: JmpOp.JEQ, Cmp.NE: JmpOp.JNE, Cmp.UGT: JmpOp.JGT, Cmp.UGE: JmpOp.JGE, Cmp.ULT: JmpOp.JLT,
    Cmp.ULE: JmpOp.JLE, Cmp.SGT: JmpOp.JSGT, Cmp.SGE: JmpOp.JSGE, Cmp.SLT: JmpOp.JSLT, Cmp.SLE: JmpOp.JSLE,
    Cmp.SET: JmpOp.JSET,
}


def _fits_s32(value: int) -> bool:
    """True if the 64-bit pattern `value` is a sign-extended 32-bit immediate."""
    return -(1 << 31) <= to_s64(value) < (1 << 31)


def _alu64(op: AluOp, dst: MReg, src: MReg | int, *, imm: bool, span: object) -> MInsn:
    if imm:
        assert isinstance(src, int)
        return alu64_imm(op, dst, to_s64(src), span=span)
    return alu64_reg(op, dst, src, span=span)


def _split_setcond(fn: Function) -> Function:
    """Lower `SetCond` to branches (BPF has no set-on-condition instruction)."""
    b = IRBuilder()
    n = 0
    for block in fn.blocks:
        b.position(block.label)
        for insn in block.insns:
            if not isinstance(insn, SetCond):
                b.emit(insn)
                continue
            n += 1
            yes, no, join = f"{block.label}.set{n}", f"{block.label}.clear{n}", f"{block.label}.cont{n}"
            b.terminate(Branch(insn.cmp, insn.lhs, insn.rhs, yes, no, insn.span))
            for label, bit in ((yes, 1), (no, 0)):
                b.position(label)
                b.emit(Copy(insn.dst, Imm(bit), insn.span))
                b.terminate(Jump(join, insn.span))
            b.position(join)
        b.terminate(block.term)
    split = b.finish(fn.name, fn.file, fn.span)
    split.maps, split.configs = fn.maps, fn.configs
    return split


class _Selector(MapSelection):
    """Instruction selection for one function (map operations: native_maps.MapSelection)."""

    def __init__(self, fn: Function) -> None:
        self.fn = fn
        self.facts = Facts(fn)
        self.n = 0
        self.out: list[MInsn] = []
        self.pointers: dict[Operand, str] = {}  # packet base -> register holding data + base
        self.windows: dict[int, str] = {}  # window -> register pointing just past its bytes (packet or stack copy)
        self.window_size: dict[int, int] = {}  # window -> its size: the displacement of its first byte is -size
        uses_keys = any(isinstance(i, (LoadKeys, StoreKeys)) for i in fn.instructions())
        uses_packet = any(isinstance(b.term, CheckPacket) for b in fn.blocks)
        self.keys = "keys" if uses_keys else None
        # Keys bytes the program writes: a read of any other keys byte gives
        # the same value everywhere, so it can be repeated instead of spilled.
        self.stored_keys = {off for i in fn.instructions() if isinstance(i, StoreKeys) for off in range(i.offset, i.offset + i.size)}
        self.data = "data" if uses_packet else None
        self.data_end = "data_end" if uses_packet else None

    def temp(self) -> str:
        self.n += 1
        return f"tmp{self.n}"

    def emit(self, insn: MInsn) -> None:
        self.out.append(insn)

    def reg(self, reg: Reg) -> str:
        return f"%{reg.name}"

    def materialize(self, value: int, span: object) -> str:
        tmp = self.temp()
        self.load_imm(tmp, value, span)
        return tmp

    def load_imm(self, dst: MReg, value: int, span: object) -> None:
        value &= (1 << 64) - 1
        if _fits_s32(value):
            self.emit(mov64_imm(dst, to_s64(value), span=span, remat=True))
        elif value < (1 << 32):  # mov32 zero-extends
            self.emit(mov32_imm(dst, value - (1 << 32) if value >> 31 else value, span=span, remat=True))
        else:
            self.emit(ld_imm64(dst, value, span=span))

    def operand(self, op: Operand, span: object) -> str:
        """`op` in a register."""
        return self.reg(op) if isinstance(op, Reg) else self.materialize(op.value, span)

    # -- entry ------------------------------------------------------------

    def prologue(self, span: Span) -> list[MInsn]:
        self.out = []
        if self.keys or self.data:
            self.emit(mov64_reg("ctx", 1, span=span))
        if self.keys:
            self.emit(ldx_mem(Size.DW, self.keys, "ctx", SKB_FLOW_KEYS, span=span))
        if self.data is not None and self.data_end is not None:
            self.emit(ldx_mem(Size.W, self.data, "ctx", SKB_DATA, span=span))
            self.emit(ldx_mem(Size.W, self.data_end, "ctx", SKB_DATA_END, span=span))
        return self.out

    # -- instructions -----------------------------------------------------

    def insn(self, insn: Instruction) -> None:
        span = insn.span
        match insn:
            case Copy(dst, src):
                if isinstance(src, Imm):
                    self.load_imm(self.reg(dst), src.value, span)
                elif src != dst:
                    self.emit(_alu64(AluOp.MOV, self.reg(dst), self.reg(src), imm=False, span=span))
            case Binary(op, dst, lhs, rhs):
                self.binary(op, dst, lhs, rhs, span)
            case Unary(op, dst, src):
                d = self.reg(dst)
                self.move(d, src, span)
                if op is UnaryOp.NEG:
                    self.emit(neg64(d, span=span))
                else:
                    self.emit(_alu64(AluOp.XOR, d, -1, imm=True, span=span))
            case Extend(signed, bits, dst, src):
                d = self.reg(dst)
                if not signed and bits == 32 and isinstance(src, Reg):
                    self.emit(mov32_reg(d, self.reg(src), span=span))  # w = w zero-extends
                    return
                self.move(d, src, span)
                if signed:
                    self.emit(_alu64(AluOp.LSH, d, 64 - bits, imm=True, span=span))
                    self.emit(_alu64(AluOp.ARSH, d, 64 - bits, imm=True, span=span))
                elif bits < 32:
                    self.emit(_alu64(AluOp.AND, d, (1 << bits) - 1, imm=True, span=span))
                else:
                    self.emit(mov32_reg(d, d, span=span))
            case ByteSwap(bits, dst, src):
                d = self.reg(dst)
                self.move(d, src, span)
                self.emit(endian_be(d, bits, span=span))
            case LoadKeys(dst, offset, size):
                assert self.keys is not None
                invariant = not self.stored_keys.intersection(range(offset, offset + size))
                self.emit(ldx_mem(_SIZE[size], self.reg(dst), self.keys, offset, span=span, remat=invariant))
            case StoreKeys(offset, size, src):
                assert self.keys is not None
                if isinstance(src, Imm) and (size < 8 or _fits_s32(src.value)):
                    value = src.value & ((1 << (8 * size)) - 1)
                    self.emit(st_mem(_SIZE[size], self.keys, offset, to_s64(value) if size == 8 else (value - (1 << 32) if value >> 31 else value), span=span))
                else:
                    self.emit(stx_mem(_SIZE[size], self.keys, self.operand(src, span), offset, span=span))
            case LoadPacket(dst, base, disp, size, window=None):
                ptr, extra = self.pointer(base)
                # The packet is read-only: the read gives the same value wherever it is repeated.
                self.emit(ldx_mem(_SIZE[size], self.reg(dst), ptr, extra + disp, span=span, remat=True))
            case LoadPacket(dst, base, disp, size, window=window):
                # Repeatable too: the window's buffer is not reused while a value
                # read through it is live (ir.windows counts those as uses).
                ptr, past = self.window_pointer(window, span)
                self.emit(ldx_mem(_SIZE[size], self.reg(dst), ptr, disp - past, span=span, remat=True))
            case SetCond():
                raise InternalCompilerError("SetCond reached instruction selection", insn.span)
            case MapLookup() | MapUpdate() | MapDelete() | LoadMapValue() | StoreMapValue() | AtomicMapValue() | LoadConfig():
                self.select_map(insn)
            case _:
                assert_never(insn)

    def move(self, dst: str, src: Operand, span: object) -> None:
        if isinstance(src, Imm):
            self.load_imm(dst, src.value, span)
        elif self.reg(src) != dst:
            self.emit(_alu64(AluOp.MOV, dst, self.reg(src), imm=False, span=span))

    def binary(self, op: BinaryOp, dst: Reg, lhs: Operand, rhs: Operand, span: object) -> None:
        d = self.reg(dst)
        if op in _COMMUTATIVE and isinstance(lhs, Imm) and isinstance(rhs, Reg):
            lhs, rhs = rhs, lhs
        if isinstance(rhs, Imm) and op in (BinaryOp.UDIV, BinaryOp.UMOD) and rhs.value == 0:
            # BPF: x / 0 == 0 and x % 0 == x, but the verifier refuses a constant zero divisor.
            self.move(d, Imm(0) if op is BinaryOp.UDIV else lhs, span)
            return
        if isinstance(rhs, Reg) and rhs == dst and lhs != dst:
            # dst is also the right operand: compute into a temporary first.
            tmp = self.temp()
            self.move(tmp, lhs, span)
            self.emit(_alu64(_ALU[op], tmp, self.reg(rhs), imm=False, span=span))
            self.emit(_alu64(AluOp.MOV, d, tmp, imm=False, span=span))
            return
        if isinstance(rhs, Imm) and op in _SHIFTS:
            # The IR masks a shift count with 63 (BPF's run-time semantics), but
            # the verifier refuses an immediate count >= 64 ("invalid shift"):
            # constant propagation can turn `n = 70; x >> n` into one.
            rhs = Imm(rhs.value & 63)
        if op in _COMMUTATIVE and isinstance(rhs, Imm) and not _fits_s32(rhs.value) and isinstance(lhs, Reg) and lhs != dst:
            # A wide constant goes straight into dst (`dst = C; dst op= lhs`):
            # no temporary holding it next to a copy of lhs.
            self.load_imm(d, rhs.value, span)
            self.emit(_alu64(_ALU[op], d, self.reg(lhs), imm=False, span=span))
            return
        self.move(d, lhs, span)
        if isinstance(rhs, Imm) and _fits_s32(rhs.value):
            self.emit(_alu64(_ALU[op], d, rhs.value, imm=True, span=span))
        else:
            self.emit(_alu64(_ALU[op], d, self.operand(rhs, span), imm=False, span=span))

    def pointer(self, base: Operand) -> tuple[str, int]:
        """The register pointing at packet offset `base`, and a displacement to add."""
        assert self.data is not None
        if isinstance(base, Imm):
            return self.data, base.value
        ptr = self.pointers.get(base)
        if ptr is None:
            raise InternalCompilerError(f"packet load from {base} without a check", None)
        return ptr, 0

    def window_pointer(self, window: int | None, span: Span) -> tuple[str, int]:
        """The register pointing past the window's bytes (check_window), and how far past."""
        ptr = self.windows.get(window) if window is not None else None
        if ptr is None or window is None:
            raise InternalCompilerError(f"packet load through window {window} without its check", span)
        return ptr, self.window_size[window]

    # -- terminators ------------------------------------------------------

    def check_window(self, term: CheckPacket) -> MInsn:
        """A check with a window: the fast test, ending in a jump to `ok` past the slow block; returns the slow block's FETCH.

        The fast path is the linear check with the pointer kept, pointing
        just past the window's bytes: `ptr = data + base + size`, in bounds if
        `ptr <= data_end`, a byte at `disp` read at `ptr + disp - size`. The
        verifier knows `ptr` as `data + base` with a constant offset `size`,
        learns `range = size` from the test (find_good_pkt_pointers), and
        adds that offset to a read's negative displacement
        (check_packet_access), so no copy of the start is needed. Otherwise
        the slow block right after fills the window's buffer and points `ptr`
        just past it too (or leaves for `fail`), then falls into `ok`. Placed
        right after the check, it stretches no value's live range.
        """
        assert self.data is not None and self.data_end is not None and term.window is not None
        span = term.span
        ptr = self.windows.setdefault(term.window, f"win{term.window}")
        self.window_size[term.window] = term.size
        if isinstance(term.base, Imm):
            self.emit(_alu64(AluOp.MOV, ptr, self.data, imm=False, span=span))
            if term.base.value + term.size:
                self.emit(_alu64(AluOp.ADD, ptr, term.base.value + term.size, imm=True, span=span))
            self.emit(jmp_reg(JmpOp.JLE, ptr, self.data_end, term.ok, span=span))
            return fetch(ptr, term.window, term.size, term.fail, imm=term.base.value, span=span)
        base = self.reg(term.base)
        bits = self.verifier_bits(term.base)
        if bits >= 64 or (1 << bits) - 1 > MAX_PACKET_OFF - term.size:
            self.emit(jmp_imm(JmpOp.JGT, base, MAX_PACKET_OFF - term.size, term.fail, span=span))
        self.emit(_alu64(AluOp.MOV, ptr, self.data, imm=False, span=span))
        self.emit(_alu64(AluOp.ADD, ptr, base, imm=False, span=span))
        if term.size:
            self.emit(_alu64(AluOp.ADD, ptr, term.size, imm=True, span=span))
        self.emit(jmp_reg(JmpOp.JLE, ptr, self.data_end, term.ok, span=span))
        return fetch(ptr, term.window, term.size, term.fail, reg=base, span=span)

    def check(self, term: CheckPacket, fail: str) -> None:
        """The bounds check in the shape the verifier understands."""
        assert self.data is not None and self.data_end is not None
        span = term.span
        end = self.temp()
        if isinstance(term.base, Imm):
            self.emit(_alu64(AluOp.MOV, end, self.data, imm=False, span=span))
            self.emit(_alu64(AluOp.ADD, end, term.base.value + term.size, imm=True, span=span))
        else:
            base = self.reg(term.base)
            bits = self.verifier_bits(term.base)
            if bits >= 64 or (1 << bits) - 1 > MAX_PACKET_OFF - term.size:
                # Without this clamp `data + off` teaches the verifier nothing and
                # the read fails with "invalid access to packet ... r=0".
                self.emit(jmp_imm(JmpOp.JGT, base, MAX_PACKET_OFF - term.size, fail, span=span))
            ptr = self.pointers.setdefault(term.base, f"ptr.{term.base.name}")
            self.emit(_alu64(AluOp.MOV, ptr, self.data, imm=False, span=span))
            self.emit(_alu64(AluOp.ADD, ptr, base, imm=False, span=span))
            self.emit(_alu64(AluOp.MOV, end, ptr, imm=False, span=span))
            if term.size:  # `pkt.has(end)` checks the end itself
                self.emit(_alu64(AluOp.ADD, end, term.size, imm=True, span=span))
        # Unsigned 64-bit `ptr + size > data_end`: the fall-through is in bounds.
        self.emit(jmp_reg(JmpOp.JGT, end, self.data_end, fail, span=span))

    def verifier_bits(self, op: Operand) -> int:
        """An upper bound on the bits of `op` that the verifier proves too (64 if it cannot).

        `Facts.bits` bounds the value; this bounds what the verifier's range
        tracking (kernel/bpf/verifier.c, adjust_scalar_min_max_vals) learns
        from the instructions selected here: the rules of facts.WIDTH_RULES
        marked `verifier`. It learns nothing from a byte swap, a division or
        a modulo, so a base computed by one needs the clamp even when its
        value cannot exceed it: without it, `data + base` is refused ("math
        between pkt pointer and register with unbounded min value").
        """
        return self.facts.bits(op, verifier=True)

    def branch(self, cmp: Cmp, lhs: Operand, rhs: Operand, target: str, span: object) -> None:
        if isinstance(lhs, Imm):
            lhs, rhs, cmp = rhs, lhs, cmp.swapped()
        assert isinstance(lhs, Reg)
        op = _JMP[cmp]
        if isinstance(rhs, Imm) and _fits_s32(rhs.value):
            self.emit(jmp_imm(op, self.reg(lhs), to_s64(rhs.value), target, span=span))
        else:
            self.emit(jmp_reg(op, self.reg(lhs), self.operand(rhs, span), target, span=span))


def _layout(fn: Function) -> list[Block]:
    """Blocks in reverse postorder, visiting a block's first successor last.

    Reverse postorder is a topological order of the (loop-free) CFG: both arms
    of an `if` come before the block where they join, so the allocator's
    linear intervals stay short. A depth-first preorder would place the join
    and everything after it before the second arm, stretching every value the
    arms define to the end of the function and spilling nearly everything.
    Visiting the first successor (a check's `ok` edge, a branch's `then`
    edge) last puts it right after its block, so the in-bounds path falls
    through and the shared `drop` block ends up at the end.
    """
    blocks = fn.block_map()
    seen = {fn.entry.label}
    postorder: list[str] = []
    stack: list[tuple[str, list[str]]] = [(fn.entry.label, _layout_successors(blocks[fn.entry.label]))]
    while stack:
        label, pending = stack[-1]
        if pending:
            nxt = pending.pop()  # the last successor first, the first one last
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, _layout_successors(blocks[nxt])))
        else:
            stack.pop()
            postorder.append(label)
    return [blocks[label] for label in reversed(postorder)]


def _layout_successors(block: Block) -> list[str]:
    """A block's successors, the one to place right after it first.

    A `set` test (JSET) has no inverse in BPF: only its `otherwise` edge can
    fall through, so that one goes first; placed after its `then` arm the
    test would need a `goto` to reach it.
    """
    term = block.term
    if isinstance(term, Branch) and term.cmp is Cmp.SET:
        return [term.otherwise, term.then]
    return list(block.successors())


def select(fn: Function) -> MFunction:
    """Instruction selection: IR function to machine IR over virtual registers."""
    fn = _split_setcond(fn)
    sel = _Selector(fn)
    order = _layout(fn)
    mblocks: list[MBlock] = []
    prologue = sel.prologue(fn.span)
    for i, block in enumerate(order):
        nxt = order[i + 1].label if i + 1 < len(order) else None
        sel.out = list(prologue) if i == 0 else []
        for insn in block.insns:
            sel.insn(insn)
        term = block.term
        match term:
            case Return(value):
                sel.emit(mov64_imm(0, value, span=term.span))
                sel.emit(exit_insn(span=term.span))
            case Jump(target):
                if target != nxt:
                    sel.emit(ja(target, span=term.span))
            case CheckPacket(ok=ok, window=window) if window is not None:
                slow = f"{block.label}.copy"
                copy = sel.check_window(term)
                mblocks.append(MBlock(block.label, sel.out, [ok, slow]))
                insns = [copy] if ok == nxt else [copy, ja(ok, span=term.span)]
                mblocks.append(MBlock(slow, insns, [term.fail, ok]))
                continue
            case CheckPacket(ok=ok, fail=fail):
                sel.check(term, fail)
                if ok != nxt:
                    sel.emit(ja(ok, span=term.span))
            case Branch(cmp, lhs, rhs, then, otherwise):
                if then == nxt and cmp is not Cmp.SET:
                    sel.branch(cmp.inverted(), lhs, rhs, otherwise, term.span)
                else:
                    sel.branch(cmp, lhs, rhs, then, term.span)
                    if otherwise != nxt:
                        sel.emit(ja(otherwise, span=term.span))
            case _:
                assert_never(term)
        mblocks.append(MBlock(block.label, sel.out, list(block.successors())))
    return MFunction(fn.name, mblocks, stable=frozenset(sel.windows.values()))


def _drop_jumps_to_next(blocks: list[MBlock]) -> None:
    for i, b in enumerate(blocks[:-1]):
        if b.insns and b.insns[-1].is_ja and b.insns[-1].target == blocks[i + 1].label:
            b.insns.pop()


def compile_native(fn: Function) -> CompiledCode:
    """Compile a checked IR function to BPF instructions."""
    mfn = select(fn)
    try:
        allocate(mfn)
    except StackLimitError as exc:
        span = exc.span if isinstance(exc.span, Span) else fn.span
        raise CompileError(
            str(exc),
            span,
            hint="compute values closer to where they are used, so fewer are kept at once (the llvm backend may fit it)",
        ) from None
    except AllocationError as exc:
        raise InternalCompilerError(str(exc), fn.span) from exc
    fix_frame_addresses(mfn, fn.span)  # map keys and values below the spills, then the windows' frame
    if any(isinstance(b.term, CheckPacket) and b.term.window is not None for b in fn.blocks):
        try:
            expand_fetches(mfn, window_layout(fn))
        except StackLimitError as exc:
            raise CompileError(str(exc), fn.span, hint="read fewer headers at once, or compile without page-fragment reads") from None
    thread_jumps(mfn)
    bit_tests(mfn)
    jset_fall_through(mfn)
    _drop_jumps_to_next(mfn.blocks)
    items: list[BpfInstruction | Label] = []
    for b in mfn.blocks:
        items.append(Label(_label_name(b.label)))
        for insn in b.insns:
            if insn.target is not None:
                insn = replace(insn, target=_label_name(insn.target))
            items.append(insn.to_isa())
    # A jump over more than 32767 slots goes through cpu v4's gotol.
    return CompiledCode(fn.name, "native", tuple(resolve(relax_jumps(items))))


def _label_name(label: str) -> str:
    return label if label[:1].isalpha() or label[:1] == "_" else f"L{label}"
