"""MQTT 3.1.1 control packets: frozen dataclasses, `encode()` and an incremental `Decoder`.

Sans-I/O: bytes in, packets out. Both directions are covered (client and server packets) so
that tests can round-trip everything and a test broker could be built on the same code.

Packets validate themselves on construction (`ValueError`/`TypeError`), so an invalid packet can
neither be encoded nor come out of the decoder; the decoder reports every violation, on the wire
or in the content, as `MalformedPacket`. Topic names, filters, client ids, user names and
passwords are `str` (UTF-8 on the wire); payloads and will messages are raw `bytes`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeGuard

PROTOCOL_NAME = "MQTT"
PROTOCOL_LEVEL = 4
MAX_REMAINING_LENGTH = 268_435_455
MAX_PACKET_ID = 65_535
SUBACK_FAILURE = 0x80

_MAX_FIELD = 65_535  # two-byte length prefix of strings and binary data


class MalformedPacket(ValueError):
    """The bytes break MQTT 3.1.1; the receiver must close the connection (MQTT-4.8.0-1)."""


# --- validation shared by construction (encode side) and decoding --------------------------------


def _check_str(value: object, what: str) -> str:
    """UTF-8 encoded string rules of section 1.5.3: encodable, no U+0000, at most 65535 bytes."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, got {type(value).__name__}")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid UTF-8 ({exc.reason})") from None
    if "\x00" in value:
        raise ValueError(f"{what} must not contain U+0000")
    if len(raw) > _MAX_FIELD:
        raise ValueError(f"{what} is {len(raw)} bytes encoded, the limit is {_MAX_FIELD}")
    return value


def _check_bytes(value: object, what: str, limit: int) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} bytes, the limit is {limit}")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_qos(qos: object, what: str) -> None:
    if not _is_int(qos) or qos not in (0, 1, 2):
        raise ValueError(f"{what} must be 0, 1 or 2, got {qos!r}")


def _check_packet_id(packet_id: object) -> None:
    if not _is_int(packet_id) or not 1 <= packet_id <= MAX_PACKET_ID:
        raise ValueError(f"packet id must be 1..{MAX_PACKET_ID}, got {packet_id!r}")


def _check_topic_name(topic: object, what: str = "topic name") -> None:
    """Topic names (PUBLISH, will) are never empty and never hold wildcards (MQTT-3.3.2-2)."""
    topic = _check_str(topic, what)
    if not topic:
        raise ValueError(f"{what} must not be empty")
    if "+" in topic or "#" in topic:
        raise ValueError(f"{what} must not contain wildcards: {topic!r}")


def _check_topic_filter(topic: object) -> None:
    """'#' only as the whole last level, '+' only as a whole level (section 4.7.1)."""
    topic = _check_str(topic, "topic filter")
    if not topic:
        raise ValueError("topic filter must not be empty")
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"'#' must be the whole last level of a topic filter: {topic!r}")
        if "+" in level and level != "+":
            raise ValueError(f"'+' must be a whole level of a topic filter: {topic!r}")


# --- packets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Will:
    """Last will, published by the broker when the connection is lost without DISCONNECT."""

    topic: str
    message: bytes
    qos: int
    retain: bool

    def __post_init__(self) -> None:
        _check_topic_name(self.topic, "will topic")
        _check_bytes(self.message, "will message", _MAX_FIELD)
        _check_qos(self.qos, "will QoS")


@dataclass(frozen=True)
class Connect:
    client_id: str
    clean_session: bool
    keepalive: int
    username: str | None = None
    password: str | None = None
    will: Will | None = None

    def __post_init__(self) -> None:
        _check_str(self.client_id, "client id")
        if not _is_int(self.keepalive) or not 0 <= self.keepalive <= 65_535:
            raise ValueError(f"keepalive must be 0..65535 seconds, got {self.keepalive!r}")
        if self.username is not None:
            _check_str(self.username, "user name")
        if self.password is not None:
            _check_str(self.password, "password")
            if self.username is None:
                raise ValueError("a password needs a user name (MQTT-3.1.2-22)")


