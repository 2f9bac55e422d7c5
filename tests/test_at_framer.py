"""The framer cuts any split of the same bytes into the same events."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.at.framer import CountedLine, DataEcho, Framer, Line, Prompt
from hil.l506.types import MSUB_COUNTED

PAYLOAD = b"a,b\r\nc\x00\xff\r"  # commas, CRLF, NUL, 0xFF, a trailing CR
COUNTED = b"+MSUB: t/1,%d bytes," % len(PAYLOAD) + PAYLOAD

STREAM = (
    b"AT+MSUB=t/1,0\r"  # echo ends with the typed CR
    b"\r\nOK\r\n"
    b"\r\n+MSUB: SUCCESS\r\n"
    b"\r\n" + COUNTED + b"\r\n"
    b"\r\n+MSUB: 0\r\n"
    b"garbage \xc3\x28 \xff\xfe\r\n"  # invalid UTF-8
    b"AT+MPUBEX=t/1,0,0,3\r"
    b"\r\n> "  # prompt, no line end
    b"\r\nOK\r\n"
    b"\r\n+MPUBEX: SUCCESS\r\n"
)

EXPECTED: list[bytes | None] = [  # None: a Prompt
    b"AT+MSUB=t/1,0",
    b"OK",
    b"+MSUB: SUCCESS",
    COUNTED,
    b"+MSUB: 0",
    b"garbage \xc3\x28 \xff\xfe",
    b"AT+MPUBEX=t/1,0,0,3",
    None,
    b"OK",
    b"+MPUBEX: SUCCESS",
]


def shape(events: list[Line | Prompt]) -> list[bytes | None]:
    return [e.raw if isinstance(e, Line) else None for e in events]


def feed_chunks(chunks: list[bytes]) -> list[Line | Prompt]:
    framer = Framer([MSUB_COUNTED])
    framer.expect_prompt = True
    events: list[Line | Prompt] = []
    for t, chunk in enumerate(chunks):
        events += framer.feed(chunk, t)
    return events


def test_whole_stream() -> None:
    assert shape(feed_chunks([STREAM])) == EXPECTED


def test_split_at_every_byte_boundary() -> None:
    for i in range(len(STREAM) + 1):
        assert shape(feed_chunks([STREAM[:i], STREAM[i:]])) == EXPECTED, f"split at {i}"


def test_one_byte_at_a_time() -> None:
    assert shape(feed_chunks([STREAM[i : i + 1] for i in range(len(STREAM))])) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert shape(feed_chunks(chunks)) == EXPECTED


def test_text_decodes_with_backslashreplace() -> None:
    events = feed_chunks([STREAM])
    garbage = events[5]
    assert isinstance(garbage, Line)
    assert garbage.text == "garbage \\xc3( \\xff\\xfe"


def test_timestamps_first_byte_and_completion() -> None:
    framer = Framer()
    assert framer.feed(b"+MQTT", 100) == []
    assert framer.feed(b"STATU: 1", 200) == []
    (line,) = framer.feed(b"\r\n", 300)
    assert isinstance(line, Line)
    assert (line.first_t_ns, line.t_ns) == (100, 300)


def test_cr_then_lf_in_next_chunk_is_one_terminator() -> None:
    framer = Framer()
    assert shape(framer.feed(b"OK\r", 1)) == [b"OK"]
    assert framer.feed(b"\n", 2) == []
    assert shape(framer.feed(b"X\r\n", 3)) == [b"X"]


@pytest.mark.parametrize(
    "data",
    [b"A\rB\rC\r", b"A\nB\nC\n", b"A\r\nB\r\nC\r\n", b"A\n\rB\r\r\nC\n\n"],
    ids=["lone-cr", "lone-lf", "crlf", "mixed"],
)
def test_lone_cr_and_lone_lf_end_lines(data: bytes) -> None:
    assert shape(Framer().feed(data, 0)) == [b"A", b"B", b"C"]


def test_blank_lines_are_dropped() -> None:
    assert shape(Framer().feed(b"\r\n\r\n\n\r\r\nOK\r\n\r\n", 0)) == [b"OK"]


def test_unterminated_line_stays_pending() -> None:
    framer = Framer()
    assert framer.feed(b"+MSUB: 1", 0) == []
    assert framer.pending == b"+MSUB: 1"


def test_garbage_never_crashes() -> None:
    junk = bytes(range(256)) * 4 + b"\n"
    events = Framer([MSUB_COUNTED]).feed(junk, 0)
    assert all(isinstance(e, Line) for e in events)
    assert b"".join(e.raw for e in events if isinstance(e, Line)) == bytes(
        b for b in junk if b not in b"\r\n"
    )


@pytest.mark.parametrize("prompt", [b">", b"> ", b">>", b">> "])
def test_prompt_variants(prompt: bytes) -> None:
    framer = Framer()
    framer.expect_prompt = True
    events = framer.feed(b"AT+MPUBEX=t,0,0,3\r\r\n" + prompt, 7)
    assert shape(events) == [b"AT+MPUBEX=t,0,0,3", None]
    assert events[1] == Prompt(7)
    assert framer.expect_prompt is False
    assert framer.pending == b""
    assert shape(framer.feed(b"abc\r\nOK\r\n", 8)) == [b"abc", b"OK"]


def test_prompt_split_across_chunks() -> None:
    framer = Framer()
    framer.expect_prompt = True
    assert shape(framer.feed(b">", 1)) == [None]
    assert framer.feed(b">", 2) == []
    assert framer.feed(b" ", 3) == []
    assert shape(framer.feed(b"OK\r\n", 4)) == [b"OK"]


def test_prompt_only_when_expected() -> None:
    assert shape(Framer().feed(b"> \r\n", 0)) == [b"> "]


def test_prompt_only_at_line_start() -> None:
    framer = Framer()
    framer.expect_prompt = True
    assert shape(framer.feed(b"a> \r\n", 0)) == [b"a> "]
    assert framer.expect_prompt is True


def test_counted_payload_may_hold_terminators_and_finish_in_later_chunk() -> None:
    framer = Framer([MSUB_COUNTED])
    assert framer.feed(b"+MSUB: top,5 bytes,\r\n", 1) == []
    assert framer.feed(b"\n\x00", 2) == []
    (line,) = framer.feed(b"!\r\n", 3)
    assert isinstance(line, Line)
    assert line.raw == b"+MSUB: top,5 bytes,\r\n\n\x00!"
    assert (line.first_t_ns, line.t_ns) == (1, 3)


def test_counted_length_is_capped_at_msub_max() -> None:
    payload = bytes(range(256)) * 5 + bytes(range(80))  # 1360 bytes, every value
    data = b"+MSUB: big,2000 bytes," + payload + b"\r\n+MSUB: 1\r\n"
    events = Framer([MSUB_COUNTED]).feed(data, 0)
    assert shape(events) == [b"+MSUB: big,2000 bytes," + payload, b"+MSUB: 1"]


def test_counted_without_space_after_colon() -> None:
    events = Framer([MSUB_COUNTED]).feed(b"+MSUB:t,2 bytes,\r\n\r\nOK\r\n", 0)
    assert shape(events) == [b"+MSUB:t,2 bytes,\r\n", b"OK"]


def test_bytes_after_payload_stay_on_the_line() -> None:
    events = Framer([MSUB_COUNTED]).feed(b"+MSUB: t,2 bytes,abXY\r\nOK\r\n", 0)
    assert shape(events) == [b"+MSUB: t,2 bytes,abXY", b"OK"]


def test_zero_length_payload() -> None:
    events = Framer([MSUB_COUNTED]).feed(b"+MSUB: t,0 bytes,\r\nOK\r\n", 0)
    assert shape(events) == [b"+MSUB: t,0 bytes,", b"OK"]


def test_slot_and_result_lines_are_not_counted() -> None:
    events = Framer([MSUB_COUNTED]).feed(b"+MSUB: 3\r\n+MSUB: SUCCESS\r\nOK\r\n", 0)
    assert shape(events) == [b"+MSUB: 3", b"+MSUB: SUCCESS", b"OK"]


def test_earliest_of_several_counted_rules_wins() -> None:
    rules = [
        CountedLine(re.compile(rb"\+LONG: (\d+),"), lambda m: int(m.group(1))),
        CountedLine(re.compile(rb"\+L"), lambda m: 2),
    ]
    events = Framer(rules).feed(b"+L\r\nX\r\n", 0)
    assert shape(events) == [b"+L\r\nX"]


ECHOED = b"x\r\nOK\r\n\x00"


def echo_events(after_prompt: list[bytes]) -> list[Line | Prompt]:
    framer = Framer()
    framer.expect_prompt = True
    events = framer.feed(b"AT+MPUBEX=t,0,0,7\r\r\n> ", 0)
    framer.expect_echo(ECHOED)
    for t, chunk in enumerate(after_prompt, start=1):
        events += framer.feed(chunk, t)
    return events


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (ECHOED + b"\r\nOK\r\n", [ECHOED, b"OK"]),  # echoed, then the real OK
        (b"\r\nOK\r\n", [b"OK"]),  # not echoed: differs at the first byte
        (b"x\r\nOK\r\nERROR\r\n", [b"x", b"OK", b"ERROR"]),  # differs late: framed as usual
    ],
    ids=["echoed", "no-echo", "differs-late"],
)
def test_data_echo_at_every_split(answer: bytes, expected: list[bytes]) -> None:
    for i in range(len(answer) + 1):
        events = echo_events([answer[:i], answer[i:]])
        assert shape(events) == [b"AT+MPUBEX=t,0,0,7", None, *expected], f"split at {i}"
        assert isinstance(events[2], DataEcho) == (expected[0] == ECHOED)


def test_echo_held_bytes_show_as_pending_and_are_released() -> None:
    framer = Framer()
    framer.expect_echo(ECHOED)
    assert framer.feed(b"x\r\nOK", 5) == []
    assert framer.pending == b"x\r\nOK"
    events = framer.stop_echo()
    assert shape(events) == [b"x"]
    assert isinstance(events[0], Line) and events[0].t_ns == 5
    assert framer.pending == b"OK"
