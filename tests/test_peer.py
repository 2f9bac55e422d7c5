"""The test-side peer: bounded waits, messages stamped on arrival, nothing lost or invented."""

from __future__ import annotations

import time
import uuid

import pytest

from hil.fixtures.peer import Peer, PeerError, PeerFactory


@pytest.fixture
def topic() -> str:
    """A topic no other test uses, since the broker lives for the whole session."""
    return f"test/{uuid.uuid4().hex}"


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_round_trip(peer: Peer, topic: str, qos: int) -> None:
    assert peer.subscribe(topic, qos=qos, timeout=5) == qos
    before = time.monotonic_ns()
    peer.publish(topic, b"hello", qos=qos, timeout=5)
    got = peer.expect(topic, timeout=5)
    assert (got.topic, got.payload, got.qos, got.retain) == (topic, b"hello", qos, False)
    assert before < got.t_ns <= time.monotonic_ns()


def test_payload_is_binary_safe(peer: Peer, topic: str) -> None:
    payload = bytes(range(256)) + b"\r\n,+MSUB: x,3 bytes,abc"
    peer.subscribe(topic, qos=1)
    peer.publish(topic, payload, qos=1)
    assert peer.expect(topic).payload == payload


def test_tls_peer_round_trip(tls_peer: Peer, topic: str) -> None:
    tls_peer.subscribe(topic, qos=1)
    tls_peer.publish(topic, "over tls", qos=1)
    assert tls_peer.expect(topic).payload == b"over tls"


def test_expect_by_filter_keeps_other_messages_for_later(peer: Peer, topic: str) -> None:
    peer.subscribe(f"{topic}/#", qos=1)
    peer.publish(f"{topic}/a", b"1", qos=1)
    peer.publish(f"{topic}/b", b"2", qos=1)
    assert peer.expect(f"{topic}/b").payload == b"2"
    assert peer.expect(f"{topic}/+").payload == b"1"


@pytest.mark.timed
def test_expect_times_out_with_a_clear_failure(peer: Peer, topic: str) -> None:
    peer.subscribe(topic)
    started = time.monotonic()
    with pytest.raises(PeerError, match="no message"):
        peer.expect(topic, timeout=0.2)
    assert time.monotonic() - started < 2


def test_expect_nothing(peer: Peer, topic: str) -> None:
    peer.subscribe(f"{topic}/watched", qos=1)
    peer.publish(f"{topic}/elsewhere", b"not subscribed", qos=1)
    peer.expect_nothing(within=0.3)

    peer.publish(f"{topic}/watched", b"seen", qos=1)
    with pytest.raises(PeerError, match="unexpected message"):
        peer.expect_nothing(f"{topic}/watched", within=2)


def test_unsubscribe_stops_delivery(peer: Peer, topic: str) -> None:
    peer.subscribe(topic, qos=1)
    peer.unsubscribe(topic)
    peer.publish(topic, b"after unsubscribe", qos=1)
    peer.expect_nothing(topic, within=0.3)


def test_messages_drains_in_arrival_order(peer: Peer, topic: str) -> None:
    peer.subscribe(f"{topic}/#", qos=1)
    for n in range(3):
        peer.publish(f"{topic}/{n}", str(n), qos=1)
    peer.expect(f"{topic}/2")  # all three have arrived once the last one has
    assert [m.payload for m in peer.messages()] == [b"0", b"1"]
    assert peer.messages() == []


def test_retained_message_reaches_a_late_subscriber(
    peer: Peer, peer_factory: PeerFactory, topic: str
) -> None:
    peer.publish(topic, b"kept", qos=1, retain=True)
    late = peer_factory()
    late.subscribe(topic, qos=1)
    got = late.expect(topic)
    assert (got.payload, got.retain) == (b"kept", True)
    peer.publish(topic, b"", qos=1, retain=True)  # clears it on the session's broker


def test_same_client_id_takes_the_session_over(peer_factory: PeerFactory) -> None:
    client_id = f"shared-{uuid.uuid4().hex[:8]}"
    first = peer_factory(client_id=client_id)
    second = peer_factory(client_id=client_id)
    first.wait_disconnected(timeout=5)
    assert second.connected
    assert not first.connected
