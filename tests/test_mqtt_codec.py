"""MQTT 3.1.1 codec: wire vectors from the spec, round trips, framing at any split, bad input."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.mqtt import (
    MAX_REMAINING_LENGTH,
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
    Will,
    decode_remaining_length,
    encode,
    encode_remaining_length,
)

FULL_CONNECT = Connect(
    client_id="l506",
    clean_session=True,
    keepalive=60,
    username="user",
    password="pw",
    will=Will("dev/status", b"offline", qos=1, retain=True),
)

ONE_OF_EACH: list[Packet] = [
    FULL_CONNECT,
    Connect("", clean_session=False, keepalive=0),
    Connack(session_present=True, return_code=0),
    Connack(session_present=False, return_code=5),
    Publish("a/b", b""),
    Publish("t", b"\x00\r\n\xff" * 40, qos=1, retain=True, packet_id=1),
    Publish("ü/ß/漢字", bytes(range(256)), qos=2, dup=True, packet_id=65535),
    Puback(7),
    Pubrec(8),
    Pubrel(9),
    Pubcomp(10),
    Subscribe(11, (("a/+/c", 0), ("#", 1), ("x/#", 2))),
    Suback(11, (0, 1, 2, 0x80)),
    Unsubscribe(12, ("a/+/c", "#")),
    Unsuback(12),
    Pingreq(),
    Pingresp(),
    Disconnect(),
]


def decode_one(data: bytes) -> Packet:
    packets = Decoder().feed(data)
    assert len(packets) == 1, packets
    return packets[0]


# --- known-good byte vectors, written out from the MQTT 3.1.1 spec -------------------------------


def test_connect_with_will_username_password_bytes() -> None:
    expected = (
        b"\x10\x2f"  # CONNECT, remaining length 47
        b"\x00\x04MQTT"  # protocol name
        b"\x04"  # protocol level 4
        b"\xee"  # user name, password, will retain, will QoS 1, will flag, clean session
        b"\x00\x3c"  # keepalive 60 s
        b"\x00\x04l506"  # client id
        b"\x00\x0adev/status"  # will topic
        b"\x00\x07offline"  # will message
        b"\x00\x04user"  # user name
        b"\x00\x02pw"  # password
    )
    assert encode(FULL_CONNECT) == expected
    assert decode_one(expected) == FULL_CONNECT


@pytest.mark.parametrize(
    ("packet", "wire"),
    [
        (Connect("", True, 0), b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x00\x00\x00"),
        (Connect("c", False, 300), b"\x10\x0d\x00\x04MQTT\x04\x00\x01\x2c\x00\x01c"),
        (
            Connect("c", False, 1, will=Will("w", b"", qos=2, retain=False)),
            b"\x10\x12\x00\x04MQTT\x04\x14\x00\x01\x00\x01c\x00\x01w\x00\x00",
        ),
        (Connack(True, 0), b"\x20\x02\x01\x00"),
        (Connack(False, 4), b"\x20\x02\x00\x04"),
        (Publish("a/b", b"hi"), b"\x30\x07\x00\x03a/b" + b"hi"),
        (
            Publish("a/b", b"hi", qos=1, retain=True, dup=True, packet_id=10),
            b"\x3b\x09\x00\x03a/b\x00\x0ahi",
        ),
        (Publish("a", b"", qos=2, packet_id=0x1234), b"\x34\x05\x00\x01a\x12\x34"),
        (Puback(1), b"\x40\x02\x00\x01"),
        (Pubrec(0x0102), b"\x50\x02\x01\x02"),
        (Pubrel(0x1234), b"\x62\x02\x12\x34"),
        (Pubcomp(65535), b"\x70\x02\xff\xff"),
        (Subscribe(1, (("a/#", 2),)), b"\x82\x08\x00\x01\x00\x03a/#\x02"),
        (Suback(5, (0, 1, 2, 0x80)), b"\x90\x06\x00\x05\x00\x01\x02\x80"),
        (Unsubscribe(2, ("x",)), b"\xa2\x05\x00\x02\x00\x01x"),
        (Unsuback(2), b"\xb0\x02\x00\x02"),
        (Pingreq(), b"\xc0\x00"),
        (Pingresp(), b"\xd0\x00"),
        (Disconnect(), b"\xe0\x00"),
    ],
)
def test_known_vectors(packet: Packet, wire: bytes) -> None:
    assert encode(packet) == wire
    assert decode_one(wire) == packet


def test_utf8_topic_is_counted_in_bytes() -> None:
    wire = encode(Publish("é", b"x"))
    assert wire == b"\x30\x05\x00\x02\xc3\xa9x"


# --- remaining length ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (321, b"\xc1\x02"),  # the example of spec section 2.2.3
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_boundaries(value: int, wire: bytes) -> None:
    assert encode_remaining_length(value) == wire
    assert decode_remaining_length(wire) == (value, len(wire))
    assert decode_remaining_length(b"\xaa" + wire + b"\x00", 1) == (value, len(wire))
    assert decode_remaining_length(wire[:-1]) is None


@pytest.mark.parametrize("value", [-1, MAX_REMAINING_LENGTH + 1])
def test_remaining_length_out_of_range_is_not_encoded(value: int) -> None:
    with pytest.raises(ValueError, match="remaining length"):
        encode_remaining_length(value)


def test_five_byte_remaining_length_is_rejected() -> None:
    with pytest.raises(MalformedPacket, match="longer than 4 bytes"):
        decode_remaining_length(b"\xff\xff\xff\xff\x7f")
    with pytest.raises(MalformedPacket, match="longer than 4 bytes"):
        Decoder().feed(b"\x30\xff\xff\xff\xff\x7f")
    # Detected as soon as the fifth byte could follow, not when the body is complete.
    with pytest.raises(MalformedPacket, match="longer than 4 bytes"):
        Decoder().feed(b"\x30\x80\x80\x80\x80")


def test_four_byte_remaining_length_round_trip() -> None:
    packet = Publish("t", bytes(2_097_152 - 3))  # topic field 3 bytes: remaining length 2**21
    wire = encode(packet)
    assert wire[:5] == b"\x30\x80\x80\x80\x01"
    assert len(wire) == 5 + 2_097_152
    assert decode_one(wire) == packet


# --- round trips and framing ---------------------------------------------------------------------


@pytest.mark.parametrize("packet", ONE_OF_EACH, ids=lambda p: type(p).__name__)
def test_round_trip_every_packet_type(packet: Packet) -> None:
    assert decode_one(encode(packet)) == packet


STREAM = b"".join(encode(p) for p in ONE_OF_EACH)


def test_decoder_one_byte_at_a_time() -> None:
    decoder = Decoder()
    packets: list[Packet] = []
    for index in range(len(STREAM)):
        packets += decoder.feed(STREAM[index : index + 1])
    assert packets == ONE_OF_EACH


def test_decoder_every_split_point() -> None:
    for split in range(len(STREAM) + 1):
        decoder = Decoder()
        packets = decoder.feed(STREAM[:split]) + decoder.feed(STREAM[split:])
        assert packets == ONE_OF_EACH, split


def test_decoder_returns_packets_as_soon_as_complete() -> None:
    decoder = Decoder()
    assert decoder.feed(b"\xc0\x00\xd0") == [Pingreq()]
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\x00\x30") == [Pingresp()]
    assert decoder.feed(b"\x03\x00\x01a") == [Publish("a", b"")]


# --- property test -------------------------------------------------------------------------------

_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_level = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/+#"), max_size=8
)
topic_names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#"),
    min_size=1,
    max_size=40,
)
topic_filters = st.builds(
    lambda levels, tail: "/".join(levels + tail),
    st.lists(st.one_of(_level, st.just("+")), min_size=1, max_size=5),
    st.sampled_from([[], ["#"]]),
).filter(bool)
packet_ids = st.integers(1, 65535)
qos_levels = st.integers(0, 2)
wills = st.builds(Will, topic_names, st.binary(max_size=50), qos_levels, st.booleans())


@st.composite
def connects(draw: st.DrawFn) -> Connect:
    username = draw(st.none() | st.text(_chars, max_size=20))
    password = None if username is None else draw(st.none() | st.text(_chars, max_size=20))
    return Connect(
        draw(st.text(_chars, max_size=23)),
        draw(st.booleans()),
        draw(st.integers(0, 65535)),
        username,
        password,
        draw(st.none() | wills),
    )


@st.composite
def publishes(draw: st.DrawFn) -> Publish:
    qos = draw(qos_levels)
    return Publish(
        draw(topic_names),
        draw(st.binary(max_size=300)),
        qos,
        draw(st.booleans()),
        draw(st.booleans()) if qos else False,
        draw(packet_ids) if qos else None,
    )


packets = st.one_of(
    connects(),
    st.builds(Connack, st.just(False), st.integers(0, 255)),
    st.builds(Connack, st.just(True), st.just(0)),
    publishes(),
    *(st.builds(cls, packet_ids) for cls in (Puback, Pubrec, Pubrel, Pubcomp, Unsuback)),
    st.builds(
        Subscribe,
        packet_ids,
        st.lists(st.tuples(topic_filters, qos_levels), min_size=1, max_size=4).map(tuple),
    ),
    st.builds(
        Suback,
        packet_ids,
        st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1, max_size=4).map(tuple),
    ),
    st.builds(Unsubscribe, packet_ids, st.lists(topic_filters, min_size=1, max_size=4).map(tuple)),
    st.builds(Pingreq),
    st.builds(Pingresp),
    st.builds(Disconnect),
)


@given(st.lists(packets, min_size=1, max_size=6), st.data())
def test_round_trip_property(sequence: list[Packet], data: st.DataObject) -> None:
    stream = b"".join(encode(p) for p in sequence)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    decoder = Decoder()
    decoded: list[Packet] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoded += decoder.feed(stream[start:end])
    assert decoded == sequence
    assert [encode(p) for p in decoded] == [encode(p) for p in sequence]


# --- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x00\x00", "unknown control packet type 0"),
        (b"\xf0\x00", "unknown control packet type 15"),
        (b"\x60\x02\x00\x01", "PUBREL: fixed-header flags must be 0b0010"),
        (b"\x63\x02\x00\x01", "PUBREL: fixed-header flags"),
        (b"\x80\x06\x00\x01\x00\x01a\x00", "SUBSCRIBE: fixed-header flags"),
        (b"\xa0\x05\x00\x01\x00\x01a", "UNSUBSCRIBE: fixed-header flags"),
        (b"\x41\x02\x00\x01", "PUBACK: fixed-header flags"),
        (b"\xc1\x00", "PINGREQ: fixed-header flags"),
        (b"\xe8\x00", "DISCONNECT: fixed-header flags"),
        (b"\x36\x03\x00\x01a", "QoS 3"),
        (b"\x38\x03\x00\x01a", "DUP must be 0 for QoS 0"),
        (b"\x30\x03\x00\x05a", "PUBLISH: truncated topic name"),
        (b"\x30\x01\x00", "PUBLISH: truncated topic name length"),
        (b"\x32\x03\x00\x01a", "PUBLISH: truncated packet id"),
        (b"\x30\x04\x00\x02\xc3\x28", "PUBLISH: topic name is not valid UTF-8"),
        (b"\x30\x05\x00\x03\xed\xa0\x80", "not valid UTF-8"),  # encoded surrogate U+D800
        (b"\x30\x03\x00\x01\x00", "U+0000"),
        (b"\x30\x05\x00\x03a/#", "wildcards"),
        (b"\x30\x05\x00\x03a/+", "wildcards"),
        (b"\x30\x02\x00\x00", "topic name must not be empty"),
        (b"\x32\x05\x00\x01a\x00\x00", "packet id must be 1..65535"),
        (b"\x40\x01\x00", "PUBACK: truncated packet id"),
        (b"\x40\x03\x00\x01\x00", "PUBACK: 1 unexpected trailing bytes"),
        (b"\x70\x02\x00\x00", "PUBCOMP: packet id must be 1..65535"),
        (b"\xd0\x01\x00", "PINGRESP: 1 unexpected trailing bytes"),
        (b"\xe0\x02\x00\x00", "DISCONNECT: 2 unexpected trailing bytes"),
        (b"\x20\x02\x02\x00", "CONNACK: reserved acknowledge flags"),
        (b"\x20\x02\x01\x05", "session present must be 0"),
        (b"\x20\x01\x00", "CONNACK: truncated return code"),
        (b"\x20\x03\x00\x00\x00", "CONNACK: 1 unexpected trailing bytes"),
        (b"\x10\x0e\x00\x06MQIsdp\x03\x02\x00\x00\x00\x00", "protocol name must be 'MQTT'"),
        (b"\x10\x0c\x00\x04MQTT\x03\x02\x00\x00\x00\x00", "protocol level 3"),
        (b"\x10\x0c\x00\x04MQTT\x04\x03\x00\x00\x00\x00", "reserved connect flag"),
        (b"\x10\x0c\x00\x04MQTT\x04\x0a\x00\x00\x00\x00", "will QoS and will retain must be 0"),
        (b"\x10\x0c\x00\x04MQTT\x04\x22\x00\x00\x00\x00", "will QoS and will retain must be 0"),
        (b"\x10\x0e\x00\x04MQTT\x04\x42\x00\x00\x00\x00\x00\x00", "a password needs a user"),
        (b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x00\x00\x00\x00", "1 unexpected trailing bytes"),
        (b"\x10\x0c\x00\x04MQTT\x04\xc2\x00\x00\x00\x00", "CONNECT: truncated user name"),
        (
            b"\x10\x11\x00\x04MQTT\x04\x1e\x00\x00\x00\x00\x00\x01w\x00\x00",
            "will QoS must be 0, 1 or 2",
        ),
        (b"\x82\x02\x00\x01", "SUBSCRIBE needs a non-empty tuple"),
        (b"\x82\x06\x00\x01\x00\x01a\x04", "reserved bits of requested QoS"),
        (b"\x82\x06\x00\x01\x00\x01a\x03", "requested QoS must be 0, 1 or 2"),
        (b"\x82\x05\x00\x01\x00\x01a", "SUBSCRIBE: truncated requested QoS"),
        (b"\x82\x0a\x00\x01\x00\x05a/#/b\x00", "'#' must be the whole last level"),
        (b"\x82\x08\x00\x01\x00\x03a+b\x00", "'+' must be a whole level"),
        (b"\x90\x03\x00\x01\x03", "SUBACK return code must be 0, 1, 2 or 0x80"),
        (b"\x90\x02\x00\x01", "SUBACK needs a non-empty tuple"),
        (b"\xa2\x02\x00\x01", "UNSUBSCRIBE needs a non-empty tuple"),
        (b"\xa2\x04\x00\x01\x00\x00", "topic filter must not be empty"),
    ],
)
def test_malformed_input_is_rejected(wire: bytes, message: str) -> None:
    with pytest.raises(MalformedPacket, match=re.escape(message)):
        Decoder().feed(wire)


def test_bad_first_byte_is_rejected_before_the_body_arrives() -> None:
    with pytest.raises(MalformedPacket, match="PUBREL"):
        Decoder().feed(b"\x60")


def test_decoder_stays_failed_after_malformed_input() -> None:
    decoder = Decoder()
    with pytest.raises(MalformedPacket):
        decoder.feed(b"\xc0\x00\x00\x00")  # good PINGREQ, then packet type 0
    with pytest.raises(MalformedPacket, match="decoder already failed: unknown control packet"):
        decoder.feed(b"\xd0\x00")


def test_malformed_packet_is_a_value_error() -> None:
    assert issubclass(MalformedPacket, ValueError)


# --- construction refuses packets that cannot go on the wire -------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Publish("t", "text"), TypeError, "payload must be bytes"),  # type: ignore[arg-type]
        (lambda: Publish("t", b"", qos=3, packet_id=1), ValueError, "QoS must be 0, 1 or 2"),
        (lambda: Publish("t", b"", qos=1), ValueError, "packet id"),
        (lambda: Publish("t", b"", packet_id=1), ValueError, "QoS 0 PUBLISH has no packet id"),
        (lambda: Publish("a/+", b""), ValueError, "wildcards"),
        (lambda: Publish("\ud800", b""), ValueError, "not valid UTF-8"),
        (lambda: Publish("x" * 65_536, b""), ValueError, "65536 bytes encoded"),
        (lambda: Connect("c", True, 65_536), ValueError, "keepalive"),
        (lambda: Connect("c", True, -1), ValueError, "keepalive"),
        (lambda: Connect("c", True, 1, password="p"), ValueError, "needs a user name"),
        (lambda: Will("w/#", b"", 0, False), ValueError, "will topic must not contain"),
        (lambda: Subscribe(1, ()), ValueError, "non-empty"),
        (lambda: Subscribe(0, (("a", 0),)), ValueError, "packet id"),
        (lambda: Subscribe(1, (("#/a", 0),)), ValueError, "'#'"),
        (lambda: Suback(1, (3,)), ValueError, "return code"),
        (lambda: Puback(65_536), ValueError, "packet id"),
        (lambda: Connack(True, 1), ValueError, "session present"),
    ],
)
def test_invalid_packets_cannot_be_built(
    build: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        build()


def test_encode_rejects_non_packets() -> None:
    with pytest.raises(TypeError, match="not an MQTT packet"):
        encode("PINGREQ")  # type: ignore[arg-type]


def test_largest_string_field_is_accepted() -> None:
    packet = Publish("x" * 65_535, b"")
    assert decode_one(encode(packet)) == packet


def test_a_qos_1_or_2_publish_is_acknowledged_by_its_packet_id() -> None:
    assert Publish("t", b"x", 1, packet_id=7).ack_id == 7
    assert Publish("t", b"x", 2, packet_id=65535).ack_id == 65535
    with pytest.raises(ValueError, match="QoS 0"):
        _ = Publish("t", b"x").ack_id
