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
from hil.dut.device import Device
from hil.l506 import commands
from hil.l506.types import MqttStatus, ResultType
from hil.sim.profiles import REFERENCE
from suites.expect import (
    expect_ceer,
    expect_failure,
    expect_handshake_failure,
    expect_refused_with_ceer,
    expect_result,
    expect_status,
    port_where_nothing_listens,
    refusal_form,
    status_of,
)

ANY_FAILURE_URC = re.compile(rb"\A\+ ?M[A-Z]+: ?FAILURE(?:,\d+)?[ \t]*\Z")
UNRESOLVABLE = "no-such-broker.invalid"  # RFC 2606: .invalid never resolves


@pytest.mark.spec("MIPSTART-1")
def test_ip_address(dut: Device, broker: Broker, names) -> None:
    """OK, then `+MIPSTART: SUCCESS,0` once TCP is up; MQTTSTATU 2."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.TCP_CONNECTED)


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


@pytest.mark.spec("MIPSTART-2", open_point=True)
def test_name_that_does_not_resolve(dut: Device, broker: Broker, names, characterize) -> None:
    """Not a connection: FAILURE with some code, or ERROR; which one is recorded (the
    reference profile: 5), and no connection stands. Bench: the same name; `.invalid`
    never resolves (RFC 2606)."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    outcome = at.mipstart(UNRESOLVABLE, broker.plain_port)
    form = refusal_form(outcome)
    assert form is not None, f"MIPSTART to an unresolvable name: {outcome.response.summary()}"
    characterize.record(
        "MIPSTART-2", outcome.response.command, form,
        form == f"FAILURE,{REFERENCE.resolve_failure_code}", note="unresolvable name",
    )
    expect_status(at, MqttStatus.NO_CONNECTION)


def _second_mipstart(dut: Device, broker: Broker, characterize, state: str) -> None:
    """MIPSTART-3: a second MIPSTART is refused (FAILURE with any code, or ERROR; recorded);
    a FAILURE's code is what AT+MQTTCEER says next (CEER-1)."""
    at = dut.at
    second = at.mipstart(dut.broker_host, broker.plain_port)
    form = refusal_form(second)
    assert form is not None, f"a second MIPSTART was not refused: {second.response.summary()}"
    decided = (
        "ERROR" if REFERENCE.second_mipstart_code is None
        else f"FAILURE,{REFERENCE.second_mipstart_code}"
    )
    characterize.record("MIPSTART-3", f"{second.response.command} with {state}", form,
                        form == decided)
    if second.result is not None and second.result.type is not None:
        expect_ceer(at, second.result.type)


@pytest.mark.spec("MIPSTART-3")
def test_mipstart_twice(dut: Device, broker: Broker, names, characterize) -> None:
    """The second MIPSTART is refused (the form is recorded); the first connection still
    stands and carries the MCONNECT. Bench: the same two commands."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    _second_mipstart(dut, broker, characterize, "TCP up")
    expect_status(at, MqttStatus.TCP_CONNECTED)
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)  # the first one


@pytest.mark.spec("MIPSTART-3")
def test_mipstart_while_mqtt_connected(dut: Device, broker: Broker, peer, names,
                                       characterize) -> None:
    """Also with MQTT up: refused, and the MQTT connection stays and still publishes.
    Bench: the same."""
    at = dut.at
    topic = names.topic()
    peer.subscribe(topic, qos=1)
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    _second_mipstart(dut, broker, characterize, "MQTT up")
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    expect_result(at.mpub(topic, 1, 0, "still connected"), "MPUB")
    assert peer.expect(topic, timeout=5).payload == b"still connected"


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
@pytest.mark.spec("MQTTSSL-1")
@pytest.mark.spec("GEN-4")
def test_ssl_to_a_plain_port(dut: Device, broker: Broker, names, characterize) -> None:
    """Result type 8, on MIPSTART or on MCONNECT (recorded): the port speaks plain MQTT,
    the handshake cannot succeed. Bench: dial the broker's plain port with AT+MQTTSSL=1
    (the guide's own example 1.2 does this with port 1883)."""
    at = dut.at
    assert at.mqttssl(1).ok
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_handshake_failure(at, dut.broker_host, broker.plain_port, characterize)


@pytest.mark.spec("MIPSTART-6")
@pytest.mark.spec("GEN-4")
def test_tls_listener_refuses_the_handshake(
    dut: Device, broker: Broker, names, characterize
) -> None:
    """Result type 8, on MIPSTART or on MCONNECT (recorded): a TLS listener that requires
    a client certificate (the module has none) refuses the handshake. Bench: the broker's
    tls_refusing listener, as here."""
    at = dut.at
    assert at.mqttssl(1).ok
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_handshake_failure(at, dut.broker_host, broker.tls_refusing_port, characterize)


@pytest.mark.spec("GEN-4")
def test_bad_port_is_a_bad_parameter(dut: Device, names, characterize) -> None:
    """Refused (GEN-6 forms; a result type, if any, is 2) for ports outside 1–65535 and a
    missing port. Bench: the same commands."""
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    for args in (f"{dut.broker_host},0", f"{dut.broker_host},65536", f"{dut.broker_host},x",
                 dut.broker_host):
        outcome = at.raw(f"AT+MIPSTART={args}", spec=commands.MIPSTART, timeout=30)
        expect_refused_with_ceer(at, outcome, "MIPSTART", characterize)
        expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("MIPSTART-7")
def test_unused_connection_is_dropped(
    dut: Device, broker: Broker, names, device_time, characterize
) -> None:
    """Without MCONNECT the connection is dropped after about a minute of device time
    (by the server, or by the module); MQTTSTATU returns to 0. Which URC reports it, if
    any, is an open point (the reference profile: `+MCONNECT: FAILURE,1`). mosquitto never
    drops a connection that has not sent CONNECT, so here it is the module's minute: not
    before half of it. The wait ends at the URC, or at MQTTSTATU 0 (asked every second)
    for a module that reports nothing.

    Bench: the same, in real time: the wait is 60 s × 1.25 + 5 s.
    """
    at = dut.at
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    outcome = expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_status(at, MqttStatus.TCP_CONNECTED)
    started = time.monotonic()
    deadline = started + device_time.timeout(60)
    line = None
    while line is None and time.monotonic() < deadline:
        try:
            line = at.channel.wait_urc(ANY_FAILURE_URC, timeout=1.0)
        except UrcTimeout:
            if status_of(at) == MqttStatus.NO_CONNECTION:
                break
    waited = time.monotonic() - started
    got = line.text if line is not None else "no URC"
    expect_status(at, MqttStatus.NO_CONNECTION)
    # "about one minute" (the test broker has no timeout of its own for a silent client)
    assert waited >= device_time.seconds(60) * 0.5, (
        f"dropped after {waited / device_time.scale:.0f} s of device time, not about 60 s"
    )
    reported = line is not None and re.fullmatch(r"\+MCONNECT: ?FAILURE,1\s*", line.text)
    characterize.record(
        "MIPSTART-7",
        f"{outcome.response.command}, then nothing",
        f"{got} after {waited:.1f} s ({waited / device_time.scale:.0f} s of device time)",
        bool(reported) == REFERENCE.idle_drop_urc,
    )
