"""Differential runs: the same generated cases on two firmware profiles; every difference is
explained by a documented difference of the profiles, or listed."""

from __future__ import annotations

import dataclasses

import pytest

from hil.fuzz.differential import NORMALISERS, compare, documented, draw_cases
from hil.sim.profiles import V32, V33


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