@dataclass(frozen=True)
class Connack:
    session_present: bool
    return_code: int

    def __post_init__(self) -> None:
        if not _is_int(self.return_code) or not 0 <= self.return_code <= 255:
            raise ValueError(f"return code must be 0..255, got {self.return_code!r}")
        if self.session_present and self.return_code != 0:
            raise ValueError("session present must be 0 when the connection is refused")


@dataclass(frozen=True)
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None

    def __post_init__(self) -> None:
        _check_topic_name(self.topic)
        _check_bytes(self.payload, "payload", MAX_REMAINING_LENGTH)
        _check_qos(self.qos, "QoS")
        if self.qos == 0:
            if self.packet_id is not None:
                raise ValueError("a QoS 0 PUBLISH has no packet id")
            if self.dup:
                raise ValueError("DUP must be 0 for QoS 0 (MQTT-3.3.1-2)")
        else:
            _check_packet_id(self.packet_id)

    @property
    def ack_id(self) -> int:
        """The packet id that acknowledges a QoS 1 or 2 PUBLISH (the constructor saw to it
        that it has one); ValueError for QoS 0."""
        if self.packet_id is None:
            raise ValueError("a QoS 0 PUBLISH has no packet id")
        return self.packet_id


@dataclass(frozen=True)
class Puback:
    packet_id: int

    def __post_init__(self) -> None:
        _check_packet_id(self.packet_id)


@dataclass(frozen=True)
class Pubrec:
    packet_id: int

    def __post_init__(self) -> None:
        _check_packet_id(self.packet_id)


@dataclass(frozen=True)
class Pubrel:
    packet_id: int

    def __post_init__(self) -> None:
        _check_packet_id(self.packet_id)


@dataclass(frozen=True)
class Pubcomp:
    packet_id: int

    def __post_init__(self) -> None:
        _check_packet_id(self.packet_id)


@dataclass(frozen=True)
class Subscribe:
    packet_id: int
    topics: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        _check_packet_id(self.packet_id)
        if not isinstance(self.topics, tuple) or not self.topics:
            raise ValueError("SUBSCRIBE needs a non-empty tuple of (filter, qos) (MQTT-3.8.3-3)")
        for topic, qos in self.topics:
            _check_topic_filter(topic)
            _check_qos(qos, "requested QoS")


@dataclass(frozen=True)
class Suback:
    packet_id: int
    return_codes: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_packet_id(self.packet_id)
        if not isinstance(self.return_codes, tuple) or not self.return_codes:
            raise ValueError("SUBACK needs a non-empty tuple of return codes")
        for code in self.return_codes:
            if not _is_int(code) or code not in (0, 1, 2, SUBACK_FAILURE):
                raise ValueError(f"SUBACK return code must be 0, 1, 2 or 0x80, got {code!r}")


@dataclass(frozen=True)
class Unsubscribe:
    packet_id: int
    topics: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_packet_id(self.packet_id)
        if not isinstance(self.topics, tuple) or not self.topics:
            raise ValueError("UNSUBSCRIBE needs a non-empty tuple of filters (MQTT-3.10.3-2)")
        for topic in self.topics:
            _check_topic_filter(topic)


@dataclass(frozen=True)
class Unsuback:
    packet_id: int

    def __post_init__(self) -> None:
        _check_packet_id(self.packet_id)


@dataclass(frozen=True)
class Pingreq:
    pass


@dataclass(frozen=True)
class Pingresp:
    pass


@dataclass(frozen=True)
class Disconnect:
    pass


Packet: TypeAlias = (
    Connect
    | Connack
    | Publish
    | Puback
    | Pubrec
    | Pubrel
    | Pubcomp
    | Subscribe
    | Suback
    | Unsubscribe
    | Unsuback
    | Pingreq
    | Pingresp
    | Disconnect
)

