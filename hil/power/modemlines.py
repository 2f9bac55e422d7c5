"""Power by a serial port's DTR or RTS line wired to the module's PWRKEY (or a supply switch).

The control port may be the AT port itself or a second USB-serial adapter. It is held open
for the whole run: closing a tty may drop DTR/RTS (HUPCL) and press the key by accident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hil.power.lines import Drive, LineBackend, LinePower, PulseSettings
from hil.power.protocol import PowerError
from hil.power.registry import register
from hil.power.settings import Bench, setting

if TYPE_CHECKING:
    import serial

Line = Literal["dtr", "rts"]
Active = Literal["asserted", "deasserted"]


@register("modemlines")
@dataclass(frozen=True, kw_only=True)
class ModemLineSettings(PulseSettings):
    port: str | None = setting(None, "pyserial URL of the control port (default: the AT port)")
    line: Line = setting("dtr", "the modem-control line wired to the key or switch")
    active: Active = setting("asserted", "line state that presses the key or switches on "
                             "(asserted: pyserial's dtr/rts = True)")

    def build(self, bench: Bench) -> ModemLinePower:
        url = self.port or bench.at_port
        if not url:
            raise PowerError("power backend 'modemlines' needs a control port")
        return ModemLinePower.open(url, line=self.line, active=self.active, **self.pulses())


class ModemLinePower(LineBackend):
    """PowerProtocol over pyserial's `dtr`/`rts` of an open port."""

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        line: Line = "dtr",
        active: Active = "asserted",
        drive: Drive = "pwrkey",
        pulse_s: float = 0.5,
        off_pulse_s: float = 2.5,
        off_wait_s: float = 2.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if line not in ("dtr", "rts"):
            raise PowerError(f"modem-control line must be 'dtr' or 'rts', not {line!r}")
        self.port = port
        self.line = line
        self._asserted_is_active = active == "asserted"
        extra = {} if sleep is None else {"sleep": sleep}
        self._lines = LinePower(self._set, drive=drive, pulse_s=pulse_s,
                                off_pulse_s=off_pulse_s, off_wait_s=off_wait_s, **extra)

    @classmethod
    def open(cls, url: str, **options: Any) -> ModemLinePower:
        """Open the control port with the line already released (pwrkey) before it opens."""
        active = options.get("active", "asserted") == "asserted"
        line = options.get("line", "dtr")
        import serial  # here, not at the top: reading a rig file loads every backend's module

        try:
            port = serial.serial_for_url(url, do_not_open=True)
            setattr(port, line, not active)  # applied by open(): no stray press
            port.open()
        except (serial.SerialException, OSError) as exc:
            raise PowerError(f"cannot open the power control port {url}: {exc}") from exc
        return cls(port, **options)

    def _set(self, active: bool) -> None:
        level = active if self._asserted_is_active else not active
        try:
            setattr(self.port, self.line, level)
        except OSError as exc:  # serial.SerialException is an OSError
            raise PowerError(f"cannot set {self.line.upper()} on {self.port.port}: {exc}") from exc

    def close(self) -> None:
        self.port.close()
