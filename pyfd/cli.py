"""The `pyfd` command: compile dissectors, run them on packets, attach them to network namespaces.

Exit status (EXIT_STATUS, also in `pyfd --help`): 0 on success, 1 when the
input is wrong or the action failed (a compile error, a file that cannot be
read, a program the kernel refuses or the interpreter stops, engines
disagreeing in `pyfd run`, a frame the kernel hashes differently in `pyfd
run --kernel-hash`, nothing to detach), 2 for bad command-line usage, 3 when this system
cannot do it here (no bpf syscall, missing capabilities, no usable bpffs),
130 when interrupted. The action decides the status: a reader that closes
the output early (`pyfd ... | head -1`) changes nothing. No user mistake
ends in a Python traceback.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import gc
import importlib.machinery
import importlib.util
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

from .compiler.diagnostics import Span
from .dissector import Dissector

if TYPE_CHECKING:
    from .program import CompiledProgram
    from .runtime import Attachment, AttachmentInfo, FlowKeys, LoadedProgram, RunResult

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NO_KERNEL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

EXIT_STATUS = (
    "exit status: 0 success; 1 error (bad input, a file that cannot be read, a program the kernel refuses, "
    "an access the interpreter stops, engines (kernel, vm, Python) disagreeing in `pyfd run`, "
    "a frame hashed differently in `pyfd run --kernel-hash`, nothing to detach); 2 bad command-line usage; 3 this system "
    "cannot do it here (no bpf syscall, missing capabilities such as CAP_BPF and CAP_NET_ADMIN, no usable "
    "bpffs); 130 interrupted. Output cut short by its reader (`| head -1`) does not change the status."
)


class UserError(Exception):
    """A problem to report in one message, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_ERROR, *, located: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.located = located  # the message already starts with file:line


T = TypeVar("T")

ELF_MAGIC = b"\x7fELF"


def _check_input(path: Path) -> None:
    """Refuse a path that is not a file, saying what it is instead."""
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a file")
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file")


def _is_object(path: Path) -> bool:
    """Whether the file is an ELF object (by its first bytes, whatever its name)."""
    try:
        with path.open("rb") as file:
            return file.read(len(ELF_MAGIC)) == ELF_MAGIC
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None


class _UncachedSourceLoader(importlib.machinery.SourceFileLoader):
    """Python source under any file name, without a __pycache__ entry.

    The bytecode cache is named after the stem (x.txt would use x.py's
    x.cpython-311.pyc); path_stats raising OSError is the documented way to
    tell SourceLoader.get_code to neither read nor write it.
    """

    def path_stats(self, path: str) -> dict[str, float]:
        raise OSError("no bytecode cache for a file not named .py")


