"""Where an instruction came from: a place in the user's source, as BTF line info or the compiler's spans give it.

The runtime's verifier errors and the interpreter's run errors both point at
such a place, so both take it from here (a leaf: nothing of pyfd imported).
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a type: reading errors needs no BTF parser
    from .btf import LineInfoRecord


@dataclass(frozen=True)
class SourceLocation:
    """A place in the user's source: file, 1-based line, 0-based columns, the line's text."""

    file: str
    line: int
    col: int = 0
    end_col: int | None = None  # exclusive; None = one character
    text: str | None = None  # the source line; read from `file` when None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col + 1}"

    @classmethod
    def of(cls, value: object) -> SourceLocation | None:
        """Read a location from a SourceLocation or a span-like object (file, line, col, ...; the compiler's Span)."""
        if value is None or isinstance(value, SourceLocation):
            return value
        file, line, col = (getattr(value, name, None) for name in ("file", "line", "col"))
        if not isinstance(file, str) or not isinstance(line, int) or not isinstance(col, int):
            return None
        end_line, end_col = getattr(value, "end_line", None), getattr(value, "end_col", None)
        end = end_col if end_line == line and isinstance(end_col, int) else None
        source_line = getattr(value, "source_line", None)
        text = source_line() if callable(source_line) else None
        return cls(file, line, col, end, text if isinstance(text, str) else None)

    @classmethod
    def of_line_info(cls, record: LineInfoRecord) -> SourceLocation:
        """The place a .BTF.ext line_info record names (its columns are 1-based; an empty text is read from the file)."""
        return cls(record.file_name, record.line, max(record.col - 1, 0), None, record.line_text or None)

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
        # Tabs (C sources) widen what precedes the caret as they widen the line.
        pad, width = len(text[:col].expandtabs()), len(text[:end].expandtabs()) - len(text[:col].expandtabs())
        return f"    {text.expandtabs()}\n    {' ' * pad}{'^' * max(width, 1)}"
