"""Check a recorded session against a simulator profile: where does the module differ?

Each thing the client sent in the recording (hil/trace/session.py `exchanges`) is sent to the
firmware model with the profile, on a virtual bench (hil/sim/virtual.py), with the
recorded time until the client's next bytes allowed to pass; the lines that answered it
are compared with the recorded ones. Unsolicited lines (a message report, a dropped
connection, a boot) come when the network brings them, not at a command: they are compared
as one sequence over the whole session. A server the recorded module could not reach
(MIPSTART failed with 5) is unreachable on the virtual bench too; every other server stands
for the virtual broker, so a recording made against any broker checks the same
(`hil replay --check`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from hil.at.framer import Framer, Line
from hil.l506.types import MSUB_COUNTED
from hil.sim.profiles import Profile
from hil.sim.virtual import VirtualModule
from hil.trace.session import Exchange, Session

#: Device time an exchange gets at most: enough for every network result, short of the
#: 60 s idle drop (a recording that waited that long records that wait and gets it).
_MAX_WAIT_S = 30.0


@dataclass(frozen=True)
class Difference:
    """Exchange `index` (from 1; 0: the unsolicited lines) answered differently: the lines
    only one side has."""

    index: int
    t: float
    sent: bytes
    module: list[str]
    profile: list[str]

    def render(self, profile: str) -> str:
        head = f"#{self.index} at {self.t:.3f} s, sent {self.sent.decode('latin-1')!r}:"
        rows = [f"    module:  {line!r}" for line in self.module]
        rows += [f"    {profile}: {line!r}" for line in self.profile]
        return "\n".join([head, *rows])


#: Lines the module sends on its own: `+MSUB: <topic>,<len> bytes,...` or `+MSUB: <n>`, a
#: dropped connection, a boot.
_UNSOLICITED = re.compile(r"\+ ?MSUB: ?(?:\d+\s*$|.*?,\d+ bytes,)|\+ ?MCONNECT: ?FAILURE,1\s*$"
                          r"|RDY$|Call Ready$", re.DOTALL)


def _lines(data: bytes, unsolicited: list[str]) -> list[str]:
    """The answer's lines; unsolicited ones go to `unsolicited` instead."""
    answer: list[str] = []
    for event in Framer((MSUB_COUNTED,)).feed(data + b"\r\n", 0):
        if isinstance(event, Line):
            (unsolicited if _UNSOLICITED.match(event.text) else answer).append(event.text)
    return answer


def _diff(a: list[str], b: list[str]) -> tuple[list[str], list[str]]:
    """The lines only `a` has, and those only `b` has."""
    only_a: list[str] = []
    only_b: list[str] = []
    for tag, a0, a1, b0, b1 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
            only_a += a[a0:a1]
            only_b += b[b0:b1]
    return only_a, only_b


_MIPSTART = re.compile(rb"AT\+MIPSTART= ?([^,]*), ?(\d+)\s*\Z", re.IGNORECASE)
_UNREACHABLE = re.compile(rb"\+ ?MIPSTART: ?FAILURE,5\b")


def _unreachable(exchanges: list[Exchange]) -> set[tuple[str, int]]:
    """The servers the recorded module could not connect to: the network as it was."""
    servers = set()
    for exchange in exchanges:
        m = _MIPSTART.match(exchange.sent.strip())
        if m is not None and _UNREACHABLE.search(exchange.answer):
            servers.add((m.group(1).decode("latin-1"), int(m.group(2))))
    return servers


def check_session(session: Session, profile: Profile) -> tuple[int, list[Difference]]:
    """Play the session's client side to `profile`; (exchanges played, differences)."""
    exchanges = session.exchanges()
    unreachable = _unreachable(exchanges)
    module = VirtualModule(profile, reachable=lambda host, port: (host, port) not in unreachable)
    module.power_on()
    module.read()
    differences: list[Difference] = []
    urcs_module: list[str] = []
    urcs_profile: list[str] = []
    for i, exchange in enumerate(exchanges):
        module.send(exchange.sent)
        after = exchanges[i + 1].t if i + 1 < len(exchanges) else exchange.t + _MAX_WAIT_S
        module.advance(min(_MAX_WAIT_S, max(0.05, after - exchange.t)))
        recorded = _lines(exchange.answer, urcs_module)
        simulated = _lines(module.read(), urcs_profile)
        if recorded != simulated:
            differences.append(Difference(i + 1, exchange.t, exchange.sent.rstrip(b"\r\n"),
                                          *_diff(recorded, simulated)))
    if urcs_module != urcs_profile:
        differences.append(Difference(0, 0.0, b"(unsolicited lines, whole session)",
                                      *_diff(urcs_module, urcs_profile)))
    return len(exchanges), differences
