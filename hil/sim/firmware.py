"""The simulated L506 firmware: a sans-I/O state machine.

Serial bytes and socket events go in with the current time; serial output, socket actions and
the next deadline come out. No threads, sockets or sleeps here, so the model is tested exactly
and fast, and the same object runs behind a pty, a TCP port or a unit test.

Behaviour follows docs/clauses.md; where the guide is open, the `Profile` decides. The
connection's state moves only through the transition table of `hil/sim/state.py`; the command
handlers follow chapter 2 of the guide, one per command, in its order.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from hil.mqtt import (
    ClientSession,
    Connect,
    Connected,
    ConnectRefused,
    Event,
    MessageReceived,
    PingTimeout,
    ProtocolError,
    PublishDone,
    Subscribed,
    Unsubscribed,
    Will,
)
from hil.sim.bugs import check_bugs
from hil.sim.profiles import UNTYPED_RESULTS, V32, Profile
from hil.sim.state import Connection, ConnEvent, ConnState, mqtt_status

TOPIC_MAX = 64
MPUB_MESSAGE_MAX = 256
MPUBEX_MESSAGE_MAX = 1360
MSUB_MESSAGE_MAX = 1360
SLOTS = 4
LINE_MAX = 2048

# ---------------------------------------------------------------- actions (out) and events (in)


@dataclass(frozen=True)
class SerialOut:
    """Bytes for the UART, to leave no earlier than `delay` seconds from now, in order."""

    data: bytes
    delay: float = 0.0


@dataclass(frozen=True)
class OpenSocket:
    socket_id: int
    host: str
    port: int
    tls: bool


@dataclass(frozen=True)
class SendSocket:
    socket_id: int
    data: bytes


@dataclass(frozen=True)
class StartTls:
    """Make the TLS handshake on an open TCP connection (handshake at MCONNECT, MIPSTART-6)."""

    socket_id: int


@dataclass(frozen=True)
class CloseSocket:
    socket_id: int


Action = SerialOut | OpenSocket | StartTls | SendSocket | CloseSocket

SocketFailure = Literal["create", "resolve", "refused", "timeout", "tls"]


@dataclass(frozen=True)
class SocketOpened:
    socket_id: int


@dataclass(frozen=True)
class SocketFailed:
    socket_id: int
    kind: SocketFailure
    detail: str = ""


@dataclass(frozen=True)
class SocketData:
    socket_id: int
    data: bytes


@dataclass(frozen=True)
class SocketClosed:
    socket_id: int


@dataclass(frozen=True)
class TlsReady:
    """The handshake asked for by `StartTls` succeeded (a failure is `SocketFailed` "tls")."""

    socket_id: int


SocketEvent = SocketOpened | SocketFailed | SocketData | SocketClosed | TlsReady

# ---------------------------------------------------------------- state


@dataclass
class StoredMessage:
    topic: str
    payload: bytes


@dataclass
class MqttConfig:
    client_id: str
    username: str | None = None
    password: str | None = None
    will: Will | None = None


class BadParameter(Exception):
    """A command's parameters are wrong: refused with result type 2 (or ERROR)."""


@dataclass
class _Pending:
    """A command whose result URC waits for the network."""

    name: str
    packet_id: int | None = None


@dataclass
class _DataMode:
    """MPUBEX after the prompt: the next `length` bytes are the message."""

    topic: str
    qos: int
    retain: bool
    length: int
    too_long: bool = False  # taken only to be refused (MPUBEX-2)
    buffer: bytearray = field(default_factory=bytearray)


