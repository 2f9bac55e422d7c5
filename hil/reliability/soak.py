"""Soak: hours of device time, compressed by the simulator's time scale, and nothing lost.

Rounds until the wall-clock budget is spent, the latency model on. Each round: the module
publishes at QoS 0, 1 and 2 (MPUB, and MPUBEX with raw data that holds `\\r\\nOK\\r\\n`)
and the peer counts what arrives; the peer publishes at QoS 0, 1 and 2 and the module's
`+MSUB` messages are counted; every few rounds the module reconnects, and every few the
buffer runs in manual mode (`+MSUB: <slot>`, read by AT+MQTTMSGGET). Each message carries
its own id, so losses and duplicates are counted per direction and QoS. Each round has a
fresh transcript, as each test does; their bytes are summed and compared with the bytes
the relay saw on the line. The process's memory and descriptors are read after the first
round and at the end.
"""

from __future__ import annotations

import os
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hil.at.channel import AtError
from hil.at.transcript import Transcript
from hil.l506.api import L506
from hil.l506.types import Message, parse_msub
from hil.reliability.relay import TO_DCE, TO_DTE
from hil.reliability.stand import Peer, Stand

#: Growth allowed from the first round to the end: the process holds the harness, the
#: simulator and the peer; allocator arenas settle in the first minutes.
RSS_BOUND_KIB = 16 * 1024
FD_BOUND = 2
RECONNECT_EVERY = 10
MANUAL_EVERY = 7
QOS = (0, 1, 2)


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


#: Ids received that are remembered per direction and QoS, to tell a duplicate: the
#: tally keeps counts, the ids still owed and this many recent ones, so that its own memory
#: does not grow with the soak's length.
RECENT = 500


@dataclass
class _Flow:
    sent: int = 0
    received: int = 0
    duplicated: int = 0
    unexpected: int = 0  # received, never sent (or a duplicate older than RECENT ids)
    refused: int = 0
    owed: set[str] = field(default_factory=set)
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT))
    recent_set: set[str] = field(default_factory=set)


class Tally:
    """Messages sent and received, per direction and QoS, matched by id."""

    def __init__(self) -> None:
        self.flows: dict[str, _Flow] = {}

    def _flow(self, key: str) -> _Flow:
        return self.flows.setdefault(key, _Flow())

    def send(self, key: str, ident: str) -> None:
        flow = self._flow(key)
        flow.sent += 1
        flow.owed.add(ident)

    def refuse(self, key: str) -> None:
        self._flow(key).refused += 1

    def receive(self, key: str, ident: str) -> None:
        flow = self._flow(key)
        if ident in flow.owed:
            flow.owed.discard(ident)
            flow.received += 1
            if len(flow.recent) == RECENT:
                flow.recent_set.discard(flow.recent[0])
            flow.recent.append(ident)
            flow.recent_set.add(ident)
        elif ident in flow.recent_set:
            flow.duplicated += 1
        else:
            flow.unexpected += 1

    def figures(self) -> dict[str, dict[str, int]]:
        return {key: {"sent": f.sent, "received": f.received, "lost": len(f.owed),
                      "duplicated": f.duplicated, "unexpected": f.unexpected,
                      "refused": f.refused}
                for key, f in sorted(self.flows.items())}


def _ident(payload: bytes) -> tuple[str, str] | None:
    """(direction/qos key, id) of a soak payload `key|id|filler`."""
    parts = payload.split(b"|", 2)
    if len(parts) < 3:
        return None
    return parts[0].decode("ascii", "replace"), parts[1].decode("ascii", "replace")


