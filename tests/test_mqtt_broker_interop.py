"""ClientSession on the wire against a real mosquitto, with a paho-mqtt peer on the other side.

A blocking socket with timeouts hosts the session the way the simulator's host does: write
`data_to_send()`, feed what arrives to `receive_data()`, `tick()` by `next_deadline()`.
Everything stays on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hil.mqtt import (
    ClientSession,
    Connect,
    Connected,
    ConnectRefused,
    Decoder,
    Event,
    MessageReceived,
    Packet,
    Pingreq,
    PingTimeout,
    PublishDone,
    Subscribed,
    Unsubscribed,
    Will,
)

HOST = "127.0.0.1"
TIMEOUT = 5.0
MOSQUITTO = shutil.which(
    "mosquitto", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mosquitto exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"mosquitto did not listen on {HOST}:{port} within 10 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def broker_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed")
    workdir = tmp_path_factory.mktemp("mosquitto")
    port = _free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} {HOST}\nallow_anonymous true\n")
    log = workdir / "mosquitto.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [MOSQUITTO, "-c", str(config)], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        _wait_listening(port, process, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class Link:
    """One TCP connection to the broker driven by a ClientSession."""

    def __init__(self, port: int, connect: Connect) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.session = ClientSession(connect, time.monotonic())
        self.events: list[Event] = []
        self.sent: list[Packet] = []
        self.closed_by_broker = False
        self._sent_decoder = Decoder()
        self.flush()

    def flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            self.sent += self._sent_decoder.feed(data)
            self.sock.sendall(data)

    def pump(self, until: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        """Run the session until `until()` holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not until():
            now = time.monotonic()
            if now >= deadline:
                pytest.fail(f"timed out after {timeout} s; events so far: {self.events}")
            if self.closed_by_broker:
                pytest.fail(f"the broker closed the connection; events so far: {self.events}")
            wait = deadline - now
            due = self.session.next_deadline()
            if due is not None:
                wait = min(wait, due - now)
            self.sock.settimeout(max(wait, 0.001))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                data = None
            now = time.monotonic()
            if data == b"":
                self.closed_by_broker = True
            elif data:
                self.events += self.session.receive_data(data, now)
            self.events += self.session.tick(now)
            self.flush()

    def expect(self, *wanted: Event, timeout: float = TIMEOUT) -> None:
        """Wait until every event in `wanted` has happened, then consume them."""
        self.pump(lambda: all(event in self.events for event in wanted), timeout)
        for event in wanted:
            self.events.remove(event)

    def run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.pump(lambda: time.monotonic() >= end, timeout=seconds + 1.0)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def links(broker_port: int) -> Iterator[Callable[[Connect], Link]]:
    opened: list[Link] = []

    def open_link(connect: Connect) -> Link:
        link = Link(broker_port, connect)
        opened.append(link)
        return link

    yield open_link
    for link in opened:
        link.close()


