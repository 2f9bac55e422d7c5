"""The MQTT command set as a grammar of parameter classes, and hypothesis strategies over it.

Each parameter of each command (guide chapter 2) has classes of values: the first ones valid
(with the boundary values: the 64-character topic, the 1360-byte MPUBEX), then malformed ones
(over a limit, empty, a quote, a non-ASCII byte, a comma, a TAB). A command step picks a class
per parameter and may then be malformed as a whole (a missing field, an extra one, spaces,
lower case). Hypothesis shrinks towards the first class of every choice, so a finding shrinks
to valid values wherever the bug does not need a malformed one.

A case is a set-up (nothing, TCP open, MQTT connected, MQTT connected and subscribed) and a
list of steps: command lines (sent and awaited, or sent without waiting for the result URC so
the next one goes while it is pending), MPUBEX data after the prompt (of the announced length,
shorter, longer, with line ends, with a message from the broker arriving meanwhile), and
publishes from the broker side.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hypothesis import strategies as st

Values = tuple[tuple[str, str], ...]  # (class, value); the valid classes first
#: Classes of values the guide allows (boundaries included); all others are malformed.
VALID: frozenset[str] = frozenset({"valid", "wildcard", "max-64", "max-23", "long", "zero",
                                   "min", "max", "name", "empty-message", "commas",
                                   "max-256", "max-1360"})

TOPIC: Values = (
    ("valid", "a/b"), ("valid", "t"), ("wildcard", "a/+"), ("wildcard", "#"),
    ("max-64", "m" * 64), ("over-65", "o" * 65), ("empty", ""), ("space", "a b"),
    ("non-ascii", "é/ü"), ("quote", '"q'), ("comma", "a,b"), ("tab", "a\tb"),
    ("bad-filter", "a/#/b"),
)
QOS: Values = (("valid", "0"), ("valid", "1"), ("valid", "2"), ("over", "3"), ("negative", "-1"),
               ("text", "x"), ("empty", ""))
FLAG: Values = (("valid", "0"), ("valid", "1"), ("over", "2"), ("text", "x"), ("empty", ""))
KEEPALIVE: Values = (("valid", "30"), ("zero", "0"), ("min", "1"), ("max", "65535"),
                     ("over", "65536"), ("negative", "-1"), ("text", "x"), ("empty", ""))
HOST: Values = (("valid", "127.0.0.1"), ("name", "broker.local"), ("empty", ""),
                ("quote", '"h"'), ("non-ascii", "é"))
PORT: Values = (("valid", "1883"), ("max", "65535"), ("zero", "0"), ("over", "65536"),
                ("text", "x"), ("empty", ""))
CLIENT_ID: Values = (("valid", "c1"), ("max-23", "c" * 23), ("long", "c" * 128), ("empty", ""),
                     ("quote", '"c'), ("non-ascii", "ç"), ("tab", "c\t1"))
MESSAGE: Values = (("valid", "x"), ("empty-message", ""), ("commas", "a,b, c"),
                   ("max-256", "m" * 256), ("over-257", "o" * 257), ("quote", 'say "hi'),
                   ("non-ascii", "é"), ("tab", "a\tb"))
LENGTH: Values = (("valid", "5"), ("min", "1"), ("max-1360", "1360"), ("zero", "0"),
                  ("over-1361", "1361"), ("text", "x"), ("empty", ""))
SLOT: Values = (("valid", "0"), ("valid", "3"), ("over", "4"), ("negative", "-1"), ("text", "x"))
SWITCH: Values = (("valid", "0"), ("valid", "1"), ("over", "2"), ("text", "x"), ("empty", ""))

#: The commands and their parameters; None: no `=` form.
COMMANDS: dict[str, tuple[tuple[str, Values], ...] | None] = {
    "MQTTSTATU": None,
    "MCONFIG": (("clientid", CLIENT_ID),),
    "MIPSTART": (("host", HOST), ("port", PORT)),
    "MCONNECT": (("clean", FLAG), ("keepalive", KEEPALIVE)),
    "MSUB": (("topic", TOPIC), ("qos", QOS)),
    "MUNSUB": (("topic", TOPIC),),
    "MPUB": (("topic", TOPIC), ("qos", QOS), ("retain", FLAG), ("message", MESSAGE)),
    "MPUBEX": (("topic", TOPIC), ("qos", QOS), ("retain", FLAG), ("length", LENGTH)),
    "MDISCONNECT": None,
    "MIPCLOSE": None,
    "MQTTSSL": (("action", SWITCH),),
    "MQTTMSGSET": (("mode", SWITCH),),
    "MQTTMSGGET": (("n", SLOT),),
    "MQTTCEER": None,
    "AT": None,
}
#: Malformations of a whole command line (the first: none).
SHAPES: tuple[str, ...] = ("as-is", "missing-field", "extra-field", "spaces", "lower-case",
                           "no-value")

#: The broker address the cases dial; a port's module is given its broker's instead.
BROKER = "127.0.0.1,1883"
Setup = Literal["none", "tcp", "mqtt", "subscribed"]
SETUPS: tuple[Setup, ...] = ("none", "tcp", "mqtt", "subscribed")
SETUP_LINES: dict[str, tuple[str, ...]] = {
    "none": (),
    "tcp": ("AT+MCONFIG=c1", f"AT+MIPSTART={BROKER}"),
    "mqtt": ("AT+MCONFIG=c1", f"AT+MIPSTART={BROKER}", "AT+MCONNECT=1,30"),
    "subscribed": ("AT+MCONFIG=c1", f"AT+MIPSTART={BROKER}", "AT+MCONNECT=1,30",
                   "AT+MSUB=a/b,1"),
}
DATA_SHAPES: tuple[str, ...] = ("exact", "with-line-ends", "short", "long", "at-command")


@dataclass(frozen=True)
class Command:
    """An AT command line (without its CR). `wait`: wait for its result URC before the next
    step; otherwise only for its final code, so the next step goes while it is pending."""

    name: str
    line: str
    classes: tuple[str, ...] = ()
    wait: bool = True
    kind: Literal["command"] = "command"

    @property
    def raw(self) -> bytes:
        return self.line.encode("utf-8") + b"\r"


@dataclass(frozen=True)
class Data:
    """Raw bytes after an MPUBEX prompt; `shape` says how they relate to `<len>`."""

    data: str  # Latin-1 text of the bytes, as in a session file
    shape: str = "exact"
    kind: Literal["data"] = "data"

    @property
    def raw(self) -> bytes:
        return self.data.encode("latin-1")


@dataclass(frozen=True)
class PeerPublish:
    """Another client publishes on the broker (delivered if the module subscribed)."""

    topic: str
    payload: str
    qos: int = 0
    kind: Literal["peer"] = "peer"


Step = Command | Data | PeerPublish


@dataclass(frozen=True)
class Case:
    setup: Setup
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def lines(self) -> list[Step]:
        """The whole sequence: the set-up's commands, then the steps."""
        head: list[Step] = [Command(command_name(line), line, ("setup",))
                            for line in SETUP_LINES[self.setup]]
        return head + list(self.steps)

    @property
    def command_count(self) -> int:
        return sum(isinstance(s, Command) for s in self.lines())

    def to_json(self) -> str:
        return json.dumps({"setup": self.setup, "steps": [asdict(s) for s in self.steps]},
                          indent=1)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Case:
        kinds = {"command": Command, "data": Data, "peer": PeerPublish}
        steps = []
        for item in record["steps"]:
            item = dict(item)
            if "classes" in item:
                item["classes"] = tuple(item["classes"])
            steps.append(kinds[item["kind"]](**item))
        return cls(record["setup"], tuple(steps))


