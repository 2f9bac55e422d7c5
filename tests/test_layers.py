"""The layers at run time: what an offline command loads (docs/architecture.md).

`lint-imports` (scripts/test) checks the import graph; these check what a fresh interpreter
really loads, lazy imports included, for the two promises a laptop without a bench relies on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement`."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    return set(json.loads(out.stdout))


def test_reading_a_rig_file_loads_no_serial_stack_and_no_statistics() -> None:
    modules = loaded_after(
        "from hil.rig import load_rig; load_rig('rigs/simulator.toml')")
    assert "hil.rig.file" in modules
    assert not {"serial", "scipy", "hil.at.channel", "hil.dut.device"} & modules


def test_comparing_two_runs_loads_no_serial_stack() -> None:
    modules = loaded_after(
        "import hil.acceptance.gate, hil.acceptance.baseline, hil.acceptance.compare")
    assert "hil.acceptance.gate" in modules
    forbidden = {m for m in modules
                 if m == "serial" or m.startswith(("serial.", "hil.at", "hil.l506", "hil.dut"))}
    assert not forbidden
