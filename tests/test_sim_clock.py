"""The simulator's clock: the latency model and its configuration, and pacing at the baud rate.

Timing here is only checked from below (bytes never come before the line and the firmware
could have delivered them); how close to that they come is for `hil bench` to report.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.at.channel import Channel
from hil.l506 import commands
from hil.sim.firmware import Firmware
from hil.sim.host import BITS_PER_BYTE, SimConfig, Simulator, new_event_loop
from hil.sim.profiles import (
    KNOWN_COMMANDS,
    SYNTHETIC_LATENCY_V32,
    SYNTHETIC_NOTE,
    V32,
    V33,
    parse_latency,
)

BAUD = 115200


def test_defaults_are_labelled_synthetic() -> None:
    assert V32.latency_note == SYNTHETIC_NOTE == V33.latency_note
    assert "not measured" in SYNTHETIC_NOTE
    assert V32.latency_of("MPUBEX") == SYNTHETIC_LATENCY_V32["MPUBEX"]
    assert V32.latency_of("CGMR") == SYNTHETIC_LATENCY_V32["AT"]  # "AT" stands for the rest


def test_parse_latency() -> None:
    assert parse_latency("x0.5,AT=5,MPUBEX=0") == (0.5, {"AT": 0.005, "MPUBEX": 0.0})
    assert parse_latency("scale=2, mqttstatu=1.5ms") == (2.0, {"MQTTSTATU": 0.0015})
    assert parse_latency("*=3") == (1.0, {"*": 0.003})
    assert parse_latency("") == (1.0, {})
    for bad in ("fast", "AT=", "x", "AT=-1", "AT=1=2"):
        with pytest.raises(ValueError, match="latency item"):
            parse_latency(bad)


def test_scale_then_overrides() -> None:
    p = V32.with_latency_spec("x2,MSUB=1")
    assert p.latency_of("MPUB") == pytest.approx(2 * SYNTHETIC_LATENCY_V32["MPUB"])
    assert p.latency_of("MSUB") == pytest.approx(0.001)
    assert p.latency_note.startswith("synthetic, x2,MSUB=1")
    assert V32.latency_of("MSUB") == SYNTHETIC_LATENCY_V32["MSUB"]  # V32 itself unchanged


def test_every_command_at_once_and_off() -> None:
    p = V32.with_latency_spec("*=0,AT=5")
    assert all(p.latency_of(name) == 0 for name in KNOWN_COMMANDS - {"AT"})
    assert p.latency_of("AT") == pytest.approx(0.005)
    assert p.latency_of("CPIN") == pytest.approx(0.005)
    assert p.latency_note == "configured: *=0,AT=5"
    assert V32.with_latency_spec("AT=5,*=1").latency_of("AT") == pytest.approx(0.001)  # in order
    off = V32.with_latency_spec("off")
    assert off.latency_of("AT") == 0 and off.latency_of("MPUBEX") == 0
    assert "zero" in off.latency_note
    with pytest.raises(ValueError):
        V32.with_latency(scale=-1)


def test_fine_loop_runs_timers_and_io() -> None:
    async def work() -> tuple[float, bytes]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(0.0005)
        slept = loop.time() - start
        a, b = socket.socketpair()
        try:
            reader, writer = await asyncio.open_connection(sock=a)
            b.send(b"ping")
            got = await asyncio.wait_for(reader.read(4), 5)
            writer.close()
        finally:
            b.close()
        return slept, got

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        slept, got = runner.run(work())
    assert slept >= 0.0005
    assert got == b"ping"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    firmware = Firmware(V32.with_latency_spec("*=0,AT=40"), time_scale=0.01)
    simulator = Simulator(firmware, SimConfig(link=tmp_path / "tty", baud=BAUD))
    try:
        yield simulator
    finally:
        simulator.close()


def _ready(url: str) -> Channel:
    channel = Channel(url, BAUD)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if channel.command("AT", timeout=0.5).ok:
                return channel
        except Exception:  # still booting: it ignores input until then
            continue
    channel.close()
    raise AssertionError("the simulator never answered AT")


def _line_ms(nbytes: int) -> float:
    return nbytes * BITS_PER_BYTE / BAUD * 1000


def test_answer_never_comes_before_latency_and_line_time(sim: Simulator) -> None:
    channel = _ready(sim.power_on())
    try:
        for _ in range(5):
            r = channel.command("AT")
            assert r.ok
            # "AT\r" out; echo "AT\r" and "\r\nOK\r\n" back after the 40 ms
            assert r.timing.final_ms is not None
            assert r.timing.final_ms >= 40 + _line_ms(3 + 6) - 0.05
        r = channel.command("ATI", commands.ATI)
        sent = len("ATI\r")
        back = sum(len(line.raw) + 4 for line in r.lines) + len("\r\nOK\r\n")
        assert r.timing.final_ms is not None
        assert r.timing.final_ms >= 40 + _line_ms(sent + back) - 0.05
    finally:
        channel.close()
