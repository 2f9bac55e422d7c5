"""A scripted AT device on the master side of a real pseudo-terminal, for the channel's and
the L506 API's tests."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from dataclasses import dataclass

Reply = bytes | float  # bytes to write, or seconds to pause


@dataclass
class Step:
    expect: bytes
    replies: tuple[Reply, ...]


class FakeDevice:
    """A scripted device on the master side of a pty: when the bytes of the next step have
    arrived, it writes that step's replies. It keeps every byte it read and wrote."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.received = bytearray()
        self.written = bytearray()
        self._steps: list[Step] = []
        self._pending = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="fake-device", daemon=True)
        self._thread.start()

    def on(self, expect: bytes, *replies: Reply, echo: bool = True) -> None:
        """Answer `expect` (echoed first, as a module with ATE1 does) with `replies`."""
        with self._lock:
            self._steps.append(Step(expect, ((expect,) if echo else ()) + replies))
        self._advance()

    def send(self, data: bytes) -> None:
        """Write unsolicited bytes now."""
        with self._lock:
            self._write(data)

    def hang_up(self) -> None:
        """Close the device side: the port vanishes under the channel."""
        self._stop.set()
        self._thread.join(timeout=2)
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self.master)

    def close(self) -> None:
        self.hang_up()
        with contextlib.suppress(OSError):
            os.close(self.slave)

    def _write(self, data: bytes) -> None:
        self.written += data  # first: once the channel has the bytes, so does `written`
        os.write(self.master, data)

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            with self._lock:
                self.received += data
                self._pending += data
            self._advance()

    def _advance(self) -> None:
        while True:
            with self._lock:
                if not self._steps:
                    return
                step = self._steps[0]
                at = self._pending.find(step.expect)
                if at < 0:
                    return
                del self._pending[: at + len(step.expect)]
                self._steps.pop(0)
            for reply in step.replies:
                if isinstance(reply, float):
                    time.sleep(reply)
                else:
                    self.send(reply)


def crlf(*lines: bytes) -> bytes:
    return b"".join(b"\r\n" + line + b"\r\n" for line in lines)
