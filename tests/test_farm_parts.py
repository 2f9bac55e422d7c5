"""The farm's parts that need no process: place rigs, the places table, the busy message,
the merge of a parallel run's records, hil run's xdist options."""

from __future__ import annotations

import csv
import json
import subprocess
import threading
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from hil.cli import main, run
from hil.cli.places import places_table
from hil.farm import farm, lease
from hil.farm.labgrid import LabgridError, PlaceState, firmware_tag, holder_name
from hil.farm.lease import PlaceBusy, PlaceLease, busy_message
from hil.farm.merge import environment_lines, merge_modules
from hil.fixtures import farm as fixtures_farm
from hil.fixtures.farm import EarlyLease, _first_mine
from hil.fixtures.spec import SPEC_ATTRIBUTE, RunOutcome, Traceability, load_clauses
from hil.report import page
from hil.report.categories import classify
from hil.report.records import ModuleSummary, Sample, read_timings, read_traceability
from hil.report.timing import write_json
from hil.rig import RigError, rig_from_dict


def _place(name: str, acquired: str | None = None, port: int | None = 4000,
           avail: bool = True, protocol: str = "rfc2217", tags: dict | None = None) -> PlaceState:
    return PlaceState.from_json({
        "name": name, "acquired": acquired, "tags": tags or {}, "comment": "",
        "changed": 1000.0,
        "resources": [{"exporter": f"host-{name}", "group": name, "cls": "NetworkSerialPort",
                       "name": "NetworkSerialPort", "avail": avail,
                       "params": {"host": "127.0.0.1", "port": port, "protocol": protocol}}],
    })


def test_a_rig_names_one_place_or_several() -> None:
    one = rig_from_dict({"name": "t", "dut": {"kind": "hardware", "place": "l506-a"},
                         "labgrid": {"coordinator": "127.0.0.1:20408"}})
    assert one.dut.places == ("l506-a",) and one.dut.port is None
    assert one.labgrid.coordinator == "127.0.0.1:20408"
    assert one.labgrid.acquire_timeout_s == 300
    farm_rig = rig_from_dict({"name": "t", "dut": {"kind": "simulator", "place": ["a", "b"],
                                                   "time_scale": 0.05}})
    assert farm_rig.dut.places == ("a", "b") and farm_rig.power.backend == "none"


@pytest.mark.parametrize(("dut", "power", "says"), [
    ({"kind": "hardware", "place": "a", "port": "/dev/ttyUSB0"}, {}, "exclude each other"),
    ({"kind": "hardware", "place": ["a", "a"]}, {}, "name each place once"),
    ({"kind": "hardware", "place": 3}, {}, "a string or a list of strings"),
    ({"kind": "simulator", "place": "a"}, {"backend": "simulator"}, "powered by the place"),
    ({"kind": "simulator", "place": "a", "bugs": ["cgmr_empty"]}, {}, "remove bugs"),
])
def test_a_wrong_place_says_what_to_write(dut: dict, power: dict, says: str) -> None:
    with pytest.raises(RigError, match=says):
        rig_from_dict({"name": "t", "dut": dut, "power": power})


def test_unknown_labgrid_key_is_named() -> None:
    with pytest.raises(RigError, match=r"\[labgrid\] unknown key 'coordinater'.*coordinator"):
        rig_from_dict({"name": "t", "dut": {"kind": "hardware", "place": "a"},
                       "labgrid": {"coordinater": "x"}})


def test_the_farms_rig_loads_and_names_its_places() -> None:
    text = farm.rig_text(["l506-1", "l506-2"], "127.0.0.1:5555", "v3.2")
    rig = rig_from_dict(tomllib.loads(text))
    assert rig.dut.places == ("l506-1", "l506-2") and rig.dut.kind == "simulator"
    assert rig.labgrid.coordinator == "127.0.0.1:5555" and rig.dut.time_scale == farm.TIME_SCALE


