"""The client side of one MQTT 3.1.1 connection, sans-I/O (in the style of h11).

The host owns the socket: it writes `data_to_send()` promptly, feeds what arrives to
`receive_data()`, and calls `tick()` no later than `next_deadline()`. Time is whatever clock the
host passes as `now` (seconds); the session never reads a clock itself.

"Sent" means queued for `data_to_send()`: the keep-alive timer restarts whenever a packet is
queued, so the host must not hold bytes back.

Packets may be queued before CONNACK arrives (MQTT 3.1.1 section 3.1.4 lets a client send right
after CONNECT); the broker handles them in order once it accepts the connection, and drops them
with the connection if it refuses.

QoS state lives only as long as this object: nothing is retransmitted on a new connection, and
QoS 2 duplicate suppression covers re-sent PUBLISH packets on this connection only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from hil.mqtt.codec import (
    MAX_PACKET_ID,
    SUBACK_FAILURE,
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


class ProtocolError(Exception):
    """The broker broke the protocol (malformed bytes or a packet out of place): close the link."""


class SessionClosed(RuntimeError):
    """The session was used after DISCONNECT, a refused CONNACK, a ping timeout or an error."""


@dataclass(frozen=True)
class Connected:
    session_present: bool


@dataclass(frozen=True)
class ConnectRefused:
    return_code: int


@dataclass(frozen=True)
class Subscribed:
    packet_id: int
    granted_qos: int  # 0x80: the broker refused the subscription


@dataclass(frozen=True)
class Unsubscribed:
    packet_id: int


@dataclass(frozen=True)
class PublishDone:
    """A QoS 1 publish was acknowledged (PUBACK) or a QoS 2 publish completed (PUBCOMP)."""

    packet_id: int


@dataclass(frozen=True)
class MessageReceived:
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True)
class PingTimeout:
    """No PINGRESP within `keepalive` seconds of a PINGREQ; the session is now closed."""


Event: TypeAlias = (
    Connected
    | ConnectRefused
    | Subscribed
    | Unsubscribed
    | PublishDone
    | MessageReceived
    | PingTimeout
)


class _State(enum.Enum):
    CONNECTING = "connecting"  # CONNECT queued, no CONNACK yet
    CONNECTED = "connected"
    CLOSED = "closed"


class _Await(enum.Enum):
    """What an outbound packet id waits for."""

    SUBACK = "SUBACK"
    UNSUBACK = "UNSUBACK"
    PUBACK = "PUBACK"
    PUBREC = "PUBREC"
    PUBCOMP = "PUBCOMP"


class ClientSession:
    """Client state machine for one connection: CONNECT, QoS 0/1/2 flows, keep-alive.

    `ping_enabled` may be cleared to simulate firmware that stops sending PINGREQ; a PINGREQ
    already outstanding still times out.
    """

    def __init__(self, connect: Connect, now: float) -> None:
        self.ping_enabled = True
        self._keepalive = connect.keepalive
        self._clean_session = connect.clean_session
        self._state = _State.CONNECTING
        self._decoder = Decoder()
        self._out = bytearray()
        self._last_sent = now
        self._ping_sent_at: float | None = None
        self._next_id = 1
        self._awaiting: dict[int, _Await] = {}
        self._requested_qos: dict[int, int] = {}
        self._inbound_qos2: set[int] = set()  # PUBREC sent, PUBREL not yet received
        self._send(connect, now)

    @property
    def connected(self) -> bool:
        """True from an accepting CONNACK until the session closes."""
        return self._state is _State.CONNECTED

    @property
    def closed(self) -> bool:
        """True once the session closed (DISCONNECT sent, or the broker's data was bad)."""
        return self._state is _State.CLOSED

    def data_to_send(self) -> bytes:
        """Drain the queued outbound bytes (b"" if none)."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def subscribe(self, topic: str, qos: int, now: float) -> int:
        """Queue a SUBSCRIBE for one filter; `Subscribed` follows with the same packet id."""
        self._check_open()
        packet = Subscribe(self._allocate_id(), ((topic, qos),))
        self._send(packet, now)
        self._awaiting[packet.packet_id] = _Await.SUBACK
        self._requested_qos[packet.packet_id] = qos
        return packet.packet_id

    def unsubscribe(self, topic: str, now: float) -> int:
        """Queue an UNSUBSCRIBE for one filter; `Unsubscribed` follows with the same packet id."""
        self._check_open()
        packet = Unsubscribe(self._allocate_id(), (topic,))
        self._send(packet, now)
        self._awaiting[packet.packet_id] = _Await.UNSUBACK
        return packet.packet_id

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool, now: float) -> int | None:
        """Queue a PUBLISH; QoS 1/2 return the packet id `PublishDone` will carry, QoS 0 None."""
        self._check_open()
        if qos == 0:
            self._send(Publish(topic, payload, 0, retain), now)
            return None
        packet_id = self._allocate_id()
        self._send(Publish(topic, payload, qos, retain, packet_id=packet_id), now)
        self._awaiting[packet_id] = _Await.PUBACK if qos == 1 else _Await.PUBREC
        return packet_id

    def disconnect(self, now: float) -> None:
        """Queue DISCONNECT (the broker then discards the will) and close; no-op once closed."""
        if self._state is _State.CLOSED:
            return
        self._send(Disconnect(), now)
        self._close()

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Process bytes from the broker; acknowledgements are queued for `data_to_send()`.

        Raises `ProtocolError` (and closes the session) on malformed bytes or a packet a
        client must never receive; events of the same call are lost with the connection.
        Bytes arriving after the session closed are ignored.
        """
        if self._state is _State.CLOSED:
            return []
        try:
            packets = self._decoder.feed(data)
        except MalformedPacket as exc:
            self._close()
            raise ProtocolError(str(exc)) from exc
        events: list[Event] = []
        for packet in packets:
            if self.closed:  # an earlier packet of this data closed it
                break
            try:
                events.extend(self._handle(packet, now))
            except ProtocolError:
                self._close()
                raise
        return events

    def tick(self, now: float) -> list[Event]:
        """Queue PINGREQ when keep-alive is due; report `PingTimeout` when PINGRESP is overdue."""
        if self._state is _State.CLOSED or self._keepalive == 0:
            return []
        if self._ping_sent_at is not None:
            if now >= self._ping_sent_at + self._keepalive:
                self._close()
                return [PingTimeout()]
        elif self.ping_enabled and now >= self._last_sent + self._keepalive:
            self._send(Pingreq(), now)
            self._ping_sent_at = now
        return []

    def next_deadline(self) -> float | None:
        """When `tick()` next has something to do (None: nothing is scheduled)."""
        if self._state is _State.CLOSED or self._keepalive == 0:
            return None
        if self._ping_sent_at is not None:
            return self._ping_sent_at + self._keepalive
        if self.ping_enabled:
            return self._last_sent + self._keepalive
        return None

    # --- internals -------------------------------------------------------------------------------

    def _send(self, packet: Packet, now: float) -> None:
        self._out += encode(packet)
        self._last_sent = now

    def _close(self) -> None:
        self._state = _State.CLOSED
        self._ping_sent_at = None

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise SessionClosed("the MQTT session is closed")

    def _allocate_id(self) -> int:
        """Next packet id in 1..65535, wrapping, skipping ids still waiting for their ack."""
        for _ in range(MAX_PACKET_ID):
            packet_id = self._next_id
            self._next_id = packet_id % MAX_PACKET_ID + 1
            if packet_id not in self._awaiting:
                return packet_id
        raise RuntimeError(f"all {MAX_PACKET_ID} packet ids are in flight")

    def _settle(self, packet_id: int, expected: _Await, name: str) -> None:
        """Retire an outbound packet id; an ack nobody waits for is a broker bug."""
        if self._awaiting.get(packet_id) is not expected:
            raise ProtocolError(f"{name} for packet id {packet_id}, which awaits no {name}")
        del self._awaiting[packet_id]

    def _handle(self, packet: Packet, now: float) -> list[Event]:
        if self._state is _State.CONNECTING:
            if not isinstance(packet, Connack):
                name = type(packet).__name__.upper()
                raise ProtocolError(f"expected CONNACK first, got {name} (MQTT-3.2.0-1)")
            return [self._on_connack(packet)]
        match packet:
            case Publish():
                return self._on_publish(packet, now)
            case Puback(packet_id=packet_id):
                self._settle(packet_id, _Await.PUBACK, "PUBACK")
                return [PublishDone(packet_id)]
            case Pubrec(packet_id=packet_id):
                self._on_pubrec(packet_id, now)
                return []
            case Pubrel(packet_id=packet_id):
                # Answered even for an unknown id (MQTT-4.3.3-2): it may stem from an earlier
                # connection of a persistent session.
                self._inbound_qos2.discard(packet_id)
                self._send(Pubcomp(packet_id), now)
                return []
            case Pubcomp(packet_id=packet_id):
                self._settle(packet_id, _Await.PUBCOMP, "PUBCOMP")
                return [PublishDone(packet_id)]
            case Suback():
                return [self._on_suback(packet)]
            case Unsuback(packet_id=packet_id):
                self._settle(packet_id, _Await.UNSUBACK, "UNSUBACK")
                return [Unsubscribed(packet_id)]
            case Pingresp():
                self._ping_sent_at = None
                return []
            case _:
                name = type(packet).__name__.upper()
                raise ProtocolError(f"a broker never sends {name} to a client")

    def _on_connack(self, packet: Connack) -> Event:
        if packet.return_code != 0:
            self._close()
            return ConnectRefused(packet.return_code)
        if packet.session_present and self._clean_session:
            raise ProtocolError("CONNACK session present for a clean session (MQTT-3.2.2-1)")
        self._state = _State.CONNECTED
        return Connected(packet.session_present)

    def _on_pubrec(self, packet_id: int, now: float) -> None:
        # A repeated PUBREC while waiting for PUBCOMP is answered again, not an error.
        if self._awaiting.get(packet_id) not in (_Await.PUBREC, _Await.PUBCOMP):
            raise ProtocolError(f"PUBREC for packet id {packet_id}, which awaits no PUBREC")
        self._awaiting[packet_id] = _Await.PUBCOMP
        self._send(Pubrel(packet_id), now)

    def _on_suback(self, packet: Suback) -> Event:
        packet_id, codes = packet.packet_id, packet.return_codes
        self._settle(packet_id, _Await.SUBACK, "SUBACK")
        requested = self._requested_qos.pop(packet_id)
        if len(codes) != 1:
            raise ProtocolError(f"SUBACK carries {len(codes)} return codes for 1 filter")
        if codes[0] != SUBACK_FAILURE and codes[0] > requested:
            raise ProtocolError(f"SUBACK grants QoS {codes[0]} above requested {requested}")
        return Subscribed(packet_id, codes[0])

    def _on_publish(self, packet: Publish, now: float) -> list[Event]:
        message = MessageReceived(packet.topic, packet.payload, packet.qos, packet.retain)
        if packet.qos == 0:
            return [message]
        assert packet.packet_id is not None  # guaranteed by Publish for QoS 1 and 2
        if packet.qos == 1:
            self._send(Puback(packet.packet_id), now)
            return [message]
        self._send(Pubrec(packet.packet_id), now)
        if packet.packet_id in self._inbound_qos2:
            return []  # re-sent before PUBREL: already delivered once
        self._inbound_qos2.add(packet.packet_id)
        return [message]
