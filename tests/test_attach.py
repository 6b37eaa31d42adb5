"""Attaching dissectors to network namespaces: runtime API, CLI, and the kernel calling the program.

Every attachment happens in a namespace a test creates (`ip netns add
pyfd-test-<random>`) and removes, never in the root namespace: a flow
dissector there would override every namespace on the machine. A module-wide
guard checks that the root namespace's hook is the same after the tests as
before. Frames are injected through a tap device inside the test namespace,
built with scapy with explicit MAC addresses.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import importlib
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import console_script
from test_cli import run
from kernel import enforce_kernel, kernel_unavailable_reason, needs_kernel, requires_kernel  # noqa: F401
from pyfd.cli import EXIT_ERROR, EXIT_NO_KERNEL, EXIT_OK, pick
from pyfd.program import CompiledProgram
from pyfd.runtime import (
    AlreadyAttachedError,
    AttachError,
    BpfError,
    BpffsError,
    LoadedProgram,
    MissingPrivilegeError,
    NamespaceNotFoundError,
    NotAttachedError,
    RootNamespaceError,
    attach,
    bpf,
    detach,
    query,
    query_all,
    resolve_netns,
)
from pyfd.runtime.attach import (
    CURRENT_NETNS,
    NET_NS_INIT_INO,
    PIN_ROOT,
    Method,
    Netns,
    init_net_has_fixed_inode,
    is_root_netns,
    netns_held_elsewhere,
    netns_path,
    open_netns,
    root_netns_path,
    run_in_netns,
)
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

# The module, not the function `pyfd.runtime.attach` that shadows it as a package attribute.
attach_module = importlib.import_module("pyfd.runtime.attach")

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "ipv4_tcp.py"
FLOW_DISSECTOR = bpf.AttachType.BPF_FLOW_DISSECTOR
SRC_MAC = "02:00:00:00:00:01"


# --- fixtures and helpers -----------------------------------------------------------


def _tool(name: str) -> str:
    """Path of a command-line tool a kernel test needs (fail in CI, skip elsewhere, if missing)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        enforce_kernel(f"the `{name}` tool is not installed")
        raise AssertionError("unreachable")
    return path


def _root_hook() -> tuple[int, ...] | None:
    """Program ids attached to the root namespace's flow dissector hook (None: cannot ask)."""
    path = root_netns_path()
    if path is None or kernel_unavailable_reason() is not None:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        return bpf.prog_query(target_fd=fd, attach_type=FLOW_DISSECTOR).prog_ids
    finally:
        os.close(fd)


@pytest.fixture(scope="module", autouse=True)
def root_namespace_untouched() -> Iterator[None]:
    """Check that nothing in this module attached anything to the root namespace."""
    before = _root_hook()
    yield
    assert _root_hook() == before, "a test changed the root network namespace's flow dissector"


@pytest.fixture(scope="module")
def compiled() -> CompiledProgram:
    """samples/ipv4_tcp.py, compiled once."""
    return pick(SAMPLE, None).compile()


