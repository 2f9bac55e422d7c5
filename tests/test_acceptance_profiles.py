"""The acceptance path end to end on the simulator, without hardware.

A subset of the suites (GEN-2's URC spelling, MSUB-3's cut messages, and enough commands for
the latency statistics) runs twice on firmware profile v3.2 and once on v3.3, each a real
pytest run through the pty and mosquitto. v3.2 against itself must show no change; v3.3
against v3.2 exactly what v3.3 changes: the two open points (GEN-2 urc_space, MSUB-3
msub_len) and latency (x1.8 firmware time), with no test changing outcome. A run on
guide-alt (the other permitted reading of every open point) against v3.2 shows its readings
as changed open points, and not one test failing. Then `hil run --baseline` does suites,
comparison and report in one go.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hil import cli
from hil.acceptance.baseline import load
from hil.acceptance.compare import compare
from hil.rig.thresholds import Thresholds

ROOT = Path(__file__).resolve().parent.parent
ALLURE = ROOT / "tools" / "allure" / "node_modules" / ".bin" / "allure"
SUBSET = ["suites/test_general.py", "suites/test_limits.py", "suites/test_status.py",
          "suites/test_msub.py"]
FLOW = "suites/test_general.py::test_result_urc_spelling"
CUT = "suites/test_limits.py::test_incoming_message_cut_to_1360"
#: Commands with a large firmware share of their response time: v3.3 must show them slower.
SLOWER = {"MCONFIG", "MIPSTART", "MCONNECT", "MDISCONNECT", "MIPCLOSE"}

#: The latency comparisons need the machine's time undisturbed by parallel workers.
pytestmark = pytest.mark.timed


def run_suites(folder: Path, profile: str) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *SUBSET, "--sim-profile", profile,
         "--report-dir", str(folder), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("acceptance")
    return {name: run_suites(base / name, profile)
            for name, profile in (("a1", "v3.2"), ("a2", "v3.2"), ("b", "v3.3"),
                                  ("alt", "guide-alt"))}


@pytest.fixture(scope="module")
def baselines(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    into = tmp_path_factory.mktemp("baselines")
    assert cli.main(["baseline", "accept", str(runs["a1"]), "--into", str(into)]) == 0
    return into


#: The thresholds of a shared, loaded host (the default ones suit a quiet bench): a busy
#: machine slows a whole run by up to about x1.6, which the default x1.2 would call a
#: regression of every command.
LOADED_HOST = Thresholds(min_shift_ms=5, min_shift_ratio=2.0)


@pytest.mark.timeout(600)
def test_the_same_profile_twice_shows_no_change(runs, baselines, tmp_path, capsys) -> None:
    rig = tmp_path / "loaded-host.toml"
    rig.write_text('name = "shared host"\n[dut]\nkind = "simulator"\n[acceptance]\n'
                   "min_shift_ms = 5\nmin_shift_ratio = 2.0\n")
    status = cli.main(["compare", str(baselines), str(runs["a2"]), "--rig", str(rig)])
    print(capsys.readouterr().out)
    c = compare(load(baselines), load(runs["a2"]), LOADED_HOST)
    assert c.outcomes == () and c.behaviours == () and c.problems == []
    # Never rejected; inconclusive at most, on a command a few samples cannot settle.
    assert status == c.exit_code
    assert all(s.thin for s in c.latency if s.verdict == "inconclusive"), c.unsettled
    timed = [s for s in c.latency if s.verdict == "unchanged" and not s.thin]
    assert {s.command for s in timed} >= SLOWER  # enough samples to judge them


@pytest.mark.timeout(600)
def test_the_later_profile_shows_exactly_its_differences(runs, baselines, capsys) -> None:
    markdown = runs["b"] / "compare.md"
    assert cli.main(["compare", str(baselines), str(runs["b"]), "--markdown",
                     str(markdown)]) == 1
    print(capsys.readouterr().out)
    c = compare(load(baselines), load(runs["b"]), Thresholds())
    assert c.baseline.revision == "L506_V3.2_MQTT_B20171031"
    assert c.candidate.revision == "L506_V3.3_MQTT_B20180315"
    assert c.outcomes == ()
    changed = [(b.clause, b.test, b.before.follows, b.after.follows) for b in c.behaviours
               if b.before is not None and b.after is not None]
    assert len(changed) == len(c.behaviours)
    assert changed == [("GEN-2", FLOW, True, False)] * 9 + [
        ("MSUB-3", f"{CUT}[1361]", True, False), ("MSUB-3", f"{CUT}[4096]", True, False)]
    assert [b.after.got for b in c.behaviours[:2]] == [
        "+MCONFIG:SUCCESS,0", "+MIPSTART:SUCCESS,0"]
    # A noisy run can blur one command (a burst of slow samples on a busy host); it cannot
    # turn a slowdown into a speed-up or hide it everywhere.
    verdicts = {s.command: s.verdict for s in c.latency}
    regressed = {cmd for cmd, v in verdicts.items() if v == "regression"}
    assert len(regressed & SLOWER) >= len(SLOWER) - 1 and len(regressed) >= 6, verdicts
    assert "improvement" not in verdicts.values()
    assert all(s.p50_shift > 0 for s in c.latency if s.command in SLOWER and s.p50_shift)
    assert c.throughput == ()
    assert "| GEN-2 | test_result_urc_spelling |" in markdown.read_text()


#: Open points on which guide-alt takes the other reading, met by the subset's tests.
ALT_READINGS = {"GEN-2", "GEN-3", "GEN-6", "CEER-1", "MCONNECT-5", "MDISCONNECT-1", "MSUB-3",
                "MPUB-5", "MPUBEX-2", "MPUBEX-3"}


@pytest.mark.timeout(600)
def test_guide_alt_shows_changed_open_points_not_failures(runs, baselines, capsys) -> None:
    assert cli.main(["compare", str(baselines), str(runs["alt"])]) == 1
    out = capsys.readouterr().out
    print(out)
    c = compare(load(baselines), load(runs["alt"]), Thresholds())
    assert c.outcomes == (), "no test may change outcome: open points are recorded, not failed"
    changed = {b.clause for b in c.behaviours if b.gating}
    assert changed >= ALT_READINGS, sorted(changed)
    assert all(b.before.follows and not b.after.follows for b in c.behaviours if b.gating)
    assert c.summary.startswith("NOT ACCEPTABLE: ") and "now failing" not in c.summary
    assert "open-point behaviour(s) changed" in c.summary


@pytest.mark.timeout(600)
@pytest.mark.skipif(not os.access(ALLURE, os.X_OK), reason="the Allure command line is missing")
def test_hil_run_with_a_baseline_runs_compares_and_reports(baselines, tmp_path) -> None:
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "hil.cli", "run", "--reports", str(reports), "--baseline",
         str(baselines), "--sim-profile", "v3.3", FLOW, f"{CUT}[1361]"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert "verdict    NOT ACCEPTABLE: 10 open-point behaviour(s) changed" in done.stdout
    run = (reports / "latest").resolve()
    assert "| MSUB-3 |" in (run / "compare.md").read_text()
    cases = [json.loads(p.read_text())
             for p in (run / "html" / "data" / "test-cases").glob("*.json")]
    [page] = [c for c in cases if c["name"].startswith("Firmware acceptance vs ")]
    assert page["status"] == "failed" and "NOT ACCEPTABLE" in page["descriptionHtml"]
    steps = {s["name"]: s for s in page["testStage"]["steps"]}
    changed = steps["Open points (Q clauses) that changed"]
    assert changed["status"] == "failed"
    assert {s["name"].split(" · ")[0] for s in changed["steps"]} == {"GEN-2", "MSUB-3"}
    assert {a["name"] for a in page["testStage"]["attachments"]} >= {"compare.md",
                                                                     "compare.html"}
