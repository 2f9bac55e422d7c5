"""Clause parsing and the traceability matrix (fixtures/spec.py), without a DUT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.fixtures.spec import (
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
    assert (ROOT / "docs" / "clauses.md").read_bytes() == shared.read_bytes(), (
        "docs/clauses.md differs from ../shared/spec/clauses.md: copy the shared file over it"
    )


def test_markers_in_sources_are_found(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        '@pytest.mark.spec("GEN-1")\n@pytest.mark.spec("MSUB-3", "DEV-1")\ndef test_a(): ...\n'
    )
    assert marked_in_sources(tmp_path) == {"GEN-1", "MSUB-3", "DEV-1"}


def _outcome(outcome: str, clause: str = "GEN-1", *, open_point: bool = False) -> RunOutcome:
    t = RunOutcome(f"suites/test_x.py::test_{outcome}", [clause])
    t.outcome = outcome
    if open_point:
        t.open_points.add(clause)
    if outcome == "skipped":
        t.reason = "needs power"
    return t


@pytest.mark.parametrize(
    ("outcomes", "verdict"),
    [
        ([], "GAP"),
        (["passed", "passed"], "pass"),
        (["passed", "failed"], "fail"),
        (["skipped", "passed"], "partial"),
        (["skipped"], "skip"),
        (["error"], "fail"),
    ],
)
def test_row_verdicts(outcomes: list[str], verdict: str) -> None:
    clause = parse_clauses(SAMPLE)[0]
    row = Row(clause, [_outcome(o) for o in outcomes])
    assert row.verdict == verdict


def test_a_q_clause_is_characterized_never_passed() -> None:
    gen2 = {c.id: c for c in parse_clauses(SAMPLE)}["GEN-2"]
    assert Row(gen2, [_outcome("passed", "GEN-2")]).verdict == "characterized"
    assert Row(gen2, [_outcome("skipped", "GEN-2")]).verdict == "skip"


def test_a_test_that_only_records_an_s_clause_does_not_pass_it() -> None:
    msub3 = {c.id: c for c in parse_clauses(SAMPLE)}["MSUB-3"]
    only = _outcome("passed", "MSUB-3", open_point=True)
    assert Row(msub3, [only]).verdict == "characterized"
    assert Row(msub3, [only, _outcome("passed", "MSUB-3")]).verdict == "pass"


def test_a_skipped_test_or_part_makes_the_clause_partial_and_is_named() -> None:
    clause = parse_clauses(SAMPLE)[0]
    row = Row(clause, [_outcome("passed"), _outcome("skipped")])
    assert row.verdict == "partial"
    assert row.unchecked() == ["test_skipped skipped: needs power"]
    told = _outcome("passed")
    told.skipped_parts.append(("GEN-1", "default off: setting kept over a restart"))
    told.skipped_parts.append(("GEN-2", "another clause's part"))
    row = Row(clause, [told])
    assert (row.verdict, row.unchecked()) == (
        "partial", ["default off: setting kept over a restart"]
    )


def test_a_clause_kind_with_words_after_it_is_parsed() -> None:
    text = "## General\n- **GEN-7 (S for the harness)** A test of an S clause uses ...\n"
    (gen7,) = parse_clauses(text)
    assert (gen7.id, gen7.kind, gen7.scope) == ("GEN-7", "S", "for the harness")
    assert not gen7.binds_firmware
    assert all(c.binds_firmware for c in parse_clauses(SAMPLE) if c.kind != "Q")


def test_open_point_markers_count_in_sources(tmp_path: Path) -> None:
    (tmp_path / "test_y.py").write_text('@pytest.mark.spec("GEN-7", open_point=True)\n')
    assert marked_in_sources(tmp_path) == {"GEN-7"}


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
    results = [json.loads(p.read_text()) for p in allure_dir.glob("*-result.json")]
    gaps = [r for r in results if r["fullName"].startswith("traceability.gap.")]
    assert sorted(g["labels"][0]["value"] for g in gaps) == sorted(
        cid for cid, v in verdicts.items() if v == "GAP"
    )
    (matrix,) = [r for r in results if r["fullName"] == "traceability.matrix"]
    assert matrix["status"] == "passed" and "pass 1" in matrix["statusDetails"]["message"]
    attached = {a["name"]: (allure_dir / a["source"]).read_text() for a in matrix["attachments"]}
    assert attached["traceability.md"] == (out / "traceability.md").read_text()
    assert json.loads(attached["traceability.json"]) == data
