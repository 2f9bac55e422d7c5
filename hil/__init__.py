"""l506-hil: a hardware-in-the-loop harness for the L506's MQTT AT commands.

One package per layer (docs/architecture.md; the import contracts in pyproject.toml keep
them): cli on top; tools, reliability, fuzz, farm; acceptance, dut, trace; report, rig;
l506, power, broker, sim; at, mqtt; masking and version are leaves any layer may use.
"""

__all__ = [
    "acceptance", "at", "broker", "cli", "dut", "farm", "fuzz", "l506", "masking", "mqtt",
    "power", "reliability", "report", "rig", "sim", "tools", "trace", "version",
]
