"""fixtures/report.py: titles, labels and failure messages in the Allure results; step times."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from hil.at.transcript import RX, TX, Transcript
from hil.fixtures.report import command_of, last_exchange, severity_of, wall_ms
from hil.fixtures.spec import Clause

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

TESTS = '''
import time

import pytest

from hil.fixtures.report import timed_step


@pytest.mark.spec("MSUB-5")
def test_ring():
    """The fifth message overwrites slot 0.

    More words that are not the title.
    """
    assert [0, 0, 0, 0] == [0, 1, 2, 3], "the second lap must overwrite slot 0 first"


@pytest.mark.spec("GEN-6")
@pytest.mark.parametrize("value", [2, "a"])
def test_refusal(value):
    """A bad parameter is refused; how is an open point."""


@pytest.mark.spec("DEV-2")
def test_without_a_docstring():
    now = time.monotonic_ns()
    with timed_step("AT+CGMR → OK 50 ms", {"total ms": "50"}, now - 50_000_000, now):
        pass


def test_no_clause():
    """Not tied to a clause."""


@pytest.mark.spec("MSUB-4")
@pytest.mark.spec("MSGGET-1")
def test_two_clauses():
    """Slots are announced and read back."""
'''


@pytest.fixture
def results(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """The Allure results of the sample tests, by test function (and parameter)."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))  # the project's fixtures
    (pytester.path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "clauses.md", pytester.path / "docs" / "clauses.md")
    pytester.makeconftest('pytest_plugins = ["hil.fixtures.dut", "hil.fixtures.spec", '
                          '"hil.fixtures.report"]\n')
    pytester.makeini("[pytest]\nmarkers =\n    spec(clause): a clause\n")
    pytester.makepyfile(test_sample=TESTS)
    out = pytester.path / "allure"
    run = pytester.runpytest_subprocess(
        "-p", "no:pytest_embedded", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:l506",
        f"--rig={ROOT / 'rigs' / 'simulator.toml'}", f"--report-dir={pytester.path / 'run'}",
        f"--alluredir={out}")
    run.assert_outcomes(passed=5, failed=1)
    found = {}
    for path in out.glob("*-result.json"):
        data = json.loads(path.read_text())
        if "fullName" not in data:
            continue  # a traceability gap
        key = data["fullName"].split("#")[-1]
        if data.get("parameters"):
            key += f"[{data['parameters'][0]['value']}]"
        found[key] = data
    return found


def _labels(result: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for label in result["labels"]:
        out.setdefault(label["name"], []).append(label["value"])
    return out


def test_title_says_the_clause_and_what_is_checked(results: dict[str, dict]) -> None:
    assert results["test_ring"]["name"] == "MSUB-5: The fifth message overwrites slot 0"
    assert results["test_refusal[2]"]["name"] == (
        "GEN-6: A bad parameter is refused [2]")  # the first sentence
    assert results["test_without_a_docstring"]["name"] == "DEV-2: without a docstring"
    assert results["test_no_clause"]["name"] == "Not tied to a clause"
    assert results["test_two_clauses"]["name"] == (  # in the order the source names them
        "MSUB-4, MSGGET-1: Slots are announced and read back")
    two = _labels(results["test_two_clauses"])
    assert (sorted(two["feature"]), two["parentSuite"]) == (["AT+MQTTMSGGET", "AT+MSUB"],
                                                            ["AT+MSUB"])


def test_feature_is_the_command_story_the_clause_severity_its_kind(
    results: dict[str, dict],
) -> None:
    ring = _labels(results["test_ring"])
    assert (ring["feature"], ring["story"], ring["severity"]) == (
        ["AT+MSUB"], ["MSUB-5"], ["critical"])
    assert (ring["parentSuite"], ring["suite"]) == (["AT+MSUB"], ["test_sample"])
    assert ring["nodeid"] == ["test_sample.py::test_ring"]
    refusal = _labels(results["test_refusal[2]"])
    assert (refusal["feature"], refusal["severity"]) == (["General"], ["minor"])  # a Q clause


def test_failure_quotes_the_clause_and_drops_pytests_hint(results: dict[str, dict]) -> None:
    message = results["test_ring"]["statusDetails"]["message"]
    assert message.startswith("AssertionError: the second lap must overwrite slot 0 first")
    assert "assert [0, 0, 0, 0] == [0, 1, 2, 3]" in message
    assert "Clause MSUB-5 (S, 2.4 AT+MSUB=<topic>,<qos>): At most 4 messages are stored" \
        in message
    assert "Use -v" not in message


def test_a_step_written_after_the_fact_keeps_its_times(results: dict[str, dict]) -> None:
    step = results["test_without_a_docstring"]["steps"][0]
    assert step["name"] == "AT+CGMR → OK 50 ms"
    assert 49 <= step["stop"] - step["start"] <= 51
    assert step["parameters"] == [{"name": "total ms", "value": "50"}]


def test_last_exchange_quotes_the_command_and_what_came_after() -> None:
    t = Transcript(start_ns=0)
    t.record_sent(b"AT\r", 1, "AT", "command")
    t.record_line(RX, "OK", 2, "final")
    t.record_sent(b"AT+MCONFIG=c,u,s3cret\r", 3, "AT+MCONFIG=c,u,s3cret", "command")
    t.record_line(RX, "AT+MCONFIG=c,u,s3cret", 4, "echo")
    t.record_line(RX, "OK", 5, "final")
    t.record_line(RX, "+MCONFIG: SUCCESS,0", 6, "result")
    t.record_line(TX, "raw data", 7, "data")
    assert last_exchange(t, ["s3cret"]) == [
        "  sent      AT+MCONFIG=c,u,****",
        "  received  AT+MCONFIG=c,u,****   (echo)",
        "  received  OK   (final)",
        "  received  +MCONFIG: SUCCESS,0   (result)",
    ]
    assert last_exchange(Transcript(start_ns=0), []) == []
    silent = Transcript(start_ns=0)
    silent.record_sent(b"AT\r", 1, "AT", "command")
    assert last_exchange(silent, [])[-1] == "  received  nothing"


def test_command_and_severity_of_a_clause() -> None:
    msub = Clause("MSUB-5", "S", "2.4 AT+MSUB=<topic>,<qos>", "The fifth overwrites slot 0.")
    open_s = Clause("MSUB-3", "S", "2.4 AT+MSUB=<topic>,<qos>", "Cut. (Q: the length.)")
    flows = Clause("FLOW-TCP", "S", "Flows (chapter 1)", "The example.")
    bench = Clause("DEV-1", "", "Device (needed by a bench rig, not in the guide)", "Reset.")
    assert [command_of(c) for c in (msub, flows, bench)] == ["AT+MSUB", "Flows", "Device"]
    assert [severity_of(c) for c in (msub, open_s, bench)] == ["critical", "normal", "normal"]


def test_wall_clock_of_a_monotonic_stamp() -> None:
    assert abs(wall_ms(time.monotonic_ns()) - time.time_ns() // 1_000_000) <= 5
