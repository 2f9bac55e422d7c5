"""Assertions and steps the suites share: what a result URC must say, in the guide's words.

Everything here judges what the module said (its result URCs, MQTTCEER, MQTTSTATU) or what
the broker and the peer saw; nothing looks inside the simulator.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506.api import L506, CommandResult, WillConfig
from hil.l506.types import (
    CONNECTION_BROKEN_URC,
    MSUB_MESSAGE_URC,
    Message,
    MqttStatus,
    ResultType,
    parse_msub,
)
from hil.sim.profiles import REFERENCE, TYPED_RESULTS


def expect_result(
    outcome: CommandResult,
    name: str,
    code: ResultType | None = None,
    *,
    success: bool = True,
) -> CommandResult:
    """The command finished with OK and `+NAME: SUCCESS[,code]` (or FAILURE with the code)."""
    response = outcome.response
    seen = response.summary()
    assert outcome.result is not None, f"no +{name} result URC: {seen}"
    assert outcome.result.name == name, f"result of another command: {seen}"
    word = "SUCCESS" if success else "FAILURE"
    assert outcome.result.success is success, f"expected {word}: {seen}"
    if code is not None:
        assert outcome.result.type == code, f"expected type {int(code)} ({code.name}): {seen}"
    if success:
        assert response.ok, f"expected final OK: {seen}"
    return outcome


def expect_failure(outcome: CommandResult, name: str, code: ResultType) -> CommandResult:
    """`+NAME: FAILURE,<code>` (a command that was accepted and then failed)."""
    return expect_result(outcome, name, code, success=False)


def refusal_form(outcome: CommandResult) -> str | None:
    """The GEN-6 form of a refusal: "ERROR", "+CME ERROR", "FAILURE,<n>" or "FAILURE"
    (a result URC without a result type); None when the command was not refused."""
    response = outcome.response
    if response.error:
        final = response.final.raw if response.final is not None else b""
        return "+CME ERROR" if final.lstrip().startswith(b"+CME ERROR") else "ERROR"
    result = outcome.result
    if result is None or result.success:
        return None
    return "FAILURE" if result.code is None else f"FAILURE,{result.code}"


def expect_refused(outcome: CommandResult, name: str, characterize) -> str:
    """A bad parameter refused (GEN-6) in any of the guide's forms: `ERROR`,
    `+CME ERROR: <n>`, or OK with `+NAME: FAILURE` in either order — with result type 2
    for MCONFIG, MIPSTART and MCONNECT, with 2 or none for the others. Never SUCCESS. The
    form is recorded as GEN-6's open point and returned."""
    response = outcome.response
    seen = response.summary()
    result = outcome.result
    assert result is None or not result.success, f"bad parameter accepted: {seen}"
    form = refusal_form(outcome)
    assert form is not None, f"expected a refusal (ERROR, +CME ERROR or +{name}: FAILURE): {seen}"
    if form.startswith("FAILURE"):
        assert response.ok, f"+{name}: FAILURE without a final OK: {seen}"
        if name in TYPED_RESULTS:  # their format in the guide has a result type
            assert form != "FAILURE", f"+{name}: FAILURE without its result type: {seen}"
        if form != "FAILURE":
            assert result is not None and result.code == ResultType.BAD_PARAMETER, (
                f"a bad parameter given a result type other than 2: {seen}"
            )
    characterize.record(
        "GEN-6", response.command, form, form == REFERENCE.refusal_form(name)
    )
    return form


def expect_refused_with_ceer(at: L506, outcome: CommandResult, name: str, characterize) -> str:
    """`expect_refused`; a refusal with result type 2 is a failure of that type, so
    AT+MQTTCEER names it next (CEER-1)."""
    form = expect_refused(outcome, name, characterize)
    if form == "FAILURE,2":
        expect_ceer(at, ResultType.BAD_PARAMETER)
    return form


