"""Source locations and the errors the compiler reports against them."""

from __future__ import annotations

import linecache
from typing import Any
from dataclasses import dataclass


def _chars(text: str, byte_col: int) -> int:
    """The character column of a UTF-8 byte column of `text` (`ast` counts bytes); unchanged for ASCII or unknown text."""
    if text.isascii():
        return byte_col
    return len(text.encode()[:byte_col].decode(errors="ignore"))


@dataclass(frozen=True, slots=True)
class Span:
    """A range of Python source: 1-based lines, 0-based columns in UTF-8 bytes (as `ast` gives).

    Rendered columns count characters, as editors do; they differ only on a
    line with non-ASCII text before the column.
    """

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{_chars(self.source_line(), self.col) + 1}"

    def source_line(self) -> str:
        """The text of the first line of the span, without its newline."""
        return linecache.getline(self.file, self.line).rstrip("\n")

    def caret(self) -> str:
        """The source line with a caret underline spanning the span on that line."""
        text = self.source_line()
        if not text:
            return ""
        col = _chars(text, self.col)
        end = _chars(text, self.end_col) if self.end_line == self.line else len(text)
        width = max(1, end - col)
        return f"    {text}\n    {' ' * col}{'^' * width}"

    def render(self, message: str, hint: str | None = None) -> str:
        """`file:line:col: message`, the source line with a caret, and the hint."""
        out = f"{self}: {message}"
        caret = self.caret()
        if caret:
            out += "\n" + caret
        if hint:
            out += f"\n  hint: {hint}"
        return out


class CompileError(Exception):
    """An error in the user's dissector, located at a Python source span."""

    def __init__(self, message: str, span: Span | None, *, hint: str | None = None) -> None:
        self.message = message
        self.span = span
        self.hint = hint
        super().__init__(self.render())

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles as cls(*args), and args is the rendered text only;
        # rebuild from the parts instead (a CompileError crosses a process
        # boundary when the llvm backend runs in a child, and in pytest-xdist).
        return (_rebuild_compile_error, (type(self), self.__dict__.copy()))

    def render(self) -> str:
        """The full report: location, message, source line with caret, hint."""
        if self.span is None:
            text = f"error: {self.message}"
            return text + (f"\n  hint: {self.hint}" if self.hint else "")
        return self.span.render(self.message, self.hint)


def _rebuild_compile_error(cls: type[CompileError], state: dict[str, Any]) -> CompileError:
    """Unpickle a CompileError, or a subclass whose constructor takes other arguments, from its attributes."""
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error.render())
    return error


class UnsupportedError(CompileError):
    """A Python construct outside the subset pyfd compiles."""


class CompileTypeError(CompileError, TypeError):
    """A value of the wrong type, width or signedness."""


class CompileNameError(CompileError, NameError):
    """An undefined or misused name, field or attribute."""


class ReturnValueError(CompileError, ValueError):
    """A dissector returns something other than BPF_OK, BPF_DROP or CONTINUE."""


class PacketAccessError(CompileError):
    """A packet read the verifier could not prove in bounds."""


class MapAccessError(CompileError):
    """A map operation the compiler cannot make safe: an index it cannot bound, an atomic on a narrow value."""


class BackendError(CompileError):
    """The code generator (LLVM) failed on a program the frontend accepted."""


class InternalCompilerError(CompileError):
    """A bug in pyfd, reported at the construct that triggered it."""
