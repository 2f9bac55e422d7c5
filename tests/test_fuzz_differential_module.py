"""Differential runs against a module behind a real port (the simulator on its pty, a real
mosquitto behind the recording tap) and the model of a profile: the same firmware differs
in nothing, another firmware only in its documented choices, a bug is listed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.broker import Broker
from hil.fuzz.differential import compare_module, draw_cases
from hil.fuzz.grammar import Case
from hil.fuzz.port import PortModule, publish_once
from hil.sim.firmware import Firmware
from hil.sim.host import SimConfig, Simulator
from hil.sim.profiles import V32, V33, Profile
from tests.fuzzcases import SHOWN_BY, cmd

pytestmark = [pytest.mark.timeout(240), pytest.mark.end_to_end]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with Broker(tmp_path_factory.mktemp("broker")) as started:
        yield started


@pytest.fixture(scope="module")
def drawn():  # type: ignore[no-untyped-def]
    return draw_cases(8, seed_value=5)


def _on_port(tmp_path: Path, broker: Broker, profile: Profile,
             bugs: frozenset[str] = frozenset()) -> tuple[Simulator, PortModule]:
    simulator = Simulator(Firmware(profile, time_scale=0.2, bugs=bugs),
                          SimConfig(link=tmp_path / "tty"))
    simulator.power_on()
    return simulator, PortModule(str(tmp_path / "tty"), (broker.host, broker.plain_port),
                                 boot_timeout=10, time_scale=0.2)


def _compare(tmp_path: Path, broker: Broker, firmware: Profile, model: Profile, cases: list,
             bugs: frozenset[str] = frozenset()):  # type: ignore[no-untyped-def]
    simulator, module = _on_port(tmp_path, broker, firmware, bugs)
    try:
        return compare_module(module, model, cases)
    finally:
        module.close()
        simulator.close()


def test_the_same_firmware_on_a_port_differs_in_nothing(
        tmp_path: Path, broker: Broker, drawn: list) -> None:
    found = _compare(tmp_path, broker, V32, V32, drawn)
    assert found.cases == 8 and found.steps > 30
    assert found.unexplained == [] and not found.explained


def test_another_firmware_differs_only_in_its_documented_choices(
        tmp_path: Path, broker: Broker, drawn: list) -> None:
    found = _compare(tmp_path, broker, V33, V32, drawn)
    assert "urc_space" in found.explained  # v3.3 writes `+MIPSTART:SUCCESS`
    assert found.unexplained == []


@pytest.mark.parametrize("bug", ["statu_from_ceer", "tab_restarts"])
def test_a_firmware_anomaly_is_listed_with_its_step(
        tmp_path: Path, broker: Broker, bug: str) -> None:
    case, _ = SHOWN_BY[bug]
    found = _compare(tmp_path, broker, V32, V32, [case], frozenset({bug}))
    assert len(found.unexplained) == 1
    sent, model, module = found.unexplained[0]
    assert sent == case.steps[-1].line and model != module


def test_a_retained_message_does_not_outlive_its_case(tmp_path: Path, broker: Broker) -> None:
    """The broker runs on between cases: what one case left retained (a publish, a will)
    is wiped before the next, which subscribes to it, as the model's fresh broker would."""
    cases = [Case("mqtt", (cmd("AT+MPUB=r/t,1,1,kept"),)),
             Case("mqtt", (cmd("AT+MSUB=r/t,0"),))]
    found = _compare(tmp_path, broker, V32, V32, cases)
    assert found.cases == 2 and found.unexplained == []


def test_a_peer_publishes_at_every_qos_through_a_real_broker(broker: Broker) -> None:
    for qos in (0, 1, 2):  # QoS 2 owes a PUBREL to the broker's PUBREC
        began = time.monotonic()
        publish_once(broker.host, broker.plain_port, "t/peer", b"x", qos, timeout=5.0)
        assert time.monotonic() - began < 4.0, qos


def test_hil_fuzz_against_a_rigs_module_writes_its_fidelity_report(tmp_path: Path) -> None:
    rig = (ROOT / "rigs" / "simulator.toml").read_text().replace('profile = "v3.2"',
                                                                  'profile = "v3.3"')
    (tmp_path / "rig.toml").write_text(rig)
    result = subprocess.run(
        [sys.executable, "-m", "hil.cli", "fuzz", "--rig", str(tmp_path / "rig.toml"),
         "--against", "v3.2", "--cases", "4", "--seed", "5", "--json", str(tmp_path / "d.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=200)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("v3.2 against the module (")
    report = json.loads((tmp_path / "d.json").read_text())
    assert report["cases"] == 4 and report["unexplained"] == []
    assert "urc_space" in report["explained"]
