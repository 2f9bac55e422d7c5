"""The farm's parts that need no process: place rigs, the places table, the busy message,
the merge of a parallel run's records, hil run's xdist options."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from fixtures.farm import _first_mine
from hil.cli import main, run
from hil.cli.places import places_table
from hil.farm import farm, lease
from hil.farm.labgrid import LabgridError, PlaceState, firmware_tag, holder_name
from hil.farm.lease import PlaceBusy, busy_message
from hil.farm.merge import environment_lines, merge_modules
from hil.report.categories import classify
from hil.report.records import ModuleSummary
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


def test_exporter_config_shares_the_pty_as_a_raw_serial_port() -> None:
    assert farm.exporter_config("l506-1", "/dev/pts/7") == (
        "l506-1:\n  RawSerialPort:\n    port: /dev/pts/7\n    speed: 115200\n")


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


def test_parallel_args() -> None:
    assert run.parallel_args(0, None) == []
    assert run.parallel_args(3, "each") == ["-n", "3", "--dist", "load", "--modules", "each"]
    assert run.parallel_args(3, None) == ["-n", "3", "--dist", "worksteal", "--modules", "share"]


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
