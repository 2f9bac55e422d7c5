"""Sessions: the will, clean session across reconnects, keep-alive over idle intervals."""

from __future__ import annotations

import re

import pytest

from hil.at.channel import UrcTimeout
from hil.broker import Broker
from hil.dut.device import Device
from hil.l506.api import WillConfig
from hil.l506.types import CONNECTION_BROKEN_URC, MqttStatus, ResultType
from suites.expect import (
    bring_up,
    expect_result,
    expect_status,
    module_got_nothing,
    peer_got_nothing,
    tear_down,
    wait_broker_log,
)

#: A short keep-alive, so that a broker notices a dead client quickly (1.5 × keep-alive,
#: checked by mosquitto every few seconds).
SHORT_KEEPALIVE = 2
DEAD_CLIENT_NOTICED_S = 1.5 * SHORT_KEEPALIVE + 10


@pytest.mark.spec("MCONFIG-3")
@pytest.mark.needs("power")
def test_will_on_power_cut(dut: Device, broker: Broker, peer, peer_factory, names, power) -> None:
    """Power cut while connected: the subscriber to the will topic receives the will
    message at the will's QoS; a client subscribing afterwards gets it as retained.

    On a bench the broker notices the dead module only after 1.5 × keep-alive (no FIN
    leaves a module without power), hence the short keep-alive.
    """
    will_topic = names.topic("will")
    will = WillConfig(will_topic, "module gone", qos=1, retain=1)
    peer.subscribe(will_topic, qos=2)
    bring_up(dut, broker.plain_port, names.client_id, keepalive=SHORT_KEEPALIVE, will=will)
    try:
        power.off()
        got = peer.expect(will_topic, timeout=dut.link_wait(DEAD_CLIENT_NOTICED_S))
        assert (got.payload, got.qos) == (b"module gone", 1)
        later = peer_factory()
        later.subscribe(will_topic, qos=2)
        kept = later.expect(will_topic, timeout=5)
        assert (kept.payload, kept.retain) == (b"module gone", True), "will not retained"
    finally:
        peer.publish(will_topic, b"", qos=1, retain=True)  # clear the retained will
        power.on()


@pytest.mark.spec("MCONFIG-3")
@pytest.mark.spec("MDISCONNECT-1")
def test_no_will_after_mdisconnect(dut: Device, broker: Broker, peer, names) -> None:
    """OK, `+MDISCONNECT: SUCCESS`; the broker receives a DISCONNECT, so the will is not
    published."""
    at = dut.at
    will_topic, marker = names.topic("will"), names.topic("marker")
    will = WillConfig(will_topic, "must not appear", qos=1, retain=0)
    peer.subscribe(will_topic, qos=2)
    peer.subscribe(marker, qos=1)
    bring_up(dut, broker.plain_port, names.client_id, will=will)
    mark = broker.log_mark()
    expect_result(at.mdisconnect(), "MDISCONNECT")
    wait_broker_log(
        broker, mark, rf"Received DISCONNECT from {re.escape(names.client_id)}$", timeout=5
    )
    expect_result(at.mipclose(), "MIPCLOSE")
    # the broker handled the end of the connection before it handles the marker
    peer_got_nothing(peer, will_topic, lambda: peer.publish(marker, b"m", qos=1), marker)


@pytest.mark.spec("MCONNECT-2")
def test_clean_session_0_keeps_subscriptions_and_queued_messages(
    dut: Device, broker: Broker, peer, names
) -> None:
    """clean_session=0: a QoS 1 message published while the module was away arrives after it
    reconnects with the same client id, and the subscription still delivers without a new
    MSUB. clean_session=1 afterwards: neither the queued message nor the subscription is
    kept."""
    at = dut.at
    topic, marker = names.topic(), names.topic("marker")
    bring_up(dut, broker.plain_port, names.client_id, clean=0)
    expect_result(at.msub(topic, 1), "MSUB")
    _gone(dut, broker, names.client_id)

    peer.publish(topic, b"while away", qos=1)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(0, 30), "MCONNECT", ResultType.NO_ERROR)
    assert at.wait_message(timeout=5, topic=topic).payload == b"while away"
    peer.publish(topic, b"after return", qos=1)
    assert at.wait_message(timeout=5, topic=topic).payload == b"after return"
    _gone(dut, broker, names.client_id)

    peer.publish(topic, b"before clean start", qos=1)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    expect_result(at.msub(marker, 1), "MSUB")
    module_got_nothing(
        at, topic,
        lambda: (peer.publish(topic, b"not subscribed", qos=1),
                 peer.publish(marker, b"marker", qos=1)),
        marker,
    )


def _gone(dut: Device, broker: Broker, client_id: str) -> None:
    """MDISCONNECT and MIPCLOSE, and the broker has taken note (a message published after
    this is queued for the session, not sent to the old connection)."""
    mark = broker.log_mark()
    tear_down(dut)
    wait_broker_log(
        broker, mark, rf"Client {re.escape(client_id)} (?:disconnected|closed its connection)",
        timeout=5,
    )


@pytest.mark.spec("MCONNECT-3")
def test_keepalive_holds_an_idle_link(dut: Device, broker: Broker, peer, names) -> None:
    """Keep-alive 2 s and four intervals without traffic: the broker keeps receiving
    PINGREQs (at least one per interval), the module reports no drop, stays connected
    (MQTTSTATU 1) and still publishes."""
    at = dut.at
    topic = names.topic()
    peer.subscribe(topic, qos=1)
    mark = broker.log_mark()
    bring_up(dut, broker.plain_port, names.client_id, keepalive=SHORT_KEEPALIVE)
    idle = 4 * SHORT_KEEPALIVE
    with pytest.raises(UrcTimeout):
        at.channel.wait_urc(CONNECTION_BROKEN_URC, timeout=idle)  # time must pass here
    pings = re.findall(rf"Received PINGREQ from {re.escape(names.client_id)}$",
                       broker.log_since(mark), re.MULTILINE)
    assert len(pings) >= 3, f"{len(pings)} PINGREQ in {idle} s with keep-alive {SHORT_KEEPALIVE}"
    assert f"Client {names.client_id} has exceeded timeout" not in broker.log_since(mark)
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    expect_result(at.mpub(topic, 1, 0, "still here"), "MPUB")
    assert peer.expect(topic, timeout=5).payload == b"still here"
