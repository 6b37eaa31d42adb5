"""Reads and writes of the packet and the keys: fields, byte order, bounds checks.

The kernel's rules live here: a header read needs a dominating bounds check
(`CheckPacket`), a keys field is a store at its offset in struct
bpf_flow_keys, big-endian fields are swapped on the way. No `ast` here:
positions arrive as spans.
"""

from __future__ import annotations

from collections.abc import Callable

from pyfd.headers import Header
from pyfd.keys import KEY_FIELDS
from pyfd.layout import Field
from pyfd.abi import MAX_PACKET_OFF

from ..diagnostics import CompileNameError, PacketAccessError, Span
from ..ir.builder import IRBuilder
from ..ir.nodes import Binary, BinaryOp, ByteSwap, CheckPacket, Copy, Imm, LoadKeys, LoadPacket, Operand, Reg, StoreKeys
from ..typesys import unsigned_for_bits
from .semantics import BytesView, HeaderView, Meaning, Value, article, check_literal, fail

_LOADABLE = (1, 2, 4, 8)  # the sizes of BPF's loads and stores


def key_field(name: str, span: Span) -> Field:
    """The struct bpf_flow_keys field `name`."""
    fld = KEY_FIELDS.get(name)
    if fld is None:
        names = ", ".join(KEY_FIELDS)
        fail(span, f"struct bpf_flow_keys has no field `{name}`", hint=f"fields: {names}", kind=CompileNameError)
    return fld


def read_keys(b: IRBuilder, name: str, span: Span) -> Value:
    """`keys.name` as an integer."""
    fld = key_field(name, span)
    if fld.size not in _LOADABLE:
        fail(span, f"keys.{name} is a {fld.size * 8}-bit field and cannot be read as an integer")
    raw = b.fresh()
    b.emit(LoadKeys(raw, fld.offset, fld.size, span))
    return decode(b, raw, fld, span)


def read_header(b: IRBuilder, view: HeaderView, name: str, span: Span) -> Value | BytesView:
    """`hdr.name`: an integer read, or the bytes of a field too wide for one (an address)."""
    fld = view.kind.fields.get(name)
    if fld is None:
        names = ", ".join(view.kind.fields)
        fail(span, f"header {view.kind.__name__} has no field `{name}`", hint=f"fields: {names}", kind=CompileNameError)
    if not fld.is_bitfield and fld.size not in _LOADABLE:
        return BytesView(view.base, fld.offset, fld.size, f"{view.kind.__name__}.{name}", view.window)
    return decode(b, load_packet(b, view.base, fld.offset, fld.size, view.window, span), fld, span)


def load_packet(b: IRBuilder, base: Operand, disp: int, size: int, window: int | None, span: Span) -> Reg:
    """The raw little-endian `size`-byte load at `base + disp`, in aligned pieces through a window.

    A window may be a stack copy, where the verifier wants every access
    aligned to its size (check_ptr_alignment), so a field at an odd offset
    (a 32-bit field at byte 2 of a custom header) is read in the widest
    aligned pieces and put together; in the linear part any offset reads.
    """
    if window is None or disp % size == 0:
        raw = b.fresh()
        b.emit(LoadPacket(raw, base, disp, size, span, window))
        return raw
    value: Reg | None = None
    done = 0
    while done < size:
        width = next(w for w in (4, 2, 1) if w <= size - done and (disp + done) % w == 0)
        piece = b.fresh()
        b.emit(LoadPacket(piece, base, disp + done, width, span, window))
        if value is None:
            value = piece
        else:
            shifted, joined = b.fresh(), b.fresh()
            b.emit(Binary(BinaryOp.SHL, shifted, piece, Imm(8 * done), span))
            b.emit(Binary(BinaryOp.OR, joined, value, shifted, span))
            value = joined
        done += width
    assert value is not None
    return value


def decode(b: IRBuilder, raw: Reg, fld: Field, span: Span) -> Value:
    """A field's host-order value from its raw little-endian load."""
    value = raw
    if fld.order == "big" and fld.size > 1:
        value = b.fresh()
        b.emit(ByteSwap(fld.size * 8, value, raw, span))
    if fld.is_bitfield:
        if fld.shift:
            shifted = b.fresh()
            b.emit(Binary(BinaryOp.LSHR, shifted, value, Imm(fld.shift), span))
            value = shifted
        if fld.shift + fld.bits < fld.size * 8:
            masked = b.fresh()
            b.emit(Binary(BinaryOp.AND, masked, value, Imm((1 << fld.bits) - 1), span))
            value = masked
    return Value(value, unsigned_for_bits(fld.width))


