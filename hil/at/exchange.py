"""The AT exchange, sans-I/O: which bytes answer a command, decided from the bytes alone.

The device's bytes go in with the moment they arrived (`receive(data, t_ns)`); events come
out: a line of the answer to the command in flight (`Answer`), a line no command claims
(`Urc`), the `>` prompt (`Prompted`), the command's completion (`Completed`). The command
and its raw data go out through `send()` and `send_data()`, which return the bytes to write
and take the moment they are written. Nothing here reads a clock or touches a port or a
thread: `hil/at/channel.py` does, as h11's connection leaves its sockets to its caller.

Which line answers the command in flight is decided by the command's `CommandSpec` and the
line's shape; every other line is a URC, also in the middle of a response. A command goes
through the states of `State` only by the transitions in `_TRANSITIONS`; a call its state
does not allow (a second command while one is in flight, data before the prompt) raises
`ExchangeError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from hil.at.framer import CountedLine, DataEcho, Framer, Line, Prompt

__all__ = [
    "PLAIN",
    "Answer",
    "AtError",
    "CommandSpec",
    "Completed",
    "Event",
    "Exchange",
    "ExchangeError",
    "Part",
    "Prompted",
    "Response",
    "State",
    "Timing",
    "Urc",
    "show_line",
]

_FINAL = re.compile(rb"(?:OK|ERROR|\+CM[ES] ERROR:.*)\Z")
_ERROR = re.compile(rb"(?:ERROR|\+CM[ES] ERROR:)")
_TRAILING_BLANKS = b" \t"


class AtError(Exception):
    """Base of the AT layer's errors."""


