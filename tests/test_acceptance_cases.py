"""The decision rule on the cases it must get right, run folder against run folder.

A baseline and a candidate run folder hold 3, 5, 9 or 30 samples of MCONNECT, the
candidate's shifted x1.5, x10 or x600 or not at all, or not shifted but with the tail of a
busy PC (a fifth of its responses 5-40 ms late). A shifted case must never be ACCEPTABLE; an
unshifted one, noisy or not, must be. docs/acceptance.md shows the table this file prints
(`python tests/test_acceptance_cases.py`), and a test checks that it still does.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

import pytest

from hil import cli
from hil.acceptance.baseline import load
from hil.acceptance.compare import ACCEPTABLE, INCONCLUSIVE, REGRESSIONS, Comparison, compare
from hil.acceptance.gate import RUN_INCONCLUSIVE, gate
from hil.acceptance.stats import judge
from hil.rig.thresholds import Thresholds

ROOT = Path(__file__).resolve().parent.parent
SIZES = (3, 5, 9, 30)
#: column → (factor of the candidate's responses, share of them in a busy PC's tail)
CASES = {"x1": (1.0, 0.0), "x1.5": (1.5, 0.0), "x10": (10.0, 0.0), "x600": (600.0, 0.0),
         "x1, busy PC": (1.0, 0.2)}
CONNECT_MS = 4.8  # the simulator's MCONNECT, sent -> +MCONNECT: SUCCESS
TESTS = ("suites/test_mconnect.py::test_connect", "suites/test_status.py::test_status")
VERDICT = {ACCEPTABLE: "ACCEPTABLE", REGRESSIONS: "NOT ACCEPTABLE", INCONCLUSIVE: "INCONCLUSIVE"}


def responses(n: int, centre: float, seed: int, tail: float = 0.0) -> list[float]:
    """n response times as a bench gives them: a floor and a few % of jitter; with `tail`,
    that share of them (one in every 1/tail, from the third) delayed 5-40 ms by a busy host."""
    rng = random.Random(seed)
    every = round(1 / tail) if tail else 0
    return [round(centre * (1 + abs(rng.gauss(0, 0.05)))
                  + (every and i % every == 2) * rng.uniform(5, 40), 3) for i in range(n)]


def write_run(folder: Path, connects: list[float], seed: int) -> Path:
    """A run folder with what acceptance reads: results.json and timings.json (MCONNECT's
    samples spread over two tests, and 30 unshifted MQTTSTATU samples)."""
    folder.mkdir(parents=True)
    identity = {"model": "L506", "revision": "L506_V3.2_MQTT_B20171031"}
    (folder / "results.json").write_text(json.dumps({
        "run": {"started": "2026-01-01T02:00:00+00:00", "finished": "2026-01-01T02:01:00+00:00",
                "rig": "simulator", "dut": "simulator", "identity": identity},
        "tests": [{"nodeid": t, "outcome": "passed", "clauses": []} for t in TESTS]}))
    samples = [{"command": "MCONNECT", "test": TESTS[i % 2], "total_ms": ms, "budget_ms": 5000}
               for i, ms in enumerate(connects)]
    samples += [{"command": "MQTTSTATU", "test": TESTS[1], "total_ms": ms, "budget_ms": 300}
                for ms in responses(30, 2.0, seed + 1)]
    (folder / "timings.json").write_text(json.dumps({"schema": 1, "samples": samples}))
    return folder


def case(root: Path, n: int, column: str) -> tuple[Path, Path]:
    factor, tail = CASES[column]
    name = f"{n}-{column.replace(' ', '').replace(',', '-')}"
    baseline = write_run(root / name / "baseline", responses(n, CONNECT_MS, n), 100)
    candidate = write_run(root / name / "candidate",
                          responses(n, CONNECT_MS * factor, n + 1000, tail), 200)
    return baseline, candidate


def judged(root: Path, n: int, column: str) -> Comparison:
    baseline, candidate = case(root, n, column)
    return compare(load(baseline), load(candidate), Thresholds())


def cell(c: Comparison) -> str:
    [s] = [s for s in c.latency if s.command == "MCONNECT"]
    detail = f"x{s.ratio:.3g}, p = {s.p_value:.2g}"
    if s.settle_with:
        detail += f", ~{s.settle_with}/side"
    return f"{VERDICT[c.exit_code]} ({detail})"


def table(root: Path) -> str:
    """The decision table of docs/acceptance.md, from the real comparison."""
    lines = ["| samples a side | " + " | ".join(CASES) + " |",
             "|---|" + "---|" * len(CASES)]
    lines += [f"| {n} | " + " | ".join(cell(judged(root, n, column)) for column in CASES)
              + " |" for n in SIZES]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("column", CASES)
def test_shifted_is_never_acceptable_and_unshifted_always_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n: int, column: str
) -> None:
    baseline, candidate = case(tmp_path, n, column)
    status = cli.main(["compare", str(baseline), str(candidate)])
    out = capsys.readouterr().out
    shifted = CASES[column][0] > 1
    if shifted:
        assert status in (REGRESSIONS, INCONCLUSIVE), out
        assert "MCONNECT x" in out.splitlines()[0]  # named, with its factor, in the headline
    else:
        assert status == ACCEPTABLE, out
        assert out.startswith("Accepted: ")
    assert f"verdict    {VERDICT[status]}: " in out
    assert "2 tests compared, " in out


def test_inconclusive_names_the_command_its_shift_and_the_samples_to_settle_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline, candidate = case(tmp_path, 3, "x600")
    assert cli.main(["compare", str(baseline), str(candidate)]) == INCONCLUSIVE
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("Inconclusive: not settled: MCONNECT x599")
    assert "on 3/3 samples, ~5 a side would settle it" in first


@pytest.mark.parametrize("n", SIZES)
def test_a_busy_pc_tail_is_no_regression_whatever_the_jitter(n: int) -> None:
    """The same busy-PC case with twenty other draws of the jitter: never a finding."""
    for seed in range(20):
        before = responses(n, CONNECT_MS, seed)
        after = responses(n, CONNECT_MS, seed + 500, tail=0.2)
        shift = judge("MCONNECT", before, after, Thresholds())
        assert shift.verdict == "unchanged", (seed, shift.reason)


def test_hil_run_says_inconclusive_with_a_status_of_its_own(tmp_path: Path) -> None:
    """gate() is the comparison of `hil run --baseline`: 9, as pytest's 3 is its own."""
    baseline, candidate = case(tmp_path, 3, "x10")
    assert gate(baseline, candidate, Thresholds()) == RUN_INCONCLUSIVE == 9
    assert (candidate / "compare.md").read_text().splitlines()[2].startswith(
        "**Inconclusive: not settled: MCONNECT x")
    [result] = [json.loads(p.read_text())
                for p in (candidate / "allure-results").glob("*-result.json")]
    assert result["status"] == "unknown"
    assert result["descriptionHtml"].startswith("<p><b>Inconclusive: not settled: MCONNECT")


def test_the_documented_table_is_what_the_code_decides(tmp_path: Path) -> None:
    docs = (ROOT / "docs" / "acceptance.md").read_text(encoding="utf-8")
    assert table(tmp_path) in docs, "update docs/acceptance.md: python tests/" \
        "test_acceptance_cases.py prints the table"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        sys.stdout.write(table(Path(folder)))
