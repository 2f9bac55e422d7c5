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
from hil.device import Device
from hil.l506.dut import L506, CommandResult, WillConfig
from hil.l506.types import (
    CONNECTION_BROKEN_URC,
    MSUB_MESSAGE_URC,
    Message,
    MqttStatus,
    ResultType,
    parse_msub,
)

#: GEN-6 as decided for the simulator: how each command refuses a bad parameter.
REFUSAL_DECISION = {"MQTTSSL": "ERROR", "MQTTMSGSET": "ERROR", "MQTTMSGGET": "ERROR"}
#: GEN-3 as decided for the simulator: result URC before OK for these, after OK otherwise.
RESULT_BEFORE_OK = frozenset({"MCONFIG", "MIPCLOSE"})


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


def expect_refused(outcome: CommandResult, name: str, characterize=None) -> str:
    """A bad parameter refused (GEN-6): `ERROR`, or `+NAME: FAILURE,2` with OK in either
    order. Never SUCCESS. Returns the form ("ERROR" or "FAILURE,2") and, given
    `characterize`, records it as GEN-6's open point."""
    response = outcome.response
    seen = response.summary()
    result = outcome.result
    assert result is None or not result.success, f"bad parameter accepted: {seen}"
    if response.error:
        form = "ERROR"
    else:
        assert result is not None and result.type == ResultType.BAD_PARAMETER, (
            f"expected a refusal, ERROR or +{name}: FAILURE,2: {seen}"
        )
        form = "FAILURE,2"
    if characterize is not None:
        decided = REFUSAL_DECISION.get(name, "FAILURE,2")
        characterize.record("GEN-6", response.command, form, form == decided)
    return form


def expect_ceer(at: L506, code: ResultType) -> None:
    """AT+MQTTCEER names `code` as the last failure (CEER-1)."""
    answer = at.ceer()
    assert answer.ok, f"AT+MQTTCEER not answered OK: {answer.response.summary()}"
    assert answer.value == code, (
        f"MQTTCEER: expected {int(code)} ({code.name}): {answer.response.summary()}"
    )


def expect_status(at: L506, status: MqttStatus) -> None:
    answer = at.statu()
    assert answer.ok, f"AT+MQTTSTATU not answered OK: {answer.response.summary()}"
    assert answer.value == status, (
        f"MQTTSTATU: expected {int(status)} ({status.name}): {answer.response.summary()}"
    )


def status_of(at: L506) -> MqttStatus | None:
    answer = at.statu()
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
