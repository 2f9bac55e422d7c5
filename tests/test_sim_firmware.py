"""The firmware model as pure unit tests: serial bytes and socket events in, actions out."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from hil.mqtt import Connack, Connect, Decoder, Puback, Publish, Suback, Unsuback, encode
from hil.sim.firmware import (
    CloseSocket,
    Firmware,
    OpenSocket,
    SendSocket,
    SerialOut,
    SocketClosed,
    SocketData,
    SocketFailed,
    SocketOpened,
    StartTls,
    TlsReady,
)
from hil.sim.profiles import GUIDE_ALT, V32, V33


class Module:
    """A firmware, a clock, and what it has said: the test's view of one simulated L506."""

    def __init__(self, fw: Firmware | None = None) -> None:
        self.fw = fw or Firmware(V32.without_latency(), time_scale=0.01)
        self.now = 100.0
        self.serial = bytearray()
        self.actions: list[object] = []
        self.broker_rx = Decoder()
        self.sent: list[object] = []  # MQTT packets the module sent
        self._take(self.fw.power_on(self.now))
        self.advance(1.0)  # past RDY and Call Ready at this time scale
        self.serial.clear()

    def _take(self, actions: list[object]) -> None:
        for a in actions:
            self.actions.append(a)
            if isinstance(a, SerialOut):
                self.serial += a.data
            if isinstance(a, SendSocket):
                self.sent += self.broker_rx.feed(a.data)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while (d := self.fw.next_deadline()) is not None and d <= end:
            self.now = max(self.now, d)
            self._take(self.fw.tick(self.now))
        self.now = end

    def type(self, line: str | bytes) -> str:
        self.serial.clear()
        data = line.encode() if isinstance(line, str) else line
        self._take(self.fw.serial_received(data + b"\r", self.now))
        return self.serial.decode("latin-1")

    def socket(self, event) -> str:
        self.serial.clear()
        self._take(self.fw.socket_event(event, self.now))
        return self.serial.decode("latin-1")

    def last(self, kind: type) -> object:
        return next(a for a in reversed(self.actions) if isinstance(a, kind))

    def connect_tcp(self) -> int:
        self.type("AT+MCONFIG=cid")
        self.type("AT+MIPSTART=127.0.0.1,1883")
        sid = self.last(OpenSocket).socket_id
        assert "+MIPSTART:SUCCESS,0" in self.socket(SocketOpened(sid)).replace(": ", ":")
        return sid

    def connect_mqtt(self, clean: int = 1) -> int:
        sid = self.connect_tcp()
        self.type(f"AT+MCONNECT={clean},30")
        assert isinstance(self.sent[-1], Connect)
        assert "+MCONNECT:SUCCESS,0" in self.socket(
            SocketData(sid, encode(Connack(False, 0)))
        ).replace(": ", ":")
        return sid


@pytest.fixture
def m() -> Module:
    return Module()


def test_boot_prints_rdy_then_call_ready_and_ignores_input_before() -> None:
    fw = Firmware(V32, time_scale=1.0)
    out = fw.power_on(0.0)
    assert out == []
    assert fw.serial_received(b"AT\r", 1.0) == []  # still booting: the UART is deaf
    assert fw.next_deadline() == pytest.approx(V32.boot_s)
    rdy = fw.tick(V32.boot_s)
    assert rdy == [SerialOut(b"\r\nRDY\r\n")]
    ready = fw.tick(V32.boot_s + V32.call_ready_s)
    assert ready == [SerialOut(b"\r\nCall Ready\r\n")]


def test_echo_on_at_boot_and_switched_by_ate(m: Module) -> None:
    assert m.type("AT") == "AT\r\r\nOK\r\n"
    assert m.type("ATE0") == "ATE0\r\r\nOK\r\n"
    assert m.type("AT") == "\r\nOK\r\n"
    assert m.type("ATE1") == "\r\nOK\r\n"
    assert m.type("AT").startswith("AT\r")


def test_unknown_command_is_error_and_spaces_after_at_plus_are_trimmed(m: Module) -> None:
    m.type("ATE0")
    assert m.type("AT+NOPE") == "\r\nERROR\r\n"
    assert m.type("AT+ MIPCLOSE") == "\r\n+MIPCLOSE: SUCCESS\r\n\r\nOK\r\n"


