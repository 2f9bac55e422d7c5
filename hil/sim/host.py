"""The I/O host around the simulated firmware: a pseudo-terminal or TCP port, sockets, a clock.

It runs on one asyncio loop: serial bytes in both directions are paced at the UART's rate
(10 bits a byte), socket outcomes become firmware events, and the firmware's deadlines become
timer callbacks. Power is virtual: off closes the port (the device disappears, as a USB-serial
module does), on brings it back under the same stable path.

The clock: bytes are handed to the port in pieces of `PIECE` bytes, each when its last byte
would have crossed the line, so the end of every answer arrives when a real UART would deliver
it. Run the host on `new_event_loop()`: the default epoll loop wakes timers up to 1 ms late
(epoll_wait counts whole milliseconds), which would show as 1 ms of made-up latency.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import logging
import os
import select
import selectors
import ssl
import sys
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hil.sim.firmware import (
    Action,
    CloseSocket,
    Firmware,
    OpenSocket,
    SendSocket,
    SerialOut,
    SocketClosed,
    SocketData,
    SocketEvent,
    SocketFailed,
    SocketOpened,
    StartTls,
    TlsReady,
)

log = logging.getLogger("hil.sim")
T = TypeVar("T")

BITS_PER_BYTE = 10  # start + 8 data + stop
PIECE = 8  # bytes handed to the port at once while pacing: 0.69 ms at 115200 baud
SPIN_S = 0.0004  # the end of an answer is waited for by spinning over its last 0.4 ms
CONNECT_TIMEOUT_S = 10.0
_PR_SET_TIMERSLACK = 29
DEFAULT_HOSTS: Mapping[str, str] = {"localhost": "127.0.0.1"}


class _FineSelector(selectors.EpollSelector):
    """epoll with microsecond timeouts.

    epoll_wait() takes whole milliseconds and Python rounds up, so a timer due in 0.3 ms fires
    after 1 ms. Waiting on the epoll descriptor itself with select() (microseconds) and then
    collecting the events without blocking keeps timers on time. The thread that runs the loop
    also asks the kernel for no timer slack (Linux adds up to 50 us to every wait otherwise).
    """

    _slack_set = False

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if not self._slack_set:
            self._slack_set = True
            _no_timer_slack()
        if timeout is not None and timeout > 0:
            try:
                select.select([self.fileno()], [], [], timeout)
            except ValueError:  # a descriptor past FD_SETSIZE: fall back to whole ms
                return super().select(timeout)
            timeout = 0
        return super().select(timeout)


def _no_timer_slack() -> None:
    """prctl(PR_SET_TIMERSLACK, 1) for the calling thread, where the platform has it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(1), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here: timers are merely 50 us coarser
        log.debug("cannot set the timer slack")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose timers fire on time to within tens of microseconds."""
    return asyncio.SelectorEventLoop(_FineSelector())


class _Uart:
    """One direction of the serial line: bytes leave no faster than the baud rate allows.

    `sink(piece, due)` gets each piece with the time its last byte crossed the line on the
    nominal schedule; the receiving side takes that as "now", so a late wake-up of the loop
    does not push every later byte back (the lateness does not add up along an exchange).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        baud: int | None,
        sink: Callable[[bytes, float], None],
        *,
        precise: bool = False,
    ) -> None:
        self._loop = loop
        self._byte_s = BITS_PER_BYTE / baud if baud else 0.0
        self._precise = precise
        self._sink = sink
        self._queue: deque[tuple[float, bytes]] = deque()
        self._free_at = 0.0
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run())

    def send(self, data: bytes, not_before: float) -> None:
        self._queue.append((not_before, data))
        self._wakeup.set()

    @property
    def idle(self) -> bool:
        return not self._queue

    def close(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            not_before, data = self._queue.popleft()
            # on the nominal schedule: a wake-up that came late is caught up, not carried on
            start = max(not_before, self._free_at)
            if not self._byte_s:
                await self._until(start, last=True)
                self._sink(data, start)
                continue
            for offset in range(0, len(data), PIECE):
                piece = data[offset : offset + PIECE]
                # a piece is handed over when its last byte would have crossed the line
                done = start + (offset + len(piece)) * self._byte_s
                await self._until(done, last=offset + PIECE >= len(data))
                self._sink(piece, done)
            self._free_at = start + len(data) * self._byte_s


    async def _until(self, when: float, *, last: bool) -> None:
        """Wait for `when`; to the microsecond for the end of a write on a precise line.

        The end of an answer is what the harness times, so there the loop wakes up SPIN_S
        early and spins the rest; a timer alone comes 50-150 us late on a typical kernel,
        more on a busy one.
        """
        if not (last and self._precise):
            await _sleep_until(self._loop, when)
            return
        await _sleep_until(self._loop, when - SPIN_S)
        clock = self._loop.time
        while clock() < when:
            pass


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    delay = when - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


@dataclass
class _Socket:
    task: asyncio.Task[None]
    writer: asyncio.StreamWriter | None = None


@dataclass
class SimConfig:
    """How the simulated module is reached."""

    transport: str = "pty"  # "pty" or "tcp"
    link: Path | None = None  # stable symlink to the pty
    tcp_port: int = 0
    baud: int | None = 115200
    hosts: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_HOSTS))
    #: where to record every write to the port (see `write_log_lines`); None: not recorded
    write_log: Path | None = None
    #: the port stays when the power is cut, as a USB-serial adapter powered by the PC does
    #: (the module goes silent, what is sent to it is lost); else it vanishes, as the
    #: module's own USB port does
    port_stays: bool = False


