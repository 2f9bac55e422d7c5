"""The manual-mode message store (MSUB-4 … MSUB-6, AT+MQTTMSGSET, AT+MQTTMSGGET).

Where the ring must start at slot 0 the test restarts the module first (AT+CFUN=1,1): after
a restart the store is empty (MSUB-6), so the first message goes to slot 0.
"""

from __future__ import annotations

import re

import pytest

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506 import commands
from hil.l506.types import MSUB_SLOT_URC, SLOTS, Message
from hil.sim.profiles import REFERENCE
from suites.expect import bring_up, expect_refused, expect_result

#: A message in either mode: `+MSUB: <n>` (manual) or `+MSUB: <topic>,<len> bytes,...` (auto).
ANY_MSUB_URC = re.compile(rb"\A\+MSUB: ?(?:\d+[ \t]*\Z|.*?,\d+ bytes,)", re.DOTALL)


def _store(dut: Device, peer, topic: str, payload: bytes) -> int:
    """Publish from the peer; the module announces the slot it stored the message in."""
    peer.publish(topic, payload, qos=1)
    return dut.at.wait_slot(timeout=5)


def _slot(dut: Device, n: int) -> list[tuple[str, bytes]]:
    answer = dut.at.mqttmsgget(n)
    assert answer.ok, f"AT+MQTTMSGGET={n}: {answer.response.summary()}"
    return [(m.topic, m.payload) for m in answer.messages]


def _connected_in_manual_mode(dut: Device, broker: Broker, names, topic: str) -> None:
    bring_up(dut, broker.plain_port, names.client_id)
    assert dut.at.mqttmsgset(1).ok
    expect_result(dut.at.msub(topic, 1), "MSUB")


@pytest.mark.spec("MSUB-4")
@pytest.mark.spec("MSUB-5")
@pytest.mark.spec("MSGGET-1")
def test_ring_of_four_over_two_laps(
    dut: Device, broker: Broker, peer, names, characterize
) -> None:
    """Nine messages after a restart are announced as `+MSUB: <n>` with n = 0 1 2 3 0 1 2
    3 0: the fifth overwrites slot 0, and so on round the ring. Only then is the store
    read (MSGGET-4: no S test may depend on whether reading clears a slot): each slot once,
    holding the last message announced for it. Whether a second read finds it again is
    recorded."""
    at = dut.at
    topic = names.topic()
    dut.soft_reset()
    _connected_in_manual_mode(dut, broker, names, topic)
    messages = [f"message {i}".encode() for i in range(2 * SLOTS + 1)]
    slots = [_store(dut, peer, topic, message) for message in messages]
    assert slots == [0, 1, 2, 3, 0, 1, 2, 3, 0], f"slots announced: {slots}"
    expected = [messages[8], messages[5], messages[6], messages[7]]
    assert [_slot(dut, n) for n in range(SLOTS)] == [[(topic, m)] for m in expected]
    again = at.mqttmsgget(0)
    kept = [(m.topic, m.payload) for m in again.messages] == [(topic, messages[8])]
    characterize.record(
        "MSGGET-4", f"{again.response.command} a second time",
        again.response.summary(), kept != REFERENCE.msgget_clears,
    )


@pytest.mark.spec("MSGGET-3")
def test_msgget_without_n_on_a_partly_filled_store(
    dut: Device, broker: Broker, peer, names
) -> None:
    """Two messages stored after a restart: AT+MQTTMSGGET (read once, without n) prints
    exactly those two, slot 0 first."""
    at = dut.at
    topic = names.topic()
    dut.soft_reset()
    _connected_in_manual_mode(dut, broker, names, topic)
    assert [_store(dut, peer, topic, p) for p in (b"first", b"second")] == [0, 1]
    answer = at.mqttmsgget()
    assert answer.ok, answer.response.summary()
    assert [(m.topic, m.payload) for m in answer.messages] == [
        (topic, b"first"), (topic, b"second")
    ]


