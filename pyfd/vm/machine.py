"""The interpreter proper: an object's programs translated, its maps made, and runs as BPF_PROG_TEST_RUN does them.

`Machine(obj, entry)` reads what the kernel's loader would: every map of the
object (pyfd.objfile.reader's MapDefinitions, global data filled from its
sections, `.rodata` with the load-time constants given), each program's
map references, and the prog arrays' slots (the object's
`__array(values, ...)`, slots given by name, or the kernel selftest's rule
for bpf_flow.o: program `flow_dissector_<N>` into slot N). Each section that
holds a program it needs is translated once (pyfd.vm.translate) and
compiled. `execute` runs the entry on a frame with the presets of
net/bpf/test_run.c, bpf_prog_test_run_flow_dissector -> bpf_flow_dissect
(net/core/flow_dissector.c): the keys zeroed, `nhoff` = `thoff` = 14,
`n_proto` the Ethernet type, `flags` the caller's; afterwards `nhoff` is
clamped into [14, length] and `thoff` into [nhoff, length], as the kernel
does whatever the program returned.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import linecache
import random
import re
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..abi import (
    FLOW_DISSECTOR_SECTION,
    FLOW_KEYS_SIZE,
    INSN_SIZE,
    MAX_PACKET_OFF,
    SKB_DATA,
    SKB_DATA_END,
    SKB_FLOW_KEYS,
    MapType,
)
from ..isa import DecodeError, DisassembleError, decode, disassemble
from ..objfile import btf as btf_format
from ..objfile.reader import AmbiguousProgramError, MapDefinition, ObjectFile, ObjectProgram, check_loadable, map_references
from .errors import VmAccessError, VmError, VmLocation
from .maps import ArrayMap, ProgArray, VmMap, VmMapCollection, make_map
from .memory import (
    BIAS,
    CTX_ADDRESS,
    KEYS,
    KEYS_ADDRESS,
    MAX_CALL_FRAMES,
    PACKET,
    PACKET_ADDRESS,
    STACK_FIRST,
    AddressSpace,
    Region,
    bytes_,
)
from .translate import M32, M64, STACK_SIZE, HelperSpec, Translator, TranslateError, decode_section

ETH_HLEN: Final = 14
MAX_TAIL_CALL_CNT: Final = 33
"""MAX_TAIL_CALL_CNT in include/linux/bpf.h: a run takes at most this many tail calls; the next one falls through."""
SELFTEST_TAIL_CALL: Final = re.compile(rf"{FLOW_DISSECTOR_SECTION}_(\d+)")

# The helpers a flow dissector may call that the interpreter has (net/core/filter.c,
# flow_dissector_func_proto, and bpf_base_func_proto in kernel/bpf/helpers.c):
# number -> (name, argument registers). bpf_tail_call (12) is translated on its own.
HELPERS: Final[dict[int, tuple[str, int]]] = {
    1: ("bpf_map_lookup_elem", 2),
    2: ("bpf_map_update_elem", 4),
    3: ("bpf_map_delete_elem", 2),
    5: ("bpf_ktime_get_ns", 0),
    7: ("bpf_get_prandom_u32", 0),
    8: ("bpf_get_smp_processor_id", 0),
    12: ("bpf_tail_call", 3),
    26: ("bpf_skb_load_bytes", 4),
    42: ("bpf_get_numa_node_id", 0),
    118: ("bpf_jiffies64", 0),
    125: ("bpf_ktime_get_boot_ns", 0),
    160: ("bpf_ktime_get_coarse_ns", 0),
}

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_S16 = struct.Struct("<h")
_S32 = struct.Struct("<i")
_KEYS_ZERO = bytes(FLOW_KEYS_SIZE)
_STACK_ZERO = bytes(STACK_SIZE)
_CTX_FIELD_NAMES = {SKB_DATA: ("data", 4), SKB_DATA_END: ("data_end", 4), SKB_FLOW_KEYS: ("flow_keys", 8)}


# --- arithmetic the generated code calls -----------------------------------------------


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def sdiv64(a: int, b: int) -> int:
    """BPF_SDIV, 64 bits: truncates toward zero; by zero gives 0; INT64_MIN / -1 is INT64_MIN."""
    a, b = _signed(a, 64), _signed(b & M64, 64)
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return (-q if (a < 0) != (b < 0) else q) & M64


def smod64(a: int, b: int) -> int:
    """BPF_SMOD, 64 bits: the remainder takes the dividend's sign; modulo zero leaves the dividend."""
    sa, sb = _signed(a, 64), _signed(b & M64, 64)
    if sb == 0:
        return a
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & M64


