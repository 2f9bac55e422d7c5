"""`hil console` against `hil sim`, typed at through a pseudo-terminal: example 1.1 of the
guide, results decoded, URCs marked, MPUBEX data of exactly <len> bytes, and a recording
that replays."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from hil.broker import Broker
from hil.sim.profiles import profile_named
from hil.tools.console import ConsoleCore, complete, decode_escapes, render
from hil.trace.check import check_session
from hil.trace.record import ReplayServer
from hil.trace.replay import StrictReplay
from hil.trace.session import RX, TX, load_session
from tests.terminal import ROOT, Terminal, play_session

pytestmark = pytest.mark.timeout(120)
TOPIC = "mobiletek/topic"
MESSAGE = "message from client_id_mobiletek"


@pytest.fixture
def sim_port() -> Iterator[str]:
    """`hil sim` in its own process, device timeouts halved."""
    proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "sim", "--time-scale", "0.5"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        assert select.select([proc.stdout], [], [], 20)[0], "hil sim printed nothing"
        line = proc.stdout.readline()
        assert line.startswith("PTY "), line
        port = line.split()[1]
        with serial.serial_for_url(port, timeout=0.1) as link:  # let it boot and register
            seen = bytearray()
            deadline = time.monotonic() + 20
            while b"Call Ready" not in seen and time.monotonic() < deadline:
                seen += link.read(256)
            assert b"Call Ready" in seen, seen
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _screen(term: Terminal) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", bytes(term.output).decode("utf-8", "replace"))


def test_console_runs_example_1_1_and_its_recording_replays(
    sim_port: str, tmp_path: Path
) -> None:
    record = tmp_path / "console.jsonl"
    with Broker(tmp_path / "broker") as broker:
        term = Terminal([sys.executable, "-m", "hil.cli", "console", sim_port,
                         "--record", str(record), "--history", str(tmp_path / "history")],
                        env={"PROMPT_TOOLKIT_NO_CPR": "1"})
        try:
            term.expect(rb"L506>")

            def step(line: str, *answers: bytes) -> None:
                term.send(line + "\r")
                for answer in answers:
                    term.expect(answer, timeout=15)

            step("AT+MQTTSSL=0", rb"<<  OK")
            step("AT+MCONFIG=client_id_mobiletek", rb"\d\d:\d\d:\d\d\.\d{3} <<  \+MCONFIG: "
                 rb"SUCCESS,0", rb"<<  OK")
            step("AT+MIPSTART=127.0.0.1,1",  # nothing listens on port 1: decoded failure
                 rb"\+MIPSTART: FAILURE,5   \[connecting to the server failed\]")
            step(f"AT+MIPSTART=127.0.0.1,{broker.plain_port}", rb"\+MIPSTART: SUCCESS,0")
            step("AT+MQTTSTATU", rb"\+MQTTSTATU: 2   \[TCP connected, MQTT not yet\]")
            step("AT+MCONNECT=1,30", rb"\+MCONNECT: SUCCESS,0")
            step(f"AT+MSUB={TOPIC},0", rb"\+MSUB: SUCCESS")
            step(f"AT+MPUB={TOPIC},0,0,{MESSAGE}", rb"\+MPUB: SUCCESS",
                 rb"URC \+MSUB: mobiletek/topic,32 bytes,message from client_id_mobiletek"
                 rb"   \[a message of 32 bytes on mobiletek/topic\]")
            # MPUBEX: the data must be exactly <len> bytes; escapes stand for control bytes
            step(f"AT+MPUBEX={TOPIC},0,0,5", rb"type the 5 bytes", rb"data \(5 bytes\)>")
            step("abc", rb"the data is 3 bytes, MPUBEX asked for 5")
            step(r"a\r\nbc", rb"\+MPUBEX: SUCCESS",
                 rb"URC \+MSUB: mobiletek/topic,5 bytes,a\\r\\nbc")
            step("AT+MQTTMSGSET=1", rb"<<  OK")
            step(f"AT+MPUB= {TOPIC},0,0,{MESSAGE}", rb"\+MPUB: SUCCESS",
                 rb"URC \+MSUB: 0   \[a message is stored in slot 0")
            step("AT+MQTTMSGGET=0", rb"\+MSUB: mobiletek/topic,32 bytes,message from", rb"OK")
            step("AT+MDISCONNECT", rb"\+MDISCONNECT: SUCCESS")
            step("AT+MIPCLOSE", rb"\+MIPCLOSE: SUCCESS")
            term.send("AT+MQTTS\t")  # completion offers the two commands with their parameters
            term.expect(rb"AT\+MQTTSSL=\s+<action>")
            term.expect(rb"AT\+MQTTSTATU\s+\(no parameters\)")
            term.send("\x15")  # Ctrl-U: clear the line
            term.send(b"\x04")  # Ctrl-D leaves
            assert term.wait_exit() == 0, _screen(term)
        finally:
            term.close()

    session = load_session(record)
    sent = session.joined(TX)
    assert b"AT+MPUBEX=mobiletek/topic,0,0,5\ra\r\nbc" in sent  # exactly 5 data bytes
    assert b"abc" not in sent  # the wrong-length data was never sent
    server = ReplayServer(StrictReplay(session, pace=False))
    try:
        assert play_session(server.port, session) == session.joined(RX)
    finally:
        server.close()
    assert server.replay.mismatch is None and server.replay.done
    # the recorded session is what profile v3.2 answers (port 1 unreachable there too)
    assert check_session(session, profile_named("v3.2")) == (15, [])


def test_core_decodes_results_and_marks_urcs() -> None:
    core = ConsoleCore()
    assert core.line_typed("AT+MIPSTART=h,1") == (b"AT+MIPSTART=h,1\r", None)
    shown = core.received(b"AT+MIPSTART=h,1\r\r\nOK\r\n\r\n+MIPSTART: FAILURE,5\r\n"
                          b"\r\n+MSUB: 2\r\n\r\n+MCONNECT: FAILURE,1\r\n\r\n+X: FAILURE,9\r\n", 0)
    assert [(s.kind, s.meaning) for s in shown] == [
        ("echo", ""), ("answer", ""), ("result", "connecting to the server failed"),
        ("urc", "a message is stored in slot 2: AT+MQTTMSGGET=2 reads it"),
        ("urc", "the connection is broken (the server closed it)"),
        ("result", "result type 9 is not in the guide"),
    ]
    assert render(shown[2]).endswith("<<  +MIPSTART: FAILURE,5   [connecting to the server "
                                      "failed]")


def test_core_sends_mpubex_data_of_exactly_len_bytes() -> None:
    core = ConsoleCore()
    core.line_typed("AT+MPUBEX=t,1,0,4")
    assert [s.kind for s in core.received(b"AT+MPUBEX=t,1,0,4\r\r\n> ", 0)] == ["echo", "prompt"]
    data, note = core.line_typed("x\\x00y")
    assert data is None and note is not None and "3 bytes, MPUBEX asked for 4" in note
    assert core.line_typed("x\\x00\\\\y") == (b"x\x00\\y", None)
    assert core.line_typed("AT") == (b"AT\r", None)  # back to commands
    assert decode_escapes("\\r\\n\\t") == b"\r\n\t"


def test_completion_offers_commands_and_parameter_values() -> None:
    assert dict(complete("AT+MPU")) == {"AT+MPUB=": "<topic>,<qos>,<retain>,<message>",
                                        "AT+MPUBEX=": "<topic>,<qos>,<retain>,<message_len>"}
    assert list(complete("AT+MPUB=t,")) == [("0", "<qos>"), ("1", "<qos>"), ("2", "<qos>")]
    assert list(complete("AT+MCONNECT=1,")) == [("30", "<keep alive timer>"),
                                                ("60", "<keep alive timer>")]
    assert list(complete("at+msub=ab")) == [("ab", "<topic>")]
