"""A fresh copy of this checkout, as `git clone` would give it, but with the uncommitted edits under test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What a build or a test run leaves in a checkout; never part of a fresh one.
_LEFTOVERS = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "*.o")


def fresh_checkout(dest: Path) -> Path:
    """Copy the files git knows (tracked, or new and not ignored) to dest: no venv, no build output."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:  # not a git checkout (an unpacked source tree): copy it, minus leftovers
        shutil.copytree(ROOT, dest, ignore=_LEFTOVERS)
        return dest
    for name in listed.stdout.decode().split("\0"):
        source = ROOT / name
        if name and source.is_file():  # a file deleted but not yet committed is listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest
