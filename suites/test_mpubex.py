"""AT+MPUBEX (section 2.7): the prompt and exact-length raw data.

Limits (1360/1361) and binary content are in test_limits.py; throughput (MPUBEX-4) in
test_throughput.py.
"""

from __future__ import annotations

import re

import pytest

from hil.at.transcript import RX
from hil.broker import Broker
from hil.dut.device import Device
from hil.l506.api import CommandResult
from hil.sim.profiles import REFERENCE
from suites.expect import bring_up, expect_result


def _prompt(dut: Device, outcome: CommandResult) -> bytes | None:
    """The prompt as the module printed it (`> `, `>>`, ...), from the raw bytes that came
    between the command and the data."""
    timing = outcome.response.timing
    if timing.prompt_ns is None or timing.data_ns is None:
        return None
    raw = b"".join(
        data for t, data in dut.channel.transcript.chunks(RX)
        if timing.sent_ns <= t <= timing.data_ns
    )
    m = re.search(rb"(>[> ]*)\s*\Z", raw)
    return m.group(1) if m else raw[-8:]


@pytest.mark.spec("MPUBEX-1")
def test_prompt_then_exactly_the_data(
    dut: Device, broker: Broker, peer, names, characterize
) -> None:
    """After the prompt the module takes exactly <message_len> bytes, answers OK and
    `+MPUBEX: SUCCESS`, and the subscriber gets exactly those bytes; the next command is
    answered normally (no byte of the data was left over, none was missing)."""
    at = dut.at
    topic = names.topic()
    peer.subscribe(topic, qos=1)
    bring_up(dut, broker.plain_port, names.client_id)
    data = b"exactly these 40 bytes, not one more..."
    data += b"!" * (40 - len(data))
    outcome = expect_result(at.mpubex(topic, 1, 0, data), "MPUBEX")
    assert outcome.response.timing.prompt_ns is not None, "no prompt before the data"
    assert peer.expect(topic, timeout=5).payload == data
    assert at.at().response.ok
    prompt = _prompt(dut, outcome)
    characterize.record(
        "MPUBEX-1", outcome.response.command, f"prompt {prompt!r}",
        prompt is not None and prompt.rstrip() == REFERENCE.prompt.rstrip(),
        note="the guide shows `>>`",
    )
    echoed = data in _received_after_prompt(dut, outcome)
    characterize.record(
        "MPUBEX-1", f"{outcome.response.command} + {len(data)} bytes, echo on",
        "data echoed back" if echoed else "data not echoed",
        echoed == REFERENCE.echo_data,
        note="the guide shows `>> abc`",
    )


def _received_after_prompt(dut: Device, outcome: CommandResult) -> bytes:
    """What the module sent between its prompt and the end of the command."""
    timing = outcome.response.timing
    assert timing.prompt_ns is not None and timing.done_ns is not None
    return b"".join(
        data for t, data in dut.channel.transcript.chunks(RX)
        if timing.prompt_ns <= t <= timing.done_ns
    )
