"""Command specs tell a command's answer from the URCs around it."""

from __future__ import annotations

import re

import pytest

from hil.l506 import commands


def matches(pattern: re.Pattern[bytes] | None, raw: bytes) -> bool:
    assert pattern is not None
    return pattern.match(raw) is not None


@pytest.mark.parametrize(
    "raw", [b"+MSUB: SUCCESS", b"+MSUB:SUCCESS", b"+MSUB: FAILURE", b"+MSUB: FAILURE,2"]
)
def test_msub_result(raw: bytes) -> None:
    assert matches(commands.MSUB.result, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"+MSUB: 0",
        b"+MSUB: topic,5 bytes,hello",
        b"+MSUB: SUCCESS,5 bytes,hello",
        b"+MPUB: SUCCESS",
    ],
)
def test_msub_result_is_not_a_message_or_slot(raw: bytes) -> None:
    assert not matches(commands.MSUB.result, raw)


def test_spellings_of_the_guide() -> None:
    assert matches(commands.MIPCLOSE.result, b"+ MIPCLOSE: SUCCESS")
    assert matches(commands.MCONFIG.result, b"+MCONFIG:SUCCESS,0")
    assert matches(commands.MCONNECT.result, b"+MCONNECT: FAILURE,1")
    assert not matches(commands.MPUB.result, b"+MPUBEX: SUCCESS")
    assert not matches(commands.MPUBEX.result, b"+MPUB: SUCCESS")


def test_prompt_only_for_mpubex() -> None:
    specs = [getattr(commands, name) for name in commands.__all__ if name.isupper()]
    assert [s.name for s in specs if s.prompt] == ["MPUBEX"]


def test_plain_commands_have_no_result() -> None:
    for spec in (commands.MQTTSSL, commands.MQTTMSGSET, commands.MQTTMSGGET, commands.AT):
        assert spec.result is None


def test_msgget_information_lines() -> None:
    info = commands.MQTTMSGGET.info
    assert any(p.match(b"+MSUB: top,7 bytes,1234567") for p in info)
    assert any(p.match(b"+MSUB: t,2 bytes,\r\n") for p in info)
    assert any(p.match(b"+MQTTMSGGET:INVALID") for p in info)
    assert not any(p.match(b"+MSUB: 0") for p in info)


def test_status_information_lines() -> None:
    assert commands.MQTTSTATU.info[0].match(b"+MQTTSTATU: 2")
    assert commands.MQTTCEER.info[0].match(b"+MQTTCEER: 0")
    assert commands.CREG_READ.info[0].match(b"+CREG: 0,1")
    assert commands.ATI.info[0].match(b"L506 anything")
