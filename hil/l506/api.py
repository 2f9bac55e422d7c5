"""The L506 as a typed API: one method per AT command, typed results, no exceptions on
FAILURE or ERROR (tests assert on those; only timeouts and a lost port raise)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypedDict, TypeVar

from hil.at.channel import Channel
from hil.at.exchange import CommandSpec, Response
from hil.at.framer import Line
from hil.at.transcript import Transcript
from hil.l506 import commands as cmd
from hil.l506.types import (
    MSUB_COUNTED,
    MSUB_MESSAGE_URC,
    MSUB_SLOT_URC,
    Message,
    MqttStatus,
    Result,
    ResultType,
    parse_msub,
    parse_result,
)

T = TypeVar("T")

_INVALID = re.compile(rb"\+ ?MQTTMSGGET: ?INVALID")
_FIELDS = re.compile(r"\+ ?[A-Z]+: ?(.*)")


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a command's whole answer (final code and result URC).

    MIPSTART and MCONNECT wait on name resolution, TCP and TLS over the cellular bearer;
    CGATT on network attach, which 3GPP lets take more than a minute.
    """

    basic: float = 5.0
    mconfig: float = 10.0
    mipstart: float = 75.0
    mconnect: float = 60.0
    msub: float = 30.0
    munsub: float = 30.0
    mpub: float = 30.0
    mpubex: float = 60.0
    mdisconnect: float = 30.0
    mipclose: float = 30.0
    msgget: float = 10.0
    cgatt: float = 75.0
    cfun: float = 30.0


@dataclass(frozen=True)
class WillConfig:
    """The will part of MCONFIG. No validation: refusal tests send bad values on purpose."""

    topic: str
    message: str
    qos: int = 0
    retain: bool | int = False
    flag: int = 1


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    """`ok`: final OK and, for a command with a result URC, a SUCCESS result."""

    response: Response
    ok: bool
    result: Result | None

    @property
    def info(self) -> list[str]:
        """The information lines, as text (ATI, AT+CGMR...)."""
        return [line.text for line in self.response.lines]


@dataclass(frozen=True, kw_only=True)
class ValueResult(CommandResult, Generic[T]):
    """A query's answer: `value` is None when the line was missing or out of range."""

    value: T | None


@dataclass(frozen=True, kw_only=True)
class MessagesResult(CommandResult):
    """MQTTMSGGET: the stored messages printed, and whether a slot read as INVALID."""

    messages: list[Message] = field(default_factory=list)
    invalid: bool = False


class _Verdict(TypedDict):
    """The fields every CommandResult has beside its response."""

    ok: bool
    result: Result | None


def _or(timeout: float | None, default: float) -> float:
    return default if timeout is None else timeout


def _arg(value: object) -> str:
    return str(int(value)) if isinstance(value, bool) else str(value)


def _join(*values: object) -> str:
    return ",".join(_arg(v) for v in values)


def _fields(response: Response) -> list[str] | None:
    """The comma-separated values of the first `+NAME: a,b` information line."""
    for line in response.lines:
        m = _FIELDS.match(line.text)
        if m is not None:
            return [v.strip().strip('"') for v in m.group(1).split(",")]
    return None


def _int_field(response: Response, index: int) -> int | None:
    values = _fields(response)
    if values is None or len(values) <= index:
        return None
    try:
        return int(values[index])
    except ValueError:
        return None


def _enum(kind: Callable[[int], T], value: int | None) -> T | None:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        return None


