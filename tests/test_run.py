"""`hil run`'s parts: folder names, the pytest command, the run's bound, latest, history."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest

from hil.cli import run


def test_run_folders_sort_by_time_and_never_collide(tmp_path: Path) -> None:
    assert run.run_stamp(datetime(2025, 1, 31, 2, 0, 5, tzinfo=UTC)) == "2025-01-31T02-00-05Z"
    first, second = run.new_run_dir(tmp_path), run.new_run_dir(tmp_path)
    assert first != second and first.is_dir() and second.is_dir()


def test_pytest_command_runs_the_suites_unless_paths_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "test_x.py").write_text("")
    rig = tmp_path / "rig.toml"
    command = run.pytest_command(tmp_path / "r", rig, tmp_path / "s.json", ["-k", "flow"])
    assert command[:3] == [sys.executable, "-m", "pytest"]
    assert str(run.ROOT / "suites") in command and command[-2:] == ["-k", "flow"]
    at = command.index("--l506-rig")
    assert ["--l506-rig", str(rig)] == command[at:at + 2]
    named = run.pytest_command(tmp_path / "r", rig, tmp_path / "s.json",
                               ["test_x.py::test_one", "-x"])
    assert str(run.ROOT / "suites") not in named
    assert named[-2:] == [f"{tmp_path / 'test_x.py'}::test_one", "-x"]


@pytest.mark.timed
def test_a_run_that_overstays_is_stopped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    log = tmp_path / "pytest.log"
    start = time.monotonic()
    status = run.stream([sys.executable, "-c", "print('started', flush=True); "
                         "import time; time.sleep(60)"], log, timeout_s=1.0)
    assert time.monotonic() - start < 20
    assert status != 0
    text = log.read_text()
    assert text.startswith("started") and "did not finish within" in text
    assert "started" in capsys.readouterr().out  # streamed as it ran


def test_latest_is_a_relative_link_replaced_atomically(tmp_path: Path) -> None:
    one, two = tmp_path / "2025-01-01T00-00-00Z", tmp_path / "2025-01-02T00-00-00Z"
    one.mkdir()
    two.mkdir()
    run.point_latest(tmp_path, one)
    run.point_latest(tmp_path, two)
    assert (tmp_path / "latest").readlink() == Path(two.name)


def test_history_comes_from_the_newest_report_that_has_one(tmp_path: Path) -> None:
    old, broken, current = (tmp_path / n for n in ("2025-01-01", "2025-01-02", "2025-01-03"))
    (old / "html" / "history").mkdir(parents=True)
    (old / "allure-results").mkdir()
    (old / "allure-results" / "executor.json").write_text(json.dumps({"buildOrder": 4}))
    broken.mkdir()  # its report failed: no html
    current.mkdir()
    run.point_latest(tmp_path, broken)
    assert run.previous_report(tmp_path, current) == old
    results = current / "allure-results"
    results.mkdir()
    run.write_executor(results, current, "bench-1", run._build_order(old))
    executor = json.loads((results / "executor.json").read_text())
    assert executor["buildOrder"] == 5 and "bench-1" in executor["reportName"]


def test_secret_check_names_the_file_not_the_secret(tmp_path: Path) -> None:
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "a.json").write_text('{"password": "swordfish-42"}')
    (tmp_path / "rx.bin").write_bytes(b"\x00swordfish-42\xff")
    (tmp_path / "clean.txt").write_text("nothing here")
    secrets = tmp_path.parent / "secrets.json"
    secrets.write_text(json.dumps(["swordfish-42"]))
    found = run.check_secrets(tmp_path, secrets, rig_secrets=["x"])  # too short to scan for
    assert found == ["html/a.json holds secret #2 (12 characters)",
                     "rx.bin holds secret #2 (12 characters)"]


def test_missing_allure_says_to_run_setup(tmp_path: Path) -> None:
    with pytest.raises(run.RunError, match="run scripts/setup"):
        run.allure_binary(tmp_path)


def test_keep_deletes_the_oldest_runs_but_never_latest_or_other_folders(tmp_path: Path) -> None:
    names = ["2025-01-01T00-00-00Z", "2025-01-02T00-00-00Z", "2025-01-02T00-00-00Z-2",
             "2025-01-02T00-00-00Z-10", "2025-01-03T00-00-00Z"]
    for name in names:
        (tmp_path / name / "html").mkdir(parents=True)
    (tmp_path / "baselines").mkdir()  # not a run: never touched
    run.point_latest(tmp_path, tmp_path / names[0])  # latest is whatever it points at
    removed = run.prune_runs(tmp_path, keep=2)
    assert [p.name for p in removed] == names[1:3]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([names[0], names[3], names[4], "baselines", "latest"])
    assert run.prune_runs(tmp_path, keep=2) == []


def test_hil_version_names_the_package_and_the_commit() -> None:
    done = subprocess.run([sys.executable, "-m", "hil.cli", "--version"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rf"hil {re.escape(metadata.version('l506-hil'))}( \(\w+\))?\n",
                        done.stdout), done.stdout


def test_failing_tests_are_found_in_the_single_file_report(tmp_path: Path) -> None:
    def case(uid: str, labels: list[dict[str, str]]) -> str:
        data = base64.b64encode(json.dumps({"uid": uid, "labels": labels}).encode()).decode()
        return f"d('data/test-cases/{uid}.json','{data}'),"

    index = tmp_path / "index.html"
    index.write_text("<script>Promise.allSettled([" + case("a1", [
        {"name": "suite", "value": "x"}, {"name": "nodeid", "value": "suites/t.py::test_x"}])
        + case("b2", [{"name": "suite", "value": "gap"}])  # no nodeid: not a pytest test
        + "d('data/suites.json','e30='),])</script>")
    assert run.single_file_tests(index) == {"suites/t.py::test_x": "a1"}


def test_the_last_line_gives_the_totals_or_why_there_are_none(tmp_path: Path) -> None:
    assert run.summary(tmp_path) == "no results.json"
    (tmp_path / "results.json").write_text(json.dumps(
        {"run": {}, "tests": [], "totals": {"passed": 3, "failed": 1}}))
    assert run.summary(tmp_path) == "1 failed, 3 passed"
    (tmp_path / "results.json").write_text('{"run": {}, "tests": [], "totals": []}')
    assert run.summary(tmp_path) == (
        f"no totals: {tmp_path / 'results.json'}: totals must be a table of numbers, not []")