class SimHost:
    """Runs one Firmware on an asyncio loop behind a pty or a TCP port."""

    def __init__(self, firmware: Firmware, config: SimConfig) -> None:
        self.firmware = firmware
        self.config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: dict[int, _Socket] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._to_dte: _Uart | None = None
        self._to_dce: _Uart | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._server: asyncio.Server | None = None
        self._client: asyncio.Transport | None = None
        self.url: str | None = None
        self.pty_path: str | None = None
        # (time.monotonic_ns() just before the write was made, bytes written), kept in memory
        # while powered so the hot path only appends; written out at power-off
        self._writes: list[tuple[int, int]] | None = [] if config.write_log else None
        self._write_log_started = False

    # ------------------------------------------------------------ power

    @property
    def powered(self) -> bool:
        return self._to_dte is not None

    async def power_on(self) -> str:
        """Bring the port up and boot the firmware; returns the pyserial URL."""
        if self.powered:
            await self.power_off()
        self._loop = asyncio.get_running_loop()
        if self._master is None and self._server is None:  # else it stayed (`port_stays`)
            if self.config.transport == "tcp":
                await self._open_tcp()
            else:
                self._open_pty()
        self._to_dte = _Uart(self._loop, self.config.baud, self._write_port, precise=True)
        self._to_dce = _Uart(self._loop, self.config.baud, self._deliver)
        self._apply(self.firmware.power_on(self._loop.time()))
        assert self.url is not None
        return self.url

    async def power_off(self) -> None:
        """Cut power: sockets die without a word, the port disappears (or stays, silent:
        `port_stays`)."""
        if not self.powered:
            return
        self._apply(self.firmware.power_off())
        for uart in (self._to_dte, self._to_dce):
            if uart is not None:
                uart.close()
        self._to_dte = self._to_dce = None
        if self._timer is not None:
            self._timer.cancel()
        if not self.config.port_stays:
            self._close_port()
        for sock in list(self._sockets.values()):
            sock.task.cancel()
            if sock.writer is not None:
                sock.writer.transport.abort()
        self._sockets.clear()
        self._flush_write_log()

    async def unplug(self) -> None:
        """The port vanishes while the module runs on (a USB glitch): only the line is cut."""
        if self.powered:
            self._close_port()

    async def plug(self) -> str:
        """The port comes back (a new pty behind the same link); returns the pyserial URL."""
        if self.powered and self._master is None and self._server is None:
            if self.config.transport == "tcp":
                await self._open_tcp()
            else:
                self._open_pty()
        assert self.url is not None
        return self.url

    # ------------------------------------------------------------ the serial port

    def _open_pty(self) -> None:
        assert self._loop is not None
        master, slave = os.openpty()
        tty.setraw(slave)  # no line discipline: bytes pass as they are, no echo, no CR/LF mapping
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.pty_path = os.ttyname(slave)
        link = self.config.link
        if link is not None:
            link.parent.mkdir(parents=True, exist_ok=True)
            tmp = link.with_name(link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.pty_path)
            tmp.replace(link)  # atomic re-point: the stable path never dangles while on
        self.url = str(link or self.pty_path)
        self._loop.add_reader(master, self._pty_readable)

    async def _open_tcp(self) -> None:
        host = self

        class _Conn(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                if host._client is not None:
                    transport.close()  # one DTE at a time, like a UART
                    return
                assert isinstance(transport, asyncio.Transport)
                host._client = transport

            def data_received(self, data: bytes) -> None:
                host._from_dte(data)

            def connection_lost(self, exc: Exception | None) -> None:
                host._client = None

        assert self._loop is not None
        self._server = await self._loop.create_server(
            _Conn, "127.0.0.1", self.config.tcp_port, reuse_address=True
        )
        port = self._server.sockets[0].getsockname()[1]
        self.config.tcp_port = port  # keep the port across power cycles
        self.url = f"socket://127.0.0.1:{port}"

    def _close_port(self) -> None:
        if self._master is not None:
            assert self._loop is not None
            self._loop.remove_reader(self._master)
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None
            if self.config.link is not None:
                self.config.link.unlink(missing_ok=True)
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._client is not None:
            self._client.abort()
            self._client = None

    def _pty_readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # no DTE has the port open: nothing to read
        self._from_dte(data)

    def _from_dte(self, data: bytes) -> None:
        assert self._loop is not None
        if self._to_dce is not None:
            self._to_dce.send(data, self._loop.time())

    def _deliver(self, data: bytes, due: float) -> None:
        self._apply(self.firmware.serial_received(data, due), now=due)

    def _write_port(self, data: bytes, due: float | None = None) -> None:
        writes = self._writes
        if self._client is not None:
            if writes is not None:
                writes.append((time.monotonic_ns(), len(data)))
            self._client.write(data)
            return
        if self._master is None:
            return
        view = memoryview(data)
        while view:
            t_ns = time.monotonic_ns()  # before: no byte of this write is readable earlier
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                # the DTE is not reading and the pty buffer is full: a real UART would drop
                # bytes; keep them instead and let the reader catch up
                written = _write_blocking(self._master, view)
            except OSError:
                return
            if writes is not None:
                writes.append((t_ns, written))
            view = view[written:]

    def _flush_write_log(self) -> None:
        """Write out the writes recorded since the last power-off (the first flush of this
        host starts the file afresh, later ones append: one log across power cycles)."""
        path, writes = self.config.write_log, self._writes
        if path is None or writes is None:
            return
        mode = "a" if self._write_log_started else "w"
        with path.open(mode, encoding="ascii") as out:
            out.write(write_log_lines(writes))
        self._write_log_started = True
        writes.clear()

    # ------------------------------------------------------------ firmware actions

    def _apply(self, actions: list[Action], now: float | None = None) -> None:
        """Carry out the firmware's actions; serial delays count from `now` (default: the
        loop's time; the nominal arrival time for an answer to serial input)."""
        assert self._loop is not None
        if now is None:
            now = self._loop.time()
        for action in actions:
            match action:
                case SerialOut(data=data, delay=delay):
                    if self._to_dte is not None:
                        self._to_dte.send(data, now + delay)
                case OpenSocket():
                    task = self._loop.create_task(self._connect(action))
                    self._sockets[action.socket_id] = _Socket(task)
                case StartTls(socket_id=sid):
                    writer = self._writer(sid)
                    if writer is not None:
                        self._loop.create_task(self._start_tls(sid, writer))
                case SendSocket(socket_id=sid, data=data):
                    writer = self._writer(sid)
                    if writer is not None:
                        writer.write(data)
                case CloseSocket(socket_id=sid):
                    self._close_socket(sid)
        self._schedule()

    def _writer(self, socket_id: int) -> asyncio.StreamWriter | None:
        """The socket's writer once it is connected; None before, or for a closed socket."""
        sock = self._sockets.get(socket_id)
        return None if sock is None else sock.writer

    def _close_socket(self, socket_id: int) -> None:
        sock = self._sockets.pop(socket_id, None)
        if sock is not None:
            sock.task.cancel()
            if sock.writer is not None:
                sock.writer.close()

    def _schedule(self) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.firmware.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._apply(self.firmware.tick(self._loop.time()))

    def _event(self, event: SocketEvent) -> None:
        assert self._loop is not None
        self._apply(self.firmware.socket_event(event, self._loop.time()))

    def resolve(self, name: str) -> str | None:
        """IP literals, `localhost` and the hosts map; no DNS, so a test never leaves the box."""
        try:
            return str(ipaddress.ip_address(name))
        except ValueError:
            return self.config.hosts.get(name.lower())

    async def _connect(self, action: OpenSocket) -> None:
        sid = action.socket_id
        address = self.resolve(action.host)
        if address is None:
            self._event(SocketFailed(sid, "resolve", f"cannot resolve {action.host!r}"))
            return
        if not ipaddress.ip_address(address).is_loopback:
            log.warning("simulator refuses to dial %s: only loopback is reachable", address)
            self._event(SocketFailed(sid, "refused", f"{address} is off loopback"))
            return
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, action.port), CONNECT_TIMEOUT_S
            )
        except TimeoutError:
            self._event(SocketFailed(sid, "timeout"))
            return
        except OSError as exc:
            self._event(SocketFailed(sid, "refused", str(exc)))
            return
        if action.tls:
            try:
                await asyncio.wait_for(writer.start_tls(_client_tls()), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
                writer.transport.abort()
                self._event(SocketFailed(sid, "tls", str(exc)))
                return
        sock = self._sockets.get(sid)
        if sock is None:
            writer.close()
            return
        sock.writer = writer
        self._event(SocketOpened(sid))
        try:
            while data := await reader.read(65536):
                self._event(SocketData(sid, data))
        except (OSError, ssl.SSLError):
            pass
        if sid in self._sockets:
            self._sockets.pop(sid)
            writer.close()
            self._event(SocketClosed(sid))


    async def _start_tls(self, sid: int, writer: asyncio.StreamWriter) -> None:
        """The handshake on a connection already open (a profile that makes it at MCONNECT)."""
        try:
            await asyncio.wait_for(writer.start_tls(_client_tls()), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            sock = self._sockets.pop(sid, None)
            if sock is not None:
                sock.task.cancel()
            writer.transport.abort()
            self._event(SocketFailed(sid, "tls", str(exc)))
            return
        self._event(TlsReady(sid))


def _client_tls() -> ssl.SSLContext:
    """The module does not check the server certificate (MQTTSSL-2: no command loads a CA)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def write_log_lines(writes: Sequence[tuple[int, int]]) -> str:
    """The `--write-log` format: one line `t_ns nbytes` a write, in the order written.

    `t_ns` is `time.monotonic_ns()` taken just before the write was made, so no byte of it
    can be read earlier: CLOCK_MONOTONIC is one clock for every process on Linux, so another
    process can set its own stamps against it.
    """
    return "".join(f"{t} {n}\n" for t, n in writes)


def read_write_log(path: Path) -> list[tuple[int, int]]:
    """The (t_ns, nbytes) pairs of a `--write-log` file."""
    out = []
    for line in path.read_text(encoding="ascii").splitlines():
        t, n = line.split()
        out.append((int(t), int(n)))
    return out


def _write_blocking(fd: int, data: memoryview) -> int:
    os.set_blocking(fd, True)
    try:
        return os.write(fd, data)
    finally:
        os.set_blocking(fd, False)


class Simulator:
    """A SimHost on its own thread, for a harness in the same process (the default rig).

    Every call is thread-safe and bounded by a timeout.
    """

    def __init__(self, firmware: Firmware, config: SimConfig) -> None:
        self.host = SimHost(firmware, config)
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="l506-sim", daemon=True)
        self._thread.start()

    @property
    def firmware(self) -> Firmware:
        return self.host.firmware

    def _call(
        self, work: Coroutine[object, object, T] | Callable[[], T], timeout: float = 10.0
    ) -> T:
        """Run `work` (a coroutine, or a function) on the simulator's thread; TimeoutError
        after `timeout` seconds."""
        if asyncio.iscoroutine(work):
            return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)
        call = work

        async def run() -> T:
            return call()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def power_on(self) -> str:
        return self._call(self.host.power_on())

    def power_off(self) -> None:
        self._call(self.host.power_off())

    def unplug(self) -> None:
        self._call(self.host.unplug())

    def plug(self) -> str:
        return self._call(self.host.plug())

    def inject(self, name: str, active: bool = True) -> None:
        """Switch on a fault a test provokes on purpose (socket creation fails, pings stop)."""

        def switch() -> None:
            (self.firmware.injections.add if active else self.firmware.injections.discard)(name)

        self._call(switch)

    def close(self) -> None:
        try:
            self.power_off()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()
