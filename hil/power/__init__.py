"""Power for the module under test, behind one small protocol whatever switches it.

Backends: the simulator's virtual power, a serial port's DTR/RTS line, a GPIO line
(libgpiod), a USB hub port (uhubctl), external commands, labgrid, and the operator.
`power_from_config` builds the one a rig file names.
"""

from hil.power.command import CommandPower
from hil.power.factory import power_from_config
from hil.power.modemlines import ModemLinePower
from hil.power.protocol import PowerError, PowerProtocol
from hil.power.simulator import SimulatorPower
from hil.power.uhubctl import UhubctlPower

__all__ = [
    "CommandPower",
    "ModemLinePower",
    "PowerError",
    "PowerProtocol",
    "SimulatorPower",
    "UhubctlPower",
    "power_from_config",
]
