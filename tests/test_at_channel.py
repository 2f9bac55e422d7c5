"""The channel against a scripted fake device on a real pseudo-terminal: what only threads
and ports show (reads, writes, waits, the lease, lost ports, the URC queue, the transcript).
Which line answers a command is the exchange's, tested without a port in test_at_exchange.py.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakedevice import FakeDevice, crlf

from hil.at.channel import AtError, Channel, CommandTimeout, PortLost, UrcTimeout
from hil.at.exchange import PLAIN, Response
from hil.at.framer import Line
from hil.at.transcript import Transcript
from hil.l506.commands import MCONFIG, MPUBEX, MQTTSTATU, MSUB
from hil.l506.types import MSUB_COUNTED


@pytest.fixture
def device() -> Iterator[FakeDevice]:
    dev = FakeDevice()
    yield dev
    dev.close()


@pytest.fixture
def channel(device: FakeDevice) -> Iterator[Channel]:
    with Channel(device.path, counted=(MSUB_COUNTED,)) as ch:
        yield ch


def test_result_after_ok_with_urc_in_between(device: FakeDevice, channel: Channel) -> None:
    device.on(b"AT+MSUB=t,0\r", crlf(b"OK"), 0.05, crlf(b"+MSUB: 0"), crlf(b"+MSUB: SUCCESS"))
    r = channel.command("AT+MSUB=t,0", MSUB, timeout=2)
    assert r.ok
    assert r.result is not None and r.result.text == "+MSUB: SUCCESS"
    assert r.lines == []
    assert [u.text for u in r.interleaved] == ["+MSUB: 0"]
    assert [u.text for u in channel.urcs()] == ["+MSUB: 0"]
    assert r.timing.result_ms is not None and r.timing.final_ms is not None
    assert r.timing.final_ms < r.timing.result_ms
    assert r.timing.result_ms >= 50  # the device paused 50 ms before it


def test_info_lines_and_urc_mid_response(device: FakeDevice, channel: Channel) -> None:
    device.on(
        b"AT+MQTTSTATU\r",
        b"\r\n+MQTTSTATU: 1\r\n\r\n+MCONNECT: FAILURE,1\r\n",
        crlf(b"OK"),
    )
    r = channel.command("AT+MQTTSTATU", MQTTSTATU, timeout=2)
    assert [x.text for x in r.lines] == ["+MQTTSTATU: 1"]
    assert [x.text for x in channel.drain_urcs()] == ["+MCONNECT: FAILURE,1"]
    assert channel.urcs() == []


def test_prompt_then_binary_data(device: FakeDevice, channel: Channel) -> None:
    data = b"\r\nOK\r\n,\x00\xff>"
    device.on(b"AT+MPUBEX=t,1,0,%d\r" % len(data), b"\r\n> ")
    device.on(data, crlf(b"OK"), crlf(b"+MPUBEX: SUCCESS"), echo=False)
    r = channel.command(b"AT+MPUBEX=t,1,0,%d" % len(data), MPUBEX, timeout=2, data=data)
    assert r.ok and r.result is not None and r.data_sent
    t = r.timing
    assert t.prompt_ns is not None and t.data_ns is not None and t.final_ns is not None
    assert t.sent_ns <= t.prompt_ns <= t.data_ns <= t.final_ns
    assert bytes(device.received).endswith(data)
    assert channel.urcs() == []


def test_refused_without_prompt_sends_no_data(device: FakeDevice, channel: Channel) -> None:
    device.on(b"AT+MPUBEX=t,0,0,1361\r", crlf(b"OK"), crlf(b"+MPUBEX: FAILURE,2"))
    r = channel.command("AT+MPUBEX=t,0,0,1361", MPUBEX, timeout=2, data=b"z" * 1361)
    assert not r.data_sent and r.timing.prompt_ns is None
    assert r.result is not None and r.result.text == "+MPUBEX: FAILURE,2"
    assert b"zzz" not in channel.transcript.tx_bytes()


@pytest.mark.timed
def test_timeout_on_silence_says_what_is_missing(device: FakeDevice, channel: Channel) -> None:
    device.on(b"AT+MQTTSTATU\r", b"\r\n+MQTTST")
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        channel.command("AT+MQTTSTATU", MQTTSTATU, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 1.5
    message = str(info.value)
    assert "no final result code" in message
    assert "echo='AT+MQTTSTATU'" in message
    assert "+MQTTST" in message  # the partial line
    assert info.value.response.final is None


def test_timeout_waiting_for_prompt(channel: Channel) -> None:
    with pytest.raises(CommandTimeout, match="no '>' prompt"):
        channel.command("AT+MPUBEX=t,0,0,3", MPUBEX, timeout=0.3, data=b"abc")


def test_channel_is_usable_after_a_timeout(device: FakeDevice, channel: Channel) -> None:
    with pytest.raises(CommandTimeout):
        channel.command("AT+X", PLAIN, timeout=0.1)
    device.on(b"AT\r", crlf(b"OK"))
    assert channel.command("AT", PLAIN, timeout=2).ok


@pytest.mark.timed
def test_port_lost_surfaces_on_next_command(device: FakeDevice, channel: Channel) -> None:
    device.hang_up()
    started = time.monotonic()
    with pytest.raises(PortLost):
        deadline = time.monotonic() + 2
        while channel.lost is None and time.monotonic() < deadline:
            time.sleep(0.01)
        channel.command("AT", PLAIN, timeout=5)
    assert time.monotonic() - started < 2.5
    assert any("port lost" in e.text for e in channel.transcript.events())


@pytest.mark.timed
def test_port_lost_during_command(device: FakeDevice, channel: Channel) -> None:
    timer = threading.Timer(0.1, device.hang_up)
    timer.start()
    started = time.monotonic()
    with pytest.raises(PortLost) as info:
        channel.command("AT", PLAIN, timeout=10)
    timer.join()
    assert time.monotonic() - started < 2
    assert info.value.response is not None and info.value.response.command == "AT"


def test_wait_urc_raises_port_lost(device: FakeDevice, channel: Channel) -> None:
    threading.Timer(0.1, device.hang_up).start()
    with pytest.raises(PortLost):
        channel.wait_urc("+MSUB:", timeout=10)


def test_reopen_after_port_came_back(device: FakeDevice, channel: Channel) -> None:
    device.hang_up()
    with pytest.raises(PortLost):
        channel.wait_urc("never", timeout=3)
    again = FakeDevice()
    try:
        channel.reopen(again.path)
        again.on(b"AT\r", crlf(b"OK"))
        assert channel.command("AT", PLAIN, timeout=2).ok
        assert channel.lost is None
    finally:
        channel.close()
        again.close()


def test_answer_is_framed_in_the_thread_that_waits_for_it(
    device: FakeDevice, channel: Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a pty the caller reads its own answer (no hand-off from the reader thread); URCs
    between commands are still read, stamped and queued by the reader thread."""
    framed_by: list[tuple[str, bytes]] = []
    received = Channel._received

    def spy(self: Channel, data: bytes, t_ns: int) -> None:
        framed_by.append((threading.current_thread().name, data))
        received(self, data, t_ns)

    monkeypatch.setattr(Channel, "_received", spy)
    device.on(b"AT\r", 0.05, crlf(b"OK"))
    assert channel.command("AT", PLAIN, timeout=2).ok
    device.send(crlf(b"+MSUB: 0"))
    assert channel.wait_urc("+MSUB: 0", timeout=2).text == "+MSUB: 0"
    device.on(b"AT+NEXT\r", crlf(b"OK"))
    assert channel.command("AT+NEXT", PLAIN, timeout=2).ok
    me = threading.current_thread().name
    answers = [who for who, data in framed_by if b"OK" in data]
    urcs = [who for who, data in framed_by if b"+MSUB" in data]
    assert answers == [me, me]
    assert urcs and all(who.startswith("at-reader") for who in urcs)
    assert channel.transcript.rx_bytes() == bytes(device.written)


