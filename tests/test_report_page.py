"""The run page (hil/report/page.py): built from a run's files, verdicts shown as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hil.report.page import (
    allure_result,
    load_run,
    markdown_html,
    render_page,
    write_allure_result,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
FAILED = "suites/test_msub_buffer.py::test_ring_of_four_over_two_laps"


def _run(folder: Path, *, failed: bool = True) -> Path:
    folder.mkdir(parents=True)
    tests = [{"nodeid": "suites/test_status.py::test_idle", "outcome": "passed",
              "clauses": ["STATU-1"], "category": None, "message": None}]
    if failed:
        tests.append({"nodeid": FAILED, "outcome": "failed", "clauses": ["MSUB-5"],
                      "category": "Firmware defect",
                      "message": "AssertionError: the second lap must overwrite slot 0 first\n"
                                 "  received  +MSUB: 0   (urc)"})
    (folder / "results.json").write_text(json.dumps({
        "run": {"started": "2025-01-31T02:00:00+00:00", "finished": "2025-01-31T02:10:00+00:00",
                "rig": "bench-3", "rig_file": "/rigs/bench-3.toml", "dut": "hardware",
                "identity": {"manufacturer": "LYNQ", "model": "L506",
                             "revision": "L506_V3.3_TEST", "imei": "86612304*******"},
                "harness": "0.1.0 (abc1234)"},
        "totals": {"passed": 1, "failed": 1} if failed else {"passed": 1},
        "tests": tests,
    }))
    (folder / "traceability.json").write_text(json.dumps({
        "clauses_file": "clauses.md", "summary": {"characterized": 1, "fail": 1},
        "clauses": [
            {"id": "MSUB-5", "kind": "S", "section": "2.4 AT+MSUB", "open_point": False,
             "verdict": "fail", "text": "the fifth overwrites slot 0",
             "tests": [{"test": FAILED, "outcome": "failed", "reason": ""}]},
            {"id": "GEN-6", "kind": "Q", "section": "General", "open_point": True,
             "verdict": "characterized", "text": "how a bad parameter is refused",
             "tests": []},
        ]}))
    (folder / "timings.json").write_text(json.dumps({
        "rig": "bench-3", "firmware": "L506_V3.3_TEST",
        "latency_model": "the module's own (measured)",
        "commands": {
            "MSUB": {"total": {"n": 4, "p50": 12.0, "p95": 30.5, "p99": 31.9, "max": 32.0},
                     "budget_ms": 2000.0},
            "AT": {"total": {"n": 9, "p50": 2.0, "p95": 400.0, "p99": 480.0, "max": 500.0},
                   "budget_ms": 300.0},
            "ATI": {"total": {"n": 1, "p50": 5.0, "p95": 5.0, "p99": 5.0, "max": 5.0},
                    "budget_ms": None},
        },
        "over_budget": [{"command": "AT", "test": "x", "text": "AT", "total_ms": 500.0,
                         "budget_ms": 300.0}],
    }))
    (folder / "plots").mkdir()
    (folder / "plots" / "latency.png").write_bytes(PNG)
    (folder / "plots" / "trend.png").write_bytes(PNG)
    return folder


def test_the_page_shows_identity_verdicts_timings_plots_and_failures(tmp_path: Path) -> None:
    record = load_run(_run(tmp_path / "2025-01-31T02-00-00Z"))
    page = render_page(record, {FAILED: "html-file/index.html#testresult/abc"})
    for shown in ("L506_V3.3_TEST", "bench-3", "LYNQ L506", "86612304*******",
                  "Run verdict: <b>failed</b> (1 failed, 1 passed)",
                  ">characterized</span>", ">fail</span>",  # verdicts as written
                  "the fifth overwrites slot 0", "Failing tests (1)",
                  '<a href="html-file/index.html#testresult/abc">in the report</a>',
                  "transcripts/suites_test_msub_buffer.py_test_ring_of_four_over_two_laps/"
                  "transcript.log", "received  +MSUB: 0",
                  "No comparison"):
        assert shown in page, shown
    rows = {m[0]: m[1:] for m in re.findall(
        r"<tr><td>([A-Z?]+)</td><td>(\d+)</td>(?:<td>[^<]*</td>){4}<td>([^<]*)</td>"
        r"<td>([^<]*)</td></tr>", page)}
    assert rows == {"MSUB": ("4", "2000", "within budget"),
                    "AT": ("9", "300", "OVER BUDGET (1 of 9)"),
                    "ATI": ("1", "-", "no budget")}
    assert page.count('src="data:image/png;base64,') == 2
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from outside


def test_a_missing_file_leaves_its_part_empty(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "results.json").write_text("{not json")
    page = render_page(load_run(folder))
    assert "unknown firmware on unknown rig" in page
    assert "No traceability.json" in page and "No timings.json" in page
    assert "Run verdict: <b>no tests</b>" in page


def test_a_comparison_is_rendered() -> None:
    shown = markdown_html("# Firmware acceptance\n\n**2 regressions** against `v3.2`.\n\n"
                          "| command | p95 | verdict |\n| --- | ---: | --- |\n"
                          "| MSUB | 30 | slower |\n\n- one finding\n")
    assert "<h3>Firmware acceptance</h3>" in shown
    assert "<b>2 regressions</b> against <code>v3.2</code>." in shown
    assert "<th>p95</th>" in shown and "<td>slower</td>" in shown and "---" not in shown
    assert "• one finding" in shown


def test_compare_md_of_the_run_is_on_the_page(tmp_path: Path) -> None:
    folder = _run(tmp_path / "run")
    (folder / "compare.md").write_text("# Firmware acceptance vs v3.2\n\nacceptable\n")
    page = render_page(load_run(folder))
    assert "Firmware acceptance vs v3.2" in page and "No comparison" not in page


def test_the_allure_result_carries_the_page_and_the_plots(tmp_path: Path) -> None:
    record = load_run(_run(tmp_path / "run"))
    result, files = allure_result(record, now_ms=1000)
    assert result["name"] == "Run summary: 1 failed, 1 passed; L506_V3.3_TEST on bench-3"
    assert result["status"] == "unknown"  # not "failed": no failure category for it
    assert FAILED in result["statusDetails"]["message"]
    names = [a["name"] for a in result["attachments"]]
    assert names[0] == "run page" and len(names) == 3
    assert all(a["source"] in files for a in result["attachments"])
    assert "<img" not in result["descriptionHtml"]  # Allure strips them: attached instead
    assert "Verdict per clause" in result["descriptionHtml"]
    passed, _ = allure_result(load_run(_run(tmp_path / "ok", failed=False)), now_ms=1000)
    assert passed["status"] == "passed"
    write_allure_result(record, tmp_path / "results", 1000)
    written = list((tmp_path / "results").glob("*-result.json"))
    assert len(written) == 1 and json.loads(written[0].read_text())["historyId"]


def test_a_broken_file_is_named_on_the_page_and_the_rest_shown(tmp_path: Path) -> None:
    folder = _run(tmp_path / "run")
    matrix = folder / "traceability.json"
    document = json.loads(matrix.read_text())
    document["clauses"][0]["tests"] = "MSUB-5"
    matrix.write_text(json.dumps(document))
    page = render_page(load_run(folder))
    assert f"Not read: {matrix}: clauses[0].tests must be a list" in page
    assert "No traceability.json" in page  # its part is empty...
    assert "L506_V3.3_TEST" in page and "Failing tests (1)" in page  # ...the others shown
