"""The power protocol: `on`, `off`, `cycle`, `close`. The harness never knows what drives it.

And the two methods the simulator's virtual power needs of a simulated module.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class PowerError(RuntimeError):
    """The power switch itself failed (not the module): says what to check."""


@runtime_checkable
class PowerProtocol(Protocol):
    """Switches the module's supply (or its PWRKEY). Waiting for boot is the caller's job."""

    def on(self) -> None: ...

    def off(self) -> None: ...

    def cycle(self) -> None: ...

    def close(self) -> None:
        """Let go of what the backend holds (a port, a GPIO request); the switch stays as is."""


class SimulatedSupply(Protocol):
    """A simulated module's supply: `power_on` boots it (and may return its port)."""

    def power_on(self) -> object: ...

    def power_off(self) -> None: ...
