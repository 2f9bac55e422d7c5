"""The AT channel: one serial port, one reader thread, an AT exchange driven between them.

Any pyserial URL works (a device node, a pty path, `socket://`, `rfc2217://`, `loop://`),
so the simulator and the bench use the same code. A daemon thread does blocking reads and
stamps each chunk with `time.monotonic_ns()` the moment `read()` returns; nothing polls.
While a command waits for its answer on a POSIX port (device node, pty), the waiting thread
does those reads itself and the reader thread stands aside: the answer is framed where it
is awaited, without a second wake-up. What the bytes mean (which line answers the command
in flight, which is a URC) is decided by the exchange (hil/at/exchange.py), with no I/O;
the system calls are in hil/at/portio.py. Here: the threads, the port's lease, the waits,
the URC queue and the transcript.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Sequence

import serial

from hil.at.exchange import (
    PLAIN,
    Answer,
    AtError,
    CommandSpec,
    Exchange,
    Prompted,
    Response,
    Urc,
    show_line,
)
from hil.at.framer import CountedLine, Line
from hil.at.portio import Port, PortIO
from hil.at.transcript import RX, Transcript

__all__ = ["AtError", "Channel", "CommandTimeout", "PortLost", "UrcMatch", "UrcTimeout"]

#: Parts of an answer that end no wait: on those, no one is woken.
_QUIET = frozenset({"echo", "info", "data"})


class CommandTimeout(AtError):
    """A command did not complete in time; `response` holds what did arrive."""

    def __init__(self, message: str, response: Response) -> None:
        super().__init__(message)
        self.response = response


class UrcTimeout(AtError):
    """No matching URC arrived in time; `queued` is what was waiting instead."""

    def __init__(self, message: str, queued: list[Line]) -> None:
        super().__init__(message)
        self.queued = queued


class PortLost(AtError):
    """The port is gone (unplugged, powered off, pty closed) or could not be opened.

    `response` is the partial response when it happened during a command. The channel
    stays unusable until `reopen()`.
    """

    def __init__(self, message: str, response: Response | None = None) -> None:
        super().__init__(message)
        self.response = response


UrcMatch = str | re.Pattern[str] | re.Pattern[bytes] | Callable[[Line], bool]


def _urc_predicate(match: UrcMatch) -> Callable[[Line], bool]:
    """str: the line's text starts with it; pattern: `.search()` on text or raw bytes."""
    if isinstance(match, str):
        return lambda line: line.text.startswith(match)
    if isinstance(match, re.Pattern):
        if isinstance(match.pattern, bytes):
            return lambda line: match.search(line.raw) is not None
        return lambda line: match.search(line.text) is not None
    return match


def _describe(match: UrcMatch) -> str:
    if isinstance(match, re.Pattern):
        return f"/{match.pattern!r}/"
    return repr(match) if isinstance(match, str) else getattr(match, "__name__", repr(match))


