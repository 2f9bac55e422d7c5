"""The stand a campaign runs on: mosquitto, the simulated L506 behind a fault relay, a peer.

The same pieces the suites use (Device, Recovery, the simulator's virtual power, the real
broker), wired in one process without pytest, so that a campaign can provoke a fault at a
chosen byte and time what follows.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hil.at.transcript import Transcript
from hil.broker import Broker
from hil.dut.device import Device
from hil.dut.recovery import Recovery
from hil.l506.api import L506, CommandResult, Timeouts
from hil.power.simulator import SimulatorPower
from hil.reliability.relay import LineRelay
from hil.sim.firmware import Firmware
from hil.sim.host import SimConfig, Simulator
from hil.sim.profiles import profile_named

#: Command timeouts for campaigns: the simulator answers in milliseconds, so a second or
#: two is long enough to call silence a fault, and keeps a trial short.
CAMPAIGN_TIMEOUTS = Timeouts(basic=1.5, mconfig=1.5, mipstart=3.0, mconnect=3.0, msub=2.0,
                             munsub=2.0, mpub=2.0, mpubex=2.5, mdisconnect=2.0, mipclose=2.0,
                             msgget=2.0, cgatt=2.0, cfun=3.0)


class PeerError(AssertionError):
    """The peer did not get, in time, what it waited for."""


@dataclass(frozen=True)
class Delivery:
    topic: str
    payload: bytes
    qos: int


class Peer:
    """A paho client on the broker: queues what it receives; every wait is bounded."""

    def __init__(self, port: int, *, username: str | None = None,
                 password: str | None = None) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"rel-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.inbox: queue.Queue[Delivery] = queue.Queue()
        self._connected = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.on_message = lambda c, u, m: self.inbox.put(
            Delivery(m.topic, bytes(m.payload), m.qos))
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(5):
            self.close()
            raise PeerError("the peer could not connect to the broker within 5 s")

    def subscribe(self, topic: str, qos: int, timeout: float = 5.0) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos)
        if not done.wait(timeout):
            raise PeerError(f"no SUBACK for {topic!r} within {timeout:g} s")

    def publish(self, topic: str, payload: bytes, qos: int, timeout: float = 5.0) -> None:
        info = self.client.publish(topic, payload, qos)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise PeerError(f"the peer's publish on {topic!r} was not done within {timeout:g} s")

    def expect(self, topic: str, payload: bytes, timeout: float) -> None:
        """The next message must be `payload` on `topic`."""
        try:
            got = self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise PeerError(f"no message on {topic!r} within {timeout:g} s") from None
        if (got.topic, got.payload) != (topic, payload):
            raise AssertionError(f"expected {payload[:40]!r} on {topic!r}, got "
                                 f"{got.payload[:40]!r} on {got.topic!r}")

    def take_all(self, wait: float = 0.0) -> list[Delivery]:
        out: list[Delivery] = []
        end = time.monotonic() + wait
        while True:
            try:
                out.append(self.inbox.get(timeout=max(0.0, end - time.monotonic())))
            except queue.Empty:
                return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Stand:
    broker: Broker
    sim: Simulator
    relay: LineRelay
    device: Device
    time_scale: float

    def recovery(self) -> Recovery:
        """A fresh recovery ladder (its DUT-lost state is sticky, as in a run)."""
        return Recovery(self.device, cycle_after_failure=True, probe_timeout=1.0)

    def peer(self, **kwargs: str) -> Peer:
        return Peer(self.broker.plain_port, **kwargs)

    def connect(self, client_id: str, clean: int = 1, keepalive: int = 60) -> None:
        """MCONFIG, MIPSTART, MCONNECT; AssertionError naming the step that failed."""
        at = self.device.at
        steps: tuple[tuple[str, Callable[[], CommandResult]], ...] = (
            ("MCONFIG", lambda: at.mconfig(client_id)),
            ("MIPSTART", lambda: at.mipstart("127.0.0.1", self.broker.plain_port)),
            ("MCONNECT", lambda: at.mconnect(clean, keepalive)))
        for name, result in steps:
            done = result()
            if not done.ok:
                raise AssertionError(f"{name} failed: {done.response.summary()}")


@contextlib.contextmanager
def stand(folder: Path, *, time_scale: float = 0.05, latency: bool = True,
          seed: int = 0, baud: int = 115200) -> Iterator[Stand]:
    """Broker, simulator (its synthetic latency model on unless `latency` is False), relay
    and a ready device, all torn down on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    profile = profile_named("v3.2")
    if not latency:
        profile = profile.without_latency()
    with Broker(folder / "broker") as broker:
        sim = Simulator(Firmware(profile, time_scale=time_scale),
                        SimConfig(link=folder / "ttyL506", baud=baud))
        relay = LineRelay(folder / "ttyL506", folder / "ttyRelay", seed=seed)
        at = None
        try:
            sim.power_on()
            relay.start()
            at = L506.open(relay.url, baud, open_timeout=5.0, transcript=Transcript(),
                           timeouts=CAMPAIGN_TIMEOUTS)
            device = Device(at=at, channel=at.channel, kind="simulator", time_scale=time_scale,
                            faults=sim, power=SimulatorPower(sim), boot_timeout=2.0,
                            ready_timeout=3.0)
            device.wait_ready()
            yield Stand(broker, sim, relay, device, time_scale)
        finally:
            if at is not None:
                at.channel.close()
            relay.close()
            sim.close()
