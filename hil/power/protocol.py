"""The power protocol: `on`, `off`, `cycle`, `close`. The harness never knows what drives it."""

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
