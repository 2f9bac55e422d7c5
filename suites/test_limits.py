"""Limits and content: topic and message lengths on the way out and in, commas, binary data.

Every "refused" case also proves that nothing went out: a marker published after it reaches
the peer, and nothing else did before it (not a silent cut, not the message itself).
"""

from __future__ import annotations

import string

import pytest

from hil.at.channel import UrcTimeout
from hil.broker import Broker
from hil.dut.device import Device
from hil.l506.types import (
    MPUB_MESSAGE_MAX,
    MPUBEX_MESSAGE_MAX,
    MSUB_MESSAGE_MAX,
    TOPIC_MAX,
)
from hil.sim.profiles import REFERENCE
from suites.expect import (
    bring_up,
    expect_refused_with_ceer,
    expect_result,
    peer_got_nothing,
)


def _text(length: int) -> bytes:
    """Printable, position-revealing content: a cut shows where it happened."""
    alphabet = (string.ascii_letters + string.digits).encode()
    return bytes(alphabet[i % len(alphabet)] for i in range(length))


def _refused_and_nothing_sent(
    dut: Device, peer, outcome, name: str, marker: str, characterize
) -> None:
    expect_refused_with_ceer(dut.at, outcome, name, characterize)
    peer_got_nothing(
        peer, "#", lambda: expect_result(dut.at.mpub(marker, 1, 0, "marker"), "MPUB"), marker
    )


@pytest.fixture
def connected(dut: Device, broker: Broker, peer, names) -> Device:
    """The module connected; the peer subscribed to everything below the test's base."""
    peer.subscribe(f"{names.base}/#", qos=1)
    bring_up(dut, broker.plain_port, names.client_id)
    return dut


@pytest.mark.spec("MPUB-2")
@pytest.mark.spec("MPUB-3")
def test_topic_of_64_and_65(connected: Device, peer, names, characterize) -> None:
    """A 64-character topic is published as it is; a 65-character one is refused and
    nothing (not even a cut topic) is published."""
    at = connected.at
    topic64 = names.padded_topic(TOPIC_MAX)
    expect_result(at.mpub(topic64, 1, 0, "sixty-four"), "MPUB")
    got = peer.expect(topic64, timeout=5)
    assert (got.topic, got.payload) == (topic64, b"sixty-four")
    topic65 = names.padded_topic(TOPIC_MAX + 1).replace("x", "y")
    outcome = at.mpub(topic65, 1, 0, "sixty-five")
    _refused_and_nothing_sent(
        connected, peer, outcome, "MPUB", names.topic("marker"), characterize
    )


@pytest.mark.spec("MPUB-2")
@pytest.mark.spec("MPUB-3")
def test_mpub_message_of_256_and_257(connected: Device, peer, names, characterize) -> None:
    """256 bytes arrive byte for byte; 257 are refused, not cut to 256 and sent."""
    at = connected.at
    topic = names.topic()
    expect_result(at.mpub(topic, 1, 0, _text(MPUB_MESSAGE_MAX)), "MPUB")
    assert peer.expect(topic, timeout=5).payload == _text(MPUB_MESSAGE_MAX)
    outcome = at.mpub(topic, 1, 0, _text(MPUB_MESSAGE_MAX + 1))
    _refused_and_nothing_sent(
        connected, peer, outcome, "MPUB", names.topic("marker"), characterize
    )


@pytest.mark.spec("MPUBEX-2")
def test_mpubex_of_1360_and_1361(connected: Device, peer, names, characterize) -> None:
    """1360 bytes arrive byte for byte; 1361 are refused (with or without a prompt first:
    recorded; the reference profile refuses at once, without one) and nothing is sent."""
    at = connected.at
    topic = names.topic()
    expect_result(at.mpubex(topic, 1, 0, _text(MPUBEX_MESSAGE_MAX)), "MPUBEX")
    assert peer.expect(topic, timeout=5).payload == _text(MPUBEX_MESSAGE_MAX)
    outcome = at.mpubex(topic, 1, 0, _text(MPUBEX_MESSAGE_MAX + 1))
    prompted = outcome.response.timing.prompt_ns is not None
    characterize.record(
        "MPUBEX-2", outcome.response.command,
        ("prompt, then " if prompted else "no prompt; ") + outcome.response.summary(),
        prompted == REFERENCE.mpubex_oversize_prompt,
    )
    _refused_and_nothing_sent(
        connected, peer, outcome, "MPUBEX", names.topic("marker"), characterize
    )


