"""Errors raised by the runtime: every failed bpf(2) call becomes a BpfError.

The messages speak in the user's terms (what was being done, what is missing,
what to try), and keep the kernel's errno and command name for programs that
want to branch on them.
"""

from __future__ import annotations

import errno as _errno
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

# A hook that maps a BPF instruction index to a source location such as
# "dissector.py:12:8" (or None when the index has no known source). The
# compiler owns source maps; the runtime only calls this.
SourceLocator = Callable[[int], str | None]


def errno_name(code: int) -> str:
    """Return the symbolic name of an errno value, e.g. 'EINVAL'."""
    return _errno.errorcode.get(code, f"errno {code}")


class BpfError(OSError):
    """A bpf(2) command failed; carries errno, the command name and a message."""

    def __init__(self, code: int, message: str, *, command: str = "") -> None:
        super().__init__(code, message)
        self.command = command
        self.message = message

    def __str__(self) -> str:
        where = f"{self.command}: " if self.command else ""
        code = self.errno if self.errno is not None else 0
        return f"{where}{self.message} [{errno_name(code)}: {os.strerror(code)}]"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__.copy(), self.errno, self.message))


def _rebuild(cls: type[BpfError], state: dict[str, Any], code: int, message: str) -> BpfError:
    """Unpickle any BpfError subclass without calling its own __init__."""
    err = cls.__new__(cls, code, message)
    OSError.__init__(err, code, message)
    err.__dict__.update(state)
    return err


class MissingPrivilegeError(BpfError, PermissionError):
    """The kernel refused a bpf(2) command for lack of privilege (EPERM/EACCES)."""

    def __init__(
        self,
        code: int,
        *,
        command: str,
        missing: Sequence[str] | None,
        needs: Sequence[str] = ("CAP_BPF", "CAP_NET_ADMIN"),
        action: str = "loading a flow dissector",
    ) -> None:
        self.missing: tuple[str, ...] | None = None if missing is None else tuple(missing)
        self.needs = tuple(needs)
        wanted = " and ".join(self.needs)
        them = "them" if len(self.needs) > 1 else "it"
        setcap = ",".join(cap.lower() for cap in self.needs)
        advice = (
            f"{action} needs {wanted} (or root); run as root or grant {them}, "
            f"e.g. with `sudo` / `setcap {setcap}+ep`"
        )
        if missing:
            detail = f"this process lacks {' and '.join(missing)}"
        elif missing is None:
            detail = "could not read this process's capabilities from /proc/self/status"
        else:
            detail = (
                f"this process has {wanted}, so the refusal comes from elsewhere "
                "(a security module, kernel lockdown, or a user namespace)"
            )
        super().__init__(code, f"permission denied: {advice}; {detail}", command=command)


# One verifier log line per instruction it walked, e.g. "12: (61) r2 = *(u32 *)(r1 +76)".
_INSN_LINE = re.compile(r"^(\d+): \(([0-9a-f]{2})\) (.*)$")
# Per-instruction register state lines ("12: R1=ctx() R10=fp0") and source
# comments (";  ...") that BTF line info adds: they are context, not errors.
_STATE_LINE = re.compile(r"^\d+: (R\d|frame\d|\(\w+\))")
# Statistics that end every log: not what went wrong.
_STATS_LINE = re.compile(
    r"^(processed \d+ insns|verification time|stack depth|max_states_per_insn|"
    r"mark_read|Live regs)"
)
_SUMMARY_MAX_LINES = 3


def summarize_verifier_log(log: str) -> tuple[str, int | None, str | None]:
    """Return (summary, failing instruction index, its text) read from the end of a log."""
    lines = [line.rstrip() for line in log.splitlines()]
    while lines and (not lines[-1] or _STATS_LINE.match(lines[-1])):
        lines.pop()
    tail: list[str] = []
    insn_index: int | None = None
    insn_text: str | None = None
    for line in reversed(lines):
        match = _INSN_LINE.match(line)
        if match:
            # Since Linux 6.x the register state follows the instruction after
            # padding and "; ": keep only the instruction.
            insn_index = int(match.group(1))
            insn_text = re.split(r"\s+; ", match.group(3), maxsplit=1)[0].rstrip()
            break
        if _STATE_LINE.match(line) or line.startswith(";"):
            if tail:
                break
            continue
        if line:
            tail.append(line)
    tail.reverse()
    summary = "; ".join(tail[-_SUMMARY_MAX_LINES:]) if tail else (lines[-1] if lines else "")
    return summary, insn_index, insn_text


class VerifierError(BpfError):
    """The kernel verifier refused a program; keeps the whole log and a summary."""

    def __init__(
        self,
        code: int,
        *,
        log: str,
        name: str = "",
        command: str = "BPF_PROG_LOAD",
        truncated: bool = False,
        log_true_size: int = 0,
        source_map: SourceLocator | None = None,
    ) -> None:
        self.log = log
        self.name = name
        self.truncated = truncated
        self.log_true_size = log_true_size
        self.source_map = source_map
        self.summary, self.insn_index, self.insn_text = summarize_verifier_log(log)
        super().__init__(code, self._describe(), command=command)

    @property
    def location(self) -> str | None:
        """Return the source location of the failing instruction, if a source map knows it."""
        if self.source_map is None or self.insn_index is None:
            return None
        return self.source_map(self.insn_index)

    def attach_source_map(self, source_map: SourceLocator | None) -> None:
        """Set the hook that turns the failing instruction index into a source location."""
        self.source_map = source_map
        self.message = self._describe()
        self.strerror = self.message

    def _describe(self) -> str:
        who = f"program {self.name!r}" if self.name else "the program"
        text = f"the kernel verifier rejected {who}: {self.summary or 'no reason given'}"
        if self.insn_index is not None:
            text += f"\n  at instruction {self.insn_index}: {self.insn_text}"
        location = self.location
        if location:
            text += f"\n  from {location}"
        if self.truncated:
            text += "\n  (the verifier log was truncated; its end is kept)"
        if self.log:
            kept = "its last " if self.truncated else ""
            text += f"\n  (verifier log: {kept}{len(self.log.splitlines())} lines in .log)"
        return text


class BtfError(BpfError):
    """The kernel refused BTF type information; keeps the BTF verifier log."""

    def __init__(self, code: int, *, log: str, command: str = "BPF_BTF_LOAD") -> None:
        self.log = log
        last = [line for line in log.splitlines() if line.strip()]
        reason = last[-1] if last else "no log (load again with a log to see why)"
        super().__init__(code, f"the kernel refused the BTF data: {reason}", command=command)
