"""Programs the compiler must refuse: one record per bad program.

Each record (the kernel verifier selftests' style) names the program, gives its
source, the error class, a substring of the message and the place the error
points at: `line` and `col` as `file:line:col` prints them, 1-based, counted
from the first line of the record's source (the `@dissector` line).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from pyfd.cli import find_dissectors
from pyfd.compiler import frontend
from pyfd.compiler.diagnostics import (
    CompileError,
    CompileNameError,
    CompileTypeError,
    InternalCompilerError,
    PacketAccessError,
    ReturnValueError,
    UnsupportedError,
)
from pyfd.dissector import Dissector

PRELUDE = """\
from pyfd import BPF_DROP, BPF_FLOW_DISSECTOR_CONTINUE, BPF_OK, ETH_P_IP, BpfFlowKeys, Packet, dissector, i64, u8, u16, u64
from pyfd.headers import IPv4, Ports

X = 1

"""
PRELUDE_LINES = PRELUDE.count("\n")


@dataclass(frozen=True)
class Reject:
    """A program the compiler refuses, and how it must say so."""

    name: str
    source: str
    error: type[CompileError]
    message: str
    line: int
    col: int
    hint: str | None = None


def dissector_file(tmp_path: Path, source: str, name: str = "bad.py", *, prelude: str = PRELUDE) -> Path:
    """Write `prelude` and `source` (dedented) to a file; return its path."""
    path = tmp_path / name
    path.write_text(prelude + textwrap.dedent(source).lstrip("\n"))
    return path


def only_dissector(path: Path) -> Dissector:
    """Import the file and return its one dissector."""
    [found] = find_dissectors(path).values()
    return found


REJECTS = [
    # -- helpers, loops, tuples, opaque bytes -------------------------------
    Reject(
        "helper_recursion",
        """
        def walk(pkt: Packet, keys: BpfFlowKeys) -> int:
            return walk(pkt, keys)

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return walk(pkt, keys)
        """,
        UnsupportedError, "recursion is not supported: `walk` is already being called here", 2, 12, hint="range(N)",
    ),
    Reject(
        "helper_unannotated_parameter",
        """
        def h(keys: BpfFlowKeys, x) -> int:
            return BPF_OK

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return h(keys, 1)
        """,
        CompileTypeError, "parameter `x` of helper `h` has no annotation", 1, 26, hint="u8 .. i64",
    ),
    Reject(
        "helper_missing_argument",
        """
        def h(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return h(pkt)
        """,
        CompileTypeError, "`h` is missing the argument `keys`", 6, 12,
    ),
    Reject(
        "helper_missing_return",
        """
        def h(keys: BpfFlowKeys) -> u16:
            if keys.nhoff > 20:
                return 1

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = h(keys)
            return BPF_OK
        """,
        ReturnValueError, "missing return: the end of helper `h` is reachable", 2, 5,
    ),
    Reject(
        "helper_returns_nothing",
        """
        def h(keys: BpfFlowKeys) -> None:
            keys.thoff = 1

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return h(keys)
        """,
        ReturnValueError, "`h` returns nothing, so its result cannot be returned", 6, 12,
    ),
    Reject(
        "unpack_arity",
        """
        def pair(keys: BpfFlowKeys) -> tuple[u8, u16]:
            return 1, keys.nhoff

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            a, b, c = pair(keys)
            return BPF_OK
        """,
        CompileTypeError, "`pair(keys)` returns 2 values, not 3", 6, 5,
    ),
    Reject(
        "return_local_not_a_code",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            v = 7
            if keys.nhoff > 3:
                v = BPF_OK
            return v
        """,
        ReturnValueError, "`v` may be 7, which is not a flow dissector return code", 6, 12,
    ),
    Reject(
        "opaque_bytes_as_integer",
        """
        from pyfd.headers import IPv6

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip6 = pkt.header(IPv6, keys.nhoff)
            keys.sport = ip6.saddr
            return BPF_OK
        """,
        CompileTypeError, "IPv6.saddr is 16 bytes; keys.sport is a 16-bit field", 6, 18,
    ),
    Reject(
        "loop_variable_header_after_loop",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(IPv4, keys.nhoff)
            for i in range(2):
                ip = pkt.header(IPv4, keys.nhoff + 20)
            keys.ip_proto = ip.protocol
            return BPF_OK
        """,
        CompileNameError, "`ip` is not bound to a header on every path", 6, 21,
    ),
    # -- constructs outside the subset ------------------------------------
    Reject(
        "while",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            while keys.nhoff < 10:
                keys.nhoff += 1
            return BPF_OK
        """,
        UnsupportedError, "`while` loops are not supported", 3, 5, hint="for _ in range(N)",
    ),
    Reject(
        "for_variable_bound",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            for i in range(keys.nhoff):
                keys.thoff += 1
            return BPF_OK
        """,
        UnsupportedError, "a loop needs a constant bound", 3, 20, hint="range(N)",
    ),
    Reject(
        "for_not_range",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            for i in keys:
                keys.thoff += 1
            return BPF_OK
        """,
        UnsupportedError, "a `for` loop must iterate over `range(...)` with constant bounds", 3, 14, hint="range(N)",
    ),
    Reject(
        "for_too_long",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            for i in range(1000):
                keys.thoff += 1
            return BPF_OK
        """,
        UnsupportedError, "this loop runs 1000 times", 3, 14,
    ),
    Reject(
        "try",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            try:
                ip = pkt.header(IPv4, 14)
            except Exception:
                return BPF_DROP
            return BPF_OK
        """,
        UnsupportedError, "`try` statements are not supported", 3, 5, hint="already ends the dissector with BPF_DROP",
    ),
    Reject(
        "with",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            with open("x"):
                pass
            return BPF_OK
        """,
        UnsupportedError, "`with` statements are not supported", 3, 5,
    ),
    Reject(
        "lambda",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            g = lambda: 0
            return BPF_OK
        """,
        UnsupportedError, "`lambda` is not supported", 3, 9,
    ),
    Reject(
        "list-comprehension",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.nhoff = [i for i in range(3)]
            return BPF_OK
        """,
        UnsupportedError, "list comprehensions are not supported", 3, 18,
    ),
    Reject(
        "set-comprehension",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = {i for i in range(3)}
            return BPF_OK
        """,
        UnsupportedError, "set comprehensions are not supported", 3, 9,
    ),
    Reject(
        "dict-comprehension",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = {i: i for i in range(3)}
            return BPF_OK
        """,
        UnsupportedError, "dict comprehensions are not supported", 3, 9,
    ),
    Reject(
        "str-literal",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = "s"
            return BPF_OK
        """,
        UnsupportedError, "string literals are not supported", 3, 9,
    ),
    Reject(
        "float-literal",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.nhoff = keys.nhoff + 1.5
            return BPF_OK
        """,
        UnsupportedError, "float literals are not supported", 3, 31,
    ),
    Reject(
        "none-literal",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = None
            return BPF_OK
        """,
        UnsupportedError, "`None` literals are not supported", 3, 9,
    ),
    Reject(
        "bytes-literal",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = b"ab"
            return BPF_OK
        """,
        UnsupportedError, "bytes literals are not supported", 3, 9,
    ),
    Reject(
        "list-literal",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = [1, 2]
            return BPF_OK
        """,
        UnsupportedError, "list literals are not supported", 3, 9,
    ),
    Reject(
        "dict-literal",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = {1: 2}
            return BPF_OK
        """,
        UnsupportedError, "dict literals are not supported", 3, 9,
    ),
    Reject(
        "tuple-literal",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = (1, 2)
            return BPF_OK
        """,
        UnsupportedError, "tuples are not supported", 3, 9,
    ),
    Reject(
        "tuple-target",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            a, b = 1, 2
            return BPF_OK
        """,
        UnsupportedError, "only the result of a helper annotated `-> tuple[...]` can be unpacked", 3, 12,
    ),
    Reject(
        "import",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            import os
            return BPF_OK
        """,
        UnsupportedError, "`import` is not supported in a dissector", 3, 5,
    ),
    Reject(
        "global",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            global X
            return BPF_OK
        """,
        UnsupportedError, "`global` is not supported", 3, 5,
    ),
    Reject(
        "raise",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            raise ValueError
        """,
        UnsupportedError, "`raise` is not supported", 3, 5,
    ),
    Reject(
        "assert",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            assert keys.nhoff == 14
            return BPF_OK
        """,
        UnsupportedError, "`assert` is not supported", 3, 5,
    ),
    Reject(
        "del",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = 1
            del x
            return BPF_OK
        """,
        UnsupportedError, "`del` is not supported", 4, 5,
    ),
    Reject(
        "match",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            match keys.n_proto:
                case 8:
                    return BPF_OK
            return BPF_DROP
        """,
        UnsupportedError, "`match` statements are not supported", 3, 5,
    ),
    Reject(
        "if-expression",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = 14 if keys.nhoff == 0 else keys.nhoff
            return BPF_OK
        """,
        UnsupportedError, "conditional expressions (`a if c else b`) are not supported", 3, 18, hint="`if` statement",
    ),
    Reject(
        "nested-function",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            def g() -> int:
                return 0
            return BPF_OK
        """,
        UnsupportedError, "nested functions are not supported", 3, 5,
    ),
    Reject(
        "subscript",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.nhoff = keys.nhoff[0]
            return BPF_OK
        """,
        UnsupportedError, "subscripts (`x[i]`) are not supported", 3, 18,
    ),
    Reject(
        "chained-assignment",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.nhoff = keys.thoff = 14
            return BPF_OK
        """,
        UnsupportedError, "chained assignment", 3, 5,
    ),
    Reject(
        "expression-without-effect",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.nhoff + 1
            return BPF_OK
        """,
        UnsupportedError, "this expression has no effect", 3, 5,
    ),
    Reject(
        "walrus-statement",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            (x := 1)
            return BPF_OK
        """,
        UnsupportedError, "assignment expressions (`:=`) are not supported", 3, 6,
    ),
    Reject(
        "yield",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            yield BPF_OK
        """,
        UnsupportedError, "`yield` is not supported", 3, 5,
    ),
    Reject(
        "yield-after-return",  # never runs, but makes the function a generator
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
            yield BPF_OK
        """,
        UnsupportedError, "`yield` is not supported", 4, 5,
    ),
    # -- the signature ------------------------------------------------------
    Reject(
        "star-args",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys, *args) -> int:
            return BPF_OK
        """,
        UnsupportedError, "a dissector takes no *args", 2, 40,
    ),
    Reject(
        "star-star-kwargs",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys, **kw) -> int:
            return BPF_OK
        """,
        UnsupportedError, "a dissector takes no **kwargs", 2, 41,
    ),
    Reject(
        "packet-annotated-int",
        """
        @dissector
        def f(pkt: int, keys: BpfFlowKeys) -> int:
            return BPF_OK
        """,
        CompileTypeError, "parameter `pkt` is annotated `int`; it must be annotated `Packet`", 2, 7,
    ),
    Reject(
        "keys-not-annotated",
        """
        @dissector
        def f(pkt: Packet, keys) -> int:
            return BPF_OK
        """,
        CompileTypeError, "parameter `keys` has no annotation; it must be annotated `BpfFlowKeys`", 2, 20,
    ),
    Reject(
        "parameters-swapped",
        """
        @dissector
        def f(keys: BpfFlowKeys, pkt: Packet) -> int:
            return BPF_OK
        """,
        CompileTypeError, "parameter `keys` is annotated `BpfFlowKeys`; it must be annotated `Packet`", 2, 7,
    ),
    Reject(
        "one-parameter",
        """
        @dissector
        def f(pkt: Packet) -> int:
            return BPF_OK
        """,
        CompileTypeError, "`f` must take exactly two parameters: (pkt: Packet, keys: BpfFlowKeys)", 2, 1,
    ),
    Reject(
        "three-parameters",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys, extra: int) -> int:
            return BPF_OK
        """,
        CompileTypeError, "`f` must take exactly two parameters", 2, 39,
    ),
    Reject(
        "return-annotation",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> bool:
            return BPF_OK
        """,
        CompileTypeError, "a dissector returns `int`, not `bool`", 2, 42,
    ),
    # -- calls ---------------------------------------------------------------
    Reject(
        "recursion",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return f(pkt, keys)
        """,
        UnsupportedError, "recursion is not supported", 3, 12,
    ),
    Reject(
        "unknown-function",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.nhoff = parse(keys.nhoff)
            return BPF_OK
        """,
        CompileNameError, "name `parse` is not defined", 3, 18,
    ),
    Reject(
        "builtin-len",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = len(pkt)
            return BPF_OK
        """,
        UnsupportedError, "the builtin `len` is not supported", 3, 9,
    ),
    Reject(
        "builtin-print",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            print(keys.nhoff)
            return BPF_OK
        """,
        UnsupportedError, "the builtin `print` is not supported", 3, 5,
    ),
    Reject(
        "call-a-global-object",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.nhoff = IPv4(keys.nhoff)
            return BPF_OK
        """,
        UnsupportedError, "call to `IPv4` is not supported", 3, 18,
    ),
    Reject(
        "cast-two-arguments",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.nhoff = u16(keys.nhoff, 1)
            return BPF_OK
        """,
        CompileTypeError, "u16(...) takes one argument", 3, 18,
    ),
    # -- operators -----------------------------------------------------------
    Reject(
        "true-division",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = keys.nhoff / 2
            return BPF_OK
        """,
        UnsupportedError, "the `/` operator is not supported", 3, 18, hint="`//`",
    ),
    Reject(
        "power",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = keys.nhoff ** 2
            return BPF_OK
        """,
        UnsupportedError, "the `**` operator is not supported", 3, 18,
    ),
    Reject(
        "chained-comparison",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if 14 < keys.nhoff < 100:
                return BPF_DROP
            return BPF_OK
        """,
        UnsupportedError, "chained comparisons are not supported", 3, 8, hint="`a < b and b < c`",
    ),
    Reject(
        "is",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if keys.nhoff is X:
                return BPF_DROP
            return BPF_OK
        """,
        UnsupportedError, "the `is` operator is not supported", 3, 8, hint="==",
    ),
    Reject(
        "is-not",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if keys.nhoff is not X:
                return BPF_DROP
            return BPF_OK
        """,
        UnsupportedError, "the `is not` operator is not supported", 3, 8,
    ),
    Reject(
        "in",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if keys.nhoff + 1 in X:
                return BPF_DROP
            return BPF_OK
        """,
        UnsupportedError, "the `in` operator is not supported", 3, 8,
    ),
    Reject(
        "not-in",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = keys.nhoff not in X
            return BPF_OK
        """,
        UnsupportedError, "the `not in` operator is not supported", 3, 9,
    ),
    # -- names and assignments -------------------------------------------
    Reject(
        "undefined-name",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = keys.nhoff + offset
            return BPF_OK
        """,
        CompileNameError, "name `offset` is not defined", 3, 31,
    ),
    Reject(
        "assigned-in-one-branch",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if keys.n_proto == ETH_P_IP:
                x = 20
            keys.thoff = keys.nhoff + x
            return BPF_OK
        """,
        CompileNameError, "`x` may be used before it is assigned", 5, 31,
    ),
    Reject(
        "global-read-before-local-assignment",  # CPython: UnboundLocalError, not the global
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = X
            X = 2
            return BPF_OK
        """,
        CompileNameError, "`X` is used before it is assigned", 3, 18, hint="assigned later",
    ),
    Reject(
        "augmented-before-assignment",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x += 1
            return BPF_OK
        """,
        CompileNameError, "`x` is used before it is assigned", 3, 5,
    ),
    Reject(
        "assign-to-parameter",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            pkt = 14
            return BPF_OK
        """,
        CompileNameError, "cannot assign to the parameter `pkt`", 3, 5,
    ),
    Reject(
        "unknown-keys-field-store",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.foo = 1
            return BPF_OK
        """,
        CompileNameError, "struct bpf_flow_keys has no field `foo`", 3, 5, hint="nhoff, thoff",
    ),
    Reject(
        "unknown-keys-field-load",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = keys.nhof
            return BPF_OK
        """,
        CompileNameError, "struct bpf_flow_keys has no field `nhof`", 3, 18,
    ),
    Reject(
        "assign-to-global-attribute",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            IPv4.size = 1
            return BPF_OK
        """,
        CompileNameError, "cannot assign to `IPv4.size`", 3, 5, hint="only fields of the keys parameter",
    ),
    Reject(
        "annotated-attribute",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.nhoff: u16 = 1
            return BPF_OK
        """,
        UnsupportedError, "only local names can be annotated", 3, 5,
    ),
    Reject(
        "declaration-without-value",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x: u16
            return BPF_OK
        """,
        UnsupportedError, "a declaration needs a value", 3, 5,
    ),
    Reject(
        "unsupported-annotation",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x: float = 1
            return BPF_OK
        """,
        CompileTypeError, "unsupported type `float`", 3, 8,
    ),
    Reject(
        "redeclared-type",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x: u16 = 1
            x: u8 = 2
            return BPF_OK
        """,
        CompileTypeError, "`x` already has type `u16`", 4, 8,
    ),
    Reject(
        "function-as-integer",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = dissector
            return BPF_OK
        """,
        CompileTypeError, "`dissector` is not an integer value", 3, 9,
    ),
    # -- found by fuzzing (more in test_robustness.py) ----------------------
    Reject(
        "void-helper-used-as-a-value",
        """
        def h(keys: BpfFlowKeys):
            keys.sport = 1

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.dport = h(keys)
            return BPF_OK
        """,
        CompileTypeError, "`h` returns nothing (it has no result annotation), so this call has no value", 6, 18, hint="-> u16",
    ),
    Reject(
        "code-after-return",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
            keys.thoff = keys.nhoff + keys.nhoff
        """,
        UnsupportedError, "this code is never reached", 4, 5, hint="delete it",
    ),
    Reject(
        "non-ascii-dissector-name",
        """
        @dissector
        def dü(pkt: Packet, keys: BpfFlowKeys) -> int:
            return BPF_OK
        """,
        CompileNameError, "the dissector's name `dü` has non-ASCII characters ('ü')", 2, 5,
    ),
    Reject(
        "literal-too-big-for-typed-local",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x: u8 = 300
            keys.ip_proto = x
            return BPF_OK
        """,
        CompileTypeError, "300 does not fit in `x`: u8 holds 0..255", 3, 13, hint="u8(300)",
    ),
    Reject(
        "literal-too-big-for-helper-parameter",
        """
        def h(keys: BpfFlowKeys, x: u8) -> None:
            keys.ip_proto = x

        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            h(keys, 300)
            return BPF_OK
        """,
        CompileTypeError, "300 does not fit in parameter `x` of `h`: u8 holds 0..255", 6, 13,
    ),
    # -- widths and signedness ---------------------------------------------
    Reject(
        "constant-too-wide-for-field",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.ip_proto = 300
            return BPF_OK
        """,
        CompileTypeError, "300 does not fit in keys.ip_proto: u8 holds 0..255", 3, 21,
    ),
    Reject(
        "constant-too-wide-for-64-bits",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = 1 << 64
            return BPF_OK
        """,
        CompileTypeError, "the constant 18446744073709551616 does not fit in 64 bits", 3, 9,
    ),
    Reject(
        "shift-count-out-of-range",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = keys.nhoff
            keys.thoff = x << 64
            return BPF_OK
        """,
        CompileTypeError, "shift count 64 is outside 0..63", 4, 23,
    ),
    Reject(
        "constant-shift-count-out-of-range",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = 1 << 70
            return BPF_OK
        """,
        CompileTypeError, "shift count 70 is outside", 3, 23,
    ),
    Reject(
        "signed-unsigned-comparison",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = keys.thoff
            if i64(x) < keys.nhoff:
                return BPF_DROP
            return BPF_OK
        """,
        CompileTypeError, "comparison between signed `i64` and unsigned `u16`", 4, 8, hint="cast one side",
    ),
    Reject(
        "signed-division",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = i64(keys.nhoff) // i64(2)
            return BPF_OK
        """,
        CompileTypeError, "signed `//` is not supported", 3, 9, hint="u64",
    ),
    Reject(
        "signed-modulo",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x: i64 = 5
            keys.thoff = x % 4
            return BPF_OK
        """,
        CompileTypeError, "signed `%` is not supported", 4, 18,
    ),
    Reject(
        "division-by-constant-zero",  # surely a mistake, as `14 // 0` is (a zero from the packet is fine)
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = keys.nhoff // 0
            return BPF_OK
        """,
        CompileTypeError, "`//` by a constant zero", 3, 32,
    ),
    Reject(
        "modulo-by-constant-zero",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = keys.nhoff % u8(256)
            return BPF_OK
        """,
        CompileTypeError, "`%` by a constant zero", 3, 31,
    ),
    Reject(
        "constant-out-of-comparison-range",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if keys.nhoff == -1:
                return BPF_DROP
            return BPF_OK
        """,
        CompileTypeError, "-1 is outside the range of an unsigned 64-bit comparison", 3, 22,
    ),
    Reject(
        "constant-division-by-zero",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = 14 // 0
            return BPF_OK
        """,
        CompileTypeError, "division by zero", 3, 18,
    ),
    # -- packet access -------------------------------------------------------
    Reject(
        "offset-beyond-verifier-limit",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(IPv4, 70000)
            return BPF_OK
        """,
        PacketAccessError, "constant offset 70000 is beyond what the verifier can track", 3, 27,
    ),
    Reject(
        "negative-offset",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(IPv4, -4)
            return BPF_OK
        """,
        PacketAccessError, "constant offset -4 is negative", 3, 27,
    ),
    Reject(
        "header-of-non-header-class",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(u8, 14)
            return BPF_OK
        """,
        CompileTypeError, "`u8` is not a header class", 3, 21,
    ),
    Reject(
        "header-wrong-arity",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(IPv4)
            return BPF_OK
        """,
        CompileTypeError, "pkt.header takes two arguments", 3, 10,
    ),
    Reject(
        "unknown-header-field",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(IPv4, 14)
            keys.ip_proto = ip.proto
            return BPF_OK
        """,
        CompileNameError, "header IPv4 has no field `proto`", 4, 21, hint="protocol",
    ),
    Reject(
        "write-header-field",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(IPv4, 14)
            ip.ttl = 1
            return BPF_OK
        """,
        CompileTypeError, "packet headers are read-only", 4, 5,
    ),
    Reject(
        "packet-attribute",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = pkt.data
            return BPF_OK
        """,
        CompileNameError, "the packet has no attribute `data`", 3, 18,
    ),
    Reject(
        "header-class-as-integer",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = keys.nhoff + IPv4
            return BPF_OK
        """,
        CompileTypeError, "`IPv4` is not an integer value", 3, 31,
    ),
    Reject(
        "header-class-stored-in-keys",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            keys.thoff = IPv4
            return BPF_OK
        """,
        CompileTypeError, "keys.thoff must be assigned an integer", 3, 18,
    ),
    Reject(
        "header-view-as-integer",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(IPv4, 14)
            keys.thoff = ip + 20
            return BPF_OK
        """,
        CompileTypeError, "an IPv4 header is not an integer", 4, 18, hint="read one of its fields",
    ),
    Reject(
        "header-augmented",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(IPv4, 14)
            ip += 20
            return BPF_OK
        """,
        CompileTypeError, "an IPv4 header is not an integer", 4, 5,
    ),
    Reject(
        "header-then-integer",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(IPv4, 14)
            ip = 20
            return BPF_OK
        """,
        CompileTypeError, "`ip` holds a header; it cannot also hold an integer", 4, 5,
    ),
    Reject(
        "header-bound-to-different-offsets",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if keys.n_proto == ETH_P_IP:
                ip = pkt.header(IPv4, 14)
            else:
                ip = pkt.header(IPv4, 18)
            keys.ip_proto = ip.protocol
            return BPF_OK
        """,
        CompileNameError, "`ip` refers to different packet headers on the paths that reach here", 7, 21,
    ),
    Reject(
        "header-bound-in-one-branch",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if keys.n_proto == ETH_P_IP:
                ip = pkt.header(IPv4, 14)
            keys.ip_proto = ip.protocol
            return BPF_OK
        """,
        CompileNameError, "`ip` is not bound to a header on every path that reaches here", 5, 21,
    ),
    # -- return values -------------------------------------------------------
    Reject(
        "return-7",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return 7
        """,
        ReturnValueError, "7 is not a flow dissector return code", 3, 12, hint="BPF_OK (0)",
    ),
    Reject(
        "return-minus-1",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return -1
        """,
        ReturnValueError, "-1 is not a flow dissector return code", 3, 12,
    ),
    Reject(
        "return-local",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            x = keys.nhoff
            return x
        """,
        ReturnValueError, "a dissector must return a constant return code", 4, 12,
    ),
    Reject(
        "return-header",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            ip = pkt.header(IPv4, 14)
            return ip
        """,
        ReturnValueError, "a dissector must return a constant return code", 4, 12,
    ),
    Reject(
        "bare-return",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            return
        """,
        ReturnValueError, "a dissector must return a value", 3, 5,
    ),
    Reject(
        "missing-return",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if keys.n_proto == ETH_P_IP:
                return BPF_OK
        """,
        ReturnValueError, "missing return: the end of `f` is reachable", 3, 5,
    ),
    Reject(
        "missing-return-in-else",
        """
        @dissector
        def f(pkt: Packet, keys: BpfFlowKeys) -> int:
            if keys.n_proto == ETH_P_IP:
                return BPF_OK
            else:
                keys.thoff = 14
        """,
        ReturnValueError, "missing return", 3, 5,
    ),
]


