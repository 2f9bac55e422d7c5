"""Response-time budgets: how long each command's answer may take on this rig.

A budget is checked against a response's total time: from the moment the command was
written to the last part it waits for (the final code, and the result URC for the MQTT
commands that have one). A response over its budget fails its test with the figure and the
budget, or only warns when the rig says `budget_mode = "warn"`.

Where the defaults come from. The L506 MQTT AT guide states no response times, so none of
these is a documented limit of the module; they are the harness's engineering allowances
for a bench with the broker on the rig's own network and the UART at 115200 baud:

- 300 ms for commands the module answers by itself, without the network (AT, ATE, ATI,
  AT+CGMR, the reads CPIN?/CREG?/CEREG?/CGATT?/CFUN?, MQTTSSL, MQTTMSGSET, MQTTSTATU,
  MQTTCEER, MCONFIG): the figure LTE-module AT manuals commonly give as the maximum response
  time of such commands. Their bytes take under 15 ms on the line at 115200 baud.
- 1000 ms for MQTTMSGGET: printing four stored 1360-byte messages is about 5.6 kB, 490 ms of
  line time at 115200 baud, plus the local allowance.
- 5000 ms for MIPSTART and MCONNECT: a TCP connection (and a TLS handshake with MQTTSSL=1)
  or a CONNECT/CONNACK over the cellular bearer, a few round trips of 100-300 ms each with
  room to spare. The device's own timeouts (hil.l506.api.Timeouts) are 75 s and 60 s; a
  budget is what a healthy bench should see, not what the module may take.
- 2000 ms for MSUB, MUNSUB, MPUB, MDISCONNECT, MIPCLOSE: one round trip, two for a QoS 2
  publication.
- 3000 ms for MPUBEX: its 1360 bytes of data alone take 118 ms at 115200 baud (1.4 s at 9600:
  a slower rig sets its own), plus up to two round trips.
- 10000 ms for AT+CGATT=<n> and 15000 ms for AT+CFUN=<n>: attach/detach and switching the
  radio, which LTE modules document in seconds.
- 1000 ms for any other command (`*`).

Not every response is held to its budget. A budget is what a healthy bench's success path
should take; how long a failure takes is the network's business (a DNS lookup's retries, a
TCP connection to an unreachable host timing out, a TLS handshake refused), so a response
that reports a failure (ERROR, +CME ERROR, a `FAILURE` result) is timed but not checked
(`failure_path`). Nor are the probes while the module boots and registers (`Device.booting`):
a module answers slowly while it starts, and DEV-1 bounds that by the boot and ready times.

A rig overrides any of these in its `[budgets]` table (command name → ms, names as the
timing records print them: `MPUBEX`, `CGATT?`, `ATE`; `"*"` for every other command) and
chooses `budget_mode = "fail" | "warn"`. See docs/timing.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from hil.l506.types import parse_result

if TYPE_CHECKING:
    from hil.at.exchange import Response

BudgetMode = Literal["fail", "warn"]
MODES: tuple[BudgetMode, ...] = ("fail", "warn")
OTHER = "*"

_LOCAL_MS = 300.0

DEFAULT_BUDGETS_MS: Mapping[str, float] = MappingProxyType({
    # answered by the module alone
    "AT": _LOCAL_MS,
    "ATE": _LOCAL_MS,
    "ATI": _LOCAL_MS,
    "CGMR": _LOCAL_MS,
    "CPIN?": _LOCAL_MS,
    "CREG?": _LOCAL_MS,
    "CEREG?": _LOCAL_MS,
    "CGATT?": _LOCAL_MS,
    "CFUN?": _LOCAL_MS,
    "MQTTSSL": _LOCAL_MS,
    "MQTTMSGSET": _LOCAL_MS,
    "MQTTSTATU": _LOCAL_MS,
    "MQTTCEER": _LOCAL_MS,
    "MCONFIG": _LOCAL_MS,
    "MQTTMSGGET": 1000.0,
    # over the network
    "MIPSTART": 5000.0,
    "MCONNECT": 5000.0,
    "MSUB": 2000.0,
    "MUNSUB": 2000.0,
    "MPUB": 2000.0,
    "MPUBEX": 3000.0,
    "MDISCONNECT": 2000.0,
    "MIPCLOSE": 2000.0,
    # the radio
    "CGATT": 10000.0,
    "CFUN": 15000.0,
    OTHER: 1000.0,
})


def failure_path(response: Response) -> bool:
    """The response reports a failure: a final ERROR/+CME ERROR or a `FAILURE` result."""
    if response.error:
        return True
    if response.result is None:
        return False
    try:
        return not parse_result(response.result).success
    except ValueError:  # a result line of a shape the parser does not know: not a failure
        return False


class BudgetError(ValueError):
    """A budget table or mode that cannot be used."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One response over its budget."""

    command: str
    text: str
    total_ms: float
    budget_ms: float
    test: str = ""

    def message(self) -> str:
        return (f"{self.text!r} ({self.command}) answered in {self.total_ms:.1f} ms, "
                f"over its budget of {self.budget_ms:g} ms")


