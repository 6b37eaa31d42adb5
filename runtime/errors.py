"""Errors raised by the runtime: every failed bpf(2) call becomes a BpfError.

The messages speak in the user's terms (what was being done, what is missing,
what to try), and keep the kernel's errno and command name for programs that
want to branch on them.
"""

from __future__ import annotations

import errno as _errno
import os
import re
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from ..abi import MAX_PACKET_OFF, SKB_DATA, SKB_DATA_END, SKB_FLOW_KEYS
from ..objfile.location import SourceLocation as SourceLocation  # re-exported: the runtime's name for it

# A hook that maps a BPF instruction index (an 8-byte slot) to where it came
# from: a string such as "dissector.py:12:8", a SourceLocation, or any object
# with `file`, `line` and `col` (0-based) attributes such as the compiler's
# Span; None when the index has no known source. The compiler owns source
# maps; the runtime only calls this.
SourceLocator = Callable[[int], object | None]


def slot_source_map(locations: Sequence[object | None]) -> SourceLocator:
    """A SourceLocator over one entry per instruction slot; a slot without one takes the previous one's."""
    resolved = list(locations)

    def locate(index: int) -> object | None:
        if not 0 <= index < len(resolved):
            return None
        for slot in range(index, -1, -1):
            if resolved[slot] is not None:
                return resolved[slot]
        return None

    return locate


def errno_name(code: int) -> str:
    """Return the symbolic name of an errno value, e.g. 'EINVAL'."""
    return _errno.errorcode.get(code, f"errno {code}")


class ConfigError(ValueError):
    """A load-time constant the object does not have, or a value that does not fit it (`load(config=...)`)."""


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


# Measured on Linux 6.18: with CAP_BPF and CAP_NET_ADMIN but not CAP_PERFMON
# a trivial program loads, but the verifier refuses a dissector that adds a
# variable offset to a packet pointer ("R5 has pointer with unsupported alu
# operation, pointer arithmetic with it prohibited for !root"). Without
# CAP_PERFMON (bpf_bypass_spec_v1) kernel/bpf/verifier.c sanitises pointer
# arithmetic against Spectre v1 (sanitize_ptr_alu), has no limit to mask a
# packet pointer with, and refuses the instruction (sanitize_err, REASON_TYPE).
PERFMON_NEEDED = "without it the verifier refuses to add a variable offset to a packet pointer"


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
        grant = list(self.needs)
        perfmon = ""
        if "CAP_BPF" in self.needs and "CAP_NET_ADMIN" in self.needs:
            # Loading works without it, so it is not in `needs`; the example grants it all the same.
            grant.append("CAP_PERFMON")
            perfmon = f" (and grant CAP_PERFMON too: {PERFMON_NEEDED})"
        setcap = ",".join(cap.lower() for cap in grant)
        advice = f"{action} needs {wanted} (or root); run as root or grant {them}{perfmon}, e.g. with `sudo` / `setcap {setcap}+ep`"
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
# Per-instruction register state lines ("12: R1=ctx() R10=fp0"), the states an
# infinite-loop report compares, and source comments (";  ...") that BTF line
# info adds: they are context, not errors.
_STATE_LINE = re.compile(r"^(\d+: (R\d|frame\d|\(\w+\))|(cur|old) state: )")
# Statistics that end every log: not what went wrong.
_STATS_LINE = re.compile(
    r"^(processed \d+ insns|verification time|stack depth|max_states_per_insn|"
    r"mark_read|Live regs)"
)
# Refusals found before the walk (kernel/bpf/verifier.c check_cfg,
# check_subprogs) name the instruction in the message instead.
_INSN_IN_MESSAGE = re.compile(r"\binsn (\d+)\b")
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
    if insn_index is None:
        named = _INSN_IN_MESSAGE.search(summary)
        if named:
            insn_index = int(named.group(1))
    return summary, insn_index, insn_text


# --- what a refusal means, in the user's terms ------------------------------------
#
# The verifier's messages name registers and offsets; these say what in a flow
# dissector leads to each common one and what to do. One entry per family,
# tried in order against the summary (and the failing instruction).
#
# They speak of BPF and the kernel's structures only: the program may come
# from pyfd, clang or anything else. What to change in the source language
# is the advice of the layer that compiled it (VerifierError.advise).

_PACKET_POINTER = re.compile(r"R\d+\(id=(\d+),off=(-?\d+),r=(\d+)")
_CTX_ACCESS = re.compile(r"invalid bpf_context access off=(-?\d+) size=(\d+)")
_NOT_READ = re.compile(r"\bR(\d+) !read_ok")