def _import_file(path: Path) -> ModuleType:
    """Import a file of Python source (any name) as a module; its errors become UserErrors with a location."""
    _check_input(path)
    if _is_object(path):
        raise UserError(
            f"{path}: is a BPF object file (ELF), not Python source; `pyfd run`, `pyfd attach` and "
            "`pyfd disasm` take object files, `pyfd compile` takes the Python it came from"
        )
    name = f"pyfd_user_{abs(hash(path.resolve()))}"
    loader = None if path.suffix == ".py" else _UncachedSourceLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None or spec.loader is None:
        raise UserError(f"{path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        line = exc.lineno or 0
        text = (exc.text or "").rstrip("\n")
        caret = f"\n    {text}\n    {' ' * max(0, (exc.offset or 1) - 1)}^" if text else ""
        raise UserError(f"{path}:{line}:{exc.offset or 0}: syntax error: {exc.msg}{caret}", located=True) from None
    except Exception as exc:  # the user's module raised while importing
        import traceback  # deferred: only an error in the user's own module needs it

        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        if not frames:
            raise UserError(f"{path}: importing the file failed: {type(exc).__name__}: {exc}", located=True) from None
        frame = frames[-1]
        line, col = frame.lineno or 1, frame.colno or 0  # colno is 0-based, None when Python has no column
        where = Span(str(path), line, col, frame.end_lineno or line, frame.end_colno or col + 1)
        raise UserError(where.render(f"importing the file failed: {type(exc).__name__}: {exc}"), located=True) from None
    finally:
        sys.path.pop(0)
    return module


def find_dissectors(path: Path) -> dict[str, Dissector]:
    """The @dissector functions defined in a file, by name."""
    module = _import_file(path)
    found = {
        name: obj
        for name, obj in vars(module).items()
        if isinstance(obj, Dissector) and getattr(obj.fn, "__module__", None) == module.__name__
    }
    if not found:
        raise UserError(f"{path}: no @dissector function in this file")
    return found


def pick(path: Path, function: str | None) -> Dissector:
    """The dissector to work on: the only one, or the one `--function` names."""
    found = find_dissectors(path)
    if function is not None:
        if function not in found:
            raise UserError(f"{path}: no dissector named {function!r}; found: {', '.join(sorted(found))}")
        return found[function]
    if len(found) > 1:
        raise UserError(f"{path} defines several dissectors ({', '.join(sorted(found))}); pick one with --function NAME")
    return next(iter(found.values()))


def _compile(dissector: Dissector, backend: str, opt_level: int, dump_after: Sequence[str] = ()) -> CompiledProgram:
    from .compiler.collector import collector_paused

    # The driver pauses the cyclic collector for the passes and the backend;
    # importing the compiler and lowering the function allocate as busily
    # (the classes and functions of some sixty modules, the IR), so the
    # pause starts here.
    with collector_paused():
        from .compiler.diagnostics import CompileError
        from .compiler.driver import Options, compile_lowered
        from .program import CompiledProgram

        try:
            options = Options(backend=backend, opt_level=opt_level, dump_after=frozenset(dump_after), dump=lambda s: print(s, file=sys.stderr))
            return CompiledProgram(compile_lowered(dissector.lower(), options))
        except CompileError as exc:
            raise UserError(exc.render(), located=exc.span is not None) from None


def cmd_compile(args: argparse.Namespace) -> int:
    """`pyfd compile`."""
    source = Path(args.file)
    if args.verbose and not args.verify:
        raise UserError("-v/--verbose prints the verifier log: use it with --verify", EXIT_USAGE)
    config = _settings(args)
    if config and not args.verify:
        raise UserError(
            "--set sets a load-time constant for the --verify load; the object keeps each Config's default "
            "(set it when loading: pyfd attach --set, pyfd run --set, or a libbpf loader's .rodata)",
            EXIT_USAGE,
        )
    from .compiler.backends import BACKENDS

    backend = BACKENDS[args.backend]
    if args.emit == "llvm" and not backend.emits_llvm_ir:
        through_llvm = " or ".join(f"--backend {b.name}" for b in BACKENDS.values() if b.emits_llvm_ir)
        raise UserError(
            f"--emit llvm prints the LLVM IR a backend compiled through LLVM, and the {backend.name} backend has none: add {through_llvm}",
            EXIT_USAGE,
        )
    if args.dump_after:
        from .compiler.passes import pipeline

        known = {p.name for level in (0, 2) for p in pipeline(level, thread_jumps=backend.thread_jumps)}
        unknown = sorted(set(args.dump_after) - known - {"all"})
        if unknown:
            raise UserError(f"--dump-after: no pass named {unknown[0]!r}; the passes are: {', '.join(sorted(known))}, or all", EXIT_USAGE)
    dissector = pick(source, args.function)
    program = _compile(dissector, args.backend, args.opt_level, args.dump_after or ())
    if args.emit == "asm":
        _write_text(program.asm(), args.output)
    elif args.emit == "ir":
        _write_text(program.ir(), args.output)
    elif args.emit == "llvm":
        _write_text(program.llvm_ir() or "", args.output)
    else:
        out = Path(args.output) if args.output else source.with_suffix(".o")
        try:
            program.write(out)
        except OSError as exc:
            raise UserError(f"{out}: cannot write: {exc.strerror}") from None
        print(f"{out}: {program.name}, {program.insn_count} instructions ({program.backend})", file=sys.stderr)
    if args.verify:
        loaded = _load(program, verbose=args.verbose, config=config)  # a refusal prints the log of the failing path with -v
        if args.verbose:
            # Accepted: load again for the whole walk, each instruction with its
            # state and Python line (log level 2, which only a load that logs gives).
            loaded.close()
            loaded = _load(program, verbose=True, log_level=2, config=config)
            sys.stderr.write(loaded.log if loaded.log.endswith("\n") else loaded.log + "\n")
        with loaded:
            print(f"{program.name}: accepted by the kernel verifier ({loaded.verified_insns} instructions processed)", file=sys.stderr)
    return EXIT_OK


def _write_text(text: str, output: str | None) -> None:
    if output:
        try:
            Path(output).write_text(text)
        except OSError as exc:
            raise UserError(f"{output}: cannot write: {exc.strerror}") from None
    else:
        sys.stdout.write(text)


def _load(program: CompiledProgram, *, verbose: bool = False, log_level: int = 0, config: dict[str, int] | None = None) -> LoadedProgram:
    """Load a compiled program into the kernel (its Configs set from `config`); every failure is a UserError."""
    if config:
        return _kernel_load(program.name, lambda: program.load(log_level=log_level, config=config), verbose=verbose)
    return _kernel_load(program.name, lambda: program.load(log_level=log_level), verbose=verbose)


def _kernel_load(name: object, load: Callable[[], T], *, verbose: bool = False) -> T:
    """Run `load` (a BPF_PROG_LOAD) once the kernel can take programs; its failures said for the command line."""
    from .runtime import BpfError, ConfigError, MissingPrivilegeError, VerifierError, check_bpf_available

    reason = check_bpf_available()
    if reason is not None:
        raise UserError(f"cannot load BPF programs here: {reason}", EXIT_NO_KERNEL)
    try:
        return load()
    except ConfigError as exc:  # a --set the program's constants do not take
        raise UserError(f"--set: {exc}", EXIT_USAGE) from None
    except MissingPrivilegeError as exc:
        raise UserError(str(exc), EXIT_NO_KERNEL) from None
    except VerifierError as exc:
        log = exc.log.rstrip("\n") + "\n\n" if verbose and exc.log else ""
        text = exc.report(", printed above" if verbose else ", `pyfd compile --verify -v` prints it")
        if exc.source is not None:  # the message starts with the Python file:line:col
            raise UserError(f"{log}{text}", located=True) from None
        raise UserError(f"{log}the kernel verifier refused {name}:\n{text}", located=bool(log)) from None
    except BpfError as exc:
        raise UserError(f"loading {name} failed: {exc}") from None


# --- run ----------------------------------------------------------------------------


def _plural(count: int, noun: str) -> str:
    """`1 frame`, `2 frames`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def parse_setting(text: str) -> tuple[str, int]:
    """`--set NAME=VALUE`: a load-time constant (a Config, or an object's .rodata variable) and its value."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=VALUE, e.g. VXLAN_PORT=4790")
    try:
        return name.strip(), int(value.strip(), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is an integer (decimal or 0x hex)") from None


def _settings(args: argparse.Namespace) -> dict[str, int]:
    """The --set options, by name (the last one given wins)."""
    return dict(getattr(args, "set", None) or [])


def _configure(dissector, config: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    """Set the Python run's Configs as the kernel's load sets them; a name or value it refuses is a usage error."""
    from .compiler.diagnostics import CompileError

    try:
        dissector.reset(config=config)
    except CompileError as exc:
        raise UserError(exc.render(), located=exc.span is not None) from None
    except (KeyError, ValueError) as exc:
        raise UserError(f"--set: {exc.args[0]}", EXIT_USAGE) from None


def parse_flags(text: str) -> int:
    """`--flags`: numbers (decimal, 0x hex) and BPF_FLOW_DISSECTOR_F_* names, joined with ',' or '|'."""
    from .runtime import FlowDissectorFlags
    from .runtime.program import check_flags

    names = ", ".join(flag.name or "" for flag in FlowDissectorFlags)
    value = 0
    for part in text.replace("|", ",").split(","):
        word = part.strip()
        name = word.upper().removeprefix("BPF_FLOW_DISSECTOR_F_")
        if name in FlowDissectorFlags.__members__:
            value |= FlowDissectorFlags[name]
            continue
        try:
            number = int(word, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{word!r} is not a flag: give a number (decimal or 0x hex) or names from {names} "
                "(with or without BPF_FLOW_DISSECTOR_F_), joined with ','"
            ) from None
        try:
            value |= check_flags(number)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def flags_text(flags: int) -> str:
    """Flags as a number and by name: `0x5 (PARSE_1ST_FRAG|STOP_AT_ENCAP)`."""
    from .runtime import FlowDissectorFlags

    if not flags:
        return "0"
    names = [flag.name or "" for flag in FlowDissectorFlags if flags & flag]
    unknown = flags & ~sum(FlowDissectorFlags)
    if unknown:
        names.append(f"unknown bits {unknown:#x}")
    return f"{flags:#x} ({'|'.join(names)})"


def _load_object(path: Path, function: str | None, config: dict[str, int] | None = None) -> LoadedProgram:
    """Load a program of an object file into the kernel (its constants set from `config`); every failure is a UserError."""
    from .objfile.reader import ObjectFileError
    from .program import load_object_program, object_program
    from .runtime import ConfigError

    try:
        options: dict[str, Any] = {"config": config} if config else {}
        read = object_program(path, function, **options)  # what is wrong with the file is said first, kernel or not
    except ObjectFileError as exc:
        raise object_file_error(exc) from None
    except ConfigError as exc:
        raise UserError(f"--set: {exc}", EXIT_USAGE) from None
    try:
        return _kernel_load(path, lambda: load_object_program(*read, **options))
    except ObjectFileError as exc:  # malformed BTF, found while preparing the load
        raise object_file_error(exc) from None


def object_file_error(exc: Exception) -> UserError:
    """An ObjectFileError as the CLI reports it: with the option that picks a program."""
    from .objfile.reader import AmbiguousProgramError

    if isinstance(exc, AmbiguousProgramError):
        return UserError(f"{exc.path}: {len(exc.names)} programs ({', '.join(exc.names)}); pick one with --function NAME")
    return UserError(str(exc))


def _keys_json(keys: FlowKeys) -> dict[str, object]:
    """Every field of struct bpf_flow_keys, host order (addresses as text), and the raw 56 bytes."""
    from .abi import FLOW_KEYS_LAYOUT

    fields: dict[str, object] = {}
    for name, _, _ in FLOW_KEYS_LAYOUT:
        value = getattr(keys, name)
        fields[name] = value if isinstance(value, int) else str(value)
    fields["raw"] = keys.raw.hex()
    return fields


def _result_json(result: RunResult | None) -> dict[str, object] | None:
    from .demo import describe

    if result is None:
        return None
    return {"retval": result.retval, "return": describe(result.retval), "keys": _keys_json(result.keys)}


ENGINES = ("kernel", "vm", "python")
ENGINE_NAMES = {"kernel": "kernel", "vm": "vm", "python": "Python"}


def parse_engines(text: str) -> list[str]:
    """`--engine`: kernel, vm and python, joined with ','."""
    found = []
    for part in text.split(","):
        word = part.strip().lower()
        if word not in ENGINES:
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} is not an engine: give kernel (BPF_PROG_TEST_RUN), vm (pyfd's interpreter) or python "
                "(the source as CPython), joined with ','"
            )
        found.append(word)
    return found


def _engines(args: argparse.Namespace, is_object: bool, path: Path) -> tuple[list[str], str | None]:
    """The engines to run, in order, and why the kernel was left out of the default (None: it was not)."""
    from .runtime import check_bpf_available

    if args.engine:
        chosen = list(dict.fromkeys(engine for group in args.engine for engine in group))
        if is_object and "python" in chosen:
            raise UserError(f"{path} is an object file: there is no Python source to run (use --engine kernel or vm)", EXIT_USAGE)
        return chosen, None
    reason = check_bpf_available()
    if reason is None:
        return (["kernel"] if is_object else ["kernel", "python"]), None
    return (["vm"] if is_object else ["vm", "python"]), reason


def _vm_load(source: object, function: str | None = None, config: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
    """Load into pyfd's interpreter (its constants set from `config`); what it cannot run is a UserError."""
    from . import vm
    from .objfile.reader import ObjectFileError
    from .runtime import ConfigError

    try:
        return vm.load(source, function, config=config)
    except ConfigError as exc:  # a --set the program's constants do not take
        raise UserError(f"--set: {exc}", EXIT_USAGE) from None
    except ObjectFileError as exc:
        raise object_file_error(exc) from None
    except vm.VmError as exc:
        raise UserError(str(exc), located=exc.location is not None) from None


def _agreement(names: list[str]) -> str:
    """`kernel and Python`, `kernel, vm and Python`."""
    shown = [ENGINE_NAMES[name] for name in names]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def cmd_run(args: argparse.Namespace) -> int:
    """`pyfd run`: run a dissector on frames in the kernel, in pyfd's interpreter and as Python, and compare.

    By default a .py file runs in the kernel and as Python, or, when this
    process cannot load BPF programs, in the interpreter (pyfd.vm) and as
    Python, saying once why; an object file runs in the kernel, or in the
    interpreter. `--engine` chooses: an engine asked for that cannot run
    here (the kernel without privileges) ends with exit status 3.
    """
    import json

    from .demo import demo_frames, describe, read_frames
    from .runtime import MAX_FRAME_LEN, MIN_FRAME_LEN

    path = Path(args.file)
    _check_input(path)
    is_object = _is_object(path)
    if is_object and (args.backend is not None or args.opt_level is not None):
        raise UserError(f"{path} is an object file, already compiled: --backend and -O apply to Python files only", EXIT_USAGE)
    engines, kernel_skipped = _engines(args, is_object, path)
    dissector = None if is_object else pick(path, args.function)
    program = None if dissector is None else _compile(dissector, args.backend or "native", 2 if args.opt_level is None else args.opt_level)
    config = _settings(args)
    if dissector is not None:
        _configure(dissector, config)  # the Python side's maps start empty, its Configs as the kernel's
    try:
        frames = read_frames(Path(args.pcap)) if args.pcap else demo_frames()
    except OSError as exc:
        raise UserError(f"{args.pcap}: cannot read: {exc.strerror}") from None
    except ValueError as exc:  # not a pcap file; the message names the file
        raise UserError(str(exc)) from None

    if args.kernel_hash:
        if args.flags:
            raise UserError(
                "--flags does not apply to --kernel-hash: skb_get_hash() always calls the dissector with "
                "STOP_AT_FLOW_LABEL, and that is what is compared",
                EXIT_USAGE,
            )
        if args.engine:
            raise UserError("--engine does not apply to --kernel-hash: the kernel's hash is what is compared", EXIT_USAGE)
        return _kernel_hash(args, path, program, frames)

    runners: dict[str, Callable[[bytes], RunResult]] = {}
    loaded = None
    name = program.name if program is not None else str(path)
    if "kernel" in engines:
        loaded = _load(program, config=config) if program is not None else _load_object(path, args.function, config)
        name = loaded.name
    if "vm" in engines:
        in_vm = _vm_load(program if program is not None else path, None if program is not None else args.function, config)
        name = in_vm.name
    for engine in engines:
        if engine == "kernel":
            assert loaded is not None
            runners[engine] = _runner(loaded.run, args.flags)
        elif engine == "vm":
            runners[engine] = _runner(in_vm.run, args.flags)
        else:
            assert dissector is not None
            runners[engine] = _runner(dissector.run_python, args.flags)
    if program is not None:
        title = f"{program.name}: {program.insn_count} instructions ({program.backend})"
    else:
        title = f"{name} from {path} (object file: {_agreement(engines)} only, there is no Python source to compare with)"
    # Human text goes to stdout, or to stderr when stdout carries the JSON records.
    text = sys.stderr if args.json else sys.stdout
    if kernel_skipped is not None:
        instead = "interpreter (pyfd.vm)" if is_object else "interpreter (pyfd.vm) and the Python side"
        print(f"pyfd: warning: the kernel side was skipped, running the {instead} instead: {kernel_skipped}", file=sys.stderr)
    source = f"from {args.pcap}" if args.pcap else "built-in demo frames"
    print(f"{title}; {_plural(len(frames), 'frame')} ({source}), flags={flags_text(args.flags)}", file=text)

    ran = disagreements = 0
    skipped: dict[str, int] = {}
    try:
        for index, frame in enumerate(frames, 1):
            problem = frame.problem
            if problem is not None:
                if args.json:  # the text listing says it on stdout; JSON readers get it on stderr too
                    print(f"pyfd: warning: {args.pcap}: {frame.label}: {problem}; skipped", file=sys.stderr)
                why = "truncated in the pcap file"
            elif not MIN_FRAME_LEN <= len(frame.data) <= MAX_FRAME_LEN:
                problem = f"a test run takes {MIN_FRAME_LEN} to {MAX_FRAME_LEN} bytes, this frame has {len(frame.data)}"
                why = f"outside {MIN_FRAME_LEN} to {MAX_FRAME_LEN} bytes"
            results: dict[str, RunResult] = {}
            agree: bool | None = None
            if problem is not None:
                skipped[why] = skipped.get(why, 0) + 1
            else:
                ran += 1
                results = {engine: _run_one(engine, runner, frame.data, frame.label) for engine, runner in runners.items()}
                if len(results) > 1:
                    first = next(iter(results.values()))
                    agree = all((r.retval, r.keys) == (first.retval, first.keys) for r in results.values())
                    disagreements += not agree
            if args.json:
                record: dict[str, object] = {"frame": index, "label": frame.label, "length": len(frame.data), "skipped": problem}
                record.update({engine: _result_json(results.get(engine)) for engine in ENGINES})
                record["agree"] = agree
                print(json.dumps(record))
            elif problem is not None:
                print(f"  {frame.label}: skipped: {problem}")
            else:
                first_engine = engines[0]
                shown = results[first_engine]
                side = "" if first_engine == "kernel" else f"{first_engine}: "
                print(f"  {frame.label}\n    {side}{describe(shown.retval)} {shown.keys}")
                for engine, other in list(results.items())[1:]:
                    if (other.retval, other.keys) != (shown.retval, shown.keys):
                        differs = ", ".join(shown.keys.diff(other.keys)) or "return code"
                        print(f"    {ENGINE_NAMES[engine].upper()} DISAGREES: {describe(other.retval)} {other.keys}; differs in {differs}")
    finally:
        if loaded is not None:
            loaded.close()

    n_skipped = sum(skipped.values())
    skip_text = f"; {n_skipped} skipped ({', '.join(f'{n} {why}' for why, n in skipped.items())})" if n_skipped else ""
    if ran == 0:
        raise UserError(f"no frame could be run: {_plural(len(frames), 'frame')}{skip_text}")
    if len(engines) == 1:
        where = {"kernel": "in the kernel", "vm": "in the interpreter (vm)", "python": "as Python"}[engines[0]]
        summary = f"ran {_plural(ran, 'frame')} {where} only"
    elif disagreements:
        summary = f"{_agreement(engines)} disagree on {disagreements} of {_plural(ran, 'frame')} run"
    else:
        summary = f"{_agreement(engines)} agree on {ran} of {_plural(ran, 'frame')} run"
    print(summary + skip_text, file=text)
    return EXIT_OK if disagreements == 0 else EXIT_ERROR


def _kernel_hash(args: argparse.Namespace, path: Path, program, frames) -> int:  # type: ignore[no-untyped-def]
    """`pyfd run --kernel-hash`: does the kernel hash each frame alike with this dissector attached as with its own?

    In a throwaway network namespace (runtime.kernelhash), each frame's skb
    hash (`bpf_get_hash_recalc`, what RPS/RFS, fq, ECMP and bonding use) is
    taken with the built-in dissector, then with this one attached. Exit
    status 1 when any frame hashes differently.
    """
    import json

    from .runtime import BpfError, FlowDissectorFlags, MissingPrivilegeError, check_bpf_available
    from .runtime.attach import AlreadyAttachedError
    from .runtime.caps import Capability, missing_capabilities
    from .runtime.kernelhash import KernelHasher, skb_run_problem

    needs = (Capability.CAP_SYS_ADMIN, Capability.CAP_BPF, Capability.CAP_NET_ADMIN)
    missing = missing_capabilities(needs)
    if missing:
        raise UserError(
            str(
                MissingPrivilegeError(
                    1,
                    command="--kernel-hash",
                    missing=missing,
                    needs=[cap.name for cap in needs],
                    action="comparing the kernel's hashes in a throwaway network namespace",
                )
            ),
            EXIT_NO_KERNEL,
        )
    reason = check_bpf_available()
    if reason is not None:
        raise UserError(f"cannot load BPF programs here: {reason}", EXIT_NO_KERNEL)
    loaded = _load(program) if program is not None else _load_object(path, args.function)
    text = sys.stderr if args.json else sys.stdout
    runnable = [f for f in frames if f.problem is None and skb_run_problem(f.data) is None]
    stop = FlowDissectorFlags.STOP_AT_FLOW_LABEL  # what skb_get_hash() passes
    try:
        try:
            with KernelHasher() as hasher:
                compared = iter(hasher.compare(loaded.fd, [f.data for f in runnable]))
        except AlreadyAttachedError as exc:
            raise UserError(str(exc)) from None
        except MissingPrivilegeError as exc:
            raise UserError(str(exc), EXIT_NO_KERNEL) from None
        except BpfError as exc:
            raise UserError(f"comparing hashes failed: {exc}") from None
        source = f"from {args.pcap}" if args.pcap else "built-in demo frames"
        print(
            f"{loaded.name}: the kernel's flow hash of {_plural(len(frames), 'frame')} ({source}) with its built-in "
            f"dissector, and with {loaded.name} attached, in a throwaway network namespace",
            file=text,
        )
        same = differ = 0
        skipped: dict[str, int] = {}
        for index, frame in enumerate(frames, 1):
            problem = frame.problem or skb_run_problem(frame.data)
            record: dict[str, object] = {"frame": index, "label": frame.label, "length": len(frame.data), "skipped": problem}
            if problem is not None:
                why = "truncated in the pcap file" if frame.problem else "not taken by a tc test run"
                skipped[why] = skipped.get(why, 0) + 1
                if args.json:
                    print(json.dumps({**record, "builtin_hash": None, "hash": None, "same": None, "retval": None, "keys": None}))
                else:
                    print(f"  {frame.label}: skipped: {problem}")
                continue
            result = next(compared)
            alike = result.same
            same += alike is True
            differ += alike is False
            # What the dissector leaves in the keys on skb_get_hash()'s call, to show where it departs.
            keys = loaded.run(frame.data, flags=stop)
            if args.json:
                print(json.dumps({**record, "builtin_hash": result.builtin, "hash": result.bpf, "same": alike, **(_result_json(keys) or {})}))
            elif alike:
                print(f"  {frame.label}: same hash {result.builtin:#010x}")
            else:
                print(f"  {frame.label}: DIFFERENT: built-in {result.builtin:#010x}, with {loaded.name} {result.bpf:#010x}")
                print(f"    {loaded.name} leaves {keys.keys}")
    finally:
        loaded.close()
    ran = same + differ
    n_skipped = sum(skipped.values())
    skip_text = f"; {n_skipped} skipped ({', '.join(f'{n} {why}' for why, n in skipped.items())})" if n_skipped else ""
    if ran == 0:
        raise UserError(f"no frame could be hashed: {_plural(len(frames), 'frame')}{skip_text}")
    differently = f"; {differ} differently" if differ else ""
    print(
        f"the kernel hashes {same} of {_plural(ran, 'frame')} alike with {loaded.name} attached as with its built-in "
        f"dissector{differently}{skip_text}",
        file=text,
    )
    return EXIT_OK if differ == 0 else EXIT_ERROR


def _runner(run: Callable[..., RunResult], flags: int) -> Callable[[bytes], RunResult]:
    """`run(frame, flags=flags)` as a function of the frame alone."""
    return lambda data: run(data, flags=flags)


def _run_one(engine: str, runner: Callable[[bytes], RunResult], data: bytes, label: str) -> RunResult:
    """One engine's result on one frame; the interpreter's refusal of an access is the user's error, at their line."""
    if engine != "vm":
        return runner(data)
    from .vm import VmError

    try:
        return runner(data)
    except VmError as exc:
        raise UserError(
            f"{exc}\n  (on {label}, in the interpreter: the kernel's verifier would refuse this program)", located=exc.location is not None
        ) from None


# --- attach, detach, show ----------------------------------------------------------


def _attach_errors(exc: Exception, args: argparse.Namespace | None = None) -> UserError:
    """Turn an attach/detach/show failure into one message with its exit status."""
    from .runtime import BpffsError, BpfError, MissingPrivilegeError
    from .runtime.attach import AttachError

    if isinstance(exc, MissingPrivilegeError):
        return UserError(str(exc), EXIT_NO_KERNEL)
    if isinstance(exc, AttachError):
        hint = _cli_hint(exc, args)
        message = exc.with_hint(hint) if hint is not None else str(exc)
        return UserError(message, EXIT_NO_KERNEL if isinstance(exc, BpffsError) else EXIT_ERROR)
    if isinstance(exc, BpfError):
        return UserError(str(exc))
    if isinstance(exc, OSError):  # the system refused a file operation: say which
        return UserError(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
    raise exc


def _cli_hint(exc: Exception, args: argparse.Namespace | None) -> str | None:
    """The advice for an attach error in the CLI's words (flags and commands); None: keep the runtime's."""
    from .runtime import AlreadyAttachedError, BpffsError, RootNamespaceError
    from .runtime.attach import PrivateBpffsError

    netns = getattr(args, "netns", None)
    option = f" --netns {netns}" if netns else ""
    if isinstance(exc, RootNamespaceError):
        return "name another namespace with --netns NAME|PATH, or pass --force if the whole machine is meant"
    if isinstance(exc, AlreadyAttachedError):
        if exc.in_root:
            return "detach that one first (`pyfd detach` run in the root namespace)"
        if exc.existing:
            file = getattr(args, "file", "FILE")
            return f"swap in the new program without a gap with `pyfd attach {file}{option} --replace`, or detach the old one with `pyfd detach{option}`"
        if exc.errno == errno.EEXIST:
            return "`pyfd show` lists them"
        return f"see it with `pyfd show{option}` and detach it with `pyfd detach{option}`"
    if isinstance(exc, PrivateBpffsError):
        name = exc.netns.spec or exc.netns.name or "NAME|PATH"
        file = getattr(args, "file", "FILE")
        return (
            "run pyfd in the system's mount namespace (not under `ip netns exec` or `unshare -m`), naming the "
            f"network namespace: `pyfd attach {file} --netns {name}`"
        )
    if isinstance(exc, BpffsError) and exc.errno == errno.EROFS:
        return f"remount it read-write as root (`mount -o remount,rw {exc.mount_point}`)"
    return None


def _lasting(attachment: Attachment) -> str:
    """What `pyfd attach` can truly promise about how long the attachment lasts, and how to end it."""
    from .runtime.attach import Method, netns_held_elsewhere

    ns = attachment.netns
    detach = f"remove it with `pyfd detach{f' --netns {ns.spec}' if ns.spec else ''}`"
    if netns_held_elsewhere(ns) is False:
        return (
            f"warning: nothing else keeps {ns.label} alive (it has no `ip netns` name, no other process is in it, "
            "and no file is bind-mounted on it): it goes away when pyfd exits, and the dissector with it; "
            "create a lasting one with `ip netns add NAME` and attach with --netns NAME"
        )
    if attachment.method is Method.LEGACY:
        return f"it stays attached after pyfd exits, for as long as the namespace exists; {detach}"
    if attachment.pin_systemwide is None:
        return (
            f"it stays attached while the bpffs holding {attachment.pin_path} stays mounted (pyfd cannot read "
            f"PID 1's mounts to check that this is the system's bpffs); {detach}"
        )
    return f"it stays attached after pyfd exits; {detach}"


def _load_for_attach(args: argparse.Namespace) -> LoadedProgram:
    """Load the dissector to attach: compile Python source, or read a compiled object (told apart by content, as `run` does)."""
    path = Path(args.file)
    if _is_object(path):
        return _load_object(path, args.function, _settings(args))
    return _load(_compile(pick(path, args.function), args.backend, args.opt_level), config=_settings(args))


def cmd_attach(args: argparse.Namespace) -> int:
    """`pyfd attach`: load a dissector and attach it to a network namespace, pinned in bpffs."""
    from .runtime import attach
    from .runtime.attach import check_target

    try:
        check_target(args.netns, force=args.force)  # before compiling: a wrong target fails fast
    except Exception as exc:
        raise _attach_errors(exc, args) from None
    with _load_for_attach(args) as loaded:
        try:
            attachment = attach(loaded, args.netns, force=args.force, replace=args.replace)
        except Exception as exc:
            raise _attach_errors(exc, args) from None
        attachment.close()  # the pin keeps it attached
    ns = attachment.netns
    how = f"link {attachment.link_id}" if attachment.link_id is not None else "BPF_PROG_ATTACH (no link)"
    where = f", pinned at {attachment.pin_path}" if attachment.pin_path else ""
    new = f"{attachment.prog_name} (program {attachment.prog_id})"
    old = attachment.replaced
    if old is not None:
        held = f"in link {attachment.link_id} of {ns.label}" if attachment.link_id is not None else f"in {ns.label} (attached with BPF_PROG_ATTACH)"
        print(f"replaced {old.prog_name} (program {old.prog_id}) with {new} {held}, in one step{where}")
    else:
        fresh = " (nothing was attached, so there was nothing to replace)" if args.replace else ""
        print(f"attached {new} to {ns.label} through {how}{where}{fresh}")
    if attachment.maps_path is not None:
        names = sorted(os.listdir(attachment.maps_path)) if os.path.isdir(attachment.maps_path) else []
        option = f" --netns {ns.spec}" if ns.spec else ""
        print(f"maps pinned under {attachment.maps_path}: {', '.join(names)} (read them with `pyfd map{option} NAME dump`)")
    lasting = _lasting(attachment)
    print(lasting, file=sys.stderr if lasting.startswith("warning:") else sys.stdout)
    return EXIT_OK


def cmd_detach(args: argparse.Namespace) -> int:
    """`pyfd detach`: detach the flow dissector of a network namespace and remove pyfd's pin."""
    from .runtime import detach, resolve_netns

    try:
        ns = resolve_netns(args.netns)
        gone = detach(args.netns)
    except Exception as exc:
        raise _attach_errors(exc, args) from None
    for info in gone:
        how = f"link {info.link_id}" if info.link_id is not None else "a legacy attachment"
        unpinned = f", unpinned {info.pin_path}" if info.pin_path else ""
        print(f"detached {info.prog_name} (program {info.prog_id}, {how}) from {ns.label}{unpinned}")
    return EXIT_OK


def _show_text(info: AttachmentInfo, current_ino: int, stats_on: bool) -> str:
    """One attachment of `pyfd show`, as text."""
    if info.defunct:
        where = "a network namespace that no longer exists (the link is defunct)"
    else:
        label = f"network namespace {info.netns_name!r}" if info.netns_name else "network namespace"
        extra = [f"inode {info.netns_ino}"]
        if info.netns_ino == current_ino:
            extra.append("current")
        if info.is_root:
            extra.append("ROOT: overrides every other namespace")
        where = f"{label} ({', '.join(extra)})"
    lines = [f"{where}:"]
    lines.append(f"  program {info.prog_id} {info.prog_name} (tag {info.prog_tag or '?'})")
    if info.link_id is not None:
        pinned = f", pinned at {info.pin_path}" if info.pin_path else " (not pinned by pyfd)"
        lines.append(f"  link {info.link_id}{pinned}")
    else:
        lines.append("  attached with BPF_PROG_ATTACH (no link; stays until detached or the namespace goes)")
    if info.pinned_at is not None:
        lines.append(f"  attached since {info.pinned_at.astimezone():%Y-%m-%d %H:%M:%S %Z}")
    elif info.loaded_at is not None:
        lines.append(f"  program loaded {info.loaded_at.astimezone():%Y-%m-%d %H:%M:%S %Z}")
    if info.run_cnt:
        lines.append(f"  runs: {info.run_cnt} (average {info.run_time_ns // info.run_cnt} ns)")
    elif stats_on:
        lines.append("  runs: 0")
    else:
        lines.append("  runs: not counted (statistics are off; `sysctl -w kernel.bpf_stats_enabled=1` turns them on)")
    for each in info.maps:
        where = f", pinned at {each.pin_path}" if each.pin_path else ""
        lines.append(
            f"  map {each.name} (id {each.id}, {each.type_name}, key {each.key_size} bytes, value {each.value_size} "
            f"bytes, max_entries {each.max_entries}){where}"
        )
    if any(m.pin_path for m in info.maps):
        ns = f" --netns {info.netns_name}" if info.netns_name else ""
        lines.append(f"  read them with `pyfd map{ns} NAME dump`")
    if info.defunct and info.pin_path:
        lines.append(f"  remove the stale pin with `rm -r {os.path.dirname(info.pin_path)}`")
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    """`pyfd show`: what flow dissector is attached where."""
    import json

    from .runtime import query, query_all, resolve_netns
    from .runtime.attach import stats_enabled

    try:
        current = resolve_netns(None).ino
        if args.netns is not None:
            ns = resolve_netns(args.netns)
            found = query(args.netns)
        else:
            found = query_all()
    except Exception as exc:
        raise _attach_errors(exc, args) from None
    if args.json:
        print(json.dumps([info.to_json() for info in found], indent=2))
        return EXIT_OK
    if not found:
        where = f"to {ns.label}" if args.netns is not None else "in any network namespace pyfd can see"
        print(f"no flow dissector is attached {where}")
        return EXIT_OK
    stats_on = stats_enabled()
    print("\n".join(_show_text(info, current, stats_on) for info in found))
    return EXIT_OK


MAP_ACTIONS = {"dump": 0, "get": 1, "del": 1, "set": 2}  # action -> arguments it takes


def _map_operand(codec, text: str, what: str):  # type: ignore[no-untyped-def]
    """A key or value typed on the command line: a number for an integer type, else hex bytes of its size."""
    if codec.integer:
        try:
            return int(text, 0)
        except ValueError:
            raise UserError(f"{what} is an integer ({codec.describe()}): {text!r} is not a number (decimal, or 0x hex)", EXIT_USAGE) from None
    try:
        data = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise UserError(f"{what} is {codec.describe()}: give its bytes in hex, not {text!r}", EXIT_USAGE) from None
    if len(data) != codec.size:
        raise UserError(f"{what} is {codec.describe()}: {text!r} is {len(data)} bytes", EXIT_USAGE)
    return data


def _map_text(value: object) -> str:
    """A key or value as `pyfd map` prints it: numbers in decimal, bytes in hex, structs as {field: value}, lists."""
    import json

    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, list):
        return "[" + ", ".join(_map_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_map_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _map_json(value: object) -> object:
    """A rendered key or value for JSON: bytes as hex, inside lists and dicts too."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, list):
        return [_map_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _map_json(v) for k, v in value.items()}
    return value


def cmd_map(args: argparse.Namespace) -> int:
    """`pyfd map`: read and write the maps `pyfd attach` pinned beside a namespace's dissector."""
    import json

    from .runtime import BpfError, MapNotPinnedError, MissingPrivilegeError, open_pinned_map, pinned_maps, resolve_netns

    option = f" --netns {args.netns}" if args.netns else ""
    if args.name is None:
        if args.action is not None:
            raise UserError("name the map first: `pyfd map [--netns NS] NAME [get K | set K V | del K | dump]`", EXIT_USAGE)
        try:
            ns = resolve_netns(args.netns)
            found = pinned_maps(args.netns)
        except Exception as exc:
            raise _attach_errors(exc, args) from None
        if args.json:
            print(json.dumps(sorted(found)))
        elif not found:
            print(f"no maps are pinned for {ns.label} (`pyfd attach` pins a dissector's maps)")
        else:
            print("\n".join(sorted(found)))
        return EXIT_OK
    action = args.action or "dump"
    if action not in MAP_ACTIONS:
        raise UserError(f"unknown map action {action!r}: use get K, set K V, del K or dump", EXIT_USAGE)
    if len(args.operands) != MAP_ACTIONS[action]:
        wanted = {"dump": "no argument", "get": "a key", "del": "a key", "set": "a key and a value"}[action]
        raise UserError(f"`pyfd map NAME {action}` takes {wanted}, got {len(args.operands)}: {' '.join(args.operands) or '(none)'}", EXIT_USAGE)
    try:
        opened = open_pinned_map(args.name, args.netns)
    except MapNotPinnedError as exc:
        hint = f"attach a dissector with maps with `pyfd attach FILE{option}`" if not exc.names else f"`pyfd map{option}` lists them"
        raise UserError(exc.with_hint(hint)) from None
    except Exception as exc:
        raise _attach_errors(exc, args) from None
    with opened as chosen:
        if action == "dump":
            try:
                items = [(chosen.render_key(k), chosen.render_value(v)) for k, v in chosen.raw_items()]
            except MissingPrivilegeError as exc:
                raise UserError(str(exc), EXIT_NO_KERNEL) from None
            except BpfError as exc:
                raise UserError(str(exc)) from None
            if args.json:
                print(json.dumps([{"key": _map_json(k), "value": _map_json(v)} for k, v in items]))
            else:
                for key, value in items:
                    print(f"{_map_text(key)}: {_map_text(value)}")
                note = f" (one value per CPU, {len(items[0][1])} CPUs)" if chosen.percpu and items else ""
                print(f"{len(items)} element{'s' if len(items) != 1 else ''} in {chosen.type_name} map {args.name}{note}", file=sys.stderr)
            return EXIT_OK
        key = _map_operand(chosen.key_codec, args.operands[0], f"a key of map {args.name!r}")
        try:
            if action == "get":
                raw = chosen.lookup_raw(key)
                if raw is None:
                    raise UserError(f"map {args.name!r} has no key {_map_text(key)}")
                value = chosen.render_value(raw)
                print(json.dumps(_map_json(value)) if args.json else _map_text(value))
            elif action == "del":
                try:
                    del chosen[key]
                except KeyError:
                    raise UserError(f"map {args.name!r} has no key {_map_text(key)}") from None
                except TypeError as exc:  # an array's elements cannot be deleted
                    raise UserError(str(exc)) from None
            else:
                _set_map_value(chosen, key, args.operands[1], args.name)
        except (ValueError, TypeError) as exc:  # a key or value that does not fit the map's types
            raise UserError(str(exc), EXIT_USAGE) from None
        except KeyError as exc:  # an index past an array's end
            raise UserError(str(exc)) from None
        except MissingPrivilegeError as exc:
            raise UserError(str(exc), EXIT_NO_KERNEL) from None
        except BpfError as exc:
            raise UserError(str(exc)) from None
    return EXIT_OK


def _set_map_value(chosen, key: object, text: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """`pyfd map NAME set K V`: a prog array's V is a program id (as `get` prints), any other map's is typed."""
    from .runtime import BpfError
    from .runtime import bpf as bpf_calls
    from .runtime.maps import FD_ARRAY_TYPES

    if chosen.type not in FD_ARRAY_TYPES:
        chosen[key] = _map_operand(chosen.value_codec, text, f"a value of map {name!r}")
        return
    prog_id = _map_operand(chosen.value_codec, text, f"a value of prog array {name!r} (a program id)")
    try:
        fd = bpf_calls.prog_get_fd_by_id(prog_id)
    except BpfError as exc:
        raise UserError(f"no program with id {prog_id} to put into prog array {name!r}: {exc}") from None
    try:
        chosen[key] = fd  # the kernel takes the program's fd
    finally:
        os.close(fd)


def cmd_disasm(args: argparse.Namespace) -> int:
    """`pyfd disasm`: the instructions of an object file, with its source lines when it has them."""
    from .disasm import disassemble_object
    from .objfile.reader import ObjectFileError

    _check_input(Path(args.file))
    try:
        sys.stdout.write(disassemble_object(args.file, args.function))
    except ObjectFileError as exc:
        raise object_file_error(exc) from None
    return EXIT_OK


class _ParagraphsHelpFormatter(argparse.HelpFormatter):
    """Wrap the description and epilog paragraph by paragraph (argparse's default joins them into one)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(super(_ParagraphsHelpFormatter, self)._fill_text(part, width, indent) for part in text.split("\n\n"))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `pyfd` command."""
    from .compiler.backends import BACKENDS  # names only: no backend module is loaded

    backends = list(BACKENDS)
    parser = argparse.ArgumentParser(
        prog="pyfd",
        description="Compile flow dissectors written in restricted Python to BPF, and run them in the kernel.",
        epilog=f"Run `pyfd COMMAND --help` for a command's options.\n\n{EXIT_STATUS}",
        formatter_class=_ParagraphsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pyfd {__import__('pyfd').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", metavar="FILE.py", help="Python file with @dissector functions")
        p.add_argument("--function", "-f", metavar="NAME", help="the dissector to use when the file has several")
        generators = ", or ".join(b.description for b in BACKENDS.values())
        p.add_argument("--backend", choices=backends, default="native", help=f"code generator: {generators} (default: native)")
        p.add_argument("-O", dest="opt_level", type=int, choices=[0, 1, 2], default=2, metavar="LEVEL", help="optimisation level 0, 1 or 2 (default: 2)")

    p = sub.add_parser(
        "compile",
        help="compile a dissector to a BPF object file",
        description="Compile a dissector to an ELF object (section flow_dissector) that bpftool and libbpf load.",
    )
    common(p)
    p.add_argument("-o", "--output", metavar="PATH", help="where to write (default: FILE.o next to the source; stdout for --emit asm/ir/llvm)")
    p.add_argument(
        "--emit",
        choices=["obj", "asm", "ir", "llvm"],
        default="obj",
        help="obj: ELF object (default); asm: BPF assembly with Python lines; ir: the optimised IR; "
        "llvm (with --backend llvm): the LLVM IR after LLVM's optimisation pipeline, as compiled to BPF",
    )
    p.add_argument("--dump-after", action="append", metavar="PASS", help="print the IR to stderr after this pass changes it (repeatable; 'all' for every pass)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="also load the program into the kernel verifier: report the instructions it processed, or the Python line it refused and why",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="with --verify: print the verifier's full log, with the Python line of each instruction")
    p.add_argument(
        "--set",
        action="append",
        type=parse_setting,
        metavar="NAME=VALUE",
        help="with --verify: set a load-time constant (a Config of the dissector) for the verifier's load (repeatable); "
        "the object keeps the defaults",
    )
    p.set_defaults(handler=cmd_compile)

    p = sub.add_parser(
        "run",
        help="run a dissector on packets, in the kernel, in pyfd's interpreter and as Python",
        description=(
            "Run a dissector with BPF_PROG_TEST_RUN on frames (the built-in demo frames, or a pcap file's) and "
            "print the flow keys. A Python file is compiled, run in the kernel and as Python, and both results "
            "compared (in pyfd's interpreter and as Python, with a warning, when this process cannot load BPF "
            "programs); an object file runs in the kernel (or the interpreter). --engine chooses. Exit status 1 "
            "when the engines disagree on a frame, 3 when an engine asked for cannot run here. With "
            "--kernel-hash it checks instead that the kernel hashes each frame alike with the dissector attached as "
            "with its built-in one (exit status 1 when not)."
        ),
    )
    p.add_argument("file", metavar="FILE.py|OBJECT.o", help="Python file with @dissector functions, or a compiled object file")
    p.add_argument("--function", "-f", metavar="NAME", help="the dissector (or object-file program) to use when there are several")
    p.add_argument("--backend", choices=backends, default=None, help="code generator for a Python file (default: native)")
    p.add_argument("-O", dest="opt_level", type=int, choices=[0, 1, 2], default=None, metavar="LEVEL", help="optimisation level for a Python file (default: 2)")
    p.add_argument("--pcap", metavar="FILE", help="run on the Ethernet frames of a pcap file (default: built-in demo frames)")
    p.add_argument(
        "--set",
        action="append",
        type=parse_setting,
        metavar="NAME=VALUE",
        help="set a load-time constant (a Config of the dissector, a .rodata variable of an object) before the load (repeatable)",
    )
    p.add_argument(
        "--flags",
        type=parse_flags,
        default=0,
        metavar="FLAGS",
        help="input flags: a number (decimal or 0x hex) or names PARSE_1ST_FRAG, STOP_AT_FLOW_LABEL, STOP_AT_ENCAP "
        "(with or without BPF_FLOW_DISSECTOR_F_), joined with ',' (default: 0)",
    )
    p.add_argument(
        "--engine",
        action="append",
        type=parse_engines,
        metavar="ENGINE",
        help="where to run, compared frame by frame: kernel (BPF_PROG_TEST_RUN), vm (pyfd's interpreter: no "
        "privileges needed, every memory access checked), python (the source as CPython); repeat it or join with ',' "
        "(default: kernel and python where this process can load BPF programs, vm and python otherwise; an "
        "object file: kernel, or vm)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per frame (frame number from 1, label, length, skipped, and for kernel, vm and "
        "python: retval and every key, or null where that engine did not run; agree; with --kernel-hash: "
        "builtin_hash, hash, same, retval, keys); the summary goes to stderr",
    )
    p.add_argument(
        "--kernel-hash",
        action="store_true",
        help="instead: for each frame, say whether the kernel's flow hash (skb_get_hash(), which RPS/RFS, fq, ECMP "
        "and bonding use) is the same with this dissector attached as with the kernel's built-in one, in a "
        "throwaway network namespace; shows the dissector's keys where it differs. Needs root (CAP_SYS_ADMIN, "
        "CAP_BPF, CAP_NET_ADMIN). Exit status 1 when a frame hashes differently",
    )
    p.set_defaults(handler=cmd_run)

    netns_help = "network namespace: a name from `ip netns list` or a path such as /proc/PID/ns/net (default: the current one)"
    p = sub.add_parser(
        "attach",
        help="attach a dissector to a network namespace",
        description=(
            "Load a dissector (compiling FILE.py, or reading a compiled FILE.o) and attach it to a network "
            "namespace with a BPF link pinned under /sys/fs/bpf/pyfd/, so that it stays attached after pyfd "
            "exits; its maps are pinned beside the link (read them with `pyfd map`). The root network namespace "
            "is refused without --force: a flow dissector there overrides every other namespace on the machine."
        ),
    )
    p.add_argument("file", metavar="DISSECTOR.py|OBJECT.o", help="Python file with @dissector functions, or an object file from `pyfd compile`")
    p.add_argument("--function", "-f", metavar="NAME", help="the dissector (or object-file program) to use when there are several")
    p.add_argument("--netns", metavar="NAME|PATH", help=netns_help)
    p.add_argument("--force", action="store_true", help="allow the root network namespace (it overrides every other namespace)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="if the namespace already has a flow dissector, swap in this one in a single step (BPF_LINK_UPDATE: "
        "the link keeps its id and pin, and no packet goes without a dissector); with none attached, attach afresh",
    )
    p.add_argument("--backend", choices=backends, default="native", help="code generator for a .py file (default: native)")
    p.add_argument("-O", dest="opt_level", type=int, choices=[0, 1, 2], default=2, metavar="LEVEL", help="optimisation level for a .py file (default: 2)")
    p.add_argument(
        "--set",
        action="append",
        type=parse_setting,
        metavar="NAME=VALUE",
        help="set a load-time constant (a Config of the dissector, a .rodata variable of an object) before the load (repeatable)",
    )
    p.set_defaults(handler=cmd_attach)

    p = sub.add_parser(
        "detach",
        help="detach the dissector of a network namespace",
        description="Detach the flow dissector of a network namespace (pyfd's or another tool's) and remove pyfd's pin.",
    )
    p.add_argument("--netns", metavar="NAME|PATH", help=netns_help)
    p.set_defaults(handler=cmd_detach)

    p = sub.add_parser(
        "show",
        help="show which dissector is attached where",
        description=(
            "Show the flow dissectors attached to network namespaces: program id and name, link and pin, since "
            "when, and run counts when BPF statistics are on. Without --netns: every namespace pyfd can see "
            "(all links, and legacy attachments in the current, root and `ip netns` namespaces)."
        ),
    )
    p.add_argument("--netns", metavar="NAME|PATH", help="only this network namespace: a name from `ip netns list` or a path such as /proc/PID/ns/net")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser(
        "map",
        help="read and write the maps of an attached dissector",
        usage="pyfd map [-h] [--netns NAME|PATH] [--json] [NAME [get KEY | set KEY VALUE | del KEY | dump]]",
        description=(
            "Read and write the maps that `pyfd attach` pinned beside a namespace's dissector "
            "(/sys/fs/bpf/pyfd/netns-INODE/maps/NAME), also after pyfd exited. Without NAME: list them. "
            "dump (the default) prints every KEY: VALUE; get prints one value; set writes one; del deletes one "
            "(hash maps; an array has every index). A key or value of an integer type is a number (decimal or "
            "0x hex, negative for a signed type); any other type is its bytes in hex. A per-CPU map's value "
            "prints as a list, one per CPU, and `set` writes the value to every CPU. A prog array's values "
            "are program ids. Exit status 1 for an unknown map or key, or a value the kernel refuses "
            "(a frozen .rodata, a full hash map)."
        ),
    )
    p.add_argument("--netns", metavar="NAME|PATH", help=netns_help)
    p.add_argument("--json", action="store_true", help="print JSON: dump as [{key, value}], get as the value")
    p.add_argument("name", metavar="NAME", nargs="?", help="the map, by its name in the object (e.g. counters, .rodata)")
    p.add_argument("action", metavar="ACTION", nargs="?", help="dump (default), get KEY, set KEY VALUE or del KEY")
    p.add_argument("operands", metavar="ARG", nargs="*", help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_map)
    p = sub.add_parser(
        "disasm",
        help="print the instructions of a BPF object file",
        description=(
            "Print the instructions of a flow dissector ELF object (pyfd's, clang's or hand-made) as BPF "
            "assembly, in the style of `pyfd compile --emit asm`: with the source line above each run of "
            "instructions when the object has .BTF.ext line info (pyfd's objects always do)."
        ),
    )
    p.add_argument("file", metavar="OBJECT.o", help="ELF object file (e.g. from `pyfd compile`)")
    p.add_argument("--function", "-f", metavar="NAME", help="only this program (default: every program in the object)")
    p.set_defaults(handler=cmd_disasm)
    return parser


class _ReaderGoneSafe(io.TextIOBase):
    """A text stream that, once its reader has gone (EPIPE), discards what is written instead of raising.

    `pyfd attach ... | true` must still attach and exit 0: what the action
    did decides the exit status, not whether anyone read the report. After
    the first EPIPE the file descriptor is pointed at /dev/null, so that
    later writes, and the interpreter's flush at exit, succeed silently.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.reader_gone = False

    def _divert(self) -> None:
        self.reader_gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self.stream.fileno())
        finally:
            os.close(devnull)

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._divert()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._divert()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase declares it an attribute
        return self.stream.encoding


def _guard(stream: TextIO) -> TextIO:
    """Wrap a stream backed by a file descriptor (not pytest's capture) in _ReaderGoneSafe."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream
    return cast(TextIO, _ReaderGoneSafe(stream))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pyfd` console script; returns the exit status (EXIT_STATUS)."""
    _freeze_heap_at_exit()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _guard(sys.stdout), _guard(sys.stderr)
    try:
        return _main(argv)
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = saved


_exit_hook: list[bool] = []  # whether main registered _freeze_heap_at_exit's handler (once per process)


def _freeze_heap_at_exit() -> None:
    """Have the interpreter's exit skip collecting the objects alive then (gc.freeze, registered once).

    Shutting down, CPython clears every module and runs the cycle collector
    over what that leaves (the classes, functions and records of every module
    a command imported): 15-17 ms of a `pyfd compile` (bench_compile), as long
    as its passes, to free memory the OS takes back anyway. Frozen objects are
    left out of those collections; every file pyfd writes is closed before a
    command returns, and Python never promised `__del__` at exit.
    """
    if not _exit_hook:
        _exit_hook.append(True)
        atexit.register(gc.freeze)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UserError as exc:
        print(str(exc) if exc.located else f"pyfd: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug in pyfd: say so in one paragraph, the traceback on request
        if os.environ.get("PYFD_TRACEBACK"):
            raise
        print(
            f"pyfd: internal error: {type(exc).__name__}: {exc}\n"
            "  this is a bug in pyfd, not in your dissector; set PYFD_TRACEBACK=1 to see where it happened",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