def test_example_1_1_orders_and_shapes(m: Module) -> None:
    m.type("ATE0")
    assert m.type("AT+MQTTSSL=0") == "\r\nOK\r\n"
    assert m.type("AT+MCONFIG=client_id_mobiletek") == "\r\n+MCONFIG: SUCCESS,0\r\n\r\nOK\r\n"
    assert m.type("AT+MIPSTART=test.example,1883") == "\r\nOK\r\n"
    sid = m.last(OpenSocket).socket_id
    assert m.last(OpenSocket) == OpenSocket(sid, "test.example", 1883, False)
    assert m.socket(SocketOpened(sid)) == "\r\n+MIPSTART: SUCCESS,0\r\n"
    assert m.type("AT+MQTTSTATU") == "\r\n+MQTTSTATU: 2\r\n\r\nOK\r\n"
    assert m.type("AT+MCONNECT=1,30") == "\r\nOK\r\n"
    connect = m.sent[-1]
    assert connect == Connect("client_id_mobiletek", True, 30)
    assert m.socket(SocketData(sid, encode(Connack(False, 0)))) == "\r\n+MCONNECT: SUCCESS,0\r\n"
    assert m.type("AT+MSUB=mobiletek/topic,0") == "\r\nOK\r\n"
    sub = m.sent[-1]
    assert (
        m.socket(SocketData(sid, encode(Suback(sub.packet_id, (0,))))) == "\r\n+MSUB: SUCCESS\r\n"
    )
    msg = "message from client_id_mobiletek"
    assert m.type(f"AT+MPUB=mobiletek/topic,0,0,{msg}") == "\r\nOK\r\n\r\n+MPUB: SUCCESS\r\n"
    assert m.sent[-1] == Publish("mobiletek/topic", msg.encode(), 0, False)
    echo = encode(Publish("mobiletek/topic", msg.encode()))
    assert m.socket(SocketData(sid, echo)) == f"\r\n+MSUB: mobiletek/topic,32 bytes,{msg}\r\n"
    m.type("AT+MQTTMSGSET=1")
    assert m.socket(SocketData(sid, echo)) == "\r\n+MSUB: 0\r\n"
    got = m.type("AT+MQTTMSGGET=0")
    assert got == f"\r\n+MSUB: mobiletek/topic,32 bytes,{msg}\r\n\r\nOK\r\n"
    assert m.type("AT+MDISCONNECT") == "\r\nOK\r\n\r\n+MDISCONNECT: SUCCESS\r\n"
    assert m.type("AT+MQTTSTATU") == "\r\n+MQTTSTATU: 2\r\n\r\nOK\r\n"
    assert m.type("AT+MIPCLOSE") == "\r\n+MIPCLOSE: SUCCESS\r\n\r\nOK\r\n"
    assert m.last(CloseSocket) == CloseSocket(sid)
    assert m.type("AT+MQTTSTATU") == "\r\n+MQTTSTATU: 0\r\n\r\nOK\r\n"


def test_mpub_message_keeps_commas_and_spaces(m: Module) -> None:
    m.connect_mqtt()
    m.type("AT+MPUB= a/b,1,1, x, y,,z")
    assert m.sent[-1].payload == b" x, y,,z"
    assert m.sent[-1].qos == 1 and m.sent[-1].retain


def test_qos1_mpub_result_waits_for_puback(m: Module) -> None:
    sid = m.connect_mqtt()
    assert m.type("AT+MPUB=a,1,0,hi").endswith("OK\r\n")
    assert "+MPUB" not in m.type("AT")
    assert (
        m.socket(SocketData(sid, encode(Puback(m.sent[-1].packet_id)))) == "\r\n+MPUB: SUCCESS\r\n"
    )


def test_limits_refused_with_failure_2(m: Module) -> None:
    m.connect_mqtt()
    m.type("ATE0")
    assert m.type("AT+MPUB=" + "t" * 65 + ",0,0,x") == "\r\nOK\r\n\r\n+MPUB: FAILURE,2\r\n"
    assert m.type("AT+MPUB=t,0,0," + "x" * 257) == "\r\nOK\r\n\r\n+MPUB: FAILURE,2\r\n"
    assert m.type("AT+MPUBEX=t,0,0,1361") == "\r\nOK\r\n\r\n+MPUBEX: FAILURE,2\r\n"
    assert m.type("AT+MQTTCEER") == "\r\n+MQTTCEER: 2\r\n\r\nOK\r\n"
    assert m.type("AT+MSUB=t,3") == "\r\nOK\r\n\r\n+MSUB: FAILURE,2\r\n"
    assert m.type("AT+MCONFIG=c,u") == "\r\n+MCONFIG: FAILURE,2\r\n\r\nOK\r\n"
    assert m.type("AT+MCONFIG=c,u,p,1,3,0,w,m") == "\r\n+MCONFIG: FAILURE,2\r\n\r\nOK\r\n"
    assert m.type("AT+MQTTSSL=2") == "\r\nERROR\r\n"
    assert m.type("AT+MQTTMSGSET=2") == "\r\nERROR\r\n"
    assert m.type("AT+MQTTMSGGET=4") == "\r\nERROR\r\n"


def test_mpubex_prompt_then_exact_binary_data(m: Module) -> None:
    m.connect_mqtt()
    m.type("ATE0")
    assert m.type("AT+MPUBEX=t,0,0,6") == "\r\n> "
    m.serial.clear()
    m._take(m.fw.serial_received(b"\r\n\x00", m.now))
    assert m.serial == b""  # the data is not echoed and not yet complete
    m._take(m.fw.serial_received(b",\xff\r", m.now))
    assert m.sent[-1].payload == b"\r\n\x00,\xff\r"
    assert m.serial == b"\r\nOK\r\n\r\n+MPUBEX: SUCCESS\r\n"