class Firmware:
    """One L506 running the MQTT AT firmware described by `profile`."""

    def __init__(
        self,
        profile: Profile = V32,
        *,
        time_scale: float = 1.0,
        bugs: frozenset[str] = frozenset(),
    ) -> None:
        self.profile = profile
        self.time_scale = time_scale
        self.bugs = check_bugs(frozenset(bugs))
        #: Faults a test provokes on purpose (capability "fault injection").
        self.injections: set[str] = set()
        self.powered = False
        self._socket_seq = 0
        #: the link's jitter comes from a fixed seed: a run is repeatable
        self._rng = random.Random(0)
        self.ssl = False
        self.manual = False
        self._reset_ram(carry_store=False)

    # ------------------------------------------------------------ state that a restart loses

    def _reset_ram(self, *, carry_store: bool) -> None:
        store: list[StoredMessage | None] = self.slots if carry_store else [None] * SLOTS
        next_slot = self.next_slot if carry_store else 0
        self.ready = False
        self.network_ready = False
        self.echo = self.profile.echo_at_boot
        self.cfun = 1
        self.attached = True
        if not self.profile.settings_survive_restart:
            self.ssl = False
            self.manual = False
        self._manual_next: bool | None = None
        self.config: MqttConfig | None = None
        self.connection = Connection()  # moved only by `ConnEvent`s (hil/sim/state.py)
        self.socket_id: int | None = None
        self.session: ClientSession | None = None
        self._conn_tls = False  # this connection is to use TLS
        self._tls_pending = False  # CONNECT waits for the handshake asked for at MCONNECT
        self._link: deque[tuple[float, SocketEvent]] = deque()
        self.ceer = 0
        self.slots: list[StoredMessage | None] = store
        self.next_slot: int = next_slot
        self._line = bytearray()
        self._data: _DataMode | None = None
        self._pending: list[_Pending] = []
        self._timers: dict[str, float] = {}
        self._mpubex_count = 0

    # ------------------------------------------------------------ public, sans-I/O interface

    def power_on(self, now: float) -> list[Action]:
        self.powered = True
        self._reset_ram(carry_store=False)
        self._timers["boot"] = now + self.profile.boot_s * self.time_scale
        return []

    def power_off(self) -> list[Action]:
        """Power removed: RAM is gone, the socket dies without a DISCONNECT."""
        out = self._release_socket()
        self.powered = False
        self._reset_ram(carry_store=False)
        return out

    def serial_received(self, data: bytes, now: float) -> list[Action]:
        if not self.powered or not self.ready:
            return []  # the UART is not listening yet: bytes are lost, as on a booting module
        out: list[Action] = []
        i = 0
        while i < len(data):
            if self._data is not None:
                take = data[i : i + self._data.length - len(self._data.buffer)]
                self._data.buffer += take
                i += len(take)
                if self.echo and self.profile.echo_data:
                    out.append(SerialOut(take))  # MPUBEX-1: the guide's `>> abc`
                if len(self._data.buffer) == self._data.length:
                    out += self._finish_mpubex(now)
                continue
            byte = data[i : i + 1]
            i += 1
            if self.echo:
                out.append(SerialOut(byte))
            if byte == b"\r":
                if self._bug("quote_wedges_parser") and self._line.count(b'"') % 2:
                    self._line += byte  # fuzz-only bug: the CR is taken as quoted text
                    continue
                line = bytes(self._line)
                self._line.clear()
                out += self._command_line(line, now)
            elif byte == b"\n":
                continue
            elif len(self._line) < LINE_MAX:
                self._line += byte
        return _merge_serial(out)

    def socket_event(self, event: SocketEvent, now: float) -> list[Action]:
        """An outcome from the network; over a modelled link it is taken a round trip later."""
        if event.socket_id != self.socket_id:
            return []  # a late event of a socket this firmware already let go
        rtt = self.profile.link_rtt_s
        if not rtt:
            return self._network_event(event, now)
        if isinstance(event, SocketOpened) and self._conn_tls:
            rtt *= 2  # the TLS handshake made at MIPSTART: one round trip more
        delay = rtt + self._rng.uniform(0.0, self.profile.link_jitter_s)  # latency: not scaled
        due = max(now + delay, self._link[-1][0] if self._link else now)  # the link keeps order
        self._link.append((due, event))
        self._timers["link"] = self._link[0][0]
        return []

    def _network_event(self, event: SocketEvent, now: float) -> list[Action]:
        if event.socket_id != self.socket_id:
            return []  # the socket was let go while the event was on the link
        match event:
            case SocketOpened():
                return self._tcp_opened(now)
            case SocketFailed(kind=kind):
                if self.state is ConnState.MQTT_CONNECTING:  # the handshake asked at MCONNECT
                    return self._mconnect_failed(8)
                return self._tcp_failed(kind)
            case TlsReady():
                self._tls_pending = False
                return self._flush_session()
            case SocketData(data=data):
                return self._mqtt_data(data, now)
            case SocketClosed():
                return self._tcp_closed_by_peer()
        raise TypeError(event)

    def _link_due(self, now: float) -> list[Action]:
        """Hand the firmware what the link has delivered by `now`, in order."""
        out: list[Action] = []
        while self._link and self._link[0][0] <= now:
            _, event = self._link.popleft()
            out += self._network_event(event, now)
        if self._link:
            self._timers["link"] = self._link[0][0]
        return out

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for name, deadline in sorted(self._timers.items(), key=lambda kv: kv[1]):
            if deadline <= now and name in self._timers:
                del self._timers[name]
                out += self._timer_fired(name, now)
        if self.session is not None and self.state in _MQTT_SESSION:
            out += self._session_events(self.session.tick(now))
            out += self._flush_session()
        return out

    def next_deadline(self) -> float | None:
        deadlines = list(self._timers.values())
        if self.session is not None and self.state in _MQTT_SESSION:
            d = self.session.next_deadline()
            if d is not None:
                deadlines.append(d)
        return min(deadlines, default=None)

    @property
    def state(self) -> ConnState:
        """The connection's state; it changes only by `self.connection.fire(event)`."""
        return self.connection.state

    @property
    def mqtt_status(self) -> int:
        """What AT+MQTTSTATU prints now (2.14, STATU-1)."""
        if self.state in _TCP_ONLY and self._bug("mipstart_status_stays_0"):
            return 0
        if self.state in _TCP_ONLY and self._bug("statu_from_ceer") and self.ceer == 2:
            return 1
        return mqtt_status(self.state, self.profile)

    # ------------------------------------------------------------ output helpers

    def _bug(self, name: str) -> bool:
        return name in self.bugs

    def _lines(self, *lines: bytes | str, command: str | None = None) -> SerialOut:
        body = b"".join(
            b"\r\n" + (line.encode() if isinstance(line, str) else line) + b"\r\n" for line in lines
        )
        delay = self.profile.latency_of(command) if command else 0.0
        return SerialOut(body, delay)

    def _result(self, name: str, success: bool, code: int | None = None) -> bytes:
        """`+NAME: SUCCESS|FAILURE[,<type>]` in the profile's spelling (GEN-2, GEN-6)."""
        p = self.profile
        if name == "MIPCLOSE" and p.mipclose_urc_plus_space:
            head = "+ MIPCLOSE: "  # section 2.9's spelling
        else:
            head = f"+{name}: " if p.urc_space else f"+{name}:"
        if not success and name in UNTYPED_RESULTS and not p.untyped_failure_code:
            code = None
        word = "SUCCESS" if success else "FAILURE"
        tail = "" if code is None else f",{code}"
        return f"{head}{word}{tail}".encode()

    def _record(self, code: int) -> None:
        """Keep the result type for AT+MQTTCEER (CEER-1: a success may leave a failure's)."""
        if code == 0 and self.profile.ceer_keeps_failure:
            return
        self.ceer = code

    def _answer(self, name: str, success: bool, code: int | None = None) -> list[Action]:
        """OK and the result URC, in the order the profile gives the command (GEN-3)."""
        self._record(0 if success else (code or 0))
        result = self._result(name, success, code)
        if name in self.profile.result_before_ok:
            return [self._lines(result, "OK", command=name)]
        return [self._lines("OK", result, command=name)]

    def _switch_refused(self, name: str) -> list[Action]:
        """A bad parameter of MQTTSSL, MQTTMSGSET or MQTTMSGGET (GEN-6)."""
        return [self._lines(self.profile.switch_refusal, command=name)]

    # ------------------------------------------------------------ command dispatch

    def _command_line(self, line: bytes, now: float) -> list[Action]:
        text = line.strip()
        if not text:
            return []
        if text[:2].upper() != b"AT":
            return [self._lines("ERROR")]
        if self._bug("tab_restarts") and b"\t" in text:  # a watchdog reset: no answer
            out = self._release_socket()
            self._reset_ram(carry_store=False)
            self._timers["boot"] = now + self.profile.boot_s * self.time_scale
            return out
        rest = text[2:].lstrip()
        if not rest:
            return [self._lines("OK", command="AT")]
        if rest[:1] == b"+":
            body = rest[1:].lstrip() if self.profile.space_after_plus else rest[1:]
            if self.profile.semicolon_ends_line:
                body = body.split(b";", 1)[0]  # GEN-7: a V.250 command separator
            head, sep, args = _split_command(body)
            handler = self._EXTENDED.get(head.upper().decode("ascii", "replace") + sep)
            if handler is None:
                return [self._lines("OK" if self._bug("unknown_command_ok") else "ERROR")]
            return handler(self, args, now)
        return self._basic(rest.upper())

    def _basic(self, cmd: bytes) -> list[Action]:
        if cmd in (b"E0", b"E1"):
            self.echo = cmd == b"E1"
            return [self._lines("OK", command="AT")]
        if cmd == b"I":
            p = self.profile
            return [
                self._lines(
                    f"Manufacturer: {p.manufacturer}",
                    f"Model: {p.model}",
                    f"Revision: {p.revision}",
                    f"IMEI: {p.imei}",
                    "OK",
                    command="AT",
                )
            ]
        return [self._lines("ERROR")]

    def _params(self, args: bytes, count: int, *, keep_last: bool = False) -> list[bytes]:
        """`_params`, then the profile's reading of quotes and message spaces (GEN-7)."""
        p = self.profile
        parts = _params(
            args, count, keep_last=keep_last and not p.trim_message, trim=p.trim_parameters
        )
        if p.strip_quotes:
            parts = [_unquote(part) for part in parts]
        return parts

    # ------------------------------------------------------------ chapter 2 of the guide
    # One handler per command, in the guide's order; a command's result URCs that wait for
    # the network are in "MQTT traffic" below.

    # --- 2.1 AT+MCONFIG

    def _mconfig(self, args: bytes, now: float) -> list[Action]:
        """2.1 AT+MCONFIG: client id, credentials and will for the next CONNECT."""
        try:
            self.config = self._parse_mconfig(args)
        except BadParameter:
            return self._answer("MCONFIG", False, 2)
        if self._bug("mconfig_no_result"):
            self._record(0)
            return [self._lines("OK", command="MCONFIG")]
        return self._answer("MCONFIG", True, 0)

    def _parse_mconfig(self, args: bytes) -> MqttConfig:
        parts = self._params(args, 8)
        if len(parts) not in (1, 3, 8):
            raise BadParameter("MCONFIG takes 1, 3 or 8 parameters")
        client_id = _text(parts[0])
        if not client_id:
            raise BadParameter("empty client id")
        if len(parts) == 1:
            return MqttConfig(client_id)
        username, password = _text(parts[1]), _text(parts[2])
        if len(parts) == 3 and not username:
            raise BadParameter("username without a value")
        if password and not username:
            raise BadParameter("password without a username")
        if self._bug("password_dropped"):
            password = ""
        # with a will, empty credentials mean none (an anonymous client with a will)
        config = MqttConfig(client_id, username or None, password or None)
        if len(parts) == 3:
            return config
        flag = _int(parts[3], (0, 1))
        qos = _int(parts[4], (0, 1, 2, 3) if self._bug("bad_will_qos_accepted") else (0, 1, 2))
        retain = _int(parts[5], (0, 1))
        topic = _text(parts[6])
        if flag == 1:
            if not topic or len(topic) > TOPIC_MAX:
                raise BadParameter("will topic missing or too long")
            retain_flag = bool(retain) and not self._bug("will_retain_ignored")
            config.will = Will(topic, bytes(parts[7]), min(qos, 2), retain_flag)
        return config

    # --- 2.2 AT+MIPSTART

    def _mipstart(self, args: bytes, now: float) -> list[Action]:
        """2.2 AT+MIPSTART: open the TCP (or TLS) connection; the result URC comes when the
        socket is open or has failed (`_tcp_opened`, `_tcp_failed`)."""
        parts = self._params(args, 2)
        try:
            if len(parts) != 2:
                raise BadParameter("MIPSTART takes host and port")
            host = _text(parts[0])
            port = _int(parts[1], range(1, 65536))
            if not host:
                raise BadParameter("empty host")
        except BadParameter:
            return self._answer("MIPSTART", False, 2)
        if self._connection_stands():
            code = self.profile.second_mipstart_code
            if code is None:
                return [self._lines("ERROR", command="MIPSTART")]
            return self._answer("MIPSTART", False, code)
        if not (self.attached and self._registered()) and not self._bug("flight_mode_ignored"):
            return self._answer("MIPSTART", False, 3)
        if "socket_create_fails" in self.injections:
            return self._answer(
                "MIPSTART", False, 5 if self._bug("socket_fail_code_5") else 4
            )
        out = self._release_socket()  # what is left of a dropped connection
        self.connection.fire(ConnEvent.MIPSTART)
        self._socket_seq += 1
        self.socket_id = self._socket_seq
        self._pending.append(_Pending("MIPSTART"))
        self._conn_tls = self.ssl and not self._bug("ssl_flag_ignored")
        tls_now = self._conn_tls and self.profile.tls_handshake_at == "MIPSTART"
        return [
            *out,
            self._lines("OK", command="MIPSTART"),
            OpenSocket(self.socket_id, host, port, tls_now),
        ]

    def _connection_stands(self) -> bool:
        """A connection MIPSTART must not replace (MIPSTART-3): any but one that is gone
        and that MQTTSTATU already reports as 0."""
        if self.state is ConnState.MQTT_CLOSED:
            return self.profile.status_after_mdisconnect != 0
        if self.state is ConnState.DROPPED:
            return self.profile.status_after_drop != 0
        return self.state is not ConnState.IDLE

    def _tcp_opened(self, now: float) -> list[Action]:
        self._take_pending("MIPSTART")
        self.connection.fire(ConnEvent.TCP_OPENED)
        self._record(0)
        if not self._bug("no_idle_drop"):
            self._timers["idle_drop"] = now + self.profile.idle_drop_s * self.time_scale
        return [self._lines(self._result("MIPSTART", True, 0))]

    def _tcp_failed(self, kind: SocketFailure) -> list[Action]:
        self._take_pending("MIPSTART")
        self.connection.fire(ConnEvent.TCP_FAILED)
        self.socket_id = None
        code = {"create": 4, "tls": 8, "resolve": self.profile.resolve_failure_code}.get(kind, 5)
        if code == 5 and self._bug("unreachable_code_6"):
            code = 6
        if code == 8 and self._bug("tls_fail_code_5"):
            code = 5
        self._record(code)
        return [self._lines(self._result("MIPSTART", False, code))]

    # --- 2.3 AT+MCONNECT

    def _mconnect(self, args: bytes, now: float) -> list[Action]:
        """2.3 AT+MCONNECT: send CONNECT; the result URC comes with CONNACK (or its lack)."""
        parts = self._params(args, 2)
        try:
            if len(parts) != 2:
                raise BadParameter("MCONNECT takes clean session and keep-alive")
            clean = _int(parts[0], (0, 1))
            keepalive = _int(parts[1], range(0, 65536))
        except BadParameter:
            return self._answer("MCONNECT", False, 2)
        if self.state is ConnState.MQTT_UP:
            return self._answer("MCONNECT", False, 2 if self._bug("mconnect_twice_code_2") else 7)
        if self.state is not ConnState.TCP_UP or self.config is None:
            code = self.profile.mconnect_without_tcp_code
            if code is None:
                return [self._lines("ERROR", command="MCONNECT")]
            return self._answer("MCONNECT", False, code)
        cfg = self.config
        connect = Connect(
            client_id=cfg.client_id[: self.profile.client_id_max],
            clean_session=bool(clean) or self._bug("clean_session_forced"),
            keepalive=60 if self._bug("keepalive_fixed_60") else keepalive,
            username=cfg.username,
            password=cfg.password,
            will=None if self._bug("will_lost") else cfg.will,
        )
        self.session = ClientSession(connect, now)
        if self._bug("no_keepalive_ping") or "stop_keepalive" in self.injections:
            self.session.ping_enabled = False
        self.connection.fire(ConnEvent.MCONNECT)
        self._timers.pop("idle_drop", None)
        self._timers["connack"] = now + self.profile.connack_timeout_s * self.time_scale
        self._pending.append(_Pending("MCONNECT"))
        if self._conn_tls and self.profile.tls_handshake_at == "MCONNECT":
            assert self.socket_id is not None
            self._tls_pending = True  # CONNECT goes out once the handshake is made
            return [self._lines("OK", command="MCONNECT"), StartTls(self.socket_id)]
        return [self._lines("OK", command="MCONNECT"), *self._flush_session()]

    # --- 2.4 AT+MSUB

    def _msub(self, args: bytes, now: float) -> list[Action]:
        """2.4 AT+MSUB: SUBSCRIBE; the result URC comes with SUBACK."""
        if self._bug("nonascii_msub_no_result") and any(b > 0x7F for b in args):
            return [self._lines("OK", command="MSUB")]
        parts = self._params(args, 2)
        try:
            if len(parts) != 2:
                raise BadParameter("MSUB takes topic and qos")
            topic = _text(parts[0])
            qos = _int(parts[1], (0, 1, 2, 3) if self._bug("msub_bad_qos_accepted") else (0, 1, 2))
            if not topic:
                raise BadParameter("empty topic")
        except BadParameter:
            return self._answer("MSUB", False, 2)
        if self.state is not ConnState.MQTT_UP or self.session is None:
            return self._answer("MSUB", False, 1)
        try:
            packet_id = self.session.subscribe(topic, min(qos, 2), now)
        except ValueError:  # not a valid topic filter (`a/#/b`)
            return self._answer("MSUB", False, 2)
        if self._bug("second_msub_drops_result"):
            self._pending = [p for p in self._pending if p.name != "MSUB"]
        self._pending.append(_Pending("MSUB", packet_id))
        return [self._lines("OK", command="MSUB"), *self._flush_session()]

    # --- 2.5 AT+MUNSUB

    def _munsub(self, args: bytes, now: float) -> list[Action]:
        """2.5 AT+MUNSUB: UNSUBSCRIBE; the result URC comes with UNSUBACK."""
        topic = _text(self._params(args, 1)[0] if args.strip() else b"")
        if not topic or b"," in args:
            return self._answer("MUNSUB", False, 2)
        if self.state is not ConnState.MQTT_UP or self.session is None:
            return self._answer("MUNSUB", False, 1)
        if self._bug("munsub_noop"):
            return self._answer("MUNSUB", True, None)
        try:
            packet_id = self.session.unsubscribe(topic, now)
        except ValueError:
            return self._answer("MUNSUB", False, 2)
        self._pending.append(_Pending("MUNSUB", packet_id))
        return [self._lines("OK", command="MUNSUB"), *self._flush_session()]

    # --- 2.6 AT+MPUB

    def _publish_params(self, parts: list[bytes]) -> tuple[str, int, bool]:
        """Topic, qos and retain of MPUB and MPUBEX."""
        topic = _text(parts[0])
        limit = TOPIC_MAX + 1 if self._bug("mpub_topic_65_accepted") else TOPIC_MAX
        if not topic or len(topic) > limit:
            raise BadParameter("topic empty or over 64 characters")
        return topic, _int(parts[1], (0, 1, 2)), bool(_int(parts[2], (0, 1)))

    def _mpub(self, args: bytes, now: float) -> list[Action]:
        """2.6 AT+MPUB: publish a message given on the command line."""
        parts = self._params(args, 4, keep_last=True)
        try:
            if len(parts) != 4:
                raise BadParameter("MPUB takes topic, qos, retain, message")
            topic, qos, retain = self._publish_params(parts)
            message = parts[3]
            if self.profile.mpub_commas == "cut":
                message = message.split(b",", 1)[0]  # MPUB-5: the message ends at a comma
            if len(message) > MPUB_MESSAGE_MAX:
                if not self._bug("mpub_silent_cut"):
                    raise BadParameter("message over 256 bytes")
                message = message[:MPUB_MESSAGE_MAX]
        except BadParameter:
            return self._answer("MPUB", False, 2)
        if self.state is not ConnState.MQTT_UP:
            return self._answer("MPUB", False, 1)
        if self._bug("empty_qos1_mpub_dropped") and not message and qos == 1:
            return self._answer("MPUB", True, None)
        if self._bug("mpub_qos_downgraded"):
            qos = 0
        return self._publish("MPUB", topic, qos, retain, message, now)

    # --- 2.7 AT+MPUBEX

    def _mpubex(self, args: bytes, now: float) -> list[Action]:
        """2.7 AT+MPUBEX: prompt for `<message_len>` bytes of data (`serial_received` takes
        them, `_finish_mpubex` publishes them)."""
        parts = self._params(args, 4)
        limit = MPUBEX_MESSAGE_MAX + 1 if self._bug("mpubex_1361_accepted") else MPUBEX_MESSAGE_MAX
        too_long = False
        try:
            if len(parts) != 4:
                raise BadParameter("MPUBEX takes topic, qos, retain, length")
            topic, qos, retain = self._publish_params(parts)
            length = _int(parts[3], range(1, 65536))
            if length > limit:
                if not self.profile.mpubex_oversize_prompt:
                    raise BadParameter(f"length {length} over {limit}")
                too_long = True  # MPUBEX-2: refused once the data is in
        except BadParameter:
            return self._answer("MPUBEX", False, 2)
        if self.state is not ConnState.MQTT_UP:
            return self._answer("MPUBEX", False, 1)
        self._data = _DataMode(topic, qos, retain, length, too_long=too_long)
        self._timers["data"] = now + self.profile.data_timeout_s * self.time_scale
        return [SerialOut(b"\r\n" + self.profile.prompt, self.profile.latency_of("MPUBEX"))]

    def _finish_mpubex(self, now: float) -> list[Action]:
        """2.7: the data is in."""
        data, self._data = self._data, None
        assert data is not None
        self._timers.pop("data", None)
        if data.too_long:
            return self._answer("MPUBEX", False, 2)
        payload = bytes(data.buffer)
        if not self.profile.mpubex_binary:
            payload = payload.replace(b"\n", b"")  # MPUBEX-3: LF taken by the line discipline
        if self._bug("mpubex_one_byte_short"):
            payload = payload[:-1]
        self._mpubex_count += 1
        if self._mpubex_count % 8 == 0 and self._bug("mpubex_every_8th_lost"):
            return self._answer("MPUBEX", True, None)
        if self.state is not ConnState.MQTT_UP:
            return self._answer("MPUBEX", False, 1)
        return self._publish("MPUBEX", data.topic, data.qos, data.retain, payload, now)

    def _publish(
        self, name: str, topic: str, qos: int, retain: bool, payload: bytes, now: float
    ) -> list[Action]:
        """PUBLISH for MPUB and MPUBEX; QoS 0 is done at once, QoS 1 and 2 wait for the broker."""
        assert self.session is not None
        if self._bug("retain_ignored"):
            retain = False
        try:
            packet_id = self.session.publish(topic, payload, qos, retain, now)
        except ValueError:  # a wildcard or NUL in a topic name
            return self._answer(name, False, 2)
        if qos == 2 and self._bug("qos2_sent_twice"):
            self.session.publish(topic, payload, qos, retain, now)
        if packet_id is None:
            return [*self._flush_session(), *self._answer(name, True, None)]
        self._pending.append(_Pending(name, packet_id))
        return [*self._flush_session(), self._lines("OK", command=name)]

    # --- 2.8 AT+MDISCONNECT

    def _mdisconnect(self, args: bytes, now: float) -> list[Action]:
        """2.8 AT+MDISCONNECT: send DISCONNECT; TCP stays until MIPCLOSE (MDISCONNECT-1)."""
        if self.state is not ConnState.MQTT_UP or self.session is None:
            return self._answer("MDISCONNECT", False, 1)
        if self._bug("mdisconnect_no_packet"):
            out = self._release_socket()
        else:
            self.session.disconnect(now)
            out = self._flush_session()
        self.connection.fire(ConnEvent.MDISCONNECT)
        return [*out, *self._answer("MDISCONNECT", True, None)]

    # --- 2.9 AT+MIPCLOSE

    def _mipclose(self, args: bytes, now: float) -> list[Action]:
        """2.9 AT+MIPCLOSE: let the socket go, from any state (MIPCLOSE-1)."""
        if self._bug("mipclose_pending_keeps_socket") and self._pending:
            self.socket_id, self.session, self._pending = None, None, []  # never closed
        status_stays = self._bug("mipclose_status_stays") and self.state is not ConnState.IDLE
        out = [] if status_stays else self._drop_socket(ConnEvent.MIPCLOSE)
        return [*out, *self._answer("MIPCLOSE", True)]

    # --- 2.10 AT+MQTTSSL

    def _mqttssl(self, args: bytes, now: float) -> list[Action]:
        """2.10 AT+MQTTSSL: TLS for the next MIPSTART (MQTTSSL-1)."""
        allowed = (b"0", b"1", b"2") if self._bug("mqttssl_accepts_2") else (b"0", b"1")
        value = args.strip()
        if value not in allowed:
            return self._switch_refused("MQTTSSL")
        if self.state is not ConnState.IDLE and self.profile.ssl_while_connected == "refuse":
            return [self._lines("ERROR", command="MQTTSSL")]
        self.ssl = value != b"0"  # a standing connection keeps its own (MQTTSSL-1)
        return [self._lines("OK", command="MQTTSSL")]

    def _mmqttssl(self, args: bytes, now: float) -> list[Action]:
        """2.10 as example 1.2 spells it, `AT+MMQTTSSL`: a typo, or taken as AT+MQTTSSL
        (FLOW-SSL)."""
        if not self.profile.mmqttssl_alias:
            return [self._lines("ERROR")]
        return self._mqttssl(args, now)

    # --- 2.11 AT+MQTTMSGSET

    def _mqttmsgset(self, args: bytes, now: float) -> list[Action]:
        """2.11 AT+MQTTMSGSET: incoming messages printed at once (0) or stored (1)."""
        allowed = (b"0", b"1", b"2") if self._bug("msgset_accepts_2") else (b"0", b"1")
        if args.strip() not in allowed:
            return self._switch_refused("MQTTMSGSET")
        manual = args.strip() != b"0"
        if self._bug("msgset_deferred") and self.state is ConnState.MQTT_UP:
            self._manual_next = manual  # takes effect at the next MCONNECT
        else:
            self.manual = manual
        return [self._lines("OK", command="MQTTMSGSET")]

    # --- 2.12 AT+MQTTMSGGET

    def _mqttmsgget(self, args: bytes, now: float, *, all_slots: bool = False) -> list[Action]:
        """2.12 AT+MQTTMSGGET=<n>: print a stored message (MSGGET-1, -2, -4)."""
        if all_slots:
            indexes = [0] if self._bug("msgget_all_first_only") else list(range(SLOTS))
            stored = [m for i in indexes if (m := self.slots[i]) is not None]
        else:
            try:
                n = _int(args, range(SLOTS))
            except BadParameter:
                return self._switch_refused("MQTTMSGGET")
            if self._bug("msgget_wrong_slot"):
                n = (n + 1) % SLOTS
            indexes = [n]
            stored = [m for m in (self.slots[n],) if m is not None]
        if stored:
            if self.profile.msgget_clears:  # MSGGET-4
                for i in indexes:
                    self.slots[i] = None
            lines = [self._report(m.topic, m.payload) for m in stored]
            return [self._lines(*lines, "OK", command="MQTTMSGGET")]
        if self._bug("msgget_empty_silent"):
            return [self._lines("OK", command="MQTTMSGGET")]
        final = self.profile.msgget_invalid_final
        return [self._lines("+MQTTMSGGET:INVALID", final, command="MQTTMSGGET")]

    def _mqttmsgget_all(self, args: bytes, now: float) -> list[Action]:
        """2.12 AT+MQTTMSGGET without `<n>`: every stored message (MSGGET-3)."""
        return self._mqttmsgget(args, now, all_slots=True)

    # --- 2.13 AT+MQTTCEER

    def _mqttceer(self, args: bytes, now: float) -> list[Action]:
        """2.13 AT+MQTTCEER: the result type of the last failure (CEER-1)."""
        code = self.ceer + 1 if self._bug("ceer_code_off_by_one") and self.ceer else self.ceer
        if self._bug("ceer_always_0"):
            code = 0
        return [self._lines(f"+MQTTCEER: {code}", "OK", command="MQTTCEER")]

    # --- 2.14 AT+MQTTSTATU

    def _mqttstatu(self, args: bytes, now: float) -> list[Action]:
        """2.14 AT+MQTTSTATU: the connection state as 0, 1 or 2 (STATU-1, `mqtt_status`)."""
        return [self._lines(f"+MQTTSTATU: {self.mqtt_status}", "OK", command="MQTTSTATU")]

    # --- bench commands (not in the guide; what a rig needs: DEV-1, DEV-2)

    def _cgmr(self, args: bytes, now: float) -> list[Action]:
        rev = "" if self._bug("cgmr_empty") else self.profile.revision
        return [self._lines(f"+CGMR: {rev}", "OK", command="AT")]

    def _cpin_q(self, args: bytes, now: float) -> list[Action]:
        return [self._lines("+CPIN: READY", "OK", command="AT")]

    def _registered(self) -> bool:
        return self.network_ready and self.cfun == 1

    def _creg_q(self, args: bytes, now: float) -> list[Action]:
        return [self._lines(f"+CREG: 0,{1 if self._registered() else 2}", "OK", command="AT")]

    def _cereg_q(self, args: bytes, now: float) -> list[Action]:
        return [self._lines(f"+CEREG: 0,{1 if self._registered() else 2}", "OK", command="AT")]

    def _cgatt_q(self, args: bytes, now: float) -> list[Action]:
        state = int(self.attached and self._registered())
        return [self._lines(f"+CGATT: {state}", "OK", command="AT")]

    def _cgatt_set(self, args: bytes, now: float) -> list[Action]:
        if args.strip() not in (b"0", b"1"):
            return [self._lines("ERROR")]
        self.attached = args.strip() == b"1"
        out: list[Action] = []
        if not self.attached:
            out += self._network_lost()
        return [*out, self._lines("OK", command="AT")]

    def _cfun_q(self, args: bytes, now: float) -> list[Action]:
        return [self._lines(f"+CFUN: {self.cfun}", "OK", command="AT")]

    def _cfun_set(self, args: bytes, now: float) -> list[Action]:
        parts = [p.strip() for p in args.split(b",")]
        if parts[0] not in (b"0", b"1", b"4") or len(parts) > 2:
            return [self._lines("ERROR")]
        if len(parts) == 2:
            if parts[1] not in (b"0", b"1"):
                return [self._lines("ERROR")]
            if parts[1] == b"1":
                return self._restart(now)
        self.cfun = int(parts[0])
        out: list[Action] = [] if self.cfun == 1 else self._network_lost()
        return [*out, self._lines("OK", command="AT")]

    def _restart(self, now: float) -> list[Action]:
        """AT+CFUN=1,1: OK, then RAM is lost (the store; the switches unless the profile keeps
        them, MSUB-6) and the module boots again."""
        ok = self._lines("OK", command="AT")
        if self._bug("reset_no_reboot"):
            return [ok]
        out: list[Action] = [ok, *self._release_socket()]
        self._reset_ram(carry_store=self._bug("store_survives_reboot"))
        self._timers["boot"] = now + self.profile.boot_s * self.time_scale
        return out

    def _network_lost(self) -> list[Action]:
        """Detach or flight mode: a standing connection dies."""
        if self.state is ConnState.IDLE:
            return []
        was_mqtt = self.state is ConnState.MQTT_UP
        out = self._drop_socket(ConnEvent.NETWORK_LOST)
        if was_mqtt:
            self._record(1)
            out.append(self._lines(self._result("MCONNECT", False, 1)))
        return out

    # ------------------------------------------------------------ MQTT traffic

    def _flush_session(self) -> list[Action]:
        if self.session is None or self.socket_id is None or self._tls_pending:
            return []
        data = self.session.data_to_send()
        return [SendSocket(self.socket_id, data)] if data else []

    def _mqtt_data(self, data: bytes, now: float) -> list[Action]:
        if self.session is None:
            return []  # bytes before CONNECT: a broker never sends them
        try:
            events = self.session.receive_data(data, now)
        except (ValueError, ProtocolError):
            return self._connection_broken()
        return [*self._session_events(events), *self._flush_session()]

    def _session_events(self, events: list[Event]) -> list[Action]:
        out: list[Action] = []
        for event in events:
            match event:
                case Connected():
                    out.append(self._mconnect_done())
                case ConnectRefused():
                    out += self._mconnect_failed()
                case Subscribed(packet_id=pid, granted_qos=granted):
                    out += self._msub_done(pid, granted)
                case Unsubscribed(packet_id=pid):
                    if self._take_pending("MUNSUB", pid):
                        self._record(0)
                        out.append(self._lines(self._result("MUNSUB", True)))
                case PublishDone(packet_id=pid):
                    pending = self._take_pending(("MPUB", "MPUBEX"), pid)
                    if pending is not None:
                        self._record(0)
                        out.append(self._lines(self._result(pending.name, True)))
                case MessageReceived(topic=topic, payload=payload):
                    out += self._incoming(topic, payload)
                case PingTimeout():
                    out += self._connection_broken()
        return out

    def _mconnect_done(self) -> SerialOut:
        """CONNACK accepted: MCONNECT's result, and the mode MQTTMSGSET asked for."""
        self._timers.pop("connack", None)
        self._take_pending("MCONNECT")
        self.connection.fire(ConnEvent.CONNACK)
        if self._manual_next is not None:
            self.manual, self._manual_next = self._manual_next, None
        self._record(0)
        late = 3.0 if self._bug("mconnect_result_late") else 0.0
        return SerialOut(self._lines(self._result("MCONNECT", True, 0)).data, late)

    def _msub_done(self, packet_id: int, granted: int) -> list[Action]:
        """SUBACK: MSUB's result, a FAILURE when the broker refused the filter (0x80)."""
        if not self._take_pending("MSUB", packet_id):
            return []
        ok = granted != 0x80
        self._record(0 if ok else 6)
        return [self._lines(self._result("MSUB", ok, None if ok else 6))]

    def _incoming(self, topic: str, payload: bytes) -> list[Action]:
        if self._bug("urc_lost_in_prompt") and self._data is not None:
            return []
        if not self.manual:
            shown = self._long_topic(topic, TOPIC_MAX)
            return [] if shown is None else [self._lines(self._report(shown, payload))]
        kept = self._long_topic(topic, self.profile.stored_topic_max)
        if kept is None:
            return []
        return [self._store(kept, payload)]

    def _long_topic(self, topic: str, limit: int) -> str | None:
        """The topic as reported or stored (MSUB-3, MSGGET-4); None: the message is dropped."""
        if len(topic.encode()) <= limit or self.profile.long_topic == "whole":
            return topic
        if self.profile.long_topic == "drop":
            return None
        return topic.encode()[:limit].decode("utf-8", "ignore")

    def _store(self, topic: str, payload: bytes) -> SerialOut:
        """Manual mode: into the next slot of the ring, announced as `+MSUB: <n>`."""
        index = self.next_slot
        if self._bug("ring_no_wrap") and all(s is not None for s in self.slots):
            return self._lines(f"+MSUB: {index + 1 if self._bug('slots_from_1') else index}")
        self.slots[index] = StoredMessage(topic, payload)
        self.next_slot = (index + 1) % SLOTS
        shown = index + 1 if self._bug("slots_from_1") else index
        return self._lines(f"+MSUB: {shown}")

    def _report(self, topic: str, payload: bytes) -> bytes:
        """`+MSUB: <topic>,<len> bytes,<message>`, cut to the documented limits (MSUB-3)."""
        cut_at = MSUB_MESSAGE_MAX - 1 if self._bug("cut_at_1359") else MSUB_MESSAGE_MAX
        shown = payload[:cut_at]
        length = len(payload) if self.profile.msub_len == "original" else len(shown)
        if self._bug("msub_len_off_by_one"):
            length -= 1
        return b"+MSUB: " + topic.encode() + b"," + str(length).encode() + b" bytes," + shown

    def _mconnect_failed(self, code: int = 6) -> list[Action]:
        """MCONNECT ends without a connection: refused (6), or the handshake failed (8)."""
        self._take_pending("MCONNECT")
        out = self._drop_socket(ConnEvent.MCONNECT_FAILED)
        if self._bug("refused_code_5" if code == 6 else "tls_fail_code_5"):
            code = 5
        self._record(code)
        return [*out, self._lines(self._result("MCONNECT", False, code))]

    def _tcp_closed_by_peer(self) -> list[Action]:
        if self.state is ConnState.MQTT_CONNECTING:
            return self._mconnect_failed(8 if self._tls_pending else 6)
        if self.state is ConnState.MQTT_CLOSED:
            # the broker closes TCP after our DISCONNECT: expected, nothing to report
            self.socket_id = None
            self.session = None
            return []
        return self._connection_broken()

    def _connection_broken(self) -> list[Action]:
        """The server or the link dropped us: `+MCONNECT: FAILURE,1` (MCONNECT-5, MIPSTART-7)."""
        was_mqtt = self.state is ConnState.MQTT_UP
        if self._bug("statu_stuck_after_drop") and was_mqtt:
            self._record(1)
            return [self._lines(self._result("MCONNECT", False, 1))]
        out = self._drop_socket(ConnEvent.CONNECTION_LOST)  # from MQTT_UP: DROPPED
        self._record(1)
        if self._bug("silent_drop"):
            return out
        return [*out, self._lines(self._result("MCONNECT", False, 1))]

    # ------------------------------------------------------------ timers and bookkeeping

    def _timer_fired(self, name: str, now: float) -> list[Action]:
        if name == "boot":
            self.ready = True
            self._timers["call_ready"] = now + self.profile.call_ready_s * self.time_scale
            return [self._lines(*self.profile.boot_urcs)]
        if name == "call_ready":
            self.network_ready = True
            return [self._lines(*self.profile.ready_urcs)]
        if name == "link":
            return self._link_due(now)
        if name == "idle_drop" and self.state is ConnState.TCP_UP:
            if self.profile.idle_drop_urc:
                return self._connection_broken()
            self._record(1)
            return self._drop_socket(ConnEvent.CONNECTION_LOST)  # MIPSTART-7: without a word
        if name == "connack" and self.state is ConnState.MQTT_CONNECTING:
            return self._mconnect_failed()
        if name == "data" and self._data is not None:
            self._data = None
            self._record(2)
            return [self._lines("ERROR")]
        return []

    def _take_pending(
        self, names: str | tuple[str, ...], packet_id: int | None = None
    ) -> _Pending | None:
        wanted = (names,) if isinstance(names, str) else names
        for p in self._pending:
            if p.name in wanted and p.packet_id == packet_id:
                self._pending.remove(p)
                return p
        return None

    def _drop_socket(self, event: ConnEvent) -> list[Action]:
        """Let the socket go without a word to the broker (MIPCLOSE, a failure, a drop);
        the connection moves as `event` says."""
        out = self._release_socket()
        self.connection.fire(event)
        return out

    def _release_socket(self) -> list[Action]:
        """Close the socket and forget its session, pending results and timers; the state is
        the caller's to move (or RAM is lost with it: power cut, restart)."""
        out: list[Action] = [] if self.socket_id is None else [CloseSocket(self.socket_id)]
        self.socket_id = None
        self.session = None
        self._tls_pending = False
        self._link.clear()
        self._pending = [p for p in self._pending if p.name not in _NETWORK_COMMANDS]
        for timer in ("idle_drop", "connack", "link"):
            self._timers.pop(timer, None)
        return out

    #: `NAME` + `=`, `?` or nothing → handler: chapter 2 in the guide's order, then the
    #: bench commands.
    _EXTENDED: ClassVar[dict[str, Callable[[Firmware, bytes, float], list[Action]]]] = {
        "MCONFIG=": _mconfig,  # 2.1
        "MIPSTART=": _mipstart,  # 2.2
        "MCONNECT=": _mconnect,  # 2.3
        "MSUB=": _msub,  # 2.4
        "MUNSUB=": _munsub,  # 2.5
        "MPUB=": _mpub,  # 2.6
        "MPUBEX=": _mpubex,  # 2.7
        "MDISCONNECT": _mdisconnect,  # 2.8
        "MIPCLOSE": _mipclose,  # 2.9
        "MQTTSSL=": _mqttssl,  # 2.10
        "MMQTTSSL=": _mmqttssl,  # 2.10 as example 1.2 spells it
        "MQTTMSGSET=": _mqttmsgset,  # 2.11
        "MQTTMSGGET=": _mqttmsgget,  # 2.12
        "MQTTMSGGET": _mqttmsgget_all,  # 2.12
        "MQTTCEER": _mqttceer,  # 2.13
        "MQTTSTATU": _mqttstatu,  # 2.14
        "CGMR": _cgmr,
        "CPIN?": _cpin_q,
        "CREG?": _creg_q,
        "CEREG?": _cereg_q,
        "CGATT?": _cgatt_q,
        "CGATT=": _cgatt_set,
        "CFUN?": _cfun_q,
        "CFUN=": _cfun_set,
    }


