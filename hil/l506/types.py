"""Values, limits and line shapes of the L506 MQTT AT command set (user guide V3.2).

Parsers accept what the guide prints in its different places (GEN-2: a space or none after
the colon, `+ MIPCLOSE: SUCCESS`), so the harness judges the firmware, not its own regexes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from hil.at.framer import CountedLine, Line

TOPIC_MAX = 64  # MPUB-2, MSUB-3
MPUB_MESSAGE_MAX = 256  # MPUB-2
MPUBEX_MESSAGE_MAX = 1360  # MPUBEX-2
MSUB_MESSAGE_MAX = 1360  # MSUB-3: longer messages are cut to this
SLOTS = 4  # MSUB-4/5: manual-mode message store


class ResultType(IntEnum):
    """`<result type>` of a result URC (GEN-4, guide section 2.1)."""

    NO_ERROR = 0
    CONNECTION_BROKEN = 1
    BAD_PARAMETER = 2
    NETWORK_ACTIVATION_FAILED = 3
    SOCKET_CREATION_FAILED = 4
    SERVER_CONNECT_FAILED = 5
    MQTT_CONNECT_FAILED = 6
    OLD_CONNECTION_NOT_CLOSED = 7
    SSL_HANDSHAKE_FAILED = 8


class MqttStatus(IntEnum):
    """`+MQTTSTATU: <n>` (STATU-1)."""

    NO_CONNECTION = 0
    MQTT_CONNECTED = 1
    TCP_CONNECTED = 2


# `+NAME: SUCCESS|FAILURE[,<type>]`; whole line, so `+MSUB: SUCCESS,5 bytes,x` (a message
# on a topic named SUCCESS) is not a result.
_RESULT = re.compile(rb"\+ ?([A-Z0-9]+): ?(SUCCESS|FAILURE)(?:,(\d+))?[ \t]*\Z")


def result_pattern(name: str) -> re.Pattern[bytes]:
    """The result URC of command `name`, in every spelling GEN-2 allows."""
    return re.compile(
        rb"\+ ?" + re.escape(name.encode()) + rb": ?(?:SUCCESS|FAILURE)(?:,\d+)?[ \t]*\Z"
    )


# URC shapes a test waits for (bytes patterns: `Channel.wait_urc` searches them in raw).
MSUB_SLOT_URC = re.compile(rb"\A\+MSUB: ?(\d+)[ \t]*\Z")  # manual mode: `+MSUB: <n>`
MSUB_MESSAGE_URC = re.compile(rb"\A\+MSUB: ?.*?,\d+ bytes,", re.DOTALL)  # auto mode
CONNECTION_BROKEN_URC = re.compile(rb"\A\+ ?MCONNECT: ?FAILURE,1[ \t]*\Z")  # MCONNECT-5


@dataclass(frozen=True, slots=True)
class Result:
    """A parsed result URC. `code` keeps a result type outside 0–8; `type` is None then."""

    name: str
    success: bool
    type: ResultType | None
    code: int | None = None


def _raw(line: Line | bytes | str) -> bytes:
    if isinstance(line, Line):
        return line.raw
    return line.encode("utf-8") if isinstance(line, str) else line


def parse_result(line: Line | bytes | str) -> Result:
    """Parse `+NAME: SUCCESS|FAILURE[,<type>]`; ValueError if it is not that shape."""
    raw = _raw(line)
    m = _RESULT.match(raw)
    if m is None:
        raise ValueError(f"not a result URC: {raw!r}")
    code = None if m.group(3) is None else int(m.group(3))
    known = code is not None and code in ResultType._value2member_map_
    return Result(
        name=m.group(1).decode(),
        success=m.group(2) == b"SUCCESS",
        type=ResultType(code) if code is not None and known else None,
        code=code,
    )


@dataclass(frozen=True, slots=True)
class Message:
    """A received message: `length` as announced (the original length, MSUB-3), `payload`
    as delivered (cut to MSUB_MESSAGE_MAX when longer)."""

    topic: str
    length: int
    payload: bytes

    @property
    def truncated(self) -> bool:
        return len(self.payload) < self.length


_MSUB_PREFIX = re.compile(rb"\+MSUB: ?")
_MSUB_SLOT = re.compile(rb"\+MSUB: ?(\d+)[ \t]*\Z")
_MSUB_COUNT = re.compile(rb",(\d+) bytes,")


def parse_msub(raw: Line | bytes) -> Message | int:
    """Parse `+MSUB: <n>` (slot, returns int) or `+MSUB: <topic>,<len> bytes,<message>`.

    Topic and message may both hold commas, and the message any byte. When the topic itself
    contains `,<digits> bytes,`, the split whose payload has the announced length wins;
    otherwise the first one (which is what the framer used).
    """
    data = _raw(raw)
    slot = _MSUB_SLOT.match(data)
    if slot is not None:
        return int(slot.group(1))
    prefix = _MSUB_PREFIX.match(data)
    if prefix is None:
        raise ValueError(f"not a +MSUB line: {data!r}")
    candidates = []
    for m in _MSUB_COUNT.finditer(data, prefix.end()):
        length = int(m.group(1))
        topic = data[prefix.end() : m.start()].decode("utf-8", "backslashreplace")
        candidates.append(Message(topic, length, data[m.end() :]))
    if not candidates:
        raise ValueError(f"not a +MSUB message or slot: {data!r}")
    for message in candidates:
        if len(message.payload) == min(message.length, MSUB_MESSAGE_MAX):
            return message
    return candidates[0]


MSUB_COUNTED = CountedLine(
    pattern=re.compile(rb"\+MSUB: ?(.*?),(\d+) bytes,"),
    payload_length=lambda m: min(int(m.group(2)), MSUB_MESSAGE_MAX),
)
"""Framer rule: after `+MSUB: <topic>,<len> bytes,` read min(len, 1360) bytes verbatim."""
