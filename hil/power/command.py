"""Power by external commands: a relay board's tool, a PDU over curl or ssh, anything.

Commands run without a shell, each bounded by a timeout; a failure says which command,
its exit status and the tail of what it printed.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from string import Template

from hil.power.protocol import PowerError
from hil.power.registry import register
from hil.power.settings import Bench, PowerSettings, positive, setting

Argv = str | Sequence[str]


@register("command")
@dataclass(frozen=True, kw_only=True)
class CommandSettings(PowerSettings):
    on: Argv = setting(help="command that switches on: an argument list or a string")
    off: Argv = setting(help="command that switches off")
    cycle: Argv | None = setting(None, "command that cycles (default: off, wait, on)")
    timeout_s: float = setting(30, "seconds one command may take", positive)
    off_wait_ms: float = setting(2000, "milliseconds off before switching on in a cycle",
                                 positive)

    def build(self, bench: Bench) -> CommandPower:
        return CommandPower(self.on, self.off, self.cycle, timeout_s=self.timeout_s,
                            off_wait_s=self.off_wait_ms / 1000, secrets=bench.secrets)


def argv_of(command: Argv, secrets: Mapping[str, str] | None = None) -> list[str]:
    """A TOML string is split like a shell would; `${name}` takes a value from [secrets]."""
    parts = shlex.split(command) if isinstance(command, str) else list(command)
    if not parts:
        raise PowerError("empty power command")
    if secrets:
        parts = [Template(p).safe_substitute(secrets) for p in parts]
    return parts


def run_command(argv: Sequence[str], timeout_s: float, *, shown: str | None = None) -> str:
    """Run and return stdout; PowerError on a missing program, non-zero exit or timeout.

    `shown` is how the command appears in messages (without secrets).
    """
    what = shown or shlex.join(argv)
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError as exc:
        raise PowerError(f"power command not found: {argv[0]} (in: {what})") from exc
    except subprocess.TimeoutExpired as exc:
        raise PowerError(f"power command did not finish within {timeout_s:g} s: {what}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise PowerError(f"power command failed with status {done.returncode}: {what}"
                         + (": " + " | ".join(tail) if tail else ""))
    return done.stdout


class CommandPower:
    """PowerProtocol over `on`, `off` and optionally `cycle` commands."""

    def __init__(
        self,
        on: Argv,
        off: Argv,
        cycle: Argv | None = None,
        *,
        timeout_s: float = 30.0,
        off_wait_s: float = 2.0,
        secrets: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._commands = {"on": on, "off": off, "cycle": cycle}
        self._secrets = dict(secrets or {})
        self.timeout_s = timeout_s
        self.off_wait_s = off_wait_s
        self._sleep = sleep

    def _run(self, which: str) -> None:
        command = self._commands[which]
        assert command is not None
        shown = shlex.join(argv_of(command))  # the ${name} placeholders, not their values
        run_command(argv_of(command, self._secrets), self.timeout_s, shown=shown)

    def on(self) -> None:
        self._run("on")

    def off(self) -> None:
        self._run("off")

    def cycle(self) -> None:
        if self._commands["cycle"] is not None:
            self._run("cycle")
            return
        self.off()
        self._sleep(self.off_wait_s)
        self.on()

    def close(self) -> None:
        """Nothing is held between commands."""