def test_exporter_config_shares_the_port_and_the_power_switch() -> None:
    power = "http://127.0.0.1:8000/relay/{index}/{value}"
    config = farm.exporter_config("l506-1", "/farm/tty-l506-1", power)
    assert config == ("l506-1:\n"
                      "  RawSerialPort:\n    port: /farm/tty-l506-1\n    speed: 115200\n"
                      "  NetworkPowerPort:\n    model: simplerest\n"
                      f"    host: '{power}'\n    index: 0\n")
    rig = rig_from_dict(tomllib.loads(farm.rig_text(["l506-1"], "127.0.0.1:5555", "v3.2")))
    assert rig.power.backend == "place"


def test_serial_url_follows_the_resource() -> None:
    assert _place("a").serial_url() == "rfc2217://127.0.0.1:4000"
    assert _place("a").serial_url(ignore_control=True).endswith("?ign_set_control")
    assert _place("a", protocol="raw").serial_url() == "socket://127.0.0.1:4000"
    with pytest.raises(LabgridError, match="not available"):
        _place("a", avail=False).serial_url()
    bare = PlaceState("b", None, {}, "", 0.0, ())
    with pytest.raises(LabgridError, match="add-match"):
        bare.serial_url()


def test_places_table_shows_holder_firmware_and_port() -> None:
    table = places_table([
        _place("l506-1", acquired="bench/ana-hil42", tags={"firmware": "l506_v3_2"}),
        _place("l506-2", port=None),
        _place("l506-3", avail=False),
    ], now=1030.0)
    lines = table.splitlines()
    assert lines[0].split() == ["PLACE", "HELD", "BY", "LAST", "FIRMWARE", "SERIAL"]
    assert "ana-hil42 on bench (30 s ago)" in lines[1] and "l506_v3_2" in lines[1]
    assert "127.0.0.1:4000" in lines[1]
    assert "free" in lines[2] and "shared while locked" in lines[2]
    assert "unavailable" in lines[3]


def test_busy_message_names_the_holder() -> None:
    states = [_place("l506-1", acquired="bench/ana-hil42"), _place("l506-2")]
    said = busy_message(states, ["l506-1"], 5.0)
    assert "still held after 5 s" in said and "l506-1 by ana-hil42 on bench" in said
    assert "release --kick" in said
    assert busy_message(states, ["l506-1"], None).startswith("waiting for place held")


class _SlowCoordinator:
    """A coordinator so slow that the first try to lock a held place outlasts the timeout."""

    coordinator = "127.0.0.1:1"
    identity = "bench/hil1"

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock

    def client(self, *args: str, place: str | None = None) -> subprocess.CompletedProcess[str]:
        self.clock[0] += 10.0
        return subprocess.CompletedProcess(args, 1, "", "already acquired by bench/ana-hil42")

    def places(self) -> list[PlaceState]:
        return [_place("l506-1", acquired="bench/ana-hil42")]


def test_a_held_place_is_said_to_be_waited_for_even_when_one_try_outlasts_the_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(lease.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(lease, "start_watchdog", lambda lab, places: None)
    said: list[str] = []
    with pytest.raises(PlaceBusy, match="still held after 3 s"):
        lease.PlaceLease.acquire(_SlowCoordinator(clock), ["l506-1"], 3.0,  # type: ignore[arg-type]
                                 waiting=said.append)
    assert said == ["waiting for place held: l506-1 by ana-hil42 on bench"]


def test_holder_and_firmware_tag() -> None:
    assert holder_name(1234).endswith("-hil1234")
    assert firmware_tag("L506_V3.2_MQTT_B20171031") == "l506_v3_2_mqtt_b20171031"
    assert firmware_tag("") == "unknown"


def test_place_lost_is_infrastructure() -> None:
    assert classify("hil.farm.lease.PlaceLost: place l506-2: its exporter vanished") == (
        "Infrastructure")


def test_parallel_args(tmp_path: Path) -> None:
    assert run.parallel_args(0, None) == []
    assert run.parallel_args(3, "each") == ["-n", "3", "--dist", "load", "--l506-modules", "each"]
    assert run.parallel_args(3, None) == ["-n", "3", "--dist", "worksteal", "--l506-modules",
                                              "share"]
    earlier = tmp_path / "results.json"
    assert run.parallel_args(3, "share", earlier)[-1] == f"--l506-durations={earlier}"
    assert not any("durations" in a for a in run.parallel_args(3, "each", earlier))
    earlier.write_text("{}")  # an existing file is still no test path: the suites run
    command = run.pytest_command(tmp_path, tmp_path / "rig.toml", tmp_path / "s.json",
                                 run.parallel_args(3, "share", earlier))
    assert str(run.ROOT / "suites") in command


def _results(folder: Path, rig: str, tests: dict[str, float]) -> None:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "run": {"rig": rig}, "totals": {},
        "tests": [{"nodeid": n, "outcome": "passed", "duration_s": d} for n, d in tests.items()],
    }))


