"""`hil sim`'s options: the profile and latency model the firmware is built with."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import serial

from hil.cli.sim import add_arguments, config_from
from hil.sim.profiles import GUIDE_ALT

ROOT = Path(__file__).resolve().parent.parent


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hil sim")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_profile_guide_alt_with_its_link_model() -> None:
    firmware, config = config_from(parse("--profile", "guide-alt", "--tcp", "0"))
    assert firmware.profile == GUIDE_ALT
    assert firmware.profile.link_rtt_s > 0 and config.transport == "tcp"


def test_no_latency_takes_the_link_out_too() -> None:
    firmware, _ = config_from(parse("--profile", "guide-alt", "--no-latency"))
    profile = firmware.profile
    assert (profile.link_rtt_s, profile.link_jitter_s, dict(profile.latency)) == (0.0, 0.0, {})
    assert profile.prompt == GUIDE_ALT.prompt  # only the latency changed


def test_unknown_profile_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--profile", "v9")
    assert "guide-alt" in capsys.readouterr().err


def test_power_over_http_as_labgrids_simplerest_switches_a_port_that_stays(
        tmp_path: Path) -> None:
    """`hil sim --power-http 0 --port-stays`, as `hil farm up` starts it: labgrid's
    `simplerest` requests switch it; the pty stays through the cut and answers again."""
    proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "sim", "--power-http", "0",
                             "--port-stays", "--time-scale", "0.05"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        pty = proc.stdout.readline().split()[1]
        relay = proc.stdout.readline().split()[1].format(index=0, value="{value}")

        def get(url: str) -> str:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return answer.read().decode()

        assert get(relay.format(value="").rstrip("/")) == "1"
        port = serial.Serial(pty, timeout=0.2)
        assert get(relay.format(value="0")) == "0"
        port.write(b"AT\r")
        assert port.read(64) == b"" and Path(pty).exists()  # silent, not gone
        assert get(relay.format(value="1")) == "1"
        seen, deadline = b"", time.monotonic() + 10
        while b"OK" not in seen and time.monotonic() < deadline:
            port.write(b"AT\r")
            seen += port.read(256)
        assert b"OK" in seen  # the same port, the module booted again
        port.close()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            get(relay.format(value="2"))
    finally:
        proc.terminate()
        proc.wait(10)
