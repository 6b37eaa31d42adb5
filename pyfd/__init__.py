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

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

# Nothing is imported until it is used (PEP 562): `import pyfd.isa` or
# `import pyfd.runtime` must not load the compiler, and `import pyfd` loads
# only what a name asks for. Type checkers read the imports below.
if TYPE_CHECKING:
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
        ETH_P_8021AD,
        ETH_P_8021Q,
        ETH_P_802_3_MIN,
        ETH_P_ARP,
        ETH_P_IP,
        ETH_P_IPV6,
        ETH_P_MPLS_MC,
        ETH_P_MPLS_UC,
        ETH_P_TEB,
        GRE_MIN_HLEN,
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
        IP_MF,
        IP_OFFSET,
        MPLS_HLEN,
        RETURN_CODES,
        TCP_MIN_HLEN,
        UDP_HLEN,
        VLAN_HLEN,
    )
    from .dissector import (
        Dissector,
        dissector,
    )
    from .keys import BpfFlowKeys
    from .objfile.reader import ObjectFileError
    from .packet import Packet
    from .program import (
        CompiledProgram,
        load,
    )
    from .runtime import (
        AlreadyAttachedError,
        AttachError,
        Attachment,
        BpfError,
        BpffsError,
        BtfError,
        ConfigError,
        FlowKeys,
        LoadedProgram,
        Map,
        MapKeyError,
        MapNotPinnedError,
        MissingPrivilegeError,
        NamespaceNotFoundError,
        NotAttachedError,
        PrivateBpffsError,
        RootNamespaceError,
        RunResult,
        UnknownMapError,
        VerifierError,
    )
    from .types import (
        i32,
        i64,
        u16,
        u32,
        u64,
        u8,
    )

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
    "Map",
    # errors
    "CompileError",
    "BpfError",
    "VerifierError",
    "BtfError",
    "MissingPrivilegeError",
    "ObjectFileError",
    "ConfigError",
    "UnknownMapError",
    "MapKeyError",
    "MapNotPinnedError",
    "AttachError",
    "NamespaceNotFoundError",
    "AlreadyAttachedError",
    "NotAttachedError",
    "RootNamespaceError",
    "BpffsError",
    "PrivateBpffsError",
]

# Where each public name lives: `__getattr__` imports it from there on first use.
# `headers` and `lib` are the submodules themselves.
_SUBMODULES = frozenset({"headers", "lib"})
_SOURCES: dict[str, str] = {
    "dissector": ".dissector",
    "Dissector": ".dissector",
    "Packet": ".packet",
    "BpfFlowKeys": ".keys",
    "Header": ".headers",
    "Bits": ".headers",
    "Bytes": ".headers",
    "u8": ".types",
    "u16": ".types",
    "u32": ".types",
    "u64": ".types",
    "i32": ".types",
    "i64": ".types",
    "headers": ".headers",
    "lib": ".lib",
    "BPF_OK": ".constants",
    "BPF_DROP": ".constants",
    "BPF_FLOW_DISSECTOR_CONTINUE": ".constants",
    "RETURN_CODES": ".constants",
    "BPF_FLOW_DISSECTOR_F_PARSE_1ST_FRAG": ".constants",
    "BPF_FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL": ".constants",
    "BPF_FLOW_DISSECTOR_F_STOP_AT_ENCAP": ".constants",
    "ETH_P_IP": ".constants",
    "ETH_P_ARP": ".constants",
    "ETH_P_8021Q": ".constants",
    "ETH_P_8021AD": ".constants",
    "ETH_P_IPV6": ".constants",
    "ETH_P_MPLS_UC": ".constants",
    "ETH_P_MPLS_MC": ".constants",
    "ETH_P_TEB": ".constants",
    "ETH_P_802_3_MIN": ".constants",
    "IPPROTO_HOPOPTS": ".constants",
    "IPPROTO_ICMP": ".constants",
    "IPPROTO_IPIP": ".constants",
    "IPPROTO_TCP": ".constants",
    "IPPROTO_UDP": ".constants",
    "IPPROTO_IPV6": ".constants",
    "IPPROTO_ROUTING": ".constants",
    "IPPROTO_FRAGMENT": ".constants",
    "IPPROTO_GRE": ".constants",
    "IPPROTO_ICMPV6": ".constants",
    "IPPROTO_NONE": ".constants",
    "IPPROTO_DSTOPTS": ".constants",
    "IPPROTO_SCTP": ".constants",
    "IPPROTO_UDPLITE": ".constants",
    "IPPROTO_MPLS": ".constants",
    "IP_MF": ".constants",
    "IP_OFFSET": ".constants",
    "ETH_HLEN": ".constants",
    "VLAN_HLEN": ".constants",
    "IPV4_MIN_HLEN": ".constants",
    "IPV6_HLEN": ".constants",
    "TCP_MIN_HLEN": ".constants",
    "UDP_HLEN": ".constants",
    "GRE_MIN_HLEN": ".constants",
    "MPLS_HLEN": ".constants",
    "CompiledProgram": ".program",
    "load": ".program",
    "LoadedProgram": ".runtime",
    "RunResult": ".runtime",
    "FlowKeys": ".runtime",
    "Attachment": ".runtime",
    "Map": ".runtime",
    "ConfigError": ".runtime",
    "UnknownMapError": ".runtime",
    "MapKeyError": ".runtime",
    "MapNotPinnedError": ".runtime",
    "CompileError": ".compiler.diagnostics",
    "BpfError": ".runtime",
    "VerifierError": ".runtime",
    "BtfError": ".runtime",
    "MissingPrivilegeError": ".runtime",
    "ObjectFileError": ".objfile.reader",
    "AttachError": ".runtime",
    "NamespaceNotFoundError": ".runtime",
    "AlreadyAttachedError": ".runtime",
    "NotAttachedError": ".runtime",
    "RootNamespaceError": ".runtime",
    "BpffsError": ".runtime",
    "PrivateBpffsError": ".runtime",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use, and keep it (PEP 562)."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'pyfd' has no attribute {name!r}")
    module = importlib.import_module(source, __name__)
    value = module if name in _SUBMODULES else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the public ones included before their first use."""
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The `pyfd` module itself, so that `pyfd.dissector` stays the decorator."""

    def __setattr__(self, name: str, value: Any) -> None:
        # Once a submodule is loaded, importlib binds it to its package's
        # attribute (setattr in importlib._bootstrap._find_and_load_unlocked).
        # `pyfd.dissector` is a submodule and the decorator both: whoever
        # imports the submodule first would hide the decorator behind it.
        if name == "dissector" and isinstance(value, types.ModuleType):
            value = value.dissector
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
