"""The port's system calls and nothing else: waits, reads and writes, in as few calls as
the port allows. Which thread makes them, and when, is the channel's (hil/at/channel.py);
what the bytes mean is the exchange's (hil/at/exchange.py).
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from typing import Protocol

import serial

__all__ = ["Port", "PortIO"]

_BURST = 65536  # most bytes taken in one read: far more than arrives between two reads


class Port(Protocol):
    """The part of a pyserial port that the channel uses. Every port class pyserial opens
    (serial.Serial, and the socket://, rfc2217://, loop:// handlers) has it; SerialBase alone
    does not declare `in_waiting`."""

    is_open: bool

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1, /) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...


class PortIO:
    """Reads and writes a port in as few system calls as it allows.

    On a POSIX port (device node, pty), where pyserial keeps the descriptor non-blocking and
    a pipe for `cancel_read()`, waiting (select) and taking (one read() of the whole burst)
    are separate steps, so one thread may wait while another reads (`lendable`): the thread
    waiting for an answer reads it itself instead of being woken by the reader thread.
    pyserial's `read(n)` would need the count first (`in_waiting`, an ioctl on the path of
    every answer), and its `write()` waits for the port to be writable again after every
    write, even one the kernel took whole. Other ports (`socket://`, `rfc2217://`,
    `loop://`) go through pyserial, reads with the count, at the port's own timeout.
    """

    def __init__(self, port: Port) -> None:
        self._port = port
        abort = getattr(port, "pipe_abort_read_r", None)
        fd = getattr(port, "fd", None)
        self._fds = None if not isinstance(port, serial.Serial) or abort is None or fd is None \
            else (fd, abort)

    @property
    def lendable(self) -> bool:
        return self._fds is not None

    def wait(self, timeout: float) -> bool:
        """Wait until bytes have arrived: False after `timeout` or a `cancel()`."""
        assert self._fds is not None
        fd, abort = self._fds
        ready, _, _ = select.select([fd, abort], [], [], timeout)
        if abort in ready:
            with contextlib.suppress(BlockingIOError):  # the other waiter drained it first
                os.read(abort, 1000)
            return False
        return bool(ready)

    def take(self) -> bytes:
        """Everything that has arrived, without waiting (b"" if another thread took it)."""
        assert self._fds is not None
        fd = self._fds[0]
        try:
            data = os.read(fd, _BURST)
        except BlockingIOError:
            return b""
        # pyserial sets VMIN=0: an empty port reads as b"" too, and bytes may arrive just
        # after such a read, so "readable" proves nothing. A hung-up tty (USB device gone,
        # pty whose other end closed) says so: POLLHUP.
        if not data and self._hung_up(fd):
            raise serial.SerialException("device hung up: it reads empty and polls POLLHUP "
                                         "(unplugged, or the other end of the pty closed)")
        return data

    @staticmethod
    def _hung_up(fd: int) -> bool:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return any(ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL)
                   for _, ev in poller.poll(0))

    def read(self, timeout: float) -> bytes:
        """What has arrived, or b"" after `timeout` (the port's own, if not lendable)."""
        if self._fds is not None:
            return self.take() if self.wait(timeout) else b""
        port = self._port
        data = port.read(max(1, port.in_waiting))
        waiting = port.in_waiting  # the rest of the burst that woke us: one pass
        return data + port.read(waiting) if waiting else data

    def write(self, data: bytes, timeout: float | None) -> None:
        """Hand all of `data` to the port; `serial.SerialTimeoutException` when it will not
        take it within `timeout` seconds (None: no limit; on a port that is not lendable,
        the write timeout it was opened with)."""
        if self._fds is None:
            self._port.write(data)
            return
        fd = self._fds[0]
        view = memoryview(data)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with contextlib.suppress(BlockingIOError):  # full: wait below until it drains
                view = view[os.write(fd, view):]
            if not view:
                return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise serial.SerialTimeoutException("Write timeout")
            if not select.select([], [fd], [], left)[1]:
                raise serial.SerialTimeoutException("Write timeout")

    def cancel(self) -> None:
        """Make a wait in progress (or the next one) return at once."""
        cancel = getattr(self._port, "cancel_read", None)
        if cancel is not None and self._port.is_open:
            cancel()
