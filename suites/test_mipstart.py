"""AT+MIPSTART (section 2.2): the TCP (or TLS) connection and every way it fails.

Each failure is provoked for real and checked on the result URC and on AT+MQTTCEER. The
docstrings say how a bench rig provokes the same failure.
"""

from __future__ import annotations

import re
import time

import pytest

from hil.at.channel import UrcTimeout
from hil.broker import Broker
from hil.device import Device
from hil.l506 import commands
from hil.l506.types import MqttStatus, ResultType
from suites.expect import (
    expect_ceer,
    expect_failure,
    expect_refused,
    expect_result,
    expect_status,
    port_where_nothing_listens,
)

ANY_FAILURE_URC = re.compile(rb"\A\+ ?M[A-Z]+: ?FAILURE(?:,\d+)?[ \t]*\Z")
UNRESOLVABLE = "no-such-broker.invalid"  # RFC 2606: .invalid never resolves


@pytest.mark.spec("MIPSTART-1")
def test_ip_address(dut: Device, broker: Broker, names) -> None:
    """OK, then `+MIPSTART: SUCCESS,0` once TCP is up; MQTTSTATU 2; MQTTCEER 0."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.TCP_CONNECTED)
    expect_ceer(at, ResultType.NO_ERROR)


@pytest.mark.spec("MIPSTART-1")
def test_domain_name(dut: Device, broker: Broker, broker_name: str, names) -> None:
    """A host name instead of an address; the connection carries MQTT.

    Bench: give --broker-name, a DNS name the module resolves to the broker's address.
    """
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(broker_name, broker.plain_port), "MIPSTART", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.TCP_CONNECTED)
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)


@pytest.mark.spec("MIPSTART-2")
@pytest.mark.spec("GEN-4")
@pytest.mark.spec("CEER-1")
def test_nothing_listening(dut: Device, names) -> None:
    """Result type 5. Bench: point MIPSTART at a port of the broker PC where nothing
    listens (the test does exactly that; a firewall that drops instead of refusing only
    makes the module wait for its own timeout)."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    outcome = at.mipstart(dut.broker_host, port_where_nothing_listens())
    expect_failure(outcome, "MIPSTART", ResultType.SERVER_CONNECT_FAILED)
    expect_ceer(at, ResultType.SERVER_CONNECT_FAILED)
    expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("MIPSTART-2")
@pytest.mark.spec("GEN-4")
def test_name_that_does_not_resolve(dut: Device, broker: Broker, names) -> None:
    """Result type 5. Bench: the same name; `.invalid` never resolves (RFC 2606)."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    outcome = at.mipstart(UNRESOLVABLE, broker.plain_port)
    expect_failure(outcome, "MIPSTART", ResultType.SERVER_CONNECT_FAILED)
    expect_ceer(at, ResultType.SERVER_CONNECT_FAILED)
    expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("MIPSTART-3")
@pytest.mark.spec("GEN-4")
def test_mipstart_twice(dut: Device, broker: Broker, names) -> None:
    """Result type 7 for the second MIPSTART; the first connection still stands.
    Bench: the same two commands."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    second = at.mipstart(dut.broker_host, broker.plain_port)
    expect_failure(second, "MIPSTART", ResultType.OLD_CONNECTION_NOT_CLOSED)
    expect_ceer(at, ResultType.OLD_CONNECTION_NOT_CLOSED)
    expect_status(at, MqttStatus.TCP_CONNECTED)
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)  # the first one


@pytest.mark.spec("MIPSTART-3")
def test_mipstart_while_mqtt_connected(dut: Device, broker: Broker, names) -> None:
    """Also with MQTT up: type 7, and the MQTT connection stays. Bench: the same."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    second = at.mipstart(dut.broker_host, broker.plain_port)
    expect_failure(second, "MIPSTART", ResultType.OLD_CONNECTION_NOT_CLOSED)
    expect_status(at, MqttStatus.MQTT_CONNECTED)


NO_BEARER = {
    "flight mode (AT+CFUN=4)": (lambda at: at.cfun(4), lambda at: at.cfun(1)),
    "detached (AT+CGATT=0)": (lambda at: at.cgatt(0), lambda at: at.cgatt(1)),
}


@pytest.mark.spec("MIPSTART-4")
@pytest.mark.spec("GEN-4")
@pytest.mark.parametrize("how", list(NO_BEARER))
def test_no_data_connection(dut: Device, broker: Broker, names, how: str) -> None:
    """Result type 3. Bench: the same AT+CFUN=4 / AT+CGATT=0 before MIPSTART; the test
    switches the network back on and waits for registration and attach afterwards."""
    at = dut.at
    cut, restore = NO_BEARER[how]
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    answer = cut(at)
    assert answer.response.ok, f"{how}: {answer.response.summary()}"
    try:
        outcome = at.mipstart(dut.broker_host, broker.plain_port)
        expect_failure(outcome, "MIPSTART", ResultType.NETWORK_ACTIVATION_FAILED)
        expect_ceer(at, ResultType.NETWORK_ACTIVATION_FAILED)
        expect_status(at, MqttStatus.NO_CONNECTION)
    finally:
        assert restore(at).response.ok
        dut.wait_ready()
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")  # back again


@pytest.mark.spec("MIPSTART-5")
@pytest.mark.spec("GEN-4")
@pytest.mark.needs("fault injection")
def test_socket_creation_fails(dut: Device, broker: Broker, names, fault_injection) -> None:
    """Result type 4. Bench: not provokable from outside a real module (its socket pool is
    internal), so on hardware this test is skipped."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    fault_injection.inject("socket_create_fails")
    outcome = at.mipstart(dut.broker_host, broker.plain_port)
    expect_failure(outcome, "MIPSTART", ResultType.SOCKET_CREATION_FAILED)
    expect_ceer(at, ResultType.SOCKET_CREATION_FAILED)
    expect_status(at, MqttStatus.NO_CONNECTION)
    fault_injection.clear()
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")


