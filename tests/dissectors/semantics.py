"""Dissectors that compute with every operator, width and cast of the language.

Each reads fields of a random payload, computes, and stores results into the
flow keys (the only output) and picks its return code with comparisons. The
tests run each one in the kernel and as CPython on the same frames: the 56
bytes of keys and the return value must agree.
"""

from pyfd import (
    BPF_DROP,
    BPF_FLOW_DISSECTOR_CONTINUE,
    BPF_OK,
    BpfFlowKeys,
    Packet,
    dissector,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
)
from pyfd.headers import Bits, Header


class Words(Header):
    """32 bytes of integers of every width."""

    a: u8
    b: u8
    c: u16
    d: u32
    e: u64
    f: u64
    g: u32
    h: u16
    s1: u8
    s2: u8


class Packed(Header):
    """Bit fields in units of 1, 2, 4 and 8 bytes."""

    top: Bits[3]
    mid: Bits[5]
    hi: Bits[3]
    md: Bits[7]
    lo: Bits[6]
    flag: Bits[1]
    rest: Bits[31]
    p: Bits[20]
    q: Bits[44]


@dissector
def arith(pkt: Packet, keys: BpfFlowKeys) -> int:
    """+ - * // % & | ^ on 64 bits, stored into narrow fields."""
    w = pkt.header(Words, keys.nhoff)
    a = w.a
    b = w.b
    c = w.c
    d = w.d
    e = w.e
    f = w.f
    keys.ipv4_src = a + d + e
    keys.ipv4_dst = d - e
    keys.flow_label = (e * f) ^ (e * 0x9E3779B97F4A7C15)
    keys.sport = c * 3 + a - f
    keys.dport = e // b + f // c
    keys.is_frag = d % a
    keys.is_first_frag = e % b
    keys.is_encap = (e & f) | (d ^ c)
    keys.ip_proto = e // f + e % f
    keys.addr_proto = (c - d) * (a - 7)
    keys.flags = e - f * 3 + (d // 7) * (d % 7)
    keys.n_proto = 1000 - c
    keys.thoff = keys.nhoff + a % 11
    if e > f:
        return BPF_OK
    if e == f:
        return BPF_FLOW_DISSECTOR_CONTINUE
    return BPF_DROP


@dissector
def shifts(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Constant and variable shift counts (BPF masks a count with 63), signed and not."""
    w = pkt.header(Words, 14)
    e = w.e
    d = w.d
    n = w.s1
    m = w.s2
    seventy = 70
    keys.ipv4_src = (e << 5) >> 32
    keys.ipv4_dst = (e >> n) ^ (d << m)
    keys.flow_label = (e << n) >> 32
    keys.sport = e >> seventy
    keys.dport = (e << seventy) >> 48
    keys.flags = (i64(e) >> i64(n)) >> 16
    keys.n_proto = i64(e) >> n
    keys.addr_proto = i32(d) >> 7
    keys.ip_proto = i32(d) >> i32(m)
    keys.is_frag = (i64(e) << 3) >> 61
    keys.is_first_frag = u64(i64(e) >> 63)
    keys.is_encap = (1 << m) >> 56
    if (e >> n) > (d << m):
        return BPF_OK
    return BPF_DROP


@dissector
def unary_casts(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Unary - and ~, casts to every width with wraparound, typed and inferred locals."""
    w = pkt.header(Words, keys.nhoff)
    e = w.e
    d = w.d
    g = w.g
    neg = -e
    inv = ~d
    x: u16 = e
    y: i32 = d
    z: u8 = -y
    s = i32(g) + i32(d)
    big: u32 = s
    keys.ipv4_src = neg
    keys.ipv4_dst = inv
    keys.sport = x
    keys.dport = u16(i32(d) * -3)
    keys.flow_label = u32(-i64(e)) ^ big
    keys.ip_proto = z
    keys.is_frag = u8(y >> 24)
    keys.is_first_frag = u8(i64(e) // w.b)
    keys.is_encap = u8(-(~e))
    keys.addr_proto = u16(i32(u16(e)) - 40000)
    keys.flags = u32(i64(i32(d)) >> 40)
    keys.n_proto = u16(-s)
    if i32(d) < i32(g):
        return BPF_OK
    if i64(e) >= 0:
        return BPF_FLOW_DISSECTOR_CONTINUE
    return BPF_DROP


@dissector
def compares(pkt: Packet, keys: BpfFlowKeys) -> int:
    """All six comparisons, signed and unsigned, as branches and as values."""
    w = pkt.header(Words, keys.nhoff)
    a = w.a
    b = w.b
    e = w.e
    f = w.f
    sa = i64(e)
    sb = i64(f)
    ia = i32(w.d)
    ib = i32(w.g)
    keys.is_frag = (a == b) + 2 * (a != b) + 4 * (a < b) + 8 * (a <= b) + 16 * (a > b) + 32 * (a >= b)
    keys.is_first_frag = (e == f) + 2 * (e != f) + 4 * (e < f) + 8 * (e <= f) + 16 * (e > f) + 32 * (e >= f)
    keys.is_encap = (sa == sb) + 2 * (sa != sb) + 4 * (sa < sb) + 8 * (sa <= sb) + 16 * (sa > sb) + 32 * (sa >= sb)
    keys.ip_proto = (ia == ib) + 2 * (ia != ib) + 4 * (ia < ib) + 8 * (ia <= ib) + 16 * (ia > ib) + 32 * (ia >= ib)
    keys.sport = (sa < -5) + 2 * (ia > -100000) + 4 * (sa <= -0x80000000) + 8 * (ia >= 0x7FFFFFFF) + 16 * (e > 0xFFFFFFFF)
    keys.dport = (e < 0x80000000) + 2 * (e >= 0xFFFFFFFF00000000) + 4 * (i64(a) - 100 < 0) + 8 * (b < a)
    code: u8 = 0
    if sa < sb:
        code += 1
    if ia > ib:
        code += 2
    if e <= f:
        code += 4
    if a >= b:
        code += 8
    if ia != -1:
        code += 16
    if sa == sb:
        code += 32
    keys.flags = code
    if ia < -7:
        return BPF_FLOW_DISSECTOR_CONTINUE
    if e > f:
        return BPF_OK
    return BPF_DROP


@dissector
def logic(pkt: Packet, keys: BpfFlowKeys) -> int:
    """`not`, `and`, `or` in conditions and as values; truthiness of integers."""
    w = pkt.header(Words, keys.nhoff)
    a = w.a
    b = w.b
    c = w.c
    h = w.h
    flags = keys.flags
    both = a and b
    either = a or c
    neither = not (a or b)
    mixed = (a > b and c < h) or not h
    keys.is_frag = both
    keys.is_first_frag = either + 2 * neither
    keys.is_encap = mixed
    keys.ip_proto = (not a) + (not flags & 1) * 2 + (flags & 2 and flags & 4) * 4
    keys.sport = (a < b or b < c or c < h) * 1000 + (a and b and c and h) * 10
    out: u32 = 0
    if flags & 1 and a > 100:
        out |= 1
    if flags & 2 or b > 200:
        out |= 2
    if not (flags & 4) and not c:
        out |= 4
    if (a or b) and (c or h):
        out |= 8
    if not (a < 50 or b < 50):
        out |= 16
    keys.ipv4_src = out
    if a and not b:
        return BPF_OK
    if b or flags == 5:
        return BPF_FLOW_DISSECTOR_CONTINUE
    return BPF_DROP


@dissector
def augmented(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Augmented assignment on typed locals (which wrap) and on keys fields."""
    w = pkt.header(Words, keys.nhoff)
    x: u16 = w.c
    y: i32 = w.d
    z: u8 = w.a
    t = w.e
    x += w.h * 7
    x *= w.b
    x -= 60000
    x ^= w.a
    y -= w.g
    y *= 3
    y <<= w.s1
    y >>= 3
    z *= 13
    z //= w.b
    z %= w.s2
    z |= 0x80
    t += t
    t >>= w.s2
    t &= 0xFFFF0000FFFF
    t <<= 4
    keys.sport = x
    keys.flow_label = y
    keys.ip_proto = z
    keys.ipv4_src = t
    keys.ipv4_dst = t >> 32
    keys.dport = w.h
    keys.dport += w.c
    keys.dport *= 3
    keys.thoff += w.a
    keys.is_frag = w.b
    keys.is_frag -= w.a
    if y < 0:
        return BPF_OK
    return BPF_DROP


@dissector
def divide(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Division and modulo by values from the packet, zero included (x/0 = 0, x%0 = x)."""
    w = pkt.header(Words, keys.nhoff)
    a = w.a
    b = w.b
    e = w.e
    zero = a & 0
    keys.ipv4_src = e // zero
    keys.ipv4_dst = e % zero
    keys.flow_label = e // b
    keys.flags = e % b
    keys.sport = w.c // a
    keys.dport = w.c % a
    keys.ip_proto = b % (a - a)
    keys.is_frag = b // (a - a)
    keys.is_encap = (e // u64(i64(a) - 200)) >> 56
    keys.addr_proto = e % (w.f | 0x8000000000000000)
    if e // b == 0:
        return BPF_OK
    return BPF_DROP


@dissector
def bitfields(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Bit fields in 1-, 2-, 4- and 8-byte units, and big-endian fields."""
    p = pkt.header(Packed, keys.nhoff)
    keys.is_frag = p.top
    keys.is_first_frag = p.mid
    keys.ip_proto = p.hi * 16 + p.lo
    keys.is_encap = p.md
    keys.sport = p.flag
    keys.ipv4_src = p.rest
    keys.flow_label = p.p
    keys.ipv4_dst = p.q >> 12
    keys.dport = p.q
    keys.flags = p.q >> 20
    if p.flag:
        return BPF_OK
    if p.rest > 0x40000000:
        return BPF_FLOW_DISSECTOR_CONTINUE
    return BPF_DROP


@dissector
def constants(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Immediates of every shape: 64-bit, 0x80000000..0xffffffff, negative, in compares."""
    w = pkt.header(Words, 14)
    e = w.e
    d = w.d
    keys.ipv4_src = (e ^ 0x123456789ABCDEF0) >> 32
    keys.ipv4_dst = e + 0xFFFFFFFF
    keys.flow_label = d | 0x80000000
    keys.flags = (e & 0xFFFFFFFF00000000) >> 32
    keys.sport = (e - 0x8000000000000000) >> 48
    keys.dport = d * 0xFFFFFFFE
    big: u64 = 0xDEADBEEFCAFEF00D
    keys.n_proto = big + e
    neg = -0x80000000
    keys.addr_proto = i64(d) + neg
    code: u8 = 0
    if e > 0xFFFFFFFF:
        code |= 1
    if e == 0x8000000000000001:
        code |= 2
    if i64(e) < -1:
        code |= 4
    if i64(e) >= -0x80000000:
        code |= 8
    if d >= 0x80000000:
        code |= 16
    if i32(d) <= -0x7FFFFFFF:
        code |= 32
    if e != 0xFFFFFFFFFFFFFFFF:
        code |= 64
    if i64(e) > -0x100000000:
        code |= 128
    keys.ip_proto = code
    if i32(d) < -1000:
        return BPF_OK
    return BPF_DROP


@dissector
def control(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Locals through branches, inferred types, keys read back, a variable-offset header."""
    w = pkt.header(Words, keys.nhoff)
    k = -5
    m = 7
    flag = w.a > w.b
    if w.e:
        x: u16 = w.c + 1
        k = k * i64(w.d)
    else:
        x = 0xFFFF
        m = m - w.f
    if flag:
        m += 3
    if not w.h:
        k = k - 1
    keys.ipv4_src = k
    keys.ipv4_dst = m >> 16
    keys.is_frag = flag
    keys.sport = w.e
    keys.dport = keys.sport * 3 + x
    keys.thoff = w.f
    keys.n_proto = keys.thoff
    inner = pkt.header(Words, keys.nhoff + (w.a & 15))
    keys.flow_label = inner.g
    keys.is_encap = inner.a
    if k < -100:
        return BPF_OK
    if inner.b > 128:
        return BPF_FLOW_DISSECTOR_CONTINUE
    return BPF_DROP


@dissector
def literals(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Comparisons between literals follow Python, beyond 64 bits included."""
    keys.is_frag = 0xFFFFFFFFFFFFFFFF > -1
    keys.is_encap = -1 < 0xFFFFFFFFFFFFFFFF
    keys.ip_proto = (1 << 64) > 5
    keys.is_first_frag = (-(1 << 63)) < (1 << 63)
    if 0x8000000000000000 > 1:  # noqa: PLR0133 - comparing literals is the point
        return BPF_OK
    return BPF_DROP


@dissector
def redefined(pkt: Packet, keys: BpfFlowKeys) -> int:
    """Locals written again after a value derived from them was stored: reads see the old value."""
    w = pkt.header(Words, keys.nhoff)
    x = w.e
    keys.ipv4_src = x
    x = x ^ w.f
    keys.ipv4_dst = keys.ipv4_src
    y = w.d
    keys.sport = y
    y = y + w.c
    keys.dport = keys.sport
    z: u32 = w.f
    keys.flow_label = u16(z)
    z = z >> 3
    keys.thoff = keys.flow_label
    keys.flags = x ^ y ^ z
    if keys.ipv4_dst == w.e & 0xFFFFFFFF:
        return BPF_OK
    return BPF_DROP


ALL = [arith, shifts, unary_casts, compares, logic, augmented, divide, bitfields, constants, control, literals, redefined]
