"""AT+MCONNECT (section 2.3): the MQTT connection, its refusals and the server dropping it.

Sessions over reconnects (clean session, keep-alive) are in test_sessions.py.
"""

from __future__ import annotations

import re

import pytest

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506.types import MqttStatus, ResultType
from hil.sim.profiles import REFERENCE
from suites.expect import (
    bring_up,
    connect_line,
    expect_ceer,
    expect_failure,
    expect_result,
    expect_status,
    expect_status_after_drop,
    status_of,
    tear_down,
    wait_connection_broken,
)

#: Seconds for a server-side drop to reach the module and be reported.
DROP_REPORTED_S = 10.0


def _flags(line: str) -> dict[str, str]:
    """`p2, c1, k30, u'hil'` → {"p": "2", "c": "1", "k": "30", "u": "'hil'"}."""
    return {part.strip()[0]: part.strip()[1:] for part in line.split(",") if part.strip()}


@pytest.mark.spec("MCONNECT-1")
@pytest.mark.parametrize(("clean", "keepalive"), [(1, 30), (0, 45)])
def test_connect_as_configured(
    dut: Device, broker: Broker, names, clean: int, keepalive: int
) -> None:
    """OK, `+MCONNECT: SUCCESS,0`, MQTTSTATU 1; the broker sees a CONNECT with the
    configured client id (23 characters, the most MQTT 3.1.1 guarantees: GEN-7),
    clean-session flag and keep-alive."""
    at = dut.at
    client_id = f"{names.client_id}-client-id-of-23"[:23]
    assert len(client_id) == 23
    mark = broker.log_mark()
    expect_result(at.mconfig(client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(clean, keepalive), "MCONNECT", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    seen = _flags(connect_line(broker, mark, client_id))
    assert (seen.get("c"), seen.get("k")) == (str(clean), str(keepalive)), (
        f"broker saw clean session {seen.get('c')}, keep-alive {seen.get('k')}"
    )
    tear_down(dut)
    if clean == 0:  # end the persistent session this left on the broker
        bring_up(dut, broker.plain_port, client_id, clean=1)
        tear_down(dut)


@pytest.mark.spec("MCONNECT-4")
@pytest.mark.spec("GEN-4")
def test_wrong_password(dut: Device, broker: Broker, names) -> None:
    """Result type 6: CONNACK "bad user name or password". Bench: the same, against the
    broker's password-protected listener."""
    at = dut.at
    expect_result(at.mconfig(names.client_id, "hil", "not-the-password"), "MCONFIG")
    expect_result(at.mipstart(dut.broker_host, broker.auth_port), "MIPSTART")
    expect_failure(at.mconnect(1, 30), "MCONNECT", ResultType.MQTT_CONNECT_FAILED)
    expect_ceer(at, ResultType.MQTT_CONNECT_FAILED)
    assert status_of(at) != MqttStatus.MQTT_CONNECTED


@pytest.mark.spec("MCONNECT-4")
@pytest.mark.spec("GEN-4")
def test_not_authorised(dut: Device, broker: Broker, names) -> None:
    """Result type 6: an anonymous client on a listener that requires a user (CONNACK
    "not authorised"). Bench: the same."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.auth_port), "MIPSTART")
    expect_failure(at.mconnect(1, 30), "MCONNECT", ResultType.MQTT_CONNECT_FAILED)
    expect_ceer(at, ResultType.MQTT_CONNECT_FAILED)
    assert status_of(at) != MqttStatus.MQTT_CONNECTED


@pytest.mark.spec("MCONNECT-5")
@pytest.mark.spec("GEN-4")
def test_broker_stopped(dut: Device, broker: Broker, names, characterize) -> None:
    """Result type 1, reported by the module on its own; MQTTSTATU leaves 1 (0 or 2:
    recorded). Bench: stop the broker process (as
    here) or pull the broker PC's network cable."""
    at = dut.at
    bring_up(dut, broker.plain_port, names.client_id)
    broker.stop()
    try:
        wait_connection_broken(at, timeout=dut.link_wait(DROP_REPORTED_S))
        expect_ceer(at, ResultType.CONNECTION_BROKEN)
        expect_status_after_drop(at, characterize, "the broker was stopped")
    finally:
        broker.start()


@pytest.mark.spec("MCONNECT-5")
@pytest.mark.spec("GEN-4")
def test_session_taken_over(dut: Device, broker: Broker, names, characterize) -> None:
    """Result type 1 when another client connects with the same client id and the broker
    closes the module's connection. Bench: the same (any MQTT client with that id)."""
    at = dut.at
    bring_up(dut, broker.plain_port, names.client_id)
    assert broker.kick(names.client_id), "the broker did not see the module connected"
    wait_connection_broken(at, timeout=dut.link_wait(DROP_REPORTED_S))
    expect_ceer(at, ResultType.CONNECTION_BROKEN)
    expect_status_after_drop(at, characterize, "a session take-over")


@pytest.mark.spec("MCONNECT-5")
@pytest.mark.spec("GEN-4")
@pytest.mark.needs("fault injection")
def test_keepalive_expires(
    dut: Device, broker: Broker, names, fault_injection, characterize
) -> None:
    """Result type 1 when the broker gives up on a silent client (1.5 × keep-alive without
    a packet; mosquitto checks every few seconds). The module is made to stop sending
    PINGREQ. Bench: block the path to the broker (firewall rule on the broker port) so
    that no PINGREQ arrives; not automated, so skipped on hardware."""
    at = dut.at
    fault_injection.inject("stop_keepalive")
    mark = broker.log_mark()
    bring_up(dut, broker.plain_port, names.client_id, keepalive=1)
    wait_connection_broken(at, timeout=dut.link_wait(1.5 * 1 + DROP_REPORTED_S))
    assert re.search(rf"Client {re.escape(names.client_id)} has exceeded timeout",
                     broker.log_since(mark)), "the broker did not time the client out"
    expect_ceer(at, ResultType.CONNECTION_BROKEN)
    expect_status_after_drop(at, characterize, "keep-alive expiry")


@pytest.mark.spec("MCONNECT-6")
def test_mconnect_without_tcp(dut: Device, names, characterize) -> None:
    """MCONNECT with no TCP connection is refused, with `+MCONNECT: FAILURE,<code>` or
    ERROR (the reference profile: FAILURE,2)."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.NO_CONNECTION)
    outcome = at.mconnect(1, 30)
    response = outcome.response
    assert not outcome.ok, f"MCONNECT without TCP accepted: {response.summary()}"
    assert response.error or (outcome.result is not None and not outcome.result.success)
    got = response.final.text if response.error and response.final else (
        response.result.text if response.result else response.summary()
    )
    decided_code = REFERENCE.mconnect_without_tcp_code
    characterize.record(
        "MCONNECT-6",
        response.command + " (no TCP connection)",
        got,
        response.error if decided_code is None
        else outcome.result is not None and outcome.result.type == decided_code,
    )
    expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("MCONNECT-7")
@pytest.mark.spec("GEN-4")
def test_mconnect_while_connected(dut: Device, broker: Broker, peer, names) -> None:
    """A second MCONNECT while the MQTT connection stands: `+MCONNECT: FAILURE,7`, and the
    standing connection is unharmed (MQTTSTATU 1, a publication still arrives, the broker
    saw no second CONNECT). Bench: the same commands."""
    at = dut.at
    topic = names.topic()
    peer.subscribe(topic, qos=1)
    bring_up(dut, broker.plain_port, names.client_id)
    mark = broker.log_mark()
    expect_failure(at.mconnect(1, 30), "MCONNECT", ResultType.OLD_CONNECTION_NOT_CLOSED)
    expect_ceer(at, ResultType.OLD_CONNECTION_NOT_CLOSED)
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    expect_result(at.mpub(topic, 1, 0, "still the first connection"), "MPUB")
    assert peer.expect(topic, timeout=5).payload == b"still the first connection"
    log = broker.log_since(mark)
    assert f"as {names.client_id} (" not in log, f"the broker saw a second CONNECT:\n{log}"
    tear_down(dut)
