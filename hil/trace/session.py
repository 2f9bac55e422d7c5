"""A recorded serial session: both directions of a port, byte-exact and timestamped.

The file is JSON lines (docs/record.md). The first line is a header
(`{"format": "hil-session/1", "port": ..., "baud": ..., "started": <UTC ISO time>}`); every
further line is one chunk as it crossed the port:
`{"t": <seconds since the start>, "dir": "tx"|"rx", "data": <the bytes as Latin-1 text>}`.
`tx` is what the client sent to the module, `rx` what the module sent back (the names of
the harness's transcripts). Latin-1 maps each byte to one character, so any byte survives
JSON while text stays readable. A line `{"t": ..., "note": "..."}` records an event of the
recorder itself (the port vanished).

This module is sans-I/O but for `SessionWriter` (appends to a file) and `load_session`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

FORMAT = "hil-session/1"
TX: Literal["tx"] = "tx"
RX: Literal["rx"] = "rx"
Direction = Literal["tx", "rx"]
#: A prompt for raw data at the end of an answer (MPUBEX): what follows is data, not a line.
_PROMPT_END = re.compile(rb"(?:\r\n|\r|\n)>{1,2} ?\Z")


class SessionError(ValueError):
    """A session file that cannot be read; the message says where and what to do."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes that crossed the port in one direction at `t` seconds after the start."""

    t: float
    direction: Direction
    data: bytes


@dataclass(frozen=True, slots=True)
class Exchange:
    """One thing the client sent (a command line with its CR, or raw data after a prompt)
    and everything the module sent from its first byte until the client's next one."""

    sent: bytes
    answer: bytes
    t: float

    @property
    def is_data(self) -> bool:
        return not self.sent.endswith((b"\r", b"\n"))


@dataclass
class Session:
    header: dict[str, object]
    chunks: list[Chunk] = field(default_factory=list)
    notes: list[tuple[float, str]] = field(default_factory=list)

    def joined(self, direction: Direction) -> bytes:
        return b"".join(c.data for c in self.chunks if c.direction == direction)

    def greeting(self) -> bytes:
        """What the module sent before the client's first byte (boot URCs)."""
        out = bytearray()
        for chunk in self.chunks:
            if chunk.direction == TX:
                break
            out += chunk.data
        return bytes(out)

    def exchanges(self) -> list[Exchange]:
        """Cut the session into what the client sent and what answered it.

        A client's line ends at CR (or LF); after an answer that ends with a `>` prompt the
        client's next bytes are raw data and end where the module speaks again. An answer is
        every module byte from the client's last byte of the line until its next byte, so an
        echo typed byte by byte (a terminal) belongs to the line it echoes.
        """
        exchanges: list[Exchange] = []
        sent = bytearray()
        answer = bytearray()
        t = 0.0
        in_data = False
        started = False

        def close() -> None:
            nonlocal in_data
            exchanges.append(Exchange(bytes(sent), bytes(answer), t))
            in_data = _PROMPT_END.search(answer) is not None
            sent.clear()
            answer.clear()

        for chunk in self.chunks:
            if chunk.direction == TX:
                if sent and (sent.endswith((b"\r", b"\n")) or in_data) and answer:
                    close()
                if not sent:
                    t = chunk.t
                sent += chunk.data
                started = True
            elif started:
                answer += chunk.data
        if sent:
            close()
        return exchanges


class SessionWriter:
    """Appends chunks to a session file as they happen; thread-safe; each line flushed, so
    a recording cut short by a crash or a power cut keeps everything up to that moment."""

    def __init__(self, path: Path, *, port: str, baud: int, clock_start: float) -> None:
        self.path = path
        self._start = clock_start
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("w", encoding="utf-8")
        header = {
            "format": FORMAT,
            "port": port,
            "baud": baud,
            "started": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        self._put(header)

    def _put(self, record: dict[str, object]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=True) + "\n")
        self._file.flush()

    def chunk(self, direction: Direction, data: bytes, clock: float) -> None:
        with self._lock:
            self._put({"t": round(clock - self._start, 6), "dir": direction,
                       "data": data.decode("latin-1")})

    def note(self, text: str, clock: float) -> None:
        with self._lock:
            self._put({"t": round(clock - self._start, 6), "note": text})

    def close(self) -> None:
        with self._lock:
            self._file.close()


def parse_session(lines: Iterable[str], name: str = "session") -> Session:
    """Read a session from its JSON lines; SessionError names the bad line."""
    session: Session | None = None
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SessionError(f"{name}:{number}: not JSON ({exc.msg}); a session file is "
                               f"JSON lines as written by `hil record`") from None
        if session is None:
            if not isinstance(record, dict) or record.get("format") != FORMAT:
                raise SessionError(f"{name}:1: no {FORMAT!r} header; record the session "
                                   f"with `hil record`")
            session = Session(header=record)
            continue
        try:
            if "note" in record:
                session.notes.append((float(record["t"]), str(record["note"])))
                continue
            direction = record["dir"]
            if direction not in (TX, RX):
                raise ValueError(direction)
            data = str(record["data"]).encode("latin-1")
            session.chunks.append(Chunk(float(record["t"]), direction, data))
        except (KeyError, ValueError, TypeError, UnicodeEncodeError):
            raise SessionError(f"{name}:{number}: not a chunk "
                               f"(want t, dir 'tx' or 'rx', data as Latin-1 text)") from None
    if session is None:
        raise SessionError(f"{name}: empty; record a session with `hil record`")
    return session


def load_session(path: Path) -> Session:
    try:
        with path.open(encoding="utf-8") as file:
            return parse_session(file, str(path))
    except OSError as exc:
        raise SessionError(f"cannot read {path}: {exc.strerror}") from None
