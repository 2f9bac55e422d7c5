"""`hil fuzz` on a rig: a module that hangs is power-cycled through the rig's power switch and
the run goes on. The simulator with a bug that wedges its parser (`quote_wedges_parser`: an
unclosed quote swallows every later line, AT+CFUN=1,1 included) stands for the module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.broker import Broker
from hil.dut.recovery import LOST, DutLost
from hil.fuzz.engine import CaseRun
from hil.fuzz.grammar import Case
from hil.fuzz.port import POWER_CYCLE, RESET, PortModule
from hil.fuzz.runner import fuzz
from hil.power import PowerConfig, power_from_config
from hil.sim.firmware import Firmware
from hil.sim.host import SimConfig, Simulator
from hil.sim.profiles import V32
from tests.fuzzcases import SHOWN_BY, cmd

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parent.parent
WEDGE = "quote_wedges_parser"
HEALTHY = Case("none", (cmd("AT+MCONFIG=c"),))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with Broker(tmp_path_factory.mktemp("broker")) as started:
        yield started


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Simulator]:
    """The wedging firmware on a pty, its device timeouts five times faster."""
    sim = Simulator(Firmware(V32, time_scale=0.2, bugs=frozenset({WEDGE})),
                    SimConfig(link=tmp_path / "tty"))
    try:
        sim.power_on()
        yield sim
    finally:
        sim.close()


def _module(sim: Simulator, broker: Broker, tmp_path: Path, *, powered: bool) -> PortModule:
    """The module as `hil fuzz --rig` makes it: the rig's power backend (here the rig's
    `simulator` backend, as a rig file's [power] builds it) is the last rung."""
    power = power_from_config(PowerConfig("simulator"), simulator=sim) if powered else None
    return PortModule(str(tmp_path / "tty"), (broker.host, broker.plain_port),
                      power_cycle=None if power is None else power.cycle, boot_timeout=10,
                      time_scale=0.2)


def test_a_hung_module_is_power_cycled_and_the_next_case_runs(
    simulator: Simulator, broker: Broker, tmp_path: Path
) -> None:
    module = _module(simulator, broker, tmp_path, powered=True)
    try:
        hang, oracle = SHOWN_BY[WEDGE]
        violation = CaseRun(V32, frozenset({WEDGE}), module).run(hang)
        assert violation is not None and violation.oracle == oracle, violation
        before = module.restarts.copy()  # the first case's (the module may still be booting)
        # the parser is wedged now: AT goes unanswered, so no AT+CFUN=1,1 but the power
        assert CaseRun(V32, frozenset({WEDGE}), module).run(HEALTHY) is None
        assert module.restarts - before == {POWER_CYCLE: 1}
        # a healthy module answers AT: the reset suffices
        assert CaseRun(V32, frozenset({WEDGE}), module).run(HEALTHY) is None
        assert module.restarts - before == {POWER_CYCLE: 1, RESET: 1}
    finally:
        module.close()


def test_without_a_power_switch_a_hung_module_is_lost_and_the_run_ends(
    simulator: Simulator, broker: Broker, tmp_path: Path
) -> None:
    module = _module(simulator, broker, tmp_path, powered=False)
    try:
        hang, _ = SHOWN_BY[WEDGE]
        assert CaseRun(V32, frozenset({WEDGE}), module).run(hang) is not None
        with pytest.raises(DutLost) as lost:
            CaseRun(V32, frozenset({WEDGE}), module)
        assert str(lost.value).startswith(LOST) and "no OK to AT" in str(lost.value)
        report = fuzz(V32, frozenset({WEDGE}), max_cases=5, module=module)
        assert report.cases == 0 and report.lost is not None and "no OK to AT" in report.lost
    finally:
        module.close()


def test_hil_fuzz_on_a_simulator_rig_restarts_each_case_and_reports_it(tmp_path: Path) -> None:
    """`hil fuzz --rig` with a rig file of the simulator and its `simulator` power."""
    rig = tmp_path / "rig.toml"
    rig.write_text('name = "fuzz bench"\n\n[dut]\nkind = "simulator"\ntime_scale = 0.2\n'
                   'profile = "v3.3"\nbugs = ["ceer_code_off_by_one"]\nboot_timeout_s = 10\n\n'
                   '[power]\nbackend = "simulator"\n', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "hil.cli", "fuzz", "--rig", str(rig), "--cases", "3",
         "--seed", "1", "--max-steps", "2", "--out", str(tmp_path / "found"),
         "--bug", "second_msub_drops_result", "--json", str(tmp_path / "figures.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    assert "3 cases in" in run.stdout, run.stdout
    assert f"module restarted: 3 x {RESET}" in run.stdout, run.stdout
    # the firmware as it ran: the rig's profile and bugs, and --bug
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["profile"] == "v3.3"
    assert figures["bugs"] == ["ceer_code_off_by_one", "second_msub_drops_result"]


def test_hil_fuzz_refuses_a_rig_it_cannot_use_in_one_line(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text('name = "x"\n[dut]\nkind = "hardware"\nport = "/dev/nonexistent-l506"\n',
                   encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "hil.cli", "fuzz", "--rig", str(rig), "--cases", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("hil fuzz: ") and "nonexistent-l506" in lines[-1], run.stderr