def test_mpubex_data_timeout_is_error(m: Module) -> None:
    m.connect_mqtt()
    m.type("AT+MPUBEX=t,0,0,3")
    m.serial.clear()
    m.advance(V32.data_timeout_s * m.fw.time_scale + 0.01)
    assert m.serial == b"\r\nERROR\r\n"
    assert m.type("AT").endswith("OK\r\n")  # back to command mode


def test_manual_mode_ring_of_four_over_two_laps(m: Module) -> None:
    sid = m.connect_mqtt()
    m.type("AT+MQTTMSGSET=1")
    slots = []
    for i in range(9):
        out = m.socket(SocketData(sid, encode(Publish("r", f"m{i}".encode()))))
        slots.append(out.strip())
    assert slots == [f"+MSUB: {i % 4}" for i in range(9)]
    m.type("ATE0")
    # slot 0 holds m8, slots 1-3 hold m5..m7
    assert m.type("AT+MQTTMSGGET=0") == "\r\n+MSUB: r,2 bytes,m8\r\n\r\nOK\r\n"
    all_ = m.type("AT+MQTTMSGGET")
    assert all_.split("\r\n")[1:-3:2] == [
        "+MSUB: r,2 bytes,m8",
        "+MSUB: r,2 bytes,m5",
        "+MSUB: r,2 bytes,m6",
        "+MSUB: r,2 bytes,m7",
    ]


def test_empty_slot_is_invalid_and_store_is_lost_on_restart(m: Module) -> None:
    sid = m.connect_mqtt()
    m.type("ATE0")
    assert m.type("AT+MQTTMSGGET=2") == "\r\n+MQTTMSGGET:INVALID\r\n\r\nOK\r\n"
    m.type("AT+MQTTMSGSET=1")
    m.socket(SocketData(sid, encode(Publish("r", b"x"))))
    assert "+MSUB: r,1 bytes,x" in m.type("AT+MQTTMSGGET=0")
    assert m.type("AT+CFUN=1,1") == "\r\nOK\r\n"
    assert isinstance(m.last(CloseSocket), CloseSocket)
    m.serial.clear()
    m.advance(1.0)
    assert b"RDY" in m.serial
    assert "+MQTTMSGGET:INVALID" in m.type("AT+MQTTMSGGET=0")


def test_incoming_over_1360_cut_and_len_by_profile() -> None:
    for profile, shown_len in ((V32, 1500), (V33, 1360)):
        m = Module(Firmware(profile.without_latency(), time_scale=0.01))
        sid = m.connect_mqtt()
        out = m.socket(SocketData(sid, encode(Publish("big", b"z" * 1500)))).encode("latin-1")
        assert out == b"\r\n+MSUB: " + f"big,{shown_len} bytes,".encode() + b"z" * 1360 + b"\r\n"


def test_error_codes_3_4_5_7_8() -> None:
    m = Module()
    m.type("ATE0")
    m.type("AT+MCONFIG=c")
    m.type("AT+CFUN=4")
    assert m.type("AT+MIPSTART=127.0.0.1,1") == "\r\nOK\r\n\r\n+MIPSTART: FAILURE,3\r\n"
    m.type("AT+CFUN=1")
    m.fw.injections.add("socket_create_fails")
    assert m.type("AT+MIPSTART=127.0.0.1,1").endswith("+MIPSTART: FAILURE,4\r\n")
    m.fw.injections.clear()
    m.type("AT+MIPSTART=nowhere.invalid,1")
    sid = m.last(OpenSocket).socket_id
    assert m.socket(SocketFailed(sid, "resolve")) == "\r\n+MIPSTART: FAILURE,5\r\n"
    assert m.type("AT+MQTTCEER") == "\r\n+MQTTCEER: 5\r\n\r\nOK\r\n"
    m.type("AT+MQTTSSL=1")
    m.type("AT+MIPSTART=127.0.0.1,1883")
    assert m.last(OpenSocket).tls
    sid = m.last(OpenSocket).socket_id
    assert m.socket(SocketFailed(sid, "tls")) == "\r\n+MIPSTART: FAILURE,8\r\n"
    m.type("AT+MIPSTART=127.0.0.1,1883")
    m.socket(SocketOpened(m.last(OpenSocket).socket_id))
    assert m.type("AT+MIPSTART=127.0.0.1,1883").endswith("+MIPSTART: FAILURE,7\r\n")
    assert m.type("AT+MQTTSSL=0") == "\r\nERROR\r\n"  # only before MIPSTART


