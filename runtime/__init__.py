"""pyfd.runtime: load flow dissectors and run them in the kernel; takes bytes, not the compiler."""

from .bpf import (
    AttachType,
    Cmd,
    LinkInfo,
    LinkType,
    ProgInfo,
    ProgQueryResult,
    ProgType,
    StatsType,
    TestRunResult,
)
from .caps import check_bpf_available, missing_capabilities
from .errors import BpfError, BtfError, MissingPrivilegeError, SourceLocator, VerifierError
from .flowkeys import (
    ETH_P_IP,
    ETH_P_IPV6,
    FLOW_KEYS_SIZE,
    BpfRetCode,
    FlowDissectorFlags,
    FlowKeys,
    bpf_flow_keys,
)
from .program import (
    MAX_FRAME_LEN,
    MIN_FRAME_LEN,
    LoadedProgram,
    RunResult,
    load_program,
    valid_prog_name,
)

__all__ = [
    "AttachType",
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
    "SourceLocator",
    "StatsType",
    "TestRunResult",
    "VerifierError",
    "bpf_flow_keys",
    "check_bpf_available",
    "load_program",
    "missing_capabilities",
    "valid_prog_name",
]