@pytest.mark.parametrize("case", [pytest.param(r, id=r.name) for r in REJECTS])
def test_rejected(case: Reject, tmp_path: Path) -> None:
    path = dissector_file(tmp_path, case.source)
    d = only_dissector(path)
    with pytest.raises(CompileError) as info:
        d.compile()
    err = info.value
    assert type(err) is case.error, err.render()
    assert case.message in err.message, err.render()
    if case.hint is not None:
        assert err.hint is not None and case.hint in err.hint, err.render()
    assert err.span is not None
    assert (err.span.file, err.span.line, err.span.col + 1) == (str(path), PRELUDE_LINES + case.line, case.col), err.render()
    written = path.read_text().splitlines()[err.span.line - 1]
    first, source_line, caret, *_ = err.render().splitlines()
    assert first == f"{path}:{err.span.line}:{case.col}: {err.message}"
    assert source_line == f"    {written}"
    assert caret.strip() and set(caret.strip()) == {"^"}
    assert caret.index("^") == len("    ") + err.span.col


def test_record_names_are_unique() -> None:
    names = [r.name for r in REJECTS]
    assert len(names) == len(set(names))


GOOD = """
@dissector
def f(pkt: Packet, keys: BpfFlowKeys) -> int:
    ip = pkt.header(IPv4, keys.nhoff)
    keys.thoff = keys.nhoff + ip.ihl * 4
    return BPF_OK
"""


