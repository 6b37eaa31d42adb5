"""Optimisation passes over the IR, and the pipelines that run them."""

from __future__ import annotations

from .base import Pass, PassManager
from .checks import MergeChecks
from .dce import DeadCode
from .fold import ConstantFold
from .loads import RedundantLoads
from .peephole import Peephole
from .simplify_cfg import SimplifyCFG


def pipeline(opt_level: int) -> list[Pass]:
    """The passes for `-O0` (cleanup only) or `-O1`/`-O2`."""
    if opt_level <= 0:
        return [SimplifyCFG()]
    return [SimplifyCFG(), ConstantFold(), RedundantLoads(), Peephole(), MergeChecks(), DeadCode()]


__all__ = ["Pass", "PassManager", "pipeline", "ConstantFold", "DeadCode", "MergeChecks", "Peephole", "RedundantLoads", "SimplifyCFG"]
