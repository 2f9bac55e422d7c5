"""The AT exchange with no port and no thread: bytes in at given stamps, events out.

Each conversation is also replayed at every split of the device's bytes (one cut anywhere,
one byte at a time, and random cuts): what answers the command must not depend on how the
bytes were read.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.at.exchange import (
    PLAIN,
    Answer,
    CommandSpec,
    Completed,
    Event,
    Exchange,
    ExchangeError,
    Prompted,
    Response,
    State,
    Urc,
)
from hil.at.framer import Line
from hil.l506.commands import MCONFIG, MPUBEX, MQTTSTATU, MSUB
from hil.l506.types import MSUB_COUNTED

TICK = 1000  # ns between two chunks


def crlf(*lines: bytes) -> bytes:
    return b"".join(b"\r\n" + line + b"\r\n" for line in lines)


def split(data: bytes, cuts: set[int]) -> list[bytes]:
    """`data` cut at each position in `cuts` (0 < cut < len(data)); never an empty chunk."""
    edges = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


@dataclass
class Conversation:
    """One command against a scripted device: what it sent before the command's data went
    out (`reply`) and after (`after_data`)."""

    command: bytes
    spec: CommandSpec
    reply: bytes
    data: bytes | None = None
    after_data: bytes = b""

    @property
    def stream(self) -> bytes:
        return self.reply + self.after_data


@dataclass
class Run:
    exchange: Exchange
    response: Response
    events: list[Event]  # from receive(), then from finish()
    state: State  # before finish()
    wire: bytes  # what the exchange gave to write


def converse(c: Conversation, cuts: Collection[int] = ()) -> Run:
    """Send the command, feed the device's bytes chunk by chunk (cut at `cuts`, positions in
    `c.stream`), the data going out as soon as the exchange says it is due; then finish."""
    ex = Exchange((MSUB_COUNTED,))
    clock = itertools.count(TICK, TICK)
    wire = ex.send(c.command, c.spec, next(clock), c.data)
    response = ex.response
    assert response is not None
    events: list[Event] = []
    for chunk in split(c.reply, set(cuts)):
        events += ex.receive(chunk, next(clock))
        if ex.state == "data due":  # as soon as due: the rest may arrive after it
            wire += ex.send_data(next(clock))
    for chunk in split(c.after_data, {cut - len(c.reply) for cut in cuts}):
        events += ex.receive(chunk, next(clock))
    state = ex.state
    events += ex.finish()
    return Run(ex, response, events, state, wire)


def shown(events: list[Event]) -> list[tuple[str, ...]]:
    """Events without their stamps."""
    out: list[tuple[str, ...]] = []
    for e in events:
        if isinstance(e, Answer):
            out.append((e.part, e.line.text))
        elif isinstance(e, Urc):
            out.append(("urc", e.line.text))
        elif isinstance(e, Prompted):
            out.append(("prompt",))
        else:
            out.append(("completed",))
    return out


def raw(line: Line | None) -> bytes | None:
    return None if line is None else line.raw


def outcome(run: Run) -> tuple[object, ...]:
    """All a run decided, without stamps: compared across splits."""
    r = run.response
    return (
        run.state, run.wire, shown(run.events), raw(r.echo), [x.raw for x in r.lines],
        raw(r.final), raw(r.result), raw(r.data_echo), [x.raw for x in r.interleaved],
        r.data_sent, r.timing.prompt_ns is not None, r.ok, r.error,
    )


MPUB = CommandSpec("MPUB", result=re.compile(rb"\+MPUB: ?(SUCCESS|FAILURE)"))
PAYLOAD = b"x,\r\nOK\r\n\x00\xff"
MESSAGE = b"+MSUB: t,%d bytes," % len(PAYLOAD) + PAYLOAD
BINARY = b"\r\nOK\r\n,\x00\xff>"

CONVERSATIONS = {
    "echo-then-ok": Conversation(b"AT", PLAIN, b"AT\r" + crlf(b"OK")),
    "without-echo": Conversation(b"ATE0", PLAIN, crlf(b"OK")),
    "result-after-ok-urc-between": Conversation(
        b"AT+MSUB=t,0", MSUB, b"AT+MSUB=t,0\r" + crlf(b"OK", b"+MSUB: 0", b"+MSUB: SUCCESS")),
    "result-before-ok": Conversation(
        b"AT+MCONFIG=c", MCONFIG, b"AT+MCONFIG=c\r" + crlf(b"+MCONFIG:SUCCESS,0", b"OK")),
    "error-without-result": Conversation(b"AT+MSUB=t,9", MSUB, b"AT+MSUB=t,9\r" + crlf(b"ERROR")),
    "cme-error": Conversation(b"AT+CPIN?", PLAIN, b"AT+CPIN?\r" + crlf(b"+CME ERROR: 10")),
    "info-and-urc-mid-response": Conversation(
        b"AT+MQTTSTATU", MQTTSTATU,
        b"AT+MQTTSTATU\r" + crlf(b"+MQTTSTATU: 1", b"+MCONNECT: FAILURE,1", b"OK")),
    "message-urc-during-publish": Conversation(
        b"AT+MPUB=t,0,0,hi", MPUB, b"AT+MPUB=t,0,0,hi\r" + crlf(b"OK", MESSAGE, b"+MPUB: SUCCESS")),
    "prompt-then-binary-data": Conversation(
        b"AT+MPUBEX=t,1,0,10", MPUBEX, b"AT+MPUBEX=t,1,0,10\r\r\n> ", BINARY,
        crlf(b"OK", b"+MPUBEX: SUCCESS")),
    "data-echo-crlf": Conversation(
        b"AT+MPUBEX=t,0,0,6", MPUBEX, b"AT+MPUBEX=t,0,0,6\r\r\n>> ", b"ab\r\ncd",
        b"ab\r\ncd" + crlf(b"OK", b"+MPUBEX: SUCCESS")),
    "data-echo-ok": Conversation(
        b"AT+MPUBEX=t,0,0,6", MPUBEX, b"AT+MPUBEX=t,0,0,6\r\r\n>> ", b"\r\nOK\r\n",
        b"\r\nOK\r\n" + crlf(b"OK", b"+MPUBEX: SUCCESS")),
    "data-echo-bare-ok": Conversation(
        b"AT+MPUBEX=t,0,0,2", MPUBEX, b"AT+MPUBEX=t,0,0,2\r\r\n>> ", b"OK",
        b"OK" + crlf(b"OK", b"+MPUBEX: SUCCESS")),
    "data-like-ok-no-echo": Conversation(
        b"AT+MPUBEX=t,0,0,7", MPUBEX, b"\r\n> ", b"\r\nOK\r\n!", crlf(b"OK", b"+MPUBEX: SUCCESS")),
    "data-bare-ok-no-echo": Conversation(
        b"AT+MPUBEX=t,0,0,2", MPUBEX, b"\r\n> ", b"OK", crlf(b"OK", b"+MPUBEX: SUCCESS")),
    "refused-without-prompt": Conversation(
        b"AT+MPUBEX=t,0,0,1361", MPUBEX,
        b"AT+MPUBEX=t,0,0,1361\r" + crlf(b"OK", b"+MPUBEX: FAILURE,2"), b"z" * 1361),
    "refused-then-prompt": Conversation(
        b"AT+MPUBEX=t,0,0,3", MPUBEX, b"AT+MPUBEX=t,0,0,3\r" + crlf(b"ERROR") + b"> ", b"abc"),
    "partial-data-echo-then-silence": Conversation(
        b"AT+MPUBEX=t,0,0,9", MPUBEX, b"AT+MPUBEX=t,0,0,9\r\r\n> ", b"x\r\nOK\r\nyz",
        b"x\r\nOK\r\n"),
}


# ------------------------------------------------------------------ what answers a command


def test_echo_then_ok() -> None:
    run = converse(CONVERSATIONS["echo-then-ok"])
    assert shown(run.events) == [("echo", "AT"), ("final", "OK"), ("completed",)]
    assert run.response.ok and not run.response.error
    assert run.response.lines == [] and run.response.result is None
    assert run.wire == b"AT\r" and run.state == "complete"


def test_without_echo() -> None:
    run = converse(CONVERSATIONS["without-echo"])
    assert run.response.echo is None and run.response.ok
    assert run.state == "complete"


def test_result_after_ok_with_urc_in_between() -> None:
    run = converse(CONVERSATIONS["result-after-ok-urc-between"])
    assert shown(run.events) == [
        ("echo", "AT+MSUB=t,0"), ("final", "OK"), ("urc", "+MSUB: 0"),
        ("result", "+MSUB: SUCCESS"), ("completed",),
    ]
    r = run.response
    assert r.ok and r.lines == [] and [u.text for u in r.interleaved] == ["+MSUB: 0"]


def test_ok_alone_does_not_complete_a_command_with_a_result() -> None:
    ex = Exchange()
    ex.send(b"AT+MSUB=t,0", MSUB, 10)
    events = ex.receive(b"AT+MSUB=t,0\r" + crlf(b"OK"), 20)
    after_ok = ex.state
    assert not any(isinstance(e, Completed) for e in events)
    assert after_ok == "awaiting answer"
    events = ex.receive(crlf(b"+MSUB: SUCCESS"), 30)
    assert [type(e) for e in events] == [Answer, Completed]
    assert ex.state == "complete"


def test_result_before_ok() -> None:
    run = converse(CONVERSATIONS["result-before-ok"])
    assert shown(run.events)[1:] == [
        ("result", "+MCONFIG:SUCCESS,0"), ("final", "OK"), ("completed",)]
    t = run.response.timing
    assert t.result_ns is not None and t.final_ns is not None and t.result_ns <= t.final_ns


def test_error_completes_without_result() -> None:
    run = converse(CONVERSATIONS["error-without-result"])
    r = run.response
    assert r.error and not r.ok and r.result is None and run.state == "complete"


def test_cme_error_is_final() -> None:
    run = converse(CONVERSATIONS["cme-error"])
    r = run.response
    assert r.error and r.final is not None and r.final.text == "+CME ERROR: 10"
    assert run.state == "complete"


def test_info_lines_and_urc_mid_response() -> None:
    run = converse(CONVERSATIONS["info-and-urc-mid-response"])
    assert [x.text for x in run.response.lines] == ["+MQTTSTATU: 1"]
    assert [e.line.text for e in run.events if isinstance(e, Urc)] == ["+MCONNECT: FAILURE,1"]


def test_message_urc_during_publish_is_not_part_of_the_response() -> None:
    run = converse(CONVERSATIONS["message-urc-during-publish"])
    assert run.response.ok and run.response.result is not None
    assert [e.line.raw for e in run.events if isinstance(e, Urc)] == [MESSAGE]


def test_the_same_shape_is_a_urc_with_no_command_in_flight() -> None:
    ex = Exchange()
    events = ex.receive(crlf(b"OK", b"+MSUB: SUCCESS", b"+CME ERROR: 3"), 10)
    assert shown(events) == [("urc", "OK"), ("urc", "+MSUB: SUCCESS"), ("urc", "+CME ERROR: 3")]
    assert ex.state == "idle"


def test_line_begun_before_the_command_is_a_urc() -> None:
    ex = Exchange()
    assert ex.receive(b"\r\n+MQTTSTATU: 0", 10) == []
    ex.send(b"AT+MQTTSTATU", MQTTSTATU, 20)
    events = ex.receive(b"\r\n" + crlf(b"+MQTTSTATU: 1", b"OK"), 30)
    assert shown(events) == [
        ("urc", "+MQTTSTATU: 0"), ("info", "+MQTTSTATU: 1"), ("final", "OK"), ("completed",)]
    r = ex.response
    assert r is not None and r.interleaved == []  # it was never the command's to see


def test_stamps() -> None:
    ex = Exchange()
    ex.send(b"AT+MSUB=t,1", MSUB, 100)
    ex.receive(b"AT+MSU", 150)
    ex.receive(b"B=t,1\r" + crlf(b"OK"), 160)
    ex.receive(crlf(b"+MSUB: SUCCESS"), 300)
    r = ex.response
    assert r is not None
    t = r.timing
    assert (t.sent_ns, t.first_byte_ns, t.final_ns, t.result_ns) == (100, 150, 160, 300)
    assert r.echo is not None and (r.echo.first_t_ns, r.echo.t_ns) == (150, 160)
    assert t.done_ns == 300 and t.total_ms == t.result_ms == pytest.approx(200e-6)
    assert t.prompt_ns is None and t.data_ns is None


def test_first_byte_is_the_first_chunk_after_the_command() -> None:
    ex = Exchange()
    ex.send(b"AT", PLAIN, 100)
    ex.receive(b"\r\n", 90)  # read before the command went out (stamped by another thread)
    ex.receive(b"AT\r" + crlf(b"OK"), 120)
    r = ex.response
    assert r is not None and r.timing.first_byte_ns == 120


# ------------------------------------------------------------------ prompt and raw data


def test_prompt_then_binary_data() -> None:
    run = converse(CONVERSATIONS["prompt-then-binary-data"])
    r = run.response
    assert r.ok and r.result is not None and r.data_sent and r.data_echo is None
    assert run.wire == b"AT+MPUBEX=t,1,0,10\r" + BINARY
    t = r.timing
    assert t.prompt_ns is not None and t.data_ns is not None and t.final_ns is not None
    assert t.sent_ns < t.prompt_ns < t.data_ns < t.final_ns
    assert shown(run.events) == [
        ("echo", "AT+MPUBEX=t,1,0,10"), ("prompt",), ("final", "OK"),
        ("result", "+MPUBEX: SUCCESS"), ("completed",),
    ]


@pytest.mark.parametrize("name", ["data-echo-crlf", "data-echo-ok", "data-echo-bare-ok"])
def test_data_echo_is_not_taken_for_the_answer(name: str) -> None:
    c = CONVERSATIONS[name]
    run = converse(c)
    r = run.response
    assert r.ok and r.result is not None
    assert r.data_echo is not None and r.data_echo.raw == c.data
    assert r.timing.final_ns is not None and r.data_echo.t_ns <= r.timing.final_ns
    assert not any(isinstance(e, Urc) for e in run.events)


@pytest.mark.parametrize("name", ["data-like-ok-no-echo", "data-bare-ok-no-echo"])
def test_data_that_looks_like_the_answer_without_echo(name: str) -> None:
    run = converse(CONVERSATIONS[name])
    r = run.response
    assert r.ok and r.result is not None and r.data_echo is None and r.data_sent
    assert not any(isinstance(e, Urc) for e in run.events)


def test_refused_without_prompt_sends_no_data() -> None:
    run = converse(CONVERSATIONS["refused-without-prompt"])
    r = run.response
    assert not r.data_sent and r.timing.prompt_ns is None and run.state == "complete"
    assert r.result is not None and r.result.text == "+MPUBEX: FAILURE,2"
    assert b"z" not in run.wire


def test_a_prompt_after_a_refusal_sends_no_data() -> None:
    run = converse(CONVERSATIONS["refused-then-prompt"])
    assert shown(run.events) == [
        ("echo", "AT+MPUBEX=t,0,0,3"), ("final", "ERROR"), ("completed",), ("prompt",)]
    assert run.state == "complete" and not run.response.data_sent
    ex = Exchange()
    ex.send(b"AT+MPUBEX=t,0,0,3", MPUBEX, 10, b"abc")
    ex.receive(crlf(b"ERROR") + b"> ", 20)
    with pytest.raises(ExchangeError, match=r"send data while .* in flight \(complete\)"):
        ex.send_data(30)


def test_answered_after_the_prompt_but_before_the_data_the_data_never_goes() -> None:
    ex = Exchange()
    ex.send(b"AT+MPUBEX=t,0,0,3", MPUBEX, 10, b"abc")
    events = ex.receive(b"\r\n> \r\nERROR\r\n", 20)
    assert shown(events) == [("prompt",), ("final", "ERROR"), ("completed",)]
    assert ex.state == "complete"
    r = ex.response
    assert r is not None and not r.data_sent


def test_a_prompt_is_seen_only_when_data_is_due() -> None:
    ex = Exchange()
    ex.send(b"AT+MSUB=t,0", MSUB, 10)
    events = ex.receive(b"\r\n> \r\n" + crlf(b"OK"), 20)
    assert shown(events) == [("urc", "> "), ("final", "OK")]


def test_a_partial_data_echo_is_framed_as_usual_when_the_command_ends() -> None:
    run = converse(CONVERSATIONS["partial-data-echo-then-silence"])
    assert run.state == "awaiting answer"
    r = run.response
    assert r.final is None and r.data_echo is None  # "OK" inside the echo was not the answer
    assert shown(run.events)[-2:] == [("urc", "x"), ("urc", "OK")]  # from finish()
    assert run.exchange.state == "idle"


# ------------------------------------------------------------------ why a wait ended empty


def test_timeout_message_says_what_is_missing_and_the_partial_line() -> None:
    ex = Exchange()
    ex.send(b"AT+MQTTSTATU", MQTTSTATU, 10)
    ex.receive(b"AT+MQTTSTATU\r\r\n+MQTTST", 20)
    message = ex.timeout_message(0.3)
    assert message.startswith("'AT+MQTTSTATU': no final result code (OK/ERROR) within 0.300 s")
    assert "echo='AT+MQTTSTATU'" in message and "partial line b'+MQTTST'" in message


def test_timeout_message_waiting_for_result() -> None:
    ex = Exchange()
    ex.send(b"AT+MSUB=t,0", MSUB, 10)
    ex.receive(crlf(b"OK"), 20)
    assert "final 'OK' but no MSUB result URC" in ex.timeout_message(1)


def test_timeout_message_waiting_for_prompt() -> None:
    ex = Exchange()
    ex.send(b"AT+MPUBEX=t,0,0,3", MPUBEX, 10, b"abc")
    assert "no '>' prompt" in ex.timeout_message(1)


# ------------------------------------------------------------------ illegal calls raise


def test_a_second_command_while_one_is_in_flight_raises() -> None:
    ex = Exchange()
    ex.send(b"AT+SLOW", PLAIN, 10)
    with pytest.raises(ExchangeError, match=r"'AT' sent while 'AT\+SLOW' is in flight"):
        ex.send(b"AT", PLAIN, 20)
    with pytest.raises(ExchangeError, match="in flight"):
        ex.check_send("AT")
    ex.receive(crlf(b"OK"), 30)
    with pytest.raises(ExchangeError, match=r"in flight \(complete\)"):
        ex.send(b"AT", PLAIN, 40)  # complete, but not finished
    assert ex.finish() == []
    ex.check_send("AT")
    assert ex.send(b"AT", PLAIN, 50) == b"AT\r"


def test_data_only_after_its_prompt_and_only_once() -> None:
    ex = Exchange()
    ex.send(b"AT", PLAIN, 10)
    with pytest.raises(ExchangeError, match="send data while 'AT' is in flight"):
        ex.send_data(20)  # a command without data
    ex.finish()
    ex.send(b"AT+MPUBEX=t,0,0,3", MPUBEX, 30, b"abc")
    with pytest.raises(ExchangeError, match="awaiting prompt"):
        ex.send_data(40)
    ex.receive(b"\r\n> ", 50)
    assert ex.state == "data due"
    assert ex.send_data(60) == b"abc"
    with pytest.raises(ExchangeError, match="awaiting answer"):
        ex.send_data(70)


def test_nothing_to_finish_or_time_out_when_idle() -> None:
    ex = Exchange()
    with pytest.raises(ExchangeError, match="no command is in flight"):
        ex.finish()
    with pytest.raises(ExchangeError, match="no command in flight"):
        ex.timeout_message(1)
    assert ex.response is None


def test_a_command_can_be_abandoned_in_any_state() -> None:
    for reply in (b"", b"\r\n> "):
        ex = Exchange()
        ex.send(b"AT+MPUBEX=t,0,0,3", MPUBEX, 10, b"abc")
        ex.receive(reply, 20)
        ex.finish()
        assert ex.state == "idle" and ex.response is None
        assert shown(ex.receive(b"> \r\n", 30)) == [("urc", "> ")]  # no prompt expected now


# ------------------------------------------------------------------ any split, same answer


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_every_single_cut_and_byte_by_byte_give_the_same_answer(name: str) -> None:
    c = CONVERSATIONS[name]
    whole = outcome(converse(c))
    for cut in range(1, len(c.stream)):
        assert outcome(converse(c, {cut})) == whole, f"cut at {cut}"
    assert outcome(converse(c, set(range(1, len(c.stream))))) == whole


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(CONVERSATIONS)), st.sets(st.integers(1, 200), max_size=40))
def test_any_cuts_give_the_same_answer(name: str, cuts: set[int]) -> None:
    c = CONVERSATIONS[name]
    assert outcome(converse(c, cuts)) == outcome(converse(c))