def test_refused_connect_is_6_and_drop_is_1(m: Module) -> None:
    m.type("ATE0")
    sid = m.connect_tcp()
    m.type("AT+MCONNECT=1,30")
    assert m.socket(SocketData(sid, encode(Connack(False, 5)))) == "\r\n+MCONNECT: FAILURE,6\r\n"
    assert m.fw.mqtt_status == 0
    sid = m.connect_mqtt()
    assert m.socket(SocketClosed(sid)) == "\r\n+MCONNECT: FAILURE,1\r\n"
    assert m.type("AT+MQTTSTATU") == "\r\n+MQTTSTATU: 0\r\n\r\nOK\r\n"


def test_unused_tcp_dropped_after_idle_time(m: Module) -> None:
    m.connect_tcp()
    m.serial.clear()
    m.advance(V32.idle_drop_s * m.fw.time_scale + 0.01)
    assert m.serial == b"\r\n+MCONNECT: FAILURE,1\r\n"
    assert m.fw.mqtt_status == 0


def test_keepalive_pings_and_ping_timeout_breaks_connection(m: Module) -> None:
    sid = m.connect_mqtt()
    m.advance(30.5)
    assert m.sent[-1].__class__.__name__ == "Pingreq"
    m.serial.clear()
    m.advance(31)
    assert b"+MCONNECT: FAILURE,1" in m.serial
    assert m.last(CloseSocket) == CloseSocket(sid)


def test_will_and_credentials_reach_connect(m: Module) -> None:
    m.type("AT+MCONFIG=cid,user,pw,1,1,1,will/t,gone, really")
    m.type("AT+MIPSTART=127.0.0.1,1883")
    m.socket(SocketOpened(m.last(OpenSocket).socket_id))
    m.type("AT+MCONNECT=0,60")
    c = m.sent[-1]
    assert (c.username, c.password, c.clean_session, c.keepalive) == ("user", "pw", False, 60)
    assert (c.will.topic, c.will.message, c.will.qos, c.will.retain) == (
        "will/t",
        b"gone, really",
        1,
        True,
    )


def test_munsub_and_mconnect_without_tcp(m: Module) -> None:
    m.type("ATE0")
    m.type("AT+MCONFIG=c")
    assert m.type("AT+MCONNECT=1,30") == "\r\nOK\r\n\r\n+MCONNECT: FAILURE,2\r\n"
    sid = m.connect_mqtt()
    assert m.type("AT+MUNSUB=a/b") == "\r\nOK\r\n"
    unsub = m.sent[-1]
    assert (
        m.socket(SocketData(sid, encode(Unsuback(unsub.packet_id)))) == "\r\n+MUNSUB: SUCCESS\r\n"
    )


def test_power_off_loses_everything(m: Module) -> None:
    sid = m.connect_mqtt()
    out = m.fw.power_off()
    assert out == [CloseSocket(sid)]
    assert m.fw.serial_received(b"AT\r", m.now) == []


@pytest.mark.parametrize("bug", ["ring_no_wrap", "slots_from_1"])
def test_a_bug_changes_what_the_module_says(bug: str) -> None:
    m = Module(Firmware(V32.without_latency(), time_scale=0.01, bugs=frozenset({bug})))
    sid = m.connect_mqtt()
    m.type("AT+MQTTMSGSET=1")
    said = [m.socket(SocketData(sid, encode(Publish("r", b"m%d" % i)))).strip() for i in range(5)]
    said.append(m.type("AT+MQTTMSGGET=0"))
    healthy = [f"+MSUB: {i % 4}" for i in range(5)]
    assert said != [*healthy, "AT+MQTTMSGGET=0\r\r\n+MSUB: r,2 bytes,m4\r\n\r\nOK\r\n"]


def test_unknown_bug_is_refused_with_the_way_to_list_them() -> None:
    with pytest.raises(ValueError, match="hil mutants --list"):
        Firmware(bugs=frozenset({"nope"}))


def test_topics_mqtt_forbids_are_bad_parameters(m: Module) -> None:
    m.connect_mqtt()
    m.type("ATE0")
    assert m.type("AT+MSUB=a/#/b,0") == "\r\nOK\r\n\r\n+MSUB: FAILURE,2\r\n"
    assert m.type("AT+MPUB=a/+,0,0,x") == "\r\nOK\r\n\r\n+MPUB: FAILURE,2\r\n"
    assert m.type("AT+MUNSUB=a/#/b") == "\r\nOK\r\n\r\n+MUNSUB: FAILURE,2\r\n"


# ---------------------------------------------------------------- guide-alt: the other readings


def alt(**changes: object) -> Module:
    """A module of the guide-alt profile, without its link model unless asked."""
    profile = replace(GUIDE_ALT.without_latency(), **changes)
    m = Module(Firmware(profile, time_scale=0.01))
    m.type("ATE0")
    return m


def test_guide_alt_boots_with_cpin_and_sms_ready() -> None:
    fw = Firmware(GUIDE_ALT, time_scale=1.0)
    fw.power_on(0.0)
    assert fw.tick(GUIDE_ALT.boot_s) == [SerialOut(b"\r\nRDY\r\n\r\n+CPIN: READY\r\n")]
    ready = fw.tick(GUIDE_ALT.boot_s + GUIDE_ALT.call_ready_s)
    assert ready == [SerialOut(b"\r\nCall Ready\r\n\r\nSMS Ready\r\n")]


