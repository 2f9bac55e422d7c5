"""Firmware profiles of the simulated L506: identity, open-point behaviours, latency model.

A profile is what changes between firmware versions. The decisions of docs/clauses.md
(the Q clauses) are fields here, so a second profile can differ on exactly those points and
a firmware acceptance run can show that difference.

The latency model: `Profile.latency` maps a command name to the seconds the firmware
"thinks" before it answers (the firmware delays its answer by that much; the host then paces
the bytes at the baud rate). Keys are the MQTT command names (`MPUBEX`, `MQTTSTATU`...) and
`AT`, which covers the basic and bench commands and every name not in the map. The defaults
are synthetic. `with_latency()` and `parse_latency()` change them (`--sim-latency`,
`hil sim --latency`); `latency_note` says which model is in force. See docs/timing.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

#: Synthetic per-command firmware latencies in seconds: made up to look plausible, NOT measured
#: on a module. They only give the timing layer something non-zero to see.
SYNTHETIC_LATENCY_V32: MappingProxyType[str, float] = MappingProxyType(
    {
        "AT": 0.002,
        "MCONFIG": 0.004,
        "MIPSTART": 0.010,
        "MCONNECT": 0.008,
        "MSUB": 0.006,
        "MUNSUB": 0.006,
        "MPUB": 0.006,
        "MPUBEX": 0.006,
        "MDISCONNECT": 0.006,
        "MIPCLOSE": 0.005,
        "MQTTSTATU": 0.002,
        "MQTTCEER": 0.002,
        "MQTTMSGGET": 0.003,
        "MQTTMSGSET": 0.002,
        "MQTTSSL": 0.002,
    }
)


SYNTHETIC_NOTE = "synthetic: made up to look plausible, not measured on a module"

#: The names the firmware looks latency up by (`AT` also stands for every other command).
KNOWN_COMMANDS: frozenset[str] = frozenset(SYNTHETIC_LATENCY_V32)

_ITEM = re.compile(
    r"(?:x|scale=)(?P<scale>[0-9.]+)|(?P<name>\*|[A-Za-z+?]+)=(?P<ms>[0-9.]+)(?:ms)?"
)


def parse_latency(spec: str) -> tuple[float, dict[str, float]]:
    """Read a latency spec: comma-separated `xF` / `scale=F` (multiply the profile's model),
    `NAME=MS` (that command answers after MS milliseconds) and `*=MS` (every command).

    Returns (scale, {name: seconds}). `off` is handled by `Profile.with_latency_spec`.
    >>> parse_latency("x0.5,AT=5,MPUBEX=0")
    (0.5, {'AT': 0.005, 'MPUBEX': 0.0})
    """
    scale = 1.0
    overrides: dict[str, float] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        m = _ITEM.fullmatch(item)
        if m is None:
            raise ValueError(
                f"bad latency item {item!r}: use xF, scale=F, NAME=MS or *=MS (e.g. 'x0.5,AT=5')"
            )
        try:
            if m["scale"] is not None:
                scale *= float(m["scale"])
            else:
                name = m["name"].upper().lstrip("+")
                overrides[name] = float(m["ms"]) / 1000.0
        except ValueError:
            raise ValueError(f"bad number in latency item {item!r}") from None
    return scale, overrides


def _describe(scale: float, overrides: Mapping[str, float]) -> str:
    parts = [] if scale == 1.0 else [f"x{scale:g}"]
    parts += [f"{name}={seconds * 1000:g}ms" for name, seconds in overrides.items()]
    return "configured: " + (", ".join(parts) or "as profile")


@dataclass(frozen=True)
class Profile:
    """One firmware version's observable behaviour."""

    name: str
    revision: str
    model: str = "L506"
    manufacturer: str = "LYNQ"
    imei: str = "866123045678901"
    #: GEN-2: a space after the colon of result URCs.
    urc_space: bool = True
    #: MSUB-3: `<len>` of a cut message is the original length ("original") or the cut one.
    msub_len: Literal["original", "cut"] = "original"
    #: MSGGET-2: final code after `+MQTTMSGGET:INVALID`.
    msgget_invalid_final: Literal["OK", "ERROR"] = "OK"
    #: MDISCONNECT-1: MQTTSTATU after MDISCONNECT, until MIPCLOSE.
    status_after_mdisconnect: int = 2
    #: MPUBEX-1: the data prompt.
    prompt: bytes = b"> "
    #: MIPSTART-7: seconds of device time before an unused TCP connection is dropped.
    idle_drop_s: float = 60.0
    #: Seconds of device time from power-on to RDY, and from RDY to Call Ready.
    boot_s: float = 3.0
    call_ready_s: float = 2.0
    #: Seconds of device time the module waits for MPUBEX data after the prompt.
    data_timeout_s: float = 10.0
    #: Seconds of device time MCONNECT waits for CONNACK.
    connack_timeout_s: float = 20.0
    latency: MappingProxyType[str, float] = field(default_factory=lambda: SYNTHETIC_LATENCY_V32)
    #: Where `latency` comes from, for reports: synthetic unless someone configured it.
    latency_note: str = SYNTHETIC_NOTE

    def latency_of(self, command: str) -> float:
        return self.latency.get(command, self.latency.get("AT", 0.0))

    def without_latency(self) -> Profile:
        return replace(self, latency=MappingProxyType({}), latency_note="none (zero latency)")

    def with_latency(
        self,
        overrides: Mapping[str, float] | None = None,
        *,
        scale: float = 1.0,
        note: str | None = None,
    ) -> Profile:
        """This profile with every latency multiplied by `scale`, then `overrides` (seconds
        per command name; `*` sets every command) applied on top."""
        if scale < 0:
            raise ValueError(f"latency scale must not be negative, got {scale}")
        table = {name: seconds * scale for name, seconds in self.latency.items()}
        for name, seconds in (overrides or {}).items():
            if seconds < 0:
                raise ValueError(f"latency of {name} must not be negative, got {seconds}")
            if name == "*":
                table = dict.fromkeys({*table, *KNOWN_COMMANDS}, seconds)
            else:
                table[name.upper()] = seconds
        shown = note or _describe(scale, overrides or {})
        return replace(self, latency=MappingProxyType(table), latency_note=shown)

    def with_latency_spec(self, spec: str) -> Profile:
        """`with_latency` from the text of `--sim-latency` / `hil sim --latency`."""
        if spec.strip().lower() in ("off", "none", "0"):
            return self.without_latency()
        scale, overrides = parse_latency(spec)
        if "*" in overrides:  # every command set: nothing of the profile's model is left
            note = f"configured: {spec.strip()}"
        else:
            base = "synthetic" if self.latency_note == SYNTHETIC_NOTE else self.latency_note
            note = f"{base}, {spec.strip()}"
        return self.with_latency(overrides, scale=scale, note=note)


V32 = Profile(name="v3.2", revision="L506_V3.2_MQTT_B20171031")

#: A later firmware that differs on open points and in latency, for acceptance demos.
V33 = Profile(
    name="v3.3",
    revision="L506_V3.3_MQTT_B20180315",
    urc_space=False,
    msub_len="cut",
    latency=MappingProxyType({k: v * 1.8 for k, v in SYNTHETIC_LATENCY_V32.items()}),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (V32, V33)}

#: The profile that follows every decision of clauses.md: only there does a deviation on an
#: open point fail its test; other profiles are characterized like hardware.
REFERENCE = V32


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown firmware profile {name!r}; known profiles: {known}") from None
