"""Loading a flow dissector and running it on frames with BPF_PROG_TEST_RUN."""

from __future__ import annotations

import errno
import mmap
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from ..abi import FUNC_INFO_REC_SIZE, LICENSE, LINE_INFO_REC_SIZE
from . import bpf
from .errors import BpfError, BtfError, MissingPrivilegeError, SourceLocator, VerifierError
from .flowkeys import FLOW_KEYS_SIZE, FlowKeys

# net/bpf/test_run.c, bpf_prog_test_run_flow_dissector() -> bpf_test_init():
# the frame must hold an Ethernet header and fit in one page.
MIN_FRAME_LEN: Final = 14
MAX_FRAME_LEN: Final = mmap.PAGESIZE

# Verifier log buffer: start here, double on ENOSPC (or jump to the size the
# kernel reports in log_true_size), give up growing at the maximum and keep
# the log's end, which is where the reason is.
LOG_SIZE_START: Final = 64 * 1024
LOG_SIZE_LIMIT: Final = 16 * 1024 * 1024
LOG_LEVEL_VERBOSE: Final = 1

# kernel/bpf/syscall.c, bpf_obj_name_cpy(): BPF_OBJ_NAME_LEN - 1 characters.
PROG_NAME_MAX: Final = bpf.BPF_OBJ_NAME_LEN - 1


def valid_prog_name(name: str) -> str:
    """Return name as the kernel will take it: truncated to 15 characters, checked for bad ones."""
    name = name[:PROG_NAME_MAX]
    bpf.check_object_name(name)
    return name

if TYPE_CHECKING:
    from .attach import Attachment
    from .maps import Map


@dataclass(frozen=True)
class RunResult:
    """One test run of a flow dissector: its return value, the keys it left, the time it took."""

    retval: int  # as the kernel reports it: the low 32 bits of r0, unsigned
    keys: FlowKeys
    duration_ns: int


FLAGS_MAX: Final = 0xFFFFFFFF  # struct bpf_flow_keys.flags is a __u32


def check_frame(frame: object) -> bytes:
    """Return a frame as bytes, refusing what BPF_PROG_TEST_RUN would refuse, before asking the kernel.

    A frame is bytes or anything bytes() takes (bytearray, memoryview, a
    scapy packet, an iterable of byte values), but not an int: bytes(5) is
    five zero bytes, never what a caller meant.
    """
    if isinstance(frame, bytes):
        data = frame
    else:
        if isinstance(frame, (int, str)) or frame is None:
            raise TypeError(
                f"a frame is bytes (or a bytearray, memoryview or scapy packet), got {type(frame).__name__}"
            )
        try:
            data = bytes(frame)  # type: ignore[call-overload]
        except TypeError:
            raise TypeError(
                f"a frame is bytes (or a bytearray, memoryview or scapy packet), got {type(frame).__name__}, "
                "which bytes() does not take"
            ) from None
        except ValueError as exc:  # an iterable holding a value outside 0..255
            raise ValueError(f"a frame made from a {type(frame).__name__} must hold byte values: {exc}") from None
    if not MIN_FRAME_LEN <= len(data) <= MAX_FRAME_LEN:
        raise ValueError(
            f"a test frame must be {MIN_FRAME_LEN} to {MAX_FRAME_LEN} bytes, starting at the "
            f"Ethernet header; got {len(data)} bytes"
        )
    return data


def check_flags(flags: object) -> int:
    """Return `flags` as the kernel takes them, refusing what does not fit in bpf_flow_keys.flags.

    Shared by the kernel run (LoadedProgram.run) and the Python run
    (Dissector.run_python), so both refuse the same values instead of one of
    them wrapping -1 or 2**32 around.
    """
    if not isinstance(flags, int) or isinstance(flags, bool):
        raise TypeError(f"flow dissector flags are an int (BPF_FLOW_DISSECTOR_F_* bits), got {type(flags).__name__}")
    if not 0 <= flags <= FLAGS_MAX:
        raise ValueError(f"flow dissector flags must fit in 32 bits (0 to {FLAGS_MAX:#x}), got {flags}")
    return int(flags)


def _flags_context(flags: int) -> bytes:
    """Return a struct bpf_flow_keys with only `flags` set: the test-run ctx_in."""
    return FlowKeys.build(flags=check_flags(flags)).raw