def test_guide_alt_prints_the_forms_of_the_guide() -> None:
    m = alt()
    assert m.type("AT+MCONFIG=client_id_mobiletek") == "\r\n+MCONFIG:SUCCESS,0\r\n\r\nOK\r\n"
    assert m.type("AT+MIPSTART=127.0.0.1,1883") == "\r\nOK\r\n"
    sid = m.last(OpenSocket).socket_id
    assert m.socket(SocketOpened(sid)) == "\r\n+MIPSTART:SUCCESS,0\r\n"
    m.type("AT+MCONNECT=1,30")
    assert m.socket(SocketData(sid, encode(Connack(False, 0)))) == "\r\n+MCONNECT:SUCCESS,0\r\n"
    m.type("AT+MSUB=mobiletek/topic,0")
    suback = encode(Suback(m.sent[-1].packet_id, (0,)))
    assert m.socket(SocketData(sid, suback)) == "\r\n+MSUB:SUCCESS\r\n"
    msg = encode(Publish("mobiletek/topic", b"hello"))
    assert m.socket(SocketData(sid, msg)) == "\r\n+MSUB: mobiletek/topic,5 bytes,hello\r\n"
    assert m.type("AT+MDISCONNECT") == "\r\nOK\r\n\r\n+MDISCONNECT:SUCCESS\r\n"
    assert m.type("AT+MQTTSTATU") == "\r\n+MQTTSTATU: 0\r\n\r\nOK\r\n"  # MDISCONNECT-1 (Q)
    assert m.type("AT+ MIPCLOSE") == "\r\nOK\r\n\r\n+ MIPCLOSE: SUCCESS\r\n"  # section 2.9


def test_guide_alt_refuses_in_the_guides_forms() -> None:
    m = alt()
    m.connect_mqtt()
    assert m.type("AT+MCONFIG=c,u") == "\r\n+MCONFIG:FAILURE,2\r\n\r\nOK\r\n"
    assert m.type("AT+MSUB=t,3") == "\r\nOK\r\n\r\n+MSUB:FAILURE\r\n"
    assert m.type("AT+MPUB=" + "t" * 65 + ",0,0,x") == "\r\nOK\r\n\r\n+MPUB:FAILURE\r\n"
    assert m.type("AT+MQTTCEER") == "\r\n+MQTTCEER: 2\r\n\r\nOK\r\n"  # the code is still kept
    for command in ("AT+MQTTSSL=2", "AT+MQTTMSGSET=2", "AT+MQTTMSGGET=4"):
        assert m.type(command) == "\r\n+CME ERROR: 4\r\n"


@pytest.mark.parametrize(
    ("command", "reference", "guide_alt"),
    [
        ("MCONFIG", "FAILURE,2", "FAILURE,2"),
        ("MIPSTART", "FAILURE,2", "FAILURE,2"),
        ("MSUB", "FAILURE,2", "FAILURE"),
        ("MPUBEX", "FAILURE,2", "FAILURE"),
        ("MQTTSSL", "ERROR", "+CME ERROR"),
        ("MQTTMSGGET", "ERROR", "+CME ERROR"),
        ("CFUN", "ERROR", "ERROR"),
    ],
)
def test_refusal_form_names_what_the_firmware_prints(
    command: str, reference: str, guide_alt: str
) -> None:
    assert (V32.refusal_form(command), GUIDE_ALT.refusal_form(command)) == (reference, guide_alt)


def test_guide_alt_mpubex_prompt_echo_and_lf() -> None:
    m = alt()
    m.connect_mqtt()
    m.type("ATE1")
    assert m.type("AT+MPUBEX=t,0,0,5") == "AT+MPUBEX=t,0,0,5\r\r\n>> "
    m.serial.clear()
    m._take(m.fw.serial_received(b"a\r\nbc", m.now))
    assert m.serial == b"a\r\nbc\r\nOK\r\n\r\n+MPUBEX:SUCCESS\r\n"  # `>> abc`: echoed back
    assert m.sent[-1].payload == b"a\rbc"  # MPUBEX-3 (Q): LF is not part of the message
    m.type("ATE0")
    assert m.type("AT+MPUBEX=t,0,0,2") == "\r\n>> "
    m.serial.clear()
    m._take(m.fw.serial_received(b"xy", m.now))
    assert m.serial == b"\r\nOK\r\n\r\n+MPUBEX:SUCCESS\r\n"  # echo off: no data echo


def test_guide_alt_over_long_mpubex_is_refused_after_its_data() -> None:
    m = alt()
    m.connect_mqtt()
    sent = len(m.sent)
    assert m.type("AT+MPUBEX=t,0,0,1361") == "\r\n>> "
    m.serial.clear()
    m._take(m.fw.serial_received(b"z" * 1361, m.now))
    assert m.serial == b"\r\nOK\r\n\r\n+MPUBEX:FAILURE\r\n"
    assert len(m.sent) == sent  # nothing published
    assert m.type("AT").endswith("OK\r\n")  # back in command mode


