"""The manual-mode message store (MSUB-4 … MSUB-6, AT+MQTTMSGSET, AT+MQTTMSGGET).

Where the ring must start at slot 0 the test restarts the module first (AT+CFUN=1,1): after
a restart the store is empty (MSUB-6), so the first message goes to slot 0.
"""

from __future__ import annotations

import pytest

from hil.broker import Broker
from hil.device import Device
from hil.l506 import commands
from hil.l506.types import SLOTS, TOPIC_MAX, Message
from suites.expect import bring_up, expect_result


def _store(dut: Device, peer, topic: str, payload: bytes) -> int:
    """Publish from the peer; the module announces the slot it stored the message in."""
    peer.publish(topic, payload, qos=1)
    return dut.at.wait_slot(timeout=5)


def _slot(dut: Device, n: int) -> list[tuple[str, bytes]]:
    answer = dut.at.msgget(n)
    assert answer.ok, f"AT+MQTTMSGGET={n}: {answer.response.summary()}"
    return [(m.topic, m.payload) for m in answer.messages]


def _connected_in_manual_mode(dut: Device, broker: Broker, names, topic: str) -> None:
    bring_up(dut, broker.plain_port, names.client_id)
    assert dut.at.msgset(1).ok
    expect_result(dut.at.msub(topic, 1), "MSUB")


@pytest.mark.spec("MSUB-4")
@pytest.mark.spec("MSUB-5")
@pytest.mark.spec("MSGGET-1")
@pytest.mark.spec("MSGGET-3")
def test_ring_of_four_over_two_laps(dut: Device, broker: Broker, peer, names) -> None:
    """Nine messages after a restart go to slots 0 1 2 3 0 1 2 3 0, each announced as
    `+MSUB: <n>`; after each lap every slot holds exactly the message of that lap, and
    AT+MQTTMSGGET without n prints the store in slot order (not arrival order)."""
    at = dut.at
    topic = names.topic()
    dut.soft_reset()
    _connected_in_manual_mode(dut, broker, names, topic)
    messages = [f"message {i}".encode() for i in range(2 * SLOTS + 1)]

    slots = [_store(dut, peer, topic, messages[i]) for i in range(SLOTS)]
    assert slots == [0, 1, 2, 3]
    assert [_slot(dut, n) for n in range(SLOTS)] == [[(topic, messages[n])] for n in range(4)]

    slots = [_store(dut, peer, topic, messages[SLOTS + i]) for i in range(SLOTS)]
    assert slots == [0, 1, 2, 3], "the second lap must overwrite slot 0 first"
    assert [_slot(dut, n) for n in range(SLOTS)] == [
        [(topic, messages[SLOTS + n])] for n in range(SLOTS)
    ]

    assert _store(dut, peer, topic, messages[8]) == 0
    expected = [messages[8], messages[5], messages[6], messages[7]]
    assert [_slot(dut, n) for n in range(SLOTS)] == [[(topic, m)] for m in expected]
    everything = at.msgget()
    assert everything.ok, everything.response.summary()
    assert [(m.topic, m.length, m.payload) for m in everything.messages] == [
        (topic, len(m), m) for m in expected
    ]
    assert not everything.invalid


@pytest.mark.spec("MSGGET-3")
def test_msgget_without_n_on_a_partly_filled_store(
    dut: Device, broker: Broker, peer, names
) -> None:
    """Two messages stored after a restart: AT+MQTTMSGGET prints exactly those two, slot 0
    first."""
    at = dut.at
    topic = names.topic()
    dut.soft_reset()
    _connected_in_manual_mode(dut, broker, names, topic)
    assert [_store(dut, peer, topic, p) for p in (b"first", b"second")] == [0, 1]
    answer = at.msgget()
    assert answer.ok, answer.response.summary()
    assert [(m.topic, m.payload) for m in answer.messages] == [
        (topic, b"first"), (topic, b"second")
    ]


