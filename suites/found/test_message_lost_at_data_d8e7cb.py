"""Found by `hil fuzz` (2026-11-30T10:03:31+00:00, profile v3.2, bugs urc_lost_in_prompt).

message lost (step 7): the module took 2 messages from the broker, it reported 1

The minimal sequence:

    AT+MCONFIG=c1
    AT+MIPSTART=127.0.0.1,1883
    AT+MCONNECT=1,30
    AT+MSUB=a/b,0
    AT+MPUBEX=a/b,0,0,5
    <broker: message on 'a/b', 1 bytes, qos 0>
    <data 5 bytes, exact> b'\x00\x00\x00\x00\x00'
"""

from pathlib import Path

import pytest

from hil.sim.profiles import profile_named

SCRIPT = Path(__file__).with_name("message_lost_at_data_d8e7cb.json")


def test_message_lost_at_data_d8e7cb(rig) -> None:
    if rig.dut.kind != "simulator":
        pytest.skip("replayed on the simulator's firmware model (virtual bench) only")
    from hil.fuzz.replay import replay_script  # hypothesis, imported only when this runs

    violation = replay_script(SCRIPT, profile_named(rig.dut.profile), frozenset(rig.dut.bugs))
    assert violation is None, f"{violation.oracle}: {violation.detail}"
