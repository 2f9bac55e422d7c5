"""The real-module path end to end: `hil run --rig` with a rig of kind "hardware" whose port
is a `hil sim --tcp 0` in another process and whose `command` power backend switches that
simulator by signals, as a relay board's tool would switch a module.

The suites' subset here covers boot, identity, a power cycle, a will on a power cut, a power
cut under a command, a broker killed under the module, and the MQTT commands. The full
suites the same way (about 3 minutes on an idle machine: the simulator runs at device time,
as a module does, so the 60 s idle drop of MIPSTART-7 takes 60 s):

    L506_HW_FULL=1 .venv/bin/pytest tests/test_hardware_e2e.py -k full
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RIG_NAME = "bench-0 sim over tcp"

pytestmark = pytest.mark.end_to_end

#: Tests that need the power switch, a broker and the MQTT commands: the power backend is
#: the part of the rig under test, so these tests must pass, not skip.
SUBSET = [
    "suites/test_device.py",
    "suites/test_sessions.py::test_will_on_power_cut",
    "suites/test_faults.py::test_power_cut_in_the_middle_of_mpubex",
    "suites/test_faults.py::test_broker_killed_mid_session",
    "suites/test_mconfig.py",
    "suites/test_mpub.py",
    "suites/test_msub.py",
]
MUST_PASS = ("test_power_on", "test_will_on_power_cut", "test_power_cut_in_the_middle_of_mpubex")


@dataclass
class SimProcess:
    url: str
    pid: int
    proc: subprocess.Popen[bytes]
    stderr: Path


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"hil sim printed nothing within {timeout} s"
    return proc.stdout.readline().decode().strip()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    """`hil sim --tcp 0` in its own process, at device time (time scale 1, as hardware)."""
    stderr = tmp_path / "sim.err"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hil.cli", "sim", "--tcp", "0",
             "--pid-file", str(tmp_path / "sim.pid")],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    try:
        line = _first_line(proc, 30)
        assert line.startswith("URL socket://127.0.0.1:"), line
        pid = int((tmp_path / "sim.pid").read_text())
        assert pid == proc.pid
        yield SimProcess(line.split()[1], pid, proc, stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def _rig(folder: Path, port: str, pid: int) -> Path:
    path = folder / "bench-0.toml"
    path.write_text(f"""
name = "{RIG_NAME}"
description = "the simulated L506 as a module on a TCP serial server"
budget_mode = "warn"

[dut]
kind = "hardware"
port = "{port}"
boot_timeout_s = 10
ready_timeout_s = 20
link_wait_scale = 2

[power]
backend = "command"
off = ["kill", "-USR1", "{pid}"]
on = ["kill", "-USR2", "{pid}"]
off_wait_ms = 300
timeout_s = 10

[broker]
bind = "127.0.0.1"
dut_host = "127.0.0.1"

