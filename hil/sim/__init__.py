"""The simulated L506: firmware.py the sans-I/O firmware, state.py its connection states,
profiles.py and bugs.py the firmwares it can be (all pure); host.py puts it behind a pty or a
TCP port with real sockets, virtual.py a whole bench on a virtual clock (docs/simulator.md).
Import the modules themselves: this package re-exports nothing."""

__all__ = ["bugs", "firmware", "host", "profiles", "state", "virtual"]
