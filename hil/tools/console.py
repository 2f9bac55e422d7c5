"""`hil console`: the terminal a hardware engineer talks to the module with.

Instead of a serial terminal program: line editing, history and completion of the MQTT
commands with their parameters (prompt_toolkit), every line timestamped, result codes
decoded (`+MIPSTART: FAILURE,5` → "connecting to the server failed"), URCs marked, MPUBEX
data entry that sends exactly `<len>` bytes, and the session recorded as `hil record`
records it (docs/console.md).

`ConsoleCore` is the sans-I/O part (what to send for a typed line, how to show a line from
the module); `run()` is the thin host around it: the port, a reader thread, the prompt.
"""

from __future__ import annotations

import argparse
import codecs
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import serial

from hil.at.framer import Framer, Line, Prompt
from hil.at.portio import Port
from hil.l506.types import MSUB_COUNTED, MqttStatus, ResultType, parse_result
from hil.trace.session import RX, TX, SessionWriter

if TYPE_CHECKING:  # prompt_toolkit is loaded when the console starts, not on import
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import CompleteEvent, Completer, Completion
    from prompt_toolkit.document import Document

#: What each result type means (GEN-4, guide section 2.1).
RESULT_MEANING: dict[ResultType, str] = {
    ResultType.NO_ERROR: "no error",
    ResultType.CONNECTION_BROKEN: "the connection is broken (the server closed it)",
    ResultType.BAD_PARAMETER: "a parameter is wrong",
    ResultType.NETWORK_ACTIVATION_FAILED: "activating the network connection failed",
    ResultType.SOCKET_CREATION_FAILED: "creating the socket failed",
    ResultType.SERVER_CONNECT_FAILED: "connecting to the server failed",
    ResultType.MQTT_CONNECT_FAILED: "the MQTT connection to the server failed",
    ResultType.OLD_CONNECTION_NOT_CLOSED: "the old connection is not closed",
    ResultType.SSL_HANDSHAKE_FAILED: "the SSL handshake with the server failed",
}

STATUS_MEANING: dict[MqttStatus, str] = {
    MqttStatus.NO_CONNECTION: "no connection",
    MqttStatus.MQTT_CONNECTED: "MQTT connected",
    MqttStatus.TCP_CONNECTED: "TCP connected, MQTT not yet",
}

#: The MQTT commands with their parameters as the guide writes them (chapter 2), and the
#: values a parameter may take where the guide lists them.
COMMANDS: dict[str, tuple[tuple[str, tuple[str, ...]], ...] | None] = {
    "AT+MCONFIG=": (("<clientid>", ()), ("<username>", ()), ("<password>", ()),
                    ("<will_flag>", ("0", "1")), ("<will_qos>", ("0", "1", "2")),
                    ("<will_retain>", ("0", "1")), ("<will_topic>", ()), ("<will_message>", ())),
    "AT+MIPSTART=": (("<domain name>", ()), ("<port>", ("1883", "8883"))),
    "AT+MCONNECT=": (("<clean session>", ("0", "1")), ("<keep alive timer>", ("30", "60"))),
    "AT+MSUB=": (("<topic>", ()), ("<qos>", ("0", "1", "2"))),
    "AT+MUNSUB=": (("<topic>", ()),),
    "AT+MPUB=": (("<topic>", ()), ("<qos>", ("0", "1", "2")), ("<retain>", ("0", "1")),
                 ("<message>", ())),
    "AT+MPUBEX=": (("<topic>", ()), ("<qos>", ("0", "1", "2")), ("<retain>", ("0", "1")),
                   ("<message_len>", ())),
    "AT+MDISCONNECT": None,
    "AT+MIPCLOSE": None,
    "AT+MQTTSSL=": (("<action>", ("0", "1")),),
    "AT+MQTTMSGSET=": (("<mode>", ("0", "1")),),
    "AT+MQTTMSGGET=": (("<n>", ("0", "1", "2", "3")),),
    "AT+MQTTMSGGET": None,
    "AT+MQTTCEER": None,
    "AT+MQTTSTATU": None,
}

_MPUBEX = re.compile(r"AT\+MPUBEX=.*,\s*(\d+)\s*$", re.IGNORECASE)
_STATU = re.compile(rb"\+ ?MQTTSTATU: ?(\d+)")
_CEER = re.compile(rb"\+ ?MQTTCEER: ?(\d+)")
_MSUB_SLOT = re.compile(rb"\+MSUB: ?(\d+)[ \t]*\Z")
_MSUB_MESSAGE = re.compile(rb"\+MSUB: ?(.*?),(\d+) bytes,", re.DOTALL)
_BOOT = re.compile(rb"RDY|Call Ready|\+CPIN: ?READY")
_BROKEN = re.compile(rb"\+ ?MCONNECT: ?FAILURE,1[ \t]*\Z")


