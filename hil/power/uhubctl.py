"""Power by switching a USB hub port with uhubctl: for a module powered from USB.

After the port comes back the module re-enumerates, possibly as another ttyUSB: the rig's
[dut.find] says how to find it again (hil.dut.portfind).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hil.power.command import run_command
from hil.power.registry import register
from hil.power.settings import Bench, PowerSettings, positive, setting


@register("uhubctl")
@dataclass(frozen=True, kw_only=True)
class UhubctlSettings(PowerSettings):
    location: str = setting(help="hub location as `uhubctl` lists it, e.g. \"1-1\"")
    port: int = setting(help="port number on that hub", check=positive)
    binary: str = setting("uhubctl", "the uhubctl program")
    timeout_s: float = setting(15, "seconds one uhubctl call may take", positive)
    off_wait_ms: float = setting(2000, "milliseconds off before switching on in a cycle",
                                 positive)

    def build(self, bench: Bench) -> UhubctlPower:
        return UhubctlPower(self.location, self.port, binary=self.binary,
                            timeout_s=self.timeout_s, off_wait_s=self.off_wait_ms / 1000)


class UhubctlPower:
    """PowerProtocol over `uhubctl -l <location> -p <port> -a on|off`."""

    def __init__(
        self,
        location: str,
        port: int,
        *,
        binary: str = "uhubctl",
        timeout_s: float = 15.0,
        off_wait_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.location = location
        self.port = port
        self.binary = binary
        self.timeout_s = timeout_s
        self.off_wait_s = off_wait_s
        self._sleep = sleep

    def _action(self, action: str) -> None:
        run_command([self.binary, "-l", self.location, "-p", str(self.port), "-a", action],
                    self.timeout_s)

    def on(self) -> None:
        self._action("on")

    def off(self) -> None:
        self._action("off")

    def cycle(self) -> None:
        self.off()
        self._sleep(self.off_wait_s)
        self.on()

    def close(self) -> None:
        """Nothing is held between calls."""