class Soak:
    def __init__(self, stand: Stand, seed: int) -> None:
        self.stand = stand
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.round = 0
        self.counters = {"reconnects": 0, "manual_phases": 0, "rounds": 0}
        self.transcript_bytes = {"rx": 0, "tx": 0}
        self.errors: list[str] = []

    @property
    def at(self) -> L506:
        return self.stand.device.at

    def _payload(self, key: str, ident: str, raw: bool) -> bytes:
        filler = bytes(self.rng.choice(b"abcxyz0189 ,.") for _ in range(self.rng.randint(0, 120)))
        if raw:  # MPUBEX data and the peer's messages may hold anything
            filler += b"\r\nOK\r\n+MSUB: x,1 bytes,y\r\nERROR\r\n"
        return f"{key}|{ident}|".encode() + filler

    def connect(self) -> None:
        self.stand.connect(f"soak-{self.round}")
        for qos in QOS:
            if not self.at.msub(f"soak/down/{qos}", qos).ok:
                raise AtError(f"MSUB soak/down/{qos} refused")

    def reconnect(self) -> None:
        self.at.mdisconnect()
        self.at.mipclose()
        self.connect()
        self.counters["reconnects"] += 1

    def up(self) -> None:
        for qos in QOS:
            key = f"up/{qos}"
            ident = f"{self.round}.{qos}"
            raw = self.rng.random() < 0.3
            payload = self._payload(key, ident, raw)
            topic = f"soak/up/{qos}"
            result = (self.at.mpubex(topic, qos, 0, payload) if raw
                      else self.at.mpub(topic, qos, 0, payload))
            if result.ok:
                self.tally.send(key, ident)
            else:
                self.tally.refuse(key)

    def down(self, peer: Peer) -> None:
        for qos in QOS:
            key = f"down/{qos}"
            ident = f"{self.round}.{qos}"
            peer.publish(f"soak/down/{qos}", self._payload(key, ident, raw=True), qos)
            self.tally.send(key, ident)
        deadline = time.monotonic() + 3.0
        seen = 0
        while seen < len(QOS) and time.monotonic() < deadline:
            try:
                message = self.at.wait_message(max(0.01, deadline - time.monotonic()))
            except AtError:
                break
            self._count(message)
            seen += 1

    def manual(self, peer: Peer) -> None:
        """Buffer mode: up to 4 messages stored, each announced by slot, read by slot."""
        if not self.at.mqttmsgset(1).ok:
            raise AtError("AT+MQTTMSGSET=1 refused")
        count = self.rng.randint(1, 4)
        for i in range(count):
            key, ident = "down/1", f"{self.round}.m{i}"
            peer.publish("soak/down/1", self._payload(key, ident, raw=True), 1)
            self.tally.send(key, ident)
        for _ in range(count):
            try:
                slot = self.at.wait_slot(3.0)
            except AtError:
                break
            for message in self.at.mqttmsgget(slot).messages:
                self._count(message)
        if not self.at.mqttmsgset(0).ok:
            raise AtError("AT+MQTTMSGSET=0 refused")
        self.counters["manual_phases"] += 1

    def _count(self, message: Message) -> None:
        found = _ident(message.payload)
        if found is not None:
            self.tally.receive(*found)

    def collect(self, peer: Peer, wait: float = 0.0) -> None:
        for delivery in peer.take_all(wait):
            found = _ident(delivery.payload)
            if found is not None:
                self.tally.receive(*found)

    def one_round(self, peer: Peer) -> None:
        channel = self.stand.device.channel
        transcript = Transcript()
        channel.transcript = transcript
        self.round += 1
        try:
            if self.round % RECONNECT_EVERY == 0:
                self.reconnect()
            self.up()
            if self.round % MANUAL_EVERY == 0:
                self.manual(peer)
            else:
                self.down(peer)
            for line in channel.drain_urcs():  # a message that came late, or a stray URC
                parsed = _parse(line.raw)
                if isinstance(parsed, Message):
                    self._count(parsed)
            self.collect(peer)
        except (AtError, AssertionError) as exc:
            self.errors.append(f"round {self.round}: {type(exc).__name__}: {exc}"[:300])
            self.stand.recovery().prepare(after_failure=str(exc))
            self.connect()
        finally:
            self.counters["rounds"] = self.round


def _settle(transcript: Transcript, quiet_s: float = 0.3, limit_s: float = 3.0) -> None:
    """Wait until the transcript has stopped growing: bytes the relay passed may still
    sit between the line and the reader thread when the counts are taken."""
    deadline = time.monotonic() + limit_s
    seen = -1
    while time.monotonic() < deadline:
        now = len(transcript.rx_bytes()) + len(transcript.tx_bytes())
        if now == seen:
            return
        seen = now
        time.sleep(quiet_s)


