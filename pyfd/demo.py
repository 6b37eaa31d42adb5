"""Frames for `pyfd run`: a built-in demo set, or the frames of a pcap file."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import NamedTuple

from .constants import RETURN_CODES

PCAP_HEADER_SIZE = 24  # struct pcap_file_header
PCAP_RECORD_HEADER_SIZE = 16  # struct pcap_sf_pkthdr: ts_sec, ts_usec, incl_len, orig_len


class Frame(NamedTuple):
    """One frame to run: a label, its bytes, and why it cannot be run as it is (None if it can)."""

    label: str
    data: bytes
    problem: str | None = None

_MACS = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")  # locally administered


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(proto: int, payload: bytes, src: str = "10.0.0.1", dst: str = "10.0.0.2", options: bytes = b"") -> bytes:
    ihl = 5 + len(options) // 4
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), 1, 0, 64, proto, 0,
                         bytes(int(x) for x in src.split(".")), bytes(int(x) for x in dst.split("."))) + options
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + payload


def _ether(ethertype: int, payload: bytes) -> bytes:
    return _MACS + struct.pack("!H", ethertype) + payload


def demo_frames() -> list[Frame]:
    """A handful of frames covering the common cases and a truncation."""
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    udp = struct.pack("!HHHH", 5353, 53, 8 + 4, 0) + b"demo"
    icmp = struct.pack("!BBHHH", 8, 0, 0, 1, 1)
    ipv6 = struct.pack("!IHBB16s16s", 6 << 28, 8, 17, 64, bytes(15) + b"\1", bytes(15) + b"\2") + udp[:8]
    tcp_frame = _ether(0x0800, _ipv4(6, tcp))
    return [
        Frame("IPv4 TCP 10.0.0.1:40000 -> 10.0.0.2:80", tcp_frame),
        Frame("IPv4 UDP 10.0.0.1:5353 -> 10.0.0.2:53", _ether(0x0800, _ipv4(17, udp))),
        Frame("IPv4 ICMP echo request", _ether(0x0800, _ipv4(1, icmp))),
        Frame("IPv4 with 4 bytes of options, TCP", _ether(0x0800, _ipv4(6, tcp, options=b"\x01\x01\x01\x00"))),
        Frame("IPv4 TCP cut inside the IPv4 header (24 bytes)", tcp_frame[:24]),
        Frame("IPv6 UDP ::1 -> ::2", _ether(0x86DD, ipv6)),
        Frame("ARP request", _ether(0x0806, struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + bytes(20))),
    ]


def read_frames(path: Path) -> list[Frame]:
    """Ethernet frames from a classic pcap file (microsecond or nanosecond, either byte order).

    A record the file ends inside (a capture cut short: tcpdump killed, a
    full disk) comes back with a `problem` and is not run: its bytes are not
    the frame that was on the wire, and the records before it are whole.
    """
    data = path.read_bytes()
    if len(data) < PCAP_HEADER_SIZE:
        raise ValueError(f"{path}: not a pcap file (too short)")
    magic = data[:4]
    orders = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
    if magic not in orders:
        raise ValueError(f"{path}: not a classic pcap file (pcapng is not supported; convert with `editcap -F pcap`)")
    order = orders[magic]
    linktype = struct.unpack(order + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}; only Ethernet (1) captures can be run")
    frames: list[Frame] = []
    pos = PCAP_HEADER_SIZE
    while pos < len(data):
        number = len(frames) + 1
        if pos + PCAP_RECORD_HEADER_SIZE > len(data):
            left = len(data) - pos
            problem = f"truncated pcap record: the file ends {left} bytes into its {PCAP_RECORD_HEADER_SIZE}-byte record header"
            frames.append(Frame(f"frame {number}", b"", problem))
            break
        _, _, incl, orig = struct.unpack(order + "IIII", data[pos : pos + PCAP_RECORD_HEADER_SIZE])
        pos += PCAP_RECORD_HEADER_SIZE
        body = data[pos : pos + incl]
        if len(body) < incl:
            frames.append(Frame(f"frame {number}", body, f"truncated pcap record: its header says {incl} bytes, the file ends after {len(body)}"))
            break
        captured = f"{incl} bytes" if orig <= incl else f"{incl} of {orig} bytes captured"
        frames.append(Frame(f"frame {number} ({captured})", body))
        pos += incl
    return frames


def describe(retval: int) -> str:
    """A return code by name."""
    return RETURN_CODES.get(retval, f"return {retval}")
