"""Timing records: command names, samples, percentiles, the files and plots, the pytest plugin."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from hil.at.exchange import Response, Timing
from hil.at.framer import Line
from hil.at.transcript import Transcript
from hil.report.timing import (
    RunPoint,
    Sample,
    TimingRecorder,
    aggregate,
    command_key,
    latency_group,
    latency_groups,
    line_bytes,
    line_rate_fraction,
    line_seconds,
    payload_bin,
    percentile,
    plot_latency,
    plot_mpubex_throughput,
    plot_refused,
    plot_trend,
    refused,
    run_history,
    sample_from,
    stats,
    timings_document,
    write_csv,
)

pytest_plugins = ["pytester"]

MS = 1_000_000
PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("AT", "AT"),
        ("at", "AT"),
        ("ATE1", "ATE"),
        ("ATE0", "ATE"),
        ("ATI", "ATI"),
        ("AT&F", "AT&F"),
        ("AT+MPUBEX=hil/t,1,0,1360", "MPUBEX"),
        ("AT+ MIPCLOSE", "MIPCLOSE"),
        ("AT+MQTTSTATU", "MQTTSTATU"),
        ("AT+CGATT?", "CGATT?"),
        ("AT+CGATT=1", "CGATT"),
        ("AT+CGATT=?", "CGATT=?"),
        ("AT+mpub=a,0,0,x", "MPUB"),
        ("HELLO", "(raw)"),
        ("", "(raw)"),
        ("AT+", "(raw)"),
    ],
)
def test_command_key(text: str, key: str) -> None:
    assert command_key(text) == key


def test_percentiles_interpolate_between_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_stats_of_values_and_of_none() -> None:
    s = stats([5.0, 1.0, 3.0])
    assert s is not None
    assert (s.n, s.min, s.p50, s.max, s.mean) == (3, 1.0, 3.0, 5.0, 3.0)
    assert stats([]) is None
    assert s.as_dict()["n"] == 3


def _line(text: bytes, t_ns: int) -> Line:
    return Line.of(text, t_ns)


def _response(command: str, *, sent: int = 0, first: int | None = 1 * MS,
              prompt: int | None = None, final: int | None = 3 * MS, result: int | None = None,
              final_text: bytes = b"OK", result_text: bytes | None = None,
              data_sent: bool = False) -> Response:
    timing = Timing(sent, first, final, result, prompt)
    return Response(
        command=command,
        echo=None,
        lines=[],
        final=None if final is None else _line(final_text, final),
        result=None if result is None else _line(result_text or b"", result),
        timing=timing,
        data_sent=data_sent,
    )


def test_sample_from_a_response_has_its_figures() -> None:
    r = _response("AT+MSUB=hil/t,1", sent=10 * MS, first=11 * MS, final=13 * MS,
                  result=25 * MS, result_text=b"+MSUB: SUCCESS")
    s = sample_from(r, test="t::x", phase="call", start_ns=0, budget_ms=10.0)
    assert (s.command, s.test, s.phase, s.t_s) == ("MSUB", "t::x", "call", 0.01)
    assert (s.first_byte_ms, s.final_ms, s.result_ms, s.total_ms) == (1.0, 3.0, 15.0, 15.0)
    assert (s.final, s.result) == ("OK", "+MSUB: SUCCESS")
    assert s.over_budget and s.budget_ms == 10.0
    assert s.prompt_ms is None and s.figures() == {
        "first_byte_ms": 1.0, "final_ms": 3.0, "result_ms": 15.0, "total_ms": 15.0}


def test_sample_from_mpubex_knows_qos_and_data_length() -> None:
    r = _response("AT+MPUBEX=hil/a,b,2,0,1360", prompt=2 * MS, final=120 * MS,
                  result=130 * MS, result_text=b"+MPUBEX: SUCCESS", data_sent=True)
    s = sample_from(r, shown="AT+MPUBEX=****")
    assert (s.command, s.qos, s.data_bytes, s.prompt_ms, s.text) == (
        "MPUBEX", 2, 1360, 2.0, "AT+MPUBEX=****")
    refused = sample_from(_response("AT+MPUBEX=t,0,0,1361", final_text=b"ERROR"))
    assert refused.data_bytes == 0 and refused.final == "ERROR"


def test_sample_without_final_has_no_total() -> None:
    s = sample_from(_response("AT", final=None, first=None))
    assert s.total_ms is None and s.figures() == {}
    assert not s.over_budget


def _samples() -> list[Sample]:
    out = []
    for i in range(10):
        out.append(sample_from(_response("AT", final=(1 + i) * MS), test="a", budget_ms=5.0))
    out.append(sample_from(
        _response("AT+MPUBEX=t,1,0,1360", prompt=1 * MS, final=100 * MS, result=110 * MS,
                  result_text=b"+MPUBEX: SUCCESS", data_sent=True), test="b"))
    return out


def test_aggregate_per_command_and_metric() -> None:
    agg = aggregate(_samples())
    assert list(agg) == ["AT", "MPUBEX"]
    at = agg["AT"]["total_ms"]
    assert (at.n, at.min, at.max, at.p50) == (10, 1.0, 10.0, 5.5)
    assert "result_ms" not in agg["AT"]
    assert agg["MPUBEX"]["prompt_ms"].p50 == 1.0


def test_csv_has_a_row_per_command_and_metric(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "timings.csv", _samples())
    rows = list(csv.DictReader(path.open()))
    assert rows[0].keys() >= {"command", "metric", "n", "min_ms", "p50_ms", "p95_ms",
                              "p99_ms", "max_ms", "budget_ms", "over_budget"}
    total = next(r for r in rows if r["command"] == "AT" and r["metric"] == "total")
    assert (total["n"], total["budget_ms"], total["over_budget"]) == ("10", "5", "5")
    assert float(total["p99_ms"]) == pytest.approx(9.91)


def test_json_document_keeps_samples_and_over_budget() -> None:
    doc = timings_document(_samples(), {"dut": "simulator"})
    assert doc["dut"] == "simulator" and doc["schema"] == 1
    assert doc["commands"]["AT"]["total"]["n"] == 10
    assert doc["commands"]["AT"]["budget_ms"] == 5.0
    assert len(doc["over_budget"]) == 5 and len(doc["samples"]) == 11
    json.dumps(doc)  # serialisable as it is


def _throughput(sample: Sample) -> Sample:
    """The sample as the throughput suite would have taken it."""
    return dataclasses.replace(sample, test="suites/test_throughput.py::test_mpubex[1]")


def test_plots_are_pngs_and_none_without_data(tmp_path: Path) -> None:
    samples = _samples()
    latency = plot_latency(samples, tmp_path / "plots" / "latency.png", meta={"rig": "r"})
    assert latency is not None and latency.read_bytes().startswith(PNG)
    assert plot_latency([], tmp_path / "none.png") is None
    assert plot_refused(samples, tmp_path / "none.png") is None  # nothing was refused
    assert not (tmp_path / "none.png").exists()


def test_throughput_is_drawn_only_from_the_throughput_suite(tmp_path: Path) -> None:
    functional = _samples()  # its MPUBEX comes from another test: no throughput figure
    assert plot_mpubex_throughput(functional, tmp_path / "none.png", 115200) is None
    suite = [*functional[:-1], _throughput(functional[-1])]
    thru = plot_mpubex_throughput(suite, tmp_path / "thru.png", 115200)
    assert thru is not None and thru.read_bytes().startswith(PNG)


def test_latency_groups_split_mpubex_by_size_and_refusals_apart(tmp_path: Path) -> None:
    assert [payload_bin(n) for n in (1, 64, 65, 1024, 1360)] == [
        "1-64 B", "1-64 B", "65-256 B", "257-1024 B", ">1024 B"]
    mpubex = _samples()[-1]
    assert latency_group(mpubex) == "MPUBEX >1024 B"
    assert latency_group(dataclasses.replace(mpubex, data_bytes=10)) == "MPUBEX 1-64 B"
    assert latency_group(_samples()[0]) == "AT"
    error = sample_from(_response("AT+MQTTSSL=2", final=2 * MS, final_text=b"ERROR"))
    failure = sample_from(_response("AT+MSUB=t,3", final=2 * MS, result=3 * MS,
                                    result_text=b"+MSUB: FAILURE,2"))
    assert refused(error) and refused(failure) and not refused(mpubex)
    sizes = [dataclasses.replace(mpubex, data_bytes=n) for n in (1360, 100, 300, 10)]
    assert list(latency_groups([*sizes, _samples()[0]])) == [
        "AT", "MPUBEX 1-64 B", "MPUBEX 65-256 B", "MPUBEX 257-1024 B", "MPUBEX >1024 B"]
    drawn = plot_refused([*_samples(), error, failure], tmp_path / "refused.png")
    assert drawn is not None and drawn.read_bytes().startswith(PNG)


def _timings_json(folder: Path, rig: str, p95: float) -> None:
    folder.mkdir(parents=True)
    (folder / "timings.json").write_text(json.dumps({"rig": rig, "commands": {
        "AT": {"total": {"p95": p95}, "budget_ms": 50.0}}}))


def test_trend_reads_earlier_runs_of_the_same_rig(tmp_path: Path) -> None:
    _timings_json(tmp_path / "2025-01-01T02-00-00Z", "bench", 10.0)
    _timings_json(tmp_path / "2025-01-02T02-00-00Z", "other rig", 99.0)
    _timings_json(tmp_path / "2025-01-03T02-00-00Z", "bench", 12.0)
    (tmp_path / "2025-01-04T02-00-00Z").mkdir()  # a run that timed nothing
    current = tmp_path / "2025-01-05T02-00-00Z"
    _timings_json(current, "bench", 14.0)
    history = run_history(tmp_path, current, "bench")
    assert [(p.run[:10], p.p95["AT"]) for p in history] == [
        ("2025-01-01", 10.0), ("2025-01-03", 12.0)]
    assert run_history(tmp_path, current, "bench", limit=2) == history[-1:]
    now = RunPoint(current.name, {"AT": 14.0}, {"AT": 50.0})
    drawn = plot_trend([*history, now], tmp_path / "trend.png", {"rig": "bench"})
    assert drawn is not None and drawn.read_bytes().startswith(PNG)
    assert plot_trend([now], tmp_path / "none.png") is None


def test_recorder_writes_the_run_files(tmp_path: Path) -> None:
    recorder = TimingRecorder(start_ns=0)
    for s in _samples():
        recorder.add(s)
    run = tmp_path / "2025-01-02T02-00-00Z"
    written = recorder.write(run, {"rig": "x"}, baud=115200)
    assert set(written) == {"timings.csv", "timings.json", "metrics.txt", "latency.png"}
    assert json.loads((run / "timings.json").read_text())["baud"] == 115200
    again = recorder.write(tmp_path / "2025-01-03T02-00-00Z", {"rig": "x"}, baud=115200)
    assert "trend.png" in again  # the second run has a history of one before it


def test_line_bytes_and_rate() -> None:
    t = Transcript(start_ns=0)
    t.record_sent(b"AT\r", 10, "AT", "command")
    t.record_received(b"AT\r\r\nOK\r\n", 20, ())
    t.record_received(b"late", 40, ())
    assert line_bytes(t, 0, 30) == (3, 9)
    assert line_bytes(t, 15, 40) == (0, 13)
    assert line_seconds(11520, 115200) == pytest.approx(1.0)
    assert line_rate_fraction(11520, 115200, 2.0) == pytest.approx(0.5)
    assert line_rate_fraction(1, 115200, 0.0) is None


# ---------------------------------------------------------------------------- the plugin

_CONFTEST = '''
import pytest
from hil.at.exchange import Response, Timing
from hil.dut.device import Device
from hil.at.framer import Line
from hil.at.transcript import Transcript


class FakeChannel:
    baudrate = 115200

    def __init__(self):
        self.observer = None
        self.transcript = Transcript()

    def answer(self, command, total_ms, secret=None):
        if secret:
            self.transcript.mask_secret(secret)
        ns = int(total_ms * 1e6)
        r = Response(command, None, [], Line.of(b"OK", ns), None, Timing(0, ns // 2, ns))
        if self.observer is not None:
            self.observer(r)
        return r


@pytest.fixture(scope="session")
def device():
    return Device(at=None, channel=FakeChannel(), kind="hardware")
'''

_TESTS = '''
import pytest


def test_fast(device):
    device.channel.answer("AT", 1.0)


def test_slow(device):
    device.channel.answer("AT+MQTTSTATU", 700.0)
    device.channel.answer("AT+MCONFIG=id,user,s3cret", 2.0, secret="s3cret")


@pytest.mark.budget(MQTTSTATU=1000)
def test_slow_with_a_marker(device):
    device.channel.answer("AT+MQTTSTATU", 700.0)


@pytest.mark.budget(None)
def test_unchecked(device):
    device.channel.answer("AT+MQTTSTATU", 5000.0)


def test_without_device():
    pass
'''


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose runs import the project's `fixtures` package."""
    import os

    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeconftest(_CONFTEST)
    pytester.makepyfile(test_budgeted=_TESTS)
    return pytester.runpytest_subprocess(
        "-p", "no:pytest_embedded", "-p", "no:cacheprovider", "-p", "no:l506",
        "-p", "hil.fixtures.dut",
        "-p", "hil.fixtures.timing", f"--rig={ROOT / 'rigs' / 'simulator.toml'}",
        f"--report-dir={pytester.path / 'run'}", *args,
    )


