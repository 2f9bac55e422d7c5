"""The fuzzer's target behind a real serial port: a rig's module or `hil sim`.

It offers the engine what the virtual bench offers (hil/sim/virtual.py), from what a bench
can observe: the serial bytes, and the broker's side through a recording tap in front of the
broker (hil/trace/timeline.py) that keeps the broker's view (connected, what the module published,
what it took). Time is real: `advance` waits on the port. Before each case the module is
restarted (`AT+CFUN=1,1`, or the rig's power cycle) and its boot awaited; the grammar's
broker address (127.0.0.1,1883) is replaced by the tap's.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import serial

from hil.at.transcript import Transcript
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
)
from hil.trace.timeline import FROM_BROKER, TO_BROKER, MqttTap

GRAMMAR_BROKER = b"127.0.0.1,1883"
_SLICE_S = 0.02  # how long the engine's waits step at a time on a real port
_QUIET_S = 0.2  # no byte on the port or at the tap for this long: nothing is in flight


@dataclass
class BrokerView:
    """What the broker saw of the module, kept from the tap's packets."""

    connected: bool = False
    received: list[Publish] = field(default_factory=list)
    handed: list[Publish] = field(default_factory=list)
    acknowledged: list[Publish] = field(default_factory=list)
    _qos2: dict[int, Publish] = field(default_factory=dict)
    _out: dict[int, Publish] = field(default_factory=dict)

    def packet(self, direction: str, packet: Packet) -> None:
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

    def __init__(self, host: str, port: int, view: Callable[[], BrokerView]) -> None:
        self._view = view
        self.last_ns = time.monotonic_ns()
        super().__init__(host, port, Transcript())

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
                 timeout: float = 5.0) -> None:
    """Another client publishes one message: connect, publish, wait for its acknowledgement
    (QoS 1, 2), disconnect."""
    session = ClientSession(Connect(f"hil-fuzz-peer-{time.monotonic_ns()}", True, 30),
                            time.monotonic())
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:

        def wait_for(done: Callable[[list[Event]], bool]) -> None:
            sock.sendall(session.data_to_send())
            while time.monotonic() < deadline:
                data = sock.recv(4096)
                if not data or done(session.receive_data(data, time.monotonic())):
                    return

        wait_for(lambda events: any(isinstance(e, Connected) for e in events))
        pid = session.publish(topic, payload, qos, False, time.monotonic())
        if pid is not None:
            wait_for(lambda events: any(isinstance(e, PublishDone) for e in events))
        session.disconnect(time.monotonic())
        sock.sendall(session.data_to_send())


class PortModule:
    """The engine's module over a serial port at `url`, the broker at (host, port);
    `power_cycle` (the rig's power backend; the port is opened again after it) restarts the
    module before each case, else `AT+CFUN=1,1` does."""

    def __init__(self, url: str, broker: tuple[str, int], *, baud: int = 115200,
                 boot_timeout: float = 30.0,
                 power_cycle: Callable[[], None] | None = None) -> None:
        self.url, self.baud = url, baud
        self.port = serial.serial_for_url(url, baudrate=baud, timeout=0)
        self.broker_address = broker
        self.broker = BrokerView()
        self.tap = _ViewTap(*broker, view=lambda: self.broker)
        self.output = bytearray()
        self.boot_timeout = boot_timeout
        self._power_cycle = power_cycle
        self._last_rx = time.monotonic()
        self._lock = threading.Lock()

    @property
    def now(self) -> float:
        return time.monotonic()

    def power_on(self) -> None:
        """Restart the module and wait for its boot: each case starts afresh."""
        if self._power_cycle is not None:
            self.port.close()
            self._power_cycle()
            self.port = serial.serial_for_url(self.url, baudrate=self.baud, timeout=0)
        else:
            self.port.write(b"AT+CFUN=1,1\r")
        deadline = time.monotonic() + self.boot_timeout
        seen = bytearray()
        while b"Call Ready" not in seen and time.monotonic() < deadline:
            self._read_into(seen, 0.1)
        if b"Call Ready" not in seen:
            raise TimeoutError(f"the module did not boot within {self.boot_timeout:.0f} s")
        self.broker = BrokerView()

    def send(self, data: bytes) -> None:
        self.port.write(data.replace(GRAMMAR_BROKER,
                                     f"{self.broker_address[0]},{self.tap.port}".encode()))

    def read(self) -> bytes:
        self._read_into(self.output, 0)
        data, self.output = bytes(self.output), bytearray()
        return data

    def _read_into(self, buffer: bytearray, timeout: float) -> None:
        fd = self.port.fileno() if hasattr(self.port, "fileno") else None
        if fd is not None and timeout > 0:
            select.select([fd], [], [], timeout)
        elif timeout > 0:
            time.sleep(timeout)
        data = self.port.read(self.port.in_waiting or 1)
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

