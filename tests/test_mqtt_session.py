"""ClientSession: CONNECT/CONNACK, QoS 0/1/2 in both directions, keep-alive, packet ids."""

from __future__ import annotations

import pytest

from hil.mqtt import (
    ClientSession,
    Connack,
    Connect,
    Connected,
    ConnectRefused,
    Decoder,
    Disconnect,
    MessageReceived,
    Packet,
    Pingreq,
    Pingresp,
    PingTimeout,
    ProtocolError,
    Puback,
    Pubcomp,
    Publish,
    PublishDone,
    Pubrec,
    Pubrel,
    SessionClosed,
    Suback,
    Subscribe,
    Subscribed,
    Unsuback,
    Unsubscribe,
    Unsubscribed,
    Will,
    encode,
)


def sent(session: ClientSession) -> list[Packet]:
    """What the session queued since the last call, decoded."""
    return Decoder().feed(session.data_to_send())


def wire(*packets: Packet) -> bytes:
    return b"".join(encode(p) for p in packets)


def connected_session(keepalive: int = 60, now: float = 0.0) -> ClientSession:
    session = ClientSession(Connect("dev", clean_session=True, keepalive=keepalive), now)
    assert session.receive_data(wire(Connack(False, 0)), now) == [Connected(False)]
    session.data_to_send()
    return session


# --- connect -------------------------------------------------------------------------------------


def test_connect_is_queued_on_construction() -> None:
    connect = Connect(
        "l506-1",
        clean_session=False,
        keepalive=30,
        username="u",
        password="p",
        will=Will("dev/lwt", b"gone", qos=1, retain=True),
    )
    session = ClientSession(connect, now=0.0)
    data = session.data_to_send()
    assert data == encode(connect)
    assert data[9] == 0b1110_1100  # user, password, will retain, will QoS 1, will; not clean
    assert session.data_to_send() == b""
    assert not session.connected


def test_clean_session_flag_without_will() -> None:
    session = ClientSession(Connect("c", clean_session=True, keepalive=5), now=0.0)
    assert session.data_to_send()[9] == 0b0000_0010


def test_connack_accepted() -> None:
    session = ClientSession(Connect("c", clean_session=False, keepalive=5), now=0.0)
    session.data_to_send()
    assert session.receive_data(wire(Connack(True, 0)), 0.1) == [Connected(True)]
    assert session.connected


def test_connack_refused_closes_the_session() -> None:
    session = ClientSession(Connect("c", clean_session=True, keepalive=5), now=0.0)
    session.data_to_send()
    assert session.receive_data(wire(Connack(False, 5)), 0.1) == [ConnectRefused(5)]
    assert not session.connected
    assert session.next_deadline() is None
    assert session.tick(100.0) == []
    with pytest.raises(SessionClosed):
        session.publish("t", b"x", 0, False, 0.2)


def test_session_present_for_a_clean_session_is_a_protocol_error() -> None:
    session = ClientSession(Connect("c", clean_session=True, keepalive=5), now=0.0)
    with pytest.raises(ProtocolError, match=r"MQTT-3\.2\.2-1"):
        session.receive_data(wire(Connack(True, 0)), 0.1)
    assert not session.connected


def test_anything_before_connack_is_a_protocol_error() -> None:
    session = ClientSession(Connect("c", clean_session=True, keepalive=5), now=0.0)
    with pytest.raises(ProtocolError, match="expected CONNACK first, got PUBLISH"):
        session.receive_data(wire(Publish("t", b"x")), 0.1)


def test_requests_before_connack_are_queued_in_order() -> None:
    connect = Connect("c", clean_session=True, keepalive=5)
    session = ClientSession(connect, now=0.0)
    assert session.subscribe("a/#", 1, 0.0) == 1
    assert session.publish("a/b", b"early", 1, False, 0.0) == 2
    assert sent(session) == [
        connect,
        Subscribe(1, (("a/#", 1),)),
        Publish("a/b", b"early", 1, packet_id=2),
    ]
    events = session.receive_data(wire(Connack(False, 0), Suback(1, (1,)), Puback(2)), 0.1)
    assert events == [Connected(False), Subscribed(1, 1), PublishDone(2)]


def test_second_connack_is_a_protocol_error() -> None:
    session = connected_session()
    with pytest.raises(ProtocolError, match="never sends CONNACK"):
        session.receive_data(wire(Connack(False, 0)), 1.0)
    assert not session.connected


