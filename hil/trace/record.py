"""A bench's real serial sessions, kept and played back: the recorder and the replay server.

`hil record` sits between any serial client (a terminal program, a vendor tool) and the
port: the client opens a pseudo-terminal, the recorder passes every byte through untouched
in both directions and writes the session file (hil/trace/session.py) as it goes. `hil replay`
serves a session file on a pseudo-terminal as if it were the module (hil/trace/replay.py), so the
session becomes a regression test of whatever parses it. docs/record.md has the details.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import select
import signal
import threading
import time
import tty
from pathlib import Path

import serial

from hil.trace.replay import CommandReplay, Emission, StrictReplay
from hil.trace.session import RX, TX, Direction, SessionWriter

_POLL_S = 0.1  # how often the pass-through threads look at the stop flag


class _Pty:
    """A pseudo-terminal in raw mode: the client opens `path`, we hold the master side.

    Holding the client side open as well keeps the pty alive while no client is attached,
    so a terminal program may be closed and opened again during one recording.
    """

    def __init__(self, link: Path | None = None) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.link = link
        if link is not None:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(self.path)

    @property
    def name(self) -> str:
        return str(self.link) if self.link is not None else self.path

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view):]

    def read(self, timeout: float) -> bytes:
        """What the client sent, or b"" after `timeout`."""
        if not select.select([self.master], [], [], timeout)[0]:
            return b""
        try:
            return os.read(self.master, 4096)
        except OSError:  # no client side open at all (cannot happen while we hold it)
            return b""

    def close(self) -> None:
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class Recorder:
    """Pass bytes between a client's pty and the port at `url`, recording both ways."""

    def __init__(self, url: str, baud: int, session: Path, *, link: Path | None = None) -> None:
        self.url = url
        self._port = serial.serial_for_url(url, baudrate=baud, timeout=_POLL_S)
        self._pty = _Pty(link)
        self._writer = SessionWriter(session, port=url, baud=baud, clock_start=time.monotonic())
        self._stop = threading.Event()
        # Both threads stamp and write under one lock, so the session's times never go back.
        self._stamping = threading.Lock()
        self.lost: str | None = None
        self._threads = [
            threading.Thread(target=self._port_to_client, name="record rx", daemon=True),
            threading.Thread(target=self._client_to_port, name="record tx", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def client_port(self) -> str:
        """The path a serial client opens instead of the real port."""
        return self._pty.name

    def _port_to_client(self) -> None:
        port = self._port
        while not self._stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                self._lose(f"the port vanished: {exc}")
                return
            if data:
                self._record(RX, data)
                self._pty.write(data)

    def _client_to_port(self) -> None:
        while not self._stop.is_set():
            data = self._pty.read(_POLL_S)
            if not data:
                continue
            self._record(TX, data)
            try:
                self._port.write(data)
            except (serial.SerialException, OSError) as exc:
                self._lose(f"cannot write to the port: {exc}")
                return

    def _record(self, direction: Direction, data: bytes) -> None:
        with self._stamping:
            self._writer.chunk(direction, data, time.monotonic())

    def _lose(self, why: str) -> None:
        self.lost = why
        with self._stamping:
            self._writer.note(why, time.monotonic())
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the port is lost (True) or `timeout` passes (False)."""
        return self._stop.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()
        self._pty.close()
        self._writer.close()


class ReplayServer:
    """Serve a session on a pty with a `StrictReplay` or `CommandReplay`."""

    def __init__(self, replay: StrictReplay | CommandReplay, *, link: Path | None = None) -> None:
        self.replay = replay
        self._pty = _Pty(link)
        self._stop = threading.Event()
        self._queue: list[tuple[float, int, bytes]] = []
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._serve, name="replay", daemon=True)
        self._thread.start()

    @property
    def port(self) -> str:
        return self._pty.name

    def _schedule(self, emissions: list[Emission]) -> None:
        for e in emissions:
            heapq.heappush(self._queue, (e.at, next(self._seq), e.data))

    def _serve(self) -> None:
        self._schedule(self.replay.start(time.monotonic()))
        while not self._stop.is_set():
            now = time.monotonic()
            while self._queue and self._queue[0][0] <= now:
                self._pty.write(heapq.heappop(self._queue)[2])
            wait = _POLL_S if not self._queue else min(_POLL_S, self._queue[0][0] - now)
            data = self._pty.read(max(0.0, wait))
            if data:
                self._schedule(self.replay.received(data, time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._pty.close()


def until_signal(wait: threading.Event, seconds: float | None) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: wait.set())
    wait.wait(seconds)
