"""AT+MSUB and AT+MUNSUB (sections 2.4, 2.5): subscriptions and the auto-mode report.

The manual-mode store is in test_msub_buffer.py; message-size limits in test_limits.py.
"""

from __future__ import annotations

import re

import pytest

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506 import commands
from hil.l506.types import TOPIC_MAX
from hil.sim.profiles import REFERENCE
from suites.expect import (
    bring_up,
    expect_refused_with_ceer,
    expect_result,
    module_got_nothing,
    queued_reports,
    wait_broker_log,
)


@pytest.mark.spec("MSUB-1")
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_subscribe_with_qos(dut: Device, broker: Broker, names, qos: int) -> None:
    """OK, `+MSUB: SUCCESS`; the broker receives the SUBSCRIBE for that topic at that QoS."""
    at = dut.at
    topic = names.topic()
    bring_up(dut, broker.plain_port, names.client_id)
    mark = broker.log_mark()
    expect_result(at.msub(topic, qos), "MSUB")
    wait_broker_log(
        broker, mark,
        rf"Received SUBSCRIBE from {re.escape(names.client_id)}\n.*\t{re.escape(topic)} "
        rf"\(QoS {qos}\)",
        timeout=5,
    )


@pytest.mark.spec("MSUB-1")
@pytest.mark.parametrize("qos", ["3", "-1", "x", ""])
def test_subscribe_with_bad_qos(
    dut: Device, broker: Broker, names, qos: str, characterize
) -> None:
    """Refused (GEN-6 forms); the broker receives no SUBSCRIBE. Bench: the same
    commands."""
    at = dut.at
    bring_up(dut, broker.plain_port, names.client_id)
    mark = broker.log_mark()
    outcome = at.raw(f"AT+MSUB={names.topic()},{qos}", spec=commands.MSUB)
    expect_refused_with_ceer(at, outcome, "MSUB", characterize)
    assert f"Received SUBSCRIBE from {names.client_id}" not in broker.log_since(mark)


@pytest.mark.spec("MSUB-2")
def test_auto_mode_reports(dut: Device, broker: Broker, peer, names) -> None:
    """Auto mode, the default: each message is reported at once, with its length, in the
    order published."""
    at = dut.at
    topic = names.topic()
    bring_up(dut, broker.plain_port, names.client_id)
    expect_result(at.msub(topic, 1), "MSUB")
    sent = [b"hello", b"two words", b"with, commas, inside", b"x" * 200]
    for payload in sent:
        peer.publish(topic, payload, qos=1)
    got = [at.wait_message(timeout=5, topic=topic) for _ in sent]
    assert [(m.topic, m.length, m.payload) for m in got] == [
        (topic, len(p), p) for p in sent
    ]


@pytest.mark.spec("MSUB-3", open_point=True)
def test_message_on_a_topic_longer_than_64(
    dut: Device, broker: Broker, peer, names, characterize
) -> None:
    """A message on a 100-character topic (through a wildcard subscription) is reported
    with the topic cut, dropped, or reported whole: recorded (the reference profile: cut
    to its first 64 characters). A report with any other topic fails."""
    at = dut.at
    long_topic, marker = names.padded_topic(100), names.topic("marker")
    bring_up(dut, broker.plain_port, names.client_id)
    expect_result(at.msub(f"{names.base}/#", 0), "MSUB")
    peer.publish(long_topic, b"long topic", qos=1)
    peer.publish(marker, b"marker", qos=1)
    at.wait_message(timeout=10, topic=marker)  # the long one, published first, is in by now
    reports = [m for m in queued_reports(at) if m.payload == b"long topic"]
    assert len(reports) <= 1, f"reported {len(reports)} times"
    if not reports:
        seen = "drop"
    else:
        topic = reports[0].topic
        seen = "whole" if topic == long_topic else "cut"
        assert seen == "whole" or (len(topic) <= TOPIC_MAX and long_topic.startswith(topic)), (
            f"reported with topic {topic!r}: neither the whole topic nor its beginning"
        )
        seen += f" ({len(topic)} characters)" if seen == "cut" else ""
    characterize.record(
        "MSUB-3", f"message on a topic of {len(long_topic)} characters", seen,
        seen.split()[0] == REFERENCE.long_topic
        and (seen == "drop" or seen == "whole" or f"({TOPIC_MAX} " in seen),
    )


@pytest.mark.spec("MSUB-7")
def test_wildcards_and_downgrade(
    dut: Device, broker: Broker, peer, names, characterize
) -> None:
    """`+` and `#` filters match as in MQTT 3.1.1, and a message published at QoS 2 reaches
    a QoS 0 subscription at QoS 0 (as the broker logs sending it). Recorded on hardware."""
    at = dut.at
    base, marker = names.base, names.topic("marker")
    bring_up(dut, broker.plain_port, names.client_id)
    for topic_filter in (f"{base}/+/plus", f"{base}/hash/#", marker):
        expect_result(at.msub(topic_filter, 0), "MSUB")
    mark = broker.log_mark()
    matching = [f"{base}/a/plus", f"{base}/hash/x/y", f"{base}/hash"]
    not_matching = [f"{base}/a/b/plus", f"{base}/hashes"]
    for topic in matching + not_matching:
        peer.publish(topic, topic.encode(), qos=2)
    peer.publish(marker, b"marker", qos=1)
    at.wait_message(timeout=5, topic=marker)  # everything published before it is in
    reported = [m.topic for m in queued_reports(at)]
    characterize.record(
        "MSUB-7",
        f"MSUB {base}/+/plus, {base}/hash/#; published {matching + not_matching}",
        f"reported {reported}",
        reported == matching,
    )
    try:
        line = wait_broker_log(
            broker, mark,
            rf"Sending PUBLISH to {re.escape(names.client_id)} \(d\d, q(\d), r\d, m\d+, "
            rf"'{re.escape(matching[0])}'",
            timeout=2,
        )
        qos = line.group(1)
    except AssertionError:
        qos = "none"
    characterize.record(
        "MSUB-7", f"QoS 2 message on {matching[0]} to a QoS 0 subscription",
        f"broker sent it at QoS {qos}", qos == "0",
    )


@pytest.mark.spec("MUNSUB-1")
def test_unsubscribe_stops_delivery(dut: Device, broker: Broker, peer, names) -> None:
    """OK, `+MUNSUB: SUCCESS`; afterwards a message on that topic is not reported, while
    one on a topic still subscribed is."""
    at = dut.at
    gone, kept = names.topic("gone"), names.topic("kept")
    bring_up(dut, broker.plain_port, names.client_id)
    expect_result(at.msub(gone, 1), "MSUB")
    expect_result(at.msub(kept, 1), "MSUB")
    peer.publish(gone, b"before", qos=1)
    assert at.wait_message(timeout=5, topic=gone).payload == b"before"
    expect_result(at.munsub(gone), "MUNSUB")
    module_got_nothing(
        at, gone,
        lambda: (peer.publish(gone, b"after", qos=1), peer.publish(kept, b"marker", qos=1)),
        kept,
    )
