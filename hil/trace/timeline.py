"""One timeline: the broker side of a test on the serial transcript's clock.

`MqttTap` is a small recording proxy in front of the broker: the module dials the tap, the
tap passes every byte to the broker and back untouched, decodes both directions as MQTT
packets (hil/mqtt/codec.py) and records each packet into a `Transcript` when its last byte
arrived, stamped with `time.monotonic_ns()` as the serial channel stamps its lines. The
transcript then shows module lines and broker packets interleaved in time order, so a slow
MPUB shows whether the module (before its PUBLISH reached the broker), the link or the
broker (before its PUBACK) took the time. `sequence_svg` draws the same as a sequence
picture. docs/timeline.md.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from html import escape

from hil.at.transcript import RX, TX, Event, Transcript
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
_CHUNK = 65536


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


class MqttTap:
    """A recording TCP proxy on 127.0.0.1 in front of the broker at (host, port)."""

    def __init__(self, host: str, port: int, transcript: Transcript) -> None:
        self.target = (host, port)
        self.transcript = transcript
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
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
                module.close()
                continue
            self.transcript.note(f"tap: the module connected, passed to {self.target}")
            with self._lock:
                self._sockets += [module, broker]
            for src, dst, direction in ((module, broker, TO_BROKER), (broker, module, FROM_BROKER)):
                pump = threading.Thread(target=self._pump, args=(src, dst, direction),
                                        name=f"mqtt-tap {direction}", daemon=True)
                pump.start()
                self._threads.append(pump)

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

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
        self._server.close()

    def __enter__(self) -> MqttTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LANES = {"harness": 90, "module": 330, "broker": 570}
_ARROWS = {TX: ("harness", "module"), RX: ("module", "harness"),
           TO_BROKER: ("module", "broker"), FROM_BROKER: ("broker", "module")}


def sequence_svg(events: Sequence[Event], start_ns: int, *, row: int = 22) -> str:
    """A sequence picture: harness, module and broker lifelines, one arrow per line or packet
    in time order, each labelled with its time (ms from start) and text."""
    shown = [e for e in events if e.direction in _ARROWS and e.kind != "echo"]
    height = 60 + row * (len(shown) + 1)
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
        colour = "#1565c0" if event.direction in (TO_BROKER, FROM_BROKER) else "#222"
        ms = (event.t_ns - start_ns) / 1e6
        label = escape(f"{ms:.1f} ms  {event.text[:48]}")
        parts.append(f'<line x1="{a}" y1="{y}" x2="{b}" y2="{y}" stroke="{colour}" '
                     f'marker-end="url(#a)"/>')
        parts.append(f'<text x="{min(a, b) + 6}" y="{y - 4}" fill="{colour}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