def command_name(line: str) -> str:
    """`AT+MPUB=...` → MPUB; a basic command → AT."""
    body = line[3:] if line[:3].upper() == "AT+" else "AT"
    for sep in "=?":
        body = body.split(sep, 1)[0]
    return body.upper() or "AT"


def _shape(line: str, params: list[str], shape: str) -> str:
    head = line.split("=", 1)[0]
    if shape == "missing-field" and params:
        return head + "=" + ",".join(params[:-1])
    if shape == "extra-field" and params:
        return head + "=" + ",".join([*params, "1"])
    if shape == "spaces" and params:
        return head + "= " + ", ".join(params)
    if shape == "lower-case":
        return line.lower()
    if shape == "no-value":
        return head + "="
    return line


# Strategies are built once: hypothesis validates each new strategy object on first use.
_BOOL = st.booleans()
_NAMES = st.sampled_from(tuple(COMMANDS))
_SHAPES = st.sampled_from(SHAPES[:1] * 4 + SHAPES)  # a whole line malformed: 1 in 3
_PLAIN_SHAPES = st.sampled_from(("as-is", "lower-case"))
_AS_IS = st.just("as-is")


def _choices(values: Values, malformed: bool) -> st.SearchStrategy[tuple[str, str]]:
    return st.sampled_from(values if malformed else tuple(v for v in values if v[0] in VALID))


