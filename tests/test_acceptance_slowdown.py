"""A short run cannot wave a slow firmware through (issue: 9 connects, x600, "ACCEPTABLE").

`hil run -k mconnect` on the simulator, once as it is and once with the firmware slowdown
`mconnect_result_late` (+MCONNECT: SUCCESS 3 s after the CONNACK), the second with
`--baseline` the first: a real subset run each, through the pty and mosquitto, with the
report. Each run exercises MCONNECT about ten times (successes and refusals), fewer than
`min_samples`: the exact Mann–Whitney distribution must still reject the candidate, and
say so first, MCONNECT named with its factor.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLURE = ROOT / "tools" / "allure" / "node_modules" / ".bin" / "allure"

pytestmark = pytest.mark.end_to_end


def hil_run(reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hil.cli", "run", "--reports", str(reports), *args,
         "-k", "mconnect"],
        cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)


@pytest.mark.timeout(900)
@pytest.mark.skipif(not os.access(ALLURE, os.X_OK), reason="the Allure command line is missing")
def test_a_late_mconnect_result_is_not_accepted_and_named_with_its_factor(tmp_path) -> None:
    correct = hil_run(tmp_path / "correct")
    assert correct.returncode == 0, correct.stdout[-3000:] + correct.stderr[-2000:]
    baseline = (tmp_path / "correct" / "latest").resolve()

    slow = hil_run(tmp_path / "slow", "--baseline", str(baseline),
                   "--sim-bug", "mconnect_result_late")
    out = slow.stdout
    assert slow.returncode == 1, out[-4000:] + slow.stderr[-2000:]
    # the suites pass: only the comparison can catch it
    summary = re.search(r"pytest exit status 0: (.*)", out)
    assert summary and "passed" in summary.group(1) and "failed" not in summary.group(1), out
    [headline] = [line for line in out.splitlines() if line.startswith("Not accepted: ")]
    factor = re.search(r"MCONNECT x(\d+)", headline)
    assert factor and int(factor.group(1)) >= 100, headline  # 3 s over ~5-20 ms
    assert re.search(r"MCONNECT +\d+/\d+ thin .* regression", out), out[-4000:]

    run = (tmp_path / "slow" / "latest").resolve()
    compare_md = (run / "compare.md").read_text()
    assert f"**{headline}**" in compare_md
    cases = [json.loads(p.read_text())
             for p in (run / "html" / "data" / "test-cases").glob("*.json")]
    [page] = [c for c in cases if c["name"].startswith("Firmware acceptance vs ")]
    assert page["status"] == "failed"
    assert page["statusMessage"].startswith("AssertionError: Not accepted: ")
    assert "MCONNECT x" in page["statusMessage"]