class Channel:
    """An AT command channel over any pyserial URL.

    Use from one test thread; the reader thread (or, during a command, that thread) only
    reads and feeds the exchange. `transcript` may be swapped between tests (a fresh one per
    test); `observer` is called with each completed Response.
    """

    def __init__(
        self,
        url: str,
        baudrate: int = 115200,
        *,
        transcript: Transcript | None = None,
        counted: Sequence[CountedLine] = (),
        open_timeout: float = 5.0,
        read_timeout: float = 0.25,
        write_timeout: float = 10.0,
        observer: Callable[[Response], None] | None = None,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.observer = observer
        self._counted = tuple(counted)
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._open_timeout = open_timeout
        self._cond = threading.Condition()
        self._transcript = Transcript() if transcript is None else transcript
        self._exchange = Exchange(self._counted)
        self._urcs: list[Line] = []
        self._lost: str | None = None
        self._port: Port | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._io: PortIO | None = None
        # Who reads: whoever holds `_lease`. The reader thread takes it for each read; a
        # command's caller holds it from before its command is written until its answer is
        # complete (`_lend`), and reads that answer itself.
        self._lease = threading.Lock()
        self._start(url, open_timeout)

    # ---------------------------------------------------------------- lifecycle

    @property
    def transcript(self) -> Transcript:
        with self._cond:
            return self._transcript

    @transcript.setter
    def transcript(self, value: Transcript) -> None:
        with self._cond:
            self._transcript = value

    @property
    def lost(self) -> str | None:
        """Why the port was lost, or None while it works."""
        with self._cond:
            return self._lost

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the reader and close the port; safe to call twice."""
        self._stop_reader()

    def reopen(self, url: str | None = None, timeout: float | None = None) -> None:
        """Open the port again (it vanished and came back, e.g. after a power cycle).

        Retries until `timeout` (default: open_timeout) because a USB serial device takes
        a while to re-enumerate. The exchange starts afresh; queued URCs are kept.
        """
        self._stop_reader()
        with self._cond:
            self._exchange = Exchange(self._counted)
            self._lost = None
        self.url = url or self.url
        try:
            self._start(self.url, self._open_timeout if timeout is None else timeout)
        except PortLost as exc:
            self._port_lost(str(exc))
            raise

    def _start(self, url: str, timeout: float) -> None:
        port = self._open(url, timeout)
        self.transcript.note(f"opened {url} at {self.baudrate} baud")
        stop = threading.Event()
        io = PortIO(port)
        reader = threading.Thread(
            target=self._read_loop, args=(io, stop), name=f"at-reader {url}", daemon=True
        )
        self._port, self._stop, self._reader, self._io = port, stop, reader, io
        reader.start()

    def _open(self, url: str, timeout: float) -> Port:
        deadline = time.monotonic() + timeout
        retry = threading.Event()  # never set: a bounded pause between attempts
        while True:
            try:
                return serial.serial_for_url(
                    url,
                    baudrate=self.baudrate,
                    timeout=self._read_timeout,
                    # pyserial's rfc2217 client refuses a write timeout (NotImplementedError)
                    write_timeout=None if url.startswith("rfc2217:") else self._write_timeout,
                )
            except (serial.SerialException, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise PortLost(f"cannot open {url} within {timeout:.1f} s: {exc}") from exc
                retry.wait(min(0.1, max(0.0, deadline - time.monotonic())))

    def _stop_reader(self) -> None:
        port, reader, io = self._port, self._reader, self._io
        self._stop.set()
        if port is None or io is None:
            return
        with contextlib.suppress(serial.SerialException, OSError):
            io.cancel()  # if the port is gone already, the reader ends on its own
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=self._read_timeout * 4 + 1.0)
        with contextlib.suppress(serial.SerialException, OSError):
            port.close()  # closing a vanished device may fail; it is closed either way
        self._port = self._reader = self._io = None
        self.transcript.note(f"closed {self.url}")

    # ---------------------------------------------------------------- reading

    def _read_loop(self, io: PortIO, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if io.lendable and not io.wait(self._read_timeout):
                    continue  # quiet, or cancelled (the channel is closing)
            except Exception as exc:  # any failure of the port ends the reader visibly
                if not stop.is_set():
                    self._port_lost(f"{type(exc).__name__}: {exc}")
                return
            if not self._lease.acquire(timeout=self._read_timeout):
                continue  # a command's caller is reading: what woke us is its to take
            try:
                try:
                    data = io.take() if io.lendable else io.read(self._read_timeout)
                    t_ns = time.monotonic_ns()  # stamped as the read returns, before all else
                except Exception as exc:  # any failure of the port ends the reader visibly
                    if not stop.is_set():
                        self._port_lost(f"{type(exc).__name__}: {exc}")
                    return
                if data:
                    try:
                        self._received(data, t_ns)
                    except Exception as exc:  # a routing bug must surface, not kill silently
                        self._port_lost(f"reader failed: {type(exc).__name__}: {exc}")
                        raise
            finally:
                self._lease.release()

    def _port_lost(self, why: str) -> None:
        with self._cond:
            self._lost = why
            self._transcript.note(f"port lost: {why}")
            self._cond.notify_all()

    def _received(self, data: bytes, t_ns: int) -> None:
        """Feed the bytes to the exchange, queue its URCs, wake whoever its events end a
        wait for, then write the transcript.

        The transcript (its own lock) is written after the channel's lock is released, so a
        waiting test thread gets going without waiting for the bookkeeping.
        """
        shown: list[tuple[str, int, str]] = []
        with self._cond:
            transcript = self._transcript
            wake = False
            for event in self._exchange.receive(data, t_ns):
                if isinstance(event, Answer):
                    shown.append((event.line.text, event.line.t_ns, event.part))
                    wake = wake or event.part not in _QUIET
                elif isinstance(event, Urc):
                    self._urcs.append(event.line)
                    shown.append((event.line.text, event.line.t_ns, "urc"))
                    wake = True
                elif isinstance(event, Prompted):
                    shown.append((">", event.t_ns, "prompt"))
                    wake = True
                else:  # Completed
                    wake = True
            if wake:  # an echo, an information line or a data echo ends no wait
                self._cond.notify_all()
        transcript.record_received(data, t_ns, shown)

    # ---------------------------------------------------------------- commands

    def command(
        self,
        text: str | bytes,
        spec: CommandSpec = PLAIN,
        timeout: float = 5.0,
        data: bytes | None = None,
    ) -> Response:
        """Send `text` + CR and wait for its final code and (per spec) its result URC.

        With `data`, wait for the `>` prompt and then write `data` raw. If the command is
        answered (a final code or result URC) before the data could go, it was refused and
        the data is not sent. Raises `CommandTimeout` with the partial response, or
        `PortLost`.
        """
        line = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        shown = line.decode("utf-8", "backslashreplace")
        deadline = time.monotonic() + timeout
        self._check_free(shown)
        lent = self._lend(shown, deadline)  # before the channel's lock: lease, then lock
        try:
            with self._cond:
                self._check_free(shown)
                exchange = self._exchange  # a reopen() makes a new one: finish this one
                sent_ns = time.monotonic_ns()
                wire = exchange.send(line, spec, sent_ns, data)
                response = exchange.response
                assert response is not None  # in flight until finish()
            try:
                self._write(wire, sent_ns, shown, "command")
                if data is not None:
                    self._send_data(exchange, response, deadline, timeout, lent)
                self._wait(lambda: exchange.state == "complete", exchange, response,
                           deadline, timeout, lent)
            finally:
                with self._cond:
                    for event in exchange.finish():  # bytes held for a data echo: URCs
                        if isinstance(event, Urc):
                            self._urcs.append(event.line)
                            self._transcript.record_line(RX, event.line.text, event.line.t_ns,
                                                         "urc")
        finally:
            if lent:
                self._lease.release()  # the reader, if it waits for the port, has it back
        if self.observer is not None:
            self.observer(response)
        return response

    def _check_free(self, shown: str) -> None:
        with self._cond:
            if self._lost is not None:
                raise PortLost(f"{self.url}: {self._lost}")
            self._exchange.check_send(shown)

    def _lend(self, shown: str, deadline: float) -> bool:
        """Take the port from the reader thread for this command, whose caller then reads
        its answer itself (see `_wait_reading`); False where the port cannot be lent.

        The reader holds the lease only while it frames a chunk; it is not woken for this.
        It finds the lease taken when bytes next wake it, and has it back at the end.
        """
        io = self._io
        if io is None or not io.lendable:
            return False
        if not self._lease.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise AtError(f"{shown!r}: the port was not free to read in time")
        return True

    def _send_data(self, exchange: Exchange, response: Response, deadline: float,
                   timeout: float, lent: bool) -> None:
        self._wait(lambda: exchange.state != "awaiting prompt", exchange, response,
                   deadline, timeout, lent)
        with self._cond:
            if exchange.state != "data due":
                return  # answered without a prompt: refused, the data must not go out
            data_ns = time.monotonic_ns()
            data = exchange.send_data(data_ns)
        self._write(data, data_ns, data.decode("utf-8", "backslashreplace"), "data")

    def _wait(self, done: Callable[[], bool], exchange: Exchange, response: Response,
              deadline: float, timeout: float, lent: bool) -> None:
        io = self._io
        if io is not None and lent:  # the port is lent to this command
            self._wait_reading(io, done, exchange, response, deadline, timeout)
            return
        with self._cond:
            while not done():
                self._cond.wait(self._check_waiting(exchange, response, deadline, timeout))

    def _wait_reading(self, io: PortIO, done: Callable[[], bool], exchange: Exchange,
                      response: Response, deadline: float, timeout: float) -> None:
        """Wait by reading the port in this thread: the answer is framed where it is awaited.

        Handing each answer from the reader thread to the caller costs a second wake-up, on a
        loaded machine a few hundred microseconds. The caller holds the lease (`_lend`), so
        it is the one reader: bytes are framed in the order they were read.
        """
        while True:
            with self._cond:
                if done():
                    return
                remaining = self._check_waiting(exchange, response, deadline, timeout)
            try:
                data = io.read(min(remaining, self._read_timeout))
                t_ns = time.monotonic_ns()
            except Exception as exc:  # the port failed under this read
                self._port_lost(f"{type(exc).__name__}: {exc}")
                continue  # reported above, with the partial response
            if data:
                self._received(data, t_ns)

    def _check_waiting(self, exchange: Exchange, response: Response, deadline: float,
                       timeout: float) -> float:
        """The seconds left to wait; `PortLost` or `CommandTimeout` when there are none.
        Called with the channel's lock held."""
        if self._lost is not None:
            raise PortLost(f"{self.url}: {self._lost} during {response.command!r}", response)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CommandTimeout(exchange.timeout_message(timeout), response)
        return remaining

    def _write(self, data: bytes, t_ns: int, text: str, kind: str) -> None:
        with self._cond:
            io = self._io
            self._transcript.record_sent(data, t_ns, text, kind)
        if io is None:
            raise PortLost(f"{self.url}: port is closed")
        try:
            io.write(data, self._write_timeout)
        except serial.SerialTimeoutException as exc:
            raise AtError(f"{self.url}: write of {len(data)} bytes timed out") from exc
        except (serial.SerialException, OSError) as exc:
            self._port_lost(f"write failed: {exc}")
            raise PortLost(f"{self.url}: write failed: {exc}") from exc

    def write_raw(self, data: bytes) -> None:
        """Write bytes as they are, outside any command (garbage, partial commands...)."""
        self._write(data, time.monotonic_ns(), data.decode("utf-8", "backslashreplace"), "raw")

    # ---------------------------------------------------------------- URCs

    def wait_urc(self, match: UrcMatch, timeout: float) -> Line:
        """Take the first queued URC that matches; earlier non-matching ones stay queued.

        `match`: a str (the text starts with it), a compiled pattern (searched in the text,
        or in the raw bytes for a bytes pattern) or a predicate on the Line.
        """
        pred = _urc_predicate(match)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, line in enumerate(self._urcs):
                    if pred(line):
                        del self._urcs[i]
                        return line
                if self._lost is not None:
                    raise PortLost(f"{self.url}: {self._lost} while waiting for a URC")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    queued = list(self._urcs)
                    shown = ", ".join(show_line(x) for x in queued) or "nothing"
                    raise UrcTimeout(
                        f"no URC matching {_describe(match)} within {timeout:.3f} s;"
                        f" queued: {shown}",
                        queued,
                    )
                self._cond.wait(remaining)

    def urcs(self) -> list[Line]:
        """Snapshot of the queued URCs, oldest first."""
        with self._cond:
            return list(self._urcs)

    def drain_urcs(self) -> list[Line]:
        """Take all queued URCs."""
        with self._cond:
            taken, self._urcs = self._urcs, []
            return taken
