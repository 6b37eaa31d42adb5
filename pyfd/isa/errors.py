"""Exceptions raised by the instruction-set package."""

from __future__ import annotations


class IsaError(ValueError):
    """Base of every error about an instruction, its bytes or its text."""


class EncodeError(IsaError):
    """A field does not fit its encoding, or a jump target is still a label."""


class DecodeError(IsaError):
    """Bytes that are not a whole number of well-formed instruction slots."""


class LabelError(IsaError):
    """A jump names a label that is undefined, or a label is placed twice."""


class DisassembleError(IsaError):
    """An instruction that has no text form in the supported syntax."""


class AssembleError(IsaError):
    """A line of assembly text that does not parse."""
