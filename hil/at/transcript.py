"""Everything said on the serial line during one test, kept as evidence.

Two records side by side: the raw bytes of each direction, byte-exact, and the decoded
events (lines with their kind, prompts, notes) with `time.monotonic_ns()` stamps. The raw
files are the evidence: only secrets are overwritten, in place, and listed; the log is for
people.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hil.masking import mask_bytes, mask_text

RX = "<-"  # from the device
TX = "->"  # to the device
NOTE = "--"  # said by the harness itself



@dataclass(frozen=True, slots=True)
class Event:
    """One decoded event: kind is echo/info/final/result/urc/prompt/data/command/raw/note."""

    t_ns: int
    direction: str
    kind: str
    text: str


def printable(text: str) -> str:
    """Show control characters and other non-printables as escapes, one line per event."""
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)


class Transcript:
    """Thread-safe record of both directions; the reader thread and the test thread write.

    `rx.bin` and `tx.bin` are the raw evidence: every byte that crossed the line, in order,
    except the secrets in `mask` (the passwords of MCONFIG, echoed back by the module), which
    are overwritten by `*` of the same length and listed in `masked.json` (direction, offset,
    length). Nothing else is altered; `transcript.log` is the decoded view for people.
    """

    def __init__(self, mask: Iterable[str] = (), start_ns: int | None = None) -> None:
        self.start_ns = time.monotonic_ns() if start_ns is None else start_ns
        self.mask: list[str] = [s for s in mask if s]
        self._lock = threading.Lock()
        self._chunks: dict[str, list[tuple[int, bytes]]] = {RX: [], TX: []}
        # (t_ns, direction, kind, text), made into Events when read: recording is on the
        # path of every answer, reading is not
        self._events: list[tuple[int, str, str, str]] = []

    def mask_secret(self, secret: str) -> None:
        """Hide `secret` from now on wherever it appears in the rendered log."""
        with self._lock:
            if secret and secret not in self.mask:
                self.mask.append(secret)

    def record_sent(self, data: bytes, t_ns: int, text: str, kind: str) -> None:
        """Bytes written to the device and the event they are (command, data...), at once."""
        with self._lock:
            self._chunks[TX].append((t_ns, bytes(data)))
            self._events.append((t_ns, TX, kind, text))

    def record_line(self, direction: str, text: str, t_ns: int, kind: str) -> None:
        with self._lock:
            self._events.append((t_ns, direction, kind, text))

    def record_received(self, data: bytes, t_ns: int,
                        lines: Iterable[tuple[str, int, str]]) -> None:
        """A received chunk and the (text, t_ns, kind) of the events it completed, at once."""
        with self._lock:
            self._chunks[RX].append((t_ns, bytes(data)))
            self._events.extend((line_ns, RX, kind, text) for text, line_ns, kind in lines)

    def note(self, text: str, t_ns: int | None = None) -> None:
        """Say something in the log that the device did not (reopened port, lost port...)."""
        stamp = time.monotonic_ns() if t_ns is None else t_ns
        self.record_line(NOTE, text, stamp, "note")

    def chunks(self, direction: str) -> list[tuple[int, bytes]]:
        """The raw chunks of one direction (RX or TX) as (t_ns, bytes), as they passed."""
        with self._lock:
            return list(self._chunks[direction])

    def rx_bytes(self) -> bytes:
        return b"".join(data for _, data in self.chunks(RX))

    def tx_bytes(self) -> bytes:
        return b"".join(data for _, data in self.chunks(TX))

    def events(self) -> list[Event]:
        """Snapshot of the decoded events in time order."""
        with self._lock:
            events = sorted(self._events, key=lambda e: e[0])
        return [Event(*event) for event in events]

    def render(self) -> str:
        """The text of transcript.log: ms since start, direction, kind, masked text."""
        with self._lock:
            secrets = sorted(self.mask, key=len, reverse=True)
            rx = sum(len(data) for _, data in self._chunks[RX])
            tx = sum(len(data) for _, data in self._chunks[TX])
        lines = [
            f"# rx {rx} bytes, tx {tx} bytes; rx.bin/tx.bin hold them raw (secrets masked);"
            f" times in ms from start"
        ]
        for event in self.events():
            text = event.text
            text = mask_text(text, secrets)
            ms = (event.t_ns - self.start_ns) / 1e6
            lines.append(f"{ms:11.3f} {event.direction} {event.kind:<7} {printable(text)}")
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> None:
        """Write rx.bin, tx.bin (raw, secrets masked in place), masked.json and transcript.log."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            secrets = list(self.mask)
        spans = {}
        for name, data in (("rx", self.rx_bytes()), ("tx", self.tx_bytes())):
            raw, spans[name] = mask_bytes(data, secrets)
            (folder / f"{name}.bin").write_bytes(raw)
        if spans["rx"] or spans["tx"]:
            (folder / "masked.json").write_text(json.dumps(spans) + "\n", encoding="utf-8")
        (folder / "transcript.log").write_text(self.render(), encoding="utf-8")
