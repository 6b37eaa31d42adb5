"""pyfd.runtime: load flow dissectors and run them in the kernel; takes bytes, not the compiler.

`load_object` (runtime.objects) is imported on first use: reading an
object needs pyelftools, which `import pyfd.runtime` does not load.
"""

from typing import Any

from .attach import (
    AlreadyAttachedError,
    AttachedMap,
    AttachError,
    Attachment,
    AttachmentInfo,
    BpffsError,
    MapNotPinnedError,
    NamespaceNotFoundError,
    Netns,
    NotAttachedError,
    PrivateBpffsError,
    RootNamespaceError,
    attach,
    attached,
    check_target,
    detach,
    open_pinned_map,
    pinned_maps,
    query,
    query_all,
    resolve_netns,
)
from .bpf import (
    AttachType,
    Cmd,
    LinkInfo,
    LinkType,
    MapInfo,
    ProgInfo,
    ProgQueryResult,
    ProgType,
    StatsType,
    TestRunResult,
)
from .caps import missing_capabilities
from .errors import (
    BpfError,
    BtfError,
    ConfigError,
    MissingPrivilegeError,
    SourceLocation,
    SourceLocator,
    VerifierError,
    slot_source_map,
)
from .flowkeys import (
    ETH_P_IP,
    ETH_P_IPV6,
    FLOW_KEYS_SIZE,
    BpfRetCode,
    FlowDissectorFlags,
    FlowKeys,
    bpf_flow_keys,
)
from .maps import Map, MapCollection, MapKeyError, UnknownMapError, possible_cpus
from .probe import check_bpf_available
from .program import (
    MAX_FRAME_LEN,
    MIN_FRAME_LEN,
    LoadedProgram,
    RunResult,
    load_program,
    valid_prog_name,
)

__all__ = [
    "AlreadyAttachedError",
    "AttachedMap",
    "ConfigError",
    "Map",
    "MapCollection",
    "MapInfo",
    "MapKeyError",
    "MapNotPinnedError",
    "UnknownMapError",
    "load_object",
    "open_pinned_map",
    "pinned_maps",
    "possible_cpus",
    "AttachError",
    "AttachType",
    "Attachment",
    "AttachmentInfo",
    "BpffsError",
    "NamespaceNotFoundError",
    "Netns",
    "NotAttachedError",
    "PrivateBpffsError",
    "RootNamespaceError",
    "attach",
    "attached",
    "check_target",
    "detach",
    "query",
    "query_all",
    "resolve_netns",
    "BpfError",
    "BpfRetCode",
    "BtfError",
    "Cmd",
    "ETH_P_IP",
    "ETH_P_IPV6",
    "FLOW_KEYS_SIZE",
    "FlowDissectorFlags",
    "FlowKeys",
    "LinkInfo",
    "LinkType",
    "LoadedProgram",
    "MAX_FRAME_LEN",
    "MIN_FRAME_LEN",
    "MissingPrivilegeError",
    "ProgInfo",
    "ProgQueryResult",
    "ProgType",
    "RunResult",
    "SourceLocation",
    "SourceLocator",
    "StatsType",
    "TestRunResult",
    "VerifierError",
    "bpf_flow_keys",
    "check_bpf_available",
    "load_program",
    "missing_capabilities",
    "slot_source_map",
    "valid_prog_name",
]


def __getattr__(name: str) -> Any:
    """`load_object` from runtime.objects, imported on first use (PEP 562)."""
    if name == "load_object":
        from .objects import load_object

        return load_object
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