class LoadedProgram:
    """A program loaded in the kernel; owns its fd (closed by close(), or here if init fails)."""

    def __init__(
        self,
        fd: int,
        *,
        name: str,
        prog_type: int,
        source_map: SourceLocator | None = None,
        log: str = "",
        maps: Sequence[Map] = (),
        tail_calls: Sequence[LoadedProgram] = (),
    ) -> None:
        from .maps import MapCollection

        self._fd: int | None = fd
        self.name = name
        self.prog_type = prog_type
        self.source_map = source_map
        self.log = log  # the verifier log, when loaded with log_level > 0
        # The maps of its object, by name, and the programs its prog arrays
        # hold (tail calls): this program owns them and closes them with itself.
        self.maps = MapCollection(maps, owner=f"program {name!r}")
        self.tail_calls: tuple[LoadedProgram, ...] = tuple(tail_calls)
        try:
            self.id = self.info().id
        except BaseException:
            self.close()
            raise

    @property
    def fd(self) -> int:
        """The program's file descriptor (ValueError once closed)."""
        if self._fd is None:
            raise ValueError(f"program {self.name!r} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._fd is None

    def info(self) -> bpf.ProgInfo:
        """Return what the kernel reports about this program now (run counts included)."""
        return bpf.obj_get_info_by_fd(self.fd)

    @property
    def verified_insns(self) -> int:
        """Instructions the verifier processed to accept this program."""
        return self.info().verified_insns

    def run(self, frame: bytes, *, flags: int = 0) -> RunResult:
        """Run the dissector once on a frame (from its Ethernet header) with input flags.

        `frame` is bytes or anything bytes() takes but an int (a scapy packet
        included); `flags` fit in 32 bits (check_flags).
        """
        result = self._test_run(frame, flags=flags, repeat=1)
        return RunResult(
            retval=result.retval,
            keys=FlowKeys.from_bytes(result.data_out),
            duration_ns=result.duration_ns,
        )

    def bench(self, frame: bytes, *, flags: int = 0, repeat: int = 10_000) -> int:
        """Run the dissector `repeat` times in the kernel and return the average ns per run."""
        if repeat < 1:
            raise ValueError(f"repeat must be at least 1, got {repeat}")
        return self._test_run(frame, flags=flags, repeat=repeat).duration_ns

    def _test_run(self, frame: bytes, *, flags: int, repeat: int) -> bpf.TestRunResult:
        data = check_frame(frame)
        result = bpf.prog_test_run(
            prog_fd=self.fd,
            data_in=data,
            data_out_size=FLOW_KEYS_SIZE,
            ctx_in=_flags_context(flags),
            repeat=repeat,
        )
        if len(result.data_out) != FLOW_KEYS_SIZE:
            raise BpfError(
                errno.EPROTO,
                f"the kernel returned {len(result.data_out)} bytes of flow keys, expected "
                f"{FLOW_KEYS_SIZE}; is program {self.name!r} a flow dissector?",
                command=bpf.Cmd.BPF_PROG_TEST_RUN.name,
            )
        return result

    def adopt(self, maps: Sequence[Map], tail_calls: Sequence[LoadedProgram] = ()) -> None:
        """Take over maps and tail-call programs loaded with this one: it closes them with itself."""
        from .maps import MapCollection

        self.maps.close()
        self.maps = MapCollection(maps, owner=f"program {self.name!r}")
        self.tail_calls = (*self.tail_calls, *tail_calls)

    def attached(self, netns: str | None = None, *, pin: bool = False, force: bool = False, method: str = "auto") -> "Attachment":
        """`with loaded.attached(netns="NAME"): ...`: attach for a block, detach on exit (also on error)."""
        from .attach import attached  # attaching lives in attach.py, above this module

        return attached(self, netns, pin=pin, force=force, method=method)

    def pin(self, path: str) -> None:
        """Pin the program in bpffs so it outlives this process."""
        bpf.obj_pin(fd=self.fd, path=path)

    def close(self) -> None:
        """Release the fd, and those of its maps and tail-call programs; the kernel frees what nothing else holds.

        A prog array loses its entries once no fd and no pin holds it
        (kernel/bpf/arraymap.c, prog_array_map_clear on the last user
        reference): pin the maps (as attaching does) for tail calls to
        outlive this process.
        """
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        for program in getattr(self, "tail_calls", ()):
            program.close()
        maps = getattr(self, "maps", None)
        if maps is not None:
            maps.close()

    def __enter__(self) -> LoadedProgram:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Safety net only: an unclosed program is a leaked fd, reported the way
        # Python reports unclosed files.
        if getattr(self, "_fd", None) is not None:
            warnings.warn(
                f"program {self.name!r} (fd {self._fd}) was never closed",
                ResourceWarning,
                stacklevel=2,
            )
            try:
                self.close()
            except OSError:
                pass

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else f"fd={self._fd}"
        return f"LoadedProgram(name={self.name!r}, id={self.id}, {state})"


def load_program(
    code: bytes,
    *,
    name: str,
    license: str = LICENSE,
    prog_type: int = bpf.ProgType.FLOW_DISSECTOR,
    source_map: SourceLocator | None = None,
    btf: bytes | None = None,
    func_info: bytes = b"",
    line_info: bytes = b"",
    log_level: int = 0,
    btf_fd: int | None = None,
) -> LoadedProgram:
    """Load BPF bytecode; on refusal load again with the verifier log on and raise VerifierError.

    With `btf` (a .BTF blob) the kernel also gets `func_info` and `line_info`
    (struct bpf_func_info / bpf_line_info records, insn_off in instructions,
    strings from that BTF), so its verifier log and `bpftool prog dump xlated
    ... linum` show source lines. A BTF the kernel refuses raises BtfError: the
    program is not loaded without it. With `log_level` (1, or 2 for every
    instruction's state) the verifier log of an accepted program is kept in
    LoadedProgram.log. `btf_fd` is BTF loaded already (the object's, which
    its maps use too) in place of `btf`; the caller keeps it open.
    """
    name = valid_prog_name(name)
    if btf is not None and btf_fd is not None:
        raise ValueError("give the BTF as bytes (btf=...) or loaded (btf_fd=...), not both")
    if (func_info or line_info) and btf is None and not btf_fd:
        raise ValueError("func_info and line_info need the BTF they refer to (btf=...)")
    owned_btf = btf_fd is None
    btf_fd = load_btf(btf, name=name) if btf is not None else (btf_fd or 0)
    options: dict[str, Any] = {
        "prog_btf_fd": btf_fd,
        "func_info": func_info,
        "func_info_rec_size": FUNC_INFO_REC_SIZE if func_info else 0,
        "line_info": line_info,
        "line_info_rec_size": LINE_INFO_REC_SIZE if line_info else 0,
    }
    log = ""
    try:
        if log_level:
            fd, log = _load_with_log(
                code,
                name=name,
                license=license,
                prog_type=prog_type,
                source_map=source_map,
                first=None,
                options=options,
                log_level=log_level,
            )
        else:
            try:
                fd, _ = bpf.prog_load(prog_type=prog_type, insns=code, license=license, name=name, **options)
            except MissingPrivilegeError:
                raise
            except BpfError as first:
                # Loading again with a log is the only way to learn why; the
                # first attempt ran without one because a log costs time on success.
                fd, log = _load_with_log(
                    code,
                    name=name,
                    license=license,
                    prog_type=prog_type,
                    source_map=source_map,
                    first=first,
                    options=options,
                )
    finally:
        # The program holds its own reference to the BTF.
        if btf_fd and owned_btf:
            os.close(btf_fd)
    # LoadedProgram owns the fd from here, and closes it if it cannot start.
    return LoadedProgram(fd, name=name, prog_type=prog_type, source_map=source_map, log=log)


def load_btf(data: bytes, *, name: str) -> int:
    """Load a program's BTF and return its fd; on refusal load again with a log and raise BtfError."""
    try:
        fd, _ = bpf.btf_load(data=data)
        return fd
    except MissingPrivilegeError:
        raise
    except BtfError as first:
        size = LOG_SIZE_START
        while True:
            try:
                fd, _ = bpf.btf_load(data=data, log_level=LOG_LEVEL_VERBOSE, log_size=size)
                return fd  # the second attempt passed
            except MissingPrivilegeError:
                raise
            except BtfError as err:
                if err.errno == errno.ENOSPC and size < LOG_SIZE_LIMIT:
                    size = min(LOG_SIZE_LIMIT, size * 4)
                    continue
                code = first.errno if err.errno == errno.ENOSPC else err.errno
                raise BtfError(code or errno.EINVAL, log=err.log, name=name) from None


def _load_with_log(
    code: bytes,
    *,
    name: str,
    license: str,
    prog_type: int,
    source_map: SourceLocator | None,
    first: BpfError | None,
    options: dict[str, Any],
    log_level: int = LOG_LEVEL_VERBOSE,
) -> tuple[int, str]:
    """Load with the verifier log on, growing the buffer until the log fits; return fd and log.

    `first` is the refusal of a load without a log (None when the caller asked
    for the log up front).
    """
    size = LOG_SIZE_START
    while True:
        try:
            return bpf.prog_load(
                prog_type=prog_type,
                insns=code,
                license=license,
                name=name,
                log_level=log_level,
                log_size=size,
                **options,
            )
        except VerifierError as err:
            if err.errno == errno.ENOSPC and size < LOG_SIZE_LIMIT:
                size = min(LOG_SIZE_LIMIT, max(size * 2, err.log_true_size))
                continue
            if err.errno == errno.ENOSPC and first is None:
                # The log alone failed the load; whether the program passes
                # is still open: load without a log to find out.
                try:
                    fd, _ = bpf.prog_load(prog_type=prog_type, insns=code, license=license, name=name, **options)
                except MissingPrivilegeError:
                    raise
                except BpfError as refusal:
                    first = refusal
                else:
                    cut = err.log.partition("\n")[2]
                    return fd, f"(the verifier log was truncated to its last {len(cut)} bytes)\n{cut}"
            if err.errno == errno.ENOSPC:
                # The log did not fit even at the limit: the kernel kept its
                # end. Report the first attempt's errno, the real refusal.
                # Its first line is cut: drop it.
                err = VerifierError(
                    (first.errno if first is not None else None) or errno.EINVAL,
                    log=err.log.partition("\n")[2],
                    name=name,
                    truncated=True,
                    log_true_size=err.log_true_size,
                )
            err.attach_source_map(source_map)
            raise err from None
        except BpfError as err:
            # No log even with logging on: the kernel refused the attributes,
            # not the code; this second error says so without suggesting a log.
            raise err from None