def record_ceer_after_success(at: L506, characterize, after: str, failure: ResultType) -> None:
    """CEER-1's open point: the code after a success that followed a `failure`; either 0
    or that failure's code (recorded; anything else fails)."""
    answer = at.mqttceer()
    assert answer.ok, f"AT+MQTTCEER not answered OK: {answer.response.summary()}"
    assert answer.value in (ResultType.NO_ERROR, failure), (
        f"MQTTCEER after a success that followed failure {int(failure)}: neither 0 nor "
        f"{int(failure)}: {answer.response.summary()}"
    )
    decided = failure if REFERENCE.ceer_keeps_failure else ResultType.NO_ERROR
    characterize.record(
        "CEER-1", f"AT+MQTTCEER after {after}", answer.response.summary(),
        answer.value == decided,
    )


def expect_status_after_drop(at: L506, characterize, how: str) -> MqttStatus:
    """MCONNECT-5: after the server dropped the connection MQTTSTATU leaves 1; whether to
    0 or 2 is recorded."""
    status = status_of(at)
    assert status in (MqttStatus.NO_CONNECTION, MqttStatus.TCP_CONNECTED), (
        f"MQTTSTATU {status} after the server dropped the connection ({how}): it must leave 1"
    )
    characterize.record(
        "MCONNECT-5", f"AT+MQTTSTATU after {how}", f"+MQTTSTATU: {int(status)}",
        status == REFERENCE.status_after_drop,
    )
    return status


def expect_ceer(at: L506, code: ResultType) -> None:
    """AT+MQTTCEER names `code` as the last failure (CEER-1)."""
    answer = at.mqttceer()
    assert answer.ok, f"AT+MQTTCEER not answered OK: {answer.response.summary()}"
    assert answer.value == code, (
        f"MQTTCEER: expected {int(code)} ({code.name}): {answer.response.summary()}"
    )


def expect_status(at: L506, status: MqttStatus) -> None:
    answer = at.mqttstatu()
    assert answer.ok, f"AT+MQTTSTATU not answered OK: {answer.response.summary()}"
    assert answer.value == status, (
        f"MQTTSTATU: expected {int(status)} ({status.name}): {answer.response.summary()}"
    )


def status_of(at: L506) -> MqttStatus | None:
    answer = at.mqttstatu()
    assert answer.ok, f"AT+MQTTSTATU not answered OK: {answer.response.summary()}"
    return answer.value


def port_where_nothing_listens() -> int:
    """A TCP port on this machine that nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- steps


def bring_up(
    dut: Device,
    port: int,
    client_id: str,
    *,
    clean: int = 1,
    keepalive: int = 30,
    username: str | None = None,
    password: str | None = None,
    will: WillConfig | None = None,
) -> None:
    """MCONFIG, MIPSTART and MCONNECT, each answered with SUCCESS."""
    at = dut.at
    expect_result(
        at.mconfig(client_id, username, password, will), "MCONFIG", ResultType.NO_ERROR
    )
    expect_result(at.mipstart(dut.broker_host, port), "MIPSTART", ResultType.NO_ERROR)
    expect_result(at.mconnect(clean, keepalive), "MCONNECT", ResultType.NO_ERROR)


def tear_down(dut: Device) -> None:
    """MDISCONNECT and MIPCLOSE, each answered with SUCCESS."""
    expect_result(dut.at.mdisconnect(), "MDISCONNECT")
    expect_result(dut.at.mipclose(), "MIPCLOSE")


def wait_connection_broken(at: L506, timeout: float) -> None:
    """The module reports by itself that the server dropped it: `+MCONNECT: FAILURE,1`."""
    at.channel.wait_urc(CONNECTION_BROKEN_URC, timeout=timeout)


def answer_order(dut: Device, outcome: CommandResult) -> str:
    """"result first" or "OK first": in which order the final code and the result URC came
    (GEN-3), read from the transcript, which keeps lines in arrival order."""
    response = outcome.response
    start, end = response.timing.sent_ns, response.timing.done_ns
    assert end is not None, f"incomplete answer: {response.summary()}"
    for event in dut.channel.transcript.events():
        if start <= event.t_ns <= end and event.kind in ("final", "result"):
            return "result first" if event.kind == "result" else "OK first"
    raise AssertionError(f"answer not in the transcript: {response.summary()}")


def wait_broker_log(broker: Broker, mark: int, pattern: str, timeout: float) -> re.Match[str]:
    """Until the broker's log (since `mark`) has a line matching `pattern`.

    The log is a file written by another process: there is nothing to block on, so it is
    read again every 20 ms until the deadline.
    """
    regex = re.compile(pattern, re.MULTILINE)
    deadline = time.monotonic() + timeout
    while True:
        text = broker.log_since(mark)
        m = regex.search(text)
        if m is not None:
            return m
        if time.monotonic() > deadline:
            tail = "\n".join(text.splitlines()[-15:])
            raise AssertionError(
                f"broker log has no line matching /{pattern}/ within {timeout} s; "
                f"its last lines:\n{tail}"
            )
        time.sleep(0.02)


def connect_line(broker: Broker, mark: int, client_id: str, timeout: float = 5.0) -> str:
    """The broker's `New client connected ... as <id> (p2, c1, k30[, u'user'])` line."""
    m = wait_broker_log(
        broker, mark, rf"New client connected from \S+ as {re.escape(client_id)} \(([^)]*)\)",
        timeout,
    )
    return m.group(1)


