"""The kernel's numbers a flow dissector is built, written and loaded against: one place for each.

Values from include/uapi/linux/bpf.h, include/linux/filter.h and
kernel/bpf/verifier.c, checked on Linux 6.18 (docs: the kernel contract).
This module imports nothing of pyfd: the compiler, the runtime, the object
formats and the language all take their numbers from here.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

# --- instructions ----------------------------------------------------------------------

INSN_SIZE: Final = 8
"""Bytes per instruction slot, sizeof(struct bpf_insn); BPF_LD_IMM64 takes two slots."""

MAX_BPF_STACK: Final = 512
"""Bytes of stack below r10 a program may use (include/linux/filter.h)."""

MAX_PACKET_OFF: Final = 0xFFFF
"""The largest packet offset the verifier tracks (MAX_PACKET_OFF in kernel/bpf/verifier.c).

A variable offset must be clamped below it before a bounds check teaches the
verifier anything ("invalid access to packet ... r=0" otherwise).
"""

# --- the program ---------------------------------------------------------------------

FLOW_DISSECTOR_SECTION: Final = "flow_dissector"
"""ELF section of a flow dissector: libbpf's section name for BPF_PROG_TYPE_FLOW_DISSECTOR."""

LICENSE: Final = "GPL"
"""The license pyfd's programs declare (the kernel takes it as a C string)."""

LICENSE_SECTION: Final = "license"
"""ELF section libbpf reads the license from (bpf_object__init_license in libbpf.c)."""

LICENSE_SYMBOL: Final = "_license"
"""The global object symbol in the license section, which libbpf's static linker wants."""

# Return codes, enum bpf_ret_code. The kernel does not check a flow
# dissector's return value, so the compiler refuses any other.
BPF_OK: Final = 0
"""Use the keys; the dissection counts as successful."""
BPF_DROP: Final = 2
"""The dissection failed; the kernel still copies the keys out."""
BPF_FLOW_DISSECTOR_CONTINUE: Final = 129
"""Discard the keys and run the kernel's built-in C dissector."""

RETURN_CODES: Final[dict[int, str]] = {
    BPF_OK: "BPF_OK",
    BPF_DROP: "BPF_DROP",
    BPF_FLOW_DISSECTOR_CONTINUE: "BPF_FLOW_DISSECTOR_CONTINUE",
}
"""The only values a flow dissector may return, by name."""

# --- the context: struct __sk_buff ---------------------------------------------------

CTX_STRUCT: Final = "__sk_buff"
"""The context's struct name; a global function's BTF prototype must name it."""

# The only fields a flow dissector may read; any other access, and any write,
# is refused at load ("invalid bpf_context access off=N").
SKB_DATA: Final = 76
"""offsetof(struct __sk_buff, data): a u32 load gives the packet start."""
SKB_DATA_END: Final = 80
"""offsetof(struct __sk_buff, data_end): a u32 load gives the packet end."""
SKB_FLOW_KEYS: Final = 144
"""offsetof(struct __sk_buff, flow_keys): a u64 load gives the struct bpf_flow_keys pointer."""

BPF_FUNC_SKB_LOAD_BYTES: Final = 26
"""bpf_skb_load_bytes(ctx, offset, to, len): for a flow dissector, `len` bytes at
`offset` from the skb, linear part or page fragments (net/core/filter.c,
bpf_flow_dissector_load_bytes); 0, or a negative error with `to` cleared when
the skb does not hold them or there is no skb (eth_get_headlen's call)."""

# --- struct bpf_flow_keys ------------------------------------------------------------

FLOW_KEYS_SIZE: Final = 56
"""sizeof(struct bpf_flow_keys); offset 56 or past is refused."""

FLOW_KEYS_LAYOUT: Final[tuple[tuple[str, int, int], ...]] = (
    ("nhoff", 0, 2),
    ("thoff", 2, 2),
    ("addr_proto", 4, 2),
    ("is_frag", 6, 1),
    ("is_first_frag", 7, 1),
    ("is_encap", 8, 1),
    ("ip_proto", 9, 1),
    ("n_proto", 10, 2),
    ("sport", 12, 2),
    ("dport", 14, 2),
    ("ipv4_src", 16, 4),
    ("ipv4_dst", 20, 4),
    ("ipv6_src", 16, 16),
    ("ipv6_dst", 32, 16),
    ("flags", 48, 4),
    ("flow_label", 52, 4),
)
"""struct bpf_flow_keys field by field: (name, offset, size); the addresses are a union."""

# Input flags in bpf_flow_keys.flags.
BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG: Final = 1 << 0
"""Keep parsing a first fragment (default: stop once a packet is known to be a fragment)."""
BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL: Final = 1 << 1
"""Stop at a non-zero IPv6 flow label."""
BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP: Final = 1 << 2
"""Stop at an encapsulation header."""

# --- BTF records BPF_PROG_LOAD takes -----------------------------------------------