def sdiv32(a: int, b: int) -> int:
    """BPF_SDIV, 32 bits (the result zero-extended)."""
    a, b = _signed(a & M32, 32), _signed(b & M32, 32)
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return (-q if (a < 0) != (b < 0) else q) & M32


def smod32(a: int, b: int) -> int:
    """BPF_SMOD, 32 bits: modulo zero leaves the low 32 bits of the dividend."""
    sa, sb = _signed(a & M32, 32), _signed(b & M32, 32)
    if sb == 0:
        return a & M32
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & M32


def bswap32(x: int) -> int:
    """The low 32 bits, byte-reversed."""
    return int.from_bytes((x & M32).to_bytes(4, "little"), "big")


def bswap64(x: int) -> int:
    """The 64 bits, byte-reversed."""
    return int.from_bytes(x.to_bytes(8, "little"), "big")


@functools.lru_cache(maxsize=64)
def _compile(source: str, filename: str) -> Any:
    """Compile generated source once per text (the same object always gives the same text)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    return compile(source, filename, "exec")


# --- what to load ------------------------------------------------------------------------


def plan_tail_calls(obj: ObjectFile, tail_calls: Mapping[str, Mapping[int, str]] | None) -> dict[str, dict[int, str]]:
    """Which program goes into which prog-array slot, by the rules pyfd.load follows (see the module docstring)."""
    arrays = [m for m in obj.maps if m.type == MapType.PROG_ARRAY]
    names = {p.name for p in obj.programs}
    if tail_calls:
        for array_name, given in tail_calls.items():
            array = next((m for m in arrays if m.name == array_name), None)
            if array is None:
                raise VmError(f"{obj.path}: no prog array {array_name!r}; its prog arrays: {', '.join(m.name for m in arrays) or 'none'}")
            for index, wanted in given.items():
                if not 0 <= index < array.max_entries or wanted not in names:
                    raise VmError(f"{obj.path}: slot {index} of {array_name!r} cannot take {wanted!r}")
        return {name: dict(slots) for name, slots in tail_calls.items()}
    declared = {a.name: dict(a.slots) for a in arrays if a.slots}
    if declared:
        return declared
    if len(arrays) == 1:
        numbered = {}
        for program in obj.programs:
            found = SELFTEST_TAIL_CALL.fullmatch(program.name)
            if found and int(found.group(1)) < arrays[0].max_entries:
                numbered[int(found.group(1))] = program.name
        if numbered:
            return {arrays[0].name: numbered}
    return {}


def entry_program(obj: ObjectFile, function: str | None, held: set[str]) -> ObjectProgram:
    """The program to run: the one named, the only one, or the only one no prog array holds (ObjectFileError otherwise, as pyfd.load)."""
    if function is not None:
        return obj.program(function)  # ObjectFileError naming the programs there are
    if len(obj.programs) == 1:
        return obj.programs[0]
    candidates = [p for p in obj.programs if p.name not in held and p.section != ".text"]
    if len(candidates) == 1 and held:
        return candidates[0]
    raise AmbiguousProgramError(obj.path, [p.name for p in (candidates if held else obj.programs)])


def config_image(definition: MapDefinition, config: Mapping[str, int | bytes], used: set[str]) -> bytes | None:
    """The bytes of a `.rodata` map with the constants of `config` written in (None: no change)."""
    image = bytearray(definition.initial or bytes(definition.value_size))
    changed = False
    for variable in definition.variables:
        if variable.name not in config:
            continue
        value = config[variable.name]
        used.add(variable.name)
        if variable.int_size is not None and isinstance(value, int) and not isinstance(value, bool):
            bits = variable.int_size * 8
            low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if variable.signed else (0, (1 << bits) - 1)
            if not low <= value <= high:
                raise VmError(f"load-time constant {variable.name} holds {low}..{high}; {value} does not fit")
            data = value.to_bytes(variable.int_size, "little", signed=variable.signed)
        elif isinstance(value, (bytes, bytearray)) and len(value) == variable.size:
            data = bytes(value)
        else:
            raise VmError(f"load-time constant {variable.name} is {variable.size} bytes; {value!r} does not fit it")
        image[variable.offset : variable.offset + len(data)] = data
        changed = True
    return bytes(image) if changed else None


# --- sections ------------------------------------------------------------------------------


@dataclass
class Section:
    """One executable section of the object, translated: where its instruction numbers start, its programs, its lines."""

    name: str
    code: bytes
    base: int  # this section's slot 0 is instruction number `base` of the machine
    programs: list[ObjectProgram]  # by offset
    locations: list[VmLocation | None]

    def program_at(self, slot: int) -> tuple[str, int]:
        """(program, instruction index in it) of a slot."""
        owner = None
        for program in self.programs:
            if program.offset // INSN_SIZE <= slot:
                owner = program
        if owner is None:
            return self.name, slot
        return owner.name, slot - owner.offset // INSN_SIZE

    def location(self, slot: int) -> VmLocation | None:
        """The source line of a slot: its own, or the nearest one before it in the same program."""
        start = 0
        for program in self.programs:
            if program.offset // INSN_SIZE <= slot:
                start = program.offset // INSN_SIZE
        for index in range(min(slot, len(self.locations) - 1), start - 1, -1):
            if self.locations[index] is not None:
                return self.locations[index]
        return None

    def text(self, slot: int) -> str | None:
        """The instruction's assembly, as `pyfd disasm` prints it, or its raw fields."""
        raw = self.code[slot * INSN_SIZE : (slot + 2) * INSN_SIZE]
        try:
            insn = decode(raw[:INSN_SIZE] if raw[:1] != b"\x18" else raw)[0]
            return disassemble(insn)
        except (DecodeError, DisassembleError, IndexError, ValueError):
            if len(raw) < INSN_SIZE:
                return None
            opcode, regs, off, imm = struct.unpack_from("<BBhi", raw)
            return f"opcode {opcode:#04x} dst r{regs & 15} src r{regs >> 4} off {off} imm {imm}"


