"""`hil reliability --short`: every part runs, every figure meets its bound, the doc's
sections are written. The long form (docs/reliability.md) is the same command without
--short."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("faults", "soak", "fuzz", "inputs", "secrets")

pytestmark = pytest.mark.end_to_end


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("reliability")
    doc = base / "reliability.md"
    doc.write_text((ROOT / "docs" / "reliability.md").read_text(encoding="utf-8"))
    done = subprocess.run(
        [sys.executable, "-m", "hil.cli", "reliability", "--short", "--reports",
         str(base / "reports"), "--doc", str(doc)],
        cwd=ROOT, capture_output=True, text=True, timeout=280, check=False,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    runs = list((base / "reports").glob("*/reliability.json"))
    figures = json.loads(runs[0].read_text()) if runs else {}
    return {"status": done.returncode, "output": done.stdout + done.stderr,
            "figures": figures, "doc": doc.read_text(encoding="utf-8")}


@pytest.mark.timeout(300)
def test_every_part_runs_and_meets_its_bounds(short_run: dict) -> None:
    figures = short_run["figures"]
    assert short_run["status"] == 0, short_run["output"][-4000:]
    assert figures["failures"] == []
    assert figures["form"] == "short"
    assert all(part in figures for part in PARTS)


def test_faults_no_hang_no_misreport_all_recovered(short_run: dict) -> None:
    kinds = short_run["figures"]["faults"]["kinds"]
    assert len(kinds) == 8
    for kind in kinds:
        assert kind["trials"] == 2, kind
        assert (kind["hangs"], kind["misreported"], kind["not_provoked"]) == (0, 0, 0), kind
        assert kind["recovered"] == kind["trials"], kind
    reported = {k["kind"]: set(k["reported"]) for k in kinds}
    assert reported["power_cut_mid_command"] == {"Infrastructure"}
    assert reported["silent_for_good"] == {"DUT lost"}


def test_soak_loses_nothing_and_does_not_grow(short_run: dict) -> None:
    soak = short_run["figures"]["soak"]
    assert soak["rounds"] > 10 and soak["reconnects"] > 0 and soak["manual_phases"] > 0
    for key, m in soak["messages"].items():
        assert m["sent"] > 0, key
        if not key.endswith("/0"):
            assert m["lost"] == 0, key
        if key.endswith("/2"):
            assert m["duplicated"] == 0, key
    assert soak["transcript_bytes"] == soak["line_bytes"]
    assert soak["line_bytes"]["rx"] > 0
    assert soak["fds"]["end"] - soak["fds"]["start"] <= soak["fds"]["bound"]
    assert soak["memory_kib"]["end"] - soak["memory_kib"]["start"] <= soak["memory_kib"]["bound"]


def test_bad_input_and_secrets(short_run: dict) -> None:
    figures = short_run["figures"]
    for target in figures["fuzz"]["targets"]:
        assert target["inputs"] == 10_000 and target["crashes"] == target["mismatches"] == 0
    for kind in figures["inputs"]["kinds"]:
        assert kind["cases"] >= 40 and kind["unclear"] == 0, kind
    secrets = figures["secrets"]
    assert secrets["hits"] == 0 and secrets["secrets"] == 3
    assert secrets["masked_spans_on_the_line"] > 0  # they were used, and masked


def test_the_doc_sections_hold_the_tables(short_run: dict) -> None:
    doc = short_run["doc"]
    for part in PARTS:
        section = doc.split(f"<!-- reliability:{part} -->")[1].split("<!-- /reliability")[0]
        assert "hil reliability --short" in section and "| ---" in section, part
