"""Bring the module back to a known state between tests, cheaply, and further when needed.

The ladder, from cheap to dear: the AT commands of `known_state` (checked with MQTTSTATU);
if the port vanished, reopen it where it is now; then a power cycle (or AT+CFUN=1,1 on a
rig without power control). A module that does not come back is lost: every later test
errors at once with "DUT lost" and the reason, instead of waiting for it test after test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hil.at.channel import AtError
from hil.dut.device import Device
from hil.l506.types import MqttStatus
from hil.power.protocol import PowerError

LOST = "DUT lost"


class DutLost(RuntimeError):
    """The module stopped answering and recovery failed; the message starts with LOST."""


class NotKnownState(AtError):
    """The module answered, but not in the state every test starts from."""


@dataclass(frozen=True)
class Rung:
    """One way back to a fresh module: its name, and the doing, which raises when it did
    not bring the module back (or cannot be tried now: the module does not answer AT)."""

    name: str
    run: Callable[[], None]


#: What a rung may fail with; anything else is a fault of the harness and goes up as it is.
RUNG_ERRORS = (AtError, PowerError, LookupError, OSError, TimeoutError)


def climb(rungs: Sequence[Rung], why: str) -> str:
    """The ladder, cheap to dear: each rung in turn until one brings the module back; the
    name of the one that did. DutLost, naming what each rung met, when none did (for a
    caller that has no `Device`: `hil fuzz` through a port)."""
    failed = []
    for rung in rungs:
        try:
            rung.run()
            return rung.name
        except RUNG_ERRORS as exc:
            failed.append(f"{rung.name}: {type(exc).__name__}: {exc}")
    raise DutLost(f"{LOST}: {why}; " + ("; ".join(failed) or "no way to restart it"))


def known_state(device: Device, probe_timeout: float = 2.0) -> None:
    """Echo on, no connection, SSL off, auto mode, no queued URCs; checked by MQTTSTATU."""
    at = device.at
    if not at.at(timeout=probe_timeout).ok:
        raise NotKnownState("AT was not answered OK")
    at.ate(True)
    status = at.mqttstatu().value
    if status == MqttStatus.MQTT_CONNECTED:
        at.mdisconnect()
    if status != MqttStatus.NO_CONNECTION:
        at.mipclose()
    for name, done in (("AT+MQTTSSL=0", at.mqttssl(0)), ("AT+MQTTMSGSET=0", at.mqttmsgset(0))):
        if not done.ok:
            raise NotKnownState(f"{name} was refused: {done.response.summary()}")
    after = at.mqttstatu().value
    if after != MqttStatus.NO_CONNECTION:
        raise NotKnownState(f"MQTTSTATU is {after} after disconnect and close, not 0")
    at.channel.drain_urcs()


@dataclass
class Recovery:
    """The recovery state of one session's device; `lost` is sticky once set."""

    device: Device
    cycle_after_failure: bool = True
    probe_timeout: float = 2.0
    lost: str | None = None

    def check(self) -> None:
        if self.lost is not None:
            raise DutLost(self.lost)

    def prepare(self, after_failure: str | None = None) -> list[str]:
        """Before a test: known state, escalating as needed. Returns what was done."""
        self.check()
        done: list[str] = []
        note = self.device.channel.transcript.note
        if after_failure and self.cycle_after_failure:
            why = f"previous test failed ({after_failure})"
            note(f"recovery: {why}: restarting the module")
            done.append(self._revive(why, after_failure=True))
        try:
            known_state(self.device, self.probe_timeout)
            return done
        except AtError as exc:
            why = f"not in a known state: {type(exc).__name__}: {exc}"
            note(f"recovery: {why}")
            answered = isinstance(exc, NotKnownState)
        done.append(self._revive(why, reset_first=answered))
        try:
            known_state(self.device, self.probe_timeout)
        except AtError as exc:
            raise self._lose(f"{why}; after {done[-1]}, still: {exc}") from exc
        return done

    def _revive(self, why: str, *, after_failure: bool = False,
                reset_first: bool = False) -> str:
        """Reopen a vanished port, else power-cycle (or reset); DutLost if nothing works.

        After a failed test with power control, straight to the power cycle. A module that
        answers but is not in the known state (a test left a link up) is reset first: the
        cheaper rung, as a power cycle through a bench's switch costs seconds.
        """
        device = self.device
        if reset_first and device.power is not None and device.channel.lost is None:
            try:
                device.soft_reset()
                known_state(device, self.probe_timeout)
                return "reset by AT+CFUN=1,1"
            except RUNG_ERRORS as exc:
                device.channel.transcript.note(f"recovery: the reset did not help: {exc}")
        if device.channel.lost is not None and not (after_failure and device.power):
            try:
                device.reconnect()
                known_state(device, self.probe_timeout)
                return "reopened the port"
            except (AtError, LookupError) as exc:
                device.channel.transcript.note(f"recovery: reopening did not help: {exc}")
        try:
            if device.power is not None:
                device.power_cycle()
                return "power cycle"
            device.soft_reset()
            return "reset by AT+CFUN=1,1"
        except (AtError, PowerError, LookupError, OSError) as exc:
            how = "power cycle" if device.power is not None else "reset by AT+CFUN=1,1"
            raise self._lose(f"{why}; {how} failed: {type(exc).__name__}: {exc}") from exc

    def _lose(self, why: str) -> DutLost:
        self.lost = f"{LOST}: {why}"
        self.device.channel.transcript.note(self.lost)
        return DutLost(self.lost)