@pytest.mark.parametrize(
    "packet",
    [
        Connect("x", True, 0),
        Subscribe(1, (("a", 0),)),
        Unsubscribe(1, ("a",)),
        Pingreq(),
        Disconnect(),
    ],
    ids=lambda p: type(p).__name__,
)
def test_client_only_packets_from_the_broker_are_protocol_errors(packet: Packet) -> None:
    session = connected_session()
    with pytest.raises(ProtocolError, match="a broker never sends"):
        session.receive_data(encode(packet), 1.0)
    assert not session.connected
    assert session.receive_data(wire(Pingresp()), 1.1) == []  # closed: ignored


def test_malformed_bytes_are_a_protocol_error() -> None:
    session = connected_session()
    with pytest.raises(ProtocolError, match="unknown control packet type 0"):
        session.receive_data(b"\x00\x00", 1.0)
    assert not session.connected


# --- outbound QoS 0/1/2 --------------------------------------------------------------------------


def test_publish_qos0() -> None:
    session = connected_session()
    assert session.publish("a/b", b"\x00\xff", 0, True, 1.0) is None
    assert sent(session) == [Publish("a/b", b"\x00\xff", 0, retain=True)]


def test_publish_qos1_done_on_puback() -> None:
    session = connected_session()
    packet_id = session.publish("a/b", b"one", 1, False, 1.0)
    assert packet_id == 1
    assert sent(session) == [Publish("a/b", b"one", 1, packet_id=1)]
    assert session.receive_data(wire(Puback(1)), 1.1) == [PublishDone(1)]
    assert sent(session) == []
    with pytest.raises(ProtocolError, match="PUBACK for packet id 1"):
        session.receive_data(wire(Puback(1)), 1.2)


def test_publish_qos2_pubrec_pubrel_pubcomp() -> None:
    session = connected_session()
    packet_id = session.publish("a/b", b"two", 2, False, 1.0)
    assert sent(session) == [Publish("a/b", b"two", 2, packet_id=packet_id)]
    assert session.receive_data(wire(Pubrec(packet_id)), 1.1) == []
    assert sent(session) == [Pubrel(packet_id)]
    # A repeated PUBREC is answered again with PUBREL.
    assert session.receive_data(wire(Pubrec(packet_id)), 1.2) == []
    assert sent(session) == [Pubrel(packet_id)]
    assert session.receive_data(wire(Pubcomp(packet_id)), 1.3) == [PublishDone(packet_id)]
    assert sent(session) == []


def test_pubcomp_before_pubrec_is_a_protocol_error() -> None:
    session = connected_session()
    packet_id = session.publish("a/b", b"two", 2, False, 1.0)
    with pytest.raises(ProtocolError, match="PUBCOMP"):
        session.receive_data(wire(Pubcomp(packet_id)), 1.1)


def test_puback_for_a_qos2_publish_is_a_protocol_error() -> None:
    session = connected_session()
    packet_id = session.publish("a/b", b"two", 2, False, 1.0)
    with pytest.raises(ProtocolError, match="PUBACK"):
        session.receive_data(wire(Puback(packet_id)), 1.1)


def test_pubrec_for_a_qos1_publish_is_a_protocol_error() -> None:
    session = connected_session()
    packet_id = session.publish("a/b", b"one", 1, False, 1.0)
    with pytest.raises(ProtocolError, match="PUBREC"):
        session.receive_data(wire(Pubrec(packet_id)), 1.1)


def test_invalid_publish_is_refused_locally() -> None:
    session = connected_session()
    with pytest.raises(ValueError, match="wildcards"):
        session.publish("a/#", b"", 0, False, 1.0)
    with pytest.raises(ValueError, match="QoS"):
        session.publish("a", b"", 3, False, 1.0)
    assert session.data_to_send() == b""


# --- inbound QoS 0/1/2 ---------------------------------------------------------------------------


def test_inbound_qos0() -> None:
    session = connected_session()
    events = session.receive_data(wire(Publish("x/y", b"\r\n", 0, retain=True)), 1.0)
    assert events == [MessageReceived("x/y", b"\r\n", 0, True)]
    assert sent(session) == []


def test_inbound_qos1_is_acknowledged() -> None:
    session = connected_session()
    events = session.receive_data(wire(Publish("x/y", b"m", 1, packet_id=77)), 1.0)
    assert events == [MessageReceived("x/y", b"m", 1, False)]
    assert sent(session) == [Puback(77)]


