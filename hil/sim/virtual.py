"""A whole bench in one object: the firmware model, an in-memory MQTT broker, a virtual clock.

No pty, socket or thread: bytes go into the firmware, its socket actions reach a broker
model after a fixed network delay, and time moves only when `advance()` is called. This is
what makes fuzzing fast (thousands of commands a second) and deterministic (a finding
replays exactly), and what a recorded session is checked against (hil/trace/check.py). The
broker keeps what it saw: whether the module is connected, what it published.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from hil.mqtt import (
    Connack,
    Connect,
    Decoder,
    Disconnect,
    MalformedPacket,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    encode,
)
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
)
from hil.sim.profiles import V32, Profile

NETWORK_DELAY_S = 0.005


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT 3.1.1 section 4.7: `+` one level, `#` the rest."""
    want, have = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)


@dataclass
class VirtualBroker:
    """An MQTT server for one client: enough of MQTT 3.1.1 for the module's session.

    `connected`: a CONNECT was accepted and neither DISCONNECT nor a close followed.
    `received`: every message the module published, once (QoS 2 at PUBREL).
    `retained`: the last retained message per topic (3.3.1.3), sent to a new subscription.
    """

    connected: bool = False
    subscriptions: dict[str, int] = field(default_factory=dict)
    retained: dict[str, Publish] = field(default_factory=dict)
    received: list[Publish] = field(default_factory=list)
    #: Messages to the module that it acknowledged (PUBACK at QoS 1, PUBREC at QoS 2).
    acknowledged: list[Publish] = field(default_factory=list)
    _unacknowledged: dict[int, Publish] = field(default_factory=dict)
    _decoder: Decoder = field(default_factory=Decoder)
    _inbound_qos2: dict[int, Publish] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def opened(self) -> None:
        self._decoder = Decoder()
        self.connected = False

    def closed(self) -> None:
        self.connected = False

    def receive(self, data: bytes) -> tuple[bytes, bool]:
        """Bytes from the module → (the broker's answer, whether it closes the connection)."""
        try:
            packets = self._decoder.feed(data)
        except MalformedPacket:
            self.connected = False
            return b"", True
        out = bytearray()
        for packet in packets:
            reply, close = self._handle(packet)
            for p in reply:
                out += encode(p)
            if close:
                self.connected = False
                return bytes(out), True
        return bytes(out), False

    def _handle(self, packet: Packet) -> tuple[list[Packet], bool]:
        """The broker's answer to one packet of the module's, and whether it disconnected."""
        match packet:
            case Connect(clean_session=clean):
                if clean:
                    self.subscriptions.clear()
                self.connected = True
                return [Connack(False, 0)], False
            case Subscribe(packet_id=pid, topics=topics):
                self.subscriptions.update(topics)
                kept = [self._send(m.topic, m.payload, min(m.qos, qos), retain=True)
                        for topic_filter, qos in topics for m in self.retained.values()
                        if topic_matches(topic_filter, m.topic)]
                return [Suback(pid, tuple(qos for _, qos in topics)), *kept], False
            case Unsubscribe(packet_id=pid, topics=topics):
                for topic in topics:
                    self.subscriptions.pop(topic, None)
                return [Unsuback(pid)], False
            case Pingreq():
                return [Pingresp()], False
            case Disconnect():
                return [], True
        return self._message_flow(packet), False

    def _message_flow(self, packet: Packet) -> list[Packet]:
        """PUBLISH and its acknowledgements, either way."""
        match packet:
            case Publish(qos=0):
                self._received(packet)
                return self._fan_out(packet)
            case Publish(qos=1, ack_id=pid):
                self._received(packet)
                return [Puback(pid), *self._fan_out(packet)]
            case Publish(qos=2, ack_id=pid):
                self._inbound_qos2.setdefault(pid, packet)
                return [Pubrec(pid)]
            case Pubrel(packet_id=pid):
                message = self._inbound_qos2.pop(pid, None)
                out: list[Packet] = [Pubcomp(pid)]
                if message is not None:
                    self._received(message)
                    out += self._fan_out(message)
                return out
            case Pubrec(packet_id=pid):
                self._taken(pid)
                return [Pubrel(pid)]
            case Puback(packet_id=pid):
                self._taken(pid)
        return []  # PUBCOMP of our deliveries: nothing to answer

    def _received(self, message: Publish) -> None:
        self.received.append(message)
        if message.retain and message.payload:
            self.retained[message.topic] = message
        elif message.retain:  # an empty retained message deletes the topic's
            self.retained.pop(message.topic, None)

    def _taken(self, packet_id: int) -> None:
        message = self._unacknowledged.pop(packet_id, None)
        if message is not None:
            self.acknowledged.append(message)

    def _fan_out(self, message: Publish) -> list[Packet]:
        """The module gets its own publication back where it subscribed to it."""
        out: list[Packet] = []
        packet = self.deliver(message.topic, message.payload, message.qos)
        if packet is not None:
            out.append(packet)
        return out

    def deliver(self, topic: str, payload: bytes, qos: int) -> Publish | None:
        """A message for the module, if it subscribed to `topic` (None otherwise)."""
        if not self.connected:
            return None
        granted = [q for f, q in self.subscriptions.items() if topic_matches(f, topic)]
        if not granted:
            return None
        return self._send(topic, payload, min(qos, max(granted)))

    def _send(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> Publish:
        """A message to the module, with a packet id at QoS 1 and 2 (kept until it is
        acknowledged)."""
        packet = Publish(topic, payload, qos, retain,
                         packet_id=None if qos == 0 else next(self._ids) % 65535 + 1)
        if packet.packet_id is not None:
            self._unacknowledged[packet.packet_id] = packet
        return packet


class VirtualModule:
    """The firmware with `profile` and `bugs` (no latency), on a virtual clock, wired to a
    `VirtualBroker`. `reachable(host, port)` says which servers MIPSTART reaches (all, by
    default: a recorded session's server stands for the broker) and `resolves(host)` which
    host names it can look up (all, by default)."""

    def __init__(
        self,
        profile: Profile = V32,
        bugs: frozenset[str] = frozenset(),
        *,
        reachable: Callable[[str, int], bool] = lambda host, port: True,
        resolves: Callable[[str], bool] = lambda host: True,
    ) -> None:
        self.firmware = Firmware(profile.without_latency(), bugs=bugs)
        self.broker = VirtualBroker()
        self.reachable = reachable
        self.resolves = resolves
        self.now = 0.0
        self.output = bytearray()
        #: Messages the firmware took on a live connection, which it must report: at QoS 0
        #: the ones that reached it while connected, at QoS 1 and 2 the ones it acknowledged
        #: (`broker.acknowledged`, added by `taken()`).
        self.handed: list[Publish] = []
        self._inbound: dict[int, Decoder] = {}
        self._queue: list[tuple[float, int, SocketEvent]] = []
        self._seq = itertools.count()

    def power_on(self) -> None:
        """Power on and wait (virtually) until the module is registered."""
        self._queue.clear()
        self.broker.closed()
        self._apply(self.firmware.power_on(self.now))
        p = self.firmware.profile
        self.advance(p.boot_s + p.call_ready_s + 0.01)

    def power_cycle(self) -> None:
        self._apply(self.firmware.power_off())
        self.broker.closed()
        self.power_on()

    def send(self, data: bytes) -> None:
        self._apply(self.firmware.serial_received(data, self.now))

    def read(self) -> bytes:
        """What the module sent since the last read."""
        data, self.output = bytes(self.output), bytearray()
        return data

    def taken(self) -> list[Publish]:
        """Every message the module must have reported by now."""
        return self.handed + self.broker.acknowledged

    def peer_publish(self, topic: str, payload: bytes, qos: int = 0) -> bool:
        """Another client publishes: the broker delivers it if the module subscribed."""
        packet = self.broker.deliver(topic, payload, qos)
        socket_id = self.firmware.socket_id
        if packet is None or socket_id is None:
            return False
        self._later(SocketData(socket_id, encode(packet)))
        return True

    @property
    def network_idle(self) -> bool:
        """No packet or socket event is on its way."""
        return not self._queue

    def next_event(self) -> float | None:
        times = [t for t in (self.firmware.next_deadline(),) if t is not None]
        if self._queue:
            times.append(self._queue[0][0])
        return min(times, default=None)

    def advance(self, seconds: float, *, until: Callable[[], bool] | None = None) -> bool:
        """Let `seconds` of device time pass, or less when `until()` turns true (returns
        whether it did)."""
        end = self.now + seconds
        while True:
            if until is not None and until():
                return True
            at = self.next_event()
            if at is None or at > end:
                self.now = end
                return until is not None and until()
            self.now = max(self.now, at)
            if self._queue and self._queue[0][0] <= self.now:
                event = heapq.heappop(self._queue)[2]
                if isinstance(event, SocketData) and event.socket_id == self.firmware.socket_id:
                    decoder = self._inbound.setdefault(event.socket_id, Decoder())
                    self.handed += [p for p in decoder.feed(event.data) if isinstance(p, Publish)
                                    and p.qos == 0 and self.broker.connected]
                self._apply(self.firmware.socket_event(event, self.now))
            else:
                self._apply(self.firmware.tick(self.now))

    def _later(self, event: SocketEvent) -> None:
        heapq.heappush(self._queue, (self.now + NETWORK_DELAY_S, next(self._seq), event))

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case SerialOut(data=data):
                    self.output += data
                case OpenSocket(socket_id=sid, host=host, port=port, tls=tls):
                    if not self.resolves(host):
                        self._later(SocketFailed(sid, "resolve"))
                    elif tls or not self.reachable(host, port):
                        self._later(SocketFailed(sid, "tls" if tls else "refused"))
                    else:
                        self.broker.opened()
                        self._later(SocketOpened(sid))
                case SendSocket(socket_id=sid, data=data):
                    reply, close = self.broker.receive(data)
                    if reply:
                        self._later(SocketData(sid, reply))
                    if close:
                        self._later(SocketClosed(sid))
                case CloseSocket():
                    self.broker.closed()