_NETWORK_COMMANDS = frozenset({"MIPSTART", "MCONNECT", "MSUB", "MUNSUB", "MPUB", "MPUBEX"})
#: The states in which TCP stands and MQTT is not (yet) up.
_TCP_ONLY = frozenset({ConnState.TCP_UP, ConnState.MQTT_CONNECTING})
#: The states in which the MQTT session runs its own timers (keep-alive, retries).
_MQTT_SESSION = frozenset({ConnState.MQTT_CONNECTING, ConnState.MQTT_UP})

# ---------------------------------------------------------------- parameter parsing


def _split_command(body: bytes) -> tuple[bytes, str, bytes]:
    """`MPUB=a,b` → (b"MPUB", "=", b"a,b"); `CREG?` → (b"CREG", "?", b"")."""
    for i, byte in enumerate(body):
        if byte in b"=?":
            return body[:i].rstrip(), chr(byte), body[i + 1 :]
    return body.rstrip(), "", b""


def _params(
    args: bytes, count: int, *, keep_last: bool = False, trim: bool = True
) -> list[bytes]:
    """Split on commas; with `trim`, spaces around each parameter are taken off (GEN-5).

    With `keep_last`, the last parameter is everything after the (count-1)th comma, untrimmed
    (MPUB-5: commas and spaces inside a message belong to it).
    """
    if not args.strip():
        return []
    parts = args.split(b",", count - 1)
    if not trim:
        return parts
    if keep_last and len(parts) == count:
        return [p.strip() for p in parts[:-1]] + [parts[-1]]
    return [p.strip() for p in parts]


def _unquote(raw: bytes) -> bytes:
    """`"abc"` → `abc` (a V.250 string constant); anything else as it is."""
    if len(raw) >= 2 and raw[:1] == b'"' and raw[-1:] == b'"':
        return raw[1:-1]
    return raw


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadParameter("not UTF-8") from None


def _int(raw: bytes, allowed: range | tuple[int, ...]) -> int:
    if not raw.isdigit():
        raise BadParameter(f"not a number: {raw!r}")
    value = int(raw)
    if value not in allowed:
        raise BadParameter(f"{value} out of range")
    return value


def _merge_serial(actions: list[Action]) -> list[Action]:
    """Join adjacent undelayed serial writes (the per-byte echo) into one."""
    merged: list[Action] = []
    for action in actions:
        prev = merged[-1] if merged else None
        if (
            isinstance(action, SerialOut)
            and isinstance(prev, SerialOut)
            and action.delay == 0
            and prev.delay == 0
        ):
            merged[-1] = SerialOut(prev.data + action.data)
        else:
            merged.append(action)
    return merged
