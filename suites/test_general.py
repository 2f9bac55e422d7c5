"""General rules of the command set (clauses GEN-1 … GEN-7)."""

from __future__ import annotations

import re

import pytest

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506 import commands
from hil.l506.api import WillConfig
from hil.l506.types import MqttStatus, ResultType
from hil.sim.profiles import REFERENCE
from suites.expect import (
    answer_order,
    bring_up,
    expect_refused_with_ceer,
    expect_result,
    expect_status,
    tear_down,
    wait_broker_log,
)


@pytest.mark.spec("GEN-1")
def test_commands_end_in_ok_or_error(dut: Device) -> None:
    """A command ended by CR is answered with a final OK or ERROR; an unknown one with
    ERROR, not OK."""
    at = dut.at
    assert at.at().response.ok
    status = at.mqttstatu()
    assert status.response.ok and status.value in set(MqttStatus), status.response.summary()
    for unknown in ("AT+NOSUCHCOMMAND", "AT+MQTTNOPE=1", "AT+MPUBX"):
        answer = at.raw(unknown)
        assert answer.response.error, f"{unknown}: {answer.response.summary()}"
    assert at.at().response.ok  # still answering after the refusals


def _flow(dut: Device, broker: Broker, names) -> dict[str, object]:
    """The commands of example 1.1 that have a result URC, each answered with SUCCESS."""
    at = dut.at
    topic = names.topic()
    done = {}
    done["MCONFIG"] = expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    done["MIPSTART"] = expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    done["MCONNECT"] = expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    done["MSUB"] = expect_result(at.msub(topic, 1), "MSUB")
    done["MPUB"] = expect_result(at.mpub(topic, 1, 0, "spelling"), "MPUB")
    done["MPUBEX"] = expect_result(at.mpubex(topic, 1, 0, b"spelled"), "MPUBEX")
    done["MUNSUB"] = expect_result(at.munsub(topic), "MUNSUB")
    done["MDISCONNECT"] = expect_result(at.mdisconnect(), "MDISCONNECT")
    done["MIPCLOSE"] = expect_result(at.mipclose(), "MIPCLOSE")
    return done


@pytest.mark.spec("GEN-2")
def test_result_urc_spelling(dut: Device, broker: Broker, names, characterize) -> None:
    """Result URCs are read with or without a space after the colon (and `+ MIPCLOSE`);
    what the firmware prints is recorded (the reference profile: one space)."""
    for name, outcome in _flow(dut, broker, names).items():
        line = outcome.response.result
        assert line is not None
        plus = "+ " if name == "MIPCLOSE" and REFERENCE.mipclose_urc_plus_space else "+"
        colon = ": " if REFERENCE.urc_space else ":"
        decided = f"{plus}{name}{colon}".encode()
        spelled = line.raw.startswith(decided) and not line.raw.startswith(decided + b" ")
        characterize.record("GEN-2", outcome.response.command, line.text, spelled)


@pytest.mark.spec("GEN-3")
def test_order_of_ok_and_result(dut: Device, broker: Broker, names, characterize) -> None:
    """Each command is complete once OK and its result URC are both in, in either order;
    which came first is recorded per command (the reference profile: result first for
    MCONFIG and MIPCLOSE, OK first for the others)."""
    for name, outcome in _flow(dut, broker, names).items():
        order = answer_order(dut, outcome)
        decided = "result first" if name in REFERENCE.result_before_ok else "OK first"
        characterize.record("GEN-3", outcome.response.command, order, order == decided)


@pytest.mark.spec("GEN-5")
def test_echo_and_spaces(dut: Device, broker: Broker, peer, names, characterize) -> None:
    """ATE0/ATE1 switch the echo; echo is on after a restart; a space after `=` or after
    `AT+` (as the guide's examples type them) is trimmed.

    Bench: restarts the module with AT+CFUN=1,1.
    """
    at = dut.at
    assert at.ate(False).response.ok
    quiet = at.at()
    characterize.record("GEN-5", "ATE0, AT", quiet.response.summary(), quiet.response.echo is None)
    assert at.ate(True).response.ok
    loud = at.at()
    characterize.record(
        "GEN-5", "ATE1, AT", loud.response.summary(), loud.response.echo is not None
    )

    assert at.ate(False).response.ok
    dut.soft_reset()
    booted = at.at()
    characterize.record(
        "GEN-5",
        "ATE0, AT+CFUN=1,1, AT",
        booted.response.summary(),
        booted.response.echo is not None,
        note="echo on after boot",
    )

    topic, marker = names.topic(), names.topic("marker")
    peer.subscribe(topic, qos=1)
    peer.subscribe(marker, qos=1)
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    spaced = at.raw(f"AT+MPUB= {topic},1,0,spaced", spec=commands.MPUB)
    expect_result(at.mpub(marker, 1, 0, "after"), "MPUB")
    peer.expect(marker, timeout=5)  # the spaced one, published first, is in by now
    arrived = [(m.topic, m.payload) for m in peer.messages()]
    characterize.record(
        "GEN-5",
        spaced.response.command,
        f"{spaced.response.summary()}; peer got {arrived}",
        spaced.ok and arrived == [(topic, b"spaced")],
    )
    expect_result(at.mdisconnect(), "MDISCONNECT")
    close = at.raw("AT+ MIPCLOSE", spec=commands.MIPCLOSE)
    characterize.record("GEN-5", "AT+ MIPCLOSE", close.response.summary(), close.ok)
    if not close.ok:
        expect_result(at.mipclose(), "MIPCLOSE")
    expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("GEN-6")
