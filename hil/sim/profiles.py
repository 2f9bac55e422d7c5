"""Firmware profiles of the simulated L506: identity, open-point behaviours, latency model.

A profile is what changes between firmware versions. The decisions of docs/clauses.md
(the Q clauses) are fields here, so a second profile can differ on exactly those points and
a firmware acceptance run can show that difference.

The latency model: `Profile.latency` maps a command name to the seconds the firmware
"thinks" before it answers (the firmware delays its answer by that much; the host then paces
the bytes at the baud rate). Keys are the MQTT command names (`MPUBEX`, `MQTTSTATU`...) and
`AT`, which covers the basic and bench commands and every name not in the map. The defaults
are synthetic. A profile may also model the link to the broker (`link_rtt_s`): what comes
from the network reaches the firmware a round trip late, so the commands that wait for the
broker take that much longer, as over a cellular network. `with_latency()` and
`parse_latency()` change them (`--sim-latency`, `hil sim --latency`); `latency_note` says
which model is in force. See docs/timing.md.
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

#: Commands whose result URC has a result type in the guide's format, those whose has none,
#: and the switches answered by a final result code only (GEN-6).
TYPED_RESULTS = frozenset({"MCONFIG", "MIPSTART", "MCONNECT"})
UNTYPED_RESULTS = frozenset({"MSUB", "MUNSUB", "MPUB", "MPUBEX", "MDISCONNECT", "MIPCLOSE"})
SWITCHES = frozenset({"MQTTSSL", "MQTTMSGSET", "MQTTMSGGET"})

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
    #: GEN-2: a space after the colon of result URCs (`+MCONFIG: SUCCESS,0`).
    urc_space: bool = True
    #: GEN-2 / section 2.9: MIPCLOSE's result printed as `+ MIPCLOSE: SUCCESS`.
    mipclose_urc_plus_space: bool = False
    #: GEN-3: commands whose result URC comes before OK (the others: OK first).
    result_before_ok: frozenset[str] = frozenset({"MCONFIG", "MIPCLOSE"})
    #: GEN-6: a FAILURE of a command whose format has no result type (MSUB, MUNSUB, MPUB,
    #: MPUBEX, MDISCONNECT, MIPCLOSE) still carries one (`+MPUB: FAILURE,2`).
    untyped_failure_code: bool = True
    #: GEN-6: the final result for a bad parameter of MQTTSSL, MQTTMSGSET, MQTTMSGGET.
    switch_refusal: str = "ERROR"
    #: GEN-5: echo on after boot (ATE0/ATE1 switch it). Both profiles: the guide's examples
    #: are echoed, and `>> abc` needs it.
    echo_at_boot: bool = True
    #: GEN-5: spaces around parameters (`AT+MPUB= topic,…` in the guide) are taken off.
    #: Both profiles: the guide's example depends on it.
    trim_parameters: bool = True
    #: GEN-5: a space after `AT+` (`AT+ MIPCLOSE`, section 2.9's example) is passed over.
    #: Both profiles: the guide's example depends on it.
    space_after_plus: bool = True
    #: GEN-7: the longest client id sent in CONNECT (longer ones cut); None: any length.
    client_id_max: int | None = None
    #: GEN-7: `;` is a V.250 command separator: the parameters end at the first one.
    semicolon_ends_line: bool = False
    #: GEN-7: a parameter in double quotes (a V.250 string constant) loses its quotes.
    strip_quotes: bool = False
    #: GEN-7: leading spaces of an MPUB message are trimmed like those of other parameters.
    trim_message: bool = False
    #: MIPSTART-2: result type when the host name cannot be resolved.
    resolve_failure_code: int = 5
    #: MIPSTART-3: result type of a second MIPSTART; None: answered ERROR.
    second_mipstart_code: int | None = 7
    #: MIPSTART-6, MQTTSSL-1: the TLS handshake is made at MIPSTART or at MCONNECT.
    tls_handshake_at: Literal["MIPSTART", "MCONNECT"] = "MIPSTART"
    #: MIPSTART-7: an unused TCP connection's drop is reported as `+MCONNECT: FAILURE,1`.
    idle_drop_urc: bool = True
    #: MCONNECT-5: MQTTSTATU after the server dropped an MQTT connection, until MIPCLOSE.
    status_after_drop: Literal[0, 2] = 0
    #: MCONNECT-6: result type of MCONNECT without a TCP connection; None: answered ERROR.
    mconnect_without_tcp_code: int | None = 2
    #: MSUB-3: `<len>` of a cut message is the original length ("original") or the cut one.
    msub_len: Literal["original", "cut"] = "original"
    #: MSUB-3: a message on a topic longer than 64 characters is reported with the topic
    #: cut to 64, dropped, or reported whole.
    long_topic: Literal["cut", "drop", "whole"] = "cut"
    #: MSUB-6: MQTTSSL and MQTTMSGSET keep their values over a restart or power cycle.
    settings_survive_restart: bool = False
    #: MPUB-5: commas after the third belong to the message ("message"), or the message
    #: ends at the next one ("cut").
    mpub_commas: Literal["message", "cut"] = "message"
    #: MPUBEX-1: the data prompt.
    prompt: bytes = b"> "
    #: MPUBEX-1: with echo on, the raw data is echoed back.
    echo_data: bool = False
    #: MPUBEX-2: an over-long `<message_len>` is refused at once (False) or after the
    #: prompt and the data (True).
    mpubex_oversize_prompt: bool = False
    #: MPUBEX-3: the data is binary-safe; False: LF bytes are counted but not published.
    mpubex_binary: bool = True
    #: MQTTSSL-1: MQTTSSL while a connection stands is refused ("refuse") or accepted for
    #: the next connection ("next").
    ssl_while_connected: Literal["refuse", "next"] = "refuse"
    #: FLOW-SSL: `AT+MMQTTSSL` (example 1.2's spelling) is taken as AT+MQTTSSL.
    mmqttssl_alias: bool = False
    #: MSGGET-2: final code after `+MQTTMSGGET:INVALID`.
    msgget_invalid_final: Literal["OK", "ERROR"] = "OK"
    #: MSGGET-4: the longest topic a stored message keeps (64, or the 256 of section 2.12).
    stored_topic_max: int = 64
    #: MSGGET-4: reading a slot empties it.
    msgget_clears: bool = False
    #: CEER-1: after a failure, a later success leaves its code (True) or resets it to 0.
    ceer_keeps_failure: bool = False
    #: MDISCONNECT-1: MQTTSTATU after MDISCONNECT, until MIPCLOSE.
    status_after_mdisconnect: Literal[0, 2] = 2
    #: DEV-1: lines printed at boot, and when the network is ready.
    boot_urcs: tuple[str, ...] = ("RDY",)
    ready_urcs: tuple[str, ...] = ("Call Ready",)
    #: MIPSTART-7: seconds of device time before an unused TCP connection is dropped.
    idle_drop_s: float = 60.0
    #: Seconds of device time from power-on to RDY, and from RDY to Call Ready.
    boot_s: float = 3.0
    call_ready_s: float = 2.0
    #: Seconds of device time the module waits for MPUBEX data after the prompt.
    data_timeout_s: float = 10.0
    #: Seconds of device time MCONNECT waits for CONNACK.
    connack_timeout_s: float = 20.0
    #: The link to the broker: each packet from the network reaches the firmware this much
    #: later (one round trip, as a request's answer waits for it), plus up to `link_jitter_s`
    #: drawn from a fixed seed. A TLS handshake costs one round trip more. 0: loopback.
    link_rtt_s: float = 0.0
    link_jitter_s: float = 0.0
    latency: MappingProxyType[str, float] = field(default_factory=lambda: SYNTHETIC_LATENCY_V32)
    #: Where `latency` comes from, for reports: synthetic unless someone configured it.
    latency_note: str = SYNTHETIC_NOTE

    def refusal_form(self, command: str) -> str:
        """How a bad parameter of `command` (no `AT+`) is refused (GEN-6): "ERROR",
        "+CME ERROR", "FAILURE,2" or "FAILURE" (a result URC without a result type)."""
        name = command.upper()
        if name in SWITCHES:
            return "+CME ERROR" if self.switch_refusal.startswith("+CME ERROR") else "ERROR"
        if name in TYPED_RESULTS or (name in UNTYPED_RESULTS and self.untyped_failure_code):
            return "FAILURE,2"
        if name in UNTYPED_RESULTS:
            return "FAILURE"
        return "ERROR"

    def latency_of(self, command: str) -> float:
        return self.latency.get(command, self.latency.get("AT", 0.0))

    def link_note(self) -> str:
        """`; link: …` for a report when the profile models the link, else nothing."""
        if not self.link_rtt_s:
            return ""
        return (f"; link: {self.link_rtt_s * 1000:g} ms round trip + up to "
                f"{self.link_jitter_s * 1000:g} ms jitter")

    def without_latency(self) -> Profile:
        return replace(
            self,
            latency=MappingProxyType({}),
            link_rtt_s=0.0,
            link_jitter_s=0.0,
            latency_note="none (zero latency)",
        )

    def with_latency(
        self,
        overrides: Mapping[str, float] | None = None,
        *,
        scale: float = 1.0,
        note: str | None = None,
    ) -> Profile:
        """This profile with every latency (the link's too) multiplied by `scale`, then
        `overrides` (seconds per command name; `*` sets every command) applied on top."""
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
        return replace(
            self,
            latency=MappingProxyType(table),
            link_rtt_s=self.link_rtt_s * scale,
            link_jitter_s=self.link_jitter_s * scale,
            latency_note=shown,
        )

    def with_latency_spec(self, spec: str) -> Profile:
        """`with_latency` from the text of `--sim-latency` / `hil sim --latency`."""
        if spec.strip().lower() in ("off", "none", "0"):
            return self.without_latency()
        scale, overrides = parse_latency(spec)
        if "*" in overrides:  # every command set: nothing of the firmware's model is left
            link = self.with_latency(scale=scale)
            note = f"configured: {spec.strip()}{link.link_note()}"
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

#: A module that follows the guide and takes, on every open point of docs/clauses.md, the
#: other permitted reading than V32: every form the guide prints, and a cellular link.
GUIDE_ALT = Profile(
    name="guide-alt",
    revision="L506_V3.2_MQTT_B20171031_ALT",
    urc_space=False,
    mipclose_urc_plus_space=True,
    result_before_ok=frozenset({"MCONFIG"}),
    untyped_failure_code=False,
    switch_refusal="+CME ERROR: 4",
    client_id_max=23,
    semicolon_ends_line=True,
    strip_quotes=True,
    trim_message=True,
    resolve_failure_code=4,
    second_mipstart_code=None,
    tls_handshake_at="MCONNECT",
    idle_drop_urc=False,
    status_after_drop=2,
    mconnect_without_tcp_code=None,
    msub_len="cut",
    long_topic="drop",
    settings_survive_restart=True,
    mpub_commas="cut",
    prompt=b">> ",
    echo_data=True,
    mpubex_oversize_prompt=True,
    mpubex_binary=False,
    ssl_while_connected="next",
    mmqttssl_alias=True,
    msgget_invalid_final="ERROR",
    stored_topic_max=256,
    msgget_clears=True,
    ceer_keeps_failure=True,
    status_after_mdisconnect=0,
    boot_urcs=("RDY", "+CPIN: READY"),
    ready_urcs=("Call Ready", "SMS Ready"),
    link_rtt_s=0.060,
    link_jitter_s=0.080,
)
GUIDE_ALT = replace(GUIDE_ALT, latency_note=SYNTHETIC_NOTE + GUIDE_ALT.link_note())

PROFILES: dict[str, Profile] = {p.name: p for p in (V32, V33, GUIDE_ALT)}

#: The profile that follows every decision of clauses.md: only there does a deviation on an
#: open point fail its test; other profiles are characterized like hardware.
REFERENCE = V32


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown firmware profile {name!r}; known profiles: {known}") from None