def _btf_locations(obj: ObjectFile, section: str, slots: int) -> list[VmLocation | None]:
    """A section's source lines from .BTF.ext line info (clang's `-g`, pyfd's objects); none without it."""
    out: list[VmLocation | None] = [None] * slots
    raw, ext = obj.sections.get(".BTF"), obj.sections.get(".BTF.ext")
    if not raw or not ext:
        return out
    try:
        info = btf_format.parse_btf_ext(ext, raw).get(section)
    except btf_format.BtfFormatError:
        return out
    if info is None:
        return out
    for line in info.line_info:
        slot = line.insn_off // INSN_SIZE
        if 0 <= slot < slots and line.line:
            out[slot] = VmLocation.of_line_info(line)
    return out


class Entry:
    """A program the machine can run or tail-call into: `call(r1, depth)` runs it and returns r0."""

    def __init__(self, name: str, function: Callable[..., int], machine: Machine) -> None:
        self.name = name
        self._function = function
        self.machine = machine

    def call(self, r1: int, depth: int) -> int:
        """Run the program with r1 (the context) at call depth `depth`."""
        return self._function(r1, 0, 0, 0, 0, depth)

    def __repr__(self) -> str:
        return f"<program {self.name!r}>"


# --- the machine ---------------------------------------------------------------------------


