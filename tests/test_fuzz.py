"""`hil fuzz`: the oracles on the fuzz-only firmware bugs, the grammar, a short hunt, the
findings written as a script and a regression test."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hil.fuzz.engine import CaseRun
from hil.fuzz.grammar import Case, Data, PeerPublish, coverage_cells
from hil.fuzz.runner import fuzz
from hil.sim.bugs import BUGS, FUZZ_BUGS
from hil.sim.profiles import PROFILES, V32
from hil.sim.virtual import topic_matches
from tests.fuzzcases import SHOWN_BY
from tests.fuzzcases import cmd as _cmd

ROOT = Path(__file__).resolve().parent.parent


def test_every_fuzz_only_bug_has_a_case_and_is_kept_from_mutants() -> None:
    assert set(SHOWN_BY) == set(FUZZ_BUGS)
    assert len(FUZZ_BUGS) >= 8
    assert not set(FUZZ_BUGS) & set(BUGS)  # `hil mutants` runs BUGS only


@pytest.mark.parametrize("bug", sorted(SHOWN_BY))
def test_oracle_objects_to_the_bug_and_not_to_the_firmware(bug: str) -> None:
    case, oracle = SHOWN_BY[bug]
    violation = CaseRun(V32, frozenset({bug})).run(case)
    assert violation is not None and violation.oracle == oracle, violation
    assert CaseRun(V32, frozenset()).run(case) is None


def test_a_realistic_session_passes_every_oracle() -> None:
    case = Case("subscribed", (
        _cmd("AT+MPUB=a/b,2,0,x", wait=False), _cmd("AT+MPUB=a/b,1,1,a,b, c"),
        PeerPublish("a/b", "p" * 1361, 2), _cmd("AT+MPUBEX=a/b,1,0,4"),
        Data("\r\nAT"), _cmd("AT+MQTTMSGSET=1"), PeerPublish("a/b", "q", 1),
        _cmd("AT+MQTTMSGGET=0"), _cmd("AT+MPUBEX=t,0,0,3"), Data("ab"), _cmd("AT+MQTTCEER"),
        _cmd("AT+MDISCONNECT"), _cmd("AT+MQTTSTATU"), _cmd("AT+MIPCLOSE"),
    ))
    run = CaseRun(V32, frozenset())
    assert run.run(case) is None
    assert run.module.broker.received[-1].payload == b"abA"  # short data: the next line fills it
    assert run.reports == 5  # four reports in auto mode, one slot in manual mode


def test_case_scripts_round_trip_and_the_grammar_covers_every_command() -> None:
    case = SHOWN_BY["urc_lost_in_prompt"][0]
    assert Case.from_dict(json.loads(case.to_json())) == case
    assert case.command_count == 5  # the set-up's four and MPUBEX
    names = {name for name, _ in coverage_cells()}
    assert {"MCONFIG", "MIPSTART", "MCONNECT", "MSUB", "MUNSUB", "MPUB", "MPUBEX",
            "MDISCONNECT", "MIPCLOSE", "MQTTSSL", "MQTTMSGSET", "MQTTMSGGET", "MQTTCEER",
            "MQTTSTATU"} <= names


@pytest.mark.timeout(240)
@pytest.mark.parametrize("bug", ["tab_restarts", "statu_from_ceer"])
def test_a_short_hunt_finds_and_shrinks_the_bug(bug: str) -> None:
    report = fuzz(V32, frozenset({bug}), seconds=90, stop_at_first=True)
    assert report.findings, f"{bug} not found in {report.cases} cases"
    finding = report.findings[0]
    assert finding.violation.oracle == FUZZ_BUGS[bug][0]
    assert finding.case.command_count <= 5
    assert CaseRun(V32, frozenset()).run(finding.case) is None  # the bug, not the harness


def test_cli_writes_a_script_and_a_regression_test(tmp_path: Path) -> None:
    out = tmp_path / "found"
    run = subprocess.run(
        [sys.executable, "-m", "hil.cli", "fuzz", "--bug", "tab_restarts", "--minutes", "1.5",
         "--first", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FINDING after" in run.stdout and "cases/s" in run.stdout
    (script,) = out.glob("*.json")
    (test_file,) = out.glob("test_*.py")
    assert json.loads(script.read_text())["oracle"] == "no restart"
    spec = importlib.util.spec_from_file_location("found_case", test_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    test = next(getattr(module, n) for n in dir(module) if n.startswith("test_"))

    def rig(bugs: tuple[str, ...]) -> SimpleNamespace:
        return SimpleNamespace(dut=SimpleNamespace(kind="simulator", profile="v3.2", bugs=bugs))

    test(rig(()))  # passes on the firmware without the bug
    with pytest.raises(AssertionError, match="no restart"):
        test(rig(("tab_restarts",)))
    replay = [sys.executable, "-m", "hil.cli", "fuzz", "--replay", str(script)]
    assert subprocess.run(replay, cwd=ROOT, capture_output=True, timeout=60).returncode == 0
    again = subprocess.run([*replay, "--bug", "tab_restarts"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 1 and "no restart" in again.stdout


def test_the_virtual_broker_matches_topic_filters_as_mqtt_does() -> None:
    assert topic_matches("a/+", "a/b") and topic_matches("#", "x/y")
    assert topic_matches("a/#", "a") and topic_matches("a/b", "a/b")
    assert not topic_matches("a/+", "a/b/c") and not topic_matches("a/b", "a/c")


def test_a_trailing_blank_of_an_mpub_line_is_an_open_point_not_a_lost_message() -> None:
    """Found by a 30-minute run on the model: `AT+MPUB= a/b, 0, 0, ` publishes an empty
    message (the model trims the line's end); the guide does not say whether it should."""
    case = Case("mqtt", (_cmd("AT+MPUB= a/b, 0, 0, "),))
    run = CaseRun(V32, frozenset())
    assert run.run(case) is None
    assert run.module.broker.received[-1].payload == b""
    lost = Case("mqtt", (_cmd("AT+MPUB=a/b,1,0, "),))
    assert CaseRun(V32, frozenset({"empty_qos1_mpub_dropped"})).run(lost) is not None


@pytest.mark.parametrize("line", ["AT+MPUB=a/b,1,0,a,b, c", "AT+MPUB= a/b, 0, 0, x"])
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_an_mpub_message_passes_on_every_reading(profile: str, line: str) -> None:
    """Open points: the commas belong to the message (v3.2) or end it (guide-alt, MPUB-5),
    the blank before it is the message's or not; the message oracle takes either."""
    case = Case("subscribed", (_cmd(line),))
    assert CaseRun(PROFILES[profile], frozenset()).run(case) is None


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_no_profile_makes_a_finding(profile: str) -> None:
    """Each profile is a reading of the guide: the oracles, which assert only what every
    reading shares, find nothing in any of them (a finding here is the oracle's fault)."""
    report = fuzz(PROFILES[profile], frozenset(), max_cases=1500, first_seed=11)
    assert report.cases == 1500
    assert not report.findings, [f.violation for f in report.findings]
