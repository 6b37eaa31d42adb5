"""pyfd: write Linux BPF flow dissectors in restricted, type-annotated Python.

    from pyfd import dissector, BpfFlowKeys, Packet, BPF_OK

    @dissector
    def minimal(pkt: Packet, keys: BpfFlowKeys) -> int:
        return BPF_OK

`minimal.compile()` gives a BPF program, `.load()` puts it in the kernel and
`.run(frame)` runs it there; `minimal.run_python(frame)` runs the same
function as CPython with the kernel's integer semantics.

Everything a user needs is importable from here (see `__all__`), the errors
included: `CompileError` from `compile()`, `VerifierError` (a `BpfError`)
from `load()`, `ObjectFileError` from `pyfd.load(path)`, `AttachError` and
its subclasses from attaching.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import headers, lib
from .compiler.diagnostics import CompileError
from .constants import (
    BPF_DROP,
    BPF_FLOW_DISSECTOR_CONTINUE,
    BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG,
    BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP,
    BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL,
    BPF_OK,
    ETH_HLEN,
    ETH_P_802_3_MIN,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_TEB,
    GRE_MIN_HLEN,
    IP_MF,
    IP_OFFSET,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_GRE,
    IPPROTO_HOPOPTS,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_MPLS,
    IPPROTO_NONE,
    IPPROTO_ROUTING,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPPROTO_UDPLITE,
    IPV4_MIN_HLEN,
    IPV6_HLEN,
    MPLS_HLEN,
    RETURN_CODES,
    TCP_MIN_HLEN,
    UDP_HLEN,
    VLAN_HLEN,
)
from .dissector import Dissector, dissector
from .headers import Bits, Bytes, Header
from .keys import BpfFlowKeys
from .packet import Packet

# pyfd.keys already imports the runtime package (its uapi key layout), so
# these cost nothing more; only object files (pyelftools) wait for first use.
from .runtime import (
    AlreadyAttachedError,
    AttachError,
    Attachment,
    BpfError,
    BpffsError,
    BtfError,
    FlowKeys,
    LoadedProgram,
    MissingPrivilegeError,
    NamespaceNotFoundError,
    NotAttachedError,
    PrivateBpffsError,
    RootNamespaceError,
    RunResult,
    VerifierError,
)
from .types import i32, i64, u8, u16, u32, u64

if TYPE_CHECKING:
    from .program import CompiledProgram, load
    from .objfile.reader import ObjectFileError

__version__ = "0.1.0"

__all__ = [
    # writing a dissector
    "dissector",
    "Dissector",
    "Packet",
    "BpfFlowKeys",
    "Header",
    "Bits",
    "Bytes",
    "u8",
    "u16",
    "u32",
    "u64",
    "i32",
    "i64",
    "headers",
    "lib",
    # return codes and input flags (include/uapi/linux/bpf.h)
    "BPF_OK",
    "BPF_DROP",
    "BPF_FLOW_DISSECTOR_CONTINUE",
    "RETURN_CODES",
    "BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG",
    "BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL",
    "BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP",
    # Ethernet types, IP protocols, header sizes
    "ETH_P_IP",
    "ETH_P_ARP",
    "ETH_P_8021Q",
    "ETH_P_8021AD",
    "ETH_P_IPV6",
    "ETH_P_MPLS_UC",
    "ETH_P_MPLS_MC",
    "ETH_P_TEB",
    "ETH_P_802_3_MIN",
    "IPPROTO_HOPOPTS",
    "IPPROTO_ICMP",
    "IPPROTO_IPIP",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "IPPROTO_IPV6",
    "IPPROTO_ROUTING",
    "IPPROTO_FRAGMENT",
    "IPPROTO_GRE",
    "IPPROTO_ICMPV6",
    "IPPROTO_NONE",
    "IPPROTO_DSTOPTS",
    "IPPROTO_SCTP",
    "IPPROTO_UDPLITE",
    "IPPROTO_MPLS",
    "IP_MF",
    "IP_OFFSET",
    "ETH_HLEN",
    "VLAN_HLEN",
    "IPV4_MIN_HLEN",
    "IPV6_HLEN",
    "TCP_MIN_HLEN",
    "UDP_HLEN",
    "GRE_MIN_HLEN",
    "MPLS_HLEN",
    # compiled, loaded and run programs
    "CompiledProgram",
    "load",
    "LoadedProgram",
    "RunResult",
    "FlowKeys",
    "Attachment",
    # errors
    "CompileError",
    "BpfError",
    "VerifierError",
    "BtfError",
    "MissingPrivilegeError",
    "ObjectFileError",
    "AttachError",
    "NamespaceNotFoundError",
    "AlreadyAttachedError",
    "NotAttachedError",
    "RootNamespaceError",
    "BpffsError",
    "PrivateBpffsError",
]

# Reading object files needs pyelftools: import it on first use.
_LAZY = {
    "load": ".program",
    "CompiledProgram": ".program",
    "ObjectFileError": ".objfile.reader",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'pyfd' has no attribute {name!r}")
