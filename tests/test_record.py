"""`hil record` and `hil replay`: a terminal's session through the recorder, played back
byte for byte, and read by the harness's parser as it was read live."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.at.framer import Framer, Line
from hil.broker import Broker
from hil.l506.api import L506
from hil.l506.types import MSUB_COUNTED
from hil.sim.firmware import Firmware
from hil.sim.host import SimConfig, Simulator
from hil.sim.profiles import profile_named
from hil.trace.check import check_session
from hil.trace.record import Recorder, ReplayServer
from hil.trace.replay import CommandReplay, StrictReplay
from hil.trace.session import RX, TX, Chunk, Session, SessionError, load_session, parse_session
from tests.terminal import ROOT, Terminal, play_session

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[str]:
    """A booted simulated L506 on a pty (no latency model; boot shortened)."""
    firmware = Firmware(profile_named("v3.2").without_latency(), time_scale=0.1)
    simulator = Simulator(firmware, SimConfig(link=tmp_path / "ttyL506", baud=None))
    try:
        port = simulator.power_on()
        deadline = time.monotonic() + 10
        while not firmware.network_ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert firmware.network_ready, "the simulator did not boot"
        yield port
    finally:
        simulator.close()


def _start(argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], 15)[0]:
        proc.kill()
        pytest.fail(f"{argv} printed nothing")
    line = proc.stdout.readline().strip()
    assert line.startswith("PTY "), line + (proc.stderr.read() if proc.stderr else "")
    return proc, line.removeprefix("PTY ")


def _interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    return proc.returncode, err


def _lines(data: bytes) -> list[str]:
    framer = Framer((MSUB_COUNTED,))
    return [e.text for e in framer.feed(data, 0) if isinstance(e, Line)]


def test_miniterm_session_records_and_replays_byte_for_byte(sim: str, tmp_path: Path) -> None:
    path = tmp_path / "miniterm.jsonl"
    recorder, client_port = _start(
        [sys.executable, "-m", "hil.cli", "record", sim, str(path)])
    term = Terminal([sys.executable, "-m", "serial.tools.miniterm", client_port, "115200",
                     "--eol", "CR", "--raw"])
    try:
        term.expect(rb"Quit: Ctrl\+\]")
        for command, answer in (("AT", rb"OK"), ("ATI", rb"IMEI: \d+\s+OK"),
                                ("AT+MQTTSTATU", rb"\+MQTTSTATU: 0\s+OK"),
                                ("AT+MCONFIG=client_id_mobiletek", rb"\+MCONFIG: ?SUCCESS,0"),
                                ("AT+MPUB=t,0,0,x", rb"\+MPUB: ?FAILURE,1"),
                                ("AT+BOGUS", rb"ERROR")):
            for key in command:  # typed key by key, as a person does
                term.send(key)
            term.send("\r")
            term.expect(answer)
        term.send(b"\x1d")  # Ctrl-]: miniterm quits
        assert term.wait_exit() == 0
    finally:
        term.close()
        code, err = _interrupt(recorder)
    assert code == 0, err

    session = load_session(path)
    assert session.header["port"] == sim
    sent = session.joined(TX)
    assert sent == b"AT\rATI\rAT+MQTTSTATU\rAT+MCONFIG=client_id_mobiletek\rAT+MPUB=t,0,0,x\r" \
        b"AT+BOGUS\r"
    times = [c.t for c in session.chunks]
    assert times == sorted(times)
    received = session.joined(RX)
    assert b"AT+BOGUS\r\r\nERROR\r\n" in received  # the echo and the answer, untouched

    server = ReplayServer(StrictReplay(session, pace=False))
    try:
        replayed = play_session(server.port, session)
    finally:
        server.close()
    assert replayed == received
    assert server.replay.mismatch is None and server.replay.done
    assert _lines(replayed) == _lines(received)


def test_channel_reads_a_replay_as_it_read_the_module(sim: str, tmp_path: Path) -> None:
    """The harness's own channel as the client: live answers, then the same from a replay."""
    path = tmp_path / "channel.jsonl"

    def run(port: str) -> list[tuple[str, ...]]:
        at = L506.open(port, 115200, open_timeout=5)
        try:
            answers = [at.channel.command("AT", timeout=5), at.channel.command("ATI", timeout=5)]
            answers += [at.mconfig("rec"), at.mqttstatu().response, at.mpub("t", 1, 0, "x, y"),
                        at.mqttmsgget(0).response, at.mqttceer().response]
            return [(r.command, *(x.text for x in r.lines),
                     r.final.text if r.final else "-", r.result.text if r.result else "-")
                    for r in (a if hasattr(a, "command") else a.response for a in answers)]
        finally:
            at.channel.close()

    recorder = Recorder(sim, 115200, path)
    try:
        live = run(recorder.client_port)
    finally:
        recorder.close()
    session = load_session(path)
    server = ReplayServer(StrictReplay(session))
    try:
        replayed = run(server.port)
    finally:
        server.close()
    assert server.replay.mismatch is None
    assert replayed == live
    assert ("AT+MQTTCEER", "+MQTTCEER: 1", "OK", "-") in live


def _session(*chunks: tuple[float, str, bytes]) -> Session:
    return Session({"format": "hil-session/1"}, [Chunk(t, d, b) for t, d, b in chunks])