def test_inbound_qos2_delivered_once_with_pubrec_pubrel_pubcomp() -> None:
    session = connected_session()
    first = Publish("x/y", b"once", 2, packet_id=9)
    assert session.receive_data(wire(first), 1.0) == [MessageReceived("x/y", b"once", 2, False)]
    assert sent(session) == [Pubrec(9)]
    # The broker re-sends with DUP before PUBREL: acknowledged again, not delivered again.
    again = Publish("x/y", b"once", 2, dup=True, packet_id=9)
    assert session.receive_data(wire(again), 1.1) == []
    assert sent(session) == [Pubrec(9)]
    assert session.receive_data(wire(Pubrel(9)), 1.2) == []
    assert sent(session) == [Pubcomp(9)]
    # After PUBREL the id is free: the same id now carries a new message.
    later = Publish("x/y", b"next", 2, packet_id=9)
    assert session.receive_data(wire(later), 1.3) == [MessageReceived("x/y", b"next", 2, False)]


def test_pubrel_for_an_unknown_id_is_still_answered() -> None:
    session = connected_session()
    assert session.receive_data(wire(Pubrel(4242)), 1.0) == []
    assert sent(session) == [Pubcomp(4242)]


def test_inbound_stream_split_at_every_byte() -> None:
    stream = wire(
        Connack(False, 0),
        Publish("a", b"0", 0),
        Publish("b", b"1" * 200, 1, packet_id=1),
        Publish("c", b"2", 2, packet_id=2),
        Pubrel(2),
    )
    session = ClientSession(Connect("c", clean_session=True, keepalive=0), now=0.0)
    session.data_to_send()
    events = []
    for index in range(len(stream)):
        events += session.receive_data(stream[index : index + 1], 1.0)
    assert events == [
        Connected(False),
        MessageReceived("a", b"0", 0, False),
        MessageReceived("b", b"1" * 200, 1, False),
        MessageReceived("c", b"2", 2, False),
    ]
    assert sent(session) == [Puback(1), Pubrec(2), Pubcomp(2)]


# --- subscribe / unsubscribe ---------------------------------------------------------------------


def test_subscribe_granted_and_refused() -> None:
    session = connected_session()
    first = session.subscribe("a/+/c", 2, 1.0)
    second = session.subscribe("$SYS/#", 1, 1.0)
    assert sent(session) == [Subscribe(first, (("a/+/c", 2),)), Subscribe(second, (("$SYS/#", 1),))]
    events = session.receive_data(wire(Suback(first, (1,)), Suback(second, (0x80,))), 1.1)
    assert events == [Subscribed(first, 1), Subscribed(second, 0x80)]


def test_suback_granting_more_than_requested_is_a_protocol_error() -> None:
    session = connected_session()
    packet_id = session.subscribe("a", 0, 1.0)
    with pytest.raises(ProtocolError, match="grants QoS 2 above requested 0"):
        session.receive_data(wire(Suback(packet_id, (2,))), 1.1)


def test_suback_with_several_codes_for_one_filter_is_a_protocol_error() -> None:
    session = connected_session()
    packet_id = session.subscribe("a", 1, 1.0)
    with pytest.raises(ProtocolError, match="2 return codes"):
        session.receive_data(wire(Suback(packet_id, (1, 1))), 1.1)


def test_unsubscribe() -> None:
    session = connected_session()
    packet_id = session.unsubscribe("a/#", 1.0)
    assert sent(session) == [Unsubscribe(packet_id, ("a/#",))]
    assert session.receive_data(wire(Unsuback(packet_id)), 1.1) == [Unsubscribed(packet_id)]
    with pytest.raises(ProtocolError, match="UNSUBACK"):
        session.receive_data(wire(Unsuback(packet_id)), 1.2)


def test_invalid_filter_is_refused_locally() -> None:
    session = connected_session()
    with pytest.raises(ValueError, match="'#'"):
        session.subscribe("a/#/b", 0, 1.0)


# --- packet ids ----------------------------------------------------------------------------------


def test_packet_ids_wrap_and_skip_ids_in_flight() -> None:
    session = connected_session(keepalive=0)
    held = session.publish("t", b"", 1, False, 1.0)
    assert held == 1
    for expected in range(2, 65536):
        packet_id = session.publish("t", b"", 1, False, 1.0)
        assert packet_id == expected
        session.receive_data(wire(Puback(packet_id)), 1.0)
    # 65535 wraps to 1, which still waits for its PUBACK: skipped.
    assert session.subscribe("t", 0, 1.0) == 2
    assert session.unsubscribe("t", 1.0) == 3
    session.receive_data(wire(Puback(1)), 1.0)
    for expected in range(4, 65536):
        assert session.publish("t", b"", 2, False, 1.0) == expected
    assert session.publish("t", b"", 2, False, 1.0) == 1
    with pytest.raises(RuntimeError, match="all 65535 packet ids are in flight"):
        session.publish("t", b"", 1, False, 1.0)
    # QoS 0 needs no id and still goes out.
    session.data_to_send()
    assert session.publish("t", b"", 0, False, 1.0) is None


