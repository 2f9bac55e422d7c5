"""The fuzzer's target behind a real serial port: a rig's module or `hil sim`.

It offers the engine what the virtual bench offers (hil/sim/virtual.py), from what a bench
can observe: the serial bytes, and the broker's side through a recording tap in front of the
broker (hil/trace/timeline.py) that keeps the broker's view (connected, what the module published,
what it took). Time is real: `advance` waits on the port. Before each case the module is
restarted by the cheapest rung of the recovery ladder (hil/dut/recovery.py) that works:
`AT+CFUN=1,1` when it answers AT, the port reopened when it vanished, the rig's power cycle
when it hangs or crashed; its boot is awaited. The grammar's broker address (127.0.0.1,1883)
is replaced by the tap's.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import serial

from hil.at.transcript import Transcript
from hil.dut.recovery import Rung, climb
from hil.fuzz.grammar import BROKER
from hil.mqtt import (
    ClientSession,
    Connack,
    Connect,
    Connected,
    Decoder,
    Disconnect,
    Event,
    Packet,
    Puback,
    Publish,
    PublishDone,
    Pubrec,
    Pubrel,
    Will,
)
from hil.trace.timeline import FROM_BROKER, TO_BROKER, MqttTap

#: How a case's module was restarted (the rungs of `PortModule.power_on`).
RESET = "reset by AT+CFUN=1,1"
REOPENED = "port reopened, reset by AT+CFUN=1,1"
POWER_CYCLE = "power cycle"
#: What `power_on` sends after each restart (the defaults of what may survive one).
RESTORED = (b"AT+MQTTSSL=0", b"AT+MQTTMSGSET=0")
_SLICE_S = 0.02  # how long the engine's waits step at a time on a real port
_QUIET_S = 0.2  # no byte on the port or at the tap for this long: nothing is in flight
_PROBE_EVERY_S = 0.5  # AT is sent again this often while the module is given time to answer


@dataclass
class BrokerView:
    """What the broker saw of the module, kept from the tap's packets."""

    connected: bool = False
    #: topics the module may have left a retained message on (a retained publish, a will
    #: with retain): cleared before the next case, which must not receive it
    retained: set[str] = field(default_factory=set)
    received: list[Publish] = field(default_factory=list)
    handed: list[Publish] = field(default_factory=list)
    acknowledged: list[Publish] = field(default_factory=list)
    _qos2: dict[int, Publish] = field(default_factory=dict)
    _out: dict[int, Publish] = field(default_factory=dict)

    def packet(self, direction: str, packet: Packet) -> None:
        if direction == TO_BROKER:
            match packet:
                case Publish(retain=True, topic=topic) | Connect(
                        will=Will(retain=True, topic=topic)):
                    self.retained.add(topic)
        match packet:
            case Connack(return_code=0):
                self.connected = True
            case Disconnect():
                self.connected = False
            case _ if direction == TO_BROKER:
                self._from_module(packet)
            case _ if direction == FROM_BROKER:
                self._to_module(packet)

    def _from_module(self, packet: Packet) -> None:
        match packet:
            case Publish(qos=0 | 1):
                self.received.append(packet)
            case Publish(qos=2, ack_id=pid):
                self._qos2.setdefault(pid, packet)
            case Pubrel(packet_id=pid):
                message = self._qos2.pop(pid, None)
                if message is not None:
                    self.received.append(message)
            case Puback(packet_id=pid) | Pubrec(packet_id=pid):
                message = self._out.pop(pid, None)
                if message is not None:
                    self.acknowledged.append(message)

    def _to_module(self, packet: Packet) -> None:
        match packet:
            case Publish(qos=0):
                if self.connected:
                    self.handed.append(packet)
            case Publish(qos=1 | 2, ack_id=pid):
                self._out[pid] = packet


class _ViewTap(MqttTap):
    """The tap, feeding a BrokerView besides the transcript."""

    def __init__(self, host: str, port: int, view: Callable[[], BrokerView],
                 listen: str) -> None:
        self._view = view
        self.last_ns = time.monotonic_ns()
        super().__init__(host, port, Transcript(), listen=(listen, 0))

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        decoder = Decoder()
        src.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            self.last_ns = time.monotonic_ns()
            if not data:
                break
            try:
                dst.sendall(data)
                packets = decoder.feed(data)
            except (OSError, ValueError):
                break
            for packet in packets:
                self._view().packet(direction, packet)
        if direction == TO_BROKER:
            self._view().connected = False  # the module's side closed: no connection


