"""The report shows one timeline: FLOW-TCP run as the suites run it (the project's simulator
rig, whose module dials the recording tap), and its Allure result holds the interleaved
transcript (module lines and broker packets in time order) and the sequence picture."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOW_TCP = "suites/test_flow_tcp.py::test_example_1_1_over_tcp"

pytestmark = pytest.mark.timeout(150)


def _run_flow_tcp(tmp_path: Path, *options: str) -> dict[str, str]:
    """Run FLOW-TCP in its own pytest; the attachments of its Allure result, by name: the
    test's own and those of its fixtures' teardown (the report's "Tear down" of the test,
    where the dut fixture attaches the transcript once the test is over)."""
    results = tmp_path / "allure"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", FLOW_TCP, "-q", "-p", "no:randomly",
         f"--report-dir={tmp_path / 'run'}", f"--alluredir={results}", *options],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    found = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    found = [r for r in found if r.get("fullName", "").endswith("test_example_1_1_over_tcp")]
    assert len(found) == 1, f"{len(found)} results for FLOW-TCP"
    attachments = list(found[0].get("attachments", []))
    for path in results.glob("*-container.json"):
        container = json.loads(path.read_text())
        if found[0]["uuid"] in container.get("children", []):
            for fixture in container.get("afters", []):
                attachments += fixture.get("attachments", [])
    return {a["name"]: (results / a["source"]).read_text(encoding="utf-8")
            for a in attachments}


def _index(rows: list[tuple[float, str, str]], direction: str, start: str, after: int) -> int:
    for i in range(after, len(rows)):
        if rows[i][1] == direction and rows[i][2].startswith(start):
            return i
    raise AssertionError(f"no {direction} {start!r} after row {after}:\n"
                         + "\n".join(" ".join(map(str, row)) for row in rows))


def test_flow_tcp_result_holds_the_interleaved_timeline_and_the_sequence(
    tmp_path: Path,
) -> None:
    attached = _run_flow_tcp(tmp_path)
    assert {"transcript", "timeline", "sequence"} <= set(attached), sorted(attached)
    timeline = attached["timeline"]
    rows = []
    for line in timeline.splitlines()[1:]:
        ms, direction, _kind, text = line.split(maxsplit=3)
        rows.append((float(ms), direction, text))
    stamps = [ms for ms, _, _ in rows]
    assert stamps == sorted(stamps), "the timeline is not in time order"
    sides = {direction for _, direction, _ in rows}
    assert {"->", "<-", "=>", "<="} <= sides, f"both sides expected, got {sides}"
    # each command, the packet it causes, the broker's answer, the module's result
    i = _index(rows, "->", "AT+MCONNECT=1,30", 0)
    i = _index(rows, "=>", "CONNECT client_id=client_id_mobiletek clean=1", i)
    i = _index(rows, "<=", "CONNACK rc=0", i)
    i = _index(rows, "<-", "+MCONNECT: SUCCESS", i)
    i = _index(rows, "->", "AT+MPUB=mobiletek/topic,0,0,", i)
    i = _index(rows, "=>", "PUBLISH mobiletek/topic qos=0 retain=0 32 bytes", i)
    i = _index(rows, "<-", "+MPUB: SUCCESS", i)
    i = _index(rows, "->", "AT+MDISCONNECT", i)
    _index(rows, "=>", "DISCONNECT", i)

    svg = attached["sequence"]
    assert svg.startswith("<svg") and "CONNACK rc=0" in svg and "AT+MCONNECT=1,30" in svg
    folder = next((tmp_path / "run" / "transcripts").iterdir())
    assert (folder / "timeline.log").read_text(encoding="utf-8") == timeline


def test_without_the_tap_there_is_no_timeline_and_the_module_dials_the_broker(
    tmp_path: Path,
) -> None:
    attached = _run_flow_tcp(tmp_path, "--broker-tap=off")
    assert "timeline" not in attached and "sequence" not in attached
    assert "AT+MIPSTART=127.0.0.1," in attached["transcript"]
