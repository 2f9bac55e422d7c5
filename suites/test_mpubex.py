"""AT+MPUBEX (section 2.7): the prompt, exact-length raw data, and throughput at 1360 bytes.

Limits (1360/1361) and binary content are in test_limits.py.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import allure
import pytest

from hil.at.transcript import RX
from hil.broker import Broker
from hil.device import Device
from hil.l506.dut import CommandResult
from hil.l506.types import MPUBEX_MESSAGE_MAX
from suites.expect import bring_up, expect_result

BITS_PER_BYTE = 10  # start + 8 data + stop
PER_QOS = 10  # messages per QoS in the throughput run


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
        prompt is not None and prompt.rstrip() == b">",
        note="the guide shows `>>`",
    )


@pytest.mark.spec("MPUBEX-4")
def test_throughput_at_1360_bytes(
    dut: Device, broker: Broker, peer, names, run_dir: Path
) -> None:
    """1360-byte messages back to back at QoS 0, 1 and 2 all arrive complete and in order.
    Reported per QoS (throughput.json, and in the report): messages/s, bytes/s, latency
    from the data leaving the harness to the subscriber receiving it, and the fraction of
    what the serial line itself could carry at the port's baud rate."""
    at = dut.at
    baud = dut.channel.baudrate
    line_bytes_s = baud / BITS_PER_BYTE
    bring_up(dut, broker.plain_port, names.client_id)
    report: dict[str, object] = {"baud": baud, "line_bytes_per_s": line_bytes_s, "qos": {}}
    for qos in (0, 1, 2):
        topic = names.topic(f"qos{qos}")
        peer.subscribe(topic, qos=2)
        payloads = [
            f"{qos}:{i:04d}:".encode() + bytes([0x41 + (i + j) % 26 for j in range(1353)])
            for i in range(PER_QOS)
        ]
        assert {len(p) for p in payloads} == {MPUBEX_MESSAGE_MAX}
        outcomes = [expect_result(at.mpubex(topic, qos, 0, p), "MPUBEX") for p in payloads]
        got = [peer.expect(topic, timeout=10) for _ in payloads]
        assert [g.payload for g in got] == payloads, "messages lost, cut or out of order"
        first = outcomes[0].response.timing.sent_ns
        last = outcomes[-1].response.timing.done_ns
        assert last is not None
        elapsed = (last - first) / 1e9
        latencies = [
            (g.t_ns - o.response.timing.data_ns) / 1e6
            for g, o in zip(got, outcomes, strict=True)
            if o.response.timing.data_ns is not None
        ]
        wire = len(outcomes[0].response.command) + 1 + MPUBEX_MESSAGE_MAX
        per_s = PER_QOS / elapsed
        report["qos"][str(qos)] = {  # type: ignore[index]
            "messages": PER_QOS,
            "seconds": round(elapsed, 4),
            "messages_per_s": round(per_s, 2),
            "payload_bytes_per_s": round(per_s * MPUBEX_MESSAGE_MAX, 1),
            "latency_ms": {
                "min": round(min(latencies), 3),
                "median": round(statistics.median(latencies), 3),
                "max": round(max(latencies), 3),
            },
            "line_limit_messages_per_s": round(line_bytes_s / wire, 2),
            "line_rate_fraction": round(per_s * wire / line_bytes_s, 3),
        }
    text = json.dumps(report, indent=2)
    (run_dir / "throughput.json").write_text(text + "\n")
    allure.attach(text, name="throughput", attachment_type=allure.attachment_type.JSON)
