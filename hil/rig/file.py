"""Rig files: one TOML file per bench says how the harness reaches and powers its module.

A rig names the module's port, the power switch and its settings, where the broker listens
and what address the module dials, device time scale, response-time budgets and free-form
labels for the report. Everything is checked on load; a mistake is a `RigError` naming the
file, the key and what to write instead, never a traceback from deep inside a test run.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hil.power.factory import PowerConfig
from hil.power.registry import settings_class, settings_from_table
from hil.power.settings import SettingsError
from hil.rig.thresholds import Thresholds
from hil.sim.bugs import BUGS, FUZZ_BUGS
from hil.sim.profiles import PROFILES

DutKind = Literal["simulator", "hardware"]
BudgetMode = Literal["fail", "warn"]


class RigError(ValueError):
    """A rig file is missing, unreadable or says something the harness cannot use."""


_REQUIRED = object()


@dataclass(frozen=True)
class _Key:
    """One key of a table: its type, default (or required), and what a valid value is."""

    kind: str  # str, int, number, bool, str-list, str-or-list, table
    default: Any = _REQUIRED
    help: str = ""
    choices: tuple[str, ...] = ()
    check: Callable[[Any], str | None] | None = None  # returns what is wrong, or None


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _port_number(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port, 0–65535 (0: any free port)"


def _address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "must be an IP address such as 127.0.0.1 or 0.0.0.0"
    return None


def _apn(value: str) -> str | None:
    if not value or len(value) > 99:
        return "must be 1–99 characters: the access point name of the SIM's operator"
    if not value.isascii() or not value.isprintable() or '"' in value:
        return "must be printable ASCII without quotes (it goes inside AT+CGDCONT's quotes)"
    return None


def _latency_timer(value: int) -> str | None:
    return None if 1 <= value <= 255 else "must be 1–255 ms (the USB-serial driver's range)"


def _known_profile(value: str) -> str | None:
    return None if value in PROFILES else f"must be one of {', '.join(sorted(PROFILES))}"


def _known_bugs(values: list[str]) -> str | None:
    unknown = [v for v in values if v not in BUGS and v not in FUZZ_BUGS]
    return (f"unknown firmware bug(s) {unknown} (see `hil mutants --list` and "
            f"`hil fuzz --list-bugs`)" if unknown else None)


_DUT = {
    "kind": _Key("str", _REQUIRED, "simulator or hardware", choices=("simulator", "hardware")),
    "port": _Key("str", None, "pyserial URL of the AT port: /dev/serial/by-id/…, /dev/ttyUSB2, "
                 "rfc2217://host:port, socket://host:port"),
    "baud": _Key("int", 115200, "UART baud rate", check=_positive),
    "time_scale": _Key("number", None, "device timeouts multiplied by this (simulator only)",
                       check=_positive),
    "profile": _Key("str", "v3.2", "simulated firmware profile", check=_known_profile),
    "bugs": _Key("str-list", [], "simulated firmware bugs", check=_known_bugs),
    "boot_timeout_s": _Key("number", 20, "seconds from power-on until the module answers AT",
                           check=_positive),
    "ready_timeout_s": _Key("number", 90, "seconds for SIM ready, registration and attach",
                            check=_positive),
    "apn": _Key("str", None, "access point name set by AT+CGDCONT=1,\"IP\",<apn> before "
                "attach (default: the module's own)", check=_apn),
    "latency_timer_ms": _Key("int", None, "set the USB-serial adapter's latency timer to this "
                             "(1: answers are not held back up to 16 ms)", check=_latency_timer),
    "link_wait_scale": _Key("number", None, "waits for keep-alive and drop detection × this "
                            "(default: 1 on the simulator, 3 on hardware: a cellular link)",
                            check=_positive),
    "place": _Key("str-or-list", None, "labgrid place(s) holding the module: \"l506-a\", or "
                  "a list, one per parallel worker (docs/farm.md)"),
}

_LABGRID = {
    "coordinator": _Key("str", None, "labgrid coordinator HOST:PORT (default: LG_COORDINATOR, "
                        "else 127.0.0.1:20408)"),
    "acquire_timeout_s": _Key("number", 300, "seconds to wait for a place someone else holds",
                              check=_positive),
}

#: `link_wait_scale` on hardware when the rig does not say: a cellular link's round trips,
#: radio wake-ups from idle and the operator's NAT make a drop or a ping take longer to show
#: than on loopback.
HARDWARE_LINK_WAIT_SCALE = 3.0

_FIND = {
    "by_id": _Key("str", None, "a /dev/serial/by-id/… link of the AT port"),
    "usb_location": _Key("str", None, "USB location of the AT port's interface, e.g. "
                         "\"1-1.2:1.2\" (see `python -m serial.tools.list_ports -v`)"),
    "serial_number": _Key("str", None, "USB serial number of the module or adapter"),
    "interface": _Key("int", None, "USB interface number of the AT port (with serial_number)"),
    "timeout_s": _Key("number", None, "seconds to wait for the port to come back "
                      "(default: the boot timeout)", check=_positive),
}

_BROKER = {
    "bind": _Key("str", "127.0.0.1", "address the test broker listens on", check=_address),
    "dut_host": _Key("str", "127.0.0.1", "address or name the module dials to reach the broker"),
    "port": _Key("int", 0, "plain MQTT port (0: any free port)", check=_port_number),
    "tls_port": _Key("int", 0, "TLS port (0: any free port)", check=_port_number),
}

_RECOVERY = {
    "cycle_after_failure": _Key("bool", True, "power-cycle the module after a failed test"),
    "probe_timeout_s": _Key("number", 2, "seconds an AT probe may take between tests",
                            check=_positive),
}

_TOP = {
    "name": _Key("str", _REQUIRED, "the rig's name, shown in the report"),
    "description": _Key("str", "", "one line about the bench"),
    "budget_mode": _Key("str", "warn", "a response over its budget fails the test or warns",
                        choices=("fail", "warn")),
    "dut": _Key("table", _REQUIRED),
    "power": _Key("table", {}),
    "broker": _Key("table", {}),
    "recovery": _Key("table", {}),
    "budgets": _Key("table", {}),
    "labels": _Key("table", {}),
    "secrets": _Key("table", {}),
    "acceptance": _Key("table", {}),
    "labgrid": _Key("table", {}),
}


@dataclass(frozen=True)
class PortFind:
    """How to find the AT port again after it re-enumerates (hil.dut.portfind)."""

    by_id: str | None = None
    usb_location: str | None = None
    serial_number: str | None = None
    interface: int | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class LabgridConfig:
    """[labgrid]: where the coordinator is, how long to wait for a held place."""

    coordinator: str | None = None
    acquire_timeout_s: float = 300.0


@dataclass(frozen=True)
class DutConfig:
    kind: DutKind
    port: str | None = None
    baud: int = 115200
    time_scale: float = 1.0
    profile: str = "v3.2"
    bugs: tuple[str, ...] = ()
    boot_timeout_s: float = 20.0
    ready_timeout_s: float = 90.0
    find: PortFind | None = None
    apn: str | None = None
    latency_timer_ms: int | None = None
    link_wait_scale: float = 1.0
    #: labgrid places that hold the module (one per parallel worker); the port is theirs.
    places: tuple[str, ...] = ()


@dataclass(frozen=True)
class BrokerConfig:
    bind: str = "127.0.0.1"
    dut_host: str = "127.0.0.1"
    port: int = 0
    tls_port: int = 0


@dataclass(frozen=True)
class RecoveryConfig:
    cycle_after_failure: bool = True
    probe_timeout_s: float = 2.0


@dataclass(frozen=True)
class Rig:
    """A bench, as its rig file describes it.

    `budgets` maps a command name (as the timing records name it: MPUB, MCONNECT…) to its
    response-time budget in ms; `budget_mode` says whether exceeding one fails or warns.
    `secrets` are values that must never show in reports/ (hil run checks).
    """

    name: str
    dut: DutConfig
    power: PowerConfig = field(default_factory=PowerConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    budgets: dict[str, float] = field(default_factory=dict)
    budget_mode: BudgetMode = "warn"
    labels: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: Path | None = None
    #: [acceptance]: when a change from the baseline firmware counts (docs/acceptance.md).
    acceptance: Thresholds = field(default_factory=Thresholds)
    labgrid: LabgridConfig = field(default_factory=LabgridConfig)

    @property
    def secret_values(self) -> list[str]:
        return [v for v in self.secrets.values() if v]


# ---------------------------------------------------------------------------- validation

_KIND_WORDS = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "str-list": "a list of strings",
    "str-or-list": "a string or a list of strings",
    "table": "a table",
}


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _fits(kind: str, value: Any) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str-list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "table":
        return isinstance(value, dict)
    if kind == "str-or-list":
        return isinstance(value, str) or _fits("str-list", value)
    raise AssertionError(kind)


class _Checker:
    """Checks tables against their keys; every message starts with the file and the place."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> RigError:
        place = f" {where}" if where else ""
        return RigError(f"{self.source}:{place} {message}")

    def table(self, where: str, data: Mapping[str, Any],
              keys: Mapping[str, _Key]) -> dict[str, Any]:
        for name in data:
            if name not in keys:
                near = difflib.get_close_matches(name, list(keys), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                known = ", ".join(keys) or "none"
                raise self.fail(where, f"unknown key {name!r}{hint}; known keys: {known}")
        out: dict[str, Any] = {}
        for name, key in keys.items():
            if name not in data:
                if key.default is _REQUIRED:
                    need = key.help or _KIND_WORDS[key.kind]
                    raise self.fail(where, f"{name} is required: {need}")
                out[name] = key.default
                continue
            value = data[name]
            if not _fits(key.kind, value):
                raise self.fail(where, f"{name} = {value!r} must be {_KIND_WORDS[key.kind]}, "
                                f"not {_type_name(value)}" + (f" ({key.help})" if key.help else ""))
            if key.choices and value not in key.choices:
                raise self.fail(where, f"{name} = {value!r} must be one of "
                                f"{', '.join(repr(c) for c in key.choices)}")
            if key.check is not None:
                problem = key.check(value)
                if problem:
                    raise self.fail(where, f"{name} = {value!r} {problem}")
            out[name] = value
        return out


def load_rig(path: str | Path) -> Rig:
    """Read and check a rig file; RigError says what is wrong and where."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RigError(f"{path}: cannot read the rig file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RigError(f"{path}: not UTF-8 text (byte {exc.start}): a rig file is TOML; "
                       "start from rigs/simulator.toml") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RigError(f"{path}: not valid TOML: {exc}") from exc
    return rig_from_dict(data, source=path)


def rig_from_dict(data: Mapping[str, Any], source: Path | None = None) -> Rig:
    """Build a Rig from parsed TOML, checking every key."""
    check = _Checker(str(source) if source else "rig")
    top = check.table("", data, _TOP)
    dut = _dut(check, top["dut"])
    power = _power(check, top["power"], dut)
    broker = BrokerConfig(**check.table("[broker]", top["broker"], _BROKER))
    if dut.kind == "simulator" and not ipaddress.ip_address(broker.bind).is_loopback:
        raise check.fail("[broker]", f"bind = {broker.bind!r}: the simulator dials only "
                         "loopback; bind the broker to 127.0.0.1")
    recovery = RecoveryConfig(**check.table("[recovery]", top["recovery"], _RECOVERY))
    return Rig(
        name=top["name"],
        description=top["description"],
        dut=dut,
        power=power,
        broker=broker,
        recovery=recovery,
        budgets=_budgets(check, top["budgets"]),
        budget_mode=top["budget_mode"],
        labels=_strings(check, "[labels]", top["labels"]),
        secrets=_strings(check, "[secrets]", top["secrets"]),
        source=source,
        acceptance=_acceptance(check, top["acceptance"]),
        labgrid=LabgridConfig(**check.table("[labgrid]", top["labgrid"], _LABGRID)),
    )


def _acceptance(check: _Checker, data: Mapping[str, Any]) -> Thresholds:
    try:
        return Thresholds.from_table(data)
    except ValueError as exc:
        raise check.fail("[acceptance]", str(exc)) from None


def _dut(check: _Checker, data: Mapping[str, Any]) -> DutConfig:
    raw = dict(data)
    find = raw.pop("find", None)
    values = check.table("[dut]", raw, {**_DUT, "find": _Key("table", None)})
    values.pop("find")
    places = _places(check, values.pop("place"), values["port"])
    if values["kind"] == "hardware":
        _check_hardware(check, values, places)
    else:
        _check_simulated(check, values, find)
    if values["link_wait_scale"] is None:
        values["link_wait_scale"] = 1.0
    if values["time_scale"] is None:
        values["time_scale"] = 1.0
    finder = None if find is None else _finder(check, find)
    values["bugs"] = tuple(values["bugs"])
    if places and values["bugs"]:
        raise check.fail("[dut]", "bugs: a farm's simulated module runs the firmware the farm "
                         "started; remove bugs")
    return DutConfig(**values, find=finder, places=places)


def _places(check: _Checker, place: str | list[str] | None, port: str | None) -> tuple[str, ...]:
    """[dut] place: one labgrid place or several, never beside a port."""
    places = tuple([place] if isinstance(place, str) else place or ())
    if places and port:
        raise check.fail("[dut]", "port and place exclude each other: the place's exporter "
                         "shares the port; remove one")
    if len(set(places)) != len(places) or not all(p.strip() for p in places):
        raise check.fail("[dut]", f"place = {place!r}: name each place once, none empty")
    return places


def _check_hardware(check: _Checker, values: dict[str, Any], places: tuple[str, ...]) -> None:
    """A module on a bench: a port (or a place) and none of the simulator's own keys."""
    if not values["port"] and not places:
        raise check.fail("[dut]", "port is required for kind = \"hardware\" (or a "
                         "labgrid place): " + _DUT["port"].help)
    if values["time_scale"] not in (None, 1, 1.0):
        raise check.fail("[dut]", "time_scale applies to the simulator only: a module's "
                         "own timeouts cannot be scaled; remove it")
    if values["bugs"]:
        raise check.fail("[dut]", "bugs applies to the simulator only; remove it")
    if values["link_wait_scale"] is None:
        values["link_wait_scale"] = HARDWARE_LINK_WAIT_SCALE


def _check_simulated(check: _Checker, values: dict[str, Any], find: object) -> None:
    """The simulator makes its own port and has no SIM nor USB adapter."""
    if values["port"]:
        raise check.fail("[dut]", "port is for kind = \"hardware\"; the simulator makes its "
                         "own pseudo-terminal: remove it")
    if find is not None:
        raise check.fail("[dut.find]", "is for kind = \"hardware\": remove it")
    for name in ("apn", "latency_timer_ms"):
        if values[name] is not None:
            raise check.fail("[dut]", f"{name} is for kind = \"hardware\": the simulator "
                             "has no SIM nor USB adapter; remove it")


def _finder(check: _Checker, find: object) -> PortFind:
    """[dut.find]: how to find the module's port again after it re-enumerated."""
    if not isinstance(find, dict):
        raise check.fail("[dut]", f"find must be a table, not {_type_name(find)}")
    finder = PortFind(**check.table("[dut.find]", find, _FIND))
    if not (finder.by_id or finder.usb_location or finder.serial_number):
        raise check.fail("[dut.find]", "needs by_id, usb_location or serial_number")
    if finder.interface is not None and not finder.serial_number:
        raise check.fail("[dut.find]", "interface goes with serial_number")
    return finder


def _power(check: _Checker, data: Mapping[str, Any], dut: DutConfig) -> PowerConfig:
    """The backend's own settings class (hil/power/registry.py) checks its keys."""
    local_sim = dut.kind == "simulator" and not dut.places
    default = "simulator" if local_sim else "none"
    backend = data.get("backend", default)
    rest = {k: v for k, v in data.items() if k != "backend"}
    try:
        settings_class(backend)  # an unknown backend is said before anything else
        if dut.places and backend == "simulator":
            raise check.fail("[power]", "backend = \"simulator\" powers a simulator this run "
                             "starts; a place's module is powered by the place (or \"none\")")
        if not dut.places and (backend == "simulator") != local_sim:
            if dut.kind == "simulator":
                raise check.fail("[power]", f"backend = {backend!r}: a simulated module is "
                                 "powered by backend = \"simulator\"")
            raise check.fail("[power]", "backend = \"simulator\" needs [dut] kind = "
                             "\"simulator\"")
        return PowerConfig(backend=backend, settings=settings_from_table(backend, rest))
    except SettingsError as exc:
        raise check.fail("[power]", str(exc)) from None


def _budgets(check: _Checker, data: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for name, value in data.items():
        if not _fits("number", value) or value <= 0:
            raise check.fail("[budgets]", f"{name} = {value!r} must be a positive number of "
                             "milliseconds (a command's response-time budget)")
        out[name] = float(value)
    return out


def _strings(check: _Checker, where: str, data: Mapping[str, Any]) -> dict[str, str]:
    for name, value in data.items():
        if not isinstance(value, str):
            raise check.fail(where, f"{name} = {value!r} must be a string, "
                             f"not {_type_name(value)}")
    return dict(data)


# ---------------------------------------------------------------------------- overrides


def with_port(rig: Rig, port: str) -> Rig:
    """The rig with its module on `port` (the `--port` option).

    A hardware rig keeps its name, power and settings: the same bench, its module on another
    port. A simulator rig becomes a rig of its own, "module on <port>", with no power
    control, no labels and the default budgets (the simulator rig's fit the simulator), so
    that no report calls a real module "simulator".
    """
    dut = rig.dut
    if dut.kind == "hardware":
        return dataclasses.replace(rig, dut=dataclasses.replace(dut, port=port, find=None))
    module = DutConfig(kind="hardware", port=port, baud=dut.baud,
                       boot_timeout_s=dut.boot_timeout_s, ready_timeout_s=dut.ready_timeout_s,
                       link_wait_scale=HARDWARE_LINK_WAIT_SCALE)
    return dataclasses.replace(rig, name=f"module on {port}", description="", dut=module,
                               power=PowerConfig("none"), source=None, labels={}, budgets={})


def rig_warnings(rig: Rig) -> list[str]:
    """What in a valid rig is probably a mistake, one line each (shown, not fatal)."""
    found = []
    broker = rig.broker
    if rig.dut.kind == "hardware" and ipaddress.ip_address(broker.bind).is_loopback:
        try:
            dials_loopback = ipaddress.ip_address(broker.dut_host).is_loopback
        except ValueError:  # a name: only "localhost" is known to be loopback
            dials_loopback = broker.dut_host.lower() == "localhost"
        if not dials_loopback:
            found.append(
                f"the broker listens on {broker.bind} only, but the module dials "
                f"{broker.dut_host}: it cannot reach the broker unless a tunnel or port "
                "forward on this PC leads there; set [broker] bind = \"0.0.0.0\" (or "
                "--broker-bind 0.0.0.0)")
    return found
