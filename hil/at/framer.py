"""Sans-I/O framing of what an AT device sends: bytes in, lines and prompts out.

The framer knows nothing about commands; it only cuts the byte stream into events. It is a
pure state machine (the clock is an argument), so any split of the input across `feed()`
calls gives the same events, and its tests need no serial port.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_TERMINATOR = re.compile(rb"[\r\n]")
_CR = 0x0D
_LF = 0x0A
_PROMPT = 0x3E  # ">"
_SPACE = 0x20


@dataclass(frozen=True, slots=True)
class Line:
    """One line from the device, without its terminator.

    `raw` is byte-exact (a counted payload may hold CR, LF, NUL, anything); `text` is for
    people and regexes on str, never lossy-crashing. `t_ns` is when the line was complete,
    `first_t_ns` when its first byte arrived (both `time.monotonic_ns()` of the chunk).
    """

    raw: bytes
    text: str
    t_ns: int
    first_t_ns: int

    @classmethod
    def of(cls, raw: bytes, t_ns: int, first_t_ns: int | None = None) -> Line:
        """Build a line from its bytes, decoding the text the one way the framer does;
        without `first_t_ns` it arrived in one chunk."""
        first = t_ns if first_t_ns is None else first_t_ns
        return cls(raw, raw.decode("utf-8", "backslashreplace"), t_ns, first)


@dataclass(frozen=True, slots=True)
class DataEcho(Line):
    """The device repeating the raw data it was sent after a prompt (see `expect_echo`)."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """The device asks for raw data (`>`, `> `, `>>`, `>> `), sent without a line end."""

    t_ns: int


@dataclass(frozen=True, slots=True)
class CountedLine:
    """A line shape that announces a byte count, followed by that many verbatim bytes.

    `pattern` is tried, anchored at line start, on the bytes of the line received so far;
    the first (shortest) prefix it matches ends the header, and `payload_length(match)`
    further bytes are taken as they are, terminators included. The line then ends at the
    next terminator. The pattern must not look past its own end (no `$`, `\\Z`, lookahead):
    a match on a prefix must stay a match when more bytes follow, which is what makes the
    result independent of how the input was split.
    """

    pattern: re.Pattern[bytes]
    payload_length: Callable[[re.Match[bytes]], int]


class Framer:
    """Cut a byte stream into `Line` and `Prompt` events.

    Lines end by CRLF, lone CR or lone LF; a CR at the end of one chunk and an LF at the
    start of the next are one terminator. Blank lines are dropped. While `expect_prompt` is
    True, a `>` at line start is a `Prompt` (further `>` and one space after it are part of
    the prompt); the flag then turns False by itself. After `expect_echo(data)`, bytes that
    repeat `data` exactly become one `DataEcho` line; at the first byte that differs, the
    bytes held so far are framed as usual.
    """

    def __init__(self, counted: Sequence[CountedLine] = ()) -> None:
        self.expect_prompt = False
        self._counted = tuple(counted)
        self._buf = bytearray()
        self._first_t_ns: int | None = None
        self._after_cr = False  # the last terminator was a CR: an LF right after it is its pair
        self._prompt_tail = False  # inside a prompt: more ">" or one space still belong to it
        self._payload_left = 0  # verbatim bytes still owed to a counted line
        self._header_done = False  # this line already matched a counted header
        self._echo: bytes | None = None  # raw data the device may repeat
        self._echo_held: list[tuple[int, bytes]] = []  # bytes that matched it so far

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet part of an event, for diagnostics."""
        return b"".join(seg for _, seg in self._echo_held) + bytes(self._buf)

    def expect_echo(self, data: bytes) -> None:
        """The device may now repeat `data` (raw data sent after a prompt) byte for byte.

        Comparing bytes, not lines, keeps data that holds `\r\nOK\r\n` from being taken
        for a final result code, and an absent echo from swallowing the real one.
        """
        if data and not self._buf and not self._payload_left:
            self._echo, self._echo_held = data, []

    def stop_echo(self) -> list[Line | Prompt]:
        """Stop expecting the echo; bytes held for it are framed as usual."""
        held = self._echo_held
        self._echo, self._echo_held = None, []
        events: list[Line | Prompt] = []
        for t_ns, segment in held:
            events += self.feed(segment, t_ns)
        return events

    def feed(self, data: bytes, t_ns: int) -> list[Line | Prompt]:
        """Consume `data` (arrived at `t_ns`) and return the events it completed."""
        events: list[Line | Prompt] = []
        i, n = 0, len(data)
        while i < n:
            if self._payload_left:
                take = min(self._payload_left, n - i)
                self._buf += data[i : i + take]
                self._payload_left -= take
                i += take
                continue
            byte = data[i]
            if self._after_cr:
                self._after_cr = False
                if byte == _LF:
                    i += 1
                    continue
            if self._prompt_tail:
                if byte == _PROMPT:
                    i += 1
                    continue
                self._prompt_tail = False
                if byte == _SPACE:
                    i += 1
                    continue
            if self._echo is not None:
                i = self._take_echo(data, i, t_ns, events)
                continue
            if not self._buf and self.expect_prompt and byte == _PROMPT:
                events.append(Prompt(t_ns))
                self.expect_prompt = False
                self._prompt_tail = True
                i += 1
                continue
            i = self._take_text(data, i, t_ns, events)
        return events

    def _take_echo(self, data: bytes, i: int, t_ns: int, events: list[Line | Prompt]) -> int:
        """Match bytes against the expected echo; return the new index."""
        assert self._echo is not None
        want = self._echo[sum(len(seg) for _, seg in self._echo_held) :]
        limit = min(len(want), len(data) - i)
        k = 0
        while k < limit and data[i + k] == want[k]:
            k += 1
        if k:
            self._echo_held.append((t_ns, data[i : i + k]))
        if k == len(want):
            first = self._echo_held[0][0]
            events.append(DataEcho.of(self._echo, t_ns, first))
            self._echo, self._echo_held = None, []
        elif i + k < len(data):
            events += self.stop_echo()  # differs at data[i + k]: it was no echo
        return i + k

    def _take_text(self, data: bytes, i: int, t_ns: int, events: list[Line | Prompt]) -> int:
        """Append bytes up to the next terminator (or counted header); return the new index."""
        m = _TERMINATOR.search(data, i)
        end = m.start() if m else len(data)
        if m is not None and not self._buf and not (self._counted and end > i and
                                                    self._counted_header(data[i:end])):
            # the common case: a whole line inside this chunk, no counted header
            if end > i:
                events.append(Line.of(data[i:end], t_ns))
            self._after_cr = data[end] == _CR
            return end + 1
        if end > i:
            if self._first_t_ns is None:
                self._first_t_ns = t_ns
            if self._counted and not self._header_done:
                header = self._counted_header(bytes(self._buf) + data[i:end])
                if header is not None:
                    length, match_end = header
                    consumed = match_end - len(self._buf)
                    self._buf += data[i : i + consumed]
                    self._header_done = True
                    self._payload_left = max(0, length)
                    return i + consumed
            self._buf += data[i:end]
        if m is None:
            return end
        if self._buf:
            raw = bytes(self._buf)
            events.append(Line.of(raw, t_ns, self._first_t_ns))
        self._buf.clear()
        self._first_t_ns = None
        self._header_done = False
        self._after_cr = data[end] == _CR
        return end + 1

    def _counted_header(self, candidate: bytes) -> tuple[int, int] | None:
        """Find the shortest prefix of `candidate` that a counted rule matches.

        Returns (payload length, header end) or None. Shorter prefixes than the buffer
        already held were tried on earlier bytes, so only the new part is searched; a match
        on a prefix implies one on the whole, so the earliest end is found by bisection.
        """
        best: tuple[int, int] | None = None
        lo_start = len(self._buf) + 1
        for rule in self._counted:
            if rule.pattern.match(candidate) is None:
                continue
            lo, hi = lo_start, len(candidate)
            while lo < hi:
                mid = (lo + hi) // 2
                if rule.pattern.match(candidate, 0, mid) is None:
                    lo = mid + 1
                else:
                    hi = mid
            if best is not None and lo >= best[1]:
                continue
            match = rule.pattern.match(candidate, 0, lo)
            assert match is not None
            best = (rule.payload_length(match), lo)
        return best
