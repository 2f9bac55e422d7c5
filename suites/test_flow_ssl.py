"""Example 1.2 of the guide (MQTT over SSL) and AT+MQTTSSL (section 2.10)."""

from __future__ import annotations

import pytest

from hil.broker import Broker
from hil.device import Device
from hil.l506 import commands
from hil.l506.types import MqttStatus, ResultType
from suites.expect import expect_result, expect_status, tear_down

CLIENT_ID = "client_id_mobiletek"
MESSAGE = "message from client_id_mobiletek"  # 32 bytes, as the guide prints


@pytest.mark.spec("FLOW-SSL")
def test_example_1_2_over_tls(dut: Device, broker: Broker, tls_peer, names, characterize) -> None:
    """Every step of example 1.2 against the broker's TLS listener.

    The guide's first line is `AT+MMQTTSSL=1` (section 2.10 names the command AT+MQTTSSL) and
    it dials port 1883; as clauses.md decides, the typo is recorded for what the firmware
    does with it, then AT+MQTTSSL=1 is used and the TLS port dialled. The peer on the TLS
    listener verifies the broker's certificate, so it is a real TLS broker at the far end.
    """
    at = dut.at
    topic = names.topic("mobiletek/topic")
    tls_peer.subscribe(topic, qos=0)

    typo = at.raw("AT+MMQTTSSL=1")
    characterize.record(
        "FLOW-SSL",
        "AT+MMQTTSSL=1",
        typo.response.final.text if typo.response.final else typo.response.summary(),
        typo.response.error,
        note="the guide's example 1.2 spelling; the decision: a typo, not a command",
    )

    assert at.mqttssl(1).ok
    expect_result(at.mconfig(CLIENT_ID + names.token), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.tls_port), "MIPSTART", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.TCP_CONNECTED)
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    expect_result(at.msub(topic, 0), "MSUB")

    expect_result(at.mpub(topic, 0, 0, MESSAGE), "MPUB")
    received = tls_peer.expect(topic, timeout=5)
    assert (received.payload, received.qos, received.retain) == (MESSAGE.encode(), 0, False)
    report = at.wait_message(timeout=5, topic=topic)
    assert (report.topic, report.length, report.payload) == (topic, 32, MESSAGE.encode())

    assert at.msgset(1).ok
    expect_result(at.raw(f"AT+MPUB= {topic},0,0,{MESSAGE}", spec=commands.MPUB), "MPUB")
    assert tls_peer.expect(topic, timeout=5).payload == MESSAGE.encode()
    slot = at.wait_slot(timeout=5)
    assert slot in range(4)
    stored = at.msgget(slot)
    assert stored.ok, stored.response.summary()
    assert [(m.topic, m.length, m.payload) for m in stored.messages] == [
        (topic, 32, MESSAGE.encode())
    ]

    tear_down(dut)
    expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("MQTTSSL-1")
def test_mqttssl_values(dut: Device, broker: Broker, names) -> None:
    """0 and 1 answer OK and take effect at MIPSTART; other values answer ERROR."""
    at = dut.at
    for bad in ("2", "-1", "a", ""):
        answer = at.raw(f"AT+MQTTSSL={bad}", spec=commands.MQTTSSL)
        assert answer.response.error, f"AT+MQTTSSL={bad}: {answer.response.summary()}"
    assert at.mqttssl(1).ok
    assert at.mqttssl(0).ok
    # 0 really is plain TCP: the plain listener takes the MQTT connection
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    tear_down(dut)


@pytest.mark.spec("MQTTSSL-1")
def test_ssl_is_off_after_a_restart(dut: Device, broker: Broker, names) -> None:
    """Default off: after AT+MQTTSSL=1 and a restart, the module speaks plain MQTT again.

    Bench: needs AT+CFUN=1,1 to restart the module (the test waits for it to be ready).
    """
    at = dut.at
    assert at.mqttssl(1).ok
    dut.soft_reset()
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    tear_down(dut)


@pytest.mark.spec("MQTTSSL-2")
def test_server_certificate_is_not_verified(
    dut: Device, broker: Broker, names, characterize
) -> None:
    """The broker's certificate comes from a throwaway CA that the module cannot know (the
    guide has no command to load one). A module that verifies fails the handshake (8); the
    decision for the simulator: it does not verify, and the TLS connection comes up."""
    at = dut.at
    assert at.mqttssl(1).ok
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    outcome = at.mipstart(dut.broker_host, broker.tls_port)
    got = outcome.result
    characterize.record(
        "MQTTSSL-2",
        outcome.response.command + " (certificate from an unknown CA)",
        outcome.response.result.text if outcome.response.result else outcome.response.summary(),
        got is not None and got.success,
    )
    if got is not None and got.success:
        expect_status(at, MqttStatus.TCP_CONNECTED)
    else:
        assert got is not None and got.type == ResultType.SSL_HANDSHAKE_FAILED, (
            f"a verifying module must refuse the handshake with 8: {outcome.response.summary()}"
        )
