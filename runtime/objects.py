"""Loading a program of an ELF object with its maps, global data, load-time constants and tail calls.

The steps are libbpf's (libbpf.c, bpf_object_load): load the object's BTF,
create every map it defines, fill the global-data maps (`.rodata` with the
constants given at load, then frozen), patch each program's map references
with the maps' fds, load the programs, and fill the prog arrays. The loaded
entry program owns everything else: its `maps` and its `tail_calls`.

Which programs go into a prog array:
- the slots the object names itself (`__array(values, ...)` in `.maps`, as
  libbpf fills them: bpf_object__collect_map_relos);
- slots given to `load_object(tail_calls={"jmp_table": {0: "prog", ...}})`;
- otherwise, for the one prog array of an object whose programs are named
  `flow_dissector_<N>`, program N goes into slot N: what the kernel's
  selftests do for their reference dissector bpf_flow.o
  (tools/testing/selftests/bpf/prog_tests/flow_dissector.c, through
  bpf_flow_load(); the README of ../shared/reference says the same).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..abi import FLOW_DISSECTOR_SECTION, LICENSE, MapType
from ..objfile import btf as btf_format
from ..objfile.reader import (
    AmbiguousProgramError,
    DataVariable,
    MapDefinition,
    ObjectFile,
    ObjectFileError,
    ObjectProgram,
    check_loadable,
    map_references,
)
from .errors import ConfigError, SourceLocation, SourceLocator, slot_source_map
from .maps import Map, create_map, fill_global_data, relocate
from .program import LoadedProgram, load_btf, load_program, valid_prog_name

__all__ = ["ConfigError", "TailCallPlan", "config_variables", "load_object", "plan_tail_calls"]

# The selftest's naming of bpf_flow.o's tail-call targets: program N of slot N.
SELFTEST_TAIL_CALL: Final = re.compile(rf"{FLOW_DISSECTOR_SECTION}_(\d+)")

ConfigValue = int | bytes


# --- which programs -----------------------------------------------------------------


@dataclass(frozen=True)
class TailCallPlan:
    """What loading needs besides the entry: the prog arrays' slots, and where each came from."""

    slots: dict[str, dict[int, str]]  # prog array -> index -> program name
    rule: str  # "object" (__array values), "given", "selftest naming" or "" (no tail calls)

    @property
    def programs(self) -> list[str]:
        """The programs the prog arrays hold, each once, in slot order."""
        return list(dict.fromkeys(name for slots in self.slots.values() for _, name in sorted(slots.items())))


def plan_tail_calls(obj: ObjectFile, tail_calls: Mapping[str, Mapping[int, str]] | None = None) -> TailCallPlan:
    """Which program goes into which prog-array slot (see the module docstring); ObjectFileError when a name is wrong."""
    arrays = [m for m in obj.maps if m.type == MapType.PROG_ARRAY]
    names = {p.name for p in obj.programs}
    if tail_calls:
        slots: dict[str, dict[int, str]] = {}
        for array_name, given in tail_calls.items():
            array = obj.map(array_name)
            if array.type != MapType.PROG_ARRAY:
                raise ObjectFileError(f"{obj.path}: map {array_name!r} is a {array.type_name} map, not a prog array")
            for index, program in given.items():
                if not 0 <= index < array.max_entries:
                    raise ObjectFileError(
                        f"{obj.path}: slot {index} is outside prog array {array_name!r} (0..{array.max_entries - 1})"
                    )
                if program not in names:
                    raise ObjectFileError(
                        f"{obj.path}: no program {program!r} for slot {index} of {array_name!r}; the object's "
                        f"programs: {', '.join(p.name for p in obj.programs)}"
                    )
            slots[array_name] = dict(given)
        return TailCallPlan(slots, "given")
    declared = {a.name: dict(a.slots) for a in arrays if a.slots}
    if declared:
        return TailCallPlan(declared, "object")
    if len(arrays) == 1:
        numbered = {}
        for candidate in obj.programs:
            found = SELFTEST_TAIL_CALL.fullmatch(candidate.name)
            if found and int(found.group(1)) < arrays[0].max_entries:
                numbered[int(found.group(1))] = candidate.name
        if numbered:
            return TailCallPlan({arrays[0].name: numbered}, "selftest naming")
    return TailCallPlan({}, "")


def entry_program(obj: ObjectFile, function: str | None, plan: TailCallPlan) -> ObjectProgram:
    """The program to load as the entry: the one named, or the only one that no prog array holds."""
    if function is not None:
        return obj.program(function)
    if len(obj.programs) == 1:
        return obj.programs[0]
    held = set(plan.programs)
    candidates = [p for p in obj.programs if p.name not in held and p.section != ".text"]
    if len(candidates) == 1 and held:
        return candidates[0]
    raise AmbiguousProgramError(obj.path, [p.name for p in (candidates if held else obj.programs)])


