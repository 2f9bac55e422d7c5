"""Rig files: every example in rigs/ loads; a malformed one says what is wrong and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.power import (
    CommandPower,
    ModemLinePower,
    PowerError,
    UhubctlPower,
    backends,
    power_from_config,
)
from hil.power.lines import LinePower
from hil.power.modemlines import ModemLineSettings
from hil.rig import RigError, load_rig, rig_from_dict, rig_warnings, with_port

RIGS = Path(__file__).resolve().parent.parent / "rigs"
EXAMPLES = sorted(RIGS.glob("*.toml"))


def test_there_are_the_four_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"simulator.toml", "usb-dtr.example.toml", "ser2net.example.toml",
            "sim-tcp.example.toml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_rig_is_valid(path: Path) -> None:
    rig = load_rig(path)
    assert rig.name and rig.source == path
    assert rig.budget_mode in ("fail", "warn")
    assert all(ms > 0 for ms in rig.budgets.values())
    if rig.dut.kind == "hardware":
        assert rig.dut.port and rig.dut.time_scale == 1.0
    else:
        assert rig.power.backend == "simulator" and rig.dut.port is None


def test_simulator_rig_is_what_ci_runs() -> None:
    rig = load_rig(RIGS / "simulator.toml")
    assert rig.dut.kind == "simulator"
    assert rig.dut.time_scale == 0.05
    assert rig.broker.bind == rig.broker.dut_host == "127.0.0.1"


def test_usb_dtr_example_builds_a_dtr_pwrkey_with_default_timing() -> None:
    rig = load_rig(RIGS / "usb-dtr.example.toml")
    s = rig.power.settings
    assert isinstance(s, ModemLineSettings)
    assert (rig.power.backend, s.line, s.drive, s.pulse_ms) == ("modemlines", "dtr", "pwrkey", 500)
    assert rig.dut.boot_timeout_s == 20
    assert rig.dut.find is not None and rig.dut.find.by_id


def test_ser2net_example_is_rfc2217_with_command_power() -> None:
    rig = load_rig(RIGS / "ser2net.example.toml")
    assert rig.dut.port is not None and rig.dut.port.startswith("rfc2217://")
    power = power_from_config(rig.power)
    assert isinstance(power, CommandPower)


def _rig(**tables) -> dict:
    base = {"name": "t", "dut": {"kind": "hardware", "port": "/dev/ttyUSB0"}}
    for key, value in tables.items():
        base[key] = value
    return base


def _error(data: dict) -> str:
    with pytest.raises(RigError) as caught:
        rig_from_dict(data, source=Path("rigs/bench.toml"))
    return str(caught.value)


def test_unknown_key_is_named_with_a_suggestion() -> None:
    message = _error(_rig(power={"backend": "modemlines", "pulse": 300}))
    assert message.startswith("rigs/bench.toml: [power] backend 'modemlines': unknown key 'pulse'")
    assert "did you mean 'pulse_ms'?" in message
    assert "known keys: drive, pulse_ms, off_pulse_ms, off_wait_ms, port, line, active" in message


def test_unknown_top_level_key() -> None:
    assert "unknown key 'dutt'" in _error({"name": "x", "dutt": {}, "dut": {"kind": "simulator"}})


def test_wrong_type_says_what_was_expected() -> None:
    message = _error(_rig(power={"backend": "modemlines", "pulse_ms": "500"}))
    assert ("[power] backend 'modemlines': pulse_ms = '500' must be a number, "
            "not a string") in message


def test_bool_is_not_a_number() -> None:
    assert "must be an integer, not a boolean" in _error(
        {"name": "x", "dut": {"kind": "simulator", "baud": True}})


def test_missing_required_values() -> None:
    assert "rigs/bench.toml: name is required" in _error({"dut": {"kind": "simulator"}})
    assert "[dut] port is required for kind = \"hardware\"" in _error(
        {"name": "x", "dut": {"kind": "hardware"}})
    assert "[power] backend 'uhubctl': location is required" in _error(
        _rig(power={"backend": "uhubctl", "port": 2}))


def test_choices_are_listed() -> None:
    message = _error(_rig(power={"backend": "modemlines", "line": "cts"}))
    assert "[power] backend 'modemlines': line = 'cts' must be one of 'dtr', 'rts'" in message
    message = _error(_rig(power={"backend": "relay"}))
    assert "backend = 'relay' must be one of" in message and "'uhubctl'" in message
    assert "backend = ['gpio'] must be one of" in _error(_rig(power={"backend": ["gpio"]}))
    assert "port = 0 must be greater than 0" in _error(
        _rig(power={"backend": "uhubctl", "location": "1-1", "port": 0}))


def test_hardware_cannot_be_time_scaled_nor_simulator_powered() -> None:
    assert "time_scale applies to the simulator only" in _error(
        {"name": "x", "dut": {"kind": "hardware", "port": "/dev/x", "time_scale": 0.1}})
    assert "needs [dut] kind = \"simulator\"" in _error(_rig(power={"backend": "simulator"}))


def test_simulator_broker_must_be_on_loopback() -> None:
    assert "only loopback" in _error(
        {"name": "x", "dut": {"kind": "simulator"}, "broker": {"bind": "0.0.0.0"}})


def test_the_tap_needs_an_address_of_its_own() -> None:
    """The tap listens on the broker's ports, so not on the broker's address; the simulator
    reaches it only on loopback."""
    sim = {"name": "x", "dut": {"kind": "simulator"}}
    assert "must be an IP address" in _error({**sim, "broker": {"tap": "tap.local"}})
    assert "need different addresses" in _error({**sim, "broker": {"tap": "127.0.0.1"}})
    assert "only loopback" in _error({**sim, "broker": {"tap": "10.0.0.2"}})
    assert "need different addresses" in _error(
        _rig(broker={"bind": "0.0.0.0", "tap": "192.168.1.10"}))
    bench = rig_from_dict(_rig(broker={"bind": "127.0.0.1", "tap": "192.168.1.10",
                                       "dut_host": "192.168.1.10"}))
    assert bench.broker.module_dials == "192.168.1.10"
    assert not rig_warnings(bench), "a tap in front of a loopback broker is the forward"
    plain = rig_from_dict(sim)
    assert (plain.broker.tap, plain.broker.module_dials) == ("", "127.0.0.1")
    simulator = load_rig(RIGS / "simulator.toml")
    assert simulator.broker.module_dials == "::1"
    # a real module given by --port dials dut_host: the simulator's loopback tap is not its
    assert with_port(simulator, "/dev/ttyUSB2").broker.module_dials == "127.0.0.1"


def test_budgets_are_positive_milliseconds() -> None:
    assert "[budgets] MPUB = -1 must be a positive number of milliseconds" in _error(
        _rig(budgets={"MPUB": -1}))


def test_budgets_and_mode_for_the_timing_layer() -> None:
    rig = rig_from_dict(_rig(budgets={"MPUB": 250, "AT": 50.5}) | {"budget_mode": "fail"})
    assert rig.budgets == {"MPUB": 250.0, "AT": 50.5}
    assert rig.budget_mode == "fail"
    assert "budget_mode = 'strict' must be one of 'fail', 'warn'" in _error(
        _rig() | {"budget_mode": "strict"})


def test_find_needs_a_way_to_find() -> None:
    assert "[dut.find] needs by_id, usb_location or serial_number" in _error(
        {"name": "x", "dut": {"kind": "hardware", "port": "/dev/x", "find": {}}})


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(RigError, match=r"bad.toml: not valid TOML"):
        load_rig(bad)
    with pytest.raises(RigError, match=r"nope.toml: cannot read the rig file"):
        load_rig(tmp_path / "nope.toml")


def test_secrets_are_listed_and_substituted_into_commands() -> None:
    rig = rig_from_dict(_rig(
        power={"backend": "command", "on": "pdu --password ${pdu} on 3", "off": ["pdu", "off"]},
        secrets={"pdu": "hunter2hunter2"},
    ))
    assert rig.secret_values == ["hunter2hunter2"]
    power = power_from_config(rig.power, secrets=rig.secrets)
    assert isinstance(power, CommandPower)


def test_every_backend_builds_from_its_defaults(tmp_path: Path) -> None:
    """Backends with nothing to open are built straight from a rig's [power] table."""
    uhub = rig_from_dict(_rig(power={"backend": "uhubctl", "location": "1-1", "port": 2}))
    assert isinstance(power_from_config(uhub.power), UhubctlPower)
    assert power_from_config(rig_from_dict(_rig()).power) is None  # backend "none"
    loop = rig_from_dict(_rig(power={"backend": "modemlines", "port": "loop://"}))
    power = power_from_config(loop.power)
    assert isinstance(power, ModemLinePower) and isinstance(power._lines, LinePower)
    power.close()
    assert set(backends()) == {"simulator", "none", "modemlines", "gpio", "uhubctl",
                                   "command", "labgrid", "place", "manual"}


def test_power_through_a_place_needs_the_place_the_run_holds() -> None:
    rig = rig_from_dict(_rig(power={"backend": "place", "off_wait_ms": 10}))
    with pytest.raises(PowerError, match=r"names none: set \[dut\] place"):
        power_from_config(rig.power)
    switched: list[bool] = []
    power = power_from_config(rig.power, place_switch=switched.append)
    assert power is not None
    power.cycle()
    assert switched == [False, True]


def test_a_rig_file_that_is_not_text_is_one_clear_error(tmp_path: Path) -> None:
    binary = tmp_path / "bench.toml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(RigError, match=r"bench\.toml: not UTF-8 text \(byte 128\)"):
        load_rig(binary)
