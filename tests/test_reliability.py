"""The pieces of `hil reliability`: the fault relay, the fuzz oracles, the broken-file judge,
the figures' bounds and the doc's sections. (tests/test_reliability_command.py runs the
command itself in its short form.)"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.at.framer import Framer
from hil.cli import main
from hil.l506.types import MSUB_COUNTED, MSUB_MESSAGE_MAX
from hil.mqtt import codec
from hil.reliability import report
from hil.reliability.faults import HarnessHang, Trial, bounded, category_of, figures
from hil.reliability.fuzz import fuzz_codec, fuzz_framer
from hil.reliability.inputs import InputFigures, hil, judge, write_run
from hil.reliability.relay import TO_DCE, TO_DTE, LineRelay
from hil.reliability.soak import Tally, soak_failures
from hil.report.categories import FIRMWARE_DEFECT, INFRASTRUCTURE


def _wait(done, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    pause = threading.Event()
    while not done():
        assert time.monotonic() < end, "condition not met in time"
        pause.wait(0.01)


def _read(fd_or_port, n: int, timeout: float = 5.0) -> bytes:
    out = b""
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        if isinstance(fd_or_port, int):
            try:
                out += os.read(fd_or_port, n - len(out))
            except BlockingIOError:
                time.sleep(0.005)
        else:
            out += fd_or_port.read(n - len(out))
    return out


@pytest.fixture
def line(tmp_path: Path) -> Iterator[tuple[int, LineRelay, serial.SerialBase]]:
    """(the module's end of a pty, the relay, the harness's port through the relay)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    upstream = tmp_path / "module"
    upstream.symlink_to(os.ttyname(slave))
    relay = LineRelay(upstream, tmp_path / "relay", seed=3).start()
    _wait(relay.link.exists)
    port = serial.serial_for_url(relay.url, timeout=0.2)
    try:
        yield master, relay, port
    finally:
        port.close()
        relay.close()
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_relay_passes_bytes_and_counts_them(line) -> None:
    module, relay, port = line
    port.write(b"AT\r")
    assert _read(module, 3) == b"AT\r"
    os.write(module, b"\r\nOK\r\n")
    assert _read(port, 6) == b"\r\nOK\r\n"
    counts = relay.counts()
    assert counts.read == counts.passed == {TO_DCE: 3, TO_DTE: 6}


def test_a_trigger_fires_between_its_byte_and_the_next(line) -> None:
    module, relay, port = line
    seen: list[bytes] = []
    relay.after(TO_DCE, 5, lambda: seen.append(_read(module, 5, timeout=1)))
    port.write(b"0123456789")
    _wait(lambda: seen)  # the trigger reads the first five itself: let it, before we read
    assert _read(module, 5) == b"56789"
    assert seen == [b"01234"]  # the first five had crossed when it fired, not the rest
    assert relay.disarm() == 0


def test_a_trigger_never_reached_is_reported_by_disarm(line) -> None:
    _, relay, port = line
    relay.after(TO_DCE, 100, lambda: None)
    port.write(b"AT\r")
    _wait(lambda: relay.counts().read[TO_DCE] == 3)
    assert relay.disarm() == 1


def test_damage_drops_or_corrupts_exactly_its_bytes(line) -> None:
    module, relay, port = line
    relay.damage(TO_DTE, "drop", 2)
    os.write(module, b"abcdef")
    assert _read(port, 4) == b"cdef"
    relay.damage(TO_DTE, "corrupt", 3)
    os.write(module, b"ghijkl")
    got = _read(port, 6)
    assert got[3:] == b"jkl"
    assert all(a != b for a, b in zip(got[:3], b"ghi", strict=True))


def test_mute_silences_until_the_port_comes_back(line, tmp_path: Path) -> None:
    module, relay, port = line
    relay.mute(TO_DTE)
    os.write(module, b"OK\r\n")
    assert _read(port, 4, timeout=0.3) == b""
    assert relay.counts().read[TO_DTE] == 4  # read from the module, never handed on