@pytest.mark.spec("MIPSTART-6")
@pytest.mark.spec("GEN-4")
def test_ssl_to_a_plain_port(dut: Device, broker: Broker, names) -> None:
    """Result type 8: the port speaks plain MQTT, the handshake cannot succeed.
    Bench: dial the broker's plain port with AT+MQTTSSL=1 (the guide's own example 1.2
    does this with port 1883)."""
    at = dut.at
    assert at.mqttssl(1).ok
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    outcome = at.mipstart(dut.broker_host, broker.plain_port)
    expect_failure(outcome, "MIPSTART", ResultType.SSL_HANDSHAKE_FAILED)
    expect_ceer(at, ResultType.SSL_HANDSHAKE_FAILED)
    expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("MIPSTART-6")
@pytest.mark.spec("GEN-4")
def test_tls_listener_refuses_the_handshake(dut: Device, broker: Broker, names) -> None:
    """Result type 8: a TLS listener that requires a client certificate (the module has
    none) refuses the handshake. Bench: the broker's tls_refusing listener, as here."""
    at = dut.at
    assert at.mqttssl(1).ok
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    outcome = at.mipstart(dut.broker_host, broker.tls_refusing_port)
    expect_failure(outcome, "MIPSTART", ResultType.SSL_HANDSHAKE_FAILED)
    expect_ceer(at, ResultType.SSL_HANDSHAKE_FAILED)
    expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("GEN-4")
def test_bad_port_is_a_bad_parameter(dut: Device, names) -> None:
    """Result type 2 (GEN-6 forms) for ports outside 1–65535 and a missing port.
    Bench: the same commands."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    for args in (f"{dut.broker_host},0", f"{dut.broker_host},65536", f"{dut.broker_host},x",
                 dut.broker_host):
        outcome = at.raw(f"AT+MIPSTART={args}", spec=commands.MIPSTART, timeout=30)
        if expect_refused(outcome, "MIPSTART") == "FAILURE,2":
            expect_ceer(at, ResultType.BAD_PARAMETER)
        expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("MIPSTART-7")
def test_unused_connection_is_dropped(
    dut: Device, broker: Broker, names, device_time, characterize
) -> None:
    """Without MCONNECT the connection is dropped after about a minute of device time
    (by the server, or by the module); MQTTSTATU returns to 0. Which URC reports it is an
    open point (decision: `+MCONNECT: FAILURE,1`). mosquitto never drops a connection that
    has not sent CONNECT, so here it is the module's minute: not before half of it.

    Bench: the same, in real time: the wait is 60 s × 1.25 + 5 s.
    """
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    outcome = expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_status(at, MqttStatus.TCP_CONNECTED)
    started = time.monotonic()
    try:
        line = at.channel.wait_urc(ANY_FAILURE_URC, timeout=device_time.timeout(60))
        got = line.text
    except UrcTimeout:
        line, got = None, "no URC"
    waited = time.monotonic() - started
    expect_status(at, MqttStatus.NO_CONNECTION)
    # "about one minute" (the test broker has no timeout of its own for a silent client)
    assert waited >= device_time.seconds(60) * 0.5, (
        f"dropped after {waited / device_time.scale:.0f} s of device time, not about 60 s"
    )
    decided = line is not None and re.fullmatch(r"\+MCONNECT: ?FAILURE,1\s*", line.text)
    characterize.record(
        "MIPSTART-7",
        f"{outcome.response.command}, then nothing",
        f"{got} after {waited:.1f} s ({waited / device_time.scale:.0f} s of device time)",
        bool(decided),
    )
