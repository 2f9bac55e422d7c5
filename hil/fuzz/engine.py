"""Running a fuzz case and judging it: the oracles.

A case runs on a fresh module (a power cycle before each case: a hang or a crash of one case
does not leak into the next). After every step the oracles are asked:

- **final answer**: every command gets its final code within its bound, and its result URC
  (MCONFIG, MIPSTART, MCONNECT, MSUB, MUNSUB, MPUB, MPUBEX, MDISCONNECT, MIPCLOSE) too, also
  when the next commands went out while it was pending;
- **AT answers**: `AT` still gets `OK`;
- **no restart**: no RDY / Call Ready (no step asks for a restart);
- **MQTTSTATU**: says 1 exactly when the broker has the module connected;
- **no message lost**: every publish the module acknowledged (`+MPUB: SUCCESS`,
  `+MPUBEX: SUCCESS`) reached the broker with its topic and payload, and every message the
  module took (a QoS 0 message that reached it while connected, a QoS 1 or 2 message it
  acknowledged) was reported (`+MSUB: <topic>,...` or `+MSUB: <n>`).

The target here is the virtual bench (hil/sim/virtual.py): the firmware model with its
bugs, an in-memory broker, a virtual clock; bounds are in device seconds and cost nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from hil.at.framer import Framer, Line, Prompt
from hil.fuzz.grammar import Case, Command, Data, PeerPublish, Step, command_name
from hil.l506.types import MSUB_COUNTED, parse_msub
from hil.sim.profiles import Profile
from hil.sim.virtual import VirtualModule

if TYPE_CHECKING:
    from hil.fuzz.port import PortModule

#: A final result code: OK, or a refusal (ERROR, or +CME ERROR: <n> as 3GPP TS 27.007 words it)
_FINAL = re.compile(rb"(?:OK|ERROR|\+CME ERROR: ?\d+)[ \t]*\Z")
_RESULT = re.compile(rb"\+ ?([A-Z]+): ?(SUCCESS|FAILURE)(?:,(\d+))?[ \t]*\Z")
_STATU = re.compile(rb"\+ ?MQTTSTATU: ?(\d+)")
_BOOT = re.compile(rb"RDY|Call Ready")
_WITH_RESULT = frozenset({"MCONFIG", "MIPSTART", "MCONNECT", "MSUB", "MUNSUB", "MPUB",
                          "MPUBEX", "MDISCONNECT", "MIPCLOSE"})
#: Device seconds a command may take for its whole answer (hil/l506/api.py Timeouts, less
#: the cellular margins: the virtual network answers in milliseconds).
BOUND_S = 20.0
AT_BOUND_S = 5.0


@dataclass(frozen=True)
class Violation:
    """What an oracle saw: which one, what, at which step of the whole sequence."""

    oracle: str
    detail: str
    step: int


class _Stop(Exception):
    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.detail)
        self.violation = violation


@dataclass
class _Command:
    """The command in flight."""

    name: str
    text: str
    final: bytes | None = None
    result: bytes | None = None
    prompt: bool = False
    echo: bool = False
    info: list[bytes] = field(default_factory=list)


class CaseRun:
    """One case on a freshly started module (a virtual one by default, or a `PortModule`);
    `run()` returns the first violation or None."""

    def __init__(self, profile: Profile, bugs: frozenset[str],
                 module: VirtualModule | PortModule | None = None) -> None:
        self.module = VirtualModule(profile, bugs) if module is None else module
        #: a command's bound in seconds of this module's clock: device seconds, scaled on a
        #: port whose simulator runs its own timeouts faster (`PortModule.time_scale`)
        self.bound = BOUND_S * getattr(self.module, "time_scale", 1.0)
        self.module.power_on()
        self.module.read()
        self.framer = Framer((MSUB_COUNTED,))
        self.current: _Command | None = None
        self.owed: list[tuple[str, float, int]] = []  # result URCs owed: name, deadline, step
        #: publishes the module said it sent: topic, payload, and the command's name (open
        #: points leave some of the payload to the firmware: `readings`)
        self.acked: list[tuple[str, bytes, str]] = []
        self._unacked: list[tuple[str, str, bytes]] = []  # (command, topic, payload) pending
        self.reports = 0
        self.data_left: int | None = None  # bytes MPUBEX still waits for
        self._data_topic = ""
        self._data = bytearray()
        self.index = 0
        self.covered: Counter[tuple[str, str]] = Counter()

    # ------------------------------------------------------------ running

    def run(self, case: Case) -> Violation | None:
        try:
            for self.index, step in enumerate(case.lines()):
                self._step(step)
                self._check()
            self._settle_owed()
            self._check()
        except _Stop as stop:
            return stop.violation
        return None

    def _fail(self, oracle: str, detail: str) -> NoReturn:
        raise _Stop(Violation(oracle, detail, self.index))

    def _step(self, step: Step) -> None:
        if isinstance(step, PeerPublish):
            self.module.peer_publish(step.topic, step.payload.encode(), step.qos)
            self._advance(0.05)
            return
        if isinstance(step, Command):
            self._note_coverage(step)
        if self.data_left is not None:  # whatever comes now is MPUBEX data
            self._send_data(step.raw)
            return
        if isinstance(step, Data):
            return  # MPUBEX was refused: there is no prompt to answer
        self._command(step)

    def _note_coverage(self, step: Command) -> None:
        if "setup" in step.classes:
            return
        for cls in step.classes or ("-",):
            self.covered[(step.name, cls)] += 1

    def _connection_ended(self) -> None:
        """Results pending on a connection that ended are not owed any more (the firmware
        may drop them), nor are publishes still unacknowledged."""
        self.owed.clear()
        self._unacked.clear()

    def _command(self, step: Command) -> None:
        name = step.name
        if name in ("MIPCLOSE", "MDISCONNECT"):
            self._connection_ended()
        self.current = _Command(name, step.line.strip())
        if name == "MPUBEX":
            self.framer.expect_prompt = True
        self.module.send(step.raw)
        self._take()
        self._advance(self.bound, until=lambda: self._answered(step.wait))
        cmd = self.current
        if not self._answered(step.wait):
            self._fail("final answer", f"{step.line!r} got no "
                       + ("final code" if cmd.final is None and not cmd.prompt else
                          "result URC") + f" within {self.bound:g} s")
        if cmd.prompt:
            self._open_data(step)
            return
        self._finish(cmd, step)

    def _answered(self, wait: bool) -> bool:
        cmd = self.current
        if cmd is None:
            return True
        if cmd.prompt:
            return True
        if cmd.final is None:
            return False
        if cmd.name not in _WITH_RESULT or not cmd.final.startswith(b"OK"):
            return True  # a refusal has no result URC to wait for
        return cmd.result is not None or not wait

    def _finish(self, cmd: _Command, step: Command) -> None:
        self.current = None
        if cmd.name in _WITH_RESULT and cmd.final is not None and cmd.final.startswith(b"OK") \
                and cmd.result is None:
            self.owed.append((cmd.name, self.module.now + self.bound, self.index))
        if cmd.name == "MPUB" and cmd.final is not None and cmd.final.startswith(b"OK"):
            self._published("MPUB", *_mpub_message(step.line), cmd.result)

    def _open_data(self, step: Command) -> None:
        self.data_left = int(step.line.rsplit(",", 1)[-1].strip())
        self._data_topic = step.line.split("=", 1)[1].split(",", 1)[0].strip()
        self._data = bytearray()

    def _send_data(self, raw: bytes) -> None:
        assert self.data_left is not None and self.current is not None
        take, rest = raw[: self.data_left], raw[self.data_left :]
        self._data += take
        self.data_left -= len(take)
        cmd = self.current
        if self.data_left == 0:  # what answers now answers the data
            cmd.final, cmd.result, cmd.prompt = None, None, False
        self.module.send(take)
        self._take()
        if self.data_left == 0:
            self.data_left = None
            self._advance(self.bound, until=lambda: self._answered(True))
            if cmd.final is None:
                self._fail("final answer", f"MPUBEX data of {len(self._data)} bytes got no "
                           f"final code within {self.bound:g} s")
            self.current = None
            if cmd.final.startswith(b"OK"):
                self._published("MPUBEX", self._data_topic, bytes(self._data), cmd.result)
                if cmd.result is None:
                    self.owed.append(("MPUBEX", self.module.now + self.bound, self.index))
            text = rest.decode("latin-1").rstrip("\r")
            if text.strip():  # the rest of the bytes is a command line of its own
                self._command(Command(command_name(text), text, ("data",)))
            elif rest:
                self.module.send(rest)
        else:
            self._advance(0.01)

    def _wait_data_timeout(self) -> None:
        """MPUBEX data left short: the module must give up with a final code."""
        cmd = self.current
        assert cmd is not None
        cmd.final, cmd.prompt = None, False
        self._unacked = [u for u in self._unacked if u[0] != "MPUBEX"]
        self._advance(self.bound, until=lambda: cmd.final is not None)
        if cmd.final is None:
            self._fail("final answer", f"MPUBEX waiting for {self.data_left} more bytes never "
                       f"gave up within {self.bound:g} s")
        self.data_left = None
        self.current = None

    # ------------------------------------------------------------ reading the module

    def _advance(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        module = self.module
        end = module.now + seconds
        while module.now < end:
            if until is not None and until():
                return
            nxt = module.next_event()
            module.advance(min(end, nxt) - module.now if nxt is not None else end - module.now)
            self._take()

    def _take(self) -> None:
        for event in self.framer.feed(self.module.read(), 0):
            self._event(event)

    def _event(self, event: Line | Prompt) -> None:
        if isinstance(event, Prompt):
            if self.current is not None:
                self.current.prompt = True
            return
        self._line(event)

    def _line(self, line: Line) -> None:
        raw = line.raw.rstrip(b" \t")
        cmd = self.current
        if cmd is not None and not cmd.echo and cmd.final is None and line.text.strip() \
                .casefold() == cmd.text.casefold():
            cmd.echo = True
            return
        if _BOOT.match(raw):
            self._fail("no restart", f"the module restarted by itself ({line.text!r})")
        if cmd is not None and cmd.final is None and _FINAL.match(raw):
            cmd.final = raw
            return
        m = _RESULT.match(raw)
        if m is not None:
            name = m.group(1).decode()
            if cmd is not None and cmd.name == name and cmd.result is None:
                cmd.result = raw
                return
            for i, (owed, _, _) in enumerate(self.owed):
                if owed == name:
                    del self.owed[i]
                    self._result(raw)
                    return
            if name == "MCONNECT" and m.group(2) == b"FAILURE":
                self._connection_ended()  # the connection dropped
            return
        if raw.startswith(b"+MSUB:"):
            if cmd is not None and cmd.name == "MQTTMSGGET" and cmd.final is None:
                cmd.info.append(raw)
                return
            self._report(line)
            return
        if cmd is not None and cmd.final is None:
            cmd.info.append(raw)

    def _published(self, name: str, topic: str, payload: bytes, result: bytes | None) -> None:
        """A publish command was taken (OK): acknowledged now, or its result is owed."""
        if result is None:
            self._unacked.append((name, topic, payload))
        elif b"SUCCESS" in result:
            self.acked.append((topic, payload, name))

    def _result(self, raw: bytes) -> None:
        """An owed result URC of a publish. Results carry no id and QoS 2 takes longer than
        QoS 1, so a SUCCESS is given to a pending publish the broker did receive (if none
        did, to the oldest: the message oracle then reports it), a FAILURE to one it did
        not."""
        m = _RESULT.match(raw)
        assert m is not None
        name = m.group(1).decode()
        candidates = [i for i, u in enumerate(self._unacked) if u[0] == name]
        if name not in ("MPUB", "MPUBEX") or not candidates:
            return
        received = Counter((p.topic, bytes(p.payload)) for p in self.module.broker.received)
        received.subtract(Counter((topic, payload) for topic, payload, _ in self.acked))
        success = m.group(2) == b"SUCCESS"
        chosen = next((i for i in candidates
                       if (received[self._unacked[i][1:]] > 0) == success), candidates[0])
        _, topic, payload = self._unacked.pop(chosen)
        if success:
            self.acked.append((topic, payload, name))

    def _report(self, line: Line) -> None:
        try:
            parse_msub(line.raw)
        except ValueError:
            self._fail("message lost", f"a malformed report {line.text[:60]!r}")
        self.reports += 1

    # ------------------------------------------------------------ oracles

    def _check(self) -> None:
        if self.data_left is not None:
            return  # the module waits for data: nothing else may be sent now
        now = self.module.now
        for name, deadline, step in self.owed:
            if deadline <= now:
                self.index = step
                self._fail("final answer", f"{name}'s result URC never came")
        if self.owed:
            return  # results pending: state is in flux
        self._settle()
        self._ask_at()
        self._ask_status()
        self._messages()

    def _settle(self) -> None:
        """Let the network deliver what is in flight (bounded)."""
        self._advance(1.0, until=lambda: self.module.network_idle)

    def _settle_owed(self) -> None:
        if self.data_left is not None:
            self._wait_data_timeout()
        self._advance(self.bound, until=lambda: not self.owed)

    def _ask(self, text: str, bound: float) -> _Command:
        cmd = self.current = _Command(text.split("+")[-1] if "+" in text else "AT", text)
        self.module.send(text.encode() + b"\r")
        self._take()
        self._advance(bound, until=lambda: cmd.final is not None)
        self.current = None
        return cmd

    def _ask_at(self) -> None:
        if self._ask("AT", AT_BOUND_S).final != b"OK":
            self._fail("AT answers", "AT no longer answers OK")

    def _ask_status(self) -> None:
        cmd = self._ask("AT+MQTTSTATU", AT_BOUND_S)
        status = next((int(m.group(1)) for x in cmd.info if (m := _STATU.match(x))), None)
        if status is None:
            self._fail("MQTTSTATU", f"AT+MQTTSTATU gave no status ({cmd.info!r})")
        connected = self.module.broker.connected
        if (status == 1) != connected:
            self._fail("MQTTSTATU", f"MQTTSTATU says {status} while the broker has the module "
                       f"{'connected' if connected else 'not connected'}")

    def _messages(self) -> None:
        received = Counter((p.topic, bytes(p.payload)) for p in self.module.broker.received)
        for topic, payload, name in self.acked:
            key = (topic, payload)
            if received[key] <= 0:  # the message as another reading of the guide has it
                allowed = readings(name, payload)
                key = next((k for k, n in received.items() if n > 0 and k[0] == topic
                            and k[1] in allowed), key)
            if received[key] <= 0:
                self._fail("message lost", f"acknowledged publish on {topic!r} of "
                           f"{len(payload)} bytes never reached the broker")
            received[key] -= 1
        handed = len(self.module.taken())
        if self.reports != handed:
            self._fail("message lost", f"the module took {handed} messages from the broker, it "
                       f"reported {self.reports}")


def readings(command: str, payload: bytes) -> frozenset[bytes]:
    """What the broker may get for `payload` as each reading of the guide's open points has
    it. MPUB: the blanks around the message may be trimmed (at the line's end, or as a
    parameter's), and commas in the message may end it (MPUB-5); MPUBEX: the data is
    binary-safe, or CR and LF bytes are the line's, not the message's (MPUBEX-3)."""
    if command == "MPUB":
        blanks = b" \t"
        ends = (payload, payload.split(b",", 1)[0])
        return frozenset(p for end in ends for p in (end, end.rstrip(blanks),
                                                     end.lstrip(blanks), end.strip(blanks)))
    return frozenset({payload, payload.replace(b"\n", b""),
                      payload.replace(b"\r", b"").replace(b"\n", b"")})


def _mpub_message(line: str) -> tuple[str, bytes]:
    """Topic and message of an MPUB line as the guide defines them (MPUB-5: the message is
    everything after the third comma; parameters' leading spaces are not theirs, GEN-5)."""
    args = line.split("=", 1)[1] if "=" in line else ""
    parts = args.encode("utf-8").split(b",", 3)
    topic = parts[0].strip().decode("utf-8", "replace")
    return topic, parts[3] if len(parts) == 4 else b""