FUNC_INFO_REC_SIZE: Final = 8
"""sizeof(struct bpf_func_info): insn_off, type_id."""
LINE_INFO_REC_SIZE: Final = 16
"""sizeof(struct bpf_line_info): insn_off, file_name_off, line_off, line_col."""

# --- maps ----------------------------------------------------------------------------
#
# The libbpf ELF convention for maps (libbpf.c, bpf_object__init_user_btf_maps
# and bpf_object__init_global_data_maps): BTF-defined maps are the variables
# of section `.maps`, each a struct of `__uint(type, ...)`-style members that
# BTF alone describes; `.data*`, `.rodata*` and `.bss*` each become a
# single-entry ARRAY map whose value is the whole section. An `ld_imm64` in a
# program carries an R_BPF_64_64 relocation against the map's symbol, and the
# loader patches in the map's fd.

MAPS_SECTION: Final = ".maps"
"""ELF section (and BTF DATASEC) of BTF-defined maps."""
LEGACY_MAPS_SECTION: Final = "maps"
"""ELF section of legacy `struct bpf_map_def` maps (before BTF-defined maps; libbpf 1.0 dropped them)."""
DATA_SECTION: Final = ".data"
"""Initialised global variables: an ARRAY map the program may write."""
RODATA_SECTION: Final = ".rodata"
"""Constant global variables: an ARRAY map created BPF_F_RDONLY_PROG, filled, then frozen."""
BSS_SECTION: Final = ".bss"
"""Zero-initialised global variables (SHT_NOBITS): an ARRAY map the program may write."""


class MapType(IntEnum):
    """enum bpf_map_type (include/uapi/linux/bpf.h)."""

    UNSPEC = 0
    HASH = 1  #: keys hashed; a full map refuses a new key (E2BIG)
    ARRAY = 2  #: every index 0..max_entries-1 exists, zeroed at creation; no delete
    PROG_ARRAY = 3  #: program fds for bpf_tail_call; user space reads back program ids
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5  #: a hash whose value is one copy per possible CPU
    PERCPU_ARRAY = 6  #: an array whose value is one copy per possible CPU
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9  #: a hash that evicts the least recently used key when full
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    DEVMAP = 14
    SOCKMAP = 15
    CPUMAP = 16
    XSKMAP = 17
    SOCKHASH = 18
    CGROUP_STORAGE = 19
    REUSEPORT_SOCKARRAY = 20
    PERCPU_CGROUP_STORAGE = 21
    QUEUE = 22
    STACK = 23
    SK_STORAGE = 24
    DEVMAP_HASH = 25
    STRUCT_OPS = 26
    RINGBUF = 27
    INODE_STORAGE = 28
    TASK_STORAGE = 29
    BLOOM_FILTER = 30
    USER_RINGBUF = 31
    CGRP_STORAGE = 32
    ARENA = 33


PERCPU_MAP_TYPES: Final = frozenset(
    {MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH, MapType.PERCPU_CGROUP_STORAGE}
)
"""Map types whose value user space sees as one copy per possible CPU, each rounded up to 8 bytes."""

# Map flags (BPF_MAP_CREATE map_flags).
BPF_F_NO_PREALLOC: Final = 1 << 0
"""Hash maps: allocate elements on update rather than at creation."""
BPF_F_RDONLY: Final = 1 << 3
"""User space may only read the map (also a BPF_OBJ_GET file flag)."""
BPF_F_WRONLY: Final = 1 << 4
"""User space may only write the map (also a BPF_OBJ_GET file flag)."""
BPF_F_RDONLY_PROG: Final = 1 << 7
"""Programs may only read the map: with BPF_MAP_FREEZE the verifier treats its contents as constants."""
BPF_F_WRONLY_PROG: Final = 1 << 8
"""Programs may only write the map."""
BPF_F_MMAPABLE: Final = 1 << 10
"""An ARRAY map user space can mmap()."""

# BPF_MAP_UPDATE_ELEM flags.
BPF_ANY: Final = 0
"""Create the element or overwrite it."""
BPF_NOEXIST: Final = 1
"""Create the element only if it does not exist."""
BPF_EXIST: Final = 2
"""Overwrite the element only if it exists."""

# ld_imm64 src_reg values a loader writes into a relocated instruction
# (include/uapi/linux/bpf.h): imm of the first slot holds the map fd.
BPF_PSEUDO_MAP_FD: Final = 1
"""`r = map` : the map itself (for helpers such as bpf_map_lookup_elem, bpf_tail_call)."""
BPF_PSEUDO_MAP_VALUE: Final = 2
"""`r = &map[0] + off`: a pointer into the single value of an ARRAY map; off is the second slot's imm."""

# __uint(pinning, ...) values (libbpf's enum libbpf_pin_type in bpf_helpers.h).
LIBBPF_PIN_NONE: Final = 0
LIBBPF_PIN_BY_NAME: Final = 1

R_BPF_64_64: Final = 1
"""ELF relocation type of an ld_imm64 against a map or global-data symbol (llvm's BPF relocations)."""