def test_durations_come_from_the_last_run_of_the_same_rig(tmp_path: Path) -> None:
    assert run.earlier_durations(tmp_path, "bench-1") is None  # no run yet
    _results(tmp_path / "2026-01-01T00-00-00Z", "bench-1", {"t": 1.0})
    (tmp_path / "latest").symlink_to("2026-01-01T00-00-00Z")
    assert run.earlier_durations(tmp_path, "bench-1") == tmp_path / "latest" / "results.json"
    assert run.earlier_durations(tmp_path, "bench-2") is None  # another bench's times


def _sharing(durations: Path | None, workers: int = 3, each: bool = False) -> SimpleNamespace:
    options = {"--l506-durations": durations and str(durations),
               "--l506-modules": "each" if each else "share"}
    return SimpleNamespace(getoption=options.__getitem__,
                           workerinput={"workerid": "gw0", "workercount": workers})


def test_shared_tests_are_dealt_longest_first_from_the_durations(tmp_path: Path) -> None:
    _results(tmp_path / "run", "r", {"a": 1.0, "b": 5.0, "c": 1.0, "d": 4.0})
    items = [SimpleNamespace(nodeid=n) for n in "abcd"]
    fixtures_farm.pytest_collection_modifyitems(_sharing(tmp_path / "run" / "results.json", 2),
                                                items)
    assert [i.nodeid for i in items] == ["b", "c", "d", "a"]  # slices of 6 s and 5 s
    for config in (_sharing(None), _sharing(tmp_path / "run" / "results.json", each=True),
                   _sharing(tmp_path / "run" / "results.json", workers=1)):
        kept = [SimpleNamespace(nodeid=n) for n in "abcd"]
        fixtures_farm.pytest_collection_modifyitems(config, kept)
        assert [i.nodeid for i in kept] == list("abcd")


def test_durations_that_cannot_be_read_keep_the_order_and_say_why(tmp_path: Path) -> None:
    broken = tmp_path / "results.json"
    broken.write_text("{")
    items = [SimpleNamespace(nodeid=n) for n in "ab"]
    with pytest.warns(pytest.PytestWarning, match="results.json"):
        fixtures_farm.pytest_collection_modifyitems(_sharing(broken), items)
    assert [i.nodeid for i in items] == ["a", "b"]


def _worker(run_dir: Path, worker: str, module: str, tests: list[tuple[str, str]]) -> None:
    folder = run_dir / "modules" / worker
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "run": {"identity": {"module": module, "place": module, "revision": "V3.2",
                             "imei": "86612304*******"}, "finished": "now"},
        "totals": {"passed": len(tests)},
        "tests": [{"nodeid": n, "outcome": o} for n, o in tests],
    }))


def test_merge_labels_every_test_with_its_module(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"run": {"rig": "farm"}, "tests": []}))
    _worker(tmp_path, "gw0", "l506-1", [("t.py::a[l506-1]", "passed")])
    _worker(tmp_path, "gw1", "l506-2", [("t.py::a[l506-2]", "failed")])
    allure = tmp_path / "allure"
    allure.mkdir()
    (allure / "environment.properties").write_text("Rig=farm\nIMEI=1\nFirmware=x\n")
    result = merge_modules(tmp_path, allure)
    assert result is not None
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["run"]["rig"] == "farm" and saved["run"]["modules"] == 2
    assert saved["totals"] == {"passed": 1, "failed": 1}
    assert [(t["nodeid"], t["module"]) for t in saved["tests"]] == [
        ("t.py::a[l506-1]", "l506-1"), ("t.py::a[l506-2]", "l506-2")]
    assert [m["folder"] for m in saved["modules"]] == ["modules/l506-1", "modules/l506-2"]
    assert (tmp_path / "modules" / "l506-2" / "results.json").is_file()
    env = (allure / "environment.properties").read_text().splitlines()
    assert env[0] == "Rig=farm" and not any(line.startswith(("IMEI", "Firmware")) for line in env)
    assert "Module\\ l506-1=V3.2 \\u00b7 IMEI 86612304*******" in env


