"""Optimisation passes over the IR, and the pipelines that run them."""

from __future__ import annotations

from .base import Pass, PassManager
from .checks import MergeChecks
from .dce import DeadCode
from .fold import ConstantFold
from .likely import LikelyFirst
from .loads import RedundantLoads
from .peephole import Peephole
from .probes import FoldProbes
from .simplify_cfg import SimplifyCFG
from .swap import SwapCompares
from .thread import ThreadJumps
from .values import CommonValues
from .verdicts import ThreadVerdicts


def pipeline(opt_level: int, *, thread_jumps: bool = True) -> list[Pass]:
    """The passes for `-O0` (cleanup only) or `-O1`/`-O2`; ThreadJumps only if the backend asks for it (Backend.thread_jumps)."""
    if opt_level <= 0:
        return [SimplifyCFG()]
    threading: list[Pass] = [ThreadJumps(), ThreadVerdicts()] if thread_jumps else [ThreadVerdicts()]
    return [
        SimplifyCFG(), ConstantFold(), *threading, RedundantLoads(), CommonValues(), SwapCompares(), Peephole(), MergeChecks(), FoldProbes(),
        LikelyFirst(), DeadCode(),
    ]


__all__ = [
    "Pass", "PassManager", "pipeline", "ConstantFold", "DeadCode", "MergeChecks", "Peephole", "RedundantLoads", "SimplifyCFG",
    "SwapCompares", "ThreadJumps", "ThreadVerdicts", "CommonValues", "FoldProbes", "LikelyFirst",
]