@pytest.fixture(scope="module")
def obj_file(compiled: CompiledProgram, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """samples/ipv4_tcp.py as an object file."""
    return compiled.write(tmp_path_factory.mktemp("attach") / "ipv4_tcp.o")


@pytest.fixture
def loaded(requires_kernel: None, compiled: CompiledProgram) -> Iterator[LoadedProgram]:
    """The sample, loaded for one test."""
    with compiled.load() as prog:
        yield prog


def _ino(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


def bpftool_links() -> list[dict[str, Any]]:
    """`bpftool -j link show`."""
    out = subprocess.run([_tool("bpftool"), "-j", "link", "show"], check=True, capture_output=True, text=True)
    links: list[dict[str, Any]] = json.loads(out.stdout or "[]")
    return links


def bpftool_netns_links(ino: int) -> list[dict[str, Any]]:
    """The flow dissector links bpftool lists for one namespace."""
    return [
        link
        for link in bpftool_links()
        if link.get("type") == "netns" and link.get("netns_ino") == ino and link.get("attach_type") == "flow_dissector"
    ]


def _boom(*args: object, **kwargs: object) -> None:
    raise AssertionError("a refused attach reached the kernel")


# --- netns names and the root namespace (no kernel needed) -----------------------------


def test_netns_spec_to_path() -> None:
    assert netns_path(None) == CURRENT_NETNS
    assert netns_path("blue") == "/run/netns/blue"
    assert netns_path("/proc/42/ns/net") == "/proc/42/ns/net"
    for bad in ("", ".", ".."):
        with pytest.raises(NamespaceNotFoundError):
            netns_path(bad)


def test_fixed_init_inode_is_root() -> None:
    # Linux 6.18 gives init_net inode 0xEFFFFFF9; dynamic inodes start at 0xF0000000.
    assert is_root_netns(Netns(path="/x", dev=0, ino=NET_NS_INIT_INO)) is True


def test_missing_namespace_without_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    absent = f"pyfd-test-absent-{uuid.uuid4().hex[:8]}"
    with pytest.raises(NamespaceNotFoundError, match=f"network namespace '{absent}' not found.*ip netns add") as info:
        resolve_netns(absent)
    assert info.value.errno == errno.ENOENT
    with pytest.raises(NamespaceNotFoundError, match="not found"):
        resolve_netns("/proc/999999999/ns/net")
    for command in ("attach", "detach", "show"):
        extra = [str(SAMPLE)] if command == "attach" else []
        status, out, err = run(capsys, command, *extra, "--netns", absent)
        assert status == EXIT_ERROR, (command, out, err)
        assert f"network namespace '{absent}' not found" in err and "Traceback" not in err


def test_not_a_namespace(tmp_path: Path) -> None:
    path = tmp_path / "plain-file"
    path.write_text("")
    with pytest.raises(NamespaceNotFoundError, match="is not a network namespace"):
        resolve_netns(str(path))


# --- runtime API -------------------------------------------------------------------------


@needs_kernel
def test_attach_query_detach(loaded: LoadedProgram, netns: str) -> None:
    ino = _ino(netns)
    attachment = attach(loaded, netns)
    attachment.close()  # pinned: stays attached without this process's fd
    assert attachment.method is Method.LINK and attachment.prog_id == loaded.id
    assert attachment.pin_path == f"{PIN_ROOT}/netns-{ino}/link" and os.path.exists(attachment.pin_path)
    assert [link["id"] for link in bpftool_netns_links(ino)] == [attachment.link_id]

    (info,) = query(netns)
    assert (info.prog_id, info.prog_name, info.link_id, info.pin_path) == (
        loaded.id,
        "ipv4_tcp",
        attachment.link_id,
        attachment.pin_path,
    )
    assert info.netns_ino == ino and info.netns_name == netns and info.is_root is False
    assert info.method is Method.LINK and info.pinned_at is not None and info.since == info.pinned_at
    assert json.loads(json.dumps(info.to_json()))["link_id"] == attachment.link_id
    assert any(other.link_id == attachment.link_id for other in query_all())

    gone = detach(netns)
    assert [g.link_id for g in gone] == [attachment.link_id]
    assert not os.path.exists(attachment.pin_path) and not os.path.exists(os.path.dirname(attachment.pin_path))
    assert bpftool_netns_links(ino) == [] and query(netns) == []
    assert not loaded.closed and loaded.info().id == loaded.id  # detaching leaves the program loaded
    with pytest.raises(NotAttachedError, match="no flow dissector is attached"):
        detach(netns)


@needs_kernel
def test_second_attach_is_already_attached(
    loaded: LoadedProgram, compiled: CompiledProgram, netns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with attach(loaded, netns, pin=False) as first, compiled.load() as other:
        with pytest.raises(AlreadyAttachedError, match="already has a flow dissector") as info:
            attach(other, netns)
        message = str(info.value)
        assert f"program {loaded.id} 'ipv4_tcp' through link {first.link_id}" in message
        assert "replace=True" in message and "detach()" in message and "--" not in message  # no CLI flags
        assert [e.link_id for e in info.value.existing] == [first.link_id]

        # The kernel's own refusals (a race with another process), when
        # pyfd's check does not see the existing attachment first.
        real = attach_module._attached_in
        calls: list[int] = []

        def blind_once(*args: Any) -> Any:
            calls.append(1)
            return [] if len(calls) == 1 else real(*args)

        monkeypatch.setattr(attach_module, "_attached_in", blind_once)
        with pytest.raises(AlreadyAttachedError, match="already has a flow dissector") as second_link:
            attach(other, netns, pin=False)
        assert second_link.value.errno == errno.E2BIG  # a second link in a namespace

        calls.clear()
        with pytest.raises(AlreadyAttachedError, match="already has a flow dissector") as legacy:
            attach(other, netns, method="legacy")
        assert legacy.value.errno == errno.EEXIST  # a legacy attach while a link exists
        monkeypatch.undo()
        assert [i.link_id for i in query(netns)] == [first.link_id]


@needs_kernel
def test_netns_by_name_and_by_proc_path(
    loaded: LoadedProgram, obj_file: Path, netns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A process living in the namespace gives it a /proc/PID/ns/net path.
    holder = subprocess.Popen([_tool("ip"), "netns", "exec", netns, "sleep", "30"])
    try:
        path = f"/proc/{holder.pid}/ns/net"
        deadline = time.monotonic() + 5
        while os.stat(path).st_ino != _ino(netns):  # not exec'd into the namespace yet
            assert time.monotonic() < deadline, "ip netns exec did not enter the namespace"
            time.sleep(0.01)
        ns = resolve_netns(path)
        assert ns.ino == _ino(netns) and ns.name == netns  # the name is found from the inode

        with attach(loaded, path, pin=False) as attachment:
            assert [i.link_id for i in query(netns)] == [attachment.link_id]
        assert query(path) == []

        status, out, err = run(capsys, "attach", obj_file, "--netns", path)
        assert status == EXIT_OK, err
        (info,) = query(netns)
        status, out, err = run(capsys, "show", "--netns", path)
        assert status == EXIT_OK and f"program {info.prog_id} ipv4_tcp" in out and f"link {info.link_id}" in out
        status, out, err = run(capsys, "detach", "--netns", path)
        assert status == EXIT_OK and f"detached ipv4_tcp (program {info.prog_id}" in out
        assert query(netns) == []
    finally:
        holder.kill()
        holder.wait()


@needs_kernel
def test_root_namespace_refused(
    loaded: LoadedProgram, netns: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = root_netns_path()
    if root is None:
        pytest.skip("this process cannot open the root network namespace")
    # Only the refusal is tested: were it to fail, nothing reaches the kernel.
    monkeypatch.setattr(bpf, "link_create", _boom)
    monkeypatch.setattr(bpf, "prog_attach", _boom)
    assert is_root_netns(resolve_netns(root)) is True
    assert is_root_netns(resolve_netns(netns)) is False
    targets = [root] + ([None] if is_root_netns(resolve_netns(None)) else [])
    for target in targets:
        with pytest.raises(RootNamespaceError, match="overrides the flow dissector of every other network namespace") as refused:
            attach(loaded, target)
        assert "force=True" in str(refused.value) and "--force" not in str(refused.value)
    argv: list[str | Path] = ["attach", SAMPLE, "--netns", root]
    for args in [argv] + ([argv[:2]] if None in targets else []):
        status, out, err = run(capsys, *args)
        assert status == EXIT_ERROR and "root (init) network namespace" in err and "--force" in err, err
        assert "force=True" not in err

    # A process that cannot identify the root namespace refuses every target...
    monkeypatch.setattr(attach_module, "root_netns_path", lambda: None)
    monkeypatch.setattr(attach_module, "init_net_has_fixed_inode", lambda: False)
    with pytest.raises(RootNamespaceError, match="cannot tell whether it is the root namespace"):
        attach(loaded, netns)
    # ...unless init_net's inode is fixed (Linux 6.18 on): then any other inode is not root.
    monkeypatch.setattr(attach_module, "init_net_has_fixed_inode", lambda: True)
    assert is_root_netns(resolve_netns(netns)) is False
    assert is_root_netns(Netns(path="/x", dev=0, ino=NET_NS_INIT_INO)) is True


def test_which_kernels_fix_init_nets_inode() -> None:
    assert init_net_has_fixed_inode("6.18.44-fc-v669") and init_net_has_fixed_inode("7.0.1")
    assert not init_net_has_fixed_inode("6.17.9") and not init_net_has_fixed_inode("5.15.0-91-generic")
    assert not init_net_has_fixed_inode("weird")


@needs_kernel
def test_context_manager_detaches_on_error(loaded: LoadedProgram, netns: str) -> None:
    with pytest.raises(RuntimeError, match="inside the block"):
        with loaded.attached(netns=netns) as attachment:
            assert attachment.pin_path is None  # a test's attachment dies with the process
            assert [i.link_id for i in query(netns)] == [attachment.link_id]
            raise RuntimeError("inside the block")
    assert attachment.detached and query(netns) == []
    assert attachment.link_id not in set(bpf.link_ids())


@needs_kernel
def test_legacy_attach_and_fallback(loaded: LoadedProgram, netns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    own = os.stat(CURRENT_NETNS).st_ino
    with attach(loaded, netns, method="legacy") as attachment:
        assert attachment.method is Method.LEGACY and attachment.link_id is None
        (info,) = query(netns)
        assert info.method is Method.LEGACY and info.link_id is None and info.prog_id == loaded.id
        assert os.stat(CURRENT_NETNS).st_ino == own  # the helper thread's setns stayed in that thread
    assert query(netns) == []

    # Where BPF_LINK_CREATE does not know the attach type (Linux < 5.8), "auto" falls back.
    def no_links(**kwargs: Any) -> int:
        raise BpfError(errno.EINVAL, "no netns links here", command="BPF_LINK_CREATE")

    monkeypatch.setattr(bpf, "link_create", no_links)
    attachment = attach(loaded, netns)
    assert attachment.method is Method.LEGACY and query(netns)[0].method is Method.LEGACY
    monkeypatch.undo()
    assert [info.prog_id for info in detach(netns)] == [loaded.id]
    assert query(netns) == []


@needs_kernel
def test_bpffs_not_mounted(loaded: LoadedProgram, netns: str, tmp_path: Path) -> None:
    with pytest.raises(BpffsError, match="no BPF filesystem.*mount -t bpf bpf") as info:
        attach(loaded, netns, pin_root=str(tmp_path / "pyfd"), mount_bpffs=False)
    assert "mount it as root" in str(info.value)
    assert query(netns) == []  # refused before attaching


@needs_kernel
def test_missing_capabilities(
    obj_file: Path, loaded: LoadedProgram, netns: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(attach_module, "missing_capabilities", lambda needs: ["CAP_NET_ADMIN"])
    with pytest.raises(MissingPrivilegeError, match="needs CAP_BPF and CAP_NET_ADMIN.*lacks CAP_NET_ADMIN"):
        attach(loaded, netns)
    status, out, err = run(capsys, "attach", obj_file, "--netns", netns)
    assert status == EXIT_NO_KERNEL and "CAP_BPF and CAP_NET_ADMIN" in err
    monkeypatch.undo()
    assert query(netns) == []


# --- the CLI ----------------------------------------------------------------------------


@needs_kernel
def test_cli_attach_show_detach(netns: str, capsys: pytest.CaptureFixture[str]) -> None:
    ino = _ino(netns)
    status, out, err = run(capsys, "attach", SAMPLE, "--netns", netns)
    assert status == EXIT_OK, err
    pin = f"{PIN_ROOT}/netns-{ino}/link"
    assert f"to network namespace '{netns}' (inode {ino}) through link" in out and pin in out
    assert f"pyfd detach --netns {netns}" in out
    (link,) = bpftool_netns_links(ino)  # the process's fd is gone; the pin holds the link

    status, out, err = run(capsys, "show", "--netns", netns)
    assert status == EXIT_OK
    assert f"network namespace '{netns}' (inode {ino})" in out and f"program {link['prog_id']} ipv4_tcp" in out
    assert f"link {link['id']}, pinned at {pin}" in out and "attached since" in out and "runs:" in out
    status, out, err = run(capsys, "show", "--json")
    assert status == EXIT_OK
    assert any(e["link_id"] == link["id"] and e["netns"] == netns for e in json.loads(out))
    status, out, err = run(capsys, "show")
    assert status == EXIT_OK and f"network namespace '{netns}'" in out

    status, out, err = run(capsys, "attach", SAMPLE, "--netns", netns)
    assert status == EXIT_ERROR and "already has a flow dissector" in err and f"pyfd detach --netns {netns}" in err
    assert f"pyfd attach {SAMPLE} --netns {netns} --replace" in err and "replace=True" not in err

    status, out, err = run(capsys, "detach", "--netns", netns)
    assert status == EXIT_OK and f"unpinned {pin}" in out
    assert bpftool_netns_links(ino) == [] and not os.path.exists(pin)
    status, out, err = run(capsys, "detach", "--netns", netns)
    assert status == EXIT_ERROR and "no flow dissector is attached" in err
    status, out, err = run(capsys, "show", "--netns", netns)
    assert status == EXIT_OK and "no flow dissector is attached" in out


@needs_kernel
def test_console_script_pin_outlives_process(obj_file: Path, netns: str, capsys: pytest.CaptureFixture[str]) -> None:
    pyfd = console_script()
    if pyfd is None:
        pytest.skip("the pyfd console script is not on PATH")
    ino = _ino(netns)
    done = subprocess.run([pyfd, "attach", str(obj_file), "--netns", netns], capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_OK, done.stderr
    # The process that attached has exited: the link lives on through its pin.
    (link,) = bpftool_netns_links(ino)
    assert os.path.exists(f"{PIN_ROOT}/netns-{ino}/link")
    shown = subprocess.run([pyfd, "show", "--netns", netns], capture_output=True, text=True, timeout=60)
    assert shown.returncode == EXIT_OK and f"link {link['id']}" in shown.stdout
    status, out, err = run(capsys, "detach", "--netns", netns)
    assert status == EXIT_OK and bpftool_netns_links(ino) == []


# --- the kernel calls the attached program ----------------------------------------------

TUNSETIFF = 0x400454CA  # _IOW('T', 202, int), include/uapi/linux/if_tun.h
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCGIFHWADDR = 0x8913, 0x8914, 0x8927
IFF_UP = 0x1


def _make_tap(name: str) -> tuple[int, str]:
    """In the calling thread's namespace: create a tap, bring it up; return its fd and MAC."""
    # No IPv6 on the new link: no neighbour discovery of its own while counting.
    for conf in ("all", "default"):
        Path(f"/proc/sys/net/ipv6/conf/{conf}/disable_ipv6").write_text("1")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            ifr = fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH22x", name.encode(), 0))
            flags = struct.unpack_from("16sH", ifr)[1]
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", name.encode(), flags | IFF_UP))
            hwaddr = fcntl.ioctl(sock, SIOCGIFHWADDR, struct.pack("16s24x", name.encode()))
    except BaseException:
        os.close(fd)
        raise
    return fd, ":".join(f"{b:02x}" for b in hwaddr[18:24])


def _runs_after(prog: LoadedProgram, tap: int, frames: list[bytes]) -> int:
    """Write frames into the tap and return how many more times the program ran."""
    before = prog.info().run_cnt
    for frame in frames:
        os.write(tap, frame)
    # The tap's receive path calls the dissector before write() returns;
    # wait briefly for anything the stack does later.
    time.sleep(0.05)
    return prog.info().run_cnt - before


@needs_kernel
def test_kernel_calls_attached_dissector(loaded: LoadedProgram, netns: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not os.path.exists("/dev/net/tun"):
        enforce_kernel("no /dev/net/tun")
    stats = bpf.enable_stats()
    ns_fd, _ = open_netns(netns)
    tap = -1
    try:
        tap, mac = run_in_netns(ns_fd, lambda: _make_tap("pyfdtap0"))
        frames = [
            bytes(Ether(dst=mac, src=SRC_MAC) / IP(src="10.99.0.1", dst="10.99.0.2") / TCP(sport=1234 + i, dport=80))
            for i in range(10)
        ] + [
            bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=SRC_MAC) / IP(src="10.99.0.1", dst="10.99.0.255") / UDP(sport=5, dport=7))
            for _ in range(10)
        ]
        with loaded.attached(netns=netns):
            runs = _runs_after(loaded, tap, frames)
            # Measured: one call per frame (the receive path, skb_probe_transport_header);
            # a tap with NAPI frags adds eth_get_headlen's. Only the change
            # around these frames counts.
            assert len(frames) <= runs <= 2 * len(frames), f"{runs} runs for {len(frames)} frames"
            info = loaded.info()
            assert info.run_time_ns > 0
            status, out, err = run(capsys, "show", "--netns", netns)
            assert status == EXIT_OK and f"runs: {info.run_cnt} (average" in out and "not pinned by pyfd" in out
        assert query(netns) == []
        assert _runs_after(loaded, tap, frames) == 0  # detached: the kernel no longer calls it
    finally:
        if tap >= 0:
            os.close(tap)
        os.close(ns_fd)
        os.close(stats)


# --- how long an attachment lasts (issue 10) --------------------------------------------

# The CLI as a separate process, from a directory that holds no `pyfd` package
# of its own (`-m` puts the working directory first on sys.path).
PYFD = [sys.executable, "-m", "pyfd.cli"]
NEUTRAL_CWD = "/"


def _pyfd(*argv: str | Path, prefix: tuple[str, ...] = (), **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run `pyfd ARGV...` as its own process (after a prefix such as `ip netns exec NS`)."""
    return subprocess.run(
        [*prefix, *PYFD, *map(str, argv)], capture_output=True, text=True, timeout=180, check=False, cwd=NEUTRAL_CWD, **kwargs
    )


def _private_mount_ns_shell(script: str) -> subprocess.CompletedProcess[str]:
    """Run a shell script in a private copy of this mount namespace; refuse to run it in ours."""
    host = os.readlink("/proc/self/ns/mnt")
    # The guard: the script's mounts and unmounts must never reach this
    # namespace (or the bpffs every other test uses).
    guarded = f'[ "$(readlink /proc/self/ns/mnt)" != "{host}" ] || exit 99; {script}'
    done = subprocess.run(
        [_tool("unshare"), "--mount", "--propagation", "private", "sh", "-c", guarded],
        capture_output=True,
        text=True,
        timeout=180, check=False,
        cwd=NEUTRAL_CWD,
    )
    assert done.returncode != 99, "unshare did not give the script a mount namespace of its own"
    return done


def _system_bpffs_intact() -> None:
    assert os.path.ismount("/sys/fs/bpf") and not os.statvfs("/sys/fs/bpf").f_flag & os.ST_RDONLY


@needs_kernel
def test_ip_netns_exec_refuses_a_pin_that_would_not_last(obj_file: Path, netns: str) -> None:
    # `ip netns exec` runs the command in a mount namespace of its own with a
    # fresh /sys (iproute2 ip/ipnetns.c): no bpffs at /sys/fs/bpf, and one
    # mounted there dies with the command, taking the pinned link along.
    ino = _ino(netns)
    done = _pyfd("attach", obj_file, prefix=(_tool("ip"), "netns", "exec", netns))
    assert done.returncode == EXIT_NO_KERNEL, (done.stdout, done.stderr)
    assert "mount namespace of its own" in done.stderr and "would vanish" in done.stderr
    assert f"`pyfd attach {obj_file} --netns {netns}`" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and query(netns) == [] and bpftool_netns_links(ino) == []

    # What the message advises: attach from outside, naming the namespace; it outlives the process.
    done = _pyfd("attach", obj_file, "--netns", netns)
    assert done.returncode == EXIT_OK, done.stderr
    assert "it stays attached after pyfd exits" in done.stdout
    (link,) = bpftool_netns_links(ino)
    assert [info.link_id for info in query(netns)] == [link["id"]]


@needs_kernel
def test_a_private_mount_namespace_with_the_systems_bpffs_may_pin(obj_file: Path, netns: str) -> None:
    # `unshare -m` copies the mounts: /sys/fs/bpf there is the system's bpffs
    # instance, so a pin lasts although the mount namespace is not PID 1's.
    script = f"{shlex.join([*PYFD, 'attach', str(obj_file), '--netns', netns])}"
    done = _private_mount_ns_shell(script)
    assert done.returncode == EXIT_OK, done.stderr
    assert "it stays attached after pyfd exits" in done.stdout
    assert len(bpftool_netns_links(_ino(netns))) == 1  # its mount namespace is gone; the link is not
    assert os.path.exists(f"{PIN_ROOT}/netns-{_ino(netns)}/link")


@needs_kernel
def test_a_bpffs_pyfd_would_mount_privately_is_refused_and_unmounted(obj_file: Path, netns: str) -> None:
    attach_cmd = shlex.join([*PYFD, "attach", str(obj_file), "--netns", netns])
    script = f'umount /sys/fs/bpf && {attach_cmd}; echo "status=$?"; echo "bpffs mounts: $(grep -c " bpf " /proc/self/mounts)"'
    done = _private_mount_ns_shell(script)
    _system_bpffs_intact()
    assert f"status={EXIT_NO_KERNEL}" in done.stdout, (done.stdout, done.stderr)
    assert "without the system's BPF filesystem (bpffs) at /sys/fs/bpf" in done.stderr
    assert "bpffs mounts: 0" in done.stdout  # pyfd took away the bpffs it had mounted
    assert query(netns) == []


@needs_kernel
def test_read_only_bpffs_is_named(loaded: LoadedProgram, obj_file: Path, netns: str, tmp_path: Path) -> None:
    ro = tmp_path / "ro-bpffs"
    ro.mkdir()
    subprocess.run(["mount", "-t", "bpf", "-o", "ro", "bpf", str(ro)], check=True)
    try:
        with pytest.raises(BpffsError, match=rf"the BPF filesystem \(bpffs\) at {ro} is mounted read-only") as info:
            attach(loaded, netns, pin_root=str(ro / "pyfd"))
        assert info.value.errno == errno.EROFS and "pin=False" in str(info.value)
        assert query(netns) == []  # refused before attaching
    finally:
        subprocess.run(["umount", str(ro)], check=True)

    # The system's bpffs, read-only in this mount (as a container's /sys often is).
    attach_cmd = shlex.join([*PYFD, "attach", str(obj_file), "--netns", netns])
    done = _private_mount_ns_shell(f"mount -o remount,bind,ro /sys/fs/bpf && {attach_cmd}")
    _system_bpffs_intact()
    assert done.returncode == EXIT_NO_KERNEL, (done.stdout, done.stderr)
    assert "pyfd: error: the BPF filesystem (bpffs) at /sys/fs/bpf is mounted read-only" in done.stderr
    assert "mount -o remount,rw /sys/fs/bpf" in done.stderr and "internal error" not in done.stderr
    assert query(netns) == []


@needs_kernel
def test_a_namespace_nothing_else_holds_is_not_promised_to_last(obj_file: Path) -> None:
    # `unshare --net pyfd attach`: the namespace dies with pyfd, and the
    # link with it (a link does not hold its namespace).
    done = subprocess.run(
        [_tool("unshare"), "--net", *PYFD, "attach", str(obj_file)], capture_output=True, text=True, timeout=180, check=False, cwd=NEUTRAL_CWD
    )
    found = re.search(r"current network namespace \(inode (\d+)\)", done.stdout)
    ino = int(found.group(1)) if found else 0
    try:
        assert done.returncode == EXIT_OK and found, (done.stdout, done.stderr)
        assert "stays attached after pyfd exits" not in done.stdout
        assert "warning: nothing else keeps the current network namespace" in done.stderr
        assert "goes away when pyfd exits" in done.stderr
        deadline = time.monotonic() + 10  # namespaces are torn down by a kernel worker
        while bpftool_netns_links(ino):
            assert time.monotonic() < deadline, "the namespace outlived pyfd: the warning was wrong"
            time.sleep(0.05)
    finally:
        shutil.rmtree(f"{PIN_ROOT}/netns-{ino}", ignore_errors=True)


@needs_kernel
def test_netns_held_elsewhere(tmp_path: Path) -> None:
    assert netns_held_elsewhere(Netns(path="/run/netns/x", dev=0, ino=1, name="x")) is True  # `ip netns` keeps it
    holder = subprocess.Popen([_tool("unshare"), "--net", "sleep", "60"])
    bind = tmp_path / "netns-bind"
    bind.touch()
    try:
        path = f"/proc/{holder.pid}/ns/net"
        deadline = time.monotonic() + 5
        while os.stat(path).st_ino == os.stat(CURRENT_NETNS).st_ino:  # not unshared yet
            assert time.monotonic() < deadline, "unshare did not make a namespace"
            time.sleep(0.01)
        ns = resolve_netns(path)
        assert ns.name is None and netns_held_elsewhere(ns) is True  # a process is in it
        subprocess.run(["mount", "--bind", path, str(bind)], check=True)
        holder.kill()
        holder.wait()
        assert netns_held_elsewhere(ns) is True  # only the bind mount holds it now
        subprocess.run(["umount", str(bind)], check=True)
        assert netns_held_elsewhere(ns) is False
    finally:
        holder.kill()
        holder.wait()
        subprocess.run(["umount", str(bind)], check=False, capture_output=True)


# --- exit status when the reader goes away -------------------------------------------


@needs_kernel
@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_closed_stdout_leaves_the_exit_status_to_the_action(obj_file: Path, netns: str, unbuffered: str) -> None:
    # `pyfd attach ... | true`: the reader is gone before pyfd writes a byte.
    env = dict(os.environ, PYTHONUNBUFFERED=unbuffered)
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [*PYFD, "attach", str(obj_file), "--netns", netns],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=180, check=False,
            cwd=NEUTRAL_CWD,
        )
        assert done.returncode == EXIT_OK and done.stderr == "", done.stderr
        assert len(query(netns)) == 1  # it did attach
        # A second attach fails, and says so in its status, with stderr gone too.
        again = subprocess.run(
            [*PYFD, "attach", str(obj_file), "--netns", netns], stdout=write, stderr=write, env=env, timeout=180, check=False, cwd=NEUTRAL_CWD
        )
        assert again.returncode == EXIT_ERROR
        gone = subprocess.run(
            [*PYFD, "detach", "--netns", netns], stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=180, check=False, cwd=NEUTRAL_CWD
        )
        assert gone.returncode == EXIT_OK and gone.stderr == "", gone.stderr
        assert query(netns) == []
    finally:
        os.close(write)


# --- missing privileges, as a user who is not root --------------------------------------

NOBODY = ("--reuid=65534", "--regid=65534", "--clear-groups")


@pytest.fixture(scope="module")
def nobody_pyfd() -> Iterator[tuple[list[str], Path]]:
    """(command prefix running pyfd as the user nobody, a directory nobody can read); pyfd installed from this tree."""
    if os.geteuid() != 0:
        pytest.skip("switching to the user nobody with setpriv needs root")
    setpriv = _tool("setpriv")
    # Root's own Python may live where nobody cannot read it (/root): a venv
    # of the system's Python, with pyfd installed (not linked) into it.
    python = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), None)
    ok = python is not None and subprocess.run([python, "-c", "import sys, venv; assert sys.version_info >= (3, 11)"], check=False).returncode == 0
    if not ok:
        enforce_kernel("no system Python 3.11+ that the user nobody can run")
    assert python is not None
    base = Path(tempfile.mkdtemp(prefix="pyfd-nobody-"))
    try:
        source = base / "src"
        junk = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "*.o")
        shutil.copytree(Path(__file__).resolve().parent.parent, source, ignore=junk)
        subprocess.run([python, "-m", "venv", str(base / "venv")], check=True, capture_output=True)
        subprocess.run([str(base / "venv/bin/pip"), "install", "-q", str(source)], check=True, capture_output=True, timeout=600)
        for path in [base, *base.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o555 if path.is_dir() else path.stat().st_mode | 0o444)
        yield [setpriv, *NOBODY, str(base / "venv/bin/python"), "-m", "pyfd.cli"], base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@needs_kernel
def test_non_root_is_told_which_capabilities_are_missing(
    nobody_pyfd: tuple[list[str], Path], obj_file: Path, netns: str
) -> None:
    command, readable = nobody_pyfd
    obj = readable / "ipv4_tcp.o"
    shutil.copy(obj_file, obj)
    obj.chmod(0o444)
    cases = [
        (["attach", str(obj), "--netns", netns], "attaching a flow dissector needs CAP_BPF and CAP_NET_ADMIN"),
        (["attach", str(obj)], "attaching a flow dissector needs CAP_BPF and CAP_NET_ADMIN"),
        (["attach", str(obj), "--netns", netns, "--replace"], "needs CAP_BPF and CAP_NET_ADMIN"),
        (["detach", "--netns", netns], "detaching a flow dissector needs CAP_NET_ADMIN"),
        (["show", "--netns", netns], "needs CAP_NET_ADMIN"),
        # BPF_LINK_GET_NEXT_ID asks for CAP_SYS_ADMIN itself (kernel/bpf/syscall.c).
        (["show"], "listing the flow dissector links of network namespaces needs CAP_SYS_ADMIN"),
    ]
    for argv, needs in cases:
        done = subprocess.run([*command, *argv], capture_output=True, text=True, timeout=180, check=False, cwd=str(readable))
        assert done.returncode == EXIT_NO_KERNEL, (argv, done.stderr)
        assert needs in done.stderr and "this process lacks" in done.stderr, (argv, done.stderr)
        assert "cannot tell whether" not in done.stderr and "Traceback" not in done.stderr
    assert query(netns) == []

    # Granted the capabilities (CAP_PERFMON too: without it the verifier
    # refuses packet-pointer arithmetic for a user other than root), nobody
    # may attach, and gets as far as the pin: /sys/fs/bpf/pyfd is root's.
    caps = "+bpf,+net_admin,+perfmon"
    granted = [command[0], f"--inh-caps={caps}", f"--ambient-caps={caps}", *command[1:]]
    done = subprocess.run([*granted, "attach", str(obj), "--netns", netns], capture_output=True, text=True, timeout=180, check=False, cwd=str(readable))
    if init_net_has_fixed_inode():  # nobody can read PID 1's and kthreadd's namespaces
        assert done.returncode == EXIT_NO_KERNEL, done.stderr
        assert f"cannot create the pin directory {PIN_ROOT}/netns-{_ino(netns)}: Permission denied" in done.stderr
    else:
        assert done.returncode == EXIT_ERROR and "cannot tell whether it is the root namespace" in done.stderr
    assert query(netns) == []  # the link went when its pin could not be made


# --- replacing the program of an attached dissector (issue 10) -----------------------------


def _link_prog_id(pin: str) -> int:
    """The program the link pinned at pin runs, as the kernel reports it."""
    fd = bpf.obj_get(pin)
    try:
        return bpf.link_get_info(fd).prog_id
    finally:
        os.close(fd)


@needs_kernel
def test_replace_swaps_the_program_of_the_link(loaded: LoadedProgram, compiled: CompiledProgram, netns: str) -> None:
    if not os.path.exists("/dev/net/tun"):
        enforce_kernel("no /dev/net/tun")
    ino = _ino(netns)
    first = attach(loaded, netns)
    first.close()
    assert first.replaced is None and first.pin_path is not None
    stats = bpf.enable_stats()
    ns_fd, _ = open_netns(netns)
    tap = -1
    try:
        with compiled.load() as second:
            swapped = attach(second, netns, replace=True)
            swapped.close()
            assert second.id != loaded.id
            assert (swapped.link_id, swapped.pin_path, swapped.prog_id) == (first.link_id, first.pin_path, second.id)
            assert swapped.replaced is not None and swapped.replaced.prog_id == loaded.id
            assert _link_prog_id(first.pin_path) == second.id  # the kernel's link info
            (link,) = bpftool_netns_links(ino)
            assert (link["id"], link["prog_id"]) == (first.link_id, second.id)

            # And the kernel calls the new program, not the old one.
            tap, mac = run_in_netns(ns_fd, lambda: _make_tap("pyfdtap1"))
            frames = [
                bytes(Ether(dst=mac, src=SRC_MAC) / IP(src="10.99.0.1", dst="10.99.0.2") / TCP(sport=2000 + i, dport=80))
                for i in range(10)
            ]
            old_before = loaded.info().run_cnt
            assert _runs_after(second, tap, frames) >= len(frames)
            assert loaded.info().run_cnt == old_before
    finally:
        if tap >= 0:
            os.close(tap)
        os.close(ns_fd)
        os.close(stats)
    # The program went with the process's fd; the pinned link keeps running it.
    (info,) = query(netns)
    assert (info.link_id, info.prog_name, info.pin_path) == (first.link_id, "ipv4_tcp", first.pin_path)


@needs_kernel
def test_replace_leaves_no_moment_without_a_dissector(loaded: LoadedProgram, compiled: CompiledProgram, netns: str) -> None:
    ns_fd, _ = open_netns(netns)
    seen: list[tuple[int, ...]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(bpf.prog_query(target_fd=ns_fd, attach_type=FLOW_DISSECTOR).prog_ids)

    try:
        with attach(loaded, netns, pin=False) as first, compiled.load() as second:
            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                # At least 20 swaps, and on until the watcher has looked more than
                # 20 times (a loaded machine can starve its thread for a while).
                i = 0
                while (i < 20 or len(seen) <= 20) and i < 20_000:
                    swapped = attach(second if i % 2 == 0 else loaded, netns, pin=False, replace=True)
                    assert swapped.link_id == first.link_id
                    swapped.close()  # `first` still holds the link
                    i += 1
                    time.sleep(0)  # let the watcher run between swaps
            finally:
                stop.set()
                watcher.join()
            assert len(seen) > 20 and all(len(ids) == 1 for ids in seen), sorted(set(seen))
            assert {ids[0] for ids in seen} <= {loaded.id, second.id}
    finally:
        os.close(ns_fd)


@needs_kernel
def test_replace_with_nothing_attached_attaches_afresh(loaded: LoadedProgram, netns: str) -> None:
    with attach(loaded, netns, pin=False, replace=True) as attachment:
        assert attachment.replaced is None and attachment.method is Method.LINK
        assert [i.link_id for i in query(netns)] == [attachment.link_id]
    assert query(netns) == []


@needs_kernel
def test_replace_a_legacy_attachment(loaded: LoadedProgram, compiled: CompiledProgram, netns: str) -> None:
    attach(loaded, netns, method="legacy")
    with compiled.load() as second:
        swapped = attach(second, netns, replace=True)
        assert swapped.method is Method.LEGACY and swapped.replaced is not None
        assert swapped.replaced.prog_id == loaded.id
        (info,) = query(netns)
        assert (info.method, info.prog_id) == (Method.LEGACY, second.id)
        detach(netns)


@needs_kernel
def test_replace_refuses_when_the_link_changed_meanwhile(
    loaded: LoadedProgram, compiled: CompiledProgram, netns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What pyfd saw is stale: it believes the link runs `other`, which it never did.
    with attach(loaded, netns, pin=False) as first, compiled.load() as other, compiled.load() as new:
        (seen,) = query(netns)
        stale = dataclasses.replace(seen, prog_id=other.id)
        monkeypatch.setattr(attach_module, "_attached_in", lambda *args: [stale])
        with pytest.raises(AttachError, match="changed while pyfd was replacing it; nothing was replaced") as info:
            attach(new, netns, pin=False, replace=True)
        assert info.value.errno == errno.EPERM  # BPF_F_REPLACE: the kernel compared
        monkeypatch.undo()
        assert [(i.link_id, i.prog_id) for i in query(netns)] == [(first.link_id, loaded.id)]


@needs_kernel
def test_cli_attach_replace(obj_file: Path, netns: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "attach", obj_file, "--netns", netns, "--replace")
    assert status == EXIT_OK, err
    assert "(nothing was attached, so there was nothing to replace)" in out
    (old,) = query(netns)
    status, out, err = run(capsys, "attach", SAMPLE, "--netns", netns, "--replace")
    assert status == EXIT_OK, err
    (new,) = query(netns)
    assert new.link_id == old.link_id and new.prog_id != old.prog_id and new.pin_path == old.pin_path
    assert f"replaced ipv4_tcp (program {old.prog_id}) with ipv4_tcp (program {new.prog_id}) in link {old.link_id}" in out
    assert "in one step" in out and "it stays attached after pyfd exits" in out
    status, out, err = run(capsys, "attach", "--help")
    assert "--replace" in out and "BPF_LINK_UPDATE" in out


@needs_kernel
def test_listing_skips_a_link_another_process_is_still_creating(monkeypatch: pytest.MonkeyPatch) -> None:
    # kernel/bpf/syscall.c, bpf_link_by_id: a link whose ID is allocated but
    # not yet settled answers EAGAIN. Another process attaching anything at
    # that moment must not make pyfd's listing fail (seen in the full suite,
    # with other tests creating links in parallel). The race cannot be made
    # to happen on demand, so the kernel's answer is simulated.
    attach_mod = importlib.import_module("pyfd.runtime.attach")
    bpf_mod = importlib.import_module("pyfd.runtime.bpf")
    from pyfd.runtime.errors import BpfError

    real_ids, real_open = bpf_mod.link_ids, bpf_mod.link_get_fd_by_id
    unsettled = 0xFFFFFFF0

    def ids() -> Iterator[int]:
        yield unsettled
        yield from real_ids()

    def open_link(link_id: int) -> int:
        if link_id == unsettled:
            raise BpfError(errno.EAGAIN, f"opening link id {link_id} failed", command="BPF_LINK_GET_FD_BY_ID")
        return int(real_open(link_id))

    monkeypatch.setattr(bpf_mod, "link_ids", ids)
    monkeypatch.setattr(bpf_mod, "link_get_fd_by_id", open_link)
    listed = attach_mod._flow_dissector_links()
    assert all(info.id != unsettled for info in listed)
