"""Errors of the interpreter: every one names the program and, where there is one, the instruction and its source line."""

from __future__ import annotations

from ..objfile.location import SourceLocation


# The interpreter's name for the place an instruction came from (the runtime calls it SourceLocation).
VmLocation = SourceLocation


class VmError(Exception):
    """The interpreter cannot run a program, or a run went wrong (a bad helper call, a runaway loop).

    `insn` is the instruction's slot index in its program (as the kernel's
    verifier log counts them), `program` the program's name, `location` its
    source line when the program has line info, `insn_text` its assembly.
    """

    def __init__(
        self,
        reason: str,
        *,
        program: str = "",
        insn: int | None = None,
        location: VmLocation | None = None,
        insn_text: str | None = None,
    ) -> None:
        self.reason = reason
        self.program = program
        self.insn = insn
        self.location = location
        self.insn_text = insn_text
        super().__init__(self._message())

    def _message(self) -> str:
        head = f"{self.location}: {self.reason}" if self.location is not None else self.reason
        lines = [head]
        if self.location is not None:
            caret = self.location.caret()
            if caret:
                lines.append(caret)
        if self.insn is not None:
            where = f"instruction {self.insn}" + (f" of {self.program!r}" if self.program else "")
            lines.append(f"  at {where}" + (f": {self.insn_text}" if self.insn_text else ""))
        elif self.program:
            lines.append(f"  in program {self.program!r}")
        return "\n".join(lines)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.reason, self.program, self.insn, self.location, self.insn_text, self.__dict__.copy()))


def _rebuild(
    cls: type[VmError], reason: str, program: str, insn: int | None, location: VmLocation | None, text: str | None, state: dict[str, object]
) -> VmError:
    """Unpickle a VmError or a subclass (pytest-xdist sends them between processes)."""
    err = VmError.__new__(cls)
    VmError.__init__(err, reason, program=program, insn=insn, location=location, insn_text=text)
    err.__dict__.update(state)
    return err


class VmAccessError(VmError):
    """A memory access outside the region its pointer points into (packet, stack, keys, map value, context).

    The kernel's verifier refuses such a program; the interpreter finds it
    while running, on the frame that reaches it: a sanitizer for miscompiles.
    `address` is the interpreter's address, `size` the bytes accessed,
    `write` whether it was a store, `region` what the pointer pointed into.
    """

    def __init__(
        self,
        reason: str,
        *,
        address: int = 0,
        size: int = 0,
        write: bool = False,
        region: str = "",
        program: str = "",
        insn: int | None = None,
        location: VmLocation | None = None,
        insn_text: str | None = None,
    ) -> None:
        self.address = address
        self.size = size
        self.write = write
        self.region = region
        super().__init__(reason, program=program, insn=insn, location=location, insn_text=insn_text)