_VALUES = {(name, malformed): tuple(_choices(values, malformed) for _, values in spec)
           for name, spec in COMMANDS.items() if spec is not None for malformed in (False, True)}


@st.composite
def commands(draw: st.DrawFn, malformed: bool = True) -> Command:
    """A command line; without `malformed`, only valid values and whole lines."""
    name = draw(_NAMES)
    spec = COMMANDS[name]
    if spec is None:
        line = "AT" if name == "AT" else f"AT+{name}"
        shape = draw(_PLAIN_SHAPES if malformed else _AS_IS)
        return Command(name, _shape(line, [], shape), wait=not draw(_BOOL))
    chosen = [draw(values) for values in _VALUES[(name, malformed)]]
    params = [value for _, value in chosen]
    classes = [f"{pname}:{cls}" for (pname, _), (cls, _) in zip(spec, chosen, strict=True)]
    shape = draw(_SHAPES if malformed else _AS_IS)
    line = _shape(f"AT+{name}=" + ",".join(params), params, shape)
    if shape != "as-is":
        classes.append(f"shape:{shape}")
    wait = not draw(_BOOL)  # shrinks to waiting
    return Command(name, line, tuple(classes), wait=wait)


_DATA_SHAPES = st.sampled_from(DATA_SHAPES)
_SMALL_DATA = st.binary(min_size=1, max_size=64)


@st.composite
def mpubex_data(draw: st.DrawFn, length: int) -> tuple[Step, ...]:
    """What follows an MPUBEX line: its data, maybe a message from the broker first."""
    shape = draw(_DATA_SHAPES)
    seed = draw(_SMALL_DATA)
    body = (seed * (length // len(seed) + 1))[:length]
    if shape == "with-line-ends" and length >= 2:
        body = b"\r\n" + body[2:]
    elif shape == "short":
        body = body[:-1]
    elif shape == "long":
        body += b"AT\r"
    elif shape == "at-command":
        body = (b"AT\r" + body)[:length]
    steps: list[Step] = []
    if draw(_BOOL):
        steps.append(draw(_PEER))
    steps.append(Data(body.decode("latin-1"), shape))
    return tuple(steps)


_PEER = st.builds(lambda topic, size, qos: PeerPublish(topic, "p" * size, qos),
                  st.sampled_from(("a/b", "t", "z")), st.sampled_from((1, 0, 1360, 1361)),
                  st.sampled_from((0, 1, 2)))
_ONE_IN_TEN = st.integers(0, 9)
_COMMANDS = {malformed: commands(malformed) for malformed in (False, True)}


@st.composite
def steps(draw: st.DrawFn, malformed: bool = True) -> tuple[Step, ...]:
    if draw(_ONE_IN_TEN) == 9:
        return (draw(_PEER),)
    command = draw(_COMMANDS[malformed])
    if command.name != "MPUBEX":
        return (command,)
    try:
        length = int(command.line.rsplit(",", 1)[-1])
    except ValueError:
        return (command,)
    if not 0 < length <= 1361:
        return (command,)
    return (command, *draw(_MPUBEX_DATA.setdefault(length, mpubex_data(length))))


_MPUBEX_DATA: dict[int, st.SearchStrategy[tuple[Step, ...]]] = {}
_STEPS = {malformed: steps(malformed) for malformed in (False, True)}


def cases(max_steps: int = 8, *, malformed: bool = True) -> st.SearchStrategy[Case]:
    """A set-up, then 1 to `max_steps` steps (an MPUBEX brings its data along); without
    `malformed`, valid values only (boundaries included)."""
    return st.builds(lambda setup, groups: Case(setup, tuple(s for g in groups for s in g)),
                     st.sampled_from(SETUPS),
                     st.lists(_STEPS[malformed], min_size=1, max_size=max_steps))


def coverage_cells() -> set[tuple[str, str]]:
    """Every (command, parameter class) the grammar can produce."""
    cells = set()
    for name, spec in COMMANDS.items():
        if spec is None:
            cells.add((name, "-"))
            continue
        for pname, values in spec:
            cells.update((name, f"{pname}:{cls}") for cls, _ in values)
        cells.update((name, f"shape:{s}") for s in SHAPES[1:])
    return cells
