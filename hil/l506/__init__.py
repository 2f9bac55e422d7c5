"""The L506's MQTT AT command set: types.py its values and line shapes (user guide V3.2),
commands.py how each command is answered, api.py the class L506 with one method per AT
command. Import the modules themselves: this package re-exports nothing."""

__all__ = ["api", "commands", "types"]