def store_keys(b: IRBuilder, fld: Field, result: Meaning, target: Span, value: Span) -> None:
    """`keys.field = result`: an integer, encoded in the field's byte order, or opaque bytes copied whole."""
    if isinstance(result, BytesView):
        if fld.is_bitfield or fld.size != result.size or fld.order != "big":
            fail(
                value,
                f"{result.name} is {result.size} bytes; keys.{fld.name} is {article(f'{fld.width}-bit')} field",
                hint="copy opaque bytes only into a keys field of the same size",
            )
        copy_bytes(b, result, fld, target)
        return
    if not isinstance(result, Value):
        fail(value, f"keys.{fld.name} must be assigned an integer")
    if fld.size not in _LOADABLE:
        fail(
            target,
            f"keys.{fld.name} is a {fld.size * 8}-bit field; it cannot be assigned from an integer expression",
            hint="assign it a header field of the same size, e.g. `keys.ipv6_src = ip6.saddr`",
        )
    if result.const is not None:
        check_literal(result, unsigned_for_bits(fld.width), value, f"keys.{fld.name}")
        raw = result.const & ((1 << fld.width) - 1)
        if fld.order == "big":
            raw = int.from_bytes(raw.to_bytes(fld.size, "big"), "little")
        b.emit(StoreKeys(fld.offset, fld.size, Imm(raw), target))
        return
    src: Operand = result.op
    if fld.order == "big" and fld.size > 1:
        swapped = b.fresh()
        b.emit(ByteSwap(fld.size * 8, swapped, src, target))
        src = swapped
    b.emit(StoreKeys(fld.offset, fld.size, src, target))


def copy_bytes(b: IRBuilder, src: BytesView, fld: Field, span: Span) -> None:
    """Copy packet bytes into the keys verbatim, in the widest loads and stores that fit.

    Both sides are in network order, so no byte swap: a little-endian load
    followed by a little-endian store of the same width moves the bytes as
    they are.
    """
    done = 0
    while done < src.size:
        width = next(
            w
            for w in (8, 4, 2, 1)
            if w <= src.size - done and (fld.offset + done) % w == 0 and (src.window is None or (src.offset + done) % w == 0)
        )
        raw = b.fresh()
        b.emit(LoadPacket(raw, src.base, src.offset + done, width, span, src.window))
        b.emit(StoreKeys(fld.offset + done, width, raw, span))
        done += width


def check_has(b: IRBuilder, end: Value, end_span: Span, span: Span, true: str, false: str) -> CheckPacket:
    """`pkt.has(end)`: true if the packet holds at least `end` bytes (a check that reads nothing).

    The packet, not its linear part: the check has a window, so bytes in
    page fragments count (its copy is one probed byte, read by nothing).
    """
    if end.const is not None:
        if not 0 <= end.const <= MAX_PACKET_OFF:
            fail(end_span, f"constant length {end.const} is outside 0..{MAX_PACKET_OFF}", kind=PacketAccessError)
        return CheckPacket(Imm(end.const), 0, true, false, span, b.fresh_window())
    base = b.fresh("end")
    b.emit(Copy(base, end.op, span))
    return CheckPacket(base, 0, true, false, span, b.fresh_window())


def check_header(b: IRBuilder, kind: type[Header], offset: Value, offset_span: Span, span: Span, drop: Callable[[Span], str]) -> HeaderView:
    """`pkt.header(kind, offset)`: a bounds check that leaves for the block `drop` names, then a view later reads share.

    The check opens a window: the header is read in place when it is in the
    linear part and from a stack copy when it is in page fragments.
    """
    if offset.const is not None:
        if offset.const < 0:
            fail(offset_span, f"constant offset {offset.const} is negative", kind=PacketAccessError)
        if offset.const > MAX_PACKET_OFF - kind.size:
            fail(
                offset_span,
                f"constant offset {offset.const} is beyond what the verifier can track (at most {MAX_PACKET_OFF - kind.size} for a {kind.size}-byte header)",
                kind=PacketAccessError,
            )
        base: Operand = Imm(offset.const)
    else:
        # A fresh register, written once, so no later assignment can move the
        # base between the check and the reads (the IR checker insists).
        base = b.fresh("hdr")
        b.emit(Copy(base, offset.op, span))
    ok = b.new_block("inbounds")
    window = b.fresh_window()
    b.terminate(CheckPacket(base, kind.size, ok, drop(span), span, window))
    b.position(ok)
    return HeaderView(kind, base, window)

