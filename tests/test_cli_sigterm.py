"""SIGTERM to a `hil` command: what it started (here `hil fuzz --rig`'s mosquitto) is
stopped with it, and it says so in one line, exit 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.mark.timeout(120)
def test_sigterm_stops_the_command_and_its_broker(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hil.cli", "fuzz", "--rig", str(ROOT / "rigs" / "simulator.toml"),
         "--cases", "100000", "--out", str(tmp_path / "found")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    broker = None
    deadline = time.monotonic() + 60
    while broker is None and time.monotonic() < deadline and proc.poll() is None:
        broker = next((c for c in _children(proc.pid) if _name(c) == "mosquitto"), None)
        time.sleep(0.1)
    assert broker is not None, "hil fuzz --rig started no broker"
    time.sleep(2)  # into the cases
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, out + err
    assert err.strip().splitlines()[-1] == (
        "hil: stopped by SIGTERM; what it had started is stopped"), err
    with pytest.raises(ProcessLookupError):
        os.kill(broker, 0)
