"""Attaching a loaded flow dissector to a network namespace, detaching it, and asking what is attached.

A flow dissector hook belongs to a network namespace (kernel/bpf/net_namespace.c)
and holds at most one program. pyfd attaches with BPF_LINK_CREATE on the
namespace's fd (works from outside the namespace), and pins the link in bpffs
under one directory per namespace, ``/sys/fs/bpf/pyfd/netns-<inode>/link``, so
that the attachment outlives the process that made it. The program's maps are
pinned beside it, ``netns-<inode>/maps/<name>``: a pin keeps a map readable
after pyfd exits (`pyfd map`), and keeps a prog array's entries, which the
kernel clears once no fd or pin of it is left (kernel/bpf/arraymap.c,
prog_array_map_clear), so that tail calls keep working. Where the kernel has
no netns links (before Linux 5.8) it falls back to the legacy BPF_PROG_ATTACH,
which binds to the caller's own namespace: pyfd enters the target namespace
in a helper thread for that (setns(2) moves only the calling thread).

A program attached in the root (init) namespace overrides every other
namespace on the machine (net/core/flow_dissector.c runs init_net's program
first), so attaching there is refused unless asked for with ``force``.

A pin lasts as long as its bpffs instance does, and an instance lasts as long
as one mount of it does. A process in a mount namespace of its own (``ip netns
exec`` gives each command one, with a fresh /sys and no bpffs in it) may see
a bpffs that nothing else sees: a pin there vanishes with that namespace. So
pyfd pins only into a bpffs that PID 1's mount namespace also holds.

Messages speak of namespaces, programs and this module's parameters; the CLI
words its own advice (flags and commands) from the errors' ``problem``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar

from . import bpf
from .caps import FLOW_DISSECTOR_CAPABILITIES, Capability, missing_capabilities
from .errors import BpfError, MissingPrivilegeError

FLOW_DISSECTOR: Final = bpf.AttachType.BPF_FLOW_DISSECTOR

# `ip netns add NAME` bind-mounts the namespace at /run/netns/NAME (iproute2 ip/ipnetns.c).
NETNS_RUN_DIR: Final = "/run/netns"
# The calling thread's namespace (/proc/self is the thread group leader's).
CURRENT_NETNS: Final = "/proc/thread-self/ns/net"
BPFFS_MOUNT: Final = "/sys/fs/bpf"
PIN_ROOT: Final = f"{BPFFS_MOUNT}/pyfd"
PIN_NAME: Final = "link"
MAPS_DIR: Final = "maps"  # beside the link: netns-<inode>/maps/<map name>
MOUNT_BPFFS_COMMAND: Final = f"mount -t bpf bpf {BPFFS_MOUNT}"

# include/uapi/linux/sched.h
CLONE_NEWNET: Final = 0x40000000
# include/uapi/linux/nsfs.h: NS_GET_NSTYPE = _IO(0xb7, 0x3), returns the CLONE_NEW* type.
NS_GET_NSTYPE: Final = 0xB703
# include/uapi/linux/nsfs.h (Linux 6.18): the initial namespaces have fixed
# inode numbers; dynamically allocated ones start at 0xF0000000
# (PROC_DYNAMIC_FIRST), so this number never names any other namespace.
NET_NS_INIT_INO: Final = 0xEFFFFFF9

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int

_T = TypeVar("_T")


# --- errors ------------------------------------------------------------------------


class AttachError(BpfError):
    """Attaching, detaching or querying a flow dissector failed; the message says what to do."""

    def __init__(self, code: int, message: str, *, command: str = "", hint: str = "") -> None:
        super().__init__(code, f"{message}; {hint}" if hint else message, command=command)
        self.problem = message  # what went wrong, without advice
        self.hint = hint  # what to do, in this module's terms (parameters, not CLI flags)

    def with_hint(self, hint: str) -> str:
        """The message with other advice in place of the hint (the CLI's flags instead of parameters)."""
        return str(BpfError(self.errno or 0, f"{self.problem}; {hint}" if hint else self.problem, command=self.command))


class NamespaceNotFoundError(AttachError, FileNotFoundError):
    """The network namespace named by the user does not exist (or the path is not one)."""


class AlreadyAttachedError(AttachError, FileExistsError):
    """The namespace already has a flow dissector, or the root namespace's overrides it."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        command: str = "",
        hint: str = "",
        existing: tuple[AttachmentInfo, ...] = (),
        in_root: bool = False,
    ) -> None:
        super().__init__(code, message, command=command, hint=hint)
        self.existing = existing
        self.in_root = in_root  # the conflicting dissector is the root namespace's, not this one's


class NotAttachedError(AttachError):
    """Nothing is attached where a detach was asked for."""


class RootNamespaceError(AttachError):
    """Attaching in the root network namespace was refused (it overrides all others)."""


class BpffsError(AttachError):
    """No usable bpffs where pyfd pins its links: none mounted, or mounted read-only."""

    def __init__(self, code: int, message: str, *, command: str = "", hint: str = "", mount_point: str | None = None) -> None:
        super().__init__(code, message, command=command, hint=hint)
        self.mount_point = mount_point  # the bpffs mount in question, when there is one


class PrivateBpffsError(BpffsError):
    """The bpffs where the link would be pinned is private to this process's mount namespace: a pin would not last."""

    def __init__(self, code: int, message: str, *, hint: str = "", netns: Netns, mount_point: str | None = None) -> None:
        super().__init__(code, message, hint=hint, mount_point=mount_point)
        self.netns = netns  # the namespace that was to be attached to, for advice naming it


class MapNotPinnedError(AttachError):
    """No map of that name is pinned for the namespace; `names` lists those that are."""

    def __init__(self, code: int, message: str, *, names: tuple[str, ...] = (), netns: Netns | None = None, hint: str = "") -> None:
        super().__init__(code, message, hint=hint)
        self.names = names
        self.netns = netns


class AttachableProgram(Protocol):
    """What attaching needs of a loaded program: its fd, id and name (a LoadedProgram has them).

    A program with a `maps` mapping (a LoadedProgram's) gets its maps pinned beside the link.
    """

    @property
    def fd(self) -> int: ...  # noqa: D102
    @property
    def id(self) -> int: ...  # noqa: D102
    @property
    def name(self) -> str: ...  # noqa: D102


# --- network namespaces ---------------------------------------------------------------


@dataclass(frozen=True)
class Netns:
    """A network namespace: the path it was opened by, its identity, and how to call it."""

    path: str
    dev: int
    ino: int
    name: str | None = None  # its `ip netns` name, when it has one

    @property
    def label(self) -> str:
        """How messages name the namespace."""
        if self.path == CURRENT_NETNS:
            return f"the current network namespace (inode {self.ino})"
        if self.name is not None:
            return f"network namespace {self.name!r} (inode {self.ino})"
        return f"network namespace {self.path} (inode {self.ino})"

    @property
    def spec(self) -> str:
        """What `resolve_netns` takes to find this namespace again: its name, else its path ('' for the current one)."""
        if self.path == CURRENT_NETNS:
            return ""
        return self.name if self.name is not None else self.path


def netns_path(spec: str | None) -> str:
    """Return the path to open for a namespace NAME|PATH (None: the calling thread's namespace)."""
    if spec is None:
        return CURRENT_NETNS
    if "/" in spec:
        return spec
    if spec in ("", ".", ".."):
        raise NamespaceNotFoundError(
            errno.EINVAL, f"{spec!r} is not a network namespace name; give a name from `ip netns list` or a path"
        )
    return os.path.join(NETNS_RUN_DIR, spec)


def _not_found(spec: str | None, path: str) -> NamespaceNotFoundError:
    if spec is not None and "/" not in spec:
        return NamespaceNotFoundError(
            errno.ENOENT,
            f"network namespace {spec!r} not found: there is no {path}; list namespaces with "
            f"`ip netns list`, create one with `ip netns add {spec}`, or pass a path such as "
            "/proc/PID/ns/net",
        )
    return NamespaceNotFoundError(
        errno.ENOENT,
        f"network namespace not found: {path} does not exist (for a process, use /proc/PID/ns/net; "
        "for a named namespace, its name from `ip netns list`)",
    )


def open_netns(spec: str | None = None) -> tuple[int, Netns]:
    """Open a network namespace by name or path (None: the current one); return (fd, Netns)."""
    path = netns_path(spec)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _not_found(spec, path) from None
    except PermissionError as exc:
        raise MissingPrivilegeError(
            exc.errno or errno.EACCES,
            command="open",
            missing=missing_capabilities((Capability.CAP_SYS_ADMIN,)),
            needs=["CAP_SYS_ADMIN"],
            action=f"opening the network namespace {path}",
        ) from None
    except OSError as exc:
        raise NamespaceNotFoundError(
            exc.errno or errno.EINVAL, f"cannot open network namespace {path}: {exc.strerror}"
        ) from None
    try:
        try:
            kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
        except OSError:
            kind = -1
        if kind != CLONE_NEWNET:
            raise NamespaceNotFoundError(
                errno.EINVAL,
                f"{path} is not a network namespace (give a name from `ip netns list`, "
                "/run/netns/NAME or /proc/PID/ns/net)",
            )
        st = os.fstat(fd)
        name = spec if spec is not None and "/" not in spec else _name_of(st.st_ino)
        return fd, Netns(path=path, dev=st.st_dev, ino=st.st_ino, name=name)
    except BaseException:
        os.close(fd)
        raise


def resolve_netns(spec: str | None = None) -> Netns:
    """Return the identity of a network namespace given by name or path (None: the current one)."""
    fd, ns = open_netns(spec)
    os.close(fd)
    return ns


def named_netns() -> dict[int, str]:
    """Map the inode of every `ip netns` namespace to its name."""
    found: dict[int, str] = {}
    try:
        names = sorted(os.listdir(NETNS_RUN_DIR))
    except OSError:
        return found
    for name in names:
        try:
            found.setdefault(os.stat(os.path.join(NETNS_RUN_DIR, name)).st_ino, name)
        except OSError:
            continue
    return found


def _name_of(ino: int) -> str | None:
    return named_netns().get(ino)


def root_netns_path() -> str | None:
    """Return a path to the root (init) network namespace that this process may open, or None."""
    # PID 1's namespace defines "root". Where /proc/1/ns is closed to us (a
    # PID 1 that is not dumpable), kthreadd's works: kernel threads all live
    # in init_net.
    for path in (f"/proc/{pid}/ns/net" for pid in _system_pids()):
        try:
            os.stat(path)
        except OSError:
            continue
        return path
    return None


def init_net_has_fixed_inode(release: str | None = None) -> bool:
    """Tell whether this kernel (or a named release) gives init_net the fixed inode NET_NS_INIT_INO (Linux 6.18 on)."""
    found = re.match(r"(\d+)\.(\d+)", release if release is not None else os.uname().release)
    return found is not None and (int(found.group(1)), int(found.group(2))) >= (6, 18)


def is_root_netns(ns: Netns) -> bool | None:
    """Tell whether ns is the root network namespace (None: this process cannot tell)."""
    if ns.ino == NET_NS_INIT_INO:
        return True
    path = root_netns_path()
    if path is None:
        # A user granted CAP_BPF and CAP_NET_ADMIN (not root) may open
        # neither /proc/1/ns/net nor kthreadd's; where init_net's inode is
        # fixed, any other inode is not it.
        return False if init_net_has_fixed_inode() else None
    st = os.stat(path)
    return (st.st_dev, st.st_ino) == (ns.dev, ns.ino)


def netns_held_elsewhere(ns: Netns) -> bool | None:
    """Tell whether something besides this process keeps ns alive (None: cannot tell).

    A namespace lives while a process is in it, a file is bind-mounted on it
    (what `ip netns add` makes under /run/netns) or an fd holds it. A link
    does not hold it (kernel/bpf/net_namespace.c detaches links when the
    namespace goes), so a pinned link in a namespace that only this process
    holds is defunct once this process exits. Open fds of other processes
    are not looked at: False means "no process in it and no bind mount".
    """
    if ns.name is not None or ns.ino == NET_NS_INIT_INO:
        return True
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
            # An nsfs bind mount shows its namespace as the mount's root: "net:[INODE]".
            if any(line.split()[3:4] == [f"net:[{ns.ino}]"] for line in mountinfo):
                return True
    except OSError:
        return None
    unknown = False
    skip = {os.getpid()}
    if is_root_netns(ns) is False:
        skip.update(_system_pids())  # their namespace is the root one, which ns is not
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino == ns.ino:
                return True
        except FileNotFoundError:
            continue  # exited meanwhile
        except OSError:
            unknown = True
    return None if unknown else False


def run_in_netns(netns_fd: int, fn: Callable[[], _T]) -> _T:
    """Run fn in a helper thread that has entered the network namespace netns_fd; return its result."""
    expected = os.fstat(netns_fd).st_ino
    outcome: list[Any] = []

    def body() -> None:
        try:
            if _libc.setns(netns_fd, CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                if code == errno.EPERM:
                    raise MissingPrivilegeError(
                        code,
                        command="setns",
                        missing=missing_capabilities((Capability.CAP_SYS_ADMIN,)),
                        needs=["CAP_SYS_ADMIN"],
                        action="entering a network namespace",
                    )
                raise OSError(code, f"setns into network namespace inode {expected}: {os.strerror(code)}")
            # Never act in the wrong namespace: check where this thread is now.
            actual = os.stat(CURRENT_NETNS).st_ino
            if actual != expected:
                raise OSError(errno.EIO, f"setns left the thread in namespace {actual}, not {expected}")
            outcome.append((True, fn()))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append((False, exc))

    # A fresh thread per call: it dies with its namespace, so no thread of
    # this process is ever left behind in another namespace.
    thread = threading.Thread(target=body, name=f"pyfd-netns-{expected}")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    result: _T = value
    return result


# --- bpffs -----------------------------------------------------------------------------


def _mount_of(path: str) -> tuple[str, str] | None:
    """Return (mount point, filesystem type) of the mount that holds path."""
    path = os.path.realpath(path)
    best: tuple[str, str] | None = None
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                # The last matching line is the mount on top.
                if inside and (best is None or len(point) >= len(best[0])):
                    best = (point, fields[2])
    except OSError:
        return None
    return best


def _existing_ancestor(path: str) -> str:
    """The path itself if it exists, else its nearest existing parent directory."""
    existing = path
    while not os.path.exists(existing) and existing not in ("", "/"):
        existing = os.path.dirname(existing)
    return existing or "/"


def is_bpffs(path: str) -> bool:
    """Tell whether path lies inside a mounted bpffs."""
    found = _mount_of(_existing_ancestor(path))
    return found is not None and found[1] == "bpf"


def ensure_bpffs(pin_root: str = PIN_ROOT, *, mount: bool = True) -> bool:
    """Make sure pin_root lies in a bpffs; mount one at /sys/fs/bpf when allowed, else explain how.

    Return True when this call mounted it.
    """
    if is_bpffs(pin_root):
        return False
    standard = pin_root == BPFFS_MOUNT or pin_root.startswith(BPFFS_MOUNT + "/")
    reason = ""
    if mount and standard and os.path.isdir(BPFFS_MOUNT):
        # What bpftool does before pinning (mount_bpffs_for_pin), and what
        # systemd does at boot.
        if _libc.mount(b"bpf", BPFFS_MOUNT.encode(), b"bpf", 0, None) == 0 and is_bpffs(pin_root):
            return True
        code = ctypes.get_errno()
        reason = f" (pyfd tried to mount it and got {errno.errorcode.get(code, code)}: {os.strerror(code)})"
    where = BPFFS_MOUNT if standard else pin_root
    how = MOUNT_BPFFS_COMMAND if standard else f"mount -t bpf bpf {where}"
    raise BpffsError(
        errno.ENOENT,
        f"no BPF filesystem (bpffs) is mounted at {where}, so the link cannot be pinned to outlive "
        f"this process{reason}; mount it as root with `{how}`",
    )


def _bpffs_devices(pid: int) -> set[int] | None:
    """The device numbers of the bpffs mounts in a process's mount namespace (None: unreadable)."""
    try:
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
            lines = mountinfo.readlines()
    except OSError:
        return None
    found: set[int] = set()
    for line in lines:
        # proc(5): "ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER";
        # paths escape blanks as \040, so " - " only ever ends the optional fields.
        head, sep, tail = line.partition(" - ")
        fields, kind = head.split(), tail.split()[:1]
        if not sep or len(fields) < 5 or kind != ["bpf"]:
            continue
        major, _, minor = fields[2].partition(":")
        if major.isdigit() and minor.isdigit():
            found.add(os.makedev(int(major), int(minor)))
    return found


def _system_pids() -> list[int]:
    """Processes whose namespaces are the system's: PID 1, and kthreadd where it is PID 2."""
    pids = [1]
    try:
        with open("/proc/2/comm", encoding="ascii") as comm:
            if comm.read().strip() == "kthreadd":
                pids.append(2)
    except OSError:
        pass
    return pids


def bpffs_is_systemwide(path: str) -> bool | None:
    """Tell whether the bpffs holding path is also mounted in PID 1's mount namespace (None: cannot tell).

    A bpffs instance, and every pin in it, lives as long as one mount of it
    does (fs/bpf/inode.c: a fresh instance per mount, freed with its last
    mount); PID 1's mount namespace lasts as long as the system. An instance
    mounted only in a private mount namespace (as one mounted under `ip netns
    exec`) goes with that namespace. Instances are told apart by st_dev,
    which mountinfo lists for each mount.
    """
    dev = os.stat(_existing_ancestor(path)).st_dev
    for pid in _system_pids():
        devices = _bpffs_devices(pid)
        if devices is not None:
            return dev in devices
    return None


def _refuse_private_bpffs(ns: Netns, pin_root: str, mounted: bool) -> bool | None:
    """Refuse a bpffs only this mount namespace sees (unmounting it if pyfd mounted it); return bpffs_is_systemwide."""
    shared = bpffs_is_systemwide(pin_root)
    if shared is not False:
        return shared
    point = (_mount_of(_existing_ancestor(pin_root)) or (BPFFS_MOUNT, "bpf"))[0]
    if mounted:
        # Leave this mount namespace as it was; a failure leaves an empty bpffs, which is harmless.
        _libc.umount2(point.encode(), 0)
        what = f"without the system's BPF filesystem (bpffs) at {point}"
    else:
        what = f"whose BPF filesystem (bpffs) at {point} is not the system's (PID 1's mounts do not include it)"
    raise PrivateBpffsError(
        errno.ENOENT,
        f"cannot pin the link of {ns.label} so that it outlives this process: this process runs in a mount "
        f"namespace of its own (as `ip netns exec` gives each command, with a fresh /sys), {what}, and a pin "
        "there would vanish with that mount namespace when this process exits, detaching the link",
        hint=(
            "attach from a process in the system's mount namespace, naming the network namespace "
            f"(netns={ns.name or ns.path!r}), or attach without pinning (pin=False) for as long as this process lives"
        ),
        netns=ns,
        mount_point=point,
    )


def _refuse_read_only(pin_root: str) -> None:
    """Refuse a bpffs mounted read-only, naming it, before anything is attached."""
    existing = _existing_ancestor(pin_root)
    if not os.statvfs(existing).f_flag & os.ST_RDONLY:
        return
    point = (_mount_of(existing) or (existing, "bpf"))[0]
    raise BpffsError(
        errno.EROFS,
        f"the BPF filesystem (bpffs) at {point} is mounted read-only, so the link cannot be pinned under "
        f"{pin_root} to outlive this process",
        hint=f"remount it read-write as root (`mount -o remount,rw {point}`), or attach without pinning (pin=False)",
        mount_point=point,
    )


def _prepare_pin(ns: Netns, path: str, pin_root: str, mount_bpffs: bool) -> bool | None:
    """Check that a pin at path can be made and will last; return bpffs_is_systemwide (None: cannot tell)."""
    mounted = ensure_bpffs(pin_root, mount=mount_bpffs)
    _refuse_read_only(pin_root)  # (one pyfd just mounted is writable)
    shared = _refuse_private_bpffs(ns, pin_root, mounted)
    _clear_stale_pin(path, ns.ino)
    return shared


def _make_pin(link_fd: int, path: str) -> None:
    """Pin a link at path, creating its directory; an OSError names the path."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as exc:
        raise BpffsError(
            exc.errno or errno.EIO, f"cannot create the pin directory {os.path.dirname(path)}: {exc.strerror}"
        ) from None
    try:
        bpf.obj_pin(fd=link_fd, path=path)
    except BpfError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES):
            raise BpffsError(exc.errno, f"cannot pin the link at {path}: {os.strerror(exc.errno)}", command=exc.command) from None
        raise


def pin_dir(ns: Netns, pin_root: str = PIN_ROOT) -> str:
    """Return the bpffs directory where pyfd pins the link of a namespace."""
    return os.path.join(pin_root, f"netns-{ns.ino}")


def pin_path(ns: Netns, pin_root: str = PIN_ROOT) -> str:
    """Return the bpffs path of the pinned link of a namespace."""
    return os.path.join(pin_dir(ns, pin_root), PIN_NAME)


def _unpin(path: str) -> None:
    """Remove a pin and its per-namespace directory (if now empty); missing ones are fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass


def maps_dir(ns: Netns, pin_root: str = PIN_ROOT) -> str:
    """Return the bpffs directory where pyfd pins the maps of a namespace's dissector."""
    return os.path.join(pin_dir(ns, pin_root), MAPS_DIR)


def map_pin_name(name: str) -> str:
    """The file name a map is pinned under: its name with '.' as '_' (bpffs refuses dots, fs/bpf/inode.c
    bpf_lookup; libbpf's sanitize_pin_path does the same), so `.rodata` is pinned as `_rodata`."""
    return name.replace(".", "_")


def _pin_maps(program: AttachableProgram, directory: str) -> list[str]:
    """Pin every map of `program` under `directory`; return the pins made (none are left when one fails)."""
    maps = getattr(program, "maps", None) or {}
    if not maps:
        return []
    made: list[str] = []
    try:
        os.makedirs(directory, exist_ok=True)
        for name, each in maps.items():
            path = os.path.join(directory, map_pin_name(name))
            bpf.obj_pin(fd=each.fd, path=path)
            made.append(path)
    except OSError as exc:
        for path in made:
            _unlink(path)
        _rmdir(directory)
        if isinstance(exc, BpfError):
            if exc.errno in (errno.EROFS, errno.EACCES):
                raise BpffsError(exc.errno, f"cannot pin the maps under {directory}: {os.strerror(exc.errno)}", command=exc.command) from None
            raise
        raise BpffsError(exc.errno or errno.EIO, f"cannot create the map pin directory {directory}: {exc.strerror}") from None
    return made


def _unpin_maps(directory: str) -> None:
    """Remove the map pins under `directory` and the directory itself; missing ones are fine."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        _unlink(os.path.join(directory, entry))
    _rmdir(directory)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def pinned_maps(netns: str | None = None, *, pin_root: str = PIN_ROOT) -> dict[str, str]:
    """The maps pyfd pinned beside the dissector of a namespace (name or path; None: the current one): name -> pin path."""
    directory = maps_dir(resolve_netns(netns), pin_root)
    try:
        return {entry: os.path.join(directory, entry) for entry in sorted(os.listdir(directory))}
    except OSError:
        return {}


def open_pinned_map(name: str, netns: str | None = None, *, pin_root: str = PIN_ROOT) -> Any:
    """Open map `name` that `pyfd attach` pinned for a namespace's dissector; MapNotPinnedError when there is none.

    `name` is the map's name in the object (`.rodata`) or its pin's (`_rodata`).
    Returns a pyfd.runtime.maps.Map, which owns the fd (close it, or use it in a `with`).
    """
    from .maps import Map

    ns = resolve_netns(netns)
    directory = maps_dir(ns, pin_root)
    try:
        names = tuple(sorted(os.listdir(directory)))
    except FileNotFoundError:
        names = ()
    except PermissionError as exc:
        raise MissingPrivilegeError(
            exc.errno or errno.EACCES,
            command="open",
            missing=missing_capabilities((Capability.CAP_SYS_ADMIN,)),
            needs=["CAP_BPF"],
            action=f"reading the map pins in {directory}",
        ) from None
    if map_pin_name(name) not in names:
        if not names:
            raise MapNotPinnedError(
                errno.ENOENT,
                f"no maps are pinned for {ns.label} (nothing under {directory}): pyfd pins a dissector's maps "
                "when it attaches one that has maps",
                netns=ns,
            )
        raise MapNotPinnedError(
            errno.ENOENT,
            f"the dissector of {ns.label} has no map {name!r}; its maps: {', '.join(names)}",
            names=names,
            netns=ns,
        )
    path = os.path.join(directory, map_pin_name(name))
    try:
        return Map.open_pinned(path, name=name)
    except BpfError as exc:
        if exc.errno != errno.EACCES or isinstance(exc, MissingPrivilegeError):
            raise
        # A pin is a file: root's pins are mode 0600 (fs/bpf/inode.c), so another
        # user needs root's privileges to open it, not just CAP_BPF.
        raise MissingPrivilegeError(
            exc.errno,
            command=exc.command,
            missing=missing_capabilities((Capability.CAP_BPF, Capability.CAP_SYS_ADMIN)),
            needs=["CAP_BPF", "CAP_SYS_ADMIN"],
            action=f"opening map {name!r} pinned at {path} (a file of mode {os.stat(path).st_mode & 0o777:o} owned by uid {os.stat(path).st_uid})",
        ) from None


def _pinned_links(pin_root: str) -> dict[int, str]:
    """Map link id to pin path for every link pinned under pin_root."""
    found: dict[int, str] = {}
    try:
        entries = sorted(os.listdir(pin_root))
    except OSError:
        return found
    for entry in entries:
        path = os.path.join(pin_root, entry, PIN_NAME)
        try:
            fd = bpf.obj_get(path)
        except (BpfError, OSError):
            continue
        try:
            found[bpf.link_get_info(fd).id] = path
        except (BpfError, ValueError):
            continue
        finally:
            os.close(fd)
    return found


# --- what is attached --------------------------------------------------------------


class Method(str, Enum):
    """How a program is attached: a bpf_link, or the legacy BPF_PROG_ATTACH."""

    LINK = "link"
    LEGACY = "legacy"


def _boot_ns_to_datetime(boot_ns: int) -> datetime:
    """Turn a CLOCK_BOOTTIME timestamp (bpf_prog_info.load_time) into wall-clock time."""
    now_boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    return datetime.fromtimestamp(time.time() - (now_boot - boot_ns) / 1e9, tz=timezone.utc)


def stats_enabled() -> bool:
    """Tell whether sysctl kernel.bpf_stats_enabled is on (BPF_ENABLE_STATS fds do not show here)."""
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", encoding="ascii") as f:
            return f.read().strip() not in ("", "0")
    except OSError:
        return False


@dataclass(frozen=True)
class AttachedMap:
    """A map an attached program uses, as the kernel reports it, and where pyfd pinned it."""

    id: int
    name: str  # the pin's name (the object's) when pinned, else the kernel's (15 characters at most)
    type: int
    key_size: int
    value_size: int
    max_entries: int
    pin_path: str | None

    @property
    def type_name(self) -> str:
        """The map type as bpftool names it."""
        from .maps import type_name

        return type_name(self.type)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type_name,
            "key_size": self.key_size,
            "value_size": self.value_size,
            "max_entries": self.max_entries,
            "pin_path": self.pin_path,
        }


def _program_maps(prog_id: int, directory: str | None) -> tuple[AttachedMap, ...]:
    """The maps of a loaded program, named after pyfd's pins in `directory` where they are pinned there."""
    pinned: dict[int, str] = {}
    if directory is not None:
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            entries = []
        for entry in entries:
            try:
                fd = bpf.obj_get(os.path.join(directory, entry))
            except (BpfError, OSError):
                continue
            try:
                pinned.setdefault(bpf.map_get_info(fd).id, entry)
            except (BpfError, ValueError):
                continue
            finally:
                os.close(fd)
    try:
        fd = bpf.prog_get_fd_by_id(prog_id)
    except BpfError:
        return ()
    found = []
    try:
        for map_id in bpf.prog_map_ids(fd):
            try:
                map_fd = bpf.map_get_fd_by_id(map_id)
            except BpfError:
                continue
            try:
                info = bpf.map_get_info(map_fd)
            except (BpfError, ValueError):
                continue
            finally:
                os.close(map_fd)
            name = pinned.get(map_id)
            found.append(
                AttachedMap(
                    id=map_id,
                    name=name if name is not None else info.name,
                    type=info.type,
                    key_size=info.key_size,
                    value_size=info.value_size,
                    max_entries=info.max_entries,
                    pin_path=os.path.join(directory, name) if name is not None and directory is not None else None,
                )
            )
    except (BpfError, ValueError):
        pass
    finally:
        os.close(fd)
    return tuple(found)


@dataclass(frozen=True)
class AttachmentInfo:
    """One flow dissector attached to one network namespace, as the kernel reports it."""

    netns_ino: int  # 0 for a link whose namespace is gone (kept alive by its pin)
    netns_name: str | None
    is_root: bool | None
    prog_id: int
    prog_name: str
    prog_tag: str
    loaded_at: datetime | None
    method: Method
    link_id: int | None  # None for a legacy attachment
    pin_path: str | None  # where pyfd pinned the link, if it did
    pinned_at: datetime | None
    run_cnt: int
    run_time_ns: int
    maps: tuple[AttachedMap, ...] = ()  # the maps the program uses, with pyfd's pins

    @property
    def defunct(self) -> bool:
        """True for a pinned link whose namespace no longer exists."""
        return self.netns_ino == 0

    @property
    def since(self) -> datetime | None:
        """When it was attached, as far as known: the pin time, else the program's load time."""
        return self.pinned_at or self.loaded_at

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (times in ISO 8601, UTC)."""
        return {
            "netns_ino": self.netns_ino,
            "netns": self.netns_name,
            "root_netns": self.is_root,
            "prog_id": self.prog_id,
            "prog_name": self.prog_name,
            "prog_tag": self.prog_tag,
            "loaded_at": self.loaded_at.isoformat() if self.loaded_at else None,
            "method": self.method.value,
            "link_id": self.link_id,
            "pin_path": self.pin_path,
            "pinned_at": self.pinned_at.isoformat() if self.pinned_at else None,
            "since": self.since.isoformat() if self.since else None,
            "run_cnt": self.run_cnt,
            "run_time_ns": self.run_time_ns,
            "maps": [m.to_json() for m in self.maps],
        }


def _prog_details(prog_id: int) -> tuple[str, str, datetime | None, int, int]:
    """(name, tag, load time, run count, run time) of a program by id."""
    try:
        fd = bpf.prog_get_fd_by_id(prog_id)
    except BpfError:
        return "?", "", None, 0, 0
    try:
        info = bpf.obj_get_info_by_fd(fd)
    finally:
        os.close(fd)
    return info.name, info.tag, _boot_ns_to_datetime(info.load_time), info.run_cnt, info.run_time_ns


def _flow_dissector_links() -> list[bpf.LinkInfo]:
    """Every netns link of attach type BPF_FLOW_DISSECTOR in the kernel."""
    # kernel/bpf/syscall.c: BPF_LINK_GET_NEXT_ID and BPF_LINK_GET_FD_BY_ID
    # need CAP_SYS_ADMIN itself (CAP_BPF is not enough); say so before the
    # kernel's bare EPERM.
    _require_capabilities("listing the flow dissector links of network namespaces", (Capability.CAP_SYS_ADMIN,))
    found = []
    for link_id in bpf.link_ids():
        try:
            fd = bpf.link_get_fd_by_id(link_id)
        except BpfError as exc:
            # ENOENT: released since it was listed. EAGAIN: another process is
            # still creating it (kernel/bpf/syscall.c, bpf_link_by_id: an ID
            # not yet settled), as if listed a moment before it existed.
            if exc.errno in (errno.ENOENT, errno.EAGAIN):
                continue
            raise
        try:
            info = bpf.link_get_info(fd)
        finally:
            os.close(fd)
        if info.type == bpf.LinkType.NETNS and info.attach_type == FLOW_DISSECTOR:
            found.append(info)
    return found


def _pin_time(path: str | None) -> datetime | None:
    if path is None:
        return None
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, tz=timezone.utc)
    except OSError:
        return None


def _describe(
    *,
    netns_ino: int,
    prog_id: int,
    link: bpf.LinkInfo | None,
    pins: dict[int, str],
    names: dict[int, str],
    root_ino: int | None,
    pin_root: str = PIN_ROOT,
) -> AttachmentInfo:
    name, tag, loaded_at, run_cnt, run_time_ns = _prog_details(prog_id)
    pin = pins.get(link.id) if link is not None else None
    directory = os.path.join(os.path.dirname(pin), MAPS_DIR) if pin is not None else (
        os.path.join(pin_root, f"netns-{netns_ino}", MAPS_DIR) if netns_ino else None
    )
    is_root: bool | None
    if netns_ino == 0:
        is_root = False
    elif netns_ino == NET_NS_INIT_INO:
        is_root = True
    else:
        is_root = None if root_ino is None else netns_ino == root_ino
    return AttachmentInfo(
        netns_ino=netns_ino,
        netns_name=names.get(netns_ino),
        is_root=is_root,
        prog_id=prog_id,
        prog_name=name,
        prog_tag=tag,
        loaded_at=loaded_at,
        method=Method.LINK if link is not None else Method.LEGACY,
        link_id=link.id if link is not None else None,
        pin_path=pin,
        pinned_at=_pin_time(pin),
        run_cnt=run_cnt,
        run_time_ns=run_time_ns,
        maps=_program_maps(prog_id, directory),
    )


def _root_ino() -> int | None:
    path = root_netns_path()
    if path is None:
        return None
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _attached_in(netns_fd: int, ino: int, pin_root: str) -> list[AttachmentInfo]:
    """What is attached to one namespace: its link, or its legacy program."""
    query = bpf.prog_query(target_fd=netns_fd, attach_type=FLOW_DISSECTOR)
    if not query.prog_ids:
        return []
    links = {link.prog_id: link for link in _flow_dissector_links() if link.netns_ino == ino}
    pins = _pinned_links(pin_root)
    names = named_netns()
    root = _root_ino()
    return [
        _describe(netns_ino=ino, prog_id=prog_id, link=links.get(prog_id), pins=pins, names=names, root_ino=root, pin_root=pin_root)
        for prog_id in query.prog_ids
    ]


def query(netns: str | None = None, *, pin_root: str = PIN_ROOT) -> list[AttachmentInfo]:
    """Return what is attached to one network namespace (name or path; None: the current one)."""
    fd, ns = open_netns(netns)
    try:
        return _attached_in(fd, ns.ino, pin_root)
    finally:
        os.close(fd)


def query_all(*, pin_root: str = PIN_ROOT) -> list[AttachmentInfo]:
    """Return every flow dissector attachment this process can see, in any namespace."""
    pins = _pinned_links(pin_root)
    names = named_netns()
    root = _root_ino()
    found: list[AttachmentInfo] = []
    seen: set[tuple[int, int]] = set()
    # Links, wherever they are (also those of namespaces that are gone).
    for link in _flow_dissector_links():
        ino = link.netns_ino or 0
        found.append(
            _describe(netns_ino=ino, prog_id=link.prog_id, link=link, pins=pins, names=names, root_ino=root, pin_root=pin_root)
        )
        seen.add((ino, link.prog_id))
    # Legacy attachments have no id to list them by: ask the namespaces we
    # can name (the current one, the root one, and those of `ip netns`).
    paths = [CURRENT_NETNS]
    root_path = root_netns_path()
    if root_path is not None:
        paths.append(root_path)
    paths += [os.path.join(NETNS_RUN_DIR, name) for name in sorted(names.values())]
    asked: set[int] = set()
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            ino = os.fstat(fd).st_ino
            if ino in asked:
                continue
            asked.add(ino)
            for prog_id in bpf.prog_query(target_fd=fd, attach_type=FLOW_DISSECTOR).prog_ids:
                if (ino, prog_id) not in seen:
                    found.append(
                        _describe(
                            netns_ino=ino, prog_id=prog_id, link=None, pins=pins, names=names, root_ino=root, pin_root=pin_root
                        )
                    )
        finally:
            os.close(fd)
    return found


def _summary(info: AttachmentInfo) -> str:
    how = f"link {info.link_id}" if info.link_id is not None else "a legacy BPF_PROG_ATTACH"
    pinned = f", pinned at {info.pin_path}" if info.pin_path else ""
    return f"program {info.prog_id} {info.prog_name!r} through {how}{pinned}"


def _conflict(
    ns: Netns, existing: list[AttachmentInfo], root_existing: list[AttachmentInfo], code: int, command: str = ""
) -> AlreadyAttachedError:
    """The error for a namespace that already has a flow dissector (or is overridden by root's)."""
    if existing:
        what = "; ".join(_summary(info) for info in existing)
        return AlreadyAttachedError(
            code,
            f"{ns.label} already has a flow dissector: {what}; a namespace holds one at a time",
            hint="swap the program in place with replace=True, or detach it first (detach())",
            command=command,
            existing=tuple(existing),
        )
    if root_existing:
        what = "; ".join(_summary(info) for info in root_existing)
        return AlreadyAttachedError(
            code,
            f"the root network namespace has a flow dissector ({what}); it overrides every other "
            f"namespace, so the kernel refuses one in {ns.label}",
            hint="detach the root namespace's one first (detach() run in the root namespace)",
            command=command,
            existing=tuple(root_existing),
            in_root=True,
        )
    if code == errno.EEXIST:
        return AlreadyAttachedError(
            code,
            f"the kernel says a flow dissector is already attached that conflicts with {ns.label}: "
            "either in it, in the root namespace (which overrides all others), or, when attaching in "
            "the root namespace, in some other namespace",
            hint="query_all() lists them",
            command=command,
        )
    return AlreadyAttachedError(
        code,
        f"{ns.label} already has a flow dissector link",
        hint="see it with query(), and detach it with detach()",
        command=command,
    )


def _root_attachments(ns: Netns, pin_root: str) -> list[AttachmentInfo]:
    """What is attached in the root namespace, when ns is another one (else [])."""
    path = root_netns_path()
    if path is None or is_root_netns(ns):
        return []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        return _attached_in(fd, os.fstat(fd).st_ino, pin_root)
    finally:
        os.close(fd)


# --- attaching and detaching -----------------------------------------------------------


def _require_capabilities(action: str, needs: tuple[Capability, ...] = FLOW_DISSECTOR_CAPABILITIES) -> None:
    """Refuse early, in the user's terms, when this process lacks a capability it will need."""
    missing = missing_capabilities(needs)
    if missing:
        raise MissingPrivilegeError(
            errno.EPERM, command="", missing=missing, needs=[cap.name for cap in needs], action=action
        )


# bpf(2) answers for "this kernel has no flow dissector links": the command is
# unknown (before 5.7: EINVAL) or the attach type has no link (5.7: EINVAL).
_NO_LINKS: Final = frozenset({errno.EINVAL, errno.EOPNOTSUPP, bpf.ENOTSUPP})


@dataclass
class Attachment:
    """A flow dissector attached to a namespace by this process; a context manager that detaches."""

    netns: Netns
    prog_id: int
    prog_name: str
    method: Method
    link_id: int | None = None
    pin_path: str | None = None
    # Whether pin_path's bpffs is one PID 1's mount namespace holds too, so
    # the pin outlives this process (None: not pinned, or cannot tell).
    pin_systemwide: bool | None = None
    replaced: AttachmentInfo | None = None  # what attach(replace=True) swapped out (None: attached afresh)
    maps_path: str | None = None  # the directory of the program's map pins (None: none pinned)
    _link_fd: int | None = field(default=None, repr=False)
    _detached: bool = field(default=False, repr=False)

    @property
    def detached(self) -> bool:
        """True once detach() ran."""
        return self._detached

    def detach(self) -> None:
        """Detach from the namespace, unpin, and release the link; a second call does nothing."""
        if self._detached:
            return
        try:
            if self.method is Method.LINK:
                fd = self._link_fd
                if fd is None and self.link_id is not None:
                    try:
                        fd = bpf.link_get_fd_by_id(self.link_id)
                    except BpfError as exc:
                        if exc.errno != errno.ENOENT:  # ENOENT: released, so detached already
                            raise
                if fd is not None:
                    try:
                        bpf.link_detach(fd)
                    finally:
                        os.close(fd)
                        self._link_fd = None
            else:
                _legacy_detach(self.netns, self.prog_id)
        finally:
            if self.maps_path is not None:
                _unpin_maps(self.maps_path)
            if self.pin_path is not None:
                _unpin(self.pin_path)
            self._detached = True

    def close(self) -> None:
        """Release this process's hold: a pinned link or a legacy attachment stays, an unpinned link goes."""
        fd, self._link_fd = self._link_fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> Attachment:
        return self

    def __del__(self) -> None:
        # Safety net only, as for LoadedProgram: a forgotten link fd is
        # reported; closing it detaches an unpinned link.
        if getattr(self, "_link_fd", None) is not None:
            warnings.warn(
                f"attachment of {self.prog_name!r} to {self.netns.label} was never detached or closed",
                ResourceWarning,
                stacklevel=2,
            )
            try:
                self.close()
            except OSError:
                pass

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.detach()


def _legacy_detach(ns: Netns, prog_id: int) -> None:
    """Detach a legacy-attached program: BPF_PROG_DETACH needs its fd, from inside the namespace."""
    fd, current = open_netns(ns.path)
    try:
        if current.ino != ns.ino:
            raise NamespaceNotFoundError(errno.ESTALE, f"{ns.label} is gone ({ns.path} now names inode {current.ino})")
        prog_fd = bpf.prog_get_fd_by_id(prog_id)
        try:
            run_in_netns(
                fd, lambda: bpf.prog_detach(target_fd=0, attach_type=FLOW_DISSECTOR, attach_bpf_fd=prog_fd)
            )
        finally:
            os.close(prog_fd)
    finally:
        os.close(fd)


def _clear_stale_pin(path: str, ino: int) -> None:
    """Remove a pin left by a link whose namespace died (its inode may have been reused)."""
    try:
        fd = bpf.obj_get(path)
    except BpfError:
        return
    try:
        info = bpf.link_get_info(fd)
    finally:
        os.close(fd)
    if info.netns_ino != ino:
        os.unlink(path)
        _unpin_maps(os.path.join(os.path.dirname(path), MAPS_DIR))


def _refuse_root(ns: Netns, force: bool) -> None:
    """Refuse the root namespace (or one that may be it) unless forced."""
    root = is_root_netns(ns)
    if root is False or force:
        return
    why = (
        "it is the root (init) network namespace"
        if root
        else "pyfd cannot tell whether it is the root namespace (neither /proc/1/ns/net nor "
        "kthreadd's namespace can be read)"
    )
    raise RootNamespaceError(
        errno.EPERM,
        f"refusing to attach to {ns.label}: {why}, and a flow dissector there overrides the "
        "flow dissector of every other network namespace on this machine (containers' included)",
        hint="name another namespace (netns=NAME|PATH), or pass force=True if the whole machine is meant",
    )


def check_target(netns: str | None = None, *, force: bool = False) -> Netns:
    """Return the namespace attach() would use, or raise what it would (not found, no privilege, root refused)."""
    ns = resolve_netns(netns)
    _require_capabilities("attaching a flow dissector")
    _refuse_root(ns, force)
    return ns


def attach(
    program: AttachableProgram,
    netns: str | None = None,
    *,
    pin: bool = True,
    force: bool = False,
    replace: bool = False,
    method: Method | str = "auto",
    pin_root: str = PIN_ROOT,
    mount_bpffs: bool = True,
) -> Attachment:
    """Attach a loaded flow dissector to a network namespace (name or path; None: the current one).

    With pin (the default) the link is pinned under pin_root and outlives this
    process; without, it lasts until detach(), close() or this process's end.
    A pin is refused where it would not last: a bpffs that only this
    process's mount namespace has (as under `ip netns exec`). method "auto"
    uses a link where the kernel has them, else BPF_PROG_ATTACH. The root
    namespace is refused unless force: a program there overrides all.

    With replace, a dissector already attached to the namespace is swapped
    for this one in a single step (BPF_LINK_UPDATE on its link; a second
    BPF_PROG_ATTACH for a legacy one), so the namespace is never without
    one; the link keeps its id and pin. With nothing attached, replace
    attaches afresh (Attachment.replaced tells which happened).
    """
    if method not in ("auto", Method.LINK, Method.LEGACY):
        raise ValueError(f"method must be 'auto', 'link' or 'legacy', got {method!r}")
    fd, ns = open_netns(netns)
    try:
        _require_capabilities("attaching a flow dissector")
        _refuse_root(ns, force)
        existing = _attached_in(fd, ns.ino, pin_root)
        root_existing = [] if existing else _root_attachments(ns, pin_root)
        if root_existing or (existing and not replace):
            raise _conflict(ns, existing, root_existing, errno.EEXIST)
        path = pin_path(ns, pin_root) if pin else None
        systemwide = _prepare_pin(ns, path, pin_root, mount_bpffs) if path is not None else None
        if existing:
            return _replace(program, fd, ns, existing[0], path, systemwide)
        if method != Method.LEGACY:
            try:
                return _attach_link(program, fd, ns, path, pin_root, systemwide)
            except AlreadyAttachedError:
                raise
            except BpfError as exc:
                if method == Method.LINK or exc.errno not in _NO_LINKS or isinstance(exc, MissingPrivilegeError):
                    raise
                first = exc
                try:
                    return _attach_legacy(program, fd, ns, pin_root, pin)
                except BpfError as legacy:
                    if legacy.errno == errno.EINVAL:
                        raise first from None  # both refused: the link's reason is the real one
                    raise
        return _attach_legacy(program, fd, ns, pin_root, pin)
    finally:
        os.close(fd)


def _attach_link(
    program: AttachableProgram, netns_fd: int, ns: Netns, path: str | None, pin_root: str, systemwide: bool | None
) -> Attachment:
    try:
        link_fd = bpf.link_create(prog_fd=program.fd, target_fd=netns_fd, attach_type=FLOW_DISSECTOR)
    except BpfError as exc:
        if exc.errno in (errno.E2BIG, errno.EEXIST):
            existing = _attached_in(netns_fd, ns.ino, pin_root)
            root_existing = [] if existing else _root_attachments(ns, pin_root)
            raise _conflict(ns, existing, root_existing, exc.errno, exc.command) from None
        raise
    maps_path = os.path.join(os.path.dirname(path), MAPS_DIR) if path is not None else None
    try:
        link = bpf.link_get_info(link_fd)
        if path is not None and maps_path is not None:
            _unpin_maps(maps_path)  # left over from a dissector whose link went some other way
            pinned = _pin_maps(program, maps_path)
            try:
                _make_pin(link_fd, path)
            except BaseException:
                _unpin_maps(maps_path)
                raise
            if not pinned:
                maps_path = None
    except BaseException:
        try:
            bpf.link_detach(link_fd)
        finally:
            os.close(link_fd)
        raise
    return Attachment(
        netns=ns,
        prog_id=program.id,
        prog_name=program.name,
        method=Method.LINK,
        link_id=link.id,
        pin_path=path,
        pin_systemwide=systemwide if path is not None else None,
        maps_path=maps_path,
        _link_fd=link_fd,
    )


def _replace(
    program: AttachableProgram, netns_fd: int, ns: Netns, old: AttachmentInfo, path: str | None, systemwide: bool | None
) -> Attachment:
    """Swap the program of what is attached to ns for program, leaving no moment without a dissector."""
    if old.link_id is None:
        # kernel/bpf/net_namespace.c, netns_bpf_prog_attach(): with a legacy
        # program there, a second BPF_PROG_ATTACH swaps the pointer the
        # receive path reads, and refuses flags (so no BPF_F_REPLACE check).
        _require_capabilities(
            "replacing a flow dissector attached with BPF_PROG_ATTACH",
            (Capability.CAP_NET_ADMIN, Capability.CAP_SYS_ADMIN),
        )
        run_in_netns(
            netns_fd, lambda: bpf.prog_attach(target_fd=0, attach_bpf_fd=program.fd, attach_type=FLOW_DISSECTOR)
        )
        legacy_maps = _swap_map_pins(program, maps_dir(ns, os.path.dirname(os.path.dirname(path)))) if path is not None else None
        return Attachment(
            netns=ns, prog_id=program.id, prog_name=program.name, method=Method.LEGACY, replaced=old, maps_path=legacy_maps
        )
    try:
        link_fd = bpf.link_get_fd_by_id(old.link_id)
    except BpfError as exc:
        if exc.errno != errno.ENOENT:
            raise
        raise AttachError(
            errno.ENOENT,
            f"link {old.link_id} of {ns.label} went away while pyfd was replacing its program; nothing was replaced",
            hint="attach again",
            command=exc.command,
        ) from None
    new_pin = path if path is not None and old.pin_path != path else None
    try:
        # Pin first: a pin that fails leaves everything as it was, and one
        # added to the old link is harmless (the link stays the same).
        if new_pin is not None:
            _make_pin(link_fd, new_pin)
        try:
            old_fd = bpf.prog_get_fd_by_id(old.prog_id)
            try:
                # BPF_F_REPLACE: swap only if the link still runs the program
                # pyfd saw (bpf_netns_link_update_prog(): EPERM otherwise).
                bpf.link_update(link_fd=link_fd, new_prog_fd=program.fd, old_prog_fd=old_fd, flags=bpf.BPF_F_REPLACE)
            finally:
                os.close(old_fd)
        except BaseException as exc:
            if new_pin is not None:
                _unpin(new_pin)
            # ENOENT: the old program is gone; EPERM: another one replaced it;
            # ENOLINK: the link was detached or its namespace is going.
            raced = (errno.ENOENT, errno.EPERM, errno.ENOLINK)
            if isinstance(exc, BpfError) and not isinstance(exc, MissingPrivilegeError) and exc.errno in raced:
                raise AttachError(
                    exc.errno,
                    f"{_summary(old)} in {ns.label} changed while pyfd was replacing it; nothing was replaced",
                    hint="look again with query() and retry",
                    command=exc.command,
                ) from None
            raise
    except BaseException:
        os.close(link_fd)
        raise
    kept = new_pin or old.pin_path
    if kept is None:
        systemwide = None
    elif path is None:  # not asked to pin: the old link's own pyfd pin, wherever it is
        systemwide = bpffs_is_systemwide(kept)
    # The old program's map pins go, the new one's come: after the swap, so
    # that a failed swap leaves the old dissector with its maps.
    new_maps = _swap_map_pins(program, os.path.join(os.path.dirname(kept), MAPS_DIR)) if kept is not None else None
    return Attachment(
        netns=ns,
        prog_id=program.id,
        prog_name=program.name,
        method=Method.LINK,
        link_id=old.link_id,
        pin_path=kept,
        pin_systemwide=systemwide,
        replaced=old,
        maps_path=new_maps,
        _link_fd=link_fd,
    )


def _swap_map_pins(program: AttachableProgram, directory: str) -> str | None:
    """Replace the map pins under `directory` with those of `program`; return the directory, None when it has no maps."""
    _unpin_maps(directory)
    return directory if _pin_maps(program, directory) else None


def _attach_legacy(program: AttachableProgram, netns_fd: int, ns: Netns, pin_root: str, pin: bool = False) -> Attachment:
    # BPF_PROG_ATTACH ignores target_fd for this type and binds to the
    # caller's namespace (kernel/bpf/net_namespace.c, netns_bpf_prog_attach).
    _require_capabilities(
        "attaching a flow dissector with BPF_PROG_ATTACH in another namespace",
        (Capability.CAP_NET_ADMIN, Capability.CAP_SYS_ADMIN),
    )
    # A legacy attach silently replaces a legacy program already there; the
    # check in attach() refused that, and this one closes the race for links.
    try:
        run_in_netns(
            netns_fd, lambda: bpf.prog_attach(target_fd=0, attach_bpf_fd=program.fd, attach_type=FLOW_DISSECTOR)
        )
    except BpfError as exc:
        if exc.errno in (errno.E2BIG, errno.EEXIST):
            existing = _attached_in(netns_fd, ns.ino, pin_root)
            root_existing = [] if existing else _root_attachments(ns, pin_root)
            raise _conflict(ns, existing, root_existing, exc.errno, exc.command) from None
        raise
    # A legacy attachment needs no pin to last, but its maps do (a prog array
    # is cleared once no fd or pin holds it).
    legacy_maps = None
    if pin:
        try:
            legacy_maps = _swap_map_pins(program, maps_dir(ns, pin_root))
        except BaseException:
            _legacy_detach(ns, program.id)
            raise
    return Attachment(netns=ns, prog_id=program.id, prog_name=program.name, method=Method.LEGACY, maps_path=legacy_maps)


def attached(
    program: AttachableProgram,
    netns: str | None = None,
    *,
    pin: bool = False,
    force: bool = False,
    method: Method | str = "auto",
) -> Attachment:
    """Attach for the length of a `with` block (unpinned by default); detaches on exit, also on error."""
    return attach(program, netns, pin=pin, force=force, method=method)


def detach(netns: str | None = None, *, pin_root: str = PIN_ROOT) -> list[AttachmentInfo]:
    """Detach whatever flow dissector a namespace has (pyfd's or not), unpin pyfd's pin; return what went."""
    fd, ns = open_netns(netns)
    try:
        _require_capabilities("detaching a flow dissector", (Capability.CAP_NET_ADMIN,))
        existing = _attached_in(fd, ns.ino, pin_root)
        own_pin = pin_path(ns, pin_root)
        if not existing:
            stale = os.path.exists(own_pin)
            _unpin_maps(maps_dir(ns, pin_root))
            _unpin(own_pin)
            root_existing = _root_attachments(ns, pin_root)
            note = ""
            if root_existing:
                note = (
                    f"; the root namespace's flow dissector ({_summary(root_existing[0])}) applies to it, "
                    "and is detached by a detach run in the root namespace"
                )
            if stale:
                note += f"; removed the stale pin {own_pin}"
            raise NotAttachedError(errno.ENOENT, f"no flow dissector is attached to {ns.label}{note}")
        for info in existing:
            if info.link_id is not None:
                try:
                    link_fd = bpf.link_get_fd_by_id(info.link_id)
                except BpfError as exc:
                    if exc.errno != errno.ENOENT:  # released meanwhile: nothing to do
                        raise
                else:
                    try:
                        bpf.link_detach(link_fd)
                    finally:
                        os.close(link_fd)
                if info.pin_path is not None:
                    _unpin_maps(os.path.join(os.path.dirname(info.pin_path), MAPS_DIR))
                    _unpin(info.pin_path)
            else:
                _legacy_detach(ns, info.prog_id)
        _unpin_maps(maps_dir(ns, pin_root))
        _unpin(own_pin)
        return existing
    finally:
        os.close(fd)
