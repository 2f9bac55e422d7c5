"""A remote serial port: the FLOW-TCP suite through a real ser2net (RFC 2217) in front of
the simulator's pseudo-terminal, as a bench serves a module attached to another machine."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SER2NET = next((p for p in ("/usr/sbin/ser2net", "/usr/bin/ser2net") if os.access(p, os.X_OK)),
               None)

pytestmark = pytest.mark.skipif(
    SER2NET is None, reason="ser2net is not installed (scripts/setup installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ser2net exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"ser2net is not listening on {port} after {timeout} s")


@pytest.fixture
def ser2net_url(tmp_path: Path) -> Iterator[str]:
    """`hil sim` on a pty, ser2net serving that pty as rfc2217://127.0.0.1:<port>."""
    link = tmp_path / "ttyL506"
    sim = subprocess.Popen(
        [sys.executable, "-m", "hil.cli", "sim", "--link", str(link), "--time-scale", "0.05"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    procs = [sim]
    try:
        assert sim.stdout is not None
        assert sim.stdout.readline().startswith("PTY "), "hil sim did not start"
        port = _free_port()
        config = tmp_path / "ser2net.yaml"
        config.write_text(
            "%YAML 1.1\n---\n"
            "connection: &l506\n"
            f"  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n"
            f"  connector: serialdev,{link},115200n81,local\n"
            "  options:\n"
            "    kickolduser: true\n"
        )
        server = subprocess.Popen(
            [SER2NET, "-n", "-u", "-c", str(config), "-P", str(tmp_path / "ser2net.pid")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        procs.append(server)
        _wait_listening(port, server)
        # a pty has no modem lines: do not wait for ser2net to acknowledge setting DTR/RTS
        yield f"rfc2217://127.0.0.1:{port}?ign_set_control"
    finally:
        for proc in reversed(procs):
            _stop(proc)


def test_flow_tcp_through_ser2net(ser2net_url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "suites" / "test_flow_tcp.py"),
         "--l506-port", ser2net_url, "--report-dir", str(tmp_path / "run"), "-q",
         "-o", "timeout=60"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "1 passed" in output
    transcript = next((tmp_path / "run" / "transcripts").glob("*test_example_1_1*"))
    log = (transcript / "transcript.log").read_text()
    assert "+MSUB: mobiletek/topic,32 bytes,message from client_id_mobiletek" in log
