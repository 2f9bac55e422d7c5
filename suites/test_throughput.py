"""MPUBEX-4: 1360-byte messages back to back at QoS 0, 1 and 2, against the serial line's limit.

Each QoS publishes N messages with AT+MPUBEX, one right after the other's result URC. The
subscriber (on the broker, QoS 2) must get every message, complete and in order, and at QoS 2
none twice. Reported per QoS, in throughput.json in the run's folder and in the report:
messages/s, payload bytes/s, publish latency (command written → `+MPUBEX: SUCCESS`),
end-to-end latency (command written → the subscriber has it), and the fraction of the serial
line's limit reached: the bytes that crossed the line one after another during the run (both
directions, prompts and answers included; the echo left out, as it crosses while the command
is still being sent) × 10 bits / baud, over the time taken. Nothing here asserts a speed: a
module is as fast as it is; the figures are for reading, and per-command budgets (timing
layer) judge the single responses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import allure
import pytest

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506.types import MPUBEX_MESSAGE_MAX
from hil.report.records import THROUGHPUT, Throughput, ThroughputSeries, write_record
from hil.report.timing import echo_bytes, line_bytes, line_rate_fraction, line_seconds, stats
from suites.expect import bring_up, expect_result, tear_down

N = 20  # messages per QoS: enough for steady figures, few enough to keep the suite fast
SIZE = MPUBEX_MESSAGE_MAX  # 1360
RECEIVE_TIMEOUT_S = 30.0


def payload(qos: int, index: int) -> bytes:
    """Message `index` of a QoS run: printable, exactly SIZE bytes, each one different."""
    head = f"qos{qos}:{index:04d}:".encode()
    body = bytes(0x41 + (index + j) % 26 for j in range(SIZE - len(head)))
    return head + body


@pytest.fixture(scope="module")
def throughput_record(run_dir: Path) -> Iterator[dict[str, ThroughputSeries]]:
    """The figures of each QoS, written to throughput.json when the module is done."""
    series: dict[str, ThroughputSeries] = {}
    yield series
    if series:
        write_record(run_dir / THROUGHPUT, Throughput(series, clause="MPUBEX-4",
                                                      messages_per_qos=N, message_bytes=SIZE))


def _ms(figures: list[float]) -> dict[str, float] | None:
    s = stats(figures)
    return None if s is None else s.as_dict()


@pytest.mark.spec("MPUBEX-4")
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mpubex_1360_back_to_back(
    dut: Device, broker: Broker, peer, names, qos: int,
    throughput_record: dict[str, ThroughputSeries],
) -> None:
    """N × 1360-byte MPUBEX back to back: every message arrives, complete, in order (and
    once, at QoS 2); throughput, latencies and the share of the line rate are reported."""
    at = dut.at
    baud = dut.channel.baudrate
    topic = names.topic(f"throughput-q{qos}")
    peer.subscribe(topic, qos=2)
    bring_up(dut, broker.plain_port, names.client_id, keepalive=60)
    sent = [payload(qos, i) for i in range(N)]

    outcomes = [expect_result(at.mpubex(topic, qos, 0, message), "MPUBEX") for message in sent]

    received = []
    seen: set[bytes] = set()
    while len(seen) < N and len(received) < 2 * N:
        got = peer.expect(topic, timeout=RECEIVE_TIMEOUT_S)
        received.append(got)
        seen.add(got.payload)
    if qos == 2:
        peer.expect_nothing(topic, within=0.5)  # a late duplicate would show here
    tear_down(dut)

    # complete and in order: the first arrival of each message, in publishing order
    firsts: dict[bytes, Any] = {}
    for message in received:
        firsts.setdefault(message.payload, message)
    cut = [m for m in received if len(m.payload) != SIZE]
    assert not cut, f"{len(cut)} message(s) not {SIZE} bytes: {[len(m.payload) for m in cut]}"
    missing = [i for i, m in enumerate(sent) if m not in firsts]
    assert not missing, f"QoS {qos}: messages {missing} never arrived"
    order = [sent.index(p) for p in firsts]
    assert order == sorted(order), f"QoS {qos}: arrival order {order}"
    duplicates = len(received) - len(firsts)
    if qos == 2:
        assert duplicates == 0, f"QoS 2: {duplicates} message(s) delivered twice"

    first_ns = outcomes[0].response.timing.sent_ns
    last_ns = outcomes[-1].response.timing.done_ns
    assert last_ns is not None
    elapsed = (last_ns - first_ns) / 1e9
    tx, rx = line_bytes(dut.channel.transcript, first_ns, last_ns)
    echoed = echo_bytes(o.response for o in outcomes)
    serial = tx + rx - echoed  # what crossed one byte after another (the echo overlaps)
    publish_ms = [o.response.timing.result_ms for o in outcomes]
    end_to_end_ms = [
        (firsts[m].t_ns - o.response.timing.sent_ns) / 1e6
        for m, o in zip(sent, outcomes, strict=True)
    ]
    per_message = serial / N
    figures = ThroughputSeries(
        messages=N,
        seconds=round(elapsed, 4),
        messages_per_s=round(N / elapsed, 2),
        payload_bytes_per_s=round(N * SIZE / elapsed, 1),
        publish_latency_ms=_ms([x for x in publish_ms if x is not None]),
        end_to_end_latency_ms=_ms(end_to_end_ms),
        line={
            "baud": baud,
            "bytes_to_module": tx,
            "bytes_from_module": rx,
            "echo_bytes": echoed,
            "bytes_per_message": round(per_message, 1),
            "line_seconds": round(line_seconds(serial, baud), 4),
            "limit_messages_per_s": round(1 / line_seconds(round(per_message), baud), 2),
            "fraction": round(line_rate_fraction(serial, baud, elapsed) or 0.0, 4),
        },
        duplicates=duplicates,
    )
    throughput_record[f"qos{qos}"] = figures
    text = json.dumps(figures.to_json(), indent=2)
    allure.attach(text, name=f"throughput QoS {qos}", attachment_type=allure.attachment_type.JSON)
    print(f"QoS {qos}: {figures.messages_per_s} msg/s, {figures.payload_bytes_per_s} B/s, "
          f"line fraction {figures.line['fraction']}")