# --- load-time constants ---------------------------------------------------------------


def config_variables(obj: ObjectFile) -> dict[str, tuple[MapDefinition, DataVariable]]:
    """The load-time constants of an object: the variables of its `.rodata` sections, by name."""
    found: dict[str, tuple[MapDefinition, DataVariable]] = {}
    for definition in obj.maps:
        if definition.global_data and definition.read_only:
            for variable in definition.variables:
                found.setdefault(variable.name, (definition, variable))
    return found


def _describe(variable: DataVariable) -> str:
    if variable.int_size is not None:
        return f"{'i' if variable.signed else 'u'}{variable.int_size * 8}"
    return f"{variable.size} bytes"


def _a(word: str) -> str:
    """`a u16`, `an i32`."""
    return f"{'an' if word[:1] in 'aeio' else 'a'} {word}"


def config_images(obj: ObjectFile, config: Mapping[str, ConfigValue] | None) -> dict[str, bytes]:
    """The bytes each `.rodata` map starts with: the section's, with the constants of `config` written in.

    Raises ConfigError for a name the object has no constant of (listing
    those it has), a value of the wrong kind, or one that does not fit the
    variable's integer type (its BTF size and signedness).
    """
    if not config:
        return {}
    known = config_variables(obj)
    listed = ", ".join(f"{name} ({_describe(var)})" for name, (_, var) in sorted(known.items()))
    images: dict[str, bytearray] = {}
    for name, value in config.items():
        if name not in known:
            other = next((m.name for m in obj.maps if m.global_data and any(v.name == name for v in m.variables)), None)
            if other is not None:
                raise ConfigError(f"{name!r} is a variable of {other}, not a load-time constant (only .rodata variables are)")
            if not known:
                raise ConfigError(f"{obj.path} has no load-time constants (no .rodata variables) to set {name!r}")
            raise ConfigError(f"{obj.path} has no load-time constant {name!r}; its constants: {listed}")
        definition, variable = known[name]
        if variable.int_size is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} is an integer ({_describe(variable)}); {value!r} is a {type(value).__name__}")
            bits = variable.int_size * 8
            low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if variable.signed else (0, (1 << bits) - 1)
            if not low <= value <= high:
                raise ConfigError(f"{name} is {_a(_describe(variable))} ({low}..{high}); {value} does not fit")
            data = value.to_bytes(variable.int_size, "little", signed=variable.signed)
        else:
            if not isinstance(value, (bytes, bytearray)) or len(value) != variable.size:
                raise ConfigError(f"{name} is not an integer: give it as bytes, exactly {variable.size} of them")
            data = bytes(value)
        image = images.setdefault(definition.name, bytearray(definition.initial or bytes(definition.value_size)))
        if variable.offset + len(data) > len(image):
            raise ConfigError(f"{name} lies outside {definition.name} ({len(image)} bytes): the object's BTF is wrong")
        image[variable.offset : variable.offset + len(data)] = data
    return {section: bytes(image) for section, image in images.items()}


# --- debug info -----------------------------------------------------------------------


