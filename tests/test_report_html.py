"""`hil run` end to end: run folders, reports/latest, history, the secret check, the run
page, and the Allure HTML report as a browser shows it (headless Chromium, over http on
loopback and from the file system), making no request outside the report."""

from __future__ import annotations

import base64
import functools
import html as html_lib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
HIL = [sys.executable, "-m", "hil.cli"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ALLURE = ROOT / "tools" / "allure" / "node_modules" / ".bin" / "allure"

pytestmark = [pytest.mark.skipif(not os.access(ALLURE, os.X_OK),
                                 reason="the Allure command line is missing: run scripts/setup"),
              pytest.mark.timeout(300), pytest.mark.end_to_end]

TINY = '''
import allure
import pytest


@pytest.mark.spec("STATU-1")
def test_status_step_by_step(dut):
    with allure.step("AT+MQTTSTATU answers 0 when idle"):
        assert dut.at.mqttstatu().value == 0


@pytest.mark.spec("GEN-1")
def test_a_firmware_defect(dut):
    with allure.step("AT answers OK"):
        assert not dut.at.at().ok, "pretend the firmware got this wrong"


@pytest.mark.spec("GEN-1")
def test_an_unknown_command_is_refused(dut):
    """An unknown command is answered ERROR.

    The second night's simulator has the bug unknown_command_ok.
    """
    answer = dut.at.raw("AT+NOSUCHCOMMAND")
    assert answer.response.error, "an unknown command must be answered ERROR"
'''

# A plugin bug, as it were: something writes a rig secret into the run's folder.
LEAKY = '''
def test_writes_a_secret(run_dir, rig):
    (run_dir / "notes.txt").write_text("pdu password: " + rig.secrets["pdu"])
'''
SECRET = "pdu-Pa55word"

PLUGINS = ["-p", "no:l506", "-p", "hil.fixtures.dut", "-p", "hil.fixtures.results",
           "-p", "hil.fixtures.broker", "-p", "hil.fixtures.peer", "-p", "hil.fixtures.spec",
           "-p", "hil.fixtures.report", "-p", "hil.fixtures.timing"]
#: The second night's simulator answers an unknown command OK (hil/sim/bugs.py).
SIM_BUG = "unknown_command_ok"


def hil_run(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HIL, "run", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two nights: the real FLOW-TCP suite; then a tiny suite with a step, a failure, a
    simulator bug caught, and a secret of the rig leaked into the run's folder."""
    base = tmp_path_factory.mktemp("nightly")
    reports = base / "reports"
    first = hil_run("--reports", str(reports), "suites/test_flow_tcp.py")
    (base / "test_tiny.py").write_text(TINY)
    (base / "test_leaky.py").write_text(LEAKY)
    rig = (ROOT / "rigs" / "simulator.toml").read_text() + f'\n[secrets]\npdu = "{SECRET}"\n'
    (base / "rig.toml").write_text(rig)
    (base / "docs").mkdir()  # the clauses, for fixtures.spec with this rootdir
    shutil.copy(ROOT / "docs" / "clauses.md", base / "docs" / "clauses.md")
    second = hil_run("--reports", str(reports), "--rig", str(base / "rig.toml"),
                     str(base / "test_tiny.py"), str(base / "test_leaky.py"),
                     "-c", str(ROOT / "pytest.ini"), "--rootdir", str(base), *PLUGINS,
                     "--sim-bug", SIM_BUG)
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
    assert f"run page {run / 'index.html'}" in first.stdout
    assert (run / "html-file" / "index.html").is_file()  # the single-file build


def test_second_night_fails_points_latest_and_carries_the_trend(nightly: dict) -> None:
    second, reports = nightly["second"], nightly["reports"]
    assert "pytest exit status 1: 2 failed, 2 passed" in second.stdout, second.stdout[-3000:]
    _, second_run = _run_dirs(reports)
    assert (reports / "latest").resolve() == second_run
    trend = json.loads((second_run / "html" / "history" / "history-trend.json").read_text())
    assert [entry["buildOrder"] for entry in trend] == [2, 1]
    results = json.loads((second_run / "results.json").read_text())
    categories = {t["nodeid"].split("::")[-1]: t["category"] for t in results["tests"]}
    assert categories == {"test_status_step_by_step": None,
                          "test_a_firmware_defect": "Firmware defect",
                          "test_an_unknown_command_is_refused": "Firmware defect",
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


@dataclass
class Shown:
    """A page as headless Chromium showed it: its visible text, and every request made for
    it (Chromium's own background requests left out), from Chromium's network log."""

    text: str
    requests: list[str]

    def outside(self) -> list[str]:
        """Requests that left the report: anything but loopback."""
        return [u for u in self.requests if urlsplit(u).hostname not in (None, "127.0.0.1")]


def _browse(url: str, profile: Path) -> Shown:
    """Open `url` in headless Chromium; names that are not loopback resolve to nothing, so
    a request out would fail, but it is logged all the same."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/setup should)")
    netlog = profile.with_name(profile.name + "-netlog.json")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=15000",
         f"--log-net-log={netlog}", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = re.sub(r"<(style|script|svg)\b.*?</\1>", " ", done.stdout, flags=re.S)
    text = re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", dom)))
    return Shown(text, _page_requests(netlog, url))


def _page_requests(netlog: Path, url: str) -> list[str]:
    """The URLs requested for the page at `url`: those a page initiated, or made in the
    page's own site (its navigation); not Chromium's own (no initiator, another site)."""
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    parts = urlsplit(url)
    site = f"{parts.scheme}://{parts.hostname or ''}"
    found = []
    for event in log["events"]:
        params = event.get("params", {})
        if event["type"] != start_job or "url" not in params:
            continue
        initiated = params.get("initiator", "not an origin") != "not an origin"
        if initiated or str(params.get("network_isolation_key", "")).startswith(site):
            found.append(params["url"])
    return found


def _page_text(url: str, profile: Path) -> str:
    """The rendered page's visible text, after the report's scripts have run; the page made
    no request outside the report."""
    shown = _browse(url, profile)
    assert not shown.outside(), shown.outside()
    return shown.text


def _uid(html: Path, name: str) -> str:
    for case in (html / "data" / "test-cases").glob("*.json"):
        data = json.loads(case.read_text())
        if data["name"] == name:
            return data["uid"]
    raise AssertionError(f"no test case {name} in the report")


def _case(html: Path, starts: str) -> dict:
    """The served report's test case whose title starts with `starts`."""
    for case in (html / "data" / "test-cases").glob("*.json"):
        data = json.loads(case.read_text())
        if data["name"].startswith(starts):
            return data
    raise AssertionError(f"no test case titled {starts}... in the report")


def _single_file_uid(index: Path, starts: str) -> str:
    """The uid of a test case in the single-file report (its data is embedded base64)."""
    for uid, data in re.findall(r"d\('data/test-cases/([0-9a-f]+)\.json','([^']*)'\)",
                                index.read_text()):
        if json.loads(base64.b64decode(data))["name"].startswith(starts):
            return uid
    raise AssertionError(f"no test case titled {starts}... in {index}")


def test_browser_shows_suites_steps_and_attachments(served: tuple[str, Path],
                                                    tmp_path: Path) -> None:
    url, html = served
    overview = _page_text(url, tmp_path / "profile-overview")
    for shown in ("General 2",  # the suites widget: GEN-1's section, its two tests
                  "AT+MQTTSTATU 1",  # STATU-1's command
                  "Run summary 1",  # the run page's result
                  "Firmware defect",  # categories
                  "Trend", "IMEI 86612304*******", "Firmware L506_V3.2_MQTT_B20171031"):
        assert shown in overview, shown
    page = _page_text(f"{url}#testresult/{_uid(html, 'GEN-1: a firmware defect')}",
                      tmp_path / "profile-test")
    assert "pretend the firmware got this wrong" in page
    assert "AT answers OK" in page  # the step
    assert "transcript" in page  # the dut fixture's attachment


#: A command's step as the report shows it: its title, its parameters, its duration.
_STEP = re.compile(r"AT\+MQTTSTATU → OK [\d.]+ ms \d+ parameters (?:(\d+)ms|(\d+)s)")


def test_a_step_has_the_duration_of_its_exchange(served: tuple[str, Path],
                                                 tmp_path: Path) -> None:
    url, html = served
    case = _case(html, "STATU-1: status step by step")
    steps = [s for outer in case["testStage"]["steps"] for s in [outer, *outer["steps"]]
             if s["name"].startswith("AT+MQTTSTATU → OK")]
    assert steps and all(s["time"]["duration"] == s["time"]["stop"] - s["time"]["start"]
                         for s in steps)
    page = _page_text(f"{url}#testresult/{case['uid']}", tmp_path / "profile")
    shown = [int(ms or 0) + 1000 * int(s or 0) for ms, s in _STEP.findall(page)]
    assert shown and max(shown) > 0, page[:3000]


def _check_failure(text: str) -> None:
    """The simulator bug's failure: the clause, what was expected, the line received."""
    assert "GEN-1: An unknown command is answered ERROR" in text  # the title
    assert "an unknown command must be answered ERROR" in text  # what was expected
    assert "Clause GEN-1 (S, General): A command is `AT+NAME=args`" in text
    assert "sent AT+NOSUCHCOMMAND" in text
    assert "received OK (final)" in text  # the line the module really sent


def _check_summary(text: str) -> None:
    for shown in ("Run summary: 2 failed, 2 passed; L506_V3.2_MQTT_B20171031 on simulator",
                  "Firmware, rig and module", "IMEI 86612304*******",
                  "Verdict per clause", "GEN-1", "STATU-1", "MSUB-5",
                  "Response time per command", "MQTTSTATU",
                  "plot: Response time per command",  # the plots, attached
                  "run page"):  # the whole page, attached
        assert shown in text, shown


def test_served_report_has_the_run_page_and_the_bug_found(served: tuple[str, Path],
                                                          tmp_path: Path) -> None:
    url, html = served
    summary = _case(html, "Run summary")
    _check_summary(_page_text(f"{url}#testresult/{summary['uid']}", tmp_path / "summary"))
    page = next(a for a in summary["testStage"]["attachments"] if a["name"] == "run page")
    shown = _browse(f"{url.rsplit('/', 1)[0]}/data/attachments/{page['source']}",
                    tmp_path / "page")
    assert not shown.outside() and shown.requests, shown.requests  # the log saw the page
    for part in ("Verdict per clause", "Response time per command", "p95", "budget",
                 "Failing tests (2)"):
        assert part in shown.text, part
    bug = _case(html, "GEN-1: An unknown command")
    _check_failure(_page_text(f"{url}#testresult/{bug['uid']}", tmp_path / "bug"))


def test_single_file_report_opens_from_the_file_system(nightly: dict, tmp_path: Path) -> None:
    index = nightly["reports"] / "latest" / "html-file" / "index.html"
    assert "googletagmanager" not in index.read_text()  # analytics off
    url = index.resolve().as_uri()
    overview = _page_text(url, tmp_path / "overview")
    assert "Run summary" in overview and "Failed to fetch" not in overview
    summary = _single_file_uid(index, "Run summary")
    _check_summary(_page_text(f"{url}#testresult/{summary}", tmp_path / "summary"))
    bug = _single_file_uid(index, "GEN-1: An unknown command")
    _check_failure(_page_text(f"{url}#testresult/{bug}", tmp_path / "bug"))


def test_run_page_in_the_run_folder_links_the_failures(nightly: dict, tmp_path: Path) -> None:
    run = (nightly["reports"] / "latest").resolve()
    page = (run / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') >= 1  # the plots, embedded
    shown = _page_text((run / "index.html").as_uri(), tmp_path / "page")
    for part in ("Verdict per clause", "GEN-1", "Response time per command", "MQTTSTATU",
                 "Failing tests (2)", "Against the accepted baseline"):
        assert part in shown, part
    link = re.search(r'test_an_unknown_command_is_refused<br><a href="([^"#]+)#([^"]+)">'
                     r"in the report</a>", page)
    assert link is not None, page[:2000]
    _check_failure(_page_text(f"{(run / link.group(1)).as_uri()}#{link.group(2)}",
                              tmp_path / "bug"))
    transcript = re.search(r'href="(transcripts/[^"]*unknown_command[^"]*)"', page)
    assert transcript is not None and (run / transcript.group(1)).is_file()


def test_the_network_check_sees_a_page_that_reaches_out(tmp_path: Path) -> None:
    """The check above can fail: a page that loads a script from the internet is caught,
    from the file system as from the served report."""
    (tmp_path / "out.html").write_text(
        '<html><body><script src="https://www.googletagmanager.com/gtag/js"></script>'
        '<img src="http://example.com/pixel.png">hello</body></html>')
    shown = _browse((tmp_path / "out.html").as_uri(), tmp_path / "profile")
    assert "hello" in shown.text
    assert sorted(urlsplit(u).hostname for u in shown.outside()) == [
        "example.com", "www.googletagmanager.com"]


def test_a_bad_rig_is_said_before_running(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[dut]\nkind = "robot"\n')
    done = hil_run("--reports", str(tmp_path / "reports"), "--rig", str(bad))
    assert done.returncode == 4
    assert "bad.toml: [dut] kind = 'robot' must be one of 'simulator', 'hardware'" in done.stderr
    assert not (tmp_path / "reports").exists()
