"""Virtual power for the simulator: off makes the port vanish, on brings it back."""

from __future__ import annotations

from hil.sim.host import Simulator


class SimulatorPower:
    """Power for a simulated L506: RAM state is lost, its port re-appears at the same path."""

    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator

    def on(self) -> None:
        self._sim.power_on()

    def off(self) -> None:
        self._sim.power_off()

    def cycle(self) -> None:
        self.off()
        self.on()