@pytest.mark.spec("MSUB-6")
@pytest.mark.spec("MSGGET-2")
def test_store_is_empty_after_a_restart(
    dut: Device, broker: Broker, peer, names, characterize
) -> None:
    """A stored message is gone after AT+CFUN=1,1: every slot reads
    `+MQTTMSGGET:INVALID` (then OK or ERROR: recorded). Whether manual mode survives the
    restart is recorded (MSUB-6's open point; the reference profile: back to auto)."""
    at = dut.at
    topic = names.topic()
    _connected_in_manual_mode(dut, broker, names, topic)
    _store(dut, peer, topic, b"kept in RAM")
    dut.soft_reset()
    for n in range(SLOTS):
        answer = at.mqttmsgget(n)
        response = answer.response
        assert answer.invalid, f"slot {n} after a restart: {response.summary()}"
        assert not answer.messages, f"slot {n} survived the restart: {response.summary()}"
        characterize.record(
            "MSGGET-2", response.command + " (empty slot)",
            "; ".join(line.text for line in response.lines) + f"; final {_final(response)}",
            _final(response) == REFERENCE.msgget_invalid_final,
        )
    assert not at.mqttmsgget().messages, "AT+MQTTMSGGET prints messages after a restart"
    bring_up(dut, broker.plain_port, names.client_id)
    expect_result(at.msub(topic, 1), "MSUB")
    peer.publish(topic, b"after the restart", qos=1)
    line = at.channel.wait_urc(ANY_MSUB_URC, timeout=5)
    manual = MSUB_SLOT_URC.match(line.raw) is not None
    characterize.record(
        "MSUB-6", "AT+MQTTMSGSET=1, AT+CFUN=1,1, then a message arrives",
        f"{line.text} ({'manual' if manual else 'auto'} mode)",
        manual == REFERENCE.settings_survive_restart,
    )
    assert at.mqttmsgset(0).ok  # leave the default for the next test


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
    assert at.mqttmsgset(1).ok
    slot = _store(dut, peer, topic, b"manual")
    assert slot in range(SLOTS)
    assert _slot(dut, slot) == [(topic, b"manual")]
    assert at.mqttmsgset(0).ok
    peer.publish(topic, b"auto again", qos=1)
    assert at.wait_message(timeout=5, topic=topic).payload == b"auto again"
    assert not [u.text for u in at.channel.urcs() if u.text.startswith("+MSUB")], (
        "a report or slot announcement too many"
    )


@pytest.mark.spec("MSGSET-1")
@pytest.mark.parametrize("value", ["2", "-1", "a", ""])
def test_msgset_other_values(dut: Device, value: str, characterize) -> None:
    """Values other than 0 and 1 answer ERROR (or its extended form `+CME ERROR: <n>`;
    which one is recorded)."""
    answer = dut.at.raw(f"AT+MQTTMSGSET={value}", spec=commands.MQTTMSGSET)
    assert answer.response.error, f"AT+MQTTMSGSET={value}: {answer.response.summary()}"
    expect_refused(answer, "MQTTMSGSET", characterize)


@pytest.mark.spec("MSGGET-4")
def test_stored_long_topic_and_reading_twice(
    dut: Device, broker: Broker, peer, names, characterize
) -> None:
    """A message on a 100-character topic in manual mode, then a marker: what
    AT+MQTTMSGGET prints for it (topic cut to 64 or up to 256 as section 2.12 allows, or
    not stored at all) and whether reading it twice gives it twice are recorded (the
    reference profile: cut to 64, reading does not clear)."""
    at = dut.at
    long_topic, marker = names.padded_topic(100), names.topic("marker")
    bring_up(dut, broker.plain_port, names.client_id)
    assert at.mqttmsgset(1).ok
    expect_result(at.msub(f"{names.base}/#", 1), "MSUB")
    peer.publish(long_topic, b"long topic, stored", qos=1)
    peer.publish(marker, b"marker", qos=1)
    slot = at.wait_slot(timeout=5)
    first = at.mqttmsgget(slot)
    assert first.ok and first.messages, first.response.summary()
    shown: Message = first.messages[0]
    if shown.topic == marker:
        characterize.record(
            "MSGGET-4", "message on a topic of 100 characters, manual mode",
            "not stored (only the marker after it was)", False,
        )
    else:
        assert long_topic.startswith(shown.topic), f"{shown.topic!r} is not its beginning"
        characterize.record(
            "MSGGET-4", f"{first.response.command} (topic of 100 characters)",
            f"topic of {len(shown.topic)} characters",
            len(shown.topic) == min(len(long_topic), REFERENCE.stored_topic_max),
        )
    second = at.mqttmsgget(slot)
    kept = [(m.topic, m.payload) for m in second.messages] == [(shown.topic, shown.payload)]
    characterize.record(
        "MSGGET-4", f"{first.response.command} twice",
        f"second read: {second.response.summary()}", kept != REFERENCE.msgget_clears,
    )
