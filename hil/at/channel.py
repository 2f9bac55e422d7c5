"""The AT channel: one serial port, one reader thread, commands and URCs kept apart.

Any pyserial URL works (a device node, a pty path, `socket://`, `rfc2217://`, `loop://`),
so the simulator and the bench use the same code. A daemon thread does blocking reads and
stamps each chunk with `time.monotonic_ns()` the moment `read()` returns; nothing polls.
While a command waits for its answer on a POSIX port (device node, pty), the waiting thread
does those reads itself and the reader thread stands aside: the answer is framed where it
is awaited, without a second wake-up. Which line belongs to the command in flight is
decided by the command's `CommandSpec` and the line's shape; every other line is a URC and
goes to the queue, also when it arrives in the middle of a response.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import serial

from hil.at.framer import CountedLine, DataEcho, Framer, Line, Prompt
from hil.at.transcript import RX, Transcript

_FINAL = re.compile(rb"(?:OK|ERROR|\+CM[ES] ERROR:.*)\Z")
_ERROR = re.compile(rb"(?:ERROR|\+CM[ES] ERROR:)")
_TRAILING_BLANKS = b" \t"
_BURST = 65536  # most bytes taken in one read: far more than arrives between two reads


#: Line kinds that can end a wait: a command's completion, or a URC someone may wait for.
_WAKES = frozenset({"final", "result", "urc"})


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """What a command's answer looks like, beyond the final result code.

    `result` matches its result URC (e.g. `+MSUB: SUCCESS`), awaited besides OK; `info`
    match its information lines (accepted before the final code); `prompt` says it asks
    for raw data with `>`. Patterns are matched with `.match()` on the line's raw bytes.
    """

    name: str
    result: re.Pattern[bytes] | None = None
    info: tuple[re.Pattern[bytes], ...] = ()
    prompt: bool = False


PLAIN = CommandSpec("AT")


class AtError(Exception):
    """Base of the channel's errors."""


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


def _ms(start_ns: int, t_ns: int | None) -> float | None:
    return None if t_ns is None else (t_ns - start_ns) / 1e6


@dataclass(slots=True)
class Timing:
    """When each part of a command's exchange happened, all `time.monotonic_ns()`.

    `sent_ns` is taken just before the command is written; `first_byte_ns` is the arrival
    of the first chunk after it (the echo, when echo is on); `data_ns` is when the raw
    data went out after the prompt.
    """

    sent_ns: int
    first_byte_ns: int | None = None
    final_ns: int | None = None
    result_ns: int | None = None
    prompt_ns: int | None = None
    data_ns: int | None = None

    @property
    def done_ns(self) -> int | None:
        """When the last awaited part (final code or result URC) arrived."""
        seen = [t for t in (self.final_ns, self.result_ns) if t is not None]
        return max(seen) if seen else None

    @property
    def first_byte_ms(self) -> float | None:
        return _ms(self.sent_ns, self.first_byte_ns)

    @property
    def final_ms(self) -> float | None:
        return _ms(self.sent_ns, self.final_ns)

    @property
    def result_ms(self) -> float | None:
        return _ms(self.sent_ns, self.result_ns)

    @property
    def prompt_ms(self) -> float | None:
        return _ms(self.sent_ns, self.prompt_ns)

    @property
    def total_ms(self) -> float | None:
        return _ms(self.sent_ns, self.done_ns)


@dataclass(slots=True)
class Response:
    """Everything that answered one command, and when.

    `lines` are the information lines; `data_echo` the device repeating the raw data sent
    after a prompt (echo on); `interleaved` the URCs that arrived while the command was in
    flight (they are in the URC queue too, not part of the answer).
    """

    command: str
    echo: Line | None
    lines: list[Line]
    final: Line | None
    result: Line | None
    timing: Timing
    name: str = ""
    data_echo: Line | None = None
    interleaved: list[Line] = field(default_factory=list)
    data_sent: bool = False

    @property
    def ok(self) -> bool:
        """The final result code is OK (says nothing about the result URC)."""
        return self.final is not None and self.final.raw.rstrip(_TRAILING_BLANKS) == b"OK"

    @property
    def error(self) -> bool:
        """The final result code is ERROR, +CME ERROR or +CMS ERROR."""
        return self.final is not None and _ERROR.match(self.final.raw) is not None

    def summary(self) -> str:
        """One line listing what arrived, for failure messages."""
        parts = [f"echo={_show(self.echo)}"]
        if self.lines:
            parts.append("info=[" + ", ".join(_show(x) for x in self.lines) + "]")
        parts.append(f"final={_show(self.final)}")
        parts.append(f"result={_show(self.result)}")
        if self.timing.prompt_ns is not None:
            parts.append("prompt seen")
        if self.data_echo is not None:
            parts.append("data echoed")
        if self.interleaved:
            parts.append("urcs=[" + ", ".join(_show(x) for x in self.interleaved) + "]")
        return "; ".join(parts)


