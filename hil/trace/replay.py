"""Playing the module's side of a recorded session, sans-I/O.

Two ways (docs/record.md): `StrictReplay` sends the recorded answers in the recorded order,
each once the client has sent every byte recorded before it, and notes where the client
departs from the recording; `CommandReplay` answers each command line with what answered
the same line in the recording, in any order. Both take the client's bytes and the time,
and hand out what the port must emit and when; a thin host (hil/trace/record.py) runs them on a
pty.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from hil.trace.session import RX, TX, Session

_UNKNOWN = b"\r\nERROR\r\n"


@dataclass(frozen=True, slots=True)
class Emission:
    """Bytes for the client, to leave at `at` (the replay's clock)."""

    at: float
    data: bytes


class StrictReplay:
    """The recording, in order. With `pace`, the module's chunks keep their recorded spacing
    after whatever the client did last; without, they go out as soon as they are due."""

    def __init__(self, session: Session, *, pace: bool = True) -> None:
        self._chunks = deque(session.chunks)
        self._pace = pace
        self._anchor = (0.0, 0.0)  # (replay time, recorded time) of the last event
        self._expected = bytearray()  # recorded client bytes not yet matched
        self._expected_t = 0.0  # recorded time of the last of them
        self._offset = 0  # client bytes matched so far
        self.mismatch: str | None = None

    @property
    def done(self) -> bool:
        return not self._chunks and not self._expected

    def start(self, now: float) -> list[Emission]:
        self._anchor = (now, 0.0)
        return self._advance()

    def received(self, data: bytes, now: float) -> list[Emission]:
        """The client sent `data`; returns the answers it releases."""
        out: list[Emission] = []
        if self.mismatch is not None:
            return out
        for i, byte in enumerate(data):
            if not self._expected or byte != self._expected[0]:
                shown = bytes(self._expected[:40]) or b"(nothing more)"
                self.mismatch = (
                    f"the client departs from the recording at its byte {self._offset}: "
                    f"sent {data[i : i + 40]!r}, the recording has {shown!r}")
                return out
            del self._expected[0]
            self._offset += 1
            if not self._expected:
                self._anchor = (now, self._expected_t)
                out += self._advance()
        return out

    def _advance(self) -> list[Emission]:
        """Emit the module's chunks up to the client's next recorded bytes."""
        out: list[Emission] = []
        at, recorded = self._anchor
        while self._chunks and self._chunks[0].direction == RX:
            chunk = self._chunks.popleft()
            if self._pace:
                at += max(0.0, chunk.t - recorded)
            recorded = chunk.t
            out.append(Emission(at, chunk.data))
        self._anchor = (at, recorded)
        while self._chunks and self._chunks[0].direction == TX:
            chunk = self._chunks.popleft()
            self._expected += chunk.data
            self._expected_t = chunk.t
        return out


class CommandReplay:
    """Answer each command by the recording, whatever the order: a line the client sends
    gets the answer that followed the same line in the recording (several recordings of a
    line are served in turn, the last one again when they run out). Raw data after a `>`
    prompt is looked up as a line of its own. A line never recorded gets ERROR and is
    noted in `unknown`. Answers go out when the line is complete, echo included."""

    def __init__(self, session: Session) -> None:
        self._greeting = session.greeting()
        self._answers: dict[bytes, deque[bytes]] = defaultdict(deque)
        self._last: dict[bytes, bytes] = {}
        self._data_keys: set[bytes] = set()
        for exchange in session.exchanges():
            key = _key(exchange.sent)
            self._answers[key].append(exchange.answer)
            self._last[key] = exchange.answer
            if exchange.is_data:
                self._data_keys.add(key)
        self._pending = bytearray()
        self.unknown: list[bytes] = []

    def start(self, now: float) -> list[Emission]:
        return [Emission(now, self._greeting)] if self._greeting else []

    def received(self, data: bytes, now: float) -> list[Emission]:
        out: list[Emission] = []
        self._pending += data
        while True:
            line = self._take_line()
            if line is None:
                return out
            if not _key(line):
                continue  # a lone line end (CR LF)
            out.append(Emission(now, self._answer(line)))

    def _take_line(self) -> bytes | None:
        buf = self._pending
        for key in self._data_keys:  # raw data has no line end: recognised whole
            if bytes(buf) == key:
                self._pending = bytearray()
                return key
        for i, byte in enumerate(buf):
            if byte in b"\r\n":
                line = bytes(buf[: i + 1])
                del buf[: i + 1]
                return line
        return None

    def _answer(self, line: bytes) -> bytes:
        key = _key(line)
        queue = self._answers.get(key)
        if queue is None:
            self.unknown.append(key)
            return _UNKNOWN
        return queue.popleft() if queue else self._last[key]


def _key(sent: bytes) -> bytes:
    """A command line without its line end and surrounding blanks (data stays as it is)."""
    if sent.endswith((b"\r", b"\n")):
        return sent.strip(b"\r\n \t")
    return sent
