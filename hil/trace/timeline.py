"""One timeline: the broker side of a test on the serial transcript's clock.

`MqttTap` is a small recording proxy in front of the broker: the module dials the tap, the
tap passes every byte to the broker and back untouched, decodes both directions as MQTT
packets (hil/mqtt/codec.py) and records each packet (into a `PacketLog`, or straight into a
`Transcript`) when its last byte arrived, stamped with `time.monotonic_ns()` as the serial
channel stamps its lines. `interleave` and `timeline_text` merge a test's broker packets with
its serial transcript on that one clock, so a slow MPUB shows whether the module (before its
PUBLISH reached the broker), the link or the broker (before its PUBACK) took the time;
`sequence_svg` draws the same as a sequence picture. The merging is pure; the tap is the
only I/O here. docs/timeline.md.
"""

from __future__ import annotations

import contextlib
import heapq
import socket
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from html import escape
from typing import Protocol

from hil.at.transcript import RX, TX, Event, printable
from hil.masking import mask_text
from hil.mqtt import (
    Connack,
    Connect,
    Decoder,
    MalformedPacket,
    Packet,
    Publish,
    Suback,
    Subscribe,
    Unsubscribe,
)

TO_BROKER = "=>"  # a packet from the module to the broker
FROM_BROKER = "<="  # a packet from the broker to the module
BROKER_SIDE = (TO_BROKER, FROM_BROKER)
_CHUNK = 65536
#: Arrows drawn at most in a sequence picture; a longer test says how many were left out.
SVG_ROWS_MAX = 400


def describe(packet: Packet) -> str:
    """One line per packet: its type and what a reader of a timeline needs."""
    name = type(packet).__name__.upper()
    match packet:
        case Connect(client_id=cid, clean_session=clean, keepalive=keepalive):
            return f"{name} client_id={cid} clean={int(clean)} keepalive={keepalive}"
        case Connack(return_code=code, session_present=present):
            return f"{name} rc={code} session_present={int(present)}"
        case Publish(topic=topic, payload=payload, qos=qos, retain=retain, packet_id=pid):
            ident = "" if pid is None else f" id={pid}"
            return f"{name} {topic} qos={qos} retain={int(retain)}{ident} {len(payload)} bytes"
        case Subscribe(packet_id=pid, topics=topics):
            return f"{name} id={pid} " + ",".join(f"{t}@{q}" for t, q in topics)
        case Suback(packet_id=pid, return_codes=codes):
            return f"{name} id={pid} granted={list(codes)}"
        case Unsubscribe(packet_id=pid, topics=topics):
            return f"{name} id={pid} " + ",".join(topics)
    pid = getattr(packet, "packet_id", None)
    return name if pid is None else f"{name} id={pid}"


class Recorder(Protocol):
    """Where the tap writes: a `Transcript` (one test's) or a `PacketLog` (a session's)."""

    def record_line(self, direction: str, text: str, t_ns: int, kind: str) -> None: ...

    def note(self, text: str, t_ns: int | None = None) -> None: ...


class PacketLog:
    """The broker side as the tap saw it, for a tap that outlives one test: each test takes
    what was recorded since it began (`take_since`), and what is older is dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def record_line(self, direction: str, text: str, t_ns: int, kind: str) -> None:
        with self._lock:
            self._events.append(Event(t_ns, direction, kind, text))

    def note(self, text: str, t_ns: int | None = None) -> None:
        self.record_line("--", text, time.monotonic_ns() if t_ns is None else t_ns, "tap")

    def take_since(self, start_ns: int) -> list[Event]:
        """The events stamped at or after `start_ns`, in time order; the log is emptied."""
        with self._lock:
            events, self._events = self._events, []
        return sorted((e for e in events if e.t_ns >= start_ns), key=lambda e: e.t_ns)


class MqttTap:
    """A recording TCP proxy in front of the broker at (host, port), listening on `listen`
    (127.0.0.1 and a free port unless told). With `decode` off (a TLS listener) it records
    only how many bytes passed, not packets."""

    def __init__(self, host: str, port: int, transcript: Recorder, *,
                 listen: tuple[str, int] = ("127.0.0.1", 0), decode: bool = True) -> None:
        self.target = (host, port)
        self.transcript = transcript
        self.decode = decode
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET  # ::1 beside 127.0.0.1
        self._server = socket.create_server(listen, family=family)
        self._server.settimeout(0.2)
        self.host: str = self._server.getsockname()[0]
        self.port: int = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        accept = threading.Thread(target=self._accept, name="mqtt-tap", daemon=True)
        accept.start()
        self._threads.append(accept)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                module, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            try:
                broker = socket.create_connection(self.target, timeout=5)
            except OSError as exc:
                self.transcript.note(f"tap: cannot reach the broker at {self.target}: {exc}")
                _reset(module)  # as near as a proxy gets to the refusal the module would see
                continue
            self.transcript.note(f"tap: the module connected, passed to {self.target}")
            for sock in (module, broker):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(module, broker)
            with self._lock:
                self._links = [kept for kept in self._links if not kept.closed] + [link]
                self._threads = [t for t in self._threads if t.is_alive()]
            for src, dst, direction in ((module, broker, TO_BROKER), (broker, module, FROM_BROKER)):
                pump = threading.Thread(target=self._run, args=(link, src, dst, direction),
                                        name=f"mqtt-tap {direction}", daemon=True)
                with self._lock:
                    self._threads.append(pump)
                pump.start()

    def _run(self, link: _Link, src: socket.socket, dst: socket.socket,
             direction: str) -> None:
        try:
            self._pump(src, dst, direction)
        finally:
            link.pump_done()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        decoder = Decoder()
        src.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = src.recv(_CHUNK)
            except TimeoutError:
                continue
            except OSError:
                break
            t_ns = time.monotonic_ns()
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                break
            if not self.decode:
                self.transcript.record_line(direction, f"TLS {len(data)} bytes", t_ns, "tls")
                continue
            try:
                packets = decoder.feed(data)
            except MalformedPacket as exc:
                self.transcript.record_line(direction, f"malformed MQTT: {exc}", t_ns, "mqtt")
                decoder = Decoder()
                continue
            for packet in packets:
                self.transcript.record_line(direction, describe(packet), t_ns, "mqtt")
        self.transcript.note(f"tap: {'module' if direction == TO_BROKER else 'broker'} "
                             f"closed its side")
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def drop_links(self, timeout: float = 2.0) -> None:
        """End every connection passing now, as a module that lost power would leave it: the
        broker sees it gone at once (and publishes its will) instead of after 1.5 keep-alives.
        Returns once both pumps of each have ended (bounded by `timeout`)."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.drop()
        deadline = time.monotonic() + timeout
        for link in links:
            link.ended.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            threads, links = list(self._threads), list(self._links)
        for thread in threads:
            thread.join(timeout=2)
        for link in links:
            link.close()
        self._server.close()

    def __enter__(self) -> MqttTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Link:
    """One module connection through the tap: both sockets are closed once both pumps end,
    so a tap that lives for a whole run does not keep every connection it ever passed."""

    def __init__(self, module: socket.socket, broker: socket.socket) -> None:
        self._sockets = (module, broker)
        self._running = 2
        self._lock = threading.Lock()
        self.closed = False
        #: set once both pumps have ended and the sockets are closed
        self.ended = threading.Event()

    def pump_done(self) -> None:
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self.close()
            self.ended.set()

    def close(self) -> None:
        with self._lock:
            self.closed = True
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def drop(self) -> None:
        """Shut both sides down now (a pump blocked in recv wakes up and ends the link)."""
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset rather than an orderly end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ---------------------------------------------------------------------------- one timeline