def _show(line: Line | None, limit: int = 120) -> str:
    """A line for a one-line summary; long payloads are cut so a failure stays readable."""
    if line is None:
        return "-"
    text = (
        line.text if len(line.text) <= limit else f"{line.text[:limit]}…(+{len(line.text) - limit})"
    )
    return repr(text)


def _same_command(echo: str, sent: str) -> bool:
    """An echo is the command as typed; tolerate trimmed or dropped spaces and case."""
    a, b = echo.strip(), sent.strip()
    return a == b or a.replace(" ", "").casefold() == b.replace(" ", "").casefold()


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


class _InFlight:
    """The command being answered: its text, its spec, its growing response, and whether
    its caller holds the port's lease and so reads the answer itself."""

    def __init__(self, text: str, spec: CommandSpec, response: Response, data: bytes | None,
                 reads_itself: bool):
        self.text = text
        self.spec = spec
        self.response = response
        self.data = data
        self.reads_itself = reads_itself

    @property
    def done(self) -> bool:
        r = self.response
        if r.final is None:
            return False
        return self.spec.result is None or r.result is not None or r.error

    def classify(self, line: Line) -> str:
        """Attach `line` to the response and return its kind; "urc" if it is not ours."""
        r, raw = self.response, line.raw
        first = r.echo is None and r.final is None and not r.lines
        if first and _same_command(line.text, self.text):
            r.echo = line
            return "echo"
        if isinstance(line, DataEcho) and r.data_sent and r.data_echo is None:
            r.data_echo = line
            return "data"
        if r.final is None and _FINAL.match(raw.rstrip(_TRAILING_BLANKS)):
            r.final = line
            r.timing.final_ns = line.t_ns
            return "final"
        if self.spec.result is not None and r.result is None and self.spec.result.match(raw):
            r.result = line
            r.timing.result_ns = line.t_ns
            return "result"
        if r.final is None and any(p.match(raw) for p in self.spec.info):
            r.lines.append(line)
            return "info"
        r.interleaved.append(line)
        return "urc"


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

    def __init__(self, port: serial.SerialBase) -> None:
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