def test_open_fails_clearly() -> None:
    with pytest.raises(PortLost, match="cannot open"):
        Channel("/dev/does-not-exist-l506", open_timeout=0.2)


def test_wait_urc_keeps_earlier_non_matching(device: FakeDevice, channel: Channel) -> None:
    device.send(crlf(b"+MSUB: 0", b"+MCONNECT: FAILURE,1", b"+MSUB: 1"))
    line = channel.wait_urc(re.compile(r"^\+MCONNECT: FAILURE,(\d)"), timeout=2)
    assert line.text == "+MCONNECT: FAILURE,1"
    assert channel.wait_urc(lambda x: x.raw.endswith(b"1"), timeout=2).text == "+MSUB: 1"
    assert channel.wait_urc("+MSUB:", timeout=2).text == "+MSUB: 0"
    assert channel.urcs() == []


def test_wait_urc_timeout_lists_queue(device: FakeDevice, channel: Channel) -> None:
    device.send(crlf(b"+MSUB: 2"))
    channel.wait_urc(re.compile(rb"\+MSUB: 2"), timeout=2)
    device.send(crlf(b"+MSUB: 3"))
    with pytest.raises(UrcTimeout, match=r"queued: '\+MSUB: 3'") as info:
        channel.wait_urc("+MIPSTART", timeout=0.3)
    assert [x.text for x in info.value.queued] == ["+MSUB: 3"]


