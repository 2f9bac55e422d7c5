"""`hil run` end to end: run folders, reports/latest, history, the secret check, and the
Allure HTML report as a browser shows it (headless Chromium over http on loopback)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HIL = [sys.executable, "-m", "hil.cli"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ALLURE = ROOT / "tools" / "allure" / "node_modules" / ".bin" / "allure"

pytestmark = pytest.mark.skipif(
    not os.access(ALLURE, os.X_OK), reason="the Allure command line is missing: run scripts/setup")

TINY = '''
import allure
import pytest


@pytest.mark.spec("STATU-1")
def test_status_step_by_step(dut):
    with allure.step("AT+MQTTSTATU answers 0 when idle"):
        assert dut.at.statu().value == 0


@pytest.mark.spec("GEN-1")
def test_a_firmware_defect(dut):
    with allure.step("AT answers OK"):
        assert not dut.at.at().ok, "pretend the firmware got this wrong"
'''

# A plugin bug, as it were: something writes a rig secret into the run's folder.
LEAKY = '''
def test_writes_a_secret(run_dir, rig):
    (run_dir / "notes.txt").write_text("pdu password: " + rig.secrets["pdu"])
'''
SECRET = "pdu-Pa55word"

PLUGINS = ["-p", "fixtures.dut", "-p", "fixtures.results", "-p", "fixtures.broker",
           "-p", "fixtures.peer"]


def hil_run(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HIL, "run", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two nights: the real FLOW-TCP suite; then a tiny suite with a step, a failure, and a
    secret of the rig leaked into the run's folder."""
    base = tmp_path_factory.mktemp("nightly")
    reports = base / "reports"
    first = hil_run("--reports", str(reports), "suites/test_flow_tcp.py")
    (base / "test_tiny.py").write_text(TINY)
    (base / "test_leaky.py").write_text(LEAKY)
    rig = (ROOT / "rigs" / "simulator.toml").read_text() + f'\n[secrets]\npdu = "{SECRET}"\n'
    (base / "rig.toml").write_text(rig)
    second = hil_run("--reports", str(reports), "--rig", str(base / "rig.toml"),
                     str(base / "test_tiny.py"), str(base / "test_leaky.py"),
                     "-c", str(ROOT / "pytest.ini"), "--rootdir", str(base), *PLUGINS)
    return {"reports": reports, "first": first, "second": second}


def _run_dirs(reports: Path) -> list[Path]:
    return sorted(p for p in reports.iterdir() if p.is_dir() and not p.is_symlink())


def test_first_night_passes_and_writes_its_folder(nightly: dict) -> None:
    first = nightly["first"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert "test_flow_tcp.py ." in first.stdout  # pytest's progress came through
    run = _run_dirs(nightly["reports"])[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ(-\d+)?", run.name)
    for made in ("allure-results", "junit.xml", "results.json", "pytest.log",
                 "html/index.html"):
        assert (run / made).exists(), made
    assert list((run / "transcripts").glob("*test_example_1_1_over_tcp/transcript.log"))
    results = json.loads((run / "results.json").read_text())
    assert results["totals"] == {"passed": 1}
    assert results["tests"][0]["clauses"] == ["FLOW-TCP"]
    assert f"report   {run / 'html' / 'index.html'}" in first.stdout


def test_second_night_fails_points_latest_and_carries_the_trend(nightly: dict) -> None:
    second, reports = nightly["second"], nightly["reports"]
    assert "pytest exit status 1: 1 failed, 2 passed" in second.stdout, second.stdout[-3000:]
    _, second_run = _run_dirs(reports)
    assert (reports / "latest").resolve() == second_run
    trend = json.loads((second_run / "html" / "history" / "history-trend.json").read_text())
    assert [entry["buildOrder"] for entry in trend] == [2, 1]
    results = json.loads((second_run / "results.json").read_text())
    categories = {t["nodeid"].split("::")[-1]: t["category"] for t in results["tests"]}
    assert categories == {"test_status_step_by_step": None,
                          "test_a_firmware_defect": "Firmware defect",
                          "test_writes_a_secret": None}


def test_a_leaked_secret_fails_the_run_loudly(nightly: dict) -> None:
    second = nightly["second"]
    assert second.returncode == 7, second.stdout[-2000:] + second.stderr[-2000:]
    assert "SECRET LEAKED: notes.txt holds secret #1 (12 characters)" in second.stderr
    assert SECRET not in second.stdout + second.stderr


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(nightly: dict) -> Iterator[tuple[str, Path]]:
    html = nightly["reports"] / "latest" / "html"
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html", html
    finally:
        server.shutdown()
        server.server_close()


def _page_text(url: str, profile: Path) -> str:
    """The rendered page's visible text, after the report's scripts have run."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/setup should)")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=15000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = re.sub(r"<(style|script|svg)\b.*?</\1>", " ", done.stdout, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def _uid(html: Path, name: str) -> str:
    for case in (html / "data" / "test-cases").glob("*.json"):
        data = json.loads(case.read_text())
        if data["name"] == name:
            return data["uid"]
    raise AssertionError(f"no test case {name} in the report")


def test_browser_shows_suites_steps_and_attachments(served: tuple[str, Path],
                                                    tmp_path: Path) -> None:
    url, html = served
    overview = _page_text(url, tmp_path / "profile-overview")
    for shown in ("test_tiny",  # the suites widget
                  "Firmware defect",  # categories
                  "Trend", "IMEI 86612304*******", "Firmware L506_V3.2_MQTT_B20171031"):
        assert shown in overview, shown
    page = _page_text(f"{url}#testresult/{_uid(html, 'test_a_firmware_defect')}",
                      tmp_path / "profile-test")
    assert "pretend the firmware got this wrong" in page
    assert "AT answers OK" in page  # the step
    assert "transcript" in page  # the dut fixture's attachment


def test_a_bad_rig_is_said_before_running(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[dut]\nkind = "robot"\n')
    done = hil_run("--reports", str(tmp_path / "reports"), "--rig", str(bad))
    assert done.returncode == 4
    assert "bad.toml: [dut] kind = 'robot' must be one of 'simulator', 'hardware'" in done.stderr
    assert not (tmp_path / "reports").exists()