# Control packet type (high nibble of byte 1) -> name and the fixed-header flags it requires;
# None means the flags carry data (PUBLISH).
_TYPES: dict[int, tuple[str, int | None]] = {
    1: ("CONNECT", 0b0000),
    2: ("CONNACK", 0b0000),
    3: ("PUBLISH", None),
    4: ("PUBACK", 0b0000),
    5: ("PUBREC", 0b0000),
    6: ("PUBREL", 0b0010),
    7: ("PUBCOMP", 0b0000),
    8: ("SUBSCRIBE", 0b0010),
    9: ("SUBACK", 0b0000),
    10: ("UNSUBSCRIBE", 0b0010),
    11: ("UNSUBACK", 0b0000),
    12: ("PINGREQ", 0b0000),
    13: ("PINGRESP", 0b0000),
    14: ("DISCONNECT", 0b0000),
}


# --- encoding ------------------------------------------------------------------------------------


def encode_remaining_length(n: int) -> bytes:
    """The variable-length Remaining Length of section 2.2.3: 1 to 4 bytes, 7 bits each."""
    if not 0 <= n <= MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length must be 0..{MAX_REMAINING_LENGTH}, got {n}")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _u16(len(raw)) + raw


def _binary(value: bytes) -> bytes:
    return _u16(len(value)) + value


def _connect_body(packet: Connect) -> bytes:
    flags = 0x02 if packet.clean_session else 0
    tail = _string(packet.client_id)
    if packet.will is not None:
        will = packet.will
        flags |= 0x04 | will.qos << 3 | (0x20 if will.retain else 0)
        tail += _string(will.topic) + _binary(will.message)
    if packet.username is not None:
        flags |= 0x80
        tail += _string(packet.username)
    if packet.password is not None:
        flags |= 0x40
        tail += _string(packet.password)
    return _string(PROTOCOL_NAME) + bytes((PROTOCOL_LEVEL, flags)) + _u16(packet.keepalive) + tail


#: The fixed header's first byte of each packet type; PUBLISH adds its flags (DUP, QoS,
#: RETAIN); SUBSCRIBE, UNSUBSCRIBE and PUBREL carry the required 0b0010 (MQTT-2.2.2-2).
_FIRST_BYTE: dict[type, int] = {
    Connect: 0x10, Connack: 0x20, Publish: 0x30, Puback: 0x40, Pubrec: 0x50, Pubrel: 0x62,
    Pubcomp: 0x70, Subscribe: 0x82, Suback: 0x90, Unsubscribe: 0xA2, Unsuback: 0xB0,
    Pingreq: 0xC0, Pingresp: 0xD0, Disconnect: 0xE0,
}


def encode(packet: Packet) -> bytes:
    """The complete wire form of `packet`: fixed header, variable header and payload."""
    if type(packet) not in _FIRST_BYTE:
        raise TypeError(f"not an MQTT packet: {packet!r}")
    first = _FIRST_BYTE[type(packet)]
    match packet:
        case Connect():
            body = _connect_body(packet)
        case Connack(session_present=present, return_code=code):
            body = bytes((1 if present else 0, code))
        case Publish(topic=topic, payload=payload, qos=qos, packet_id=packet_id):
            first |= (0x08 if packet.dup else 0) | qos << 1 | (1 if packet.retain else 0)
            body = _string(topic) + (b"" if packet_id is None else _u16(packet_id)) + payload
        case (Puback(packet_id=packet_id) | Pubrec(packet_id=packet_id)
              | Pubrel(packet_id=packet_id) | Pubcomp(packet_id=packet_id)
              | Unsuback(packet_id=packet_id)):
            body = _u16(packet_id)
        case Subscribe(packet_id=packet_id, topics=topics):
            body = _u16(packet_id) + b"".join(_string(t) + bytes((q,)) for t, q in topics)
        case Suback(packet_id=packet_id, return_codes=codes):
            body = _u16(packet_id) + bytes(codes)
        case Unsubscribe(packet_id=packet_id, topics=topics):
            body = _u16(packet_id) + b"".join(_string(t) for t in topics)
        case _:  # PINGREQ, PINGRESP, DISCONNECT: the fixed header alone
            body = b""
    return bytes((first,)) + encode_remaining_length(len(body)) + body


