"""Every form the guide prints, through the harness's parsers: a module that follows the
guide in another place than the reference simulator must be read right (GEN-2, GEN-3, GEN-6,
MPUBEX-1, MSGGET-2, DEV-1). The last tests run the harness against the guide-alt profile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.at.framer import DataEcho, Framer, Line, Prompt
from hil.dut.device import Device
from hil.l506.api import L506
from hil.l506.types import (
    MSUB_COUNTED,
    Message,
    MqttStatus,
    Result,
    ResultType,
    parse_msub,
    parse_result,
)
from hil.sim.firmware import Firmware
from hil.sim.host import SimConfig, Simulator
from hil.sim.profiles import GUIDE_ALT

MESSAGE = b"a\r\nOK\r\n,b"  # a counted message that holds a final result code
GUIDE_LINES = [
    b"RDY",
    b"+CPIN: READY",
    b"Call Ready",
    b"SMS Ready",
    b"AT+MCONFIG=client_id_mobiletek",
    b"+MCONFIG:SUCCESS,0",  # section 1.1: no space after the colon, result before OK
    b"OK",
    b"AT+MQTTSSL=2",
    b"+CME ERROR: 4",  # a refusal as a final result code
    b"AT+MSUB=t,3",
    b"OK",
    b"+MSUB:FAILURE",  # section 2.4's format: no result type
    b"+MSUB: t,%d bytes," % len(MESSAGE) + MESSAGE,
    b"AT+MQTTMSGGET=0",
    b"+MQTTMSGGET:INVALID",
    b"ERROR",
    b"AT+ MIPCLOSE",
    b"OK",
    b"+ MIPCLOSE: SUCCESS",  # section 2.9: a space after `+`, OK first
]
GUIDE_STREAM = b"".join(
    line + b"\r" if line.startswith(b"AT") else b"\r\n" + line + b"\r\n" for line in GUIDE_LINES
)


def frame(chunks: list[bytes]) -> list[bytes]:
    framer = Framer([MSUB_COUNTED])
    events: list[Line | Prompt] = []
    for t, chunk in enumerate(chunks):
        events += framer.feed(chunk, t)
    assert framer.pending == b""
    return [e.raw for e in events if isinstance(e, Line)]


def test_guide_forms_frame_alike_at_every_byte_split() -> None:
    for i in range(len(GUIDE_STREAM) + 1):
        assert frame([GUIDE_STREAM[:i], GUIDE_STREAM[i:]]) == GUIDE_LINES, f"split at {i}"


def test_guide_forms_frame_alike_one_byte_at_a_time() -> None:
    assert frame([GUIDE_STREAM[i : i + 1] for i in range(len(GUIDE_STREAM))]) == GUIDE_LINES


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("+MCONFIG:SUCCESS,0", Result("MCONFIG", True, ResultType.NO_ERROR, 0)),
        ("+MCONFIG: SUCCESS,0", Result("MCONFIG", True, ResultType.NO_ERROR, 0)),
        ("+ MIPCLOSE: SUCCESS", Result("MIPCLOSE", True, None)),
        ("+MIPCLOSE:SUCCESS", Result("MIPCLOSE", True, None)),
        ("+MSUB:FAILURE", Result("MSUB", False, None)),
        ("+MPUBEX: FAILURE", Result("MPUBEX", False, None)),
        ("+MCONNECT:FAILURE,8", Result("MCONNECT", False, ResultType.SSL_HANDSHAKE_FAILED, 8)),
    ],
)
def test_every_result_spelling_parses(line: str, expected: Result) -> None:
    assert parse_result(line) == expected


def test_a_cut_message_with_the_cut_length_parses_whole() -> None:
    raw = b"+MSUB: big,1360 bytes," + b"z" * 1360
    assert parse_msub(raw) == Message("big", 1360, b"z" * 1360)


@pytest.mark.parametrize("prompt", [b">> ", b">>"])
def test_double_prompt_then_echoed_data_at_every_split(prompt: bytes) -> None:
    """Section 2.7's `>> abc`: the data comes back before OK; data holding `\\r\\nOK\\r\\n`
    is not taken for the answer, however the bytes are split."""
    answer = MESSAGE + b"\r\nOK\r\n\r\n+MPUBEX:SUCCESS\r\n"
    for i in range(len(answer) + 1):
        framer = Framer()
        framer.expect_prompt = True
        events = framer.feed(b"AT+MPUBEX=t,0,0,%d\r\r\n" % len(MESSAGE) + prompt, 0)
        framer.expect_echo(MESSAGE)
        events += framer.feed(answer[:i], 1) + framer.feed(answer[i:], 2)
        assert isinstance(events[1], Prompt), f"split at {i}"
        assert isinstance(events[2], DataEcho) and events[2].raw == MESSAGE, f"split at {i}"
        assert [e.raw for e in events[3:]] == [b"OK", b"+MPUBEX:SUCCESS"], f"split at {i}"


# ---------------------------------------------------------------- the harness on guide-alt


@pytest.fixture
def guide_alt(tmp_path: Path) -> Iterator[L506]:
    profile = GUIDE_ALT.without_latency()
    sim = Simulator(Firmware(profile, time_scale=0.05), SimConfig(link=tmp_path / "tty"))
    at = L506.open(sim.power_on())
    try:
        yield at
    finally:
        at.channel.close()
        sim.close()


def test_boot_lines_of_guide_alt_do_not_disturb_the_wait_for_ready(
    guide_alt: L506,
) -> None:
    at = guide_alt
    dev = Device(at=at, channel=at.channel, kind="simulator", time_scale=0.05,
                 boot_timeout=5, ready_timeout=5)
    dev.wait_ready()
    assert at.cpin().value == "READY"
    received = [e for e in at.channel.transcript.events() if e.direction != "tx"]
    for boot_line in ("RDY", "Call Ready", "SMS Ready"):  # filed as URCs, not as answers
        assert {e.kind for e in received if e.text == boot_line} == {"urc"}, boot_line


def test_the_driver_reads_what_guide_alt_prints(guide_alt: L506) -> None:
    at = guide_alt
    Device(at=at, channel=at.channel, kind="simulator", time_scale=0.05,
           boot_timeout=5, ready_timeout=5).wait_ready()
    configured = at.mconfig("client_id_mobiletek")
    assert configured.ok
    assert configured.result == Result("MCONFIG", True, ResultType.NO_ERROR, 0)
    refused = at.mqttssl(2)
    assert not refused.ok and refused.response.error
    assert refused.response.final is not None and refused.response.final.text == "+CME ERROR: 4"
    assert not at.mqttmsgset(2).ok
    empty = at.mqttmsgget(0)
    assert empty.invalid and not empty.ok and empty.response.error
    unsent = at.mpub("t", 0, 0, "x")  # no connection: refused without a result type
    assert not unsent.ok and unsent.result == Result("MPUB", False, None)
    closed = at.mipclose()
    assert closed.ok and closed.result == Result("MIPCLOSE", True, None)
    assert [line.text for line in closed.response.lines] == []  # `+ MIPCLOSE:` is the result
    assert at.mqttstatu().value == MqttStatus.NO_CONNECTION
