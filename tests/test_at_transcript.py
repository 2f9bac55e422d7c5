"""The transcript keeps raw evidence exact and shows a masked, readable log."""

from __future__ import annotations

import threading
from pathlib import Path

from hil.at.transcript import RX, TX, Transcript, printable


def test_bytes_are_kept_exact_per_direction() -> None:
    t = Transcript(start_ns=0)
    t.record_received(b"\r\nOK\r\n", 10, ())
    t.record_sent(b"AT\r", 5, "AT", "command")
    t.record_received(b"\x00\xff", 20, ())
    assert t.rx_bytes() == b"\r\nOK\r\n\x00\xff"
    assert t.tx_bytes() == b"AT\r"
    assert t.chunks(RX) == [(10, b"\r\nOK\r\n"), (20, b"\x00\xff")]


def test_log_lines_are_relative_ms_direction_kind_text(tmp_path: Path) -> None:
    t = Transcript(start_ns=1_000_000)
    t.record_line(TX, "AT+MCONFIG=c,u,pw", 2_000_000, "command")
    t.record_line(RX, "+MSUB: t,2 bytes,\r\n", 3_500_000, "urc")
    t.note("power cycle", 4_000_000)
    t.mask_secret("pw")
    t.write(tmp_path)
    lines = (tmp_path / "transcript.log").read_text().splitlines()
    assert lines[0].startswith("# rx 0 bytes, tx 0 bytes")
    assert lines[1].split() == ["1.000", "->", "command", "AT+MCONFIG=c,u,****"]
    assert lines[2].split() == ["2.500", "<-", "urc", "+MSUB:", "t,2", r"bytes,\x0d\x0a"]
    assert lines[3].split() == ["3.000", "--", "note", "power", "cycle"]
    assert (tmp_path / "rx.bin").read_bytes() == b""


def test_events_are_in_time_order() -> None:
    t = Transcript(start_ns=0)
    t.record_line(RX, "late", 20, "urc")
    t.record_line(TX, "early", 10, "command")
    assert [e.text for e in t.events()] == ["early", "late"]


def test_mask_hides_longest_secret_first() -> None:
    t = Transcript(mask=["abc", "abcdef", ""], start_ns=0)
    t.record_line(TX, "x=abcdef;y=abc", 1, "command")
    assert "x=****;y=****" in t.render()
    assert t.mask == ["abc", "abcdef"]


def test_printable_escapes_controls() -> None:
    assert printable("a\tb\x00\x7f\u2028é") == "a\\x09b\\x00\\x7f\\u2028é"


def test_concurrent_writers_lose_nothing() -> None:
    t = Transcript(start_ns=0)

    def write(tag: bytes) -> None:
        for i in range(500):
            t.record_received(tag, i, ())
            t.record_line(RX, tag.decode(), i, "urc")

    workers = [threading.Thread(target=write, args=(bytes([65 + n]),)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=10)
    assert len(t.rx_bytes()) == 2000 and len(t.events()) == 2000
