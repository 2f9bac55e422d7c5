"""Virtual power for the simulator: off makes the port vanish, on brings it back.

It needs only a `SimulatedSupply` (`power_on()` and `power_off()`): the simulator's host has
both, and this package does not depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hil.power.protocol import PowerError, SimulatedSupply
from hil.power.registry import register
from hil.power.settings import Bench, PowerSettings


@register("simulator")
@dataclass(frozen=True, kw_only=True)
class SimulatorSettings(PowerSettings):
    """Nothing to set: the simulated module is the bench's."""

    def build(self, bench: Bench) -> SimulatorPower:
        if bench.simulator is None:
            raise PowerError("power backend 'simulator' needs a simulated module")
        return SimulatorPower(bench.simulator)


class SimulatorPower:
    """Power for a simulated L506: RAM state is lost, its port re-appears at the same path."""

    def __init__(self, simulator: SimulatedSupply) -> None:
        self._sim = simulator

    def on(self) -> None:
        self._sim.power_on()

    def off(self) -> None:
        self._sim.power_off()

    def cycle(self) -> None:
        self.off()
        self.on()

    def close(self) -> None:
        """The simulator is closed by whoever made it."""
