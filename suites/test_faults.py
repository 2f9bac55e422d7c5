"""Faults a bench meets at night: power cut mid-command, broker killed, port vanishing.

Each is provoked on purpose; the module must behave as the guide says (the will is sent,
the broken connection is reported, RAM state is lost on power loss) and the harness must
go on: the command fails at once with what happened, never a hang, and the next test finds
the module ready.
"""

from __future__ import annotations

import threading
import time

import pytest

from hil.at.channel import CommandTimeout, PortLost
from hil.broker import Broker
from hil.dut.device import Device
from hil.fixtures.capabilities import PowerSwitch
from hil.fixtures.peer import PeerFactory
from hil.l506.api import CommandResult, WillConfig
from hil.l506.types import CONNECTION_BROKEN_URC, MqttStatus, ResultType
from suites.expect import expect_ceer, expect_result, expect_status_after_drop

#: Announced MPUBEX length and the part of it sent before the power is cut.
ANNOUNCED = 1360
SENT = 600
KEEPALIVE_S = 5


def _connect(dut: Device, broker: Broker, client_id: str, will: WillConfig | None = None,
             keepalive: int = 60) -> None:
    at = dut.at
    expect_result(at.mconfig(client_id, will=will), "MCONFIG")
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")
    expect_result(at.mconnect(1, keepalive), "MCONNECT")


def _answer(done: CommandResult) -> str:
    """A command's final code and result URC as the module wrote them."""
    lines = (done.response.final, done.response.result)
    return ", ".join(line.text for line in lines if line is not None) or "no answer"


def _cut_when_prompted(dut: Device, power: PowerSwitch, deadline_s: float = 5.0) -> None:
    """Cut the power as soon as the MPUBEX prompt is on the line (data follows it)."""
    transcript = dut.channel.transcript
    end = time.monotonic() + deadline_s
    pause = threading.Event()
    while time.monotonic() < end:
        if any(e.kind == "prompt" for e in transcript.events()):
            power.off()
            return
        pause.wait(0.005)


@pytest.mark.spec("MCONFIG-3")
@pytest.mark.spec("DEV-1")
def test_power_cut_in_the_middle_of_mpubex(
    dut: Device, power: PowerSwitch, broker: Broker, peer_factory: PeerFactory
) -> None:
    """Power dies while the module holds part of an MPUBEX message: the command ends at
    once with PortLost (where the port vanishes with the power, as on USB and the simulator)
    or after its timeout (a UART adapter stays), never a hang; the broker sends the will
    (at once on a reset connection, within 1.5 keep-alives on a silent one); the half message
    is never published; after power-on the module is back with its RAM state gone."""
    watcher = peer_factory()
    watcher.subscribe("faults/#", qos=1)
    will = WillConfig("faults/will", "power lost", qos=1)
    _connect(dut, broker, "hil-power-cut", will, keepalive=KEEPALIVE_S)

    cutter = threading.Thread(target=_cut_when_prompted, args=(dut, power), daemon=True)
    cutter.start()
    began = time.monotonic()
    try:
        # the module waits for the rest of the announced bytes when the power goes
        ended = dut.at.mpubex("faults/data", 1, 0, b"x" * SENT, length=ANNOUNCED,
                              timeout=dut.device_seconds(10) + 5)
    except (PortLost, CommandTimeout):
        cutter.join(10)
    else:  # the module gave up waiting for the data before the switch had cut the power
        waited = time.monotonic() - began
        cutter.join(10)
        power.on()
        pytest.skip(f"the module ended the short MPUBEX itself after {waited:.2f} s "
                    f"({_answer(ended)}; how long it waits for data the guide "
                    "leaves open) before this rig's power switch had cut it: the cut could "
                    "not fall inside the command")

    got = watcher.expect("faults/will", timeout=dut.link_wait(KEEPALIVE_S * 1.5 + 5))
    assert got.payload == b"power lost"
    watcher.expect_nothing("faults/data", within=0.5)
    power.on()
    assert dut.at.mqttstatu().value == MqttStatus.NO_CONNECTION


@pytest.mark.spec("GEN-4")
def test_broker_killed_mid_session(
    dut: Device, broker: Broker, peer_factory: PeerFactory, characterize
) -> None:
    """The broker dies under a connected module: it reports the broken connection
    (`+MCONNECT: FAILURE,1`) by itself, MQTTSTATU leaves 1 (to 0 or 2: recorded), and it
    connects again once the broker is back."""
    at = dut.at
    _connect(dut, broker, "hil-broker-kill")
    expect_result(at.msub("faults/kill", 1), "MSUB")
    broker.kill()
    try:
        at.channel.wait_urc(CONNECTION_BROKEN_URC, timeout=dut.link_wait(10))
        dropped_to = expect_status_after_drop(at, characterize, "the broker was killed")
        expect_ceer(at, ResultType.CONNECTION_BROKEN)
    finally:
        broker.start()
    if dropped_to == MqttStatus.TCP_CONNECTED:
        expect_result(at.mipclose(), "MIPCLOSE")
    watcher = peer_factory()
    watcher.subscribe("faults/kill", qos=1)
    _connect(dut, broker, "hil-broker-kill")
    expect_result(at.mpub("faults/kill", 1, 0, "back"), "MPUB")
    assert watcher.expect("faults/kill", timeout=5).payload == b"back"


@pytest.mark.spec("STATU-1")
def test_port_vanishing_and_returning(dut: Device, broker: Broker) -> None:
    """The serial port disappears while the module runs on (a USB glitch, not a power
    loss): commands fail at once with PortLost; once the port is back the harness reopens
    it and the module's MQTT connection is still there."""
    unplug = getattr(dut.faults, "unplug", None)
    if unplug is None:
        pytest.skip(f"needs a port that can be made to vanish: this {dut.kind} DUT "
                    "cannot be unplugged on purpose")
    _connect(dut, broker, "hil-port-vanish")
    unplug()
    start = time.monotonic()
    with pytest.raises(PortLost):
        dut.at.mqttstatu()
    assert time.monotonic() - start < 2, "the lost port was noticed late"
    replug = threading.Timer(0.3, dut.faults.plug)
    replug.start()
    dut.reconnect()
    replug.join(timeout=5)
    assert dut.at.mqttstatu().value == MqttStatus.MQTT_CONNECTED
