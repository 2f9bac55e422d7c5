"""The module as a bench sees it: boot, reset, identity (DEV-1, DEV-2)."""

from __future__ import annotations

import re

import allure
import pytest

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506.types import MqttStatus, ResultType
from hil.masking import mask_imei
from suites.expect import bring_up, expect_result, expect_status


@pytest.mark.spec("DEV-1")
@pytest.mark.needs("power")
def test_power_on(dut: Device, broker: Broker, names, power) -> None:
    """After power is applied the module answers AT within its boot time and registers;
    the MQTT connection it had is gone, and a new one works."""
    at = dut.at
    bring_up(dut, broker.plain_port, names.client_id)
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    seconds = power.cycle()
    allure.dynamic.parameter("ready after (s)", round(seconds, 2))
    expect_status(at, MqttStatus.NO_CONNECTION)
    expect_result(at.mconfig(names.client_id), "MCONFIG", ResultType.NO_ERROR)
    expect_result(at.mipstart(dut.broker_host, broker.plain_port), "MIPSTART")


@pytest.mark.spec("DEV-1")
def test_reset_by_cfun(dut: Device, broker: Broker, names) -> None:
    """AT+CFUN=1,1 restarts the module: it comes back ready, without the MQTT connection
    it had (an MQTT connection, which keep-alive holds, not a bare TCP one that the idle
    drop of MIPSTART-7 could end meanwhile).

    Bench: the port of a USB module vanishes during the restart; the test reopens it.
    """
    at = dut.at
    bring_up(dut, broker.plain_port, names.client_id)
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    dut.soft_reset()
    assert at.at().response.ok
    expect_status(at, MqttStatus.NO_CONNECTION)


@pytest.mark.spec("DEV-2")
def test_identity(dut: Device) -> None:
    """ATI names the model (L506); AT+CGMR gives a non-empty firmware revision."""
    at = dut.at
    ati = at.ati()
    assert ati.response.ok, ati.response.summary()
    assert any("L506" in line for line in ati.info), f"ATI does not name the L506: {ati.info}"
    cgmr = at.cgmr()
    assert cgmr.response.ok, cgmr.response.summary()
    revision = " ".join(re.sub(r"^\+CGMR: ?", "", line).strip() for line in cgmr.info).strip()
    assert revision, f"AT+CGMR gives no revision: {cgmr.info}"
    allure.dynamic.parameter("ATI", mask_imei(" / ".join(ati.info)))  # as the environment shows it
    allure.dynamic.parameter("revision", revision)
