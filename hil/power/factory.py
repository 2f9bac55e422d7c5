"""The power backend a rig file names, built from its [power] settings."""

from __future__ import annotations

from collections.abc import Mapping

from hil.power.command import CommandPower
from hil.power.modemlines import ModemLinePower
from hil.power.protocol import PowerError, PowerProtocol
from hil.power.simulator import SimulatorPower
from hil.power.uhubctl import UhubctlPower
from hil.rig import PowerConfig
from hil.sim.host import Simulator


def _pulses(s: Mapping) -> dict[str, object]:
    return {
        "drive": s["drive"],
        "pulse_s": s["pulse_ms"] / 1000,
        "off_pulse_s": s["off_pulse_ms"] / 1000,
        "off_wait_s": s["off_wait_ms"] / 1000,
    }


def power_from_config(
    config: PowerConfig,
    *,
    at_port: str | None = None,
    simulator: Simulator | None = None,
    secrets: Mapping[str, str] | None = None,
) -> PowerProtocol | None:
    """None for backend "none": the rig cannot switch power (recovery resets by AT+CFUN)."""
    s = config.settings
    match config.backend:
        case "none":
            return None
        case "simulator":
            if simulator is None:
                raise PowerError("power backend 'simulator' needs a simulated module")
            return SimulatorPower(simulator)
        case "modemlines":
            url = s["port"] or at_port
            if not url:
                raise PowerError("power backend 'modemlines' needs a control port")
            return ModemLinePower.open(url, line=s["line"], active=s["active"], **_pulses(s))
        case "gpio":
            from hil.power.gpio import GpioPower

            return GpioPower(s["chip"], s["line"], active_low=s["active_low"], **_pulses(s))
        case "uhubctl":
            return UhubctlPower(s["location"], s["port"], binary=s["binary"],
                                timeout_s=s["timeout_s"], off_wait_s=s["off_wait_ms"] / 1000)
        case "command":
            return CommandPower(s["on"], s["off"], s["cycle"], timeout_s=s["timeout_s"],
                                off_wait_s=s["off_wait_ms"] / 1000, secrets=secrets)
        case "labgrid":
            from hil.power.labgrid import LabgridPower

            return LabgridPower.from_environment(s["env"], s["target"], s["driver"])
        case "manual":
            from hil.power.manual import ManualPower

            return ManualPower(timeout_s=s["timeout_s"])
    raise PowerError(f"unknown power backend {config.backend!r}")
