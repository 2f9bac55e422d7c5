"""Recovery and fault reporting, end to end: a run whose tests break the bench goes on.

One pytest run (a child process, the real plugins, the simulator, a real mosquitto) of
tests that fail the ways a night on a bench fails: power cut under a command, broker killed,
port vanishing, module hanging, a wrong answer, a harness bug, and a module that never
comes back. Each failure must be reported as what it is, the test after each must pass,
and once the module is lost the rest must error at once with "DUT lost".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.masking import scan

ROOT = Path(__file__).resolve().parent.parent

RIG = """
name = "recovery test"
[dut]
kind = "simulator"
time_scale = 0.05
boot_timeout_s = 3
ready_timeout_s = 3
[recovery]
probe_timeout_s = 1
[labels]
purpose = "tests/test_recovery.py"
"""

INNER = '''
import threading

from hil.l506.types import MqttStatus


def _connect(dut, broker, client_id):
    at = dut.at
    assert at.mconfig(client_id).ok
    assert at.mipstart(dut.broker_host, broker.plain_port).ok
    assert at.mconnect(1, 60).ok


def test_01_power_cut_under_a_command(dut, broker):
    dut.at.mconfig("inner-power")
    dut.power.off()  # the bench's supply fails; the test does not expect it
    dut.at.mipstart(dut.broker_host, broker.plain_port)


def test_02_after_power_cut(dut):
    assert dut.at.mqttstatu().value == MqttStatus.NO_CONNECTION


def test_03_broker_killed_under_a_test(dut, broker, peer):
    peer.subscribe("inner/broker")
    _connect(dut, broker, "inner-broker")
    broker.kill()
    dut.at.mpub("inner/broker", 0, 0, "lost")
    peer.expect("inner/broker", timeout=0.5)


def test_04_after_broker(dut, broker):
    _connect(dut, broker, "inner-after-broker")


def test_05_port_vanishes(dut):
    dut.faults.unplug()
    threading.Timer(0.3, dut.faults.plug).start()
    dut.at.mqttstatu()


def test_06_after_port(dut):
    assert dut.at.at().ok


def test_07_module_hangs(dut):
    sim = dut.faults
    sim._call(lambda: setattr(sim.firmware, "ready", False))  # firmware stops answering
    dut.at.at(timeout=0.5)


def test_08_after_hang(dut):
    assert dut.at.at().ok


def test_09_wrong_answer(dut):
    assert dut.at.mqttstatu().value == MqttStatus.MQTT_CONNECTED, "status after nothing"


def test_10_harness_bug(dut):
    {}["no such key"]


def test_11_password_in_a_failure(dut, broker):
    password = broker.users["hil"]
    dut.at.mconfig("inner-secret", "hil", password)
    dut.at.raw(f"AT+MCONFIG=again,hil,{password}")
    print("captured output with", password)
    assert password == "", f"the password was {password}"


def test_12_module_dies_for_good(dut):
    dut.power.on = lambda: None  # it will never switch on again
    dut.power.off()
    dut.at.at()


def test_13_after_death(dut):
    pass


def test_14_after_death_too(dut):
    pass
'''

EXPECTED = {
    "test_01_power_cut_under_a_command": ("failed", "Infrastructure"),
    "test_02_after_power_cut": ("passed", None),
    "test_03_broker_killed_under_a_test": ("failed", "Infrastructure"),
    "test_04_after_broker": ("passed", None),
    "test_05_port_vanishes": ("failed", "Infrastructure"),
    "test_06_after_port": ("passed", None),
    "test_07_module_hangs": ("failed", "Firmware defect"),
    "test_08_after_hang": ("passed", None),
    "test_09_wrong_answer": ("failed", "Firmware defect"),
    "test_10_harness_bug": ("failed", "Harness error"),
    "test_11_password_in_a_failure": ("failed", "Firmware defect"),
    "test_12_module_dies_for_good": ("failed", "Infrastructure"),
    "test_13_after_death": ("error", "DUT lost"),
    "test_14_after_death_too": ("error", "DUT lost"),
}


@pytest.fixture(scope="module")
def inner_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("recovery")
    (base / "test_inner.py").write_text(INNER)
    (base / "rig.toml").write_text(RIG)
    run = base / "run"
    secrets = base / "secrets.json"
    command = [
        sys.executable, "-m", "pytest", str(base / "test_inner.py"),
        "-c", str(ROOT / "pytest.ini"), "--rootdir", str(base),
        "-p", "no:l506", "-p", "hil.fixtures.dut", "-p", "hil.fixtures.results",
        "-p", "hil.fixtures.broker",
        "-p", "hil.fixtures.peer",
        "--rig", str(base / "rig.toml"), "--report-dir", str(run),
        "--alluredir", str(run / "allure-results"), "--junitxml", str(run / "junit.xml"),
        "--secrets-file", str(secrets), "-o", "timeout=30",
    ]
    start = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=150,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), check=False)
    return {
        "status": done.returncode,
        "output": done.stdout + done.stderr,
        "seconds": time.monotonic() - start,
        "run": run,
        "results": json.loads((run / "results.json").read_text()),
        "secrets": json.loads(secrets.read_text()),
    }


def _tests(inner_run: dict) -> dict[str, dict]:
    return {t["nodeid"].split("::")[-1]: t for t in inner_run["results"]["tests"]}


def test_the_run_goes_on_and_fails(inner_run: dict) -> None:
    assert inner_run["status"] == 1, inner_run["output"][-3000:]
    assert set(_tests(inner_run)) == set(EXPECTED), inner_run["output"][-3000:]
    assert inner_run["seconds"] < 90


def test_each_failure_is_reported_as_what_it_is(inner_run: dict) -> None:
    tests = _tests(inner_run)
    seen = {name: (t["outcome"], t["category"]) for name, t in tests.items()}
    assert seen == EXPECTED, inner_run["output"][-4000:]


def test_broker_death_is_named_in_the_message(inner_run: dict) -> None:
    message = _tests(inner_run)["test_03_broker_killed_under_a_test"]["message"]
    assert message.startswith("hil.fixtures.results.BenchFault: the broker died during the test")
    assert "PeerError" in message  # what the test itself saw


def test_after_the_module_is_lost_the_rest_error_at_once(inner_run: dict) -> None:
    tests = _tests(inner_run)
    lost = tests["test_13_after_death"]["message"]
    assert "DUT lost" in lost and "power cycle failed" in lost
    assert tests["test_14_after_death_too"]["message"] == lost
    assert tests["test_14_after_death_too"]["duration_s"] < 0.5


def test_recovery_is_recorded(inner_run: dict) -> None:
    junit = (inner_run["run"] / "junit.xml").read_text()
    assert 'name="recovery" value="power cycle"' in junit
    transcript = next((inner_run["run"] / "transcripts").glob("*test_02_after_power_cut*"))
    log = (transcript / "transcript.log").read_text()
    assert "recovery: previous test failed" in log and "opened" in log


def test_allure_gets_categories_environment_and_the_relabelled_failure(inner_run: dict) -> None:
    results = inner_run["run"] / "allure-results"
    categories = json.loads((results / "categories.json").read_text())
    assert [c["name"] for c in categories] == [
        "DUT lost", "Infrastructure", "Firmware defect", "Harness error"]
    env = (results / "environment.properties").read_text()
    assert "Rig=recovery test" in env and "IMEI=86612304*******" in env
    assert "Label\\ purpose=tests/test_recovery.py" in env
    messages = {}
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text())
        messages[data["name"]] = (data.get("statusDetails") or {}).get("message", "")
    assert messages["test_03_broker_killed_under_a_test"].startswith(
        "hil.fixtures.results.BenchFault")
    assert messages["test_13_after_death"].startswith("hil.dut.recovery.DutLost: DUT lost")


def test_no_password_anywhere_in_the_run_folder(inner_run: dict) -> None:
    secrets = inner_run["secrets"]
    assert len(secrets) == 2  # the broker's two users' passwords
    assert scan(inner_run["run"], secrets) == []
    failure = _tests(inner_run)["test_11_password_in_a_failure"]["message"]
    assert "the password was ****" in failure
    tx = next((inner_run["run"] / "transcripts").glob("*test_11*")) / "tx.bin"
    assert b"AT+MCONFIG=again,hil," in tx.read_bytes()