def _normal(name: str) -> str:
    name = name.strip().upper()
    return OTHER if name in (OTHER, "DEFAULT") else name


def _checked(table: Mapping[str, Any], where: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, value in table.items():
        if value is None:
            out[_normal(name)] = None  # no budget for this command
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise BudgetError(f"{where}: budget of {name} = {value!r} must be a positive "
                              "number of milliseconds")
        out[_normal(name)] = float(value)
    return out


def _budget_mode(text: str) -> BudgetMode:
    """`text` (a rig file's or the command line's) as a budget mode."""
    for mode in MODES:
        if text == mode:
            return mode
    raise BudgetError(f"budget mode {text!r} must be one of {', '.join(MODES)}")


class Budgets:
    """Per-command budgets in ms and what exceeding one does (`mode`: fail or warn).

    Built from the defaults with overrides on top: `Budgets.from_mapping({"MPUB": 500})`,
    `Budgets.from_mapping(rig.budgets, rig.budget_mode, source=...)` for a rig file, and
    `overridden()` for the command line or a test's marker. A budget of None switches the
    check off for that command (or, as `*`, for every command without its own).
    """

    def __init__(
        self,
        limits_ms: Mapping[str, float | None] | None = None,
        mode: str = "fail",
        *,
        source: str = "defaults",
    ) -> None:
        self.mode = _budget_mode(mode)
        table: dict[str, float | None] = (
            dict(DEFAULT_BUDGETS_MS) if limits_ms is None else _checked(limits_ms, source))
        self._limits = table
        self.source = source

    @classmethod
    def from_mapping(
        cls,
        table: Mapping[str, Any] | None,
        mode: str | None = None,
        *,
        source: str = "[budgets]",
    ) -> Budgets:
        """The defaults with `table` (command → ms) on top; `mode` "fail" (default) or
        "warn"."""
        return cls().overridden(table or {}, mode, source=source)

    def overridden(
        self,
        table: Mapping[str, Any],
        mode: str | None = None,
        *,
        source: str | None = None,
    ) -> Budgets:
        """A copy with `table` applied on top and, if given, another mode."""
        merged = dict(self._limits)
        merged.update(_checked(table, source or self.source))
        return Budgets(merged, self.mode if mode is None else mode, source=source or self.source)

    def budget_for(self, command: str) -> float | None:
        """The budget in ms of a command name (as `hil.report.timing.command_key` gives
        it); the `*` budget for names without their own; None: not checked."""
        name = _normal(command)
        if name in self._limits:
            return self._limits[name]
        return self._limits.get(OTHER)

    def check(self, command: str, total_ms: float | None, *, text: str = "",
              test: str = "") -> Violation | None:
        """The violation, if a response of `command` that took `total_ms` is over budget."""
        budget = self.budget_for(command)
        if budget is None or total_ms is None or total_ms <= budget:
            return None
        return Violation(command, text or command, total_ms, budget, test)

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "source": self.source,
                "budgets_ms": {k: v for k, v in sorted(self._limits.items())}}

    def __repr__(self) -> str:
        return f"Budgets(mode={self.mode!r}, source={self.source!r}, {len(self._limits)} entries)"


def parse_override(text: str) -> tuple[str, float | None]:
    """`NAME=MS` (or `NAME=off`) from the command line → (name, ms or None)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise BudgetError(f"--budget wants NAME=MS (e.g. MPUBEX=500), got {text!r}")
    if value.strip().lower() in ("off", "none"):
        return name.strip(), None
    try:
        ms = float(value)
    except ValueError:
        raise BudgetError(f"--budget {text!r}: {value!r} is not a number of ms") from None
    if ms <= 0:
        raise BudgetError(f"--budget {text!r}: a budget must be positive")
    return name.strip(), ms
