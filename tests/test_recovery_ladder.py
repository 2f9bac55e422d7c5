"""Recovery's ladder before a test: a module that answers but is not in the known state is
reset (AT+CFUN=1,1) before any power cycle; a silent one, or one after a failed test, is
power-cycled at once. The device is a stand-in that records what was done to it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hil.at.channel import AtError
from hil.at.transcript import Transcript
from hil.dut import recovery
from hil.dut.recovery import NotKnownState, Recovery


class _Device:
    def __init__(self, *, power: bool = True) -> None:
        self.done: list[str] = []
        self.power = SimpleNamespace() if power else None
        self.channel = SimpleNamespace(lost=None, transcript=Transcript())

    def soft_reset(self) -> None:
        self.done.append("reset")

    def power_cycle(self) -> None:
        self.done.append("cycle")


def _states(monkeypatch: pytest.MonkeyPatch, device: _Device, *answers: AtError | None) -> None:
    """known_state as the module answers it, one answer per call (None: the known state)."""
    left = list(answers)

    def known_state(dev: object, timeout: float) -> None:
        assert dev is device
        answer = left.pop(0)
        if answer is not None:
            raise answer

    monkeypatch.setattr(recovery, "known_state", known_state)


def test_a_module_answering_out_of_state_is_reset_not_power_cycled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    device = _Device()
    _states(monkeypatch, device, NotKnownState("AT+MQTTSSL=0 was refused"), None, None)
    assert Recovery(device).prepare() == ["reset by AT+CFUN=1,1"]  # type: ignore[arg-type]
    assert device.done == ["reset"]


def test_a_reset_that_does_not_help_goes_on_to_the_power_cycle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    device = _Device()
    stuck = NotKnownState("MQTTSTATU is 2 after disconnect and close, not 0")
    _states(monkeypatch, device, stuck, stuck, None)
    assert Recovery(device).prepare() == ["power cycle"]  # type: ignore[arg-type]
    assert device.done == ["reset", "cycle"]
    assert "the reset did not help" in device.channel.transcript.render()


def test_a_silent_module_is_power_cycled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    device = _Device()
    _states(monkeypatch, device, AtError("no answer to AT"), None)
    assert Recovery(device).prepare() == ["power cycle"]  # type: ignore[arg-type]
    assert device.done == ["cycle"]


def test_after_a_failed_test_the_module_is_power_cycled(monkeypatch: pytest.MonkeyPatch) -> None:
    device = _Device()
    _states(monkeypatch, device, None)
    assert Recovery(device).prepare(after_failure="boom") == ["power cycle"]  # type: ignore[arg-type]
    assert device.done == ["cycle"]


def test_without_power_the_reset_is_the_way(monkeypatch: pytest.MonkeyPatch) -> None:
    device = _Device(power=False)
    _states(monkeypatch, device, NotKnownState("AT was not answered OK"), None)
    assert Recovery(device).prepare() == ["reset by AT+CFUN=1,1"]  # type: ignore[arg-type]
    assert device.done == ["reset"]
