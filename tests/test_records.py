"""The files of a run folder as records (hil/report/records.py): every kind written and read
back the same, today's files without a schema read as schema 1, a newer schema refused, and
each malformed field refused with the file and the field named."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hil.reliability.inputs import write_run
from hil.report.records import (
    SCHEMA,
    Characterization,
    ClauseTest,
    ClauseVerdict,
    CommandFigures,
    ModuleSummary,
    OpenPointRecord,
    OverBudget,
    Record,
    RecordError,
    ResultRow,
    RunInfo,
    RunResults,
    Sample,
    Throughput,
    ThroughputSeries,
    Timings,
    TraceabilityMatrix,
    read_characterization,
    read_optional,
    read_results,
    read_throughput,
    read_timings,
    read_traceability,
    write_record,
)

IDENTITY = {"model": "L506", "revision": "L506_V3.2", "imei": "86612304*******"}

RESULTS = RunResults(
    run=RunInfo(started="2026-01-01T02:00:00+00:00", finished="2026-01-01T02:09:00+00:00",
                rig="bench-3", rig_file="rigs/bench-3.toml", labels={"bench": "3"},
                dut="serial", port="/dev/ttyUSB0", latency_timer="1 ms", profile=None,
                identity=IDENTITY, harness="0.1.0 (abc1234)", python="3.11.2",
                args=("suites", "-x"), module="slot-1", module_count=2),
    tests=(ResultRow("suites/test_a.py::test_a", "passed", 1.25, ("STATU-1",)),
           ResultRow("suites/test_b.py::test_b", "failed", 0.5, ("MSUB-5", "MSUB-4"),
                      category="Firmware defect", message="AssertionError: x", module="slot-2")),
    totals={"passed": 1, "failed": 1},
    modules=(ModuleSummary("slot-1", "modules/slot-1", place="slot-1", firmware="V3.2",
                           imei="866*", totals={"passed": 1}, finished="now"),),
)
CHARACTERIZATION = Characterization(
    device={"kind": "simulator", **IDENTITY},
    records=(OpenPointRecord("GEN-2", True, test="t::a", sent="AT+MCONFIG=x", got="+MCONFIG:",
                             decision="one space", note="n", t="2026-01-01T02:01:00Z"),
             OpenPointRecord("GEN-6", False, module="slot-2")),
)
TIMINGS = Timings(
    samples=(Sample("MPUBEX", "t::a", "call", 1.5, 0.25, 3.0, 4.0, 9.5, 9.5,
                    final="OK", result="+MPUBEX: SUCCESS", data_bytes=1360, qos=1,
                    budget_ms=5.0, over_budget=True, text="AT+MPUBEX=t,1,0,1360"),
             Sample("AT", module="slot-2")),
    commands={"MPUBEX": CommandFigures({"total": {"n": 1, "p50": 9.5, "p95": 9.5}}, 5.0),
              "AT": CommandFigures({"total": {"n": 1, "p50": 1.0}})},
    over_budget=(OverBudget("MPUBEX", "t::a", "AT+MPUBEX=t,1,0,1360", 9.5, 5.0),),
    generated="2026-01-01T02:09:00+00:00", dut="simulator", rig="simulator",
    firmware="L506_V3.2", latency_model="simulator v3.2", baud=115200, tests=1,
    extra={"budgets": {"AT": 300}, "units": "ms"},
)
TRACEABILITY = TraceabilityMatrix(
    clauses_file="clauses.md", summary={"pass": 1, "GAP": 1},
    clauses=(ClauseVerdict("MSUB-5", "pass", kind="S", section="2.4", text="slot 0",
                           scope="", open_point=True, unchecked=("a part",),
                           tests=(ClauseTest("t::a", "passed", "", True, ("lap 2",)),)),
             ClauseVerdict("GEN-7", "GAP")),
)
THROUGHPUT = Throughput(
    series={"qos0": ThroughputSeries(7.3, messages=20, seconds=2.7, payload_bytes_per_s=9928.0,
                                     publish_latency_ms={"n": 20, "p50": 120.0},
                                     end_to_end_latency_ms=None,
                                     line={"baud": 115200, "fraction": 0.88}, duplicates=0)},
    clause="MPUBEX-4", messages_per_qos=20, message_bytes=1360,
)

KINDS: list[tuple[str, Record, Callable[[Path], Any]]] = [
    ("results.json", RESULTS, read_results),
    ("characterization.json", CHARACTERIZATION, read_characterization),
    ("timings.json", TIMINGS, read_timings),
    ("traceability.json", TRACEABILITY, read_traceability),
    ("throughput.json", THROUGHPUT, read_throughput),
]


@pytest.mark.parametrize(("name", "record", "reader"), KINDS, ids=[k[0] for k in KINDS])
def test_every_kind_reads_back_as_written(tmp_path: Path, name: str, record: Record,
                                          reader: Callable[[Path], Any]) -> None:
    path = write_record(tmp_path / name, record)
    assert json.loads(path.read_text())["schema"] == SCHEMA
    assert reader(path) == record
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_a_run_of_module_identities_reads_back(tmp_path: Path) -> None:
    farm = RunResults(run=RunInfo(rig="farm", module_identities={
        "slot-1": {"revision": "V3.2"}, "slot-2": {"revision": "V3.3"}}))
    assert read_results(write_record(tmp_path / "results.json", farm)) == farm


def test_a_mask_is_applied_before_the_file_is_written(tmp_path: Path) -> None:
    run = RunResults(run=RunInfo(args=("--password", "hunter2")))
    path = write_record(tmp_path / "results.json", run,
                        mask=lambda text: text.replace("hunter2", "****"))
    assert "hunter2" not in path.read_text()
    assert read_results(path).run.args == ("--password", "****")


def test_todays_files_without_a_schema_are_schema_1(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")  # as the plugins wrote them before `schema` existed
    results = read_results(run / "results.json")
    assert results.schema == 1 and results.tests[0].clauses == ("STATU-1",)
    assert results.run.identity["model"] == "L506"
    assert read_characterization(run / "characterization.json").records[0].decision_ok
    assert len(read_timings(run / "timings.json").samples) == 12
    assert read_throughput(run / "throughput.json").figures() == {
        "qos0": {"messages_per_s": 7.3, "line_fraction": 0.88}}


@pytest.mark.parametrize(("name", "record", "reader"), KINDS, ids=[k[0] for k in KINDS])
def test_a_newer_schema_is_refused_naming_the_file_and_both(
        tmp_path: Path, name: str, record: Record, reader: Callable[[Path], Any]) -> None:
    path = tmp_path / name
    path.write_text(json.dumps({**record.to_json(), "schema": SCHEMA + 1}))
    with pytest.raises(RecordError) as refused:
        reader(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ")
    assert f"schema {SCHEMA + 1}" in message and f"schema {SCHEMA} " in message


@pytest.mark.parametrize("schema", [0, "1", True, None, 1.5])
def test_a_schema_that_is_no_version_is_refused(tmp_path: Path, schema: object) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**RESULTS.to_json(), "schema": schema}))
    with pytest.raises(RecordError, match="schema must be a whole number"):
        read_results(path)


def _set(document: dict[str, Any], where: str, value: object) -> dict[str, Any]:
    """The document with the field at `where` (`tests.1.clauses`) set, or deleted (...)."""
    keys = [int(k) if k.isdigit() else k for k in where.split(".")]
    parent: Any = document
    for key in keys[:-1]:
        parent = parent[key]
    if value is ...:
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = value
    return document


MALFORMED = [
    ("results.json", "run", 7, "run must be a table"),
    ("results.json", "run", ..., "has no run metadata"),
    ("results.json", "tests", ..., "has no list of tests"),
    ("results.json", "tests", {}, "tests must be a list"),
    ("results.json", "tests.1", "x", "tests[1] must be a table"),
    ("results.json", "tests.1.nodeid", ..., "tests[1].nodeid is missing"),
    ("results.json", "tests.1.outcome", 3, "tests[1].outcome must be a string"),
    ("results.json", "tests.1.clauses", 7, "tests[1].clauses must be a list of strings"),
    ("results.json", "tests.1.clauses", [1], "tests[1].clauses must be a list of strings"),
    ("results.json", "tests.0.duration_s", "1 s", "tests[0].duration_s must be a number"),
    ("results.json", "tests.0.duration_s", True, "tests[0].duration_s must be a number"),
    ("results.json", "tests.1.message", [], "tests[1].message must be a string or null"),
    ("results.json", "run.identity", {"model": {}}, "run.identity must be a table of strings"),
    ("results.json", "run.args", "suites", "run.args must be a list of strings"),
    ("results.json", "run.finished", 1, "run.finished must be a string or null"),
    ("results.json", "run.modules", "two", "run.modules must be a table"),
    ("results.json", "run.modules", {"a": 1}, "run.modules.a must be a table"),
    ("results.json", "run.modules", {"a": None}, "run.modules.a must be a table"),
    ("results.json", "totals", {"passed": "1"}, "totals must be a table of numbers"),
    ("results.json", "totals", {"passed": 1.5}, "totals must be a table of whole numbers"),
    ("results.json", "modules.0.folder", None, "modules[0].folder must be a string"),
    ("characterization.json", "records", ..., "has no list of records"),
    ("characterization.json", "records", {}, "records must be a list"),
    ("characterization.json", "records.0.clause", 2, "records[0].clause must be a string"),
    ("characterization.json", "records.0.decision_ok", "yes",
     "records[0].decision_ok must be true or false"),
    ("characterization.json", "records.0.decision_ok", ..., "records[0].decision_ok is missing"),
    ("characterization.json", "device", [], "device must be a table of strings"),
    ("timings.json", "samples", "x", "samples must be a list"),
    ("timings.json", "samples.0.command", None, "samples[0].command must be a string"),
    ("timings.json", "samples.0.total_ms", "9", "samples[0].total_ms must be a number or null"),
    ("timings.json", "samples.0.qos", 1.5, "samples[0].qos must be a whole number or null"),
    ("timings.json", "samples.0.over_budget", 1, "samples[0].over_budget must be true or false"),
    ("timings.json", "commands.MPUBEX.total", {"p95": "x"},
     "commands.MPUBEX.total must be a table of numbers"),
    ("timings.json", "commands.AT", [], "commands.AT must be a table"),
    ("timings.json", "over_budget.0.command", ..., "over_budget[0].command is missing"),
    ("timings.json", "rig", 3, "rig must be a string or null"),
    ("traceability.json", "clauses.0.verdict", ..., "clauses[0].verdict is missing"),
    ("traceability.json", "clauses.0.tests.0.asserts", "no",
     "clauses[0].tests[0].asserts must be true or false"),
    ("traceability.json", "summary", {"pass": "1"}, "summary must be a table of numbers"),
    ("throughput.json", "qos0", 7, "qos0 must be a table"),
    ("throughput.json", "qos0", None, "qos0 must be a table"),
    ("throughput.json", "qos0.messages_per_s", {"x": 1}, "qos0.messages_per_s must be a number"),
    ("throughput.json", "qos0.messages_per_s", ..., "qos0.messages_per_s is missing"),
    ("throughput.json", "qos0.line", {"fraction": "high"}, "qos0.line must be a table of numbers"),
]


@pytest.mark.parametrize(("name", "where", "value", "words"), MALFORMED,
                         ids=[f"{m[0]}:{m[1]}={m[2]!r}" for m in MALFORMED])
def test_each_malformed_field_is_refused_naming_file_and_field(
        tmp_path: Path, name: str, where: str, value: object, words: str) -> None:
    record, reader = next((r, read) for n, r, read in KINDS if n == name)
    path = tmp_path / name
    path.write_text(json.dumps(_set(record.to_json(), where, value)))
    with pytest.raises(RecordError) as refused:
        reader(path)
    assert str(refused.value).startswith(f"{path}: ") and words in str(refused.value)
    assert "\n" not in str(refused.value)  # one line, for the command to print


@pytest.mark.parametrize(("content", "words"), [
    (b"", "not valid JSON"), (b'{"run": {', "not valid JSON"), (b"\xff\xfe", "not valid JSON"),
    (b"[]", "the file must be a table"), (b"null", "the file must be a table"),
])
def test_a_file_that_is_no_table_is_refused(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(content)
    with pytest.raises(RecordError, match=words) as refused:
        read_results(path)
    assert refused.value.path == path


def test_missing_and_folder_in_place_of_a_file(tmp_path: Path) -> None:
    assert read_optional(read_timings, tmp_path / "timings.json") is None
    with pytest.raises(RecordError, match="no such file"):
        read_timings(tmp_path / "timings.json")
    (tmp_path / "timings.json").mkdir()
    with pytest.raises(RecordError, match="is a folder, not a file"):
        read_optional(read_timings, tmp_path / "timings.json")


def test_records_load_nothing_of_the_bench() -> None:
    """The records are data: reading them loads no port, rig, device or AT engine."""
    code = ("import sys, hil.report.records; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'serial' or "
            "m.startswith(('hil.dut', 'hil.rig', 'hil.at', 'hil.acceptance', 'hil.cli'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