def _explain_packet_access(summary: str, insn_text: str | None) -> str:
    pointer = _PACKET_POINTER.search(summary)
    base = (
        "this packet read is not covered by a bounds check the verifier can follow: before "
        "reading N bytes at data + off, every path to it must have checked "
        "`data + off + N <= data_end` (r=K in the message is how many bytes past the pointer "
        "the verifier knows are inside the packet)."
    )
    if pointer and int(pointer.group(1)) != 0 and int(pointer.group(3)) == 0:
        return base + (
            " Here the offset is a variable and r=0: the verifier tracks packet ranges only up "
            f"to {MAX_PACKET_OFF:#x} bytes, so with an offset that can be as large as {MAX_PACKET_OFF:#x} (a 16-bit field "
            "such as the flow keys' nhoff or thoff) comparing `data + off + N` with data_end proves "
            f"nothing. Clamp the offset first (fail unless off <= {MAX_PACKET_OFF:#x} - N), then compare with "
            "data_end."
        )
    return base


def _explain_ctx_access(summary: str, insn_text: str | None) -> str:
    access = _CTX_ACCESS.search(summary)
    what = f" (this instruction accesses offset {access.group(1)}, {access.group(2)} bytes)" if access else ""
    return (
        "a flow dissector may read only three fields of its context, struct __sk_buff: "
        f"data (offset {SKB_DATA}), data_end (offset {SKB_DATA_END}) and flow_keys (offset {SKB_FLOW_KEYS}), "
        "and may write none"
        f"{what}. Results go into the flow keys (struct bpf_flow_keys, which flow_keys points to)."
    )


def _returns_unset_r0(summary: str, insn_text: str | None) -> bool:
    """`R0 !read_ok` at an exit: a path returns without setting the return value."""
    register = _NOT_READ.search(summary)
    return register is not None and register.group(1) == "0" and (insn_text or "").strip() == "exit"


def _explain_not_read(summary: str, insn_text: str | None) -> str:
    register = _NOT_READ.search(summary)
    number = register.group(1) if register else "?"
    if _returns_unset_r0(summary, insn_text):
        return (
            "the program ends on a path where r0, the return value, was never set: every path "
            "of a dissector must set r0 to BPF_OK (0), BPF_DROP (2) or BPF_FLOW_DISSECTOR_CONTINUE (129) "
            "before its exit."
        )
    return (
        f"this instruction reads r{number} before anything was written to it on at least one "
        "path leading here (an uninitialised register). Generated code should never do this: "
        "it is a bug in the code generator that produced the program; please report it with "
        "the verifier log (`err.log`)."
    )


_FAMILIES: tuple[tuple[str, re.Pattern[str], Callable[[str, str | None], str]], ...] = (
    (
        "packet-write",
        re.compile(r"cannot write into packet"),
        lambda summary, insn: (
            "a flow dissector may only read the packet; the kernel refuses any store into it. "
            "Write what you found into the flow keys instead."
        ),
    ),
    (
        "packet-access",
        re.compile(
            r"invalid access to packet|offset is outside of the packet|pointer arithmetic on pkt_end|"
            r"makes pkt pointer be out of bounds|pkt pointer and register with unbounded"
        ),
        _explain_packet_access,
    ),
    (
        "context-access",
        re.compile(r"invalid bpf_context access|dereference of modified ctx ptr"),
        _explain_ctx_access,
    ),
    (
        "loop",
        re.compile(r"infinite loop detected"),
        lambda summary, insn: (
            "this loop can run forever: the verifier came back to this instruction in exactly "
            "the state it had before. Every loop needs a bound it reaches on every path: a "
            "counter that stops at a constant."
        ),
    ),
    (
        "too-complex",
        re.compile(
            r"back-edge from insn|BPF program is too large|is too complex|too many states|"
            r"unbounded loop|loop is not bounded"
        ),
        lambda summary, insn: (
            "the verifier walks every path through the program on its own, each loop iteration "
            "again, and gives up past 1,000,000 processed instructions (or 8192 branches waiting "
            "to be walked). Paths it cannot merge multiply: a branch in a loop that leaves a "
            "different value on each side (an offset advanced by 1 on one side and by 2 on the "
            "other) doubles them at every iteration. Use fewer iterations, compute such values "
            "without a branch, or return as soon as the work is done."
        ),
    ),
    (
        "return-value",
        re.compile(
            r"At program exit the register R0|R0 leaks addr as return value|invalid return value|"
            r"R0 is not a known value"
        ),
        lambda summary, insn: (
            "a flow dissector must return a plain number: BPF_OK (0), BPF_DROP (2) or "
            "BPF_FLOW_DISSECTOR_CONTINUE (129), never a pointer or an unknown value."
        ),
    ),
    ("uninitialized-register", _NOT_READ, _explain_not_read),
    (
        "privilege",
        re.compile(r"prohibited for !root"),
        lambda summary, insn: (
            "this process may load programs (it has CAP_BPF and CAP_NET_ADMIN) but lacks CAP_PERFMON, and "
            f"{PERFMON_NEEDED}, as this instruction does. Load as root, or grant CAP_PERFMON as well."
        ),
    ),
    (
        "helper",
        re.compile(r"invalid func |unknown func |program of this type cannot use helper"),
        lambda summary, insn: (
            "the program calls a kernel helper that flow dissectors may not use (or that this "
            "kernel does not have). Read the packet directly rather than through helpers."
        ),
    ),
    (
        "unreachable",
        re.compile(r"unreachable insn|jump out of range|last insn is not an exit or jmp"),
        lambda summary, insn: (
            "the instructions do not form a valid program (code no path reaches, a jump past "
            "the end, or a last instruction that is not an exit). This is a bug in the code "
            "generator that produced it; please report it with the verifier log (`err.log`)."
        ),
    ),
)


