"""labgrid's PowerProtocol as a power backend, for benches already described to labgrid.

labgrid is an optional extra (`pip install 'l506-hil[labgrid]'`), imported only when a rig
asks for this backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hil.power.protocol import PowerError
from hil.power.registry import register
from hil.power.settings import Bench, PowerSettings, setting


@register("labgrid")
@dataclass(frozen=True, kw_only=True)
class LabgridSettings(PowerSettings):
    env: str = setting(help="labgrid environment (YAML) file")
    target: str = setting("main", "target in that environment")
    driver: str | None = setting(None, "name of the PowerProtocol driver, if the target has "
                                 "several")

    def build(self, bench: Bench) -> LabgridPower:
        return LabgridPower.from_environment(self.env, self.target, self.driver)


def _environment(env_file: str) -> Any:
    try:
        from labgrid import Environment
    except ImportError as exc:
        raise PowerError("power backend 'labgrid' needs labgrid: pip install labgrid into "
                         ".venv (or install the project's [labgrid] extra)") from exc
    try:
        return Environment(config_file=env_file)
    except Exception as exc:  # labgrid raises its own config errors; say which file
        raise PowerError(f"labgrid environment {env_file}: {exc}") from exc


class LabgridPower:
    """Adapts a labgrid PowerProtocol driver (already activated) to on/off/cycle."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    @classmethod
    def from_environment(cls, env: str, target: str = "main",
                         driver: str | None = None) -> LabgridPower:
        environment = _environment(env)
        found = environment.get_target(target)
        if found is None:
            raise PowerError(f"labgrid environment {env} has no target {target!r}")
        try:
            power = found.get_driver("PowerProtocol", name=driver)
            found.activate(power)
        except Exception as exc:  # labgrid's NoDriverFoundError and binding errors
            raise PowerError(f"labgrid target {target!r}: no usable PowerProtocol driver"
                             f"{f' named {driver!r}' if driver else ''}: {exc}") from exc
        return cls(power)

    def on(self) -> None:
        self.driver.on()

    def off(self) -> None:
        self.driver.off()

    def cycle(self) -> None:
        self.driver.cycle()

    def close(self) -> None:
        """The driver stays activated: labgrid's environment owns it."""
