"""Python's cyclic garbage collector paused while a compile runs.

A compile allocates hundreds of thousands of small objects (IR nodes, sets
and dicts of the analyses) and frees almost all of them by reference
counting; few form cycles. The collector, run every few hundred
allocations, walks the young objects each time and, as they survive into
the older generations, the whole growing heap: on a large function that is
work proportional to the heap, again and again. Paused for the compile and
resumed afterwards, it collects whatever cycles the compile left in one run
at its next turn.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block (if it was enabled), and enable it again on leaving."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