class Peer:
    """A paho-mqtt 2.x client on the broker; callbacks only push into queues."""

    def __init__(self, port: int) -> None:
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self._acks: queue.Queue[tuple[str, object]] = queue.Queue()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"peer-{uuid.uuid4()}")
        self.client.on_connect = lambda _c, _u, _f, code, _p: self._acks.put(("connect", code))
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self._acks.put(
            ("subscribe", codes)
        )
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.connect(HOST, port, keepalive=30)
        self.client.loop_start()
        kind, code = self._acks.get(timeout=TIMEOUT)
        assert (kind, code) == ("connect", 0)

    def subscribe(self, topic: str, qos: int) -> None:
        self.client.subscribe(topic, qos)
        kind, codes = self._acks.get(timeout=TIMEOUT)
        assert (kind, codes) == ("subscribe", [qos])

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.client.publish(topic, payload, qos).wait_for_publish(timeout=TIMEOUT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peer(broker_port: int) -> Iterator[Peer]:
    client = Peer(broker_port)
    yield client
    client.close()


@pytest.fixture
def base() -> str:
    return f"hil/test/{uuid.uuid4().hex}"


def connect_packet(
    keepalive: int = 30,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
) -> Connect:
    client_id = f"l506-{uuid.uuid4().hex[:12]}"
    return Connect(client_id, True, keepalive, username, password, will)


PAYLOADS = {
    0: bytes(range(256)),
    1: b"\x00\r\n+MSUB: not/a/urc,3 bytes,\r\n\xff",
    2: bytes(i % 251 for i in range(100_000)),  # remaining length needs three bytes
}


def test_publish_qos_0_1_2_to_itself_byte_exact(
    links: Callable[[Connect], Link], base: str
) -> None:
    link = links(connect_packet(username="hil", password="secret"))
    link.expect(Connected(False))
    assert link.session.connected

    sub = link.session.subscribe(f"{base}/#", 2, time.monotonic())
    link.flush()
    link.expect(Subscribed(sub, 2))

    done = []
    for qos, payload in PAYLOADS.items():
        packet_id = link.session.publish(f"{base}/q{qos}", payload, qos, False, time.monotonic())
        if packet_id is not None:
            done.append(PublishDone(packet_id))
    link.flush()
    received = [MessageReceived(f"{base}/q{qos}", p, qos, False) for qos, p in PAYLOADS.items()]
    link.expect(*done, *received)
    assert link.events == []

    unsub = link.session.unsubscribe(f"{base}/#", time.monotonic())
    marker = link.session.subscribe(f"{base}/marker", 0, time.monotonic())
    link.flush()
    link.expect(Unsubscribed(unsub), Subscribed(marker, 0))
    link.session.publish(f"{base}/q1", b"nobody listens", 1, False, time.monotonic())
    link.session.publish(f"{base}/marker", b"m", 0, False, time.monotonic())
    link.flush()
    link.pump(lambda: any(isinstance(e, MessageReceived) for e in link.events))
    assert [e for e in link.events if isinstance(e, MessageReceived)] == [
        MessageReceived(f"{base}/marker", b"m", 0, False)
    ]

    link.session.disconnect(time.monotonic())
    link.flush()
    link.pump(lambda: link.closed_by_broker)


def test_paho_peer_receives_what_the_session_publishes(
    links: Callable[[Connect], Link], peer: Peer, base: str
) -> None:
    link = links(connect_packet())
    link.expect(Connected(False))
    kept = link.session.publish(f"{base}/retained", b"kept\x00", 1, True, time.monotonic())
    assert kept is not None
    link.flush()
    link.expect(PublishDone(kept))

    peer.subscribe(f"{base}/#", 2)
    retained = peer.messages.get(timeout=TIMEOUT)
    assert (retained.topic, retained.payload, retained.qos, retained.retain) == (
        f"{base}/retained",
        b"kept\x00",
        1,
        True,
    )

    payload = bytes(range(255, -1, -1)) * 3
    packet_id = link.session.publish(f"{base}/live", payload, 2, False, time.monotonic())
    assert packet_id is not None
    link.flush()
    link.expect(PublishDone(packet_id))
    message = peer.messages.get(timeout=TIMEOUT)
    assert (message.topic, message.payload, message.qos, message.retain) == (
        f"{base}/live",
        payload,
        2,
        False,
    )

    # And the other way round: paho publishes at QoS 2, the session receives it once.
    sub = link.session.subscribe(f"{base}/down", 2, time.monotonic())
    link.flush()
    link.expect(Subscribed(sub, 2))
    peer.publish(f"{base}/down", b"\x01\x02", 2)
    link.expect(MessageReceived(f"{base}/down", b"\x01\x02", 2, False))
    peer.messages.get(timeout=TIMEOUT)  # the peer's own subscription sees it too

    link.session.publish(f"{base}/retained", b"", 0, True, time.monotonic())  # clear it
    link.session.disconnect(time.monotonic())
    link.flush()


def test_keepalive_pings_hold_the_connection(links: Callable[[Connect], Link], base: str) -> None:
    link = links(connect_packet(keepalive=1))
    link.expect(Connected(False))
    link.run_for(3.2)  # mosquitto drops a silent client after 1.5 x keepalive
    assert link.sent.count(Pingreq()) >= 2
    assert PingTimeout() not in link.events
    sub = link.session.subscribe(base, 1, time.monotonic())
    link.session.publish(base, b"alive", 1, False, time.monotonic())
    link.flush()
    link.expect(Subscribed(sub, 1), MessageReceived(base, b"alive", 1, False))


def test_broker_publishes_will_when_pinging_stops(
    links: Callable[[Connect], Link], peer: Peer, base: str
) -> None:
    peer.subscribe(f"{base}/status", 1)
    will = Will(f"{base}/status", b"offline", qos=1, retain=False)
    link = links(connect_packet(keepalive=1, will=will))
    link.expect(Connected(False))
    link.session.ping_enabled = False  # a firmware fault: the module goes silent
    # mosquitto 2.0 checks keep-alives on its own clock: 1.5 x 1 s, seen taking up to ~6 s
    link.pump(lambda: link.closed_by_broker, timeout=15)
    message = peer.messages.get(timeout=TIMEOUT)
    assert (message.topic, message.payload, message.qos) == (f"{base}/status", b"offline", 1)


def test_broker_refuses_empty_client_id_without_clean_session(
    links: Callable[[Connect], Link],
) -> None:
    link = links(Connect("", clean_session=False, keepalive=10))
    link.expect(ConnectRefused(2))  # identifier rejected
    assert not link.session.connected