def test_guide_alt_mpub_message_ends_at_a_comma() -> None:
    m = alt()
    m.connect_mqtt()
    m.type("AT+MPUB=a/b,0,0,x,y")
    assert m.sent[-1].payload == b"x"


def test_guide_alt_msgget_invalid_then_error_and_reading_clears() -> None:
    m = alt()
    sid = m.connect_mqtt()
    assert m.type("AT+MQTTMSGGET=0") == "\r\n+MQTTMSGGET:INVALID\r\n\r\nERROR\r\n"
    m.type("AT+MQTTMSGSET=1")
    assert m.socket(SocketData(sid, encode(Publish("r", b"m0")))) == "\r\n+MSUB: 0\r\n"
    assert m.type("AT+MQTTMSGGET=0") == "\r\n+MSUB: r,2 bytes,m0\r\n\r\nOK\r\n"
    assert m.type("AT+MQTTMSGGET=0") == "\r\n+MQTTMSGGET:INVALID\r\n\r\nERROR\r\n"
    assert m.socket(SocketData(sid, encode(Publish("r", b"m1")))) == "\r\n+MSUB: 1\r\n"
    assert m.type("AT+MQTTMSGGET") == "\r\n+MSUB: r,2 bytes,m1\r\n\r\nOK\r\n"
    assert "INVALID" in m.type("AT+MQTTMSGGET")


def test_guide_alt_ceer_keeps_the_last_failure_after_a_success() -> None:
    m = alt()
    m.type("AT+MCONFIG=c,u")
    assert m.type("AT+MQTTCEER") == "\r\n+MQTTCEER: 2\r\n\r\nOK\r\n"
    m.connect_mqtt()
    assert m.type("AT+MQTTCEER") == "\r\n+MQTTCEER: 2\r\n\r\nOK\r\n"


def test_guide_alt_long_topics_dropped_and_len_is_the_cut_length() -> None:
    m = alt()
    sid = m.connect_mqtt()
    long_topic = "t" * 65
    assert m.socket(SocketData(sid, encode(Publish(long_topic, b"x")))) == ""
    out = m.socket(SocketData(sid, encode(Publish("big", b"z" * 1500)))).encode("latin-1")
    assert out == b"\r\n+MSUB: big,1360 bytes," + b"z" * 1360 + b"\r\n"
    m.type("AT+MQTTMSGSET=1")  # stored: a topic up to the 256 of section 2.12 is kept whole
    assert m.socket(SocketData(sid, encode(Publish(long_topic, b"x")))) == "\r\n+MSUB: 0\r\n"
    assert m.type("AT+MQTTMSGGET=0") == f"\r\n+MSUB: {long_topic},1 bytes,x\r\n\r\nOK\r\n"
    assert m.socket(SocketData(sid, encode(Publish("u" * 257, b"x")))) == ""


def test_guide_alt_tls_handshake_at_mconnect() -> None:
    m = alt()
    m.type("AT+MQTTSSL=1")
    m.type("AT+MCONFIG=c")
    m.type("AT+MIPSTART=127.0.0.1,8883")
    opened = m.last(OpenSocket)
    assert not opened.tls  # MIPSTART makes the TCP connection only
    assert m.socket(SocketOpened(opened.socket_id)) == "\r\n+MIPSTART:SUCCESS,0\r\n"
    sent = len(m.sent)
    assert m.type("AT+MCONNECT=1,30") == "\r\nOK\r\n"
    assert m.last(StartTls) == StartTls(opened.socket_id)
    m.advance(0.001)
    assert len(m.sent) == sent  # no CONNECT before the handshake
    m.socket(TlsReady(opened.socket_id))
    assert isinstance(m.sent[-1], Connect)
    out = m.socket(SocketData(opened.socket_id, encode(Connack(False, 0))))
    assert out == "\r\n+MCONNECT:SUCCESS,0\r\n"


@pytest.mark.parametrize("event", [SocketFailed, SocketClosed])
def test_guide_alt_failed_handshake_is_code_8_at_mconnect(event: type) -> None:
    m = alt()
    m.type("AT+MQTTSSL=1")
    m.type("AT+MCONFIG=c")
    m.type("AT+MIPSTART=127.0.0.1,1883")
    sid = m.last(OpenSocket).socket_id
    m.socket(SocketOpened(sid))
    m.type("AT+MCONNECT=1,30")
    failure = SocketFailed(sid, "tls") if event is SocketFailed else SocketClosed(sid)
    assert m.socket(failure) == "\r\n+MCONNECT:FAILURE,8\r\n"
    assert m.type("AT+MQTTSTATU") == "\r\n+MQTTSTATU: 0\r\n\r\nOK\r\n"


