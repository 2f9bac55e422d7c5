"""A serial line with faults on it: a pty relay between the harness and the simulated module.

The harness opens the relay's pty (a stable link, as it would a USB-serial node); the relay
opens the simulator's pty and copies bytes both ways, counting them. Faults are made here,
on the line, so the firmware model stays untouched: a direction goes silent, bytes are
dropped or corrupted, and a trigger fires an action (cut the power, kill the broker) when a
chosen number of bytes has passed. When the module's port vanishes (power off, unplug) the
relay's own port vanishes with it, as a USB module's does, and comes back when it does.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TO_DTE = "to_dte"  # module → harness
TO_DCE = "to_dce"  # harness → module
_POLL_S = 0.01


@dataclass
class _Trigger:
    direction: str
    left: int  # bytes still to pass before `action` fires
    action: Callable[[], None]


@dataclass
class LineCounts:
    """Bytes per direction: read from the sender, and handed on to the receiver."""

    read: dict[str, int]
    passed: dict[str, int]


class LineRelay:
    """Copies bytes between the module's pty (`upstream`, a path) and its own pty (`link`).

    Every fault setter is thread-safe; triggers fire on the relay's thread, between the
    bytes before and after their offset.
    """

    def __init__(self, upstream: Path, link: Path, seed: int = 0) -> None:
        self.upstream = upstream
        self.link = link
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self._mute: set[str] = set()
        self._mute_for_good = False  # silence that outlives a restart of the module
        self._damage: dict[str, tuple[str, int]] = {}  # direction → (drop|corrupt, bytes)
        self._triggers: list[_Trigger] = []
        self._read = {TO_DTE: 0, TO_DCE: 0}
        self._passed = {TO_DTE: 0, TO_DCE: 0}
        self._up: int | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._out: dict[str, bytearray] = {TO_DTE: bytearray(), TO_DCE: bytearray()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="line-relay", daemon=True)

    @property
    def url(self) -> str:
        return str(self.link)

    def start(self) -> LineRelay:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._drop_ports()

    def __enter__(self) -> LineRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ faults

    def mute(self, *directions: str, for_good: bool = False) -> None:
        """Drop every byte in these directions until `clear()` or (unless `for_good`) the
        module's port comes back after vanishing (a hung firmware is cured by a restart)."""
        with self._lock:
            self._mute.update(directions)
            self._mute_for_good = self._mute_for_good or for_good

    def damage(self, direction: str, how: str, count: int) -> None:
        """Drop (`drop`) or corrupt (`corrupt`, XOR with a random non-zero byte) the next
        `count` bytes in `direction`."""
        if how not in ("drop", "corrupt"):
            raise ValueError(f"damage is drop or corrupt, not {how!r}")
        with self._lock:
            self._damage[direction] = (how, count)

    def after(self, direction: str, nbytes: int, action: Callable[[], None]) -> None:
        """Call `action` once `nbytes` more bytes have been read in `direction` (0: at the
        next byte), before the rest is handed on."""
        with self._lock:
            self._triggers.append(_Trigger(direction, max(0, nbytes), action))

    def disarm(self) -> int:
        """Drop armed triggers and damage (mutes stay); returns how many had not fired."""
        with self._lock:
            left = len(self._triggers)
            self._triggers.clear()
            self._damage.clear()
            return left

    def clear(self) -> None:
        """No fault armed, nothing muted."""
        with self._lock:
            self._mute.clear()
            self._mute_for_good = False
            self._damage.clear()
            self._triggers.clear()

    def counts(self) -> LineCounts:
        with self._lock:
            return LineCounts(dict(self._read), dict(self._passed))

    # ------------------------------------------------------------ the copying thread

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._up is None and not self._connect():
                self._stop.wait(_POLL_S)
                continue
            self._pump()

    def _connect(self) -> bool:
        """Open the module's port if it is there, then offer our own (a fresh pty)."""
        try:
            up = os.open(self.upstream, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return False
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        tmp = self.link.with_name(self.link.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.link)
        with self._lock:
            self._up, self._master, self._slave = up, master, slave
            if not self._mute_for_good:
                self._mute.clear()
            for out in self._out.values():
                out.clear()
        return True

    def _drop_ports(self) -> None:
        """The module's port vanished: ours goes too (link first, so nobody opens it)."""
        with self._lock:
            fds = (self._up, self._master, self._slave)
            self._up = self._master = self._slave = None
        self.link.unlink(missing_ok=True)
        for fd in fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _pump(self) -> None:
        up, master = self._up, self._master
        assert up is not None and master is not None
        with self._lock:
            writers = [fd for fd, d in ((master, TO_DTE), (up, TO_DCE)) if self._out[d]]
        try:
            readable, _, _ = select.select([up, master], writers, [], _POLL_S)
        except (OSError, ValueError):
            self._drop_ports()
            return
        for fd, direction, sink in ((up, TO_DTE, master), (master, TO_DCE, up)):
            if fd in readable:
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if fd == up or exc.errno not in (errno.EIO, errno.EAGAIN):
                        self._drop_ports()
                        return
                    continue  # our side has no reader yet: EIO on the master, nothing lost
                if not data and fd == up:
                    self._drop_ports()
                    return
                self._forward(direction, data, sink)
            if self._out[direction]:
                self._flush(direction, sink)

    def _forward(self, direction: str, data: bytes, sink: int) -> None:
        """Count, apply triggers at their byte, mute and damage; queue what is left.

        The bytes before a trigger's offset are written out before its action runs: a
        power cut at byte k finds k bytes at the module.
        """
        while data:
            with self._lock:
                due = [t for t in self._triggers if t.direction == direction]
                first = min(due, key=lambda t: t.left, default=None)
            if first is not None and first.left < len(data):
                head, data = data[: first.left], data[first.left :]
                self._pass(direction, head)
                self._flush(direction, sink, wait=True)
                with self._lock:
                    for t in due:
                        t.left -= len(head)
                    self._triggers.remove(first)
                first.action()
                continue
            with self._lock:
                for t in due:
                    t.left -= len(data)
            self._pass(direction, data)
            return

    def _pass(self, direction: str, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            self._read[direction] += len(data)
            if direction in self._mute:
                return
            how, count = self._damage.get(direction, ("", 0))
            if count:
                n = min(count, len(data))
                hit = b""
                if how == "corrupt":
                    hit = bytes(b ^ self.rng.randrange(1, 256) for b in data[:n])
                data = hit + data[n:]
                if count > n:
                    self._damage[direction] = (how, count - n)
                else:
                    del self._damage[direction]
            self._passed[direction] += len(data)
            self._out[direction] += data

    def _flush(self, direction: str, fd: int, *, wait: bool = False) -> None:
        """Write what is queued; with `wait`, all of it (bounded: a port nobody reads)."""
        end = time.monotonic() + 1.0
        while True:
            with self._lock:
                out = self._out[direction]
                if not out:
                    return
                try:
                    del out[: os.write(fd, out)]
                except BlockingIOError:
                    pass
                except OSError:
                    return  # the port is going: _pump notices on its next read
            if not wait or time.monotonic() > end:
                return
            select.select([], [fd], [], 0.01)