def publish_once(host: str, port: int, topic: str, payload: bytes, qos: int,
                 timeout: float = 5.0, *, retain: bool = False) -> None:
    """Another client publishes one message: connect, publish, wait for its acknowledgement
    (QoS 1, 2), disconnect. An empty retained message deletes the topic's retained one."""
    session = ClientSession(Connect(f"hil-fuzz-peer-{time.monotonic_ns()}", True, 30),
                            time.monotonic())
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:

        def wait_for(done: Callable[[list[Event]], bool]) -> None:
            sock.sendall(session.data_to_send())
            while time.monotonic() < deadline:
                data = sock.recv(4096)
                if not data:
                    return
                events = session.receive_data(data, time.monotonic())
                sock.sendall(session.data_to_send())  # a PUBREL owed to a PUBREC
                if done(events):
                    return

        wait_for(lambda events: any(isinstance(e, Connected) for e in events))
        pid = session.publish(topic, payload, qos, retain, time.monotonic())
        if pid is not None:
            wait_for(lambda events: any(isinstance(e, PublishDone) for e in events))
        session.disconnect(time.monotonic())
        sock.sendall(session.data_to_send())


class PortModule:
    """The engine's module over a serial port at `url`, the broker at (host, port).

    `power_cycle` (the rig's power backend) is the last rung of the restart before each case:
    without it a module that hangs or crashed ends the run with "DUT lost". The tap listens
    on `listen` and the module dials it as `dial` (a bench's module: the PC's address on its
    network). `time_scale`: the module's timeouts run this much faster (a simulator's), so do
    the oracles' bounds. `restarts` counts how each case's module was restarted."""

    def __init__(self, url: str, broker: tuple[str, int], *, baud: int = 115200,
                 boot_timeout: float = 30.0,
                 power_cycle: Callable[[], None] | None = None,
                 probe_timeout: float = 1.0, time_scale: float = 1.0,
                 listen: str = "127.0.0.1", dial: str | None = None) -> None:
        self.url, self.baud = url, baud
        self.port = serial.serial_for_url(url, baudrate=baud, timeout=0)
        self.broker_address = broker
        self.broker = BrokerView()
        self.tap = _ViewTap(*broker, view=lambda: self.broker, listen=listen)
        self.dial = dial or listen
        self.output = bytearray()
        self.boot_timeout = boot_timeout
        self.probe_timeout = probe_timeout
        self.time_scale = time_scale
        self.restarts: Counter[str] = Counter()
        #: why the port stopped working during a case (a crash, a re-enumeration), or None
        self.port_lost: str | None = None
        self._power_cycle = power_cycle
        self._last_rx = time.monotonic()
        self._lock = threading.Lock()

    def power_on(self) -> None:
        """A fresh module for the next case, by the cheapest rung that brings it back;
        DutLost (hil/dut/recovery.py) when none does."""
        rungs = [Rung(RESET, self._reset)]
        if self.port_lost is not None:
            rungs.append(Rung(REOPENED, self._reopen_and_reset))
        if self._power_cycle is not None:
            rungs.append(Rung(POWER_CYCLE, self._cycle))
        why = f"the port was lost ({self.port_lost})" if self.port_lost else \
            "no fresh module for the next case"
        self.restarts[climb(rungs, why)] += 1
        self.port_lost = None
        self._restore_settings()
        if self.broker.retained:  # the broker outlives the case: what it retains is wiped,
            self.tap.drop_links()  # a will with retain too (published now, not at keep-alive)
            for topic in sorted(self.broker.retained):
                publish_once(*self.broker_address, topic, b"", 0, retain=True)
        self.broker = BrokerView()

    def _restore_settings(self) -> None:
        """Settings a firmware may keep through a restart (TLS, manual mode: an open point)
        set back to their defaults, as the next case's fresh module on the model has them."""
        for command in RESTORED:
            self.port.write(command + b"\r")
            self._read_until((b"OK\r\n", b"ERROR"), self.probe_timeout)  # +CME ERROR too

    def _reset(self) -> None:
        """AT+CFUN=1,1, tried only on a module that answers AT (a hung parser would swallow
        it, and the boot wait would only pass in silence). Before the first case the module
        may still be booting: it is given its boot time to answer."""
        if self.port_lost is not None:
            raise OSError(f"the port is lost: {self.port_lost}")
        window = self.probe_timeout if self.restarts else self.boot_timeout
        deadline = time.monotonic() + window
        self.port.reset_input_buffer()
        while True:
            self.port.write(b"AT\r")
            if self._read_until(b"OK", min(_PROBE_EVERY_S, window)):
                break
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no OK to AT within {window:g} s: it hangs")
        self.port.write(b"AT+CFUN=1,1\r")
        self._wait_boot()

    def _reopen_and_reset(self) -> None:
        self._reopen()
        self._reset()

    def _cycle(self) -> None:
        assert self._power_cycle is not None
        self.port.close()
        self._power_cycle()
        self._reopen()
        self._wait_boot()

    def _reopen(self) -> None:
        """Open the port again, retried within the boot time (it may come back late)."""
        self.port.close()
        deadline = time.monotonic() + self.boot_timeout
        while True:
            try:
                self.port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=0)
                self.port_lost = None
                return
            except serial.SerialException:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def _wait_boot(self) -> None:
        if not self._read_until(b"Call Ready", self.boot_timeout):
            raise TimeoutError(f"the module did not boot within {self.boot_timeout:.0f} s")

    def _read_until(self, marker: bytes | tuple[bytes, ...], timeout: float) -> bool:
        """Whether one of the markers came within `timeout` (what came is not kept)."""
        markers = (marker,) if isinstance(marker, bytes) else marker
        deadline = time.monotonic() + timeout
        seen = bytearray()
        while not any(m in seen for m in markers) and time.monotonic() < deadline \
                and self.port_lost is None:
            self._read_into(seen, 0.05)
        return any(m in seen for m in markers)

    @property
    def now(self) -> float:
        return time.monotonic()

    @property
    def dialled(self) -> bytes:
        """The broker address the module is given in place of the grammar's."""
        return f"{self.dial},{self.tap.port}".encode()

    def send(self, data: bytes) -> None:
        if self.port_lost is not None:
            return  # a crashed module: the oracles see it answer nothing
        try:
            self.port.write(data.replace(BROKER.encode(), self.dialled))
        except serial.SerialException as exc:
            self.port_lost = str(exc)

    def read(self) -> bytes:
        self._read_into(self.output, 0)
        data, self.output = bytes(self.output), bytearray()
        return data

    def _read_into(self, buffer: bytearray, timeout: float) -> None:
        fd = self.port.fileno() if hasattr(self.port, "fileno") else None
        if self.port_lost is not None:
            time.sleep(timeout)
            return
        try:
            if fd is not None and timeout > 0:
                select.select([fd], [], [], timeout)
            elif timeout > 0:
                time.sleep(timeout)
            data = self.port.read(self.port.in_waiting or 1)
        except (serial.SerialException, OSError, ValueError) as exc:
            self.port_lost = f"{type(exc).__name__}: {exc}"
            return
        if data:
            buffer += data
            self._last_rx = time.monotonic()

    def next_event(self) -> float:
        return self.now + _SLICE_S

    def advance(self, seconds: float, *, until: Callable[[], bool] | None = None) -> bool:
        self._read_into(self.output, max(0.0, seconds))
        return until is not None and until()

    @property
    def network_idle(self) -> bool:
        quiet_ns = time.monotonic_ns() - self.tap.last_ns
        return quiet_ns > _QUIET_S * 1e9 and time.monotonic() - self._last_rx > _QUIET_S

    def peer_publish(self, topic: str, payload: bytes, qos: int = 0) -> bool:
        publish_once(*self.broker_address, topic, payload, qos)
        return True

    def taken(self) -> list[Publish]:
        return self.broker.handed + self.broker.acknowledged

    def close(self) -> None:
        self.tap.close()
        self.port.close()

