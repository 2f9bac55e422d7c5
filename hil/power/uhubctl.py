"""Power by switching a USB hub port with uhubctl: for a module powered from USB.

After the port comes back the module re-enumerates, possibly as another ttyUSB: the rig's
[dut.find] says how to find it again (hil.portfind).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hil.power.command import run_command


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