def test_the_relay_port_vanishes_with_the_module_port(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    upstream = tmp_path / "module"
    upstream.symlink_to(os.ttyname(slave))
    with LineRelay(upstream, tmp_path / "relay") as relay:
        _wait(relay.link.exists)
        upstream.unlink()
        os.close(master)
        os.close(slave)
        _wait(lambda: not relay.link.exists())


def test_bounded_calls_a_step_that_outlives_its_bound_a_hang() -> None:
    stop = threading.Event()
    with pytest.raises(HarnessHang):
        bounded(lambda: stop.wait(5), 0.1)
    stop.set()
    assert isinstance(bounded(lambda: 1 / 0, 1), ZeroDivisionError)
    assert bounded(lambda: None, 1) is None


def test_a_failure_while_the_broker_is_dead_is_the_bench_s() -> None:
    assert category_of(AssertionError("MPUB failed"), broker_running=True) == FIRMWARE_DEFECT.name
    assert category_of(AssertionError("MPUB failed"), broker_running=False) == \
        INFRASTRUCTURE.name


def test_fault_figures_count_misreports_and_unprovoked_trials() -> None:
    trials = [
        Trial("power_cut_mid_command", 0, "p", reported=INFRASTRUCTURE.name, recovered=True,
              recovery_s=0.5),
        Trial("power_cut_mid_command", 1, "p", reported=FIRMWARE_DEFECT.name, recovered=True,
              recovery_s=1.5),
        Trial("power_cut_mid_command", 2, "p", reported=None, provoked=False, recovered=True),
        Trial("line_noise", 3, "p", reported=None, recovered=True, recovery_s=0.1),
    ]
    cut = figures("power_cut_mid_command", trials[:3])
    assert (cut.trials, cut.misreported, cut.not_provoked, cut.recovered) == (3, 2, 1, 3)
    assert (cut.recovery_s_p50, cut.recovery_s_p99) == (1.0, 1.49)  # interpolated
    noise = figures("line_noise", trials[3:])
    assert (noise.misreported, noise.no_effect) == (0, 1)
    failed = report.failures({"faults": {"kinds": [vars(cut), vars(noise)]}})
    assert any("2 misreported" in f for f in failed)
    assert any("never reached" in f for f in failed)


# ---------------------------------------------------------------------------- bad input


def test_the_framer_fuzz_finds_a_framer_that_ends_a_payload_at_its_ok() -> None:
    """The oracle can fail: a framer without the counted +MSUB rule cuts payloads at their
    line ends, and the fuzz must say so."""
    assert fuzz_framer(600, seed=5, make=lambda: Framer(())).mismatches > 0


def test_the_framer_and_codec_survive_their_short_fuzz() -> None:
    framer, mqtt = fuzz_framer(3000, seed=9), fuzz_codec(3000, seed=9)
    assert (framer.crashes, framer.mismatches) == (0, 0), framer.examples
    assert framer.payload_traps > 500
    assert (mqtt.crashes, mqtt.mismatches) == (0, 0), mqtt.examples
    assert 0 < mqtt.malformed < mqtt.inputs


def test_the_codec_fuzz_counts_any_other_exception_as_a_crash(monkeypatch) -> None:
    def broken(self, data: bytes) -> list:
        raise KeyError("oops")

    monkeypatch.setattr(codec.Decoder, "feed", broken)
    assert fuzz_codec(30, seed=1).crashes == 30


@settings(max_examples=300, deadline=None)
@given(topic=st.text(alphabet="abc/, 0123", min_size=1, max_size=20),
       payload=st.binary(max_size=MSUB_MESSAGE_MAX), cuts=st.lists(st.integers(0, 1500)))
def test_no_line_of_a_counted_payload_comes_out_on_its_own(topic: str, payload: bytes,
                                                           cuts: list[int]) -> None:
    """An `OK` (or anything) inside a +MSUB message is part of it, however it is split."""
    line = f"+MSUB: {topic},{len(payload)} bytes,".encode() + payload
    data = line + b"\r\nOK\r\n"
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    framer = Framer((MSUB_COUNTED,))
    raws = [e.raw for a, b in itertools.pairwise(bounds)
            for e in framer.feed(data[a:b], a)]
    assert raws == [line, b"OK"]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_the_decoder_raises_nothing_but_malformed_packet(data: bytes) -> None:
    with contextlib.suppress(codec.MalformedPacket):
        codec.Decoder().feed(data)


def test_judge_calls_a_traceback_unclear(tmp_path: Path) -> None:
    def crash(argv: list[str]) -> int:
        raise TypeError("float() argument must be a string")

    fig = InputFigures("x")
    judge(crash, fig, "crash", tmp_path, ["compare", "a", "b"])
    assert (fig.unclear, fig.clear) == (1, 0)
    assert "TypeError" in fig.examples[0]


# ---------------------------------------------------------------------------- figures, doc


def _soak(**changes) -> dict:
    result = {
        "messages": {"up/1": {"sent": 5, "received": 5, "lost": 0, "duplicated": 0,
                              "refused": 0},
                     "down/2": {"sent": 5, "received": 5, "lost": 0, "duplicated": 0,
                                "refused": 0}},
        "memory_kib": {"start": 1000, "end": 1100, "bound": 500},
        "fds": {"start": 20, "end": 20, "bound": 2},
        "transcript_bytes": {"rx": 10, "tx": 5}, "line_bytes": {"rx": 10, "tx": 5},
        "round_error_count": 0,
    }
    result.update(changes)
    return result


def test_soak_bounds() -> None:
    assert soak_failures(_soak()) == []
    lossy = _soak(messages={"up/1": {"sent": 5, "received": 4, "lost": 1, "duplicated": 0,
                                     "refused": 0}})
    assert soak_failures(lossy) == ["soak up/1: 1 lost at QoS 1"]
    twice = _soak(messages={"down/2": {"sent": 5, "received": 5, "lost": 0, "duplicated": 1,
                                       "refused": 0}})
    assert soak_failures(twice) == ["soak down/2: 1 duplicated at QoS 2"]
    assert soak_failures(_soak(messages={"up/0": {"sent": 5, "received": 4, "lost": 1,
                                                  "duplicated": 1, "refused": 0}})) == []
    leak = soak_failures(_soak(fds={"start": 20, "end": 30, "bound": 2},
                               line_bytes={"rx": 11, "tx": 5}))
    assert len(leak) == 2


def test_the_doc_gets_each_part_in_its_own_section(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text("# R\n<!-- reliability:fuzz -->\nold\n<!-- /reliability:fuzz -->\n"
                   "<!-- reliability:soak -->\nkept\n<!-- /reliability:soak -->\n")
    report.update_doc(doc, {"fuzz": "new table"})
    text = doc.read_text()
    assert "new table" in text and "old" not in text and "kept" in text
    with pytest.raises(ValueError, match="reliability:faults"):
        report.update_doc(doc, {"faults": "x"})
    assert report.check_doc(doc, ["fuzz", "soak"]) is None
    assert "reliability:faults" in report.check_doc(doc, ["fuzz", "faults"])


def test_a_doc_without_its_sections_is_refused_before_the_run(tmp_path: Path) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("# notes\n")
    status, _, err = hil(main, ["reliability", "--only", "fuzz", "--doc", str(doc),
                            "--reports", str(tmp_path / "reports")])
    assert status == 2 and err.count("\n") == 1 and "reliability:fuzz" in err
    assert not (tmp_path / "reports").exists()


def test_what_the_corpus_found_is_refused_in_one_line(tmp_path: Path) -> None:
    """The tracebacks the broken-file corpus found: clauses of the wrong type in a run, a
    baseline's throughput figure or firmware field of the wrong type."""
    run = write_run(tmp_path / "run")
    accepted = hil(main, ["baseline", "accept", str(run), "--into", str(tmp_path / "b"),
                          "--by", "t"])
    assert accepted[0] == 0
    baseline = next((tmp_path / "b").rglob("baseline.json"))
    results = json.loads((run / "results.json").read_text())
    results["tests"][0]["clauses"] = 7
    bad_run = tmp_path / "bad-run"
    shutil.copytree(run, bad_run)
    (bad_run / "results.json").write_text(json.dumps(results))
    document = json.loads(baseline.read_text())
    document["throughput"]["qos0"]["messages_per_s"] = {"x": 1}
    bad_figure = tmp_path / "figure" / "baseline.json"
    bad_figure.parent.mkdir()
    bad_figure.write_text(json.dumps(document))
    document = json.loads(baseline.read_text())
    document["firmware"]["model"] = {}
    bad_model = tmp_path / "model" / "baseline.json"
    bad_model.parent.mkdir()
    bad_model.write_text(json.dumps(document))
    fig = InputFigures("found")
    judge(main, fig, "clauses", bad_run, ["compare", str(baseline), str(bad_run)])
    judge(main, fig, "figure", bad_figure, ["compare", str(bad_figure), str(run)])
    judge(main, fig, "model", bad_model, ["compare", str(bad_model), str(run)])
    assert (fig.clear, fig.naming_the_file) == (3, 3), fig.examples


def test_the_soak_tally_matches_ids_and_keeps_only_recent_ones(monkeypatch) -> None:
    monkeypatch.setattr("hil.reliability.soak.RECENT", 2)
    tally = Tally()
    for ident in "abcd":
        tally.send("up/2", ident)
    for ident in "abca":  # a twice
        tally.receive("up/2", ident)
    tally.receive("up/2", "z")  # never sent
    tally.refuse("up/2")
    assert tally.figures() == {"up/2": {"sent": 4, "received": 3, "lost": 1, "duplicated": 0,
                                        "unexpected": 2, "refused": 1}}
    tally.receive("up/2", "c")  # recent: a duplicate
    assert tally.figures()["up/2"]["duplicated"] == 1
    assert len(tally.flows["up/2"].recent_set) == 2
