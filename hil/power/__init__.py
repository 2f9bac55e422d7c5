"""Power for the module under test, behind one small protocol whatever switches it."""

from hil.power.protocol import PowerError, PowerProtocol
from hil.power.simulator import SimulatorPower

__all__ = ["PowerError", "PowerProtocol", "SimulatorPower"]
