"""The firmware's connection state: the transition table pinned, every entry reached through
the firmware's own interface, an illegal event raising, and MQTTSTATU in every state (STATU-1).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from test_sim_firmware import Module

from hil.mqtt import Connack, Puback, encode
from hil.sim import state as state_module
from hil.sim.bugs import BUGS
from hil.sim.firmware import Firmware, SocketClosed, SocketData, SocketFailed, SocketOpened
from hil.sim.profiles import GUIDE_ALT, PROFILES, V32, Profile
from hil.sim.state import (
    TRANSITIONS,
    Connection,
    ConnEvent,
    ConnState,
    IllegalTransition,
    mqtt_status,
)

S, E = ConnState, ConnEvent

#: The table written out once more by hand: a change to `TRANSITIONS` must change this too.
EXPECTED = {
    (S.IDLE, E.MIPSTART): S.TCP_OPENING,
    (S.MQTT_CLOSED, E.MIPSTART): S.TCP_OPENING,
    (S.DROPPED, E.MIPSTART): S.TCP_OPENING,
    (S.TCP_OPENING, E.TCP_OPENED): S.TCP_UP,
    (S.TCP_OPENING, E.TCP_FAILED): S.IDLE,
    (S.TCP_UP, E.MCONNECT): S.MQTT_CONNECTING,
    (S.MQTT_CONNECTING, E.CONNACK): S.MQTT_UP,
    (S.MQTT_CONNECTING, E.MCONNECT_FAILED): S.IDLE,
    (S.MQTT_UP, E.MDISCONNECT): S.MQTT_CLOSED,
    (S.TCP_UP, E.CONNECTION_LOST): S.IDLE,
    (S.MQTT_CONNECTING, E.CONNECTION_LOST): S.IDLE,
    (S.MQTT_UP, E.CONNECTION_LOST): S.DROPPED,
    (S.TCP_OPENING, E.NETWORK_LOST): S.IDLE,
    (S.TCP_UP, E.NETWORK_LOST): S.IDLE,
    (S.MQTT_CONNECTING, E.NETWORK_LOST): S.IDLE,
    (S.MQTT_UP, E.NETWORK_LOST): S.IDLE,
    (S.MQTT_CLOSED, E.NETWORK_LOST): S.IDLE,
    (S.DROPPED, E.NETWORK_LOST): S.IDLE,
    (S.IDLE, E.MIPCLOSE): S.IDLE,
    (S.TCP_OPENING, E.MIPCLOSE): S.IDLE,
    (S.TCP_UP, E.MIPCLOSE): S.IDLE,
    (S.MQTT_CONNECTING, E.MIPCLOSE): S.IDLE,
    (S.MQTT_UP, E.MIPCLOSE): S.IDLE,
    (S.MQTT_CLOSED, E.MIPCLOSE): S.IDLE,
    (S.DROPPED, E.MIPCLOSE): S.IDLE,
}

ILLEGAL = [(s, e) for s in ConnState for e in ConnEvent if (s, e) not in EXPECTED]

#: AT+MQTTSTATU as section 2.14 gives it: 0 no connection, 1 MQTT connected, 2 TCP up
#: without MQTT. After MDISCONNECT and after a drop the guide leaves 0 or 2 open.
GUIDE_STATUS: dict[ConnState, set[int]] = {
    S.IDLE: {0},
    S.TCP_OPENING: {0},
    S.TCP_UP: {2},
    S.MQTT_CONNECTING: {2},
    S.MQTT_UP: {1},
    S.MQTT_CLOSED: {0, 2},
    S.DROPPED: {0, 2},
}


def test_the_table_is_the_one_pinned_here() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("start", "event"), list(EXPECTED), ids=lambda x: x.name)
def test_every_legal_transition_moves_the_state(start: ConnState, event: ConnEvent) -> None:
    connection = Connection()
    connection.state = start
    assert connection.fire(event) is EXPECTED[start, event]
    assert connection.state is EXPECTED[start, event]


@pytest.mark.parametrize(("start", "event"), ILLEGAL, ids=lambda x: x.name)
def test_every_illegal_transition_raises_and_leaves_the_state(
    start: ConnState, event: ConnEvent
) -> None:
    connection = Connection()
    connection.state = start
    with pytest.raises(IllegalTransition, match=f"{event.name} is not allowed in {start.name}"):
        connection.fire(event)
    assert connection.state is start


def test_the_firmware_does_not_swallow_an_illegal_transition(m: Module) -> None:
    """A host that reports one socket open twice is wrong: the firmware says so, loudly."""
    sid = m.connect_tcp()
    with pytest.raises(IllegalTransition, match="TCP_OPENED is not allowed in TCP_UP"):
        m.fw.socket_event(SocketOpened(sid), m.now)


# ---------------------------------------------------------------- every entry, reached for real


@pytest.fixture
def m() -> Module:
    return Module()


def _module(profile: Profile) -> Module:
    return Module(Firmware(profile.without_latency(), time_scale=0.01))


def _drop(m: Module) -> None:
    m.socket(SocketClosed(m.fw.socket_id))


#: How a freshly booted module is brought into each state, through its interface only.
REACH: dict[ConnState, Callable[[Module], object]] = {
    S.IDLE: lambda m: None,
    S.TCP_OPENING: lambda m: (m.type("AT+MCONFIG=cid"), m.type("AT+MIPSTART=127.0.0.1,1883")),
    S.TCP_UP: lambda m: m.connect_tcp(),
    S.MQTT_CONNECTING: lambda m: (m.connect_tcp(), m.type("AT+MCONNECT=1,30")),
    S.MQTT_UP: lambda m: m.connect_mqtt(),
    S.MQTT_CLOSED: lambda m: (m.connect_mqtt(), m.type("AT+MDISCONNECT")),
    S.DROPPED: lambda m: (m.connect_mqtt(), _drop(m)),
}


def _connection_lost(m: Module) -> None:
    """The broker closes the socket; while CONNECT waits for CONNACK, a close is a refusal,
    so there the broker sends what a client must never get first (a PUBACK)."""
    if m.fw.state is S.MQTT_CONNECTING:
        m.socket(SocketData(m.fw.socket_id, encode(Puback(7))))
    else:
        _drop(m)


#: What makes each event happen.
TRIGGER: dict[ConnEvent, Callable[[Module], object]] = {
    E.MIPSTART: lambda m: m.type("AT+MIPSTART=127.0.0.1,1883"),
    E.TCP_OPENED: lambda m: m.socket(SocketOpened(m.fw.socket_id)),
    E.TCP_FAILED: lambda m: m.socket(SocketFailed(m.fw.socket_id, "refused")),
    E.MCONNECT: lambda m: m.type("AT+MCONNECT=1,30"),
    E.CONNACK: lambda m: m.socket(SocketData(m.fw.socket_id, encode(Connack(False, 0)))),
    E.MCONNECT_FAILED: lambda m: m.socket(SocketData(m.fw.socket_id, encode(Connack(False, 5)))),
    E.MDISCONNECT: lambda m: m.type("AT+MDISCONNECT"),
    E.CONNECTION_LOST: _connection_lost,
    E.NETWORK_LOST: lambda m: m.type("AT+CGATT=0"),
    E.MIPCLOSE: lambda m: m.type("AT+MIPCLOSE"),
}

#: MIPSTART replaces a gone connection only where MQTTSTATU already says 0 (MIPSTART-3).
PROFILE_FOR = {(S.MQTT_CLOSED, E.MIPSTART): GUIDE_ALT, (S.DROPPED, E.MIPSTART): V32}


@pytest.mark.parametrize(("start", "event"), list(EXPECTED), ids=lambda x: x.name)
def test_the_firmware_goes_through_every_entry_of_the_table(
    start: ConnState, event: ConnEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = _module(PROFILE_FOR.get((start, event), V32))
    REACH[start](m)
    assert m.fw.state is start
    fired: list[tuple[ConnState, ConnEvent]] = []
    real_fire = state_module.Connection.fire

    def recording_fire(self: Connection, event: ConnEvent) -> ConnState:
        fired.append((self.state, event))
        return real_fire(self, event)

    monkeypatch.setattr(state_module.Connection, "fire", recording_fire)
    TRIGGER[event](m)
    assert fired == [(start, event)]
    assert m.fw.state is EXPECTED[start, event]


def test_the_idle_drop_is_a_connection_lost_on_both_readings() -> None:
    for profile in (V32, GUIDE_ALT):
        m = _module(profile)
        m.connect_tcp()
        m.advance(profile.idle_drop_s * 0.01 + 0.1)
        assert m.fw.state is S.IDLE, profile.name


# ---------------------------------------------------------------- STATU-1


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=lambda p: p.name)
def test_every_state_maps_to_a_status_the_guide_gives(profile: Profile) -> None:
    for state in ConnState:
        assert mqtt_status(state, profile) in GUIDE_STATUS[state], state
    assert mqtt_status(S.MQTT_CLOSED, profile) == profile.status_after_mdisconnect
    assert mqtt_status(S.DROPPED, profile) == profile.status_after_drop


def _statu(m: Module) -> int:
    found = re.search(r"\+MQTTSTATU: ?(\d)\r\n\r\nOK\r\n", m.type("AT+MQTTSTATU"))
    assert found is not None
    return int(found[1])


#: The flows of chapter 1 and the ways out of them, as (step, state it leaves the module in).
FLOW: list[tuple[str, Callable[[Module], object], ConnState]] = [
    ("boot", REACH[S.IDLE], S.IDLE),
    ("MCONFIG", lambda m: m.type("AT+MCONFIG=cid"), S.IDLE),
    ("MIPSTART", TRIGGER[E.MIPSTART], S.TCP_OPENING),
    ("TCP up", TRIGGER[E.TCP_OPENED], S.TCP_UP),
    ("MCONNECT", TRIGGER[E.MCONNECT], S.MQTT_CONNECTING),
    ("CONNACK", TRIGGER[E.CONNACK], S.MQTT_UP),
    ("MSUB", lambda m: m.type("AT+MSUB=a/b,0"), S.MQTT_UP),
    ("MPUB", lambda m: m.type("AT+MPUB=a/b,0,0,hi"), S.MQTT_UP),
    ("MDISCONNECT", TRIGGER[E.MDISCONNECT], S.MQTT_CLOSED),
    ("MIPCLOSE", TRIGGER[E.MIPCLOSE], S.IDLE),
    ("MIPSTART again", lambda m: (TRIGGER[E.MIPSTART](m), TRIGGER[E.TCP_OPENED](m)), S.TCP_UP),
    ("MCONNECT again", lambda m: (TRIGGER[E.MCONNECT](m), TRIGGER[E.CONNACK](m)), S.MQTT_UP),
    ("server drops", _drop, S.DROPPED),
    ("MIPCLOSE after the drop", TRIGGER[E.MIPCLOSE], S.IDLE),
]


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=lambda p: p.name)
def test_mqttstatu_in_every_state_the_flows_pass_through(profile: Profile) -> None:
    m = _module(profile)
    seen = set()
    for step, act, expected in FLOW:
        act(m)
        assert m.fw.state is expected, step
        status = _statu(m)
        assert status in GUIDE_STATUS[expected], step
        assert status == mqtt_status(expected, profile), step
        seen.add(expected)
    assert seen == set(ConnState)


def test_the_table_in_docs_simulator_md_is_the_codes() -> None:
    """docs/simulator.md draws `TRANSITIONS` as a matrix: it must say what the code does."""
    text = (Path(__file__).parent.parent / "docs" / "simulator.md").read_text()
    lines = text.split("| from \\ event |", 1)[1].split("\n\n", 1)[0].splitlines()
    header = [cell.strip(" `") for cell in lines[0].split("|")[:-1]]  # after "from \\ event"
    drawn = {}
    for row in lines[2:]:
        cells = [cell.strip(" `") for cell in row.split("|")[1:-1]]
        for name, cell in zip(header, cells[1:], strict=True):
            if cell != "—":
                drawn[ConnState[cells[0]], ConnEvent[name]] = ConnState[cell]
    assert [ConnEvent[name] for name in header] == list(ConnEvent)
    assert drawn == dict(TRANSITIONS)


def test_the_status_bug_touches_only_tcp_without_mqtt() -> None:
    """`mipstart_status_stays_0` (MIPSTART-1) hides the 2 of TCP_UP, not the 2 a profile
    gives after MDISCONNECT."""
    m = Module(Firmware(V32.without_latency(), time_scale=0.01, bugs=frozenset(
        {"mipstart_status_stays_0"})))
    m.connect_tcp()
    assert _statu(m) == 0
    TRIGGER[E.MCONNECT](m)
    TRIGGER[E.CONNACK](m)
    TRIGGER[E.MDISCONNECT](m)
    assert m.fw.state is S.MQTT_CLOSED and _statu(m) == V32.status_after_mdisconnect == 2



_SOCKET_EVENTS = {E.TCP_OPENED, E.TCP_FAILED, E.CONNACK, E.MCONNECT_FAILED, E.CONNECTION_LOST}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_no_bug_takes_the_firmware_out_of_its_table(bug: str) -> None:
    """A bug is a guarded branch inside a handler: it may change what the module says or
    skip a transition, never make an illegal one (a suite would catch it for the wrong
    reason)."""
    for start, event in EXPECTED:
        profile = PROFILE_FOR.get((start, event), V32)
        m = Module(Firmware(profile.without_latency(), time_scale=0.01, bugs=frozenset({bug})))
        try:
            REACH[start](m)
            if event in _SOCKET_EVENTS and m.fw.state is not start:
                continue  # the bug kept the module elsewhere: the host would not send this
            TRIGGER[event](m)
        except IllegalTransition as exc:
            pytest.fail(f"{bug} on the way to {start.name} + {event.name}: {exc}")
