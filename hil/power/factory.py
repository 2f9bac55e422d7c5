"""The power backend a rig file names, built from its [power] settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hil.power.protocol import PowerProtocol, SimulatedSupply
from hil.power.registry import settings_from_table
from hil.power.settings import Bench, PowerSettings


@dataclass(frozen=True)
class PowerConfig:
    """A rig's [power]: the backend's name and its checked settings (None: its defaults)."""

    backend: str = "none"
    settings: PowerSettings | None = None


def power_from_config(
    config: PowerConfig,
    *,
    at_port: str | None = None,
    simulator: SimulatedSupply | None = None,
    secrets: Mapping[str, str] | None = None,
    place_switch: Callable[[bool], None] | None = None,
) -> PowerProtocol | None:
    """None for backend "none": the rig cannot switch power (recovery resets by AT+CFUN)."""
    settings = config.settings or settings_from_table(config.backend, {})
    return settings.build(Bench(at_port=at_port, simulator=simulator, secrets=secrets or {},
                                place_switch=place_switch))
