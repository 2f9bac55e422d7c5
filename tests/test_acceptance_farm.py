"""A farm: several modules in one run folder, or several runs, compared like with like.

Records name their module (`module` in each test row and timing sample, `run.modules` for
each one's identity); a run without them is one module, labelled by its rig. Both sides
holding the same places: module by module. Otherwise: each side pooled, if one firmware.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from hil import cli
from hil.acceptance.baseline import load
from hil.acceptance.compare import CannotCompare, compare
from hil.rig.thresholds import Thresholds

V32 = "L506_V3.2_MQTT_B20171031"
V33 = "L506_V3.3_MQTT_B20180315"
CONNECT = "suites/test_mqtt_flow.py::test_connect"
STATUS = "suites/test_status.py::test_status"
T = Thresholds()


def identity(revision: str) -> dict[str, str]:
    return {"model": "L506", "revision": revision, "CGMR": f"+CGMR: {revision}"}


def write_farm_run(folder: Path, modules: dict[str, tuple[str, float]], *, seed: int = 0,
                   rig: str = "farm", failing: str | None = None) -> Path:
    """One run folder of several modules: label → (firmware revision, MCONNECT ms). Each
    module ran both tests; `failing` names a module on which CONNECT failed. A single module
    is written the way a one-module run is: no module fields at all."""
    folder.mkdir(parents=True)
    farm = len(modules) > 1
    rng = random.Random(seed)
    tests, samples = [], []
    for label, (_, connect_ms) in modules.items():
        mark = {"module": label} if farm else {}
        tests += [{"nodeid": CONNECT, "outcome": "failed" if label == failing else "passed",
                   "clauses": [], **mark},
                  {"nodeid": STATUS, "outcome": "passed", "clauses": [], **mark}]
        samples += [{"command": command, "test": test, "total_ms": round(
                        centre + abs(rng.gauss(0, 0.2)), 3), **mark}
                    for command, centre, test in (("MCONNECT", connect_ms, CONNECT),
                                                  ("MQTTSTATU", 5.0, STATUS))
                    for _ in range(12)]
    first = next(iter(modules.values()))[0]
    run = {"started": "2026-01-01T02:00:00+00:00", "finished": "2026-01-01T02:09:00+00:00",
           "rig": rig, "dut": "serial", "identity": identity(first)}
    if farm:
        run["modules"] = {label: {"identity": identity(revision)}
                          for label, (revision, _) in modules.items()}
    (folder / "results.json").write_text(json.dumps({"run": run, "tests": tests}))
    (folder / "timings.json").write_text(json.dumps({"schema": 1, "samples": samples}))
    return folder


def test_one_folder_of_modules_is_read_module_by_module(tmp_path: Path) -> None:
    run = load(write_farm_run(tmp_path / "r", {"slot-1": (V32, 12.0), "slot-2": (V32, 12.0)},
                              failing="slot-2"))
    assert set(run.modules) == {"slot-1", "slot-2"}
    assert run.tests[CONNECT][0] == "failed"  # pooled: the worst of the modules
    assert run.modules["slot-1"].tests[CONNECT][0] == "passed"
    assert len(run.latency["MCONNECT"][CONNECT]) == 24
    assert run.label == f"{V32} on 2 modules (slot-1, slot-2)"


def test_same_places_are_compared_module_by_module(tmp_path: Path, capsys) -> None:
    """Only slot-2's new firmware is slow: named with its place, not diluted by slot-1."""
    base = write_farm_run(tmp_path / "a", {"slot-1": (V32, 12.0), "slot-2": (V32, 12.0)})
    cand = write_farm_run(tmp_path / "b", {"slot-1": (V33, 12.0), "slot-2": (V33, 30.0)},
                          seed=1, failing="slot-1")
    c = compare(load(base), load(cand), T)
    assert c.pairing == "by place, module by module: slot-1, slot-2"
    verdicts = {s.command: s.verdict for s in c.latency}
    assert verdicts["MCONNECT @slot-2"] == "regression"
    assert verdicts["MCONNECT @slot-1"] == "unchanged"
    assert [o.test for o in c.outcomes] == [f"{CONNECT} @slot-1"]
    assert hil("compare", base, cand) == 1
    out = capsys.readouterr().out
    assert out.startswith("Not accepted: 1 test(s) now fail (test_connect @slot-1); slower: "
                          "MCONNECT @slot-2 x2.48 (p50 12.10 -> 30.07 ms)")
    assert "modules    by place, module by module: slot-1, slot-2" in out


def test_several_runs_of_one_firmware_are_pooled_against_one(tmp_path: Path, capsys) -> None:
    """Two benches ran the candidate; the baseline is one bench's run: pooled, and said."""
    base = write_farm_run(tmp_path / "a", {"m": (V32, 12.0)}, rig="bench-1")
    one = write_farm_run(tmp_path / "b1", {"m": (V33, 12.0)}, seed=1, rig="bench-1")
    two = write_farm_run(tmp_path / "b2", {"m": (V33, 12.0)}, seed=2, rig="bench-2")
    assert hil("compare", base, one, two) == 0
    out = capsys.readouterr().out
    assert "modules    pooled: 1 module(s) (bench-1) against 2 (bench-1, bench-2)" in out
    assert "MCONNECT   12/24" in out


def test_several_runs_on_the_same_places_are_paired_by_place(tmp_path: Path, capsys) -> None:
    runs = {}
    for side, revision in (("a", V32), ("b", V33)):
        for bench in ("bench-1", "bench-2"):
            runs[side, bench] = write_farm_run(tmp_path / side / bench, {"m": (revision, 12.0)},
                                               seed=len(runs), rig=bench)
    baselines = tmp_path / "baselines"
    assert hil("baseline", "accept", runs["a", "bench-1"], runs["a", "bench-2"],
               "--into", baselines) == 0
    kept = next(baselines.rglob("baseline.json"))
    document = json.loads(kept.read_text())
    assert set(document["modules"]) == {"bench-1", "bench-2"}
    assert document["accepted"]["source"] == f"{runs['a', 'bench-1']}, {runs['a', 'bench-2']}"
    assert hil("baseline", "show", kept) == 0
    assert "modules       2: bench-1, bench-2" in capsys.readouterr().out
    assert hil("compare", baselines, runs["b", "bench-1"], runs["b", "bench-2"]) == 0
    assert "by place, module by module: bench-1, bench-2" in capsys.readouterr().out


def test_pooling_mixed_firmware_or_pairing_no_place_cannot_compare(tmp_path: Path,
                                                                     capsys) -> None:
    base = load(write_farm_run(tmp_path / "a", {"slot-1": (V32, 12.0)}, rig="slot-1"))
    mixed = load(write_farm_run(tmp_path / "b", {"slot-1": (V32, 12.0), "slot-2": (V33, 12.0)}))
    with pytest.raises(CannotCompare, match="pool only one firmware"):
        compare(base, mixed, T)
    assert compare(base, mixed, T, "place").pairing == "by place: slot-1"
    elsewhere = write_farm_run(tmp_path / "c", {"slot-7": (V32, 12.0), "slot-8": (V32, 12.0)})
    assert hil("compare", tmp_path / "a", elsewhere, "--pair", "place") == 2
    assert "no module in the same place in both runs" in capsys.readouterr().err
    assert hil("baseline", "accept", tmp_path / "b", "--into", tmp_path / "kept") == 2
    assert f"its modules run {V32}, {V33}: a baseline is one firmware's" in \
        capsys.readouterr().err


def hil(*args: str | Path) -> int:
    return cli.main([str(a) for a in args])
