"""Capabilities: which a flow dissector needs, and which this process has (probe.py tries a load)."""

from __future__ import annotations

from enum import IntEnum


class Capability(IntEnum):
    """Capability bit numbers from include/uapi/linux/capability.h."""

    CAP_NET_ADMIN = 12
    CAP_SYS_ADMIN = 21
    CAP_PERFMON = 38
    CAP_BPF = 39


# kernel/bpf/syscall.c, bpf_prog_load(): a flow dissector needs bpf_capable()
# (CAP_BPF, or CAP_SYS_ADMIN) and, as a "net admin" program type,
# CAP_NET_ADMIN (or CAP_SYS_ADMIN). That is enough to load a program; for the
# verifier to accept one that reads the packet at a variable offset, the
# process needs CAP_PERFMON as well (errors.PERFMON_NEEDED says why).
FLOW_DISSECTOR_CAPABILITIES: tuple[Capability, ...] = (Capability.CAP_BPF, Capability.CAP_NET_ADMIN)


def effective_capabilities(status_path: str = "/proc/self/status") -> int | None:
    """Return this process's effective capability mask (CapEff), or None if unreadable."""
    try:
        with open(status_path, encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        return None
    return None


def has_capability(mask: int, cap: Capability) -> bool:
    """Tell whether a capability mask grants cap, counting CAP_SYS_ADMIN as the kernel does."""
    return bool(mask >> cap & 1) or bool(mask >> Capability.CAP_SYS_ADMIN & 1)


def missing_capabilities(
    needed: tuple[Capability, ...] = FLOW_DISSECTOR_CAPABILITIES, *, mask: int | None = None
) -> list[str] | None:
    """Return the needed capabilities this process lacks ([] if none; None if unknown)."""
    if mask is None:
        mask = effective_capabilities()
    if mask is None:
        return None
    return [cap.name for cap in needed if not has_capability(mask, cap)]