def test_form_of_a_refusal(dut: Device, broker: Broker, names, characterize) -> None:
    """One bad parameter for every command that takes parameters: each is refused in one
    of GEN-6's forms (ERROR, +CME ERROR, OK with +NAME: FAILURE[,2]); the form is recorded
    per command, and a FAILURE,2 is what AT+MQTTCEER reports next. Bench: the same
    commands."""
    at = dut.at

    def refused(outcome, name: str) -> None:
        expect_refused_with_ceer(at, outcome, name, characterize)

    refused(at.raw("AT+MQTTSSL=7", spec=commands.MQTTSSL), "MQTTSSL")
    refused(at.raw("AT+MQTTMSGSET=7", spec=commands.MQTTMSGSET), "MQTTMSGSET")
    refused(at.mqttmsgget(4), "MQTTMSGGET")
    refused(at.mconfig(names.client_id, will=WillConfig(names.topic("w"), "x", qos=3)), "MCONFIG")
    refused(at.raw(f"AT+MIPSTART={dut.broker_host},0", spec=commands.MIPSTART), "MIPSTART")
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    refused(at.mconnect(2, 30), "MCONNECT")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    refused(at.msub(names.topic(), 3), "MSUB")
    refused(at.mpub(names.topic(), 3, 0, "x"), "MPUB")
    refused(at.mpub(names.topic(), 0, 2, "x"), "MPUB")
    refused(at.mpubex(names.topic(), 3, 0, b"x"), "MPUBEX")
    refused(at.raw("AT+MUNSUB=", spec=commands.MUNSUB), "MUNSUB")
    expect_status(at, MqttStatus.MQTT_CONNECTED)  # refusals leave the connection alone


#: GEN-7: characters that some reading of the guide makes special in a parameter.
SPECIAL_PAYLOADS = {
    "semicolon": "one;two",
    "double quote": 'say "hi"',
    "leading spaces": "  indented",
}


@pytest.mark.spec("GEN-7", open_point=True)
def test_client_id_longer_than_23(dut: Device, broker: Broker, names, characterize) -> None:
    """A 36-character client id (MQTT 3.1.1 guarantees only 23): what the broker sees in
    CONNECT is recorded (the reference profile: the whole id)."""
    at = dut.at
    client_id = f"{names.client_id}-a-long-client-identifier"[:36]
    mark = broker.log_mark()
    expect_result(at.mconfig(client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    outcome = at.mconnect(1, 30)
    seen = "refused: " + outcome.response.summary()
    if outcome.ok:
        found = wait_broker_log(
            broker, mark, rf"New client connected from \S+ as ({re.escape(names.client_id)}\S*) \(",
            timeout=5,
        )
        seen = f"broker saw client id {found.group(1)}"
    characterize.record(
        "GEN-7", f"{outcome.response.command} with client id {client_id!r} (36 characters)",
        seen, seen == f"broker saw client id {client_id}",
    )


@pytest.mark.spec("GEN-7", open_point=True)
@pytest.mark.parametrize("kind", list(SPECIAL_PAYLOADS))
def test_special_characters_in_mpub(
    dut: Device, broker: Broker, peer, names, characterize, kind: str
) -> None:
    """`;`, `"` and leading spaces in an MPUB message: what the command returns and what
    a subscriber receives is recorded (the reference profile: the message as typed)."""
    at = dut.at
    topic, marker = names.topic(), names.topic("marker")
    peer.subscribe(topic, qos=1)
    peer.subscribe(marker, qos=1)
    bring_up(dut, broker.plain_port, names.client_id)
    message = SPECIAL_PAYLOADS[kind]
    outcome = at.mpub(topic, 1, 0, message)
    expect_result(at.mpub(marker, 1, 0, "marker"), "MPUB")
    peer.expect(marker, timeout=10)  # anything published before it is in by now
    got = [m.payload for m in peer.messages() if m.topic == topic]
    characterize.record(
        "GEN-7", outcome.response.command,
        f"{outcome.response.summary()}; peer got {got!r}",
        outcome.ok and got == [message.encode()],
        note=kind,
    )
    assert at.at().response.ok  # the module still takes commands
    tear_down(dut)