def _parse(raw: bytes) -> Message | int | None:
    try:
        return parse_msub(raw)
    except ValueError:
        return None


def soak(stand: Stand, minutes: float, seed: int,
         progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    run = Soak(stand, seed)
    peer = stand.peer()
    try:
        peer.subscribe("soak/up/#", 2)
        run.connect()
        run.one_round(peer)  # warm-up: caches, threads and buffers exist from here on
        channel = stand.device.channel
        _settle(channel.transcript)
        start_rss, start_fds = rss_kib(), open_fds()
        max_rss = start_rss
        line_start = stand.relay.counts()
        transcripts: list[Transcript] = []
        began = time.monotonic()
        end = began + minutes * 60
        next_note = began + 60
        while time.monotonic() < end:
            run.one_round(peer)
            transcripts.append(channel.transcript)
            if len(transcripts) > 1:  # a finished round's: count it and let it go
                done = transcripts.pop(0)
                run.transcript_bytes["rx"] += len(done.rx_bytes())
                run.transcript_bytes["tx"] += len(done.tx_bytes())
            max_rss = max(max_rss, rss_kib())
            if time.monotonic() > next_note:
                next_note += 60
                progress(f"soak: round {run.round}, rss {rss_kib()} KiB, fds {open_fds()}")
        wall = time.monotonic() - began
        time.sleep(0.5)
        run.collect(peer, wait=2.0)
        line_end = stand.relay.counts()
        _settle(channel.transcript)  # the reader has taken every byte the relay passed
        for done in transcripts:
            run.transcript_bytes["rx"] += len(done.rx_bytes())
            run.transcript_bytes["tx"] += len(done.tx_bytes())
        transcripts.clear()
        end_rss, end_fds = rss_kib(), open_fds()
    finally:
        peer.close()
    line = {
        "rx": line_end.passed[TO_DTE] - line_start.passed[TO_DTE],
        "tx": line_end.read[TO_DCE] - line_start.read[TO_DCE],
    }
    messages = run.tally.figures()
    result: dict[str, Any] = {
        "wall_s": round(wall, 1),
        "time_scale": stand.time_scale,
        "device_hours": round(wall / stand.time_scale / 3600, 2),
        "latency_model": "synthetic v3.2 (on)",
        **run.counters,
        "messages": messages,
        "memory_kib": {"start": start_rss, "end": end_rss, "max": max_rss,
                       "bound": RSS_BOUND_KIB},
        "fds": {"start": start_fds, "end": end_fds, "bound": FD_BOUND},
        "transcript_bytes": run.transcript_bytes,
        "line_bytes": line,
        "round_errors": run.errors[:20],
        "round_error_count": len(run.errors),
    }
    result["failures"] = soak_failures(result)
    return result


def soak_failures(result: dict[str, Any]) -> list[str]:
    out = []
    for key, m in result["messages"].items():
        qos = int(key.rsplit("/", 1)[1])
        if qos >= 1 and m["lost"]:
            out.append(f"soak {key}: {m['lost']} lost at QoS {qos}")
        if qos == 2 and m["duplicated"]:
            out.append(f"soak {key}: {m['duplicated']} duplicated at QoS 2")
        if m["refused"]:
            out.append(f"soak {key}: {m['refused']} publish(es) refused by the module")
        if m.get("unexpected"):
            out.append(f"soak {key}: {m['unexpected']} received that were never sent")
    mem, fds = result["memory_kib"], result["fds"]
    if mem["end"] - mem["start"] > mem["bound"]:
        out.append(f"soak: memory grew {mem['end'] - mem['start']} KiB (bound {mem['bound']})")
    if fds["end"] - fds["start"] > fds["bound"]:
        out.append(f"soak: open descriptors grew {fds['end'] - fds['start']} "
                   f"(bound {fds['bound']})")
    if result["transcript_bytes"] != result["line_bytes"]:
        out.append(f"soak: transcripts hold {result['transcript_bytes']} bytes, the line "
                   f"carried {result['line_bytes']}")
    if result["round_error_count"]:
        out.append(f"soak: {result['round_error_count']} round(s) failed")
    return out

