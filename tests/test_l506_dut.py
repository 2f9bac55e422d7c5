"""The typed L506 API against the scripted fake device: commands as the guide writes
them, typed results, FAILURE and ERROR returned rather than raised."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakedevice import FakeDevice, crlf

from hil.l506.api import L506, Timeouts, WillConfig
from hil.l506.commands import MIPCLOSE
from hil.l506.types import Message, MqttStatus, ResultType


@pytest.fixture
def device() -> Iterator[FakeDevice]:
    dev = FakeDevice()
    yield dev
    dev.close()


@pytest.fixture
def dut(device: FakeDevice) -> Iterator[L506]:
    l506 = L506.open(device.path, timeouts=Timeouts(basic=2, mipstart=2, mconnect=2))
    yield l506
    l506.channel.close()


def test_flow_of_guide_example_1_1(device: FakeDevice, dut: L506) -> None:
    msg = b"message from client_id_mobiletek"
    report = b"+MSUB: mobiletek/topic,32 bytes," + msg
    device.on(b"AT+MQTTSSL=0\r", crlf(b"OK"))
    device.on(b"AT+MCONFIG=client_id_mobiletek\r", crlf(b"+MCONFIG:SUCCESS,0", b"OK"))
    device.on(b"AT+MIPSTART=127.0.0.1,1883\r", crlf(b"OK", b"+MIPSTART:SUCCESS,0"))
    device.on(b"AT+MCONNECT=1,30\r", crlf(b"OK", b"+MCONNECT:SUCCESS,0"))
    device.on(b"AT+MSUB=mobiletek/topic,0\r", crlf(b"OK", b"+MSUB:SUCCESS"))
    device.on(b"AT+MPUB=mobiletek/topic,0,0," + msg + b"\r", crlf(b"OK", b"+MPUB:SUCCESS", report))
    device.on(b"AT+MQTTMSGSET=1\r", crlf(b"OK"))
    device.on(
        b"AT+MPUB=mobiletek/topic,0,0," + msg + b"\r", crlf(b"OK", b"+MPUB:SUCCESS", b"+MSUB: 0")
    )
    device.on(b"AT+MQTTMSGGET=0\r", crlf(report, b"OK"))
    device.on(b"AT+MDISCONNECT\r", crlf(b"OK", b"+MDISCONNECT:SUCCESS"))
    device.on(b"AT+MIPCLOSE\r", crlf(b"+MIPCLOSE:SUCCESS", b"OK"))

    assert dut.mqttssl(0).ok
    r = dut.mconfig("client_id_mobiletek")
    assert r.ok and r.result is not None and r.result.type is ResultType.NO_ERROR
    assert dut.mipstart("127.0.0.1", 1883).ok
    assert dut.mconnect(True, 30).ok
    assert dut.msub("mobiletek/topic", 0).ok
    assert dut.mpub("mobiletek/topic", 0, False, msg.decode()).ok
    assert dut.wait_message(2, topic="mobiletek/topic") == Message("mobiletek/topic", 32, msg)
    assert dut.mqttmsgset(1).ok
    assert dut.mpub("mobiletek/topic", 0, 0, msg).ok
    assert dut.wait_slot(2) == 0
    got = dut.mqttmsgget(0)
    assert got.ok and not got.invalid and got.messages == [Message("mobiletek/topic", 32, msg)]
    assert dut.mdisconnect().ok
    assert dut.mipclose().ok
    assert dut.channel.urcs() == []


def test_failure_and_error_are_returned(device: FakeDevice, dut: L506) -> None:
    device.on(b"AT+MIPSTART=nowhere,1\r", crlf(b"OK", b"+MIPSTART: FAILURE,5"))
    device.on(b"AT+MQTTSSL=2\r", crlf(b"ERROR"))
    r = dut.mipstart("nowhere", 1)
    assert not r.ok and r.response.ok
    assert r.result is not None and r.result.type is ResultType.SERVER_CONNECT_FAILED
    e = dut.mqttssl(2)
    assert not e.ok and e.response.error and e.result is None


def test_mconfig_fields_and_password_masked(device: FakeDevice, dut: L506) -> None:
    will = WillConfig("w/t", "bye, all", qos=1, retain=True)
    device.on(b"AT+MCONFIG=c,u,pa55,1,1,1,w/t,bye, all\r", crlf(b"+MCONFIG: SUCCESS,0", b"OK"))
    device.on(b"AT+MCONFIG=c,u\r", crlf(b"+MCONFIG: FAILURE,2", b"OK"))
    device.on(b"AT+MCONFIG=c,,,1,3,0,t,m\r", crlf(b"+MCONFIG: FAILURE,2", b"OK"))
    assert dut.mconfig("c", "u", "pa55", will).ok
    refused = dut.mconfig("c", "u")
    assert refused.result is not None and refused.result.type is ResultType.BAD_PARAMETER
    assert not dut.mconfig("c", will=WillConfig("t", "m", qos=3)).ok
    log = dut.channel.transcript.render()
    assert "pa55" not in log and "AT+MCONFIG=c,u,****,1,1,1,w/t,bye, all" in log


def test_status_ceer_and_bench_queries(device: FakeDevice, dut: L506) -> None:
    device.on(b"AT+MQTTSTATU\r", crlf(b"+MQTTSTATU: 2", b"OK"))
    device.on(b"AT+MQTTCEER\r", crlf(b"+MQTTCEER: 8", b"OK"))
    device.on(b"ATI\r", crlf(b"LYNQ", b"L506", b"OK"))
    device.on(b"AT+CPIN?\r", crlf(b"+CPIN: READY", b"OK"))
    device.on(b"AT+CREG?\r", crlf(b"+CREG: 0,5", b"OK"))
    device.on(b"AT+CGATT?\r", crlf(b"+CGATT: 1", b"OK"))
    device.on(b"AT+CFUN=1,1\r", crlf(b"OK"))
    assert dut.mqttstatu().value is MqttStatus.TCP_CONNECTED
    assert dut.mqttceer().value is ResultType.SSL_HANDSHAKE_FAILED
    assert dut.ati().info == ["LYNQ", "L506"]
    assert dut.cpin().value == "READY"
    assert dut.creg().value == 5
    assert dut.cgatt().value is True
    assert dut.cfun(1, 1).ok


def test_msgget_all_with_invalid_slot(device: FakeDevice, dut: L506) -> None:
    device.on(
        b"AT+MQTTMSGGET\r",
        crlf(b"+MSUB: a,1 bytes,\n", b"+MQTTMSGGET:INVALID", b"+MSUB: 3", b"OK"),
    )
    got = dut.mqttmsgget()
    assert got.ok and got.invalid
    assert got.messages == [Message("a", 1, b"\n")]
    assert [u.text for u in dut.channel.urcs()] == ["+MSUB: 3"]


def test_mpubex_prompt_and_refusal(device: FakeDevice, dut: L506) -> None:
    data = bytes(range(256)) * 5 + bytes(80)
    device.on(b"AT+MPUBEX=t,2,0,1360\r", b"\r\n> ")
    device.on(data, crlf(b"OK", b"+MPUBEX: SUCCESS"), echo=False)
    device.on(b"AT+MPUBEX=t,0,0,1361\r", crlf(b"OK", b"+MPUBEX: FAILURE,2"))
    r = dut.mpubex("t", 2, False, data)
    assert r.ok and r.response.data_sent
    assert r.response.timing.prompt_ms is not None
    refused = dut.mpubex("t", 0, 0, data + b"!")
    assert not refused.ok and not refused.response.data_sent


def test_raw_sends_malformed_text(device: FakeDevice, dut: L506) -> None:
    device.on(b"AT+ MIPCLOSE\r", crlf(b"OK", b"+ MIPCLOSE: SUCCESS"))
    r = dut.raw("AT+ MIPCLOSE", MIPCLOSE)
    assert r.ok and r.result is not None and r.result.name == "MIPCLOSE"