def decode_escapes(text: str) -> bytes:
    """Raw data as typed: `\\r`, `\\n`, `\\t`, `\\xNN` and `\\\\` stand for those bytes;
    every other character is its UTF-8."""
    try:
        return codecs.escape_decode(text.encode("utf-8"))[0]
    except ValueError as exc:
        raise ValueError(f"bad escape in the data ({exc}); write \\\\ for a backslash") from None


@dataclass(frozen=True)
class Shown:
    """A line from the module as the console shows it."""

    text: str
    kind: str  # "echo", "answer", "result", "urc", "prompt"
    meaning: str = ""


class ConsoleCore:
    """What the console sends and shows; no I/O."""

    def __init__(self) -> None:
        self.framer = Framer((MSUB_COUNTED,))
        self.data_length: int | None = None  # MPUBEX asked for this many bytes
        self.awaiting_prompt = False
        self._wanted = 0  # the <len> of the MPUBEX in flight
        self._last_sent: str | None = None
        self._pending: set[str] = set()  # commands whose result URC is still to come

    def line_typed(self, text: str) -> tuple[bytes | None, str | None]:
        """A line the engineer entered → (bytes to send, or None; a note to show, or None)."""
        if self.data_length is not None:
            try:
                data = decode_escapes(text)
            except ValueError as exc:
                return None, str(exc)
            if len(data) != self.data_length:
                return None, (f"the data is {len(data)} bytes, MPUBEX asked for "
                              f"{self.data_length}: type exactly {self.data_length} "
                              f"(\\r \\n \\xNN for control bytes)")
            self.data_length = None
            return data, None
        command = text.strip()
        if not command:
            return None, None
        m = _MPUBEX.match(command)
        if m is not None:
            self.awaiting_prompt = True
            self.framer.expect_prompt = True
            self._wanted = int(m.group(1))
        name = _name(command)
        if name:
            self._pending.add(name)
        self._last_sent = command
        return command.encode("utf-8") + b"\r", None

    def received(self, data: bytes, t_ns: int) -> list[Shown]:
        """Bytes from the module → the lines to show."""
        shown: list[Shown] = []
        for event in self.framer.feed(data, t_ns):
            if isinstance(event, Prompt):
                if self.awaiting_prompt:
                    self.awaiting_prompt = False
                    self.data_length = self._wanted
                shown.append(Shown(">", "prompt",
                                   f"type the {self.data_length} bytes of the message"))
                continue
            shown.append(self.describe(event))
        return shown

    def describe(self, line: Line) -> Shown:
        raw, text = line.raw, line.text
        if self._last_sent is not None and text.strip() == self._last_sent:
            self._last_sent = None
            return Shown(text, "echo")
        try:
            result = parse_result(raw)
        except ValueError:
            result = None
        if result is not None:
            meaning = "" if result.success and result.code in (None, 0) else (
                RESULT_MEANING[result.type] if result.type is not None
                else f"result type {result.code} is not in the guide")
            if _BROKEN.match(raw) and "MCONNECT" not in self._pending:
                return Shown(text, "urc", RESULT_MEANING[ResultType.CONNECTION_BROKEN])
            self._pending.discard(result.name)
            return Shown(text, "result", meaning)
        if m := _MSUB_SLOT.match(raw):
            return Shown(text, "urc", f"a message is stored in slot {m.group(1).decode()}: "
                                      f"AT+MQTTMSGGET={m.group(1).decode()} reads it")
        if m := _MSUB_MESSAGE.match(raw):
            return Shown(text, "urc", f"a message of {int(m.group(2))} bytes on "
                                      f"{m.group(1).decode('utf-8', 'backslashreplace')}")
        if _BOOT.match(raw):
            return Shown(text, "urc", "the module booted")
        if m := _STATU.match(raw):
            value = int(m.group(1))
            known = value in MqttStatus._value2member_map_
            return Shown(text, "answer", STATUS_MEANING[MqttStatus(value)] if known else "")
        if m := _CEER.match(raw):
            code = int(m.group(1))
            known = code in ResultType._value2member_map_
            return Shown(text, "answer", f"last failure: {RESULT_MEANING[ResultType(code)]}"
                         if known and code else "")
        return Shown(text, "answer")


def _name(command: str) -> str:
    m = re.match(r"AT\+([A-Z]+)", command, re.IGNORECASE)
    return m.group(1).upper() if m else ""


def complete(text: str) -> Iterator[tuple[str, str]]:
    """Completions of the line typed so far: (text to insert in place of the current word,
    what it is). Command names before the `=`, a parameter's values (or its name) after."""
    upper = text.upper()
    if "=" not in text:
        for name, params in COMMANDS.items():
            if name.startswith(upper) and name != upper:
                hint = ",".join(p for p, _ in params) if params else "(no parameters)"
                yield name, hint
        return
    head, _, args = text.partition("=")
    params = COMMANDS.get(head.upper() + "=")
    if not params:
        return
    index = args.count(",")
    if index >= len(params):
        return
    name, values = params[index]
    current = args.rsplit(",", 1)[-1]
    for value in values:
        if value.startswith(current.strip()):
            yield value, name
    if not values:
        yield current, name