def test_strict_replay_paces_and_notes_a_departure() -> None:
    s = _session((0.0, RX, b"RDY\r\n"), (1.0, TX, b"AT\r"), (1.5, RX, b"\r\nOK\r\n"),
                 (4.5, RX, b"+MSUB: 0\r\n"), (5.0, TX, b"AT\r"), (5.1, RX, b"OK\r\n"))
    replay = StrictReplay(s)
    assert [(e.at, e.data) for e in replay.start(100.0)] == [(100.0, b"RDY\r\n")]
    assert replay.received(b"A", 200.0) == []
    out = replay.received(b"T\r", 201.0)
    assert [(e.at, e.data) for e in out] == [(201.5, b"\r\nOK\r\n"), (204.5, b"+MSUB: 0\r\n")]
    assert replay.received(b"AX", 300.0) == []
    assert replay.mismatch is not None and "byte 4" in replay.mismatch and not replay.done


def test_command_replay_answers_in_any_order() -> None:
    s = _session((0.0, RX, b"RDY\r\n"), (1.0, TX, b"AT\r"), (1.1, RX, b"AT\r\r\nOK\r\n"),
                 (2.0, TX, b"AT+MPUBEX=t,0,0,3\r"), (2.1, RX, b"AT+MPUBEX=t,0,0,3\r\r\n>"),
                 (3.0, TX, b"a\rb"), (3.1, RX, b"a\rb\r\nOK\r\n\r\n+MPUBEX: SUCCESS\r\n"))
    replay = CommandReplay(s)
    assert [e.data for e in replay.start(0)] == [b"RDY\r\n"]
    assert [e.data for e in replay.received(b"AT+MPUBEX=t,0,0,3\r", 1)] == \
        [b"AT+MPUBEX=t,0,0,3\r\r\n>"]
    assert [e.data for e in replay.received(b"a\rb", 2)] == \
        [b"a\rb\r\nOK\r\n\r\n+MPUBEX: SUCCESS\r\n"]
    assert [e.data for e in replay.received(b"AT\rAT\r", 3)] == [b"AT\r\r\nOK\r\n"] * 2
    assert [e.data for e in replay.received(b"AT+X\r", 4)] == [b"\r\nERROR\r\n"]
    assert replay.unknown == [b"AT+X"]


def test_a_bad_session_file_says_where() -> None:
    with pytest.raises(SessionError, match="hil record"):
        parse_session(['{"t": 0}'], "s.jsonl")
    with pytest.raises(SessionError, match=r"s.jsonl:2: not a chunk"):
        parse_session(['{"format": "hil-session/1"}', '{"t": 0, "dir": "up", "data": ""}'],
                      "s.jsonl")


def test_a_recorded_session_is_checked_against_profiles(tmp_path: Path) -> None:
    """Example 1.1 recorded from a v3.2 module (the simulator, through the recorder, with a
    real broker) matches profile v3.2, and differs from v3.3 exactly where v3.3 differs:
    no space after the colon of a result URC (GEN-2)."""
    firmware = Firmware(profile_named("v3.2").without_latency(), time_scale=0.1)
    simulator = Simulator(firmware, SimConfig(link=tmp_path / "tty", baud=None))
    path = tmp_path / "flow.jsonl"
    with Broker(tmp_path / "broker") as broker:
        try:
            recorder = Recorder(simulator.power_on(), 115200, path)
            at = L506.open(recorder.client_port, 115200, open_timeout=5)
            try:
                at.channel.wait_urc("Call Ready", timeout=10)
                for step in (lambda: at.mconfig("client_id_mobiletek"),
                             lambda: at.mipstart("127.0.0.1", broker.plain_port),
                             lambda: at.mconnect(1, 30), lambda: at.msub("mobiletek/topic", 0),
                             lambda: at.mpub("mobiletek/topic", 0, 0, "message"),
                             lambda: at.wait_message(timeout=5, topic="mobiletek/topic"),
                             lambda: at.mqttstatu(), lambda: at.mdisconnect(),
                             lambda: at.mipclose()):
                    step()
            finally:
                at.channel.close()
                recorder.close()
        finally:
            simulator.close()
    session = load_session(path)
    assert check_session(session, profile_named("v3.2")) == (8, [])
    played, differences = check_session(session, profile_named("v3.3"))
    assert played == 8
    assert [d.sent.split(b"=")[0] for d in differences] == [
        b"AT+MCONFIG", b"AT+MIPSTART", b"AT+MCONNECT", b"AT+MSUB", b"AT+MPUB",
        b"AT+MDISCONNECT", b"AT+MIPCLOSE"]
    for d in differences:
        assert [line.replace(": ", ":", 1) for line in d.module] == d.profile
    code = subprocess.run([sys.executable, "-m", "hil.cli", "replay", str(path), "--check",
                           "v3.3"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert code.returncode == 1
    assert "differs from profile v3.3 in 7 of 8 exchanges" in code.stdout
    assert "module:  '+MSUB: SUCCESS'" in code.stdout and "v3.3: '+MSUB:SUCCESS'" in code.stdout


def test_by_command_replay_answers_the_channel_in_another_order(sim: str, tmp_path: Path) -> None:
    path = tmp_path / "commands.jsonl"
    recorder = Recorder(sim, 115200, path)
    try:
        at = L506.open(recorder.client_port, 115200, open_timeout=5)
        try:
            live = {text: at.channel.command(text, timeout=5).summary()
                    for text in ("AT", "ATI", "AT+MQTTSTATU", "AT+MQTTCEER")}
        finally:
            at.channel.close()
    finally:
        recorder.close()
    server = ReplayServer(CommandReplay(load_session(path)))
    try:
        at = L506.open(server.port, 115200, open_timeout=5)
        try:
            for text in ("AT+MQTTCEER", "ATI", "AT", "AT+MQTTSTATU", "ATI"):
                assert at.channel.command(text, timeout=5).summary() == live[text]
            assert at.channel.command("AT+CGMR", timeout=5).error  # never recorded
        finally:
            at.channel.close()
    finally:
        server.close()
    assert server.replay.unknown == [b"AT+CGMR"]
