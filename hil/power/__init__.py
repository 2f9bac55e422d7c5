"""Power for the module under test, behind one small protocol whatever switches it.

Backends: the simulator's virtual power, a serial port's DTR/RTS line, a GPIO line
(libgpiod), a USB hub port (uhubctl), external commands, labgrid (an environment file, or
the place the run holds), and the operator. Each is
one module that registers its settings class (hil/power/registry.py); `power_from_config`
builds the one a rig file names.
"""

from hil.power.command import CommandPower
from hil.power.factory import PowerConfig, power_from_config
from hil.power.modemlines import ModemLinePower
from hil.power.protocol import PowerError, PowerProtocol, SimulatedSupply
from hil.power.registry import backends, register
from hil.power.settings import Bench, PowerSettings, SettingsError, setting
from hil.power.simulator import SimulatorPower
from hil.power.uhubctl import UhubctlPower

__all__ = [
    "Bench",
    "CommandPower",
    "ModemLinePower",
    "PowerConfig",
    "PowerError",
    "PowerProtocol",
    "PowerSettings",
    "SettingsError",
    "SimulatedSupply",
    "SimulatorPower",
    "UhubctlPower",
    "backends",
    "power_from_config",
    "register",
    "setting",
]
