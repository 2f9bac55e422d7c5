"""The simulated L506 firmware: a sans-I/O state machine.

Serial bytes and socket events go in with the current time; serial output, socket actions and
the next deadline come out. No threads, sockets or sleeps here, so the model is tested exactly
and fast, and the same object runs behind a pty, a TCP port or a unit test.

Behaviour follows docs/clauses.md; where the guide is open, the `Profile` decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from hil.mqtt import (
    ClientSession,
    Connect,
    Connected,
    ConnectRefused,
    MessageReceived,
    PingTimeout,
    ProtocolError,
    PublishDone,
    Subscribed,
    Unsubscribed,
    Will,
)
from hil.sim.bugs import check_bugs
from hil.sim.profiles import V32, Profile

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
class CloseSocket:
    socket_id: int


Action = SerialOut | OpenSocket | SendSocket | CloseSocket

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


SocketEvent = SocketOpened | SocketFailed | SocketData | SocketClosed

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


Conn = Literal["idle", "tcp_opening", "tcp_up", "mqtt_connecting", "mqtt_up", "mqtt_closed"]


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
        self._reset_ram(carry_store=False)

    # ------------------------------------------------------------ state that a restart loses

    def _reset_ram(self, *, carry_store: bool) -> None:
        store = self.slots if carry_store else [None] * SLOTS
        next_slot = self.next_slot if carry_store else 0
        self.ready = False
        self.network_ready = False
        self.echo = True
        self.cfun = 1
        self.attached = True
        self.ssl = False
        self.manual = False
        self._manual_next: bool | None = None
        self.config: MqttConfig | None = None
        self.conn: Conn = "idle"
        self.socket_id: int | None = None
        self.session: ClientSession | None = None
        self.ceer = 0
        self.slots: list[StoredMessage | None] = store
        self.next_slot = next_slot
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
        out = self._drop_socket()
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
        if event.socket_id != self.socket_id:
            return []  # a late event of a socket this firmware already let go
        match event:
            case SocketOpened():
                return self._tcp_opened(now)
            case SocketFailed(kind=kind):
                return self._tcp_failed(kind)
            case SocketData(data=data):
                return self._mqtt_data(data, now)
            case SocketClosed():
                return self._tcp_closed_by_peer()
        raise TypeError(event)

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for name, deadline in sorted(self._timers.items(), key=lambda kv: kv[1]):
            if deadline <= now and name in self._timers:
                del self._timers[name]
                out += self._timer_fired(name, now)
        if self.session is not None and self.conn in ("mqtt_connecting", "mqtt_up"):
            out += self._session_events(self.session.tick(now))
            out += self._flush_session()
        return out

    def next_deadline(self) -> float | None:
        deadlines = list(self._timers.values())
        if self.session is not None and self.conn in ("mqtt_connecting", "mqtt_up"):
            d = self.session.next_deadline()
            if d is not None:
                deadlines.append(d)
        return min(deadlines, default=None)

    @property
    def mqtt_status(self) -> int:
        if self.conn == "mqtt_up":
            return 1
        if self.conn in ("tcp_up", "mqtt_connecting"):
            if self._bug("statu_from_ceer") and self.ceer == 2:
                return 1
            return 0 if self._bug("mipstart_status_stays_0") else 2
        if self.conn == "mqtt_closed":
            return self.profile.status_after_mdisconnect
        return 0

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
        colon = ": " if self.profile.urc_space else ":"
        word = "SUCCESS" if success else "FAILURE"
        tail = "" if code is None else f",{code}"
        return f"+{name}{colon}{word}{tail}".encode()

    def _record(self, code: int) -> None:
        """Keep the result type for AT+MQTTCEER."""
        if code == 0 and self._bug("ceer_not_reset"):
            return
        self.ceer = code

    def _ok_then_result(self, name: str, success: bool, code: int | None) -> list[Action]:
        self._record(0 if success else (code or 0))
        return [self._lines("OK", self._result(name, success, code), command=name)]

    def _refuse(self, name: str, code: int) -> list[Action]:
        """A refusal with a result URC, in the command's own order (GEN-3, GEN-6)."""
        self._record(code)
        if name in ("MCONFIG", "MIPCLOSE"):
            return [self._lines(self._result(name, False, code), "OK", command=name)]
        return [self._lines("OK", self._result(name, False, code), command=name)]

    # ------------------------------------------------------------ command dispatch

    def _command_line(self, line: bytes, now: float) -> list[Action]:
        text = line.strip()
        if not text:
            return []
        if text[:2].upper() != b"AT":
            return [self._lines("ERROR")]
        if self._bug("tab_restarts") and b"\t" in text:  # a watchdog reset: no answer
            out = self._drop_socket()
            self._reset_ram(carry_store=False)
            self._timers["boot"] = now + self.profile.boot_s * self.time_scale
            return out
        rest = text[2:].lstrip()
        if not rest:
            return [self._lines("OK", command="AT")]
        if rest[:1] == b"+":
            body = rest[1:].lstrip()
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
        ok = self._lines("OK", command="AT")
        if self._bug("reset_no_reboot"):
            return [ok]
        out: list[Action] = [ok, *self._drop_socket()]
        self._reset_ram(carry_store=self._bug("store_survives_reboot"))
        self._timers["boot"] = now + self.profile.boot_s * self.time_scale
        return out

    def _network_lost(self) -> list[Action]:
        """Detach or flight mode: a standing connection dies."""
        if self.conn == "idle":
            return []
        was_mqtt = self.conn == "mqtt_up"
        out = self._drop_socket()
        if was_mqtt:
            self._record(1)
            out.append(self._lines(self._result("MCONNECT", False, 1)))
        return out

    # --- 2.10 / 2.11 switches

    def _mqttssl(self, args: bytes, now: float) -> list[Action]:
        allowed = (b"0", b"1", b"2") if self._bug("mqttssl_accepts_2") else (b"0", b"1")
        value = args.strip()
        if value not in allowed or self.conn != "idle":
            return [self._lines("ERROR", command="MQTTSSL")]
        self.ssl = value != b"0"
        return [self._lines("OK", command="MQTTSSL")]

    def _msgset(self, args: bytes, now: float) -> list[Action]:
        allowed = (b"0", b"1", b"2") if self._bug("msgset_accepts_2") else (b"0", b"1")
        if args.strip() not in allowed:
            return [self._lines("ERROR", command="MQTTMSGSET")]
        manual = args.strip() != b"0"
        if self._bug("msgset_deferred") and self.conn == "mqtt_up":
            self._manual_next = manual  # takes effect at the next MCONNECT
        else:
            self.manual = manual
        return [self._lines("OK", command="MQTTMSGSET")]

    # --- 2.1 MCONFIG

    def _mconfig(self, args: bytes, now: float) -> list[Action]:
        try:
            self.config = self._parse_mconfig(args)
        except BadParameter:
            return self._refuse("MCONFIG", 2)
        self._record(0)
        if self._bug("mconfig_no_result"):
            return [self._lines("OK", command="MCONFIG")]
        return [self._lines(self._result("MCONFIG", True, 0), "OK", command="MCONFIG")]

    def _parse_mconfig(self, args: bytes) -> MqttConfig:
        parts = _params(args, 8)
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

    # --- 2.2 MIPSTART

    def _mipstart(self, args: bytes, now: float) -> list[Action]:
        parts = _params(args, 2)
        try:
            if len(parts) != 2:
                raise BadParameter("MIPSTART takes host and port")
            host = _text(parts[0])
            port = _int(parts[1], range(1, 65536))
            if not host:
                raise BadParameter("empty host")
        except BadParameter:
            return self._ok_then_result("MIPSTART", False, 2)
        if self.conn != "idle":
            return self._ok_then_result(
                "MIPSTART", False, 5 if self._bug("double_mipstart_code_5") else 7
            )
        if not (self.attached and self._registered()) and not self._bug("flight_mode_ignored"):
            return self._ok_then_result("MIPSTART", False, 3)
        if "socket_create_fails" in self.injections:
            return self._ok_then_result(
                "MIPSTART", False, 5 if self._bug("socket_fail_code_5") else 4
            )
        self._socket_seq += 1
        self.socket_id = self._socket_seq
        self.conn = "tcp_opening"
        self._pending.append(_Pending("MIPSTART"))
        tls = self.ssl and not self._bug("ssl_flag_ignored")
        return [
            self._lines("OK", command="MIPSTART"),
            OpenSocket(self.socket_id, host, port, tls),
        ]

    def _tcp_opened(self, now: float) -> list[Action]:
        self._take_pending("MIPSTART")
        self.conn = "tcp_up"
        self._record(0)
        if not self._bug("no_idle_drop"):
            self._timers["idle_drop"] = now + self.profile.idle_drop_s * self.time_scale
        return [self._lines(self._result("MIPSTART", True, 0))]

    def _tcp_failed(self, kind: SocketFailure) -> list[Action]:
        self._take_pending("MIPSTART")
        self.conn = "idle"
        self.socket_id = None
        code = {"create": 4, "tls": 8}.get(kind, 5)
        if code == 5 and self._bug("unreachable_code_6"):
            code = 6
        if code == 8 and self._bug("tls_fail_code_5"):
            code = 5
        self._record(code)
        return [self._lines(self._result("MIPSTART", False, code))]

    # --- 2.3 MCONNECT

    def _mconnect(self, args: bytes, now: float) -> list[Action]:
        parts = _params(args, 2)
        try:
            if len(parts) != 2:
                raise BadParameter("MCONNECT takes clean session and keep-alive")
            clean = _int(parts[0], (0, 1))
            keepalive = _int(parts[1], range(0, 65536))
        except BadParameter:
            return self._ok_then_result("MCONNECT", False, 2)
        if self.conn == "mqtt_up":
            return self._ok_then_result("MCONNECT", False, 7)
        if self.conn != "tcp_up" or self.config is None:
            return self._ok_then_result("MCONNECT", False, 2)
        cfg = self.config
        connect = Connect(
            client_id=cfg.client_id[:23] if self._bug("client_id_cut_23") else cfg.client_id,
            clean_session=bool(clean) or self._bug("clean_session_forced"),
            keepalive=keepalive,
            username=cfg.username,
            password=cfg.password,
            will=None if self._bug("will_lost") else cfg.will,
        )
        self.session = ClientSession(connect, now)
        if self._bug("no_keepalive_ping") or "stop_keepalive" in self.injections:
            self.session.ping_enabled = False
        self.conn = "mqtt_connecting"
        self._timers.pop("idle_drop", None)
        self._timers["connack"] = now + self.profile.connack_timeout_s * self.time_scale
        self._pending.append(_Pending("MCONNECT"))
        return [self._lines("OK", command="MCONNECT"), *self._flush_session()]

    # --- 2.4 / 2.5 MSUB, MUNSUB

    def _msub(self, args: bytes, now: float) -> list[Action]:
        if self._bug("nonascii_msub_no_result") and any(b > 0x7F for b in args):
            return [self._lines("OK", command="MSUB")]
        parts = _params(args, 2)
        try:
            if len(parts) != 2:
                raise BadParameter("MSUB takes topic and qos")
            topic = _text(parts[0])
            qos = _int(parts[1], (0, 1, 2, 3) if self._bug("msub_bad_qos_accepted") else (0, 1, 2))
            if not topic:
                raise BadParameter("empty topic")
        except BadParameter:
            return self._ok_then_result("MSUB", False, 2)
        if self.conn != "mqtt_up" or self.session is None:
            return self._ok_then_result("MSUB", False, 1)
        try:
            packet_id = self.session.subscribe(topic, min(qos, 2), now)
        except ValueError:  # not a valid topic filter (`a/#/b`)
            return self._ok_then_result("MSUB", False, 2)
        if self._bug("second_msub_drops_result"):
            self._pending = [p for p in self._pending if p.name != "MSUB"]
        self._pending.append(_Pending("MSUB", packet_id))
        return [self._lines("OK", command="MSUB"), *self._flush_session()]

    def _munsub(self, args: bytes, now: float) -> list[Action]:
        topic = _text(args.strip())
        if not topic or b"," in args:
            return self._ok_then_result("MUNSUB", False, 2)
        if self.conn != "mqtt_up" or self.session is None:
            return self._ok_then_result("MUNSUB", False, 1)
        if self._bug("munsub_noop"):
            return self._ok_then_result("MUNSUB", True, None)
        try:
            packet_id = self.session.unsubscribe(topic, now)
        except ValueError:
            return self._ok_then_result("MUNSUB", False, 2)
        self._pending.append(_Pending("MUNSUB", packet_id))
        return [self._lines("OK", command="MUNSUB"), *self._flush_session()]

    # --- 2.6 / 2.7 MPUB, MPUBEX

    def _publish_params(self, parts: list[bytes]) -> tuple[str, int, bool]:
        topic = _text(parts[0])
        limit = TOPIC_MAX + 1 if self._bug("mpub_topic_65_accepted") else TOPIC_MAX
        if not topic or len(topic) > limit:
            raise BadParameter("topic empty or over 64 characters")
        return topic, _int(parts[1], (0, 1, 2)), bool(_int(parts[2], (0, 1)))

    def _mpub(self, args: bytes, now: float) -> list[Action]:
        parts = _params(args, 4, keep_last=True)
        try:
            if len(parts) != 4:
                raise BadParameter("MPUB takes topic, qos, retain, message")
            topic, qos, retain = self._publish_params(parts)
            message = parts[3]
            if len(message) > MPUB_MESSAGE_MAX:
                if not self._bug("mpub_silent_cut"):
                    raise BadParameter("message over 256 bytes")
                message = message[:MPUB_MESSAGE_MAX]
        except BadParameter:
            return self._ok_then_result("MPUB", False, 2)
        if self.conn != "mqtt_up":
            return self._ok_then_result("MPUB", False, 1)
        if self._bug("empty_qos1_mpub_dropped") and not message and qos == 1:
            return self._ok_then_result("MPUB", True, None)
        if self._bug("mpub_qos_downgraded"):
            qos = 0
        return self._publish("MPUB", topic, qos, retain, message, now)

    def _mpubex(self, args: bytes, now: float) -> list[Action]:
        parts = _params(args, 4)
        limit = MPUBEX_MESSAGE_MAX + 1 if self._bug("mpubex_1361_accepted") else MPUBEX_MESSAGE_MAX
        try:
            if len(parts) != 4:
                raise BadParameter("MPUBEX takes topic, qos, retain, length")
            topic, qos, retain = self._publish_params(parts)
            length = _int(parts[3], range(1, limit + 1))
        except BadParameter:
            return self._ok_then_result("MPUBEX", False, 2)
        if self.conn != "mqtt_up":
            return self._ok_then_result("MPUBEX", False, 1)
        self._data = _DataMode(topic, qos, retain, length)
        self._timers["data"] = now + self.profile.data_timeout_s * self.time_scale
        return [SerialOut(b"\r\n" + self.profile.prompt, self.profile.latency_of("MPUBEX"))]

    def _finish_mpubex(self, now: float) -> list[Action]:
        data, self._data = self._data, None
        assert data is not None
        self._timers.pop("data", None)
        payload = bytes(data.buffer)
        if self._bug("mpubex_one_byte_short"):
            payload = payload[:-1]
        self._mpubex_count += 1
        if self._mpubex_count % 8 == 0 and self._bug("mpubex_every_8th_lost"):
            return self._ok_then_result("MPUBEX", True, None)
        if self.conn != "mqtt_up":
            return self._ok_then_result("MPUBEX", False, 1)
        return self._publish("MPUBEX", data.topic, data.qos, data.retain, payload, now)

    def _publish(
        self, name: str, topic: str, qos: int, retain: bool, payload: bytes, now: float
    ) -> list[Action]:
        assert self.session is not None
        if self._bug("retain_ignored"):
            retain = False
        try:
            packet_id = self.session.publish(topic, payload, qos, retain, now)
        except ValueError:  # a wildcard or NUL in a topic name
            return self._ok_then_result(name, False, 2)
        if qos == 2 and self._bug("qos2_sent_twice"):
            self.session.publish(topic, payload, qos, retain, now)
        if packet_id is None:
            return [*self._flush_session(), *self._ok_then_result(name, True, None)]
        self._pending.append(_Pending(name, packet_id))
        return [*self._flush_session(), self._lines("OK", command=name)]

    # --- 2.8 / 2.9 MDISCONNECT, MIPCLOSE

    def _mdisconnect(self, args: bytes, now: float) -> list[Action]:
        if self.conn != "mqtt_up" or self.session is None:
            return self._ok_then_result("MDISCONNECT", False, 1)
        if self._bug("mdisconnect_no_packet"):
            out = self._drop_socket()
        else:
            self.session.disconnect(now)
            out = self._flush_session()
        self.conn = "mqtt_closed"
        return [*out, *self._ok_then_result("MDISCONNECT", True, None)]

    def _mipclose(self, args: bytes, now: float) -> list[Action]:
        if self._bug("mipclose_pending_keeps_socket") and self._pending:
            self.socket_id, self.session, self.conn, self._pending = None, None, "idle", []
        status_stays = self._bug("mipclose_status_stays") and self.conn != "idle"
        out = [] if status_stays else self._drop_socket()
        self._record(0)
        return [*out, self._lines(self._result("MIPCLOSE", True), "OK", command="MIPCLOSE")]

    # --- 2.12-2.14 queries

    def _msgget(self, args: bytes, now: float, *, all_slots: bool = False) -> list[Action]:
        if all_slots:
            indexes = [0] if self._bug("msgget_all_first_only") else list(range(SLOTS))
            stored = [m for i in indexes if (m := self.slots[i]) is not None]
        else:
            try:
                n = _int(args, range(SLOTS))
            except BadParameter:
                return [self._lines("ERROR", command="MQTTMSGGET")]
            if self._bug("msgget_wrong_slot"):
                n = (n + 1) % SLOTS
            stored = [m for m in (self.slots[n],) if m is not None]
        if stored:
            lines = [self._report(m.topic, m.payload) for m in stored]
            return [self._lines(*lines, "OK", command="MQTTMSGGET")]
        if self._bug("msgget_empty_silent"):
            return [self._lines("OK", command="MQTTMSGGET")]
        final = self.profile.msgget_invalid_final
        return [self._lines("+MQTTMSGGET:INVALID", final, command="MQTTMSGGET")]

    def _msgget_all(self, args: bytes, now: float) -> list[Action]:
        return self._msgget(args, now, all_slots=True)

    def _ceer(self, args: bytes, now: float) -> list[Action]:
        code = self.ceer + 1 if self._bug("ceer_code_off_by_one") and self.ceer else self.ceer
        return [self._lines(f"+MQTTCEER: {code}", "OK", command="MQTTCEER")]

    def _statu(self, args: bytes, now: float) -> list[Action]:
        return [self._lines(f"+MQTTSTATU: {self.mqtt_status}", "OK", command="MQTTSTATU")]

    # ------------------------------------------------------------ MQTT traffic

    def _flush_session(self) -> list[Action]:
        if self.session is None or self.socket_id is None:
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

    def _session_events(self, events: list[object]) -> list[Action]:
        out: list[Action] = []
        for event in events:
            match event:
                case Connected():
                    self._timers.pop("connack", None)
                    self._take_pending("MCONNECT")
                    self.conn = "mqtt_up"
                    if self._manual_next is not None:
                        self.manual, self._manual_next = self._manual_next, None
                    self._record(0)
                    out.append(self._lines(self._result("MCONNECT", True, 0)))
                case ConnectRefused():
                    out += self._mconnect_failed()
                case Subscribed(packet_id=pid, granted_qos=granted):
                    if self._take_pending("MSUB", pid):
                        ok = granted != 0x80
                        self._record(0 if ok else 6)
                        out.append(self._lines(self._result("MSUB", ok, None if ok else 6)))
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
                    out.append(self._incoming(topic, payload))
                case PingTimeout():
                    out += self._connection_broken()
        return out

    def _incoming(self, topic: str, payload: bytes) -> SerialOut:
        if self._bug("urc_lost_in_prompt") and self._data is not None:
            return SerialOut(b"")
        if not self.manual:
            return self._lines(self._report(topic, payload))
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
        topic_bytes = topic.encode()[:TOPIC_MAX]
        return b"+MSUB: " + topic_bytes + b"," + str(length).encode() + b" bytes," + shown

    def _mconnect_failed(self) -> list[Action]:
        self._take_pending("MCONNECT")
        out = self._drop_socket()
        code = 5 if self._bug("refused_code_5") else 6
        self._record(code)
        return [*out, self._lines(self._result("MCONNECT", False, code))]

    def _tcp_closed_by_peer(self) -> list[Action]:
        if self.conn == "mqtt_connecting":
            return self._mconnect_failed()
        if self.conn == "mqtt_closed":
            # the broker closes TCP after our DISCONNECT: expected, nothing to report
            self.socket_id = None
            self.session = None
            return []
        return self._connection_broken()

    def _connection_broken(self) -> list[Action]:
        """The server or the link dropped us: `+MCONNECT: FAILURE,1` (MCONNECT-5, MIPSTART-7)."""
        if self._bug("statu_stuck_after_drop") and self.conn == "mqtt_up":
            self._record(1)
            return [self._lines(self._result("MCONNECT", False, 1))]
        out = self._drop_socket()
        self._record(1)
        if self._bug("silent_drop"):
            return out
        return [*out, self._lines(self._result("MCONNECT", False, 1))]

    # ------------------------------------------------------------ timers and bookkeeping

    def _timer_fired(self, name: str, now: float) -> list[Action]:
        if name == "boot":
            self.ready = True
            self._timers["call_ready"] = now + self.profile.call_ready_s * self.time_scale
            return [self._lines("RDY")]
        if name == "call_ready":
            self.network_ready = True
            return [self._lines("Call Ready")]
        if name == "idle_drop" and self.conn == "tcp_up":
            return self._connection_broken()
        if name == "connack" and self.conn == "mqtt_connecting":
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

    def _drop_socket(self) -> list[Action]:
        """Let the socket go without a word to the broker (power cut, MIPCLOSE, drop)."""
        out: list[Action] = [] if self.socket_id is None else [CloseSocket(self.socket_id)]
        self.socket_id = None
        self.session = None
        self.conn = "idle"
        self._pending = [p for p in self._pending if p.name not in _NETWORK_COMMANDS]
        for timer in ("idle_drop", "connack"):
            self._timers.pop(timer, None)
        return out

    _EXTENDED: ClassVar[dict[str, Callable[[Firmware, bytes, float], list[Action]]]] = {
        "CGMR": _cgmr,
        "CPIN?": _cpin_q,
        "CREG?": _creg_q,
        "CEREG?": _cereg_q,
        "CGATT?": _cgatt_q,
        "CGATT=": _cgatt_set,
        "CFUN?": _cfun_q,
        "CFUN=": _cfun_set,
        "MQTTSSL=": _mqttssl,
        "MQTTMSGSET=": _msgset,
        "MCONFIG=": _mconfig,
        "MIPSTART=": _mipstart,
        "MCONNECT=": _mconnect,
        "MSUB=": _msub,
        "MUNSUB=": _munsub,
        "MPUB=": _mpub,
        "MPUBEX=": _mpubex,
        "MDISCONNECT": _mdisconnect,
        "MIPCLOSE": _mipclose,
        "MQTTMSGGET=": _msgget,
        "MQTTMSGGET": _msgget_all,
        "MQTTCEER": _ceer,
        "MQTTSTATU": _statu,
    }


_NETWORK_COMMANDS = frozenset({"MIPSTART", "MCONNECT", "MSUB", "MUNSUB", "MPUB", "MPUBEX"})

# ---------------------------------------------------------------- parameter parsing


def _split_command(body: bytes) -> tuple[bytes, str, bytes]:
    """`MPUB=a,b` → (b"MPUB", "=", b"a,b"); `CREG?` → (b"CREG", "?", b"")."""
    for i, byte in enumerate(body):
        if byte in b"=?":
            return body[:i].rstrip(), chr(byte), body[i + 1 :]
    return body.rstrip(), "", b""


def _params(args: bytes, count: int, *, keep_last: bool = False) -> list[bytes]:
    """Split on commas; leading spaces of each parameter trimmed (GEN-5).

    With `keep_last`, the last parameter is everything after the (count-1)th comma, untrimmed
    (MPUB-5: commas and spaces inside a message belong to it).
    """
    if not args.strip():
        return []
    parts = args.split(b",", count - 1)
    if keep_last and len(parts) == count:
        return [p.strip() for p in parts[:-1]] + [parts[-1]]
    return [p.strip() for p in parts]


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
