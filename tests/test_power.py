"""Power backends: each switches as its rig settings say, fails with a reason, never hangs."""

from __future__ import annotations

import os
import select
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import serial

from hil.at.channel import AtError, Channel
from hil.dut.device import Device
from hil.l506.api import L506
from hil.l506.types import MqttStatus
from hil.power import CommandPower, ModemLinePower, PowerError, SimulatorPower, UhubctlPower
from hil.power.lines import LinePower
from hil.power.manual import ManualPower
from hil.sim.firmware import Firmware
from hil.sim.host import SimConfig, Simulator
from hil.sim.profiles import V32
from tests.fakedevice import FakeDevice, crlf


class Clock:
    """A fake sleep: records the line's levels against a virtual time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.events: list[tuple[float, bool]] = []

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def set(self, level: bool) -> None:
        self.events.append((round(self.now, 3), level))


def test_pwrkey_pulses_short_on_long_off() -> None:
    clock = Clock()
    power = LinePower(clock.set, pulse_s=0.5, off_pulse_s=2.5, off_wait_s=2.0, sleep=clock.sleep)
    power.on()
    assert clock.events == [(0.0, True), (0.5, False)]
    clock.events.clear()
    power.cycle()
    # off: 2.5 s press; 2 s off; on: 0.5 s press
    assert clock.events == [(0.5, True), (3.0, False), (5.0, True), (5.5, False)]


def test_supply_drive_is_a_level() -> None:
    clock = Clock()
    power = LinePower(clock.set, drive="supply", off_wait_s=1.0, sleep=clock.sleep)
    power.off()
    power.on()
    assert clock.events == [(0.0, False), (0.0, True)]


def test_a_pulse_never_leaves_the_key_pressed() -> None:
    levels: list[bool] = []

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        LinePower(levels.append, sleep=interrupted).on()
    assert levels == [True, False]


class FakePort:
    """pyserial's dtr/rts as attributes, each change recorded."""

    port = "/dev/ttyFAKE"

    def __init__(self) -> None:
        self.changes: list[tuple[str, bool]] = []

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("dtr", "rts"):
            self.changes.append((name, bool(value)))
        object.__setattr__(self, name, value)


@pytest.mark.parametrize(("line", "active", "pressed"), [
    ("dtr", "asserted", True), ("rts", "asserted", True), ("dtr", "deasserted", False)])
def test_modem_line_polarity(line: str, active: str, pressed: bool) -> None:
    port = FakePort()
    clock = Clock()
    power = ModemLinePower(port, line=line, active=active, pulse_s=0.5, sleep=clock.sleep)
    power.on()
    assert port.changes == [(line, pressed), (line, not pressed)]


def test_modem_line_opens_with_the_key_released() -> None:
    power = ModemLinePower.open("loop://", line="rts", active="asserted", pulse_s=0.01)
    try:
        assert power.port.is_open and power.port.rts is False
        power.on()
        assert power.port.rts is False
    finally:
        power.close()


def test_modem_line_control_port_missing() -> None:
    with pytest.raises(PowerError, match="cannot open the power control port /dev/nonexistent"):
        ModemLinePower.open("/dev/nonexistent")


def test_modem_line_failure_is_a_power_error() -> None:
    class Broken(FakePort):
        def __setattr__(self, name: str, value: object) -> None:
            if name in ("dtr", "rts"):
                raise serial.SerialException("device disconnected")
            object.__setattr__(self, name, value)

    with pytest.raises(PowerError, match="cannot set DTR on /dev/ttyFAKE"):
        ModemLinePower(Broken(), sleep=lambda s: None).on()


# ---------------------------------------------------------------------------- GPIO (libgpiod v2)