class Channel:
    """An AT command channel over any pyserial URL.

    Use from one test thread; the reader thread (or, during a command, that thread) only
    feeds and routes. `transcript` may be swapped between tests (a fresh one per test);
    `observer` is called with each completed Response.
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
        self._framer = Framer(self._counted)
        self._urcs: list[Line] = []
        self._cmd: _InFlight | None = None
        self._lost: str | None = None
        self._port: serial.SerialBase | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._io: PortIO | None = None
        # Who reads: whoever holds `_lease`. The reader thread takes it for each read; a
        # command's caller holds it from before its command is written until its answer is
        # complete (`_InFlight.reads_itself`), and reads that answer itself.
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
        a while to re-enumerate. The framer starts afresh; queued URCs are kept.
        """
        self._stop_reader()
        with self._cond:
            self._framer = Framer(self._counted)
            self._lost = None
            self._cmd = None
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

    def _open(self, url: str, timeout: float) -> serial.SerialBase:
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
        """Frame and file the bytes, wake whoever they complete, then write the transcript.

        The transcript (its own lock) is written after the channel's lock is released, so a
        waiting test thread gets going without waiting for the bookkeeping.
        """
        shown: list[tuple[str, int, str]] = []
        with self._cond:
            transcript = self._transcript
            timing = None if self._cmd is None else self._cmd.response.timing
            if timing is not None and timing.first_byte_ns is None and t_ns >= timing.sent_ns:
                timing.first_byte_ns = t_ns
            wake = False
            for event in self._framer.feed(data, t_ns):
                if isinstance(event, Prompt):
                    self._prompted(event)
                    shown.append((">", event.t_ns, "prompt"))
                    wake = True
                else:
                    kind = self._file(event)
                    shown.append((event.text, event.t_ns, kind))
                    wake = wake or kind in _WAKES
            if wake:  # an echo, an information line or a part line ends no wait: wake no one
                self._cond.notify_all()
        transcript.record_received(data, t_ns, shown)

    def _prompted(self, prompt: Prompt) -> None:
        cmd = self._cmd
        if cmd is not None and cmd.response.timing.prompt_ns is None:
            cmd.response.timing.prompt_ns = prompt.t_ns

    def _file(self, line: Line) -> str:
        """File the line as the command's (echo, info, final, result) or as a URC."""
        cmd = self._cmd
        # A line that began before the command went out cannot be its answer.
        if cmd is None or line.first_t_ns < cmd.response.timing.sent_ns:
            kind = "urc"
        else:
            kind = cmd.classify(line)
        if kind == "urc":
            self._urcs.append(line)
        return kind

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
        answered without a prompt (refused at once), the data is not sent. Raises
        `CommandTimeout` with the partial response, or `PortLost`.
        """
        line = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        shown = line.decode("utf-8", "backslashreplace")
        deadline = time.monotonic() + timeout
        self._check_free(shown)
        lent = self._lend(shown, deadline)  # before the channel's lock: lease, then lock
        try:
            with self._cond:
                self._check_free(shown)
                sent_ns = time.monotonic_ns()
                response = Response(shown, None, [], None, None, Timing(sent_ns), name=spec.name)
                cmd = _InFlight(shown, spec, response, data, lent)
                self._cmd = cmd
                self._framer.expect_prompt = data is not None
            try:
                self._write(line + b"\r", sent_ns, shown, "command")
                if data is not None:
                    self._send_data(cmd, data, deadline, timeout)
                self._wait(lambda: cmd.done, cmd, deadline, timeout)
            finally:
                with self._cond:
                    self._cmd = None
                    self._framer.expect_prompt = False
                    for event in self._framer.stop_echo():
                        if isinstance(event, Line):
                            self._transcript.record_line(RX, event.text, event.t_ns,
                                                         self._file(event))
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
            if self._cmd is not None:
                raise AtError(f"{shown!r} sent while {self._cmd.text!r} is in flight")

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

    def _send_data(self, cmd: _InFlight, data: bytes, deadline: float, timeout: float) -> None:
        r = cmd.response
        self._wait(
            lambda: r.timing.prompt_ns is not None or r.final is not None or r.result is not None,
            cmd,
            deadline,
            timeout,
        )
        with self._cond:
            if r.timing.prompt_ns is None:
                return  # answered without a prompt: refused, the data must not go out
            if r.echo is not None:
                self._framer.expect_echo(data)  # echo on: the data may come back too
            data_ns = time.monotonic_ns()
            r.timing.data_ns = data_ns
            r.data_sent = True
        self._write(data, data_ns, data.decode("utf-8", "backslashreplace"), "data")

    def _wait(
        self, done: Callable[[], bool], cmd: _InFlight, deadline: float, timeout: float
    ) -> None:
        io = self._io
        if io is not None and cmd.reads_itself:  # the port is lent to this command
            self._wait_reading(io, done, cmd, deadline, timeout)
            return
        with self._cond:
            while not done():
                if self._lost is not None:
                    raise PortLost(f"{self.url}: {self._lost} during {cmd.text!r}", cmd.response)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CommandTimeout(self._timeout_message(cmd, timeout), cmd.response)
                self._cond.wait(remaining)

    def _wait_reading(self, io: PortIO, done: Callable[[], bool], cmd: _InFlight,
                      deadline: float, timeout: float) -> None:
        """Wait by reading the port in this thread: the answer is framed where it is awaited.

        Handing each answer from the reader thread to the caller costs a second wake-up, on a
        loaded machine a few hundred microseconds. The caller holds the lease (`_lend`), so
        it is the one reader: bytes are framed in the order they were read.
        """
        while True:
            with self._cond:
                if done():
                    return
                if self._lost is not None:
                    raise PortLost(f"{self.url}: {self._lost} during {cmd.text!r}", cmd.response)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CommandTimeout(self._timeout_message(cmd, timeout), cmd.response)
            try:
                data = io.read(min(remaining, self._read_timeout))
                t_ns = time.monotonic_ns()
            except Exception as exc:  # the port failed under this read
                self._port_lost(f"{type(exc).__name__}: {exc}")
                continue  # reported above, with the partial response
            if data:
                self._received(data, t_ns)

    def _timeout_message(self, cmd: _InFlight, timeout: float) -> str:
        r, spec = cmd.response, cmd.spec
        if not r.data_sent and cmd.data is not None and r.timing.prompt_ns is None:
            missing = "no '>' prompt"
        elif r.final is None:
            missing = "no final result code (OK/ERROR)"
        else:
            missing = f"final {r.final.text!r} but no {spec.name} result URC"
            if spec.result is not None:
                missing += f" /{spec.result.pattern!r}/"
        seen = r.summary()
        pending = self._framer.pending
        if pending:
            more = f"…(+{len(pending) - 200} bytes)" if len(pending) > 200 else ""
            seen += f"; partial line {pending[:200]!r}{more}"
        return f"{cmd.text!r}: {missing} within {timeout:.3f} s; seen: {seen}"

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
                    shown = ", ".join(_show(x) for x in queued) or "nothing"
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