def _timings(run_dir: Path, worker: str, firmware: str, totals_ms: list[float]) -> None:
    """A worker's timings.json as fixtures/timing.py writes it (no plots: workers draw none)."""
    samples = [Sample("MPUB", f"t.py::p{i}", "call", i / 10, 1.0, None, ms, None, ms,
                      final="OK", budget_ms=50.0, over_budget=ms > 50)
               for i, ms in enumerate(totals_ms)]
    write_json(run_dir / "modules" / worker / "timings.json", samples,
               {"dut": "simulator", "rig": "farm", "tests": 2, "firmware": firmware,
                "baud": 115200})


def test_merge_makes_one_timing_record_for_every_module(tmp_path: Path) -> None:
    _worker(tmp_path, "gw0", "l506-1", [("t.py::p0", "passed")])
    _worker(tmp_path, "gw1", "l506-2", [("t.py::p1", "passed")])
    _timings(tmp_path, "gw0", "V3.2", [10.0, 20.0, 30.0])
    _timings(tmp_path, "gw1", "V3.3", [40.0, 60.0])
    merge_modules(tmp_path, None)
    rows = list(csv.DictReader((tmp_path / "timings.csv").open()))
    totals = {r["module"]: r for r in rows if r["metric"] == "total"}
    assert set(totals) == {"l506-1", "l506-2"}
    assert (totals["l506-1"]["n"], totals["l506-1"]["p50_ms"]) == ("3", "20.000")
    assert (totals["l506-2"]["n"], totals["l506-2"]["over_budget"]) == ("2", "1")
    doc = json.loads((tmp_path / "timings.json").read_text())
    assert doc["commands"]["MPUB"]["total"]["n"] == 5  # the run's figures, every module
    assert doc["modules"]["l506-2"]["commands"]["MPUB"]["total"]["max"] == 60.0
    assert doc["firmware"] == "V3.2 / V3.3" and doc["tests"] == 4
    assert [s["module"] for s in doc["samples"]] == ["l506-1"] * 3 + ["l506-2"] * 2
    assert doc["over_budget"] == [{"test": "t.py::p1", "command": "MPUB", "text": "",
                                   "total_ms": 60.0, "budget_ms": 50.0, "module": "l506-2"}]
    metrics = (tmp_path / "metrics.txt").read_text()
    assert metrics.count("# TYPE l506_response_ms gauge") == 1  # one family, a series each
    assert 'l506_responses_total{command="MPUB",dut="simulator",firmware="V3.2",' \
           'module="l506-1",rig="farm"} 3.0' in metrics
    assert 'module="l506-2"' in metrics and metrics.endswith("# EOF\n")
    assert (tmp_path / "plots" / "latency.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "modules" / "l506-1" / "plots").exists()
    record = read_timings(tmp_path / "timings.json")  # the record reads back what it wrote
    assert record.firmware_by_module == {"l506-1": "V3.2", "l506-2": "V3.3"}
    assert record.modules["l506-1"]["MPUB"].metrics["total"]["n"] == 3
    assert [(o.test, o.module) for o in record.over_budget] == [("t.py::p1", "l506-2")]
    assert "modules" not in record.extra and "firmware_by_module" not in record.extra


def test_a_worker_timing_record_that_cannot_be_read_is_left_out_and_named(
        tmp_path: Path) -> None:
    _worker(tmp_path, "gw0", "l506-1", [("t.py::p0", "passed")])
    _worker(tmp_path, "gw1", "l506-2", [("t.py::p1", "passed")])
    _timings(tmp_path, "gw0", "V3.2", [10.0, 20.0])
    broken = tmp_path / "modules" / "gw1" / "timings.json"
    broken.write_text('{"samples": [{"command": "MPUB", "total_ms": "slow"}]}')
    merged = merge_modules(tmp_path, None)
    assert merged is not None
    assert [str(e) for e in merged.refused] == [
        f"{broken.parent.with_name('l506-2') / 'timings.json'}: "
        "samples[0].total_ms must be a number or null, not \"slow\""]
    record = read_timings(tmp_path / "timings.json")
    assert {s.module for s in record.samples} == {"l506-1"} and record.tests == 2


def test_run_page_shows_each_modules_verdict(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"run": {"rig": "farm"}, "tests": []}))
    _worker(tmp_path, "gw0", "l506-1", [("t.py::a", "passed")])
    _worker(tmp_path, "gw1", "l506-2", [("t.py::b", "failed")])
    (tmp_path / "modules" / "gw1" / "results.json").write_text(json.dumps({
        "run": {"identity": {"module": "l506-2", "revision": "V3.3", "imei": "8661*"}},
        "totals": {"failed": 1}, "tests": [{"nodeid": "t.py::b", "outcome": "failed"}]}))
    merge_modules(tmp_path, None)
    record = page.load_run(tmp_path)
    assert page.module_rows(record) == [
        ["l506-1", "V3.2", "86612304*******", '<span class="v-passed">passed</span>',
         "1 passed"],
        ["l506-2", "V3.3", "8661*", '<span class="v-failed">failed</span>', "1 failed"]]
    html = page.body(record)
    assert "Verdict per module (2)" in html
    assert 'b on l506-2<br><a href="modules/l506-2/transcripts/t.py_b/transcript.log">' in html


