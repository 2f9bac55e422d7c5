"""Clause parsing and the traceability matrix (fixtures/spec.py), without a DUT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.spec import (
    Row,
    RunOutcome,
    Traceability,
    clauses_path,
    load_clauses,
    marked_in_sources,
    parse_clauses,
)

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = """\
# title

## General
- **GEN-1 (S)** A command ends by CR.
- **GEN-2 (Q)** Spaces vary. Simulator: one space.

## Flows
- **FLOW-SSL (S)** The same with SSL on.
  **(Q)** 1.2 writes `AT+MMQTTSSL=1`; treat it as a typo.
- **MCONNECT-3 (S)** Keeps the link alive (PINGREQ); idle survives.
- **MSUB-3 (S)** At most 1360 bytes. (Q: the length; simulator: the original length.)

## Device
- **DEV-1** Power-on and reset.
"""


def test_clauses_are_parsed_with_kind_section_and_continuation() -> None:
    clauses = {c.id: c for c in parse_clauses(SAMPLE)}
    assert list(clauses) == ["GEN-1", "GEN-2", "FLOW-SSL", "MCONNECT-3", "MSUB-3", "DEV-1"]
    assert clauses["GEN-1"].kind == "S" and clauses["DEV-1"].kind == ""
    assert clauses["FLOW-SSL"].section == "Flows"
    assert "MMQTTSSL" in clauses["FLOW-SSL"].text


def test_open_points_and_decisions() -> None:
    clauses = {c.id: c for c in parse_clauses(SAMPLE)}
    assert [c for c in clauses if clauses[c].open_point] == ["GEN-2", "FLOW-SSL", "MSUB-3"]
    assert clauses["GEN-2"].decision == "Simulator: one space"
    assert clauses["MSUB-3"].decision == "simulator: the original length"
    assert clauses["GEN-1"].decision == ""


def test_the_real_clause_list_is_found_and_complete() -> None:
    path = clauses_path(ROOT)
    assert path.is_file()
    ids = [c.id for c in load_clauses(ROOT)]
    assert len(ids) == len(set(ids)) >= 50
    assert {"GEN-1", "FLOW-TCP", "MSUB-5", "DEV-2"} <= set(ids)


def test_the_vendored_copy_is_verbatim() -> None:
    shared = (ROOT / "../shared/spec/clauses.md").resolve()
    if not shared.is_file():
        pytest.skip("no shared clauses.md beside the project")
    assert (ROOT / "docs" / "clauses.md").read_text() == shared.read_text()


def test_markers_in_sources_are_found(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        '@pytest.mark.spec("GEN-1")\n@pytest.mark.spec("MSUB-3", "DEV-1")\ndef test_a(): ...\n'
    )
    assert marked_in_sources(tmp_path) == {"GEN-1", "MSUB-3", "DEV-1"}


def _outcome(outcome: str) -> RunOutcome:
    t = RunOutcome("suites/test_x.py::test_a", ["GEN-1"])
    t.outcome = outcome
    return t


@pytest.mark.parametrize(
    ("outcomes", "verdict"),
    [
        ([], "GAP"),
        (["passed", "passed"], "pass"),
        (["passed", "failed"], "FAIL"),
        (["skipped", "passed"], "pass"),
        (["skipped"], "skipped"),
        (["error"], "FAIL"),
    ],
)
def test_row_verdicts(outcomes: list[str], verdict: str) -> None:
    clause = parse_clauses(SAMPLE)[0]
    row = Row(clause, [_outcome(o) for o in outcomes])
    assert row.verdict == verdict


def test_a_clause_with_tests_that_did_not_run_is_not_a_gap() -> None:
    clause = parse_clauses(SAMPLE)[0]
    assert Row(clause, [], marked_somewhere=True).verdict == "not run"


def test_matrix_files_show_gaps_and_allure_gets_a_result_per_gap(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "clauses.md").write_text(SAMPLE)
    (root / "suites").mkdir()
    trace = Traceability(root, load_clauses(root))
    trace.tests["suites/test_x.py::test_a"] = RunOutcome("suites/test_x.py::test_a", ["GEN-1"])
    trace.tests["suites/test_x.py::test_a"].outcome = "passed"
    out, allure_dir = tmp_path / "run", tmp_path / "allure"
    trace.write(out, str(allure_dir))
    data = json.loads((out / "traceability.json").read_text())
    verdicts = {c["id"]: c["verdict"] for c in data["clauses"]}
    assert verdicts["GEN-1"] == "pass" and verdicts["DEV-1"] == "GAP"
    assert "| DEV-1 | - | GAP | **no test** |" in (out / "traceability.md").read_text()
    gaps = [json.loads(p.read_text()) for p in allure_dir.glob("*-result.json")]
    assert sorted(g["labels"][0]["value"] for g in gaps) == sorted(
        cid for cid, v in verdicts.items() if v == "GAP"
    )