def _stamp() -> str:
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]


_MARK = {"echo": "   ", "answer": "<< ", "result": "<< ", "urc": "URC", "prompt": "<< "}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def visible(text: str) -> str:
    """Control bytes (a CR inside a message) written as escapes, so one line stays one."""
    return _CONTROL.sub(lambda m: repr(m.group(0))[1:-1], text)


def render(shown: Shown) -> str:
    tail = f"   [{shown.meaning}]" if shown.meaning else ""
    return f"{_stamp()} {_MARK[shown.kind]} {visible(shown.text)}{tail}"


# ---------------------------------------------------------------- the host


HELP = "an interactive AT terminal: history, completion, decoded results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("port", help="the module's port: a device node or any pyserial URL")
    parser.add_argument("--baud", type=int, default=115200, help="the port's rate (115200)")
    parser.add_argument("--record", type=Path, default=None, metavar="FILE",
                        help="record the session (as `hil record` does) to FILE")
    parser.add_argument("--history", type=Path,
                        default=Path.home() / ".hil_console_history",
                        help="where typed lines are kept between sessions")


def _completer() -> Completer:
    from prompt_toolkit.completion import Completer, Completion

    class MqttCompleter(Completer):
        def get_completions(
            self, document: Document, complete_event: CompleteEvent
        ) -> Iterator[Completion]:
            before = document.text_before_cursor
            current = before.rsplit(",", 1)[-1].rsplit("=", 1)[-1] if "=" in before else before
            for value, meta in complete(before):
                yield Completion(value, start_position=-len(current), display_meta=meta)

    return MqttCompleter()


def _prompt(data_length: int | None) -> str:
    return "L506> " if data_length is None else f"data ({data_length} bytes)> "


def _show(text: str) -> None:
    print(text, flush=True)


class _Terminal:
    """The console's two threads around one port: the reader prints what the module says,
    the prompt sends what the operator types; the core, under a lock, is shared."""

    def __init__(self, port: Port, writer: SessionWriter | None) -> None:
        self.port, self.writer = port, writer
        self.core = ConsoleCore()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.lost: list[str] = []

    def read(self, session: PromptSession[str]) -> None:
        """Until stopped or the port is gone: print each line the module sends."""
        port = self.port
        while not self.stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                self.lost.append(str(exc))
                _show(f"{_stamp()} !!  the port is gone: {exc}; Ctrl-D to leave")
                return
            if not data:
                continue
            if self.writer is not None:
                self.writer.chunk(RX, data, time.monotonic())
            with self.lock:
                lines = self.core.received(data, time.monotonic_ns())
            for shown in lines:
                _show(render(shown))
            if lines and session.app.is_running:
                session.app.invalidate()  # the prompt may change (MPUBEX data)

    def type_lines(self, session: PromptSession[str]) -> None:
        """Until Ctrl-D: send each typed line (or MPUBEX data) to the module."""
        while True:
            try:
                typed = session.prompt(lambda: _prompt(self.core.data_length))
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            self.send(typed)

    def send(self, typed: str) -> None:
        with self.lock:
            data_mode = self.core.data_length
            data, note = self.core.line_typed(typed)
        if note:
            _show(f"{_stamp()} !!  {note}")
        if data is None:
            return
        _show(f"{_stamp()} >>  {typed.strip() if data_mode is None else repr(data)}")
        if self.writer is not None:
            self.writer.chunk(TX, data, time.monotonic())
        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as exc:
            _show(f"{_stamp()} !!  cannot write to the port: {exc}")


def main(args: argparse.Namespace) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.patch_stdout import patch_stdout

    try:
        port = serial.serial_for_url(args.port, baudrate=args.baud, timeout=0.1)
    except (serial.SerialException, OSError, ValueError) as exc:
        print(f"hil console: cannot open {args.port}: {exc}", file=sys.stderr)
        return 2
    writer = None if args.record is None else SessionWriter(
        args.record, port=args.port, baud=args.baud, clock_start=time.monotonic())
    terminal = _Terminal(port, writer)
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(args.history)), completer=_completer(),
        complete_while_typing=False,
    )
    print(f"hil console on {args.port}: Tab completes, Ctrl-D leaves"
          + (f"; recording to {args.record}" if args.record else ""), flush=True)
    with patch_stdout(raw=True):
        thread = threading.Thread(target=terminal.read, args=(session,), daemon=True)
        thread.start()
        try:
            terminal.type_lines(session)
        finally:
            terminal.stop.set()
            thread.join(timeout=2)
            port.close()
            if writer is not None:
                writer.close()
    return 1 if terminal.lost else 0
