"""`hil baseline` and `hil compare` on hand-written run folders: the baseline file, finding
baselines, exit status 0/1/2, and the comparison step of `hil run --baseline`."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from hil import cli
from hil.acceptance.baseline import load
from hil.acceptance.gate import gate
from hil.rig.thresholds import Thresholds

ROOT = Path(__file__).resolve().parent.parent
ALLURE = ROOT / "tools" / "allure" / "node_modules" / ".bin" / "allure"
FLOW = "suites/test_general.py::test_result_urc_spelling"
STATUS = "suites/test_status.py::test_status_through_the_flow"
V32 = "L506_V3.2_MQTT_B20171031"
V33 = "L506_V3.3_MQTT_B20180315"
IMEI = "866123045678901"


def write_run(folder: Path, *, revision: str = V32, seed: int = 0, space: str = " ",
              connect_ms: float = 12.0, model: str = "L506") -> Path:
    """A run folder as the plugins leave it (only the fields acceptance reads, and some)."""
    folder.mkdir(parents=True)
    identity = {"model": model, "revision": revision, "CGMR": f"+CGMR: {revision}",
                "imei": IMEI, "ATI": f"Model: {model} / Revision: {revision} / IMEI: {IMEI}"}
    tests = [{"nodeid": FLOW, "outcome": "passed", "clauses": ["GEN-2"]},
             {"nodeid": STATUS, "outcome": "passed", "clauses": ["STATU-1"]}]
    (folder / "results.json").write_text(json.dumps({
        "run": {"started": "2026-01-01T02:00:00+00:00", "finished": "2026-01-01T02:05:00+00:00",
                "rig": "simulator", "dut": "simulator", "profile": "v3.2",
                "identity": identity, "args": ["suites"]},
        "totals": {"passed": 2}, "tests": tests}))
    token = f"{seed:08x}"
    (folder / "characterization.json").write_text(json.dumps({"device": identity, "records": [
        {"clause": "GEN-2", "test": FLOW, "sent": f"AT+MCONFIG=l506-{token}",
         "got": f"+MCONFIG:{space}SUCCESS,0", "decision_ok": space == " ",
         "decision": "Simulator: one space", "note": "", "t": "2026-01-01T02:01:00Z"},
        {"clause": "GEN-2", "test": FLOW, "sent": "AT+MIPSTART=127.0.0.1,4" + str(seed % 10) * 4,
         "got": f"+MIPSTART:{space}SUCCESS,0", "decision_ok": space == " ",
         "decision": "Simulator: one space", "note": "", "t": "2026-01-01T02:01:01Z"},
    ]}))
    rng = random.Random(seed)
    samples = [{"command": command, "test": test, "phase": "call",
                "total_ms": round(centre + abs(rng.gauss(0, 0.3)), 3)}
               for command, centre in (("MCONNECT", connect_ms), ("MQTTSTATU", 5.0))
               for test in (FLOW, STATUS) for _ in range(15)]
    samples.append({"command": "MSUB", "test": FLOW, "phase": "call", "total_ms": None})
    (folder / "timings.json").write_text(json.dumps({"schema": 1, "samples": samples}))
    (folder / "throughput.json").write_text(json.dumps({
        "clause": "MPUBEX-4", "qos0": {"messages_per_s": 7.3, "payload_bytes_per_s": 9928.0,
                                       "publish_latency_ms": {"p50": 119.0},
                                       "line": {"fraction": 0.88}}}))
    return folder


def hil(*args: str | Path) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture
def accepted(tmp_path: Path) -> Path:
    """baselines/ with the v3.2 run accepted."""
    run = write_run(tmp_path / "runs" / "a1")
    assert hil("baseline", "accept", run, "--into", tmp_path / "baselines", "--by", "qa",
               "--note", "shipped") == 0
    return tmp_path / "baselines"


def test_accept_writes_one_documented_file(accepted: Path, tmp_path: Path) -> None:
    path = accepted / "L506" / V32 / "baseline.json"
    text = path.read_text()
    document = json.loads(text)
    assert text == json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    assert document["schema"] == 1 and document["kind"] == "l506-hil firmware baseline"
    assert document["accepted"]["by"] == "qa" and document["accepted"]["note"] == "shipped"
    assert document["accepted"]["source"] == str((tmp_path / "runs" / "a1").resolve())
    assert document["firmware"]["revision"] == V32
    assert IMEI not in text and "86612304*******" in document["firmware"]["imei"]
    gen2 = document["characterization"]["GEN-2"]
    assert [r["sent"] for r in gen2] == ["AT+MCONFIG=l506-<id>", "AT+MIPSTART=127.0.0.1,<port>"]
    assert "t" not in gen2[0]
    assert document["tests"][FLOW] == {"outcome": "passed", "clauses": ["GEN-2"]}
    assert len(document["latency"]["MCONNECT"][FLOW]) == 15
    assert document["latency"]["MCONNECT"][FLOW] == sorted(document["latency"]["MCONNECT"][FLOW])
    assert "MSUB" not in document["latency"]  # a sample without a total is no sample
    assert document["throughput"] == {"qos0": {
        "messages_per_s": 7.3, "payload_bytes_per_s": 9928.0, "publish_latency_p50_ms": 119.0,
        "line_fraction": 0.88}}


def test_a_baseline_is_found_by_file_folder_model_or_root(accepted: Path) -> None:
    folder = accepted / "L506" / V32
    labels = {load(p).label for p in (folder / "baseline.json", folder, accepted / "L506",
                                      accepted)}
    assert len(labels) == 1 and next(iter(labels)).startswith(f"{V32} (baseline accepted ")


def test_the_latest_accepted_baseline_of_a_model_is_current(accepted: Path, tmp_path: Path,
                                                           capsys) -> None:
    later = write_run(tmp_path / "runs" / "b", revision=V33, seed=3)
    assert hil("baseline", "accept", later, "--into", accepted) == 0
    assert load(accepted / "L506").revision == V33
    capsys.readouterr()
    assert hil("baseline", "show", accepted) == 0
    shown = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in shown] == [V32, V33]
    assert shown[1].endswith("(current)") and not shown[0].endswith("(current)")
    assert hil("baseline", "show", accepted / "L506" / V32) == 0
    detail = capsys.readouterr().out
    assert "accepted" in detail and "by qa: shipped" in detail
    assert "GEN-2 (2/2 as decided)" in detail and "60 samples of 2 commands" in detail


def test_accepting_twice_needs_force(accepted: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "runs" / "a1"
    assert hil("baseline", "accept", run, "--into", accepted) == 2
    assert "--force" in capsys.readouterr().err
    assert hil("baseline", "accept", run, "--into", accepted, "--force") == 0


def test_a_run_without_firmware_identity_is_not_accepted(tmp_path: Path, capsys) -> None:
    run = write_run(tmp_path / "runs" / "lost")
    results = json.loads((run / "results.json").read_text())
    results["run"]["identity"] = {}
    (run / "results.json").write_text(json.dumps(results))
    (run / "characterization.json").unlink()
    assert hil("baseline", "accept", run, "--into", tmp_path / "baselines") == 2
    assert "no ATI/CGMR identity" in capsys.readouterr().err
    assert not (tmp_path / "baselines").exists()


def test_same_firmware_again_compares_clean(accepted: Path, tmp_path: Path, capsys) -> None:
    again = write_run(tmp_path / "runs" / "a2", seed=1)
    assert hil("compare", accepted, again) == 0
    out = capsys.readouterr().out
    assert out.startswith("Accepted: no test newly failing")
    assert ("verdict    ACCEPTABLE: no change; 2 tests compared, 2 of 2 commands' latency "
            "judged (exit 0)") in out


def test_a_changed_firmware_fails_with_markdown_and_a_report_page(
    accepted: Path, tmp_path: Path, capsys
) -> None:
    later = write_run(tmp_path / "runs" / "b", revision=V33, seed=2, space="", connect_ms=18)
    md, results = tmp_path / "compare.md", tmp_path / "allure-results"
    assert hil("compare", accepted, later, "--markdown", md, "--allure-results", results) == 1
    out = capsys.readouterr().out
    assert "NOT ACCEPTABLE: 2 open-point behaviour(s) changed, 1 latency regression(s)" in out
    assert md.read_text().startswith(f"# Firmware acceptance: {V33} (run b) vs {V32}")
    [result] = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert result["status"] == "failed"


def test_thresholds_come_from_the_rig_file(accepted: Path, tmp_path: Path) -> None:
    later = write_run(tmp_path / "runs" / "b", seed=2, connect_ms=18)
    rig = tmp_path / "rig.toml"
    rig.write_text('name = "lenient"\n[dut]\nkind = "simulator"\n[acceptance]\n'
                   "min_shift_ratio = 2.0\n")
    assert hil("compare", accepted, later) == 1
    assert hil("compare", accepted, later, "--rig", rig) == 0


def _corrupt(tmp_path: Path, name: str, text: str) -> Path:
    run = write_run(tmp_path / "runs" / name.replace(".", "_"))
    (run / name).write_text(text)
    return run


@pytest.mark.parametrize(("target", "words"), [
    ("missing", "no such file or folder"),
    ("empty-folder", "not a run folder"),
    ("results.json", "not valid JSON"),
    ("timings.json", "timings.json: not valid JSON"),
    ("characterization.json", "records must be a list"),
    ("schema", "baseline schema 2"),
    ("not-a-baseline", "neither a baseline.json nor a run's results.json"),
])
def test_missing_or_corrupt_inputs_exit_2(
    accepted: Path, tmp_path: Path, capsys, target: str, words: str
) -> None:
    run = write_run(tmp_path / "runs" / "ok", seed=1)
    bad: Path
    if target == "missing":
        bad = tmp_path / "nowhere"
    elif target == "empty-folder":
        bad = tmp_path / "empty"
        bad.mkdir()
    elif target == "results.json":
        bad = _corrupt(tmp_path, target, '{"run": {"started": ')
    elif target == "timings.json":
        bad = _corrupt(tmp_path, target, "\x00\x00")
    elif target == "characterization.json":
        bad = _corrupt(tmp_path, target, '{"records": {}}')
    elif target == "schema":
        path = accepted / "L506" / V32 / "baseline.json"
        document = json.loads(path.read_text())
        document["schema"] = 2
        bad = tmp_path / "future.json"
        bad.write_text(json.dumps(document))
    else:
        bad = tmp_path / "other.json"
        bad.write_text("{}")
    capsys.readouterr()
    assert hil("compare", bad, run) == 2
    assert hil("compare", accepted, bad) == 2 or target == "schema"
    err = capsys.readouterr().err
    assert err.startswith("hil compare: cannot compare:") and words in err


def test_other_model_bad_rig_and_mixed_models_exit_2(accepted: Path, tmp_path: Path,
                                                      capsys) -> None:
    other = write_run(tmp_path / "runs" / "l716", model="L716", revision="L716_V1")
    assert hil("compare", accepted, other) == 2
    assert "compare firmwares of one model" in capsys.readouterr().err
    rig = tmp_path / "bad.toml"
    rig.write_text('name = "x"\n[dut]\nkind = "simulator"\n[acceptance]\nalpha = 3\n')
    assert hil("compare", accepted, write_run(tmp_path / "runs" / "c"), "--rig", rig) == 2
    assert "[acceptance]" in capsys.readouterr().err
    assert hil("baseline", "accept", other, "--into", accepted) == 0
    assert hil("compare", accepted, tmp_path / "runs" / "c") == 2
    assert "several models (L506, L716)" in capsys.readouterr().err


def test_gate_writes_compare_md_and_the_report_page(accepted: Path, tmp_path: Path) -> None:
    run = write_run(tmp_path / "runs" / "nightly", revision=V33, seed=2, space="")
    assert gate(accepted, run, Thresholds()) == 1
    assert "| GEN-2 |" in (run / "compare.md").read_text()
    [result] = [json.loads(p.read_text()) for p in (run / "allure-results").glob("*-result.json")]
    assert result["status"] == "failed" and result["name"].startswith("Firmware acceptance vs ")


def test_gate_without_a_baseline_is_broken(tmp_path: Path, capsys) -> None:
    run = write_run(tmp_path / "runs" / "nightly")
    assert gate(tmp_path / "nowhere", run, Thresholds()) == 2
    assert "cannot compare" in (run / "compare.md").read_text()
    [result] = [json.loads(p.read_text()) for p in (run / "allure-results").glob("*-result.json")]
    assert result["status"] == "broken" and "no such file" in result["statusDetails"]["message"]


@pytest.mark.skipif(not os.access(ALLURE, os.X_OK), reason="the Allure command line is missing")
def test_hil_run_refuses_a_bad_baseline_before_running(tmp_path: Path, capsys) -> None:
    assert hil("run", "--reports", tmp_path / "reports", "--baseline", tmp_path / "nowhere") == 8
    assert "--baseline" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


@pytest.mark.timeout(300)
@pytest.mark.skipif(not os.access(ALLURE, os.X_OK), reason="the Allure command line is missing")
def test_hil_run_says_could_not_compare_with_a_status_of_its_own(tmp_path: Path,
                                                                  capsys) -> None:
    """The suites pass, the baseline reads, but it is another model's: 8, not pytest's 2."""
    other = write_run(tmp_path / "runs" / "l716", model="L716", revision="L716_V1")
    accepted = tmp_path / "baselines"
    assert hil("baseline", "accept", other, "--into", accepted) == 0
    status = hil("run", "--reports", tmp_path / "reports", "--baseline", accepted,
                 "suites/test_general.py::test_commands_end_in_ok_or_error")
    out = capsys.readouterr().out
    assert status == 8, out[-3000:]
    assert "pytest exit status 0" in out
    run = (tmp_path / "reports" / "latest").resolve()
    assert "cannot compare" in (run / "compare.md").read_text()