def program_debug_info(
    obj: ObjectFile, prog: ObjectProgram, btf: bytes | None = None
) -> tuple[bytes, bytes, bytes, SourceLocator] | None:
    """The BTF, kernel func/line info and a source map for one program of an object, if it has them.

    `btf` is the object's .BTF as the kernel takes it (obj.btf, DATASECs
    filled in); without it, it is computed here. ObjectFileError for
    malformed .BTF or .BTF.ext.
    """
    raw, btf_ext = obj.sections.get(".BTF"), obj.sections.get(".BTF.ext")
    if not raw or not btf_ext:
        return None
    try:
        info = btf_format.parse_btf_ext(btf_ext, raw).get(prog.section)
        fixed = btf if btf is not None else btf_format.fixup_datasecs(raw, obj.section_sizes, obj.symbols)
    except btf_format.BtfFormatError as exc:
        raise ObjectFileError(f"{obj.path}: malformed .BTF or .BTF.ext: {exc}") from None
    if info is None:
        return None
    start, end = prog.offset, prog.offset + len(prog.code)
    funcs = [f for f in info.func_info if start <= f.insn_off < end]
    lines = [line for line in info.line_info if start <= line.insn_off < end]
    if not funcs and not lines:
        return None
    slots: list[SourceLocation | None] = [None] * (len(prog.code) // 8)
    for line in lines:
        slots[(line.insn_off - start) // 8] = SourceLocation.of_line_info(line)
    return fixed, btf_format.kernel_func_info(funcs, start), btf_format.kernel_line_info(lines, start), slot_source_map(slots)


def object_name(obj: ObjectFile) -> str:
    """The object's name as libbpf takes it: the file's name up to its first '.' (`bpf_flow` for bpf_flow.o)."""
    base = os.path.basename(obj.path) if not obj.path.startswith("<") else ""
    return base.split(".", 1)[0]


# --- loading ------------------------------------------------------------------------


def check_object_program(obj: ObjectFile, prog: ObjectProgram) -> None:
    """Refuse, with ObjectFileError naming the file, what the kernel could not take of one program."""
    check_loadable(obj, prog)
    try:
        valid_prog_name(prog.name)  # the kernel's rule (bpf_obj_name_cpy), checked here to name the file
    except ValueError as exc:
        raise ObjectFileError(f"{obj.path}: program {prog.name!r} cannot be loaded under its own name: {exc}") from None


def prepare(
    obj: ObjectFile,
    function: str | None = None,
    *,
    config: Mapping[str, ConfigValue] | None = None,
    tail_calls: Mapping[str, Mapping[int, str]] | None = None,
) -> tuple[ObjectProgram, TailCallPlan, dict[str, bytes]]:
    """Everything `load_object` checks before asking the kernel: the entry, the tail calls, the constants' bytes."""
    plan = plan_tail_calls(obj, tail_calls)
    entry = entry_program(obj, function, plan)
    for name in [entry.name, *plan.programs]:
        check_object_program(obj, obj.program(name))
    return entry, plan, config_images(obj, config)


def load_object(
    obj: ObjectFile,
    function: str | None = None,
    *,
    config: Mapping[str, ConfigValue] | None = None,
    tail_calls: Mapping[str, Mapping[int, str]] | None = None,
    log_level: int = 0,
    source_map: SourceLocator | None = None,
    name: str | None = None,
) -> LoadedProgram:
    """Load program `function` of an object (None: its only entry point) with its maps and tail calls.

    `config` sets `.rodata` variables by name before the map is frozen
    (ConfigError for an unknown name or a value that does not fit).
    `tail_calls` fills prog arrays explicitly: {array: {index: program}}.
    `source_map` overrides the one the object's line info gives (a compiler
    knows columns better); `name` is the object's name for global-data map
    names (default: the file's name). Everything made is released again when
    a step fails. The result owns the maps (`.maps`) and the tail-call
    programs (`.tail_calls`).
    """
    entry, plan, images = prepare(obj, function, config=config, tail_calls=tail_calls)
    label = name if name is not None else object_name(obj)
    programs = {entry.name: entry, **{n: obj.program(n) for n in plan.programs}}
    debug = {n: program_debug_info(obj, p, obj.btf) for n, p in programs.items()}
    needs_btf = bool(obj.maps) or any(d is not None for d in debug.values())
    btf_fd = 0
    maps: list[Map] = []
    loaded: dict[str, LoadedProgram] = {}
    try:
        if needs_btf and obj.btf is not None:
            btf_fd = load_btf(obj.btf, name=entry.name)
        decoded = btf_format.decode_btf(obj.btf) if obj.btf is not None and btf_fd else None
        for definition in obj.maps:
            created = create_map(definition, object_name=label, btf_fd=btf_fd, btf=decoded)
            maps.append(created)
            if definition.global_data:
                fill_global_data(created, definition, images.get(definition.name))
        fds = {m.name: m.fd for m in maps}
        # Tail-call targets first: the entry's LoadedProgram takes them over.
        for program_name in [*(n for n in plan.programs if n != entry.name), entry.name]:
            program = programs[program_name]
            code = relocate(program.code, map_references(obj, program), fds)
            info = debug[program_name]
            locator = source_map if program_name == entry.name and source_map is not None else None
            if info is None:
                loaded[program_name] = load_program(
                    code, name=program.name, license=obj.license or LICENSE, log_level=log_level if program is entry else 0,
                    source_map=locator,
                )
            else:
                _, func_info, line_info, object_locator = info
                loaded[program_name] = load_program(
                    code,
                    name=program.name,
                    license=obj.license or LICENSE,
                    btf_fd=btf_fd,
                    func_info=func_info,
                    line_info=line_info,
                    source_map=locator or object_locator,
                    log_level=log_level if program is entry else 0,
                )
        by_name = {m.name: m for m in maps}
        for array_name, slots in plan.slots.items():
            for index, program_name in sorted(slots.items()):
                by_name[array_name].set(index, loaded[program_name])
        tail = [loaded[n] for n in plan.programs if n != entry.name]
        result = loaded.pop(entry.name)
        result.adopt(maps, tail)
        maps, loaded = [], {}
        return result
    finally:
        for made in loaded.values():
            made.close()
        for each in maps:
            each.close()
        if btf_fd:
            os.close(btf_fd)

