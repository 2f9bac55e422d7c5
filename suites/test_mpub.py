"""AT+MPUB (section 2.6): what a subscriber receives, at which QoS, retained or not.

Lengths and commas are in test_limits.py.
"""

from __future__ import annotations

import pytest

from hil.broker import Broker
from hil.dut.device import Device
from suites.expect import bring_up, expect_result, peer_got_nothing

#: Printable ASCII without the characters some reading of the guide makes special: the
#: comma (MPUB-5), `;` and `"` (GEN-7), no leading space.
PAYLOAD = "Hello L506 - 0123456789 !?#$%&()*+-./:<=>@[]^_{|}~ end"


@pytest.mark.spec("MPUB-1")
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_subscriber_receives_it(dut: Device, broker: Broker, peer, names, qos: int) -> None:
    """OK, `+MPUB: SUCCESS`; a subscriber (at QoS 2, so nothing is downgraded on its side)
    receives the message byte for byte, at that QoS, not retained."""
    at = dut.at
    topic = names.topic()
    peer.subscribe(topic, qos=2)
    bring_up(dut, broker.plain_port, names.client_id)
    expect_result(at.mpub(topic, qos, 0, PAYLOAD), "MPUB")
    got = peer.expect(topic, timeout=5)
    assert (got.payload, got.qos, got.retain) == (PAYLOAD.encode(), qos, False)


@pytest.mark.spec("MPUB-4")
def test_retained_message(dut: Device, broker: Broker, peer_factory, names) -> None:
    """retain=1: a client that subscribes afterwards receives it, flagged retained."""
    at = dut.at
    topic = names.topic()
    bring_up(dut, broker.plain_port, names.client_id)
    expect_result(at.mpub(topic, 1, 1, "kept by the broker"), "MPUB")
    later = peer_factory()
    try:
        later.subscribe(topic, qos=1)
        got = later.expect(topic, timeout=5)
        assert (got.payload, got.retain) == (b"kept by the broker", True)
    finally:
        later.publish(topic, b"", qos=1, retain=True)  # clear it for later runs


@pytest.mark.spec("MPUB-4")
def test_not_retained_without_the_flag(dut: Device, broker: Broker, peer_factory, names) -> None:
    """retain=0: a client that subscribes afterwards receives nothing."""
    at = dut.at
    topic, marker = names.topic(), names.topic("marker")
    bring_up(dut, broker.plain_port, names.client_id)
    expect_result(at.mpub(topic, 1, 0, "not kept"), "MPUB")
    later = peer_factory()
    later.subscribe(topic, qos=1)
    later.subscribe(marker, qos=1)
    peer_got_nothing(
        later, topic, lambda: expect_result(at.mpub(marker, 1, 0, "m"), "MPUB"), marker
    )


@pytest.mark.spec("MPUB-6")
@pytest.mark.parametrize("qos", [1, 2])
def test_no_loss_and_no_duplicate(dut: Device, broker: Broker, peer, names, qos: int) -> None:
    """Ten messages back to back: none lost, in order; for QoS 2 none twice (checked up
    to a marker published after them)."""
    at = dut.at
    topic, marker = names.topic(), names.topic("marker")
    peer.subscribe(topic, qos=2)
    peer.subscribe(marker, qos=2)
    bring_up(dut, broker.plain_port, names.client_id)
    sent = [f"message {i:02d}" for i in range(10)]
    for message in sent:
        expect_result(at.mpub(topic, qos, 0, message), "MPUB")
    expect_result(at.mpub(marker, qos, 0, "marker"), "MPUB")
    peer.expect(marker, timeout=10)
    got = [m for m in peer.messages() if m.topic == topic]
    payloads = [m.payload.decode() for m in got]
    if qos == 1:  # at least once: a duplicate is allowed, a loss is not
        payloads = list(dict.fromkeys(payloads))
    assert payloads == sent
    assert {m.qos for m in got} == {qos}