# --- decoding ------------------------------------------------------------------------------------


def decode_remaining_length(data: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """Read a Remaining Length at `data[start:]`.

    Returns `(value, bytes_used)`, or None when the length is not complete yet (the caller
    waits for more data). More than four length bytes is a `MalformedPacket`.
    """
    value = 0
    for index in range(4):
        if start + index >= len(data):
            return None
        byte = data[start + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, index + 1
    raise MalformedPacket("remaining length is longer than 4 bytes")


class _Reader:
    """Cursor over one packet body; every short read is a `MalformedPacket` naming the field."""

    def __init__(self, kind: str, body: bytes) -> None:
        self._kind = kind
        self._body = body
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._body) - self._pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.remaining:
            raise MalformedPacket(
                f"{self._kind}: truncated {what} (needs {n} bytes, {self.remaining} left)"
            )
        chunk = self._body[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def binary(self, what: str) -> bytes:
        return self.take(self.u16(f"{what} length"), what)

    def string(self, what: str) -> str:
        raw = self.binary(what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPacket(
                f"{self._kind}: {what} is not valid UTF-8 ({exc.reason})"
            ) from None

    def rest(self) -> bytes:
        return self.take(self.remaining, "payload")

    def end(self) -> None:
        if self.remaining:
            raise MalformedPacket(f"{self._kind}: {self.remaining} unexpected trailing bytes")


def _parse_connect(r: _Reader) -> Connect:
    name = r.string("protocol name")
    if name != PROTOCOL_NAME:
        raise MalformedPacket(f"CONNECT: protocol name must be {PROTOCOL_NAME!r}, got {name!r}")
    level = r.u8("protocol level")
    if level != PROTOCOL_LEVEL:
        raise MalformedPacket(f"CONNECT: protocol level {level} is not MQTT 3.1.1 (4)")
    flags = r.u8("connect flags")
    if flags & 0x01:
        raise MalformedPacket("CONNECT: reserved connect flag must be 0 (MQTT-3.1.2-3)")
    will_qos, will_retain = flags >> 3 & 0x03, bool(flags & 0x20)
    if not flags & 0x04 and (will_qos or will_retain):
        raise MalformedPacket("CONNECT: will QoS and will retain must be 0 without a will")
    keepalive = r.u16("keepalive")
    client_id = r.string("client id")
    will = None
    if flags & 0x04:
        topic = r.string("will topic")
        will = Will(topic, r.binary("will message"), will_qos, will_retain)
    username = r.string("user name") if flags & 0x80 else None
    password = r.string("password") if flags & 0x40 else None
    r.end()
    return Connect(client_id, bool(flags & 0x02), keepalive, username, password, will)


def _parse_connack(r: _Reader) -> Connack:
    flags = r.u8("acknowledge flags")
    if flags & 0xFE:
        raise MalformedPacket("CONNACK: reserved acknowledge flags must be 0")
    code = r.u8("return code")
    r.end()
    return Connack(bool(flags), code)


def _parse_publish(r: _Reader, flags: int) -> Publish:
    qos = flags >> 1 & 0x03
    topic = r.string("topic name")
    packet_id = r.u16("packet id") if qos else None
    return Publish(topic, r.rest(), qos, bool(flags & 0x01), bool(flags & 0x08), packet_id)


def _parse_subscribe(r: _Reader) -> Subscribe:
    packet_id = r.u16("packet id")
    topics = []
    while r.remaining:
        topic = r.string("topic filter")
        qos = r.u8("requested QoS")
        if qos & 0xFC:
            raise MalformedPacket(f"SUBSCRIBE: reserved bits of requested QoS set: {qos:#04x}")
        topics.append((topic, qos))
    return Subscribe(packet_id, tuple(topics))


def _parse_unsubscribe(r: _Reader) -> Unsubscribe:
    packet_id = r.u16("packet id")
    topics = []
    while r.remaining:
        topics.append(r.string("topic filter"))
    return Unsubscribe(packet_id, tuple(topics))


def _parse_id_only(r: _Reader) -> int:
    packet_id = r.u16("packet id")
    r.end()
    return packet_id


def _parse_suback(r: _Reader) -> Suback:
    packet_id = r.u16("packet id")
    return Suback(packet_id, tuple(r.rest()))


def _with_id(make: Callable[[int], Packet]) -> Callable[[_Reader], Packet]:
    """The parser of a packet whose body is its packet id alone."""
    return lambda r: make(_parse_id_only(r))


def _bodiless(make: Callable[[], Packet]) -> Callable[[_Reader], Packet]:
    """The parser of a packet that has no body."""

    def parse(r: _Reader) -> Packet:
        r.end()
        return make()

    return parse


#: The body's parser of each control packet type but PUBLISH (which also needs the flags),
#: by the first byte's high nibble, checked before the body was read (_check_first_byte).
_PARSERS: dict[int, Callable[[_Reader], Packet]] = {
    1: _parse_connect, 2: _parse_connack, 4: _with_id(Puback), 5: _with_id(Pubrec),
    6: _with_id(Pubrel), 7: _with_id(Pubcomp), 8: _parse_subscribe, 9: _parse_suback,
    10: _parse_unsubscribe, 11: _with_id(Unsuback), 12: _bodiless(Pingreq),
    13: _bodiless(Pingresp), 14: _bodiless(Disconnect),
}


def _parse(first: int, body: bytes) -> Packet:
    kind = first >> 4
    name = _TYPES[kind][0]
    r = _Reader(name, body)
    try:
        return _parse_publish(r, first & 0x0F) if kind == 3 else _PARSERS[kind](r)
    except MalformedPacket:
        raise
    except (ValueError, TypeError) as exc:
        raise MalformedPacket(f"{name}: {exc}") from None


def _check_first_byte(first: int) -> None:
    """Reject a bad fixed header as soon as its first byte arrives, before waiting for a body."""
    kind, flags = first >> 4, first & 0x0F
    if kind not in _TYPES:
        raise MalformedPacket(f"unknown control packet type {kind} (first byte {first:#04x})")
    name, required = _TYPES[kind]
    if required is None:
        if flags & 0x06 == 0x06:
            raise MalformedPacket("PUBLISH: QoS 3 is not allowed (MQTT-3.3.1-4)")
    elif flags != required:
        raise MalformedPacket(
            f"{name}: fixed-header flags must be {required:#06b}, got {flags:#06b} (MQTT-2.2.2-2)"
        )


class Decoder:
    """Incremental decoder: feed bytes split anywhere, get back every packet completed so far.

    A `MalformedPacket` leaves the stream without a trustworthy frame boundary, so the decoder
    stays failed: packets of the same chunk that preceded the bad one are dropped with it, and
    every later `feed` raises again. The connection is to be closed anyway (MQTT-4.8.0-1).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._error: MalformedPacket | None = None

    def feed(self, data: bytes) -> list[Packet]:
        if self._error is not None:
            raise MalformedPacket(f"decoder already failed: {self._error}")
        self._buffer += data
        try:
            return self._drain()
        except MalformedPacket as exc:
            self._error = exc
            self._buffer.clear()
            raise

    def _drain(self) -> list[Packet]:
        packets: list[Packet] = []
        buf = self._buffer
        while buf:
            _check_first_byte(buf[0])
            length = decode_remaining_length(buf, 1)
            if length is None:
                break
            value, used = length
            end = 1 + used + value
            if len(buf) < end:
                break
            packets.append(_parse(buf[0], bytes(buf[1 + used : end])))
            del buf[:end]
        return packets