def test_plugin_fails_a_test_over_budget_and_writes_the_run_files(
    pytester: pytest.Pytester,
) -> None:
    result = _run(pytester, "--budget-mode", "fail", "--budget", "MQTTSTATU=500")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines([
        "*BudgetExceeded*",
        "*'AT+MQTTSTATU' (MQTTSTATU) answered in 700.0 ms, over its budget of 500 ms*",
    ])
    run = pytester.path / "run"
    rows = list(csv.DictReader((run / "timings.csv").open()))
    statu = next(r for r in rows if r["command"] == "MQTTSTATU" and r["metric"] == "total")
    assert (statu["n"], statu["budget_ms"], statu["over_budget"]) == ("3", "500", "1")
    doc = json.loads((run / "timings.json").read_text())
    assert doc["budgets"]["mode"] == "fail"
    assert {s["test"].split("::")[1] for s in doc["samples"]} == {
        "test_fast", "test_slow", "test_slow_with_a_marker", "test_unchecked"}
    assert "s3cret" not in (run / "timings.json").read_text()
    assert (run / "plots" / "latency.png").read_bytes().startswith(PNG)


def test_plugin_only_warns_in_warn_mode(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--budget", "MQTTSTATU=500")  # the simulator rig says warn
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*BudgetWarning*test_slow*over its budget of 500 ms*"])


def test_bad_budget_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--budget", "MQTTSTATU=fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--budget*'fast' is not a number*"])


def test_step_title_names_the_figures() -> None:
    from hil.fixtures.timing import step_title
    from hil.report.budgets import Violation

    s = sample_from(_response("AT+MSUB=t,1", first=1 * MS, final=3 * MS, result=15 * MS,
                              result_text=b"+MSUB: SUCCESS"))
    assert step_title(s, None) == "AT+MSUB=t,1 → OK 3.00 ms, +MSUB: SUCCESS 15.0 ms"
    over = step_title(s, Violation("MSUB", "AT+MSUB=t,1", 15.0, 10.0))
    assert over.endswith("(over budget: 15.0 > 10 ms)")


def test_echo_overlaps_the_command_and_is_not_counted_as_line_time() -> None:
    from types import SimpleNamespace

    from hil.report.timing import echo_bytes

    echoed = SimpleNamespace(echo=SimpleNamespace(raw=b"AT+MPUBEX=t,0,0,1360"))
    silent = SimpleNamespace(echo=None)  # ATE0: nothing overlaps
    assert echo_bytes([echoed, silent, echoed]) == 2 * (len(b"AT+MPUBEX=t,0,0,1360") + 1)
