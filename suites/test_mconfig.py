"""AT+MCONFIG (section 2.1): client id, credentials, will, and its refusals.

The will itself (delivered on a power cut, not after MDISCONNECT) is in test_sessions.py.
"""

from __future__ import annotations

import pytest

from hil.broker import Broker
from hil.dut.device import Device
from hil.l506.api import WillConfig
from hil.l506.types import MqttStatus, ResultType
from suites.expect import (
    connect_line,
    expect_refused_with_ceer,
    expect_result,
    expect_status,
    tear_down,
)


@pytest.mark.spec("MCONFIG-1")
def test_client_id_alone(dut: Device) -> None:
    """`+MCONFIG: SUCCESS,0` and OK."""
    at = dut.at
    expect_result(at.mconfig("client_id_mobiletk"), "MCONFIG", ResultType.NO_ERROR)
    expect_status(at, MqttStatus.NO_CONNECTION)  # configuring opens nothing


@pytest.mark.spec("MCONFIG-2")
def test_credentials_reach_the_broker(dut: Device, broker: Broker, names) -> None:
    """With the user name and password of a user of the password-protected listener, the
    broker accepts the CONNECT and logs that user for this client id."""
    at = dut.at
    mark = broker.log_mark()
    expect_result(
        at.mconfig(names.client_id, "hil", broker.users["hil"]), "MCONFIG", ResultType.NO_ERROR
    )
    expect_result(at.mipstart(dut.broker_host, broker.auth_port), "MIPSTART")
    expect_result(at.mconnect(1, 30), "MCONNECT", ResultType.NO_ERROR)
    flags = connect_line(broker, mark, names.client_id)
    assert "u'hil'" in flags, f"broker saw CONNECT flags ({flags}), not user 'hil'"
    expect_status(at, MqttStatus.MQTT_CONNECTED)
    tear_down(dut)


BAD_MCONFIG = {
    "will_qos 3": dict(will=WillConfig("hil/will", "gone", qos=3)),
    "will_qos -1": dict(will=WillConfig("hil/will", "gone", qos=-1)),
    "will_retain 2": dict(will=WillConfig("hil/will", "gone", retain=2)),
    "will flag 1 without topic": dict(will=WillConfig("", "gone")),
    "username without password": dict(username="hil"),
}


@pytest.mark.spec("MCONFIG-4")
@pytest.mark.spec("GEN-4")
@pytest.mark.parametrize("case", list(BAD_MCONFIG))
def test_bad_parameters_are_refused(dut: Device, case: str, names, characterize) -> None:
    """Refused (GEN-6 forms; as a result URC, with type 2). Bench: the same commands on a
    real module."""
    at = dut.at
    outcome = at.mconfig(names.client_id, **BAD_MCONFIG[case])
    expect_refused_with_ceer(at, outcome, "MCONFIG", characterize)