# ---------------------------------------------------------------- "nothing arrived"


def peer_got_nothing(peer, topic: str, send_marker: Callable[[], None], marker: str) -> None:
    """Nothing on `topic` reached the peer: `send_marker()` makes a message on `marker`
    travel the same path afterwards; once it is in, anything sent before it would be too."""
    send_marker()
    peer.expect(marker, timeout=10)
    stray = [m for m in peer.messages() if mqtt.topic_matches_sub(topic, m.topic)]
    assert not stray, f"unexpected message(s) on {topic!r}: " + ", ".join(
        f"{m.topic!r}: {m.payload[:60]!r}" for m in stray
    )


def queued_reports(at: L506) -> list[Message]:
    """The `+MSUB: <topic>,<len> bytes,<message>` reports waiting in the URC queue, in
    arrival order (not taken)."""
    reports = []
    for line in at.channel.urcs():
        if MSUB_MESSAGE_URC.match(line.raw):
            parsed = parse_msub(line.raw)
            if isinstance(parsed, Message):
                reports.append(parsed)
    return reports


def module_got_nothing(at: L506, topic: str, send_marker: Callable[[], None], marker: str) -> None:
    """No `+MSUB` report for `topic` (an MQTT filter): the marker, sent after, came first."""
    send_marker()
    at.wait_message(timeout=10, topic=marker)
    stray = [m for m in queued_reports(at) if mqtt.topic_matches_sub(topic, m.topic)]
    assert not stray, f"unexpected report(s) for {topic!r}: " + ", ".join(
        f"{m.topic!r}: {m.payload[:60]!r}" for m in stray
    )


def expect_handshake_failure(at: L506, host: str, port: int, characterize) -> str:
    """MIPSTART-6: with SSL on, a failed TLS handshake is `FAILURE,8` on MIPSTART, or on
    MCONNECT after a MIPSTART that only opened TCP (which of the two is recorded); AT+MQTTCEER
    then names 8 and no MQTT connection stands. Returns the command that failed."""
    start = at.mipstart(host, port)
    if start.result is not None and start.result.success:
        where, outcome = "MCONNECT", at.mconnect(1, 30)
    else:
        where, outcome = "MIPSTART", start
    expect_failure(outcome, where, ResultType.SSL_HANDSHAKE_FAILED)
    expect_ceer(at, ResultType.SSL_HANDSHAKE_FAILED)
    assert status_of(at) != MqttStatus.MQTT_CONNECTED, "MQTT up after a failed handshake"
    characterize.record(
        "MIPSTART-6", f"{start.response.command} with SSL on",
        f"{start.response.summary()}; FAILURE,8 at {where}",
        where == REFERENCE.tls_handshake_at,
    )
    return where