class ExchangeError(AtError):
    """A call the exchange's state does not allow: the caller's mistake, not the device's."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """What a command's answer looks like, beyond the final result code.

    `result` matches its result URC (e.g. `+MSUB: SUCCESS`), awaited besides OK; `info`
    match its information lines (accepted before the final code); `prompt` says it asks
    for raw data with `>`. Patterns are matched with `.match()` on the line's raw bytes.
    """

    name: str
    result: re.Pattern[bytes] | None = None
    info: tuple[re.Pattern[bytes], ...] = ()
    prompt: bool = False


PLAIN = CommandSpec("AT")


def _ms(start_ns: int, t_ns: int | None) -> float | None:
    return None if t_ns is None else (t_ns - start_ns) / 1e6


@dataclass(slots=True)
class Timing:
    """When each part of a command's exchange happened, in the caller's nanosecond clock
    (the channel's: `time.monotonic_ns()`).

    `sent_ns` is when the command was written; `first_byte_ns` the arrival of the first
    chunk after it (the echo, when echo is on); `data_ns` when the raw data went out after
    the prompt.
    """

    sent_ns: int
    first_byte_ns: int | None = None
    final_ns: int | None = None
    result_ns: int | None = None
    prompt_ns: int | None = None
    data_ns: int | None = None

    @property
    def done_ns(self) -> int | None:
        """When the last awaited part (final code or result URC) arrived."""
        seen = [t for t in (self.final_ns, self.result_ns) if t is not None]
        return max(seen) if seen else None

    @property
    def first_byte_ms(self) -> float | None:
        return _ms(self.sent_ns, self.first_byte_ns)

    @property
    def final_ms(self) -> float | None:
        return _ms(self.sent_ns, self.final_ns)

    @property
    def result_ms(self) -> float | None:
        return _ms(self.sent_ns, self.result_ns)

    @property
    def prompt_ms(self) -> float | None:
        return _ms(self.sent_ns, self.prompt_ns)

    @property
    def total_ms(self) -> float | None:
        return _ms(self.sent_ns, self.done_ns)


@dataclass(slots=True)
class Response:
    """Everything that answered one command, and when.

    `lines` are the information lines; `data_echo` the device repeating the raw data sent
    after a prompt (echo on); `interleaved` the URCs that arrived while the command was in
    flight (they are URC events too, not part of the answer).
    """

    command: str
    echo: Line | None
    lines: list[Line]
    final: Line | None
    result: Line | None
    timing: Timing
    name: str = ""
    data_echo: Line | None = None
    interleaved: list[Line] = field(default_factory=list)
    data_sent: bool = False

    @property
    def ok(self) -> bool:
        """The final result code is OK (says nothing about the result URC)."""
        return self.final is not None and self.final.raw.rstrip(_TRAILING_BLANKS) == b"OK"

    @property
    def error(self) -> bool:
        """The final result code is ERROR, +CME ERROR or +CMS ERROR."""
        return self.final is not None and _ERROR.match(self.final.raw) is not None

    def summary(self) -> str:
        """One line listing what arrived, for failure messages."""
        parts = [f"echo={show_line(self.echo)}"]
        if self.lines:
            parts.append("info=[" + ", ".join(show_line(x) for x in self.lines) + "]")
        parts.append(f"final={show_line(self.final)}")
        parts.append(f"result={show_line(self.result)}")
        if self.timing.prompt_ns is not None:
            parts.append("prompt seen")
        if self.data_echo is not None:
            parts.append("data echoed")
        if self.interleaved:
            parts.append("urcs=[" + ", ".join(show_line(x) for x in self.interleaved) + "]")
        return "; ".join(parts)


def show_line(line: Line | None, limit: int = 120) -> str:
    """A line for a one-line summary; long payloads are cut so a failure stays readable."""
    if line is None:
        return "-"
    text = (
        line.text if len(line.text) <= limit else f"{line.text[:limit]}…(+{len(line.text) - limit})"
    )
    return repr(text)


#: What a line of a command's answer is: its echo, the echo of its raw data, an
#: information line, the final result code, the result URC.
Part = Literal["echo", "data", "info", "final", "result"]


# Events are created for every line: plain slotted dataclasses, as cheap to make as a
# class can be (a frozen one costs several times more on the path of every answer).


@dataclass(slots=True)
class Answer:
    """A line of the answer to the command in flight (filed in its `Response` too)."""

    line: Line
    part: Part


@dataclass(slots=True)
class Urc:
    """A line no command claims: unsolicited, or begun before the command went out."""

    line: Line


@dataclass(slots=True)
class Prompted:
    """The device asked for the command's raw data: `send_data()` may go now ("data due"),
    unless the command was answered before the prompt came: then it never goes."""

    t_ns: int


@dataclass(slots=True)
class Completed:
    """The command's answer is complete: its final code and, per its spec, its result URC
    (or an error, which ends it without one). `finish()` ends the command."""

    response: Response


Event = Answer | Urc | Prompted | Completed

#: Where the command in flight stands: "idle" (none in flight); "awaiting prompt" (sent
#: with data: its `>`, or a refusal, is due); "data due" (the prompt came: the data goes
#: out next); "awaiting answer" (the final code and/or the result URC are due);
#: "complete" (answered: `finish()` returns to "idle"). Strings, not an Enum: the state is
#: read on the path of every answer, and an Enum member costs a descriptor call each time.
State = Literal["idle", "awaiting prompt", "data due", "awaiting answer", "complete"]

#: What moves a command on:
#: "send" / "send with data": a command goes out; "prompt": its `>` arrived;
#: "answered": a final code or result URC arrived before its data went out, so it never
#: will (refused); "send data": the data went out; "complete": the answer is whole;
#: "finish": the caller is done with it (answered, timed out or abandoned).
Trigger = Literal["send", "send with data", "prompt", "answered", "send data", "complete",
                  "finish"]

_TRANSITIONS: dict[State, dict[Trigger, State]] = {
    "idle": {"send": "awaiting answer", "send with data": "awaiting prompt"},
    "awaiting prompt": {"prompt": "data due", "answered": "awaiting answer", "finish": "idle"},
    "data due": {"send data": "awaiting answer", "answered": "awaiting answer", "finish": "idle"},
    "awaiting answer": {"complete": "complete", "finish": "idle"},
    "complete": {"finish": "idle"},
}


def _same_command(echo: str, sent: str) -> bool:
    """An echo is the command as typed; tolerate trimmed or dropped spaces and case."""
    a, b = echo.strip(), sent.strip()
    return a == b or a.replace(" ", "").casefold() == b.replace(" ", "").casefold()


@dataclass(slots=True)
class _Command:
    """The command in flight: its spec, its raw data (if any), its growing response."""

    spec: CommandSpec
    data: bytes | None
    response: Response


class Exchange:
    """One AT conversation with one device: a command at a time, URCs at any time.

    `counted` are the line shapes that announce a byte count (hil/at/framer.py). Stamps
    are the caller's, in nanoseconds: a line's is the stamp of the chunk that completed it.
    """

    def __init__(self, counted: Sequence[CountedLine] = ()) -> None:
        self._framer = Framer(counted)
        self._state: State = "idle"
        self._cmd: _Command | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def response(self) -> Response | None:
        """The response of the command in flight (growing until `finish()`), or None."""
        return None if self._cmd is None else self._cmd.response

    # ---------------------------------------------------------------- the caller's side

    def check_send(self, command: str) -> None:
        """Raise `ExchangeError` unless `command` may be sent now (nothing in flight)."""
        self._target("send", command)

    def send(self, command: bytes, spec: CommandSpec, sent_ns: int,
             data: bytes | None = None) -> bytes:
        """Start `command` (written at `sent_ns`); return the bytes to write.

        With `data`, the command asks for raw data: a `>` at line start is its prompt, and
        `send_data()` may go once it came (state "data due").
        """
        text = command.decode("utf-8", "backslashreplace")
        self._move("send" if data is None else "send with data", text)
        response = Response(text, None, [], None, None, Timing(sent_ns), name=spec.name)
        self._cmd = _Command(spec, data, response)
        self._framer.expect_prompt = data is not None
        return command + b"\r"

    def send_data(self, data_ns: int) -> bytes:
        """The command's raw data goes out (at `data_ns`) after its prompt; return it.

        With echo on (the command was echoed) the device may repeat the data: bytes that
        do, byte for byte, become one `Answer(part="data")`, so data holding `\\r\\nOK\\r\\n`
        is never taken for the final code.
        """
        self._move("send data")
        cmd = self._cmd
        assert cmd is not None and cmd.data is not None  # "data due" has both
        r = cmd.response
        if r.echo is not None:
            self._framer.expect_echo(cmd.data)
        r.timing.data_ns = data_ns
        r.data_sent = True
        return cmd.data

    def finish(self) -> list[Event]:
        """End the command in flight (answered, timed out or abandoned).

        Bytes held as a possible data echo are framed as usual; with no command in flight
        any more, their lines are URCs, returned here.
        """
        self._move("finish")
        self._cmd = None
        self._framer.expect_prompt = False
        events: list[Event] = []
        for item in self._framer.stop_echo():
            if isinstance(item, Line):
                self._file(item, events)
        return events

    def timeout_message(self, timeout: float) -> str:
        """Why the command in flight is not complete after `timeout` s, and what came."""
        cmd = self._cmd
        if cmd is None:
            raise ExchangeError("no command in flight to time out")
        r, spec = cmd.response, cmd.spec
        if self._state == "awaiting prompt":
            missing = "no '>' prompt"
        elif r.final is None:
            missing = "no final result code (OK/ERROR)"
        else:
            missing = f"final {r.final.text!r} but no {spec.name} result URC"
            if spec.result is not None:
                missing += f" /{spec.result.pattern!r}/"
        seen = r.summary()
        pending = self._framer.pending
        if pending:
            more = f"…(+{len(pending) - 200} bytes)" if len(pending) > 200 else ""
            seen += f"; partial line {pending[:200]!r}{more}"
        return f"{r.command!r}: {missing} within {timeout:.3f} s; seen: {seen}"

    # ---------------------------------------------------------------- the device's side

    def receive(self, data: bytes, t_ns: int) -> list[Event]:
        """Take `data` that arrived at `t_ns`; return the events it completed, in order."""
        cmd = self._cmd
        if cmd is not None:
            timing = cmd.response.timing
            if timing.first_byte_ns is None and t_ns >= timing.sent_ns:
                timing.first_byte_ns = t_ns
        events: list[Event] = []
        for item in self._framer.feed(data, t_ns):
            if isinstance(item, Prompt):
                self._prompted(item, events)
            else:
                self._file(item, events)
        return events

    def _prompted(self, prompt: Prompt, events: list[Event]) -> None:
        # The framer sees one prompt, and only while a command with data is in flight; if
        # the command was answered before it, the data is not due and never will be.
        assert self._cmd is not None
        if self._state == "awaiting prompt":
            self._move("prompt")
        self._cmd.response.timing.prompt_ns = prompt.t_ns
        events.append(Prompted(prompt.t_ns))

    def _file(self, line: Line, events: list[Event]) -> None:
        """File `line` as part of the answer to the command in flight, or as a URC."""
        cmd = self._cmd
        # A line that began before the command went out cannot be its answer.
        if cmd is None or line.first_t_ns < cmd.response.timing.sent_ns:
            events.append(Urc(line))
            return
        part = self._classify(cmd, line)
        if part is None:
            cmd.response.interleaved.append(line)
            events.append(Urc(line))
            return
        events.append(Answer(line, part))
        if part in ("final", "result"):
            self._complete_if_answered(events)

    @staticmethod
    def _classify(cmd: _Command, line: Line) -> Part | None:
        """Attach `line` to the response and return its part; None if it is not ours."""
        r, raw = cmd.response, line.raw
        first = r.echo is None and r.final is None and not r.lines
        if first and _same_command(line.text, r.command):
            r.echo = line
            return "echo"
        if isinstance(line, DataEcho) and r.data_sent and r.data_echo is None:
            r.data_echo = line
            return "data"
        if r.final is None and _FINAL.match(raw.rstrip(_TRAILING_BLANKS)):
            r.final = line
            r.timing.final_ns = line.t_ns
            return "final"
        if cmd.spec.result is not None and r.result is None and cmd.spec.result.match(raw):
            r.result = line
            r.timing.result_ns = line.t_ns
            return "result"
        if r.final is None and any(p.match(raw) for p in cmd.spec.info):
            r.lines.append(line)
            return "info"
        return None

    def _complete_if_answered(self, events: list[Event]) -> None:
        """After a final code or result URC: move on if it ends the wait for the prompt
        (a refusal), then if it ends the wait for the answer."""
        cmd = self._cmd
        assert cmd is not None
        if self._state == "awaiting prompt" or self._state == "data due":
            # answered before its data went out: the data never will
            self._move("answered")
        r = cmd.response
        if (self._state == "awaiting answer" and r.final is not None
                and (cmd.spec.result is None or r.result is not None or r.error)):
            self._move("complete")
            events.append(Completed(r))

    # ---------------------------------------------------------------- transitions

    def _target(self, trigger: Trigger, command: str | None = None) -> State:
        """The state `trigger` leads to; `ExchangeError` if it may not happen now (a
        `command` to be sent is named in the message)."""
        target = _TRANSITIONS[self._state].get(trigger)
        if target is None:
            action = trigger if command is None else f"{command!r} sent"
            where = ("no command is in flight" if self._cmd is None
                     else f"{self._cmd.response.command!r} is in flight ({self._state})")
            raise ExchangeError(f"{action} while {where}")
        return target

    def _move(self, trigger: Trigger, command: str | None = None) -> None:
        self._state = self._target(trigger, command)