def _fake_gpiod(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, str]]:
    """A stand-in for libgpiod's v2 bindings, recording requests and values."""
    record: list[tuple[object, str]] = []
    gpiod = types.ModuleType("gpiod")
    line_mod = types.ModuleType("gpiod.line")

    class Value:
        ACTIVE = "active"
        INACTIVE = "inactive"

    class Direction:
        OUTPUT = "output"

    class LineSettings:
        def __init__(self, **kw: object) -> None:
            self.kw = kw

    class Request:
        def set_value(self, line: object, value: str) -> None:
            record.append((line, value))

        def release(self) -> None:
            record.append(("released", ""))

    def request_lines(path: str, consumer: str, config: dict) -> Request:
        ((line, settings),) = config.items()
        record.append((line, f"requested on {path}: {settings.kw}"))
        return Request()

    line_mod.Value, line_mod.Direction = Value, Direction
    gpiod.LineSettings, gpiod.request_lines, gpiod.line = LineSettings, request_lines, line_mod
    monkeypatch.setitem(sys.modules, "gpiod", gpiod)
    monkeypatch.setitem(sys.modules, "gpiod.line", line_mod)
    return record


def test_gpio_pulses_the_requested_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from hil.power.gpio import GpioPower

    record = _fake_gpiod(monkeypatch)
    power = GpioPower("/dev/gpiochip1", "L506_PWRKEY", active_low=True, sleep=lambda s: None)
    power.on()
    power.close()
    requested = record[0]
    assert requested[0] == "L506_PWRKEY"
    assert "/dev/gpiochip1" in requested[1] and "'active_low': True" in requested[1]
    assert "'output_value': 'inactive'" in requested[1]  # requesting does not press
    assert record[1:] == [("L506_PWRKEY", "active"), ("L506_PWRKEY", "inactive"),
                          ("released", "")]


def test_gpio_without_gpiod_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from hil.power.gpio import GpioPower

    monkeypatch.setitem(sys.modules, "gpiod", None)  # import fails
    with pytest.raises(PowerError, match=r"needs libgpiod's Python bindings.*pip install"):
        GpioPower("/dev/gpiochip0", 17)


# ---------------------------------------------------------------------------- external programs


