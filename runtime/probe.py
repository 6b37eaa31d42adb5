"""Can this process load a flow dissector? A real trial load, and the reason when it cannot."""

from __future__ import annotations

import errno

from ..abi import BPF_OK, LICENSE
from ..isa import R0, encode_program, exit_insn, mov64_imm
from . import bpf
from .errors import BpfError, MissingPrivilegeError

# The smallest valid flow dissector: r0 = BPF_OK; exit.
TRIVIAL_PROGRAM: bytes = encode_program([mov64_imm(R0, BPF_OK), exit_insn()])


def check_bpf_available() -> str | None:
    """Return None if this process can load a flow dissector, else a human reason why not."""
    try:
        fd, _ = bpf.prog_load(
            prog_type=bpf.ProgType.FLOW_DISSECTOR,
            insns=TRIVIAL_PROGRAM,
            license=LICENSE,
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
