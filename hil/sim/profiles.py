"""Firmware profiles of the simulated L506: identity, open-point behaviours, latency model.

A profile is what changes between firmware versions. The decisions of docs/clauses.md
(the Q clauses) are fields here, so a second profile can differ on exactly those points and
a firmware acceptance run can show that difference.
"""

from __future__ import annotations

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

    def latency_of(self, command: str) -> float:
        return self.latency.get(command, self.latency.get("AT", 0.0))

    def without_latency(self) -> Profile:
        return replace(self, latency=MappingProxyType({}))


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


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown firmware profile {name!r}; known profiles: {known}") from None