def interleave(serial: Iterable[Event], broker: Iterable[Event]) -> list[Event]:
    """The serial transcript's events and the tap's, on their one clock, in time order; at
    the same stamp the serial line comes first (both sides are kept in their own order)."""
    return list(heapq.merge(sorted(serial, key=lambda e: e.t_ns),
                            sorted(broker, key=lambda e: e.t_ns), key=lambda e: e.t_ns))


def timeline_text(events: Sequence[Event], start_ns: int, secrets: Iterable[str] = ()) -> str:
    """The interleaved timeline as text, in transcript.log's columns (ms from start,
    direction, kind, text): `->`/`<-` the serial line, `=>`/`<=` packets to/from the
    broker; secrets masked."""
    hidden = [s for s in secrets if s]
    serial = sum(1 for e in events if e.direction in (RX, TX))
    packets = sum(1 for e in events if e.direction in BROKER_SIDE)
    lines = [f"# {serial} serial events, {packets} broker packets; -> <- the module's serial "
             f"line, => <= MQTT to and from the broker; times in ms from start"]
    for event in events:
        ms = (event.t_ns - start_ns) / 1e6
        text = printable(mask_text(event.text, hidden))
        lines.append(f"{ms:11.3f} {event.direction} {event.kind:<7} {text}")
    return "\n".join(lines) + "\n"


_LANES = {"harness": 90, "module": 330, "broker": 570}
_ARROWS = {TX: ("harness", "module"), RX: ("module", "harness"),
           TO_BROKER: ("module", "broker"), FROM_BROKER: ("broker", "module")}


def sequence_svg(events: Sequence[Event], start_ns: int, *, row: int = 22,
                 secrets: Iterable[str] = (), rows_max: int = SVG_ROWS_MAX) -> str:
    """A sequence picture: harness, module and broker lifelines, one arrow per line or packet
    in time order, each labelled with its time (ms from start) and text; at most `rows_max`
    arrows, the rest counted at the bottom."""
    hidden = [s for s in secrets if s]
    arrows = [e for e in events if e.direction in _ARROWS and e.kind != "echo"]
    shown, left_out = arrows[:rows_max], len(arrows) - min(len(arrows), rows_max)
    height = 60 + row * (len(shown) + 1 + (1 if left_out else 0))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="760" height="{height}" '
             f'font-family="monospace" font-size="11">',
             '<defs><marker id="a" markerWidth="8" markerHeight="8" refX="8" refY="4" '
             'orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>']
    for name, x in _LANES.items():
        parts.append(f'<text x="{x}" y="20" text-anchor="middle" font-weight="bold">'
                     f'{name}</text>')
        parts.append(f'<line x1="{x}" y1="28" x2="{x}" y2="{height - 10}" stroke="#999" '
                     f'stroke-dasharray="4 3"/>')
    for i, event in enumerate(shown):
        y = 50 + row * i
        a, b = (_LANES[lane] for lane in _ARROWS[event.direction])
        colour = "#1565c0" if event.direction in BROKER_SIDE else "#222"
        ms = (event.t_ns - start_ns) / 1e6
        label = escape(f"{ms:.1f} ms  {printable(mask_text(event.text, hidden))[:48]}")
        parts.append(f'<line x1="{a}" y1="{y}" x2="{b}" y2="{y}" stroke="{colour}" '
                     f'marker-end="url(#a)"/>')
        parts.append(f'<text x="{min(a, b) + 6}" y="{y - 4}" fill="{colour}">{label}</text>')
    if left_out:
        parts.append(f'<text x="90" y="{50 + row * len(shown)}">… {left_out} more not drawn '
                     f'(the timeline text has them all)</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