def explain_verifier_log(summary: str, insn_text: str | None = None) -> tuple[str | None, str | None]:
    """Return (family, plain-language explanation) for a verifier refusal, or (None, None)."""
    for family, pattern, explain in _FAMILIES:
        if pattern.search(summary):
            if family == "uninitialized-register" and _returns_unset_r0(summary, insn_text):
                family = "return-value"
            return family, explain(summary, insn_text)
    return None, None


class VerifierError(BpfError):
    """The kernel verifier refused a program; keeps the whole log, a summary and where it failed.

    `reason` is the verifier's own one-line reason, `explanation` says what it
    means for a flow dissector (None for refusals pyfd has no words for),
    `advice` what to change in the source, in its language's terms (set by
    the layer that compiled it, `advise`; None from the runtime alone),
    `source` is the source location of the failing instruction when a source
    map knows it (a SourceLocation), and `log` is the whole log.
    """

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
        self.reason = self.summary.split("; ", 1)[0]
        self.family, self.explanation = explain_verifier_log(self.summary, self.insn_text)
        self.advice: str | None = None
        self._where = self._locate()
        super().__init__(code, self._describe(), command=command)

    def _locate(self) -> str | SourceLocation | None:
        if self.source_map is None or self.insn_index is None:
            return None
        found = self.source_map(self.insn_index)
        if found is None or isinstance(found, str):
            return found
        return SourceLocation.of(found) or str(found)

    @property
    def location(self) -> str | None:
        """Return the source location of the failing instruction ("file:line:col"), if known."""
        return None if self._where is None else str(self._where)

    @property
    def source(self) -> SourceLocation | None:
        """The failing instruction's source location with its line, when the source map gives one."""
        return self._where if isinstance(self._where, SourceLocation) else None

    def attach_source_map(self, source_map: SourceLocator | None) -> None:
        """Set the hook that turns the failing instruction index into a source location."""
        self.source_map = source_map
        self._where = self._locate()
        self._redescribe()

    def advise(self, advice: str | None) -> None:
        """Add what to change in the program's source (after the explanation), from the layer that knows its language."""
        self.advice = advice
        self._redescribe()

    def _redescribe(self) -> None:
        self.message = self._describe()
        self.strerror = self.message

    def _describe(self, log_where: str = " in .log") -> str:
        who = f"program {self.name!r}" if self.name else "the program"
        text = f"the kernel verifier rejected {who}: {self.summary or 'no reason given'}"
        source = self.source
        if source is not None:
            text = f"{source}: {text}"
            caret = source.caret()
            if caret:
                text += "\n" + caret
        if self.insn_index is not None:
            text += f"\n  at instruction {self.insn_index}"
            text += f": {self.insn_text}" if self.insn_text else ""
        if source is None and self.location:
            text += f"\n  from {self.location}"
        why = " ".join(part for part in (self.explanation, self.advice) if part)
        if why:
            text += "\n" + textwrap.fill(why, width=100, initial_indent="  why: ", subsequent_indent="       ")
        if self.truncated:
            text += "\n  (the verifier log was truncated; its end is kept)"
        if self.log:
            kept = "its last " if self.truncated else ""
            text += f"\n  (verifier log: {kept}{len(self.log.splitlines())} lines{log_where})"
        return text

    def report(self, log_where: str) -> str:
        """The whole message, its log note ending in `log_where` (" in .log" in `str()`: the attribute)."""
        return self._with_command(self._describe(log_where))

    def __str__(self) -> str:
        return self._with_command(self.message)

    def _with_command(self, text: str) -> str:
        # The message may start with file:line:col, so the command and errno
        # go last; EACCES here means "refused", not a missing permission.
        code = self.errno if self.errno is not None else 0
        return f"{text}\n  ({self.command or 'the load'} failed with {errno_name(code)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The source map is usually a closure over compiler objects: keep the
        # location it gave, not the hook.
        state = self.__dict__.copy()
        state["source_map"] = None
        return (_rebuild, (type(self), state, self.errno, self.message))


class BtfError(BpfError):
    """The kernel refused BTF type information (BPF_BTF_LOAD, kernel/bpf/btf.c); keeps the BTF verifier log."""

    def __init__(self, code: int, *, log: str, command: str = "BPF_BTF_LOAD", name: str = "") -> None:
        self.log = log
        self.name = name
        last = [line for line in log.splitlines() if line.strip()]
        self.reason = last[-1] if last else "no log (load again with a log to see why)"
        whose = f" of program {name!r}" if name else ""
        super().__init__(code, f"the kernel refused the BTF data{whose}: {self.reason}", command=command)