class Machine:
    """An object's entry program with its maps and tail calls, ready to run (see the module docstring)."""

    def __init__(
        self,
        obj: ObjectFile,
        function: str | None = None,
        *,
        tail_calls: Mapping[str, Mapping[int, str]] | None = None,
        config: Mapping[str, int | bytes] | None = None,
        spans: Sequence[object | None] | None = None,
        seed: int = 0,
    ) -> None:
        self.obj = obj
        plan = plan_tail_calls(obj, tail_calls)
        held = {name for slots in plan.values() for name in slots.values()}
        entry = entry_program(obj, function, held)
        self.name = entry.name
        self.space = AddressSpace()
        self.random = random.Random(seed)
        self._make_maps(config or {})
        self._make_fixed_regions()
        needed = [entry, *(obj.program(n) for n in dict.fromkeys(held) if n != entry.name)]
        for program in needed:
            # What pyfd.load refuses (calls into other sections, externs) the interpreter refuses too:
            # it runs what the kernel would be handed.
            check_loadable(obj, program)
        self.sections: list[Section] = []
        self._env = self._environment()
        self.entries: dict[str, Entry] = {}
        self._translate(needed, entry, spans)
        for array_name, slots in plan.items():
            array = self.maps[array_name]
            assert isinstance(array, ProgArray)
            for index, program_name in slots.items():
                array.slots[index] = self.entries[program_name]
        self.entry = self.entries[entry.name]
        self.insns_executed = 0

    # -- building -------------------------------------------------------------------

    def _make_maps(self, config: Mapping[str, int | bytes]) -> None:
        btf = None
        if self.obj.btf is not None:
            try:
                btf = btf_format.decode_btf(self.obj.btf)
            except btf_format.BtfFormatError:
                btf = None
        used: set[str] = set()
        made: list[VmMap] = []
        for definition in self.obj.maps:
            if definition.global_data and definition.read_only and config:
                image = config_image(definition, config, used)
                if image is not None:
                    definition = _with_initial(definition, image)
            made.append(make_map(definition, self.space, btf))
        unknown = sorted(set(config) - used)
        if unknown:
            known = sorted(v.name for m in self.obj.maps if m.global_data and m.read_only for v in m.variables)
            raise VmError(f"{self.obj.path} has no load-time constant {unknown[0]!r}; its constants: {', '.join(known) or 'none'}")
        self.maps = VmMapCollection(made, owner=f"program in {self.obj.path}")
        self._map_at = {m.address: m for m in made}

    def _make_fixed_regions(self) -> None:
        self.keys = bytearray(FLOW_KEYS_SIZE)
        self.space.place(KEYS, Region("the flow keys (struct bpf_flow_keys)", self.keys, True, "keys"))
        self.space.place(PACKET, Region("the packet", b"", False, "packet"))
        self.stacks = [bytearray(STACK_SIZE) for _ in range(MAX_CALL_FRAMES)]
        self.frame_pointers = []
        for depth, stack in enumerate(self.stacks):
            base = self.space.place(STACK_FIRST + depth, Region(f"the stack (call depth {depth})", stack, True, "stack"))
            self.frame_pointers.append(base + STACK_SIZE)
        self._data_end = [PACKET_ADDRESS]
        self._count = [0]
        self._tail_calls = [0]
        self._skb: bytes | None = None

    def _translate(self, needed: Sequence[ObjectProgram], entry: ObjectProgram, spans: Sequence[object | None] | None) -> None:
        sections: dict[str, list[ObjectProgram]] = {}
        for program in needed:
            sections.setdefault(program.section, [])
        base = 0
        sources: list[str] = []
        wanted: dict[str, tuple[Translator, int]] = {}
        for index, section_name in enumerate(sections):
            code = self.obj.sections[section_name]
            programs = sorted((p for p in self.obj.programs if p.section == section_name), key=lambda p: p.offset)
            slots = len(code) // INSN_SIZE
            locations = _btf_locations(self.obj, section_name, slots)
            if spans is not None and section_name == entry.section:
                start = entry.offset // INSN_SIZE
                for i, span in enumerate(spans):
                    found = VmLocation.of(span)
                    if found is not None and start + i < slots:
                        locations[start + i] = found
            section = Section(section_name, code, base, programs, locations)
            self.sections.append(section)
            ld_imm64: dict[int, int] = {}
            for program in programs:
                for reference in map_references(self.obj, program):
                    ld_imm64[program.offset // INSN_SIZE + reference.insn] = self._reference_address(reference.map, reference.value_offset)
            try:
                insns = decode_section(code)
                translator = Translator(
                    insns,
                    ld_imm64=ld_imm64,
                    helpers={number: HelperSpec(args) for number, (_, args) in HELPERS.items()},
                    prefix=str(index),
                    base=base,
                )
                for program in needed:
                    if program.section == section_name:
                        translator.add(program.offset // INSN_SIZE)
                sources.append(translator.source())
            except TranslateError as exc:
                raise self.error(base + exc.slot, f"the interpreter cannot run this: {exc.reason}") from None
            for program in needed:
                if program.section == section_name:
                    wanted[program.name] = (translator, program.offset // INSN_SIZE)
            base += max(slots, 1)
        source = "\n".join(sources)
        self.source = source
        namespace = dict(self._env)
        exec(_compile(source, f"<pyfd.vm {self.obj.path}:{self.name}>"), namespace)
        for name, (translator, slot) in wanted.items():
            self.entries[name] = Entry(name, namespace[translator.name(slot)], self)

    def _reference_address(self, map_name: str, value_offset: int | None) -> int:
        target = self.maps[map_name]
        if value_offset is None:
            return target.address
        if not isinstance(target, ArrayMap):
            raise VmError(f"{self.obj.path}: a pointer into map {map_name!r}, which is no array")
        return target.element_address(0) + value_offset

    # -- errors -----------------------------------------------------------------------

    def _where(self, pc: int) -> tuple[Section | None, int]:
        found = None
        for section in self.sections:
            if section.base <= pc:
                found = section
        return found, pc - (found.base if found else 0)

    def error(self, pc: int, reason: str, cls: type[VmError] = VmError, **extra: Any) -> VmError:
        """An error at machine instruction `pc`, naming its program, index, source line and assembly."""
        section, slot = self._where(pc)
        if section is None:
            return cls(reason, program=self.name, **extra)
        program, index = section.program_at(slot)
        return cls(reason, program=program, insn=index, location=section.location(slot), insn_text=section.text(slot), **extra)

    def access_error(self, pc: int, address: int, size: int, write: bool, what: str = "") -> VmAccessError:
        """The error of an access of `size` bytes at `address` that its region does not allow."""
        region, where = self.space.describe(address)
        found, _ = self.space.region_of(address)
        kind = found.kind if found is not None else ""
        verb = "write" if write else "read"
        where = where if where.startswith("at ") else f", {where}"
        if write and found is not None and not found.writable and kind != "null" and 0 <= address:
            owner = {"packet": "the packet is read-only for a flow dissector (\"cannot write into packet\")",
                     "ctx": "the context is read-only for a flow dissector",
                     "map": "a map pointer is not a value pointer"}.get(kind, f"{region} is read-only for programs")
            reason = f"{what}{verb} of {bytes_(size)}{where if where[0] == ',' else ' ' + where}: {owner}"
        elif kind == "map":
            reason = f"{what}{verb} of {bytes_(size)} through a map pointer ({region}): only helpers take it"
        else:
            reason = f"{what}out-of-bounds {verb} of {bytes_(size)}{where if where[0] == ',' else ' ' + where}"
        err = self.error(pc, reason, VmAccessError, address=address, size=size, write=write, region=region)
        assert isinstance(err, VmAccessError)
        return err

    # -- the slow paths of the generated code -----------------------------------------

    def _environment(self) -> dict[str, Any]:
        space = self.space

        def ldf(pc: int, inner: int, size: int, signed: int) -> int:
            address = inner + BIAS
            region, offset = space.region_of(address)
            if region is not None and region.kind == "ctx" and offset >= 0:
                # The kernel rewrites these loads (flow_dissector_convert_ctx_access);
                # any other offset or size it refuses (flow_dissector_is_valid_access).
                field = _CTX_FIELD_NAMES.get(offset)
                if field is not None and field[1] == size and not signed:
                    return {SKB_DATA: PACKET_ADDRESS, SKB_DATA_END: self._data_end[0], SKB_FLOW_KEYS: KEYS_ADDRESS}[offset]
                raise self.error(
                    pc,
                    f"invalid context access off={offset} size={size}{' (sign-extending)' if signed else ''}: a flow "
                    "dissector may read only data (off 76, 4 bytes), data_end (80, 4 bytes) and flow_keys (144, 8 bytes)",
                    VmAccessError, address=address, size=size, write=False, region="the context",
                )
            raise self.access_error(pc, address, size, False)

        def stf(pc: int, inner: int, size: int, value: int) -> None:
            raise self.access_error(pc, inner + BIAS, size, True)

        def ldx(pc: int, address: int, size: int) -> int:
            data = space.read(address, size)
            if data is None:
                return ldf(pc, address - BIAS, size, 0)
            return int.from_bytes(data, "little")

        def stx(pc: int, address: int, size: int, value: int) -> None:
            found = space.writable(address, size)
            if found is None:
                raise self.access_error(pc, address, size, True)
            buf, offset = found
            buf[offset : offset + size] = value.to_bytes(size, "little")

        def atomic(pc: int, address: int, size: int, op: int, value: int) -> int:
            found = space.writable(address, size)
            if found is None:
                raise self.access_error(pc, address, size, True, "atomic ")
            buf, offset = found
            mask = (1 << (size * 8)) - 1
            old = int.from_bytes(buf[offset : offset + size], "little")
            operation = op & ~0x01
            if op == 0xE1:  # BPF_XCHG
                new = value & mask
            elif operation == 0x00:
                new = (old + value) & mask
            elif operation == 0x40:
                new = old | (value & mask)
            elif operation == 0x50:
                new = old & value
            else:  # 0xa0, BPF_XOR
                new = old ^ (value & mask)
            buf[offset : offset + size] = new.to_bytes(size, "little")
            return old

        def cmpxchg(pc: int, address: int, size: int, expected: int, value: int) -> int:
            found = space.writable(address, size)
            if found is None:
                raise self.access_error(pc, address, size, True, "atomic ")
            buf, offset = found
            mask = (1 << (size * 8)) - 1
            old = int.from_bytes(buf[offset : offset + size], "little")
            if old == expected & mask:
                buf[offset : offset + size] = (value & mask).to_bytes(size, "little")
            return old

        def deep(pc: int) -> None:
            raise self.error(pc, f"more than {MAX_CALL_FRAMES} nested calls (the kernel allows {MAX_CALL_FRAMES} frames)")

        def runaway(pc: int) -> None:
            raise self.error(pc, "a loop ran more than 10,000,000 instructions; the verifier would not have accepted it")

        def read_arg(pc: int, address: int, size: int, what: str) -> bytes:
            data = space.read(address, size)
            if data is None:
                raise self.access_error(pc, address, size, False, f"{what}: ")
            return data

        def map_arg(pc: int, address: int, helper: str) -> VmMap:
            found = self._map_at.get(address)
            if found is None:
                raise self.error(pc, f"{helper} takes a map in r1 (`r1 = map ll`); r1 is {address:#x}")
            return found

        def lookup(pc: int, r1: int, r2: int) -> int:
            target = map_arg(pc, r1, "bpf_map_lookup_elem")
            key = read_arg(pc, r2, target.key_size, f"bpf_map_lookup_elem reads its key from map {target.name!r}")
            try:
                return target.lookup_elem(key)
            except NotImplementedError as exc:
                raise self.error(pc, str(exc)) from None

        def update(pc: int, r1: int, r2: int, r3: int, r4: int) -> int:
            target = map_arg(pc, r1, "bpf_map_update_elem")
            key = read_arg(pc, r2, target.key_size, "bpf_map_update_elem reads its key")
            value = read_arg(pc, r3, target.value_size, "bpf_map_update_elem reads its value")
            try:
                return target.update_elem(key, value, r4)
            except NotImplementedError as exc:
                raise self.error(pc, str(exc)) from None

        def delete(pc: int, r1: int, r2: int) -> int:
            target = map_arg(pc, r1, "bpf_map_delete_elem")
            key = read_arg(pc, r2, target.key_size, "bpf_map_delete_elem reads its key")
            try:
                return target.delete_elem(key)
            except NotImplementedError as exc:
                raise self.error(pc, str(exc)) from None

        def tail_call(pc: int, r1: int, r2: int, r3: int, depth: int) -> int | None:
            target = map_arg(pc, r2, "bpf_tail_call")
            if not isinstance(target, ProgArray):
                raise self.error(pc, f"bpf_tail_call takes a prog array in r2; map {target.name!r} is {target.type_name} map")
            program = target.slots.get(r3 & M32)
            # kernel/bpf/core.c, ___bpf_prog_run JMP_TAIL_CALL: an index past the end,
            # too many tail calls, or an empty slot all fall through to the next instruction.
            if program is None or self._tail_calls[0] >= MAX_TAIL_CALL_CNT:
                return None
            self._tail_calls[0] += 1
            if program.machine is not self:
                return int(program.machine.call_from(self, program, depth))
            return int(program.call(r1, depth))

        def load_bytes(pc: int, r1: int, r2: int, r3: int, r4: int) -> int:
            # net/core/filter.c, bpf_flow_dissector_load_bytes: an offset above 0xffff,
            # no skb (a test run, eth_get_headlen), or bytes the skb does not hold:
            # the buffer is cleared and the helper returns -EFAULT.
            offset, length = r2 & M32, r4 & M32
            if r1 != CTX_ADDRESS:
                raise self.error(pc, f"bpf_skb_load_bytes takes the context in r1; r1 is {r1:#x}")
            found = space.writable(r3, length)
            if found is None:
                raise self.access_error(pc, r3, length, True, "bpf_skb_load_bytes writes its buffer: ")
            buf, at = found
            skb = self._skb
            if skb is not None and offset <= MAX_PACKET_OFF and offset + length <= len(skb):
                buf[at : at + length] = skb[offset : offset + length]
                return 0
            buf[at : at + length] = bytes(length)
            return -errno.EFAULT & M64

        start_ns = time.monotonic_ns()

        return {
            "L": space.loads,
            "W": space.stores,
            "E": (struct.error, IndexError),
            "U16": _U16.unpack_from,
            "U32": _U32.unpack_from,
            "U64": _U64.unpack_from,
            "S16": _S16.unpack_from,
            "S32": _S32.unpack_from,
            "P16": _U16.pack_into,
            "P32": _U32.pack_into,
            "P64": _U64.pack_into,
            "ldf": ldf,
            "stf": stf,
            "ldx": ldx,
            "stx": stx,
            "atomic": atomic,
            "cmpxchg": cmpxchg,
            "deep": deep,
            "runaway": runaway,
            "TC": tail_call,
            "C": self._count,
            "DE": self._data_end,
            "STK": self.stacks,
            "FP": self.frame_pointers,
            "Z": _STACK_ZERO,
            "sdiv64": sdiv64,
            "smod64": smod64,
            "sdiv32": sdiv32,
            "smod32": smod32,
            "bswap32": bswap32,
            "bswap64": bswap64,
            "H1": lookup,
            "H2": update,
            "H3": delete,
            "H5": lambda pc: time.monotonic_ns(),
            "H7": lambda pc: self.random.getrandbits(32),
            "H8": lambda pc: 0,  # one CPU
            "H26": load_bytes,
            "H42": lambda pc: 0,
            "H118": lambda pc: (time.monotonic_ns() - start_ns) // 4_000_000,  # HZ=250
            "H125": lambda pc: time.monotonic_ns(),
            "H160": lambda pc: time.monotonic_ns(),
        }

    # -- running ----------------------------------------------------------------------

    def call_from(self, caller: Machine, program: Entry, depth: int) -> int:
        """Run one of this machine's programs as a tail call of another machine's run.

        A prog array may hold a program loaded on its own (`vm.maps["jumps"][1]
        = pyfd.vm.load(...)`): it keeps its own maps and stack, and takes over
        the caller's packet, keys and tail-call count for the call (their
        addresses are the same in every machine).
        """
        self.space.loads[PACKET] = caller.space.loads[PACKET]
        self._data_end[0] = caller._data_end[0]
        self._skb = caller._skb
        self.keys[:] = caller.keys
        self._tail_calls[0] = caller._tail_calls[0]
        self._count[0] = 0
        try:
            return program.call(CTX_ADDRESS, depth)
        finally:
            caller.keys[:] = self.keys
            caller._tail_calls[0] = self._tail_calls[0]
            caller._count[0] += self._count[0]

    def execute(
        self,
        frame: bytes,
        flags: int = 0,
        *,
        nhoff: int = ETH_HLEN,
        n_proto: int | None = None,
        linear: int | None = None,
        skb: bool = False,
    ) -> tuple[int, bytes]:
        """Run the entry once; (r0 as the kernel reports it: its low 32 bits, the 56 bytes of keys).

        The defaults are BPF_PROG_TEST_RUN's: the whole frame linear, `nhoff`
        14, `n_proto` from the Ethernet header, no skb (bpf_skb_load_bytes
        fails). `linear` makes only that many bytes readable directly and,
        with `skb`, the rest reachable through bpf_skb_load_bytes, as on the
        receive path; `nhoff` and `n_proto` set other entry values (with
        `nhoff` 0 the frame starts at the network header, as
        skb_probe_transport_header hands it over).
        """
        length = len(frame) if linear is None else min(linear, len(frame))
        self.space.loads[PACKET] = frame if length == len(frame) else frame[:length]
        self._data_end[0] = PACKET_ADDRESS + length
        self._skb = frame if skb else None
        keys = self.keys
        keys[:] = _KEYS_ZERO
        _U16.pack_into(keys, 0, nhoff)
        _U16.pack_into(keys, 2, nhoff)
        if n_proto is None:
            keys[10:12] = frame[12:14]
        else:
            keys[10:12] = n_proto.to_bytes(2, "big")
        _U32.pack_into(keys, 48, flags)
        self._count[0] = 0
        self._tail_calls[0] = 0
        try:
            r0 = self.entry.call(CTX_ADDRESS, 0)
        finally:
            self.insns_executed = self._count[0]
        # net/core/flow_dissector.c, bpf_flow_dissect: clamp_t(u16, ...) of both offsets.
        got_nhoff = min(max(_U16.unpack_from(keys, 0)[0], nhoff), length)
        got_thoff = min(max(_U16.unpack_from(keys, 2)[0], got_nhoff), length)
        _U16.pack_into(keys, 0, got_nhoff)
        _U16.pack_into(keys, 2, got_thoff)
        return r0 & M32, bytes(keys)


def _with_initial(definition: MapDefinition, image: bytes) -> MapDefinition:
    return dataclasses.replace(definition, initial=image)
