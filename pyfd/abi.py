"""The kernel's numbers a flow dissector is built, written and loaded against: one place for each.

Values from include/uapi/linux/bpf.h, include/linux/filter.h and
kernel/bpf/verifier.c, checked on Linux 6.18 (docs: the kernel contract).
This module imports nothing of pyfd: the compiler, the runtime, the object
formats and the language all take their numbers from here.
"""

from __future__ import annotations

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

# --- maps and global data ------------------------------------------------------------

MAPS_SECTION: Final = ".maps"
"""ELF section of BTF-defined maps: one struct per map, described by the DATASEC of that name (libbpf's MAPS_ELF_SEC)."""

RODATA_SECTION: Final = ".rodata"
"""ELF section of read-only global variables, which libbpf loads as a one-element array map (RODATA_SEC)."""

# enum bpf_map_type
BPF_MAP_TYPE_HASH: Final = 1
BPF_MAP_TYPE_ARRAY: Final = 2
BPF_MAP_TYPE_PERCPU_ARRAY: Final = 6

# enum bpf_func_id: the helpers a flow dissector may call on maps (bpf_base_func_proto)
BPF_FUNC_map_lookup_elem: Final = 1
"""void *bpf_map_lookup_elem(map, const void *key): the value, or NULL."""
BPF_FUNC_map_update_elem: Final = 2
"""long bpf_map_update_elem(map, const void *key, const void *value, u64 flags)."""
BPF_FUNC_map_delete_elem: Final = 3
"""long bpf_map_delete_elem(map, const void *key)."""

BPF_F_RDONLY_PROG: Final = 1 << 7
"""Map flag: the program may only read the map (libbpf sets it on .rodata, then freezes the map)."""

MAP_DEF_SIZE: Final = 32
"""Bytes of one BTF-defined map in .maps as clang lays it out: four pointers (type, key, value, max_entries)."""
