"""The module under test as the suites see it: its AT API and the capabilities it declares.

Suites never learn whether they talk to hardware or to the simulator. What only one of them
can do (inject a fault, shorten device timeouts) is a capability; a test that needs one asks
for it through a fixture and is skipped, with the reason, where it is missing.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from hil.at.channel import AtError, Channel, UrcTimeout
from hil.l506.dut import L506
from hil.power.protocol import PowerProtocol

_READY_URC = re.compile(rb"Call Ready|RDY|\+CREG|\+CEREG|\+CGREG")


class FaultInjection(Protocol):
    """Provoke a failure on purpose (a device whose firmware can be told to fail)."""

    def inject(self, name: str, active: bool = True) -> None: ...


@dataclass
class Device:
    at: L506
    channel: Channel
    kind: Literal["simulator", "hardware"]
    #: Device timeouts (MIPSTART-7's minute, boot) are multiplied by this: 1.0 on hardware.
    time_scale: float = 1.0
    #: The host name or address the module dials to reach the test broker.
    broker_host: str = "127.0.0.1"
    faults: FaultInjection | None = None
    power: PowerProtocol | None = None
    identity: dict[str, str] = field(default_factory=dict)

    def wait_ready(self, timeout: float) -> None:
        """DEV-1: the module answers AT, its SIM is ready, it is registered and attached."""
        at = self.at
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AtError(f"module not ready within {timeout:.0f} s (AT, CPIN, CREG, CGATT)")
            try:
                if (
                    at.at(timeout=min(1.0, left)).ok
                    and at.cpin(timeout=min(2.0, left)).value == "READY"
                    and at.creg(timeout=min(2.0, left)).value in (1, 5)
                    and at.cgatt(timeout=min(5.0, left)).value
                ):
                    return
            except AtError:
                continue  # silent while booting: the command's own timeout paced this attempt
            # answering but not registered yet: until its next URC, briefly
            with contextlib.suppress(UrcTimeout):
                at.channel.wait_urc(_READY_URC, timeout=min(0.5, max(left, 0.01)))

    def power_cycle(self, boot_timeout: float) -> None:
        """Cut power, restore it, reopen the port (it vanished) and wait until ready."""
        if self.power is None:
            raise AtError("this rig has no power control")
        self.power.cycle()
        self.channel.reopen(timeout=boot_timeout)
        self.wait_ready(boot_timeout)

    def device_seconds(self, seconds: float) -> float:
        """A documented device time, as it passes on this DUT."""
        return seconds * self.time_scale
