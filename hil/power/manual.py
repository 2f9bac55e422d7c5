"""Power by asking the operator: for a bench with a plain switch and someone beside it.

The prompt goes to the controlling terminal (/dev/tty), so it works under pytest's output
capture; without a terminal (cron, CI) it refuses at once instead of waiting forever.
"""

from __future__ import annotations

import os
import select
from collections.abc import Mapping
from dataclasses import dataclass

from hil.power.protocol import PowerError
from hil.power.registry import register
from hil.power.settings import Bench, PowerSettings, positive, setting


@register("manual")
@dataclass(frozen=True, kw_only=True)
class ManualSettings(PowerSettings):
    timeout_s: float = setting(300, "seconds to wait for the operator", positive)

    def build(self, bench: Bench) -> ManualPower:
        return ManualPower(timeout_s=self.timeout_s)


class ManualPower:
    """PowerProtocol that tells the operator what to do and waits for Enter (bounded)."""

    def __init__(self, *, timeout_s: float = 300.0, tty: str = "/dev/tty",
                 environ: Mapping[str, str] | None = None) -> None:
        self.timeout_s = timeout_s
        self.tty = tty
        self._environ = os.environ if environ is None else environ

    def _ask(self, what: str) -> None:
        if self._environ.get("CI"):
            raise PowerError("power backend 'manual' needs an operator, and this is CI: "
                             "use a rig with a power switch the harness can drive")
        try:
            fd = os.open(self.tty, os.O_RDWR | os.O_NOCTTY)
        except OSError as exc:
            raise PowerError(f"power backend 'manual' needs an operator at a terminal, and "
                             f"there is none ({self.tty}: {exc.strerror}): use another "
                             "backend for unattended runs") from exc
        try:
            if not os.isatty(fd):
                raise PowerError(f"power backend 'manual': {self.tty} is not a terminal")
            os.write(fd, f"\n*** L506 power: {what}, then press Enter "
                         f"(within {self.timeout_s:g} s) ***\n".encode())
            ready, _, _ = select.select([fd], [], [], self.timeout_s)
            if not ready:
                raise PowerError(f"the operator did not confirm '{what}' within "
                                 f"{self.timeout_s:g} s")
            os.read(fd, 1024)
        finally:
            os.close(fd)

    def on(self) -> None:
        self._ask("switch the module ON")

    def off(self) -> None:
        self._ask("switch the module OFF")

    def cycle(self) -> None:
        self._ask("switch the module OFF, wait two seconds, switch it ON")

    def close(self) -> None:
        """Nothing is held: the terminal is opened for each question."""
