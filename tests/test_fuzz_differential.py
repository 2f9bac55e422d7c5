"""Differential runs: the same generated cases on two firmware profiles; every difference is
explained by a documented difference of the profiles, or listed."""

from __future__ import annotations

import dataclasses

import pytest

from hil.fuzz.differential import (
    LINK_NORMALISERS,
    NORMALISERS,
    bench_model,
    compare,
    documented,
    draw_cases,
    played,
)
from hil.fuzz.grammar import Case
from hil.sim.profiles import GUIDE_ALT, V32, V33
from tests.fuzzcases import cmd


@pytest.fixture(scope="module")
def drawn():  # type: ignore[no-untyped-def]
    return draw_cases(1000, seed_value=3)


@pytest.mark.timeout(300)
def test_v32_against_v33_shows_exactly_their_documented_differences(drawn) -> None:
    assert documented(V32, V33) == ["urc_space", "msub_len"]
    found = compare(V32, V33, drawn)
    assert found.cases == 1000 and found.steps > 5000
    assert set(found.explained) == {"urc_space", "msub_len"}
    assert found.unexplained == [] and found.unmodelled == []


@pytest.mark.timeout(300)
def test_v32_against_guide_alt_explains_every_step_by_a_documented_choice(drawn) -> None:
    """guide-alt takes the other reading of every open point: most have no normaliser, and
    the steps they change are found by replaying v3.2 with guide-alt's choice."""
    found = compare(V32, GUIDE_ALT, drawn[:300])
    assert found.unexplained == []
    replayed = set(found.explained) - set(NORMALISERS)
    assert {"mconnect_without_tcp_code", "ssl_while_connected", "echo_data"} <= replayed
    assert replayed <= set(found.unmodelled)


@pytest.mark.timeout(300)
def test_a_firmware_anomaly_is_listed_unexplained(drawn) -> None:
    found = compare(V32, V32, drawn, bugs_b=frozenset({"tab_restarts"}))
    assert not found.explained
    assert found.unexplained
    sent, before, after = found.unexplained[0]
    assert "\t" in sent and before != after


def test_a_difference_without_a_normaliser_is_named() -> None:
    other = dataclasses.replace(V32, name="x", prompt=b">")
    assert documented(V32, other) == ["prompt"]
    assert "prompt" not in NORMALISERS
    found = compare(V32, other, [])
    assert found.unmodelled == ["prompt"]


def test_normalisers_blind_lines_to_one_point_only() -> None:
    assert NORMALISERS["urc_space"](["+MSUB:SUCCESS", "+MSUB: 0"]) == ["+MSUB: SUCCESS",
                                                                       "+MSUB: 0"]
    assert NORMALISERS["msub_len"](["+MSUB: t,1361 bytes,x", "+MSUB: t,5 bytes,x"]) == [
        "+MSUB: t,1360 bytes,x", "+MSUB: t,5 bytes,x"]
    assert NORMALISERS["msgget_invalid_final"](["+MQTTMSGGET:INVALID", "ERROR", "OK"]) == [
        "+MQTTMSGGET:INVALID", "<final>", "OK"]
    assert NORMALISERS["mipclose_urc_plus_space"](["+ MIPCLOSE: SUCCESS", "+ x"]) == [
        "+MIPCLOSE: SUCCESS", "+ x"]
    assert NORMALISERS["untyped_failure_code"](["+MPUB: FAILURE,2", "+MSUB: t,2 bytes,ab"]) == [
        "+MPUB: FAILURE", "+MSUB: t,2 bytes,ab"]
    assert NORMALISERS["result_before_ok"](["+MIPCLOSE: SUCCESS", "OK", "OK"]) == [
        "OK", "+MIPCLOSE: SUCCESS", "OK"]
    assert NORMALISERS["switch_refusal"](["+CME ERROR: 4", "+CMS ERROR: 4"]) == [
        "ERROR", "+CMS ERROR: 4"]
    assert NORMALISERS["boot_urcs"](["RDY", "+CPIN: READY", "Call Ready", "SMS Ready"]) == [
        "RDY", "Call Ready"]


def test_urcs_that_came_together_are_compared_in_one_order() -> None:
    order = LINK_NORMALISERS["urc_order"]
    model = ["OK", "+MPUB: SUCCESS", "+MSUB: a/b,1 bytes,x", "AT", "OK"]
    link = ["OK", "+MSUB: a/b,1 bytes,x", "+MPUB: SUCCESS", "AT", "OK"]
    assert order(model) == order(link)
    # a final code or a command between them keeps its place: only URCs side by side move
    assert order(["+MPUB: SUCCESS", "OK", "+MCONNECT: FAILURE,7"]) == [
        "+MPUB: SUCCESS", "OK", "+MCONNECT: FAILURE,7"]


def test_the_models_broker_keeps_a_retained_message_for_a_new_subscription() -> None:
    """MQTT 3.1.1 3.3.1.3, as the bench's mosquitto does: the last retained message of a
    topic goes to each new subscription; an empty one deletes it."""
    kept = Case("mqtt", (cmd("AT+MPUB=r/t,1,1,kept"), cmd("AT+MSUB=r/#,1")))
    steps = played(kept, V32, bench_model(V32))
    assert any(x.startswith("+MSUB: r/t,4 bytes,kept") for x in steps[-1][1]), steps[-1]
    wiped = Case("mqtt", (cmd("AT+MPUB=r/t,1,1,kept"), cmd("AT+MPUB=r/t,1,1,"),
                          cmd("AT+MSUB=r/#,1")))
    steps = played(wiped, V32, bench_model(V32))
    assert not any("bytes" in x for x in steps[-1][1]), steps[-1]