def test_timings_are_monotonic_and_ordered(device: FakeDevice, channel: Channel) -> None:
    device.on(b"AT+MSUB=t,1\r", 0.03, crlf(b"OK"), 0.03, crlf(b"+MSUB: SUCCESS"))
    before = time.monotonic_ns()
    r = channel.command("AT+MSUB=t,1", MSUB, timeout=2)
    after = time.monotonic_ns()
    t = r.timing
    assert t.first_byte_ns is not None and t.final_ns is not None and t.result_ns is not None
    assert before <= t.sent_ns <= t.first_byte_ns <= t.final_ns <= t.result_ns <= after
    assert r.echo is not None and r.echo.first_t_ns == t.first_byte_ns
    assert r.echo.t_ns <= t.final_ns
    assert t.final_ms is not None and t.final_ms >= 25
    assert t.total_ms == t.result_ms


def test_observer_sees_each_completed_response(device: FakeDevice, channel: Channel) -> None:
    seen: list[Response] = []
    channel.observer = seen.append
    device.on(b"AT\r", crlf(b"OK"))
    r = channel.command("AT", PLAIN, timeout=2)
    assert seen == [r]


def test_transcript_is_byte_exact(device: FakeDevice, tmp_path: Path) -> None:
    transcript = Transcript(mask=["s3cret"])
    with Channel(device.path, counted=(MSUB_COUNTED,), transcript=transcript) as ch:
        device.send(b"\xff\x00garbage\r\n")
        assert ch.wait_urc(lambda x: x.raw.endswith(b"garbage"), timeout=2).text.startswith("\\xff")
        device.on(b"AT+MCONFIG=c,u,s3cret\r", crlf(b"+MCONFIG: SUCCESS,0", b"OK"))
        ch.command("AT+MCONFIG=c,u,s3cret", MCONFIG, timeout=2)
        ch.write_raw(b"\x1b\r")
        device.on(b"\x1b\r", crlf(b"+MSUB: 1"), echo=False)
        ch.wait_urc("+MSUB: 1", timeout=2)
    assert transcript.rx_bytes() == bytes(device.written)
    assert transcript.tx_bytes() == bytes(device.received)
    transcript.write(tmp_path)
    # the files are byte-exact but for the secret, masked in place and listed
    spans = json.loads((tmp_path / "masked.json").read_text())
    for name, sent in (("rx", bytes(device.written)), ("tx", bytes(device.received))):
        kept = bytearray((tmp_path / f"{name}.bin").read_bytes())
        assert len(kept) == len(sent) and spans[name]
        for offset, length in spans[name]:
            assert sent[offset : offset + length] == b"s3cret"
            assert kept[offset : offset + length] == b"******"
            kept[offset : offset + length] = b"s3cret"
        assert bytes(kept) == sent
    log = (tmp_path / "transcript.log").read_text()
    assert "s3cret" not in log and "AT+MCONFIG=c,u,****" in log
    kinds = [e.kind for e in transcript.events() if e.kind != "note"]
    assert kinds == ["urc", "command", "echo", "result", "final", "raw", "urc"]


def test_command_while_another_is_in_flight_is_refused(
    device: FakeDevice, channel: Channel
) -> None:
    errors: list[Exception] = []
    device.on(b"AT+SLOW\r", 0.3, crlf(b"OK"))

    def second() -> None:
        time.sleep(0.1)
        try:
            channel.command("AT", PLAIN, timeout=1)
        except AtError as exc:
            errors.append(exc)

    worker = threading.Thread(target=second)
    worker.start()
    assert channel.command("AT+SLOW", PLAIN, timeout=2).ok
    worker.join(timeout=2)
    assert len(errors) == 1 and "in flight" in str(errors[0])


def test_loop_url_feeds_back_what_is_written() -> None:
    with Channel("loop://") as ch:
        ch.write_raw(b"\r\n+MSUB: 0\r\n")
        line: Line = ch.wait_urc("+MSUB: 0", timeout=2)
        assert line.raw == b"+MSUB: 0"
        assert ch.transcript.rx_bytes() == b"\r\n+MSUB: 0\r\n"


def test_socket_url_like_ser2net() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            buf = b""
            while not buf.endswith(b"\r"):
                buf += conn.recv(100)
            conn.sendall(buf + crlf(b"+MQTTSTATU: 0", b"OK"))
            conn.recv(100)  # until the channel closes

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        with Channel(f"socket://127.0.0.1:{port}") as ch:
            r = ch.command("AT+MQTTSTATU", MQTTSTATU, timeout=2)
            assert r.echo is not None and [x.text for x in r.lines] == ["+MQTTSTATU: 0"]
    finally:
        worker.join(timeout=2)
        server.close()


def test_failed_reopen_leaves_the_channel_lost(channel: Channel) -> None:
    with pytest.raises(PortLost, match="cannot open"):
        channel.reopen("/dev/does-not-exist-l506", timeout=0.2)
    assert channel.lost is not None
    with pytest.raises(PortLost):
        channel.command("AT", PLAIN, timeout=1)