def test_a_worker_record_that_cannot_be_read_is_left_out_and_named(tmp_path: Path) -> None:
    _worker(tmp_path, "gw0", "l506-1", [("t.py::a[l506-1]", "passed")])
    broken = tmp_path / "modules" / "gw1" / "results.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"run": {}, "tests": [{"nodeid": 7}]}')
    merged = merge_modules(tmp_path, None)
    assert merged is not None
    assert [t.nodeid for t in merged.results.tests] == ["t.py::a[l506-1]"]
    assert [str(e) for e in merged.refused] == [
        f"{broken}: tests[0].nodeid must be a string, not 7"]


def test_merge_without_workers_leaves_the_run_alone(tmp_path: Path) -> None:
    assert merge_modules(tmp_path, None) is None
    assert not (tmp_path / "results.json").exists()


def test_environment_lines_escape_module_names() -> None:
    text = environment_lines("", (ModuleSummary(module="a b:c", folder="modules/a b:c"),))
    assert text == "Module\\ a\\ b\\:c=? \\u00b7 IMEI ?\n"


def test_worker_k_tries_the_kth_place_first() -> None:
    places = ["a", "b", "c"]
    assert _first_mine(SimpleNamespace(), places) == ["a", "b", "c"]  # not a worker
    assert _first_mine(SimpleNamespace(workerinput={"workerid": "gw1"}), places) == [
        "b", "c", "a"]
    assert _first_mine(SimpleNamespace(workerinput={"workerid": "gw4"}), places) == [
        "b", "c", "a"]


def test_farm_commands_say_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(farm.FarmError, match="N must be 1 or more"):
        farm.up(0, tmp_path)
    with pytest.raises(farm.FarmError, match=r"no farm running .*hil farm up N"):
        farm.down(tmp_path)
    assert farm.down(tmp_path, quiet=True) == []
    assert main(["farm", "down", "--dir", str(tmp_path)]) == 1
    assert "hil farm: no farm running from" in capsys.readouterr().err


