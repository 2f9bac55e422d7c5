"""compare() on hand-made snapshots, and what the renderers and the Allure page make of it."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from hil.acceptance.baseline import Behaviour, Snapshot
from hil.acceptance.compare import (
    CannotCompare,
    allure_page,
    compare,
    render_html,
    render_markdown,
    render_text,
)
from hil.acceptance.gate import page_of, write_allure
from hil.report.categories import classify
from hil.rig.thresholds import Thresholds

T = Thresholds()
FLOW = "suites/test_general.py::test_result_urc_spelling"
CUT = "suites/test_limits.py::test_incoming_message_cut_to_1360[1361]"
STATUS = "suites/test_status.py::test_status_through_the_flow"


def samples(centre: float, seed: int, n: int = 30) -> list[float]:
    rng = random.Random(seed)
    return [round(centre + abs(rng.gauss(0, 0.3)), 3) for _ in range(n)]


def snapshot(label: str = "base", *, seed: int = 0, connect_ms: float = 12.0,
             space: str = " ", length: int = 1361, token: str = "1a2b3c4d",
             **changes) -> Snapshot:
    made = Snapshot(
        label=label,
        source=f"/runs/{label}",
        firmware={"model": "L506", "revision": "L506_V3.2_MQTT_B20171031"},
        run={"dut": "simulator", "profile": "v3.2"},
        tests={FLOW: ("passed", ("GEN-2",)), CUT: ("passed", ("MSUB-3",)),
               STATUS: ("passed", ("STATU-1",))},
        characterization={
            "GEN-2": (Behaviour("GEN-2", FLOW, f"AT+MCONFIG=l506-{token}",
                                f"+MCONFIG:{space}SUCCESS,0", space == " ",
                                "Simulator: one space"),),
            "MSUB-3": (Behaviour("MSUB-3", CUT, "incoming message of 1361 bytes",
                                 f"+MSUB: ...,{length} bytes,<1360 bytes>", length == 1361,
                                 "Simulator: the original length"),),
        },
        latency={
            "MCONNECT": {FLOW: samples(connect_ms, seed), STATUS: samples(connect_ms, seed + 1)},
            "MQTTSTATU": {STATUS: samples(5.0, seed + 2)},
        },
        throughput={"qos0": {"messages_per_s": 7.3, "publish_latency_p50_ms": 119.0}},
    )
    return replace(made, **changes)


def test_the_same_firmware_twice_is_acceptable() -> None:
    c = compare(snapshot(seed=0), snapshot("cand", seed=50, token="99aa88bb"), T)
    assert (c.outcomes, c.behaviours, c.problems, c.exit_code) == ((), (), [], 0)
    assert {s.verdict for s in c.latency} == {"unchanged"}
    assert c.summary == ("ACCEPTABLE: no change; 3 tests compared, 2 of 2 commands' "
                         "latency judged")
    assert c.headline.startswith("Accepted: no test newly failing, no open point changed")


def test_a_later_firmware_shows_exactly_its_differences() -> None:
    later = snapshot("cand", seed=50, space="", length=1360, connect_ms=18.0,
                     firmware={"model": "L506", "revision": "L506_V3.3_MQTT_B20180315"})
    c = compare(snapshot(), later, T)
    assert c.outcomes == ()
    assert [(b.clause, b.before.follows, b.after.follows) for b in c.behaviours] == [
        ("GEN-2", True, False), ("MSUB-3", True, False)]
    assert all(b.gating for b in c.behaviours)
    verdicts = {s.command: s.verdict for s in c.latency}
    assert verdicts == {"MCONNECT": "regression", "MQTTSTATU": "unchanged"}
    assert c.exit_code == 1
    assert c.summary.startswith("NOT ACCEPTABLE: 2 open-point behaviour(s) changed, "
                                "1 latency regression(s); ")
    assert c.headline.startswith("Not accepted: open points changed in GEN-2, MSUB-3; "
                                 "slower: MCONNECT x1.49 (p50 12.22 -> 18.24 ms)")


def test_outcome_changes_are_classified() -> None:
    new = "suites/test_new.py::test_added"
    gone = {FLOW: ("failed", ("GEN-2",)), CUT: ("skipped", ("MSUB-3",)),
            STATUS: ("passed", ()), new: ("error", ())}
    before = snapshot(tests={FLOW: ("passed", ("GEN-2",)), CUT: ("passed", ("MSUB-3",)),
                             STATUS: ("failed", ()), "suites/test_old.py::t": ("passed", ())})
    c = compare(before, snapshot("cand", tests=gone), T)
    kinds = {o.test: (o.before, o.after, o.kind) for o in c.outcomes}
    assert kinds == {
        FLOW: ("passed", "failed", "regression"),
        CUT: ("passed", "skipped", "changed"),
        STATUS: ("failed", "passed", "improvement"),
        new: (None, "error", "regression"),
        "suites/test_old.py::t": ("passed", None, "changed"),
    }
    assert [p for p in c.problems if p.startswith("suites/")] == [
        f"{FLOW}: passed -> failed", f"{new}: not run -> error"]
    assert any("ran 3 of the baseline's 4 tests" in n for n in c.notes)


def test_deviating_alike_is_the_same_behaviour_and_deviating_otherwise_is_not() -> None:
    before = snapshot(space="")
    assert compare(before, snapshot("cand", space="", token="00ff00ff"), T).behaviours == ()
    other = replace(snapshot("cand"), characterization={
        **snapshot().characterization,
        "GEN-2": (Behaviour("GEN-2", FLOW, "AT+MCONFIG=l506-00ff00ff", "+MCONFIG:  SUCCESS,0",
                            False),)})
    changed = compare(before, other, T).behaviours
    assert [(b.clause, b.gating) for b in changed] == [("GEN-2", True)]


def test_a_record_on_one_side_only_is_shown_but_not_gating() -> None:
    after = replace(snapshot("cand"), characterization={
        "GEN-2": snapshot().characterization["GEN-2"]})
    c = compare(snapshot(), after, T)
    assert [(b.clause, b.after, b.gating) for b in c.behaviours] == [("MSUB-3", None, False)]
    assert c.exit_code == 0


def test_latency_comes_only_from_tests_both_runs_have() -> None:
    """The candidate also timed MCONNECT in a test the baseline never ran: ignored."""
    base = snapshot()
    extra = dict(snapshot("cand", seed=50).latency)
    extra["MCONNECT"] = {**extra["MCONNECT"], "suites/test_slow.py::t": [500.0] * 50}
    c = compare(base, replace(snapshot("cand", seed=50), latency=extra), T)
    mconnect = next(s for s in c.latency if s.command == "MCONNECT")
    assert (mconnect.n_before, mconnect.n_after, mconnect.verdict) == (60, 60, "unchanged")


def test_throughput_regression_respects_direction_and_threshold() -> None:
    slower = snapshot("cand", throughput={"qos0": {"messages_per_s": 6.0,
                                                   "publish_latency_p50_ms": 125.0}})
    verdicts = {t.figure: t.verdict for t in compare(snapshot(), slower, T).throughput}
    assert verdicts == {"messages_per_s": "regression", "publish_latency_p50_ms": "unchanged"}
    faster = snapshot("cand", throughput={"qos0": {"messages_per_s": 7.3,
                                                   "publish_latency_p50_ms": 90.0}})
    verdicts = {t.figure: t.verdict for t in compare(snapshot(), faster, T).throughput}
    assert verdicts == {"messages_per_s": "unchanged", "publish_latency_p50_ms": "improvement"}


def test_other_model_or_nothing_in_common_cannot_be_compared() -> None:
    other = snapshot("cand", firmware={"model": "L716", "revision": "x"})
    with pytest.raises(CannotCompare, match="L716"):
        compare(snapshot(), other, T)
    with pytest.raises(CannotCompare, match="no test in common"):
        compare(snapshot(), snapshot("cand", tests={}), T)


def test_renderers_show_the_verdict_and_the_changes() -> None:
    later = snapshot("cand", seed=50, space="", connect_ms=18.0)
    c = compare(snapshot(), later, T)
    text = render_text(c)
    assert "verdict    NOT ACCEPTABLE" in text
    assert "+MCONFIG:SUCCESS,0 (deviates)" in text and "l506-<id>" in text
    assert "MCONNECT" in text and "regression" in text
    markdown = render_markdown(c)
    assert markdown.startswith("# Firmware acceptance: cand vs base")
    assert "| clause | test | sent | baseline | candidate | gating |" in markdown
    assert "| GEN-2 | test_result_urc_spelling |" in markdown
    page = render_html(c)
    assert "<table" in page and "&lt;1360 bytes&gt;" not in page  # MSUB-3 did not change
    assert "+MCONFIG:SUCCESS,0 (deviates)" in page


def test_markdown_and_html_escape_what_the_firmware_said() -> None:
    odd = replace(snapshot("cand"), characterization={
        "GEN-2": (Behaviour("GEN-2", FLOW, "AT+X", "a|b <script>", False),),
        "MSUB-3": snapshot().characterization["MSUB-3"]})
    c = compare(snapshot(), odd, T)
    assert "a\\|b <script>" in render_markdown(c)
    assert "<script>" not in render_html(c) and "&lt;script&gt;" in render_html(c)


def test_the_allure_page_is_an_allure_result(tmp_path: Path) -> None:
    c = compare(snapshot(), snapshot("cand", seed=50, space=""), T)
    write_allure(tmp_path, page_of(c))
    [result_file] = tmp_path.glob("*-result.json")
    result = json.loads(result_file.read_text())
    assert result["name"] == "Firmware acceptance vs base"
    assert result["status"] == "failed" and result["stage"] == "finished"
    assert result["statusDetails"]["message"].startswith(
        "AssertionError: Not accepted: open points changed in GEN-2")
    assert classify(result["statusDetails"]["message"]) == "Firmware defect"
    assert result["descriptionHtml"].startswith("<p><b>Not accepted: open points changed")
    assert "<b>verdict</b>: NOT ACCEPTABLE" in result["descriptionHtml"]
    assert {"name": "suite", "value": "Firmware acceptance"} in result["labels"]
    sections = {step["name"].split(" (")[0].split(":")[0]: step for step in result["steps"]}
    assert [(s["status"], len(s.get("steps", []))) for s in sections.values()] == [
        ("passed", 0), ("failed", 1), ("passed", 2), ("passed", 0), ("passed", 2)]
    [gen2] = sections["Open points"]["steps"]
    assert gen2["name"] == ("GEN-2 · test_result_urc_spelling · "
                            "+MCONFIG:SUCCESS,0 (deviates)")
    assert {"name": "gating", "value": "yes"} in gen2["parameters"]
    names = {a["name"]: a for a in result["attachments"]}
    assert set(names) == {"compare.md", "compare.html", "compare.txt"}
    assert (tmp_path / names["compare.md"]["source"]).read_text().startswith("# Firmware")
    assert names["compare.html"]["type"] == "text/html"


@pytest.mark.parametrize("status", ["passed", "broken"])
def test_allure_page_status(status: str) -> None:
    page = allure_page("base", status, "why", "<p>why</p>", [], now_ms=1000)
    assert page.result.status == status and page.files == {}
    assert page.result.start == page.result.stop == 1000


def test_budgets_broken_by_the_candidate_only_count_against_it() -> None:
    """MCONNECT's budget is 15 ms in the candidate's run: the baseline's responses (about
    12 ms) kept to it, the candidate's (about 18 ms) did not. MQTTSTATU's 5.1 ms budget was
    broken by both: shown, not counted."""
    held = {"MCONNECT": {FLOW: 15.0, STATUS: 15.0}, "MQTTSTATU": {STATUS: 5.1}}
    later = snapshot("cand", seed=50, connect_ms=18.0, budgets=held)
    c = compare(snapshot(), later, T)
    rows = {b.command: (b.budget_ms, b.over_before, b.over_after, b.gating) for b in c.budgets}
    assert rows["MCONNECT"] == ((15.0, 15.0), 0, 60, True)
    assert rows["MQTTSTATU"][1] > 0 and rows["MQTTSTATU"][2] > 0
    assert rows["MQTTSTATU"][3] is False
    assert "MCONNECT over budget: 60/60 responses over 15 ms (baseline 0/60)" in c.problems
    assert "1 command(s) newly over budget" in c.summary
    assert "over budget where the baseline was not: MCONNECT" in c.headline
    text = render_text(c)
    assert "Budgets (responses over the candidate's budget, same tests)" in text
    assert "also in baseline" in text


def test_a_budget_only_the_baseline_broke_is_no_finding() -> None:
    c = compare(snapshot(connect_ms=18.0), snapshot("cand", seed=50,
                budgets={"MCONNECT": {FLOW: 15.0}}), T)
    [b] = c.budgets
    assert (b.over_before, b.over_after, b.gating) == (30, 0, False)
    assert c.exit_code == 0


def test_inconclusive_is_its_own_verdict_and_page_status(tmp_path: Path) -> None:
    """Three connects a side, x3: too few to prove, too large to wave through."""
    thin = {"MCONNECT": {FLOW: [12.1, 12.4, 12.2]}, "MQTTSTATU": {STATUS: samples(5.0, 2)}}
    slow = {"MCONNECT": {FLOW: [36.0, 37.5, 36.2]}, "MQTTSTATU": {STATUS: samples(5.0, 3)}}
    c = compare(snapshot(latency=thin), snapshot("cand", latency=slow), T)
    assert (c.exit_code, c.verdict, c.problems) == (3, "INCONCLUSIVE", [])
    assert c.summary == ("INCONCLUSIVE: 1 latency shift(s) not settled; 3 tests compared, "
                         "1 of 2 commands' latency judged, 1 inconclusive")
    assert c.headline == ("Inconclusive: not settled: MCONNECT x2.97 on 3/3 samples, ~5 a "
                          "side would settle it.")
    write_allure(tmp_path, page_of(c))
    [result] = [json.loads(p.read_text()) for p in tmp_path.glob("*-result.json")]
    assert result["status"] == "unknown"
    assert result["statusDetails"]["message"].startswith("Inconclusive: not settled: MCONNECT")
    assert "3/3 (~5/side)" in render_text(c)


def test_a_command_only_one_run_timed_is_counted_as_not_judged() -> None:
    extra = {**snapshot().latency, "MSUB": {FLOW: samples(9.0, 7)}}
    c = compare(snapshot(), snapshot("cand", seed=50, latency=extra), T)
    [msub] = [s for s in c.latency if s.command == "MSUB"]
    assert (msub.verdict, msub.n_before, msub.n_after) == ("not judged", 0, 30)
    assert c.exit_code == 0
    assert c.summary.endswith("2 of 3 commands' latency judged, 1 not judged (timed in one run "
                              "only)")
    assert "not judged: MSUB" in c.headline