def test_control_program_compiles(tmp_path: Path) -> None:
    """The prelude and the harness accept a correct program, so the rejections above are the programs'."""
    assert only_dissector(dissector_file(tmp_path, GOOD)).compile().insn_count > 0


@pytest.mark.parametrize(
    ("error", "builtin"),
    [(CompileTypeError, TypeError), (CompileNameError, NameError), (ReturnValueError, ValueError)],
)
def test_error_classes_are_also_builtin_errors(error: type[CompileError], builtin: type[Exception]) -> None:
    assert issubclass(error, CompileError) and issubclass(error, builtin)


@pytest.mark.parametrize("error", [UnsupportedError, PacketAccessError, InternalCompilerError])
def test_other_error_classes_are_compile_errors(error: type[CompileError]) -> None:
    assert issubclass(error, CompileError) and not issubclass(error, (TypeError, NameError))


@pytest.mark.parametrize(
    ("name", "builtin"),
    [("packet-annotated-int", TypeError), ("constant-too-wide-for-field", TypeError), ("undefined-name", NameError), ("return-7", ValueError)],
)
def test_raised_errors_are_caught_as_builtin_errors(name: str, builtin: type[Exception], tmp_path: Path) -> None:
    [case] = [r for r in REJECTS if r.name == name]
    d = only_dissector(dissector_file(tmp_path, case.source))
    with pytest.raises(builtin):
        d.lower()


