"""Can this process load a flow dissector? Capabilities, and a real trial load."""

from __future__ import annotations

import errno
from enum import IntEnum

from .errors import BpfError, MissingPrivilegeError


class Capability(IntEnum):
    """Capability bit numbers from include/uapi/linux/capability.h."""

    CAP_NET_ADMIN = 12
    CAP_SYS_ADMIN = 21
    CAP_BPF = 39


# kernel/bpf/syscall.c, bpf_prog_load(): a flow dissector needs bpf_capable()
# (CAP_BPF, or CAP_SYS_ADMIN) and, as a "net admin" program type,
# CAP_NET_ADMIN (or CAP_SYS_ADMIN).
FLOW_DISSECTOR_CAPABILITIES: tuple[Capability, ...] = (Capability.CAP_BPF, Capability.CAP_NET_ADMIN)

# The smallest valid program: r0 = 0; exit.
TRIVIAL_PROGRAM = bytes.fromhex("b7000000000000009500000000000000")


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


def check_bpf_available() -> str | None:
    """Return None if this process can load a flow dissector, else a human reason why not."""
    # bpf.py imports this module to explain EPERM, so the syscall wrappers
    # are imported here, at call time, to keep the import graph acyclic.
    from . import bpf

    try:
        fd, _ = bpf.prog_load(
            prog_type=bpf.ProgType.FLOW_DISSECTOR,
            insns=TRIVIAL_PROGRAM,
            license="GPL",
            name="pyfd_probe",
        )
    except MissingPrivilegeError as err:
        return str(err)
    except BpfError as err:
        if err.errno == errno.ENOSYS:
            return (
                "this kernel has no bpf(2) system call (ENOSYS): it was built without "
                "CONFIG_BPF_SYSCALL, or a seccomp filter blocks it"
            )
        if err.errno == errno.EINVAL:
            return (
                "the kernel refused even a trivial flow dissector (EINVAL): flow dissector "
                f"programs need Linux 4.20 or later ({err})"
            )
        return f"cannot load a trivial flow dissector: {err}"
    bpf.close_fd(fd)
    return None