class L506:
    """One L506 behind an AT channel.

    Passwords given to `mconfig` are masked in whatever transcript the channel writes to,
    also after the transcript is swapped for the next test.
    """

    def __init__(self, channel: Channel, *, timeouts: Timeouts | None = None) -> None:
        self.channel = channel
        self.timeouts = Timeouts() if timeouts is None else timeouts
        self._secrets: list[str] = []

    @classmethod
    def open(
        cls,
        url: str,
        baudrate: int = 115200,
        *,
        transcript: Transcript | None = None,
        timeouts: Timeouts | None = None,
        **channel_options: Any,
    ) -> L506:
        """Open a channel that frames `+MSUB` messages byte-exact, and wrap it."""
        channel = Channel(
            url, baudrate, transcript=transcript, counted=(MSUB_COUNTED,), **channel_options
        )
        return cls(channel, timeouts=timeouts)

    # ---------------------------------------------------------------- plumbing

    def _send(
        self, text: str | bytes, spec: CommandSpec, timeout: float, data: bytes | None = None
    ) -> Response:
        for secret in self._secrets:
            self.channel.transcript.mask_secret(secret)
        return self.channel.command(text, spec, timeout, data)

    def _run(
        self, text: str | bytes, spec: CommandSpec, timeout: float, data: bytes | None = None
    ) -> CommandResult:
        response = self._send(text, spec, timeout, data)
        return CommandResult(response=response, **self._verdict(response, spec))

    @staticmethod
    def _verdict(response: Response, spec: CommandSpec) -> _Verdict:
        result = None if response.result is None else parse_result(response.result)
        success = spec.result is None or (result is not None and result.success)
        return {"ok": response.ok and success, "result": result}

    def _value(
        self, text: str, spec: CommandSpec, timeout: float, value: Callable[[Response], T | None]
    ) -> ValueResult[T]:
        response = self._send(text, spec, timeout)
        return ValueResult(
            response=response, value=value(response), **self._verdict(response, spec)
        )

    def raw(
        self,
        command_text: str | bytes,
        spec: CommandSpec = cmd.PLAIN,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> CommandResult:
        """Send any text (malformed on purpose, unknown commands) and read it as `spec`."""
        return self._run(command_text, spec, _or(timeout, self.timeouts.basic), data)

    # ---------------------------------------------------------------- bench commands

    def at(self, timeout: float | None = None) -> CommandResult:
        return self._run("AT", cmd.AT, _or(timeout, self.timeouts.basic))

    def ate(self, on: bool, timeout: float | None = None) -> CommandResult:
        return self._run(f"ATE{int(on)}", cmd.ATE, _or(timeout, self.timeouts.basic))

    def ati(self, timeout: float | None = None) -> CommandResult:
        return self._run("ATI", cmd.ATI, _or(timeout, self.timeouts.basic))

    def cgmr(self, timeout: float | None = None) -> CommandResult:
        return self._run("AT+CGMR", cmd.CGMR, _or(timeout, self.timeouts.basic))

    def cpin(self, timeout: float | None = None) -> ValueResult[str]:
        """`value` is the SIM state, e.g. "READY"."""

        def state(response: Response) -> str | None:
            values = _fields(response)
            return values[0] if values else None

        return self._value("AT+CPIN?", cmd.CPIN_READ, _or(timeout, self.timeouts.basic), state)

    def creg(self, timeout: float | None = None) -> ValueResult[int]:
        """`value` is <stat>: 1 registered home, 5 roaming."""
        return self._value(
            "AT+CREG?", cmd.CREG_READ, _or(timeout, self.timeouts.basic), lambda r: _int_field(r, 1)
        )

    def cereg(self, timeout: float | None = None) -> ValueResult[int]:
        """`value` is <stat>: 1 registered home, 5 roaming."""
        return self._value(
            "AT+CEREG?",
            cmd.CEREG_READ,
            _or(timeout, self.timeouts.basic),
            lambda r: _int_field(r, 1),
        )

    def cgatt(
        self, state: bool | int | None = None, timeout: float | None = None
    ) -> ValueResult[bool]:
        """Read (state None: `value` is attached or not) or set the packet-domain attach."""
        wait = _or(timeout, self.timeouts.cgatt)
        if state is None:

            def attached(response: Response) -> bool | None:
                n = _int_field(response, 0)
                return None if n is None else n == 1

            return self._value("AT+CGATT?", cmd.CGATT_READ, wait, attached)
        return self._value(f"AT+CGATT={_arg(state)}", cmd.CGATT_SET, wait, lambda r: None)

    def cgdcont(self, apn: str, cid: int = 1, pdp_type: str = "IP",
                timeout: float | None = None) -> CommandResult:
        """Define PDP context `cid` with the operator's access point name (before attach)."""
        return self._run(f'AT+CGDCONT={cid},"{pdp_type}","{apn}"', cmd.CGDCONT_SET,
                         _or(timeout, self.timeouts.basic))

    def cfun(
        self, fun: int | None = None, rst: int | None = None, timeout: float | None = None
    ) -> ValueResult[int]:
        """Read (`value` is <fun>) or set the functionality; `rst=1` resets the module."""
        wait = _or(timeout, self.timeouts.cfun)
        if fun is None:
            return self._value("AT+CFUN?", cmd.CFUN_READ, wait, lambda r: _int_field(r, 0))
        args = _join(fun) if rst is None else _join(fun, rst)
        return self._value(f"AT+CFUN={args}", cmd.CFUN_SET, wait, lambda r: None)

    # ---------------------------------------------------------------- MQTT commands

    def mqttssl(self, n: int | bool, timeout: float | None = None) -> CommandResult:
        return self._run(f"AT+MQTTSSL={_arg(n)}", cmd.MQTTSSL, _or(timeout, self.timeouts.basic))

    def mconfig(
        self,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        will: WillConfig | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Fields are sent as given; a username without password sends just the username
        (a refusal test), a will without credentials sends them empty."""
        if password:
            self._secrets.append(password)
        fields: list[object] = [client_id]
        if will is not None or password is not None:
            fields += [username or "", password or ""]
        elif username is not None:
            fields.append(username)
        if will is not None:
            fields += [will.flag, will.qos, will.retain, will.topic, will.message]
        return self._run(
            f"AT+MCONFIG={_join(*fields)}", cmd.MCONFIG, _or(timeout, self.timeouts.mconfig)
        )

    def mipstart(self, host: str, port: int, timeout: float | None = None) -> CommandResult:
        return self._run(
            f"AT+MIPSTART={_join(host, port)}", cmd.MIPSTART, _or(timeout, self.timeouts.mipstart)
        )

    def mconnect(
        self, clean_session: bool | int, keepalive: int, timeout: float | None = None
    ) -> CommandResult:
        return self._run(
            f"AT+MCONNECT={_join(clean_session, keepalive)}",
            cmd.MCONNECT,
            _or(timeout, self.timeouts.mconnect),
        )

    def msub(self, topic: str, qos: int, timeout: float | None = None) -> CommandResult:
        return self._run(f"AT+MSUB={_join(topic, qos)}", cmd.MSUB, _or(timeout, self.timeouts.msub))

    def munsub(self, topic: str, timeout: float | None = None) -> CommandResult:
        return self._run(f"AT+MUNSUB={topic}", cmd.MUNSUB, _or(timeout, self.timeouts.munsub))

    def mpub(
        self,
        topic: str,
        qos: int,
        retain: bool | int,
        message: str | bytes,
        timeout: float | None = None,
    ) -> CommandResult:
        """The message goes in the command line as it is (commas included, MPUB-5)."""
        body = message.encode("utf-8") if isinstance(message, str) else message
        text = f"AT+MPUB={_join(topic, qos, retain)},".encode() + body
        return self._run(text, cmd.MPUB, _or(timeout, self.timeouts.mpub))

    def mpubex(
        self,
        topic: str,
        qos: int,
        retain: bool | int,
        data: bytes,
        length: int | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Announce `length` (default len(data)), wait for the prompt, send `data` raw."""
        n = len(data) if length is None else length
        return self._run(
            f"AT+MPUBEX={_join(topic, qos, retain, n)}",
            cmd.MPUBEX,
            _or(timeout, self.timeouts.mpubex),
            data,
        )

    def mdisconnect(self, timeout: float | None = None) -> CommandResult:
        return self._run("AT+MDISCONNECT", cmd.MDISCONNECT, _or(timeout, self.timeouts.mdisconnect))

    def mipclose(self, timeout: float | None = None) -> CommandResult:
        return self._run("AT+MIPCLOSE", cmd.MIPCLOSE, _or(timeout, self.timeouts.mipclose))

    def mqttmsgset(self, mode: int, timeout: float | None = None) -> CommandResult:
        return self._run(
            f"AT+MQTTMSGSET={_arg(mode)}", cmd.MQTTMSGSET, _or(timeout, self.timeouts.basic)
        )

    def mqttmsgget(self, n: int | None = None, timeout: float | None = None) -> MessagesResult:
        """Read slot `n`, or every stored message when `n` is None (MSGGET-3)."""
        text = "AT+MQTTMSGGET" if n is None else f"AT+MQTTMSGGET={_arg(n)}"
        response = self._send(text, cmd.MQTTMSGGET, _or(timeout, self.timeouts.msgget))
        messages = []
        invalid = False
        for line in response.lines:
            if _INVALID.match(line.raw):
                invalid = True
                continue
            parsed = parse_msub(line.raw)
            if isinstance(parsed, Message):
                messages.append(parsed)
        return MessagesResult(
            response=response,
            messages=messages,
            invalid=invalid,
            **self._verdict(response, cmd.MQTTMSGGET),
        )

    def mqttceer(self, timeout: float | None = None) -> ValueResult[ResultType]:
        """`value` is the result type of the last MQTT failure (CEER-1)."""
        return self._value(
            "AT+MQTTCEER",
            cmd.MQTTCEER,
            _or(timeout, self.timeouts.basic),
            lambda r: _enum(ResultType, _int_field(r, 0)),
        )

    def mqttstatu(self, timeout: float | None = None) -> ValueResult[MqttStatus]:
        """`value` is the connection state (STATU-1)."""
        return self._value(
            "AT+MQTTSTATU",
            cmd.MQTTSTATU,
            _or(timeout, self.timeouts.basic),
            lambda r: _enum(MqttStatus, _int_field(r, 0)),
        )

    # ---------------------------------------------------------------- URCs

    def wait_message(self, timeout: float, topic: str | None = None) -> Message:
        """Take the next `+MSUB: <topic>,<len> bytes,<message>` URC (on `topic` if given)."""

        def wanted(line: Line) -> bool:
            if MSUB_MESSAGE_URC.match(line.raw) is None:
                return False
            parsed = parse_msub(line.raw)
            return isinstance(parsed, Message) and (topic is None or parsed.topic == topic)

        wanted.__name__ = f"+MSUB message on {topic or 'any topic'}"
        message = parse_msub(self.channel.wait_urc(wanted, timeout).raw)
        assert isinstance(message, Message)
        return message

    def wait_slot(self, timeout: float) -> int:
        """Take the next `+MSUB: <n>` URC (manual mode, MSUB-4) and return n."""
        line = self.channel.wait_urc(MSUB_SLOT_URC, timeout)
        slot = parse_msub(line.raw)
        assert isinstance(slot, int)
        return slot
