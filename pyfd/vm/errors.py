"""Errors of the interpreter: every one names the program and, where there is one, the instruction and its source line."""

from __future__ import annotations

import linecache
from dataclasses import dataclass


@dataclass(frozen=True)
class VmLocation:
    """Where an instruction came from: file, 1-based line, 0-based columns, the line's text."""

    file: str
    line: int
    col: int = 0
    end_col: int | None = None  # exclusive; None = one character
    text: str | None = None  # the source line; read from `file` when None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col + 1}"

    @classmethod
    def of(cls, value: object) -> VmLocation | None:
        """A location from a span-like object (the compiler's Span: file, line, col, end_line, end_col)."""
        if value is None or isinstance(value, VmLocation):
            return value
        file, line, col = (getattr(value, name, None) for name in ("file", "line", "col"))
        if not isinstance(file, str) or not isinstance(line, int) or not isinstance(col, int):
            return None
        end_line, end_col = getattr(value, "end_line", None), getattr(value, "end_col", None)
        end = end_col if end_line == line and isinstance(end_col, int) else None
        source_line = getattr(value, "source_line", None)
        text = source_line() if callable(source_line) else None
        return cls(file, line, col, end, text if isinstance(text, str) else None)

    def source_line(self) -> str:
        """The text of the line (empty when neither given nor readable)."""
        if self.text is not None:
            return self.text.rstrip("\n")
        return linecache.getline(self.file, self.line).rstrip("\n")

    def caret(self) -> str:
        """The source line, indented, with carets under the columns; empty without text."""
        text = self.source_line()
        if not text.strip():
            return ""
        col = min(max(self.col, 0), len(text))
        end = self.end_col if self.end_col is not None and self.end_col > col else col + 1
        end = min(end, max(len(text), col + 1))
        pad = len(text[:col].expandtabs())
        width = len(text[:end].expandtabs()) - pad
        return f"    {text.expandtabs()}\n    {' ' * pad}{'^' * max(width, 1)}"


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
