"""Find the module's AT port again after it re-enumerated (power cycle, USB reset).

A USB-serial port may come back as /dev/ttyUSB3 where it was /dev/ttyUSB2. It is found by
what does not change: its /dev/serial/by-id link, its USB location (hub path and interface)
or its USB serial number and interface number. Matching is a pure function over the port
list; only `locate` looks at the system, and it gives up after its timeout.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from serial.tools import list_ports

from hil.rig import PortFind


class PortNotFound(LookupError):
    """The port did not (re-)appear in time; says what was looked for and what was seen."""


class PortInfo(Protocol):
    """What matching needs of pyserial's ListPortInfo."""

    device: str
    location: str | None
    serial_number: str | None


_INTERFACE = re.compile(r":\d+\.(\d+)$")


def interface_of(location: str | None) -> int | None:
    """The interface number of a location such as "1-1.2:1.3" (→ 3)."""
    m = _INTERFACE.search(location or "")
    return int(m.group(1)) if m else None


def match_port(ports: Iterable[PortInfo], find: PortFind) -> str | None:
    """The device of the one port that fits `find` (location, else serial number)."""
    candidates = list(ports)
    if find.usb_location:
        hits = [p for p in candidates if p.location == find.usb_location]
    elif find.serial_number:
        hits = [p for p in candidates if p.serial_number == find.serial_number
                and (find.interface is None or interface_of(p.location) == find.interface)]
    else:
        return None
    devices = sorted({p.device for p in hits})
    if len(devices) > 1:
        raise PortNotFound(f"{describe(find)} fits several ports: {', '.join(devices)}; "
                           "add interface = N to [dut.find]")
    return devices[0] if devices else None


def describe(find: PortFind) -> str:
    parts = [f"{k}={v}" for k, v in (("by_id", find.by_id), ("usb_location", find.usb_location),
                                       ("serial_number", find.serial_number),
                                       ("interface", find.interface)) if v is not None]
    return "port with " + ", ".join(parts)


def find_now(find: PortFind,
             comports: Callable[[], Iterable[PortInfo]] = list_ports.comports) -> str | None:
    """Where the port is right now, or None while it is away."""
    if find.by_id:
        link = Path(find.by_id)
        if link.exists():  # follows the link: a dangling one means the device is gone
            return os.path.realpath(link)
        if not (find.usb_location or find.serial_number):
            return None
    return match_port(comports(), find)


def locate(
    find: PortFind,
    timeout: float,
    *,
    comports: Callable[[], Iterable[PortInfo]] = list_ports.comports,
    interval: float = 0.2,
) -> str:
    """Wait (bounded) until the port is present and return its device path."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: a bounded wait between looks at udev's work
    while True:
        device = find_now(find, comports)
        if device is not None:
            return device
        left = deadline - time.monotonic()
        if left <= 0:
            seen = ", ".join(f"{p.device} ({p.location}, {p.serial_number})"
                             for p in comports()) or "no serial ports"
            raise PortNotFound(f"{describe(find)} did not appear within {timeout:g} s; "
                               f"present: {seen}")
        pause.wait(min(interval, left))
