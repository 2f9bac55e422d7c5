"""Example 1.1 of the guide, end to end over plain TCP against the local broker."""

from __future__ import annotations

import pytest

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506 import commands
from hil.l506.types import MqttStatus, ResultType
from suites.expect import expect_result

CLIENT_ID = "client_id_mobiletek"
TOPIC = "mobiletek/topic"
MESSAGE = "message from client_id_mobiletek"  # 32 bytes, as the guide prints


@pytest.mark.spec("FLOW-TCP")
def test_example_1_1_over_tcp(dut: Device, broker: Broker, peer) -> None:
    """Every step of example 1.1, each response in the shape the guide prints."""
    at = dut.at
    peer.subscribe(TOPIC, qos=0)

    assert at.mqttssl(0).ok
    expect_result(at.mconfig(CLIENT_ID), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART", ResultType.NO_ERROR)
    assert at.mqttstatu().value == MqttStatus.TCP_CONNECTED
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    assert at.mqttstatu().value == MqttStatus.MQTT_CONNECTED
    expect_result(at.msub(TOPIC, 0), "MSUB")

    # auto mode: the module's own publication comes back as a +MSUB report
    expect_result(at.mpub(TOPIC, 0, 0, MESSAGE), "MPUB")
    received = peer.expect(TOPIC, timeout=5)
    assert received.payload == MESSAGE.encode()
    assert (received.qos, received.retain) == (0, False)
    report = at.wait_message(timeout=5, topic=TOPIC)
    assert (report.topic, report.length, report.payload) == (TOPIC, 32, MESSAGE.encode())

    # manual mode: the message is stored and announced by its slot
    assert at.mqttmsgset(1).ok
    expect_result(at.raw(f"AT+MPUB= {TOPIC},0,0,{MESSAGE}", spec=commands.MPUB), "MPUB")
    assert peer.expect(TOPIC, timeout=5).payload == MESSAGE.encode()
    slot = at.wait_slot(timeout=5)
    assert slot in range(4)
    stored = at.mqttmsgget(slot)
    assert stored.ok
    assert [(m.topic, m.length, m.payload) for m in stored.messages] == [
        (TOPIC, 32, MESSAGE.encode())
    ]

    expect_result(at.mdisconnect(), "MDISCONNECT")
    expect_result(at.mipclose(), "MIPCLOSE")
    assert at.mqttstatu().value == MqttStatus.NO_CONNECTION
