"""Driving ports from tests: a program on a pseudo-terminal, typed at as a person would,
and a recorded session's client side played to a port."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from pathlib import Path

import serial

from hil.trace.session import RX, TX, Session

ROOT = Path(__file__).resolve().parent.parent
_CSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")  # colours, cursor moves, modes


class Terminal:
    """`argv` with its stdin, stdout and stderr on a fresh 100x30 pty."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        full_env = {**os.environ, "TERM": "xterm", "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=full_env,
            start_new_session=True, close_fds=True,
        )
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self._mark = 0

    def send(self, data: str | bytes) -> None:
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def _pump(self, timeout: float) -> None:
        if select.select([self.master], [], [], timeout)[0]:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:  # the program exited and its side closed
                time.sleep(timeout)

    @property
    def text(self) -> bytes:
        """The output without terminal control sequences."""
        return _CSI.sub(b"", bytes(self.output))

    def expect(self, pattern: bytes, timeout: float = 10.0) -> re.Match[bytes]:
        """Wait for `pattern` in the output (control sequences left out) after the last
        match; AssertionError with the screen's tail when it does not come."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.text, self._mark)
            if m is not None:
                self._mark = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                tail = self.text[-1500:].decode("utf-8", "replace")
                raise AssertionError(f"{pattern!r} not seen within {timeout} s; output ends:\n"
                                     f"{tail}")
            self._pump(min(left, 0.1))

    def wait_exit(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._pump(0.05)
        return self.proc.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        with contextlib.suppress(OSError):
            os.close(self.master)


def play_session(port: str, session: Session, timeout: float = 10.0) -> bytes:
    """Send the session's client bytes, chunk by chunk, to `port`; return all it sent back."""
    got = bytearray()
    want = len(session.joined(RX))
    with serial.serial_for_url(port, timeout=0.05) as link:
        for chunk in session.chunks:
            if chunk.direction == TX:
                link.write(chunk.data)
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            got += link.read(4096)
        got += link.read(4096)  # nothing more may come
    return bytes(got)
