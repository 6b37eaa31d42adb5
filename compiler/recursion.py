"""Room for the recursion a deeply nested dissector needs.

The frontend and the CPython run (`pyinstrument`) walk the syntax tree
recursively, a few Python frames per level. CPython itself accepts trees far
deeper than the default recursion limit of 1000 frames allows them to walk: a
sum of 2,990 terms on 3.11 and 3.12, about 10,000 on 3.13, as many nested
`elif`s. Python frames cost no C stack from 3.11 on, so raising the limit for
the walk is safe; what still overflows it is reported as a located
CompileError by the caller, never a RecursionError.
"""

from __future__ import annotations

import _thread
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Enough for CPython's own deepest trees at six frames per level, with room to spare.
RECURSION_LIMIT = 100_000

# threading.Lock is _thread.allocate_lock; importing all of threading for it
# would add a millisecond to every compile's imports.
_lock = _thread.allocate_lock()
_users = 0
_saved = 0


@contextmanager
def recursion_room() -> Iterator[None]:
    """Raise the recursion limit to RECURSION_LIMIT while the block runs (re-entrant, thread-safe)."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_saved, RECURSION_LIMIT))
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                sys.setrecursionlimit(_saved)