def test_guide_alt_mipstart_and_mconnect_refusals_are_error() -> None:
    m = alt()
    m.type("AT+MCONFIG=c")
    assert m.type("AT+MCONNECT=1,30") == "\r\nERROR\r\n"  # MCONNECT-6 (Q)
    sid = m.connect_mqtt()
    assert m.type("AT+MIPSTART=127.0.0.1,1883") == "\r\nERROR\r\n"  # MIPSTART-3 (Q)
    assert m.fw.mqtt_status == 1 and m.fw.socket_id == sid  # the standing one is unharmed
    assert m.type("AT+MCONNECT=1,30") == "\r\nOK\r\n\r\n+MCONNECT:FAILURE,7\r\n"  # S


def test_guide_alt_unresolvable_name_is_code_4() -> None:
    m = alt()
    m.type("AT+MIPSTART=nowhere.invalid,1")
    sid = m.last(OpenSocket).socket_id
    assert m.socket(SocketFailed(sid, "resolve")) == "\r\n+MIPSTART:FAILURE,4\r\n"


def test_guide_alt_status_2_after_a_drop_until_mipclose() -> None:
    m = alt()
    sid = m.connect_mqtt()
    assert m.socket(SocketClosed(sid)) == "\r\n+MCONNECT:FAILURE,1\r\n"
    assert m.type("AT+MQTTSTATU") == "\r\n+MQTTSTATU: 2\r\n\r\nOK\r\n"  # MCONNECT-5 (Q)
    assert m.type("AT+MIPSTART=127.0.0.1,1883") == "\r\nERROR\r\n"  # the old one is not closed
    assert m.type("AT+MIPCLOSE") == "\r\nOK\r\n\r\n+ MIPCLOSE: SUCCESS\r\n"
    assert m.fw.mqtt_status == 0
    m.connect_tcp()


def test_guide_alt_unused_tcp_dropped_without_a_urc() -> None:
    m = alt()
    m.connect_tcp()
    m.serial.clear()
    m.advance(GUIDE_ALT.idle_drop_s * m.fw.time_scale + 0.01)
    assert m.serial == b""
    assert m.fw.mqtt_status == 0
    assert m.type("AT+MQTTCEER") == "\r\n+MQTTCEER: 1\r\n\r\nOK\r\n"


def test_guide_alt_keeps_its_switches_over_a_restart_but_not_the_store() -> None:
    m = alt()
    sid = m.connect_mqtt()
    m.type("AT+MQTTMSGSET=1")
    m.socket(SocketData(sid, encode(Publish("r", b"x"))))
    assert m.type("AT+MQTTSSL=1") == "\r\nOK\r\n"  # accepted for the next connection
    assert m.type("AT+CFUN=1,1") == "\r\nOK\r\n"
    m.advance(1.0)
    assert (m.fw.ssl, m.fw.manual) == (True, True)
    assert "INVALID" in m.type("AT+MQTTMSGGET=0")  # MSUB-6 (S): the store is RAM
    m.fw.power_off()
    m.fw.power_on(m.now)
    m.advance(1.0)
    assert (m.fw.ssl, m.fw.manual) == (True, True)


def test_guide_alt_ssl_set_while_connected_waits_for_the_next_connection() -> None:
    m = alt()
    sid = m.connect_mqtt()
    assert m.type("AT+MMQTTSSL=1") == "\r\nOK\r\n"  # example 1.2's spelling is taken too
    m.type("AT+MPUB=t,0,0,x")
    assert m.last(SendSocket).socket_id == sid  # the standing connection goes on, plain
    m.type("AT+MDISCONNECT")
    m.type("AT+MIPCLOSE")
    m.type("AT+MIPSTART=127.0.0.1,8883")
    m.socket(SocketOpened(m.last(OpenSocket).socket_id))
    m.type("AT+MCONNECT=1,30")
    assert isinstance(m.last(StartTls), StartTls)


def test_link_model_delivers_network_events_a_round_trip_late_in_order() -> None:
    profile = replace(GUIDE_ALT.without_latency(), link_rtt_s=0.1, link_jitter_s=0.05)
    fw = Firmware(profile)
    fw.power_on(0.0)
    fw.tick(5.0)  # RDY
    fw.tick(10.0)  # Call Ready
    fw.serial_received(b"ATE0\rAT+MCONFIG=c\rAT+MIPSTART=127.0.0.1,1883\r", 10.0)
    sid = fw.socket_id
    assert sid is not None
    assert fw.socket_event(SocketOpened(sid), 10.0) == []  # still on its way
    assert fw.tick(10.099) == []
    due = fw.next_deadline()
    assert due is not None and 10.1 <= due <= 10.15
    assert fw.tick(due) == [SerialOut(b"\r\n+MIPSTART:SUCCESS,0\r\n")]
    fw.serial_received(b"AT+MCONNECT=1,30\r", due)
    fw.socket_event(SocketData(sid, encode(Connack(False, 0))), due)
    fw.socket_event(SocketClosed(sid), due)  # right behind it: taken after it, never before
    said = b"".join(a.data for a in fw.tick(due + 1.0) if isinstance(a, SerialOut))
    assert said == b"\r\n+MCONNECT:SUCCESS,0\r\n\r\n+MCONNECT:FAILURE,1\r\n"