def test_each_or_share_without_workers_is_refused(capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--each"]) == 4
    assert "--each and --share go with -n N" in capsys.readouterr().err


def _report(nodeid: str, when: str, module: str = "", **extra: object) -> SimpleNamespace:
    return SimpleNamespace(nodeid=nodeid, when=when, duration=0.1, failed=False, skipped=False,
                           passed=True, longreprtext="", longrepr=None,
                           user_properties=[("module", module)] if module else [], **extra)


def test_workers_reports_carry_clauses_to_one_matrix(tmp_path: Path) -> None:
    """A worker puts its test's clauses on the report; the controller, which collected
    nothing, builds the run's matrix from the reports of every worker."""
    root = Path(__file__).resolve().parent.parent
    worker = Traceability(root, load_clauses(root))
    worker.tests["t.py::a"] = RunOutcome("t.py::a", ["MPUB-1"], skipped_parts=[
        ("MPUB-1", "retain not checked")])
    reports = []
    for when in ("setup", "call", "teardown"):
        report = _report("t.py::a", when, "l506-2 · V3.2 · IMEI 8661*")
        worker.carry(report)
        reports.append(report)
    controller = Traceability(root, load_clauses(root))
    for report in [*reports, _report("t.py::b", "call", "l506-1 · V3.2 · IMEI 8661*",
                                     **{SPEC_ATTRIBUTE: {"clauses": ["MSUB-5"],
                                                         "open_points": [],
                                                         "skipped_parts": []}})]:
        controller.reported(report)
    rows = {row.clause.id: row for row in controller.rows()}
    assert rows["MPUB-1"].verdict == "partial" and rows["MSUB-5"].verdict == "pass"
    assert rows["MPUB-1"].unchecked() == ["retain not checked"]
    controller.write(tmp_path, None)
    matrix = read_traceability(tmp_path / "traceability.json")
    tests = {t.test: t for c in matrix.clauses for t in c.tests}
    assert tests["t.py::a"].module == "l506-2 · V3.2 · IMEI 8661*"
    assert tests["t.py::b"].module == "l506-1 · V3.2 · IMEI 8661*"
    assert "`b` passed on l506-1" in controller._markdown(list(rows.values()))


def test_an_early_lock_hands_over_its_place_or_its_error() -> None:
    got = EarlyLease(lambda stop: "lease of l506-1")  # type: ignore[arg-type, return-value]
    assert got.result() == "lease of l506-1"
    assert got.cancel() == "lease of l506-1"  # unconfigure releases what no test took

    def held(stop: threading.Event) -> PlaceLease:
        raise LabgridError("place still held after 3 s: l506-1 by ana-hil1 on bench-3")

    failed = EarlyLease(held)
    with pytest.raises(LabgridError, match="by ana-hil1 on bench-3"):
        failed.result()
    assert failed.cancel() is None


def test_an_early_lock_still_waiting_stops_when_the_run_ends() -> None:
    def waiting(stop: threading.Event) -> PlaceLease:
        stop.wait(30)
        raise LabgridError("the run ended before a place was locked")

    early = EarlyLease(waiting)
    start = time.monotonic()
    assert early.cancel() is None
    assert time.monotonic() - start < 5


class _HeldLab:
    """labgrid-client as seen while someone else holds every place."""

    coordinator, holder, identity = "127.0.0.1:1", "me-hil1", "pc/me-hil1"

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def client(self, *args: str, place: str | None = None) -> SimpleNamespace:
        self.calls.append((*args, place or ""))
        return SimpleNamespace(returncode=1, stdout="", stderr="place l506-1 already acquired")

    def places(self) -> list[PlaceState]:
        return [_place("l506-1", acquired="bench-3/ana-hil1")]


def test_a_wait_for_a_held_place_stops_when_asked() -> None:
    lab, stop, said = _HeldLab(), threading.Event(), []
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    start = time.monotonic()
    with pytest.raises(LabgridError, match="the run ended before a place was locked"):
        PlaceLease.acquire(lab, ["l506-1"], 60, waiting=said.append,  # type: ignore[arg-type]
                           stop=stop)
    assert time.monotonic() - start < 10  # not the 60 s of the timeout
    assert said == ["waiting for place held: l506-1 by ana-hil1 on bench-3"]
    assert ("release-from", "pc/me-hil1", "l506-1") in lab.calls  # nothing left behind