@pytest.mark.spec("MSUB-3")
@pytest.mark.parametrize("size", [1360, 1361, 4096])
def test_incoming_message_cut_to_1360(
    dut: Device, broker: Broker, peer, names, size: int, characterize
) -> None:
    """An incoming message is reported with at most its first 1360 bytes. `<len>` is the
    original length or the cut one (recorded; the reference profile: the original)."""
    at = dut.at
    topic = names.topic()
    bring_up(dut, broker.plain_port, names.client_id)
    expect_result(at.msub(topic, 1), "MSUB")
    payload = _text(size)
    peer.publish(topic, payload, qos=1)
    report = at.wait_message(timeout=10, topic=topic)
    assert report.payload == payload[:MSUB_MESSAGE_MAX], (
        f"reported {len(report.payload)} bytes, not the first {MSUB_MESSAGE_MAX}"
        if len(report.payload) != min(size, MSUB_MESSAGE_MAX) else "content differs"
    )
    assert report.length in (size, min(size, MSUB_MESSAGE_MAX)), (
        f"<len> {report.length} is neither the original {size} nor the cut length"
    )
    characterize.record(
        "MSUB-3", f"incoming message of {size} bytes",
        f"+MSUB: ...,{report.length} bytes,<{len(report.payload)} bytes>",
        report.length == (size if REFERENCE.msub_len == "original" else len(report.payload)),
    )
    assert at.at().response.ok  # the module is back to commands after the long report


@pytest.mark.spec("MPUB-5")
def test_commas_inside_an_mpub_message(connected: Device, peer, names, characterize) -> None:
    """Whether everything after the third comma is the message, commas and spaces
    included: recorded (the reference profile: so)."""
    at = connected.at
    topic = names.topic()
    message = "a,b,,c, d ,e,"
    outcome = at.mpub(topic, 1, 0, message)
    try:
        got = peer.expect(topic, timeout=5).payload
    except AssertionError:
        got = None
    characterize.record(
        "MPUB-5", outcome.response.command,
        f"{outcome.response.summary()}; peer got {got!r}",
        (outcome.ok and got == message.encode()) == (REFERENCE.mpub_commas == "message"),
    )


@pytest.mark.spec("MPUBEX-3")
def test_binary_mpubex_data(connected: Device, peer, names, characterize) -> None:
    """Whether CR, LF, NUL, 0xFF, commas and every other byte value travel byte-exact, to
    the peer and back to the module in its own report: recorded (the reference profile:
    so)."""
    at = connected.at
    topic = names.topic()
    data = b"\r\n\x00\xff,\r\r\n\n," + bytes(range(256)) + b"\r\nOK\r\nERROR\r\n"
    expect_result(at.msub(topic, 1), "MSUB")
    outcome = at.mpubex(topic, 1, 0, data)
    try:
        got = peer.expect(topic, timeout=5).payload
    except AssertionError:
        got = None
    characterize.record(
        "MPUBEX-3", f"{outcome.response.command} + {len(data)} bytes of every value",
        f"{outcome.response.summary()}; peer got {len(got) if got else 0} bytes"
        + ("" if got == data else f", first difference at {_diff(got, data)}"),
        (outcome.ok and got == data) == REFERENCE.mpubex_binary,
    )
    try:
        back = at.wait_message(timeout=5, topic=topic).payload
    except UrcTimeout:
        back = None
    characterize.record(
        "MPUBEX-3", "the same message reported back (+MSUB, auto mode)",
        f"{len(back) if back else 0} bytes" + ("" if back == data else " (differs)"),
        (back == data) == REFERENCE.mpubex_binary,
    )


def _diff(a: bytes | None, b: bytes) -> int:
    if a is None:
        return 0
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))
