"""Example 1.2 of the guide (MQTT over SSL) and AT+MQTTSSL (section 2.10)."""

from __future__ import annotations

import pytest

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506 import commands
from hil.l506.types import MqttStatus, ResultType
from hil.sim.profiles import REFERENCE
from suites.expect import expect_refused, expect_result, expect_status, status_of, tear_down

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
        typo.response.error != REFERENCE.mmqttssl_alias,
        note="the guide's example 1.2 spelling; the reference profile: a typo, not a command",
    )

    assert at.mqttssl(1).ok
    expect_result(at.mconfig(f"mobiletek_{names.token}"), "MCONFIG", ResultType.NO_ERROR)
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

    assert at.mqttmsgset(1).ok
    expect_result(at.raw(f"AT+MPUB= {topic},0,0,{MESSAGE}", spec=commands.MPUB), "MPUB")
    assert tls_peer.expect(topic, timeout=5).payload == MESSAGE.encode()
    slot = at.wait_slot(timeout=5)
    assert slot in range(4)
    stored = at.mqttmsgget(slot)
    assert stored.ok, stored.response.summary()
    assert [(m.topic, m.length, m.payload) for m in stored.messages] == [
        (topic, 32, MESSAGE.encode())
    ]

    tear_down(dut)
    expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("MQTTSSL-1")
def test_mqttssl_values(dut: Device, broker: Broker, names, characterize) -> None:
    """0 and 1 answer OK and take effect at the next connection; other values are refused
    (GEN-6 forms)."""
    at = dut.at
    for bad in ("2", "-1", "a", ""):
        answer = at.raw(f"AT+MQTTSSL={bad}", spec=commands.MQTTSSL)
        expect_refused(answer, "MQTTSSL", characterize)
    assert at.mqttssl(1).ok
    assert at.mqttssl(0).ok
    # 0 really is plain TCP: the plain listener takes the MQTT connection
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    tear_down(dut)


@pytest.mark.spec("MQTTSSL-1", open_point=True)
def test_mqttssl_while_connected(dut: Device, broker: Broker, names, characterize) -> None:
    """AT+MQTTSSL=1 while a plain MQTT connection stands: refused, or accepted for the
    next connection (recorded; the reference profile refuses). Either way the standing
    connection is unharmed."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    answer = at.mqttssl(1)
    characterize.record(
        "MQTTSSL-1", "AT+MQTTSSL=1 with MQTT up", answer.response.summary(),
        answer.ok == (REFERENCE.ssl_while_connected == "next"),
    )
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    tear_down(dut)
    assert at.mqttssl(0).ok  # leave the default for the next test


@pytest.mark.spec("MQTTSSL-1")
@pytest.mark.spec("MSUB-6")
def test_ssl_after_a_restart(
    dut: Device, broker: Broker, names, characterize, spec_parts
) -> None:
    """After AT+MQTTSSL=1 and a restart: whether the setting was kept is recorded (MSUB-6's
    open point; the reference profile: not kept). Where it was not kept, the module is at
    its default, which must be off: it speaks plain MQTT. Where it was kept, the default
    cannot be seen after a restart: that part of MQTTSSL-1 is left unchecked.

    Bench: needs AT+CFUN=1,1 to restart the module (the test waits for it to be ready).
    """
    at = dut.at
    assert at.mqttssl(1).ok
    dut.soft_reset()
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    start = at.mipstart(dut.broker_host, broker.plain_port)
    outcome = at.mconnect(1, 30) if start.ok else start
    plain = outcome.ok
    characterize.record(
        "MSUB-6", "AT+MQTTSSL=1, AT+CFUN=1,1, MIPSTART and MCONNECT to the plain port",
        f"{outcome.response.summary()}: SSL {'off' if plain else 'kept on'}",
        plain != REFERENCE.settings_survive_restart,
    )
    if plain:
        expect_status(at, MqttStatus.MQTT_CONNECTED)
        tear_down(dut)
    else:
        spec_parts.skipped(
            "MQTTSSL-1", "default off: AT+MQTTSSL=1 was kept over a restart, so the "
            "default cannot be seen after one"
        )
        if status_of(at) != MqttStatus.NO_CONNECTION:
            expect_result(at.mipclose(), "MIPCLOSE")
        assert at.mqttssl(0).ok  # leave the default for the next test


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
    if outcome.ok:  # the handshake may come with MCONNECT (MIPSTART-6)
        outcome = at.mconnect(1, 30)
    got = outcome.result
    characterize.record(
        "MQTTSSL-2",
        outcome.response.command + " (certificate from an unknown CA)",
        outcome.response.result.text if outcome.response.result else outcome.response.summary(),
        got is not None and got.success,
    )
    if got is not None and got.success:
        expect_status(at, MqttStatus.MQTT_CONNECTED)
    else:
        assert got is not None and got.type == ResultType.SSL_HANDSHAKE_FAILED, (
            f"a verifying module must refuse the handshake with 8: {outcome.response.summary()}"
        )
