"""Dissectors that use the structuring features: helpers, loops, tuples, opaque bytes.

Each reads a random payload and stores what it computes into the keys; the
tests run each in the kernel and as CPython and compare all 56 bytes.
"""

from pyfd import (
    BPF_DROP,
    BPF_FLOW_DISSECTOR_CONTINUE,
    BPF_OK,
    BpfFlowKeys,
    Packet,
    dissector,
    i64,
    u8,
    u16,
    u32,
)
from pyfd.headers import Bytes, Header

from . import language_helpers as helpers

SKIP = 7  # a verdict that is not a return code


class Item(Header):
    """A type-length item: `kind`, `length` in bytes after these two, then a value."""

    kind: u8
    length: u8


class Value16(Header):
    """Sixteen opaque bytes."""

    raw: Bytes[16]
    word: u32


def mix(a: u32, b: u16) -> u32:
    """Arguments narrow to their annotations; the result narrows to `u32`."""
    return a * 3 + b - 7


def count_items(pkt: Packet, keys: BpfFlowKeys, start: u16) -> tuple[u8, u16]:
    """Walk up to 6 items; stop at kind 0; a kind 255 item is an error."""
    off = start
    n: u8 = 0
    for _ in range(6):
        item = pkt.header(Item, off)
        if item.kind == 0:
            break
        if item.kind == 255:
            return 0, off
        if item.kind == 1:
            off += 2
            continue
        off += 2 + item.length
        n += 1
    else:
        n += 100  # no terminator within 6 items
    return n, off


@dissector
def items(pkt: Packet, keys: BpfFlowKeys) -> int:
    """A bounded loop with break, continue and else, in a helper returning a tuple."""
    n, end = count_items(pkt, keys, keys.nhoff)
    keys.thoff = end
    keys.ip_proto = n
    if n == 0:
        return BPF_DROP
    return BPF_OK


@dissector
def calls(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Helpers from this module and another, nested, with narrowing arguments and results."""
    v = pkt.header(Value16, keys.nhoff)
    keys.ipv6_src = v.raw
    x = mix(v.word, v.word)
    keys.flow_label = x
    keys.sport = helpers.fold16(v.word)
    keys.dport = helpers.twice(u16(v.word >> 16))
    verdict = helpers.classify(v.word)
    if verdict == SKIP:
        return BPF_FLOW_DISSECTOR_CONTINUE
    return verdict


@dissector
def nested_loops(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Loops inside loops, a descending range, and a signed loop variable."""
    total: u32 = 0
    for i in range(3):
        for j in range(4, 0, -1):
            item = pkt.header(Item, keys.nhoff + i * 2)
            total += item.kind * j + item.length
        if total > 600:
            break
    acc: i64 = 0
    for k in range(-2, 2):
        acc += k
    keys.flow_label = total
    keys.sport = u16(acc)
    if pkt.has(keys.nhoff + 32):
        keys.is_encap = 1
    return BPF_OK


ALL = [items, calls, nested_loops]
