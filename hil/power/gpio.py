"""Power by a GPIO line (a relay, a load switch, or PWRKEY) through libgpiod's v2 bindings.

`gpiod` is an optional dependency (`pip install 'l506-hil[gpio]'`, or Debian's
python3-libgpiod ≥ 2): imported only when a rig asks for this backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hil.power.lines import Drive, LineBackend, LinePower, PulseSettings
from hil.power.protocol import PowerError
from hil.power.registry import register
from hil.power.settings import Bench, setting

CONSUMER = "l506-hil power"


def _gpiod() -> Any:
    try:
        import gpiod
        from gpiod.line import Direction, Value
    except ImportError as exc:
        raise PowerError(
            "power backend 'gpio' needs libgpiod's Python bindings, version 2: "
            "pip install 'gpiod>=2' into .venv (or install the project's [gpio] extra)"
        ) from exc
    if not hasattr(gpiod, "request_lines"):
        raise PowerError(f"gpiod {getattr(gpiod, '__version__', '?')} is the v1 API; "
                         "power backend 'gpio' needs gpiod>=2")
    return gpiod, Direction, Value


@register("gpio")
@dataclass(frozen=True, kw_only=True)
class GpioSettings(PulseSettings):
    chip: str = setting("/dev/gpiochip0", "GPIO chip device")
    line: int | str = setting(help="line offset (17) or line name (\"L506_PWRKEY\")")
    active_low: bool = setting(False, "the key or switch is active when the line is low")

    def build(self, bench: Bench) -> GpioPower:
        return GpioPower(self.chip, self.line, active_low=self.active_low, **self.pulses())


class GpioPower(LineBackend):
    """PowerProtocol over one requested output line; the request is held until `close()`."""

    def __init__(
        self,
        chip: str,
        line: int | str,
        *,
        active_low: bool = False,
        drive: Drive = "pwrkey",
        pulse_s: float = 0.5,
        off_pulse_s: float = 2.5,
        off_wait_s: float = 2.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        gpiod, direction, value = _gpiod()
        self._value = value
        try:
            settings = gpiod.LineSettings(
                direction=direction.OUTPUT,
                active_low=active_low,
                output_value=value.INACTIVE,  # requesting the line must not press the key
            )
            self._request = gpiod.request_lines(chip, consumer=CONSUMER,
                                                config={line: settings})
        except (OSError, ValueError) as exc:
            raise PowerError(f"cannot request GPIO line {line!r} on {chip}: {exc}") from exc
        self.line = line  # an offset or a name: the v2 request resolves either
        extra = {} if sleep is None else {"sleep": sleep}
        self._lines = LinePower(self._set, drive=drive, pulse_s=pulse_s,
                                off_pulse_s=off_pulse_s, off_wait_s=off_wait_s, **extra)

    def _set(self, active: bool) -> None:
        try:
            self._request.set_value(self.line,
                                    self._value.ACTIVE if active else self._value.INACTIVE)
        except OSError as exc:
            raise PowerError(f"cannot set GPIO line {self.line!r}: {exc}") from exc

    def close(self) -> None:
        self._request.release()
