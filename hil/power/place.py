"""Power through the labgrid place the run holds: the power resource its exporter shares (a
PDU outlet, a USB hub port, a network relay), switched as `labgrid-client -p NAME power`.

The place is known only once a run has locked it (hil.fixtures.farm), so the bench hands
the backend a switch bound to that place; a rig without a place has none, and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hil.power.protocol import PowerError
from hil.power.registry import register
from hil.power.settings import Bench, PowerSettings, positive, setting


@register("place")
@dataclass(frozen=True, kw_only=True)
class PlaceSettings(PowerSettings):
    off_wait_ms: float = setting(1000, "milliseconds off before switching on in a cycle",
                                 positive)

    def build(self, bench: Bench) -> PlacePower:
        if bench.place_switch is None:
            raise PowerError('power backend "place" switches the labgrid place the run '
                             "holds, and this rig names none: set [dut] place (or --place), "
                             "or choose another [power] backend")
        return PlacePower(bench.place_switch, off_wait_s=self.off_wait_ms / 1000)


class PlacePower:
    """PowerProtocol over the held place's switch (`True`: on)."""

    def __init__(self, switch: Callable[[bool], None], *, off_wait_s: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._switch = switch
        self.off_wait_s = off_wait_s
        self._sleep = sleep

    def on(self) -> None:
        self._switch(True)

    def off(self) -> None:
        self._switch(False)

    def cycle(self) -> None:
        self.off()
        self._sleep(self.off_wait_s)
        self.on()

    def close(self) -> None:
        """Nothing is held: the place is the run's, released with it."""