def test_latency_off_also_takes_the_link_out() -> None:
    quiet = GUIDE_ALT.with_latency_spec("off")
    assert (quiet.link_rtt_s, quiet.link_jitter_s) == (0.0, 0.0)
    assert GUIDE_ALT.with_latency_spec("x0.5").link_rtt_s == pytest.approx(0.03)
    assert GUIDE_ALT.latency_note.endswith("; link: 60 ms round trip + up to 80 ms jitter")
    every = GUIDE_ALT.with_latency_spec("*=5")  # the firmware's model replaced, the link kept
    assert every.link_rtt_s == GUIDE_ALT.link_rtt_s
    assert every.latency_note == "configured: *=5; link: 60 ms round trip + up to 80 ms jitter"


def test_guide_alt_reads_gen_7_parameters_the_other_way() -> None:
    m = alt()
    m.type('AT+MCONFIG="' + "c" * 36 + '"')  # quotes: a V.250 string constant
    m.type("AT+MIPSTART=127.0.0.1,1883")
    m.socket(SocketOpened(m.last(OpenSocket).socket_id))
    m.type("AT+MCONNECT=1,30")
    assert m.sent[-1].client_id == "c" * 23  # cut to MQTT 3.1.1's guaranteed length
    m.socket(SocketData(m.fw.socket_id, encode(Connack(False, 0))))
    m.type("AT+MPUB=t,0,0,a;b")
    assert m.sent[-1].payload == b"a"  # `;` ends the command
    m.type('AT+MPUB=t,0,0,say "hi"')
    assert m.sent[-1].payload == b'say "hi"'  # not a whole quoted string: kept
    m.type('AT+MPUB="t",0,0,"hi"')
    assert (m.sent[-1].topic, m.sent[-1].payload) == ("t", b"hi")
    m.type("AT+MPUB=t,0,0,  indented")
    assert m.sent[-1].payload == b"indented"


def test_reference_keeps_gen_7_parameters_as_typed(m: Module) -> None:
    m.type("AT+MCONFIG=" + "c" * 36)
    m.type("AT+MIPSTART=127.0.0.1,1883")
    m.socket(SocketOpened(m.last(OpenSocket).socket_id))
    m.type("AT+MCONNECT=1,30")
    assert m.sent[-1].client_id == "c" * 36
    m.socket(SocketData(m.fw.socket_id, encode(Connack(False, 0))))
    for message in ("a;b", '"hi"', "  indented"):
        m.type(f"AT+MPUB=t,0,0,{message}")
        assert m.sent[-1].payload == message.encode()


def test_echo_at_boot_is_the_profiles() -> None:
    m = Module(Firmware(replace(V32.without_latency(), echo_at_boot=False), time_scale=0.01))
    assert m.type("AT") == "\r\nOK\r\n"
    assert m.type("ATE1") == "\r\nOK\r\n"
    assert m.type("AT") == "AT\r\r\nOK\r\n"


def test_untrimmed_parameters_are_the_profiles() -> None:
    m = Module(Firmware(replace(V32.without_latency(), trim_parameters=False), time_scale=0.01))
    m.type("ATE0")
    assert m.type("AT+MCONFIG= c") == "\r\n+MCONFIG: SUCCESS,0\r\n\r\nOK\r\n"
    assert m.fw.config is not None and m.fw.config.client_id == " c"
    assert m.type("AT+MIPSTART=127.0.0.1, 1883").endswith("+MIPSTART: FAILURE,2\r\n")


def test_a_space_after_at_plus_is_the_profiles() -> None:
    m = Module(Firmware(replace(V32.without_latency(), space_after_plus=False), time_scale=0.01))
    m.type("ATE0")
    assert m.type("AT+ MIPCLOSE") == "\r\nERROR\r\n"
    assert m.type("AT+MIPCLOSE") == "\r\n+MIPCLOSE: SUCCESS\r\n\r\nOK\r\n"


def test_handlers_follow_chapter_2_in_the_guides_order() -> None:
    """Each guide command's handler names its section first; the table keeps the guide's order."""
    sections = []
    for name, handler in Firmware._EXTENDED.items():
        doc = handler.__doc__ or ""
        found = re.match(r"2\.(\d+) (?:AT\+(\w+)|as example 1\.2 spells it)", doc)
        if name.startswith("C"):  # the bench commands come after the guide's
            assert found is None and sections, name
            continue
        assert found is not None, f"{name}: {doc!r}"
        assert found[2] in (None, name.rstrip("=?")), name
        sections.append(int(found[1]))
    assert sections == sorted(sections) and set(sections) == set(range(1, 15))
