"""suites/expect.py's GEN-6 check against the scripted fake device: every refusal form the
guide allows is accepted and recorded, anything else fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakedevice import FakeDevice, crlf

from hil.l506.api import L506, Timeouts
from hil.l506.commands import MQTTSSL
from suites.expect import expect_refused


class Recorder:
    """Stands in for the `characterize` fixture: keeps what would be recorded."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, str, bool]] = []

    def record(self, clause: str, sent: object, got: object, decision_ok: bool) -> None:
        self.records.append((clause, str(sent), str(got), decision_ok))


@pytest.fixture
def device() -> Iterator[FakeDevice]:
    dev = FakeDevice()
    yield dev
    dev.close()


@pytest.fixture
def dut(device: FakeDevice) -> Iterator[L506]:
    l506 = L506.open(device.path, timeouts=Timeouts(basic=2, mipstart=2, mconnect=2))
    yield l506
    l506.channel.close()


@pytest.mark.parametrize(
    ("answer", "form", "as_reference"),
    [
        ((b"OK", b"+MPUB: FAILURE"), "FAILURE", False),  # the guide's format: no type
        ((b"+MPUB:FAILURE", b"OK"), "FAILURE", False),  # result first, no space
        ((b"OK", b"+MPUB: FAILURE,2"), "FAILURE,2", True),
        ((b"ERROR",), "ERROR", False),
        ((b"+CME ERROR: 4",), "+CME ERROR", False),
    ],
)
def test_every_form_of_gen6_is_a_refusal_and_is_recorded(
    device: FakeDevice, dut: L506, answer: tuple[bytes, ...], form: str, as_reference: bool
) -> None:
    device.on(b"AT+MPUB=t,3,0,x\r", crlf(*answer))
    recorder = Recorder()
    assert expect_refused(dut.mpub("t", 3, 0, "x"), "MPUB", recorder) == form
    assert recorder.records == [("GEN-6", "AT+MPUB=t,3,0,x", form, as_reference)]


def test_a_switch_refused_as_the_reference_does(device: FakeDevice, dut: L506) -> None:
    device.on(b"AT+MQTTSSL=7\r", crlf(b"ERROR"))
    recorder = Recorder()
    assert expect_refused(dut.raw("AT+MQTTSSL=7", spec=MQTTSSL), "MQTTSSL", recorder) == "ERROR"
    assert recorder.records[0][3] is True


@pytest.mark.parametrize(
    ("command", "answer", "name", "complaint"),
    [
        (b"AT+MPUB=t,3,0,x\r", (b"OK", b"+MPUB: SUCCESS"), "MPUB", "accepted"),
        (b"AT+MPUB=t,3,0,x\r", (b"OK", b"+MPUB: FAILURE,3"), "MPUB", "other than 2"),
        (b"AT+MCONFIG=c,u\r", (b"+MCONFIG: FAILURE", b"OK"), "MCONFIG", "without its result"),
    ],
)
def test_what_is_not_a_refusal_fails(
    device: FakeDevice, dut: L506, command: bytes, answer: tuple[bytes, ...], name: str,
    complaint: str,
) -> None:
    device.on(command, crlf(*answer))
    outcome = dut.mpub("t", 3, 0, "x") if name == "MPUB" else dut.mconfig("c", "u")
    with pytest.raises(AssertionError, match=complaint):
        expect_refused(outcome, name, Recorder())
