"""Rig files: one TOML file per bench, read and checked before anything is opened.

The rig is settings only: it names the module's port, its power switch, the broker, the
budgets and the acceptance thresholds, and imports no serial stack, so offline tools
(`hil compare`) can read one. file.py is the loader, thresholds.py the [acceptance] table.
"""

from hil.rig.file import (
    HARDWARE_LINK_WAIT_SCALE,
    RIG_ENV,
    BrokerConfig,
    DutConfig,
    LabgridConfig,
    PortFind,
    RecoveryConfig,
    Rig,
    RigError,
    load_rig,
    rig_from_dict,
    rig_warnings,
    tap_problem,
    with_port,
)
from hil.rig.thresholds import THRESHOLD_HELP, Thresholds

__all__ = [
    "HARDWARE_LINK_WAIT_SCALE",
    "RIG_ENV",
    "THRESHOLD_HELP",
    "BrokerConfig",
    "DutConfig",
    "LabgridConfig",
    "PortFind",
    "RecoveryConfig",
    "Rig",
    "RigError",
    "Thresholds",
    "load_rig",
    "rig_from_dict",
    "rig_warnings",
    "tap_problem",
    "with_port",
]
