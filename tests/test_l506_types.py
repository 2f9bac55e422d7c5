"""Result URCs and +MSUB lines in every shape the guide prints them (GEN-2, MSUB-3)."""

from __future__ import annotations

import pytest

from hil.at.framer import Framer, Line
from hil.l506.types import (
    CONNECTION_BROKEN_URC,
    MSUB_COUNTED,
    MSUB_MESSAGE_MAX,
    MSUB_MESSAGE_URC,
    MSUB_SLOT_URC,
    Message,
    MqttStatus,
    Result,
    ResultType,
    parse_msub,
    parse_result,
)


def test_result_type_codes() -> None:
    assert [int(t) for t in ResultType] == list(range(9))
    assert ResultType(8) is ResultType.SSL_HANDSHAKE_FAILED
    assert ResultType(1) is ResultType.CONNECTION_BROKEN
    assert [int(s) for s in MqttStatus] == [0, 1, 2]
    assert MqttStatus(2) is MqttStatus.TCP_CONNECTED


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("+MCONFIG: SUCCESS,0", Result("MCONFIG", True, ResultType.NO_ERROR, 0)),
        ("+MCONFIG:SUCCESS,0", Result("MCONFIG", True, ResultType.NO_ERROR, 0)),
        ("+ MIPCLOSE: SUCCESS", Result("MIPCLOSE", True, None)),
        ("+MSUB: SUCCESS", Result("MSUB", True, None)),
        ("+MSUB:SUCCESS", Result("MSUB", True, None)),
        ("+MPUB: FAILURE", Result("MPUB", False, None)),
        ("+MIPSTART: FAILURE,5", Result("MIPSTART", False, ResultType.SERVER_CONNECT_FAILED, 5)),
        ("+MCONNECT: FAILURE,1 ", Result("MCONNECT", False, ResultType.CONNECTION_BROKEN, 1)),
        ("+MIPSTART: FAILURE,9", Result("MIPSTART", False, None, 9)),
    ],
)
def test_parse_result(line: str, expected: Result) -> None:
    assert parse_result(line) == expected
    assert parse_result(line.encode()) == expected
    assert parse_result(Line.of(line.encode(), 0)) == expected


@pytest.mark.parametrize(
    "line", ["OK", "+MSUB: 0", "+MSUB: SUCCESS,5 bytes,hello", "+MPUB: DONE", "MPUB: SUCCESS"]
)
def test_parse_result_refuses_other_lines(line: str) -> None:
    with pytest.raises(ValueError, match="not a result URC"):
        parse_result(line)


def test_guide_example_message() -> None:
    raw = b"+MSUB: mobiletek/topic,32 bytes,message from client_id_mobiletek"
    assert parse_msub(raw) == Message("mobiletek/topic", 32, b"message from client_id_mobiletek")


@pytest.mark.parametrize(("raw", "slot"), [(b"+MSUB: 0", 0), (b"+MSUB:3", 3), (b"+MSUB: 2 ", 2)])
def test_parse_slot(raw: bytes, slot: int) -> None:
    assert parse_msub(raw) == slot


def test_commas_in_topic_and_message() -> None:
    assert parse_msub(b"+MSUB: a,b,c,3 bytes,x,y") == Message("a,b,c", 3, b"x,y")


def test_topic_that_looks_like_a_length_prefers_the_consistent_split() -> None:
    message = parse_msub(b"+MSUB: a,2 bytes,b,3 bytes,xyz")
    assert message == Message("a,2 bytes,b", 3, b"xyz")


def test_message_with_length_pattern_inside() -> None:
    message = parse_msub(b"+MSUB: t,11 bytes,a,1 bytes,b")
    assert message == Message("t", 11, b"a,1 bytes,b")


def test_binary_payload_without_space() -> None:
    payload = b"\r\n\x00\xff,\r"
    assert parse_msub(b"+MSUB:t/\xc3\xa9,6 bytes," + payload) == Message("t/é", 6, payload)


def test_truncated_message_keeps_original_length() -> None:
    payload = b"x" * MSUB_MESSAGE_MAX
    message = parse_msub(b"+MSUB: big,2000 bytes," + payload)
    assert isinstance(message, Message)
    assert (message.length, message.payload, message.truncated) == (2000, payload, True)


@pytest.mark.parametrize("raw", [b"+MSUB: SUCCESS", b"+MPUB: 0", b"+MSUB: t,x bytes,y", b""])
def test_parse_msub_refuses_other_lines(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"\+MSUB"):
        parse_msub(raw)


def test_msub_counted_rule_frames_what_parse_msub_reads() -> None:
    payload = b"1,\r\n2\x00"
    stream = b"\r\n+MSUB: a,b,%d bytes," % len(payload) + payload + b"\r\n\r\n+MSUB: 1\r\n"
    events = Framer([MSUB_COUNTED]).feed(stream, 0)
    assert [e.raw for e in events if isinstance(e, Line)] == [
        b"+MSUB: a,b,%d bytes," % len(payload) + payload,
        b"+MSUB: 1",
    ]
    first, second = (e for e in events if isinstance(e, Line))
    assert parse_msub(first.raw) == Message("a,b", len(payload), payload)
    assert parse_msub(second.raw) == 1


def test_urc_shapes() -> None:
    assert MSUB_SLOT_URC.search(b"+MSUB: 3")
    assert not MSUB_SLOT_URC.search(b"+MSUB: t,1 bytes,3")
    assert MSUB_MESSAGE_URC.search(b"+MSUB: t,1 bytes,\n")
    assert not MSUB_MESSAGE_URC.search(b"+MSUB: 0")
    assert CONNECTION_BROKEN_URC.search(b"+MCONNECT: FAILURE,1")
    assert CONNECTION_BROKEN_URC.search(b"+MCONNECT:FAILURE,1")
    assert not CONNECTION_BROKEN_URC.search(b"+MCONNECT: FAILURE,6")
