"""`hil fuzz`: grammar.py draws AT command sequences, engine.py runs a case and judges it by
its oracles, runner.py drives hypothesis for a time or a count, differential.py compares two
firmwares, port.py puts a real serial port behind the engine, replay.py runs a finding's
script again (docs/fuzz.md)."""

__all__ = ["differential", "engine", "grammar", "port", "replay", "runner"]
