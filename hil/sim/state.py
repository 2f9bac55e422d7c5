"""The simulated firmware's connection state: one enum, one transition table.

As h11's `_state.py`: the firmware never assigns a state; it fires an event, and the table
`TRANSITIONS` says where that event leads from the current state. An event the table does not
list for the current state is a bug of the model and raises `IllegalTransition` (the
firmware lets it propagate: a test fails on it, the host's log shows it). Losing RAM (power
off, a restart) is no transition: the firmware starts a new `Connection` at IDLE.

`mqtt_status` is what AT+MQTTSTATU prints in each state (STATU-1); the two states the guide
leaves open (after MDISCONNECT, after the server dropped us) take the value the profile gives.
"""

from __future__ import annotations

from enum import Enum
from types import MappingProxyType

from hil.sim.profiles import Profile


class ConnState(Enum):
    """Where the module's one TCP / MQTT connection stands."""

    IDLE = "idle"  # no connection (after boot, MIPCLOSE, a failure)
    TCP_OPENING = "tcp_opening"  # MIPSTART answered OK, the socket not open yet
    TCP_UP = "tcp_up"  # +MIPSTART: SUCCESS,0; no MQTT session
    MQTT_CONNECTING = "mqtt_connecting"  # MCONNECT answered OK, CONNACK not in yet
    MQTT_UP = "mqtt_up"  # +MCONNECT: SUCCESS,0
    MQTT_CLOSED = "mqtt_closed"  # MDISCONNECT done, TCP not closed by MIPCLOSE yet
    DROPPED = "dropped"  # the server or the link dropped an MQTT connection (MCONNECT-5)


class ConnEvent(Enum):
    """What moves the connection: a command, or an outcome from the network."""

    MIPSTART = "MIPSTART accepted: the socket is being opened"
    TCP_OPENED = "the socket is open (and the TLS handshake made at MIPSTART)"
    TCP_FAILED = "the socket could not be opened"
    MCONNECT = "MCONNECT accepted: CONNECT is on its way"
    CONNACK = "the broker accepted CONNECT"
    MCONNECT_FAILED = "CONNECT refused, CONNACK late, or the handshake made at MCONNECT failed"
    MDISCONNECT = "MDISCONNECT: DISCONNECT sent"
    CONNECTION_LOST = "the server or the link dropped the connection, or the idle drop"
    NETWORK_LOST = "detach or flight mode (AT+CGATT=0, AT+CFUN=0/4)"
    MIPCLOSE = "MIPCLOSE: the socket is let go"


S, E = ConnState, ConnEvent

#: (state, event) → new state. Every state change of the firmware is one of these.
TRANSITIONS: MappingProxyType[tuple[ConnState, ConnEvent], ConnState] = MappingProxyType(
    {
        # 2.2 MIPSTART: from no connection, or from one MQTTSTATU already reports as 0
        (S.IDLE, E.MIPSTART): S.TCP_OPENING,
        (S.MQTT_CLOSED, E.MIPSTART): S.TCP_OPENING,
        (S.DROPPED, E.MIPSTART): S.TCP_OPENING,
        (S.TCP_OPENING, E.TCP_OPENED): S.TCP_UP,
        (S.TCP_OPENING, E.TCP_FAILED): S.IDLE,
        # 2.3 MCONNECT
        (S.TCP_UP, E.MCONNECT): S.MQTT_CONNECTING,
        (S.MQTT_CONNECTING, E.CONNACK): S.MQTT_UP,
        (S.MQTT_CONNECTING, E.MCONNECT_FAILED): S.IDLE,
        # 2.8 MDISCONNECT
        (S.MQTT_UP, E.MDISCONNECT): S.MQTT_CLOSED,
        # dropped by the server or the link (a close, a bad packet, no PINGRESP) or by the
        # module (the idle drop): only an MQTT connection leaves a trace in MQTTSTATU
        (S.TCP_UP, E.CONNECTION_LOST): S.IDLE,
        (S.MQTT_CONNECTING, E.CONNECTION_LOST): S.IDLE,
        (S.MQTT_UP, E.CONNECTION_LOST): S.DROPPED,
        # detach or flight mode: whatever stands is gone
        **{(state, E.NETWORK_LOST): S.IDLE for state in S if state is not S.IDLE},
        # 2.9 MIPCLOSE: always answered SUCCESS, from every state
        **{(state, E.MIPCLOSE): S.IDLE for state in S},
    }
)

del S, E


class IllegalTransition(Exception):
    """An event the current state does not allow: the model is wrong, never the module."""


class Connection:
    """The current `ConnState`, moved only through `TRANSITIONS`."""

    def __init__(self) -> None:
        self.state = ConnState.IDLE

    def fire(self, event: ConnEvent) -> ConnState:
        try:
            self.state = TRANSITIONS[self.state, event]
        except KeyError:
            raise IllegalTransition(
                f"{event.name} is not allowed in {self.state.name}: see TRANSITIONS in "
                "hil/sim/state.py"
            ) from None
        return self.state


def mqtt_status(state: ConnState, profile: Profile) -> int:
    """AT+MQTTSTATU in `state` (STATU-1): 0 no connection, 1 MQTT connected, 2 TCP up
    without MQTT; after MDISCONNECT (MDISCONNECT-1) and a drop (MCONNECT-5) the profile's."""
    match state:
        case ConnState.MQTT_UP:
            return 1
        case ConnState.TCP_UP | ConnState.MQTT_CONNECTING:
            return 2
        case ConnState.MQTT_CLOSED:
            return profile.status_after_mdisconnect
        case ConnState.DROPPED:
            return profile.status_after_drop
    return 0