def _script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_uhubctl_switches_the_hub_port(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    fake = _script(tmp_path, "uhubctl", f'echo "$@" >> {log}\n')
    UhubctlPower("1-1.4", 3, binary=str(fake), sleep=lambda s: None).cycle()
    assert log.read_text().splitlines() == ["-l 1-1.4 -p 3 -a off", "-l 1-1.4 -p 3 -a on"]


@pytest.mark.timed
def test_uhubctl_that_hangs_is_stopped(tmp_path: Path) -> None:
    fake = _script(tmp_path, "uhubctl", "sleep 30\n")
    start = time.monotonic()
    with pytest.raises(PowerError, match=r"did not finish within 0.5 s"):
        UhubctlPower("1-1", 1, binary=str(fake), timeout_s=0.5).on()
    assert time.monotonic() - start < 5


def test_command_power_runs_commands_without_a_shell(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    tool = _script(tmp_path, "relay", f'echo "$@" >> {log}\n')
    power = CommandPower(f"{tool} 'on;' 1", [str(tool), "off", "1"], off_wait_s=0,
                         sleep=lambda s: None)
    power.cycle()
    assert log.read_text().splitlines() == ["off 1", "on; 1"]


def test_command_power_cycle_command_is_used_when_given(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    tool = _script(tmp_path, "relay", f'echo "$@" >> {log}\n')
    CommandPower([str(tool), "on"], [str(tool), "off"], [str(tool), "cycle"]).cycle()
    assert log.read_text().splitlines() == ["cycle"]


def test_command_power_failure_names_the_command_not_the_secret(tmp_path: Path) -> None:
    tool = _script(tmp_path, "pdu", 'echo "login refused" >&2; exit 3\n')
    power = CommandPower([str(tool), "--password", "${pdu}", "on"], [str(tool), "off"],
                         secrets={"pdu": "s3cret-value"})
    with pytest.raises(PowerError) as caught:
        power.on()
    message = str(caught.value)
    assert "status 3" in message and "login refused" in message and "${pdu}" in message
    assert "s3cret-value" not in message


def test_command_power_missing_program() -> None:
    with pytest.raises(PowerError, match="power command not found: /nonexistent/relay"):
        CommandPower("/nonexistent/relay on", "/nonexistent/relay off").on()


# ---------------------------------------------------------------------------- labgrid, manual


def test_labgrid_driver_is_adapted(monkeypatch: pytest.MonkeyPatch) -> None:
    from hil.power.labgrid import LabgridPower

    calls: list[str] = []

    class Driver:
        def on(self) -> None:
            calls.append("on")

        def off(self) -> None:
            calls.append("off")

        def cycle(self) -> None:
            calls.append("cycle")

    class Target:
        def get_driver(self, protocol: str, name: str | None = None) -> Driver:
            calls.append(f"get {protocol} {name}")
            return Driver()

        def activate(self, driver: Driver) -> None:
            calls.append("activate")

    class Environment:
        def __init__(self, config_file: str) -> None:
            calls.append(f"env {config_file}")

        def get_target(self, name: str) -> Target | None:
            return Target() if name == "main" else None

    labgrid = types.ModuleType("labgrid")
    labgrid.Environment = Environment
    monkeypatch.setitem(sys.modules, "labgrid", labgrid)
    power = LabgridPower.from_environment("bench.yaml", "main", "pdu")
    power.cycle()
    power.off()
    assert calls == ["env bench.yaml", "get PowerProtocol pdu", "activate", "cycle", "off"]
    with pytest.raises(PowerError, match="has no target 'other'"):
        LabgridPower.from_environment("bench.yaml", "other")


def test_labgrid_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from hil.power.labgrid import LabgridPower

    monkeypatch.setitem(sys.modules, "labgrid", None)
    with pytest.raises(PowerError, match="needs labgrid: pip install labgrid"):
        LabgridPower.from_environment("bench.yaml")


def test_manual_asks_the_operator_on_the_terminal() -> None:
    master, slave = os.openpty()
    try:
        power = ManualPower(timeout_s=5, tty=os.ttyname(slave), environ={})
        os.write(master, b"\n")  # the operator pressed Enter
        power.off()
        shown = b""  # the typed Enter's echo may come through first, the prompt after it
        while b"switch the module OFF" not in shown and select.select([master], [], [], 5)[0]:
            shown += os.read(master, 4096)
        assert b"switch the module OFF" in shown
    finally:
        os.close(master)
        os.close(slave)


def test_manual_gives_up_when_nobody_answers() -> None:
    master, slave = os.openpty()
    try:
        with pytest.raises(PowerError, match="did not confirm"):
            ManualPower(timeout_s=0.2, tty=os.ttyname(slave), environ={}).on()
    finally:
        os.close(master)
        os.close(slave)


def test_manual_refuses_in_ci_and_without_a_terminal(tmp_path: Path) -> None:
    with pytest.raises(PowerError, match="this is CI"):
        ManualPower(environ={"CI": "true"}).on()
    with pytest.raises(PowerError, match="needs an operator at a terminal"):
        ManualPower(tty=str(tmp_path / "no-tty"), environ={}).on()
    plain = tmp_path / "file"
    plain.write_text("")
    with pytest.raises(PowerError, match="is not a terminal"):
        ManualPower(tty=str(plain), environ={}).on()


# ---------------------------------------------------------------------------- the simulator


@pytest.fixture
def sim_device(tmp_path: Path):
    sim = Simulator(Firmware(V32, time_scale=0.05), SimConfig(link=tmp_path / "tty", baud=None))
    at = L506.open(sim.power_on())
    dev = Device(at=at, channel=at.channel, kind="simulator", time_scale=0.05, faults=sim,
                 power=SimulatorPower(sim), boot_timeout=5, ready_timeout=5)
    try:
        dev.wait_ready()
        yield dev, sim
    finally:
        at.channel.close()
        sim.close()


@pytest.mark.timed
def test_simulator_power_cycle_loses_ram_and_comes_back(sim_device) -> None:
    dev, sim = sim_device
    assert dev.at.mqttmsgset(1).ok and dev.at.mqttssl(1).ok and dev.at.ate(False).ok
    assert dev.at.at().response.echo is None
    pty_before = sim.host.pty_path
    start = time.monotonic()
    dev.power_cycle()
    assert time.monotonic() - start < 3
    assert sim.host.pty_path is not None
    assert os.path.realpath(dev.channel.url) == sim.host.pty_path  # the link was re-pointed
    assert pty_before is not None
    assert dev.at.at().response.echo is not None  # RAM state lost: echo is on again
    assert dev.at.mqttstatu().value == MqttStatus.NO_CONNECTION


def test_soft_reset_by_cfun(sim_device) -> None:
    dev, _ = sim_device
    assert dev.at.ate(False).ok
    dev.soft_reset()
    assert dev.at.at().response.echo is not None  # RAM state lost: echo is on again


@pytest.fixture
def scripted() -> Iterator[tuple[FakeDevice, Device]]:
    device = FakeDevice()
    channel = Channel(device.path)
    try:
        yield device, Device(L506(channel), channel, "hardware", boot_timeout=5, ready_timeout=5)
    finally:
        channel.close()
        device.close()


def test_soft_reset_waits_for_proof_of_the_restart(scripted) -> None:
    device, dev = scripted
    # The module restarts 0.4 s after its OK; until RDY, an answer to AT could be the old run.
    device.on(b"AT+CFUN=1,1\r", crlf(b"OK"), 0.4, crlf(b"RDY"))
    device.on(b"AT\r", crlf(b"OK"))
    device.on(b"AT+CPIN?\r", crlf(b"+CPIN: READY", b"OK"))
    device.on(b"AT+CREG?\r", crlf(b"+CREG: 0,1", b"OK"))
    device.on(b"AT+CGATT?\r", crlf(b"+CGATT: 1", b"OK"))
    dev.soft_reset()
    shown = [(e.kind, e.text) for e in dev.channel.transcript.events() if e.kind != "note"]
    assert shown.index(("urc", "RDY")) < shown.index(("command", "AT"))


def test_soft_reset_refused_is_an_error(scripted) -> None:
    device, dev = scripted
    device.on(b"AT+CFUN=1,1\r", crlf(b"ERROR"))
    with pytest.raises(AtError, match="AT\\+CFUN=1,1 not accepted"):
        dev.soft_reset()


def test_no_power_control_is_said(sim_device) -> None:
    dev, _ = sim_device
    dev.power = None
    with pytest.raises(PowerError, match="no power control"):
        dev.power_cycle()


# ---------------------------------------------------------------------------- the registry


@pytest.fixture
def relay_backend() -> Iterator[type]:
    """A backend that is only this test module: registered here, gone after the test."""
    from dataclasses import dataclass

    from hil.power import Bench, PowerSettings, register, setting
    from hil.power.registry import BACKENDS
    from hil.power.settings import positive

    class RelayPower:
        def __init__(self, channel: int, secrets: dict) -> None:
            self.channel, self.secrets, self.calls = channel, secrets, []

        def on(self) -> None:
            self.calls.append("on")

        def off(self) -> None:
            self.calls.append("off")

        def cycle(self) -> None:
            self.calls.append("cycle")

        def close(self) -> None:
            self.calls.append("close")

    @register("test-relay")
    @dataclass(frozen=True, kw_only=True)
    class RelaySettings(PowerSettings):
        board: str = setting(help="the relay board's device")
        channel: int = setting(1, "relay channel", positive)
        wiring: Literal["nc", "no"] = setting("no", "contact the module's supply is on")

        def build(self, bench: Bench) -> RelayPower:
            return RelayPower(self.channel, dict(bench.secrets))

    try:
        yield RelaySettings
    finally:
        del BACKENDS["test-relay"]


def test_a_backend_from_one_module_is_named_by_a_rig(relay_backend: type) -> None:
    from hil.power import PowerProtocol, power_from_config
    from hil.rig import RigError, rig_from_dict

    def rig(**power: object) -> dict:
        return {"name": "t", "dut": {"kind": "hardware", "port": "/dev/ttyUSB0"},
                "power": {"backend": "test-relay", **power}, "secrets": {"pin": "1234"}}

    loaded = rig_from_dict(rig(board="/dev/relay0", channel=3))
    assert loaded.power.settings == relay_backend(board="/dev/relay0", channel=3, wiring="no")
    power = power_from_config(loaded.power, secrets=loaded.secrets)
    assert isinstance(power, PowerProtocol)
    power.cycle()
    power.close()
    assert (power.channel, power.secrets, power.calls) == (3, {"pin": "1234"}, ["cycle", "close"])

    def error(**power: object) -> str:
        with pytest.raises(RigError) as caught:
            rig_from_dict(rig(**power), source=Path("rigs/relay.toml"))
        return str(caught.value)

    assert error(board="/dev/relay0", wiring="nx") == (
        "rigs/relay.toml: [power] backend 'test-relay': wiring = 'nx' must be one of 'nc', 'no'")
    assert error(board="/dev/relay0", channel=0) == (
        "rigs/relay.toml: [power] backend 'test-relay': channel = 0 must be greater than 0")
    assert error(board="/dev/relay0", chanel=2) == (
        "rigs/relay.toml: [power] backend 'test-relay': unknown key 'chanel' "
        "(did you mean 'channel'?); known keys: board, channel, wiring")
    assert error() == ("rigs/relay.toml: [power] backend 'test-relay': board is required: "
                       "the relay board's device")


def test_a_backend_name_is_registered_once(relay_backend: type) -> None:
    from dataclasses import dataclass

    from hil.power import PowerSettings, register

    with pytest.raises(ValueError, match="'test-relay' is registered twice"):
        @register("test-relay")
        @dataclass(frozen=True, kw_only=True)
        class Other(PowerSettings):
            pass


def test_a_setting_needs_a_type_a_rig_file_can_write() -> None:
    from dataclasses import dataclass

    from hil.power import PowerSettings, register
    from hil.power.registry import BACKENDS

    with pytest.raises(TypeError, match=r"setting 'when'.*has no rig-file form"):
        @register("test-clock")
        @dataclass(frozen=True, kw_only=True)
        class ClockSettings(PowerSettings):
            when: complex = 1j
    assert "test-clock" not in BACKENDS


def test_settings_are_checked_when_built_in_code_too() -> None:
    from hil.power import SettingsError
    from hil.power.command import CommandSettings
    from hil.power.modemlines import ModemLineSettings

    with pytest.raises(SettingsError, match=r"^line = 'cts' must be one of 'dtr', 'rts'$"):
        ModemLineSettings(line="cts")
    with pytest.raises(SettingsError, match=r"^pulse_ms = True must be a number, not a boolean"):
        ModemLineSettings(pulse_ms=True)
    with pytest.raises(SettingsError, match=r"^on = \[\] must be a command"):
        CommandSettings(on=[], off="x")
    assert CommandSettings(on="relay on", off=["relay", "off"]).cycle is None


def test_every_backend_has_the_whole_protocol() -> None:
    """close() is part of the protocol, so every backend class must have it."""
    from hil.power import PowerProtocol, backends
    from hil.power.gpio import GpioPower
    from hil.power.labgrid import LabgridPower

    classes = [CommandPower, ModemLinePower, SimulatorPower, UhubctlPower, ManualPower,
               GpioPower, LabgridPower]
    assert [c for c in classes if not issubclass(c, PowerProtocol)] == []
    assert {"command", "modemlines", "simulator", "uhubctl", "manual", "gpio", "labgrid",
            "none"} <= set(backends())


def test_simulator_power_needs_only_power_on_and_off() -> None:
    """Anything with power_on()/power_off() is a simulated supply; hil.power needs no sim host."""
    import subprocess

    class Supply:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def power_on(self) -> str:
            self.calls.append("on")
            return "/dev/pts/9"

        def power_off(self) -> None:
            self.calls.append("off")

    supply = Supply()
    SimulatorPower(supply).cycle()
    assert supply.calls == ["off", "on"]
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, hil.power.registry as r; r.backends(); "
         "print(sorted(m for m in sys.modules if m.startswith('hil.sim')))"],
        capture_output=True, text=True, timeout=60, check=True)
    assert loaded.stdout.strip() == "[]"
