"""AT+MQTTSTATU, AT+MQTTCEER, AT+MDISCONNECT and AT+MIPCLOSE along the flows."""

from __future__ import annotations

import pytest

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506.types import MqttStatus, ResultType
from hil.sim.profiles import REFERENCE
from suites.expect import (
    bring_up,
    expect_ceer,
    expect_failure,
    expect_result,
    expect_status,
    expect_status_after_drop,
    port_where_nothing_listens,
    record_ceer_after_success,
    status_of,
    wait_connection_broken,
)


@pytest.mark.spec("STATU-1")
@pytest.mark.spec("MDISCONNECT-1")
def test_status_through_the_flow(dut: Device, broker: Broker, names, characterize) -> None:
    """0 before, 2 with TCP up, 1 with MQTT up, 0 after MIPCLOSE. After MDISCONNECT it is
    2 or 0 (recorded; the reference profile: 2 until MIPCLOSE)."""
    at = dut.at
    expect_status(at, MqttStatus.NO_CONNECTION)
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.NO_CONNECTION)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_status(at, MqttStatus.TCP_CONNECTED)
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    expect_result(at.msub(names.topic(), 0), "MSUB")
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    expect_result(at.mdisconnect(), "MDISCONNECT")
    after = status_of(at)
    assert after in (MqttStatus.TCP_CONNECTED, MqttStatus.NO_CONNECTION), (
        f"MQTTSTATU {after} after MDISCONNECT"
    )
    characterize.record(
        "MDISCONNECT-1", "AT+MDISCONNECT, AT+MQTTSTATU", f"+MQTTSTATU: {after}",
        after == REFERENCE.status_after_mdisconnect,
    )
    expect_result(at.mipclose(), "MIPCLOSE")
    expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("STATU-1")
def test_status_after_failures(dut: Device, broker: Broker, names, characterize) -> None:
    """0 after a failed MIPSTART; not 1 after a refused MCONNECT, nor after the server
    dropped an established connection (another client took the client id over)."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    failed = at.mipstart(dut.broker_host, port_where_nothing_listens())
    expect_failure(failed, "MIPSTART", ResultType.SERVER_CONNECT_FAILED)
    expect_status(at, MqttStatus.NO_CONNECTION)
    expect_result(at.mipstart(dut.broker_host, broker.auth_port), "MIPSTART")
    expect_status(at, MqttStatus.TCP_CONNECTED)
    expect_failure(at.mconnect(1, 30), "MCONNECT", ResultType.MQTT_CONNECT_FAILED)
    assert status_of(at) != MqttStatus.MQTT_CONNECTED
    if status_of(at) != MqttStatus.NO_CONNECTION:
        expect_result(at.mipclose(), "MIPCLOSE")
    bring_up(dut, broker.plain_port, names.client_id)
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    assert broker.kick(names.client_id), "the broker did not see the module connected"
    wait_connection_broken(at, timeout=10)
    expect_status_after_drop(at, characterize, "a session take-over")


@pytest.mark.spec("MIPCLOSE-1")
@pytest.mark.parametrize("state", ["TCP up", "after MDISCONNECT"])
def test_mipclose_frees_the_connection(
    dut: Device, broker: Broker, names, state: str
) -> None:
    """`+MIPCLOSE: SUCCESS` and OK; MQTTSTATU 0; a new MIPSTART works afterwards."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    if state == "after MDISCONNECT":
        expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
        expect_result(at.mdisconnect(), "MDISCONNECT")
    expect_result(at.mipclose(), "MIPCLOSE")
    expect_status(at, MqttStatus.NO_CONNECTION)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.MQTT_CONNECTED)


@pytest.mark.spec("CEER-1")
def test_ceer_follows_the_last_result(dut: Device, broker: Broker, names, characterize) -> None:
    """`+MQTTCEER: <type>` and OK: right after a failure, that failure's type (reading it
    twice gives it twice). After a later success it is 0 or still that type: recorded (the
    reference profile: 0)."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    failed = at.mipstart(dut.broker_host, port_where_nothing_listens())
    expect_failure(failed, "MIPSTART", ResultType.SERVER_CONNECT_FAILED)
    expect_ceer(at, ResultType.SERVER_CONNECT_FAILED)
    expect_ceer(at, ResultType.SERVER_CONNECT_FAILED)  # reading it does not clear it
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    record_ceer_after_success(at, characterize, "a MIPSTART SUCCESS after FAILURE,5",
                              ResultType.SERVER_CONNECT_FAILED)
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    expect_failure(at.mconnect(1, 30), "MCONNECT", ResultType.OLD_CONNECTION_NOT_CLOSED)
    expect_ceer(at, ResultType.OLD_CONNECTION_NOT_CLOSED)
    expect_result(at.msub(names.topic(), 0), "MSUB")
    record_ceer_after_success(at, characterize, "an MSUB SUCCESS after FAILURE,7",
                              ResultType.OLD_CONNECTION_NOT_CLOSED)
