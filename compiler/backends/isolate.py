"""Running a step that may end its own process in a child process instead.

LLVM reports some failures by ending the process: `report_fatal_error`
prints "LLVM ERROR: ..." and aborts (SIGABRT), and an error diagnostic
without a handler prints it and calls `exit(1)`. Neither can be caught in
Python, and a program calling `compile()` would die with it. `run_isolated`
runs such a step in a child and returns the bytes it produced, or raises
`ChildFailed` with how the child ended and what it wrote to stderr.

A forked child costs a few milliseconds and needs nothing but the memory it
shares with its parent. `fork` is only safe while the process has one
thread (a lock another thread holds stays locked in the child, and CPython
3.12+ warns about it), so a multi-threaded caller gets a fresh interpreter
instead: the same step, started by its `spawn` command line, reading its
input from stdin and writing its result to stdout.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable

# Exit code of a child whose step raised a Python exception (sysexits.h EX_SOFTWARE).
EX_SOFTWARE = 70
_STDERR_LIMIT = 1 << 16


class ChildFailed(Exception):
    """The child died (a signal, a non-zero exit) or produced no result."""

    def __init__(self, how: str, stderr: str) -> None:
        self.how = how
        self.stderr = stderr
        super().__init__(f"{how}: {stderr.strip()}" if stderr.strip() else how)


def _threads() -> int:
    """The threads of this process (Python's and any a library started), 1 if unknown."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def run_isolated(step: Callable[[], bytes], spawn: list[str], stdin: bytes) -> bytes:
    """`step()` run in a forked child, or `spawn` run with `stdin` when forking is unsafe."""
    if hasattr(os, "fork") and _threads() == 1:
        return _forked(step)
    return _spawned(spawn, stdin)


def _how(code: int) -> str:
    """How a child with this exit code (negative: the signal) ended."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _forked(step: Callable[[], bytes]) -> bytes:
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as errors:
        pid = os.fork()
        if pid == 0:  # the child: run the step, hand back its bytes, never return
            code = EX_SOFTWARE
            try:
                os.close(read_end)
                os.dup2(errors.fileno(), 2)  # LLVM writes its fatal messages to fd 2
                _quiet_death()
                result = step()
                with os.fdopen(write_end, "wb") as out:
                    out.write(frame(result))
                code = 0
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
                try:
                    os.write(2, f"{type(exc).__name__}: {exc}\n".encode(errors="replace"))
                except OSError:
                    pass
            finally:
                os._exit(code)  # no atexit handlers, no flushing of the parent's buffers
        os.close(write_end)
        try:
            with os.fdopen(read_end, "rb") as pipe:
                data = pipe.read()  # until the child closes its end: done or dead
        except BaseException:  # interrupted: do not leave the child running
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        _, status = os.waitpid(pid, 0)
        errors.seek(0)
        stderr = errors.read(_STDERR_LIMIT).decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    return _result(data, code, stderr)


def _spawned(argv: list[str], stdin: bytes) -> bytes:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # the parent's imports
    done = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=False)
    return _result(done.stdout, done.returncode, done.stderr[:_STDERR_LIMIT].decode(errors="replace"))


def _result(data: bytes, code: int, stderr: str) -> bytes:
    """The framed result of a child that ended with exit code `code`, or ChildFailed."""
    if code == 0 and len(data) >= 8:
        (size,) = struct.unpack_from("<Q", data)
        if len(data) == 8 + size:
            return data[8:]
    raise ChildFailed(_how(code) if code else "the child ended without a complete result", stderr)


def frame(result: bytes) -> bytes:
    """`result` as a spawned child writes it to stdout (what `_forked` writes to its pipe)."""
    return struct.pack("<Q", len(result)) + result


def _quiet_death() -> None:
    """An abort in the child is an outcome the parent reports, not a crash to dump."""
    import faulthandler

    faulthandler.disable()  # pytest and `python -X faulthandler` would print the child's stack
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