@pytest.mark.parametrize("name", ["packet-annotated-int", "constant-too-wide-for-field", "undefined-name", "return-7"])
def test_errors_pickle_with_their_location(name: str, tmp_path: Path) -> None:
    """A CompileError crosses process boundaries (the llvm backend's child, pytest-xdist) whole."""
    import pickle

    [case] = [r for r in REJECTS if r.name == name]
    d = only_dissector(dissector_file(tmp_path, case.source))
    with pytest.raises(CompileError) as info:
        d.lower()
    err = info.value
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert (back.message, back.span, back.hint, str(back)) == (err.message, err.span, err.hint, str(err))


def _internal_bug(*args: object, **kwargs: object) -> NoReturn:
    raise ZeroDivisionError("simulated bug in pyfd")


@pytest.mark.parametrize(
    ("method", "line", "col"),
    [
        ("_binop", 4, 18),  # inside an expression: the expression
        ("_return", 5, 5),  # a statement: the statement
        ("_check_signature", 2, 1),  # outside any statement: the function
    ],
)
def test_internal_error_points_at_the_users_line(method: str, line: int, col: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stray exception inside the compiler becomes an InternalCompilerError at the construct being compiled."""
    path = dissector_file(tmp_path, GOOD)
    d = only_dissector(path)
    monkeypatch.setattr(frontend._Lowering, method, _internal_bug)
    with pytest.raises(InternalCompilerError) as info:
        d.compile()
    err = info.value
    assert err.span is not None
    assert (err.span.file, err.span.line, err.span.col + 1) == (str(path), PRELUDE_LINES + line, col)
    assert "internal compiler error" in err.message and "ZeroDivisionError: simulated bug in pyfd" in err.message
    assert isinstance(err.__cause__, ZeroDivisionError)  # kept for whoever debugs pyfd
    report = err.render()
    assert report.startswith(f"{path}:{PRELUDE_LINES + line}:{col}: ")
    assert "frontend.py" not in report and "Traceback" not in report
    assert report.splitlines()[1] == "    " + path.read_text().splitlines()[err.span.line - 1]