@pytest.mark.spec("MSUB-6")
@pytest.mark.spec("MSGGET-2")
@pytest.mark.spec("MSGSET-1")
def test_store_is_empty_after_a_restart(
    dut: Device, broker: Broker, peer, names, characterize
) -> None:
    """A stored message is gone after AT+CFUN=1,1: every slot reads
    `+MQTTMSGGET:INVALID` (then OK, as decided; recorded on hardware); the mode is back to
    auto, so the next message is reported at once."""
    at = dut.at
    topic = names.topic()
    _connected_in_manual_mode(dut, broker, names, topic)
    _store(dut, peer, topic, b"kept in RAM")
    dut.soft_reset()
    for n in range(SLOTS):
        answer = at.msgget(n)
        response = answer.response
        assert answer.invalid, f"slot {n} after a restart: {response.summary()}"
        assert not answer.messages, f"slot {n} survived the restart: {response.summary()}"
        characterize.record(
            "MSGGET-2", response.command + " (empty slot)",
            "; ".join(line.text for line in response.lines) + f"; final {_final(response)}",
            response.ok,
        )
    assert not at.msgget().messages, "AT+MQTTMSGGET prints messages after a restart"
    # MSGSET-1: auto is the default after the restart
    bring_up(dut, broker.plain_port, names.client_id)
    expect_result(at.msub(topic, 1), "MSUB")
    peer.publish(topic, b"auto again", qos=1)
    report = at.wait_message(timeout=5, topic=topic)
    assert report.payload == b"auto again"


def _final(response) -> str:
    return response.final.text if response.final is not None else "none"


@pytest.mark.spec("MSGSET-1")
def test_switching_modes(dut: Device, broker: Broker, peer, names) -> None:
    """While connected: 1 stores and announces the slot, 0 reports at once again."""
    at = dut.at
    topic = names.topic()
    bring_up(dut, broker.plain_port, names.client_id)
    expect_result(at.msub(topic, 1), "MSUB")
    peer.publish(topic, b"auto", qos=1)
    assert at.wait_message(timeout=5, topic=topic).payload == b"auto"
    assert at.msgset(1).ok
    slot = _store(dut, peer, topic, b"manual")
    assert slot in range(SLOTS)
    assert _slot(dut, slot) == [(topic, b"manual")]
    assert at.msgset(0).ok
    peer.publish(topic, b"auto again", qos=1)
    assert at.wait_message(timeout=5, topic=topic).payload == b"auto again"
    assert not [u.text for u in at.channel.urcs() if u.text.startswith("+MSUB")], (
        "a report or slot announcement too many"
    )


@pytest.mark.spec("MSGSET-1")
@pytest.mark.parametrize("value", ["2", "-1", "a", ""])
def test_msgset_other_values(dut: Device, value: str) -> None:
    """Values other than 0 and 1 answer ERROR."""
    answer = dut.at.raw(f"AT+MQTTMSGSET={value}", spec=commands.MQTTMSGSET)
    assert answer.response.error, f"AT+MQTTMSGSET={value}: {answer.response.summary()}"


@pytest.mark.spec("MSGGET-4")
def test_reading_keeps_the_slot_and_the_topic_length(
    dut: Device, broker: Broker, peer, names, characterize
) -> None:
    """A stored message on a 100-character topic: AT+MQTTMSGGET prints it with the topic
    cut to 64 (decision; the guide allows 256 here) and reading twice gives it twice
    (reading does not clear). Recorded on hardware."""
    at = dut.at
    long_topic = names.padded_topic(100)
    bring_up(dut, broker.plain_port, names.client_id)
    assert at.msgset(1).ok
    expect_result(at.msub(f"{names.base}/#", 1), "MSUB")
    slot = _store(dut, peer, long_topic, b"long topic, stored")
    first, second = at.msgget(slot), at.msgget(slot)
    assert first.ok and first.messages, first.response.summary()
    shown: Message = first.messages[0]
    assert long_topic.startswith(shown.topic), f"{shown.topic!r} is not the topic's beginning"
    characterize.record(
        "MSGGET-4", f"{first.response.command} (topic of 100 characters)",
        f"topic of {len(shown.topic)} characters", len(shown.topic) == TOPIC_MAX,
    )
    characterize.record(
        "MSGGET-4", f"{first.response.command} twice",
        f"second read: {second.response.summary()}",
        [(m.topic, m.payload) for m in second.messages] == [(shown.topic, shown.payload)],
    )
