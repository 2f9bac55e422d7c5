"""One timeline: example 1.1 (FLOW-TCP) with a recording tap in front of the broker; the
module's lines and the broker's packets interleave in time order in one transcript. The
merging (interleave, timeline_text, sequence_svg) and the session-long tap's log, without I/O;
the tap's connection handling against a plain socket server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.at.transcript import RX, TX, Event
from hil.broker import Broker
from hil.l506.api import L506
from hil.sim.firmware import Firmware
from hil.sim.host import SimConfig, Simulator
from hil.sim.profiles import profile_named
from hil.trace.timeline import (
    FROM_BROKER,
    TO_BROKER,
    MqttTap,
    PacketLog,
    interleave,
    sequence_svg,
    timeline_text,
)

pytestmark = pytest.mark.timeout(90)
TOPIC = "mobiletek/topic"
MESSAGE = "message from client_id_mobiletek"


@pytest.fixture
def at(tmp_path: Path) -> Iterator[L506]:
    firmware = Firmware(profile_named("v3.2"), time_scale=0.1)
    simulator = Simulator(firmware, SimConfig(link=tmp_path / "tty"))
    try:
        module = L506.open(simulator.power_on(), 115200, open_timeout=5)
        try:
            module.channel.wait_urc("Call Ready", timeout=10)
            yield module
        finally:
            module.channel.close()
    finally:
        simulator.close()


def _first(events: list[Event], direction: str, start: str, after: int = 0) -> int:
    for i in range(after, len(events)):
        if events[i].direction == direction and events[i].text.startswith(start):
            return i
    raise AssertionError(f"no {direction} {start!r} after event {after}:\n"
                         + "\n".join(f"{e.direction} {e.text}" for e in events))


def test_flow_tcp_shows_module_lines_and_broker_packets_in_time_order(
    at: L506, tmp_path: Path
) -> None:
    transcript = at.channel.transcript
    with Broker(tmp_path / "broker") as broker, \
            MqttTap(broker.host, broker.plain_port, transcript) as tap:
        at.mqttssl(0)
        at.mconfig("client_id_mobiletek")
        at.mipstart("127.0.0.1", tap.port)
        at.mconnect(1, 30)
        at.msub(TOPIC, 0)
        at.mpub(TOPIC, 0, 0, MESSAGE)
        at.wait_message(timeout=5, topic=TOPIC)
        at.mdisconnect()
        at.mipclose()
        deadline = time.monotonic() + 5
        while "DISCONNECT" not in transcript.render() and time.monotonic() < deadline:
            time.sleep(0.05)
    events = transcript.events()
    times = [e.t_ns for e in events]
    assert times == sorted(times)
    # each command, the packet it causes, the broker's answer, the module's result, in order
    i = _first(events, TX, "AT+MCONNECT=1,30")
    i = _first(events, TO_BROKER, "CONNECT client_id=client_id_mobiletek clean=1 keepalive=30", i)
    i = _first(events, FROM_BROKER, "CONNACK rc=0", i)
    i = _first(events, RX, "+MCONNECT: SUCCESS", i)
    i = _first(events, TX, f"AT+MSUB={TOPIC},0", i)
    i = _first(events, TO_BROKER, f"SUBSCRIBE id=1 {TOPIC}@0", i)
    i = _first(events, FROM_BROKER, "SUBACK id=1 granted=[0]", i)
    i = _first(events, RX, "+MSUB: SUCCESS", i)
    i = _first(events, TX, f"AT+MPUB={TOPIC}", i)
    i = _first(events, TO_BROKER, f"PUBLISH {TOPIC} qos=0 retain=0 32 bytes", i)
    j = _first(events, FROM_BROKER, f"PUBLISH {TOPIC} qos=0 retain=0 32 bytes", i)
    _first(events, RX, f"+MSUB: {TOPIC},32 bytes,", j)  # the report after the delivery
    i = _first(events, TX, "AT+MDISCONNECT", j)
    _first(events, TO_BROKER, "DISCONNECT", i)

    log = transcript.render()
    assert "=> mqtt    CONNECT client_id=client_id_mobiletek" in log
    assert "<= mqtt    CONNACK rc=0" in log
    svg = sequence_svg(events, transcript.start_ns)
    assert svg.startswith("<svg") and svg.count("marker-end") > 20
    assert "CONNACK rc=0" in svg and "AT+MPUB=" in svg
    (tmp_path / "flow_tcp.svg").write_text(svg)


# ---------------------------------------------------------------------------- the merging


def _ev(ms: float, direction: str, text: str, kind: str = "info") -> Event:
    return Event(int(ms * 1e6), direction, kind, text)


SERIAL = [_ev(1, TX, "AT+MCONNECT=1,30", "command"), _ev(3, RX, "OK", "final"),
          _ev(5, RX, "+MCONNECT: SUCCESS,0", "result")]
BROKER = [_ev(2, TO_BROKER, "CONNECT client_id=c clean=1 keepalive=30", "mqtt"),
          _ev(5, FROM_BROKER, "CONNACK rc=0 session_present=0", "mqtt"),
          _ev(4, FROM_BROKER, "PINGRESP", "mqtt")]


def test_interleave_orders_both_sides_on_one_clock_serial_first_at_a_tie() -> None:
    merged = interleave(SERIAL, BROKER)
    assert [e.text.split()[0] for e in merged] == [
        "AT+MCONNECT=1,30", "CONNECT", "OK", "PINGRESP", "+MCONNECT:", "CONNACK"]
    assert interleave(SERIAL, []) == SERIAL and interleave([], BROKER) == sorted(
        BROKER, key=lambda e: e.t_ns)


def test_timeline_text_has_transcript_columns_counts_and_masks_secrets() -> None:
    events = interleave([*SERIAL, _ev(6, TX, 'AT+MCONFIG=c,u,"s3cret"', "command")], BROKER)
    text = timeline_text(events, start_ns=0, secrets=["s3cret"])
    lines = text.splitlines()
    assert lines[0].startswith("# 4 serial events, 3 broker packets")
    assert lines[1] == "      1.000 -> command AT+MCONNECT=1,30"
    assert lines[2] == "      2.000 => mqtt    CONNECT client_id=c clean=1 keepalive=30"
    assert "s3cret" not in text and 'AT+MCONFIG=c,u,"****"' in text
    stamps = [float(line.split()[0]) for line in lines[1:]]
    assert stamps == sorted(stamps)


def test_sequence_svg_draws_each_arrow_up_to_its_limit_and_counts_the_rest() -> None:
    events = interleave(SERIAL, BROKER)
    svg = sequence_svg(events, 0, secrets=["keepalive"])
    assert svg.count("marker-end") == 6 and "keepalive" not in svg
    capped = sequence_svg(events, 0, rows_max=2)
    assert capped.count("marker-end") == 2 and "4 more not drawn" in capped


def test_packet_log_gives_each_test_what_came_since_it_began_once() -> None:
    log = PacketLog()
    log.record_line(TO_BROKER, "PINGREQ", 10, "mqtt")  # before the test: dropped
    log.record_line(FROM_BROKER, "PINGRESP", 30, "mqtt")
    log.record_line(TO_BROKER, "PUBLISH t", 20, "mqtt")
    assert [e.text for e in log.take_since(15)] == ["PUBLISH t", "PINGRESP"]
    assert log.take_since(0) == []


# ---------------------------------------------------------------------------- the tap's I/O


def _echo_server() -> tuple[socket.socket, threading.Thread]:
    """A stand-in broker that echoes each connection's bytes until it closes."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            while data := conn.recv(4096):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def test_tap_on_a_given_address_passes_bytes_and_closes_both_sockets_after() -> None:
    server, serving = _echo_server()
    log = PacketLog()
    start = time.monotonic_ns()
    with server, MqttTap("127.0.0.1", server.getsockname()[1], log,
                         listen=("::1", 0), decode=False) as tap:
        assert tap.host == "::1"
        with socket.create_connection((tap.host, tap.port), timeout=5) as module:
            module.sendall(b"\x16\x03\x01hello")
            assert module.recv(64) == b"\x16\x03\x01hello"
        serving.join(timeout=5)
        deadline = time.monotonic() + 5
        while not all(link.closed for link in tap._links) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tap._links and all(link.closed for link in tap._links)
    texts = [e.text for e in log.take_since(start)]
    assert texts.count("TLS 8 bytes") == 2, texts  # undecoded: bytes each way, no packets
    assert "tap: module closed its side" in texts


def _dial_and_read(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=5) as sock:
        return sock.recv(64)


def test_tap_resets_the_module_when_the_broker_is_not_there() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nothing = probe.getsockname()[1]
    log = PacketLog()
    with MqttTap("127.0.0.1", nothing, log) as tap, pytest.raises(ConnectionResetError):
        _dial_and_read(tap.host, tap.port)  # the reset may come before connect returns
    assert any(e.text.startswith("tap: cannot reach the broker") for e in log.take_since(0))