[labels]
bench = "bench-0"
""", encoding="utf-8")
    return path


def _hil_run(rig: Path, reports: Path, tests: list[str], timeout: float
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hil.cli", "run", "--rig", str(rig), "--reports", str(reports),
         "-p", "no:randomly", *tests],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONUNBUFFERED="1"), check=False)


def _check_run(done: subprocess.CompletedProcess[str], reports: Path, sim: SimProcess) -> dict:
    """The run passed, and every record of it names the rig, not "simulator"."""
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run = (reports / "latest").resolve()
    results = json.loads((run / "results.json").read_text())
    assert (results["run"]["rig"], results["run"]["dut"]) == (RIG_NAME, "hardware")
    assert results["run"]["port"] == sim.url
    assert set(results["totals"]) <= {"passed", "skipped"}, results["totals"]
    executor = json.loads((run / "allure-results" / "executor.json").read_text())
    assert RIG_NAME in executor["reportName"] and "simulator" not in executor["reportName"]
    environment = (run / "allure-results" / "environment.properties").read_text()
    assert "DUT=hardware" in environment and "Power=command" in environment
    assert f"Port={sim.url}" in environment.replace("\\:", ":")
    assert "Simulator profile" not in environment
    assert (run / "html" / "index.html").is_file()
    switched = sim.stderr.read_text()
    assert "power off" in switched and "power on" in switched  # the rig's commands did it
    return results


@pytest.mark.timeout(900)
def test_a_hardware_rig_runs_the_suites_on_a_simulator_over_tcp(
    sim: SimProcess, tmp_path: Path
) -> None:
    rig = _rig(tmp_path, sim.url, sim.pid)
    reports = tmp_path / "reports"
    done = _hil_run(rig, reports, SUBSET, timeout=840)
    results = _check_run(done, reports, sim)
    outcome = {t["nodeid"].rsplit("::", 1)[-1]: t["outcome"] for t in results["tests"]}
    for name in MUST_PASS:
        assert outcome.get(name) == "passed", (name, outcome.get(name))
    assert f"hil run: rig {RIG_NAME!r}" in done.stdout


@pytest.mark.timeout(3600)
@pytest.mark.skipif(not os.environ.get("L506_HW_FULL"),
                    reason="the full suites at device time take minutes: "
                    "L506_HW_FULL=1 runs them")
def test_full_suites_on_a_hardware_rig(sim: SimProcess, tmp_path: Path) -> None:
    rig = _rig(tmp_path, sim.url, sim.pid)
    reports = tmp_path / "reports"
    # the simulator resolves localhost: MIPSTART-1 with a domain name runs too
    done = _hil_run(rig, reports, ["--broker-name", "localhost"], timeout=3500)
    _check_run(done, reports, sim)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timed
@pytest.mark.parametrize(("how", "limit_s"), [("hil run", 5), ("pytest", 15)])
def test_a_wrong_port_stops_the_run_at_once_in_one_line(
    tmp_path: Path, how: str, limit_s: float
) -> None:
    """`hil run` checks before it starts pytest: well under 5 s (0.6 s on an idle machine).
    A plain pytest run checks at session start, after loading its plugins (1.8 s idle);
    its bound leaves room for a machine busy with other runs."""
    wrong = f"socket://127.0.0.1:{_closed_port()}"
    rig = _rig(tmp_path, wrong, os.getpid())  # the power commands are never run
    reports = tmp_path / "reports"
    if how == "hil run":
        command = [sys.executable, "-m", "hil.cli", "run", "--rig", str(rig),
                   "--reports", str(reports)]
    else:
        command = [sys.executable, "-m", "pytest", "suites", "--rig", str(rig),
                   "--report-dir", str(reports), "-p", "no:randomly"]
    start = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)
    took = time.monotonic() - start
    assert done.returncode == 4, done.stdout + done.stderr
    assert took < limit_s, f"took {took:.1f} s"
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(said) == 1, said
    assert f"cannot open the module's port {wrong}: Connection refused" in said[0]
    assert "list_ports" in said[0] and "dialout" in said[0]
    assert not (reports / "latest").exists()


def _collect(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """pytest's header and collection only: no test runs, the port is not checked."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "suites/test_device.py", "--collect-only",
         "-p", "no:randomly", "--report-dir", str(tmp_path), *options],
        cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        check=False)


def test_port_option_names_the_module_not_the_simulator(tmp_path: Path) -> None:
    wrong = f"socket://127.0.0.1:{_closed_port()}"
    done = _collect(tmp_path, "--l506-port", wrong)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"rig: module on {wrong} (hardware on {wrong}, power none" in done.stdout
    assert "WARNING" not in done.stdout


def test_broker_bind_option_and_the_loopback_warning(tmp_path: Path) -> None:
    port = f"socket://127.0.0.1:{_closed_port()}"
    done = _collect(tmp_path, "--l506-port", port, "--broker-host", "192.0.2.10")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("rig WARNING: the broker listens on 127.0.0.1 only, but the module dials "
            "192.0.2.10") in done.stdout
    assert "RigWarning" in done.stdout  # in the warnings summary too
    bound = _collect(tmp_path, "--l506-port", port, "--broker-host", "192.0.2.10",
                     "--broker-bind", "0.0.0.0")
    assert "broker on 0.0.0.0, dialled as 192.0.2.10" in bound.stdout
    assert "WARNING" not in bound.stdout.replace("warnings summary", "")
    bad = _collect(tmp_path, "--broker-bind", "everywhere")
    assert bad.returncode == 4
    assert "--broker-bind 'everywhere' must be an IP address" in bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


def test_a_taken_broker_port_names_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rig = tmp_path / "sim.toml"
        rig.write_text((ROOT / "rigs" / "simulator.toml").read_text().replace(
            'dut_host = "127.0.0.1"', f'dut_host = "127.0.0.1"\nport = {port}'))
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "suites/test_device.py", "--rig", str(rig),
             "-p", "no:randomly", "--report-dir", str(tmp_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            check=False)
    assert done.returncode == 4, done.stdout + done.stderr
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(said) == 1 and "systemctl stop mosquitto" in said[0], said
    assert "[broker] port = 0" in said[0]
