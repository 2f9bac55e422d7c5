"""The latency timer of a USB-serial adapter: read it for the report, set it when the rig asks.

An FTDI adapter (and others on Linux's usb-serial drivers) holds received bytes back until
its buffer fills or its latency timer runs out: 16 ms by default. Every answer the harness
times then arrives up to 16 ms late, which swamps the milliseconds the budgets and the
acceptance comparison look at. Linux shows the timer as
`/sys/bus/usb-serial/devices/<tty>/latency_timer`; writing 1 there (root, or a udev rule)
makes the adapter pass bytes on within 1 ms. `sysfs` is a parameter so that tests can use a
folder of their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SYSFS = Path("/sys")
#: A udev rule that sets the timer whenever an FTDI adapter appears: no root for the run.
UDEV_RULE = ('ACTION=="add", SUBSYSTEM=="usb-serial", DRIVER=="ftdi_sio", '
             'ATTR{latency_timer}="1"')


class LatencyTimerError(OSError):
    """The timer could not be set; the message says how to allow it."""


@dataclass(frozen=True)
class LatencyTimer:
    """The adapter's timer as found at the start of the run, and what it was set to."""

    tty: str
    found_ms: int
    now_ms: int

    def describe(self) -> str:
        if self.now_ms == self.found_ms:
            return f"{self.now_ms} ms ({self.tty})"
        return f"{self.now_ms} ms ({self.tty}, set from {self.found_ms} ms)"


def tty_of(port: str) -> str | None:
    """The kernel's name of a device node's tty (a by-id link resolved): `ttyUSB0`; None
    for a pyserial URL (socket://, rfc2217://…), which has no local adapter."""
    if "://" in port:
        return None
    return Path(os.path.realpath(port)).name


def timer_file(tty: str, sysfs: Path = SYSFS) -> Path:
    return sysfs / "bus" / "usb-serial" / "devices" / tty / "latency_timer"


def read_timer(port: str, sysfs: Path = SYSFS) -> LatencyTimer | None:
    """The port's adapter's latency timer; None when it has none (not a usb-serial tty, or a
    driver without the setting, such as a module's own USB port)."""
    tty = tty_of(port)
    if tty is None:
        return None
    try:
        ms = int(timer_file(tty, sysfs).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return LatencyTimer(tty, ms, ms)


def set_timer(port: str, ms: int, sysfs: Path = SYSFS) -> LatencyTimer | None:
    """Set the timer to `ms` and read it back; None when the port's adapter has none.

    LatencyTimerError when it cannot be written (the file belongs to root).
    """
    found = read_timer(port, sysfs)
    if found is None or found.found_ms == ms:
        return found
    path = timer_file(found.tty, sysfs)
    try:
        path.write_text(f"{ms}\n", encoding="ascii")
    except OSError as exc:
        raise LatencyTimerError(
            f"cannot set the latency timer of {found.tty} to {ms} ms ({path}: "
            f"{exc.strerror or exc}); it stays {found.found_ms} ms: run `echo {ms} | sudo tee "
            f"{path}` before the run, or add the udev rule {UDEV_RULE}") from exc
    now = read_timer(port, sysfs)
    return LatencyTimer(found.tty, found.found_ms, now.now_ms if now else ms)
