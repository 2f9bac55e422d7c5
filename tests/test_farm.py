"""The farm for real: `labgrid-coordinator`, one `labgrid-exporter` per module sharing its
pty through ser2net, places locked through `labgrid-client`, pytest-xdist workers.

One farm of two simulated modules serves the module's tests (about a minute and a half in
all); every process is stopped at the end and every test checks that no place stays locked.
The long form, three modules and every suite, is in docs/farm.md.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.farm import farm
from hil.farm.labgrid import Labgrid, LabgridError, labgrid_program

ROOT = Path(__file__).resolve().parent.parent


def _missing() -> str | None:
    try:
        labgrid_program("labgrid-coordinator")
    except LabgridError as exc:
        return str(exc)
    if not any(os.access(p, os.X_OK) for p in ("/usr/sbin/ser2net", "/usr/bin/ser2net")):
        return "ser2net is not installed (scripts/setup installs it)"
    return None


pytestmark = [pytest.mark.skipif(_missing() is not None, reason=str(_missing())),
              pytest.mark.timeout(300), pytest.mark.end_to_end]


@pytest.fixture(scope="module")
def farm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[farm.Farm]:
    folder = tmp_path_factory.mktemp("farm")
    started = farm.up(2, folder)
    try:
        yield started
    finally:
        farm.down(folder)
    assert not Path(folder, "farm.json").exists()


def _pytest(args: list[str], run: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", *args, "--report-dir", str(run),
            "--alluredir", str(run / "allure-results"), "--junitxml", str(run / "junit.xml"),
            "-q", "-p", "no:randomly", "-o", "timeout=60"]


def _free(started: farm.Farm) -> None:
    held = {p.name: p.holder for p in started.labgrid().places() if p.acquired}
    assert held == {}, f"places left locked: {held}"


def test_each_module_runs_every_test_and_the_places_end_free(
        farm2: farm.Farm, tmp_path: Path) -> None:
    run = tmp_path / "run"
    rig = Path(farm2.folder, "rig.toml")
    done = subprocess.run(
        _pytest([str(ROOT / "suites" / "test_flow_tcp.py"),
                 str(ROOT / "suites" / "test_mconfig.py"), "--rig", str(rig), "-n", "2",
                 "--modules", "each"], run),
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    results = json.loads((run / "results.json").read_text())
    by_module: dict[str, set[str]] = {}
    for test in results["tests"]:
        assert test["outcome"] == "passed", test
        by_module.setdefault(test["module"], set()).add(test["nodeid"].replace(
            f"[{test['module']}]", "[]").replace(f"[{test['module']}-", "["))
    assert set(by_module) == {"l506-1", "l506-2"}
    assert by_module["l506-1"] == by_module["l506-2"] and len(by_module["l506-1"]) >= 2
    modules = {m["module"]: m for m in results["modules"]}
    assert all(m["imei"].endswith("*******") and m["firmware"] for m in modules.values())
    assert (run / "modules" / "l506-1" / "transcripts").is_dir()
    assert (run / "modules" / "l506-2" / "timings.csv").is_file()
    # one record of the run for every module: timings, plots and the clause matrix
    timed = {r["module"] for r in csv.DictReader((run / "timings.csv").open())}
    assert timed == {"l506-1", "l506-2"}
    assert (run / "plots" / "latency.png").is_file()
    assert not list((run / "modules").glob("*/plots")) + list((run / "modules").glob("*/trac*"))
    matrix = json.loads((run / "traceability.json").read_text())
    checked = {t["module"].split(" · ")[0] for c in matrix["clauses"] for t in c["tests"]}
    assert checked == {"l506-1", "l506-2"} and matrix["summary"].get("pass")
    junit = ET.parse(run / "junit.xml").getroot()
    names = [c.get("name") for c in junit.iter("testcase")]
    assert any("l506-1" in n for n in names) and any("l506-2" in n for n in names)
    suite = {p.get("name"): p.get("value") for p in junit.find("testsuite/properties") or []}
    assert suite["rig"] == "farm" and suite["harness"]
    for place in ("l506-1", "l506-2"):
        assert suite[f"{place}.firmware"] == "L506_V3.2_MQTT_B20171031"
        assert suite[f"{place}.module"].endswith("*******"), suite
    env = (run / "allure-results" / "environment.properties").read_text()
    assert "Module\\ l506-1=" in env and "Module\\ l506-2=" in env
    _free(farm2)
    firmware = {p.name: p.tags.get("firmware") for p in farm2.labgrid().places()}
    assert firmware == {"l506-1": "l506_v3_2_mqtt_b20171031",
                        "l506-2": "l506_v3_2_mqtt_b20171031"}


def test_power_goes_through_each_place(farm2: farm.Farm, tmp_path: Path) -> None:
    """The farm's rig powers each module through its place (labgrid-client power, the
    exporter's NetworkPowerPort, the simulator's simplerest switch): the tests that cut
    the power run on both modules instead of skipping."""
    run = tmp_path / "run"
    done = subprocess.run(
        _pytest([str(ROOT / "suites" / "test_device.py") + "::test_power_on",
                 str(ROOT / "suites" / "test_sessions.py") + "::test_will_on_power_cut",
                 "--rig", str(Path(farm2.folder, "rig.toml")), "-n", "2", "--modules", "each"],
                run),
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    outcomes = {(t["nodeid"].split("[")[0], t["module"]): t["outcome"]
                for t in json.loads((run / "results.json").read_text())["tests"]}
    assert len(outcomes) == 4 and set(outcomes.values()) == {"passed"}, outcomes
    for place in farm2.places:
        log = Path(farm2.folder, f"sim-{place}.log").read_text()
        assert '"GET /relay/0/0 HTTP/1.1" 200' in log and '"GET /relay/0/1 HTTP/1.1" 200' in log
    _free(farm2)


def test_a_held_place_is_waited_for_then_its_holder_named(
        farm2: farm.Farm, tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text(Path(farm2.folder, "rig.toml").read_text().replace(
        "acquire_timeout_s = 60", "acquire_timeout_s = 3"))
    other = Labgrid(farm2.coordinator, holder="ana-bench")
    other.must("acquire", place="l506-1")
    try:
        start = time.monotonic()
        done = subprocess.run(
            _pytest([str(ROOT / "suites" / "test_flow_tcp.py"), "--rig", str(rig),
                     "--place", "l506-1"], tmp_path / "run"),
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        waited = time.monotonic() - start
    finally:
        other.must("release", place="l506-1")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]
    assert "waiting for place held: l506-1 by ana-bench on" in out
    assert "still held after 3 s: l506-1 by ana-bench on" in out
    assert waited >= 3
    _free(farm2)


def _wait_locked(lab: Labgrid, place: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while lab.place(place).acquired is None:
        assert proc.poll() is None, f"the run ended before it locked {place}"
        assert time.monotonic() < deadline, f"{place} not locked within 120 s"
        time.sleep(0.3)


#: pytest as a child that takes Ctrl-C even where this run was started with SIGINT ignored
#: (a background job of a shell passes that on).
_INTERRUPTIBLE = ("import signal, sys, pytest; "
                  "signal.signal(signal.SIGINT, signal.default_int_handler); "
                  "sys.exit(pytest.main(sys.argv[1:]))")


def test_ctrl_c_ends_the_run_and_frees_its_place(farm2: farm.Farm, tmp_path: Path) -> None:
    command = _pytest([str(ROOT / "suites" / "test_mconfig.py"), "--rig",
                       str(Path(farm2.folder, "rig.toml")), "--place", "l506-1"],
                      tmp_path / "run")
    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPTIBLE, *command[3:]], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_locked(farm2.labgrid(), "l506-1", proc)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 2, out.decode(errors="replace")[-3000:]  # pytest: interrupted
    assert b"KeyboardInterrupt" in out
    _free(farm2)


def test_a_killed_run_leaves_its_place_free(farm2: farm.Farm, tmp_path: Path) -> None:
    """SIGKILL to the run (no teardown at all): the lease's watchdog releases the place."""
    proc = subprocess.Popen(
        _pytest([str(ROOT / "suites" / "test_mconfig.py"), "--rig",
                 str(Path(farm2.folder, "rig.toml")), "--place", "l506-2"], tmp_path / "run"),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)  # its broker dies with it
    lab = farm2.labgrid()
    try:
        _wait_locked(lab, "l506-2", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 30
    while lab.place("l506-2").acquired is not None:
        assert time.monotonic() < deadline, "the watchdog did not release l506-2 within 30 s"
        time.sleep(0.3)
    _free(farm2)


def _tests_of(run: Path, module: str) -> int:
    for path in (run / "modules").glob("*/results.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data["run"]["identity"].get("module") == module:
            return len(data["tests"])
    return 0


def test_a_vanished_exporter_fails_its_module_as_infrastructure_the_other_goes_on(
        farm2: farm.Farm, tmp_path: Path) -> None:
    """Runs last: it kills the exporter of l506-2 (and, with it, that module's ser2net)."""
    run = tmp_path / "run"
    rig = Path(farm2.folder, "rig.toml")
    proc = subprocess.Popen(
        _pytest([str(ROOT / "suites" / "test_mconfig.py"), "--rig", str(rig), "-n", "2",
                 "--modules", "each"], run),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while _tests_of(run, "l506-2") < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "l506-2 ran no test within 180 s"
            time.sleep(0.2)
        os.killpg(farm2.exporter_group("l506-2"), signal.SIGKILL)
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 1, out[-3000:]
    results = json.loads((run / "results.json").read_text())
    outcomes: dict[str, list[tuple[str, str | None]]] = {"l506-1": [], "l506-2": []}
    for test in results["tests"]:
        outcomes[test["module"]].append((test["outcome"], test["category"]))
    assert len(outcomes["l506-1"]) >= 5
    assert all(o == ("passed", None) for o in outcomes["l506-1"]), outcomes["l506-1"]
    assert len(outcomes["l506-2"]) == len(outcomes["l506-1"])
    passed = [o for o in outcomes["l506-2"] if o[0] == "passed"]
    failed = [o for o in outcomes["l506-2"] if o[0] != "passed"]
    assert len(passed) >= 2 and failed, outcomes["l506-2"]
    assert all(category == "Infrastructure" for _, category in failed), failed
    _free(farm2)
