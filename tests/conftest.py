"""Test-wide fixtures: the kernel guard (fails in CI, skips elsewhere) and frames."""

from __future__ import annotations

from kernel import requires_kernel  # noqa: F401 - fixture, found by pytest through this import
