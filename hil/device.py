"""The module under test as the suites see it: its AT API and the capabilities it declares.

Suites never learn whether they talk to hardware or to the simulator. What only one of them
can do (inject a fault, shorten device timeouts) is a capability; a test that needs one asks
for it through a fixture and is skipped, with the reason, where it is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from hil.at.channel import Channel
from hil.l506.dut import L506


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
    identity: dict[str, str] = field(default_factory=dict)

    def device_seconds(self, seconds: float) -> float:
        """A documented device time, as it passes on this DUT."""
        return seconds * self.time_scale
