"""Power through one digital line: a PWRKEY pressed by pulses, or a supply switched by level.

Shared by the modem-control-line and GPIO backends, which only know how to set their line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from hil.power.settings import PowerSettings, positive, setting

Drive = Literal["pwrkey", "supply"]


@dataclass(frozen=True, kw_only=True)
class PulseSettings(PowerSettings):
    """How a line drives the module: the settings modemlines and gpio share."""

    drive: Drive = setting("pwrkey", "pwrkey: pulses press the power key; supply: the level "
                           "switches the supply")
    pulse_ms: float = setting(500, "milliseconds the key is held to switch on", positive)
    off_pulse_ms: float = setting(2500, "milliseconds the key is held to switch off", positive)
    off_wait_ms: float = setting(2000, "milliseconds off before switching on again in a cycle",
                                 positive)

    def pulses(self) -> dict[str, Any]:
        """As `LinePower` takes them."""
        return {
            "drive": self.drive,
            "pulse_s": self.pulse_ms / 1000,
            "off_pulse_s": self.off_pulse_ms / 1000,
            "off_wait_s": self.off_wait_ms / 1000,
        }


class LinePower:
    """on/off/cycle over `set_line(active)`; `sleep` is injectable so tests need not wait.

    pwrkey: on presses the key for `pulse_s`, off for `off_pulse_s` (a module toggles on
    each long press, so off then on is a cycle only if it was on). supply: the line level is
    the supply itself.
    """

    def __init__(
        self,
        set_line: Callable[[bool], None],
        *,
        drive: Drive = "pwrkey",
        pulse_s: float = 0.5,
        off_pulse_s: float = 2.5,
        off_wait_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._set = set_line
        self.drive = drive
        self.pulse_s = pulse_s
        self.off_pulse_s = off_pulse_s
        self.off_wait_s = off_wait_s
        self._sleep = sleep

    def _press(self, seconds: float) -> None:
        self._set(True)
        try:
            self._sleep(seconds)
        finally:
            self._set(False)  # never leave the key held, whatever interrupted the pulse

    def on(self) -> None:
        if self.drive == "supply":
            self._set(True)
        else:
            self._press(self.pulse_s)

    def off(self) -> None:
        if self.drive == "supply":
            self._set(False)
        else:
            self._press(self.off_pulse_s)

    def cycle(self) -> None:
        self.off()
        self._sleep(self.off_wait_s)
        self.on()


class LineBackend:
    """A power backend that is one digital line: on/off/cycle are its `LinePower`'s."""

    _lines: LinePower

    def on(self) -> None:
        self._lines.on()

    def off(self) -> None:
        self._lines.off()

    def cycle(self) -> None:
        self._lines.cycle()