# --- keep-alive ----------------------------------------------------------------------------------


def test_pingreq_when_keepalive_passed_since_last_packet_sent() -> None:
    session = connected_session(keepalive=10, now=0.0)
    assert session.next_deadline() == 10.0
    assert session.tick(9.99) == []
    assert sent(session) == []
    session.publish("t", b"", 0, False, 5.0)  # sending restarts the keep-alive timer
    session.data_to_send()
    assert session.next_deadline() == 15.0
    assert session.tick(14.0) == []
    assert sent(session) == []
    # Receiving does not count: only packets sent by the client (MQTT-3.1.2-23).
    session.receive_data(wire(Publish("in", b"", 0)), 14.5)
    assert session.next_deadline() == 15.0
    assert session.tick(15.0) == []
    assert sent(session) == [Pingreq()]
    assert session.next_deadline() == 25.0  # PINGRESP due by then
    assert session.tick(20.0) == []
    assert sent(session) == []  # one PINGREQ outstanding at a time
    assert session.receive_data(wire(Pingresp()), 15.2) == []
    assert session.next_deadline() == 25.0  # keep-alive from the PINGREQ sent at 15
    assert session.tick(25.0) == []
    assert sent(session) == [Pingreq()]


def test_acknowledgements_count_as_sent_packets() -> None:
    session = connected_session(keepalive=10, now=0.0)
    session.receive_data(wire(Publish("in", b"", 1, packet_id=1)), 7.0)
    assert sent(session) == [Puback(1)]
    assert session.next_deadline() == 17.0


def test_ping_timeout_when_no_pingresp() -> None:
    session = connected_session(keepalive=10, now=0.0)
    session.tick(10.0)
    assert sent(session) == [Pingreq()]
    assert session.tick(19.99) == []
    assert session.tick(20.0) == [PingTimeout()]
    assert not session.connected
    assert session.next_deadline() is None
    assert session.tick(30.0) == []
    assert sent(session) == []  # no DISCONNECT: the connection is simply dropped
    with pytest.raises(SessionClosed):
        session.subscribe("t", 0, 31.0)


def test_keepalive_zero_disables_pinging() -> None:
    session = connected_session(keepalive=0)
    assert session.next_deadline() is None
    assert session.tick(1e9) == []
    assert sent(session) == []


def test_ping_disabled_sends_no_pingreq() -> None:
    session = connected_session(keepalive=10, now=0.0)
    session.ping_enabled = False
    assert session.next_deadline() is None
    assert session.tick(100.0) == []
    assert sent(session) == []
    session.ping_enabled = True
    assert session.next_deadline() == 10.0
    session.tick(100.0)
    assert sent(session) == [Pingreq()]


def test_outstanding_ping_still_times_out_when_pinging_is_disabled() -> None:
    session = connected_session(keepalive=10, now=0.0)
    session.tick(10.0)
    session.ping_enabled = False
    assert session.next_deadline() == 20.0
    assert session.tick(20.0) == [PingTimeout()]


def test_keepalive_runs_before_connack() -> None:
    session = ClientSession(Connect("c", clean_session=True, keepalive=5), now=0.0)
    session.data_to_send()
    assert session.next_deadline() == 5.0
    session.tick(5.0)
    assert sent(session) == [Pingreq()]


# --- disconnect ----------------------------------------------------------------------------------


def test_disconnect_queues_disconnect_and_closes() -> None:
    session = connected_session(keepalive=10)
    session.publish("t", b"last", 0, False, 1.0)
    assert not session.closed
    session.disconnect(1.0)
    assert session.data_to_send() == wire(Publish("t", b"last")) + b"\xe0\x00"
    assert not session.connected and session.closed
    assert session.next_deadline() is None
    session.disconnect(2.0)  # no-op once closed
    assert session.data_to_send() == b""
    assert session.receive_data(wire(Publish("late", b"")), 2.0) == []
    for call in (
        lambda: session.publish("t", b"", 0, False, 3.0),
        lambda: session.subscribe("t", 0, 3.0),
        lambda: session.unsubscribe("t", 3.0),
    ):
        with pytest.raises(SessionClosed, match="closed"):
            call()
