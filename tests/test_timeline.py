"""One timeline: example 1.1 (FLOW-TCP) with a recording tap in front of the broker; the
module's lines and the broker's packets interleave in time order in one transcript."""

from __future__ import annotations

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
from hil.trace.timeline import FROM_BROKER, TO_BROKER, MqttTap, sequence_svg

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
